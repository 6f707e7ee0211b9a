"""TaWQ cores (time-varying ternary weights) under Icarus and Verilator (cocotb),
bit-exact against the golden model: the seeded configurations of sim/tawq_regression.py
in one bundle per run.

Sizes: ``QSNN_TAWQ_RTL_CONFIGS`` (default 6) configurations; ``QSNN_TAWQ_RTL_SEED``
(default 0) shifts the seeds. Replay one with ``QSNN_TAWQ_RTL_SEED=<seed>
QSNN_TAWQ_RTL_CONFIGS=1``.
"""

from __future__ import annotations

import os

import pytest

from qsnn_hw.verify.bundle import write_bundle
from qsnn_hw.verify.runner import SIMULATORS, simulator_available
from sim.regression import assert_bundle_bit_exact
from sim.tawq_regression import tawq_regression_case

# slow: Verilator builds each core (~1.5 min for 6 on the shared 2-core machine)
pytestmark = [pytest.mark.sim, pytest.mark.slow,
              pytest.mark.filterwarnings("ignore::amaranth.hdl.UnusedElaboratable")]

CONFIGS = int(os.environ.get("QSNN_TAWQ_RTL_CONFIGS", "6"))
SEED0 = int(os.environ.get("QSNN_TAWQ_RTL_SEED", "0"))


@pytest.fixture(scope="module")
def tawq_bundle(tmp_path_factory):
    cases = [tawq_regression_case(SEED0 + i) for i in range(CONFIGS)]
    return write_bundle(cases, tmp_path_factory.mktemp("tawq") / "bundle"), cases


@pytest.mark.parametrize("sim", SIMULATORS)
def test_tawq_configurations_bit_exact(sim, tawq_bundle, tmp_path):
    if not simulator_available(sim):
        pytest.skip(f"{sim} is not installed")
    bundle, cases = tawq_bundle
    assert_bundle_bit_exact(sim, bundle, cases, tmp_path / f"build_{sim}")
