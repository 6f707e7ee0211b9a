"""The trainable network: layers of LIF neurons (dense or convolutional), float forward
pass with optional fake quantization (QAT weights, SQUAT states) and backpropagation
through time.

Per layer and timestep (``x`` the input, ``theta`` the threshold):

* ``I[t] = W x[t] + b`` -- for all timesteps in one matrix product (once if ``x`` is
  static); ``W x`` is the layer's linear operation (:mod:`.linear`: a dense product or a
  2-D convolution), optionally batch-normalized per output channel
* ``v[t] = beta*u[t-1] + I[t] - theta*z[t-1]`` (subtract reset) or
  ``v[t] = (1 - z[t-1]) * (beta*u[t-1] + I[t])`` (zero reset)
* ``u[t] = Q(v[t])`` under SQUAT (nearest level, straight-through backward), else ``v[t]``
* ``z[t] = H(u[t] - theta)`` forward, surrogate derivative backward

``u[-1]`` is 0, or the level nearest 0 when states are quantized (the contract). As in
snnTorch the reset term is detached from the graph by default (``detach_reset``).
Arrays are time-major inside: ``(T, B, N)``. A convolution's neurons are channel-major
``(C_out, H_out, W_out)`` and its output, max-pooled over spikes (``pool``), is what the
next layer reads.

**Batch normalization** (``batch_norm``): in training the float forward normalizes the
current with the batch statistics of each output channel (over batch, timesteps and
positions) and keeps running statistics (:mod:`.batchnorm`); everywhere else
-- evaluation, the deployed grid, the export -- it is the affine map of the running
statistics, folded into the weights and the bias (:func:`.batchnorm.folded_bn`). A layer trained on
its deployed grid therefore always runs the folded form (so its training forward is
still the deployed network); its running statistics keep following the data, estimated
from the deployed currents.

**Training on the deployed grid.** A layer trained quantization-aware (QAT weights or
SQUAT states) computes its forward pass on the integers it will be deployed with, in
training as in evaluation: the export's own function (:func:`.export.deploy_layer`)
turns the current parameters into the layer's integer contract (weights, bias,
threshold, ``beta_num/2**beta_shift``, level table or saturating membrane, fractional
bits), and the recurrence runs on integers (int32 when every update fits) exactly as
docs/fixed-point.md defines it -- including the leak's rounding and the ties of the state
quantizer. Backward, every rounding is a straight-through estimator: the cached
membranes are the integers times the real value of one membrane unit, and the gradients
are those of the float equations above. So the trained network's evaluation forward
*is* the deployed network (the golden model), spike for spike;
``SNN.forward(..., deployed=True)`` runs every layer, PTQ layers too, that way.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..contract import IntLayer
from ..quant.levels import LEVEL_FAMILIES
from ..quant.state import LevelQuantizer, decision_boundaries
from ..quant.weights import WeightQuantizer
from . import tawq
from .arch import geometry
from .batchnorm import BN_EPS, folded_bn, update_running_stats
from .config import LayerConfig
from .linear import Conv2d, Dense, MaxPool
from .surrogate import SpikeFunction


def state_quantizer(lc: LayerConfig) -> LevelQuantizer:
    """The float level table of a layer, in the trainer's membrane units."""
    kwargs = dict(lower_limit=lc.lower_limit, upper_limit=lc.upper_limit)
    for field_name, keyword in LEVEL_FAMILIES[lc.state_family].layer_params:
        kwargs[keyword] = getattr(lc, field_name)
    return LevelQuantizer.from_family(lc.state_family, lc.state_bits, lc.threshold, **kwargs)


def weight_quantizer(lc: LayerConfig) -> WeightQuantizer:
    return WeightQuantizer(lc.weight_scheme, lc.weight_bits)


@dataclass
class LayerCache:
    x: np.ndarray          # (B, M) static or (T, B, M) input
    w_used: object         # weight used in the forward pass (fake-quantized under QAT),
    #                        or a function computing it (only an input gradient reads it)
    cur: np.ndarray        # (B, N) static or (T, B, N) input current
    states: object         # u, or a function computing it (the backward rarely needs it)
    z: np.ndarray          # (T, B, N) spikes
    g: np.ndarray          # (T, B, N) dz/du
    beta: float
    bn: tuple | None = None  # ("batch", xhat, inv_std, count) / ("fold", k, inv_sd, mean)
    route: np.ndarray | None = None  # pooled: (T, B, n_out) neuron behind each output
    tawq: object = None    # a TaWQ layer's backward cache (:class:`.tawq.TawqCache`)

    @property
    def w(self) -> np.ndarray:
        """The weight used in the forward pass."""
        if callable(self.w_used):
            self.w_used = self.w_used()
        return self.w_used

    @property
    def u(self) -> np.ndarray:
        """(T+1, B, N): u[-1] (initial state) then u[0..T-1]."""
        if callable(self.states):
            self.states = self.states()
        return self.states


