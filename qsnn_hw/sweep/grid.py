"""Sweep grids: which training configurations (cells) an ablation trains.

A :class:`Cell` is a name, the changes it makes to the base :class:`TrainConfig`
(``layer``: fields applied to every layer; ``train``: run fields) and tags that place it
in the paper-shaped tables (``method``, ``target``, ``family``, ``bits``).

* ``squat_grid()``: the grid of the SQUAT paper's ablation -- a full-precision baseline,
  then PTQ and QAT/SQUAT of weights only, states only and both, uniform and exponential
  state levels, at 8, 4 and 2 bits (31 cells).
* ``load_grid_file(path)``: a user grid from a JSON or TOML file (format in
  docs/ablation.md).
"""

from __future__ import annotations

import json
import re
import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

from ..quant.levels import level_family
from ..train.config import ARCH_FIELDS, LayerConfig, TrainConfig

PAPER_BITS = (8, 4, 2)
# The state-level families the SQUAT paper compares (a choice of the paper), by their names
# in the registry qsnn_hw.quant.levels.LEVEL_FAMILIES: a name it lacks fails at import.
FAMILIES = tuple(level_family(name).name for name in ("uniform", "exponential"))
# Tags of the paper grid: method x target (one paper table each).
METHODS = ("ptq", "qat")
TARGETS = ("weights", "states", "both")
GRIDS = ("squat",)

# Fields a cell may change: every LayerConfig field but the shape ones (``size``, the
# convolution's; applied to all layers), every TrainConfig field but ``layers`` and
# ``seed`` (seeds come from --seeds), ``hidden`` (hidden layer sizes) and ``arch`` (the
# whole network as an --arch string: convolutions, pooling, dense layers).
LAYER_KEYS = tuple(f.name for f in fields(LayerConfig) if f.name not in ARCH_FIELDS)
TRAIN_KEYS = tuple(f.name for f in fields(TrainConfig) if f.name not in ("layers", "seed"))
NETWORK_KEYS = ("hidden", "arch")
_NAME_RE = re.compile(r"^[A-Za-z0-9_.+-]{1,64}$")


@dataclass(frozen=True)
class Cell:
    """One configuration of the grid (trained once per seed).

    name: unique, file-name safe. layer: LayerConfig field -> value for every layer.
    train: TrainConfig field -> value (``hidden``: tuple of hidden sizes). tags: ``method``
    (fp/ptq/qat), ``target`` (none/weights/states/both), ``family``, ``bits`` for the
    paper tables; empty for user cells.
    """

    name: str
    layer: dict = field(default_factory=dict)
    train: dict = field(default_factory=dict)
    tags: dict = field(default_factory=dict)

    def __post_init__(self):
        if not isinstance(self.name, str) or not _NAME_RE.match(self.name):
            raise ValueError(f"cell name must be 1-64 characters of letters, digits, "
                             f"'_', '.', '+' or '-', got {self.name!r}")
        for key in self.layer:
            if key not in LAYER_KEYS:
                raise ValueError(f"cell {self.name!r}: unknown layer field {key!r}")
        for key in self.train:
            if key not in TRAIN_KEYS and key not in NETWORK_KEYS:
                raise ValueError(f"cell {self.name!r}: unknown training field {key!r}")

    def config(self, base: TrainConfig, seed: int) -> TrainConfig:
        """The full training config of this cell for one seed (validated)."""
        return cell_config(base, self.layer, self.train, seed, self.name)


def cell_config(base: TrainConfig, layer: dict, train: dict, seed: int,
                what: str = "base") -> TrainConfig:
    train = dict(train)
    try:
        cfg = base
        if "hidden" in train and "arch" in train:
            raise ValueError("give the network by 'arch' or by 'hidden', not both")
        if "arch" in train:
            cfg = replace(cfg, layers=arch_layers(cfg, train.pop("arch")))
        if "hidden" in train:
            hidden = train.pop("hidden")
            if not isinstance(hidden, (list, tuple)):
                raise TypeError(f"hidden must be a list of layer sizes, got {hidden!r}")
            out = cfg.layers[-1]
            cfg = replace(cfg, layers=tuple(replace(out, size=h) for h in hidden) + (out,))
        cfg = replace(cfg, seed=seed, **train)
        return replace(cfg, layers=tuple(replace(lc, **layer) for lc in cfg.layers))
    except (TypeError, ValueError) as exc:
        raise ValueError(f"cell {what!r}: {exc}") from None


def arch_layers(base: TrainConfig, spec) -> tuple:
    """``base``'s layers rebuilt as the network of the --arch string ``spec``: the hidden
    layers take ``base``'s first layer's settings, the output layer ``base``'s last one's
    (its size must be the dataset's number of classes)."""
    from ..train.arch import parse_arch
    if not isinstance(spec, str):
        raise TypeError(f"arch must be an --arch string like '8c3-mp2-16c3p1-10', got "
                        f"{spec!r}")
    shapes = parse_arch(spec)
    out = base.layers[-1]
    if shapes[-1]["size"] != out.size:
        raise ValueError(f"arch {spec!r}: the last layer is the output and must have one "
                         f"neuron per class ({out.size}), got {shapes[-1]['size']}")
    hidden = base.layers[0]
    return tuple(replace(hidden if i < len(shapes) - 1 else out, **shape)
                 for i, shape in enumerate(shapes))


