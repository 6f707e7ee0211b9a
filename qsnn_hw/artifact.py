"""The deployed-model artifact: one file holding the integer network and everything
needed to reproduce and report it.

Format (schema version 1, or 2 when the network has convolutional layers): a ZIP
archive with fixed timestamps (same content -> same bytes) holding ``header.json`` and
one ``.npy`` entry per integer array. The header
carries the schema version, the integer scalars of every layer, the JSON-able
``config`` (how it was trained and quantized), ``metadata`` (training history, metrics,
dataset) and ``layer_info`` (float scales, float level tables, ...) and a SHA-256
checksum over the header and all array bytes. Files are written atomically.

Schema 2 adds a convolutional layer's ``in_shape``, ``stride``, ``padding`` and
``pool`` to its scalars (its weight array is 4-D). A network of dense layers only is
still written as schema 1, byte for byte as before, so every reader of schema 1 keeps
reading it; a reader of schema 1 refuses a schema-2 file with "upgrade qsnn-hw".

Schema 3 adds TaWQ layers (time-varying ternary weights): the scalar ``tawq_shift`` and
the arrays ``layer{i}.tawq_table`` (n_codes, T) and ``layer{i}.tawq_mult`` (T, channels);
the layer's ``weight`` array holds its codes. Only a network with a TaWQ layer is written
as schema 3; readers of schema 1 and 2 refuse it with "upgrade qsnn-hw".
"""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import __version__
from ._io import atomic_write_bytes
from .contract import IntLayer, IntNetwork

FORMAT = "qsnn-hw-artifact"
SCHEMA_VERSION = 3
# the scalars of a convolutional layer (schema 2)
_CONV_SCALARS = ("in_shape", "stride", "padding", "pool")
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)
_LAYER_SCALARS = ("threshold", "beta_num", "beta_shift", "reset", "frac_bits", "mem_bits")


class ArtifactError(ValueError):
    """The file is not a valid qsnn-hw artifact (message says why and what to do)."""


@dataclass(frozen=True, eq=False)
class Artifact:
    """An exported model: the integer ``network`` plus JSON-able ``config``,
    ``metadata`` and per-layer ``layer_info``."""

    network: IntNetwork
    config: dict = field(default_factory=dict)
    metadata: dict = field(default_factory=dict)
    layer_info: list = field(default_factory=list)

    def __post_init__(self):
        if not isinstance(self.network, IntNetwork):
            raise TypeError(f"network must be an IntNetwork, got {type(self.network).__name__}")
        if self.layer_info and len(self.layer_info) != len(self.network.layers):
            raise ValueError(f"layer_info has {len(self.layer_info)} entries for "
                             f"{len(self.network.layers)} layers")
        for name in ("config", "metadata", "layer_info"):
            try:
                json.dumps(getattr(self, name), allow_nan=False)
            except (TypeError, ValueError) as exc:
                raise ValueError(f"artifact {name} must be JSON-serialisable: {exc}") from None


def _layer_header(layer: IntLayer) -> dict:
    """A layer's scalars; ``rest`` only when it is not the default ``level``, so files
    written before it existed keep their bytes (and their checksum)."""
    spec = {k: getattr(layer, k) for k in _LAYER_SCALARS}
    if layer.rest != "level":
        spec["rest"] = layer.rest
    if layer.is_conv:
        spec.update({k: getattr(layer, k) for k in _CONV_SCALARS})
        spec["in_shape"] = list(layer.in_shape)
    if layer.is_tawq:
        spec["tawq_shift"] = layer.tawq_shift
    return spec


def schema_of(net: IntNetwork) -> int:
    """The schema a network is written with: the oldest that can express it."""
    if any(layer.is_tawq for layer in net.layers):
        return 3
    return 2 if any(layer.is_conv for layer in net.layers) else 1


