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
    report = run_bundle(sim, bundle, tmp_path / f"build_{sim}", opt="-O0")
    assert len(report["cores"]) == len(cases) == CONFIGS
    bad = [format_report(c, c["core"], f"seed {c['seed']}; {c['describe']}")
           for c in report["cores"] if not c["ok"]]
    assert report["ok"], "\n".join(bad)
    for core, case in zip(report["cores"], cases, strict=True):
        assert core["samples"] == case.x.shape[0] and core["mismatches"] == 0


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
