import os

from hypothesis import settings

# CI runs a fixed, moderate number of examples; QSNN_HYPOTHESIS_EXAMPLES scales it up.
# Derandomized by default so a CI verdict never depends on luck; QSNN_HYPOTHESIS_RANDOM=1
# explores new examples on every run.
settings.register_profile(
    "qsnn", max_examples=int(os.environ.get("QSNN_HYPOTHESIS_EXAMPLES", "100")), deadline=None,
    derandomize=os.environ.get("QSNN_HYPOTHESIS_RANDOM", "0") != "1")
settings.load_profile("qsnn")

# Tests that call Amaranth's Verilog backend directly emit through the same Yosys as the
# package (qsnn_hw/_yosys.py).
from qsnn_hw._yosys import use_packaged_yosys  # noqa: E402

use_packaged_yosys()