def _arrays(net: IntNetwork) -> dict[str, np.ndarray]:
    out = {}
    for i, layer in enumerate(net.layers):
        out[f"layer{i}.weight"] = layer.weight
        if layer.bias is not None:
            out[f"layer{i}.bias"] = layer.bias
        if layer.levels is not None:
            out[f"layer{i}.levels"] = layer.levels
        if layer.is_tawq:
            out[f"layer{i}.tawq_table"] = layer.tawq_table
            out[f"layer{i}.tawq_mult"] = layer.tawq_mult
    return {k: np.ascontiguousarray(v, dtype="<i8") for k, v in out.items()}


def _checksum(header: dict, arrays: dict[str, np.ndarray]) -> str:
    h = hashlib.sha256(json.dumps(header, sort_keys=True, allow_nan=False).encode())
    for name in sorted(arrays):
        h.update(name.encode())
        h.update(arrays[name].tobytes())
    return h.hexdigest()


def to_bytes(artifact: Artifact) -> bytes:
    """The artifact file's bytes (deterministic)."""
    net = artifact.network
    arrays = _arrays(net)
    header = {
        "format": FORMAT,
        "schema_version": schema_of(net),
        "writer": f"qsnn-hw {__version__}",
        "network": {
            "input_bits": net.input_bits,
            "layers": [_layer_header(layer) for layer in net.layers],
        },
        "arrays": {k: list(v.shape) for k, v in arrays.items()},
        "config": artifact.config,
        "metadata": artifact.metadata,
        "layer_info": artifact.layer_info,
    }
    header["checksum"] = _checksum(header, arrays)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        def put(name: str, data: bytes) -> None:
            info = zipfile.ZipInfo(name, date_time=_ZIP_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            zf.writestr(info, data)
        put("header.json", json.dumps(header, sort_keys=True, indent=1).encode())
        for name in sorted(arrays):
            npy = io.BytesIO()
            np.save(npy, arrays[name], allow_pickle=False)
            put(f"{name}.npy", npy.getvalue())
    return buf.getvalue()


def save_artifact(path, artifact: Artifact) -> Path:
    """Write ``artifact`` to ``path`` atomically (temp file + rename)."""
    return atomic_write_bytes(path, to_bytes(artifact))


# A damaged or hostile file must not make the loader allocate without bound (a "zip
# bomb": a small member that inflates to gigabytes): every member is read against a limit
# known before reading it.
MAX_HEADER_BYTES = 1 << 20
MAX_ARRAY_ELEMENTS = 1 << 28     # 2 GiB of int64: far above any core's weights
NPY_HEADER_BYTES = 4096


def _npy_limit(shape) -> int:
    """Bytes an ``.npy`` member of int64 ``shape`` may take (the header says the shape)."""
    if not isinstance(shape, list) or not all(isinstance(d, int) and d >= 0 for d in shape):
        raise ArtifactError(f"array shape {shape!r} in the header is not a list of sizes")
    n = int(np.prod(shape, dtype=object)) if shape else 1
    if n > MAX_ARRAY_ELEMENTS:
        raise ArtifactError(f"array shape {shape} in the header has {n:,} elements, more "
                            f"than the {MAX_ARRAY_ELEMENTS:,} an artifact may hold")
    return NPY_HEADER_BYTES + 8 * n


def _member(zf: zipfile.ZipFile, name: str, limit: int) -> bytes:
    """Member ``name``, read only up to ``limit`` bytes: a member that claims or inflates
    to more is an error, before it is allocated."""
    info = zf.getinfo(name)
    if info.file_size > limit:
        raise ArtifactError(f"member {name} claims {info.file_size:,} bytes, more than "
                            f"the {limit:,} it may hold")
    with zf.open(info) as f:
        data = f.read(limit + 1)
    if len(data) > limit:
        raise ArtifactError(f"member {name} inflates past the {limit:,} bytes it may hold")
    return data


def load_artifact(path) -> Artifact:
    """Read and fully validate an artifact; raises :class:`ArtifactError` with the reason."""
    path = Path(path)
    if path.is_dir():
        raise ArtifactError(f"artifact {path} is a directory; give the model file in it "
                            f"(e.g. {path / 'model.qsnn'})")
    if not path.is_file():
        raise ArtifactError(f"artifact {path} does not exist (train one with `qsnn-hw train`)")
    try:
        with zipfile.ZipFile(path) as zf:
            try:
                header = json.loads(_member(zf, "header.json", MAX_HEADER_BYTES))
            except KeyError:
                raise ArtifactError(f"{path}: no header.json; not a qsnn-hw artifact") from None
            if not isinstance(header, dict) or header.get("format") != FORMAT:
                raise ArtifactError(f"{path}: not a qsnn-hw artifact (format tag missing)")
            version = header.get("schema_version")
            if not isinstance(version, int) or version < 1:
                raise ArtifactError(f"{path}: invalid schema_version {version!r}")
            if version > SCHEMA_VERSION:
                raise ArtifactError(
                    f"{path} uses artifact schema {version}, written by a newer qsnn-hw "
                    f"({header.get('writer', '?')}); this qsnn-hw {__version__} reads schema "
                    f"<= {SCHEMA_VERSION}: upgrade qsnn-hw")
            arrays = {}
            for name, shape in header["arrays"].items():
                a = np.load(io.BytesIO(_member(zf, f"{name}.npy", _npy_limit(shape))),
                            allow_pickle=False)
                if a.dtype != np.dtype("<i8") or list(a.shape) != shape:
                    raise ArtifactError(f"{path}: array {name} has dtype {a.dtype} shape "
                                        f"{a.shape}, header says int64 {shape}")
                arrays[name] = a
    except zipfile.BadZipFile as exc:
        raise ArtifactError(f"{path} is truncated or not a qsnn-hw artifact ({exc})") from None
    except (KeyError, TypeError, AttributeError, json.JSONDecodeError, zipfile.LargeZipFile,
            zlib.error, NotImplementedError) as exc:
        # zlib.error: a damaged compressed member; NotImplementedError: a damaged
        # compression-method field (zipfile only knows some methods)
        raise ArtifactError(f"{path}: damaged or malformed artifact "
                            f"({type(exc).__name__}: {exc})") from None
    except (OSError, ValueError, EOFError) as exc:
        if isinstance(exc, ArtifactError):
            if str(path) in str(exc):
                raise
            raise ArtifactError(f"{path}: {exc}") from None
        raise ArtifactError(f"{path}: unreadable artifact ({exc})") from None
    stored = header.pop("checksum", None)
    if stored != _checksum(header, arrays):
        raise ArtifactError(f"{path}: checksum mismatch: the file is corrupted or was edited")
    try:
        layers = []
        for i, spec in enumerate(header["network"]["layers"]):
            conv = {}
            if "in_shape" in spec:
                if version < 2:
                    raise ValueError(f"layer {i} is convolutional, which schema {version} "
                                     f"cannot hold")
                conv = {k: spec[k] for k in _CONV_SCALARS}
                conv["in_shape"] = tuple(conv["in_shape"])
            if "tawq_shift" in spec or f"layer{i}.tawq_table" in arrays:
                if version < 3:
                    raise ValueError(f"layer {i} is a TaWQ layer, which schema {version} "
                                     f"cannot hold")
                conv.update(tawq_shift=spec["tawq_shift"],
                            tawq_table=arrays[f"layer{i}.tawq_table"],
                            tawq_mult=arrays[f"layer{i}.tawq_mult"])
            layers.append(IntLayer(weight=arrays[f"layer{i}.weight"],
                                   bias=arrays.get(f"layer{i}.bias"),
                                   levels=arrays.get(f"layer{i}.levels"),
                                   rest=spec.get("rest", "level"),
                                   **{k: spec[k] for k in _LAYER_SCALARS}, **conv))
        net = IntNetwork(tuple(layers), input_bits=header["network"]["input_bits"])
        return Artifact(net, header["config"], header["metadata"], header["layer_info"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ArtifactError(f"{path}: invalid network in artifact: {exc}") from None
