# amaranth: UnusedElaboratable=no
"""Layer engine on its own: spike words in (multi-bit masks, split and empty words, any
group order), spike words out, against the golden model's layer recursion."""

import numpy as np
import pytest

from qsnn_hw.golden import run_layer
from qsnn_hw.hdl.engine import LayerEngine
from qsnn_hw.hdl.sim_util import run_simulation, wait_until
from qsnn_hw.testing import random_layer

pytestmark = pytest.mark.filterwarnings("ignore::amaranth.hdl.UnusedElaboratable")


def test_validation():
    layer = random_layer(np.random.default_rng(0), 4, 3)
    with pytest.raises(ValueError, match="input_kind must be one of"):
        LayerEngine(layer, lanes=2, input_kind="bogus")
    with pytest.raises(ValueError, match="does not cover 4 inputs"):
        LayerEngine(layer, lanes=2, input_kind="words", upstream_groups=1, upstream_lanes=3)
    with pytest.raises(ValueError, match="input_bits >= 2"):
        LayerEngine(layer, lanes=2, input_kind="direct", input_bits=1)
    with pytest.raises(ValueError, match="fifo_depth must be in"):
        LayerEngine(layer, lanes=1, input_kind="spike", fifo_depth=2)


def words_of(x_t, up_lanes, rng):
    """Spike words of one timestep: random group order, some groups split in two words,
    some empty words (which the engine must skip)."""
    groups = -(-x_t.size // up_lanes)
    words = []
    for g in rng.permutation(groups):
        bits = [p for p in range(up_lanes) if g * up_lanes + p < x_t.size and
                x_t[g * up_lanes + p]]
        if rng.random() < 0.3 and len(bits) > 1:
            cut = int(rng.integers(1, len(bits)))
            parts = [bits[:cut], bits[cut:]]
        else:
            parts = [bits]
        for part in parts:
            if part or rng.random() < 0.2:
                words.append((int(g), sum(1 << p for p in part)))
    return words


@pytest.mark.sim
@pytest.mark.parametrize("seed", range(6))
def test_words_input_matches_golden(seed):
    rng = np.random.default_rng(50 + seed)
    m, n = int(rng.integers(1, 30)), int(rng.integers(1, 30))
    layer = random_layer(rng, m, n)
    up_lanes, lanes = int(rng.integers(1, 9)), int(rng.integers(1, 9))
    steps = 4
    x = (rng.random((1, steps, m)) < [0.0, 1.0, 0.3, 0.5, 0.1, 0.7][seed]).astype(np.int64)
    want, *_ = run_layer(layer, x)
    dut = LayerEngine(layer, lanes=lanes, input_kind="words",
                      upstream_groups=-(-m // up_lanes), upstream_lanes=up_lanes)
    lay = dut.events.payload.shape()
    out = dut.out_layout
    got = np.zeros((steps, n), np.uint8)

    def raw(group, mask, eot, last):
        return (group << lay["group"].offset) | (mask << lay["mask"].offset) | \
            (eot << lay["eot"].offset) | (last << lay["last"].offset)

    async def monitor(ctx):
        t = 0
        ctx.set(dut.spikes.ready, 1)
        async for _, _, valid, word in ctx.tick().sample(dut.spikes.valid,
                                                         dut.spikes.payload.as_value()):
            if not valid:
                continue
            if (word >> out["eot"].offset) & 1:
                t += 1
                continue
            g = (word >> out["group"].offset) & ((1 << out["group"].shape.width) - 1)
            mask = (word >> out["mask"].offset) & ((1 << lanes) - 1)
            for p in range(lanes):
                if mask >> p & 1:
                    got[t, g * lanes + p] = 1

    async def tb(ctx):
        ctx.set(dut.start, 1)
        await ctx.tick()
        ctx.set(dut.start, 0)
        ctx.set(dut.events.valid, 1)
        for t in range(steps):
            beats = [raw(g, mk, 0, 0) for g, mk in words_of(x[0, t], up_lanes, rng)]
            beats.append(raw(0, 0, 1, int(t == steps - 1)))
            for b in beats:
                ctx.set(dut.events.payload.as_value(), b)
                await wait_until(ctx, dut.events.ready, limit=10_000)
        ctx.set(dut.events.valid, 0)
        for _ in range(4 * (dut.groups + 10)):
            await ctx.tick()

    run_simulation(dut, [tb], [monitor], name="engine_words")
    np.testing.assert_array_equal(got, want[0], err_msg=f"seed={50 + seed}")
