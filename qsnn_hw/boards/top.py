"""Board top-levels: the UART bridge (:mod:`.bridge`) on a board's FTDI UART, the core
clocked from a PLL when the requested clock differs from the board clock, and LEDs for
status (error, heartbeat) and the last predicted class (binary).

Every pin is requested raw (``dir="-"``) and driven through an ``amaranth.lib.io``
buffer (the platform instantiates the family's I/O cell and applies a pin's inversion,
e.g. active-low LEDs); the PLL is the board family's (:mod:`.families`)."""

from __future__ import annotations

from amaranth.hdl import Elaboratable, Module, Signal
from amaranth.lib import io

from ..contract import IntNetwork
from ..hdl.config import CoreConfig
from .boards import Board
from .bridge import UartBridge

DEFAULT_BAUD = 115200


class BoardTop(Elaboratable):
    """Parameters
    ----------
    net : IntNetwork.
    board : :class:`~.boards.Board`.
    config : the core's :class:`~qsnn_hw.hdl.config.CoreConfig` (lanes, counters, FIFOs,
        quantizer, weight storage: "spram" is SB_SPRAM256KA on the iCE40 UltraPlus,
        loaded over the UART).
    clock_mhz : requested core clock (MHz); the board clock itself when equal, else a PLL
        output (:attr:`actual_mhz` is what the PLL achieves).
    baud : UART bit rate; the divisor is ``round(actual clock / baud)``.
    """

    def __init__(self, net: IntNetwork, board: Board, config: CoreConfig | None = None, *,
                 clock_mhz=None, baud: int = DEFAULT_BAUD):
        self.board = board
        self.clock_mhz = float(board.default_mhz if clock_mhz is None else clock_mhz)
        if not self.clock_mhz > 0:
            raise ValueError(f"clock must be positive, got {clock_mhz!r} MHz")
        self.pll = None
        if abs(self.clock_mhz - board.board_mhz) > 1e-9:
            self.pll = board.fpga.pll(board.board_mhz, self.clock_mhz)
        self.actual_mhz = self.pll.f_out if self.pll else board.board_mhz
        if not isinstance(baud, int) or baud <= 0:
            raise ValueError(f"baud must be a positive integer, got {baud!r}")
        self.baud = baud
        self.divisor = round(self.actual_mhz * 1e6 / baud)
        if self.divisor < 4:
            raise ValueError(f"baud {baud} is too fast for a {self.actual_mhz:g} MHz clock "
                             f"(needs >= 4 clocks per bit)")
        self.bridge = UartBridge(net, config, divisor=self.divisor)

    @property
    def baud_error(self) -> float:
        """Relative error of the real bit rate against ``baud``."""
        return self.actual_mhz * 1e6 / self.divisor / self.baud - 1

    def pll_info(self) -> dict | None:
        if self.pll is None:
            return None
        return {k: getattr(self.pll, k) for k in self.pll.__dataclass_fields__} | {
            "f_out_mhz": self.pll.f_out}

    def elaborate(self, platform):
        m = Module()
        board = self.board
        if self.pll is not None:
            clock = platform.request(board.clock_name, 0, dir="-")
            cd = board.fpga.pll_domain(m, self.pll, clock)
            platform.add_clock_constraint(cd.clk, self.actual_mhz * 1e6)
        m.submodules.bridge = br = self.bridge
        uart = platform.request("uart", 0, dir="-")
        m.submodules.rx_buf = rx = io.Buffer("i", uart.rx)
        m.submodules.tx_buf = tx = io.Buffer("o", uart.tx)
        m.d.comb += [br.rx.eq(rx.i), tx.o.eq(br.tx)]

        # heartbeat: toggles every half second, so a running clock blinks at 1 Hz
        half = max(2, round(self.actual_mhz * 1e6 / 2))
        beat, heart = Signal(range(half)), Signal()
        with m.If(beat == half - 1):
            m.d.sync += [beat.eq(0), heart.eq(~heart)]
        with m.Else():
            m.d.sync += beat.eq(beat + 1)
        err_led, heart_led = board.status_leds
        leds = [(err_led, br.error), (heart_led, heart ^ br.busy)]
        leds += [(idx, br.prediction[bit] & br.has_result)
                 for bit, idx in enumerate(board.class_leds[:len(br.prediction)])]
        for idx, value in leds:
            m.submodules[f"led{idx}_buf"] = led = io.Buffer(
                "o", platform.request("led", idx, dir="-"))
            m.d.comb += led.o.eq(value)
        return m