@dataclass(frozen=True, eq=False)
class Grid:
    """A layer's deployed integers and their real values: ``layer`` (its
    :class:`~qsnn_hw.contract.IntLayer`), ``unit`` (real value of one membrane unit),
    ``in_scale`` (of one input step), ``weight_scale`` (of one weight step)."""

    layer: IntLayer
    unit: float
    in_scale: float
    weight_scale: float


# Largest bucket table of a :class:`_CodeLookup` (else a binary search)
MAX_CODE_TABLE = 1 << 20


def _apply_reset(reset: str, v: np.ndarray, fired: np.ndarray, amount, scratch: np.ndarray):
    """A reset of an integer update, in place, where the previous step spiked (``fired``,
    bool), without masked ufuncs (slow in NumPy): ``subtract`` takes ``amount`` off ``v``
    (``v - amount*z``), ``zero`` multiplies ``v`` by ``1 - z``. (The ``clear`` reset
    multiplies the leak by ``1 - z`` before the current is added: the callers do that.)"""
    if reset == "subtract":
        np.subtract(v, np.multiply(fired, amount, out=scratch), out=v)
    elif reset == "zero":
        np.multiply(v, np.logical_not(fired), out=v)


class _CodeLookup:
    """The code ``#{k : bounds[k] < v}`` of integer updates ``v``, for a level table's
    (strictly increasing) decision boundaries
    (:func:`~qsnn_hw.quant.state.decision_boundaries`), without a binary search per value.

    Updates are held relative to the first boundary, ``r = v - lo``. ``r`` falls into a
    bucket ``r >> shift`` of ``2**shift`` consecutive integers, ``2**shift`` at most the
    smallest gap between boundaries, so a bucket holds one boundary at most; a bucket
    that holds one is followed by a bucket whose first code is one more. So the index
    ``k = bucket + (r > boundary in the bucket)`` (:meth:`index`: one table read, no
    boundary is the largest value of the dtype) gives the code as ``code_of[k]`` -- and
    every table of the code (the next start, the real value, the surrogate derivative)
    is read at ``k`` directly, composed with ``code_of`` once. Values below the first
    boundary fall into the first bucket, those above the last into the last: ``k`` is
    read with ``mode="clip"``. Tables over :data:`MAX_CODE_TABLE` buckets (boundaries
    very close together over a wide span) fall back to ``numpy.searchsorted``
    (``k`` = the code).

    The dtype must hold ``r`` of every update, i.e. ``max|v| + |lo|`` must be below
    ``2**(bits-1)``; ``boundary - r`` then fits too (a bucket without a boundary, read
    at the largest value, is never read for ``r < 0``: those clip to the first bucket,
    which holds the first boundary, ``r = 0``)."""

    def __init__(self, bounds: np.ndarray, dtype):
        self.bounds = bounds = bounds.astype(np.int64)
        self.dtype = np.dtype(dtype)
        self.lo = int(bounds[0]) if len(bounds) else 0
        self.code_of = np.arange(len(bounds) + 1)     # the binary search's k is the code
        self.boundary = None
        gap = int(np.diff(bounds).min()) if len(bounds) > 1 else 1
        if not len(bounds) or gap < 1:    # no boundary, or two equal: search
            return
        self.shift = gap.bit_length() - 1
        buckets = ((int(bounds[-1]) - self.lo) >> self.shift) + 2   # the last: above all
        if buckets > MAX_CODE_TABLE:
            return
        start = np.arange(buckets, dtype=np.int64) << self.shift      # relative to lo
        rel = bounds - self.lo
        # the code of each bucket's start, #{j : rel[j] < start}: rel[j] (>= 0) is below
        # the starts of the buckets after its own (a count and a running sum, not a
        # binary search per bucket)
        self.code_of = np.cumsum(np.bincount((rel >> self.shift) + 1, minlength=buckets))
        first = rel[np.minimum(self.code_of, len(rel) - 1)]   # next boundary from there
        inside = (self.code_of < len(rel)) & (first < start + (1 << self.shift))
        self.boundary = np.where(inside, first, np.iinfo(self.dtype).max).astype(self.dtype)
        self._sign = self.dtype.itemsize * 8 - 1

    def index(self, r: np.ndarray, out: np.ndarray, scratch: np.ndarray) -> np.ndarray:
        """The index ``k`` of updates ``r = v - lo`` (of this lookup's dtype) into ``out``
        (intp, ``r``'s shape); ``scratch``: a buffer of ``r``'s shape and dtype."""
        if self.boundary is None:
            out[...] = np.searchsorted(self.bounds - self.lo, r)
            return out
        np.right_shift(r, self.shift, out=out)
        self.boundary.take(out, mode="clip", out=scratch)
        # r > boundary as -(the sign of boundary - r), without a bool to integer cast
        # (slow); boundary - r cannot overflow: see the class docstring
        np.subtract(scratch, r, out=scratch)
        np.right_shift(scratch, self._sign, out=scratch)
        return np.subtract(out, scratch, out=out)

    def codes(self, v: np.ndarray, out: np.ndarray) -> np.ndarray:
        """The codes of updates ``v`` into ``out`` (intp, ``v``'s shape)."""
        r = np.subtract(v, self.lo, dtype=self.dtype)
        self.index(r, out, np.empty_like(r))
        return np.take(self.code_of, out, mode="clip", out=out)

    def table(self, by_code: np.ndarray) -> np.ndarray:
        """A table of the codes (``by_code[code]``) as a table of ``k``."""
        return by_code[self.code_of]

    def first_index_above(self, code: int) -> int:
        """The smallest ``k`` whose code is above ``code`` (``len(code_of)``: none)."""
        return int(np.searchsorted(self.code_of, code, side="right"))


