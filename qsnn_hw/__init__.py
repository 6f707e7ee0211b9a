"""qsnn-hw: quantization-aware SNN training to a bit-exact FPGA core.

The package mirrors the pipeline: ``quant`` (weight and state quantizers),
``contract`` (the integer network every stage agrees on), ``golden`` (the integer
reference simulation), then the trainer, the gateware generator, simulation and boards.
"""

__version__ = "0.1.0"

# The Python API (qsnn_hw.api, docs/python.md), imported on first use so that
# ``import qsnn_hw`` stays light.
_API = ("Network", "Trained", "Model", "Core", "Build")


def __getattr__(name):
    if name in _API:
        from . import api
        return getattr(api, name)
    raise AttributeError(f"module 'qsnn_hw' has no attribute {name!r}")


def __dir__():
    return sorted([*globals(), *_API])
