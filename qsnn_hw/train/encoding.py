"""First-layer input encodings. Every encoding produces *integers* (what the deployed
network receives) and the float view the trainer computes with, so the two can never
disagree.

* ``direct``: ``x_int = round_half_up(x * (2**input_bits - 1))`` fed at every timestep
  (static; the SQUAT paper feeds raw pixels); the trainer sees ``x_int / (2**bits - 1)``.
* ``rate``: at each timestep a Bernoulli spike with probability ``x`` (seeded generator).
* ``latency``: one spike per non-zero input at ``t = round_half_up((1 - x) * (T - 1))``,
  brighter -> earlier; zero inputs never spike.

Event data (SHD) is already ``(B, T, M)`` spikes and bypasses encoding.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..quant.levels import round_half_up


@dataclass(frozen=True, eq=False)
class Encoded:
    """An encoded batch. ``ints``: (B, M) static values or (B, T, M) spikes (integers, as
    the deployed network sees them); ``scale``: real value of one input step."""

    ints: np.ndarray
    steps: int
    scale: float

    @property
    def static(self) -> bool:
        return self.ints.ndim == 2

    def float_input(self, dtype=np.float32) -> np.ndarray:
        """Trainer input: (B, M) static or time-major (T, B, M)."""
        if self.static:
            return (self.ints * self.scale).astype(dtype)
        return np.ascontiguousarray(self.ints.transpose(1, 0, 2), dtype=dtype)

    def golden_input(self) -> np.ndarray:
        """(B, T, M) int64 as ``golden.simulate`` takes it."""
        if self.static:
            b, m = self.ints.shape
            return np.broadcast_to(self.ints[:, None, :], (b, self.steps, m)).astype(np.int64)
        return self.ints.astype(np.int64)


def encode(x: np.ndarray, encoding: str, steps: int, input_bits: int = 1,
           rng: np.random.Generator | None = None) -> Encoded:
    """Encode a batch ``x``: (B, M) floats in [0, 1], or (B, T, M) spikes (passed through)."""
    if x.ndim == 3:
        return Encoded(np.asarray(x, dtype=np.uint8), x.shape[1], 1.0)
    if encoding == "direct":
        top = (1 << input_bits) - 1
        ints = round_half_up(np.clip(x, 0.0, 1.0) * top).astype(np.int64)
        return Encoded(ints, steps, 1.0 / top)
    if encoding == "rate":
        if rng is None:
            raise ValueError("rate encoding needs a numpy.random.Generator")
        p = np.clip(x, 0.0, 1.0)[:, None, :]
        spikes = rng.random((x.shape[0], steps, x.shape[1])) < p
        return Encoded(spikes.astype(np.uint8), steps, 1.0)
    if encoding == "latency":
        t = round_half_up((1.0 - np.clip(x, 0.0, 1.0)) * (steps - 1)).astype(np.int64)
        spikes = (np.arange(steps)[None, :, None] == t[:, None, :]) & (x[:, None, :] > 0)
        return Encoded(spikes.astype(np.uint8), steps, 1.0)
    raise ValueError(f"encoding must be one of 'direct', 'rate', 'latency'; got {encoding!r}")


def input_bits_for(encoding: str, input_bits: int, event_data: bool) -> int:
    """Width of the deployed network's input: multi-bit only for direct encoding."""
    return input_bits if (encoding == "direct" and not event_data) else 1
