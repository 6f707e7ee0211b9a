"""The layer engine: N neurons, M inputs, P lanes, event-driven over the active inputs.

Per timestep the engine runs two phases (docs/hardware.md has the diagram):

* **accumulate**: for every input event m (a spike, or for a direct-input layer every
  one of the M values, with its value as multiplier) it reads the G = ceil(N/P) weight
  words ``m*G + g`` and adds them, P lanes at a time, to the current accumulators
  ``acc[g]``: one word (P synaptic operations) per cycle, back to back across events.
* **update**: on the end-of-timestep marker, for g = 0..G-1 it reads ``acc[g]``, the
  state word and the bias word, runs P LIF datapaths, writes the new states, clears
  ``acc[g]`` and pushes the non-zero spike masks, then an end-of-timestep word, into the
  output FIFO (``SyncFIFOBuffered``: block RAM). The update starts only when the FIFO
  has room for a whole timestep (G + 1 words), so the update pipeline never stalls.

Cycles per timestep, input always available: ``E*G + G + L + 4 + 3*[E > 0]`` (E events,
L the LIF datapath latency); see :mod:`qsnn_hw.hdl.cycles`.

A new sample needs no memory clearing: ``start`` marks the next timestep *fresh*, and
the datapaths then use the rest state instead of the stored one. After reset the engine
spends G cycles zeroing its accumulators (they may hold a partial sum of an interrupted
timestep).
"""

from __future__ import annotations

import enum

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import fifo, stream, wiring
from amaranth.lib.wiring import In, Out

from .._check import check_choice, check_int
from ..contract import IntLayer
from ._util import ceil_div, check_lanes, index_width
from .geometry import LayerGeometry, default_fifo_depth, min_fifo_depth
from .layouts import (
    direct_value_layout,
    spike_event_layout,
    spike_word_layout,
    trace_signature,
)
from .lif import LIFDatapath
from .state_memory import LaneMemory, StateMemory
from .weight_memory import WeightMemory

INPUT_KINDS = ("spike", "direct", "words")


class Phase(enum.IntEnum):
    CLEAR = 0
    ACC = 1
    UPDATE = 2
    END = 3


