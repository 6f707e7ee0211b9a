"""Damaged artifacts: every byte of a small artifact flipped, and truncations at many
lengths. Each case must load the identical model (a flip in a byte the format ignores)
or fail with :class:`ArtifactError`, never another exception (a traceback for a user)."""

from __future__ import annotations

import numpy as np
import pytest

from qsnn_hw.artifact import Artifact, ArtifactError, load_artifact, save_artifact, to_bytes
from qsnn_hw.testing import random_network


@pytest.fixture(scope="module")
def good(tmp_path_factory):
    net = random_network(np.random.default_rng(3), sizes=[5, 4, 3], state_bits=3)
    path = tmp_path_factory.mktemp("fuzz") / "m.qsnn"
    save_artifact(path, Artifact(net, config={"timesteps": 4}))
    return path.read_bytes(), to_bytes(load_artifact(path))


def _outcome(data: bytes, path, want: bytes) -> str:
    path.write_bytes(data)
    try:
        art = load_artifact(path)
    except ArtifactError:
        return "error"
    assert to_bytes(art) == want, "a damaged file loaded as a different model"
    return "same"


def test_every_byte_flipped(good, tmp_path):
    raw, want = good
    path = tmp_path / "flip.qsnn"
    outcomes = {"same": 0, "error": 0}
    for i in range(len(raw)):
        data = bytearray(raw)
        data[i] ^= 0xFF
        outcomes[_outcome(bytes(data), path, want)] += 1
    assert outcomes["error"] > len(raw) // 2, outcomes


def test_truncations(good, tmp_path):
    raw, want = good
    path = tmp_path / "cut.qsnn"
    for n in sorted(set(np.linspace(0, len(raw) - 1, 97).astype(int).tolist())):
        assert _outcome(raw[:n], path, want) == "error", n


def test_a_directory_is_not_an_artifact(tmp_path):
    with pytest.raises(ArtifactError, match="is a directory; give the model file in it"):
        load_artifact(tmp_path)


def test_random_files(tmp_path):
    """Random bytes of many lengths, with and without the zip signature, and zip files of
    random members: each one line of ArtifactError."""
    import zipfile
    rng = np.random.default_rng(5)
    path = tmp_path / "random.qsnn"
    for n in [0, 1, 3, 4, 22, 100, 1000, 20000]:
        for prefix in (b"", b"PK\x03\x04", b"PK\x05\x06"):
            path.write_bytes(prefix + rng.bytes(n))
            with pytest.raises(ArtifactError):
                load_artifact(path)
    for members in ([("header.json", rng.bytes(50))], [("x.npy", rng.bytes(300))],
                    [("header.json", b'{"format": "qsnn-hw-artifact", "schema_version": 1}')]):
        with zipfile.ZipFile(path, "w") as zf:
            for name, data in members:
                zf.writestr(name, data)
        with pytest.raises(ArtifactError):
            load_artifact(path)


def _rewrite(good_raw: bytes, path, edit):
    """The good artifact with its members rewritten by ``edit(name, data) -> data``."""
    import io
    import zipfile
    src = zipfile.ZipFile(io.BytesIO(good_raw))
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for info in src.infolist():
            zf.writestr(info.filename, edit(info.filename, src.read(info.filename)))


def test_zip_bomb_member_is_refused_before_it_is_inflated(good, tmp_path):
    """A header.json that inflates to 64 MiB (64 kB in the file): refused by its size,
    not read into memory."""
    raw, _ = good
    path = tmp_path / "bomb.qsnn"
    _rewrite(raw, path, lambda n, d: d + b" " * (64 << 20) if n == "header.json" else d)
    assert path.stat().st_size < 1 << 20
    with pytest.raises(ArtifactError, match="member header.json claims 67,1"):
        load_artifact(path)


def test_absurd_array_shape_in_the_header(good, tmp_path):
    """A header that claims a weight array of 10**12 x 10**12 (checksum aside): refused
    by the shape, before any member is read."""
    import json
    raw, _ = good
    path = tmp_path / "shape.qsnn"

    def edit(name, data):
        if name != "header.json":
            return data
        h = json.loads(data)
        first = next(iter(h["arrays"]))
        h["arrays"][first] = [10 ** 12, 10 ** 12]
        return json.dumps(h).encode()

    _rewrite(raw, path, edit)
    with pytest.raises(ArtifactError, match="elements, more than the"):
        load_artifact(path)
