"""The update of a layer engine and its sequencing: the phase, the state and bias
memories, P LIF datapaths and the output FIFO.

Phases: CLEAR (after reset: zero the G accumulator words, one per cycle) -> ACC
(events are taken) -> UPDATE (an end of timestep was taken: once the accumulate
pipeline has written its last sum, for g = 0..G-1 read ``acc[g]``, the state word and
the bias word, run the datapaths, write the new states, clear ``acc[g]`` and push the
non-zero spike masks into the FIFO) -> END (the end-of-timestep word) -> ACC.

The engine takes an end of timestep only when the FIFO has room for a whole timestep
(``room``: G + 1 words), so the update pipeline never stalls. ``start`` marks the next
timestep *fresh*: the datapaths use the rest state instead of the stored one.
"""

from __future__ import annotations

import enum

from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import fifo, stream, wiring
from amaranth.lib.wiring import In, Out

from ..contract import IntLayer
from ._util import index_width
from .accumulate import access_signature
from .geometry import LayerGeometry
from .layouts import spike_word_layout, trace_signature
from .lif import LIFDatapath
from .state_memory import LaneMemory, StateMemory


class Phase(enum.IntEnum):
    CLEAR = 0
    ACC = 1
    UPDATE = 2
    END = 3


def lane_words(values, geom: LayerGeometry, fill: int = 0) -> list[list[int]]:
    """``values`` (one per neuron) as G words of P lanes, the last one padded."""
    P = geom.lanes
    padded = [int(v) for v in values] + [fill] * (geom.groups * P - len(values))
    return [padded[g * P:(g + 1) * P] for g in range(geom.groups)]


