"""cocotb entry points and the regression runner for a source checkout, on top of
``qsnn_hw.verify`` (bundles, harness, testbench, runner and comparison live there):

* ``tb_core.py``: the cocotb testbench of generated cores (re-exported from the package);
* ``tb_smoke.py``: the toolchain smoke test (a saturating accumulator);
* ``regression.py``: the seeded random core configurations of the RTL regression, and
  ``python -m sim.regression --sim icarus|verilator [--configs N] [--seed S]`` to run it.
"""
