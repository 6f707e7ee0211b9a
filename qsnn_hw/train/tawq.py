"""Training TaWQ layers (weight_mode ``tawq``): time-varying ternary weights learned
through their calcium dynamics (:mod:`qsnn_hw.quant.tawq` has the dynamics and the
deployed code/table form).

A TaWQ layer's real weight at timestep t is ``sigma * c_t[n] * s_t[n, m]``:

* ``w_n = (W - mean W) / sigma``, ``sigma = std W`` (population std) per layer;
* ``s_t`` the ternary output of the calcium state driven by ``w_n``;
* ``c_t[n] = 1 / (mean_m |s_t[n, m]| + EPS)`` (per output channel), deployed as
  ``tawq_mult / 2**tawq_shift``;
* ``sigma`` restores the layer's magnitude (the membrane unit is ``sigma * input scale /
  2**frac_bits``), so the threshold keeps its meaning.

**Forward** (training and evaluation): the deployed integers, exactly -- every weight's
code (the normalized weight quantized on the grid of band edges), the shared table,
the integer multipliers and the contract's rounding; the recurrence is the model's own
integer LIF loop. So the trained network's eval forward is the golden model.

**Backward**: the straight-through estimator of the code quantization and of the
multiplier's rounding, then backpropagation through time through the calcium dynamics of
``w_n`` itself, with the authors' sigmoid-derivative surrogate for the ternary step,
``ds/dp = h'(p - C_TH) + h'(p + C_TH)``, ``h'(x) = ALPHA * sig(ALPHA x) (1 - sig(ALPHA x))``,
through the scale (``d|s|/dp = sign(s) * ds/dp``, as automatic differentiation of
``|s|`` gives) and through the normalization to ``W`` (including ``sigma``). The reset
``(1 - |s_t|) * p_t`` passes the gradient to ``p_t`` with ``|s_t|`` held constant (a
detached reset, as the LIF reset here).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..quant.tawq import (
    ALPHA,
    C_TH,
    EPS,
    MULT_SHIFT,
    TAU,
    calcium,
    codes_of,
    multipliers,
    n_periods,
    row_fill,
    tawq_table,
)


@dataclass(frozen=True, eq=False)
class TawqWeights:
    """The deployed form of a layer's float weight ``w`` (any shape, rows = output
    channels) for ``steps`` timesteps: ``codes``, ``table``, ``mult`` (T, C),
    ``shift``, and the float ``w_n`` and ``sigma`` they came from."""

    codes: np.ndarray
    table: np.ndarray
    mult: np.ndarray
    shift: int
    w_n: np.ndarray
    sigma: float
    periods: int


def normalize(w: np.ndarray) -> tuple[np.ndarray, float]:
    """``((w - mean) / sigma, sigma)`` in float64; a constant tensor gives zeros and
    sigma 1 (every weight then never fires)."""
    w = np.asarray(w, dtype=np.float64)
    cen = w - w.mean()
    sigma = float(np.sqrt(np.mean(cen * cen)))
    if sigma < 1e-30:
        return np.zeros_like(w), 1.0
    return cen / sigma, sigma


def tawq_weights(w: np.ndarray, bits: int, steps: int, shift: int = MULT_SHIFT) -> TawqWeights:
    """Quantize a layer's float weight for deployment (what export and training share)."""
    w_n, sigma = normalize(w)
    periods = n_periods(bits, steps)
    codes = codes_of(w_n, periods)
    table = tawq_table(periods, steps)
    fan_in = int(np.prod(w.shape[1:]))
    mult = multipliers(row_fill(table, codes), fan_in, shift)
    return TawqWeights(codes, table, mult, shift, w_n, sigma, periods)


def surrogate_slope(p: np.ndarray) -> np.ndarray:
    """``ds/dp`` of the ternary step: the sigmoid derivative (slope ALPHA) at both
    thresholds."""
    def h(x):
        sg = 1.0 / (1.0 + np.exp(-ALPHA * x))
        return ALPHA * sg * (1.0 - sg)
    return h(p - C_TH) + h(p + C_TH)


def calcium_backward(p: np.ndarray, keep: np.ndarray, ds: np.ndarray,
                     slope=surrogate_slope) -> np.ndarray:
    """BPTT of the calcium dynamics: ``dL/dw_n`` given ``ds`` = dL/ds_t (T, ...), the
    pre-reset states ``p`` and ``keep = 1 - |s_t|`` (held constant) of the forward run.
    ``p_t = (1 - 1/TAU) v_{t-1} + w_n / TAU``, ``v_t = keep_t * p_t``."""
    dw = np.zeros(p.shape[1:], dtype=np.float64)
    dv = np.zeros_like(dw)
    for t in range(p.shape[0] - 1, -1, -1):
        dp = ds[t] * slope(p[t]) + dv * keep[t]
        dw += dp / TAU
        dv = dp * (1.0 - 1.0 / TAU)
    return dw


def normalize_backward(w_n: np.ndarray, sigma: float, dw_n: np.ndarray,
                       dsigma: float) -> np.ndarray:
    """``dL/dW`` given ``dL/dw_n`` and ``dL/dsigma`` for ``w_n = (W - mean W) / sigma``,
    ``sigma = std W`` (population)."""
    n = w_n.size
    return (dw_n - dw_n.mean() - w_n * np.mean(dw_n * w_n)) / sigma + dsigma * w_n / n


