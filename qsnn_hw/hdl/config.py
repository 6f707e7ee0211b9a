"""One core configuration: every hardware option of a generated core in one frozen,
validated object that ``generate``, ``verify`` (every simulator), ``synth``, ``run`` and
``flow`` take, and that the manifest and the board report record.

The options are the ones that change the gateware but not what it computes (the integer
contract, :mod:`qsnn_hw.contract`, fixes that): lanes per layer, spike-counter width,
output FIFO depths, state-quantizer kind, weight storage, how the input is sent (once
per sample or every timestep) and the accumulator banks. :meth:`CoreConfig.layers`
resolves them against a network into one :class:`LayerOptions` per layer; every size
derived from those lives in :mod:`.geometry`.

Serialised as plain JSON (:meth:`CoreConfig.to_dict` / :meth:`CoreConfig.from_dict`):
the manifest's and the board report's ``"core"`` entry, so ``qsnn-hw verify MODEL
--config BUILD/report.json`` simulates exactly the core that was built.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path

from .._check import check_choice, check_int

#: weight storage kinds (:class:`~.weight_memory.WeightMemory`)
STORAGES = ("rom", "ram", "spram")
#: state quantizer kinds: ``auto`` picks comparators up to COMB_MAX_BITS code bits
QUANTIZERS = ("auto", "comparators", "pipelined")
#: FIFO depth keywords: two timesteps of words (``default``) or one (``min``)
FIFO_KEYWORDS = ("default", "min")
#: input modes: ``auto`` is static for multi-bit (direct) input, streamed for spikes
#: (and for a TaWQ first layer)
INPUTS = ("auto", "static", "streamed")
#: accumulator banks: ``auto`` is one for a static-input layer, two elsewhere
ACCUMULATORS = ("auto", "single", "double")
MAX_LANES = 256
MAX_COUNT_BITS = 32


def _check_lanes(name: str, value) -> int:
    return check_int(name, value, 1, MAX_LANES)


def _one_or_each(name: str, value, check):
    """One value for every layer, or a list/tuple with one per layer (stored as a tuple:
    hashable, frozen); ``check(name, value)`` validates each, its errors name the entry."""
    if isinstance(value, (list, tuple)):
        if not value:
            raise ValueError(f"{name} must be one value or a non-empty list, got []")
        return tuple(check(f"{name}[{i}]", v) for i, v in enumerate(value))
    return check(name, value)


def _choice(choices):
    def check(name, value):
        return check_choice(name, value, choices)
    return check


@dataclass(frozen=True)
class LayerOptions:
    """The options of one layer engine, resolved (:meth:`CoreConfig.layers`)."""

    lanes: int
    fifo_depth: int          # output FIFO depth in spike words
    pipelined: bool | None   # quantizer: True pipelined search, False comparators, None auto
    storage: str             # "rom", "ram" or "spram"
    banks: int = 1           # accumulator banks: 2 overlaps the update with accumulation
    static: bool = False     # the layer's input is sent once per sample (first layer only)


@dataclass(frozen=True)
class CoreConfig:
    """Hardware options of a generated core.

    Parameters
    ----------
    lanes : P, neurons updated and synapses accumulated per cycle: one int (1..256) for
        every layer, or a tuple with one per layer.
    count_bits : width of the saturating output spike counters (1..32).
    fifo_depth : each layer's output FIFO in spike words: ``"default"`` (two timesteps,
        2 (G + 1), so a layer can run a timestep ahead; 2 G + 1 for a power of two G >=
        64, :func:`~.geometry.default_fifo_depth`), ``"min"`` (one timestep, the
        smallest legal depth), an int, or a tuple with one int or keyword per layer.
    quantizer : state quantizer: ``"auto"`` (parallel comparators up to 4 code bits, the
        pipelined binary search above), ``"comparators"`` or ``"pipelined"``.
    weight_storage : ``"rom"`` (weights in the bitstream), ``"ram"`` or ``"spram"``
        (written by a loader after configuration; SPRAM is SB_SPRAM256KA on the iCE40
        UltraPlus, the generic RAM elsewhere): one for every layer or a tuple per layer.
    input : how a sample enters the first layer: ``"static"`` (the sample is sent once;
        the core accumulates its current once and reuses it at every timestep; the
        sample must be the same at every timestep), ``"streamed"`` (every timestep's
        input is sent) or ``"auto"`` (static for multi-bit direct input, the trainer's
        direct encoding; streamed for spike input and for a TaWQ first layer, whose
        current changes every timestep; ``"static"`` is refused there).
    accumulators : ``"double"`` (two banks: the next timestep accumulates while the
        update reads the last one), ``"single"`` (one bank, half the accumulator memory;
        accumulation waits for the update) or ``"auto"`` (single for a static-input
        layer, which accumulates once per sample, double elsewhere): one for every layer
        or a tuple per layer.
    """

    lanes: int | tuple[int, ...] = 1
    count_bits: int = 16
    fifo_depth: str | int | tuple = "default"
    quantizer: str = "auto"
    weight_storage: str | tuple[str, ...] = "rom"
    input: str = "auto"
    accumulators: str | tuple[str, ...] = "auto"

    def __post_init__(self):
        set_ = object.__setattr__
        set_(self, "lanes", _one_or_each("lanes", self.lanes, _check_lanes))
        set_(self, "count_bits", check_int("count_bits", self.count_bits, 1, MAX_COUNT_BITS))
        set_(self, "fifo_depth", _one_or_each("fifo_depth", self.fifo_depth, _check_depth))
        check_choice("quantizer", self.quantizer, QUANTIZERS)
        set_(self, "weight_storage", _one_or_each("weight_storage", self.weight_storage,
                                                  _choice(STORAGES)))
        check_choice("input", self.input, INPUTS)
        set_(self, "accumulators", _one_or_each("accumulators", self.accumulators,
                                                _choice(ACCUMULATORS)))

    # ---- per layer ---------------------------------------------------------------------
    def per_layer(self, name: str, n_layers: int) -> tuple:
        """Option ``name`` as one entry per layer (an error naming the option when a
        per-layer tuple has the wrong length)."""
        value = getattr(self, name)
        if isinstance(value, tuple):
            if len(value) != n_layers:
                raise ValueError(f"{name} must be one value or have one entry per layer "
                                 f"({n_layers}), got {len(value)}")
            return value
        return (value,) * n_layers

    def check(self, net) -> CoreConfig:
        """Raise a ValueError naming the option if it does not fit ``net``; returns self."""
        self.layers(net)
        return self

    def layers(self, net) -> tuple[LayerOptions, ...]:
        """One :class:`LayerOptions` per layer of ``net`` (an IntNetwork)."""
        from .geometry import default_fifo_depth, layer_groups, min_fifo_depth

        n = len(net.layers)
        lanes = self.per_layer("lanes", n)
        depths = self.per_layer("fifo_depth", n)
        storage = self.per_layer("weight_storage", n)
        accs = self.per_layer("accumulators", n)
        static = self.static_input(net)
        pipelined = {"auto": None, "comparators": False, "pipelined": True}[self.quantizer]
        out = []
        for i, layer in enumerate(net.layers):
            # one timestep of output words: OG (G, or a pooled convolution's groups) + 1
            g = layer_groups(layer, lanes[i])[1]
            lo = min_fifo_depth(g)
            d = depths[i]
            d = {"default": default_fifo_depth(g), "min": lo}.get(d, d)
            if d < lo:
                raise ValueError(f"fifo_depth of layer {i} must be >= {lo} (one timestep of "
                                 f"spike words, OG + 1 with OG = {g} output groups), got {d}")
            st = static and i == 0
            banks = {"single": 1, "double": 2, "auto": 1 if st else 2}[accs[i]]
            out.append(LayerOptions(lanes=lanes[i], fifo_depth=d, pipelined=pipelined,
                                    storage=storage[i], banks=banks, static=st))
        return tuple(out)

    def static_input(self, net) -> bool:
        """Whether samples enter ``net``'s first layer once (static) rather than every
        timestep (:attr:`input`). A TaWQ first layer's current changes every timestep:
        ``auto`` streams its input, ``static`` is refused."""
        tawq = net.layers[0].is_tawq
        if self.input == "static" and tawq:
            raise ValueError("input='static' needs a first layer whose current is the same "
                             "at every timestep, but layer 0 is a TaWQ layer (time-varying "
                             "ternary weights); use input='streamed' or 'auto'")
        if self.input == "auto":
            return net.input_bits > 1 and not tawq
        return self.input == "static"

    def replace(self, **changes) -> CoreConfig:
        return replace(self, **changes)

    # ---- serialisation -----------------------------------------------------------------
    def to_dict(self) -> dict:
        d = asdict(self)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}

    @classmethod
    def from_dict(cls, d: dict) -> CoreConfig:
        if not isinstance(d, dict):
            raise TypeError(f"a core configuration must be a JSON object, got {type(d).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown core configuration option(s) {', '.join(unknown)}; "
                             f"known: {', '.join(sorted(known))}")
        return cls(**d)

    def describe(self) -> str:
        """One line for reports: ``lanes 2, counters 5 bits, FIFOs default, ...``."""
        def show(v):
            return ",".join(map(str, v)) if isinstance(v, tuple) else str(v)
        return (f"lanes {show(self.lanes)}, counters {self.count_bits} bits, FIFOs "
                f"{show(self.fifo_depth)}, quantizer {self.quantizer}, weights "
                f"{show(self.weight_storage)}, input {self.input}, accumulators "
                f"{show(self.accumulators)}")


def _check_depth(name: str, value):
    if isinstance(value, str):
        return check_choice(name, value, FIFO_KEYWORDS)
    return check_int(name, value, 3, 1 << 16)


def load_config(path) -> CoreConfig:
    """A :class:`CoreConfig` from a JSON file: a board report or manifest (its ``"core"``
    entry) or a bare configuration object."""
    path = Path(path)
    try:
        doc = json.loads(path.read_text())
    except FileNotFoundError:
        raise FileNotFoundError(f"configuration file {path} does not exist") from None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ValueError(f"{path} is not a JSON core configuration ({exc})") from None
    if isinstance(doc, dict) and "core" in doc:
        doc = doc["core"]
    try:
        return CoreConfig.from_dict(doc)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{path}: {exc}") from None
