#!/usr/bin/env bash
# Set up (venv, pip, simulators) and run the main job on the built-in data.
# Extra arguments go to the qsnn-hw command.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$ROOT/scripts/setup.sh"
cd "$ROOT"
qsnn-hw demo --out "${QSNN_OUT:-$ROOT/out/demo}" "$@"
