"""PLL parameters and instances for the board clocks (iCE40 SB_PLL40, ECP5 EHXPLLL).

The parameter searches follow the vendors' documented ranges (the same ones the
IceStorm ``icepll`` and Trellis ``ecppll`` tools use) and return the achievable output
frequency closest to the request; the board top reports that actual frequency and
constrains the generated clock with it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from amaranth.hdl import ClockDomain, Instance, Module, Signal
from amaranth.lib import io
from amaranth.lib.cdc import ResetSynchronizer

ICE40_OUT_MHZ = (16.0, 275.0)      # SB_PLL40 output range
ECP5_OUT_MHZ = (10.0, 400.0)       # EHXPLLL CLKOP range


@dataclass(frozen=True)
class ICE40PLL:
    """SB_PLL40 (SIMPLE feedback): ``f_out = f_in * (divf+1) / ((divr+1) * 2**divq)``."""

    f_in: float
    divr: int
    divf: int
    divq: int
    filter_range: int

    @property
    def f_pfd(self) -> float:
        return self.f_in / (self.divr + 1)

    @property
    def f_vco(self) -> float:
        return self.f_pfd * (self.divf + 1)

    @property
    def f_out(self) -> float:
        return self.f_vco / (1 << self.divq)


def ice40_pll(f_in: float, f_out: float) -> ICE40PLL:
    """Closest SB_PLL40 configuration (MHz): PFD 10..133, VCO 533..1066, output 16..275."""
    lo, hi = ICE40_OUT_MHZ
    if not lo <= f_out <= hi:
        raise ValueError(f"iCE40 PLL output must be in [{lo:g}, {hi:g}] MHz, got {f_out:g}")
    best = None
    for divr in range(16):
        pfd = f_in / (divr + 1)
        if not 10 <= pfd <= 133:
            continue
        for divf in range(128):
            vco = pfd * (divf + 1)
            if not 533 <= vco <= 1066:
                continue
            for divq in range(1, 7):
                out = vco / (1 << divq)
                err = abs(out - f_out)
                if best is None or err < best[0] - 1e-9:
                    best = (err, divr, divf, divq)
    if best is None:
        raise ValueError(f"no iCE40 PLL setting for {f_in:g} -> {f_out:g} MHz")
    _, divr, divf, divq = best
    pfd = f_in / (divr + 1)
    # icepll's loop-filter choice by PFD frequency
    fr = 1 if pfd < 17 else 2 if pfd < 26 else 3 if pfd < 44 else 4 if pfd < 66 else \
        5 if pfd < 101 else 6
    return ICE40PLL(f_in, divr, divf, divq, fr)


@dataclass(frozen=True)
class ECP5PLL:
    """EHXPLLL, CLKOP feedback: ``f_out = f_in * clkfb_div / clki_div``,
    ``f_vco = f_out * clkop_div``."""

    f_in: float
    clki_div: int
    clkfb_div: int
    clkop_div: int

    @property
    def f_out(self) -> float:
        return self.f_in * self.clkfb_div / self.clki_div

    @property
    def f_vco(self) -> float:
        return self.f_out * self.clkop_div


def ecp5_pll(f_in: float, f_out: float) -> ECP5PLL:
    """Closest EHXPLLL configuration (MHz): PFD 3.125..400, VCO 400..800, output 10..400."""
    lo, hi = ECP5_OUT_MHZ
    if not lo <= f_out <= hi:
        raise ValueError(f"ECP5 PLL output must be in [{lo:g}, {hi:g}] MHz, got {f_out:g}")
    best = None
    for clki in range(1, 129):
        pfd = f_in / clki
        if not 3.125 <= pfd <= 400:
            continue
        for fb in range(1, 81):
            out = pfd * fb
            if not 10 <= out <= 400:
                continue
            for op in range(1, 129):
                vco = out * op
                if not 400 <= vco <= 800:
                    continue
                err = abs(out - f_out)
                # closest frequency; ties: VCO nearest the middle of its range (as ecppll)
                key = (round(err, 9), abs(vco - 600))
                if best is None or key < best[0]:
                    best = (key, clki, fb, op)
    if best is None:
        raise ValueError(f"no ECP5 PLL setting for {f_in:g} -> {f_out:g} MHz")
    _, clki, fb, op = best
    return ECP5PLL(f_in, clki, fb, op)


def highest_output(search: Callable, f_in: float, limit: float,
                   out_range: tuple[float, float]) -> float | None:
    """The highest output (MHz) the PLL parameter ``search`` (:func:`ice40_pll`,
    :func:`ecp5_pll`) achieves from ``f_in`` at or below ``limit`` and within its output
    range ``out_range``, or None when even its slowest output is above ``limit``.

    A search returns the achievable output closest to its request, which never decreases
    as the request grows; when the closest to ``limit`` lies above it, the answer is
    what the highest request still answered at or below ``limit`` gets (bisection down
    to 1 Hz)."""
    lo, hi = out_range
    limit = min(limit, hi)
    if limit < lo:
        return None
    low, high = lo, limit
    if search(f_in, high).f_out <= limit:
        low = high
    elif search(f_in, low).f_out > limit:
        return None
    while high - low > 1e-6:
        mid = (low + high) / 2
        if search(f_in, mid).f_out <= limit:
            low = mid
        else:
            high = mid
    f = search(f_in, low).f_out
    return f if f >= lo else None      # a request at the bottom may be answered below it


def ice40_pll_domain(m: Module, pll: ICE40PLL, pad_port, domain: str = "sync"):
    """Drive ``domain`` from an SB_PLL40_PAD on the clock pad ``pad_port`` (a raw port,
    requested with ``dir="-"``); the domain is held in reset until the PLL locks."""
    cd = ClockDomain(domain)
    m.domains += cd
    lock = Signal()
    m.submodules.pll = Instance(
        "SB_PLL40_PAD",
        p_FEEDBACK_PATH="SIMPLE", p_DIVR=pll.divr, p_DIVF=pll.divf, p_DIVQ=pll.divq,
        p_FILTER_RANGE=pll.filter_range,
        i_PACKAGEPIN=pad_port.io, i_RESETB=1, i_BYPASS=0,
        o_PLLOUTGLOBAL=cd.clk, o_LOCK=lock)
    m.submodules.rst_sync = ResetSynchronizer(~lock, domain=domain)
    return cd


def ecp5_pll_domain(m: Module, pll: ECP5PLL, clk_port, domain: str = "sync"):
    """Drive ``domain`` from an EHXPLLL fed by the clock input ``clk_port`` (a raw port,
    requested with ``dir="-"``, through an input buffer); reset until locked."""
    cd = ClockDomain(domain)
    m.domains += cd
    m.submodules.clk_buf = clk_buf = io.Buffer("i", clk_port)
    clk_in = clk_buf.i
    lock = Signal()
    m.submodules.pll = Instance(
        "EHXPLLL",
        a_FREQUENCY_PIN_CLKI=f"{pll.f_in:g}", a_FREQUENCY_PIN_CLKOP=f"{pll.f_out:g}",
        a_ICP_CURRENT="12", a_LPF_RESISTOR="8", a_MFG_ENABLE_FILTEROPAMP="1",
        a_MFG_GMCREF_SEL="2",
        p_PLLRST_ENA="DISABLED", p_INTFB_WAKE="DISABLED", p_STDBY_ENABLE="DISABLED",
        p_DPHASE_SOURCE="DISABLED", p_OUTDIVIDER_MUXA="DIVA", p_OUTDIVIDER_MUXB="DIVB",
        p_OUTDIVIDER_MUXC="DIVC", p_OUTDIVIDER_MUXD="DIVD",
        p_CLKI_DIV=pll.clki_div, p_CLKOP_ENABLE="ENABLED", p_CLKOP_DIV=pll.clkop_div,
        p_CLKOP_CPHASE=pll.clkop_div - 1, p_CLKOP_FPHASE=0,
        p_FEEDBK_PATH="CLKOP", p_CLKFB_DIV=pll.clkfb_div,
        i_RST=0, i_STDBY=0, i_CLKI=clk_in, i_CLKFB=cd.clk,
        i_PHASESEL0=0, i_PHASESEL1=0, i_PHASEDIR=1, i_PHASESTEP=1, i_PHASELOADREG=1,
        i_PLLWAKESYNC=0, i_ENCLKOP=0,
        o_CLKOP=cd.clk, o_LOCK=lock)
    m.submodules.rst_sync = ResetSynchronizer(~lock, domain=domain)
    return cd
