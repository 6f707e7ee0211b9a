"""The UART bridge: bytes from a host -> the core's input stream; the core's result ->
bytes back (protocol in :mod:`..protocol`). Platform-independent, so the whole
host-to-core-to-host path runs in Amaranth's simulator (tests/test_boards_bridge.py);
the board tops in :mod:`..top` only add pins, a PLL and LEDs.

One component per concern, joined here: the UART and its receive FIFO (with the sticky
overflow and framing flags), :class:`.decoder.CommandDecoder` (command bytes and a
sample's beats), :class:`.reply.ReplyEncoder` (the sample and identity replies) and, for
RAM weights, :class:`.loader.WeightLoader` (``CMD_WRITE`` / ``CMD_LOADED``). One of them
has the line at a time: the decoder hands it over with a strobe and takes it back on the
other's ``done`` in the same cycle, so the split adds no cycles and no registers on the
paths (Yosys flattens the components).
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Signal
from amaranth.lib import wiring
from amaranth.lib.fifo import SyncFIFOBuffered
from amaranth.lib.wiring import In, Out

from ...contract import IntNetwork
from ...hdl._util import index_width
from ...hdl.config import CoreConfig
from ...hdl.top import NetworkTop
from .. import protocol as P
from ..uart import UARTRx, UARTTx, check_divisor
from .decoder import CommandDecoder
from .loader import WeightLoader
from .reply import ReplyEncoder

__all__ = ["CommandDecoder", "ReplyEncoder", "UartBridge", "WeightLoader"]


# the receive FIFO's default depth in bytes
RX_FIFO_DEPTH = 64


class UartBridge(wiring.Component):
    """Parameters
    ----------
    net : IntNetwork.
    config : the core's :class:`~qsnn_hw.hdl.config.CoreConfig` (lanes, counters, FIFOs,
        quantizer, weight storage). RAM weights are loaded over the UART (``CMD_WRITE`` /
        ``CMD_LOADED``, :mod:`..protocol`); until then replies carry status bit 3.
    divisor : UART clocks per bit (``round(f_clk / baud)``, >= 4).
    rx_fifo_depth : receive FIFO depth in bytes.

    Members
    -------
    rx : In(1) (pin, idle high); tx : Out(1) (pin, idle high).
    prediction : Out, the last prediction (LEDs); has_result : Out(1).
    busy : Out(1) (core busy); error : Out(1) (core error, receive overflow or framing).
    weights_loaded : Out(1), 1 for ROM weights; for RAM weights after a successful
        ``CMD_LOADED``.
    """

    def __init__(self, net: IntNetwork, config: CoreConfig | None = None, *, divisor: int,
                 rx_fifo_depth: int = RX_FIFO_DEPTH):
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
        self.framing = P.framing(net, self.config.count_bits,
                                 static=self.config.static_input(net))
        if self.framing.beat_bytes > 255:
            raise ValueError("input beats wider than 255 bytes are not supported")
        super().__init__({
            "rx": In(1, init=1), "tx": Out(1, init=1),
            "prediction": Out(index_width(net.n_out)), "has_result": Out(1),
            "busy": Out(1), "error": Out(1), "weights_loaded": Out(1),
        })

    def _receive(self, m):
        """UART receiver -> receive FIFO; returns the FIFO and the sticky overflow and
        framing-error flags."""
        m.submodules.urx = urx = UARTRx(self.divisor)
        m.submodules.rxfifo = fifo = SyncFIFOBuffered(width=8, depth=self.rx_fifo_depth)
        overflow, framing_err = Signal(), Signal()
        m.d.comb += [urx.rx.eq(self.rx), fifo.w_data.eq(urx.data), fifo.w_en.eq(urx.valid)]
        with m.If(urx.valid & ~fifo.w_rdy):
            m.d.sync += overflow.eq(1)
        with m.If(urx.frame_error):
            m.d.sync += framing_err.eq(1)
        return fifo, overflow, framing_err

    def elaborate(self, platform):
        m = Module()
        m.submodules.core = core = self.core
        fifo, overflow, framing_err = self._receive(m)
        m.submodules.utx = utx = UARTTx(self.divisor)
        m.submodules.decoder = dec = CommandDecoder(
            self.framing, core.events.payload.shape(), weights=bool(self.load.layers))
        m.submodules.reply = rep = ReplyEncoder(self.net, self.framing, self.load)
        # the byte stream goes to the decoder and the loader (one reads at a time); the
        # transmitter takes the reply's and the loader's bytes (one sends at a time)
        readers, senders = [dec.rx], [rep.tx]
        loaded, rejected, done, acked = Const(1), Const(0), rep.done, Const(0)
        if self.load.layers:
            m.submodules.loader = ldr = WeightLoader(self.load,
                                                     core.weight_load_signature())
            wiring.connect(m, ldr.weight_load, core.weight_load)
            m.d.comb += [ldr.write.eq(dec.write), ldr.commit.eq(dec.commit),
                         ldr.clear.eq(rep.sent_result)]
            readers.append(ldr.rx)
            senders.append(ldr.tx)
            loaded, rejected, done, acked = ldr.loaded, ldr.rejected, rep.done | ldr.done, \
                ldr.done
        for r in readers:
            m.d.comb += [r.payload.eq(fifo.r_data), r.valid.eq(fifo.r_rdy)]
        for s in senders:
            m.d.comb += s.ready.eq(utx.ready)
        m.d.comb += [fifo.r_en.eq(Cat(r.ready for r in readers).any()),
                     utx.data.eq(_or(s.payload for s in senders)),
                     utx.valid.eq(Cat(s.valid for s in senders).any()),
                     self.tx.eq(utx.tx)]

        wiring.connect(m, dec.events, core.events)
        wiring.connect(m, core.results, rep.result)
        status = Cat(core.error, overflow, framing_err, ~loaded, rejected, Const(0, 3))
        m.d.comb += [core.start.eq(dec.start), dec.core_busy.eq(core.busy),
                     dec.done.eq(done), rep.start.eq(dec.start),
                     rep.core_busy.eq(core.busy), rep.sample.eq(dec.sample),
                     rep.ident.eq(dec.ident), rep.status.eq(status), rep.loaded.eq(loaded),
                     self.weights_loaded.eq(loaded), self.prediction.eq(rep.prediction),
                     self.has_result.eq(rep.has_result), self.busy.eq(core.busy),
                     self.error.eq(core.error | overflow | framing_err)]
        if self.load.layers:
            m.d.comb += ldr.status.eq(status)
        # a finished sample reply or acknowledgement clears the sticky receive flags
        with m.If(rep.sent_result | acked):
            m.d.sync += [overflow.eq(0), framing_err.eq(0)]
        return m


def _or(values):
    out = Const(0, 8)
    for v in values:
        out = out | v
    return out
