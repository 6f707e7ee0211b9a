"""The supported boards: platform, FPGA family, board clock, LED roles and the device
totals nextpnr reports (used to say by how much a design does not fit before
place-and-route has to find out).

Adding a board is one :data:`BOARDS` entry; its ``family`` must be one of
:data:`.families.FAMILIES` (checked when the entry is made)."""

from __future__ import annotations

from dataclasses import dataclass, field

from .families import Family, get_family


@dataclass(frozen=True)
class Board:
    """``status_leds``: (error LED index, heartbeat LED index); ``class_leds``: LED
    indices showing the prediction in binary, bit 0 first. ``capacity``: device totals
    in Yosys cell terms (checked against the synthesized netlist)."""

    name: str
    family: str                    # a key of families.FAMILIES: "ice40", "ecp5"
    platform_module: str
    platform_class: str
    clock_name: str
    board_mhz: float
    default_mhz: float
    status_leds: tuple
    class_leds: tuple
    capacity: dict = field(default_factory=dict)
    pins_note: str = ""

    extra_resources: str = ""      # platform attribute listing optional resources to add

    def __post_init__(self):
        get_family(self.family)    # a ValueError naming the known families

    @property
    def fpga(self) -> Family:
        """The board's FPGA :class:`~.families.Family`."""
        return get_family(self.family)

    def platform(self):
        from .._extras import need
        plat = getattr(need(self.platform_module), self.platform_class)()
        if self.extra_resources:
            plat.add_resources(getattr(plat, self.extra_resources))
        return plat


_UP5K = {"luts": 5280, "ffs": 5280, "bram": 30, "spram": 4, "dsp": 8}


def _ecp5(luts, bram, dsp):
    return {"luts": luts, "ffs": luts, "bram": bram, "dsp": dsp}


BOARDS = {
    "icebreaker": Board(
        "icebreaker", "ice40", "amaranth_boards.icebreaker", "ICEBreakerPlatform",
        "clk12", 12.0, 24.0, status_leds=(0, 1), class_leds=(2, 3, 4, 5, 6),
        capacity=_UP5K, extra_resources="break_off_pmod",
        pins_note="UART on the FTDI channel B (pins 6 rx / 9 tx); LED1 red = error, "
                  "LED2 green = heartbeat; break-off PMOD2 LEDs L1..L5 = class bits 0..4"),
    **{f"ulx3s-{size}f": Board(
        f"ulx3s-{size}f", "ecp5", "amaranth_boards.ulx3s", f"ULX3S_{size}F_Platform",
        "clk25", 25.0, 50.0, status_leds=(7, 6), class_leds=(0, 1, 2, 3, 4, 5),
        capacity=cap,
        pins_note="UART on the FTDI (M1 rx / L4 tx); LED7 = error, LED6 = heartbeat, "
                  "LED0..LED5 = class bits 0..5")
       # nextpnr-ecp5's totals for the devices: TRELLIS_COMB/FF, DP16KD, MULT18X18D
       for size, cap in (("12", _ecp5(24288, 56, 28)), ("25", _ecp5(24288, 56, 28)),
                         ("45", _ecp5(43848, 108, 72)), ("85", _ecp5(83640, 208, 156)))},
}


def get_board(name: str) -> Board:
    try:
        return BOARDS[name]
    except KeyError:
        raise ValueError(f"unknown board {name!r}; choose one of "
                         f"{', '.join(BOARDS)}") from None
