"""qsnn-hw: quantization-aware SNN training to a bit-exact FPGA core.

The package mirrors the pipeline: ``quant`` (weight and state quantizers),
``contract`` (the integer network every stage agrees on), ``golden`` (the integer
reference simulation), then the trainer, the gateware generator, simulation and boards.
"""

__version__ = "0.1.0"
