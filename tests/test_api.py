"""The Python API (qsnn_hw.api, docs/python.md): each step is the command's, in memory."""

import json
from unittest import mock

import numpy as np
import pytest

import qsnn_hw as q
from qsnn_hw.artifact import load_artifact
from qsnn_hw.cli import main
from qsnn_hw.errors import UserError
from qsnn_hw.golden import simulate
from qsnn_hw.testing import random_network


@pytest.fixture(scope="module")
def trained():
    net = q.Network("digits", hidden=[12], timesteps=4, max_train_samples=300, seed=3)
    return net.train(epochs=2, quiet=True)


def test_network_options_become_the_training_config():
    net = q.Network("digits", hidden=20, weight_bits=3, state_bits=0, beta=0.8, lr=1e-3,
                    timesteps=5)
    cfg = net.config
    assert [lc.size for lc in cfg.layers] == [20, 10]
    assert all(lc.weight_mode == "qat" and lc.weight_bits == 3 for lc in cfg.layers)
    assert all(lc.state_mode == "none" and lc.beta == 0.8 for lc in cfg.layers)
    assert (cfg.lr, cfg.timesteps) == (1e-3, 5)
    with pytest.raises(TypeError, match="unknown option.*hiddn"):
        q.Network("digits", hiddn=3)
    with pytest.raises(ValueError, match="timesteps must be in"):
        q.Network("digits", timesteps=0)


def test_a_convolutional_network_by_its_arch():
    net = q.Network("digits", arch="4c3p1-mp2-10", timesteps=4, max_train_samples=200,
                    seed=1)
    assert [(lc.size, lc.kernel, lc.padding, lc.pool) for lc in net.config.layers] == \
        [(4, 3, 1, 2), (10, 0, 0, 1)]
    assert "4c3p1-mp2-10" in repr(net)
    with pytest.raises(TypeError, match="not both"):
        q.Network("digits", hidden=[8], arch="4c3-10")
    with pytest.raises(ValueError, match="one neuron per class"):
        q.Network("digits", arch="4c3-8")
    with pytest.raises(ValueError, match="kernel"):
        q.Network("digits", arch="4c9-10")          # a 9x9 kernel on 8x8 digits
    trained = net.train(epochs=1, quiet=True)
    model = trained.deployed
    layer = model.artifact.network.layers[0]
    assert layer.is_conv and layer.pool == 2 and layer.in_shape == (1, 8, 8)
    x, y = model.test_set()
    # the API's encoding and golden run give the accuracy the trainer measured
    assert np.mean(model.predict(x) == y) == pytest.approx(trained.accuracy["golden"])


def test_trained_equals_the_train_command(trained, tmp_path):
    """Same config and seed: the API and `qsnn-hw train` export the same artifact bytes'
    network and the same test metrics."""
    out = tmp_path / "cli"
    assert main(["train", "--out", str(out), "--hidden", "12", "--timesteps", "4",
                 "--max-train-samples", "300", "--seed", "3", "--epochs", "2",
                 "--weight-mode", "qat", "--weight-bits", "4", "--state-mode", "squat",
                 "--state-bits", "4", "--state-family", "exponential", "--no-plots",
                 "--quiet"]) == 0
    cli = load_artifact(out / "model.qsnn")
    for a, b in zip(trained.artifact.network.layers, cli.network.layers, strict=True):
        assert np.array_equal(a.weight, b.weight) and np.array_equal(a.levels, b.levels)
    metrics = json.loads((out / "metrics.json").read_text())
    assert trained.accuracy == {"float": metrics["float_accuracy"],
                                "trained": metrics["fake_quant_accuracy"],
                                "deployed": metrics["quantized_accuracy"],
                                "golden": metrics["golden_accuracy"]}
    assert trained.metrics["trained_spike_agreement"] == 1.0


def test_export_predict_and_reload(trained, tmp_path):
    path = tmp_path / "m.qsnn"
    model = trained.export(path)
    with pytest.raises(UserError, match="exists; pass overwrite=True"):
        trained.export(path)
    x, y = model.test_set(25)
    assert x.shape == (25, 4, 64) and x.dtype == np.int64 and len(y) == 25
    again = q.Model.load(path)
    # the golden model, run here independently of the API, gives the same predictions
    assert np.array_equal(again.predict(x), simulate(load_artifact(path).network, x)
                          .predictions)
    # raw features are encoded as training evaluated them: the same answer
    raw = trained.data.x_test[:25]
    assert np.array_equal(model.predict(raw), model.predict(x))
    # the accuracy over the whole split is the golden accuracy training reported
    xa, ya = model.test_set()
    assert np.mean(model.predict(xa) == ya) == trained.accuracy["golden"]


def test_a_model_without_a_dataset_takes_integer_inputs():
    net = random_network(np.random.default_rng(1), sizes=[6, 5, 3])
    model = q.Model(q.api.Artifact(net))
    x = (np.random.default_rng(2).random((4, 5, 6)) < 0.5).astype(np.int64)
    assert np.array_equal(model.predict(x), simulate(net, x).predictions)
    with pytest.raises(ValueError, match="no training configuration"):
        model.predict(np.zeros((4, 6)))
    with pytest.raises(ValueError, match="does not name a dataset"):
        model.test_set()


@pytest.mark.sim
@pytest.mark.filterwarnings("ignore::amaranth.hdl.UnusedElaboratable")
def test_core_predicts_on_the_rtl_and_catches_a_broken_core(trained, tmp_path):
    import dataclasses

    from qsnn_hw.hdl import update
    from qsnn_hw.hdl.lif import LIFDatapath
    model = trained.deployed
    core = model.core(lanes=3)
    x, _ = model.test_set(3)
    assert np.array_equal(core.predict(x, sim="amaranth"), model.predict(x))
    assert core.last_report["ok"] and core.config.lanes == 3

    class OffByOneLeak(LIFDatapath):
        def __init__(self, layer, **kw):
            super().__init__(dataclasses.replace(layer, beta_shift=layer.beta_shift + 1), **kw)

    with mock.patch.object(update, "LIFDatapath", OffByOneLeak), \
            pytest.raises(AssertionError, match="differs from the golden model"):
        model.core(lanes=3).predict(x, sim="amaranth")
    v, j = core.write(tmp_path)
    assert "module qsnn_core" in v.read_text()
    assert [la["lanes"] for la in json.loads(j.read_text())["layers"]] == [3, 3]
    assert type(core.component()).__name__ == "NetworkTop"


def test_synth_needs_the_model_on_disk(trained):
    with pytest.raises(ValueError, match="export it first"):
        trained.deployed.core().synth("icebreaker", "unused")
