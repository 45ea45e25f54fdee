#!/usr/bin/env bash
# The demo, on a machine that may have nothing installed yet:  sudo bash scripts/demo.sh
# Sets up whatever is missing (scripts/setup.sh: seconds when nothing is), then runs `amltrain demo` from .venv:
# v1's train-on-local sample, end to end in a container. No venv to activate, nothing taken from PATH.
set -euo pipefail
cd "$(dirname "$(readlink -f "$0")")/.."
[ "$(id -u)" -eq 0 ] || { echo "Run it as root: sudo bash $0 $*" >&2; exit 1; }
bash scripts/setup.sh
exec .venv/bin/amltrain demo "$@"