class LIFLayer:
    """One LIF layer whose current comes from ``op`` (:class:`~.linear.Dense` or
    :class:`~.linear.Conv2d`), its spikes optionally max-pooled (``pool``, a
    :class:`~.linear.MaxPool`); parameters live in the owning :class:`SNN`'s dict."""

    def __init__(self, index: int, op, lc: LayerConfig, pool: MaxPool | None = None):
        self.index = index
        self.op = op
        self.pool = pool
        self.n_in = op.n_in
        self.cfg = lc
        self.sq = state_quantizer(lc) if lc.state_mode != "none" else None
        self.wq = weight_quantizer(lc) if lc.weight_mode != "none" else None

    @property
    def n_neurons(self) -> int:
        """Neurons (membrane states) of the layer, before pooling."""
        return self.op.n_neurons

    @property
    def n_out(self) -> int:
        """Output spikes per timestep (after pooling)."""
        return self.pool.n_out if self.pool is not None else self.op.n_neurons

    def key(self, name: str) -> str:
        return f"layer{self.index}.{name}"

    @property
    def aware(self) -> bool:
        """Trained quantization-aware (QAT weights or SQUAT states): on its deployed grid."""
        return self.cfg.weight_mode in ("qat", "tawq") or self.cfg.state_mode == "squat"

    def forward(self, params: dict, x: np.ndarray, steps: int, spike: SpikeFunction,
                quant: bool, detach_reset: bool, keep: bool, grid: Grid | None = None,
                train: bool = False):
        """Output spikes (T, B, n_out) (pooled) and the cache (``keep``) of one layer.
        ``train``: batch statistics for batch normalization (and running statistics
        updated) instead of the running ones."""
        if grid is not None:
            zs, cache = self._forward_grid(params, x, steps, spike, keep, grid, train)
        else:
            zs, cache = self._forward_float(params, x, steps, spike, quant, keep, train)
        if self.pool is None:
            return zs, cache
        if keep:
            cache.route = self.pool.route(cache.u[1:])
        return self.pool.forward(zs), cache

    def _forward_float(self, params, x, steps, spike, quant, keep, train):
        lc = self.cfg
        w = params[self.key("weight")]
        if quant and lc.weight_mode == "qat":
            w = self.wq(w).fake.astype(w.dtype)
        b = params.get(self.key("bias"))
        beta = float(params[self.key("beta")])
        static = x.ndim == 2
        rows = x if static else x.reshape(-1, x.shape[-1])
        bn = None
        if lc.batch_norm and train:
            cur, bn = self._batch_norm(params, self.op.current(rows, w))
        else:
            if lc.batch_norm:
                w, b, k, inv_sd = folded_bn(self, params)
                bn = ("fold", k, inv_sd, params[self.key("bn_mean")].copy())
            cur = self.op.current(rows, w)
            if b is not None:
                cur = cur + self.op.per_neuron(b)
        if not static:
            cur = cur.reshape(x.shape[0], x.shape[1], -1)
        squat = quant and lc.state_mode == "squat"
        if squat or spike.smooth:
            zs, us, gs = self._float_steps_general(cur, static, steps, beta, spike,
                                                   squat, keep)
        else:
            zs, us, gs = self._float_steps(cur, static, steps, beta, spike, keep)
        cache = LayerCache(x, w, cur, us, zs, gs, beta, bn) if keep else None
        return zs, cache

    def _float_steps(self, cur, static, steps, beta, spike, keep):
        """The float recurrence with a Heaviside spike, in preallocated buffers: each
        step is a few in-place operations on ``u[t]`` in the order of the equations
        (module docstring), so every value is the one they give; the surrogate
        derivative is computed once over all timesteps afterwards (elementwise, so the
        same values as step by step)."""
        lc = self.cfg
        theta = lc.threshold
        shape = (cur.shape[-2], self.n_neurons)
        # u[0] is the initial state 0; without ``keep`` two rows are reused in turn
        us = np.empty((steps + 1 if keep else 2,) + shape, dtype=cur.dtype)
        us[0] = 0
        zs = np.empty((steps,) + shape, dtype=cur.dtype)
        scratch = np.empty(shape, dtype=cur.dtype)
        for t in range(steps):
            u_prev, v = (us[t], us[t + 1]) if keep else (us[t % 2], us[(t + 1) % 2])
            i_t = cur if static else cur[t]
            z_prev = zs[t - 1] if t else None
            np.multiply(u_prev, beta, out=v)
            if t and lc.reset == "clear":      # (1 - z) * beta * u + I
                np.multiply(v, np.subtract(1, z_prev, out=scratch), out=v)
            np.add(v, i_t, out=v)
            if t and lc.reset == "subtract":   # beta*u + I - theta*z
                np.subtract(v, np.multiply(z_prev, theta, out=scratch), out=v)
            elif t and lc.reset == "zero":     # (1 - z) * (beta*u + I)
                np.multiply(v, np.subtract(1, z_prev, out=scratch), out=v)
            np.greater(v, theta, out=zs[t])
        gs = spike.derivative(np.subtract(us[1:], theta)) if keep else None
        return zs, (us if keep else None), gs

    def _float_steps_general(self, cur, static, steps, beta, spike, squat, keep):
        """The float recurrence step by step, for SQUAT in float (the levels applied to
        every ``v[t]``) and the smooth spike function (a real-valued ``z``)."""
        lc = self.cfg
        theta = lc.threshold
        batch, n, dtype = cur.shape[-2], self.n_neurons, cur.dtype
        u0 = self.sq(np.zeros(1))[0] if squat and lc.rest_mode == "level" else 0.0
        u = np.full((batch, n), u0, dtype=dtype)
        z = np.zeros((batch, n), dtype=dtype)
        us = np.empty((steps + 1, batch, n), dtype=dtype) if keep else None
        zs = np.empty((steps, batch, n), dtype=dtype)
        gs = np.empty((steps, batch, n), dtype=dtype) if keep else None
        if keep:
            us[0] = u
        for t in range(steps):
            i_t = cur if static else cur[t]
            if lc.reset == "subtract":
                v = beta * u + i_t - theta * z
            elif lc.reset == "zero":
                v = (1.0 - z) * (beta * u + i_t)
            else:
                v = (1.0 - z) * beta * u + i_t
            u = self.sq(v).astype(dtype) if squat else v
            z, g = spike(u - theta)
            zs[t] = z
            if keep:
                us[t + 1] = u
                gs[t] = g
        return zs, us, gs

    def _batch_norm(self, params: dict, pre: np.ndarray):
        """Training-mode batch normalization of the currents ``pre`` (R, N) with the
        statistics of each output channel over rows and positions; updates the running
        statistics. Returns ``(current, cache entry)``."""
        op = self.op
        count = pre.shape[0] * op.positions
        mean = op.channel_sum(pre) / count
        cen = pre - op.per_neuron(mean)
        var = op.channel_sum(cen * cen) / count
        inv = (1.0 / np.sqrt(var + BN_EPS)).astype(pre.dtype)
        xhat = cen * op.per_neuron(inv)
        cur = xhat * op.per_neuron(params[self.key("bn_weight")]) \
            + op.per_neuron(params[self.key("bn_bias")])
        update_running_stats(self, params, mean, var, count)
        return cur, ("batch", xhat, inv, count)

    def _forward_grid(self, params: dict, x: np.ndarray, steps: int, spike: SpikeFunction,
                      keep: bool, grid: Grid, train: bool = False):
        """The forward pass on the layer's deployed integers (the contract, in int64);
        the cache holds their real values for the straight-through backward pass."""
        il, unit = grid.layer, grid.unit
        if spike.smooth:
            raise ValueError("the smooth_sigmoid spike function has no deployed form; "
                             "train it without quantization")
        dtype = x.dtype
        static = x.ndim == 2
        xi = x if self.index else self._input_steps(x, grid.in_scale)
        flat = xi if static else xi.reshape(-1, x.shape[-1])
        # the largest input step (later layers read spikes: at most 1)
        input_max = int(flat.max(initial=0)) if self.index == 0 else 1
        if il.is_tawq:      # a ternary weight per timestep: train/tawq.py
            zs, fields = tawq.forward_grid(self, params, x, xi, steps, spike, keep, grid,
                                           input_max)
            return zs, (LayerCache(**fields) if keep else None)
        cur = self.op.int_current(flat, il.weight, input_max)
        bn = None
        if self.cfg.batch_norm:
            _, _, k, inv_sd = folded_bn(self, params)
            bn = ("fold", k, inv_sd, params[self.key("bn_mean")].copy())
            if train:   # running statistics of W x, estimated from the deployed current
                pre = cur * (unit * 2.0 ** il.frac_bits) / self.op.per_neuron(
                    np.where(np.abs(k) > 1e-12, k, 1.0))
                count = pre.shape[0] * self.op.positions
                mean = self.op.channel_sum(pre) / count
                var = self.op.channel_sum((pre - self.op.per_neuron(mean)) ** 2) / count
                update_running_stats(self, params, mean, var, count)
        if not static:
            cur = cur.reshape(x.shape[0], x.shape[1], -1)
        cur <<= il.frac_bits
        if il.bias is not None:
            cur += self.op.per_neuron(il.bias)
        if il.levels is not None:
            # v[t] - (lowest level) fits int32 when the current, the largest level and the
            # threshold do (int32 steps are faster; the values are the same)
            reach = int(np.abs(cur).max(initial=0)) + 2 * max(abs(il.mem_lo), abs(il.mem_hi)) \
                + abs(il.threshold)
            narrow = cur.astype(np.int32) if reach < (1 << 31) else cur
            zs, us, gs = self._quantized_steps(il, unit, narrow, static, steps, spike, keep,
                                               dtype)
        else:
            zs, us, gs = self._membrane_steps(il, unit, cur, static, steps, spike, keep, dtype)
        cache = None
        if keep:
            def w_used():
                return (il.weight * grid.weight_scale).astype(dtype)

            cache = LayerCache(x, w_used, (cur * unit).astype(dtype), us, zs, gs,
                               il.beta_num / 2.0 ** il.beta_shift, bn)
        return zs, cache

    def _input_steps(self, x: np.ndarray, in_scale: float) -> np.ndarray:
        """The first layer's input as whole input steps (what the deployed layer sees)."""
        xs = x.astype(np.float64) / in_scale
        xi = np.rint(xs)
        if xi.size and np.abs(xi - xs).max() > 1e-3:
            raise ValueError(f"layer {self.index}: an input is not a whole number of input "
                             f"steps ({in_scale:g}); the deployed network sees only those")
        return xi

    @staticmethod
    def _quantized_steps(il: IntLayer, unit, cur, static, steps, spike, keep, dtype):
        """Quantized states: the stored code indexes everything that depends on the state
        alone -- its leaked level (as the hardware's table), its real value and the
        surrogate derivative there -- and ``z = code > threshold_code``. Each step keeps
        the lookup's index of the code (:class:`_CodeLookup`), from which every such
        table is read directly: the next start, then once for all steps the derivatives
        and, when first asked for, the real values. Updates are held relative to the
        lookup's first boundary (the tables of starts shifted alike), so the integers of
        ``cur``'s dtype must hold ``|cur| + 2 * max|level| + threshold``. Returns
        ``(spikes (T, B, N), a function returning u (T+1, B, N) real, dz/du)`` in
        ``dtype``, the last two None without ``keep``."""
        levels = il.levels.astype(np.int64)
        half = (1 << (il.beta_shift - 1)) if il.beta_shift else 0
        leaked = (il.beta_num * levels + half) >> il.beta_shift
        top = int(np.searchsorted(levels, il.threshold, side="right")) - 1
        # the next update's start from each code, the reset of a spike (code > top)
        # included: leak - theta (subtract) or nothing (clear: the current alone)
        start = leaked.copy()
        if il.reset == "subtract":
            start[top + 1:] -= il.threshold
        elif il.reset == "clear":
            start[top + 1:] = 0
        lookup = _CodeLookup(decision_boundaries(levels), cur.dtype)
        lo = lookup.lo
        # r = v - lo; the zero reset's product needs v itself: it takes lo off after
        off = 0 if il.reset == "zero" else lo
        start_k = (lookup.table(start) - off).astype(cur.dtype)
        code0 = int(np.searchsorted(lookup.bounds, 0))
        # z = code > top: r above the boundary under the threshold (always / never when
        # the threshold is below / above every level)
        fire_above = int(lookup.bounds[top]) - lo if 0 <= top < len(lookup.bounds) else None
        shape = (cur.shape[-2], cur.shape[-1])
        ks = np.empty((steps if keep else 2,) + shape, dtype=np.intp)
        # rest "zero": the first update starts from exactly 0, whose leak is 0
        leak = np.full(shape, (leaked[code0] if il.rest == "level" else 0) - off,
                       dtype=cur.dtype)
        r = np.empty(shape, dtype=cur.dtype)
        stay = np.empty(shape, dtype=bool)
        scratch = np.empty(shape, dtype=cur.dtype)
        fired = np.empty((steps,) + shape, dtype=bool)
        for t in range(steps):
            i_t = cur if static else cur[t]
            if t:
                prev = ks[t - 1 if keep else (t - 1) % 2]
                start_k.take(prev, out=leak, mode="clip")   # "clip": unbuffered
            np.add(leak, i_t, out=r)
            if il.reset == "zero":
                if t:                                 # (1 - z) * (leak + I)
                    np.multiply(r, np.logical_not(fired[t - 1], out=stay), out=r)
                np.subtract(r, lo, out=r)
            lookup.index(r, ks[t if keep else t % 2], scratch)
            if fire_above is None:
                fired[t] = top < 0
            else:
                np.greater(r, fire_above, out=fired[t])
        zs = fired.astype(dtype)
        if not keep:
            return zs, None, None
        real = (levels * unit).astype(dtype)
        slope = spike.derivative(((levels - il.threshold) * unit).astype(dtype))

        def states():
            us = np.empty((steps + 1,) + shape, dtype=dtype)
            us[0] = real[code0] if il.rest == "level" else 0.0
            np.take(lookup.table(real), ks, out=us[1:], mode="clip")
            return us

        return zs, states, np.take(lookup.table(slope), ks, mode="clip")

    @staticmethod
    def _membrane_steps(il: IntLayer, unit, cur, static, steps, spike, keep, dtype):
        """Unquantized states: the saturating ``mem_bits`` membrane, in int64, in place;
        its real values and derivatives once for all steps afterwards."""
        lo, hi = -(1 << (il.mem_bits - 1)), (1 << (il.mem_bits - 1)) - 1
        half = (1 << (il.beta_shift - 1)) if il.beta_shift else 0
        shape = (cur.shape[-2], cur.shape[-1])
        fired = np.empty((steps,) + shape, dtype=bool)
        us = np.empty((steps + 1 if keep else 2,) + shape, np.int64)
        us[0] = 0
        scratch = np.empty(shape, np.int64)
        for t in range(steps):
            u_prev, v = (us[t], us[t + 1]) if keep else (us[t % 2], us[(t + 1) % 2])
            i_t = cur if static else cur[t]
            np.multiply(u_prev, il.beta_num, out=v)      # the leak, rounded half up
            np.add(v, half, out=v)
            np.right_shift(v, il.beta_shift, out=v)
            if t and il.reset == "clear":
                np.multiply(v, np.logical_not(fired[t - 1]), out=v)
            np.add(v, i_t, out=v)
            if t:
                _apply_reset(il.reset, v, fired[t - 1], il.threshold, scratch)
            np.clip(v, lo, hi, out=v)
            np.greater(v, il.threshold, out=fired[t])
        zs = fired.astype(dtype)
        if not keep:
            return zs, None, None
        gs = spike.derivative(((us[1:] - il.threshold) * unit).astype(dtype))
        return zs, (us * unit).astype(dtype), gs

    def _bptt_detached(self, cache: LayerCache, dz_ext: np.ndarray):
        """``(dL/dI (T, B, N), dL/dbeta)`` through the recurrence with the reset detached:
        ``dL/dv[t] = dL/dz[t] * g[t] + beta * dL/dv[t+1]`` (times ``1 - z[t-1]`` for the
        zero and clear resets) -- the only sequential part, two or three in-place
        operations per step; the rest over all timesteps at once."""
        lc, beta = self.cfg, cache.beta
        steps = dz_ext.shape[0]
        dv = np.multiply(dz_ext, cache.g)         # the spikes' part of dL/dv, every step
        masked = lc.reset != "subtract"
        # dL/dv[t] * (1 - z[t-1]): what flows to beta*u[t-1] (and the current, zero reset)
        dvm = np.empty_like(dv) if masked else dv
        for t in range(steps - 1, -1, -1):
            if t < steps - 1:                      # + beta * dL/dv(masked)[t+1]
                np.add(dv[t], np.multiply(dvm[t + 1], beta), out=dv[t])
            if masked:
                np.multiply(dv[t], 1.0 - cache.z[t - 1] if t else 1.0, out=dvm[t])
        dbeta = 0.0
        if lc.learn_beta:   # per step, last first, as float64 sums of each step's total
            prod = dvm * cache.u[:-1]
            for t in range(steps - 1, -1, -1):
                dbeta += float(np.sum(prod[t]))
        return (dvm if lc.reset == "zero" else dv), dbeta

    def _bptt_through_reset(self, cache: LayerCache, dz_ext: np.ndarray):
        """:meth:`_bptt_detached` with the gradient also flowing through the reset term
        (``detach_reset=False``): step by step."""
        lc, beta, theta = self.cfg, cache.beta, self.cfg.threshold
        steps = dz_ext.shape[0]
        static = cache.x.ndim == 2
        d_cur = np.empty_like(dz_ext)
        carry_u = np.zeros_like(dz_ext[0])
        carry_z = np.zeros_like(dz_ext[0])
        dbeta = 0.0
        for t in range(steps - 1, -1, -1):
            dv = (dz_ext[t] + carry_z) * cache.g[t] + carry_u  # Q: straight through
            u_prev = cache.u[t]
            if lc.reset == "subtract":
                d_cur[t] = dv
                carry_u = beta * dv
                dbeta += float(np.sum(dv * u_prev))
                carry_z = -theta * dv
            else:
                # zero: v = (1 - z) * (beta*u + I); clear: v = (1 - z) * beta*u + I
                z_prev = cache.z[t - 1] if t > 0 else 0.0
                dvm = dv * (1.0 - z_prev)
                d_cur[t] = dvm if lc.reset == "zero" else dv
                carry_u = beta * dvm
                dbeta += float(np.sum(dvm * u_prev))
                i_t = cache.cur if static else cache.cur[t]
                carry_z = -dv * (beta * u_prev + (i_t if lc.reset == "zero" else 0.0))
        return d_cur, dbeta

    def backward(self, params: dict, cache: LayerCache, dz_ext: np.ndarray,
                 detach_reset: bool, need_dx: bool):
        """Gradients of the loss given ``dL/dz`` (T, B, n_out) from above (of the pooled
        spikes). Returns ``(grads dict, dL/dx or None)``."""
        if self.pool is not None:
            dz_ext = self.pool.backward(dz_ext, cache.route)
        lc = self.cfg
        static = cache.x.ndim == 2
        if detach_reset:
            d_cur, dbeta = self._bptt_detached(cache, dz_ext)
        else:
            d_cur, dbeta = self._bptt_through_reset(cache, dz_ext)
        grads = {}
        op = self.op
        if static:
            d = d_cur.sum(axis=0)  # the same current feeds every timestep
            rows = cache.x
        else:
            d = d_cur.reshape(-1, d_cur.shape[-1])
            rows = cache.x.reshape(-1, cache.x.shape[-1])
        bn = cache.bn
        if bn is not None and bn[0] == "batch":
            _, xhat, inv, count = bn
            grads[self.key("bn_weight")] = op.channel_sum(d * xhat)
            grads[self.key("bn_bias")] = op.channel_sum(d)
            dxh = d * op.per_neuron(params[self.key("bn_weight")])
            d = op.per_neuron(inv) * (dxh - op.per_neuron(op.channel_sum(dxh) / count)
                                      - xhat * op.per_neuron(op.channel_sum(dxh * xhat)
                                                             / count))
        if cache.tawq is not None:      # a weight per timestep: train/tawq.py
            dw, dx = cache.tawq.backward(op, d_cur, cache.x, need_dx)
        else:
            dw, dx = op.backward(d, rows, cache.w if need_dx else None, need_dx)
        if dx is not None and not static:
            dx = dx.reshape(cache.x.shape)
        if bn is not None and bn[0] == "fold":
            # w_f = W * k, b_f = beta_bn - mean * k, k = gamma * inv_sd (running stats fixed)
            _, k, inv_sd, mean = bn
            w = params[self.key("weight")]
            db_f = op.channel_sum(d)
            grads[self.key("weight")] = dw * op.channel_view(k)
            grads[self.key("bn_weight")] = inv_sd * (
                (dw * w).reshape(op.channels, -1).sum(axis=1) - db_f * mean)
            grads[self.key("bn_bias")] = db_f
        else:
            grads[self.key("weight")] = dw
        if self.key("bias") in params:
            grads[self.key("bias")] = op.channel_sum(d)
        if lc.learn_beta:
            grads[self.key("beta")] = np.asarray(dbeta, dtype=dz_ext.dtype)
        return grads, dx


