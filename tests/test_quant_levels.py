"""State level tables: snnTorch bit patterns, closed forms, properties, fixed-point mapping."""

import math
import re
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from qsnn_hw.quant import (
    custom_levels,
    exponential_levels,
    levels_to_fixed_point,
    snntorch_levels,
    uniform_levels,
)

# Written by snnTorch 1.0.0 itself (tests/fixtures/README.md).
REFERENCE = Path(__file__).resolve().parent / "fixtures" / "snntorch_state_quant_levels.txt"


def _reference_tables():
    """Parse tests/fixtures/snntorch_state_quant_levels.txt."""
    tables, cur = [], None
    for line in REFERENCE.read_text().splitlines():
        if line.startswith("# num_bits"):
            kv = dict(re.findall(r"(\w+)=(\S+)", line))
            cur = (dict(num_bits=int(kv["num_bits"]), uniform=kv["uniform"] == "True",
                        thr_centered=kv["thr_centered"] == "True",
                        threshold=float(kv["threshold"]), lower_limit=float(kv["lower_limit"]),
                        upper_limit=float(kv["upper_limit"])), [])
            tables.append(cur)
        elif line.strip() and not line.startswith("#"):
            cur[1].append(int(line.split()[2], 16))
    return tables


@pytest.mark.parametrize("params,bits", _reference_tables(),
                         ids=lambda p: str(p) if isinstance(p, dict) else "")
def test_snntorch_reference_bit_patterns(params, bits):
    got = snntorch_levels(**params)
    assert got.dtype == np.float32
    assert got.view(np.uint32).tolist() == bits


def test_reference_file_is_checked():
    # The fixture ships with the tests: every table is checked, none is skipped.
    assert len(_reference_tables()) == 9


@given(st.integers(1, 10), st.booleans(), st.booleans(), st.floats(0.05, 50),
       st.floats(0, 1), st.floats(0.01, 1))
def test_snntorch_general_parameters(bits, uniform, centred, thr, lower, upper):
    lv = snntorch_levels(bits, uniform, centred, thr, lower, upper)
    assert lv.shape == (2 ** bits,)
    lo, hi = -thr - thr * lower, thr + thr * upper
    pivot = thr if centred or uniform else 0.0
    if uniform or math.floor(2 ** bits * (pivot - lo) / (hi - lo)) > 0:
        assert lv[0] == np.float32(lo)
    else:  # snnTorch puts no level below the pivot when its share rounds to zero
        assert lv[0] > pivot
    assert abs(float(lv[-1]) - hi) <= 1e-5 * abs(hi)
    assert np.all(np.diff(lv.astype(np.float64)) >= 0)
    if uniform:  # float32 linspace: evenly spaced to float32 precision
        step = (hi - lo) / (2 ** bits - 1)
        np.testing.assert_allclose(np.diff(lv.astype(np.float64)), step, atol=4e-7 * (hi - lo))


@pytest.mark.parametrize("bits", [2, 4, 6])
def test_snntorch_exponential_scales_with_threshold(bits):
    # Every level is thr times the thr=1 table (to float32 precision): a real formula, not
    # a lookup of the reference rows.
    base = snntorch_levels(bits, uniform=False, threshold=1.0).astype(np.float64)
    for thr in (0.25, 3.0, 17.5):
        got = snntorch_levels(bits, uniform=False, threshold=thr).astype(np.float64)
        np.testing.assert_allclose(got, thr * base, rtol=1e-6, atol=1e-6 * thr)


def test_exponential_closed_form_two_bits():
    # a = ln 3 gives g(s) = (3**s - 1) / 2; 4 levels on [-1, 1.2]: L = 3 below, R = 1 above.
    lv = exponential_levels(2, threshold=1.0, a=math.log(3), b=1.0)
    expect = [-1.0, 2 - 3 ** (2 / 3), 2 - 3 ** (1 / 3), 1.2]
    np.testing.assert_allclose(lv, expect, rtol=1e-12)


def test_exponential_zero_steepness_is_piecewise_uniform():
    lv = exponential_levels(3, threshold=2.0, a=0.0, b=0.0, upper_limit=0.5)
    # 8 levels on [-2, 3]: L = floor(8 * 4 / 5) = 6 below with step 4/6, 2 above with step 1/2
    np.testing.assert_allclose(lv, [-2, -2 + 4 / 6, -2 + 8 / 6, 0, 2 / 3, 4 / 3, 2.5, 3.0],
                               atol=1e-12)


@given(st.integers(2, 8), st.floats(3, 8), st.floats(3, 8), st.floats(0.1, 10),
       st.floats(0, 0.5), st.floats(0.1, 0.5))
