#!/usr/bin/env bash
# Set up (venv, pip, simulators) and run the whole test suite: lint, then pytest.
# Extra arguments go to pytest, e.g. `bash scripts/test.sh -m "not synth"`.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$ROOT/scripts/setup.sh"
cd "$ROOT"
if [ -n "${QSNN_MISSING_SIMULATORS:-}" ]; then
    echo "The test suite needs: $QSNN_MISSING_SIMULATORS (see the message above)." >&2
    exit 1
fi
echo "[test] ruff check"
ruff check .
echo "[test] pytest"
start=$(date +%s)
# two workers, a test file per worker (module fixtures are built once);
# QSNN_TEST_WORKERS=0 runs everything in one process
python -m pytest -n "${QSNN_TEST_WORKERS:-2}" --dist loadfile --durations=15 "$@"
echo "[test] whole suite: $(( $(date +%s) - start )) s"
