"""The gateware state quantizer, :class:`CodeQuantizer`: membrane value -> code of the
nearest level, by comparisons with the level boundaries (the trainer's counterpart is
:class:`qsnn_hw.quant.LevelQuantizer`).

Rule (the contract): ties go to the lower level and values beyond the ends saturate;
equivalently ``code = #{k : boundaries[k] < v}`` with the integer decision boundaries of
:attr:`IntLayer.boundaries`. The same component serves any table (uniform, exponential,
snnTorch, custom): the table is only data.

Two implementations of the same function:

* parallel comparators (``latency == 1``): ``2**n - 1`` comparators whose results are
  registered (a thermometer code), then summed (its popcount). Default for ``n <= 4``.
* pipelined binary search (``latency == n``): stage ``k`` compares the value with one
  boundary chosen by the ``k`` code bits already decided (MSB first), from a table of
  ``2**k`` boundaries, and registers the value and the partial code. One value per cycle.
"""

from __future__ import annotations

from itertools import pairwise

from amaranth.hdl import Array, Cat, Const, Module, Signal, signed, unsigned
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from .._check import check_int, check_int_array
from .geometry import quantizer_latency, quantizer_pipelined


class CodeQuantizer(wiring.Component):
    """Parameters
    ----------
    boundaries : the ``2**n - 1`` sorted integer decision boundaries.
    value_width : width of the signed input value.
    pipelined : None (automatic: pipelined for n > COMB_MAX_BITS), True or False.

    threshold_code : optional, -1 .. 2**n - 1; adds ``above`` = ``code > threshold_code``.

    Members: ``value`` In(signed(value_width)); ``code`` Out(unsigned(n)), valid
    :attr:`latency` cycles after ``value``; ``above`` Out(1) with ``threshold_code``
    (the comparators give it straight from the thermometer code: ``code > t`` iff
    ``boundaries[t] < value``, no sum and compare).
    """

    def __init__(self, boundaries, value_width: int, pipelined: bool | None = None,
                 threshold_code: int | None = None):
        b = check_int_array("boundaries", boundaries, ndim=1)
        n = b.size + 1
        if n < 2 or n & (n - 1):
            raise ValueError(f"boundaries must have 2**n - 1 entries, got {b.size}")
        if any(int(x) > int(y) for x, y in pairwise(b)):
            raise ValueError("boundaries must be sorted")
        self.boundaries = [int(v) for v in b]
        self.code_bits = n.bit_length() - 1
        self.value_width = check_int("value_width", value_width, 1, 128)
        self.pipelined = quantizer_pipelined(self.code_bits, pipelined)
        self.latency = quantizer_latency(self.code_bits, pipelined)
        self.threshold_code = None if threshold_code is None else \
            check_int("threshold_code", threshold_code, -1, (1 << self.code_bits) - 1)
        members = {"value": In(signed(self.value_width)), "code": Out(unsigned(self.code_bits))}
        if self.threshold_code is not None:
            members["above"] = Out(1)
        super().__init__(members)

    def elaborate(self, platform):
        m = Module()
        n, v = self.code_bits, self.value
        if not self.pipelined:
            therm = Signal(len(self.boundaries), name="thermometer")
            m.d.sync += therm.eq(Cat(v > Const(bk) for bk in self.boundaries))
            m.d.comb += self.code.eq(sum(therm[k] for k in range(len(therm))))
            t = self.threshold_code
            if t is not None:  # the boundaries are sorted, so the thermometer is monotone
                m.d.comb += self.above.eq(1 if t < 0 else therm[t] if t < len(therm) else 0)
            return m
        val, prefix = v, Const(0, 0)
        for k in range(n):
            # Candidate code c = prefix*2**(n-k) + 2**(n-k-1): code >= c iff b[c-1] < v.
            table = [self.boundaries[(p << (n - k)) + (1 << (n - k - 1)) - 1]
                     for p in range(1 << k)]
            bound = Array(Const(t) for t in table)[prefix] if k else Const(table[0])
            bit = val > bound
            nval = Signal(signed(self.value_width), name=f"value_s{k + 1}")
            npre = Signal(unsigned(k + 1), name=f"prefix_s{k + 1}")
            m.d.sync += [nval.eq(val), npre.eq((prefix << 1) | bit)]
            val, prefix = nval, npre
        m.d.comb += self.code.eq(prefix)
        if self.threshold_code is not None:
            t = self.threshold_code
            m.d.comb += self.above.eq(1 if t < 0 else prefix > t)
        return m
