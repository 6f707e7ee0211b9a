"""The layer engine: N neurons, M inputs, P lanes, event-driven over the active inputs.

Per timestep (docs/hardware.md has the diagram):

* **accumulate**: for every input event m (a spike, or for a direct-input layer every
  non-zero value, with its value as multiplier) it reads the G = ceil(N/P) weight words
  ``m*G + g`` and adds them, P lanes at a time, to the accumulators ``acc[g]`` of the
  current bank: one word (P synaptic operations) per cycle, back to back across events.
* **update**: an end of timestep hands the bank to the update (:mod:`.update`): for
  g = 0..G-1 it reads ``acc[g]``, the state word and the bias word, runs P LIF
  datapaths, writes the new states, clears ``acc[g]`` and pushes the non-zero spike
  masks, then an end-of-timestep word, into the output FIFO.

With two accumulator banks the next timestep accumulates into the other bank while the
update runs, so a timestep costs about max(accumulate, update) cycles; with one bank the
next events wait for the update. A **static** first layer (the same input at every
timestep, :class:`~.config.CoreConfig` ``input``) takes the sample once: its current is
accumulated once and every timestep's update reads it again without clearing it (the
last one clears it). The cycle model is :mod:`qsnn_hw.hdl.cycles`.

A **TaWQ** layer (:attr:`IntLayer.is_tawq`) counts the ends of timestep of a sample:
the count is the timestep ``t`` of the events being accumulated (the accumulate stage
turns each weight code into ``tawq_table[code, t]``) and of the update (which reads the
multipliers of ``t``). A sample must have exactly T timesteps: an end of timestep with
``last`` before the T-th, or the T-th without it, sets ``error`` (sticky; the count then
restarts at 0 after ``last``, or wraps after T). TaWQ layers take no static input.

A new sample needs no memory clearing: ``start`` marks the next update *fresh*, and the
datapaths then use the rest state instead of the stored one. After reset the engine
spends G cycles zeroing its accumulators (they may hold a partial sum of an interrupted
timestep).

The engine only wires its parts (docs/hardware.md, "Layer engine", has the table):
:mod:`.frontend` (input beats -> events), :mod:`.addressing` (event -> weight addresses
and accumulator groups), :mod:`.accumulate` (the accumulate pipeline and the
accumulators), :mod:`.update` (sequencing, datapaths, states, output FIFO) and the weight
memory (:mod:`.weight_memory`).

A **convolutional** layer (:attr:`IntLayer.is_conv`) is the same engine with
:class:`.conv.ConvAddressing` (an event adds the weight words of its valid kernel taps
into the accumulator groups of the positions that see it), per-channel biases and a
pooling stage before the output FIFO (:mod:`.update`); its P lanes run over output
channels and its G = H_out * W_out * CG groups are the output positions
(docs/hardware.md, "Convolution engine").
"""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from .._check import check_choice, check_int
from ..contract import IntLayer
from ._util import check_lanes, index_width
from .accumulate import Accumulate
from .addressing import DenseAddressing
from .conv import ConvAddressing, weight_matrix
from .frontend import INPUT_KINDS, make_frontend
from .geometry import LayerGeometry
from .layouts import trace_signature
from .update import Update
from .weight_memory import WeightMemory

__all__ = ["INPUT_KINDS", "LayerEngine"]


