"""The training loop: BPTT with Adam, cosine annealing, gradient clipping, early stopping
on the validation split, checkpoints (atomic, resumable), divergence detection, and the
final export + evaluation (float model, deployed integer model, golden model).

Validation accuracy (early stopping, best-model selection) is measured on the *deployed*
model -- the integers the hardware will run.
"""

from __future__ import annotations

import io
import json
import math
import sys
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import __version__
from .._io import atomic_write_bytes
from ..artifact import Artifact, load_artifact, save_artifact
from ..data.base import Dataset
from .batches import encode_batch, eval_encodings
from .config import TrainConfig
from .deployed import run_deployed
from .encoding import input_bits_for
from .export import deploy
from .losses import count_loss, predict
from .model import SNN
from .optim import Adam, clip_grad_norm, cosine_lr
from .surrogate import SpikeFunction

CHECKPOINT_VERSION = 1
# Schedule settings a resumed run may change (e.g. a lower lr after a divergence).
RESUME_MAY_CHANGE = ("epochs", "lr", "lr_min", "grad_clip", "patience")


class TrainingDiverged(ValueError):
    """Loss or gradients became NaN/inf; the last good checkpoint is kept."""


def build_model(cfg: TrainConfig, n_in: int, dtype=np.float32,
                input_scale: float = 1.0, in_shape=None) -> SNN:
    """The network of ``cfg``, deployed (and trained quantization-aware) with
    ``cfg``'s export settings and ``input_scale`` (:func:`input_format`); ``in_shape``:
    the input image's (C, H, W) (convolutions need it)."""
    spike = SpikeFunction(cfg.surrogate, cfg.surrogate_value)
    model = SNN(n_in, cfg.layers, spike, beta_shift=cfg.beta_shift, dtype=dtype,
                in_shape=in_shape)
    model.set_deployment(cfg, input_scale)
    return model


def init_from_nir(model: SNN, cfg: TrainConfig) -> None:
    """Set ``model``'s parameters to the float network of the NIR graph ``cfg.init``
    (:func:`qsnn_hw.interop.float_layers`); its shape must be the config's."""
    from ..nirgraph import InteropError, float_layers
    if any(lc.is_conv or lc.batch_norm for lc in cfg.layers):
        raise ValueError(f"--init {cfg.init}: starting from a NIR graph needs a network of "
                         f"dense layers without batch normalization (no --arch "
                         f"convolutions or 'b')")
    try:
        n_in, layers = float_layers(cfg.init, cfg.init_dt)
    except InteropError as exc:
        raise ValueError(f"--init {cfg.init}: {exc}") from None
    sizes = [n_in] + [w.shape[0] for w, _, _ in layers]
    want = [model.n_in] + [layer.n_out for layer in model.layers]
    if sizes != want:
        raise ValueError(f"--init {cfg.init}: the graph is {'-'.join(map(str, sizes))}, "
                         f"the run {'-'.join(map(str, want))}; give --hidden to match it")
    for layer, (w, b, beta) in zip(model.layers, layers, strict=True):
        lc = layer.cfg
        if (b is not None) != lc.bias:
            raise ValueError(f"--init {cfg.init}: layer {layer.index} "
                             f"{'has' if b is not None else 'has no'} bias; the run "
                             f"{'has' if lc.bias else 'has none'} (--bias)")
        if lc.threshold != 1.0:
            raise ValueError(f"--init {cfg.init}: imported layers have threshold 1 "
                             f"(thresholds are folded into the weights); give --threshold 1")
        model.params[layer.key("weight")] = w.astype(model.dtype)
        model.params[layer.key("beta")] = np.asarray(beta, dtype=model.dtype)
        if b is not None:
            model.params[layer.key("bias")] = b.astype(model.dtype)


def check_against_data(cfg: TrainConfig, data: Dataset) -> None:
    from .arch import ArchError, geometry
    if cfg.layers[-1].is_conv:
        raise ValueError("the output layer must be dense (one neuron per class), "
                         "not a convolution")
    try:
        geometry(cfg.layers, data.n_in, data.image_shape, f"dataset {data.name}")
    except ArchError as exc:
        raise ValueError(str(exc)) from None
    if cfg.layers[-1].size != data.n_classes:
        raise ValueError(f"the output layer has {cfg.layers[-1].size} neurons but dataset "
                         f"{data.name} has {data.n_classes} classes")
    if data.events and data.x_train.shape[1] != cfg.timesteps:
        raise ValueError(f"event data has {data.x_train.shape[1]} timesteps, config says "
                         f"{cfg.timesteps}")


