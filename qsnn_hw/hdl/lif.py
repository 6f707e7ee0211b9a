"""The LIF update datapath of one lane (one neuron per cycle), the contract written as
gateware (docs/fixed-point.md):

* ``u_prev``: the level of the stored code (quantized) or the stored membrane; on a
  sample's first timestep (``fresh``) the rest state instead (the level nearest 0, or
  exactly 0 for ``rest="zero"``), with no previous spike;
  a quantized layer looks ``leak(u_prev)`` up directly in a table of leaked levels
  (:func:`.geometry.leaked_levels`), so it needs no multiplier;
* ``z_prev = u_prev > threshold`` (the spike of the previous timestep is recomputed from
  the stored state, so it needs no storage; with codes: ``code > threshold_code``);
* ``leak = (beta_num * u_prev + 2**(beta_shift-1)) >> beta_shift`` (round half up,
  arithmetic shift);
* ``I = (acc << frac_bits) + bias``; a TaWQ layer (``acc`` its ternary sum):
  ``I = ((acc * mult << frac_bits) + 2**(tawq_shift-1)) >> tawq_shift + bias`` (round half
  up, arithmetic shift; no rounding term for ``tawq_shift = 0``), with the product
  registered first (stage 0: one more cycle of latency, every other input delayed with
  it);
* ``v = leak + I - threshold * z_prev`` (subtract reset), ``0 if z_prev else leak + I``
  (zero reset) or ``(0 if z_prev else leak) + I`` (clear reset), in ``update_width`` bits
  (a worst-case bound, so nothing wraps);
* quantized: ``code = Q(v)``, ``spike = code > threshold_code``; else
  ``u = clip(v, mem_lo, mem_hi)``, ``spike = u > threshold``.
"""

from __future__ import annotations

from amaranth.hdl import Const, Module, Mux, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from .._check import check_int
from ..contract import IntLayer
from ._util import shape_of
from .geometry import bias_width, datapath_latency, leaked_levels, tawq_product_width
from .level_table import LevelTable
from .quantizer import CodeQuantizer


def state_shape(layer: IntLayer):
    """Shape of one stored state: unsigned code or signed saturating membrane."""
    if layer.quantized:
        return shape_of(layer.state_bits, False)
    return signed(layer.mem_bits)