class Update(wiring.Component):
    """Parameters: ``layer`` (IntLayer), ``geom`` (its :class:`~.geometry.LayerGeometry`),
    ``pipelined`` (quantizer kind).

    Members
    -------
    start : In(1), the next timestep is fresh.
    step, step_last : In(1), an end of timestep (the last of a sample) is taken.
    acc_pending : In(1), the accumulate pipeline still has a sum to write.
    accepting : Out(1), phase ACC: events may be taken.
    room : Out(1), the FIFO has room for a whole timestep (a register).
    access : Out(:func:`.accumulate.access_signature`), reads and clears of the
        accumulators.
    spikes : Out(stream), the FIFO's output.
    trace : Out(:func:`.layouts.trace_signature`), the FIFO and state-memory writes.
    """

    def __init__(self, layer: IntLayer, geom: LayerGeometry, *,
                 pipelined: bool | None = None):
        self.layer, self.geometry = layer, geom
        G, P = geom.groups, geom.lanes
        self.states = StateMemory(layer, geom)
        self.biases = None
        if layer.bias is not None:
            self.biases = LaneMemory(width=geom.bias_width, is_signed=True, lanes=P, depth=G,
                                     writable=False, init=lane_words(layer.bias, geom))
        self.datapaths = [LIFDatapath(layer, input_max=geom.input_max,
                                      acc_width=geom.acc_width, pipelined=pipelined)
                          for _ in range(P)]
        self.out_layout = spike_word_layout(G, P)
        self.fifo = fifo.SyncFIFOBuffered(width=self.out_layout.size, depth=geom.fifo_depth)
        # simulation probes (not ports): the phase and the end-of-timestep pulse
        self.phase = Signal(Phase, init=Phase.CLEAR)
        self.step_done = Signal()
        super().__init__({
            "start": In(1), "step": In(1), "step_last": In(1), "acc_pending": In(1),
            "accepting": Out(1), "room": Out(1),
            "access": Out(access_signature(geom)),
            "spikes": Out(stream.Signature(self.out_layout)),
            "trace": Out(trace_signature(geom)),
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.states = self.states
        if self.biases is not None:
            m.submodules.biases = self.biases
        for p, dp in enumerate(self.datapaths):
            m.submodules[f"lif{p}"] = dp
        m.submodules.fifo = ofifo = self.fifo
        G = self.geometry.groups
        # room for a whole timestep of words, as a register (off the take path): computed
        # from this cycle's level plus this cycle's write, an upper bound of the next
        # cycle's level (reads only lower it)
        room_ok = Signal()
        m.d.sync += room_ok.eq(ofifo.level + ofifo.w_en <= self.geometry.fifo_depth - (G + 1))
        m.d.comb += [self.room.eq(room_ok), self.accepting.eq(self.phase == Phase.ACC)]
        fresh = Signal(init=1)
        last_flag, u1_valid, u1_g = self._issue(m, fresh)
        self._write(m, fresh, last_flag, u1_valid, u1_g)
        self._clear(m, u1_valid, u1_g)
        m.d.comb += [
            self.spikes.valid.eq(ofifo.r_rdy), self.spikes.payload.eq(ofifo.r_data),
            ofifo.r_en.eq(self.spikes.ready),
        ]
        return m

    def _issue(self, m, fresh):
        """Start once the accumulate pipeline has written its last sum; read group
        ``ug`` of every memory into the datapaths. Returns the sample's last flag and
        the valid bit and group of the read data (one cycle later)."""
        G, phase, ua = self.geometry.groups, self.phase, self.access
        upd_pending = Signal()  # end of timestep taken, waiting for the accumulate pipeline
        u_iss, ug, last_flag = Signal(), Signal(index_width(G)), Signal()
        with m.If(self.step):
            m.d.sync += [phase.eq(Phase.UPDATE), upd_pending.eq(1),
                         last_flag.eq(self.step_last)]
        with m.If(upd_pending & ~self.acc_pending):
            m.d.sync += [upd_pending.eq(0), u_iss.eq(1), ug.eq(0)]
        with m.If(u_iss):
            m.d.sync += ug.eq(ug + 1)
            with m.If(ug == G - 1):
                m.d.sync += [u_iss.eq(0), ug.eq(0)]
        u1_valid, u1_g = Signal(), Signal(index_width(G))
        m.d.sync += [u1_valid.eq(u_iss), u1_g.eq(ug)]
        m.d.comb += [ua.read_en.eq(u_iss), ua.read_g.eq(ug), self.states.r_addr.eq(ug)]
        if self.biases is not None:
            m.d.comb += self.biases.r_addr.eq(ug)
        for p, dp in enumerate(self.datapaths):
            m.d.comb += [dp.state.eq(self.states.r_data[p]), dp.acc.eq(ua.data[p]),
                         dp.fresh.eq(fresh)]
            if self.biases is not None:
                m.d.comb += dp.bias.eq(self.biases.r_data[p])
        return last_flag, u1_valid, u1_g

    def _write(self, m, fresh, last_flag, u1_valid, u1_g):
        """The datapath outputs: state writes, spike words, the end-of-timestep word."""
        geom, phase, ofifo, sm = self.geometry, self.phase, self.fifo, self.states
        G, P = geom.groups, geom.lanes
        # align the group index with the datapath outputs (datapath latency)
        uL_valid, uL_g = u1_valid, u1_g
        for k in range(geom.latency):
            nv = Signal(name=f"upd_valid_s{k + 2}")
            ng = Signal(index_width(G), name=f"upd_g_s{k + 2}")
            m.d.sync += [nv.eq(uL_valid), ng.eq(uL_g)]
            uL_valid, uL_g = nv, ng
        spikes = Signal(P)
        m.d.comb += spikes.eq(Cat(dp.spike for dp in self.datapaths))
        tail = geom.last_group_lanes
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
        tr = self.trace
        m.d.comb += [tr.word_valid.eq(ofifo.w_en), tr.word.eq(word),
                     tr.state_en.eq(sm.w_en), tr.state_addr.eq(sm.w_addr),
                     tr.state_data.eq(sm.w_data)]

    def _clear(self, m, u1_valid, u1_g):
        """Accumulator clearing: every word after reset (phase CLEAR), each word after
        its update has read it."""
        G, phase, ua = self.geometry.groups, self.phase, self.access
        cg = Signal(index_width(G))
        m.d.comb += [ua.init_en.eq(phase == Phase.CLEAR), ua.init_g.eq(cg),
                     ua.clear_en.eq(u1_valid), ua.clear_g.eq(u1_g)]
        with m.If(phase == Phase.CLEAR):
            m.d.sync += cg.eq(cg + 1)
            with m.If(cg == G - 1):
                m.d.sync += phase.eq(Phase.ACC)