def input_format(cfg: TrainConfig, data: Dataset) -> tuple[float, int]:
    """``(input scale, deployed input_bits)``."""
    bits = input_bits_for(cfg.encoding, cfg.input_bits, data.events)
    return 1.0 / ((1 << bits) - 1), bits


def float_counts(model: SNN, cfg: TrainConfig, x: np.ndarray, quant: bool,
                 which: int) -> np.ndarray:
    counts = []
    for _, enc in eval_encodings(cfg, x, which):
        outs, _ = model.forward(enc.float_input(model.dtype), cfg.timesteps, quant=quant)
        counts.append(outs[-1].sum(axis=0))
    return np.concatenate(counts)


def deployed_spikes(net, cfg: TrainConfig, x: np.ndarray, which: int, trace: bool = False):
    """Trainer's integer eval: (counts (B, C), list of per-layer spikes (B, T, N))."""
    counts, spikes = [], None
    for _, enc in eval_encodings(cfg, x, which):
        run = run_deployed(net, enc, trace=trace)
        counts.append(run.counts)
        spikes = run.spikes if spikes is None else [np.concatenate([a, b]) for a, b
                                                    in zip(spikes, run.spikes, strict=True)]
    return np.concatenate(counts), spikes


def accuracy(counts: np.ndarray, y: np.ndarray) -> float:
    return float(np.mean(predict(counts) == y)) if len(y) else 0.0


class Progress:
    """Plain-text progress on a stream (stderr): one line per epoch, updated per batch."""

    def __init__(self, stream=None, width: int = 24):
        self.stream = stream
        self.width = width
        self.tty = bool(stream is not None and getattr(stream, "isatty", lambda: False)())

    def batch(self, epoch, epochs, done, total, loss, acc):
        if self.stream is None or not self.tty:
            return
        fill = int(self.width * done / max(total, 1))
        bar = "=" * fill + " " * (self.width - fill)
        self.stream.write(f"\repoch {epoch}/{epochs} [{bar}] {done}/{total} "
                          f"loss {loss:.4f} acc {acc:6.2%}")
        self.stream.flush()

    def line(self, text: str):
        if self.stream is None:
            return
        if self.tty:
            self.stream.write("\r\x1b[K")
        self.stream.write(text + "\n")
        self.stream.flush()


@dataclass
class TrainState:
    epoch: int          # epochs completed
    best_val: float
    best_epoch: int
    bad_epochs: int
    history: dict
    best_params: dict


def _new_history() -> dict:
    return {k: [] for k in ("epoch", "lr", "train_loss", "train_acc", "val_acc",
                            "grad_norm")}


def save_checkpoint(path, cfg: TrainConfig, model: SNN, opt: Adam, rng, st: TrainState):
    meta = {"checkpoint_version": CHECKPOINT_VERSION, "config": cfg.to_dict(),
            "epoch": st.epoch, "best_val": st.best_val, "best_epoch": st.best_epoch,
            "bad_epochs": st.bad_epochs, "history": st.history,
            "rng": rng.bit_generator.state}
    arrays = {f"p.{k}": v for k, v in model.params.items()}
    arrays.update({f"best.{k}": v for k, v in st.best_params.items()})
    arrays.update(opt.state())
    arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    atomic_write_bytes(path, buf.getvalue())


