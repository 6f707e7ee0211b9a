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
import tempfile
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import __version__
from .. import progress as qprogress
from .._io import atomic_write_bytes
from ..artifact import Artifact, load_artifact, save_artifact
from ..data.base import Dataset
from .batches import encode_batch, eval_encodings
from .config import TrainConfig
from .deployed import run_deployed
from .encoding import input_bits_for
from .export import deploy
from .losses import count_loss, predict
from .memory import keep_freed_memory
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
    if any(lc.batch_norm for lc in cfg.layers):
        raise ValueError(f"--init {cfg.init}: starting from a NIR graph needs a network "
                         f"without batch normalization (no 'b' in --arch)")
    try:
        n_in, layers = float_layers(cfg.init, cfg.init_dt)
    except InteropError as exc:
        raise ValueError(f"--init {cfg.init}: {exc}") from None
    sizes = [n_in] + [w.shape[0] if geo is None else int(np.prod(geo["out"]))
                      for w, _, _, geo in layers]
    want = [model.n_in] + [layer.n_out for layer in model.layers]
    shapes = [w.shape for w, *_ in layers]
    if sizes != want or shapes != [model.params[layer.key("weight")].shape
                                   for layer in model.layers]:
        raise ValueError(f"--init {cfg.init}: the graph is {'-'.join(map(str, sizes))}, "
                         f"the run {'-'.join(map(str, want))}; give --hidden to match it")
    for layer, (w, b, beta, _) in zip(model.layers, layers, strict=True):
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
    """Training progress (:mod:`qsnn_hw.progress`): a bar over the epochs and one over
    the current epoch's batches, each with its elapsed and remaining time, and the
    per-epoch summary lines between them. ``Progress(None)`` is silent; otherwise the
    bars go to ``stream`` (default stderr) unless progress is quiet."""

    def __init__(self, stream=qprogress.STDERR, summaries: bool = True):
        self.stream, self.summaries = stream, summaries
        self._out = None if stream is qprogress.STDERR else stream
        self._epochs = self._batches = None
        self._epoch = 0

    @property
    def enabled(self) -> bool:
        return self.stream is not None

    def _epoch_bar(self, epoch, epochs):
        if self._epochs is None:
            self._epochs = qprogress.bar(epochs, "train", "epoch", stream=self._out,
                                         initial=epoch - 1)
        return self._epochs

    def batch(self, epoch, epochs, done, total, loss, acc):
        """Batch ``done`` of ``total`` in epoch ``epoch`` (1-based) of ``epochs``."""
        if not self.enabled:
            return
        self._epoch_bar(epoch, epochs)
        if self._batches is None or self._epoch != epoch:
            if self._batches is not None:
                self._batches.close()
            self._batches = qprogress.bar(total, f"epoch {epoch}/{epochs}", "batch",
                                          leave=False, stream=self._out)
            self._epoch = epoch
        self._batches.stage(f"loss {loss:.4f} acc {acc:6.2%}", milestone=False)
        self._batches.set(done)

    def stage(self, text: str):
        """What runs between the batches (validation, the test set)."""
        if self.enabled and self._epochs is not None:
            self._epochs.stage(text, milestone=False)

    def epoch_done(self, done, epochs, text: str):
        """Epoch ``done`` of ``epochs`` finished; ``text`` sums it up."""
        if not self.enabled:
            return
        if self._batches is not None:
            self._batches.close()
            self._batches = None
        bar = self._epoch_bar(done, epochs)
        bar.stage("", milestone=False)
        self.line(text)
        bar.set(done)

    def line(self, text: str):
        if self.enabled:
            qprogress.line(text, self._out)

    def summary(self, text: str):
        """A result: printed even when progress is quiet (unless ``summaries`` is False:
        a step of a larger command, whose own summary counts), never by
        ``Progress(None)``."""
        if self.enabled and self.summaries:
            print(text, file=sys.stderr if self._out is None else self._out, flush=True)
        else:
            self.line(text)

    def close(self):
        for b in (self._batches, self._epochs):
            if b is not None:
                b.close()
        self._batches = self._epochs = None


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
    ``progress``: None shows bars on stderr (:func:`default_progress`; silenced by
    :func:`qsnn_hw.progress.set_quiet`), ``Progress(None)`` shows nothing. Keeps the
    process's freed memory for reuse from here on (:mod:`.memory`; glibc only).
    """
    check_against_data(cfg, data)
    keep_freed_memory()  # every batch reuses the last one's freed arrays (train/memory.py)
    progress = Progress() if progress is None else progress
    try:
        return _fit(cfg, data, checkpoint, resume, progress, dtype)
    finally:
        progress.close()


def _fit(cfg, data, checkpoint, resume, progress, dtype) -> FitResult:
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
        lr = cosine_lr(e, cfg.epochs, cfg.learning_rate, cfg.lr_min)
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
        progress.stage(f"epoch {e + 1}: validating")
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
        progress.epoch_done(e + 1, cfg.epochs,
                            f"epoch {e + 1}/{cfg.epochs} loss {loss:.4f} train {acc:6.2%} "
                            f"val {val:6.2%} (best {st.best_val:6.2%} @ {st.best_epoch}) "
                            f"lr {lr:.2e}")
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


@dataclass
class Trained:
    """One finished training run, in memory: the trained float ``model`` (its best
    validation parameters), the deployed ``artifact`` (integer network, config, metadata,
    layer info) and the test-set ``metrics`` (float, training-time quantized, deployed and
    golden accuracies; the agreements of :func:`golden_check`)."""

    model: SNN
    artifact: Artifact
    metrics: dict
    state: TrainState
    stopped_early: bool


def train(cfg: TrainConfig, data: Dataset, *, checkpoint=None, resume: bool = False,
          progress: Progress | None = None, artifact_path=None, replaces=()) -> Trained:
    """Train, deploy and evaluate ``cfg`` on ``data``. Written: the ``checkpoint`` (if
    given) and the artifact, at ``artifact_path`` (the files in ``replaces``, which
    describe an earlier artifact there, are removed just before it is replaced) or, when
    None, in a temporary directory removed afterwards; either way the golden check reads
    the artifact back from disk."""
    t0 = time.perf_counter()
    progress = Progress() if progress is None else progress
    res = fit(cfg, data, checkpoint=checkpoint, resume=resume, progress=progress)
    if res.diverged:
        raise TrainingDiverged(res.diverged + "; no artifact was written. Continue with "
                               "--resume and a lower --lr (or a smaller --grad-clip)")
    scale, bits = input_format(cfg, data)
    net, infos = deploy(res.model, cfg, scale, bits)
    progress.line("evaluating the test set (float, quantized and deployed) ...")
    test = evaluate(res.model, cfg, data, net)
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
        "history": res.state.history,
        "test": test,
    }
    art = Artifact(net, cfg.to_dict(), metadata, infos)
    with tempfile.TemporaryDirectory(prefix="qsnn-train-") as tmp:
        path = Path(tmp) / "model.qsnn" if artifact_path is None else Path(artifact_path)
        for stale in replaces:
            Path(stale).unlink(missing_ok=True)
        save_artifact(path, art)
        progress.line(f"checking {path.name} against the golden model ...")
        gold = golden_check(path, cfg, data, net, res.model)
    metrics = {**test, **gold, "wall_time_s": time.perf_counter() - t0,
               "epochs_run": res.state.epoch, "best_epoch": res.state.best_epoch,
               "best_val_accuracy": res.state.best_val, "stopped_early": res.stopped_early,
               "diverged": res.diverged,
               **({"artifact": str(artifact_path)} if artifact_path is not None else {}),
               "seed": cfg.seed, "dataset": data.name}
    return Trained(res.model, art, metrics, res.state, res.stopped_early)


def summary_line(metrics: dict) -> str:
    """The one line a finished training prints."""
    return (f"test: float {metrics['float_accuracy']:.2%}  quantized "
            f"{metrics['quantized_accuracy']:.2%}  golden {metrics['golden_accuracy']:.2%}  "
            f"spike agreement {metrics['spike_agreement']:.4%}  trained forward = "
            f"golden on {metrics['trained_spike_agreement']:.4%} of spikes  "
            f"({metrics['wall_time_s']:.1f} s)")


def run_training(cfg: TrainConfig, data: Dataset, out_dir, resume: bool = False,
                 progress: Progress | None = None, plots: bool = True) -> dict:
    """Train, export ``model.qsnn``, evaluate, write ``metrics.json`` (and plots) into
    ``out_dir``. Returns the metrics dict."""
    return train_to_dir(cfg, data, out_dir, resume, progress, plots).metrics


def train_to_dir(cfg: TrainConfig, data: Dataset, out_dir, resume: bool = False,
                 progress: Progress | None = None, plots: bool = True) -> Trained:
    """:func:`run_training`, returning the :class:`Trained` run."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    progress = Progress() if progress is None else progress
    artifact_path = out / "model.qsnn"
    # metrics.json is written last and describes the model.qsnn beside it: an older one
    # goes first, so a crash in between leaves a model without metrics, not a wrong pair
    tr = train(cfg, data, checkpoint=out / "checkpoint.npz", resume=resume,
               progress=progress, artifact_path=artifact_path,
               replaces=[out / "metrics.json"])
    metrics = tr.metrics
    atomic_write_bytes(out / "metrics.json", (json.dumps(metrics, indent=1) + "\n").encode())
    if plots:
        from .plots import write_plots
        progress.line("writing plots ...")
        art = tr.artifact
        write_plots(out, cfg, data, tr.model, art.network, art.layer_info, tr.state.history,
                    tr.state.best_epoch, tr.stopped_early)
    progress.summary(summary_line(metrics))
    return tr


def default_progress() -> Progress:
    """Progress on stderr (the default of :func:`fit` and :func:`run_training`)."""
    return Progress()
