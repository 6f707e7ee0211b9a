"""Amaranth gateware of the LIF core: components (weight memory, state memory, level
table, code quantizer, LIF datapath), the layer engine and the network top.

Depends on :mod:`qsnn_hw.contract` (and the golden model in tests) only, never on the
trainer. docs/hardware.md describes the architecture, protocol and cycle model.
"""

from .engine import LayerEngine
from .level_table import LevelTable
from .lif import LIFDatapath
from .quantizer import CodeQuantizer
from .state_memory import LaneMemory, StateMemory
from .top import NetworkTop
from .weight_memory import WeightMemory

__all__ = ["CodeQuantizer", "LIFDatapath", "LaneMemory", "LayerEngine", "LevelTable",
           "NetworkTop", "StateMemory", "WeightMemory"]
