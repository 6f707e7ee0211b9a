"""Weight memory of one layer: ``P`` weights per word, so one read feeds ``P`` lanes.

Layout: neurons are split into ``G = ceil(N/P)`` groups of ``P`` lanes; the word at
address ``m * G + g`` holds ``W[g*P + p, m]`` in lane ``p`` (lane 0 in the low bits,
two's complement, ``width`` bits each). Lanes past the last neuron hold 0. An input
event ``m`` therefore reads ``G`` consecutive words.

Storage (``storage=``):

* ``"rom"`` (default): a ``lib.memory.Memory`` initialized with the weights (block RAM
  or LUTs; the weights are part of the bitstream).
* ``"ram"``: the same memory with a write port and no initial contents: the weights are
  written after configuration through :attr:`WeightMemory.write` (a loader, e.g. the
  UART bridge). Yosys infers block RAM without init.
* ``"spram"``: like ``"ram"``; on an iCE40 UltraPlus platform (``platform.device``
  ``iCE40UP*``) it is built from ``SB_SPRAM256KA`` instances (16K x 16 bit, one port
  shared by read and write): ``ceil(word/16)`` SPRAMs side by side per 16K words of
  depth, a registered bank select for the read mux. Elaborated without a platform (the
  Amaranth simulator, Verilog for cocotb) it is the generic ``"ram"`` memory.

Read timing is the same in every mode: ``data`` is valid one cycle after ``addr``.
A writable memory's contents are undefined until written (SPRAM after power-up; the
generic memory reads 0 in simulation). While ``write.en`` is high the SPRAM's single
port writes and ``data`` is not valid: write only while the reader is idle.
"""

from __future__ import annotations

import numpy as np
from amaranth.hdl import (
    Array,
    Cat,
    ClockSignal,
    Const,
    Instance,
    Module,
    Mux,
    Signal,
    signed,
    unsigned,
)
from amaranth.lib import data, memory, wiring
from amaranth.lib.wiring import In, Out

from .._check import check_choice, check_int, check_int_array
from ._util import check_lanes, index_width, pack_lanes
from .config import STORAGES
from .geometry import (
    SPRAM_BITS,
    SPRAM_DEPTH,
    SPRAM_WIDTH,
    groups_of,
    spram_blocks,
    spram_grid,
    weight_depth,
    weight_width,
)

# the SPRAM sizes live in .geometry; importable from here as before
__all__ = ["SPRAM_BITS", "SPRAM_DEPTH", "SPRAM_WIDTH", "STORAGES", "WeightMemory",
           "is_ice40_up", "pack_weight_words", "spram_blocks", "weight_write_signature"]


def pack_weight_words(weight, lanes: int, width: int | None = None) -> list[int]:
    """The packed words of a layer's weights, address order (module docstring layout):
    what a ROM is initialized with and what a loader writes into a RAM."""
    w = check_int_array("weight", weight, ndim=2)
    p = check_lanes(lanes)
    width = weight_width(w) if width is None else width
    n, m = w.shape
    g = groups_of(n, p)
    padded = np.zeros((g * p, m), dtype=np.int64)
    padded[:n] = w
    # (M, G, P): word (mi, gi) holds lanes padded[gi*P + p, mi].
    lanes_ = padded.T.reshape(m, g, p)
    return [pack_lanes(lanes_[mi, gi], width) for mi in range(m) for gi in range(g)]


def weight_write_signature(addr_width: int, data_width: int) -> wiring.Signature:
    """A weight write port as seen by the loader: ``addr``, ``data`` (a packed word),
    ``en`` (one word per cycle)."""
    return wiring.Signature({"addr": Out(addr_width), "data": Out(data_width),
                             "en": Out(1)})


def is_ice40_up(platform) -> bool:
    return str(getattr(platform, "device", "")).startswith("iCE40UP")


