"""Every width, depth and memory size of the core, derived once from the contract.

The components take their widths from here (or from :mod:`qsnn_hw.contract`), and the
manifest, the cycle model and docs/hardware.md report the same numbers, so nothing is
derived in two places.
"""

from __future__ import annotations

from dataclasses import dataclass

from .._check import check_int
from ..contract import IntLayer, IntNetwork, signed_width
from ._util import ceil_div, check_lanes
from .layouts import spike_word_layout

# Quantizers with codes wider than this use the pipelined binary search (latency n);
# narrower ones 2**n - 1 parallel comparators (latency 1).
COMB_MAX_BITS = 4
# Register stages of the LIF datapath besides the quantizer's (leak or beta product; v;
# the output register).
DATAPATH_STAGES = 3
# SB_SPRAM256KA (iCE40 UltraPlus): 16K words x 16 bits, 4 on the iCE40UP5K.
SPRAM_DEPTH = 16384
SPRAM_WIDTH = 16
SPRAM_BITS = SPRAM_DEPTH * SPRAM_WIDTH


def input_max_of(input_bits: int) -> int:
    """The largest value of an ``input_bits``-bit input."""
    return (1 << input_bits) - 1


def groups_of(n_out: int, lanes: int) -> int:
    """G = ceil(N / P): the words of P lanes that hold N neurons (the only place this is
    derived)."""
    return ceil_div(n_out, check_lanes(lanes))


def quantizer_pipelined(code_bits: int, pipelined: bool | None = None) -> bool:
    """The quantizer kind: pipelined search (True) or parallel comparators (False)."""
    return code_bits > COMB_MAX_BITS if pipelined is None else bool(pipelined)


def quantizer_latency(code_bits: int, pipelined: bool | None = None) -> int:
    """Pipelined search: one stage per code bit; comparators: one (registered results)."""
    return code_bits if quantizer_pipelined(code_bits, pipelined) else 1


def datapath_latency(layer: IntLayer, pipelined: bool | None = None) -> int:
    """L, the LIF datapath's latency: DATAPATH_STAGES plus the quantizer's (none for an
    unquantized layer)."""
    qlat = quantizer_latency(layer.state_bits, pipelined) if layer.quantized else 0
    return DATAPATH_STAGES + qlat


def weight_depth(n_in: int, n_out: int, lanes: int) -> int:
    """Words of a weight memory: G words per input (address ``m * G + g``)."""
    return n_in * groups_of(n_out, lanes)


def spram_grid(depth: int, word_width: int) -> tuple[int, int]:
    """(columns, banks) of SB_SPRAM256KA for a ``depth`` x ``word_width`` memory: one word
    per SPRAM address, ``ceil(width/16)`` side by side, ``ceil(depth/16K)`` banks."""
    return ceil_div(word_width, SPRAM_WIDTH), ceil_div(depth, SPRAM_DEPTH)


def spram_blocks(depth: int, word_width: int) -> int:
    """SB_SPRAM256KA instances for a ``depth`` x ``word_width`` memory
    (:func:`spram_grid`)."""
    cols, banks = spram_grid(depth, word_width)
    return cols * banks


def weight_width(weight) -> int:
    """Signed width of stored weights; 0 is always representable (padding lanes)."""
    return signed_width(min(0, int(weight.min())), max(0, int(weight.max())))


def bias_width(layer: IntLayer) -> int:
    """Signed width of the stored biases (0: no bias memory)."""
    if layer.bias is None:
        return 0
    return signed_width(min(0, int(layer.bias.min())), max(0, int(layer.bias.max())))


def level_width(levels) -> int:
    """Signed width of a level table's values."""
    return signed_width(int(min(levels)), int(max(levels)))


def leaked_levels(layer: IntLayer) -> list[int]:
    """``leak(level)`` of every code: ``(beta_num * level + 2**(beta_shift-1)) >> beta_shift``
    (docs/fixed-point.md; round half up, arithmetic shift). A quantized layer's previous
    state is one of ``2**n`` levels, so the LIF datapath looks its leaked value up in this
    table instead of multiplying (no multiplier, and one table read per update)."""
    s, b = layer.beta_shift, layer.beta_num
    half = (1 << (s - 1)) if s else 0
    return [(b * int(v) + half) >> s for v in layer.levels]


