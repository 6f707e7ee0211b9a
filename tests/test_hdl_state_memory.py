# amaranth: UnusedElaboratable=no
"""State / lane memory: initial rest state, write then read, same-cycle transparency."""

import numpy as np
import pytest

from qsnn_hw.contract import IntLayer
from qsnn_hw.hdl.geometry import LayerGeometry
from qsnn_hw.hdl.sim_util import run_simulation
from qsnn_hw.hdl.state_memory import LaneMemory, StateMemory

# validation tests build components they never simulate
pytestmark = pytest.mark.filterwarnings("ignore::amaranth.hdl.UnusedElaboratable")


def _layer(levels=None, mem_bits=12, n=5):
    return IntLayer(np.ones((n, 2), np.int64), 3, 1, 1, levels=levels, mem_bits=mem_bits)


def test_validation():
    with pytest.raises(ValueError, match="width must be"):
        LaneMemory(width=0, is_signed=False, lanes=2, depth=2)
    with pytest.raises(ValueError, match="depth must be"):
        LaneMemory(width=4, is_signed=False, lanes=2, depth=0)
    with pytest.raises(ValueError, match="init must be 2 words of 2 lanes"):
        LaneMemory(width=4, is_signed=False, lanes=2, depth=2, init=[[0, 0]])


def test_state_shapes():
    ql = _layer(levels=np.array([-4, -1, 2, 7]))
    q = StateMemory(ql, LayerGeometry.of(ql, 2))
    assert (q.width, q.is_signed, q.depth) == (2, False, 3)
    # rest code = index of the level nearest 0: -1 (code 1)
    assert q.init == [[1, 1]] * 3
    ul = _layer(mem_bits=12)
    u = StateMemory(ul, LayerGeometry.of(ul, 4))
    assert (u.width, u.is_signed, u.depth) == (12, True, 2)


@pytest.mark.sim
def test_read_write_and_transparency():
    rng = np.random.default_rng(5)
    dut = LaneMemory(width=9, is_signed=True, lanes=3, depth=6)
    words = rng.integers(-256, 256, size=(6, 3))
    seen = {}

    async def tb(ctx):
        for a in range(6):  # initial contents are 0
            ctx.set(dut.r_addr, a)
            await ctx.tick()
            assert [ctx.get(dut.r_data[i]) for i in range(3)] == [0, 0, 0]
        ctx.set(dut.w_en, 1)
        for a in range(6):
            # write a while reading a in the same cycle: the read returns the new word
            ctx.set(dut.w_addr, a)
            ctx.set(dut.r_addr, a)
            for i in range(3):
                ctx.set(dut.w_data[i], int(words[a, i]))
            await ctx.tick()
            seen[a] = [ctx.get(dut.r_data[i]) for i in range(3)]
        ctx.set(dut.w_en, 0)
        for a in reversed(range(6)):
            ctx.set(dut.r_addr, a)
            await ctx.tick()
            assert [ctx.get(dut.r_data[i]) for i in range(3)] == list(words[a])

    run_simulation(dut, [tb], name="lane_memory")
    for a in range(6):
        assert seen[a] == list(words[a])
