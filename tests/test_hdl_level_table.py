# amaranth: UnusedElaboratable=no
"""Level table: every code reads back its level."""

import numpy as np
import pytest

from qsnn_hw.hdl.level_table import LevelTable
from qsnn_hw.hdl.sim_util import run_simulation


def test_validation():
    with pytest.raises(ValueError, match="2\\*\\*n entries"):
        LevelTable(np.array([1, 2, 3]))
    with pytest.raises(TypeError, match="levels must be an integer array"):
        LevelTable(np.array([0.5, 1.0]))


@pytest.mark.sim
def test_level_table():
    rng = np.random.default_rng(2)
    levels = np.sort(rng.choice(np.arange(-5000, 5000), 32, replace=False))
    dut = LevelTable(levels)
    got = []

    async def tb(ctx):
        for c in range(32):
            ctx.set(dut.code, c)
            got.append(ctx.get(dut.level))
            await ctx.tick()

    run_simulation(dut, [tb], name="level_table")
    assert got == [int(v) for v in levels]
