"""Command decoding: the received byte stream -> commands, and a sample's bytes -> the
core's input beats (protocol in :mod:`qsnn_hw.boards.protocol`)."""

from __future__ import annotations

from amaranth.hdl import Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from .. import protocol as P
from ._bytes import shift_in


class CommandDecoder(wiring.Component):
    """Reads a command byte while the core is idle and either feeds a sample's beats to
    the core (``CMD_SAMPLE``) or hands the line to the reply / the weight loader with a
    one-cycle strobe, then waits for their ``done``. Other bytes are ignored (the host
    resynchronises with idle bytes).

    Parameters
    ----------
    framing : :class:`~qsnn_hw.boards.protocol.Framing` of the input stream.
    beat_shape : the core's ``events`` payload shape.
    weights : True when the core has RAM weights (``CMD_WRITE`` / ``CMD_LOADED`` decoded).

    Members
    -------
    rx : In(stream of bytes), the received bytes.
    events : Out(stream), the core's input beats; start : Out(1), the core's start.
    core_busy : In(1).
    sample : Out(1), strobe: the sample's last beat was taken (wait for the result).
    ident, write, commit : Out(1), strobes: ``CMD_IDENT``, ``CMD_WRITE``, ``CMD_LOADED``.
    done : In(1), the reply or the loader finished (back to reading commands).
    """

    def __init__(self, framing: P.Framing, beat_shape, *, weights: bool):
        self.framing = framing
        self.weights = weights
        super().__init__({
            "rx": In(stream.Signature(8)), "events": Out(stream.Signature(beat_shape)),
            "start": Out(1), "core_busy": In(1), "sample": Out(1), "ident": Out(1),
            "write": Out(1), "commit": Out(1), "done": In(1)})

    def elaborate(self, platform):
        m = Module()
        fr, rx, ev = self.framing, self.rx, self.events
        cmd = Signal(8)        # the command byte being decoded
        beat = Signal(8 * fr.beat_bytes)
        nbyte = Signal(range(fr.beat_bytes + 1))
        m.d.comb += ev.payload.eq(beat[:fr.beat_bits])
        with m.FSM():
            with m.State("IDLE"):
                with m.If(rx.valid & ~self.core_busy):
                    m.d.comb += rx.ready.eq(1)
                    m.d.sync += cmd.eq(rx.payload)
                    m.next = "DECODE"
            with m.State("DECODE"):
                # the command byte from a register, not from the FIFO's output (timing)
                self._decode(m, cmd, nbyte)
            with m.State("START"):
                # start from the state register, not from the received byte (timing)
                m.d.comb += self.start.eq(1)
                m.next = "BEAT"
            with m.State("BEAT"):
                with m.If(rx.valid):
                    m.d.comb += rx.ready.eq(1)
                    m.d.sync += [beat.eq(shift_in(beat, rx.payload, fr.beat_bytes)),
                                 nbyte.eq(nbyte + 1)]
                    with m.If(nbyte == fr.beat_bytes - 1):
                        m.next = "PUSH"
            with m.State("PUSH"):
                m.d.comb += ev.valid.eq(1)
                with m.If(ev.ready):
                    m.d.sync += nbyte.eq(0)
                    with m.If(beat[fr.eot_bit] & beat[fr.last_bit]):
                        m.d.comb += self.sample.eq(1)
                        m.next = "HANDED"
                    with m.Else():
                        m.next = "BEAT"
            with m.State("HANDED"):
                # the reply or the weight loader has the line until it is done
                with m.If(self.done):
                    m.next = "IDLE"
        return m

    def _decode(self, m, cmd, nbyte):
        m.next = "IDLE"   # other bytes are ignored (resynchronisation)
        with m.If(cmd == P.CMD_SAMPLE):
            m.d.sync += nbyte.eq(0)
            m.next = "START"
        with m.Elif(cmd == P.CMD_IDENT):
            m.d.comb += self.ident.eq(1)
            m.next = "HANDED"
        if self.weights:
            with m.Elif(cmd == P.CMD_WRITE):
                m.d.comb += self.write.eq(1)
                m.next = "HANDED"
            with m.Elif(cmd == P.CMD_LOADED):
                m.d.comb += self.commit.eq(1)
                m.next = "HANDED"
