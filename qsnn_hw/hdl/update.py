"""The update of a layer engine and its sequencing: the state and bias memories, P LIF
datapaths and the output FIFO.

After reset the update zeroes the G words of every accumulator bank (``clearing``, one
word per cycle). Then every end of timestep the engine takes (``step``) becomes one
**update**: once the accumulate pipeline has written its last sum into the update's bank,
G+1 *slots* are issued back to back, one per cycle: for g = 0..G-1 read ``acc[g]`` of
that bank, the state word and the bias word into the P datapaths (and clear ``acc[g]``
unless the current is reused, static input), then an end-of-timestep slot. Slots flow
down the datapath pipeline; at its end a group slot writes the new states and pushes its
non-zero spike mask into the output FIFO, the end slot pushes the end-of-timestep word.

The next update may start issuing right after the end slot: its reads of the state
memory come after this update's writes of the same words as long as G >= L (the
datapath latency); for G < L the start waits L + 1 cycles from the previous start.

``ready`` (an end of timestep may be taken) needs the FIFO to have room for one more
update's OG + 1 words on top of the words still in flight, so the pipeline never stalls
(OG = G, or a pooled convolution's output groups).

A convolution (``geom.conv``) reads bias word cg (its channel group) for group g, masks
the lanes past the last channel in every group of the last channel group, and ends in
the pooling stage (:func:`_conv_words`).
A TaWQ layer (``geom.tawq_steps``) also reads its multiplier ROM (``mult_steps x CG``
words of P multipliers, word ``t * CG + cg``, t = 0 when the multipliers are the same at
every timestep) beside the bias word; ``step_t`` gives the timestep of each update.
``start`` marks the next update *fresh*: the datapaths use the rest state instead of the
stored one (the update after a sample's last timestep is fresh too).
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from ..contract import IntLayer
from ._util import index_width
from .accumulate import access_signature
from .geometry import LayerGeometry
from .layouts import spike_word_layout, trace_signature
from .lif import LIFDatapath
from .spike_fifo import SpikeFIFO
from .state_memory import LaneMemory, StateMemory


def lane_words(values, geom: LayerGeometry, fill: int = 0) -> list[list[int]]:
    """``values`` (one per weight row: neuron, or a convolution's output channel) as CG
    words of P lanes (dense: G), the last one padded."""
    P, CG = geom.lanes, geom.channel_groups
    padded = [int(v) for v in values] + [fill] * (CG * P - len(values))
    return [padded[g * P:(g + 1) * P] for g in range(CG)]


class Update(wiring.Component):
    """Parameters: ``layer`` (IntLayer), ``geom`` (its :class:`~.geometry.LayerGeometry`),
    ``pipelined`` (quantizer kind).

    Members
    -------
    start : In(1), the next update is fresh.
    step : In(1), an end of timestep is taken (only while ``ready``), with
        ``step_last`` (the sample's last), ``step_bank`` (the accumulator bank to read)
        and ``step_clear`` (clear the bank's words after reading them; 0 when a static
        input's current is reused by the next timestep).
    acc_pending : In(2), bit b: the accumulate pipeline still has a sum for bank b.
    accepting : Out(1), the accumulators are zeroed: events may be taken.
    ready : Out(1), an end of timestep may be taken (from registers only).
    idle : Out(1), no update is waiting or issuing group slots (a one-bank engine takes
        events only then).
    access : Out(:func:`.accumulate.access_signature`), reads and clears of the
        accumulators.
    spikes : Out(stream), the FIFO's output.
    trace : Out(:func:`.layouts.trace_signature`), the FIFO and state-memory writes.
    """

    def __init__(self, layer: IntLayer, geom: LayerGeometry, *,
                 pipelined: bool | None = None, datapath=None):
        self.layer, self.geometry = layer, geom
        P = geom.lanes
        self.states = StateMemory(layer, geom)
        self.biases = None
        if layer.bias is not None:
            self.biases = LaneMemory(width=geom.bias_width, is_signed=True, lanes=P,
                                     depth=geom.channel_groups, writable=False,
                                     init=lane_words(layer.bias, geom))
        self.mults = None
        if geom.tawq_steps:   # padding lanes get 0: their current is the (zero) bias
            self.mults = LaneMemory(
                width=geom.mult_width, is_signed=False, lanes=P,
                depth=geom.mult_steps * geom.channel_groups, writable=False,
                init=[w for t in range(geom.mult_steps)
                      for w in lane_words(layer.tawq_mult[t], geom)])
        # ``datapath``: the LIF datapath class (the protocol proof passes a stand-in);
        # None: this module's LIFDatapath, looked up here (fault-injection tests patch it)
        datapath = LIFDatapath if datapath is None else datapath
        kw = {"mult_width": geom.mult_width} if geom.tawq_steps else {}
        self.datapaths = [datapath(layer, input_max=geom.input_max,
                                   acc_width=geom.acc_width, pipelined=pipelined, **kw)
                          for _ in range(P)]
        self.out_layout = spike_word_layout(geom.out_groups, P)
        self.fifo = SpikeFIFO(width=self.out_layout.size, depth=geom.fifo_depth)
        # simulation probe (not a port): an end-of-timestep word is written
        self.step_done = Signal()
        super().__init__({
            "start": In(1), "step": In(1), "step_last": In(1), "step_bank": In(1),
            "step_clear": In(1), "acc_pending": In(2),
            **({"step_t": In(index_width(geom.tawq_steps))} if geom.tawq_steps else {}),
            "accepting": Out(1), "ready": Out(1), "idle": Out(1),
            "access": Out(access_signature(geom)),
            "spikes": Out(stream.Signature(self.out_layout)),
            "trace": Out(trace_signature(geom)),
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.states = self.states
        if self.biases is not None:
            m.submodules.biases = self.biases
        if self.mults is not None:
            m.submodules.mults = self.mults
        for p, dp in enumerate(self.datapaths):
            m.submodules[f"lif{p}"] = dp
        m.submodules.fifo = ofifo = self.fifo
        clearing = self._clear_after_reset(m)
        slot = self._issue(m, clearing)
        out = self._datapath_inputs(m, slot)
        self._write(m, out)
        m.d.comb += [
            self.spikes.valid.eq(ofifo.r_rdy), self.spikes.payload.eq(ofifo.r_data),
            ofifo.r_en.eq(self.spikes.ready),
        ]
        return m

    def _clear_after_reset(self, m):
        """Zero every accumulator word once after reset; returns the ``clearing`` flag."""
        G, ua = self.geometry.groups, self.access
        clearing, cg = Signal(init=1), Signal(index_width(G))
        m.d.comb += [ua.init_en.eq(clearing), ua.init_g.eq(cg),
                     self.accepting.eq(~clearing)]
        with m.If(clearing):
            m.d.sync += cg.eq(cg + 1)
            with m.If(cg == G - 1):
                m.d.sync += clearing.eq(0)
        return clearing

    def _issue(self, m, clearing):
        """Take updates and issue their slots. Returns the issue-stage slot signals."""
        geom, ua, ofifo = self.geometry, self.access, self.fifo
        G, L, OG = geom.groups, geom.latency, geom.out_groups
        # ---- an update taken, waiting for its bank's last sums ----
        pend = Signal()
        p_bank, p_clear, p_last, p_fresh = Signal(), Signal(), Signal(), Signal()
        fresh = Signal(init=1)   # the next update taken is fresh
        # ---- the update issuing: slot ug (G: the end slot) ----
        issuing, is_end = Signal(), Signal()
        ug = Signal(index_width(G))
        i_bank, i_clear, i_last, i_fresh = Signal(), Signal(), Signal(), Signal()
        # the FIFO's level plus the word positions taken but not yet reached (their
        # words may still enter the FIFO), kept as one counter
        held = Signal(range(geom.fifo_depth + 2 * (OG + 1) + 1))
        room = Signal()
        free = ~pend & (~issuing | is_end)
        m.d.comb += [self.ready.eq(free & room & ~clearing), self.idle.eq(free)]
        with m.If(self.step):
            m.d.sync += [pend.eq(1), p_bank.eq(self.step_bank), p_clear.eq(self.step_clear),
                         p_last.eq(self.step_last), p_fresh.eq(fresh),
                         fresh.eq(self.step_last)]
        with m.If(self.start):
            m.d.sync += fresh.eq(1)
        # the next start must not read a state word before the previous update wrote it
        gap_ok = Const(1)
        if G < L:
            age = Signal(range(L + 1))
            with m.If(age != L):
                m.d.sync += age.eq(age + 1)
            gap_ok = age == L
        pending_bank = Mux(p_bank, self.acc_pending[1], self.acc_pending[0])
        begin = pend & ~pending_bank & (~issuing | is_end) & gap_ok
        with m.If(issuing):
            m.d.sync += [ug.eq(ug + 1), is_end.eq(ug == G - 1)]
            with m.If(is_end):
                m.d.sync += [issuing.eq(0), ug.eq(0), is_end.eq(0)]
        with m.If(begin):
            m.d.sync += [pend.eq(0), issuing.eq(1), ug.eq(0), is_end.eq(0),
                         i_bank.eq(p_bank), i_clear.eq(p_clear), i_last.eq(p_last),
                         i_fresh.eq(p_fresh)]
            if G < L:
                m.d.sync += age.eq(0)
        read = issuing & ~is_end
        m.d.comb += [ua.read_en.eq(read), ua.read_g.eq(ug), ua.read_bank.eq(i_bank),
                     self.states.r_addr.eq(ug)]
        if (self.biases is not None or self.mults is not None) and geom.conv is not None:
            # a convolution's bias is per channel: word cg of group (oy, ox, cg)
            CG = geom.channel_groups
            bcg = Signal(index_width(CG))
            with m.If(issuing):
                m.d.sync += bcg.eq(Mux(bcg == CG - 1, 0, bcg + 1))
            with m.If(begin):
                m.d.sync += bcg.eq(0)
        else:
            bcg = ug
        if self.biases is not None:
            m.d.comb += self.biases.r_addr.eq(bcg)
        if self.mults is not None:
            self._mult_address(m, bcg, begin)
        slot = dict(valid=read, end=issuing & is_end, g=ug, bank=i_bank, clear=i_clear,
                    last=i_last, fresh=i_fresh)
        # FIFO room for one more update's OG + 1 words on top of the level and the words
        # still to come (a register). ``held`` = level + the word positions still to come
        # bounds the words the FIFO will hold: a word position (a group, a pooled
        # window's last position, the end slot) reached this cycle stays counted when its
        # word is written (it moves into the level), and leaves the count when it has no
        # word; reads lower it. One counter, so ``room`` is a single compare of a register
        # (the level's own adder is off this path). An update taken in cycle c counts
        # from c + 2 (``step`` is registered first: it ends a long decision path), early
        # enough: ``ready`` stays low until that update's end slot, G + 2 cycles later
        # or more.
        done_slot, step_r = Signal(), Signal()
        self._done_slot = done_slot
        m.d.sync += step_r.eq(self.step)
        m.d.sync += held.eq(held + Mux(step_r, OG + 1, 0) - (done_slot & ~ofifo.w_en)
                            - (ofifo.r_rdy & ofifo.r_en))
        m.d.sync += room.eq(held <= geom.fifo_depth - (OG + 1))
        return slot

    def _mult_address(self, m, cg, begin):
        """TaWQ: the multiplier ROM's read address ``t * CG + cg`` of the issuing update
        (``t`` latched with the step, ``t * CG`` when the update begins)."""
        geom = self.geometry
        if geom.mult_steps == 1:
            m.d.comb += self.mults.r_addr.eq(cg)
            return
        CG = geom.channel_groups
        p_t = Signal(index_width(geom.tawq_steps))
        base = Signal(index_width(geom.mult_steps * CG))
        with m.If(self.step):
            m.d.sync += p_t.eq(self.step_t)
        with m.If(begin):
            m.d.sync += base.eq(p_t * CG)
        m.d.comb += self.mults.r_addr.eq(base + cg)

    def _datapath_inputs(self, m, slot):
        """Stage u1: the memories' words into the datapaths, the clear of the read word.
        Returns the slot signals aligned with the datapath outputs."""
        G, ua = self.geometry.groups, self.access
        u1 = {k: Signal(len(v) if k == "g" else 1, name=f"upd_u1_{k}")
              for k, v in slot.items()}
        m.d.sync += [u1[k].eq(v) for k, v in slot.items()]
        m.d.comb += [ua.clear_en.eq(u1["valid"] & u1["clear"]), ua.clear_g.eq(u1["g"]),
                     ua.clear_bank.eq(u1["bank"])]
        for p, dp in enumerate(self.datapaths):
            m.d.comb += [dp.state.eq(self.states.r_data[p]), dp.acc.eq(ua.data[p]),
                         dp.fresh.eq(u1["fresh"])]
            if self.biases is not None:
                m.d.comb += dp.bias.eq(self.biases.r_data[p])
            if self.mults is not None:
                m.d.comb += dp.mult.eq(self.mults.r_data[p])
        # align valid, end, group and last with the datapath outputs (latency L)
        cur = {k: u1[k] for k in ("valid", "end", "g", "last")}
        for k in range(self.geometry.latency):
            nxt = {n: Signal(index_width(G) if n == "g" else 1, name=f"upd_s{k + 2}_{n}")
                   for n in cur}
            m.d.sync += [nxt[n].eq(cur[n]) for n in cur]
            cur = nxt
        return cur

    def _write(self, m, out):
        """The datapath outputs: state writes, spike words, the end-of-timestep word."""
        geom, ofifo, sm = self.geometry, self.fifo, self.states
        G, P = geom.groups, geom.lanes
        spikes = Signal(P)
        m.d.comb += spikes.eq(Cat(dp.spike for dp in self.datapaths))
        m.d.comb += [
            sm.w_addr.eq(out["g"]), sm.w_en.eq(out["valid"]),
            sm.w_data.eq(Cat(dp.new_state for dp in self.datapaths)),
        ]
        word = Signal(self.out_layout)
        if geom.conv is None:
            tail = geom.last_group_lanes
            lane_mask = Mux(out["g"] == G - 1, (1 << tail) - 1, (1 << P) - 1) if tail < P \
                else Const((1 << P) - 1, P)
            out_mask = spikes & lane_mask
            m.d.comb += self._done_slot.eq(out["valid"] | out["end"])
            with m.If(out["end"]):
                m.d.comb += [word.eot.eq(1), word.last.eq(out["last"]), ofifo.w_en.eq(1),
                             self.step_done.eq(1)]
            with m.Elif(out["valid"]):
                m.d.comb += [word.group.eq(out["g"]), word.mask.eq(out_mask),
                             ofifo.w_en.eq(out_mask != 0)]
        else:
            group, mask, emit = _conv_words(m, geom, out, spikes)
            m.d.comb += self._done_slot.eq(emit | out["end"])
            with m.If(out["end"]):
                m.d.comb += [word.eot.eq(1), word.last.eq(out["last"]), ofifo.w_en.eq(1),
                             self.step_done.eq(1)]
            with m.Elif(emit):
                m.d.comb += [word.group.eq(group), word.mask.eq(mask),
                             ofifo.w_en.eq(mask != 0)]
        m.d.comb += ofifo.w_data.eq(word)
        tr = self.trace
        m.d.comb += [tr.word_valid.eq(ofifo.w_en), tr.word.eq(word),
                     tr.state_en.eq(sm.w_en), tr.state_addr.eq(sm.w_addr),
                     tr.state_data.eq(sm.w_data)]


def _conv_words(m, geom: LayerGeometry, out, spikes):
    """A convolution's spike words, from the datapath outputs visiting (oy, ox, cg) in
    raster order (``out["valid"]``; ``out["end"]`` closes the timestep): the lanes past
    the last channel masked, then, with pooling k > 1, the **pooling stage**: a line
    buffer of (W_out // k) * CG words of P bits, word (px, cg) set on its window's first
    position, ORed on the others, and the window's OR emitted on its last position (the
    pooled group ``(py*PW + px)*CG + cg``); positions past the last whole window add
    nothing. Returns ``(group, mask, emit)``: the word of this cycle and whether a word
    position is reached (the word is written when its mask is non-zero)."""
    cv, P, CG = geom.conv, geom.lanes, geom.channel_groups
    k = cv.pool
    PH, PW = cv.h_out // k, cv.w_out // k
    tail = geom.last_group_lanes
    # position of the datapath output: counters, cleared by the end slot
    cg = Signal(index_width(CG))
    cg_last = cg == CG - 1
    lane_mask = Mux(cg_last, (1 << tail) - 1, (1 << P) - 1) if tail < P \
        else Const((1 << P) - 1, P)
    mask = Signal(P)
    m.d.comb += mask.eq(spikes & lane_mask)
    valid, end = out["valid"], out["end"]
    if k == 1:
        with m.If(end):
            m.d.sync += cg.eq(0)
        with m.Elif(valid):
            m.d.sync += cg.eq(Mux(cg_last, 0, cg + 1))
        return out["g"], mask, valid
    ox, oy = Signal(index_width(cv.w_out)), Signal(index_width(cv.h_out))
    dx, dy = Signal(index_width(k)), Signal(index_width(k))
    bbase = Signal(index_width(PW * CG))          # px * CG
    pbase = Signal(index_width(PH * PW * CG))     # py * PW * CG
    col_in, row_in = Signal(init=1), Signal(init=1)
    col_end, row_end = ox == cv.w_out - 1, oy == cv.h_out - 1
    with m.If(end):
        m.d.sync += [cg.eq(0), ox.eq(0), oy.eq(0), dx.eq(0), dy.eq(0), bbase.eq(0),
                     pbase.eq(0), col_in.eq(1), row_in.eq(1)]
    with m.Elif(valid):
        with m.If(~cg_last):
            m.d.sync += cg.eq(cg + 1)
        with m.Else():
            m.d.sync += cg.eq(0)
            with m.If(col_end):          # next row
                m.d.sync += [ox.eq(0), dx.eq(0), bbase.eq(0), col_in.eq(1)]
                with m.If(~row_end):
                    m.d.sync += [oy.eq(oy + 1), row_in.eq(oy + 1 < PH * k)]
                    with m.If(dy == k - 1):
                        m.d.sync += [dy.eq(0), pbase.eq(pbase + PW * CG)]
                    with m.Else():
                        m.d.sync += dy.eq(dy + 1)
            with m.Else():               # next column
                m.d.sync += [ox.eq(ox + 1), col_in.eq(ox + 1 < PW * k)]
                with m.If(dx == k - 1):
                    m.d.sync += [dx.eq(0), bbase.eq(bbase + CG)]
                with m.Else():
                    m.d.sync += dx.eq(dx + 1)
    line = [Signal(P, name=f"pool_line{i}") for i in range(PW * CG)]
    bidx = Signal(index_width(PW * CG))
    m.d.comb += bidx.eq(bbase + cg)
    held = Signal(P)
    with m.Switch(bidx):
        for i, reg in enumerate(line):
            with m.Case(i):
                m.d.comb += held.eq(reg)
    first_pos = (dx == 0) & (dy == 0)
    last_pos = (dx == k - 1) & (dy == k - 1)
    merged = Signal(P)
    m.d.comb += merged.eq(Mux(first_pos, mask, held | mask))
    inside = valid & col_in & row_in
    with m.If(inside & ~last_pos):
        with m.Switch(bidx):
            for i, reg in enumerate(line):
                with m.Case(i):
                    m.d.sync += reg.eq(merged)
    group = Signal(index_width(geom.out_groups))
    m.d.comb += group.eq(pbase + bidx)
    return group, merged, inside & last_pos
