"""The weight loader: ``CMD_WRITE`` bursts and ``CMD_LOADED`` -> the core's
``weight_load`` port, the "weights loaded" and "write rejected" status bits and the
two-byte acknowledgement (protocol in :mod:`qsnn_hw.boards.protocol`)."""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Mux, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from .. import protocol as P
from ._bytes import shift_in


class WeightLoader(wiring.Component):
    """Parameters
    ----------
    load : :class:`~..protocol.LoadLayout` (at least one RAM layer).
    weight_load : the core's ``weight_load`` signature (NetworkTop.weight_load_signature).

    Members
    -------
    rx : In(stream of bytes), the received bytes (read only while writing).
    write, commit : In(1), strobes from the command decoder (``CMD_WRITE``,
        ``CMD_LOADED``: the byte after the command is the header / nothing).
    weight_load : Out, to the core.
    status : In(8), the status byte of the acknowledgement.
    tx : Out(stream of bytes), the acknowledgement.
    done : Out(1), strobe: the acknowledgement's last byte was taken.
    loaded : Out(1), register: the accepted words since the last ``CMD_LOADED`` were
        exactly the RAM layers' words (cleared by ``CMD_WRITE``).
    rejected : Out(1), register: a word was dropped (cleared by an acknowledgement or by
        ``clear``, a sample reply).
    """

    HEADER_BYTES = 1 + 2 * P.ADDR_BYTES    # layer, addr, count

    def __init__(self, load: P.LoadLayout, weight_load: wiring.Signature):
        if not load.layers:
            raise ValueError("the weight loader needs at least one RAM layer")
        self.load = load
        super().__init__({
            "rx": In(stream.Signature(8)), "write": In(1), "commit": In(1),
            "weight_load": Out(weight_load), "status": In(8),
            "tx": Out(stream.Signature(8)), "done": Out(1), "loaded": Out(1),
            "rejected": Out(1), "clear": In(1)})

    def elaborate(self, platform):
        m = Module()
        ld = self.load
        hbytes = self.HEADER_BYTES
        header = Signal(8 * hbytes)
        layer, addr = Signal(8), Signal(8 * P.ADDR_BYTES)
        count = Signal(8 * P.ADDR_BYTES)
        word = Signal(8 * ld.word_bytes)
        written = Signal(8 * P.ADDR_BYTES + 1)                   # words since CMD_LOADED
        ack, ack_byte = Signal(8), Signal()                      # the command, which byte
        lbyte = Signal(range(max(hbytes, ld.word_bytes) + 1))
        # ``ok``: the word at (layer, addr) exists. A register (off the write-enable ->
        # SPRAM address path): addr last changed at least one W_WORD cycle before W_PUT.
        ok = Signal()
        m.d.sync += ok.eq(Cat(*[(layer == i) & (addr < d)
                                for i, d in zip(ld.layers, ld.depths, strict=True)]).any())
        with m.If(self.clear):
            m.d.sync += self.rejected.eq(0)
        with m.FSM():
            with m.State("IDLE"):
                with m.If(self.write):
                    m.d.sync += [self.loaded.eq(0), ack.eq(P.CMD_WRITE)]
                    m.next = "W_HEADER"
                with m.Elif(self.commit):
                    m.d.sync += [self.loaded.eq(written == ld.total_words), written.eq(0),
                                 ack.eq(P.CMD_LOADED), ack_byte.eq(0)]
                    m.next = "ACK"
            with m.State("W_HEADER"):
                self._read(m, header, lbyte, "W_START")
            with m.State("W_START"):
                a = 8 * P.ADDR_BYTES
                m.d.sync += [layer.eq(header[:8]), addr.eq(header[8:8 + a]),
                             count.eq(header[8 + a:]), lbyte.eq(0), ack_byte.eq(0)]
                with m.If(header[8 + a:] == 0):
                    m.next = "ACK"
                with m.Else():
                    m.next = "W_WORD"
            with m.State("W_WORD"):
                self._read(m, word, lbyte, "W_PUT")
            with m.State("W_PUT"):
                self._put(m, layer, addr, count, word, ok, written, lbyte, ack_byte)
            with m.State("ACK"):
                self._acknowledge(m, ack, ack_byte)
        return m

    def _read(self, m, reg, lbyte, then: str):
        """Shift the bytes of ``reg`` in (little-endian), then go to state ``then``."""
        n = len(reg) // 8
        with m.If(self.rx.valid):
            m.d.comb += self.rx.ready.eq(1)
            m.d.sync += [reg.eq(shift_in(reg, self.rx.payload, n)), lbyte.eq(lbyte + 1)]
            with m.If(lbyte == n - 1):
                m.next = then

    def _put(self, m, layer, addr, count, word, ok, written, lbyte, ack_byte):
        """Write one word (or drop and flag it); the next address; the acknowledgement
        after the last word."""
        wl = self.weight_load
        m.d.comb += [wl.layer.eq(layer), wl.addr.eq(addr), wl.data.eq(word), wl.en.eq(ok)]
        with m.If(ok):
            # stop at the top bit, 2**(8*ADDR_BYTES): past any total (<= MAX_BURST), and a
            # single bit decides the enable (a whole-count compare was the 40.5 MHz UP5K
            # build's critical path)
            with m.If(~written[-1]):
                m.d.sync += written.eq(written + 1)
        with m.Else():
            m.d.sync += self.rejected.eq(1)
        m.d.sync += [addr.eq(addr + 1), count.eq(count - 1), lbyte.eq(0)]
        with m.If(count == 1):
            m.d.sync += ack_byte.eq(0)
            m.next = "ACK"
        with m.Else():
            m.next = "W_WORD"

    def _acknowledge(self, m, ack, ack_byte):
        """``ack`` (the command), then the status byte."""
        tx = self.tx
        m.d.comb += [tx.payload.eq(Mux(ack_byte == 0, ack, self.status)), tx.valid.eq(1)]
        with m.If(tx.ready):
            m.d.sync += ack_byte.eq(1)
            with m.If(ack_byte == 1):
                m.d.comb += self.done.eq(1)
                m.d.sync += self.rejected.eq(0)
                m.next = "IDLE"
