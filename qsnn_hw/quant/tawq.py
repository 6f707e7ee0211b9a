"""TaWQ: time-varying ternary weights (Zhang et al., arXiv 2511.17567), deployable form.

A layer's float weights ``W`` are normalized, ``w_n = (W - mean W) / std W``, and every
normalized weight drives a leaky "calcium" state with a threshold:

* ``p_t = v_{t-1} + (w_n - v_{t-1}) / TAU``      (``v_{-1} = 0``, TAU = 2)
* ``s_t = +1 if p_t > C_TH, -1 if p_t < -C_TH, else 0``     (C_TH = 0.25)
* ``v_t = (1 - |s_t|) * p_t``                    (the state is reset where it fired)

and the weight at timestep t is ``s_t`` times a scale per (timestep, output channel),
``1 / (mean |s_t| over the channel's row + EPS)``.

The state is input independent and ``w_n`` is constant over a sample, so ``s`` is
periodic: after a reset the state climbs ``v = w_n * (1 - (1 - 1/TAU)**j)`` and fires at
the first step ``p`` where that exceeds ``C_TH``. A weight with ``|w_n| > C_TH / (1 - (1 -
1/TAU)**p)`` (:func:`band_edges`) fires every ``p``-th step (at t = p-1, 2p-1, ...), one
with ``|w_n| <= C_TH`` never. So the whole sequence ``s_0 .. s_{T-1}`` is a function of
one small integer per weight: its sign and period. This module's **code** of a weight is
that integer, with the periods capped at ``P`` (:func:`n_periods`):

* code ``P`` -- never fires (``|w_n| <=`` the edge of period ``P``);
* code ``P + j`` / ``P - j``, ``j = 1..P`` -- fires +1 / -1 with period ``P + 1 - j``
  (code ``2P``: +1 at every step, code ``0``: -1 at every step).

Codes are monotone in ``w_n`` (the normalized weight quantized on the grid of band
edges); :func:`tawq_table` gives every code's sequence, computed by running the
dynamics from a value inside the code's band (:func:`code_values`), so the deployed layer
stores a code per weight plus one shared ``(2P+1, T)`` table of {-1, 0, +1}.
"""

from __future__ import annotations

import numpy as np

from .._check import check_int
from .levels import round_half_up

TAU = 2.0          # calcium time constant (the authors' code: tau = 2)
C_TH = 0.25        # firing threshold of the calcium state
EPS = 1e-6         # the scale's denominator guard (the authors' code)
ALPHA = 4.0        # slope of the sigmoid-derivative surrogate (the authors' code)
MULT_SHIFT = 8     # fractional bits of the deployed per-(t, channel) scale multiplier
MIN_CODE_BITS, MAX_CODE_BITS = 2, 8


def n_periods(bits: int, steps: int) -> int:
    """``P``: the longest firing period a ``bits``-bit code holds, ``2**(bits-1) - 1``,
    capped at ``steps`` (a period longer than T never fires within a sample)."""
    bits = check_int("bits", bits, MIN_CODE_BITS, MAX_CODE_BITS)
    steps = check_int("steps", steps, 1, None)
    return min((1 << (bits - 1)) - 1, steps)


def band_edges(periods: int) -> np.ndarray:
    """``e[p-1] = C_TH / (1 - (1 - 1/TAU)**p)`` for ``p = 1..periods``: a weight fires
    with period ``p`` when ``e[p-1] < |w_n| <= e[p-2]`` (``e[-1] = inf``). Decreasing."""
    p = np.arange(1, periods + 1, dtype=np.float64)
    return C_TH / (1.0 - (1.0 - 1.0 / TAU) ** p)


def codes_of(w_n: np.ndarray, periods: int) -> np.ndarray:
    """The code of every normalized weight (module docstring): ``P + sign(w_n) * k``
    with ``k`` the number of band edges ``|w_n|`` exceeds (int64, same shape)."""
    edges = band_edges(periods)
    k = (np.abs(w_n)[..., None] > edges).sum(axis=-1)
    return (periods + np.sign(w_n).astype(np.int64) * k).astype(np.int64)


def code_values(periods: int) -> np.ndarray:
    """A normalized weight inside each code's band, ascending, ``(2P+1,)``: 0 for the
    never-firing code, the middle of the band for periods 2..P, ``3 * C_TH`` for
    period 1 (any value past ``2 * C_TH`` fires at every step)."""
    edges = band_edges(periods)
    upper = np.concatenate(([4.0 * C_TH], edges[:-1]))
    mags = (edges + upper) / 2.0                    # period 1 .. P
    return np.concatenate((-mags, [0.0], mags[::-1]))


def calcium(w_n: np.ndarray, steps: int):
    """Run the calcium dynamics of every weight in ``w_n`` (float64) for ``steps``:
    ``(s, p)`` with ``s`` (T, ...) int8 ternary outputs and ``p`` (T, ...) the states
    before the reset (what the surrogate gradient is evaluated at)."""
    w = np.asarray(w_n, dtype=np.float64)
    v = np.zeros_like(w)
    s = np.empty((steps,) + w.shape, dtype=np.int8)
    p = np.empty((steps,) + w.shape, dtype=np.float64)
    for t in range(steps):
        pt = v + (w - v) / TAU
        st = (pt > C_TH).astype(np.int8) - (pt < -C_TH).astype(np.int8)
        v = np.where(st != 0, 0.0, pt)
        s[t], p[t] = st, pt
    return s, p


def tawq_table(periods: int, steps: int) -> np.ndarray:
    """``table[code][t]`` in {-1, 0, +1}: the sequence of each code, ``(2P+1, T)`` int64,
    from the dynamics run on :func:`code_values`."""
    s, _ = calcium(code_values(periods), steps)
    return s.T.astype(np.int64)


def row_fill(table: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """``(T, C)``: how many weights of each output channel's row are non-zero at each
    timestep (``codes``: (C, ...) per-weight codes)."""
    rows = codes.reshape(codes.shape[0], -1)
    return np.abs(table[rows]).sum(axis=1).T.astype(np.int64)


def row_scale(fill: np.ndarray, fan_in: int) -> np.ndarray:
    """The authors' scale ``1 / (mean |s_t| + EPS)`` from the non-zero counts ``fill``."""
    return 1.0 / (fill / float(fan_in) + EPS)


def multipliers(fill: np.ndarray, fan_in: int, shift: int = MULT_SHIFT) -> np.ndarray:
    """The deployed integer scales ``round_half_up(row_scale * 2**shift)`` (T, C); 0 for a
    row with no non-zero weight at that step (its current is 0 whatever the scale)."""
    mult = round_half_up(row_scale(fill, fan_in) * float(1 << shift)).astype(np.int64)
    return np.where(fill > 0, mult, 0)


__all__ = ["ALPHA", "C_TH", "EPS", "MULT_SHIFT", "TAU", "band_edges", "calcium",
           "code_values", "codes_of", "multipliers", "n_periods", "row_fill", "row_scale",
           "tawq_table"]
