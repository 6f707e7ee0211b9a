# amaranth: UnusedElaboratable=no
"""TaWQ layers (time-varying ternary weights) in the core (docs/hardware.md, "TaWQ
layers"): bit-exact against the golden model in the Amaranth simulator over the seeded
configurations of sim/tawq_regression.py, the cycle model, the core options a TaWQ
first layer refuses, the memory count and the wrong-T error flag.

Sizes: ``QSNN_TAWQ_CONFIGS`` (default 6) configurations from ``QSNN_TAWQ_SEED``
(default 0); replay one with ``QSNN_TAWQ_SEED=<seed> QSNN_TAWQ_CONFIGS=1``.
"""

import itertools
import os

import numpy as np
import pytest
from amaranth.sim import Simulator

from qsnn_hw.contract import IntLayer, IntNetwork
from qsnn_hw.golden import simulate
from qsnn_hw.hdl.config import CoreConfig
from qsnn_hw.hdl.cycles import schedule
from qsnn_hw.hdl.geometry import network_geometry
from qsnn_hw.hdl.top import NetworkTop
from qsnn_hw.testing import random_inputs, random_layer, random_tawq_layer
from qsnn_hw.verify.amaranth import run_core
from sim.regression import assert_bit_exact
from sim.tawq_regression import tawq_regression_case

CONFIGS = int(os.environ.get("QSNN_TAWQ_CONFIGS", "6"))
SEED0 = int(os.environ.get("QSNN_TAWQ_SEED", "0"))


@pytest.mark.sim
@pytest.mark.parametrize("seed", range(SEED0, SEED0 + CONFIGS))
def test_random_tawq_cores_bit_exact(seed):
    case = tawq_regression_case(seed)
    context = f"replay with QSNN_TAWQ_SEED={seed} QSNN_TAWQ_CONFIGS=1 ({case.describe})"
    run = run_core(case.net, case.x, case.config, rng=np.random.default_rng(seed),
                   gaps=case.valid_gap)
    assert_bit_exact(case.net, case.x, run, context)


def test_regression_covers_the_space():
    """The first 12 seeds reach dense and convolutional TaWQ layers, a TaWQ layer after
    a static-weight one and the reverse, direct input, lanes that do not divide the
    rows, T = 1 and T > 1, and 1- and many-code tables."""
    cases = [tawq_regression_case(s) for s in range(12)]
    layers = [(la, p) for c in cases for la, p in
              zip(c.net.layers, c.config.per_layer("lanes", len(c.net.layers)), strict=True)]
    tawq = [la for la, _ in layers if la.is_tawq]
    assert {la.is_conv for la in tawq} == {True, False}
    assert any(la.channels % p for la, p in layers if la.is_tawq)
    assert {c.net.input_bits > 1 for c in cases} == {True, False}
    assert {la.steps > 1 for la in tawq} == {True, False}
    assert {la.tawq_table.shape[0] == 1 for la in tawq} == {True, False}
    pairs = [(a.is_tawq, b.is_tawq) for c in cases for a, b in
             itertools.pairwise(c.net.layers)]
    assert (True, False) in pairs and (False, True) in pairs


@pytest.mark.sim
@pytest.mark.parametrize("seed", range(3))
def test_cycle_model_is_exact_for_tawq_cores(seed):
    """The cycle model (one more datapath stage, the rest unchanged) against the
    simulated core, cycle for cycle."""
    case = tawq_regression_case(seed + 20)
    config = case.config.replace(fifo_depth=128)
    run = run_core(case.net, case.x, config)
    gold = simulate(case.net, case.x)
    model = schedule(case.net, case.x, gold.spikes, network_geometry(case.net, config),
                     starts=run.start_cycles)
    for li in range(len(case.net.layers)):
        np.testing.assert_array_equal(run.step_cycles[li], model["step_ends"][li],
                                      err_msg=f"{case.describe}: layer {li}")
    np.testing.assert_array_equal(run.sample_cycles, model["sample_cycles"])


def _hand_net(mult=None, input_bits=4):
    """Two TaWQ rows over three inputs (docs/fixed-point.md's worked example's table),
    then a dense layer of 2."""
    table = np.array([[-1, -1, -1, -1], [0, -1, 0, -1], [0, 0, -1, 0], [0, 0, 0, 0],
                      [0, 0, 1, 0], [0, 1, 0, 1], [1, 1, 1, 1]])
    mult = np.array([[6, 12], [4, 6], [6, 6], [4, 6]]) if mult is None else mult
    t0 = IntLayer(np.array([[6, 5, 0], [4, 1, 6]]), threshold=4, beta_num=1, beta_shift=1,
                  mem_bits=10, bias=np.array([1, -2]), frac_bits=1, tawq_table=table,
                  tawq_mult=mult, tawq_shift=2)
    d1 = IntLayer(np.array([[1, 0], [1, 1]]), threshold=1, beta_num=1, beta_shift=1)
    return IntNetwork((t0, d1), input_bits=input_bits)


