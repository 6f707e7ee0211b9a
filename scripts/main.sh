#!/usr/bin/env bash
# Set up (venv, pip, simulators) and run the main job on the built-in digits dataset:
# train -> export -> generate -> verify -> synth, one summary table (qsnn-hw flow).
# Extra arguments go to `qsnn-hw flow` (e.g. --board ulx3s-85f, --epochs 60).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$ROOT/scripts/setup.sh"
cd "$ROOT"
qsnn-hw flow --out "${QSNN_OUT:-$ROOT/runs/flow}" "$@"