def load_checkpoint(path, cfg: TrainConfig, model: SNN, opt: Adam, rng) -> TrainState:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"--resume: no checkpoint at {path}")
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
        meta = json.loads(arrays.pop("meta").tobytes().decode())
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
        raise ValueError(f"--resume: checkpoint {path} is truncated or corrupted ({exc}); "
                         f"train again without --resume") from None
    if meta.get("checkpoint_version") != CHECKPOINT_VERSION:
        raise ValueError(f"--resume: checkpoint {path} has version "
                         f"{meta.get('checkpoint_version')!r}, expected {CHECKPOINT_VERSION}")
    theirs, ours = meta["config"], json.loads(json.dumps(cfg.to_dict()))
    diff = sorted(k for k in set(theirs) | set(ours)
                  if theirs.get(k) != ours.get(k) and k not in RESUME_MAY_CHANGE)
    if diff:
        raise ValueError(f"--resume: checkpoint {path} was made with a different config "
                         f"(differs in: {', '.join(diff)}); use the same flags or a new --out")
    model.params = {k[2:]: v for k, v in arrays.items() if k.startswith("p.")}
    best = {k[5:]: v for k, v in arrays.items() if k.startswith("best.")}
    opt.load_state({k: v for k, v in arrays.items() if k.startswith("adam.")})
    rng.bit_generator.state = meta["rng"]
    return TrainState(meta["epoch"], meta["best_val"], meta["best_epoch"], meta["bad_epochs"],
                      meta["history"], best)


def _train_epoch(model, cfg, data, opt, rng, lr, epoch, progress):
    n = len(data.y_train)
    if cfg.max_train_samples:
        n = min(n, cfg.max_train_samples)
    order = rng.permutation(len(data.y_train))[:n]
    batches = math.ceil(n / cfg.batch_size)
    tot_loss, correct, seen, max_norm = 0.0, 0, 0, 0.0
    for bi in range(batches):
        idx = order[bi * cfg.batch_size:(bi + 1) * cfg.batch_size]
        enc = encode_batch(cfg, data.x_train[idx], rng)
        y = data.y_train[idx]
        try:
            outs, caches = model.forward(enc.float_input(model.dtype), cfg.timesteps,
                                         quant=epoch >= cfg.float_epochs, keep=True,
                                         train=True)
        except ValueError as exc:  # NaN membrane in the state quantizer
            raise TrainingDiverged(f"epoch {epoch + 1}, batch {bi + 1}: {exc}") from None
        counts = outs[-1].sum(axis=0)
        loss, dcounts = count_loss(cfg.loss, counts, y, cfg.timesteps, cfg.correct_rate,
                                   cfg.incorrect_rate)
        if not math.isfinite(loss):
            raise TrainingDiverged(f"epoch {epoch + 1}, batch {bi + 1}: loss is {loss}")
        d_out = np.broadcast_to(dcounts, (cfg.timesteps,) + dcounts.shape)
        grads = model.backward(caches, d_out)
        norm = clip_grad_norm(grads, cfg.grad_clip)
        if not math.isfinite(norm):
            raise TrainingDiverged(f"epoch {epoch + 1}, batch {bi + 1}: gradient norm is {norm}")
        max_norm = max(max_norm, norm)
        opt.step(model.params, grads, lr)
        model.clamp()
        if not all(np.all(np.isfinite(p)) for p in model.params.values()):
            raise TrainingDiverged(f"epoch {epoch + 1}, batch {bi + 1}: parameters became "
                                   f"NaN/inf")
        tot_loss += loss * len(y)
        correct += int(np.sum(predict(counts) == y))
        seen += len(y)
        progress.batch(epoch + 1, cfg.epochs, bi + 1, batches, tot_loss / seen, correct / seen)
    return tot_loss / seen, correct / seen, max_norm


@dataclass
class FitResult:
    model: SNN
    state: TrainState
    stopped_early: bool
    diverged: str | None


