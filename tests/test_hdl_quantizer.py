# amaranth: UnusedElaboratable=no
"""State quantizer against the golden model's sorted-search quantizer."""

import numpy as np
import pytest

from qsnn_hw.contract import signed_width
from qsnn_hw.hdl.quantizer import CodeQuantizer
from qsnn_hw.hdl.sim_util import run_simulation
from qsnn_hw.quant.state import decision_boundaries, nearest_level
from qsnn_hw.testing import FAMILIES, random_levels

pytestmark = pytest.mark.filterwarnings("ignore::amaranth.hdl.UnusedElaboratable")


def test_validation():
    with pytest.raises(ValueError, match="2\\*\\*n - 1 entries"):
        CodeQuantizer(np.array([1, 2]), 8)
    with pytest.raises(ValueError, match="sorted"):
        CodeQuantizer(np.array([3, 2, 5]), 8)
    with pytest.raises(ValueError, match="value_width must be in"):
        CodeQuantizer(np.array([1]), 0)
    assert CodeQuantizer(np.arange(15), 8).latency == 1       # 4 bits: comparators
    assert CodeQuantizer(np.arange(31), 8).latency == 5       # 5 bits: pipelined search
    assert CodeQuantizer(np.arange(3), 8, pipelined=True).latency == 2


def _probe_values(levels, width):
    """Every boundary and its neighbours, the ends, beyond the ends and the width's extremes."""
    b = decision_boundaries(levels)
    vals = set()
    for x in list(b) + [levels[0], levels[-1]]:
        vals.update({int(x) - 1, int(x), int(x) + 1})
    lo, hi = -(1 << (width - 1)), (1 << (width - 1)) - 1
    vals.update({lo, hi, lo + 1, hi - 1, 0})
    return sorted(v for v in vals if lo <= v <= hi)


def _run_quantizer(levels, pipelined):
    width = signed_width(int(levels[0]), int(levels[-1])) + 2
    dut = CodeQuantizer(decision_boundaries(levels), width, pipelined=pipelined)
    values = _probe_values(levels, width)
    got = []

    async def tb(ctx):
        lat = dut.latency
        for i in range(len(values) + lat):
            if i < len(values):
                ctx.set(dut.value, values[i])
            if lat == 0:
                got.append(ctx.get(dut.code))   # combinational: settled before the edge
            await ctx.tick()
            if lat and i >= lat - 1 and len(got) < len(values):
                got.append(ctx.get(dut.code))

    run_simulation(dut, [tb], name="quantizer")
    want, _ = nearest_level(np.array(values, np.int64), levels)
    return values, got, [int(c) for c in want]


@pytest.mark.sim
@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("bits", [2, 4, 5, 8])
def test_matches_golden_quantizer(family, bits):
    rng = np.random.default_rng(bits * 10 + FAMILIES.index(family))
    levels, _ = random_levels(rng, family, bits, int(rng.integers(4, 200)))
    for pipelined in (False, True) if bits <= 5 else (None,):
        values, got, want = _run_quantizer(levels, pipelined)
        assert got == want, f"family={family} bits={bits} pipelined={pipelined}"


@pytest.mark.sim
def test_ties_go_low_and_saturate():
    levels = np.array([-6, -2, 2, 4])  # boundaries -4, 0, 3: -4 -> code 0, 0 -> 1, 3 -> 2
    for pipelined in (False, True):
        values, got, want = _run_quantizer(levels, pipelined)
        table = dict(zip(values, got, strict=True))
        assert table[-4] == 0 and table[-3] == 1
        assert table[0] == 1 and table[1] == 2
        assert table[3] == 2 and table[4] == 3
        assert table[min(values)] == 0 and table[max(values)] == 3
        assert got == want


@pytest.mark.sim
@pytest.mark.parametrize("pipelined", [False, True])
def test_above_threshold_matches_code_compare(pipelined):
    """``above`` (from the thermometer code, or the search's code) == ``code > t`` for
    every threshold code t, including -1 (always above) and the top one (never)."""
    rng = np.random.default_rng(31)
    levels, _ = random_levels(rng, "exponential", 3, 60)
    width = signed_width(int(levels[0]), int(levels[-1])) + 2
    values = _probe_values(levels, width)
    want_codes = [int(c) for c in nearest_level(np.array(values, np.int64), levels)[0]]
    for t in range(-1, len(levels)):
        dut = CodeQuantizer(decision_boundaries(levels), width, pipelined=pipelined,
                             threshold_code=t)
        got = []

        async def tb(ctx, dut=dut, got=got):
            lat = dut.latency
            for i in range(len(values) + lat):
                if i < len(values):
                    ctx.set(dut.value, values[i])
                await ctx.tick()
                if i >= lat - 1 and len(got) < len(values):
                    got.append(ctx.get(dut.above))

        run_simulation(dut, [tb], name="quantizer_above")
        assert got == [int(c > t) for c in want_codes], f"t={t} pipelined={pipelined}"
