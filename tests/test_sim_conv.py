"""Convolutional cores under Icarus and Verilator (cocotb), bit-exact against the golden
model: the seeded configurations of sim/conv_regression.py in one bundle per run.

Sizes: ``QSNN_CONV_RTL_CONFIGS`` (default 12) configurations; ``QSNN_CONV_RTL_SEED``
(default 0) shifts the seeds. Replay one with ``QSNN_CONV_RTL_SEED=<seed>
QSNN_CONV_RTL_CONFIGS=1``.
"""

from __future__ import annotations

import os

import pytest

from qsnn_hw.verify.bundle import write_bundle
from qsnn_hw.verify.compare import format_report
from qsnn_hw.verify.runner import SIMULATORS, run_bundle, simulator_available
from sim.conv_regression import conv_regression_case
from sim.regression import assert_bundle_bit_exact

pytestmark = [pytest.mark.sim,
              pytest.mark.filterwarnings("ignore::amaranth.hdl.UnusedElaboratable")]

CONFIGS = int(os.environ.get("QSNN_CONV_RTL_CONFIGS", "12"))
SEED0 = int(os.environ.get("QSNN_CONV_RTL_SEED", "0"))


@pytest.fixture(scope="module")
def conv_bundle(tmp_path_factory):
    cases = [conv_regression_case(SEED0 + i) for i in range(CONFIGS)]
    return write_bundle(cases, tmp_path_factory.mktemp("conv") / "bundle"), cases


@pytest.mark.parametrize("sim", SIMULATORS)
def test_conv_configurations_bit_exact(sim, conv_bundle, tmp_path):
    if not simulator_available(sim):
        pytest.skip(f"{sim} is not installed")
    bundle, cases = conv_bundle
    assert_bundle_bit_exact(sim, bundle, cases, tmp_path / f"build_{sim}")


def test_conv_regression_covers_the_space():
    cases = [conv_regression_case(s) for s in range(CONFIGS)]
    convs = [la for c in cases for la in c.net.layers if la.is_conv]
    assert {la.pool for la in convs} >= {1, 2} and {la.stride for la in convs} == {1, 2}
    assert any(la.padding for la in convs)
    assert any(la.channels % p for c in cases
               for la, p in zip(c.net.layers, c.config.per_layer("lanes", len(c.net.layers)),
                                strict=True) if la.is_conv)
    assert {c.net.input_bits > 1 for c in cases} == {True, False}
    assert any(len([la for la in c.net.layers if la.is_conv]) == 2 for c in cases)
    assert any(not c.net.layers[-1].is_conv for c in cases)
    assert {c.config.weight_storage for c in cases} >= {"rom", "ram", "spram"}


def test_a_long_quiet_convolution_is_not_taken_for_a_deadlock(tmp_path):
    """A digits-sized stack (8 x 8 input, 8c3p1, then 16c3p1s2 at one lane) spends far
    more than the harness's base watchdog accumulating one timestep without a visible
    beat, word or state write; the watchdog allows the core's own quiet stretch
    (bundle.quiet_cycles), and the run is bit-exact on Icarus."""
    import dataclasses

    import numpy as np

    from qsnn_hw.contract import IntNetwork
    from qsnn_hw.golden import simulate
    from qsnn_hw.hdl.config import CoreConfig
    from qsnn_hw.testing import random_conv_layer, random_inputs, random_layer
    from qsnn_hw.verify.bundle import WATCHDOG, CoreCase, quiet_cycles

    if not simulator_available("icarus"):
        pytest.skip("icarus is not installed")
    rng = np.random.default_rng(5)
    l0 = random_conv_layer(rng, (1, 8, 8), input_max=15, channels=8, kernel=3, padding=1,
                           stride=1, pool=1, state_bits=4, family="exponential")
    l0 = dataclasses.replace(l0, threshold=1)            # busy: most positions spike
    l1 = random_conv_layer(rng, l0.out_shape, channels=16, kernel=3, padding=1, stride=2,
                           pool=1, state_bits=4, family="exponential")
    l2 = random_layer(rng, l1.n_out, 10, state_bits=4, family="exponential")
    net = IntNetwork((l0, l1, l2), input_bits=4)
    x = random_inputs(rng, net, 1, 3, density=0.6)
    config = CoreConfig(lanes=1)
    assert simulate(net, x).spikes[0].mean() > 0.3
    assert quiet_cycles(net, config) > 4 * WATCHDOG
    bundle = write_bundle([CoreCase("quiet", net, x, config)], tmp_path / "bundle")
    report = run_bundle("icarus", bundle, tmp_path / "build")
    core = report["cores"][0]
    assert core["ok"], format_report(core, "quiet")
