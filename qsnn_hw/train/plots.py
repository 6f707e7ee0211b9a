"""PNG plots of a training run: training curves (best epoch, float warm-up and early stop
marked), each quantized layer's state level table against its threshold, membrane traces
of a few neurons of the deployed model, and a spike raster of one test sample from the
golden model (input, every layer).

Each ``*_figure`` function builds and returns a matplotlib figure (tests read its axes);
:func:`write_plots` saves them as ``plots/*.png``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .._plot import integer_ticks, percent_axis, pyplot, save_png

PLOTS = ("training_curves", "state_levels", "membrane_traces", "spike_raster")


def training_curves_figure(history: dict, loss_name: str, best_epoch: int = 0,
                           stopped_early: bool = False, float_epochs: int = 0):
    """Loss and accuracy per epoch. Marks the best validation epoch (the parameters that
    were exported), the end of a float warm-up and an early stop."""
    plt = pyplot()
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    ep = list(history["epoch"])
    ax1.plot(ep, history["train_loss"], ".-", label="train loss")
    ax1.set_xlabel("epoch")
    ax1.set_ylabel(f"{loss_name} loss")
    ax1.set_title("loss")
    ax2.plot(ep, history["train_acc"], ".-", label="train (training forward)")
    ax2.plot(ep, history["val_acc"], ".-", label="validation (deployed integers)")
    ax2.set_xlabel("epoch")
    ax2.set_ylabel("accuracy")
    ax2.set_title("accuracy")
    percent_axis(ax2, list(history["train_acc"]) + list(history["val_acc"]))
    for ax in (ax1, ax2):
        integer_ticks(ax)
        if 0 < float_epochs < (ep[-1] if ep else 0):
            ax.axvline(float_epochs + 0.5, color="0.5", ls=":", lw=1,
                       label=f"quantization on after epoch {float_epochs}")
    if best_epoch in ep:
        val = history["val_acc"][ep.index(best_epoch)]
        for ax in (ax1, ax2):
            ax.axvline(best_epoch, color="g", ls="--", lw=1,
                       label=f"best: epoch {best_epoch} ({val:.2%} val), exported")
        ax2.plot([best_epoch], [val], "g*", ms=12)
    if stopped_early and ep:
        for ax in (ax1, ax2):
            ax.axvline(ep[-1], color="r", ls="-.", lw=1,
                       label=f"early stop after epoch {ep[-1]}")
    ax1.legend(fontsize=8)
    ax2.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    return fig


def state_levels_figure(infos: list):
    """Each quantized layer's float level table against its threshold; None if no layer
    has quantized states."""
    quantized = [(i, info) for i, info in enumerate(infos) if info["levels_float"] is not None]
    if not quantized:
        return None
    plt = pyplot()
    fig, axes = plt.subplots(1, len(quantized), figsize=(5 * len(quantized), 4), squeeze=False)
    for ax, (i, info) in zip(axes[0], quantized, strict=True):
        lv = np.asarray(info["levels_float"])
        ax.plot(np.arange(lv.size), lv, ".-", label=f"{info['state_family']} levels")
        ax.axhline(info["threshold_float"], color="r", ls="--", label="threshold")
        ax.set_xlabel("state code")
        ax.set_ylabel("membrane (float units)")
        ax.set_title(f"layer {i}: {lv.size} levels")
        integer_ticks(ax)
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def membrane_traces_figure(net, mem: list, neuron_spikes: list, counts, label: int):
    """Membranes of up to four neurons per layer over one sample (``mem[l]``,
    ``neuron_spikes[l]``: (T, neurons)), in units of the threshold, spikes marked: the
    most active neurons, in the output layer the true class and the prediction first."""
    plt = pyplot()
    n_layers = len(net.layers)
    fig, axes = plt.subplots(n_layers, 1, figsize=(11, 2.8 * n_layers), squeeze=False)
    last = n_layers - 1
    pred = int(np.argmax(counts))
    for li, (ax, layer, m, spk) in enumerate(zip(axes[:, 0], net.layers, mem, neuron_spikes,
                                                strict=True)):
        first = [label, pred] if li == last else []
        pick = _spread(m, spk, first)
        for n in pick:
            trace = m[:, n] / layer.threshold
            name = f"neuron {n}"
            if li == last:
                name += " (label)" if n == label else ""
                name += " (prediction)" if n == pred else ""
            ax.plot(trace, ".-", lw=1, ms=3, label=name)
            t_sp = np.nonzero(spk[:, n])[0]
            ax.plot(t_sp, trace[t_sp], "k|", ms=10)
        ax.axhline(1.0, color="r", ls="--", lw=1, label="threshold")
        kind = "output" if li == last else "hidden"
        ax.set_title(f"layer {li} ({kind}, {layer.n_neurons} neurons): {len(pick)} shown, "
                     f"| = spike", fontsize=9)
        ax.set_ylabel("membrane / threshold")
        ax.set_xlabel("timestep")
        integer_ticks(ax)
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.suptitle(f"deployed membrane traces, test sample 0 (label {label}, prediction {pred})",
                 fontsize=10)
    fig.tight_layout()
    return fig


def _spread(m: np.ndarray, spk: np.ndarray, first: list, k: int = 4) -> list:
    """Up to ``k`` neurons worth looking at (``first`` before the others): distinct traces
    spread from the most to the least active (spike count, then peak membrane), so a
    layer whose busiest neurons all saturate alike still shows how the others behave."""
    first = list(dict.fromkeys(first))
    order = np.lexsort((-m.max(axis=0), -spk.sum(axis=0, dtype=np.int64))).tolist()
    distinct, seen = [], set()
    for n in dict.fromkeys(first + order):
        key = m[:, n].tobytes()
        if key not in seen or n in first:
            seen.add(key)
            distinct.append(n)
    rest = distinct[len(first):]
    slots = max(0, k - len(first))
    if len(rest) > slots:
        rest = [rest[round(i * (len(rest) - 1) / max(1, slots - 1))] for i in range(slots)]
    return (distinct[:len(first)] + rest)[:k]


def spike_raster_figure(x: np.ndarray, spikes: list, label: int | None = None):
    """A spike raster of one sample: its input (``x``: (T, M); multi-bit values shaded by
    size) and every layer's output spikes (``spikes[l]``: (T, N_l)), timestep across."""
    plt = pyplot()
    panels = [("input", x)] + [(f"layer {i}" + (" (output)" if i == len(spikes) - 1 else ""),
                                s) for i, s in enumerate(spikes)]
    heights = [max(1.0, min(3.0, p[1].shape[1] / 40)) for p in panels]
    fig, axes = plt.subplots(len(panels), 1, figsize=(9, 1.2 + 1.4 * sum(heights)),
                             sharex=True, squeeze=False,
                             gridspec_kw={"height_ratios": heights})
    for ax, (name, a) in zip(axes[:, 0], panels, strict=True):
        t, n = np.nonzero(a)
        vmax = max(1, int(a.max(initial=0)))
        ax.scatter(t, n, s=6, marker="|", c=a[t, n] / vmax, cmap="Greys", vmin=0, vmax=1,
                   linewidths=1.2)
        ax.set_ylim(-0.5, a.shape[1] - 0.5)
        ax.set_ylabel(f"{name}\nneuron" if name != "input" else "input\nindex")
        ax.set_title(f"{name}: {a.shape[1]} {'inputs' if name == 'input' else 'neurons'}, "
                     f"{int(np.count_nonzero(a))} events", fontsize=9, loc="left")
        integer_ticks(ax, "y")
    axes[-1, 0].set_xlabel("timestep")
    axes[-1, 0].set_xlim(-0.5, panels[0][1].shape[0] - 0.5)
    integer_ticks(axes[-1, 0])
    title = "spike raster of test sample 0, golden model"
    fig.suptitle(title + ("" if label is None else f" (label {label})"), fontsize=10)
    fig.tight_layout()
    return fig


