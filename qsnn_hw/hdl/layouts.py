"""Stream payload layouts (bit 0 first; docs/hardware.md has the full protocol).

* **Spike events** (a spike-input first layer): ``addr`` (input index m), ``eot``,
  ``last``. A beat with ``eot = 0`` is one input spike; a beat with ``eot = 1`` closes the
  timestep (its ``addr`` is ignored), and ``last = 1`` on it closes the sample. A timestep
  with no spikes is a single ``eot`` beat. Events within a timestep may come in any order.
* **Direct values** (``IntNetwork.input_bits > 1``): ``value``, ``eot``, ``last``.
  Exactly ``M`` value beats (input 0 first) then one ``eot`` beat per timestep.
* **Spike words** (between layers, internal): ``group`` g, ``mask`` of P lanes (bit p =
  neuron ``g*P + p`` spiked), ``eot``, ``last``. Only non-zero masks are sent.
* **Result**: ``prediction`` (argmax of the counts, ties to the lowest index) and
  ``counts`` (saturating per-output spike counts).
* **Trace** (observation only, :func:`trace_signature`; ``NetworkTop(..., trace=True)``
  exposes one per layer as ``trace__layer<l>__<field>``, e.g. ``trace__layer0__word``):
  ``word_valid`` / ``word`` (a spike word, the layout above, written into the layer's
  output FIFO in this cycle) and ``state_en`` / ``state_addr`` / ``state_data`` (a
  state-memory write of this cycle: group g, P lanes of codes, unsigned, or membranes,
  signed; lane 0 in the low bits). A layer writes its G groups in order once per
  timestep, then an end-of-timestep word.
"""

from __future__ import annotations

from amaranth.hdl import unsigned
from amaranth.lib import data, wiring
from amaranth.lib.wiring import Out

from ._util import index_width, shape_of


def spike_event_layout(n_in: int) -> data.StructLayout:
    return data.StructLayout({"addr": unsigned(index_width(n_in)), "eot": 1, "last": 1})


def direct_value_layout(input_bits: int) -> data.StructLayout:
    return data.StructLayout({"value": unsigned(input_bits), "eot": 1, "last": 1})


def spike_word_layout(groups: int, lanes: int) -> data.StructLayout:
    return data.StructLayout({"group": unsigned(index_width(groups)), "mask": unsigned(lanes),
                              "eot": 1, "last": 1})


def result_layout(n_out: int, count_bits: int) -> data.StructLayout:
    return data.StructLayout({"prediction": unsigned(index_width(n_out)),
                              "counts": data.ArrayLayout(unsigned(count_bits), n_out)})


def trace_signature(geometry) -> wiring.Signature:
    """The trace port of one layer engine (a :class:`~.geometry.LayerGeometry`), as seen
    from the engine (every member an output)."""
    g = geometry
    return wiring.Signature({
        "word_valid": Out(1),
        "word": Out(spike_word_layout(g.out_groups, g.lanes)),
        "state_en": Out(1),
        "state_addr": Out(index_width(g.groups)),
        "state_data": Out(data.ArrayLayout(shape_of(g.state_width, g.state_signed),
                                           g.lanes)),
    })
