"""The generated core under Icarus and Verilator (cocotb), bit-exact against the golden
model: a seeded random-configuration regression (every core configuration synth builds)
and a deliberately broken core that must be caught at the right place.

Every expected value comes from ``qsnn_hw.golden.simulate``. Sizes:
``QSNN_REGRESSION_CONFIGS`` (default 50) random configurations per simulator, all in one
build per simulator (``qsnn_hw.verify.bundle`` puts K cores into one harness);
``QSNN_REGRESSION_SEED`` (default 0) shifts the seeds. A failure names the configuration
seed; replay one with ``QSNN_REGRESSION_SEED=<seed> QSNN_REGRESSION_CONFIGS=1``.
The trained digits model runs in tests/test_sim_digits.py.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
from pathlib import Path
from unittest import mock

import numpy as np
import pytest

from qsnn_hw.golden import simulate
from qsnn_hw.hdl.config import CoreConfig
from qsnn_hw.testing import random_inputs, random_network
from qsnn_hw.verify.bundle import CoreCase, write_bundle
from qsnn_hw.verify.compare import format_report as _format
from qsnn_hw.verify.runner import SIMULATORS, run_bundle, simulator_available
from sim.regression import CORE_KINDS, regression_case

pytestmark = [pytest.mark.sim,
              pytest.mark.filterwarnings("ignore::amaranth.hdl.UnusedElaboratable")]

CONFIGS = int(os.environ.get("QSNN_REGRESSION_CONFIGS", "50"))
SEED0 = int(os.environ.get("QSNN_REGRESSION_SEED", "0"))
ROOT = Path(__file__).resolve().parents[1]


def _need(sim):
    if not simulator_available(sim):
        pytest.skip(f"{sim} is not installed")


def format_report(core) -> str:
    return _format(core, core["core"], f"configuration seed {core['seed']}; "
                   f"{core['describe']}")


def _failures(report) -> str:
    return "\n".join(format_report(c) for c in report["cores"] if not c["ok"]) + \
        (f"\nwaveform: {report.get('waveform')}" if report.get("waveform") else "")


@pytest.fixture(scope="module")
def regression_bundle(tmp_path_factory):
    """One bundle (generated once, simulated by both simulators)."""
    cases = [regression_case(SEED0 + i) for i in range(CONFIGS)]
    return write_bundle(cases, tmp_path_factory.mktemp("regression") / "bundle"), cases


@pytest.mark.parametrize("sim", SIMULATORS)
def test_random_configurations_bit_exact(sim, regression_bundle, tmp_path, record_property):
    _need(sim)
    bundle, cases = regression_bundle
    report = run_bundle(sim, bundle, tmp_path / f"build_{sim}", opt="-O0")
    record_property("cycles_per_s", report["cycles_per_s"])
    assert len(report["cores"]) == len(cases) == CONFIGS
    assert report["ok"], _failures(report)
    for core, case in zip(report["cores"], cases, strict=True):
        # the check compared real activity: the samples, all of them
        assert core["samples"] == case.x.shape[0] and core["mismatches"] == 0
    print(f"{sim}: {CONFIGS} configurations, {report['cycles']} cycles, "
          f"{report['cycles_per_s']:.0f} cycles/s, {report['total_s']:.1f} s with build")


def test_regression_covers_the_space():
    """The configuration space promised in sim/regression.py, over the default sweep."""
    cases = [regression_case(s) for s in range(50)]
    layers = [la for c in cases for la in c.net.layers]
    assert {la.state_bits for la in layers} >= {None, 2, 3, 4, 5, 6, 7, 8}
    assert {la.reset for la in layers} == {"subtract", "zero", "clear"}
    assert {la.rest for la in layers if la.quantized} == {"level", "zero"}
    assert {c.net.input_bits for c in cases} >= {1, 2, 4, 8}
    wbits = {int(np.abs(la.weight).max()).bit_length() + 1 for la in layers}
    assert min(wbits) <= 3 and max(wbits) >= 15
    lanes = [(p, la.n_out) for c in cases
             for p, la in zip(c.config.per_layer("lanes", len(c.net.layers)), c.net.layers,
                              strict=True)]
    assert {p for p, _ in lanes} >= {1, 16} and any(n % p for p, n in lanes)
    assert max(c.x.shape[1] for c in cases) >= 60
    assert min(c.x.shape[0] for c in cases) >= 2
    dens = [c.x.astype(bool).mean() for c in cases]
    assert min(dens) == 0.0 and max(dens) == 1.0 and any(0.05 < d < 0.95 for d in dens)
    assert {c.valid_gap for c in cases} >= {0.0, 0.6} and {c.ready_prob for c in cases} >= {
        1.0, 0.15}
    # the configurations synth builds: minimal FIFOs, RAM and SPRAM weights, pipelined
    # quantizer (on quantized layers), each with several state widths
    cfgs = [c.config for c in cases]
    assert sum(c.fifo_depth == "min" for c in cfgs) >= 8
    assert {c.weight_storage for c in cfgs} == {"rom", "ram", "spram"}
    piped = [la.state_bits for c in cases if c.config.quantizer == "pipelined"
             for la in c.net.layers if la.quantized]
    assert len(set(piped)) >= 3
    assert len(CORE_KINDS) == 5
    # the throughput modes: static and streamed input with one and two accumulator
    # banks, on direct and spike input, and zero-heavy direct input
    modes = {(c.config.static_input(c.net), banks, c.net.input_bits > 1)
             for c in cases for banks in {o.banks for o in c.config.layers(c.net)}}
    assert modes == {(s, b, d) for s in (True, False) for b in (1, 2) for d in (True, False)}
    assert any(c.net.input_bits > 1 and 0 < c.x.astype(bool).mean() < 0.2 for c in cases)


# ---- a core that is wrong must fail, at the right place --------------------------------

def _off_by_one_leak(target):
    """Fault injection without touching qsnn_hw/hdl: the LIF datapaths of ``target`` (an
    IntLayer) shift the leak product by beta_shift + 1 instead of beta_shift."""
    from qsnn_hw.hdl import update
    from qsnn_hw.hdl.lif import LIFDatapath

    class OffByOneLeak(LIFDatapath):
        def __init__(self, layer, **kw):
            if layer is target:
                layer = dataclasses.replace(layer, beta_shift=layer.beta_shift + 1)
            super().__init__(layer, **kw)

    return contextlib.contextmanager(lambda: (yield from _patched(update, OffByOneLeak)))


def _patched(module, cls):
    with mock.patch.object(module, "LIFDatapath", cls):
        yield


def test_broken_leak_shift_is_caught_at_the_right_place(tmp_path):
    _need("icarus")
    rng = np.random.default_rng(1234)
    net = random_network(rng, sizes=[12, 9, 7], input_bits=1, state_bits=None,
                         reset="subtract", bias=False, frac_bits=0)
    # beta = 3/4, so the faulty leak (3/8) differs as soon as a membrane is non-zero
    layers = [dataclasses.replace(la, beta_num=3, beta_shift=2) for la in net.layers]
    net = dataclasses.replace(net, layers=tuple(layers))
    x = random_inputs(rng, net, 3, 10, 0.4)
    target = net.layers[1]
    # what the broken core computes: the same network with layer 1's beta halved
    faulty = dataclasses.replace(net, layers=(net.layers[0], dataclasses.replace(
        target, beta_shift=target.beta_shift + 1)))
    good, bad = simulate(net, x, trace=True), simulate(faulty, x, trace=True)
    assert np.array_equal(good.mem[0], bad.mem[0])
    diff = np.argwhere(good.mem[1] != bad.mem[1])
    assert diff.size, "the fault must be observable on these inputs"
    b, t, n = (int(v) for v in diff[0])

    case = CoreCase("broken", net, x, CoreConfig(lanes=[2, 3]), seed=99,
                    layer_patch=_off_by_one_leak(target),
                    describe="leak shift off by one in layer 1")
    bundle = write_bundle([case], tmp_path / "bundle")
    report = run_bundle("icarus", bundle, tmp_path / "build")
    assert not report["ok"]
    core = report["cores"][0]
    first = core["first"]
    assert (first["sample"], first["timestep"], first["layer"], first["neuron"]) == (b, t, 1, n)
    assert first["what"] == "membrane"
    assert (first["expected"], first["actual"]) == (int(good.mem[1][b, t, n]),
                                                    int(bad.mem[1][b, t, n]))
    text = format_report(core)
    assert "seed 99" in text and f"sample {b}, timestep {t}, layer 1, neuron {n}" in text
    assert core["mismatch_counts"]["layer0_state"] == 0
    wave = Path(report["waveform"])
    assert wave.suffix == ".vcd" and wave.stat().st_size > 0
    assert wave.parent == tmp_path / "build"
