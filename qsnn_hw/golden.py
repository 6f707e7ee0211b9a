"""The integer golden model: the deployed network, exactly (docs/fixed-point.md).

Integer NumPy only, vectorised over batch and neurons. Because layers feed forward
within a timestep, each layer is run over all T timesteps before the next: its input
currents for every timestep come from one matrix product, and only the membrane
recursion loops over time.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._check import check_int_array
from .contract import IntLayer, IntNetwork
from .quant.state import nearest_level


@dataclass(frozen=True, eq=False)
class GoldenResult:
    """Outputs of :func:`simulate` for a batch of B samples over T timesteps.

    ``spikes[l]``: (B, T, N_l) uint8 output spike trains of layer l (after pooling).
    ``final_mem[l]``: (B, N_l) int64 membrane values after the last timestep (one per
    neuron: ``n_neurons``, before pooling).
    ``final_codes[l]``: (B, N_l) int64 state codes (None for unquantized layers).
    ``mem[l]`` / ``codes[l]``: (B, T, N_l) traces, only when ``trace=True``.
    ``counts``: (B, N_out) output spike counts; ``predictions``: (B,) argmax of the
    counts, ties to the lowest index.
    """

    spikes: list
    final_mem: list
    final_codes: list
    counts: np.ndarray
    predictions: np.ndarray
    mem: list | None = None
    codes: list | None = None


def conv_patches(layer: IntLayer, x: np.ndarray) -> np.ndarray:
    """The receptive field of every neuron of a convolutional layer, zero padded:
    ``(..., H_out, W_out, C*K_h*K_w)`` from flat inputs ``(..., C*H*W)``, taps in the
    (c, ky, kx) order of :attr:`IntLayer.matrix`."""
    c, h, w = layer.in_shape
    kh, kw = layer.kernel
    s, p = layer.stride, layer.padding
    img = x.reshape(x.shape[:-1] + (c, h, w))
    pad = [(0, 0)] * (img.ndim - 2) + [(p, p), (p, p)]
    img = np.pad(img, pad)
    win = np.lib.stride_tricks.sliding_window_view(img, (kh, kw), axis=(-2, -1))
    _, ho, wo = layer.conv_shape
    win = win[..., : (ho - 1) * s + 1: s, : (wo - 1) * s + 1: s, :, :]
    # (..., C, Ho, Wo, kh, kw) -> (..., Ho, Wo, C, kh, kw)
    win = np.moveaxis(win, -5, -3)
    return win.reshape(win.shape[:-3] + (c * kh * kw,))


def tawq_currents(layer: IntLayer, x: np.ndarray) -> np.ndarray:
    """A TaWQ layer's currents (B, T, N): at each timestep the ternary sums of that
    step's weights ``tawq_table[code, t]``, scaled by ``tawq_mult[t]`` with the contract's
    rounding (:meth:`IntLayer.tawq_scale`), plus the bias."""
    batch, steps, _ = x.shape
    cur = np.empty((batch, steps, layer.n_neurons), dtype=np.int64)
    for t in range(steps):
        w_t = layer.ternary(t).reshape(layer.channels, -1)
        if layer.is_conv:
            acc = conv_patches(layer, x[:, t]) @ w_t.T         # (B, Ho, Wo, C_out)
            i_t = layer.tawq_scale(acc, t)
            if layer.bias is not None:
                i_t += layer.bias
            cur[:, t] = np.moveaxis(i_t, -1, 1).reshape(batch, -1)
        else:
            cur[:, t] = layer.tawq_scale(x[:, t] @ w_t.T, t)
            if layer.bias is not None:
                cur[:, t] += layer.bias
    return cur


def input_currents(layer: IntLayer, x: np.ndarray) -> np.ndarray:
    """``(W @ x[b, t]) * 2**frac_bits + bias`` for every sample and timestep: (B, T, N)
    (a convolution's neurons in (C_out, H_out, W_out) order)."""
    if layer.is_tawq:
        return tawq_currents(layer, x)
    if layer.is_conv:
        cur = (conv_patches(layer, x) @ layer.matrix.T) << layer.frac_bits
        if layer.bias is not None:
            cur += layer.bias                               # (B, T, Ho, Wo, C_out)
        cur = np.moveaxis(cur, -1, -3)                      # (B, T, C_out, Ho, Wo)
        return np.ascontiguousarray(cur).reshape(x.shape[:-1] + (layer.n_neurons,))
    cur = np.matmul(x, layer.weight.T) << layer.frac_bits
    if layer.bias is not None:
        cur += layer.bias
    return cur


def max_pool(layer: IntLayer, spikes: np.ndarray) -> np.ndarray:
    """A convolutional layer's output: the OR of every ``pool x pool`` window of its
    neurons' spikes ``(..., C_out*H_out*W_out)`` -> ``(..., n_out)``; the identity for
    ``pool == 1``."""
    k = layer.pool
    if k == 1:
        return spikes
    c, h, w = layer.conv_shape
    ph, pw = h // k, w // k
    grid = spikes.reshape(spikes.shape[:-1] + (c, h, w))[..., : ph * k, : pw * k]
    grid = grid.reshape(grid.shape[:-2] + (ph, k, pw, k))
    return grid.max(axis=(-3, -1)).reshape(spikes.shape[:-1] + (c * ph * pw,))


def run_layer(layer: IntLayer, x: np.ndarray, trace: bool = False):
    """Simulate one layer over all timesteps. ``x``: (B, T, M) int64.

    Returns ``(output spikes (B,T,n_out) uint8, final_mem, final_codes, mem_trace,
    code_trace)``; the states are per neuron (``n_neurons``), the spikes after pooling.
    """
    cur = input_currents(layer, x)
    batch, steps, n = cur.shape
    spikes = np.zeros((batch, steps, n), dtype=np.uint8)
    mem_tr = np.zeros((batch, steps, n), dtype=np.int64) if trace else None
    code_tr = np.zeros((batch, steps, n), dtype=np.int64) if trace and layer.quantized else None
    if layer.quantized:
        bounds = layer.boundaries
        code = np.full((batch, n), layer.rest_code, dtype=np.int64)
        u = np.full((batch, n), layer.rest_value, dtype=np.int64)
    else:
        code = None
        u = np.zeros((batch, n), dtype=np.int64)
    z = np.zeros((batch, n), dtype=bool)
    for t in range(steps):
        v = layer.leak(u) + cur[:, t]
        if layer.reset == "subtract":
            v -= layer.threshold * z
        elif layer.reset == "zero":
            v[z] = 0
        else:                                   # clear: the step's input is kept
            v[z] = cur[:, t][z]
        if layer.quantized:
            code, u = nearest_level(v, layer.levels, bounds)
            z = code > layer.threshold_code
        else:
            u = np.clip(v, layer.mem_lo, layer.mem_hi)
            z = u > layer.threshold
        spikes[:, t] = z
        if trace:
            mem_tr[:, t] = u
            if code_tr is not None:
                code_tr[:, t] = code
    return max_pool(layer, spikes), u, code, mem_tr, code_tr


def check_inputs(net: IntNetwork, x) -> np.ndarray:
    """Validate a (B, T, M) input batch against the network; returns int64."""
    x = check_int_array("inputs", x, ndim=3)
    if x.shape[2] != net.n_in:
        raise ValueError(f"inputs must have shape (batch, timesteps, {net.n_in}), got {x.shape}")
    if x.shape[1] < 1:
        raise ValueError("inputs must have at least one timestep")
    if net.steps is not None and x.shape[1] != net.steps:
        raise ValueError(f"inputs have {x.shape[1]} timesteps but the network's TaWQ "
                         f"layers are built for T = {net.steps} (their weight table has "
                         f"{net.steps} columns): give inputs of shape (batch, {net.steps}, "
                         f"{net.n_in})")
    if x.size and (x.min() < 0 or x.max() > net.input_max):
        raise ValueError(f"inputs must be in [0, {net.input_max}] for input_bits="
                         f"{net.input_bits}, got [{int(x.min())}, {int(x.max())}]")
    return x


def simulate(net: IntNetwork, x, trace: bool = False) -> GoldenResult:
    """Run the integer network on inputs ``x`` of shape (B, T, M).

    ``x`` holds spikes (0/1) for ``input_bits == 1`` or unsigned values up to
    ``2**input_bits - 1``, presented at every timestep as given.
    """
    h = check_inputs(net, x)
    spikes, final_mem, final_codes, mems, codes = [], [], [], [], []
    for layer in net.layers:
        s, u, c, m, ct = run_layer(layer, h, trace)
        spikes.append(s)
        final_mem.append(u)
        final_codes.append(c)
        mems.append(m)
        codes.append(ct)
        h = s.astype(np.int64)
    counts = spikes[-1].sum(axis=1, dtype=np.int64)
    # np.argmax returns the first maximum: ties go to the lowest index.
    predictions = np.argmax(counts, axis=1)
    return GoldenResult(spikes, final_mem, final_codes, counts, predictions,
                        mems if trace else None, codes if trace else None)
