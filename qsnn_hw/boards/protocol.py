"""The UART bridge protocol, host side and constants shared with the gateware.

Host -> board (bytes):

* ``CMD_SAMPLE`` (0xA5), then the sample's input-stream beats (docs/hardware.md, stream
  formats), each as ``beat_bytes`` bytes little-endian, up to and including the beat
  with ``eot = last = 1``. The board pulses ``start`` on the command byte. A core with
  static input (identity bit, below) takes the sample's input beats once, then T bare
  end-of-timestep beats (:func:`qsnn_hw.verify.stimulus.sample_beats`).
* ``CMD_IDENT`` (0x49, ``'I'``): the board answers with its model identity.
* ``CMD_WRITE`` (0x57, ``'W'``; only boards built with RAM weights): ``layer`` (1 byte),
  ``addr`` (3 bytes LE), ``count`` (3 bytes LE), then ``count`` packed weight words
  (:func:`weight_words`), ``word_bytes`` bytes each, LE: written to addresses ``addr``,
  ``addr + 1``, ... of that layer's weight memory. Words for a ROM layer or past the
  layer's depth are dropped and flagged (status bit 4). Clears "weights loaded".
  The board answers ``CMD_WRITE``, ``status`` after the last word.
* ``CMD_LOADED`` (0x44, ``'D'``; RAM weights only): "all weights sent". The board sets
  "weights loaded" if the words it accepted since the previous ``CMD_LOADED`` (or reset)
  number exactly ``load_words`` (the sum of the RAM layers' depths; a count, not a
  coverage map), restarts that count and answers ``CMD_LOADED``, ``status``.
* Any other byte while idle is ignored (so a host can resynchronise by sending idle
  bytes, e.g. after a lost sample). A board with ROM weights ignores ``CMD_WRITE`` and
  ``CMD_LOADED`` like any other unknown byte: the host asks the identity first.

Board -> host:

* Sample reply: ``REPLY_SAMPLE`` (0x5A), ``status`` (bit 0: the core's sticky ``error``,
  bit 1: receive overflow (a byte arrived with the receive FIFO full), bit 2: a UART
  framing error, bit 3: the weights are not loaded (RAM weights, before a successful
  ``CMD_LOADED``: the sample is still computed, with whatever the weight RAM holds),
  bit 4: a weight write was rejected), ``prediction`` (``pred_bytes``), ``counts``
  (``n_out`` x
  ``count_bytes``, little-endian each), ``cycles`` (4 bytes: clock cycles from
  ``start`` to the result, saturating).
* Ident reply: ``CMD_IDENT``, 4 bytes model id (:func:`model_id`), ``beat_bytes``,
  ``n_out`` (2 bytes), ``count_bytes``, ``flags`` (bit 0: RAM weights, to be loaded;
  bit 1: loaded; bit 2: static input), ``word_bytes`` (0 for ROM weights),
  ``load_words`` (3 bytes).

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
from ..verify.stimulus import event_layout, sample_beats

CMD_SAMPLE = 0xA5
CMD_IDENT = 0x49
CMD_WRITE = 0x57
CMD_LOADED = 0x44
REPLY_SAMPLE = 0x5A
CYCLE_BYTES = 4
STATUS_CORE_ERROR = 1
STATUS_RX_OVERFLOW = 2
STATUS_FRAME_ERROR = 4
STATUS_NOT_LOADED = 8
STATUS_WRITE_REJECTED = 16
WEIGHTS_RAM = 1
WEIGHTS_LOADED = 2
INPUT_STATIC = 4
ADDR_BYTES = 3
MAX_BURST = (1 << (8 * ADDR_BYTES)) - 1


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
    static: bool = False     # a sample's input beats are sent once (static input)

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

    IDENT_BYTES = 1 + 4 + 1 + 2 + 1 + 1 + 1 + ADDR_BYTES


def framing(net: IntNetwork, count_bits: int = 16, static: bool = False) -> Framing:
    """The framing of ``net``'s input stream (the same layouts the core is built from);
    ``static``: the core takes each sample's input once (``CoreConfig.input``)."""
    layout = event_layout(net)
    return Framing(layout.size, layout["eot"].offset, layout["last"].offset, net.n_out,
                   count_bits, bool(static))


