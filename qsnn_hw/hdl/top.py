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
than M values in a direct-input timestep, and with static input any input beat after a
sample's first ``eot``) are dropped and set ``error``, which stays set until reset (so
does a sample whose number of timesteps is not the T of the network's TaWQ layers);
missing direct values count as 0. A static-input core (:class:`~.config.CoreConfig`
``input``) takes a sample's input beats once, then T ``eot`` beats.
"""

from __future__ import annotations

from itertools import pairwise

from amaranth.hdl import Array, Cat, Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from ..contract import IntNetwork
from ._util import index_width
from .config import CoreConfig
from .engine import LayerEngine
from .layouts import result_layout


class NetworkTop(wiring.Component):
    """Parameters
    ----------
    net : IntNetwork.
    config : :class:`~.config.CoreConfig`, the hardware options (lanes, counter width,
        FIFO depths, quantizer kind, weight storage); default ``CoreConfig()``.
    trace : add the ``trace`` port (observation only, for simulation; off in builds).

    Members
    -------
    events : In(stream), spike events (input_bits == 1) or direct values.
    results : Out(stream), ``{prediction, counts}`` once per sample.
    start : In(1); busy, done, error : Out(1).
    weight_load : In, only when a layer has RAM weights: ``layer``, ``addr``, ``data``
        (packed word, low bits), ``en``. Ignored while ``busy`` and for ROM layers.
    trace : Out, only with ``trace=True``: ``layer<l>`` for every layer, each a
        :func:`~.layouts.trace_signature` (spike words and state writes as they happen).
    """

    def __init__(self, net: IntNetwork, config: CoreConfig | None = None, *,
                 trace: bool = False):
        if not isinstance(net, IntNetwork):
            raise TypeError(f"net must be an IntNetwork, got {type(net).__name__}")
        config = CoreConfig() if config is None else config
        if not isinstance(config, CoreConfig):
            raise TypeError(f"config must be a CoreConfig, got {type(config).__name__}")
        self.net = net
        self.config = config
        opts = config.layers(net)
        self.lanes = tuple(o.lanes for o in opts)
        self.count_bits = config.count_bits
        self.weight_storage = [o.storage for o in opts]
        self.engines = []
        for i, layer in enumerate(net.layers):
            if i == 0:
                kind = "spike" if net.input_bits == 1 else "direct"
                kw = dict(input_kind=kind, input_bits=net.input_bits)
            else:
                up = self.engines[-1]
                kw = dict(input_kind="words", upstream_groups=up.out_groups,
                          upstream_lanes=up.lanes, upstream=up.geometry)
            o = opts[i]
            self.engines.append(LayerEngine(layer, lanes=o.lanes, fifo_depth=o.fifo_depth,
                                            pipelined=o.pipelined, weight_storage=o.storage,
                                            banks=o.banks, static=o.static,
                                            trace=trace, **kw))
        self.n_out = net.n_out
        super().__init__({
            "events": In(stream.Signature(self.engines[0].in_layout)),
            "results": Out(stream.Signature(result_layout(self.n_out, self.count_bits))),
            "start": In(1), "busy": Out(1), "done": Out(1), "error": Out(1),
            **({"weight_load": In(self.weight_load_signature())} if self.loadable else {}),
            **({"trace": Out(wiring.Signature({
                f"layer{i}": Out(e.trace.signature) for i, e in enumerate(self.engines)}))}
               if trace else {}),
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
        # output n's lane in the last engine's spike words (a convolution's hardware order)
        order = last.geometry.out_order()
        lane_of = {int(ci): h for h, ci in enumerate(order) if ci >= 0}
        with m.If(out.valid & ~w.eot):
            for n, c in enumerate(counts):
                g, p = divmod(lane_of[n], last.lanes)
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
        # layer 0 checks the input beats; a TaWQ layer anywhere checks the timestep count
        errors = [engines[0].error] + [e.error for e in engines[1:] if e.geometry.tawq_steps]
        m.d.comb += self.error.eq(Cat(*errors).any() if len(errors) > 1 else errors[0])

        # ---- trace: every layer's spike words and state writes (observation only) ----
        if "trace" in self.signature.members:
            for i, e in enumerate(engines):
                wiring.connect(m, e.trace, wiring.flipped(getattr(self.trace, f"layer{i}")))

        # ---- RAM weights: the loader writes one layer's memory while idle ----
        for i in self.loadable:
            ww, ld = engines[i].weight_write, self.weight_load
            m.d.comb += [ww.addr.eq(ld.addr), ww.data.eq(ld.data),
                         ww.en.eq(ld.en & (ld.layer == i) & ~busy)]
        return m

