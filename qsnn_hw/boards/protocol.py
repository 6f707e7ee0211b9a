"""The UART bridge protocol, host side and constants shared with the gateware.

Host -> board (bytes):

* ``CMD_SAMPLE`` (0xA5), then the sample's input-stream beats (docs/hardware.md, stream
  formats), each as ``beat_bytes`` bytes little-endian, up to and including the beat
  with ``eot = last = 1``. The board pulses ``start`` on the command byte.
* ``CMD_IDENT`` (0x49, ``'I'``): the board answers with its model identity.
* Any other byte while idle is ignored (so a host can resynchronise by sending idle
  bytes, e.g. after a lost sample).

Board -> host:

* Sample reply: ``REPLY_SAMPLE`` (0x5A), ``status`` (bit 0: the core's sticky ``error``,
  bit 1: receive overflow (a byte arrived with the receive FIFO full), bit 2: a UART
  framing error), ``prediction`` (``pred_bytes``), ``counts`` (``n_out`` x
  ``count_bytes``, little-endian each), ``cycles`` (4 bytes: clock cycles from
  ``start`` to the result, saturating).
* Ident reply: ``CMD_IDENT``, 4 bytes model id (:func:`model_id`), ``beat_bytes``,
  ``n_out`` (2 bytes), ``count_bytes``.

There is no flow control. The board consumes a beat long before the next one arrives
(a beat costs at most ``G`` cycles of the first layer plus a timestep update; a byte
takes ``10 * divisor`` cycles), and a receive FIFO absorbs bursts. Overflow is reported,
never silent.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

from ..contract import IntNetwork
from ..hdl._util import index_width
from ..hdl.sim_util import sample_beats

CMD_SAMPLE = 0xA5
CMD_IDENT = 0x49
REPLY_SAMPLE = 0x5A
CYCLE_BYTES = 4
STATUS_CORE_ERROR = 1
STATUS_RX_OVERFLOW = 2
STATUS_FRAME_ERROR = 4


def model_id(net: IntNetwork) -> int:
    """A 32-bit identity of the integer network (weights, biases, levels, scalars), so the
    host can check that the board runs the model it is asked to run."""
    h = hashlib.sha256(f"input_bits={net.input_bits}".encode())
    for layer in net.layers:
        h.update(repr((layer.threshold, layer.beta_num, layer.beta_shift, layer.reset,
                       layer.frac_bits, layer.mem_bits)).encode())
        for arr in (layer.weight, layer.bias, layer.levels):
            h.update(b"-" if arr is None else np.ascontiguousarray(arr, "<i8").tobytes())
    return int.from_bytes(h.digest()[:4], "little")


@dataclass(frozen=True)
class Framing:
    """Byte-level sizes of the protocol for one network and counter width."""

    beat_bits: int
    eot_bit: int
    last_bit: int
    n_out: int
    count_bits: int

    @property
    def beat_bytes(self) -> int:
        return (self.beat_bits + 7) // 8

    @property
    def pred_bytes(self) -> int:
        return (index_width(self.n_out) + 7) // 8

    @property
    def count_bytes(self) -> int:
        return (self.count_bits + 7) // 8

    @property
    def reply_bytes(self) -> int:
        return 2 + self.pred_bytes + self.n_out * self.count_bytes + CYCLE_BYTES

    IDENT_BYTES = 1 + 4 + 1 + 2 + 1


def framing(net: IntNetwork, count_bits: int = 16) -> Framing:
    """The framing of ``net``'s input stream (the same layouts the core is built from)."""
    from ..hdl.layouts import direct_value_layout, spike_event_layout
    layout = (spike_event_layout(net.n_in) if net.input_bits == 1
              else direct_value_layout(net.input_bits))
    return Framing(layout.size, layout["eot"].offset, layout["last"].offset, net.n_out,
                   count_bits)


def encode_sample(net: IntNetwork, xs: np.ndarray, fr: Framing | None = None) -> bytes:
    """Bytes for one sample ``xs`` (T, M): the command byte and every beat."""
    from ..hdl.layouts import direct_value_layout, spike_event_layout
    fr = fr or framing(net)
    layout = (spike_event_layout(net.n_in) if net.input_bits == 1
              else direct_value_layout(net.input_bits))
    beats = sample_beats(net, np.asarray(xs), None, layout)
    out = bytearray([CMD_SAMPLE])
    for b in beats:
        out += int(b).to_bytes(fr.beat_bytes, "little")
    return bytes(out)


@dataclass(frozen=True)
class Reply:
    status: int
    prediction: int
    counts: tuple
    cycles: int


class ProtocolError(ValueError):
    """A reply that does not follow the protocol (wrong header or length)."""


def decode_reply(data: bytes, fr: Framing) -> Reply:
    if len(data) != fr.reply_bytes:
        raise ProtocolError(f"reply has {len(data)} bytes, expected {fr.reply_bytes} "
                            f"(is the board built for this model and --count-bits?)")
    if data[0] != REPLY_SAMPLE:
        raise ProtocolError(f"reply starts with 0x{data[0]:02x}, expected 0x{REPLY_SAMPLE:02x}")
    pos = 2
    pred = int.from_bytes(data[pos:pos + fr.pred_bytes], "little")
    pos += fr.pred_bytes
    counts = []
    for _ in range(fr.n_out):
        counts.append(int.from_bytes(data[pos:pos + fr.count_bytes], "little"))
        pos += fr.count_bytes
    cycles = int.from_bytes(data[pos:pos + CYCLE_BYTES], "little")
    return Reply(data[1], pred, tuple(counts), cycles)


def decode_ident(data: bytes) -> dict:
    if len(data) != Framing.IDENT_BYTES or data[0] != CMD_IDENT:
        raise ProtocolError(f"bad ident reply {data.hex()}")
    return {"model_id": int.from_bytes(data[1:5], "little"), "beat_bytes": data[5],
            "n_out": int.from_bytes(data[6:8], "little"), "count_bytes": data[8]}
