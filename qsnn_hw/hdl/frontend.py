"""Front ends of a layer engine: input beats -> events ``{m, x, eot, last, reuse}``.

One component per input kind (:func:`make_frontend` picks it), all with the same
members:

* ``events`` In(stream): the engine's input beats (:mod:`.layouts`);
* ``event`` Out(:func:`event_signature`): the current event. ``valid`` says an event
  is offered (``m`` the input index, ``x`` its value, or an end of timestep ``eot``,
  ``last`` on the last one of a sample, ``reuse`` when it closes a timestep of a static
  sample after its first); the consumer raises ``take`` in the cycle it uses it
  (combinationally from ``valid``), and the next event is offered from the next cycle on;
* ``start`` In(1): the sample boundary;
* ``error`` Out(1): sticky, an invalid beat was dropped (each kind decides what is
  invalid).

**Static input** (``static=True``, spike or direct kinds): a sample's input beats come
once, before its first end of timestep; its remaining timesteps are bare end-of-timestep
beats (``reuse``), and the engine reuses the current accumulated once. An input beat
after the first end of timestep of a sample is an error (dropped).

**Zeros cost nothing**: a direct value of 0 is consumed without an event (it adds
nothing), one beat per cycle, while the engine still works on an earlier event.

Every kind sits behind the same skid buffer (:class:`FrontEnd`): ``cur`` is the beat
being used, ``nxt`` holds a beat that arrived while ``cur`` was busy. The stream's
ready is a register (``nxt`` empty), so no combinational path runs from the engine's
control logic back to the source, and a beat per cycle still gets through.
"""

from __future__ import annotations

from amaranth.hdl import Module, Signal, unsigned
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from .._check import check_int
from ._util import check_lanes, index_width
from .layouts import direct_value_layout, spike_event_layout, spike_word_layout

INPUT_KINDS = ("spike", "direct", "words")


def event_signature(n_in: int, input_bits: int) -> wiring.Signature:
    """An input event as seen by its producer (a front end)."""
    return wiring.Signature({
        "valid": Out(1), "take": In(1),
        "m": Out(index_width(n_in)), "x": Out(unsigned(input_bits)),
        "eot": Out(1), "last": Out(1), "reuse": Out(1),
    })


