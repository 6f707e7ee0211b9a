# amaranth: UnusedElaboratable=no
"""Network top handshake: start/busy/done, beats after a sample's last eot wait for the
next start, start while busy is ignored, each sample starts from the rest state."""

import numpy as np
import pytest

from qsnn_hw.golden import simulate
from qsnn_hw.hdl._util import unpack_lanes
from qsnn_hw.hdl.config import CoreConfig
from qsnn_hw.hdl.sim_util import run_simulation, wait_until
from qsnn_hw.hdl.top import NetworkTop
from qsnn_hw.testing import random_inputs, random_network
from qsnn_hw.verify.stimulus import sample_beats


@pytest.mark.sim
def test_handshake_and_gating():
    rng = np.random.default_rng(21)
    net = random_network(rng, sizes=[6, 5, 3], input_bits=1, state_bits=3)
    x = random_inputs(rng, net, 2, 3, 0.6)
    gold = simulate(net, x)
    top = NetworkTop(net, CoreConfig(lanes=2))
    beats = [[int(w) for w in sample_beats(net, x[b])] for b in range(2)]
    log = {}

    async def tb(ctx):
        ev, payload = top.events, top.events.payload.as_value()
        assert not ctx.get(top.busy)
        # input offered before start is not taken
        ctx.set(ev.valid, 1)
        ctx.set(payload, beats[0][0])
        for _ in range(5):
            await ctx.tick()
            assert not ctx.get(ev.ready)
        ctx.set(top.start, 1)
        await ctx.tick()
        ctx.set(top.start, 0)
        assert ctx.get(top.busy)
        for raw in beats[0]:
            ctx.set(payload, raw)
            await wait_until(ctx, ev.ready, limit=10_000)
        # the first beat of sample 2 is offered at once: it must wait for the next start
        ctx.set(payload, beats[1][0])
        ctx.set(top.results.ready, 0)
        (raw_res,) = await wait_until(ctx, top.results.valid, top.results.payload.as_value(),
                                      limit=10_000)
        for _ in range(3):  # the result is held while ready is low; start is ignored
            ctx.set(top.start, 1)
            assert ctx.get(top.results.valid) and not ctx.get(ev.ready)
            await ctx.tick()
        ctx.set(top.start, 0)
        ctx.set(top.results.ready, 1)
        assert ctx.get(top.done)
        await ctx.tick()
        assert not ctx.get(top.busy) and not ctx.get(top.done)
        log[0] = raw_res
        # sample 2 from the rest state
        ctx.set(top.start, 1)
        await ctx.tick()
        ctx.set(top.start, 0)
        for raw in beats[1]:
            ctx.set(payload, raw)
            await wait_until(ctx, ev.ready, limit=10_000)
        ctx.set(ev.valid, 0)
        (raw_res,) = await wait_until(ctx, top.results.valid, top.results.payload.as_value(),
                                      limit=10_000)
        log[1] = raw_res
        log["error"] = ctx.get(top.error)

    run_simulation(top, [tb], name="protocol")
    rl = top.results.payload.shape()
    pf, cf = rl["prediction"], rl["counts"]
    for b in range(2):
        pred = (log[b] >> pf.offset) & ((1 << pf.width) - 1)
        counts = unpack_lanes(log[b] >> cf.offset, top.count_bits, net.n_out, False)
        assert pred == gold.predictions[b]
        assert counts == list(gold.counts[b])
    assert not log["error"]
