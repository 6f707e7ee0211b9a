"""The UART bridge: bytes from a host -> the core's input stream; the core's result ->
bytes back (protocol in :mod:`.protocol`). Platform-independent, so the whole
host-to-core-to-host path runs in Amaranth's simulator (tests/test_boards_bridge.py);
the board tops in :mod:`.top` only add pins, a PLL and LEDs.
"""

from __future__ import annotations

from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal, Value
from amaranth.lib import wiring
from amaranth.lib.fifo import SyncFIFOBuffered
from amaranth.lib.wiring import In, Out

from ..contract import IntNetwork
from ..hdl._util import index_width
from ..hdl.config import CoreConfig
from ..hdl.top import NetworkTop
from . import protocol as P
from .uart import UARTRx, UARTTx, check_divisor


def _shift_in(reg, byte, n: int):
    """``reg`` (``n`` bytes) with ``byte`` shifted in from the top: after ``n`` bytes the
    first one received is the lowest (little-endian)."""
    return (reg >> 8) | (byte << (8 * n - 8))


def _le_bytes(value, n: int) -> list:
    """``n`` little-endian bytes of ``value`` (zero-extended)."""
    v = Cat(Value.cast(value), Const(0, 8 * n))
    return [v[8 * k:8 * k + 8] for k in range(n)]


