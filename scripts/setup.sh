#!/usr/bin/env bash
# One-command set-up on a fresh Debian/Ubuntu machine (run as root or with sudo):
#   Docker engine (started if not running), debootstrap (offline base image), Debian's docker-registry
#   (used by the tests), a virtual environment in .venv with jupyter-amltrain and its test extras, the
#   JupyterLab panel built and enabled (Node.js from apt), chromium for the UI tests, and the default base image
#   amltrain/base:bookworm built offline.
set -euo pipefail
cd "$(dirname "$0")/.."

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

echo "==> system packages"
export DEBIAN_FRONTEND=noninteractive
need=()
command -v dockerd >/dev/null || need+=(docker.io)
command -v debootstrap >/dev/null || need+=(debootstrap)
command -v docker-registry >/dev/null || need+=(docker-registry)
command -v htpasswd >/dev/null || need+=(apache2-utils)
python3 -c "import venv, ensurepip" 2>/dev/null || need+=(python3-venv)
# The JupyterLab panel is built from TypeScript, and its UI tests drive Debian's chromium (no browser download).
command -v node >/dev/null || need+=(nodejs)
command -v npm >/dev/null || need+=(npm)
[ -x /usr/bin/chromium ] || need+=(chromium)
if [ ${#need[@]} -gt 0 ]; then
  as_root apt-get update -qq
  as_root apt-get install -y -qq "${need[@]}" >/dev/null
fi

echo "==> Docker engine"
if ! docker info >/dev/null 2>&1; then
  if command -v systemctl >/dev/null && systemctl is-system-running >/dev/null 2>&1; then
    as_root systemctl start docker
  else
    as_root sh -c 'nohup dockerd >/var/log/dockerd.log 2>&1 &'
  fi
  for _ in $(seq 1 60); do docker info >/dev/null 2>&1 && break; sleep 1; done
  docker info >/dev/null 2>&1 || { echo "Docker engine did not start; see /var/log/dockerd.log" >&2; exit 1; }
fi

echo "==> Python environment (.venv)"
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e ".[test]"

echo "==> JupyterLab panel (labextension/ -> jupyter_amltrain/labextension) and its UI test driver"
# An editable install carries no shared data: link the built panel into the venv and enable the server
# extension there, as `pip install .` does from the wheel.
(export PATH="$PWD/.venv/bin:$PATH"; cd labextension && jlpm install --immutable && jlpm build:prod)
# .venv/bin first on PATH: `jupyter labextension develop` hands over to `jupyter-builder` found on PATH, and
# another Python's would link its own checkout into its own prefix instead of this one into .venv.
PATH="$PWD/.venv/bin:$PATH" .venv/bin/jupyter-labextension develop . --overwrite
PATH="$PWD/.venv/bin:$PATH" .venv/bin/jupyter-server extension enable --sys-prefix jupyter_amltrain
(cd tests/ui && npm ci --no-audit --no-fund)

echo "==> default base image (offline, once)"
.venv/bin/amltrain prepare

echo "Ready. Demo: .venv/bin/amltrain demo    Tests: .venv/bin/python -m pytest"