class LayerEngine(wiring.Component):
    """Parameters
    ----------
    layer : IntLayer.
    lanes : P, neurons updated / synapses accumulated per cycle.
    input_kind : "spike" (external spike events), "direct" (external multi-bit values)
        or "words" (spike words from an upstream engine).
    input_bits : value width for "direct".
    upstream_groups, upstream_lanes : geometry of the upstream engine for "words".
    fifo_depth : output FIFO depth in words (>= max(G + 1, 3); default
        :func:`~.geometry.default_fifo_depth`).
    pipelined : state quantizer implementation (None: automatic).
    weight_storage : "rom" (default), "ram" or "spram" (:class:`WeightMemory`).
    banks : accumulator banks, 1 or 2 (two overlap the update with accumulation).
    static : the input is sent once per sample (spike or direct kinds; module docstring).
    trace : add the ``trace`` port (observation only; :func:`.layouts.trace_signature`).
    datapath : the LIF datapath class (default :class:`.lif.LIFDatapath`; the formal
        protocol proof builds the engine with a stand-in, :mod:`qsnn_hw.formal.protocol`).
    upstream : for "words", the :class:`~.geometry.LayerGeometry` of the feeding engine:
        after a convolution the input index is its hardware order (a dense layer's weight
        columns are permuted to it, a convolution's decode ROM is indexed by it).

    Members
    -------
    events : In(stream), input events/values/words (:mod:`.layouts`).
    spikes : Out(stream), spike words of this layer.
    start : In(1), pulse between samples: the next timestep starts from the rest state.
    error : Out(1), sticky: an invalid input beat was dropped, or (TaWQ) a sample did
        not have T timesteps.
    weight_write : In, only for RAM weights: the weight memory's write port (addr,
        data, en); write only while the engine is idle.
    trace : Out, only with ``trace=True``: the spike words written into the output FIFO
        and the state-memory writes, cycle by cycle (:mod:`.layouts`).

    Parts (built here, elaborated as submodules): :attr:`frontend`, :attr:`addressing`,
    :attr:`accumulate`, :attr:`update`, :attr:`weights`; the memories are reachable as
    :attr:`accumulators`, :attr:`states`, :attr:`biases`, :attr:`fifo`.
    """

    def __init__(self, layer: IntLayer, *, lanes: int, input_kind: str = "words",
                 input_bits: int = 1, upstream_groups: int | None = None,
                 upstream_lanes: int | None = None, fifo_depth: int | None = None,
                 pipelined: bool | None = None, weight_storage: str = "rom",
                 banks: int = 2, static: bool = False, trace: bool = False,
                 datapath=None, upstream: LayerGeometry | None = None):
        if not isinstance(layer, IntLayer):
            raise TypeError(f"layer must be an IntLayer, got {type(layer).__name__}")
        self.layer = layer
        self.lanes = P = check_lanes(lanes)
        self.input_kind = check_choice("input_kind", input_kind, INPUT_KINDS)
        self.input_bits = check_int("input_bits", input_bits, 1, 16)
        if input_kind != "direct" and input_bits != 1:
            raise ValueError(f"input_bits must be 1 for input_kind={input_kind!r}")
        if upstream is not None and input_kind != "words":
            raise ValueError("upstream (the feeding engine's geometry) needs "
                             "input_kind='words'")
        self.geometry = g = LayerGeometry.of(layer, P, input_bits=self.input_bits,
                                             fifo_depth=fifo_depth, pipelined=pipelined,
                                             banks=banks, static=static, upstream=upstream)
        # n_in: the hardware input indices (after a convolution its hardware order)
        self.n_out, self.n_in = layer.n_out, g.n_in
        self.frontend = make_frontend(input_kind, self.n_in, input_bits=self.input_bits,
                                      upstream_groups=upstream_groups,
                                      upstream_lanes=upstream_lanes, static=static)
        if input_kind == "words":
            self.upstream_groups = self.frontend.up_groups
            self.upstream_lanes = self.frontend.up_lanes
        self.in_layout = self.frontend.in_layout
        self.groups, self.fifo_depth, self.acc_width = g.groups, g.fifo_depth, g.acc_width
        self.input_max, self.latency = g.input_max, g.latency
        self.out_groups = g.out_groups
        self.weights = WeightMemory(weight_matrix(layer, g), P, storage=weight_storage,
                                    code_bits=g.weight_width if layer.is_tawq else None)
        self.addressing = ConvAddressing(g) if layer.is_conv else DenseAddressing(g)
        self.accumulate = Accumulate(g, reuse_distance=self.addressing.reuse_distance,
                                     multiply=input_kind == "direct",
                                     table=layer.tawq_table)
        self.update = Update(layer, g, pipelined=pipelined, datapath=datapath)
        self.accumulators = self.accumulate.banks
        u = self.update
        self.states, self.biases, self.datapaths = u.states, u.biases, u.datapaths
        self.fifo, self.out_layout = u.fifo, u.out_layout
        # Simulation probe (not a port): the end-of-timestep pulse.
        self.step_done = u.step_done
        super().__init__({
            "events": In(stream.Signature(self.in_layout)),
            "spikes": Out(stream.Signature(self.out_layout)),
            "start": In(1),
            "error": Out(1),
            # ---- RAM weights: the loader's write port (weight_memory.py) ----
            **({"weight_write": In(self.weights.write.signature.flip())}
               if self.weights.writable else {}),
            **({"trace": Out(trace_signature(g))} if trace else {}),
        })

    def memory_bits(self) -> dict:
        """Bits of every memory of this engine (docs/hardware.md, "memory cost")."""
        return self.geometry.memory_bits()

    def elaborate(self, platform):
        m = Module()
        m.submodules.weights = wm = self.weights
        if wm.writable:  # RAM weights: the loader writes while the engine is idle
            wiring.connect(m, wiring.flipped(self.weight_write), wm.write)
        m.submodules.frontend = fe = self.frontend
        m.submodules.addressing = ad = self.addressing
        m.submodules.accumulate = acc = self.accumulate
        m.submodules.update = upd = self.update
        wiring.connect(m, wiring.flipped(self.events), fe.events)
        wiring.connect(m, upd.spikes, wiring.flipped(self.spikes))
        tawq = bool(self.geometry.tawq_steps)
        m.d.comb += [fe.start.eq(self.start), upd.start.eq(self.start)]
        if not tawq:
            m.d.comb += self.error.eq(fe.error)
        # take an input event when the accumulators are zeroed, the addressing is free
        # and (one bank) no update is using the bank; an end of timestep when the
        # addressing is free and the update can take it (FIFO room included)
        ev = fe.event
        events_ok = upd.accepting & (upd.idle if self.geometry.banks == 1 else 1)
        take_ev = ev.valid & ~ev.eot & ad.free & events_ok
        take_eot = ev.valid & ev.eot & ad.free & upd.ready
        bank = Signal()   # the bank the addressing accumulates into
        m.d.comb += [
            ev.take.eq(take_ev | take_eot),
            ad.load.eq(take_ev), ad.m.eq(ev.m), ad.x.eq(ev.x), ad.bank.eq(bank),
            upd.step.eq(take_eot), upd.step_last.eq(ev.last),
            # a static sample's later timesteps reuse the bank filled before its first
            upd.step_bank.eq(Mux(ev.reuse, ~bank, bank) if self.geometry.banks == 2 else 0),
            upd.step_clear.eq(ev.last if self.geometry.static else 1),
        ]
        if self.geometry.banks == 2:
            with m.If(take_eot & ~ev.reuse):
                m.d.sync += bank.eq(~bank)
        if tawq:
            self._timestep(m, take_eot, ev.last)
        wiring.connect(m, ad.issue, acc.issue)
        m.d.comb += [wm.addr.eq(ad.issue.addr), acc.weight.eq(wm.data),
                     upd.acc_pending.eq(acc.pending)]
        wiring.connect(m, upd.access, acc.access)
        if "trace" in self.signature.members:
            wiring.connect(m, upd.trace, wiring.flipped(self.trace))
        return m

    def _timestep(self, m, take_eot, last):
        """TaWQ: the timestep counter (module docstring), driving the accumulate stage's
        code table and the update's multipliers, and the wrong-T error."""
        T = self.geometry.tawq_steps
        t = Signal(index_width(T), name="tawq_t")
        bad = Signal(name="tawq_bad_steps")
        final = t == T - 1
        with m.If(take_eot):
            m.d.sync += t.eq(Mux(last | final, 0, t + 1))
            with m.If(last != final):
                m.d.sync += bad.eq(1)
        with m.If(self.start):
            m.d.sync += t.eq(0)
        m.d.comb += [self.accumulate.step.eq(t), self.update.step_t.eq(t),
                     self.error.eq(self.frontend.error | bad)]
