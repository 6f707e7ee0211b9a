"""Weight memory of one layer: ``P`` weights per word, so one read feeds ``P`` lanes.

Layout: neurons are split into ``G = ceil(N/P)`` groups of ``P`` lanes; the word at
address ``m * G + g`` holds ``W[g*P + p, m]`` in lane ``p`` (lane 0 in the low bits,
two's complement, ``width`` bits each). Lanes past the last neuron hold 0. An input
event ``m`` therefore reads ``G`` consecutive words.
"""

from __future__ import annotations

import numpy as np
from amaranth.hdl import Module, signed, unsigned
from amaranth.lib import data, memory, wiring
from amaranth.lib.wiring import In, Out

from .._check import check_int_array
from ._util import ceil_div, check_lanes, index_width, pack_lanes
from .geometry import weight_width


class WeightMemory(wiring.Component):
    """Synchronous-read ROM of a layer's weights.

    Parameters
    ----------
    weight : (N, M) signed integers.
    lanes : P, weights per word.

    Members
    -------
    addr : In, word address ``m * groups + g``.
    data : Out, ``ArrayLayout(signed(width), P)``; valid one cycle after ``addr``.
    """

    def __init__(self, weight, lanes: int):
        w = check_int_array("weight", weight, ndim=2)
        self.lanes = check_lanes(lanes)
        self.n_out, self.n_in = w.shape
        self.groups = ceil_div(self.n_out, self.lanes)
        self.depth = self.n_in * self.groups
        # Signed width of the stored values (0 always representable: padding lanes).
        self.width = weight_width(w)
        self._weight = w
        super().__init__({
            "addr": In(index_width(self.depth)),
            "data": Out(data.ArrayLayout(signed(self.width), self.lanes)),
        })

    @property
    def bits(self) -> int:
        """Memory bits (depth x word width)."""
        return self.depth * self.lanes * self.width

    def words(self) -> list[int]:
        """The packed initial contents, address order."""
        n, m, p, g = self.n_out, self.n_in, self.lanes, self.groups
        padded = np.zeros((g * p, m), dtype=np.int64)
        padded[:n] = self._weight
        # (M, G, P): word (mi, gi) holds lanes padded[gi*P + p, mi].
        lanes = padded.T.reshape(m, g, p)
        return [pack_lanes(lanes[mi, gi], self.width) for mi in range(m) for gi in range(g)]

    def elaborate(self, platform):
        m = Module()
        m.submodules.mem = mem = memory.Memory(
            shape=unsigned(self.lanes * self.width), depth=max(2, self.depth),  # no 0-bit address
            init=self.words())
        rd = mem.read_port()
        m.d.comb += [rd.addr.eq(self.addr), self.data.eq(rd.data)]
        return m
