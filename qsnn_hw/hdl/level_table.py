"""Level table: state code -> level value (membrane units), a combinational ROM."""

from __future__ import annotations

from amaranth.hdl import Module, signed, unsigned
from amaranth.lib import memory, wiring
from amaranth.lib.wiring import In, Out

from .._check import check_int_array
from .geometry import level_width


class LevelTable(wiring.Component):
    """``levels``: the sorted integer table of ``2**n`` levels.

    Members: ``code`` In(unsigned(n)); ``level`` Out(signed(width)), combinational.
    """

    def __init__(self, levels):
        lv = check_int_array("levels", levels, ndim=1)
        n = lv.size
        if n < 2 or n & (n - 1):
            raise ValueError(f"levels must have 2**n entries (n >= 1), got {n}")
        self.levels = [int(v) for v in lv]
        self.code_bits = n.bit_length() - 1
        self.width = level_width(self.levels)
        super().__init__({"code": In(unsigned(self.code_bits)),
                          "level": Out(signed(self.width))})

    @property
    def bits(self) -> int:
        return len(self.levels) * self.width

    def elaborate(self, platform):
        m = Module()
        m.submodules.rom = rom = memory.Memory(shape=signed(self.width), depth=len(self.levels),
                                               init=self.levels)
        rd = rom.read_port(domain="comb")
        m.d.comb += [rd.addr.eq(self.code), self.level.eq(rd.data)]
        return m
