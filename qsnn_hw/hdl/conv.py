"""The convolution engine's own parts: its addressing (an input event -> the weight words
of its valid kernel taps and the accumulator groups of the neurons that see it), the
event decode table behind it, and the weight matrix a layer engine stores when its input
comes from a convolution (docs/hardware.md, "Convolution engine").

**Hardware order.** A convolution's P lanes run over output channels: channel group
``cg`` (CG = ceil(C_out / P)) holds channels ``cg*P .. cg*P + P - 1``. Its state and
accumulator word ``g = (oy*W_out + ox)*CG + cg`` holds the neurons ``(cg*P + p, oy,
ox)``; the update visits them in that (raster) order. Its output spike words use the
same order over the pooled grid: word ``(py*PW + px)*CG + cg``. The next engine's input
index ``m_hw = group*P + lane`` is therefore not the contract's channel-major index;
:meth:`~.geometry.LayerGeometry.in_order` maps one to the other.

**Event decoding.** Every input index ``m_hw`` (external input: the contract's ``(c*H +
y)*W + x``; after a convolution: the upstream's hardware index) has one entry in a
decode ROM built at generation time (:func:`decode_table`): the first weight address
``((c*K_h + ky0)*K_w + kx0)*CG``, the first accumulator group ``(oy0*W_out + ox0)*CG``,
the numbers of valid kernel rows and columns minus one, ``none`` (no valid tap: a
border or stride-2 position that no output sees, or a padding lane) and ``single`` (at
most one issue). A valid tap ``(ky, kx)`` is one with ``oy = (y + p - ky) / s`` an
integer in ``[0, H_out)`` (same for x); the valid ``ky`` of a row are ``ky0, ky0 + s,
...`` with ``oy`` falling by one each, so the addressing walks them with additions of
constants, and never issues an invalid tap.

**Issue order** of one event: kernel rows ky ascending, in each kernel columns kx
ascending, in each channel groups cg = 0..CG-1: weight address ``tap*CG + cg`` with
``tap = (c*K_h + ky)*K_w + kx``, accumulator group ``(oy*W_out + ox)*CG + cg``. One
event's groups are all distinct; the next event may hit the one just issued, so the
reuse distance is 1 (the accumulate pipeline forwards in-flight sums).
"""

from __future__ import annotations

import numpy as np
from amaranth.hdl import Module, Mux, Signal, unsigned
from amaranth.lib import memory, wiring

from ..contract import IntLayer
from ._util import index_width
from .addressing import addressing_members
from .geometry import DECODE_FIELDS, LayerGeometry, decode_field_widths, decode_width

__all__ = ["DECODE_FIELDS", "decode_width"]


def decode_entries(geom: LayerGeometry) -> list[dict]:
    """The decode table as dicts (module docstring), one per hardware input index:
    ``w0``, ``a0``, ``ny`` / ``nx`` (valid kernel rows / columns minus one), ``none``,
    ``single``."""
    cv, cg = geom.conv, geom.channel_groups
    out = []
    for ci in geom.in_order():
        e = dict.fromkeys(DECODE_FIELDS, 0)
        e.update(none=1, single=1)
        if ci >= 0:
            c, y, x = (int(v) for v in np.unravel_index(int(ci), (cv.c, cv.h, cv.w)))
            ty, tx = cv.taps_of(0, y), cv.taps_of(1, x)
            if ty and tx:
                (ky0, oy0), (kx0, ox0) = ty[0], tx[0]
                e.update(w0=((c * cv.kh + ky0) * cv.kw + kx0) * cg,
                         a0=(oy0 * cv.w_out + ox0) * cg, ny=len(ty) - 1, nx=len(tx) - 1,
                         none=0, single=int(len(ty) * len(tx) * cg == 1))
        out.append(e)
    return out


def decode_table(geom: LayerGeometry) -> list[int]:
    """The decode ROM's packed words (fields in :data:`DECODE_FIELDS` order, first in the
    low bits)."""
    widths = decode_field_widths(geom)
    words = []
    for e in decode_entries(geom):
        word, shift = 0, 0
        for f in DECODE_FIELDS:
            word |= int(e[f]) << shift
            shift += widths[f]
        words.append(word)
    return words


def weight_matrix(layer: IntLayer, geom: LayerGeometry) -> np.ndarray:
    """The (rows, columns) matrix the engine's weight memory holds: ``layer.matrix``, or
    for a dense layer fed by a convolution its columns permuted into the upstream's
    hardware order (:meth:`~.geometry.LayerGeometry.in_order`), a zero column for every
    padding lane (which never spikes)."""
    mat = layer.matrix
    if layer.is_conv or geom.upstream is None:
        return mat
    order = geom.in_order()
    out = np.zeros((mat.shape[0], order.size), dtype=np.int64)
    ok = order >= 0
    out[:, ok] = mat[:, order[ok]]
    return out


