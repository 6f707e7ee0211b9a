"""Artifact round trip, determinism and every way a file can be bad."""

import io
import json
import zipfile

import numpy as np
import pytest

from qsnn_hw.artifact import (
    Artifact,
    ArtifactError,
    _arrays,
    _checksum,
    load_artifact,
    save_artifact,
    to_bytes,
)
from qsnn_hw.golden import simulate
from qsnn_hw.testing import random_conv_network, random_inputs, random_network


def _artifact(seed=3):
    net = random_network(np.random.default_rng(seed), state_bits=4, bias=True)
    return Artifact(net, {"seed": seed, "lr": 1e-3}, {"accuracy": 0.5},
                    [{"scale": 0.1 * (i + 1)} for i in range(len(net.layers))])


@pytest.mark.parametrize("seed", range(10))
def test_round_trip_runs_identically(tmp_path, seed):
    art = _artifact(seed)
    back = load_artifact(save_artifact(tmp_path / "m.qsnn", art))
    assert back.config == art.config and back.metadata == art.metadata
    assert back.layer_info == art.layer_info
    for a, b in zip(art.network.layers, back.network.layers, strict=True):
        assert np.array_equal(a.weight, b.weight)
        assert (a.threshold, a.beta_num, a.beta_shift, a.reset, a.frac_bits, a.mem_bits) == \
            (b.threshold, b.beta_num, b.beta_shift, b.reset, b.frac_bits, b.mem_bits)
        assert (a.bias is None) == (b.bias is None) and (a.levels is None) == (b.levels is None)
    x = random_inputs(np.random.default_rng(seed), art.network, 3, 6)
    ra, rb = simulate(art.network, x), simulate(back.network, x)
    assert all(np.array_equal(p, q) for p, q in zip(ra.spikes, rb.spikes, strict=True))


def test_same_content_same_bytes():
    assert to_bytes(_artifact()) == to_bytes(_artifact())
    assert to_bytes(_artifact(3)) != to_bytes(_artifact(4))


def test_truncated(tmp_path):
    data = to_bytes(_artifact())
    for cut in (0, 10, len(data) // 2, len(data) - 1):
        p = tmp_path / f"t{cut}.qsnn"
        p.write_bytes(data[:cut])
        with pytest.raises(ArtifactError, match="truncated or not a qsnn-hw artifact"):
            load_artifact(p)


def _rewrite(data: bytes, edit) -> bytes:
    src = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as dst:
        for name in src.namelist():
            dst.writestr(name, edit(name, src.read(name)))
    return out.getvalue()


def test_edited_weight_fails_checksum(tmp_path):
    def edit(name, blob):
        if name == "layer0.weight.npy":
            arr = np.load(io.BytesIO(blob))
            arr.flat[0] += 1
            buf = io.BytesIO()
            np.save(buf, arr)
            return buf.getvalue()
        return blob
    p = tmp_path / "e.qsnn"
    p.write_bytes(_rewrite(to_bytes(_artifact()), edit))
    with pytest.raises(ArtifactError, match="checksum mismatch"):
        load_artifact(p)


def test_flipped_byte_is_detected(tmp_path):
    data = bytearray(to_bytes(_artifact()))
    data[len(data) // 3] ^= 0xFF
    p = tmp_path / "f.qsnn"
    p.write_bytes(bytes(data))
    with pytest.raises(ArtifactError):
        load_artifact(p)


def test_newer_schema(tmp_path):
    def edit(name, blob):
        if name == "header.json":
            h = json.loads(blob)
            h["schema_version"] = 99
            return json.dumps(h).encode()
        return blob
    p = tmp_path / "n.qsnn"
    p.write_bytes(_rewrite(to_bytes(_artifact()), edit))
    with pytest.raises(ArtifactError, match="schema 99, written by a newer qsnn-hw.*upgrade"):
        load_artifact(p)


def test_not_an_artifact_and_missing(tmp_path):
    p = tmp_path / "x.zip"
    with zipfile.ZipFile(p, "w") as zf:
        zf.writestr("hello.txt", "hi")
    with pytest.raises(ArtifactError, match="no header.json"):
        load_artifact(p)
    with pytest.raises(ArtifactError, match="does not exist"):
        load_artifact(tmp_path / "nope.qsnn")


def test_atomic_write_keeps_old_file_on_failure(tmp_path, monkeypatch):
    p = save_artifact(tmp_path / "m.qsnn", _artifact(3))
    good = p.read_bytes()

    def boom(*a, **k):
        raise KeyboardInterrupt
    monkeypatch.setattr("os.replace", boom)
    with pytest.raises(KeyboardInterrupt):
        save_artifact(p, _artifact(4))
    assert p.read_bytes() == good
    assert sorted(x.name for x in tmp_path.iterdir()) == ["m.qsnn"]  # no temp file left


def test_config_must_be_json():
    with pytest.raises(ValueError, match="config must be JSON-serialisable"):
        Artifact(_artifact().network, {"bad": object()})
    with pytest.raises(ValueError, match="NaN|JSON"):
        Artifact(_artifact().network, {}, {"acc": float("nan")})


def _conv_artifact(seed):
    net = random_conv_network(np.random.default_rng(seed))
    return Artifact(net, {"seed": seed}, {}, [{} for _ in net.layers])


@pytest.mark.parametrize("seed", range(6))
def test_conv_round_trip_runs_identically(tmp_path, seed):
    art = _conv_artifact(seed)
    back = load_artifact(save_artifact(tmp_path / "c.qsnn", art))
    for a, b in zip(art.network.layers, back.network.layers, strict=True):
        assert np.array_equal(a.weight, b.weight) and a.weight.shape == b.weight.shape
        assert (a.in_shape, a.stride, a.padding, a.pool) == \
            (b.in_shape, b.stride, b.padding, b.pool)
    x = random_inputs(np.random.default_rng(seed), art.network, 2, 4)
    ra, rb = simulate(art.network, x), simulate(back.network, x)
    assert all(np.array_equal(p, q) for p, q in zip(ra.spikes, rb.spikes, strict=True))


def _header(data: bytes) -> dict:
    return json.loads(zipfile.ZipFile(io.BytesIO(data)).read("header.json"))


def test_schema_is_the_oldest_that_holds_the_network():
    """Dense networks stay schema 1 (older readers keep reading them); a convolution
    needs schema 2."""
    dense = _header(to_bytes(_artifact()))
    assert dense["schema_version"] == 1
    assert all("in_shape" not in spec for spec in dense["network"]["layers"])
    conv = _header(to_bytes(_conv_artifact(1)))
    assert conv["schema_version"] == 2
    assert conv["network"]["layers"][0]["in_shape"] == \
        list(_conv_artifact(1).network.layers[0].in_shape)


def test_convolution_in_a_schema_1_file_is_refused(tmp_path):
    """A schema-1 header cannot carry a convolution (a hand-edited or damaged file)."""
    def edit(name, blob):
        if name == "header.json":
            h = json.loads(blob)
            h["schema_version"] = 1
            h.pop("checksum")
            h["checksum"] = _checksum(h, _arrays(art.network))
            return json.dumps(h).encode()
        return blob
    art = _conv_artifact(2)
    p = tmp_path / "s1.qsnn"
    p.write_bytes(_rewrite(to_bytes(art), edit))
    with pytest.raises(ArtifactError, match="convolutional, which schema 1 cannot hold"):
        load_artifact(p)