def write_plots(out_dir, cfg, data, model, net, infos, history, best_epoch: int = 0,
                stopped_early: bool = False) -> list:
    """Write ``plots/*.png`` (:data:`PLOTS`; ``state_levels`` only with quantized states)
    into ``out_dir``; returns the paths written."""
    from ..golden import simulate
    from .batches import eval_encodings

    out = Path(out_dir) / "plots"
    out.mkdir(parents=True, exist_ok=True)
    written = [save_png(training_curves_figure(history, cfg.loss, best_epoch, stopped_early,
                                               cfg.float_epochs),
                        out / "training_curves.png")]
    fig = state_levels_figure(infos)
    if fig is not None:
        written.append(save_png(fig, out / "state_levels.png"))

    # the deployed model (the golden model) on the first test sample
    _, enc = next(eval_encodings(cfg, data.x_test[:1], 1))
    x = enc.ints if enc.ints.ndim == 3 else np.repeat(enc.ints[:, None], enc.steps, axis=1)
    gold = simulate(net, x, trace=True)
    label = int(data.y_test[0])
    neuron_spikes = [(m > layer.threshold) if layer.levels is None else
                     (c > layer.threshold_code)
                     for layer, m, c in zip(net.layers, gold.mem, gold.codes, strict=True)]
    written.append(save_png(membrane_traces_figure(
        net, [m[0] for m in gold.mem], [s[0] for s in neuron_spikes], gold.counts[0], label),
        out / "membrane_traces.png"))
    written.append(save_png(spike_raster_figure(x[0], [s[0] for s in gold.spikes], label),
                            out / "spike_raster.png"))
    return written
