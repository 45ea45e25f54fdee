#!/usr/bin/env bash
# Set-up on a fresh Debian/Ubuntu machine (run as root or with sudo). scripts/demo.sh and scripts/test.sh run
# it first; it sets up only what is missing, and takes seconds when nothing is:
#   Docker engine (started if not running), debootstrap (offline base image), Debian's docker-registry
#   (used by the tests), a virtual environment in .venv with jupyter-amltrain and its test extras, the
#   JupyterLab panel built and enabled (Node.js from apt), chromium for the UI tests, and the default base image
#   amltrain/base:bookworm built offline.
# What was done is remembered in .venv/.setup-stamps/ (a digest of the inputs of each step): a step runs again
# when its inputs change (pyproject.toml, labextension/ sources, tests/ui/package-lock.json) or its output is
# gone. Delete that folder to redo them all.
set -euo pipefail
cd "$(dirname "$(readlink -f "$0")")/.."

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

STAMPS=.venv/.setup-stamps
# digest FILE...: one digest of this checkout's place and the files' contents (the inputs of a step).
digest() { { echo "$PWD"; sha256sum "$@"; } | sha256sum | cut -d' ' -f1; }
# up_to_date STEP DIGEST: the step last finished with these inputs.
up_to_date() { [ -f "$STAMPS/$1" ] && [ "$(cat "$STAMPS/$1")" = "$2" ]; }
done_with() { mkdir -p "$STAMPS"; echo "$2" >"$STAMPS/$1"; }

echo "==> system packages"
export DEBIAN_FRONTEND=noninteractive
need=()
command -v dockerd >/dev/null || need+=(docker.io)
command -v debootstrap >/dev/null || need+=(debootstrap)
command -v docker-registry >/dev/null || need+=(docker-registry)
command -v htpasswd >/dev/null || need+=(apache2-utils)
# Debian's own Python makes .venv (not whichever python3 comes first on PATH): python3-venv is for it.
[ -x /usr/bin/python3 ] && /usr/bin/python3 -c "import venv, ensurepip" 2>/dev/null || need+=(python3-venv)
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
[ -x .venv/bin/python ] || /usr/bin/python3 -m venv .venv
inputs=$(digest pyproject.toml)
if up_to_date pip "$inputs" && [ -x .venv/bin/amltrain ] && [ -x .venv/bin/jupyter ]; then
  echo "    up to date"
else
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -e ".[test]"
  done_with pip "$inputs"
fi

echo "==> JupyterLab panel (labextension/ -> jupyter_amltrain/labextension) and its UI test driver"
# Its inputs: the sources, the lockfile and the build tools (pyproject.toml pins jupyter-builder).
mapfile -t sources < <(find labextension \( -name node_modules -o -name lib -o -name .yarn \
  -o -name tsconfig.tsbuildinfo \) -prune -o -type f -print | LC_ALL=C sort)
inputs=$(digest pyproject.toml "${sources[@]}")
if up_to_date labextension "$inputs" && [ -f jupyter_amltrain/labextension/package.json ] \
    && [ -f jupyter_amltrain/labextension/static/style.js ]; then
  echo "    panel built"
else
  (export PATH="$PWD/.venv/bin:$PATH"; cd labextension && jlpm install --immutable && jlpm build:prod)
  done_with labextension "$inputs"
fi
# An editable install carries no shared data: link the built panel into the venv and enable the server
# extension there, as `pip install .` does from the wheel.
if [ "$(readlink .venv/share/jupyter/labextensions/jupyter-amltrain)" = "$PWD/jupyter_amltrain/labextension" ] \
    && grep -qs '"jupyter_amltrain": true' .venv/etc/jupyter/jupyter_server_config.d/jupyter_amltrain.json; then
  echo "    panel linked into .venv, server extension enabled"
else
  # .venv/bin first on PATH: `jupyter labextension develop` hands over to `jupyter-builder` found on PATH, and
  # another Python's would link its own checkout into its own prefix instead of this one into .venv.
  PATH="$PWD/.venv/bin:$PATH" .venv/bin/jupyter-labextension develop . --overwrite
  PATH="$PWD/.venv/bin:$PATH" .venv/bin/jupyter-server extension enable --sys-prefix jupyter_amltrain
fi
inputs=$(digest tests/ui/package-lock.json)
if up_to_date ui-tests "$inputs" && [ -d tests/ui/node_modules/playwright-core ]; then
  echo "    UI test driver installed"
else
  (cd tests/ui && npm ci --no-audit --no-fund)
  done_with ui-tests "$inputs"
fi

echo "==> default base image (offline, once)"
.venv/bin/amltrain prepare

echo "Ready. Demo: sudo bash scripts/demo.sh    Tests: sudo bash scripts/test.sh"
