#!/usr/bin/env bash
# Manual check that the widgets render in JupyterLab, with screenshots (not part of the test suite):
#   bash scripts/widget-screenshots.sh [OUTPUT_DIR]
# Runs notebooks/quickstart.ipynb in a headless JupyterLab on the preloaded kernel against the real Docker
# engine, in a scratch store, with .venv's Jupyter (scripts/setup.sh makes it). Needs chromium (apt-get install
# chromium) and npm (for playwright-core).
set -euo pipefail
cd "$(dirname "$0")/.."
out=$(realpath -m "${1:-/tmp/amltrain-screenshots}")
work=$(mktemp -d)
mkdir -p "$out" "$work/tools"
cp -r notebooks "$work/nb"
export AMLTRAIN_HOME="$work/home" JUPYTER_PATH="$work/prefix/share/jupyter" PLAYWRIGHT_DIR="$work/tools"
.venv/bin/jupyter amltrain install-kernel --prefix "$work/prefix" --name amltrain >/dev/null
(cd "$work/tools" && npm init -y >/dev/null && npm install --silent playwright-core@1 >/dev/null)
port=$(.venv/bin/python -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
root=(); [ "$(id -u)" = 0 ] && root=(--allow-root)
.venv/bin/jupyter lab --no-browser --port "$port" --IdentityProvider.token= --ServerApp.root_dir="$work/nb" \
  "${root[@]}" >"$work/lab.log" 2>&1 &
lab=$!
images() { docker images -q --filter label=amltrain.hash | sort; }
before=$(images)
# Leave the machine as it was: stop the server, drop the images this run built and the scratch folder.
cleanup() {
  kill $lab 2>/dev/null || true
  comm -13 <(echo "$before") <(images) | xargs -r docker rmi -f >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
for _ in $(seq 120); do
  curl -sf "http://127.0.0.1:$port/api" >/dev/null && break
  kill -0 $lab 2>/dev/null || { cat "$work/lab.log"; exit 1; }
  sleep 1
done
node scripts/widget_screenshots.mjs "http://127.0.0.1:$port" "$out"
echo "screenshots in $out"