class SNN:
    """A feed-forward chain of :class:`LIFLayer`.

    ``params``: dict name -> array (``layer{i}.weight`` (N, M) or (C_out, C, K, K),
    ``layer{i}.bias`` (C_out,), ``layer{i}.beta`` scalar; batch-normalized layers
    ``layer{i}.bn_weight``, ``bn_bias`` (trained), ``bn_mean``, ``bn_var`` (running
    statistics), each (C_out,)). ``spike``: the spike function (surrogate).
    ``in_shape``: (C, H, W) of the input when it is an image (convolutions need it).
    """

    def __init__(self, n_in: int, layer_cfgs, spike: SpikeFunction, beta_shift: int = 12,
                 detach_reset: bool = True, dtype=np.float32, in_shape=None):
        self.n_in = int(n_in)
        self.in_shape = None if in_shape is None else tuple(in_shape)
        self.layers = []
        layer_cfgs = tuple(layer_cfgs)
        for i, (lc, geo) in enumerate(zip(layer_cfgs, geometry(layer_cfgs, self.n_in,
                                                               self.in_shape), strict=True)):
            if lc.is_conv:
                op = Conv2d(geo.in_shape, lc.size, lc.kernel, lc.stride, lc.padding)
                pool = MaxPool(op.conv_shape, lc.pool) if lc.pool > 1 else None
            else:
                op, pool = Dense(geo.n_in, lc.size), None
            self.layers.append(LIFLayer(i, op, lc, pool))
        self.spike = spike
        self.beta_shift = beta_shift
        self.detach_reset = detach_reset
        self.dtype = np.dtype(dtype)
        self.params: dict = {}
        # how layers are deployed (set by the trainer, :meth:`set_deployment`)
        self.deploy_cfg = None
        self.input_scale = 1.0

    def set_deployment(self, cfg, input_scale: float) -> None:
        """The export settings (a ``TrainConfig``: frac_bits, mem_bits, float_weight_bits,
        beta_shift) and the real value of one input step: what the deployed grid of
        every layer is computed from."""
        self.deploy_cfg, self.input_scale = cfg, float(input_scale)

    def grid(self, index: int) -> Grid:
        """Layer ``index``'s deployed grid for the current parameters."""
        from .export import deploy_layer
        if self.deploy_cfg is None:
            raise ValueError("this SNN has no deployment settings: call set_deployment "
                             "(the trainer does) before a quantized forward pass")
        il, info = deploy_layer(self, index, self.deploy_cfg,
                                self.input_scale if index == 0 else 1.0)
        return Grid(il, info["membrane_unit"], info["input_scale"], info["weight_scale"])

    def init_params(self, rng: np.random.Generator, init_scale: float = 1.0) -> None:
        """PyTorch's ``nn.Linear`` / ``nn.Conv2d`` default: U(-1/sqrt(fan_in),
        1/sqrt(fan_in)) for weights and biases; batch normalization starts as the identity
        (gamma 1, beta 0, running mean 0, running variance 1)."""
        self.params = {}
        for layer in self.layers:
            op = layer.op
            bound = init_scale / np.sqrt(op.fan_in)
            w = rng.uniform(-bound, bound, size=op.weight_shape)
            self.params[layer.key("weight")] = w.astype(self.dtype)
            if layer.cfg.has_bias:
                b = rng.uniform(-bound, bound, size=op.channels)
                self.params[layer.key("bias")] = b.astype(self.dtype)
            if layer.cfg.batch_norm:
                for name, value in (("bn_weight", 1.0), ("bn_bias", 0.0), ("bn_mean", 0.0),
                                    ("bn_var", 1.0)):
                    self.params[layer.key(name)] = np.full(op.channels, value, self.dtype)
            self.params[layer.key("beta")] = np.asarray(layer.cfg.beta, dtype=self.dtype)

    def clamp(self) -> None:
        """Keep learnable betas deployable: in [2**-beta_shift, 1]."""
        lo = 2.0 ** -self.beta_shift
        for layer in self.layers:
            k = layer.key("beta")
            self.params[k] = np.clip(self.params[k], lo, 1.0).astype(self.dtype)

    @property
    def n_out(self) -> int:
        return self.layers[-1].n_out

    def forward(self, x: np.ndarray, steps: int, quant: bool = True, keep: bool = False,
                deployed: bool = False, train: bool = False):
        """Run the network. ``x``: (B, M) static input (fed every timestep) or (T, B, M)
        spikes. ``quant``: training-time quantization -- layers trained with QAT weights
        or SQUAT states run on their deployed grid (module docstring), the others in
        float; False gives the plain float model. ``deployed``: every layer on its
        deployed grid (PTQ and float layers quantized as the export does): the deployed
        network. ``train``: a training step (batch normalization on batch statistics in
        float layers; running statistics updated). Returns ``(spikes per layer
        (T, B, n_out), caches or None)``."""
        h = x.astype(self.dtype, copy=False)
        outs, caches = [], []
        for i, layer in enumerate(self.layers):
            grid = self.grid(i) if deployed or (quant and layer.aware) else None
            z, cache = layer.forward(self.params, h, steps, self.spike, quant,
                                     self.detach_reset, keep, grid, train)
            outs.append(z)
            caches.append(cache)
            h = z
        return outs, (caches if keep else None)

    def backward(self, caches, d_out: np.ndarray) -> dict:
        """BPTT: gradients of every parameter given ``dL/dz`` of the output layer (T, B, N)."""
        grads: dict = {}
        dz = d_out.astype(self.dtype, copy=False)
        for i in range(len(self.layers) - 1, -1, -1):
            g, dz = self.layers[i].backward(self.params, caches[i], dz, self.detach_reset,
                                            need_dx=i > 0)
            grads.update(g)
        return grads