def fit(cfg: TrainConfig, data: Dataset, checkpoint=None, resume: bool = False,
        progress: Progress | None = None, dtype=np.float32) -> FitResult:
    """Train; returns the model holding the best-validation parameters.

    ``checkpoint``: path written (atomically) after every epoch; with ``resume`` training
    continues from it. On divergence training stops, the checkpoint keeps the last good
    epoch, and the result's ``diverged`` says why (the caller decides whether to export).
    """
    check_against_data(cfg, data)
    progress = progress or Progress(None)
    scale, bits = input_format(cfg, data)
    model = build_model(cfg, data.n_in, dtype, scale, data.image_shape)
    rng = np.random.default_rng(cfg.seed)
    model.init_params(rng, cfg.init_scale)
    if cfg.init:
        init_from_nir(model, cfg)
    opt = Adam()
    deploy(model, cfg, scale, bits)  # fail fast if this config cannot be exported at all
    if resume:
        st = load_checkpoint(checkpoint, cfg, model, opt, rng)
        progress.line(f"resumed from {checkpoint} after epoch {st.epoch}")
    else:
        st = TrainState(0, -1.0, 0, 0, _new_history(),
                        {k: v.copy() for k, v in model.params.items()})
        if cfg.init:
            # the imported network, quantized as this run deploys it (its PTQ), is the
            # first candidate: fine-tuning keeps it unless an epoch validates better
            net, _ = deploy(model, cfg, scale, bits)
            st.best_val = accuracy(deployed_spikes(net, cfg, data.x_val, which=0)[0],
                                   data.y_val)
            progress.line(f"initial network from {cfg.init}: val {st.best_val:6.2%} "
                          f"(deployed, epoch 0)")
    stopped_early, diverged = False, None
    while st.epoch < cfg.epochs and st.bad_epochs < cfg.patience:
        e = st.epoch
        if e == cfg.float_epochs and e > 0:
            st.bad_epochs = 0  # patience restarts when quantization switches on
        lr = cosine_lr(e, cfg.epochs, cfg.lr, cfg.lr_min)
        try:
            loss, acc, gnorm = _train_epoch(model, cfg, data, opt, rng, lr, e, progress)
        except TrainingDiverged as exc:
            diverged = (f"training diverged at {exc}; stopped after the last good epoch "
                        f"({st.epoch})" + (f", whose checkpoint is kept at {checkpoint}"
                                           if checkpoint else ""))
            progress.line(diverged)
            if checkpoint and Path(checkpoint).is_file():
                load_checkpoint(checkpoint, cfg, model, opt, rng)
            break
        net, _ = deploy(model, cfg, scale, bits)
        val_counts, _ = deployed_spikes(net, cfg, data.x_val, which=0)
        val = accuracy(val_counts, data.y_val)
        h = st.history
        h["epoch"].append(e + 1)
        h["lr"].append(lr)
        h["train_loss"].append(loss)
        h["train_acc"].append(acc)
        h["val_acc"].append(val)
        h["grad_norm"].append(gnorm)
        if val > st.best_val:
            st.best_val, st.best_epoch, st.bad_epochs = val, e + 1, 0
            st.best_params = {k: v.copy() for k, v in model.params.items()}
        else:
            st.bad_epochs += 1
        st.epoch = e + 1
        progress.line(f"epoch {e + 1}/{cfg.epochs} loss {loss:.4f} train {acc:6.2%} "
                      f"val {val:6.2%} (best {st.best_val:6.2%} @ {st.best_epoch}) lr {lr:.2e}")
        if checkpoint:
            save_checkpoint(checkpoint, cfg, model, opt, rng, st)
    if st.bad_epochs >= cfg.patience and st.epoch < cfg.epochs:
        stopped_early = True
        progress.line(f"early stop: no better validation accuracy for {cfg.patience} epochs")
    model.params = {k: v.copy() for k, v in st.best_params.items()}
    return FitResult(model, st, stopped_early, diverged)


def evaluate(model: SNN, cfg: TrainConfig, data: Dataset, net) -> dict:
    """Test-set accuracies of the float model, the training-time quantized model and the
    deployed integer model (trainer's integer path)."""
    x, y = data.x_test, data.y_test
    out = {"float_accuracy": accuracy(float_counts(model, cfg, x, False, 1), y)}
    out["fake_quant_accuracy"] = (accuracy(float_counts(model, cfg, x, True, 1), y)
                                  if cfg.quantized else out["float_accuracy"])
    counts, _ = deployed_spikes(net, cfg, x, which=1)
    out["quantized_accuracy"] = accuracy(counts, y)
    return out


