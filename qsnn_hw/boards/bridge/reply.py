"""Replies: the core's result -> the sample reply's bytes (with the cycle count), and the
identity reply (protocol in :mod:`qsnn_hw.boards.protocol`)."""

from __future__ import annotations

from amaranth.hdl import Array, Cat, Const, Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from ...contract import IntNetwork
from ...hdl._util import index_width
from ...hdl.layouts import result_layout
from .. import protocol as P
from ._bytes import le_bytes


class ReplyEncoder(wiring.Component):
    """Sends the sample reply once the result is there (``sample`` strobe, then the
    core's ``result``) or the identity reply (``ident`` strobe), one byte per ``tx``
    transfer; counts the cycles from ``start`` to the result.

    Parameters
    ----------
    net : IntNetwork (its identity); framing : :class:`~..protocol.Framing`.
    load : :class:`~..protocol.LoadLayout` (the identity's weight fields).

    Members
    -------
    result : In(stream), the core's results; start, core_busy : In(1), the core's.
    status : In(8), the status byte; loaded : In(1), the weights are loaded.
    sample, ident : In(1), strobes from the command decoder.
    tx : Out(stream of bytes), to the UART transmitter.
    done : Out(1), strobe: the last byte of a reply was taken; sent_result : Out(1),
    the same for a sample reply (the status flags are cleared).
    prediction : Out, the last prediction; has_result : Out(1).
    """

    def __init__(self, net: IntNetwork, framing: P.Framing, load: P.LoadLayout):
        self.net, self.framing, self.load = net, framing, load
        super().__init__({
            "result": In(stream.Signature(result_layout(framing.n_out, framing.count_bits))),
            "start": In(1), "core_busy": In(1), "status": In(8), "loaded": In(1),
            "sample": In(1), "ident": In(1), "tx": Out(stream.Signature(8)),
            "done": Out(1), "sent_result": Out(1),
            "prediction": Out(index_width(net.n_out)), "has_result": Out(1)})

    def _cycles(self, m) -> Signal:
        """Clock cycles from ``start`` to the result (saturating)."""
        cycles = Signal(8 * P.CYCLE_BYTES)
        with m.If(self.core_busy & ~self.result.valid & (cycles != (1 << len(cycles)) - 1)):
            m.d.sync += cycles.eq(cycles + 1)
        with m.If(self.start & ~self.core_busy):
            m.d.sync += cycles.eq(0)
        return cycles

    def _bytes(self, cycles) -> tuple[list, list]:
        """The sample reply's and the identity reply's bytes (values)."""
        fr, ld, pay = self.framing, self.load, self.result.payload
        reply = [Const(P.REPLY_SAMPLE, 8), self.status]
        reply += le_bytes(pay.prediction, fr.pred_bytes)
        for n in range(fr.n_out):
            reply += le_bytes(pay.counts[n], fr.count_bytes)
        reply += le_bytes(cycles, P.CYCLE_BYTES)
        assert len(reply) == fr.reply_bytes
        ident = [P.CMD_IDENT, *P.model_id(self.net).to_bytes(4, "little"), fr.beat_bytes,
                 *fr.n_out.to_bytes(2, "little"), fr.count_bytes]
        ident = [Const(b, 8) for b in ident]
        ident += [Cat(Const(1 if ld.layers else 0, 1), self.loaded,
                      Const(int(fr.static), 1), Const(0, 5)),
                  Const(ld.word_bytes, 8),
                  *(Const(b, 8) for b in ld.total_words.to_bytes(P.ADDR_BYTES, "little"))]
        assert len(ident) == P.Framing.IDENT_BYTES
        return reply, ident

    def elaborate(self, platform):
        m = Module()
        reply, ident = self._bytes(self._cycles(m))
        res, tx = self.result, self.tx
        idx = Signal(range(max(len(reply), len(ident)) + 1))
        reply_last = Signal()  # idx == len(reply) - 1, as a register (timing)
        # Reply and identity bytes from registers (the byte multiplexers stay off the
        # UART's shift register input); after idx changes, one cycle for them to follow.
        reply_byte, ident_byte, tx_wait = Signal(8), Signal(8), Signal()
        m.d.sync += [reply_byte.eq(Array(reply)[idx]), ident_byte.eq(Array(ident)[idx]),
                     tx_wait.eq(0)]
        with m.FSM():
            with m.State("IDLE"):
                with m.If(self.sample):
                    m.next = "WAIT"
                with m.Elif(self.ident):
                    m.d.sync += [idx.eq(0), tx_wait.eq(1)]
                    m.next = "IDENT"
            with m.State("WAIT"):
                with m.If(res.valid):
                    m.d.sync += [idx.eq(0), reply_last.eq(len(reply) == 1), tx_wait.eq(1)]
                    m.next = "REPLY"
            with m.State("REPLY"):
                m.d.comb += [tx.payload.eq(reply_byte), tx.valid.eq(~tx_wait)]
                with m.If(tx.ready & ~tx_wait):
                    m.d.sync += [idx.eq(idx + 1), reply_last.eq(idx == len(reply) - 2),
                                 tx_wait.eq(1)]
                    with m.If(reply_last):
                        m.d.comb += [res.ready.eq(1), self.done.eq(1),
                                     self.sent_result.eq(1)]
                        m.d.sync += [self.prediction.eq(res.payload.prediction),
                                     self.has_result.eq(1)]
                        m.next = "IDLE"
            with m.State("IDENT"):
                m.d.comb += [tx.payload.eq(ident_byte), tx.valid.eq(~tx_wait)]
                with m.If(tx.ready & ~tx_wait):
                    m.d.sync += [idx.eq(idx + 1), tx_wait.eq(1)]
                    with m.If(idx == len(ident) - 1):
                        m.d.comb += self.done.eq(1)
                        m.next = "IDLE"
        return m
