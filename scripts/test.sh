#!/usr/bin/env bash
# The tests, on a machine that may have nothing installed yet:  sudo bash scripts/test.sh [PYTEST ARGS...]
# Sets up whatever is missing (scripts/setup.sh: seconds when nothing is), then runs pytest with .venv's Python
# in the repository root (test paths are relative to it). No venv to activate, nothing taken from PATH.
set -euo pipefail
cd "$(dirname "$(readlink -f "$0")")/.."
[ "$(id -u)" -eq 0 ] || { echo "Run it as root: sudo bash $0 $*" >&2; exit 1; }
bash scripts/setup.sh
exec .venv/bin/python -m pytest "$@"
