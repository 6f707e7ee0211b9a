"""Weight quantizers: symmetric narrow-range, asymmetric (zero-point), ternary.

Every quantizer returns a :class:`QuantizedTensor` holding both the integers and scale
(for export) and the fake-quantized floats (for training). Rounding of ``w / scale`` is
round-half-to-even (``numpy.rint``), as in PyTorch and Brevitas. The backward pass is the
straight-through estimator (:func:`ste_backward`).

Weight matrices are ``(out_features, in_features)``; "per channel" means one scale per
output neuron (row).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from .._check import check_choice, check_finite_array, check_float, check_int

WEIGHT_SCHEMES = ("symmetric", "asymmetric", "ternary")
MIN_WEIGHT_BITS = 2
MAX_WEIGHT_BITS = 16


@dataclass(frozen=True, eq=False)
class QuantizedTensor:
    """Result of quantizing a weight tensor.

    ``q``: integer codes (int64); ``scale`` (float64) and ``zero_point`` (int64) broadcast
    against ``q`` (shape ``()`` per tensor, ``(rows, 1)`` per channel); real value =
    ``(q - zero_point) * scale`` = ``fake``. ``mask``: True where the input lay inside
    the representable range (used by the masked straight-through estimator). Both are
    computed when first read (an export reads neither), ``mask`` by ``mask_of``.
    """

    q: np.ndarray
    scale: np.ndarray
    zero_point: np.ndarray
    scheme: str
    bits: int
    mask_of: Callable[[], np.ndarray] = field(repr=False)

    @cached_property
    def fake(self) -> np.ndarray:
        """The real values ``(q - zero_point) * scale`` (float64)."""
        return self.signed * self.scale

    @cached_property
    def mask(self) -> np.ndarray:
        return self.mask_of()

    @property
    def signed(self) -> np.ndarray:
        """The deployed signed integer weights ``q - zero_point`` (int64)."""
        return self.q - self.zero_point

    @property
    def sparsity(self) -> float:
        """Fraction of weights that are exactly zero after quantization."""
        return float(np.mean(self.signed == 0)) if self.q.size else 0.0


def _prepare(w, per_channel: bool, check: bool = True) -> tuple[np.ndarray, int | None, bool]:
    """``(w as float64, the reduction axes of a scale, per_channel)``; ``check``: reject
    NaN and inf here (else the caller does)."""
    w = check_finite_array("weight", w) if check else np.asarray(w, dtype=np.float64)
    if per_channel and w.ndim < 2:
        raise ValueError(f"per_channel needs a weight with >= 2 dimensions, got shape {w.shape}")
    axis = tuple(range(1, w.ndim)) if per_channel else None
    return w, axis, per_channel


def _reduce(x: np.ndarray, fn, axis) -> np.ndarray:
    return fn(x, axis=axis, keepdims=axis is not None) if x.size else np.zeros(())


def _safe_scale(scale: np.ndarray) -> np.ndarray:
    """Scale 1 where the data range is zero or so small that the scale underflows (every
    such weight quantizes to 0 either way)."""
    return np.where(scale >= np.finfo(np.float64).tiny, scale, 1.0)


def _check_scale(scale, shape) -> np.ndarray:
    s = check_finite_array("scale", scale)
    if np.any(s <= 0):
        raise ValueError("scale must be > 0 everywhere")
    try:
        np.broadcast_shapes(s.shape, shape)
    except ValueError:
        raise ValueError(f"scale of shape {s.shape} does not broadcast to weight "
                         f"shape {shape}") from None
    return s


def quantize_symmetric(w, bits: int, per_channel: bool = False,
                       scale=None) -> QuantizedTensor:
    """Signed narrow range ``[-(2**(bits-1)-1), 2**(bits-1)-1]``, zero point 0.

    Default scale: max |w| / (2**(bits-1) - 1) (Brevitas' default), per tensor or per
    output channel; a tensor/row whose scale would be zero or subnormal (all |w| below
    ~1e-308) gets scale 1, so its weights quantize to 0.
    """
    bits = check_int("bits", bits, MIN_WEIGHT_BITS, MAX_WEIGHT_BITS)
    w, axis, _ = _prepare(w, per_channel, check=scale is not None or not np.size(w))
    qmax = (1 << (bits - 1)) - 1
    if scale is None:
        if w.size:
            # max |w| as the larger of max w and -min w (no |w| array); a NaN or inf in w
            # shows in them, so they check that w is finite too (the training forward
            # quantizes its weights at every batch: docs/training.md, "Speed")
            hi, lo = _reduce(w, np.max, axis), _reduce(w, np.min, axis)
            if not (np.isfinite(hi).all() and np.isfinite(lo).all()):
                check_finite_array("weight", w)     # raises, naming the first bad entry
            scale = _safe_scale(np.maximum(hi, -lo) / qmax)
        else:
            scale = _safe_scale(_reduce(w, np.max, axis) / qmax)
    else:
        scale = _check_scale(scale, w.shape)
    x = w / scale
    q = np.rint(x)
    q = np.clip(q, -qmax, qmax, out=q).astype(np.int64)
    zp = np.zeros_like(scale, dtype=np.int64)
    return QuantizedTensor(q, scale, zp, "symmetric", bits, lambda: np.abs(x) <= qmax)


def quantize_asymmetric(w, bits: int, per_channel: bool = False) -> QuantizedTensor:
    """Unsigned codes ``[0, 2**bits - 1]`` with a zero point; the range always includes 0
    so that zero weights stay exactly zero. Deployed weights ``q - zero_point`` are signed
    and need ``bits + 1`` bits in the worst case."""
    bits = check_int("bits", bits, MIN_WEIGHT_BITS, MAX_WEIGHT_BITS)
    w, axis, _ = _prepare(w, per_channel)
    qmax = (1 << bits) - 1
    wmin = np.minimum(_reduce(w, np.min, axis), 0.0)
    wmax = np.maximum(_reduce(w, np.max, axis), 0.0)
    scale = _safe_scale((wmax - wmin) / qmax)
    zp = np.clip(np.rint(-wmin / scale), 0, qmax).astype(np.int64)
    x = w / scale + zp
    q = np.clip(np.rint(x), 0, qmax).astype(np.int64)
    return QuantizedTensor(q, scale, zp, "asymmetric", bits, lambda: (x >= 0) & (x <= qmax))


def quantize_ternary(w, threshold_ratio: float = 0.7, per_channel: bool = False) -> QuantizedTensor:
    """Ternary ``{-1, 0, +1}``: ``|w| < threshold_ratio * mean|w|`` becomes 0, the rest keep
    their sign. Scale = mean |w| of the kept weights (1 if none is kept)."""
    ratio = check_float("threshold_ratio", threshold_ratio, 0.0, None)
    w, axis, _ = _prepare(w, per_channel)
    a = np.abs(w)
    delta = ratio * _reduce(a, np.mean, axis)
    keep = a >= delta
    q = (np.sign(w) * keep).astype(np.int64)
    kept = _reduce(keep.astype(np.float64), np.sum, axis)
    total = _reduce(a * keep, np.sum, axis)
    scale = np.where(kept > 0, total / np.maximum(kept, 1), 1.0)
    zp = np.zeros_like(scale, dtype=np.int64)
    return QuantizedTensor(q, scale, zp, "ternary", 2, lambda: np.ones_like(keep))


def ste_backward(grad_output: np.ndarray, qt: QuantizedTensor | None = None,
                 masked: bool = False) -> np.ndarray:
    """Straight-through estimator: identity, or zero outside the clip range if ``masked``."""
    if masked and qt is not None:
        return grad_output * qt.mask
    return grad_output


@dataclass(frozen=True)
class WeightQuantizer:
    """A weight-quantization configuration, applied with ``quantizer(w)``.

    ``scheme``: symmetric | asymmetric | ternary; ``bits``: 2..16 (ignored for ternary);
    ``per_channel``: one scale per output neuron; ``threshold_ratio``: ternary zeroing rule;
    ``masked_ste``: zero the gradient of weights outside the representable range.
    """

    scheme: str = "symmetric"
    bits: int = 8
    per_channel: bool = False
    threshold_ratio: float = 0.7
    masked_ste: bool = False

    def __post_init__(self):
        check_choice("scheme", self.scheme, WEIGHT_SCHEMES)
        check_int("bits", self.bits, MIN_WEIGHT_BITS, MAX_WEIGHT_BITS)
        check_float("threshold_ratio", self.threshold_ratio, 0.0, None)

    def __call__(self, w) -> QuantizedTensor:
        if self.scheme == "symmetric":
            return quantize_symmetric(w, self.bits, self.per_channel)
        if self.scheme == "asymmetric":
            return quantize_asymmetric(w, self.bits, self.per_channel)
        return quantize_ternary(w, self.threshold_ratio, self.per_channel)

    def backward(self, grad_output: np.ndarray, qt: QuantizedTensor) -> np.ndarray:
        return ste_backward(grad_output, qt, self.masked_ste)
