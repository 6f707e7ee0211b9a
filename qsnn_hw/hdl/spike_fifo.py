"""The output FIFO of a layer engine: a first-word-fall-through queue of ``depth`` words
built from a synchronous-read memory of ``depth - 1`` words (block RAM) and an output
register, cycle for cycle the behaviour of ``amaranth.lib.fifo.SyncFIFOBuffered`` (a
word written into an empty queue is readable two cycles later; ``w_rdy`` falls when
``depth`` words are held).

The difference is timing only: the memory's "not empty" and "not full" conditions are
registers kept next to its word count, so the read side's enable logic (``r_en`` ->
move a word from the memory into the output register) is one gate deep, not a compare
of the whole count (on the iCE40UP5K that compare was the core's critical path)."""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal, unsigned
from amaranth.lib import memory, wiring
from amaranth.lib.wiring import In, Out

from .._check import check_int


class SpikeFIFO(wiring.Component):
    """Parameters: ``width`` (bits per word), ``depth`` (words, >= 3).

    Members: ``w_data`` In, ``w_en`` In(1), ``w_rdy`` Out(1) (write only while high);
    ``r_data`` Out, ``r_rdy`` Out(1) (``r_data`` is valid), ``r_en`` In(1) (the word is
    taken when ``r_rdy`` is high too). ``depth`` and ``width`` as attributes.
    """

    def __init__(self, *, width: int, depth: int):
        self.width = check_int("width", width, 1)
        self.depth = check_int("depth", depth, 3)
        super().__init__({
            "w_data": In(unsigned(width)), "w_en": In(1), "w_rdy": Out(1),
            "r_data": Out(unsigned(width)), "r_en": In(1), "r_rdy": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        inner = self.depth - 1                  # words in the memory
        m.submodules.storage = mem = memory.Memory(shape=unsigned(self.width), depth=inner,
                                                   init=[])
        wp, rp = mem.write_port(), mem.read_port(domain="sync")
        produce, consume = Signal(range(inner)), Signal(range(inner))
        count = Signal(range(inner + 1))        # words in the memory
        nonempty, full = Signal(), Signal()     # count != 0, count == inner (registers)
        do_write = self.w_en & ~full
        do_read = nonempty & (~self.r_rdy | self.r_en)   # memory -> output register
        m.d.comb += [
            self.w_rdy.eq(~full),
            wp.addr.eq(produce), wp.data.eq(self.w_data), wp.en.eq(do_write),
            rp.addr.eq(consume), rp.en.eq(do_read), self.r_data.eq(rp.data),
        ]

        def incr(p):
            return Mux(p == inner - 1, 0, p + 1)

        with m.If(do_write):
            m.d.sync += produce.eq(incr(produce))
        with m.If(do_read):
            m.d.sync += consume.eq(incr(consume))
        with m.If(do_write & ~do_read):
            m.d.sync += [count.eq(count + 1), nonempty.eq(1), full.eq(count == inner - 1)]
        with m.If(do_read & ~do_write):
            m.d.sync += [count.eq(count - 1), full.eq(0), nonempty.eq(count != 1)]
        with m.If(do_read):
            m.d.sync += self.r_rdy.eq(1)
        with m.Elif(self.r_en):
            m.d.sync += self.r_rdy.eq(0)
        return m
