"""Addressing of a layer engine: an input event -> the run of (weight address,
accumulator group) pairs it adds, one per cycle.

The interface every addressing implements (a new kind of layer, e.g. a convolution,
brings its own addressing and keeps the accumulate pipeline and the update):

* ``load`` In(1), ``m`` In, ``x`` In, ``bank`` In: take event ``m`` with value ``x``
  for accumulator bank ``bank`` in this cycle (only while ``free``); its run starts
  issuing in the next cycle.
* ``free`` Out(1): an event loaded in this cycle follows the current run without a
  bubble (the run ends in this cycle, or none is running). It must come from registers
  only: it is on the engine's take path.
* ``issue`` Out(:func:`issue_signature`): one pair per cycle while ``valid``: ``addr``
  (weight memory address, read this cycle), ``group`` (accumulator word the weight word
  is added to), ``bank`` (the accumulator bank), ``x`` (the event's value, the
  multiplier of a direct layer).
* :attr:`reuse_distance`: the smallest number of cycles between two issues of the same
  accumulator group; the accumulate pipeline forwards in-flight sums for shorter
  distances than its own (:class:`~.accumulate.Accumulate`).
"""

from __future__ import annotations

from amaranth.hdl import Module, Signal, unsigned
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ._util import index_width
from .geometry import LayerGeometry


def issue_signature(geom: LayerGeometry) -> wiring.Signature:
    """One issued (weight address, accumulator group) pair, as seen by the addressing."""
    return wiring.Signature({
        "valid": Out(1),
        "addr": Out(index_width(geom.weight_depth)),
        "group": Out(index_width(geom.groups)),
        "bank": Out(1),
        "x": Out(unsigned(geom.input_bits)),
    })


def addressing_members(geom: LayerGeometry) -> dict:
    """The members every addressing has (module docstring): ``load``, ``m``, ``x``,
    ``bank`` in; ``free`` and ``issue`` out."""
    return {
        "load": In(1), "m": In(index_width(geom.n_in)), "x": In(unsigned(geom.input_bits)),
        "bank": In(1),
        "free": Out(1),
        "issue": Out(issue_signature(geom)),
    }


class DenseAddressing(wiring.Component):
    """A dense layer: event ``m`` reads the G words ``m*G + g`` (g = 0..G-1, neurons
    ``g*P .. g*P + P - 1``) into accumulator group ``g``; events run back to back.
    :attr:`reuse_distance` = G."""

    def __init__(self, geom: LayerGeometry):
        self.geometry = geom
        self.reuse_distance = geom.groups
        super().__init__(addressing_members(geom))

    def elaborate(self, platform):
        m = Module()
        G = self.geometry.groups
        busy = Signal()
        waddr = Signal(index_width(self.geometry.weight_depth))  # m*G + g, from a register
        cur_x = Signal(unsigned(self.geometry.input_bits))
        cur_bank = Signal()
        g = Signal(index_width(G))
        g_last = Signal()  # g == G - 1, as a register (off the take path)
        m.d.comb += [
            self.free.eq(~busy | g_last),
            self.issue.valid.eq(busy), self.issue.addr.eq(waddr),
            self.issue.group.eq(g), self.issue.x.eq(cur_x),
            self.issue.bank.eq(cur_bank),
        ]
        with m.If(busy):
            m.d.sync += [g.eq(g + 1), waddr.eq(waddr + 1), g_last.eq(g == G - 2)]
            with m.If(g_last):
                m.d.sync += [busy.eq(0), g.eq(0)]
        with m.If(self.load):
            m.d.sync += [busy.eq(1), waddr.eq(self.m * G), cur_x.eq(self.x), g.eq(0),
                         cur_bank.eq(self.bank),
                         g_last.eq(G == 1)]
        return m
