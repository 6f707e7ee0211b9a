"""The contract of one LIF update as plain combinational gateware, written from
docs/fixed-point.md alone: the reference the formal proof compares the generated
datapath (:class:`qsnn_hw.hdl.lif.LIFDatapath`) with.

It deliberately shares no code with the generator: no boundary table, no leaked-level
table, no threshold code, no pipeline. Every quantity is an Amaranth expression of its
natural width (Amaranth widens sums and products, so nothing here wraps), and the level
table enters only as constants:

* ``u_prev = levels[state]`` (a comparison chain over the constants), or the stored
  membrane; on ``fresh`` the rest state (the level nearest 0, ties low; or 0) and no
  previous spike;
* ``z_prev = u_prev > threshold``;
* ``leak = (beta_num * u_prev + 2**(beta_shift-1)) >> beta_shift`` (flooring shift);
* ``I = acc * 2**frac_bits + bias``;
* ``v = leak + I - threshold * z_prev`` or ``0 if z_prev else leak + I``;
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
            u_prev = _level_of(Mux(self.fresh, rest, self.state), levels)
        else:
            u_prev = Mux(self.fresh, 0, self.state)
        u_prev = _named(m, "u_prev", u_prev)
        z_prev = _named(m, "z_prev", ~self.fresh & (u_prev > theta))
        s = L.beta_shift
        leak = _named(m, "leak", (u_prev * L.beta_num + (1 << (s - 1))) >> s if s else u_prev)
        bias = self.bias if L.bias is not None else 0
        current = _named(m, "current_i", self.acc * (1 << L.frac_bits) + bias)
        m.d.comb += self.current.eq(current)
        if L.reset == "subtract":
            v = leak + current - Mux(z_prev, theta, 0)
        else:
            v = Mux(z_prev, 0, leak + current)
        v = _named(m, "v", v)
        if L.quantized:
            code = Const(0, L.state_bits)
            for k in range(1, len(levels)):
                code = Mux(v * 2 > levels[k - 1] + levels[k], k, code)
            code = _named(m, "code", code)
            m.d.comb += [self.new_state.eq(code),
                         self.spike.eq(_level_of(code, levels) > theta)]
        else:
            lo, hi = -(1 << (L.mem_bits - 1)), (1 << (L.mem_bits - 1)) - 1
            u = _named(m, "u", Mux(v < lo, lo, Mux(v > hi, hi, v)))
            m.d.comb += [self.new_state.eq(u), self.spike.eq(u > theta)]
        return m
