"""The output FIFO (:class:`qsnn_hw.hdl.spike_fifo.SpikeFIFO`) against Amaranth's own
``SyncFIFOBuffered``, the reference it must match cycle for cycle: both driven with the
same seeded random writes and reads, every output compared in every cycle."""

import numpy as np
import pytest
from amaranth.hdl import Module
from amaranth.lib.fifo import SyncFIFOBuffered

from qsnn_hw.hdl.sim_util import run_simulation
from qsnn_hw.hdl.spike_fifo import SpikeFIFO

pytestmark = pytest.mark.filterwarnings("ignore::amaranth.hdl.UnusedElaboratable")


def _compare(depth: int, width: int, seed: int, cycles: int = 400) -> int:
    rng = np.random.default_rng(seed)
    # phases of write-heavy and read-heavy traffic, so the queue fills and empties
    p_write = np.repeat(rng.uniform(0, 1, cycles // 40 + 1), 40)[:cycles]
    p_read = np.repeat(rng.uniform(0, 1, cycles // 40 + 1), 40)[:cycles]
    top = Module()
    top.submodules.dut = dut = SpikeFIFO(width=width, depth=depth)
    top.submodules.ref = ref = SyncFIFOBuffered(width=width, depth=depth)
    seen = {"full": 0, "reads": 0}

    async def bench(ctx):
        for c in range(cycles):
            w_en = int(rng.random() < p_write[c])
            r_en = int(rng.random() < p_read[c])
            data = int(rng.integers(0, 1 << width))
            for f in (dut, ref):
                ctx.set(f.w_en, w_en & ctx.get(ref.w_rdy))
                ctx.set(f.w_data, data)
                ctx.set(f.r_en, r_en)
            got = [ctx.get(getattr(dut, n)) for n in ("w_rdy", "r_rdy")]
            want = [ctx.get(getattr(ref, n)) for n in ("w_rdy", "r_rdy")]
            assert got == want, f"cycle {c}: (w_rdy, r_rdy) {got} != {want}"
            if want[1]:
                assert ctx.get(dut.r_data) == ctx.get(ref.r_data), f"cycle {c}: r_data"
                seen["reads"] += r_en
            seen["full"] += not want[0]
            await ctx.tick()

    run_simulation(top, [bench], name="spike_fifo")
    return seen


@pytest.mark.parametrize("depth,width,seed", [(3, 1, 0), (4, 5, 1), (5, 3, 2),
                                              (17, 8, 3), (33, 13, 4)])
def test_matches_sync_fifo_buffered_cycle_for_cycle(depth, width, seed):
    seen = _compare(depth, width, seed, cycles=max(400, 40 * depth))
    assert seen["full"] > 0 and seen["reads"] > 20   # the queue filled and drained


def test_rejects_a_depth_below_three():
    with pytest.raises(ValueError, match="depth"):
        SpikeFIFO(width=4, depth=2)