def min_fifo_depth(groups: int) -> int:
    """The smallest output FIFO: one whole timestep of words (G masks + end of timestep).

    The FIFO is ``amaranth.lib.fifo.SyncFIFOBuffered`` (a block-RAM-friendly memory plus an
    output register). A word written into an empty FIFO spends one cycle in the memory
    before it moves to the output register, so with G = 1 a depth of 2 would refuse the
    second of two back-to-back writes: the minimum is 3 there."""
    return max(groups + 1, 3)


def default_fifo_depth(groups: int) -> int:
    """Two whole timesteps of spike words, so a layer can run one timestep ahead."""
    return 2 * (groups + 1)


@dataclass(frozen=True)
class LayerGeometry:
    """Sizes of one layer engine. Widths in bits; ``*_bits`` in memory bits."""

    n_out: int
    n_in: int
    lanes: int
    groups: int
    input_bits: int
    weight_width: int
    acc_width: int
    state_width: int
    state_signed: bool       # membranes (unquantized) are signed, codes unsigned
    bias_width: int
    level_width: int         # the leaked-level table (see leaked_levels)
    latency: int             # LIF datapath: DATAPATH_STAGES + quantizer_latency
    quantizer_latency: int
    quantizer_kind: str      # "comparators", "pipelined-search" or "" (unquantized)
    fifo_depth: int
    word_width: int
    banks: int = 1           # accumulator banks (2: the update overlaps accumulation)
    static: bool = False     # the input is sent once per sample, its current reused

    @classmethod
    def of(cls, layer: IntLayer, lanes: int, *, input_bits: int = 1, fifo_depth=None,
           pipelined: bool | None = None, banks: int = 1, static: bool = False
           ) -> LayerGeometry:
        """``fifo_depth``: None (:func:`default_fifo_depth`) or at least
        :func:`min_fifo_depth`; ``banks``: 1 or 2 accumulator banks; ``static``: the
        layer's input is sent once per sample."""
        lanes = check_lanes(lanes)
        groups = groups_of(layer.n_out, lanes)
        input_max = input_max_of(input_bits)
        fifo_depth = default_fifo_depth(groups) if fifo_depth is None else \
            check_int("fifo_depth", fifo_depth, min_fifo_depth(groups))
        qlat = quantizer_latency(layer.state_bits, pipelined) if layer.quantized else 0
        qkind = ("" if not layer.quantized else "pipelined-search"
                 if quantizer_pipelined(layer.state_bits, pipelined) else "comparators")
        return cls(
            n_out=layer.n_out, n_in=layer.n_in, lanes=lanes, groups=groups,
            input_bits=input_bits,
            weight_width=weight_width(layer.weight),
            acc_width=layer.current_width(input_max),
            state_width=layer.state_bits if layer.quantized else layer.mem_bits,
            state_signed=not layer.quantized,
            bias_width=bias_width(layer),
            level_width=level_width(leaked_levels(layer)) if layer.quantized else 0,
            latency=datapath_latency(layer, pipelined), quantizer_latency=qlat,
            quantizer_kind=qkind, fifo_depth=fifo_depth,
            word_width=spike_word_layout(groups, lanes).size,
            banks=check_int("banks", banks, 1, 2), static=bool(static),
        )

    @property
    def input_max(self) -> int:
        """The largest input value of the layer."""
        return input_max_of(self.input_bits)

    @property
    def weight_depth(self) -> int:
        return weight_depth(self.n_in, self.n_out, self.lanes)

    @property
    def last_group_lanes(self) -> int:
        """Lanes of the last group that hold a neuron (1..P; the rest are masked)."""
        return self.n_out - (self.groups - 1) * self.lanes

    def memory_bits(self) -> dict[str, int]:
        """Bits per memory (one level table per lane: the lookups run in parallel)."""
        P, G = self.lanes, self.groups
        return {
            "weights": self.weight_depth * P * self.weight_width,
            "accumulators": self.banks * G * P * self.acc_width,
            "states": G * P * self.state_width,
            "biases": G * P * self.bias_width,
            "level_tables": P * (1 << self.state_width) * self.level_width
            if self.level_width else 0,
            "fifo": self.fifo_depth * self.word_width,
        }


def network_geometry(net: IntNetwork, config) -> list[LayerGeometry]:
    """The geometry of every layer of ``net`` built with ``config`` (a
    :class:`~.config.CoreConfig`)."""
    opts = config.layers(net)
    return [LayerGeometry.of(layer, o.lanes, input_bits=net.input_bits if i == 0 else 1,
                             fifo_depth=o.fifo_depth, pipelined=o.pipelined,
                             banks=o.banks, static=o.static)
            for i, (layer, o) in enumerate(zip(net.layers, opts, strict=True))]
