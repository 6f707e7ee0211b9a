"""Every width, depth and memory size of the core, derived once from the contract.

The components take their widths from here (or from :mod:`qsnn_hw.contract`), and the
manifest, the cycle model and docs/hardware.md report the same numbers, so nothing is
derived in two places.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .._check import check_int
from ..contract import IntLayer, IntNetwork, signed_width, unsigned_width
from ._util import ceil_div, check_lanes, index_width
from .layouts import spike_word_layout

# Quantizers with codes wider than this use the pipelined binary search (latency n);
# narrower ones 2**n - 1 parallel comparators (latency 1).
COMB_MAX_BITS = 4
# Register stages of the LIF datapath besides the quantizer's (leak or beta product; v;
# the output register).
DATAPATH_STAGES = 3
# A TaWQ layer's datapath has one more stage: the product acc * tawq_mult is registered
# (an SB_MAC16 on the iCE40 UltraPlus) before the rounding shift and the bias.
TAWQ_STAGES = 1
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
    unquantized layer), plus TAWQ_STAGES for a TaWQ layer."""
    qlat = quantizer_latency(layer.state_bits, pipelined) if layer.quantized else 0
    return DATAPATH_STAGES + qlat + (TAWQ_STAGES if layer.is_tawq else 0)


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


def tawq_acc_width(layer: IntLayer, input_max: int) -> int:
    """Signed width of a TaWQ layer's accumulated ternary sums (before the scale)."""
    pos, neg = layer.tawq_acc_bounds(input_max)
    return signed_width(-int(neg.max(initial=0)), int(pos.max(initial=0)))


def tawq_product_width(layer: IntLayer, input_max: int) -> int:
    """Signed width of a TaWQ layer's product ``acc * tawq_mult`` (before ``frac_bits``
    and the rounding shift): :meth:`IntLayer.tawq_product_bound`."""
    b = layer.tawq_product_bound(input_max) >> layer.frac_bits
    return signed_width(-b, b)


def tawq_mult_steps(layer: IntLayer) -> int:
    """Rows of a TaWQ layer's multiplier ROM: 1 when ``tawq_mult`` is the same at every
    timestep (one multiplier per channel is exact then), else T."""
    mult = layer.tawq_mult
    return 1 if bool(np.all(mult == mult[:1])) else mult.shape[0]


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


def conv_groups_of(channels: int, lanes: int) -> int:
    """CG = ceil(C_out / P): the channel groups of a convolution (its lanes run over
    output channels)."""
    return groups_of(channels, lanes)


def layer_groups(layer: IntLayer, lanes: int) -> tuple[int, int]:
    """(G, OG) of ``layer`` on ``lanes`` lanes: G state words (the update's slots; a
    convolution's ``H_out * W_out * CG``) and OG spike-word groups of its output (a
    pooled convolution's ``(H_out // k) * (W_out // k) * CG``; G otherwise)."""
    if not layer.is_conv:
        g = groups_of(layer.n_out, lanes)
        return g, g
    c, h, w = layer.conv_shape
    cg = conv_groups_of(c, lanes)
    _, ph, pw = layer.out_shape
    return h * w * cg, ph * pw * cg


def hw_order(shape, lanes: int) -> np.ndarray:
    """Where each hardware slot of a convolution's neurons or pooled outputs ``shape =
    (C, H, W)`` sits in the contract's channel-major order: slot ``((y*W + x)*CG + cg)*P
    + p`` holds ``(c*H + y)*W + x`` with ``c = cg*P + p``; -1 for padding lanes
    (``c >= C``)."""
    c, h, w = shape
    cg = conv_groups_of(c, lanes)
    y, x, g, p = np.meshgrid(np.arange(h), np.arange(w), np.arange(cg), np.arange(lanes),
                             indexing="ij")
    ch = g * lanes + p
    out = (ch * h + y) * w + x
    return np.where(ch < c, out, -1).reshape(-1).astype(np.int64)