def squat_grid(bits=PAPER_BITS) -> list[Cell]:
    """The SQUAT paper's ablation grid (all layers quantized alike)."""
    cells = [Cell("fp", tags={"method": "fp", "target": "none", "family": "-", "bits": 32})]
    wmode = {"ptq": "ptq", "qat": "qat"}
    smode = {"ptq": "ptq", "qat": "squat"}
    for target in TARGETS:
        for method in METHODS:
            families = ("-",) if target == "weights" else FAMILIES
            for family in families:
                for b in bits:
                    layer = {}
                    if target in ("weights", "both"):
                        layer.update(weight_mode=wmode[method], weight_bits=b)
                    if target in ("states", "both"):
                        layer.update(state_mode=smode[method], state_bits=b,
                                     state_family=family)
                    fam = "" if family == "-" else f"-{family[:3]}"
                    cells.append(Cell(f"{method}-{target}{fam}-{b}", layer=layer,
                                      tags={"method": method, "target": target,
                                            "family": family, "bits": b}))
    return cells


def named_grid(name: str) -> list[Cell]:
    if name == "squat":
        return squat_grid()
    raise ValueError(f"--grid: unknown grid {name!r}; built-in grids: {', '.join(GRIDS)}, "
                     f"or give a .json / .toml grid file")


def parse_grid(doc, source: str) -> list[Cell]:
    """The cells (with ``base`` merged in) of a parsed grid document (see docs/ablation.md)."""
    if not isinstance(doc, dict):
        raise ValueError(f"grid file {source}: the top level must be a table/object with "
                         f"'cells' (and optionally 'base')")
    unknown = set(doc) - {"base", "cells"}
    if unknown:
        raise ValueError(f"grid file {source}: unknown top-level keys {sorted(unknown)}; "
                         f"allowed: 'base', 'cells'")
    base = doc.get("base", {})
    if not isinstance(base, dict):
        raise ValueError(f"grid file {source}: 'base' must be a table/object")
    cells_doc = doc.get("cells")
    if not isinstance(cells_doc, list) or not cells_doc:
        raise ValueError(f"grid file {source}: 'cells' must be a non-empty list of "
                         f"tables/objects")
    base_layer, base_train = _split(base, f"grid file {source}: base")
    cells, seen = [], set()
    for i, entry in enumerate(cells_doc):
        where = f"grid file {source}: cells[{i}]"
        if not isinstance(entry, dict):
            raise ValueError(f"{where} must be a table/object, got {type(entry).__name__}")
        entry = dict(entry)
        name = entry.pop("name", None)
        if name is None:
            raise ValueError(f"{where} has no 'name'")
        if name in seen:
            raise ValueError(f"{where}: duplicate cell name {name!r}")
        seen.add(name)
        layer, train = _split(entry, f"{where} ({name!r})")
        try:
            cells.append(Cell(name, layer={**base_layer, **layer},
                              train={**base_train, **train}))
        except ValueError as exc:
            raise ValueError(f"{where}: {exc}") from None
    return cells


def _split(d: dict, where: str) -> tuple[dict, dict]:
    layer, train = {}, {}
    for key, value in d.items():
        if key in LAYER_KEYS:
            layer[key] = value
        elif key in TRAIN_KEYS or key in NETWORK_KEYS:
            train[key] = tuple(value) if key == "hidden" and isinstance(value, list) else value
        elif key == "seed":
            raise ValueError(f"{where}: 'seed' is not a cell field; seeds come from --seeds")
        else:
            raise ValueError(f"{where}: unknown key {key!r}; allowed: layer fields "
                             f"{', '.join(LAYER_KEYS)}; training fields "
                             f"{', '.join(TRAIN_KEYS)}, hidden, arch")
    return layer, train


def load_grid_file(path) -> list[Cell]:
    """Cells from a ``.json`` or ``.toml`` grid file; errors name the file and the key."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"--grid: grid file {path} "
                                + ("is a directory" if path.is_dir() else "does not exist"))
    suffix = path.suffix.lower()
    if suffix not in (".json", ".toml"):
        raise ValueError(f"--grid: grid file {path} must end in .json or .toml")
    kind = suffix[1:].upper()
    try:
        text = path.read_bytes().decode("utf-8")
        doc = json.loads(text) if kind == "JSON" else tomllib.loads(text)
    except (ValueError, UnicodeDecodeError) as exc:  # JSON/TOML decode errors are ValueErrors
        raise ValueError(f"--grid: grid file {path} is not valid {kind}: {exc}") from None
    return parse_grid(doc, str(path))


def resolve_grid(spec: str) -> list[Cell]:
    """``--grid`` value: a built-in grid name or a path to a .json / .toml file."""
    if spec in GRIDS:
        return named_grid(spec)
    if spec.lower().endswith((".json", ".toml")) or Path(spec).exists():
        return load_grid_file(spec)
    return named_grid(spec)
