#!/bin/sh
# Build MODEL for BOARD with the YoWASP toolchain (pip packages, no system tools):
#   boards/build.sh runs/flow/train/model.qsnn icebreaker 4 24
# CLOCK_MHZ: a number, or auto (default: the fastest the achieved Fmax allows).
# Output: build/BOARD/ (bitstream, report.json, report.md), replaced by a rebuild once the
# new build succeeds (--force; a directory there that is not a build is never replaced).
# See docs/boards.md.
set -eu
if [ $# -lt 2 ]; then
    echo "usage: $0 MODEL BOARD [LANES] [CLOCK_MHZ|auto]" >&2
    echo "boards: icebreaker ulx3s-12f ulx3s-25f ulx3s-45f ulx3s-85f" >&2
    exit 2
fi
model=$1; board=$2; lanes=${3:-1}; clock=${4:-auto}
exec qsnn-hw synth "$model" --board "$board" --lanes "$lanes" --clock "$clock" --out "build/$board" \
    --force
