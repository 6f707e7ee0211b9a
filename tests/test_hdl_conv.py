# amaranth: UnusedElaboratable=no
"""The convolution engine (qsnn_hw.hdl.conv and the conv parts of the update) against
the golden model: its addressing against the convolution written out as its definition
(every output neuron, every kernel tap), whole networks bit-exact in Amaranth's
simulator over seeded random convolutions (kernel, stride, padding, channels, pooling,
input density, lanes not dividing the channel count; conv -> conv, conv -> dense,
direct multi-bit input into a convolution; the core configurations synth builds), the
extremes, and ``qsnn-hw generate`` on a convolutional artifact.

The sweep size comes from QSNN_CONV_CONFIGS (default 24); a failure prints the seed:
``QSNN_CONV_SEED=<seed> QSNN_CONV_CONFIGS=1 pytest tests/test_hdl_conv.py``.
"""

import json
import os
from dataclasses import replace

import numpy as np
import pytest

from qsnn_hw.artifact import Artifact, save_artifact
from qsnn_hw.cli import main
from qsnn_hw.contract import IntLayer, IntNetwork
from qsnn_hw.hdl.config import CoreConfig
from qsnn_hw.hdl.conv import ConvAddressing
from qsnn_hw.hdl.engine import LayerEngine
from qsnn_hw.hdl.geometry import LayerGeometry, layer_groups
from qsnn_hw.hdl.sim_util import run_simulation
from qsnn_hw.testing import (
    input_schedule,
    random_conv_layer,
    random_conv_network,
    random_inputs,
    random_layer,
    schedule,
)
from qsnn_hw.verify.amaranth import run_core
from sim.regression import assert_bit_exact

pytestmark = pytest.mark.filterwarnings("ignore::amaranth.hdl.UnusedElaboratable")

CONFIGS = int(os.environ.get("QSNN_CONV_CONFIGS", "24"))
SEED0 = int(os.environ.get("QSNN_CONV_SEED", "0"))