@dataclass(eq=False)
class TawqCache:
    """What the backward pass of a TaWQ layer needs: the deployed ternary weights ``s``
    (T, *weight shape), the scales used (``scale`` (T, C): ``mult / 2**shift``) and their
    exact values (``exact`` (T, C)), the float run of the calcium dynamics of ``w_n``
    (``p``, ``keep``), ``w_n`` and ``sigma``, ``fan_in``."""

    s: np.ndarray
    scale: np.ndarray
    exact: np.ndarray
    p: np.ndarray
    keep: np.ndarray
    w_n: np.ndarray
    sigma: float
    fan_in: int

    def weight(self, op, t: int, dtype) -> np.ndarray:
        """The real weight at timestep ``t``: ``sigma * scale_t * s_t``."""
        return (self.sigma * op.channel_view(self.scale[t]) * self.s[t]).astype(dtype)

    def backward(self, op, d_cur: np.ndarray, x: np.ndarray, need_dx: bool):
        """``(dL/dW, dL/dx or None)`` given ``d_cur = dL/dI`` (T, B, N) and the layer's
        float input ``x`` ((B, M) static or (T, B, M))."""
        steps = d_cur.shape[0]
        static = x.ndim == 2
        ds = np.empty(self.s.shape, dtype=np.float64)
        dsigma = 0.0
        dx = None
        for t in range(steps):
            rows = x if static else x[t]
            g_t, dx_t = op.backward(d_cur[t], rows, self.weight(op, t, d_cur.dtype), need_dx)
            g_t = g_t.astype(np.float64)
            gs = (g_t * self.s[t]).reshape(g_t.shape[0], -1).sum(axis=1)   # per channel
            dsigma += float(np.sum(gs * self.scale[t]))
            # d/ds of sigma * c * s, c = 1 / (mean|s| + EPS): the direct term and the scale's
            dc = gs * self.sigma * -(self.exact[t] ** 2) / self.fan_in
            ds[t] = g_t * self.sigma * op.channel_view(self.scale[t]) \
                + op.channel_view(dc) * np.sign(self.s[t])
            if need_dx:
                if dx is None:
                    dx = np.zeros(x.shape, dtype=dx_t.dtype)
                if static:          # the same input feeds every timestep
                    dx += dx_t
                else:
                    dx[t] = dx_t
        dw_n = calcium_backward(self.p, self.keep, ds)
        return normalize_backward(self.w_n, self.sigma, dw_n, dsigma).astype(d_cur.dtype), dx


def tawq_cache(tw: TawqWeights, steps: int) -> TawqCache:
    """The backward cache of ``tw`` for ``steps`` timesteps."""
    s, p = calcium(tw.w_n, steps)
    s_dep = np.moveaxis(tw.table[tw.codes], -1, 0)          # (T, *weight shape)
    fan_in = int(np.prod(tw.codes.shape[1:]))
    fill = np.abs(s_dep).reshape(steps, s_dep.shape[1], -1).sum(axis=2)
    exact = 1.0 / (fill / fan_in + EPS)
    scale = tw.mult / float(1 << tw.shift)
    return TawqCache(s_dep.astype(np.float64), scale, exact, p, 1.0 - np.abs(s),
                     tw.w_n, tw.sigma, fan_in)


def int_currents(op, il, xi: np.ndarray, steps: int, input_max: int) -> np.ndarray:
    """The deployed currents (T, B, N) int64 of a TaWQ layer ``il`` for whole-step inputs
    ``xi`` ((B, M) static or (T, B, M)): one integer product per timestep with that step's
    ternary weights, then ``round_half_up(acc * mult * 2**frac_bits / 2**shift) + bias``."""
    if il.steps != steps:
        raise ValueError(f"this TaWQ layer is built for T = {il.steps} timesteps, the "
                         f"forward pass runs {steps}")
    static = xi.ndim == 2
    half = (1 << (il.tawq_shift - 1)) if il.tawq_shift else 0
    out = None
    for t in range(steps):
        acc = op.int_current(xi if static else xi[t], il.ternary(t), input_max)
        i_t = ((acc * op.per_neuron(il.tawq_mult[t]) << il.frac_bits) + half) \
            >> il.tawq_shift
        if il.bias is not None:
            i_t += op.per_neuron(il.bias)
        if out is None:
            out = np.empty((steps,) + i_t.shape, dtype=np.int64)
        out[t] = i_t
    return out


def forward_grid(layer, params: dict, x: np.ndarray, xi: np.ndarray, steps: int, spike,
                 keep: bool, grid, input_max: int):
    """A TaWQ layer's forward pass on its deployed grid (the contract, in int64): the
    layer's own integer LIF loops on the per-timestep currents. Returns the spikes and
    (``keep``) the fields of the layer's cache: the real values and the
    :class:`TawqCache` for the backward pass."""
    il, unit = grid.layer, grid.unit
    cur = int_currents(layer.op, il, xi, steps, input_max)
    if il.levels is not None:
        # int32 holds the update relative to the lowest boundary (_quantized_steps)
        narrow = il.update_width(max(input_max, 1)) < 32
        zs, us, gs = layer._quantized_steps(il, unit, cur.astype(np.int32) if narrow else cur,
                                            False, steps, spike, keep, x.dtype)
    else:
        zs, us, gs = layer._membrane_steps(il, unit, cur, False, steps, spike, keep, x.dtype)
    if not keep:
        return zs, None
    tw = tawq_weights(params[layer.key("weight")], layer.cfg.weight_bits, steps,
                      il.tawq_shift)
    return zs, dict(x=x, w_used=None, cur=(cur * unit).astype(x.dtype), states=us, z=zs, g=gs,
                    beta=il.beta_num / 2.0 ** il.beta_shift, tawq=tawq_cache(tw, steps))


__all__ = ["TawqCache", "TawqWeights", "calcium_backward", "forward_grid", "int_currents",
           "normalize", "normalize_backward", "surrogate_slope", "tawq_cache", "tawq_weights"]
