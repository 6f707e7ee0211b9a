"""Input beats of the core's ``events`` stream, built once for every simulator.

A sample ``x`` (T, M) becomes, per timestep, its input beats (spike events: the index of
every input that spikes, in any order; direct values: the M values, input 0 first) and
then one end-of-timestep beat, ``last`` set on the sample's final one. A **static**
sample (``CoreConfig.input``; the same input at every timestep) sends its input beats
once, before the first end-of-timestep beat, then T - 1 bare end-of-timestep beats.
Field offsets come from the stream layout (:mod:`qsnn_hw.hdl.layouts`), never from
hand-written numbers.
"""

from __future__ import annotations

import numpy as np

from ..contract import IntNetwork
from ..hdl.layouts import direct_value_layout, spike_event_layout

GAP_BITS = 4    # idle cycles before a beat: 0 .. 2**GAP_BITS - 1


def event_layout(net: IntNetwork):
    """The ``events`` payload layout of a core of ``net``."""
    return (spike_event_layout(net.n_in) if net.input_bits == 1
            else direct_value_layout(net.input_bits))


def check_static(x: np.ndarray) -> None:
    """Static input sends each sample once: every timestep of ``x`` (B, T, M) must equal
    the first; a ValueError names the first sample that differs."""
    x = np.asarray(x)
    differs = np.flatnonzero((x != x[:, :1]).any(axis=(1, 2)))
    if differs.size:
        b = int(differs[0])
        t = int(np.flatnonzero((x[b] != x[b, :1]).any(axis=1))[0])
        raise ValueError(f"input='static' sends each sample once, so a sample must be the "
                         f"same at every timestep; sample {b} differs at timestep {t} "
                         f"(use input='streamed', --input streamed)")


def sample_beats(net: IntNetwork, xs: np.ndarray, rng: np.random.Generator | None = None,
                 *, static: bool = False) -> np.ndarray:
    """Raw beats (uint64) of one sample ``xs`` (T, M); ``rng`` shuffles the spike events
    within each timestep (the core accepts them in any order); ``static``: the input
    beats of the first timestep only (module docstring)."""
    if static:
        check_static(np.asarray(xs)[None])
    return _beats(net, xs, rng, static)


def _beats(net, xs, rng, static) -> np.ndarray:
    """:func:`sample_beats` of a sample already checked."""
    layout = event_layout(net)
    eot = 1 << layout["eot"].offset
    last = 1 << layout["last"].offset
    steps = xs.shape[0]
    out = []
    for t in range(steps):
        if static and t > 0:
            out.append(np.array([eot | (last if t == steps - 1 else 0)], np.uint64))
            continue
        if net.input_bits == 1:
            idx = np.flatnonzero(xs[t])
            if rng is not None:
                idx = rng.permutation(idx)
            out.append(idx.astype(np.uint64) << np.uint64(layout["addr"].offset))
        else:
            out.append(np.asarray(xs[t]).astype(np.uint64)
                       << np.uint64(layout["value"].offset))
        out.append(np.array([eot | (last if t == steps - 1 else 0)], np.uint64))
    return np.concatenate(out)


def batch_beats(net: IntNetwork, x: np.ndarray, rng: np.random.Generator | None = None,
                *, static: bool = False) -> list[np.ndarray]:
    """:func:`sample_beats` of every sample of ``x`` (B, T, M)."""
    if static:
        check_static(x)
    return [_beats(net, x[b], rng, static) for b in range(x.shape[0])]


def idle_gaps(n: int, prob: float, rng: np.random.Generator) -> np.ndarray:
    """Idle cycles before each of ``n`` beats: 1-3 with probability ``prob``, now and then
    (``prob / 10``) a long pause of ``2**GAP_BITS - 1``; else 0."""
    gaps = np.where(rng.random(n) < prob, rng.integers(1, 4, n), 0)
    long = rng.random(n) < prob / 10
    return np.where(long, (1 << GAP_BITS) - 1, gaps).astype(np.uint64)
