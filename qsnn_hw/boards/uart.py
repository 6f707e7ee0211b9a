"""A minimal 8N1 UART (receiver and transmitter) with a divisor in clocks per bit.

No parity, one stop bit, LSB first, line idle high. ``divisor`` (clocks per bit, >= 4)
is a constructor parameter, so simulation tests can run at a few clocks per bit and a
board top sets ``round(f_clk / baud)``.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Signal
from amaranth.lib import wiring
from amaranth.lib.cdc import FFSynchronizer
from amaranth.lib.wiring import In, Out

MIN_DIVISOR = 4


def check_divisor(divisor) -> int:
    if isinstance(divisor, bool) or not isinstance(divisor, int) or divisor < MIN_DIVISOR:
        raise ValueError(f"divisor (clocks per bit) must be an integer >= {MIN_DIVISOR}, "
                         f"got {divisor!r}")
    return divisor


class UARTRx(wiring.Component):
    """Members: ``rx`` (pin, In), ``data`` (Out 8), ``valid`` (Out 1: one-cycle pulse per
    received byte), ``frame_error`` (Out 1: one-cycle pulse when the stop bit was low)."""

    def __init__(self, divisor: int):
        self.divisor = check_divisor(divisor)
        super().__init__({"rx": In(1, init=1), "data": Out(8), "valid": Out(1),
                          "frame_error": Out(1)})

    def elaborate(self, platform):
        m = Module()
        rx = Signal(init=1)
        m.submodules.sync_rx = FFSynchronizer(self.rx, rx, init=1)
        d = self.divisor
        timer = Signal(range(d + d // 2 + 1))
        bit = Signal(range(9))
        shreg = Signal(8)
        with m.FSM():
            with m.State("IDLE"):
                with m.If(~rx):
                    # first sample in the middle of data bit 0: 1.5 bit times after the edge
                    m.d.sync += [timer.eq(d + d // 2 - 2), bit.eq(0)]
                    m.next = "DATA"
            with m.State("DATA"):
                m.d.sync += timer.eq(timer - 1)
                with m.If(timer == 0):
                    m.d.sync += [shreg.eq(Cat(shreg[1:], rx)),
                                 timer.eq(d - 1), bit.eq(bit + 1)]
                    with m.If(bit == 7):
                        m.next = "STOP"
            with m.State("STOP"):
                m.d.sync += timer.eq(timer - 1)
                with m.If(timer == 0):
                    with m.If(rx):
                        m.d.comb += self.valid.eq(1)
                    with m.Else():
                        m.d.comb += self.frame_error.eq(1)
                    m.next = "WAIT_IDLE"
            with m.State("WAIT_IDLE"):
                # a break (line held low) must end before the next start bit
                with m.If(rx):
                    m.next = "IDLE"
        m.d.comb += self.data.eq(shreg)
        return m


class UARTTx(wiring.Component):
    """Members: ``data`` (In 8), ``valid`` (In 1), ``ready`` (Out 1: a byte is taken when
    ``valid & ready``), ``tx`` (pin, Out, idle high)."""

    def __init__(self, divisor: int):
        self.divisor = check_divisor(divisor)
        super().__init__({"data": In(8), "valid": In(1), "ready": Out(1),
                          "tx": Out(1, init=1)})

    def elaborate(self, platform):
        m = Module()
        d = self.divisor
        timer = Signal(range(d))
        bits = Signal(range(11))
        shreg = Signal(10, init=0x3FF)
        # ``ready`` is a register equal to ``bits == 0`` (it starts the bridge's reply
        # path, which reaches the core's result handshake: no compare in front of it)
        idle = Signal(init=1)
        m.d.comb += [self.tx.eq(shreg[0]), self.ready.eq(idle)]
        with m.If(idle):
            with m.If(self.valid):
                m.d.sync += [shreg.eq((1 << 9) | (self.data << 1)), bits.eq(10),
                             timer.eq(d - 1), idle.eq(0)]
        with m.Else():
            m.d.sync += timer.eq(timer - 1)
            with m.If(timer == 0):
                m.d.sync += [shreg.eq((1 << 9) | (shreg >> 1)), bits.eq(bits - 1),
                             timer.eq(d - 1), idle.eq(bits == 1)]
        return m