class FrontEnd(wiring.Component):
    """The skid buffer and the members shared by every input kind; a subclass decodes
    the current beat in :meth:`decode`."""

    def __init__(self, in_layout, n_in: int, input_bits: int = 1, static: bool = False):
        self.n_in = n_in
        self.input_bits = input_bits
        self.in_layout = in_layout
        self.static = bool(static)
        # static input: this sample's input beats are in (its first eot was taken)
        self.loaded = Signal()
        super().__init__({
            "events": In(stream.Signature(in_layout)),
            "event": Out(event_signature(n_in, input_bits)),
            "start": In(1),
            "error": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        cur = Signal(self.in_layout)
        nxt = Signal(self.in_layout)
        cur_valid, nxt_valid = Signal(), Signal()
        cur_done = Signal()       # the decoder is finished with ``cur`` in this cycle
        error_set = Signal()      # the decoder drops ``cur`` as invalid
        # a flag of ``cur`` computed as it is loaded (off the take path; see skip_flag)
        cur_skip = Signal()
        incoming = self.events.payload
        arrive = self.events.valid & ~nxt_valid
        m.d.comb += self.events.ready.eq(~nxt_valid)
        with m.If(~cur_valid | cur_done):
            with m.If(nxt_valid):
                m.d.sync += [cur.eq(nxt), cur_valid.eq(1), nxt_valid.eq(0),
                             cur_skip.eq(self.skip_flag(nxt))]
            with m.Else():
                m.d.sync += [cur.eq(incoming), cur_valid.eq(arrive),
                             cur_skip.eq(self.skip_flag(incoming))]
        with m.Elif(arrive):
            m.d.sync += [nxt.eq(incoming), nxt_valid.eq(1)]
        self.cur_skip = cur_skip
        self.decode(m, cur, cur_valid, cur_done, error_set)
        ev = self.event
        m.d.comb += ev.reuse.eq(ev.eot & self.loaded)
        if self.static:
            with m.If(ev.take & ev.eot):
                m.d.sync += self.loaded.eq(~ev.last)
            with m.If(self.start):
                m.d.sync += self.loaded.eq(0)
        with m.If(error_set):
            m.d.sync += self.error.eq(1)
        return m

    def decode(self, m, cur, cur_valid, cur_done, error_set) -> None:
        """Drive ``self.event`` (all but ``take``), ``cur_done`` and ``error_set``;
        ``self.cur_skip`` is :meth:`skip_flag` of ``cur``, registered."""
        raise NotImplementedError

    def skip_flag(self, beat):
        """A beat consumed without an event (computed when it enters ``cur``, so the
        compare is not on the take path): none by default."""
        return 0


class SpikeFrontEnd(FrontEnd):
    """External spike events: one event per beat, ``x = 1``. A spike address ``>= M``,
    ``last`` on a spike beat and (static) a spike after the first end of timestep are
    errors."""

    def __init__(self, n_in: int, static: bool = False):
        super().__init__(spike_event_layout(n_in), n_in, static=static)

    def decode(self, m, cur, cur_valid, cur_done, error_set):
        ev = self.event
        bad = ~cur.eot & (cur.last | (cur.addr >= self.n_in) | self.loaded)
        m.d.comb += [
            ev.valid.eq(cur_valid & ~bad), ev.eot.eq(cur.eot),
            ev.last.eq(cur.last), ev.m.eq(cur.addr), ev.x.eq(1),
            cur_done.eq(bad | ev.take),
            error_set.eq(cur_valid & bad),
        ]


class DirectFrontEnd(FrontEnd):
    """External multi-bit values: exactly M value beats per timestep (static: per
    sample), event ``m`` the value's position; a value of 0 makes no event. A value
    beyond the M-th, ``last`` on a value beat, a timestep closed early (its missing
    values count as 0) and (static) a value after the first end of timestep are
    errors."""

    def __init__(self, n_in: int, input_bits: int, static: bool = False):
        if input_bits < 2:
            raise ValueError("input_kind='direct' needs input_bits >= 2")
        super().__init__(direct_value_layout(input_bits), n_in, input_bits, static=static)

    def decode(self, m, cur, cur_valid, cur_done, error_set):
        ev, M = self.event, self.n_in
        idx = Signal(range(M + 1))
        idx_full = Signal()  # idx == M, as a register (off the take path)
        bad = ~cur.eot & (cur.last | idx_full | self.loaded)
        zero = self.cur_skip
        skip = cur_valid & ~bad & zero          # consumed without an event
        value_done = (ev.take & ~ev.eot) | skip
        m.d.comb += [
            ev.valid.eq(cur_valid & ~bad & ~zero), ev.eot.eq(cur.eot),
            ev.last.eq(cur.last), ev.m.eq(idx), ev.x.eq(cur.value),
            cur_done.eq(bad | ev.take | skip),
            # A short timestep is also an error; its missing values count as 0.
            error_set.eq((cur_valid & bad)
                         | (ev.take & ev.eot & ~idx_full & ~self.loaded)),
        ]
        with m.If(value_done):
            m.d.sync += [idx.eq(idx + 1), idx_full.eq(idx == M - 1)]
        with m.If(ev.take & ev.eot):
            m.d.sync += [idx.eq(0), idx_full.eq(0)]
        with m.If(self.start):
            m.d.sync += [idx.eq(0), idx_full.eq(0)]

    def skip_flag(self, beat):
        return ~beat.eot & (beat.value == 0)


class WordFrontEnd(FrontEnd):
    """Spike words of an upstream engine (``groups`` x ``lanes``): one event per set bit,
    lowest first (a priority encoder, one event per cycle, no bubbles); ``m = group *
    lanes + bit``. An empty word that is not an end of timestep is dropped (upstream
    engines never send one); it is not an error."""

    def __init__(self, n_in: int, groups: int, lanes: int):
        self.up_lanes = check_lanes(lanes)
        self.up_groups = check_int("upstream_groups", groups, 1)
        if self.up_groups * self.up_lanes < n_in:
            raise ValueError(f"upstream geometry {self.up_groups} x {self.up_lanes} does not "
                             f"cover {n_in} inputs")
        super().__init__(spike_word_layout(self.up_groups, self.up_lanes), n_in)

    def decode(self, m, cur, cur_valid, cur_done, error_set):
        ev, Pu = self.event, self.up_lanes
        mask = cur.mask
        bit = Signal(index_width(Pu))
        for i in reversed(range(Pu)):  # the lowest set bit wins (assigned last)
            with m.If(mask[i]):
                m.d.comb += bit.eq(i)
        rest = (mask & (mask - 1))[:Pu]
        final = cur.eot | (rest == 0)
        # the empty-word check stays off the FIFO-output -> enable path
        empty = ~cur.eot & (mask == 0)
        m.d.comb += [
            ev.valid.eq(cur_valid & ~empty), ev.eot.eq(cur.eot),
            ev.last.eq(cur.last), ev.m.eq(cur.group * Pu + bit), ev.x.eq(1),
            cur_done.eq((ev.take & final) | (cur_valid & empty)),
        ]
        with m.If(ev.take & ~final):
            m.d.sync += cur.mask.eq(rest)


def make_frontend(kind: str, n_in: int, *, input_bits: int = 1,
                  upstream_groups: int | None = None,
                  upstream_lanes: int | None = None, static: bool = False) -> FrontEnd:
    """The front end of ``kind`` (one of :data:`INPUT_KINDS`); ``static`` for the spike
    and direct kinds only."""
    if static and kind == "words":
        raise ValueError("static input applies to the first layer only (input_kind "
                         "'spike' or 'direct')")
    if kind == "spike":
        return SpikeFrontEnd(n_in, static=static)
    if kind == "direct":
        return DirectFrontEnd(n_in, input_bits, static=static)
    if kind == "words":
        return WordFrontEnd(n_in, upstream_groups, upstream_lanes)
    raise ValueError(f"input_kind must be one of {', '.join(INPUT_KINDS)}, got {kind!r}")
