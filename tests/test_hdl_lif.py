# amaranth: UnusedElaboratable=no
"""LIF datapath (one lane) against a scalar Python model of the contract equations,
with a brute-force nearest-level search (not the boundary table) for the quantizer."""

import numpy as np
import pytest

from qsnn_hw.contract import IntLayer
from qsnn_hw.hdl.lif import LIFDatapath
from qsnn_hw.hdl.sim_util import run_simulation
from qsnn_hw.testing import random_layer

pytestmark = pytest.mark.filterwarnings("ignore::amaranth.hdl.UnusedElaboratable")


def nearest_code(v, levels):
    """Nearest level by brute force, ties to the lower level."""
    best = 0
    for k, lv in enumerate(levels):
        if abs(int(lv) - v) < abs(int(levels[best]) - v):
            best = k
    return best


def lif_model(layer, state, fresh, acc, bias):
    if layer.quantized:
        lv = [int(v) for v in layer.levels]
        rest = nearest_code(0, lv)
        u = (lv[rest] if layer.rest == "level" else 0) if fresh else lv[state]
        z = not fresh and lv[state] > layer.threshold
    else:
        u = 0 if fresh else state
        z = not fresh and state > layer.threshold
    s = layer.beta_shift
    leak = (layer.beta_num * u + (1 << (s - 1))) >> s if s else u
    cur = acc * 2 ** layer.frac_bits + bias
    if layer.reset == "subtract":
        v = leak + cur - (layer.threshold if z else 0)
    elif layer.reset == "zero":
        v = 0 if z else leak + cur
    else:                                    # clear: the membrane goes, the input stays
        v = (0 if z else leak) + cur
    if layer.quantized:
        code = nearest_code(v, lv)
        return code, int(lv[code] > layer.threshold)
    u = min(max(v, layer.mem_lo), layer.mem_hi)
    return u, int(u > layer.threshold)


def _check(layer, input_max, rng, count=60, pipelined=None):
    w = layer.weight
    reach = int(np.maximum(np.where(w > 0, w, 0).sum(1), np.where(w < 0, -w, 0).sum(1)).max())
    reach *= input_max
    acc_width = layer.current_width(input_max)
    dut = LIFDatapath(layer, input_max=input_max, acc_width=acc_width, pipelined=pipelined)
    cases = []
    for i in range(count):
        if layer.quantized:
            state = int(rng.integers(0, layer.levels.size))
        else:
            state = int(rng.integers(layer.mem_lo, layer.mem_hi + 1))
        # every 7th case at the extremes of the current
        acc = [-reach, reach][i % 2] if i % 7 == 0 else int(rng.integers(-reach, reach + 1))
        bias = 0 if layer.bias is None else int(layer.bias[i % layer.n_out])
        cases.append((state, int(rng.integers(0, 4) == 0), acc, bias))
    if not layer.quantized:  # saturation at both ends
        cases += [(layer.mem_hi, 0, reach, 0), (layer.mem_lo, 0, -reach, 0)]
    got = []

    async def tb(ctx):
        lat = dut.latency
        for i in range(len(cases) + lat):
            if i < len(cases):
                state, fresh, acc, bias = cases[i]
                ctx.set(dut.state, state)
                ctx.set(dut.fresh, fresh)
                ctx.set(dut.acc, acc)
                if layer.bias is not None:
                    ctx.set(dut.bias, bias)
            if lat == 0:
                got.append((ctx.get(dut.new_state), ctx.get(dut.spike)))
            await ctx.tick()
            if lat and i >= lat - 1 and len(got) < len(cases):
                got.append((ctx.get(dut.new_state), ctx.get(dut.spike)))

    run_simulation(dut, [tb], name="lif")
    want = [lif_model(layer, *c) for c in cases]
    for c, g, wv in zip(cases, got, want, strict=True):
        assert g == wv, f"case (state, fresh, acc, bias)={c}: got {g}, want {wv}"


def test_validation():
    layer = IntLayer(np.ones((2, 2), np.int64), 3, 1, 1)
    with pytest.raises(TypeError, match="layer must be an IntLayer"):
        LIFDatapath("x", input_max=1, acc_width=4)
    with pytest.raises(ValueError, match="input_max must be in"):
        LIFDatapath(layer, input_max=0, acc_width=4)


@pytest.mark.sim
@pytest.mark.parametrize("seed", range(16))
def test_random_layers(seed):
    rng = np.random.default_rng(1000 + seed)
    input_max = int(rng.choice([1, 1, 3, 255]))
    state_bits = [None, 2, 3, 4, 5, 6, 7, 8][seed % 8]
    layer = random_layer(rng, 5, 3, input_max=input_max, state_bits=state_bits,
                         reset=["subtract", "zero", "clear"][seed % 3],
                         rest=["level", "zero"][seed // 8])
    _check(layer, input_max, rng, pipelined=None if seed % 3 else (state_bits or 0) > 2)


@pytest.mark.sim
def test_leak_rounds_half_up_on_negative_membranes():
    # beta = 1/2: leak(-3) = (-3 + 1) >> 1 = -1, leak(-1) = 0, leak(3) = 2
    layer = IntLayer(np.ones((1, 1), np.int64), 100, 1, 1, mem_bits=10)
    dut = LIFDatapath(layer, input_max=1, acc_width=4)
    got = []

    async def tb(ctx):
        for u in (-3, -1, 3, -511, 99):  # all <= threshold: no reset
            ctx.set(dut.state, u)
            ctx.set(dut.acc, 0)
            for _ in range(dut.latency):
                await ctx.tick()
            got.append(ctx.get(dut.new_state))

    run_simulation(dut, [tb], name="lif_leak")
    assert got == [-1, 0, 2, -255, 50]
