"""The network top: layer engines chained through their output FIFOs (so layer l+1
works on timestep t-1 while layer l works on t), spike counters and argmax at the end,
a per-sample start/done handshake and a sticky error flag.

Protocol (docs/hardware.md):

1. Pulse ``start`` while ``busy`` is low: every layer's next timestep starts from the rest
   state, the counters clear, ``busy`` rises.
2. Send the sample on ``events`` (:mod:`.layouts`): T timesteps, each closed by an
   ``eot`` beat; the last one has ``last = 1``. Beats after it wait for the next ``start``.
3. One beat appears on ``results`` (prediction + counts); when it is accepted ``done``
   pulses and ``busy`` falls.

Invalid input beats (spike address >= M, ``last`` on a non-``eot`` beat, more or fewer
than M values in a direct-input timestep) are dropped and set ``error``, which stays set
until reset; missing direct values count as 0.
"""

from __future__ import annotations

from itertools import pairwise

from amaranth.hdl import Array, Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from .._check import check_int
from ..contract import IntNetwork
from ._util import check_lanes, index_width
from .engine import LayerEngine
from .layouts import result_layout

MAX_COUNT_BITS = 32


def lanes_per_layer(net: IntNetwork, lanes) -> tuple[int, ...]:
    """``lanes``: one int for every layer, or a sequence with one entry per layer."""
    if isinstance(lanes, int) and not isinstance(lanes, bool):
        return (check_lanes(lanes),) * len(net.layers)
    lanes = tuple(lanes)
    if len(lanes) != len(net.layers):
        raise ValueError(f"lanes must be an int or have one entry per layer "
                         f"({len(net.layers)}), got {len(lanes)}")
    return tuple(check_lanes(p) for p in lanes)