def encode_sample(net: IntNetwork, xs: np.ndarray, fr: Framing | None = None) -> bytes:
    """Bytes for one sample ``xs`` (T, M): the command byte and every beat."""
    fr = fr or framing(net)
    beats = sample_beats(net, np.asarray(xs), static=fr.static)
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
            "n_out": int.from_bytes(data[6:8], "little"), "count_bytes": data[8],
            "ram_weights": bool(data[9] & WEIGHTS_RAM),
            "weights_loaded": bool(data[9] & WEIGHTS_LOADED),
            "static_input": bool(data[9] & INPUT_STATIC), "word_bytes": data[10],
            "load_words": int.from_bytes(data[11:14], "little")}


# ---- RAM weights: what the loader sends ----------------------------------------------

@dataclass(frozen=True)
class LoadLayout:
    """Which layers have RAM weights and how their words travel: ``layers`` (indices),
    ``depths`` and ``word_widths`` (bits) of those layers, ``word_bytes`` (the widest
    word, whole bytes; every word is sent with this many bytes)."""

    layers: tuple
    depths: tuple
    word_widths: tuple

    @property
    def word_bytes(self) -> int:
        return (max(self.word_widths) + 7) // 8 if self.layers else 0

    @property
    def total_words(self) -> int:
        return sum(self.depths)


def load_layout(net: IntNetwork, config) -> LoadLayout:
    """The load layout of ``net`` built with ``config`` (a CoreConfig: its lanes and
    per-layer weight storage) -- the same geometry the core uses."""
    from ..hdl.geometry import network_geometry
    geoms = network_geometry(net, config)
    storage = config.per_layer("weight_storage", len(geoms))
    ram = [i for i, s in enumerate(storage) if s != "rom"]
    out = LoadLayout(tuple(ram), tuple(geoms[i].n_in * geoms[i].groups for i in ram),
                     tuple(geoms[i].lanes * geoms[i].weight_width for i in ram))
    if out.total_words > MAX_BURST:
        raise ValueError(f"RAM weights of {out.total_words:,} words exceed the protocol's "
                         f"{MAX_BURST:,}")
    return out


def weight_words(net: IntNetwork, config, layer: int) -> list[int]:
    """The packed weight words of ``layer`` (WeightMemory's layout) in a core built with
    ``config`` (a CoreConfig)."""
    from ..hdl.weight_memory import pack_weight_words
    lanes = config.per_layer("lanes", len(net.layers))[layer]
    return pack_weight_words(net.layers[layer].weight, lanes)


def encode_weight_write(layer: int, addr: int, words, word_bytes: int) -> bytes:
    """``CMD_WRITE`` for ``words`` written from ``addr`` of ``layer``."""
    words = list(words)
    if not 0 <= layer <= 255:
        raise ValueError(f"layer must be in [0, 255], got {layer}")
    if not 0 <= addr <= MAX_BURST or not 0 <= len(words) <= MAX_BURST:
        raise ValueError(f"addr and the word count must be in [0, {MAX_BURST}], "
                         f"got {addr} and {len(words)}")
    out = bytearray([CMD_WRITE, layer])
    out += addr.to_bytes(ADDR_BYTES, "little") + len(words).to_bytes(ADDR_BYTES, "little")
    for w in words:
        out += int(w).to_bytes(word_bytes, "little")
    return bytes(out)


def decode_ack(data: bytes, cmd: int) -> int:
    """The status byte of a ``CMD_WRITE`` / ``CMD_LOADED`` acknowledgement."""
    if len(data) != 2 or data[0] != cmd:
        raise ProtocolError(f"expected the 0x{cmd:02x} acknowledgement, got {data.hex()!r}")
    return data[1]
