"""The accumulate pipeline of a layer engine and its accumulator banks (each G words of
P lanes).

One issued (weight address, group, bank) triple per cycle (:mod:`.addressing`), a
register after every memory read:

issue: weight address register | s1: weight word out of its memory; accumulator read
address | s2: weight register, product; accumulator word out of its memory | s3:
product and accumulator registers, forwarding, sum | s4: write the sum register.

The accumulator ports are not transparent: a sum written at s4 is seen by reads one
cycle later, so a triple reading the same word 1 to 3 cycles after an earlier one takes
the in-flight sum from s4/h5/h6 instead. Only distances >= the addressing's
``reuse_distance`` can occur (dense: G, so forwarding exists only for G <= 3).

**Banks** (``geom.banks``): with two, timestep t+1 accumulates into one bank while the
update reads timestep t out of the other, so the update overlaps accumulation. Each bank
is its own memory with one read and one write port (a block RAM); the update and the
pipeline never use the same bank in the same cycle (the engine's take rules,
:mod:`.engine`). With one bank the engine keeps accumulation and update apart in time.

The update reads and clears through ``access`` (:func:`access_signature`); each bank's
write port's priority is: zeroing after reset, the sums, clearing after use.

A **TaWQ** layer (``geom.tawq_steps``) reads codes, not weights: ``step`` (the timestep
being accumulated, aligned with the issue) selects the code table's column into a
register at s1 (``n_codes`` entries of 2 bits), and each lane's code picks its ternary
weight out of it into the s2 weight register; the rest of the pipeline is the same
(docs/hardware.md, "TaWQ layers").
"""

from __future__ import annotations

from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from ._util import index_width
from .addressing import issue_signature
from .geometry import LayerGeometry
from .state_memory import LaneMemory

# forwarding reaches back this many cycles (s4, h5, h6)
FORWARD_DISTANCES = (1, 2, 3)


def access_signature(geom: LayerGeometry) -> wiring.Signature:
    """The update's access to the accumulators, as seen by the update: ``read_en`` /
    ``read_g`` / ``read_bank`` (word ``read_g`` of that bank appears on ``data`` one
    cycle later; the bank's read port is the pipeline's otherwise), ``init_en`` /
    ``init_g`` (zero word ``init_g`` of every bank after reset, before any sum),
    ``clear_en`` / ``clear_g`` / ``clear_bank`` (zero a word after use)."""
    gw = index_width(geom.groups)
    return wiring.Signature({
        "read_en": Out(1), "read_g": Out(gw), "read_bank": Out(1),
        "data": In(data.ArrayLayout(signed(geom.acc_width), geom.lanes)),
        "init_en": Out(1), "init_g": Out(gw),
        "clear_en": Out(1), "clear_g": Out(gw), "clear_bank": Out(1),
    })


