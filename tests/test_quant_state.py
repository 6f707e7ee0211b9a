"""Nearest-level quantization against a brute-force search, plus hypothesis properties."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from qsnn_hw.quant import LevelQuantizer, nearest_level

int_tables = st.lists(st.integers(-10_000, 10_000), min_size=2, max_size=64, unique=True) \
    .map(sorted).filter(lambda t: (len(t) & (len(t) - 1)) == 0).map(np.array)
float_tables = st.lists(st.floats(-1e3, 1e3, width=32), min_size=2, max_size=64, unique=True) \
    .map(sorted).filter(lambda t: (len(t) & (len(t) - 1)) == 0).map(np.array)


def brute_force(v, levels):
    """Compare with every level: nearest, the lowest index on a tie."""
    dist = [abs(v - lv) for lv in levels]
    k = min(range(len(levels)), key=lambda i: (dist[i], i))
    return k


@given(int_tables, st.lists(st.integers(-12_000, 12_000), min_size=1, max_size=50))
def test_integer_matches_brute_force(levels, values):
    codes, vals = nearest_level(np.array(values), levels)
    expect = [brute_force(v, levels.tolist()) for v in values]
    assert codes.tolist() == expect
    assert vals.tolist() == [levels[k] for k in expect]


@given(float_tables, st.lists(st.floats(-2e3, 2e3), min_size=1, max_size=50))
def test_float_matches_brute_force(levels, values):
    codes, _ = nearest_level(np.array(values), levels)
    # Exact rational distances so the brute force has no rounding of its own.
    from fractions import Fraction
    lv = [Fraction(float(x)) for x in levels]
    assert codes.tolist() == [brute_force(Fraction(v), lv) for v in values]


@given(int_tables)
def test_ties_go_low_and_ends_saturate(levels):
    lv = levels.tolist()
    for k in range(len(lv) - 1):
        if (lv[k] + lv[k + 1]) % 2 == 0:
            mid = (lv[k] + lv[k + 1]) // 2
            assert nearest_level(np.array([mid]), levels)[0][0] == k
    codes, _ = nearest_level(np.array([lv[0] - 10**6, lv[0], lv[-1], lv[-1] + 10**6]), levels)
    assert codes.tolist() == [0, 0, len(lv) - 1, len(lv) - 1]


@given(float_tables, hnp.arrays(np.float64, 20, elements=st.floats(-2e3, 2e3)))
def test_idempotent_and_monotone(levels, values):
    q = LevelQuantizer(levels)
    codes, vals = q.quantize(values)
    codes2, vals2 = q.quantize(vals)
    assert np.array_equal(codes, codes2) and np.array_equal(vals, vals2)
    order = np.argsort(values, kind="stable")
    assert np.all(np.diff(codes[order]) >= 0)


def test_float_tie_hand_example():
    q = LevelQuantizer(np.array([0.0, 1.0, 3.0, 4.0]))
    assert q.quantize(np.array([0.5, 2.0, 3.5, 2.0001, -5, 9]))[0].tolist() == [0, 1, 2, 2, 0, 3]


def test_search_is_sorted_not_quadratic():
    # 2**16 levels and 2**18 values: a values x levels comparison would need 17e9 steps.
    q = LevelQuantizer.from_family("uniform", 16)
    v = np.linspace(-2, 2, 1 << 18)
    codes, _ = q.quantize(v)
    assert codes[0] == 0 and codes[-1] == (1 << 16) - 1


def test_ste_and_errors():
    q = LevelQuantizer.from_family("exponential", 4, threshold=2.0)
    assert q.num_bits == 4
    g = np.arange(3.0)
    assert q.backward(g) is g
    with pytest.raises(ValueError, match="NaN"):
        q(np.array([np.nan]))
    with pytest.raises(TypeError, match="integer values only"):
        nearest_level(np.array([0.5]), np.array([0, 1]))
