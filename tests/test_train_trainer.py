"""The training loop: reproducibility, resume after Ctrl-C, divergence handling, and the
`qsnn-hw train` command line (outputs, flag validation)."""

import json
import subprocess
import sys

import numpy as np
import pytest
from test_plots import assert_png_has_content

from qsnn_hw.artifact import load_artifact
from qsnn_hw.cli import main
from qsnn_hw.data import load_dataset
from qsnn_hw.golden import simulate
from qsnn_hw.train import trainer
from qsnn_hw.train.config import LayerConfig, TrainConfig
from qsnn_hw.train.encoding import encode
from qsnn_hw.train.plots import PLOTS

SMALL = dict(layers=(LayerConfig(24, weight_mode="qat", weight_bits=4, state_mode="squat",
                                 state_bits=4),
                     LayerConfig(10, weight_mode="qat", weight_bits=4, state_mode="squat",
                                 state_bits=4)),
             timesteps=6, epochs=4, max_train_samples=300)


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


def test_same_seed_same_artifact_bytes(digits, tmp_path):
    cfg = TrainConfig(**SMALL, encoding="rate")
    trainer.run_training(cfg, digits, tmp_path / "a", plots=False)
    trainer.run_training(cfg, digits, tmp_path / "b", plots=False)
    a = (tmp_path / "a" / "model.qsnn").read_bytes()
    assert a == (tmp_path / "b" / "model.qsnn").read_bytes()
    trainer.run_training(TrainConfig(**SMALL, encoding="rate", seed=1), digits,
                         tmp_path / "c", plots=False)
    assert a != (tmp_path / "c" / "model.qsnn").read_bytes()


class _InterruptAt(trainer.Progress):
    """Raises KeyboardInterrupt in the middle of epoch ``epoch`` (as Ctrl-C would)."""

    def __init__(self, epoch):
        super().__init__(None)
        self.epoch = epoch

    def batch(self, epoch, epochs, done, total, loss, acc):
        if epoch == self.epoch and done == 2:
            raise KeyboardInterrupt


def test_ctrl_c_keeps_checkpoint_and_resume_gives_same_artifact(digits, tmp_path):
    cfg = TrainConfig(**SMALL, encoding="rate")
    trainer.run_training(cfg, digits, tmp_path / "straight", plots=False)
    with pytest.raises(KeyboardInterrupt):
        trainer.run_training(cfg, digits, tmp_path / "cut", progress=_InterruptAt(3),
                             plots=False)
    assert not (tmp_path / "cut" / "model.qsnn").exists()
    ckpt = tmp_path / "cut" / "checkpoint.npz"
    with np.load(ckpt) as z:
        meta = json.loads(z["meta"].tobytes())
    assert meta["epoch"] == 2
    trainer.run_training(cfg, digits, tmp_path / "cut", resume=True, plots=False)
    assert (tmp_path / "cut" / "model.qsnn").read_bytes() == \
        (tmp_path / "straight" / "model.qsnn").read_bytes()
    # a different model config cannot resume from it
    other = TrainConfig(**{**SMALL, "timesteps": 7}, encoding="rate")
    with pytest.raises(ValueError, match="different config.*timesteps"):
        trainer.run_training(other, digits, tmp_path / "cut", resume=True, plots=False)


def test_nan_loss_stops_and_keeps_last_good_checkpoint(digits, tmp_path, monkeypatch):
    real = trainer.count_loss
    calls = {"n": 0}
    per_epoch = -(-300 // TrainConfig().batch_size)

    def poisoned(*a, **k):
        calls["n"] += 1
        loss, g = real(*a, **k)
        return (float("nan"), g) if calls["n"] > 2 * per_epoch + 1 else (loss, g)

    monkeypatch.setattr(trainer, "count_loss", poisoned)
    with pytest.raises(trainer.TrainingDiverged,
                       match=r"at epoch 3, batch 2: loss is nan.*last good epoch \(2\).*--resume"):
        trainer.run_training(TrainConfig(**SMALL), digits, tmp_path, plots=False)
    with np.load(tmp_path / "checkpoint.npz") as z:
        meta = json.loads(z["meta"].tobytes())
        assert meta["epoch"] == 2
        assert all(np.all(np.isfinite(z[k])) for k in z.files if k.startswith("p."))
    assert not (tmp_path / "model.qsnn").exists()


def test_cli_train_writes_artifact_metrics_and_plots(tmp_path):
    out = tmp_path / "run"
    rc = main(["train", "--out", str(out), "--epochs", "2", "--hidden", "32",
               "--timesteps", "8", "--weight-mode", "qat", "--weight-bits", "3,4",
               "--state-mode", "squat", "--state-bits", "5,4", "--quiet"])
    assert rc == 0
    m = json.loads((out / "metrics.json").read_text())
    for key in ("float_accuracy", "quantized_accuracy", "golden_accuracy", "spike_agreement",
                "wall_time_s"):
        assert key in m
    assert m["spike_agreement"] == 1.0
    for png in PLOTS:
        assert_png_has_content(out / "plots" / f"{png}.png")
    # The golden model loads the artifact directly and reproduces the reported accuracy.
    art = load_artifact(out / "model.qsnn")
    assert [lay.state_bits for lay in art.network.layers] == [5, 4]
    assert [lay.weight_bits for lay in art.network.layers][0] <= 3
    data = load_dataset("digits")
    enc = encode(data.x_test, "direct", 8, art.config["input_bits"])
    pred = simulate(art.network, enc.golden_input()).predictions
    assert np.mean(pred == data.y_test) == pytest.approx(m["golden_accuracy"])
    assert art.metadata["test"]["quantized_accuracy"] == m["quantized_accuracy"]
    # the artifact's config is the full training config
    cfg = TrainConfig.from_dict(art.config)
    assert [lc.weight_bits for lc in cfg.layers] == [3, 4] and cfg.timesteps == 8


@pytest.mark.parametrize("flags,message", [
    (["--state-bits", "0"], "argument --state-bits: must be an integer in [1, 16], got 0"),
    (["--weight-bits", "17"], "argument --weight-bits: must be an integer in [2, 16], got 17"),
    (["--beta", "1.5"], "argument --beta: must be a number in (0, 1], got 1.5"),
    (["--lr", "0"], "argument --lr: must be 'auto' or a number in (0, 10], got 0"),
    (["--state-family", "log"], "argument --state-family: must be one of uniform, "
                                "exponential, snntorch, snntorch_exponential; got 'log'"),
    (["--weight-bits", "4,4,4"], "--weight-bits has 3 values but the network has 2 layers"),
    (["--timesteps", "x"], "argument --timesteps: must be an integer in [1, 10000], got 'x'"),
    (["--lr", "0.001", "--lr-min", "0.01"], "--lr-min (0.01) must not exceed --lr (0.001)"),
    (["--dataset", "fashion_mnist", "--data-dir", "/nonexistent"],
     "t10k-images-idx3-ubyte.gz"),
    (["--resume"], "--resume: no checkpoint at"),
    (["--weight-mode", "qat", "--weight-bits", "2", "--state-mode", "squat",
      "--state-bits", "8", "--frac-bits", "0"], "more fractional bit"),
    (["--out", __file__], "is a file, not a directory"),
])
def test_cli_bad_flags_exit_2_naming_the_flag(flags, message, tmp_path, capsys):
    try:
        rc = main(["train", "--out", str(tmp_path / "run"), "--epochs", "1", *flags])
    except SystemExit as exc:  # argparse rejects a flag value
        rc = exc.code
    assert rc == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "run" / "model.qsnn").exists()


