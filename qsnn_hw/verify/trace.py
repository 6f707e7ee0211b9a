"""From raw trace-port activity to golden-shaped observations (:class:`.compare.Observed`).

Both simulator paths record the same three things, as integers, in order:

* per layer, every spike word written into its output FIFO (``trace__layer<l>__word``
  while ``word_valid``);
* per layer, every state write ``(group, packed lanes)`` (``state_addr``/``state_data``
  while ``state_en``);
* every result beat ``(cycle, error, payload)`` and every ``start`` cycle.

:func:`rebuild` turns them into spikes and states per timestep. Field offsets come from
the layouts of :mod:`qsnn_hw.hdl.layouts` (the same objects the gateware uses).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..hdl.layouts import result_layout, spike_word_layout
from .compare import Observed


@dataclass
class RawTrace:
    """Trace-port activity of one core: ``words[l]`` (ints), ``states[l]`` ((addr, data)
    pairs), ``results`` ((cycle, error, payload) triples), ``starts`` (cycles),
    ``unknown`` (fields that held X/Z bits in a 4-state simulator)."""

    words: list
    states: list
    results: list = field(default_factory=list)
    starts: list = field(default_factory=list)
    unknown: list = field(default_factory=list)
    state_unknown: list = field(default_factory=list)   # per layer: indices of X/Z writes

    @classmethod
    def empty(cls, n_layers: int) -> RawTrace:
        return cls([[] for _ in range(n_layers)], [[] for _ in range(n_layers)],
                   state_unknown=[[] for _ in range(n_layers)])


def unpack_lanes_bulk(words: list[int], width: int, lanes: int, signed: bool) -> np.ndarray:
    """(R, P) lane values of R packed words (lane 0 in the low bits)."""
    nbytes = max(1, -(-(width * lanes) // 8))
    raw = b"".join(int(w).to_bytes(nbytes, "little") for w in words)
    bits = np.unpackbits(np.frombuffer(raw, np.uint8).reshape(len(words), nbytes),
                         axis=1, bitorder="little")[:, :width * lanes]
    bits = bits.reshape(len(words), lanes, width).astype(np.int64)
    vals = np.zeros((len(words), lanes), np.int64)
    for i in range(width):   # at most 62 bits: exact in int64
        vals |= bits[:, :, i] << i
    if signed:
        vals -= bits[:, :, width - 1] << width
    return vals


def _field(values, f) -> np.ndarray:
    return (values >> f.offset) & ((1 << f.width) - 1)


def _to_contract(hw: np.ndarray, order: np.ndarray, n: int) -> np.ndarray:
    """Hardware lanes (R, slots) -> the contract's (R, n) order (``order``: the contract
    index of every slot, -1 for padding lanes, :mod:`qsnn_hw.hdl.geometry`)."""
    out = np.zeros((hw.shape[0], n), hw.dtype)
    ok = order >= 0
    out[:, order[ok]] = hw[:, ok]
    return out


def _rebuild_spikes(geom, words, B, T, li, problems) -> np.ndarray:
    # spike words carry the output groups (OG: a pooled convolution's) in hardware order
    N, P, G = geom.n_out, geom.lanes, geom.out_groups
    sp = np.zeros((B * T, G * P), np.uint8)
    if words:
        lay = spike_word_layout(G, P)
        wide = lay.size > 62
        w = np.array(words, dtype=object if wide else np.int64)
        eot = _field(w, lay["eot"]).astype(bool)
        step = np.cumsum(eot) - eot            # the timestep each word belongs to
        n_steps = int(eot.sum())
        if n_steps != B * T:
            problems.append(f"layer {li}: {n_steps} end-of-timestep words, expected {B * T}")
        data = ~eot & (step < B * T)
        g = _field(w[data], lay["group"]).astype(np.int64)
        mask = _field(w[data], lay["mask"])
        bits = ((mask[:, None] >> np.arange(P)) & 1).astype(np.uint8)
        rows = np.repeat(step[data], P)
        cols = (g[:, None] * P + np.arange(P)).ravel()
        ok = cols < G * P
        np.add.at(sp, (rows[ok], cols[ok]), bits.ravel()[ok])
        lastw = _field(w[eot], lay["last"]).astype(bool)
        want_last = (np.arange(n_steps) % T) == T - 1
        if n_steps == B * T and not np.array_equal(lastw, want_last):
            k = int(np.argmax(lastw != want_last))
            problems.append(f"layer {li}: 'last' flag wrong on timestep word {k} "
                            f"(sample {k // T}, timestep {k % T})")
    elif B * T:
        problems.append(f"layer {li}: no spike words at all (expected {B * T} "
                        f"end-of-timestep words)")
    return np.minimum(_to_contract(sp, geom.out_order(), N), 1).reshape(B, T, N)


def _rebuild_states(geom, writes, unknown, B, T, li, problems) -> np.ndarray:
    # one state per neuron (a convolution's C_out*H_out*W_out, before pooling)
    N, P, G = geom.n_neurons, geom.lanes, geom.groups
    st = np.zeros((B * T, G * P), np.int64)
    if len(writes) != B * T * G:
        problems.append(f"layer {li}: {len(writes)} state writes, expected {B * T * G} "
                        f"({B} samples x {T} timesteps x {G} groups)")
    n = min(len(writes), B * T * G) // G * G
    if n:
        addr = np.array([a for a, _ in writes[:n]], np.int64)
        want = np.tile(np.arange(G), n // G)
        if not np.array_equal(addr, want):
            k = int(np.argmax(addr != want))
            problems.append(f"layer {li}: state write {k} went to group {addr[k]}, "
                            f"expected {want[k]}")
        vals = unpack_lanes_bulk([d for _, d in writes[:n]], geom.state_width, P,
                                 geom.state_signed)
        st[:n // G] = vals.reshape(n // G, G * P)
    xw = [k for k in unknown if k < n]
    if xw:
        k = xw[0]
        problems.append(f"layer {li}: {len(xw)} state write(s) hold X/Z (unknown) bits; "
                        f"first: sample {k // G // T}, timestep {k // G % T}, group {k % G}")
    return _to_contract(st, geom.state_order(), N).reshape(B, T, N)


def rebuild(geometry: list, count_bits: int, raw: RawTrace, samples: int, timesteps: int
            ) -> Observed:
    """The observed behaviour of a core with per-layer ``geometry``
    (:func:`qsnn_hw.hdl.geometry.network_geometry`) over ``samples`` x ``timesteps``."""
    B, T = samples, timesteps
    problems: list[str] = []
    spikes, states = [], []
    for li, geom in enumerate(geometry):
        spikes.append(_rebuild_spikes(geom, raw.words[li], B, T, li, problems))
        unk = raw.state_unknown[li] if raw.state_unknown else []
        states.append(_rebuild_states(geom, raw.states[li], unk, B, T, li, problems))
    if raw.unknown:
        problems.append(f"{len(raw.unknown)} spike word/result field(s) hold X/Z bits")
    n_out = geometry[-1].n_out
    lay = result_layout(n_out, count_bits)
    counts = np.zeros((B, n_out), np.int64)
    preds = np.full(B, -1, np.int64)
    errors = np.zeros(B, bool)
    res = raw.results
    if len(res) != B:
        problems.append(f"{len(res)} result beats, expected {B}")
    pf, cf = lay["prediction"], lay["counts"]
    for b, (_, err, word) in enumerate(res[:B]):
        preds[b] = (word >> pf.offset) & ((1 << pf.width) - 1)
        counts[b] = unpack_lanes_bulk([word >> cf.offset], count_bits, n_out, False)[0]
        errors[b] = bool(err)
    cycles = None
    if len(raw.starts) >= B and len(res) >= B:
        cycles = np.array([res[b][0] - raw.starts[b] for b in range(B)], np.int64)
    return Observed(spikes, states, counts, preds, errors, problems, cycles)


_UNKNOWN = str.maketrans("xXzZ", "0000")


def _hex(text: str, unknown: list) -> int:
    """A hex trace field; X/Z digits (4-state simulators) read as 0, recorded in
    ``unknown``."""
    try:
        return int(text, 16)
    except ValueError:
        unknown.append(text)
        return int(text.translate(_UNKNOWN), 16)


class TraceError(Exception):
    """The trace file does not have the expected structure."""


def parse_trace(text: str, n_layers: int) -> RawTrace:
    """Parse the harness' trace file (:mod:`.harness`): ``B <cycle>`` (a sample starts),
    ``R <cycle> <error> <result hex>`` (a result beat accepted), ``W<l> <word hex>``
    (layer l wrote a spike word), ``S<l> <group hex> <lanes hex>`` (layer l wrote a
    state word)."""
    raw = RawTrace.empty(n_layers)
    for line in text.splitlines():
        if not line:
            continue
        parts = line.split()
        tag = line[0]
        if tag == "W":
            raw.words[int(parts[0][1:])].append(_hex(parts[1], raw.unknown))
        elif tag == "S":
            li = int(parts[0][1:])
            x: list = []
            raw.states[li].append((_hex(parts[1], x), _hex(parts[2], x)))
            if x:
                raw.state_unknown[li].append(len(raw.states[li]) - 1)
        elif tag == "B":
            raw.starts.append(int(parts[1]))
        elif tag == "R":
            raw.results.append((int(parts[1]), _hex(parts[2], raw.unknown),
                                _hex(parts[3], raw.unknown)))
        else:
            raise TraceError(f"unknown trace line {line!r}")
    return raw
