"""The integer network: one specification that the trainer exports, the golden model
simulates and the gateware implements. Every width is derived here, once.

Per layer (docs/fixed-point.md has the full contract and a worked example):

* ``I[t]   = (W @ x[t]) * 2**frac_bits + bias``                      (exact, derived width)
* ``v[t]   = leak(u[t-1]) + I[t] - threshold * z[t-1]``               (subtract reset)
  ``v[t]   = 0 if z[t-1] else leak(u[t-1]) + I[t]``                   (zero reset)
* ``leak(u) = (beta_num * u + 2**(beta_shift-1)) >> beta_shift``     (round half up)
* ``u[t]   = Q(v[t])`` (nearest level of ``levels``, ties low, saturating; stored as a
  code) when states are quantized, else ``clip(v[t], -2**(mem_bits-1), 2**(mem_bits-1)-1)``
* ``z[t]   = u[t] > threshold``  (with levels: ``code > threshold_code``)

A **convolutional** layer (``in_shape`` set) computes ``W @ x[t]`` as a 2-D convolution
of its input, read as ``in_shape = (C, H, W)`` in channel-major order, with a
``(C_out, C, K_h, K_w)`` kernel, ``stride`` and zero ``padding``; its neurons are
``(C_out, H_out, W_out)`` in channel-major order, the bias is per output channel, and
with ``pool = k`` its output spikes are the logical OR of each k x k window (max
pooling over spikes, stride k, windows past the edge dropped). Everything else is the
dense layer's.

A **TaWQ** layer (``tawq_table`` set: time-varying ternary weights) stores a small code
per weight instead of a weight; at timestep t the weight is ``tawq_table[code, t]`` in
{-1, 0, +1} and ``W @ x[t]`` becomes
``round_half_up(acc * tawq_mult[t][c] * 2**frac_bits / 2**tawq_shift)`` with ``acc`` the
ternary sum of the neuron and ``c`` its output channel. The layer runs exactly T =
``tawq_table.shape[1]`` timesteps.

All quantities are integers in *membrane units*; ``u[-1]`` is 0, or the code of the
level nearest 0 when states are quantized.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._check import check_choice, check_float, check_int, check_int_array
from .quant.state import decision_boundaries, nearest_level

RESET_MODES = ("subtract", "zero", "clear")
# where the membrane starts a sample: the level nearest 0 (quantized states; 0 otherwise),
# or exactly 0 as snnTorch does (then the first update leaks nothing)
REST_MODES = ("level", "zero")
MAX_BETA_SHIFT = 24
MAX_MEM_BITS = 32
MAX_INPUT_BITS = 16
# Every intermediate must fit int64 in the golden model (and a derived width in hardware).
_INT64_LIMIT = 1 << 62
# TaWQ layers: at most this many weight codes, multipliers below 2**MAX_TAWQ_MULT_BITS
MAX_TAWQ_CODES = 256
MAX_TAWQ_MULT_BITS = 32


def beta_to_fixed(beta: float, beta_shift: int) -> int:
    """``beta_num`` for a real leak factor: ``round_half_up(beta * 2**beta_shift)``, at least 1.

    ``beta`` must be in (0, 1]; ``beta_shift`` in [0, MAX_BETA_SHIFT]."""
    beta = check_float("beta", beta, 0.0, 1.0, lo_open=True)
    beta_shift = check_int("beta_shift", beta_shift, 0, MAX_BETA_SHIFT)
    return max(1, int(np.floor(beta * (1 << beta_shift) + 0.5)))


def signed_width(lo: int, hi: int) -> int:
    """Bits of the smallest two's-complement type holding every integer in ``[lo, hi]``."""
    bits = 1
    while not (-(1 << (bits - 1)) <= lo and hi <= (1 << (bits - 1)) - 1):
        bits += 1
    return bits


def unsigned_width(hi: int) -> int:
    """Bits of the smallest unsigned type holding ``[0, hi]`` (at least 1)."""
    return max(1, int(hi).bit_length())


