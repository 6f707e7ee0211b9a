"""Spike functions: Heaviside forward, surrogate derivative backward.

Each surrogate maps ``x = u - threshold`` to ``(spike, d spike / d x)``. The forward pass
is always the strict step ``x > 0`` (the contract); only the backward pass differs:

* ``atan`` (snnTorch default, alpha = 2): ``(alpha/2) / (1 + (pi/2 * alpha * x)**2)``
* ``fast_sigmoid`` (slope k = 25 as snnTorch): ``1 / (1 + k*|x|)**2``
* ``triangular`` (half-width w): ``max(0, 1 - |x|/w) / w``

``smooth_sigmoid`` is not a surrogate: its forward pass is the sigmoid itself
(``z = sigmoid(k*x)``), so the network is differentiable and BPTT can be checked against
finite differences.
"""

from __future__ import annotations

import math

import numpy as np

from .._check import check_choice, check_float

SPIKE_FUNCTIONS = ("atan", "fast_sigmoid", "triangular", "smooth_sigmoid")


class SpikeFunction:
    """``fn(x) -> (z, dz/dx)`` for ``x = membrane - threshold``."""

    def __init__(self, name: str = "atan", param: float | None = None):
        check_choice("surrogate", name, SPIKE_FUNCTIONS)
        defaults = {"atan": 2.0, "fast_sigmoid": 25.0, "triangular": 1.0,
                    "smooth_sigmoid": 5.0}
        self.name = name
        self.param = check_float("surrogate_param", defaults[name] if param is None else param,
                                 0.0, None, lo_open=True)

    @property
    def smooth(self) -> bool:
        return self.name == "smooth_sigmoid"

    def __call__(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if self.name == "smooth_sigmoid":
            z = 1.0 / (1.0 + np.exp(-self.param * x))
            return z, self.param * z * (1.0 - z)
        return (x > 0).astype(x.dtype), self.derivative(x)

    def derivative(self, x: np.ndarray) -> np.ndarray:
        """``d spike / d x`` alone (a surrogate's: not for ``smooth_sigmoid``), in ``x``'s
        dtype. Elementwise, so one call over all timesteps gives every step's values."""
        p = self.param
        if self.name == "atan":    # (p/2) / (1 + (pi/2 * p * x)**2), in one buffer
            g = np.multiply(x, math.pi / 2 * p)
            np.square(g, out=g)
            np.add(g, 1, out=g)
            return np.divide(p / 2, g, out=g)
        if self.name == "fast_sigmoid":
            g = 1.0 / (1.0 + p * np.abs(x)) ** 2
        elif self.name == "triangular":
            g = np.maximum(0.0, 1.0 - np.abs(x) / p) / p
        else:
            raise ValueError("smooth_sigmoid has no separate derivative: call the function")
        return g.astype(x.dtype, copy=False)