class WeightMemory(wiring.Component):
    """Synchronous-read memory of a layer's weights (ROM, or RAM filled by a loader).

    Parameters
    ----------
    weight : (N, M) signed integers (the ROM contents; for RAM storage they set the
        width and are what a loader is expected to write).
    lanes : P, weights per word.
    storage : "rom" (default), "ram" or "spram" (module docstring).
    code_bits : a TaWQ layer's weight memory: ``weight`` holds unsigned codes of this
        many bits (docs/hardware.md, "TaWQ layers"); None: signed weights.

    Members
    -------
    addr : In, word address ``m * groups + g``.
    data : Out, ``ArrayLayout(signed(width), P)`` (codes: unsigned); valid one cycle
        after ``addr``.
    write : In(:func:`weight_write_signature`), only for "ram"/"spram": ``addr``,
        ``data`` (``P * width`` bits, :func:`pack_weight_words`), ``en``.
    """

    def __init__(self, weight, lanes: int, *, storage: str = "rom",
                 code_bits: int | None = None):
        w = check_int_array("weight", weight, ndim=2)
        self.lanes = check_lanes(lanes)
        self.storage = check_choice("storage", storage, STORAGES)
        self.n_out, self.n_in = w.shape
        self.groups = groups_of(self.n_out, self.lanes)
        self.depth = weight_depth(self.n_in, self.n_out, self.lanes)
        # Signed width of the stored values (0 always representable: padding lanes), or
        # the unsigned width of TaWQ codes.
        if code_bits is None:
            self.width, shape = weight_width(w), signed
        else:
            self.width = check_int("code_bits", code_bits, 1, 8)
            if w.min() < 0 or w.max() >= 1 << self.width:
                raise ValueError(f"weight holds codes of {self.width} bits, in [0, "
                                 f"{(1 << self.width) - 1}], got [{int(w.min())}, "
                                 f"{int(w.max())}]")
            shape = unsigned
        self._weight = w
        members = {
            "addr": In(index_width(self.depth)),
            "data": Out(data.ArrayLayout(shape(self.width), self.lanes)),
        }
        if self.writable:
            members["write"] = In(weight_write_signature(index_width(self.depth),
                                                         self.word_width))
        super().__init__(members)

    @property
    def writable(self) -> bool:
        return self.storage != "rom"

    @property
    def word_width(self) -> int:
        return self.lanes * self.width

    @property
    def bits(self) -> int:
        """Memory bits (depth x word width)."""
        return self.depth * self.lanes * self.width

    @property
    def spram_blocks(self) -> int:
        return spram_blocks(self.depth, self.word_width)

    def words(self) -> list[int]:
        """The packed contents, address order."""
        return pack_weight_words(self._weight, self.lanes, self.width)

    def elaborate(self, platform):
        m = Module()
        if self.storage == "spram" and platform is not None:
            if not is_ice40_up(platform):
                raise ValueError(f"storage='spram' needs an iCE40 UltraPlus platform "
                                 f"(SB_SPRAM256KA), got device "
                                 f"{getattr(platform, 'device', None)!r}; use 'ram' or 'rom'")
            self._elaborate_spram(m)
            return m
        depth = max(2, self.depth)  # no 0-bit address
        m.submodules.mem = mem = memory.Memory(
            shape=unsigned(self.word_width), depth=depth,
            init=[] if self.writable else self.words())
        rd = mem.read_port()
        m.d.comb += [rd.addr.eq(self.addr), self.data.eq(rd.data)]
        if self.writable:
            wr = mem.write_port()
            m.d.comb += [wr.addr.eq(self.write.addr), wr.data.eq(self.write.data),
                         wr.en.eq(Mux(self.write.en, (1 << len(wr.en)) - 1, 0))]
        return m

    def _elaborate_spram(self, m: Module) -> None:
        cols, banks = spram_grid(self.depth, self.word_width)
        wr = self.write
        # one port: the write address while writing, else the read address
        addr = Signal(max(len(self.addr), len(wr.addr)))
        m.d.comb += addr.eq(Mux(wr.en, wr.addr, self.addr))
        bank = addr[14:] if banks > 1 else Const(0, 1)
        bank_r = Signal(range(banks))   # the bank whose DATAOUT is read this cycle
        m.d.sync += bank_r.eq(bank)
        din = Cat(wr.data, Const(0, cols * SPRAM_WIDTH - self.word_width))
        outs = []
        for b in range(banks):
            dout = Signal(cols * SPRAM_WIDTH, name=f"spram_dout{b}")
            sel = bank == b
            for c in range(cols):
                m.submodules[f"spram_b{b}_c{c}"] = Instance(
                    "SB_SPRAM256KA",
                    i_ADDRESS=addr[:14], i_DATAIN=din[16 * c:16 * c + 16],
                    i_MASKWREN=Const(0b1111, 4), i_WREN=wr.en & sel,
                    i_CHIPSELECT=sel, i_CLOCK=ClockSignal("sync"),
                    i_STANDBY=Const(0, 1), i_SLEEP=Const(0, 1), i_POWEROFF=Const(1, 1),
                    o_DATAOUT=dout[16 * c:16 * c + 16])
            outs.append(dout)
        word = Array(outs)[bank_r] if banks > 1 else outs[0]
        m.d.comb += self.data.eq(word[:self.word_width])