class LayerEngine(wiring.Component):
    """Parameters
    ----------
    layer : IntLayer.
    lanes : P, neurons updated / synapses accumulated per cycle.
    input_kind : "spike" (external spike events), "direct" (external multi-bit values)
        or "words" (spike words from an upstream engine).
    input_bits : value width for "direct".
    upstream_groups, upstream_lanes : geometry of the upstream engine for "words".
    fifo_depth : output FIFO depth in words (>= max(G + 1, 3); default 2 * (G + 1)).
    pipelined : state quantizer implementation (None: automatic).
    weight_storage : "rom" (default), "ram" or "spram" (:class:`WeightMemory`).
    trace : add the ``trace`` port (observation only; :func:`.layouts.trace_signature`).

    Members
    -------
    events : In(stream), input events/values/words (:mod:`.layouts`).
    spikes : Out(stream), spike words of this layer.
    start : In(1), pulse between samples: the next timestep starts from the rest state.
    error : Out(1), sticky: an invalid input beat was dropped.
    weight_write : In, only for RAM weights: the weight memory's write port (addr,
        data, en); write only while the engine is idle.
    trace : Out, only with ``trace=True``: the spike words written into the output FIFO
        and the state-memory writes, cycle by cycle (:mod:`.layouts`).
    """

    def __init__(self, layer: IntLayer, *, lanes: int, input_kind: str = "words",
                 input_bits: int = 1, upstream_groups: int | None = None,
                 upstream_lanes: int | None = None, fifo_depth: int | None = None,
                 pipelined: bool | None = None, weight_storage: str = "rom",
                 trace: bool = False):
        if not isinstance(layer, IntLayer):
            raise TypeError(f"layer must be an IntLayer, got {type(layer).__name__}")
        self.layer = layer
        self.lanes = P = check_lanes(lanes)
        self.input_kind = check_choice("input_kind", input_kind, INPUT_KINDS)
        self.n_out, self.n_in = layer.n_out, layer.n_in
        self.groups = G = ceil_div(self.n_out, P)
        self.input_bits = check_int("input_bits", input_bits, 1, 16)
        if input_kind != "direct" and input_bits != 1:
            raise ValueError(f"input_bits must be 1 for input_kind={input_kind!r}")
        self.input_max = (1 << self.input_bits) - 1
        if input_kind == "spike":
            in_layout = spike_event_layout(self.n_in)
        elif input_kind == "direct":
            if input_bits < 2:
                raise ValueError("input_kind='direct' needs input_bits >= 2")
            in_layout = direct_value_layout(self.input_bits)
        else:
            self.upstream_lanes = check_lanes(upstream_lanes)
            self.upstream_groups = check_int("upstream_groups", upstream_groups, 1)
            if self.upstream_groups * self.upstream_lanes < self.n_in:
                raise ValueError(f"upstream geometry {self.upstream_groups} x "
                                 f"{self.upstream_lanes} does not cover {self.n_in} inputs")
            in_layout = spike_word_layout(self.upstream_groups, self.upstream_lanes)
        self.in_layout = in_layout
        self.fifo_depth = default_fifo_depth(G) if fifo_depth is None else \
            check_int("fifo_depth", fifo_depth, min_fifo_depth(G))
        self.geometry = LayerGeometry.of(layer, P, input_bits=self.input_bits,
                                         fifo_depth=self.fifo_depth, pipelined=pipelined)
        self.acc_width = self.geometry.acc_width
        self.weights = WeightMemory(layer.weight, P, storage=weight_storage)
        self.accumulators = LaneMemory(width=self.acc_width, is_signed=True, lanes=P, depth=G,
                                       transparent=False)
        self.states = StateMemory(layer, P)
        self.biases = None
        if layer.bias is not None:
            padded = [int(b) for b in layer.bias] + [0] * (G * P - self.n_out)
            self.biases = LaneMemory(width=self.geometry.bias_width, is_signed=True, lanes=P,
                                     depth=G, writable=False,
                                     init=[padded[g * P:(g + 1) * P] for g in range(G)])
        self.datapaths = [LIFDatapath(layer, input_max=self.input_max,
                                      acc_width=self.acc_width, pipelined=pipelined)
                          for _ in range(P)]
        self.latency = self.datapaths[0].latency
        self.out_layout = spike_word_layout(G, P)
        self.fifo = fifo.SyncFIFOBuffered(width=self.out_layout.size, depth=self.fifo_depth)
        # Simulation probes (not ports): the phase and the end-of-timestep pulse.
        self.phase = Signal(Phase, init=Phase.CLEAR)
        self.step_done = Signal()
        super().__init__({
            "events": In(stream.Signature(in_layout)),
            "spikes": Out(stream.Signature(self.out_layout)),
            "start": In(1),
            "error": Out(1),
            # ---- RAM weights: the loader's write port (weight_memory.py) ----
            **({"weight_write": In(self.weights.write.signature.flip())}
               if self.weights.writable else {}),
            **({"trace": Out(trace_signature(self.geometry))} if trace else {}),
        })

    def memory_bits(self) -> dict:
        """Bits of every memory of this engine (docs/hardware.md, "memory cost")."""
        return self.geometry.memory_bits()

    def elaborate(self, platform):
        m = Module()
        P, G, M = self.lanes, self.groups, self.n_in
        m.submodules.weights = wm = self.weights
        if wm.writable:  # RAM weights: the loader writes while the engine is idle
            wiring.connect(m, wiring.flipped(self.weight_write), wm.write)
        m.submodules.accumulators = acc = self.accumulators
        m.submodules.states = sm = self.states
        if self.biases is not None:
            m.submodules.biases = bm = self.biases
        for p, dp in enumerate(self.datapaths):
            m.submodules[f"lif{p}"] = dp
        m.submodules.fifo = ofifo = self.fifo
        phase = self.phase

        # ---- front end: input beats -> (m, x) items ---------------------------------------
        ev_valid, ev_eot, ev_last = Signal(), Signal(), Signal()
        ev_m = Signal(index_width(M))
        ev_x = Signal(unsigned(self.input_bits))
        ev_take = Signal()
        error_set = Signal()
        fresh = Signal(init=1)
        upd_pending = Signal()  # end of timestep taken, waiting for the accumulate pipeline
        # A skid buffer for every input kind: ``cur`` is the beat being used, ``nxt`` holds
        # a beat that arrived while ``cur`` was busy. The stream's ready is a register
        # (``nxt`` empty), so no combinational path runs from this engine's control logic
        # back to the source, and a beat per cycle still gets through.
        cur = Signal(self.events.payload.shape())
        nxt = Signal(self.events.payload.shape())
        cur_valid, nxt_valid = Signal(), Signal()
        cur_done = Signal()
        incoming = self.events.payload
        arrive = self.events.valid & ~nxt_valid
        m.d.comb += self.events.ready.eq(~nxt_valid)
        with m.If(~cur_valid | cur_done):
            with m.If(nxt_valid):
                m.d.sync += [cur.eq(nxt), cur_valid.eq(1), nxt_valid.eq(0)]
            with m.Else():
                m.d.sync += [cur.eq(incoming), cur_valid.eq(arrive)]
        with m.Elif(arrive):
            m.d.sync += [nxt.eq(incoming), nxt_valid.eq(1)]

        if self.input_kind == "spike":
            bad = ~cur.eot & (cur.last | (cur.addr >= M))
            m.d.comb += [
                ev_valid.eq(cur_valid & ~bad), ev_eot.eq(cur.eot),
                ev_last.eq(cur.last), ev_m.eq(cur.addr), ev_x.eq(1),
                cur_done.eq(bad | ev_take),
                error_set.eq(cur_valid & bad),
            ]
        elif self.input_kind == "direct":
            idx = Signal(range(M + 1))
            idx_full = Signal()  # idx == M, as a register (off the take path)
            bad = ~cur.eot & (cur.last | idx_full)
            m.d.comb += [
                ev_valid.eq(cur_valid & ~bad), ev_eot.eq(cur.eot),
                ev_last.eq(cur.last), ev_m.eq(idx), ev_x.eq(cur.value),
                cur_done.eq(bad | ev_take),
                # A short timestep is also an error; its missing values count as 0.
                error_set.eq((cur_valid & bad) | (ev_take & ev_eot & ~idx_full)),
            ]
            with m.If(ev_take):
                m.d.sync += [idx.eq(Mux(ev_eot, 0, idx + 1)),
                             idx_full.eq(~ev_eot & (idx == M - 1))]
            with m.If(self.start):
                m.d.sync += [idx.eq(0), idx_full.eq(0)]
        else:
            # ``cur`` is split into one event per set bit, lowest first.
            Pu = self.upstream_lanes
            mask = cur.mask
            bit = Signal(index_width(Pu))
            for i in reversed(range(Pu)):  # the lowest set bit wins (assigned last)
                with m.If(mask[i]):
                    m.d.comb += bit.eq(i)
            rest = (mask & (mask - 1))[:Pu]
            final = cur.eot | (rest == 0)
            # an empty word (no spike, not an end of timestep) is dropped (upstream engines
            # never send one; the check stays off the FIFO-output -> enable path)
            empty = ~cur.eot & (mask == 0)
            m.d.comb += [
                ev_valid.eq(cur_valid & ~empty), ev_eot.eq(cur.eot),
                ev_last.eq(cur.last), ev_m.eq(cur.group * Pu + bit), ev_x.eq(1),
                cur_done.eq((ev_take & final) | (cur_valid & empty)),
            ]
            with m.If(ev_take & ~final):
                m.d.sync += cur.mask.eq(rest)

        # ---- accumulate: one weight word per cycle, a register after every memory read --
        # issue: weight address register | s1: weight word out of its memory; accumulator
        # read address | s2: weight register, product; accumulator word out of its memory
        # | s3: product and accumulator registers, forwarding, sum | s4: write the sum
        # register. The accumulator port is not transparent: a sum written at s4 is seen
        # by reads one cycle later, so an event reading the same word 1 to 3 cycles after
        # an earlier one takes the in-flight sum from s4/h5/h6 instead (only possible
        # when G <= 3: consecutive reads of one word are at least G cycles apart).
        busy = Signal()
        waddr = Signal(index_width(M * G))  # m * G + g, straight from a register
        cur_x = Signal(unsigned(self.input_bits))
        g = Signal(index_width(G))
        # room for a whole timestep of words, as a register (off the take path): computed
        # from this cycle's level plus this cycle's write, an upper bound of the next
        # cycle's level (reads only lower it)
        room_ok = Signal()
        m.d.sync += room_ok.eq(ofifo.level + ofifo.w_en <= self.fifo_depth - (G + 1))
        g_last = Signal()  # g == G - 1, as a register (off the take path)
        free = ~busy | g_last
        m.d.comb += ev_take.eq((phase == Phase.ACC) & free & ev_valid & (~ev_eot | room_ok))
        m.d.comb += wm.addr.eq(waddr)
        with m.If(busy):
            m.d.sync += [g.eq(g + 1), waddr.eq(waddr + 1), g_last.eq(g == G - 2)]
            with m.If(g_last):
                m.d.sync += [busy.eq(0), g.eq(0)]
        with m.If(ev_take & ~ev_eot):
            m.d.sync += [busy.eq(1), waddr.eq(ev_m * G), cur_x.eq(ev_x), g.eq(0),
                         g_last.eq(G == 1)]
        gw, xs = index_width(G), unsigned(self.input_bits)
        # valid and group index of every stage: issue, s1 .. s5
        sv = [busy] + [Signal(name=f"acc_s{k}_valid") for k in range(1, 6)]
        sg = [g] + [Signal(gw, name=f"acc_s{k}_g") for k in range(1, 6)]
        s1_x, s2_x = Signal(xs), Signal(xs)
        for k in range(1, 6):
            m.d.sync += [sv[k].eq(sv[k - 1]), sg[k].eq(sg[k - 1])]
        m.d.sync += [s1_x.eq(cur_x), s2_x.eq(s1_x)]
        # data registers need no reset (the valid bits say what they hold)
        w_r = Signal.like(wm.data, name="weight_r", reset_less=True)
        m.d.sync += w_r.eq(wm.data)
        # forwarding selects, decided at s2 for use at s3: distance d = 1, 2, 3 cycles
        fwd_dists = [d for d in (1, 2, 3) if d >= G]
        sel = {d: Signal(name=f"acc_fwd{d}") for d in fwd_dists}
        for d in fwd_dists:
            m.d.sync += sel[d].eq(sv[2 + d] & (sg[2 + d] == sg[2]) & sv[2])
        prod_r = [Signal(signed(self.acc_width), name=f"product{p}_r", reset_less=True)
                  for p in range(P)]
        acc_r = [Signal(signed(self.acc_width), name=f"acc{p}_r", reset_less=True)
                 for p in range(P)]
        sum_r = [Signal(signed(self.acc_width), name=f"sum{p}_r", reset_less=True)
                 for p in range(P)]
        hist = {1: sum_r}  # hist[d]: the sum written d - 1 cycles ago
        for d in range(2, max(fwd_dists, default=0) + 1):
            hist[d] = [Signal(signed(self.acc_width), name=f"sum{p}_h{d}", reset_less=True)
                       for p in range(P)]
            m.d.sync += [hist[d][p].eq(hist[d - 1][p]) for p in range(P)]
        for p in range(P):
            prod = w_r[p] * s2_x if self.input_kind == "direct" else w_r[p]
            m.d.sync += [prod_r[p].eq(prod), acc_r[p].eq(acc.r_data[p])]
            old = acc_r[p]
            for d in sorted(fwd_dists, reverse=True):  # the youngest match wins (last Mux)
                old = Mux(sel[d], hist[d][p], old)
            m.d.sync += sum_r[p].eq((old + prod_r[p])[:self.acc_width])
        s4_valid, s4_g = sv[4], sg[4]
        # the update may read the accumulators once the last sum is written (s4 empty
        # from the next cycle on)
        acc_draining = sv[1] | sv[2] | sv[3]

        # ---- update ----------------------------------------------------------------------
        # starts once the accumulate pipeline has written its last sum
        u_iss, ug, last_flag = Signal(), Signal(index_width(G)), Signal()
        with m.If(ev_take & ev_eot):
            m.d.sync += [phase.eq(Phase.UPDATE), upd_pending.eq(1), last_flag.eq(ev_last)]
        with m.If(upd_pending & ~acc_draining):
            m.d.sync += [upd_pending.eq(0), u_iss.eq(1), ug.eq(0)]
        with m.If(u_iss):
            m.d.sync += ug.eq(ug + 1)
            with m.If(ug == G - 1):
                m.d.sync += [u_iss.eq(0), ug.eq(0)]
        u1_valid, u1_g = Signal(), Signal(index_width(G))
        m.d.sync += [u1_valid.eq(u_iss), u1_g.eq(ug)]
        m.d.comb += [sm.r_addr.eq(ug), acc.r_addr.eq(Mux(u_iss, ug, sg[1]))]
        if self.biases is not None:
            m.d.comb += bm.r_addr.eq(ug)
        for p, dp in enumerate(self.datapaths):
            m.d.comb += [dp.state.eq(sm.r_data[p]), dp.acc.eq(acc.r_data[p]), dp.fresh.eq(fresh)]
            if self.biases is not None:
                m.d.comb += dp.bias.eq(bm.r_data[p])
        # align the group index with the datapath outputs (datapath latency)
        uL_valid, uL_g = u1_valid, u1_g
        for k in range(self.latency):
            nv = Signal(name=f"upd_valid_s{k + 2}")
            ng = Signal(index_width(G), name=f"upd_g_s{k + 2}")
            m.d.sync += [nv.eq(uL_valid), ng.eq(uL_g)]
            uL_valid, uL_g = nv, ng
        spikes = Signal(P)
        m.d.comb += spikes.eq(Cat(dp.spike for dp in self.datapaths))
        tail = self.n_out - (G - 1) * P
        lane_mask = Mux(uL_g == G - 1, (1 << tail) - 1, (1 << P) - 1) if tail < P \
            else Const((1 << P) - 1, P)
        out_mask = spikes & lane_mask
        m.d.comb += [
            sm.w_addr.eq(uL_g), sm.w_en.eq(uL_valid),
            sm.w_data.eq(Cat(dp.new_state for dp in self.datapaths)),
        ]
        word = Signal(self.out_layout)
        with m.If(phase == Phase.END):
            m.d.comb += [word.eot.eq(1), word.last.eq(last_flag), ofifo.w_en.eq(1),
                         self.step_done.eq(1)]
            m.d.sync += [phase.eq(Phase.ACC), fresh.eq(last_flag)]
        with m.Elif(uL_valid):
            m.d.comb += [word.group.eq(uL_g), word.mask.eq(out_mask),
                         ofifo.w_en.eq(out_mask != 0)]
            with m.If(uL_g == G - 1):
                m.d.sync += phase.eq(Phase.END)
        m.d.comb += ofifo.w_data.eq(word)
        with m.If(self.start):
            m.d.sync += fresh.eq(1)

        # ---- accumulator write port: clear after reset / accumulate / clear after use ----
        cg = Signal(index_width(G))
        with m.If(phase == Phase.CLEAR):
            m.d.comb += [acc.w_addr.eq(cg), acc.w_en.eq(1)]
            m.d.sync += cg.eq(cg + 1)
            with m.If(cg == G - 1):
                m.d.sync += phase.eq(Phase.ACC)
        with m.Elif(s4_valid):
            m.d.comb += [acc.w_addr.eq(s4_g), acc.w_en.eq(1), acc.w_data.eq(Cat(sum_r))]
        with m.Elif(u1_valid):
            m.d.comb += [acc.w_addr.eq(u1_g), acc.w_en.eq(1)]

        # ---- output stream and error -------------------------------------------------------
        m.d.comb += [
            self.spikes.valid.eq(ofifo.r_rdy), self.spikes.payload.eq(ofifo.r_data),
            ofifo.r_en.eq(self.spikes.ready),
        ]
        with m.If(error_set):
            m.d.sync += self.error.eq(1)

        # ---- trace port (observation only) -------------------------------------------------
        if "trace" in self.signature.members:
            tr = self.trace
            m.d.comb += [tr.word_valid.eq(ofifo.w_en), tr.word.eq(word),
                         tr.state_en.eq(sm.w_en), tr.state_addr.eq(sm.w_addr),
                         tr.state_data.eq(sm.w_data)]
        return m