def test_static_input_is_refused_and_auto_streams():
    net = _hand_net()
    assert CoreConfig(input="auto").static_input(net) is False
    assert CoreConfig().layers(net)[0].static is False
    with pytest.raises(ValueError, match=r"input='static' .* layer 0 is a TaWQ layer"):
        CoreConfig(input="static").check(net)
    # a TaWQ layer after the first leaves a static first layer alone
    rng = np.random.default_rng(3)
    d0 = random_layer(rng, 3, 4, input_max=15)
    net2 = IntNetwork((d0, random_tawq_layer(rng, random_layer(rng, 4, 2), 3)), 4)
    assert CoreConfig(input="static").layers(net2)[0].static


def test_memory_bits_count_codes_table_and_multipliers():
    """Counted by hand: 3 inputs x 1 group x 2 lanes x 3-bit codes; the 7 x 4 table of
    2-bit entries; 4 timesteps x 1 channel group x 2 lanes x 4-bit multipliers (12 < 16);
    constant multipliers: one row."""
    g = network_geometry(_hand_net(), CoreConfig(lanes=2))[0]
    bits = g.memory_bits()
    # at most two +1 synapses per row and step (t = 1, 2), one -1: acc in [-15, 30]
    assert (g.weight_width, g.acc_width, g.mult_width) == (3, 6, 4)
    assert bits["weights"] == 3 * 2 * 3
    assert bits["tawq_table"] == 7 * 4 * 2
    assert bits["tawq_mult"] == 4 * 2 * 4
    const = _hand_net(mult=np.array([[6, 12]] * 4))
    g = network_geometry(const, CoreConfig(lanes=2))[0]
    assert g.mult_steps == 1 and g.memory_bits()["tawq_mult"] == 2 * 4
    # the datapath waits one more cycle (the product register)
    plain = network_geometry(_hand_net(), CoreConfig(lanes=2))[1]
    assert g.latency == plain.latency + 1


@pytest.mark.sim
@pytest.mark.parametrize("mult", ["varying", "constant"])
def test_hand_network_bit_exact(mult):
    """The hand network with ragged lanes (3 lanes for 2 rows), direct input, and its
    multipliers varying over t or the same at every t (one ROM row)."""
    net = _hand_net(mult=None if mult == "varying" else np.array([[6, 12]] * 4))
    x = random_inputs(np.random.default_rng(2), net, 3, 4, 0.7, static=False)
    run = run_core(net, x, CoreConfig(lanes=[3, 1]), rng=np.random.default_rng(0))
    gold = assert_bit_exact(net, x, run, mult)
    assert gold.spikes[0].any() and gold.mem[0].any()


@pytest.mark.sim
@pytest.mark.parametrize("steps", [3, 4, 5])
def test_wrong_timestep_count_sets_the_error_flag(steps):
    """A sample of 3 or 5 timesteps into a core built for T = 4: ``error`` rises (the
    golden model and the verify harness refuse such inputs; the core flags them); 4
    timesteps leave it low."""
    net = _hand_net()
    top = NetworkTop(net, CoreConfig())
    seen = {}

    async def bench(ctx):
        ev, res = top.events, top.results
        ctx.set(res.ready, 1)
        for _ in range(20):
            await ctx.tick()
        ctx.set(top.start, 1)
        await ctx.tick()
        ctx.set(top.start, 0)
        for t in range(steps):
            for m in range(3):
                ctx.set(ev.valid, 1)
                ctx.set(ev.payload, {"eot": 0, "last": 0, "value": 1 + m})
                await ctx.tick().until(ev.ready)
            ctx.set(ev.payload, {"eot": 1, "last": int(t == steps - 1), "value": 0})
            await ctx.tick().until(ev.ready)
        ctx.set(ev.valid, 0)
        await ctx.tick().until(top.done)
        seen["error"] = ctx.get(top.error)

    sim = Simulator(top)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run_until(1e-3)
    assert seen == {"error": int(steps != 4)}


def test_generate_writes_a_tawq_core_and_its_manifest(tmp_path):
    """``qsnn-hw generate`` on a TaWQ artifact: the Verilog, and the manifest's TaWQ
    entry and memory bits (counted by hand for the hand network at P = 2)."""
    import json

    from qsnn_hw.artifact import Artifact, save_artifact
    from qsnn_hw.cli import main
    model = save_artifact(tmp_path / "t.qsnn", Artifact(_hand_net()))
    assert main(["generate", str(model), "--out", str(tmp_path / "out"), "--lanes", "2",
                 "--name", "tq"]) == 0
    assert "module tq(" in (tmp_path / "out" / "tq.v").read_text()
    info = json.loads((tmp_path / "out" / "tq.json").read_text())
    la = info["layers"][0]
    assert la["tawq"] == {"timesteps": 4, "codes": 7, "code_bits": 3, "mult_bits": 4,
                          "mult_rows": 4, "shift": 2}
    assert la["static_input"] is False and "tawq" not in info["layers"][1]
    mb = la["memory_bits"]
    assert (mb["weights"], mb["tawq_table"], mb["tawq_mult"]) == (3 * 2 * 3, 7 * 4 * 2,
                                                                   4 * 2 * 4)
