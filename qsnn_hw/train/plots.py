"""PNG plots of a training run (matplotlib, Agg backend): training curves, each quantized
layer's state level table against its threshold, and membrane traces of a few neurons of
the deployed model on one test sample."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .._io import atomic_write_bytes


def _save(fig, path: Path) -> None:
    import io
    buf = io.BytesIO()
    # Fixed metadata so the same run gives the same PNG bytes.
    fig.savefig(buf, format="png", dpi=100, metadata={"Software": None})
    atomic_write_bytes(path, buf.getvalue())


def write_plots(out_dir, cfg, data, model, net, infos, history) -> list:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .batches import eval_encodings
    from .deployed import run_deployed

    out = Path(out_dir) / "plots"
    out.mkdir(parents=True, exist_ok=True)
    written = []

    # 1. training curves
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    ep = history["epoch"]
    ax1.plot(ep, history["train_loss"], label="train loss")
    ax1.set_xlabel("epoch")
    ax1.set_ylabel(f"{cfg.loss} loss")
    ax1.set_title("loss")
    ax1.legend()
    ax2.plot(ep, history["train_acc"], label="train (training forward)")
    ax2.plot(ep, history["val_acc"], label="validation (deployed integers)")
    ax2.set_xlabel("epoch")
    ax2.set_ylabel("accuracy")
    ax2.set_ylim(0, 1)
    ax2.set_title("accuracy")
    ax2.legend()
    fig.tight_layout()
    _save(fig, out / "training_curves.png")
    plt.close(fig)
    written.append(out / "training_curves.png")

    # 2. level tables against the threshold (float units of the trainer)
    quantized = [(i, info) for i, info in enumerate(infos) if info["levels_float"] is not None]
    if quantized:
        fig, axes = plt.subplots(1, len(quantized), figsize=(5 * len(quantized), 4),
                                 squeeze=False)
        for ax, (i, info) in zip(axes[0], quantized, strict=True):
            lv = np.asarray(info["levels_float"])
            ax.plot(np.arange(lv.size), lv, ".-", label=f"{info['state_family']} levels")
            ax.axhline(info["threshold_float"], color="r", ls="--", label="threshold")
            ax.set_xlabel("code")
            ax.set_ylabel("membrane (float units)")
            ax.set_title(f"layer {i}: {lv.size} levels")
            ax.legend()
        fig.tight_layout()
        _save(fig, out / "state_levels.png")
        plt.close(fig)
        written.append(out / "state_levels.png")

    # 3. membrane traces of a few neurons per layer (deployed model, first test sample)
    _, enc = next(eval_encodings(cfg, data.x_test[:1], 1))
    run = run_deployed(net, enc, trace=True)
    fig, axes = plt.subplots(len(net.layers), 1, figsize=(9, 3 * len(net.layers)),
                             squeeze=False)
    last = len(net.layers) - 1
    for li, (ax, layer, mem, spk) in enumerate(zip(axes[:, 0], net.layers, run.mem, run.spikes,
                                                  strict=True)):
        # the most active neurons (then the closest to firing) are the interesting ones;
        # in the output layer, the true class and the prediction first
        # every neuron's own spikes (a convolution's output is pooled): its level or
        # membrane value above the threshold is exactly the contract's spike
        spk = (mem > layer.threshold).astype(np.uint8)
        order = np.lexsort((-mem[0].max(axis=0), -spk[0].sum(axis=0, dtype=np.int64)))
        first = [int(data.y_test[0]), int(np.argmax(run.counts[0]))] if li == last else []
        pick = list(dict.fromkeys(first + order.tolist()))[:4]
        for n in pick:
            trace = mem[0, :, n] / layer.threshold
            ax.plot(trace, label=f"neuron {n}")
            t_sp = np.nonzero(spk[0, :, n])[0]
            ax.plot(t_sp, trace[t_sp], "k|", ms=10)
        ax.axhline(1.0, color="r", ls="--", lw=1)
        ax.set_ylabel("membrane / threshold")
        ax.legend(fontsize=7, loc="upper right")
    axes[-1, 0].set_xlabel("timestep")
    axes[0, 0].set_title(f"deployed membrane traces, test sample 0 (label {data.y_test[0]})")
    fig.tight_layout()
    _save(fig, out / "membrane_traces.png")
    plt.close(fig)
    written.append(out / "membrane_traces.png")
    return written