class LIFDatapath(wiring.Component):
    """Parameters: ``layer`` (IntLayer), ``input_max`` (largest input value of the layer),
    ``acc_width`` (signed width of the accumulated ``W @ x``), ``pipelined`` (quantizer).

    Members
    -------
    state : In, previous state (code, or membrane).
    fresh : In(1), first timestep of a sample: use the rest state and no previous spike.
    acc : In(signed(acc_width)), ``W @ x`` of this timestep (before ``frac_bits``).
    bias : In(signed(bias_width)), the neuron's bias (membrane units).
    mult : In(unsigned(mult_width)), only for a TaWQ layer: the neuron's ``tawq_mult`` of
        this timestep.
    new_state : Out, the updated state, :attr:`latency` cycles later (3 register stages,
        plus the quantizer's).
    spike : Out(1), the new spike, aligned with ``new_state``.
    """

    def __init__(self, layer: IntLayer, *, input_max: int, acc_width: int,
                 pipelined: bool | None = None, mult_width: int = 0):
        if not isinstance(layer, IntLayer):
            raise TypeError(f"layer must be an IntLayer, got {type(layer).__name__}")
        self.layer = layer
        self.input_max = check_int("input_max", input_max, 1)
        self.acc_width = check_int("acc_width", acc_width, 1, 128)
        self.value_width = layer.update_width(self.input_max)
        self.quantizer = None
        if layer.quantized:
            self.quantizer = CodeQuantizer(layer.boundaries, self.value_width, pipelined,
                                           threshold_code=layer.threshold_code)
        self.latency = datapath_latency(layer, pipelined)
        sshape = state_shape(layer)
        super().__init__({
            "state": In(sshape), "fresh": In(1), "acc": In(signed(self.acc_width)),
            "bias": In(signed(max(1, bias_width(layer)))),
            **({"mult": In(check_int("mult_width", mult_width, 1, 32))}
               if layer.is_tawq else {}),
            "new_state": Out(sshape), "spike": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        L = self.layer
        thr = Const(L.threshold)
        state, fresh, acc, bias = self.state, self.fresh, self.acc, self.bias
        if L.is_tawq:
            # stage 0 (registered): the product acc * mult (an SB_MAC16 on the iCE40
            # UltraPlus), every other input delayed alongside it
            prod = Signal(signed(tawq_product_width(L, self.input_max)), name="tawq_product_r")
            state, fresh, bias = (Signal.like(v, name=f"{n}_d") for v, n in
                                  ((state, "state"), (fresh, "fresh"), (bias, "bias")))
            m.d.sync += [prod.eq(self.acc * self.mult), state.eq(self.state),
                         fresh.eq(self.fresh), bias.eq(self.bias)]
            half = (1 << (L.tawq_shift - 1)) if L.tawq_shift else 0
            acc = ((prod << L.frac_bits) + half) >> L.tawq_shift
        # stage 1 (registered): leak(u_prev) or the beta product, the current, the
        # previous spike
        if L.quantized:
            # The previous state is a level, so its leak is a table entry (no multiplier).
            m.submodules.levels = table = LevelTable(leaked_levels(L))
            m.d.comb += table.code.eq(Mux(fresh, L.rest_code, state))
            # rest "zero" (snnTorch): a sample starts from exactly 0, whose leak is 0
            pre = Mux(fresh, 0, table.level) if L.rest == "zero" else table.level
            z_prev = ~fresh & (state > L.threshold_code)
        else:
            u_prev = Mux(fresh, 0, state)
            z_prev = ~fresh & (state > thr)
            pre = Const(L.beta_num) * u_prev if L.beta_shift else u_prev
        scaled = acc if L.is_tawq else self.acc << L.frac_bits
        current = scaled + (bias if L.bias is not None else 0)
        pre_r = Signal(signed(pre.shape().width), name="leak_r" if L.quantized else "product_r")
        # a TaWQ current in its contract width (the rounding shift's expression is wider)
        cur_width = L.current_width(self.input_max) if L.is_tawq else current.shape().width
        current_r = Signal(signed(cur_width), name="current_r")
        z_prev_r = Signal(name="z_prev_r")
        m.d.sync += [pre_r.eq(pre), current_r.eq(current), z_prev_r.eq(z_prev)]
        # stage 2 (registered): (round, shift,) add, reset -> v
        if L.quantized or not L.beta_shift:
            leak = pre_r
        else:
            leak = (pre_r + (1 << (L.beta_shift - 1))) >> L.beta_shift
        v = Signal(signed(self.value_width))
        if L.reset == "subtract":
            m.d.sync += v.eq(leak + current_r - Mux(z_prev_r, thr, 0))
        elif L.reset == "zero":
            m.d.sync += v.eq(Mux(z_prev_r, 0, leak + current_r))
        else:                                   # clear: the membrane goes, the input stays
            m.d.sync += v.eq(Mux(z_prev_r, 0, leak) + current_r)
        # stage 3: quantize (1 or n cycles) or saturate; then an output register, so the
        # state write and the spike word start from flip-flops
        new_state = Signal.like(self.new_state, name="new_state_r")
        spike = Signal(name="spike_r")
        if L.quantized:
            m.submodules.quantizer = q = self.quantizer
            m.d.comb += q.value.eq(v)
            m.d.sync += [new_state.eq(q.code), spike.eq(q.above)]
        else:
            u = Mux(v < L.mem_lo, L.mem_lo, Mux(v > L.mem_hi, L.mem_hi, v))
            m.d.sync += [new_state.eq(u), spike.eq(u > thr)]
        m.d.comb += [self.new_state.eq(new_state), self.spike.eq(spike)]
        return m
