"""The contract of one LIF update as plain combinational gateware, written from
docs/fixed-point.md alone: the reference the formal proof compares the generated
datapath (:class:`qsnn_hw.hdl.lif.LIFDatapath`) with.

It deliberately shares no code with the generator: no boundary table, no leaked-level
table, no threshold code, no pipeline. Every quantity is an Amaranth expression of its
natural width (Amaranth widens sums and products, so nothing here wraps), and the level
table enters only as constants:

* ``u_prev = levels[state]`` (a comparison chain over the constants), or the stored
  membrane; on ``fresh`` the rest state (the level nearest 0, ties low; or 0, and 0 for
  ``rest="zero"``) and no previous spike;
* ``z_prev = u_prev > threshold``;
* ``leak = (beta_num * u_prev + 2**(beta_shift-1)) >> beta_shift`` (flooring shift);
* ``I = acc * 2**frac_bits + bias``;
* ``v = leak + I - threshold * z_prev``, ``0 if z_prev else leak + I`` or
  ``(0 if z_prev else leak) + I`` (reset subtract, zero, clear);
* quantized: the code is the highest ``k`` with ``2 v > levels[k-1] + levels[k]`` (``v``
  strictly nearer ``levels[k]`` than ``levels[k-1]``; exact, no halving), else 0: for a
  strictly increasing table that is the nearest level, ties to the lower one, saturating
  at both ends; the spike is ``levels[code] > threshold``;
* unquantized: ``u = min(max(v, -2**(mem_bits-1)), 2**(mem_bits-1) - 1)``, spike
  ``u > threshold``.
"""

from __future__ import annotations

from amaranth.hdl import Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ..contract import IntLayer


def _named(m, name: str, expr):
    """``expr`` as a signal of its own natural shape (shared by every use, never
    truncated)."""
    sig = Signal(expr.shape(), name=name)
    m.d.comb += sig.eq(expr)
    return sig


def _leak(layer: IntLayer, u: int) -> int:
    """``floor(beta_num * u / 2**beta_shift + 1/2)`` in Python integers."""
    num, den = layer.beta_num * u * 2 + (1 << layer.beta_shift), 2 << layer.beta_shift
    return num // den


def _level_of(code, levels):
    """``levels[code]`` as a chain of comparisons with constants."""
    value = Const(levels[0])
    for k in range(1, len(levels)):
        value = Mux(code == k, levels[k], value)
    return value


class ContractSpec(wiring.Component):
    """Parameters: ``layer`` (IntLayer), ``acc_width`` and ``bias_width`` (signed widths of
    the ``acc`` and ``bias`` inputs, as the datapath has them).

    Members: ``state`` In (code, unsigned n bits; or membrane, signed ``mem_bits``),
    ``fresh`` In(1), ``acc`` In(signed(acc_width)), ``bias`` In(signed(bias_width));
    ``current`` Out, ``I`` at full width (for the proof's input bound);
    ``new_state`` Out (same shape as ``state``) and ``spike`` Out(1), combinational."""

    def __init__(self, layer: IntLayer, *, acc_width: int, bias_width: int):
        if not isinstance(layer, IntLayer):
            raise TypeError(f"layer must be an IntLayer, got {type(layer).__name__}")
        self.layer = layer
        sshape = unsigned(layer.state_bits) if layer.quantized else signed(layer.mem_bits)
        # acc * 2**frac + bias never needs more than this
        cur_width = max(acc_width + layer.frac_bits, bias_width) + 1
        super().__init__({
            "state": In(sshape), "fresh": In(1), "acc": In(signed(acc_width)),
            "bias": In(signed(bias_width)), "current": Out(signed(cur_width)),
            "new_state": Out(sshape), "spike": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        L = self.layer
        theta = L.threshold
        if L.quantized:
            levels = [int(v) for v in L.levels]
            rest = min(range(len(levels)), key=lambda k: (abs(levels[k]), k))
            code_prev = _named(m, "code_prev", Mux(self.fresh, rest, self.state))
            u_prev = _level_of(code_prev, levels)
            # u_prev is one of the 2**n levels: its leak, evaluated here in Python
            # integers for each of them, is a table of constants
            leak = _level_of(code_prev, [_leak(L, v) for v in levels])
            if L.rest == "zero":               # a sample starts from exactly 0
                u_prev, leak = Mux(self.fresh, 0, u_prev), Mux(self.fresh, 0, leak)
            u_prev, leak = _named(m, "u_prev", u_prev), _named(m, "leak", leak)
        else:
            u_prev = _named(m, "u_prev", Mux(self.fresh, 0, self.state))
            s = L.beta_shift
            leak = _named(m, "leak",
                          (L.beta_num * u_prev + (1 << (s - 1))) >> s if s else u_prev)
        z_prev = _named(m, "z_prev", ~self.fresh & (u_prev > theta))
        bias = self.bias if L.bias is not None else 0
        current = _named(m, "current_i", self.acc * (1 << L.frac_bits) + bias)
        m.d.comb += self.current.eq(current)
        if L.reset == "subtract":
            v = leak + current - Mux(z_prev, theta, 0)
        elif L.reset == "zero":
            v = Mux(z_prev, 0, leak + current)
        else:
            v = Mux(z_prev, 0, leak) + current
        v = _named(m, "v", v)
        if L.quantized:
            code = nearest_code(m, v, levels, L.state_bits)
            m.d.comb += [self.new_state.eq(code),
                         self.spike.eq(_level_of(code, levels) > theta)]
        else:
            lo, hi = -(1 << (L.mem_bits - 1)), (1 << (L.mem_bits - 1)) - 1
            u = _named(m, "u", Mux(v < lo, lo, Mux(v > hi, hi, v)))
            m.d.comb += [self.new_state.eq(u), self.spike.eq(u > theta)]
        return m


def nearest_code(m, v, levels: list[int], state_bits: int):
    """The code of the level nearest ``v`` (ties low, saturating): the highest ``k`` with
    ``2 v > levels[k-1] + levels[k]``, else 0 (a chain of comparisons with constants)."""
    v2 = _named(m, "v2", v * 2)
    code = Const(0, state_bits)
    for k in range(1, len(levels)):
        code = Mux(v2 > levels[k - 1] + levels[k], k, code)
    return _named(m, "code", code)


class QuantizerSpec(wiring.Component):
    """The contract's state quantizer with the ports and latency of
    :class:`qsnn_hw.hdl.quantizer.CodeQuantizer`: ``value`` In(signed(value_width)) ->
    ``code`` (the nearest level, ties low, saturating) and ``above`` (``levels[code] >
    threshold``), ``latency`` cycles later (the answer computed at once, then delayed)."""

    def __init__(self, levels, threshold: int, value_width: int, latency: int):
        self.levels = [int(v) for v in levels]
        self.threshold = int(threshold)
        self.latency = latency
        self.code_bits = len(self.levels).bit_length() - 1
        super().__init__({"value": In(signed(value_width)),
                          "code": Out(unsigned(self.code_bits)), "above": Out(1)})

    def elaborate(self, platform):
        m = Module()
        code = nearest_code(m, self.value, self.levels, self.code_bits)
        above = _level_of(code, self.levels) > self.threshold
        for i in range(self.latency):
            c, a = Signal.like(code, name=f"code_d{i + 1}"), Signal(name=f"above_d{i + 1}")
            m.d.sync += [c.eq(code), a.eq(above)]
            code, above = c, a
        m.d.comb += [self.code.eq(code), self.above.eq(above)]
        return m
