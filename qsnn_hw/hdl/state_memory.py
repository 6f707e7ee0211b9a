"""State memory (and the generic lane memory it is built on).

A memory of ``depth`` words of ``P`` lanes with one read and one write port.

Used for the state memory (codes or membranes) and the current accumulators of a layer
engine. The read port is synchronous; by default it is transparent for the write port
(a read of the address being written in the same cycle returns the new data). The
accumulators use a non-transparent port (``transparent=False``: no bypass multiplexer
after the block RAM's output) and forward in-flight sums themselves.
"""

from __future__ import annotations

from amaranth.hdl import Module, unsigned
from amaranth.lib import data, memory, wiring
from amaranth.lib.wiring import In, Out

from ._util import check_lanes, index_width, pack_lanes, shape_of


class LaneMemory(wiring.Component):
    """Parameters: ``width``/``is_signed`` per lane, ``lanes`` P, ``depth`` words, ``init``
    per-word lists of lane values (default 0), ``writable`` (False: a ROM),
    ``transparent`` (read-during-write of one address returns the new data).

    Members: ``r_addr`` In, ``r_data`` Out (one cycle after ``r_addr``); when writable,
    ``w_addr``, ``w_data``, ``w_en`` In.
    """

    def __init__(self, *, width: int, is_signed: bool, lanes: int, depth: int, init=None,
                 writable: bool = True, transparent: bool = True):
        if not isinstance(width, int) or width < 1:
            raise ValueError(f"width must be a positive integer, got {width!r}")
        if not isinstance(depth, int) or depth < 1:
            raise ValueError(f"depth must be a positive integer, got {depth!r}")
        self.width, self.is_signed = width, bool(is_signed)
        self.lanes, self.depth = check_lanes(lanes), depth
        self.writable = writable
        self.transparent = bool(transparent)
        self.init = [[0] * lanes] * depth if init is None else [list(w) for w in init]
        if len(self.init) != depth or any(len(w) != lanes for w in self.init):
            raise ValueError(f"init must be {depth} words of {lanes} lanes")
        lane = data.ArrayLayout(shape_of(width, is_signed), lanes)
        members = {"r_addr": In(index_width(depth)), "r_data": Out(lane)}
        if writable:
            members.update(w_addr=In(index_width(depth)), w_data=In(lane), w_en=In(1))
        super().__init__(members)

    @property
    def bits(self) -> int:
        return self.depth * self.lanes * self.width

    def elaborate(self, platform):
        m = Module()
        m.submodules.mem = self.memory = mem = memory.Memory(
            shape=unsigned(self.lanes * self.width), depth=max(2, self.depth),  # no 0-bit address
            init=[pack_lanes(w, self.width) for w in self.init])
        if self.writable:
            wr = mem.write_port()
            m.d.comb += [wr.addr.eq(self.w_addr), wr.data.eq(self.w_data), wr.en.eq(self.w_en)]
            rd = mem.read_port(transparent_for=(wr,) if self.transparent else ())
        else:
            rd = mem.read_port()
        m.d.comb += [rd.addr.eq(self.r_addr), self.r_data.eq(rd.data)]
        return m


class StateMemory(LaneMemory):
    """The state memory of ``layer`` (an IntLayer) in the sizes of ``geom`` (its
    :class:`~.geometry.LayerGeometry`): G words of P lanes, each an unsigned n-bit
    **code** when states are quantized, else a signed ``mem_bits`` saturating membrane.
    Initialized to the rest state (``rest_code`` / 0); the layer engine also substitutes
    the rest state on a sample's first timestep, so a new sample never needs the memory
    cleared."""

    def __init__(self, layer, geom):
        if (geom.n_neurons, geom.n_out) != (layer.n_neurons, layer.n_out):
            raise ValueError(f"geometry of a layer of {geom.n_neurons} neurons and "
                             f"{geom.n_out} outputs given for a layer of {layer.n_neurons} "
                             f"neurons and {layer.n_out} outputs")
        rest = layer.rest_code if layer.quantized else 0
        super().__init__(width=geom.state_width, is_signed=geom.state_signed,
                         lanes=geom.lanes, depth=geom.groups,
                         init=[[rest] * geom.lanes] * geom.groups)