@dataclass(frozen=True, eq=False)
class IntLayer:
    """One dense LIF layer of the deployed network, integers only.

    Parameters
    ----------
    weight : (N, M) signed integers. Synaptic weight of input m onto neuron n.
    threshold : membrane units, > 0.
    beta_num, beta_shift : leak factor ``beta = beta_num / 2**beta_shift``, in (0, 1].
    reset : ``"subtract"`` (subtract the threshold), ``"zero"`` (the membrane and that
        step's input dropped: ``v = 0``) or ``"clear"`` (the membrane dropped, the
        input kept: ``v = I``, snnTorch's ``reset_mechanism="zero"``).
    bias : optional (N,) signed integers in membrane units, added every timestep
        ((C_out,) for a convolution: one per output channel).
    frac_bits : the current ``W @ x`` is shifted left by this many bits into membrane units.
    levels : optional strictly increasing signed integer table of ``2**n`` levels
        (membrane units); the state is then stored as an n-bit code.
    mem_bits : width of the saturating signed membrane when ``levels`` is None.
    rest : the membrane before a sample's first update: ``"level"`` (the level nearest 0
        when states are quantized, else 0) or ``"zero"`` (exactly 0 even when 0 is not
        a level, as snnTorch).
    in_shape : (C, H, W) for a convolutional layer (``weight`` is then
        ``(C_out, C, K_h, K_w)``); None for a dense layer.
    stride, padding : the convolution's stride (1 or 2) and zero padding (each side,
        < kernel size).
    pool : max pooling of the output spikes over ``pool x pool`` windows (1 = none;
        convolutional layers only).
    tawq_table : optional ``(n_codes, T)`` table of {-1, 0, +1}: a **TaWQ** layer
        (time-varying ternary weights, docs/fixed-point.md). ``weight`` then holds codes
        in ``[0, n_codes)`` (same shape as a weight), and the weight of a synapse at
        timestep ``t`` is ``tawq_table[code, t]``; the layer runs exactly ``T`` timesteps.
    tawq_mult, tawq_shift : the TaWQ scale per (timestep, output channel), ``(T,
        channels)`` unsigned integers ``< 2**MAX_TAWQ_MULT_BITS`` meaning
        ``tawq_mult / 2**tawq_shift`` (``tawq_shift`` in [0, 24]); the current is
        ``round_half_up(acc * tawq_mult[t][c] * 2**frac_bits / 2**tawq_shift) + bias``.
    """

    weight: np.ndarray
    threshold: int
    beta_num: int
    beta_shift: int
    reset: str = "subtract"
    bias: np.ndarray | None = None
    frac_bits: int = 0
    levels: np.ndarray | None = None
    mem_bits: int = 24
    rest: str = "level"
    in_shape: tuple | None = None
    stride: int = 1
    padding: int = 0
    pool: int = 1
    tawq_table: np.ndarray | None = None
    tawq_mult: np.ndarray | None = None
    tawq_shift: int = 0

    def __post_init__(self):
        if self.in_shape is None:
            w = check_int_array("weight", self.weight, ndim=2)
            if w.shape[0] < 1 or w.shape[1] < 1:
                raise ValueError(f"weight must have at least one neuron and one input, "
                                 f"got shape {w.shape}")
            check_int("stride", self.stride, 1, 1)
            check_int("padding", self.padding, 0, 0)
            check_int("pool", self.pool, 1, 1)
        else:
            w = self._check_conv()
        object.__setattr__(self, "weight", w)
        check_int("threshold", self.threshold, 1, _INT64_LIMIT)
        object.__setattr__(self, "threshold", int(self.threshold))
        check_int("beta_shift", self.beta_shift, 0, MAX_BETA_SHIFT)
        check_int("beta_num", self.beta_num, 1, 1 << self.beta_shift)
        check_choice("reset", self.reset, RESET_MODES)
        check_choice("rest", self.rest, REST_MODES)
        check_int("frac_bits", self.frac_bits, 0, 32)
        check_int("mem_bits", self.mem_bits, 2, MAX_MEM_BITS)
        if self.bias is not None:
            b = check_int_array("bias", self.bias, ndim=1)
            if b.shape != (w.shape[0],):
                raise ValueError(f"bias must have shape ({w.shape[0]},) to match weight "
                                 f"{w.shape}, got {b.shape}")
            object.__setattr__(self, "bias", b)
        if self.levels is not None:
            lv = check_int_array("levels", self.levels, ndim=1)
            n = lv.size
            if n < 2 or n & (n - 1) or n > 1 << 16:
                raise ValueError(f"levels must have 2**k entries with k in [1, 16], got {n}")
            d = np.diff(lv)
            if np.any(d <= 0):
                k = int(np.argmax(d <= 0))
                what = "duplicates" if d[k] == 0 else "is not sorted"
                raise ValueError(f"levels must be strictly increasing: {what} at indices "
                                 f"{k}, {k + 1} ({int(lv[k])}, {int(lv[k + 1])})")
            object.__setattr__(self, "levels", lv)
        else:
            if self.threshold >= (1 << (self.mem_bits - 1)) - 1:
                raise ValueError(f"threshold {self.threshold} does not fit below the largest "
                                 f"membrane value of mem_bits={self.mem_bits}; raise mem_bits")
        self._check_tawq()
        m = max(abs(self.mem_lo), abs(self.mem_hi))
        if (1 << self.beta_shift) * m >= _INT64_LIMIT:
            raise ValueError("beta_num * membrane would overflow 64 bits; reduce beta_shift, "
                             "mem_bits or the level range")

    def _check_conv(self) -> np.ndarray:
        shape = self.in_shape
        if not isinstance(shape, tuple | list) or len(shape) != 3:
            raise ValueError(f"in_shape must be (channels, height, width), got {shape!r}")
        c, h, wd = (check_int(f"in_shape[{i}]", v, 1, 1 << 16) for i, v in enumerate(shape))
        object.__setattr__(self, "in_shape", (c, h, wd))
        w = check_int_array("weight", self.weight, ndim=4)
        if w.shape[0] < 1 or w.shape[1] != c or w.shape[2] < 1 or w.shape[3] < 1:
            raise ValueError(f"a convolution's weight must have shape (C_out >= 1, {c}, K_h, "
                             f"K_w) for in_shape {self.in_shape}, got {w.shape}")
        check_int("stride", self.stride, 1, 2)
        k = min(w.shape[2], w.shape[3])
        check_int("padding", self.padding, 0, k - 1)
        for axis, (size, kk) in enumerate(((h, w.shape[2]), (wd, w.shape[3]))):
            if size + 2 * self.padding < kk:
                raise ValueError(f"kernel {w.shape[2]}x{w.shape[3]} does not fit the "
                                 f"{'height' if axis == 0 else 'width'} {size} of in_shape "
                                 f"with padding {self.padding}")
        object.__setattr__(self, "weight", w)
        ho, wo = self.conv_shape[1:]
        check_int("pool", self.pool, 1, max(1, min(ho, wo)))
        return w

    def _check_tawq(self) -> None:
        if self.tawq_table is None:
            if self.tawq_mult is not None or self.tawq_shift != 0:
                raise ValueError("tawq_mult and tawq_shift belong to a TaWQ layer: give "
                                 "tawq_table too (or neither)")
            return
        table = check_int_array("tawq_table", self.tawq_table, ndim=2)
        n_codes, steps = table.shape
        if not 1 <= n_codes <= MAX_TAWQ_CODES or steps < 1:
            raise ValueError(f"tawq_table must have shape (n_codes, T) with n_codes in "
                             f"[1, {MAX_TAWQ_CODES}] and T >= 1, got {table.shape}")
        if table.size and (table.min() < -1 or table.max() > 1):
            raise ValueError(f"tawq_table entries must be -1, 0 or 1, got values in "
                             f"[{int(table.min())}, {int(table.max())}]")
        w = self.weight
        if w.min() < 0 or w.max() >= n_codes:
            raise ValueError(f"a TaWQ layer's weight holds codes in [0, {n_codes - 1}] "
                             f"(rows of tawq_table), got [{int(w.min())}, {int(w.max())}]")
        if self.tawq_mult is None:
            raise ValueError("a TaWQ layer (tawq_table given) needs tawq_mult")
        mult = check_int_array("tawq_mult", self.tawq_mult, ndim=2)
        if mult.shape != (steps, self.channels):
            raise ValueError(f"tawq_mult must have shape (T, channels) = ({steps}, "
                             f"{self.channels}), got {mult.shape}")
        if mult.min() < 0 or mult.max() >= 1 << MAX_TAWQ_MULT_BITS:
            raise ValueError(f"tawq_mult must be in [0, 2**{MAX_TAWQ_MULT_BITS} - 1], got "
                             f"[{int(mult.min())}, {int(mult.max())}]")
        check_int("tawq_shift", self.tawq_shift, 0, MAX_BETA_SHIFT)
        object.__setattr__(self, "tawq_table", table)
        object.__setattr__(self, "tawq_mult", mult)
        object.__setattr__(self, "tawq_shift", int(self.tawq_shift))

    # ---- TaWQ ----------------------------------------------------------------------------
    @property
    def is_tawq(self) -> bool:
        """Time-varying ternary weights (``tawq_table`` given)."""
        return self.tawq_table is not None

    @property
    def steps(self) -> int | None:
        """The timesteps a TaWQ layer is built for (its table's columns); None otherwise
        (a static-weight layer runs any T)."""
        return self.tawq_table.shape[1] if self.is_tawq else None

    def ternary(self, t: int) -> np.ndarray:
        """A TaWQ layer's ternary weights at timestep ``t`` (the shape of ``weight``)."""
        return self.tawq_table[self.weight, t]

    def tawq_scale(self, acc: np.ndarray, t: int) -> np.ndarray:
        """``round_half_up(acc * tawq_mult[t] * 2**frac_bits / 2**tawq_shift)`` for
        accumulated ternary sums ``acc`` (..., channels) at timestep ``t``, int64."""
        half = (1 << (self.tawq_shift - 1)) if self.tawq_shift else 0
        return ((acc * self.tawq_mult[t] << self.frac_bits) + half) >> self.tawq_shift

    # ---- shape -------------------------------------------------------------------------
    @property
    def is_conv(self) -> bool:
        return self.in_shape is not None

    @property
    def kernel(self) -> tuple[int, int] | None:
        """(K_h, K_w) of a convolution, None for a dense layer."""
        return tuple(self.weight.shape[2:]) if self.is_conv else None

    @property
    def conv_shape(self) -> tuple[int, int, int] | None:
        """(C_out, H_out, W_out): the neurons of a convolution before pooling."""
        if not self.is_conv:
            return None
        _, h, w = self.in_shape
        kh, kw = self.weight.shape[2:]
        s, p = self.stride, self.padding
        return (self.weight.shape[0], (h + 2 * p - kh) // s + 1, (w + 2 * p - kw) // s + 1)

    @property
    def out_shape(self) -> tuple[int, int, int] | None:
        """(C_out, H_out // pool, W_out // pool): a convolution's output spikes."""
        if not self.is_conv:
            return None
        c, h, w = self.conv_shape
        return (c, h // self.pool, w // self.pool)

    @property
    def n_neurons(self) -> int:
        """Neurons (membrane states) of the layer: ``N`` dense, ``C_out*H_out*W_out``
        convolutional."""
        return int(np.prod(self.conv_shape)) if self.is_conv else self.weight.shape[0]

    @property
    def n_out(self) -> int:
        """Output spikes per timestep (after pooling)."""
        return int(np.prod(self.out_shape)) if self.is_conv else self.weight.shape[0]

    @property
    def n_in(self) -> int:
        return int(np.prod(self.in_shape)) if self.is_conv else self.weight.shape[1]

    @property
    def channels(self) -> int:
        """Output channels (= neurons of a dense layer): the rows of ``weight``, what a
        bias and the hardware's lanes run over."""
        return self.weight.shape[0]

    @property
    def matrix(self) -> np.ndarray:
        """The weights as a (rows, fan-in) matrix: ``weight`` itself for a dense layer,
        ``(C_out, C*K_h*K_w)`` (kernel taps in (c, ky, kx) order) for a convolution."""
        return self.weight.reshape(self.weight.shape[0], -1)

    @property
    def quantized(self) -> bool:
        return self.levels is not None

    @property
    def state_bits(self) -> int | None:
        """Code width n when states are quantized, else None."""
        return None if self.levels is None else self.levels.size.bit_length() - 1

    # ---- derived constants ------------------------------------------------------------
    @property
    def threshold_code(self) -> int:
        """Largest code whose level is <= threshold (-1 if none): spike iff code > this."""
        return int(np.searchsorted(self.levels, self.threshold, side="right")) - 1

    @property
    def rest_code(self) -> int:
        """Initial state code: the level nearest 0 (ties low)."""
        return int(nearest_level(np.zeros(1, np.int64), self.levels)[0][0])

    @property
    def rest_value(self) -> int:
        """The membrane before a sample's first update (``rest``): 0, or the level of
        :attr:`rest_code`."""
        if self.quantized and self.rest == "level":
            return int(self.levels[self.rest_code])
        return 0

    @property
    def boundaries(self) -> np.ndarray:
        """Integer decision boundaries of the state quantizer (code = #boundaries < v)."""
        return decision_boundaries(self.levels)

    @property
    def mem_lo(self) -> int:
        return int(self.levels[0]) if self.quantized else -(1 << (self.mem_bits - 1))

    @property
    def mem_hi(self) -> int:
        return int(self.levels[-1]) if self.quantized else (1 << (self.mem_bits - 1)) - 1

    @property
    def weight_bits(self) -> int:
        """Signed width of the stored weights (a TaWQ layer: unsigned width of its
        codes)."""
        if self.is_tawq:
            return unsigned_width(self.tawq_table.shape[0] - 1)
        return signed_width(int(self.weight.min()), int(self.weight.max()))

    def tawq_acc_bounds(self, input_max: int) -> tuple[np.ndarray, np.ndarray]:
        """``(pos, neg)`` (T, channels): the largest positive and negative ternary sum
        ``acc`` of each row at each timestep, for inputs in [0, input_max]."""
        s = self.tawq_table[self.matrix]                        # (channels, fan-in, T)
        pos = (s > 0).sum(axis=1).T.astype(object) * int(input_max)
        neg = (s < 0).sum(axis=1).T.astype(object) * int(input_max)
        return pos, neg

    def tawq_product_bound(self, input_max: int) -> int:
        """Largest ``|acc * tawq_mult * 2**frac_bits|`` (before the rounding shift)."""
        pos, neg = self.tawq_acc_bounds(input_max)
        reach = np.maximum(pos, neg) * self.tawq_mult.astype(object) << self.frac_bits
        return int(reach.max(initial=0))

    def current_bound(self, input_max: int) -> int:
        """Largest |I[t]| for inputs in [0, input_max] (a worst case over all neurons)."""
        if self.is_tawq:     # per (t, row), through the rounding of the scale
            pos, neg = self.tawq_acc_bounds(input_max)
            mult = self.tawq_mult.astype(object)
            half = (1 << (self.tawq_shift - 1)) if self.tawq_shift else 0
            hi = ((pos * mult << self.frac_bits) + half) >> self.tawq_shift
            lo = ((-neg * mult << self.frac_bits) + half) >> self.tawq_shift
            reach = np.maximum(hi, -lo).max(axis=0)                # (channels,)
            if self.bias is not None:
                reach = reach + np.abs(self.bias).astype(object)
            return int(max(reach))
        w = self.matrix  # every kernel tap may see an input (padding only removes some)
        pos = np.where(w > 0, w, 0).sum(axis=1)
        neg = np.where(w < 0, -w, 0).sum(axis=1)
        reach = np.maximum(pos, neg).astype(object) * int(input_max) << self.frac_bits
        if self.bias is not None:
            reach = reach + np.abs(self.bias).astype(object)
        return int(max(reach))

    def current_width(self, input_max: int) -> int:
        b = self.current_bound(input_max)
        return signed_width(-b, b)

    def update_bound(self, input_max: int) -> int:
        """Largest |v[t]| before saturation/quantization: |leak(u)| <= |u| (beta <= 1)."""
        return max(abs(self.mem_lo), abs(self.mem_hi)) + self.current_bound(input_max) \
            + self.threshold

    def update_width(self, input_max: int) -> int:
        b = self.update_bound(input_max)
        return signed_width(-b, b)

    def leak(self, u: np.ndarray) -> np.ndarray:
        """``(beta_num * u + 2**(beta_shift-1)) >> beta_shift`` on int64 (round half up)."""
        if self.beta_shift == 0:
            return u.copy()
        return (self.beta_num * u + (1 << (self.beta_shift - 1))) >> self.beta_shift


@dataclass(frozen=True, eq=False)
class IntNetwork:
    """A chain of :class:`IntLayer`. ``input_bits``: 1 for binary spike inputs, else
    unsigned multi-bit inputs in ``[0, 2**input_bits - 1]`` (first layer only)."""

    layers: tuple
    input_bits: int = 1

    def __post_init__(self):
        layers = tuple(self.layers)
        if not layers:
            raise ValueError("layers must contain at least one IntLayer")
        for i, layer in enumerate(layers):
            if not isinstance(layer, IntLayer):
                raise TypeError(f"layers[{i}] must be an IntLayer, got {type(layer).__name__}")
            if i and layer.n_in != layers[i - 1].n_out:
                raise ValueError(f"layers[{i}] has {layer.n_in} inputs but layers[{i - 1}] has "
                                 f"{layers[i - 1].n_out} outputs")
            if i and layer.is_conv and layers[i - 1].is_conv \
                    and layer.in_shape != layers[i - 1].out_shape:
                raise ValueError(f"layers[{i}] reads its input as in_shape {layer.in_shape} "
                                 f"but layers[{i - 1}] outputs {layers[i - 1].out_shape}")
        object.__setattr__(self, "layers", layers)
        check_int("input_bits", self.input_bits, 1, MAX_INPUT_BITS)
        for i, layer in enumerate(layers):
            if layer.update_bound(self.layer_input_max(i)) >= _INT64_LIMIT:
                raise ValueError(f"layers[{i}]: worst-case membrane update exceeds 2**62")
            if layer.is_tawq and layer.tawq_product_bound(self.layer_input_max(i)) \
                    >= _INT64_LIMIT:
                raise ValueError(f"layers[{i}]: worst-case TaWQ product acc * tawq_mult "
                                 f"exceeds 2**62")
        steps = {layer.steps for layer in layers if layer.is_tawq}
        if len(steps) > 1:
            raise ValueError(f"the TaWQ layers are built for different timestep counts "
                             f"{sorted(steps)}; a network runs one T")

    @property
    def input_max(self) -> int:
        return (1 << self.input_bits) - 1

    @property
    def steps(self) -> int | None:
        """The timesteps every sample must have: a TaWQ layer's T, else None (any)."""
        return next((layer.steps for layer in self.layers if layer.is_tawq), None)

    def layer_input_max(self, i: int) -> int:
        return self.input_max if i == 0 else 1

    @property
    def n_in(self) -> int:
        return self.layers[0].n_in

    @property
    def n_out(self) -> int:
        return self.layers[-1].n_out