def test_cli_module_entry_point_reports_errors():
    r = subprocess.run([sys.executable, "-m", "qsnn_hw.cli", "train", "--epochs", "0"],
                       capture_output=True, text=True)
    assert r.returncode == 2
    assert "argument --epochs: must be an integer in [1, 100000], got 0" in r.stderr


def test_float_epochs_train_like_ptq(digits, tmp_path):
    # With every epoch in float warm-up, QAT/SQUAT never switch on: the deployed integers
    # must equal those of a PTQ run (trained in float, quantized at export).
    def layers(wm, sm):
        return tuple(LayerConfig(n, weight_mode=wm, weight_bits=3, state_mode=sm,
                                 state_bits=3) for n in (24, 10))

    base = dict(timesteps=6, epochs=2, max_train_samples=200)
    trainer.run_training(TrainConfig(layers=layers("qat", "squat"), float_epochs=2, **base),
                         digits, tmp_path / "warm", plots=False)
    trainer.run_training(TrainConfig(layers=layers("ptq", "ptq"), **base), digits,
                         tmp_path / "ptq", plots=False)
    a = load_artifact(tmp_path / "warm" / "model.qsnn").network
    b = load_artifact(tmp_path / "ptq" / "model.qsnn").network
    for la, lb in zip(a.layers, b.layers, strict=True):
        np.testing.assert_array_equal(la.weight, lb.weight)
        np.testing.assert_array_equal(la.levels, lb.levels)
        assert la.threshold == lb.threshold


def test_resume_from_corrupted_checkpoint_is_a_clear_error(digits, tmp_path):
    cfg = TrainConfig(**{**SMALL, "epochs": 1})
    trainer.run_training(cfg, digits, tmp_path, plots=False)
    ckpt = tmp_path / "checkpoint.npz"
    raw = ckpt.read_bytes()
    for bad in (raw[: len(raw) // 2], b"garbage"):
        ckpt.write_bytes(bad)
        with pytest.raises(ValueError, match="truncated or corrupted"):
            trainer.run_training(cfg, digits, tmp_path, resume=True, plots=False)


def test_auto_learning_rate_follows_the_narrowest_trained_width():
    """lr "auto" (the default): 1e-3 when any layer trains weights or states at <= 2 bits,
    else 3e-3; a number is used as given, and lr_min is checked against the rate used."""
    from qsnn_hw.train.config import LR_NARROW, LR_WIDE
    q4 = LayerConfig(8, weight_mode="qat", weight_bits=4, state_mode="squat", state_bits=4)
    q2 = LayerConfig(8, weight_mode="qat", weight_bits=4, state_mode="squat", state_bits=2)
    ptq2 = LayerConfig(8, weight_mode="ptq", weight_bits=2)
    assert TrainConfig(layers=(q4, q4)).learning_rate == LR_WIDE == 3e-3
    assert TrainConfig(layers=(q4, q2)).learning_rate == LR_NARROW == 1e-3
    assert TrainConfig(layers=(ptq2, LayerConfig(10))).learning_rate == LR_WIDE  # not trained
    assert TrainConfig(layers=(q2, q2), lr=0.01).learning_rate == 0.01
    with pytest.raises(ValueError, match=r"lr_min must be a finite number in \[0, 0.001\]"):
        TrainConfig(layers=(q2, q2), lr_min=0.002)