# ---- the addressing against the definition ------------------------------------------------
def reference_pairs(layer: IntLayer, lanes: int, in_order) -> list[list[tuple[int, int]]]:
    """Per hardware input index, the (weight address, accumulator group) pairs its event
    must add, from the convolution's definition: every neuron (o, oy, ox) and kernel tap
    (c, ky, kx) reads input (c, oy*s + ky - p, ox*s + kx - p); P lanes over channels.
    Sorted in the documented issue order (ky, kx, cg ascending)."""
    c_in, h, w = layer.in_shape
    kh, kw = layer.kernel
    _, ho, wo = layer.conv_shape
    s, p = layer.stride, layer.padding
    cg_n = -(-layer.channels // lanes)
    per_input: dict[int, list] = {}
    for oy in range(ho):
        for ox in range(wo):
            for c in range(c_in):
                for ky in range(kh):
                    for kx in range(kw):
                        iy, ix = oy * s + ky - p, ox * s + kx - p
                        if 0 <= iy < h and 0 <= ix < w:
                            ci = (c * h + iy) * w + ix
                            tap = (c * kh + ky) * kw + kx
                            for cg in range(cg_n):
                                per_input.setdefault(ci, []).append(
                                    ((ky, kx, cg), tap * cg_n + cg, (oy * wo + ox) * cg_n + cg))
    return [[(a, g) for _, a, g in sorted(per_input.get(int(ci), []))] if ci >= 0 else []
            for ci in in_order]


def run_addressing(geom: LayerGeometry, events: list[int]):
    """Load ``events`` into a ConvAddressing as fast as ``free`` allows; returns the
    issued (addr, group) pairs per event and the cycle of every issue."""
    dut = ConvAddressing(geom)
    issued, cycles = [], []

    async def tb(ctx):
        k, cycle, owner = 0, 0, []
        while k < len(events) or cycle < 3 or ctx.get(dut.issue.valid):
            load = k < len(events) and ctx.get(dut.free)
            ctx.set(dut.load, load)
            if load:
                ctx.set(dut.m, events[k])
            if ctx.get(dut.issue.valid):
                issued.append((owner[-1], ctx.get(dut.issue.addr), ctx.get(dut.issue.group)))
                cycles.append(cycle)
            await ctx.tick()
            if load:
                owner.append(k)
                k += 1
            cycle += 1
            assert cycle < 100_000
        ctx.set(dut.load, 0)

    run_simulation(dut, [tb], name="conv_addressing")
    per_event = [[] for _ in events]
    for k, a, g in issued:
        per_event[k].append((a, g))
    return per_event, cycles


@pytest.mark.sim
@pytest.mark.parametrize("seed", range(8))
def test_addressing_issues_every_valid_tap_once_back_to_back(seed):
    rng = np.random.default_rng(900 + seed)
    shape = (int(rng.integers(1, 4)), int(rng.integers(2, 8)), int(rng.integers(2, 8)))
    layer = random_conv_layer(rng, shape, stride=[1, 2][seed % 2], state_bits=4)
    lanes = int(rng.integers(1, 5))
    geom = LayerGeometry.of(layer, lanes)
    want = reference_pairs(layer, lanes, geom.in_order())
    events = [int(m) for m in rng.permutation(geom.n_in)]
    got, cycles = run_addressing(geom, events)
    for k, m in enumerate(events):
        assert got[k] == want[m], f"seed {900 + seed}: event {m} (layer {shape}, " \
                                  f"kernel {layer.kernel}, stride {layer.stride}, padding " \
                                  f"{layer.padding}, P={lanes})"
    # no bubble: an event with n pairs costs n cycles, one without any costs one
    busy = sum(max(1, len(want[m])) for m in events)
    assert cycles[-1] - cycles[0] + 1 <= busy
    assert len(cycles) == sum(len(want[m]) for m in events)
    np.testing.assert_array_equal(geom.event_issues(), [len(w) for w in want])


def test_validation():
    rng = np.random.default_rng(3)
    dense = random_layer(rng, 6, 4)
    with pytest.raises(ValueError, match="needs the geometry of a convolutional layer"):
        ConvAddressing(LayerGeometry.of(dense, 2))
    conv = random_conv_layer(rng, (1, 5, 5), channels=3, kernel=3, padding=0, pool=1)
    with pytest.raises(ValueError, match="upstream .* needs input_kind='words'"):
        LayerEngine(conv, lanes=2, input_kind="spike",
                    upstream=LayerGeometry.of(conv, 2))
    net = IntNetwork((conv,))
    # 3 x 3 positions x ceil(3 / 2) channel groups
    with pytest.raises(ValueError, match=r"fifo_depth of layer 0 must be >= 19 .*OG = 18"):
        CoreConfig(lanes=2, fifo_depth=9).check(net)
    assert layer_groups(conv, 2) == (18, 18)
    pooled = random_conv_layer(rng, (1, 7, 6), channels=3, kernel=2, stride=1, padding=0,
                               pool=2)   # 6 x 5 neurons per channel, 3 x 2 windows
    assert layer_groups(pooled, 2) == (6 * 5 * 2, 3 * 2 * 2)


# ---- whole networks, bit-exact --------------------------------------------------------
# core configurations by seed % 4 (coprime with the 3-seed density classes)
CORE_KINDS = [{}, {"fifo_depth": "min"}, {"weight_storage": "ram"},
              {"quantizer": "pipelined"}]
# network shapes by seed % 5: conv -> conv -> dense, conv -> dense, direct input into a
# conv (-> dense), a pooled conv alone, conv -> conv
SHAPES = [(2, [None]), (1, [None]), (1, [None]), (1, []), (2, [])]


def conv_case(seed: int):
    rng = np.random.default_rng([seed, 1313])
    convs, dense = SHAPES[seed % len(SHAPES)]
    dense = [int(rng.integers(2, 12)) for _ in dense]
    input_bits = [2, 4, 8][seed % 3] if seed % len(SHAPES) == 2 else 1
    in_shape = (int(rng.integers(1, 4)), int(rng.integers(3, 9)), int(rng.integers(3, 9)))
    cat = schedule(seed)
    net = random_conv_network(rng, in_shape=in_shape, convs=convs, dense=dense,
                              input_bits=input_bits, **cat)
    if seed % 4 != 3:   # mostly excitatory weights, so the later layers see spikes too
        net = IntNetwork(tuple(
            replace(la, weight=np.where(rng.random(la.weight.shape) < 0.8,
                                        np.abs(la.weight), -np.abs(la.weight)))
            for la in net.layers), net.input_bits)
    density = [0.0 if seed % 6 == 0 else float(rng.uniform(0.3, 0.8)), 1.0,
               float(rng.uniform(0.1, 0.6))][seed % 3]
    modes = input_schedule(seed)
    static = CoreConfig(**modes).static_input(net)
    x = random_inputs(rng, net, 2, int(rng.integers(1, 5)), density, static=static)
    # lanes 1..5 over 1..6 channels: often not a divisor (padding lanes masked)
    lanes = [int(rng.integers(1, 6)) for _ in net.layers]
    cfg = CoreConfig(lanes=lanes, **CORE_KINDS[seed % len(CORE_KINDS)], **modes)
    return net, x, cfg, rng


def describe(net, cfg) -> str:
    parts = []
    for la in net.layers:
        if la.is_conv:
            parts.append(f"{la.channels}c{la.kernel[0]}x{la.kernel[1]}/s{la.stride}"
                         f"p{la.padding}pool{la.pool} on {la.in_shape}")
        else:
            parts.append(f"dense {la.n_out}")
    return f"{' -> '.join(parts)}; input_bits {net.input_bits}; {cfg.describe()}"


@pytest.mark.sim
@pytest.mark.parametrize("seed", range(SEED0, SEED0 + CONFIGS))
def test_random_conv_networks_bit_exact(seed):
    net, x, cfg, rng = conv_case(seed)
    context = f"replay with QSNN_CONV_SEED={seed} QSNN_CONV_CONFIGS=1 ({describe(net, cfg)})"
    run = run_core(net, x, cfg, rng=rng, gaps=0.2 if seed % 2 else 0.0)
    assert_bit_exact(net, x, run, context)


def test_sweep_covers_the_space():
    """The sweep's first 24 seeds reach every network shape, pooling, stride 2, padding,
    lanes that do not divide the channels, direct input and every core kind."""
    seen = {"pool": False, "stride2": False, "padding": False, "ragged": False,
            "direct": False, "conv_conv": False, "conv_dense": False}
    for seed in range(24):
        net, _, cfg, _ = conv_case(seed)
        lanes = cfg.per_layer("lanes", len(net.layers))
        convs = [la for la in net.layers if la.is_conv]
        seen["pool"] |= any(la.pool > 1 for la in convs)
        seen["stride2"] |= any(la.stride == 2 for la in convs)
        seen["padding"] |= any(la.padding > 0 for la in convs)
        seen["ragged"] |= any(la.is_conv and la.channels % p for la, p in
                              zip(net.layers, lanes, strict=True))
        seen["direct"] |= net.input_bits > 1
        seen["conv_conv"] |= len(convs) == 2
        seen["conv_dense"] |= len(convs) < len(net.layers)
    assert all(seen.values()), seen


@pytest.mark.sim
@pytest.mark.parametrize("seed", range(3))
def test_dense_then_conv_bit_exact(seed):
    """A convolution fed by a dense layer reads the dense layer's outputs as (C, H, W)
    in the contract's order (the dense spike words' order), with lanes on both sides
    that do not divide the sizes."""
    rng = np.random.default_rng(620 + seed)
    shape = (2, 4, 5)
    d = random_layer(rng, 12, int(np.prod(shape)), state_bits=[None, 3, 6][seed])
    d = replace(d, weight=np.abs(d.weight))
    c = random_conv_layer(rng, shape, channels=3, kernel=[2, 3, 1][seed], stride=seed % 2 + 1,
                          pool=[2, 1, 1][seed], state_bits=[4, None, 2][seed])
    c = replace(c, weight=np.where(rng.random(c.weight.shape) < 0.8, np.abs(c.weight),
                                   -np.abs(c.weight)))
    net = IntNetwork((d, c, random_layer(rng, c.n_out, 4)))
    x = random_inputs(rng, net, 2, 4, 0.6)
    cfg = CoreConfig(lanes=[3, 2, 3])
    gold = assert_bit_exact(net, x, run_core(net, x, cfg, rng=rng), f"seed {620 + seed}")
    assert gold.spikes[0].any() and gold.spikes[1].any()


def _extreme_conv_net(sign: int, state_bits, reset, input_bits):
    """Every weight at its largest magnitude: (2, 7, 7) -> 5 channels of 3x3, padding 1,
    pool 2 (a leftover row and column) -> 4 channels of 2x2, stride 2 -> dense 3."""
    rng = np.random.default_rng(11)
    c1 = random_conv_layer(rng, (2, 7, 7), input_max=(1 << input_bits) - 1, channels=5,
                           kernel=3, stride=1, padding=1, pool=2, weight_bits=16,
                           state_bits=state_bits, reset=reset, family="exponential",
                           bias=True)
    c2 = random_conv_layer(rng, c1.out_shape, channels=4, kernel=2, stride=2, padding=0,
                           pool=1, weight_bits=16, state_bits=state_bits, reset=reset,
                           family="exponential", bias=True)
    d = random_layer(rng, c2.n_out, 3, weight_bits=16, state_bits=state_bits, reset=reset,
                     family="exponential")
    layers = []
    for la in (c1, c2, d):
        w = np.full(la.weight.shape, sign * int(np.abs(la.weight).max()), np.int64)
        layers.append(IntLayer(w, la.threshold, la.beta_num, la.beta_shift, la.reset,
                               la.bias, la.frac_bits, la.levels, la.mem_bits,
                               in_shape=la.in_shape, stride=la.stride, padding=la.padding,
                               pool=la.pool))
    return IntNetwork(tuple(layers), input_bits)


@pytest.mark.sim
@pytest.mark.parametrize("sign", [1, -1])
@pytest.mark.parametrize("state_bits,reset,input_bits",
                         [(None, "subtract", 1), (3, "zero", 8)])
def test_extremes_all_weights_at_max_every_input_every_step(sign, state_bits, reset,
                                                            input_bits):
    net = _extreme_conv_net(sign, state_bits, reset, input_bits)
    x = np.full((1, 4, net.n_in), (1 << input_bits) - 1, np.int64)
    cfg = CoreConfig(lanes=[2, 3, 2], input="streamed")
    gold = assert_bit_exact(net, x, run_core(net, x, cfg), f"sign {sign}, {state_bits}")
    if sign > 0:   # every window of the first layer spikes at some point
        assert gold.spikes[0].any()


# ---- generate --------------------------------------------------------------------------
def test_generate_accepts_a_conv_artifact(tmp_path):
    rng = np.random.default_rng(5)
    net = random_conv_network(rng, in_shape=(1, 6, 6), convs=2, dense=[4], input_bits=1,
                              state_bits=3)
    art = tmp_path / "conv.qsnn"
    save_artifact(art, Artifact(net))
    out = tmp_path / "out"
    assert main(["generate", str(art), "--out", str(out), "--lanes", "2",
                 "--name", "conv_core"]) == 0
    assert "module conv_core(" in (out / "conv_core.v").read_text()
    info = json.loads((out / "conv_core.json").read_text())
    for la, layer in zip(info["layers"], net.layers, strict=True):
        g, og = layer_groups(layer, 2)
        assert la["groups"] == g
        if layer.is_conv:
            assert la["conv"]["out_groups"] == og
            assert la["memory_bits"]["biases"] == (-(-layer.channels // 2) * 2
                                                  * la["widths"]["bias"])
