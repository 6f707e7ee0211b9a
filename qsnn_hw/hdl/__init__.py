"""Amaranth gateware of the LIF core: components (weight memory, state memory, level
table, code quantizer, LIF datapath), the layer engine and the network top.

Depends on :mod:`qsnn_hw.contract` (and the golden model in tests) only, never on the
trainer. docs/hardware.md describes the architecture, protocol and cycle model.
"""

from .._yosys import use_packaged_yosys

use_packaged_yosys()   # Verilog through the one Yosys the package installs (qsnn_hw/_yosys.py)

from .engine import LayerEngine  # noqa: E402
from .level_table import LevelTable  # noqa: E402
from .lif import LIFDatapath  # noqa: E402
from .quantizer import CodeQuantizer  # noqa: E402
from .state_memory import LaneMemory, StateMemory  # noqa: E402
from .top import NetworkTop  # noqa: E402
from .weight_memory import WeightMemory  # noqa: E402

__all__ = ["CodeQuantizer", "LIFDatapath", "LaneMemory", "LayerEngine", "LevelTable",
           "NetworkTop", "StateMemory", "WeightMemory"]