class Accumulate(wiring.Component):
    """Parameters: ``geom`` (:class:`~.geometry.LayerGeometry`; ``geom.banks`` memories),
    ``reuse_distance`` (of the addressing), ``multiply`` (direct input: the weight times
    the event's value; else the weight itself).

    ``table``: a TaWQ layer's ``tawq_table`` (``n_codes x T``), None otherwise.

    Members: ``issue`` In(:func:`.addressing.issue_signature`) (``addr`` is the weight
    memory's, unused here); ``weight`` In, the weight word read at ``issue.addr`` (one
    cycle later; TaWQ: a word of codes); ``step`` In, only for TaWQ: the timestep of the
    issue; ``pending`` Out(2), bit b: a sum for bank b is still to be written (the
    update may read bank b once it falls); ``access`` In(:func:`access_signature`).
    """

    def __init__(self, geom: LayerGeometry, *, reuse_distance: int, multiply: bool,
                 table=None):
        self.geometry = geom
        self.multiply = bool(multiply)
        if (table is None) != (geom.tawq_steps == 0):
            raise ValueError("table (the TaWQ code table) must be given exactly for a TaWQ "
                             "layer's geometry")
        self.table = table
        self.forward = [d for d in FORWARD_DISTANCES if d >= reuse_distance]
        self.banks = [LaneMemory(width=geom.acc_width, is_signed=True, lanes=geom.lanes,
                                 depth=geom.groups, transparent=False)
                      for _ in range(geom.banks)]
        super().__init__({
            "issue": In(issue_signature(geom)),
            "weight": In(data.ArrayLayout((unsigned if table is not None else signed)(
                geom.weight_width), geom.lanes)),
            **({"step": In(index_width(geom.tawq_steps))} if table is not None else {}),
            "pending": Out(2),
            "access": In(access_signature(geom)),
        })

    def elaborate(self, platform):
        m = Module()
        for b, mem in enumerate(self.banks):
            m.submodules[f"bank{b}"] = mem
        gw, xs = index_width(self.geometry.groups), unsigned(self.geometry.input_bits)
        two = len(self.banks) == 2
        # valid, group and bank of every stage: issue, s1 .. s5
        sv = [self.issue.valid] + [Signal(name=f"acc_s{k}_valid") for k in range(1, 6)]
        sg = [self.issue.group] + [Signal(gw, name=f"acc_s{k}_g") for k in range(1, 6)]
        sb = [self.issue.bank if two else Const(0, 1)] + \
            [Signal(name=f"acc_s{k}_bank") for k in range(1, 6)]
        s1_x, s2_x = Signal(xs), Signal(xs)
        for k in range(1, 6):
            m.d.sync += [sv[k].eq(sv[k - 1]), sg[k].eq(sg[k - 1]), sb[k].eq(sb[k - 1])]
        m.d.sync += [s1_x.eq(self.issue.x), s2_x.eq(s1_x)]
        read = self.banks[0].r_data
        if two:   # the word read at s1 from the bank of that stage
            read = Signal.like(read, name="acc_read")
            m.d.comb += read.eq(Mux(sb[2], self.banks[1].r_data, self.banks[0].r_data))
        sum_r = self._datapath(m, sv, sg, sb, s2_x, read)
        # the update may read bank b once its last sum is written (s4 empty of bank b
        # from the next cycle on)
        for b in range(2):
            m.d.comb += self.pending[b].eq(
                (sv[1] & (sb[1] == b)) | (sv[2] & (sb[2] == b)) | (sv[3] & (sb[3] == b)))
        ua = self.access
        read_bank_r = Signal()
        m.d.sync += read_bank_r.eq(ua.read_bank)
        m.d.comb += ua.data.eq(Mux(read_bank_r, self.banks[1].r_data, self.banks[0].r_data)
                               if two else self.banks[0].r_data)
        for b, mem in enumerate(self.banks):
            mine = (ua.read_bank == b) if two else Const(1)
            m.d.comb += mem.r_addr.eq(Mux(ua.read_en & mine, ua.read_g, sg[1]))
            with m.If(ua.init_en):
                m.d.comb += [mem.w_addr.eq(ua.init_g), mem.w_en.eq(1)]
            with m.Elif(sv[4] & (sb[4] == b)):
                m.d.comb += [mem.w_addr.eq(sg[4]), mem.w_en.eq(1), mem.w_data.eq(Cat(sum_r))]
            with m.Elif(ua.clear_en & ((ua.clear_bank == b) if two else Const(1))):
                m.d.comb += [mem.w_addr.eq(ua.clear_g), mem.w_en.eq(1)]
        return m

    def _datapath(self, m, sv, sg, sb, s2_x, read) -> list:
        """s2 .. s4 of every lane, with forwarding; returns the sum registers."""
        P, width = self.geometry.lanes, self.geometry.acc_width
        # data registers need no reset (the valid bits say what they hold)
        if self.table is None:
            w_r = Signal.like(self.weight, name="weight_r", reset_less=True)
            m.d.sync += w_r.eq(self.weight)
        else:
            w_r = self._ternary(m)
        # forwarding selects, decided at s2 for use at s3: distance d = 1, 2, 3 cycles
        sel = {d: Signal(name=f"acc_fwd{d}") for d in self.forward}
        for d in self.forward:
            m.d.sync += sel[d].eq(sv[2 + d] & (sg[2 + d] == sg[2]) & (sb[2 + d] == sb[2])
                                  & sv[2])

        def lanes(name):
            return [Signal(signed(width), name=name.format(p=p), reset_less=True)
                    for p in range(P)]

        prod_r, acc_r, sum_r = lanes("product{p}_r"), lanes("acc{p}_r"), lanes("sum{p}_r")
        hist = {1: sum_r}  # hist[d]: the sum written d - 1 cycles ago
        for d in range(2, max(self.forward, default=0) + 1):
            hist[d] = lanes(f"sum{{p}}_h{d}")
            m.d.sync += [hist[d][p].eq(hist[d - 1][p]) for p in range(P)]
        for p in range(P):
            prod = w_r[p] * s2_x if self.multiply else w_r[p]
            m.d.sync += [prod_r[p].eq(prod), acc_r[p].eq(read[p])]
            old = acc_r[p]
            for d in sorted(self.forward, reverse=True):  # the youngest match wins (last Mux)
                old = Mux(sel[d], hist[d][p], old)
            m.d.sync += sum_r[p].eq((old + prod_r[p])[:width])
        return sum_r

    def _ternary(self, m) -> list:
        """TaWQ: the s2 registers of every lane's ternary weight (signed 2 bits),
        ``table[code, t]`` of the code read at s1 and the timestep of its issue."""
        table = self.table
        n_codes, steps = table.shape
        # column t of the table as one constant per timestep (2 bits per code, two's
        # complement), selected at the issue stage into a register aligned with s1
        cols = [sum((int(table[c, t]) & 3) << (2 * c) for c in range(n_codes))
                for t in range(steps)]
        col_r = Signal(2 * n_codes, name="tawq_column_r", reset_less=True)
        m.d.sync += col_r.eq(Array(Const(v, 2 * n_codes) for v in cols)[self.step])
        w_r = []
        for p in range(self.geometry.lanes):
            r = Signal(signed(2), name=f"ternary{p}_r", reset_less=True)
            m.d.sync += r.eq(col_r.word_select(self.weight[p], 2).as_signed())
            w_r.append(r)
        return w_r
