"""Nearest-level state quantization by sorted search (O(log levels) per value).

Rule (the contract, docs/fixed-point.md): a value maps to the nearest level; a value
exactly halfway between two levels maps to the *lower* one; values beyond the ends
saturate to the first/last level. Equivalently, code = number of decision boundaries
strictly below the value, where boundary k lies halfway between levels k and k+1.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .levels import custom_levels, make_levels


def decision_boundaries(levels: np.ndarray) -> np.ndarray:
    """Boundaries ``b_k`` such that ``code(v) = #{k : b_k < v}``.

    Integer tables: ``b_k = floor((l_k + l_{k+1}) / 2)``; for an integer ``v``,
    ``v > b_k`` exactly when ``v`` is strictly nearer ``l_{k+1}`` than ``l_k``, so ties go
    low. Float tables: the exact midpoint in float64 (the sum of two float64 values
    converted from float32, or of two integers below 2**52, is exact).
    """
    if levels.dtype.kind in "iu":
        lv = levels.astype(np.int64)
        return (lv[:-1] + lv[1:]) >> 1
    lv = levels.astype(np.float64)
    return (lv[:-1] + lv[1:]) * 0.5


def nearest_level(values, levels: np.ndarray,
                  boundaries: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Quantize ``values`` to ``levels``; returns ``(codes, level values)``.

    Integer inputs with an integer table stay integer end to end (the golden model);
    float inputs are compared in float64. ``boundaries`` may be passed precomputed.
    """
    v = np.asarray(values)
    if boundaries is None:
        boundaries = decision_boundaries(levels)
    if levels.dtype.kind in "iu":
        if v.dtype.kind not in "iub":
            raise TypeError("an integer level table quantizes integer values only, "
                            f"got dtype {v.dtype}")
        codes = np.searchsorted(boundaries, v.astype(np.int64), side="left")
    else:
        v = v.astype(np.float64, copy=False)
        if np.isnan(v).any():
            raise ValueError("cannot quantize NaN membrane values")
        codes = np.searchsorted(boundaries, v, side="left")
    return codes, levels[codes]


@dataclass(frozen=True, eq=False)
class LevelQuantizer:
    """A value object that snaps membrane values to a level table, passed to a neuron as a
    value (as snnTorch's ``state_quant``). The trainer's float counterpart of the gateware
    ``qsnn_hw.hdl.quantizer.CodeQuantizer``.

    ``levels``: strictly increasing float table with ``2**num_bits`` entries, in the same
    units as the membrane it quantizes. The forward pass snaps to the nearest level
    (ties low, saturating); the backward pass is the straight-through estimator.
    """

    levels: np.ndarray
    family: str = "custom"
    params: dict = field(default_factory=dict)

    def __post_init__(self):
        object.__setattr__(self, "levels", custom_levels(self.levels))
        object.__setattr__(self, "_bounds", decision_boundaries(self.levels))

    @classmethod
    def from_family(cls, family: str, num_bits: int, threshold: float = 1.0, **kwargs):
        """``family``: a family with a builder (``qsnn_hw.quant.levels.LEVEL_FAMILIES``);
        kwargs go to its builder."""
        levels = make_levels(family, num_bits, threshold, **kwargs)
        return cls(levels.astype(np.float64), family,
                   dict(num_bits=num_bits, threshold=threshold, **kwargs))

    @property
    def num_bits(self) -> int:
        return int(self.levels.size).bit_length() - 1

    def quantize(self, values) -> tuple[np.ndarray, np.ndarray]:
        """``(codes, values)`` of the nearest levels."""
        return nearest_level(values, self.levels, self._bounds)

    def __call__(self, values) -> np.ndarray:
        return self.quantize(values)[1]

    @staticmethod
    def backward(grad_output: np.ndarray) -> np.ndarray:
        """Straight-through estimator: the gradient passes unchanged."""
        return grad_output