def test_exponential_denser_near_threshold_than_uniform(bits, a, b, thr, lower, upper):
    ex = exponential_levels(bits, thr, a, b, lower, upper)
    un = uniform_levels(bits, thr, lower, upper)
    assert ex[0] == un[0] and ex[-1] == un[-1]
    assert not np.any(ex == thr)

    def core_span(lv):
        """Width of the interval holding the half of the levels nearest the threshold."""
        near = lv[np.argsort(np.abs(lv - thr), kind="stable")[: lv.size // 2]]
        return near.max() - near.min()
    assert core_span(ex) < core_span(un)
    # Gaps grow monotonically away from the threshold on both sides.
    below, above = ex[ex < thr], ex[ex > thr]
    assert np.all(np.diff(np.diff(below)) <= 1e-12 * thr)
    assert np.all(np.diff(np.diff(np.concatenate([[thr], above]))) >= -1e-12 * thr)


@given(st.integers(1, 12), st.floats(0.1, 10), st.floats(0, 1), st.floats(0.01, 1))
def test_uniform_closed_form(bits, thr, lower, upper):
    lv = uniform_levels(bits, thr, lower, upper)
    n = 2 ** bits
    lo, hi = -thr * (1 + lower), thr * (1 + upper)
    np.testing.assert_allclose(lv, [lo + k * (hi - lo) / (n - 1) for k in range(n)],
                               rtol=1e-12, atol=1e-12 * thr)


def _min_frac_bits(levels, unit):
    """Brute force: the smallest f whose grid keeps the table strictly increasing."""
    f = 0
    while len({math.floor(x / unit * 2 ** f + 0.5) for x in levels}) < len(levels):
        f += 1
    return f


@given(st.integers(2, 8), st.floats(0.01, 2), st.sampled_from(["uniform", "exponential"]))
def test_fixed_point_collision_message(bits, unit, family):
    table = (uniform_levels if family == "uniform" else exponential_levels)(bits)
    need = _min_frac_bits(table, unit)
    q = levels_to_fixed_point(table, need, unit)
    assert q.dtype == np.int64 and np.all(np.diff(q) > 0)
    assert q.tolist() == [math.floor(x / unit * 2 ** need + 0.5) for x in table]
    if need > 0:
        with pytest.raises(ValueError, match=rf"needs {need} more fractional bit\(s\) "
                                             rf"\(frac_bits >= {need}\)"):
            levels_to_fixed_point(table, 0, unit)


@pytest.mark.parametrize("bad,msg", [
    ([0.0, 2.0, 1.0, 3.0], "strictly increasing: is not sorted at indices 1, 2"),
    ([0.0, 1.0, 1.0, 3.0], "strictly increasing: duplicates at indices 1, 2"),
    ([0.0, 1.0, 2.0], r"2\*\*k entries"),
    ([0.0, np.nan], "NaN or inf"),
    ([[0.0, 1.0]], "one-dimensional"),
])
def test_custom_levels_validation(bad, msg):
    with pytest.raises(ValueError, match=msg):
        custom_levels(bad)


@pytest.mark.parametrize("call,msg", [
    (lambda: uniform_levels(0), r"num_bits must be in \[1, 16\]"),
    (lambda: uniform_levels(4, threshold=0.0), r"threshold must be a finite number in \(0"),
    (lambda: uniform_levels(4, threshold=-1.0), "threshold must be"),
    (lambda: exponential_levels(4, a=-1.0), r"a must be a finite number in \[0"),
    (lambda: snntorch_levels(4, uniform=False, multiplier=1.5), "multiplier must be"),
])
def test_level_parameter_validation(call, msg):
    with pytest.raises(ValueError, match=msg):
        call()


def test_level_family_registry_is_the_one_list():
    from qsnn_hw import testing
    from qsnn_hw.quant import LEVEL_FAMILIES, level_family, make_levels
    from qsnn_hw.sweep.grid import FAMILIES as PAPER_FAMILIES
    from qsnn_hw.train.config import STATE_FAMILIES

    assert tuple(LEVEL_FAMILIES) == ("uniform", "exponential", "snntorch",
                                     "snntorch_exponential", "custom")
    assert STATE_FAMILIES == tuple(n for n, f in LEVEL_FAMILIES.items() if f.build)
    assert testing.FAMILIES == ("uniform", "exponential", "snntorch", "custom")
    assert set(PAPER_FAMILIES) <= set(STATE_FAMILIES)
    for name, spec in LEVEL_FAMILIES.items():
        assert spec.name == name and spec.description and "\n" not in spec.description
        if spec.build is not None:
            custom_levels(make_levels(name, 3, 1.5))
    assert np.array_equal(make_levels("snntorch_exponential", 4, 2.0),
                          snntorch_levels(4, uniform=False, threshold=2.0))
    with pytest.raises(ValueError, match="has no builder"):
        make_levels("custom", 4)
    with pytest.raises(ValueError, match="family must be one of"):
        level_family("log")


def test_cli_offers_the_registry_families():
    from qsnn_hw.commands.train import LAYER_FLAGS
    from qsnn_hw.train.config import STATE_FAMILIES

    parse = LAYER_FLAGS["--state-family"][1]
    assert [parse(n) for n in STATE_FAMILIES] == list(STATE_FAMILIES)
    help_text = LAYER_FLAGS["--state-family"][2]
    assert all(f"{n} (" in help_text for n in STATE_FAMILIES)