class NetworkTop(wiring.Component):
    """Parameters
    ----------
    net : IntNetwork.
    lanes : P (int) or one P per layer.
    count_bits : width of the saturating output spike counters.
    fifo_depth : output FIFO depth in words, one int for every layer or one per layer
        (None: two timesteps of words, 2 * (G + 1); the minimum is G + 1).
    pipelined : state quantizer implementation (None: automatic by code width).
    weight_storage : "rom" (default), "ram" or "spram", one for every layer or one per
        layer (:class:`~.weight_memory.WeightMemory`).

    Members
    -------
    events : In(stream), spike events (input_bits == 1) or direct values.
    results : Out(stream), ``{prediction, counts}`` once per sample.
    start : In(1); busy, done, error : Out(1).
    weight_load : In, only when a layer has RAM weights: ``layer``, ``addr``, ``data``
        (packed word, low bits), ``en``. Ignored while ``busy`` and for ROM layers.
    """

    def __init__(self, net: IntNetwork, *, lanes=1, count_bits: int = 16,
                 fifo_depth: int | None = None, pipelined: bool | None = None,
                 weight_storage="rom"):
        if not isinstance(net, IntNetwork):
            raise TypeError(f"net must be an IntNetwork, got {type(net).__name__}")
        self.net = net
        self.lanes = lanes_per_layer(net, lanes)
        self.count_bits = check_int("count_bits", count_bits, 1, MAX_COUNT_BITS)
        depths = fifo_depth if isinstance(fifo_depth, (list, tuple)) else \
            [fifo_depth] * len(net.layers)
        if len(depths) != len(net.layers):
            raise ValueError(f"fifo_depth must be an int or have one entry per layer "
                             f"({len(net.layers)}), got {len(depths)}")
        # ---- RAM weights: storage per layer and the loader's port ----
        self.weight_storage = _per_layer("weight_storage", weight_storage, len(net.layers))
        self.engines = []
        for i, layer in enumerate(net.layers):
            if i == 0:
                kind = "spike" if net.input_bits == 1 else "direct"
                kw = dict(input_kind=kind, input_bits=net.input_bits)
            else:
                up = self.engines[-1]
                kw = dict(input_kind="words", upstream_groups=up.groups,
                          upstream_lanes=up.lanes)
            self.engines.append(LayerEngine(layer, lanes=self.lanes[i], fifo_depth=depths[i],
                                            pipelined=pipelined,
                                            weight_storage=self.weight_storage[i], **kw))
        self.n_out = net.n_out
        super().__init__({
            "events": In(stream.Signature(self.engines[0].in_layout)),
            "results": Out(stream.Signature(result_layout(self.n_out, self.count_bits))),
            "start": In(1), "busy": Out(1), "done": Out(1), "error": Out(1),
            **({"weight_load": In(self.weight_load_signature())} if self.loadable else {}),
        })

    # ---- RAM weights ----------------------------------------------------------------------
    @property
    def loadable(self) -> list[int]:
        """Indices of the layers whose weights are written by a loader."""
        return [i for i, e in enumerate(self.engines) if e.weights.writable]

    def weight_load_signature(self) -> wiring.Signature:
        """``layer``, ``addr``, ``data``, ``en`` as seen by the loader (widths: the widest
        RAM layer's)."""
        wms = [self.engines[i].weights for i in self.loadable]
        return wiring.Signature({
            "layer": Out(index_width(len(self.engines))),
            "addr": Out(max(len(w.write.addr) for w in wms)),
            "data": Out(max(w.word_width for w in wms)), "en": Out(1)})

    def memory_bits(self) -> list[dict]:
        return [e.memory_bits() for e in self.engines]

    @property
    def geometry(self):
        return [e.geometry for e in self.engines]

    def elaborate(self, platform):
        m = Module()
        engines = self.engines
        for i, e in enumerate(engines):
            m.submodules[f"layer{i}"] = e
        for up, down in pairwise(engines):
            wiring.connect(m, up.spikes, down.events)

        busy, closed = self.busy, Signal()
        start_ok = self.start & ~busy
        for e in engines:
            m.d.comb += e.start.eq(start_ok)
        first = engines[0].events
        open_ = busy & ~closed
        m.d.comb += [
            first.payload.eq(self.events.payload),
            first.valid.eq(self.events.valid & open_),
            self.events.ready.eq(first.ready & open_),
        ]
        pay = self.events.payload
        with m.If(self.events.valid & self.events.ready & pay.eot & pay.last):
            m.d.sync += closed.eq(1)

        # ---- spike counters (saturating) -------------------------------------------------
        last = engines[-1]
        out = last.spikes
        m.d.comb += out.ready.eq(1)
        cmax = (1 << self.count_bits) - 1
        counts = [Signal(self.count_bits, name=f"count{n}") for n in range(self.n_out)]
        w = out.payload
        with m.If(out.valid & ~w.eot):
            for n, c in enumerate(counts):
                g, p = divmod(n, last.lanes)
                with m.If((w.group == g) & w.mask[p] & (c != cmax)):
                    m.d.sync += c.eq(c + 1)

        # ---- argmax: a scan over the counters, ties to the lowest index --------------------
        # two stages: read counts[idx] into a register | compare with the best so far
        scanning, idx = Signal(), Signal(index_width(self.n_out))
        cmp_valid, cmp_idx = Signal(), Signal(index_width(self.n_out))
        cmp_cnt = Signal(self.count_bits)
        best_idx, best_cnt = Signal(index_width(self.n_out)), Signal(self.count_bits)
        rvalid = Signal()
        with m.If(out.valid & w.eot & w.last):
            m.d.sync += [scanning.eq(1), idx.eq(0)]
        m.d.sync += [cmp_valid.eq(scanning), cmp_idx.eq(idx), cmp_cnt.eq(Array(counts)[idx])]
        with m.If(scanning):
            m.d.sync += idx.eq(idx + 1)
            with m.If(idx == self.n_out - 1):
                m.d.sync += scanning.eq(0)
        with m.If(cmp_valid):
            with m.If((cmp_idx == 0) | (cmp_cnt > best_cnt)):
                m.d.sync += [best_idx.eq(cmp_idx), best_cnt.eq(cmp_cnt)]
            with m.If(cmp_idx == self.n_out - 1):
                m.d.sync += rvalid.eq(1)
        res = self.results.payload
        m.d.comb += [self.results.valid.eq(rvalid), res.prediction.eq(best_idx)]
        for n, c in enumerate(counts):
            m.d.comb += res.counts[n].eq(c)
        with m.If(rvalid & self.results.ready):
            m.d.sync += [rvalid.eq(0), busy.eq(0)]
            m.d.comb += self.done.eq(1)

        with m.If(start_ok):
            m.d.sync += [busy.eq(1), closed.eq(0)] + [c.eq(0) for c in counts]
        m.d.comb += self.error.eq(engines[0].error)

        # ---- RAM weights: the loader writes one layer's memory while idle ----
        for i in self.loadable:
            ww, ld = engines[i].weight_write, self.weight_load
            m.d.comb += [ww.addr.eq(ld.addr), ww.data.eq(ld.data),
                         ww.en.eq(ld.en & (ld.layer == i) & ~busy)]
        return m


def _per_layer(name: str, value, n: int) -> list:
    """One value for every layer, or a list/tuple with one entry per layer."""
    values = list(value) if isinstance(value, (list, tuple)) else [value] * n
    if len(values) != n:
        raise ValueError(f"{name} must be one value or have one entry per layer ({n}), "
                         f"got {len(values)}")
    return values
