# amaranth: UnusedElaboratable=no
"""Weight memory: layout m*G + g, P lanes per word, against direct indexing of W."""

import numpy as np
import pytest

from qsnn_hw.hdl.sim_util import run_simulation
from qsnn_hw.hdl.weight_memory import WeightMemory

# validation tests build components they never simulate
pytestmark = pytest.mark.filterwarnings("ignore::amaranth.hdl.UnusedElaboratable")


def test_validation():
    with pytest.raises(ValueError, match="lanes must be in"):
        WeightMemory(np.ones((2, 2), np.int64), 0)
    with pytest.raises(TypeError, match="lanes must be an integer"):
        WeightMemory(np.ones((2, 2), np.int64), 1.5)
    with pytest.raises(TypeError, match="weight must be an integer array"):
        WeightMemory(np.ones((2, 2)), 1)
    with pytest.raises(ValueError, match="2 dimension"):
        WeightMemory(np.ones(3, np.int64), 1)


@pytest.mark.sim
@pytest.mark.parametrize("n,m,p,bits", [(5, 3, 2, 2), (8, 4, 4, 8), (3, 2, 5, 16), (7, 1, 1, 4)])
def test_every_word(n, m, p, bits):
    rng = np.random.default_rng(n * 100 + p)
    hi = (1 << (bits - 1)) - 1
    w = rng.integers(-hi, hi + 1, size=(n, m))
    w[0, 0] = -hi  # the extremes are stored exactly
    w[-1, -1] = hi
    dut = WeightMemory(w, p)
    groups = -(-n // p)
    assert dut.depth == m * groups
    got = {}

    async def tb(ctx):
        for addr in range(dut.depth):
            ctx.set(dut.addr, addr)
            await ctx.tick()
            got[addr] = [ctx.get(dut.data[i]) for i in range(p)]

    run_simulation(dut, [tb], name="weight_memory")
    for mi in range(m):
        for g in range(groups):
            want = [int(w[g * p + i, mi]) if g * p + i < n else 0 for i in range(p)]
            assert got[mi * groups + g] == want, (mi, g)
    assert dut.bits == m * groups * p * dut.width