class UartBridge(wiring.Component):
    """Parameters
    ----------
    net : IntNetwork; lanes, count_bits, pipelined : as :class:`NetworkTop`.
    divisor : UART clocks per bit (``round(f_clk / baud)``, >= 4).
    rx_fifo_depth : receive FIFO depth in bytes.
    fifo_depth : the core's per-layer output FIFO depths (NetworkTop), or ``"min"`` for
        G + 1 words each (less layer overlap, far fewer flip-flops on small devices).
    weight_storage : per-layer weight storage of the core ("rom", "ram", "spram"; one or
        one per layer). RAM weights are loaded over the UART (``CMD_WRITE`` /
        ``CMD_LOADED``, :mod:`.protocol`); until then replies carry status bit 3.

    Members
    -------
    rx : In(1) (pin, idle high); tx : Out(1) (pin, idle high).
    prediction : Out, the last prediction (LEDs); has_result : Out(1).
    busy : Out(1) (core busy); error : Out(1) (core error, receive overflow or framing).
    weights_loaded : Out(1), 1 for ROM weights; for RAM weights after a successful
        ``CMD_LOADED``.
    """

    def __init__(self, net: IntNetwork, config: CoreConfig | None = None, *, divisor: int,
                 rx_fifo_depth: int = 64):
        if not isinstance(net, IntNetwork):
            raise TypeError(f"net must be an IntNetwork, got {type(net).__name__}")
        self.net = net
        self.divisor = check_divisor(divisor)
        if not isinstance(rx_fifo_depth, int) or rx_fifo_depth < 2:
            raise ValueError(f"rx_fifo_depth must be an integer >= 2, got {rx_fifo_depth!r}")
        self.rx_fifo_depth = rx_fifo_depth
        self.core = NetworkTop(net, config)
        self.config = self.core.config
        self.load = P.load_layout(net, self.config)
        self.framing = P.framing(net, self.config.count_bits)
        if self.framing.beat_bytes > 255:
            raise ValueError("input beats wider than 255 bytes are not supported")
        super().__init__({
            "rx": In(1, init=1), "tx": Out(1, init=1),
            "prediction": Out(index_width(net.n_out)), "has_result": Out(1),
            "busy": Out(1), "error": Out(1), "weights_loaded": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        fr = self.framing
        core = self.core
        m.submodules.core = core
        m.submodules.urx = urx = UARTRx(self.divisor)
        m.submodules.utx = utx = UARTTx(self.divisor)
        m.submodules.rxfifo = fifo = SyncFIFOBuffered(width=8, depth=self.rx_fifo_depth)
        m.d.comb += [urx.rx.eq(self.rx), self.tx.eq(utx.tx)]

        overflow, framing_err = Signal(), Signal()
        m.d.comb += [fifo.w_data.eq(urx.data), fifo.w_en.eq(urx.valid)]
        with m.If(urx.valid & ~fifo.w_rdy):
            m.d.sync += overflow.eq(1)
        with m.If(urx.frame_error):
            m.d.sync += framing_err.eq(1)

        # ---- cycles from start to result ---------------------------------------------
        cycles = Signal(8 * P.CYCLE_BYTES)
        res = core.results
        with m.If(core.busy & ~res.valid & (cycles != (1 << len(cycles)) - 1)):
            m.d.sync += cycles.eq(cycles + 1)
        with m.If(core.start & ~core.busy):
            m.d.sync += cycles.eq(0)

        # ---- reply bytes ---------------------------------------------------------------
        status = Signal(8)
        ld = self.load
        loaded = Signal(init=0 if ld.layers else 1)   # RAM weights: set by CMD_LOADED
        rejected = Signal()                            # a weight write was dropped
        m.d.comb += [status.eq(core.error | (overflow << 1) | (framing_err << 2) |
                               (~loaded << 3) | (rejected << 4)),
                     self.weights_loaded.eq(loaded)]
        pay = res.payload
        reply = [Const(P.REPLY_SAMPLE, 8), status]
        reply += _le_bytes(pay.prediction, fr.pred_bytes)
        for n in range(fr.n_out):
            reply += _le_bytes(pay.counts[n], fr.count_bytes)
        reply += _le_bytes(cycles, P.CYCLE_BYTES)
        assert len(reply) == fr.reply_bytes
        ident = [P.CMD_IDENT, *P.model_id(self.net).to_bytes(4, "little"), fr.beat_bytes,
                 *fr.n_out.to_bytes(2, "little"), fr.count_bytes]
        ident = [Const(b, 8) for b in ident]
        ident += [Cat(Const(1 if ld.layers else 0, 1), loaded, Const(0, 6)),
                  Const(ld.word_bytes, 8),
                  *(Const(b, 8) for b in ld.total_words.to_bytes(P.ADDR_BYTES, "little"))]
        assert len(ident) == P.Framing.IDENT_BYTES

        idx = Signal(range(max(len(reply), len(ident)) + 1))
        reply_last = Signal()  # idx == len(reply) - 1, as a register (timing)
        cmd = Signal(8)        # the command byte being decoded
        # Reply and identity bytes from registers (the byte multiplexers stay off the
        # UART's shift register input); after idx changes, one cycle for them to follow.
        reply_byte, ident_byte, tx_wait = Signal(8), Signal(8), Signal()
        m.d.sync += [reply_byte.eq(Array(reply)[idx]), ident_byte.eq(Array(ident)[idx]),
                     tx_wait.eq(0)]
        ack = Signal(8)                                          # CMD_WRITE / CMD_LOADED
        written = Signal(8 * P.ADDR_BYTES + 1)                   # words since CMD_LOADED
        beat = Signal(8 * fr.beat_bytes)
        nbyte = Signal(range(fr.beat_bytes + 1))
        ev = core.events
        m.d.comb += ev.payload.eq(beat[:fr.beat_bits])

        with m.FSM():
            with m.State("IDLE"):
                with m.If(fifo.r_rdy & ~core.busy):
                    m.d.comb += fifo.r_en.eq(1)
                    m.d.sync += cmd.eq(fifo.r_data)
                    m.next = "DECODE"
            with m.State("DECODE"):
                # the command byte from a register, not from the FIFO's output (timing)
                m.next = "IDLE"   # other bytes are ignored (resynchronisation)
                with m.If(cmd == P.CMD_SAMPLE):
                    m.d.sync += nbyte.eq(0)
                    m.next = "START"
                with m.Elif(cmd == P.CMD_IDENT):
                    m.d.sync += [idx.eq(0), tx_wait.eq(1)]
                    m.next = "IDENT"
                if ld.layers:
                    with m.Elif(cmd == P.CMD_WRITE):
                        m.d.sync += [loaded.eq(0), ack.eq(P.CMD_WRITE)]
                        m.next = "W_HEADER"
                    with m.Elif(cmd == P.CMD_LOADED):
                        m.d.sync += [loaded.eq(written == ld.total_words), written.eq(0),
                                     ack.eq(P.CMD_LOADED), idx.eq(0)]
                        m.next = "ACK"
            with m.State("START"):
                # start from the state register, not from the received byte (timing)
                m.d.comb += core.start.eq(1)
                m.next = "BEAT"
            with m.State("BEAT"):
                with m.If(fifo.r_rdy):
                    m.d.comb += fifo.r_en.eq(1)
                    m.d.sync += [beat.eq(_shift_in(beat, fifo.r_data, fr.beat_bytes)),
                                 nbyte.eq(nbyte + 1)]
                    with m.If(nbyte == fr.beat_bytes - 1):
                        m.next = "PUSH"
            with m.State("PUSH"):
                m.d.comb += ev.valid.eq(1)
                with m.If(ev.ready):
                    m.d.sync += nbyte.eq(0)
                    with m.If(beat[fr.eot_bit] & beat[fr.last_bit]):
                        m.next = "WAIT"
                    with m.Else():
                        m.next = "BEAT"
            with m.State("WAIT"):
                with m.If(res.valid):
                    m.d.sync += [idx.eq(0), reply_last.eq(len(reply) == 1), tx_wait.eq(1)]
                    m.next = "REPLY"
            with m.State("REPLY"):
                m.d.comb += [utx.data.eq(reply_byte), utx.valid.eq(~tx_wait)]
                with m.If(utx.ready & ~tx_wait):
                    m.d.sync += [idx.eq(idx + 1), reply_last.eq(idx == len(reply) - 2),
                                 tx_wait.eq(1)]
                    with m.If(reply_last):
                        m.d.comb += res.ready.eq(1)
                        m.d.sync += [overflow.eq(0), framing_err.eq(0), rejected.eq(0),
                                     self.prediction.eq(pay.prediction),
                                     self.has_result.eq(1)]
                        m.next = "IDLE"
            with m.State("IDENT"):
                m.d.comb += [utx.data.eq(ident_byte), utx.valid.eq(~tx_wait)]
                with m.If(utx.ready & ~tx_wait):
                    m.d.sync += [idx.eq(idx + 1), tx_wait.eq(1)]
                    with m.If(idx == len(ident) - 1):
                        m.next = "IDLE"

            # ---- RAM weights: CMD_WRITE header, words, acknowledgement ----
            if ld.layers:
                self._load_states(m, fifo, utx, status, ack, written, idx, overflow,
                                  framing_err, rejected)

        m.d.comb += [self.busy.eq(core.busy),
                     self.error.eq(core.error | overflow | framing_err)]
        return m

    def _load_states(self, m, fifo, utx, status, ack, written, idx, overflow,
                     framing_err, rejected):
        """FSM states of the weight loader (inside the bridge FSM): ``W_HEADER`` (layer,
        addr, count), ``W_WORD`` (one word's bytes), ``W_PUT`` (write it, or drop and
        flag it), ``ACK`` (reply ``ack``, status)."""
        ld, core = self.load, self.core
        hbytes = 1 + 2 * P.ADDR_BYTES
        header = Signal(8 * hbytes)
        layer, addr = Signal(8), Signal(8 * P.ADDR_BYTES)
        count = Signal(8 * P.ADDR_BYTES)
        word = Signal(8 * ld.word_bytes)
        wl = core.weight_load
        lbyte = Signal(range(max(hbytes, ld.word_bytes) + 1))
        # ``ok``: the word at (layer, addr) exists. A register (off the write-enable ->
        # SPRAM address path): addr last changed at least one W_WORD cycle before W_PUT.
        ok = Signal()
        m.d.sync += ok.eq(Cat(*[(layer == i) & (addr < d)
                                for i, d in zip(ld.layers, ld.depths, strict=True)]).any())
        with m.State("W_HEADER"):
            with m.If(fifo.r_rdy):
                m.d.comb += fifo.r_en.eq(1)
                m.d.sync += [header.eq(_shift_in(header, fifo.r_data, hbytes)),
                             lbyte.eq(lbyte + 1)]
                with m.If(lbyte == hbytes - 1):
                    m.next = "W_START"
        with m.State("W_START"):
            a = 8 * P.ADDR_BYTES
            m.d.sync += [layer.eq(header[:8]), addr.eq(header[8:8 + a]),
                         count.eq(header[8 + a:]), lbyte.eq(0), idx.eq(0)]
            with m.If(header[8 + a:] == 0):
                m.next = "ACK"
            with m.Else():
                m.next = "W_WORD"
        with m.State("W_WORD"):
            with m.If(fifo.r_rdy):
                m.d.comb += fifo.r_en.eq(1)
                m.d.sync += [word.eq(_shift_in(word, fifo.r_data, ld.word_bytes)),
                             lbyte.eq(lbyte + 1)]
                with m.If(lbyte == ld.word_bytes - 1):
                    m.next = "W_PUT"
        with m.State("W_PUT"):
            m.d.comb += [wl.layer.eq(layer), wl.addr.eq(addr), wl.data.eq(word),
                         wl.en.eq(ok)]
            with m.If(ok):
                with m.If(written != (1 << len(written)) - 1):
                    m.d.sync += written.eq(written + 1)
            with m.Else():
                m.d.sync += rejected.eq(1)
            m.d.sync += [addr.eq(addr + 1), count.eq(count - 1), lbyte.eq(0)]
            with m.If(count == 1):
                m.d.sync += idx.eq(0)
                m.next = "ACK"
            with m.Else():
                m.next = "W_WORD"
        with m.State("ACK"):
            m.d.comb += [utx.data.eq(Mux(idx == 0, ack, status)), utx.valid.eq(1)]
            with m.If(utx.ready):
                m.d.sync += idx.eq(idx + 1)
                with m.If(idx == 1):
                    m.d.sync += [overflow.eq(0), framing_err.eq(0), rejected.eq(0)]
                    m.next = "IDLE"
