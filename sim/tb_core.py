"""The cocotb entry point for generated cores: the testbench lives in the package
(``qsnn_hw.verify.cocotb_tb``, so an installed qsnn-hw verifies without this folder);
this module re-exports it for ``COCOTB_TEST_MODULES=tb_core`` runs from a checkout."""

from qsnn_hw.verify.cocotb_tb import bundle_matches_golden  # noqa: F401
