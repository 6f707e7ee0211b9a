"""Weight quantizers against independent computations (Python's round, hand examples)."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from qsnn_hw.quant import (
    WeightQuantizer,
    quantize_asymmetric,
    quantize_symmetric,
    quantize_ternary,
    ste_backward,
)

finite = st.floats(-100, 100, allow_nan=False, allow_infinity=False)
matrices = hnp.arrays(np.float64, hnp.array_shapes(min_dims=2, max_dims=2, max_side=6),
                      elements=finite)


@given(matrices, st.integers(2, 16), st.booleans())
def test_symmetric_matches_python_round(w, bits, per_channel):
    qt = quantize_symmetric(w, bits, per_channel)
    qmax = 2 ** (bits - 1) - 1
    for idx in np.ndindex(w.shape):
        row = w[idx[0]] if per_channel else w
        amax = float(np.max(np.abs(row)))
        scale = amax / qmax
        if scale < np.finfo(float).tiny:  # zero or subnormal range: documented scale 1
            scale = 1.0
        expect = max(-qmax, min(qmax, round(w[idx] / scale)))  # Python round: half to even
        assert qt.q[idx] == expect
    assert np.all(np.abs(qt.q) <= qmax)
    assert np.all(qt.zero_point == 0)
    np.testing.assert_allclose(qt.fake, qt.q * qt.scale)
    # Max-abs scale: the largest |w| lands exactly on +-qmax, error at most half a step.
    assert np.all(np.abs(qt.fake - w) <= qt.scale / 2 + 1e-12)


def test_symmetric_per_channel_shapes_and_extremes():
    w = np.array([[1.0, -2.0, 0.5], [0.0, 0.0, 0.0], [3.0, 0.1, -0.2]])
    qt = quantize_symmetric(w, 4, per_channel=True)
    assert qt.scale.shape == (3, 1)
    np.testing.assert_allclose(qt.scale.ravel(), [2 / 7, 1.0, 3 / 7])
    assert qt.q.tolist() == [[4, -7, 2], [0, 0, 0], [7, 0, 0]]
    assert qt.sparsity == pytest.approx(5 / 9)


@given(matrices, st.integers(2, 16), st.booleans())
def test_asymmetric_range_and_zero(w, bits, per_channel):
    qt = quantize_asymmetric(w, bits, per_channel)
    assert qt.q.min() >= 0 and qt.q.max() <= 2 ** bits - 1
    assert np.all(np.abs(qt.fake - w) <= qt.scale / 2 + 1e-9 * np.maximum(1, np.abs(w)))
    # Zero is exactly representable: a zero weight stays exactly zero.
    z = quantize_asymmetric(np.where(np.abs(w) < 1, 0.0, w), bits, per_channel)
    assert np.all(z.fake[np.abs(w) < 1] == 0)
    assert np.abs(qt.signed).max() <= 2 ** bits - 1


def test_asymmetric_hand_example():
    # min -1, max 3, 2 bits: scale = 4/3, zero point = round(0.75) = 1
    qt = quantize_asymmetric(np.array([[-1.0, 0.0, 1.0, 3.0]]), 2)
    assert float(qt.scale) == pytest.approx(4 / 3)
    assert int(qt.zero_point) == 1
    assert qt.q.tolist() == [[0, 1, 2, 3]]
    assert qt.signed.tolist() == [[-1, 0, 1, 2]]


def test_ternary_hand_example():
    w = np.array([[0.1, -0.5, 0.9, -0.05]])
    qt = quantize_ternary(w, threshold_ratio=0.7)
    # mean|w| = 0.3875, delta = 0.27125: keep -0.5 and 0.9, scale = mean(0.5, 0.9)
    assert qt.q.tolist() == [[0, -1, 1, 0]]
    assert float(qt.scale) == pytest.approx(0.7)
    assert qt.sparsity == 0.5
    np.testing.assert_allclose(qt.fake, [[0, -0.7, 0.7, 0]])


@given(matrices, st.floats(0, 2), st.booleans())
def test_ternary_rule(w, ratio, per_channel):
    qt = quantize_ternary(w, ratio, per_channel)
    assert set(np.unique(qt.q)) <= {-1, 0, 1}
    for idx in np.ndindex(w.shape):
        row = w[idx[0]] if per_channel else w
        delta = ratio * float(np.mean(np.abs(row)))
        expect = 0 if abs(w[idx]) < delta else int(np.sign(w[idx]))
        assert qt.q[idx] == expect
    assert qt.sparsity == pytest.approx(np.mean(qt.q == 0))


def test_ste_identity_and_masked():
    w = np.array([[-3.0, -0.5, 0.5, 3.0]])
    qt = quantize_symmetric(w, 4, scale=0.2)  # clip range +-1.4
    g = np.ones_like(w)
    assert ste_backward(g, qt).tolist() == [[1, 1, 1, 1]]
    assert ste_backward(g, qt, masked=True).tolist() == [[0, 1, 1, 0]]
    assert WeightQuantizer(bits=4, masked_ste=True).backward(g, qt).tolist() == [[0, 1, 1, 0]]


def test_fake_and_mask_are_those_of_the_weights_quantized():
    # fake and mask are computed when first read: the weights (and rows of zeros, -0.0
    # included) as they were quantized, not as the caller changed them since
    w = np.array([[-3.0, -0.5, 0.5, 3.0], [-0.0, 0.0, -0.0, -0.0]])
    for qt, fake, mask in [
            (quantize_symmetric(w, 4, scale=0.2), [[-1.4, -0.4, 0.4, 1.4], [0, 0, 0, 0]],
             [[0, 1, 1, 0], [1, 1, 1, 1]]),
            (quantize_symmetric(w, 4, per_channel=True), [[-3, -3 / 7, 3 / 7, 3], [0] * 4],
             [[1] * 4, [1] * 4]),
            # scale 6/3, zero point rint(1.5) = 2: w/2 + 2 = 0.5, 1.75, 2.25, 3.5 (over 3)
            (quantize_asymmetric(w, 2), [[-4, 0, 0, 2], [0] * 4], [[1, 1, 1, 0], [1] * 4]),
            (quantize_ternary(w), [[-3, 0, 0, 3], [0, 0, 0, 0]], [[1] * 4, [1] * 4])]:
        w[:] = 7.0
        np.testing.assert_allclose(qt.fake, fake)
        assert qt.mask.tolist() == np.array(mask, bool).tolist()
        w[:] = [[-3.0, -0.5, 0.5, 3.0], [-0.0, 0.0, -0.0, -0.0]]
    assert quantize_symmetric(w[1:], 8).scale == 1.0      # an all-zero tensor: scale 1


@pytest.mark.parametrize("bits", [1, 17, 0, -3])
def test_bits_out_of_range(bits):
    with pytest.raises(ValueError, match=r"bits must be in \[2, 16\]"):
        quantize_symmetric(np.ones((2, 2)), bits)
    with pytest.raises(ValueError, match=r"bits must be in \[2, 16\]"):
        WeightQuantizer(bits=bits)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_weights(bad):
    w = np.ones((2, 3))
    w[1, 2] = bad
    with pytest.raises(ValueError, match=r"weight contains NaN or inf \(first at index \(1, 2\)"):
        quantize_symmetric(w, 8)
    with pytest.raises(ValueError, match=r"weight contains NaN or inf \(first at index \(1, 2\)"):
        quantize_symmetric(w, 8, per_channel=True)
    with pytest.raises(ValueError, match="weight contains NaN or inf"):
        quantize_ternary(w)


def test_other_bad_arguments():
    with pytest.raises(ValueError, match="scheme must be one of"):
        WeightQuantizer(scheme="binary")
    with pytest.raises(ValueError, match="threshold_ratio"):
        quantize_ternary(np.ones((2, 2)), threshold_ratio=-1)
    with pytest.raises(ValueError, match="scale must be > 0"):
        quantize_symmetric(np.ones((2, 2)), 4, scale=0.0)
    with pytest.raises(ValueError, match="per_channel needs"):
        quantize_symmetric(np.ones(3), 4, per_channel=True)
