# amaranth: UnusedElaboratable=no
"""The layer engine's parts on their own: the dense addressing's issue sequence and the
front ends' events and error flags."""

import numpy as np
import pytest
from amaranth.hdl import Elaboratable, Module

from qsnn_hw.hdl.addressing import DenseAddressing
from qsnn_hw.hdl.frontend import DirectFrontEnd, SpikeFrontEnd, WordFrontEnd, make_frontend
from qsnn_hw.hdl.geometry import LayerGeometry
from qsnn_hw.hdl.sim_util import run_simulation, wait_until
from qsnn_hw.testing import random_layer

pytestmark = pytest.mark.filterwarnings("ignore::amaranth.hdl.UnusedElaboratable")


@pytest.mark.sim
@pytest.mark.parametrize("m,n,lanes", [(3, 2, 2), (4, 5, 2), (5, 7, 2), (3, 9, 2), (2, 8, 8)])
def test_dense_addressing_sequence(m, n, lanes):
    """Events back to back: every event m issues (m*G + g, g, x) for g = 0..G-1, one pair
    per cycle, with no bubble between events."""
    geom = LayerGeometry.of(random_layer(np.random.default_rng(m * n), m, n), lanes,
                            input_bits=4)
    G = geom.groups
    dut = DenseAddressing(geom)
    assert dut.reuse_distance == G
    events = [(2 % m, 5), (0, 1), (m - 1, 15), (1, 3)]
    want = [(mi * G + g, g, x) for mi, x in events for g in range(G)]
    got, valid = [], []

    async def tb(ctx):
        todo = list(events)
        for _ in range(len(want) + 4):
            load = bool(todo) and ctx.get(dut.free)
            ctx.set(dut.load, load)
            if load:
                mi, x = todo.pop(0)
                ctx.set(dut.m, mi)
                ctx.set(dut.x, x)
            await ctx.tick()
            v = ctx.get(dut.issue.valid)
            valid.append(v)
            if v:
                got.append((ctx.get(dut.issue.addr), ctx.get(dut.issue.group),
                            ctx.get(dut.issue.x)))

    run_simulation(dut, [tb], name="dense_addressing")
    assert got == want
    assert valid == [1] * len(want) + [0] * 4   # back to back, then idle


class Sink(Elaboratable):
    """A front end whose events are all taken as soon as they are valid."""

    def __init__(self, fe):
        self.fe = fe

    def elaborate(self, platform):
        m = Module()
        m.submodules.fe = self.fe
        m.d.comb += self.fe.event.take.eq(self.fe.event.valid)
        return m


def run_frontend(fe, beats):
    """Send ``beats`` (dicts of payload fields); returns the taken events (m, x, eot,
    last) and the error flag after each beat."""
    events, errors = [], []
    lay = fe.in_layout

    def raw(beat):
        return sum(v << lay[k].offset for k, v in beat.items())

    async def tb(ctx):
        for beat in beats:
            ctx.set(fe.events.payload.as_value(), raw(beat))
            ctx.set(fe.events.valid, 1)
            await wait_until(ctx, fe.events.ready, limit=100)
            ctx.set(fe.events.valid, 0)
            for _ in range(6):   # let it drain (split words take a cycle per bit)
                await ctx.tick()
            errors.append(ctx.get(fe.error))

    async def monitor(ctx):
        ev = fe.event
        async for _, _, valid, mi, x, eot, last in ctx.tick().sample(
                ev.valid, ev.m, ev.x, ev.eot, ev.last):
            if valid:
                events.append((mi, x, eot, last))

    run_simulation(Sink(fe), [tb], [monitor], name="frontend")
    return events, errors


@pytest.mark.sim
def test_spike_frontend_drops_bad_beats():
    fe = SpikeFrontEnd(5)
    beats = [dict(addr=2), dict(addr=7), dict(addr=4), dict(addr=1, last=1),
             dict(eot=1, last=1)]
    events, errors = run_frontend(fe, beats)
    assert events == [(2, 1, 0, 0), (4, 1, 0, 0), (0, 1, 1, 1)]
    assert errors == [0, 1, 1, 1, 1]   # address >= M, then sticky


@pytest.mark.sim
def test_spike_frontend_last_on_a_spike_is_an_error():
    events, errors = run_frontend(SpikeFrontEnd(5), [dict(addr=3), dict(addr=1, last=1)])
    assert events == [(3, 1, 0, 0)]
    assert errors == [0, 1]


@pytest.mark.sim
def test_direct_frontend_counts_values():
    fe = DirectFrontEnd(3, 4)
    beats = [dict(value=5), dict(value=6), dict(value=7), dict(eot=1),
             dict(value=9), dict(eot=1)]
    events, errors = run_frontend(fe, beats)
    assert [e[0] for e in events if not e[2]] == [0, 1, 2, 0]
    assert [e[1:] for e in events] == [(5, 0, 0), (6, 0, 0), (7, 0, 0), (0, 1, 0),
                                       (9, 0, 0), (0, 1, 0)]
    assert errors == [0, 0, 0, 0, 0, 1]   # the second timestep closed after 1 of 3 values


@pytest.mark.sim
def test_direct_frontend_extra_value_is_dropped():
    beats = [dict(value=1), dict(value=2), dict(value=3), dict(eot=1)]
    events, errors = run_frontend(DirectFrontEnd(2, 2), beats)
    assert [e[1:3] for e in events] == [(1, 0), (2, 0), (0, 1)]   # the third value dropped
    assert errors == [0, 0, 1, 1]


@pytest.mark.sim
def test_word_frontend_splits_words():
    fe = WordFrontEnd(10, 3, 4)
    beats = [dict(group=1, mask=0b1011), dict(group=0, mask=0), dict(group=2, mask=0b0010),
             dict(eot=1, last=1)]
    events, errors = run_frontend(fe, beats)
    assert [(mi, eot, last) for mi, _, eot, last in events] == \
        [(4, 0, 0), (5, 0, 0), (7, 0, 0), (9, 0, 0), (0, 1, 1)]
    assert errors == [0, 0, 0, 0]   # an empty word is dropped, not an error


def test_make_frontend_validation():
    with pytest.raises(ValueError, match="input_kind must be one of"):
        make_frontend("bogus", 4)
    with pytest.raises(ValueError, match="does not cover 9 inputs"):
        make_frontend("words", 9, upstream_groups=2, upstream_lanes=4)
    with pytest.raises(ValueError, match="input_bits >= 2"):
        make_frontend("direct", 4, input_bits=1)
    assert isinstance(make_frontend("spike", 4), SpikeFrontEnd)