@dataclass(frozen=True)
class ConvShape:
    """The convolution of a layer engine (all ints): input ``(c, h, w)``, kernel
    ``(kh, kw)``, ``stride``, ``padding``, output neurons ``(c_out, h_out, w_out)`` and
    ``pool``."""

    c: int
    h: int
    w: int
    kh: int
    kw: int
    stride: int
    padding: int
    c_out: int
    h_out: int
    w_out: int
    pool: int

    @classmethod
    def of(cls, layer: IntLayer) -> ConvShape:
        c, h, w = layer.in_shape
        kh, kw = layer.kernel
        co, ho, wo = layer.conv_shape
        return cls(c, h, w, kh, kw, layer.stride, layer.padding, co, ho, wo, layer.pool)

    @property
    def out_shape(self) -> tuple[int, int, int]:
        return (self.c_out, self.h_out // self.pool, self.w_out // self.pool)

    def taps_of(self, axis: int, pos: int) -> list[tuple[int, int]]:
        """The (kernel index, output index) pairs of input row (axis 0) or column
        (axis 1) ``pos``, kernel index ascending: ``o = (pos + padding - k) / stride``
        an integer in [0, out)."""
        k_n, out_n = (self.kh, self.h_out) if axis == 0 else (self.kw, self.w_out)
        pairs = []
        for k in range(k_n):
            num = pos + self.padding - k
            if num >= 0 and num % self.stride == 0 and num // self.stride < out_n:
                pairs.append((k, num // self.stride))
        return pairs


def min_fifo_depth(groups: int) -> int:
    """The smallest output FIFO: one whole timestep of words (G masks + end of timestep).

    The FIFO is :class:`~.spike_fifo.SpikeFIFO` (a block-RAM-friendly memory plus an
    output register, timed as ``amaranth.lib.fifo.SyncFIFOBuffered``). A word written
    into an empty FIFO spends one cycle in the memory before it moves to the output
    register, so with G = 1 a depth of 2 would refuse the second of two back-to-back
    writes: the minimum is 3 there."""
    return max(groups + 1, 3)


# From this many groups up, a power of two of them gets a FIFO one word shorter
# (default_fifo_depth): its memory is then block RAM, where a word past a power of two
# costs whole blocks.
FIFO_TRIM_GROUPS = 64


def default_fifo_depth(groups: int) -> int:
    """Two whole timesteps of spike words, ``2 * (groups + 1)``, so a layer can run one
    timestep ahead; for a power of two of at least :data:`FIFO_TRIM_GROUPS` groups one
    word less, ``2 * groups + 1``. The FIFO (:func:`min_fifo_depth`) keeps one word in
    its output register and ``depth - 1`` in its memory, so the trimmed memory holds
    ``2 * groups`` words, a whole number of block RAMs, instead of one word past it
    (a block RAM more and wider address logic); the layer still runs a timestep ahead
    unless its previous timestep's words (at most ``groups + 1``) are all waiting."""
    if groups >= FIFO_TRIM_GROUPS and groups & (groups - 1) == 0:
        return 2 * groups + 1
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
    # neurons (membrane states; a convolution's C_out*H_out*W_out, else n_out)
    n_neurons: int = 0
    out_groups: int = 0      # OG: spike-word groups of the output (pooled); G otherwise
    channels: int = 0        # rows of the weight matrix (neurons, or output channels)
    taps: int = 0            # columns of the weight matrix (n_in, or C*K_h*K_w)
    conv: ConvShape | None = None
    # the hardware order of the input when it comes from a convolution: its output shape
    # (C, H, W) and lanes; None when the input index is the contract's
    upstream: tuple | None = None
    # TaWQ (docs/hardware.md, "TaWQ layers"): T (0: static weights), weight codes, the
    # multiplier width and the multiplier ROM's rows (1: constant over t, else T); the
    # weight memory then holds unsigned codes of ``weight_width`` bits
    tawq_steps: int = 0
    tawq_codes: int = 0
    mult_width: int = 0
    mult_steps: int = 0

    @classmethod
    def of(cls, layer: IntLayer, lanes: int, *, input_bits: int = 1, fifo_depth=None,
           pipelined: bool | None = None, banks: int = 1, static: bool = False,
           upstream: LayerGeometry | None = None) -> LayerGeometry:
        """``fifo_depth``: None (:func:`default_fifo_depth`) or at least
        :func:`min_fifo_depth` (of the output's OG groups); ``banks``: 1 or 2
        accumulator banks; ``static``: the layer's input is sent once per sample;
        ``upstream``: the geometry of the engine feeding this one (its spike words), if
        any: after a convolution the input arrives in that engine's hardware order."""
        lanes = check_lanes(lanes)
        groups, out_groups = layer_groups(layer, lanes)
        input_max = input_max_of(input_bits)
        fifo_depth = default_fifo_depth(out_groups) if fifo_depth is None else \
            check_int("fifo_depth", fifo_depth, min_fifo_depth(out_groups))
        up = None
        n_in = layer.n_in
        if upstream is not None and upstream.conv is not None:
            up = (upstream.conv.out_shape, upstream.lanes)
            n_in = upstream.out_groups * upstream.lanes
            if upstream.n_out != layer.n_in:
                raise ValueError(f"upstream geometry has {upstream.n_out} outputs, the layer "
                                 f"{layer.n_in} inputs")
        qlat = quantizer_latency(layer.state_bits, pipelined) if layer.quantized else 0
        qkind = ("" if not layer.quantized else "pipelined-search"
                 if quantizer_pipelined(layer.state_bits, pipelined) else "comparators")
        tawq = {}
        if layer.is_tawq:
            if static:
                raise ValueError("a TaWQ layer cannot take static input: its current "
                                 "changes every timestep (use input='streamed')")
            tawq = dict(tawq_steps=layer.steps, tawq_codes=layer.tawq_table.shape[0],
                        mult_width=unsigned_width(int(layer.tawq_mult.max())),
                        mult_steps=tawq_mult_steps(layer))
        return cls(
            n_out=layer.n_out, n_in=n_in, lanes=lanes, groups=groups,
            input_bits=input_bits,
            weight_width=layer.weight_bits if layer.is_tawq else weight_width(layer.weight),
            acc_width=tawq_acc_width(layer, input_max) if layer.is_tawq
            else layer.current_width(input_max),
            state_width=layer.state_bits if layer.quantized else layer.mem_bits,
            state_signed=not layer.quantized,
            bias_width=bias_width(layer),
            level_width=level_width(leaked_levels(layer)) if layer.quantized else 0,
            latency=datapath_latency(layer, pipelined), quantizer_latency=qlat,
            quantizer_kind=qkind, fifo_depth=fifo_depth,
            word_width=spike_word_layout(out_groups, lanes).size,
            banks=check_int("banks", banks, 1, 2), static=bool(static),
            n_neurons=layer.n_neurons, out_groups=out_groups, channels=layer.channels,
            taps=layer.matrix.shape[1] if layer.is_conv else n_in,
            conv=ConvShape.of(layer) if layer.is_conv else None, upstream=up, **tawq,
        )

    @property
    def input_max(self) -> int:
        """The largest input value of the layer."""
        return input_max_of(self.input_bits)

    @property
    def weight_depth(self) -> int:
        """Words of the weight memory: ``taps * CG`` (dense: ``M * G``)."""
        return weight_depth(self.taps, self.channels, self.lanes)

    @property
    def channel_groups(self) -> int:
        """CG = ceil(channels / P): the groups of one input event's weight row (dense:
        G)."""
        return groups_of(self.channels, self.lanes)

    @property
    def last_group_lanes(self) -> int:
        """Lanes of the last channel group that hold a neuron (1..P; the rest are
        masked)."""
        return self.channels - (self.channel_groups - 1) * self.lanes

    # ---- hardware orders (docs/hardware.md, "Convolution engine") ----------------------
    def in_order(self) -> np.ndarray:
        """(n_in,) the contract input index of every hardware input index (-1: a padding
        lane of an upstream convolution, which never spikes)."""
        if self.upstream is None:
            return np.arange(self.n_in, dtype=np.int64)
        shape, lanes = self.upstream
        return hw_order(shape, lanes)

    def state_order(self) -> np.ndarray:
        """(G*P,) the contract neuron of every state lane (-1: padding)."""
        if self.conv is None:
            idx = np.arange(self.groups * self.lanes, dtype=np.int64)
            return np.where(idx < self.n_out, idx, -1)
        cv = self.conv
        return hw_order((cv.c_out, cv.h_out, cv.w_out), self.lanes)

    def out_order(self) -> np.ndarray:
        """(OG*P,) the contract output index of every lane of the output spike words."""
        if self.conv is None:
            return self.state_order()
        return hw_order(self.conv.out_shape, self.lanes)

    def emit_slots(self) -> np.ndarray:
        """(OG,) the update slot (state group) whose datapath output writes each output
        group's spike word: the group itself, or a pooled window's last position."""
        if self.conv is None or self.conv.pool == 1:
            return np.arange(self.out_groups, dtype=np.int64)
        cv, cg = self.conv, self.channel_groups
        _, ph, pw = cv.out_shape
        k = cv.pool
        py, px, g = np.meshgrid(np.arange(ph), np.arange(pw), np.arange(cg), indexing="ij")
        return (((py * k + k - 1) * cv.w_out + px * k + k - 1) * cg + g).reshape(-1)

    def event_issues(self) -> np.ndarray:
        """(n_in,) weight words one input event issues: G (dense; 0 for a padding lane
        of an upstream convolution is never an event), or for a convolution its valid
        kernel taps times CG."""
        if self.conv is None:
            return np.full(self.n_in, self.groups, np.int64)
        cv, cg = self.conv, self.channel_groups
        out = np.zeros(self.n_in, np.int64)
        for m, ci in enumerate(self.in_order()):
            if ci >= 0:
                _, y, x = np.unravel_index(ci, (cv.c, cv.h, cv.w))
                out[m] = len(cv.taps_of(0, int(y))) * len(cv.taps_of(1, int(x))) * cg
        return out

    def memory_bits(self) -> dict[str, int]:
        """Bits per memory (one level table per lane: the lookups run in parallel)."""
        P, G = self.lanes, self.groups
        return {
            "weights": self.weight_depth * P * self.weight_width,
            "accumulators": self.banks * G * P * self.acc_width,
            "states": G * P * self.state_width,
            "biases": self.channel_groups * P * self.bias_width,
            "level_tables": P * (1 << self.state_width) * self.level_width
            if self.level_width else 0,
            "fifo": self.fifo_depth * self.word_width,
            **(self.conv_memory_bits() if self.conv is not None else {}),
            **(self.tawq_memory_bits() if self.tawq_steps else {}),
        }

    def tawq_memory_bits(self) -> dict[str, int]:
        """A TaWQ layer's extra memories: the code table (``n_codes x T`` entries of 2
        bits, one copy: the accumulate stage selects its column of the timestep) and the
        multiplier ROM (``mult_steps x CG`` words of P multipliers)."""
        return {"tawq_table": self.tawq_codes * self.tawq_steps * 2,
                "tawq_mult": self.mult_steps * self.channel_groups * self.lanes
                * self.mult_width}

    def conv_memory_bits(self) -> dict[str, int]:
        """A convolution's extra memories: the event decode ROM (one entry per hardware
        input index, :mod:`.conv`) and the pooling line buffer (registers)."""
        cv, P, cg = self.conv, self.lanes, self.channel_groups
        line = (cv.w_out // cv.pool) * cg * P if cv.pool > 1 else 0
        return {"decode": self.n_in * decode_width(self), "pool_line": line}


# The fields of a convolution's event decode ROM entry (:mod:`.conv` has their meaning).
DECODE_FIELDS = ("w0", "a0", "ny", "nx", "none", "single")


def decode_field_widths(geom: LayerGeometry) -> dict[str, int]:
    """Bits of each field of a decode ROM entry of convolutional layer ``geom``."""
    cv = geom.conv
    return {"w0": index_width(geom.weight_depth), "a0": index_width(geom.groups),
            "ny": index_width(cv.kh), "nx": index_width(cv.kw), "none": 1, "single": 1}


def decode_width(geom: LayerGeometry) -> int:
    """Bits of one decode ROM entry."""
    return sum(decode_field_widths(geom).values())


def network_geometry(net: IntNetwork, config) -> list[LayerGeometry]:
    """The geometry of every layer of ``net`` built with ``config`` (a
    :class:`~.config.CoreConfig`)."""
    opts = config.layers(net)
    out: list[LayerGeometry] = []
    for i, (layer, o) in enumerate(zip(net.layers, opts, strict=True)):
        out.append(LayerGeometry.of(layer, o.lanes, input_bits=net.input_bits if i == 0
                                    else 1, fifo_depth=o.fifo_depth, pipelined=o.pipelined,
                                    banks=o.banks, static=o.static,
                                    upstream=out[-1] if out else None))
    return out