def golden_check(artifact_path, cfg: TrainConfig, data: Dataset, net_trainer,
                 model: SNN | None = None) -> dict:
    """Load the artifact from disk, run the golden model on the test set and compare its
    spikes with the trainer's integer eval path (``spike_agreement``) and, given the
    trained ``model``, with the trained network's own forward pass on its deployed grid
    (``trained_spike_agreement``, per layer in ``trained_layer_agreement``)."""
    from ..golden import simulate
    art = load_artifact(artifact_path)
    x, y = data.x_test, data.y_test
    n_layers = len(art.network.layers)
    g_counts, equal, total, out_equal, out_total = [], 0, 0, 0, 0
    t_equal, t_total = np.zeros(n_layers, np.int64), np.zeros(n_layers, np.int64)
    for _, enc in eval_encodings(cfg, x, 1):
        g = simulate(art.network, enc.golden_input())
        mine = run_deployed(net_trainer, enc)
        g_counts.append(g.counts)
        for a, b in zip(g.spikes, mine.spikes, strict=True):
            equal += int(np.sum(a == b))
            total += a.size
        out_equal += int(np.sum(g.spikes[-1] == mine.spikes[-1]))
        out_total += g.spikes[-1].size
        if model is not None:
            outs, _ = model.forward(enc.float_input(model.dtype), cfg.timesteps,
                                    deployed=True)
            for i, (a, z) in enumerate(zip(g.spikes, outs, strict=True)):
                t_equal[i] += int(np.sum(a == z.transpose(1, 0, 2)))
                t_total[i] += a.size
    counts = np.concatenate(g_counts)
    out = {"golden_accuracy": accuracy(counts, y),
           "spike_agreement": equal / max(total, 1),
           "output_spike_agreement": out_equal / max(out_total, 1)}
    if model is not None:
        out["trained_spike_agreement"] = int(t_equal.sum()) / max(int(t_total.sum()), 1)
        out["trained_layer_agreement"] = [int(e) / max(int(n), 1)
                                          for e, n in zip(t_equal, t_total, strict=True)]
    return out


def run_training(cfg: TrainConfig, data: Dataset, out_dir, resume: bool = False,
                 progress: Progress | None = None, plots: bool = True) -> dict:
    """Train, export ``model.qsnn``, evaluate, write ``metrics.json`` (and plots) into
    ``out_dir``. Returns the metrics dict."""
    t0 = time.perf_counter()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    progress = progress or Progress(None)
    ckpt = out / "checkpoint.npz"
    res = fit(cfg, data, checkpoint=ckpt, resume=resume, progress=progress)
    if res.diverged:
        raise TrainingDiverged(res.diverged + "; no artifact was written. Continue with "
                               "--resume and a lower --lr (or a smaller --grad-clip)")
    scale, bits = input_format(cfg, data)
    net, infos = deploy(res.model, cfg, scale, bits)
    test = evaluate(res.model, cfg, data, net)
    h = res.state.history
    metadata = {
        "trainer": f"qsnn-hw {__version__} (NumPy BPTT)",
        "dataset": data.summary(),
        "timesteps": cfg.timesteps,
        "encoding": "events" if data.events else cfg.encoding,
        "input_scale": scale,
        "epochs_run": res.state.epoch,
        "best_epoch": res.state.best_epoch,
        "best_val_accuracy": res.state.best_val,
        "stopped_early": res.stopped_early,
        "diverged": res.diverged,
        "history": h,
        "test": test,
    }
    artifact_path = out / "model.qsnn"
    # metrics.json is written last and describes the model.qsnn beside it: an older one
    # goes first, so a crash in between leaves a model without metrics, not a wrong pair
    (out / "metrics.json").unlink(missing_ok=True)
    save_artifact(artifact_path, Artifact(net, cfg.to_dict(), metadata, infos))
    gold = golden_check(artifact_path, cfg, data, net, res.model)
    metrics = {**test, **gold, "wall_time_s": time.perf_counter() - t0,
               "epochs_run": res.state.epoch, "best_epoch": res.state.best_epoch,
               "best_val_accuracy": res.state.best_val, "stopped_early": res.stopped_early,
               "diverged": res.diverged, "artifact": str(artifact_path),
               "seed": cfg.seed, "dataset": data.name}
    atomic_write_bytes(out / "metrics.json", (json.dumps(metrics, indent=1) + "\n").encode())
    if plots:
        from .plots import write_plots
        write_plots(out, cfg, data, res.model, net, infos, h)
    progress.line(f"test: float {test['float_accuracy']:.2%}  quantized "
                  f"{test['quantized_accuracy']:.2%}  golden {gold['golden_accuracy']:.2%}  "
                  f"spike agreement {gold['spike_agreement']:.4%}  trained forward = "
                  f"golden on {gold['trained_spike_agreement']:.4%} of spikes  "
                  f"({metrics['wall_time_s']:.1f} s)")
    return metrics


def default_progress() -> Progress:
    return Progress(sys.stderr)