class ConvAddressing(wiring.Component):
    """A convolution's addressing (module docstring), the interface of
    :mod:`.addressing`. An event loaded in cycle c reads its decode entry (a synchronous
    ROM) and issues its first pair in cycle c + 1 straight from the entry, the rest from
    registers; an event with no valid tap issues nothing and frees the addressing in
    cycle c + 1. ``free`` comes from registers (the ROM's output register included).
    :attr:`reuse_distance` = 1."""

    def __init__(self, geom: LayerGeometry):
        if geom.conv is None:
            raise ValueError("ConvAddressing needs the geometry of a convolutional layer")
        self.geometry = geom
        self.reuse_distance = 1
        self.table = decode_table(geom)
        super().__init__(addressing_members(geom))

    def elaborate(self, platform):
        m = Module()
        geom, cv = self.geometry, self.geometry.conv
        CG, s = geom.channel_groups, cv.stride
        widths = decode_field_widths(geom)
        m.submodules.decode = rom = memory.Memory(
            shape=unsigned(decode_width(geom)), depth=max(2, len(self.table)),
            init=self.table)
        rd = rom.read_port()
        m.d.comb += rd.addr.eq(self.m)
        f, shift = {}, 0
        for name in DECODE_FIELDS:
            f[name] = rd.data[shift:shift + widths[name]]
            shift += widths[name]

        ww, aw = widths["w0"], widths["a0"]
        busy, first = Signal(), Signal()
        cur_x, cur_bank = Signal(unsigned(geom.input_bits)), Signal()
        w, a, wrow, arow = Signal(ww), Signal(aw), Signal(ww), Signal(aw)
        cg = Signal(index_width(CG))
        jx, nx = Signal(widths["nx"]), Signal(widths["nx"])
        jy = Signal(widths["ny"])
        last_r = Signal()   # the issue of this cycle is the run's last (after the first)

        # the current pair: from the decode entry in a run's first cycle, else registers
        c_w, c_a = Mux(first, f["w0"], w), Mux(first, f["a0"], a)
        c_wrow, c_arow = Mux(first, f["w0"], wrow), Mux(first, f["a0"], arow)
        c_cg = Mux(first, 0, cg)
        c_jx, c_jy = Mux(first, f["nx"], jx), Mux(first, f["ny"], jy)
        c_nx = Mux(first, f["nx"], nx)
        none = first & f["none"]
        free = ~busy | Mux(first, f["single"], last_r)
        m.d.comb += [
            self.free.eq(free),
            self.issue.valid.eq(busy & ~none), self.issue.addr.eq(c_w),
            self.issue.group.eq(c_a), self.issue.x.eq(cur_x), self.issue.bank.eq(cur_bank),
        ]
        end_cg, end_x, end_y = c_cg == CG - 1, c_jx == 0, c_jy == 0
        with m.If(busy & ~free):       # the run goes on: the next pair
            m.d.sync += [first.eq(0), wrow.eq(c_wrow), arow.eq(c_arow), nx.eq(c_nx),
                         jx.eq(c_jx), jy.eq(c_jy)]
            with m.If(~end_cg):
                m.d.sync += [cg.eq(c_cg + 1), w.eq(c_w + 1), a.eq(c_a + 1),
                             last_r.eq((c_cg + 1 == CG - 1) & end_x & end_y)]
            with m.Elif(~end_x):       # next kernel column: kx + s, ox - 1
                m.d.sync += [cg.eq(0), jx.eq(c_jx - 1),
                             w.eq(c_w + (s * CG - (CG - 1))), a.eq(c_a - (2 * CG - 1)),
                             last_r.eq((CG == 1) & (c_jx == 1) & end_y)]
            with m.Else():             # next kernel row: ky + s, oy - 1
                m.d.sync += [cg.eq(0), jx.eq(c_nx), jy.eq(c_jy - 1),
                             wrow.eq(c_wrow + s * cv.kw * CG),
                             arow.eq(c_arow - cv.w_out * CG),
                             w.eq(c_wrow + s * cv.kw * CG),
                             a.eq(c_arow - cv.w_out * CG),
                             last_r.eq((CG == 1) & (c_nx == 0) & (c_jy == 1))]
        with m.Elif(busy):             # the run ends in this cycle
            m.d.sync += busy.eq(0)
        with m.If(self.load):
            m.d.sync += [busy.eq(1), first.eq(1), cur_x.eq(self.x), cur_bank.eq(self.bank),
                         last_r.eq(0)]
        return m
