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
