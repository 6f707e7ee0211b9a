"""The trainer's eval-mode forward pass of the *deployed* model, in integer membrane units.

This is the trainer's own implementation of the integer contract (qsnn_hw/contract.py),
written independently of :mod:`qsnn_hw.golden` so that a test comparing the two compares
two implementations. Differences in approach (same results by construction):

* a static (direct) input's current is computed once, not per timestep;
* the matrix product runs in float64 when every partial sum stays below 2**52 (integers
  are then exact in float64), else in int64;
* the spike test compares the membrane *value* with the threshold, not codes;
* a convolution is a sum over its kernel taps of shifted input planes (one tensor
  product per tap), not a product over receptive fields, and its max pooling an OR of
  strided slices.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..contract import IntLayer, IntNetwork
from ..quant.state import decision_boundaries
from .encoding import Encoded

_EXACT_FLOAT = 1 << 52


def _conv(layer: IntLayer, x: np.ndarray, exact_float: bool, weight=None) -> np.ndarray:
    """A convolution's ``W @ x`` on the last axis of ``x`` (flat (C, H, W) inputs ->
    flat (C_out, H_out, W_out) neurons): for every tap (ky, kx), the input plane shifted
    by it, strided, contracted with ``W[:, :, ky, kx]`` over the input channels
    (``weight``: another kernel than ``layer.weight``, e.g. a TaWQ layer's ternary one)."""
    weight = layer.weight if weight is None else weight
    c, h, w = layer.in_shape
    s, p = layer.stride, layer.padding
    co, ho, wo = layer.conv_shape
    dtype = np.float64 if exact_float else np.int64
    img = x.reshape(x.shape[:-1] + (c, h, w)).astype(dtype)
    pad = np.zeros(x.shape[:-1] + (c, h + 2 * p, w + 2 * p), dtype)
    pad[..., p: p + h, p: p + w] = img
    acc = np.zeros(x.shape[:-1] + (co, ho, wo), dtype)
    kh, kw = layer.kernel
    for ky in range(kh):
        for kx in range(kw):
            plane = pad[..., ky: ky + s * (ho - 1) + 1: s, kx: kx + s * (wo - 1) + 1: s]
            acc += np.einsum("oc,...chw->...ohw", weight[:, :, ky, kx].astype(dtype),
                             plane)
    if exact_float:
        acc = np.rint(acc).astype(np.int64)
    return acc.reshape(x.shape[:-1] + (co * ho * wo,))


def _pool(layer: IntLayer, z: np.ndarray) -> np.ndarray:
    """(B, N) spikes -> (B, n_out): the OR over each ``pool x pool`` window."""
    k = layer.pool
    c, h, w = layer.conv_shape
    grid = z.reshape(z.shape[0], c, h, w)
    ph, pw = h // k, w // k
    out = np.zeros((z.shape[0], c, ph, pw), dtype=bool)
    for dy in range(k):
        for dx in range(k):
            out |= grid[:, :, dy: dy + k * ph: k, dx: dx + k * pw: k]
    return out.reshape(z.shape[0], -1)


def _tawq_current(layer: IntLayer, x: np.ndarray, steps: int) -> np.ndarray:
    """A TaWQ layer's currents (B, T, N) for ``x`` (B, M) static or (B, T, M): the ternary
    sums of every timestep at once (one tensor contraction with the (T, N, M) stack of
    ternary weights), the scale's rounding as a floor division."""
    if layer.steps != steps:
        raise ValueError(f"this TaWQ layer is built for T = {layer.steps} timesteps, the "
                         f"input has {steps}")
    stack = np.moveaxis(layer.tawq_table[layer.weight], -1, 0)     # (T, *weight shape)
    if layer.is_conv:
        xs = x if x.ndim == 3 else np.broadcast_to(x[:, None], (x.shape[0], steps, x.shape[1]))
        acc = np.stack([_conv(layer, xs[:, t], False, stack[t]) for t in range(steps)], 1)
        per = layer.n_neurons // layer.channels
        mult = np.repeat(layer.tawq_mult, per, axis=1)               # (T, N)
        bias = None if layer.bias is None else np.repeat(layer.bias, per)
    else:
        spec = "bm,tnm->btn" if x.ndim == 2 else "btm,tnm->btn"
        acc = np.einsum(spec, x.astype(np.int64), stack.astype(np.int64))
        mult, bias = layer.tawq_mult, layer.bias
    cur = np.floor_divide(acc * mult * (1 << layer.frac_bits)
                          + ((1 << layer.tawq_shift) // 2), 1 << layer.tawq_shift)
    return cur if bias is None else cur + bias


def _current(layer: IntLayer, x: np.ndarray, input_max: int) -> np.ndarray:
    """``(W @ x) * 2**frac_bits + bias`` on the last axis of ``x``."""
    w = layer.matrix
    bound = int(np.abs(w).sum(axis=1).max()) * int(input_max)
    if layer.is_conv:
        cur = _conv(layer, x, bound < _EXACT_FLOAT)
        cur *= 1 << layer.frac_bits
        if layer.bias is not None:
            cur += np.repeat(layer.bias, layer.n_neurons // layer.channels)
        return cur
    if bound < _EXACT_FLOAT:
        cur = np.rint(x.astype(np.float64) @ w.T.astype(np.float64)).astype(np.int64)
    else:
        cur = x.astype(np.int64) @ w.T
    cur *= 1 << layer.frac_bits
    if layer.bias is not None:
        cur += layer.bias
    return cur


@dataclass(frozen=True, eq=False)
class DeployedRun:
    """``spikes[l]``: (B, T, N_l) uint8; ``mem[l]``: (B, T, N_l) int64 (if traced);
    ``counts``: (B, N_out)."""

    spikes: list
    mem: list | None
    counts: np.ndarray


def run_deployed(net: IntNetwork, enc: Encoded, trace: bool = False) -> DeployedRun:
    steps = enc.steps
    h = enc.ints  # (B, M) static, or (B, T, M) spikes
    spikes, mems = [], []
    for i, layer in enumerate(net.layers):
        if layer.is_tawq:                   # weights change every step: (B, T, N)
            cur = _tawq_current(layer, h, steps)
        else:
            cur = _current(layer, h, net.layer_input_max(i))  # (B, N) or (B, T, N)
        static = cur.ndim == 2
        batch, n = cur.shape[0], layer.n_neurons
        if layer.levels is not None:
            bounds = decision_boundaries(layer.levels)
            levels = layer.levels
            u = np.full((batch, n), levels[np.searchsorted(bounds, 0, side="left")], np.int64)
            if layer.rest == "zero":            # snnTorch: exactly 0, a level or not
                u[:] = 0
        else:
            u = np.zeros((batch, n), np.int64)
            lo, hi = -(1 << (layer.mem_bits - 1)), (1 << (layer.mem_bits - 1)) - 1
        z = np.zeros((batch, n), dtype=bool)
        out = np.zeros((batch, steps, layer.n_out), dtype=np.uint8)
        mem = np.zeros((batch, steps, n), dtype=np.int64) if trace else None
        half = (1 << (layer.beta_shift - 1)) if layer.beta_shift else 0
        for t in range(steps):
            i_t = cur if static else cur[:, t]
            v = ((layer.beta_num * u + half) >> layer.beta_shift) + i_t
            if layer.reset == "subtract":
                v = v - layer.threshold * z
            elif layer.reset == "zero":
                v = np.where(z, 0, v)
            else:
                v = np.where(z, i_t, v)
            if layer.levels is not None:
                u = levels[np.searchsorted(bounds, v, side="left")]
            else:
                u = np.clip(v, lo, hi)
            z = u > layer.threshold
            out[:, t] = _pool(layer, z) if layer.pool > 1 else z
            if trace:
                mem[:, t] = u
        spikes.append(out)
        mems.append(mem)
        h = out
    counts = spikes[-1].sum(axis=1, dtype=np.int64)
    return DeployedRun(spikes, mems if trace else None, counts)
