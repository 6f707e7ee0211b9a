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

    ``spikes[l]``: (B, T, N_l) uint8 spike trains of layer l.
    ``final_mem[l]``: (B, N_l) int64 membrane values after the last timestep.
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


def input_currents(layer: IntLayer, x: np.ndarray) -> np.ndarray:
    """``(W @ x[b, t]) * 2**frac_bits + bias`` for every sample and timestep: (B, T, N)."""
    cur = np.matmul(x, layer.weight.T) << layer.frac_bits
    if layer.bias is not None:
        cur += layer.bias
    return cur


def run_layer(layer: IntLayer, x: np.ndarray, trace: bool = False):
    """Simulate one layer over all timesteps. ``x``: (B, T, M) int64.

    Returns ``(spikes (B,T,N) uint8, final_mem, final_codes, mem_trace, code_trace)``.
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
    return spikes, u, code, mem_tr, code_tr


def check_inputs(net: IntNetwork, x) -> np.ndarray:
    """Validate a (B, T, M) input batch against the network; returns int64."""
    x = check_int_array("inputs", x, ndim=3)
    if x.shape[2] != net.n_in:
        raise ValueError(f"inputs must have shape (batch, timesteps, {net.n_in}), got {x.shape}")
    if x.shape[1] < 1:
        raise ValueError("inputs must have at least one timestep")
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
