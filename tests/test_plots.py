"""Every PNG qsnn-hw writes: built with labelled axes, and saved with visible content."""

import numpy as np
import pytest

from qsnn_hw._plot import pyplot, save_png
from qsnn_hw.golden import simulate
from qsnn_hw.testing import random_inputs, random_network
from qsnn_hw.train.plots import (
    membrane_traces_figure,
    spike_raster_figure,
    state_levels_figure,
    training_curves_figure,
)


def assert_png_has_content(path, min_ink=0.01):
    """A readable PNG of a sensible size whose pixels are not (nearly) all one colour."""
    import matplotlib.image as mpimg

    img = mpimg.imread(path)
    assert img.ndim == 3 and img.shape[0] >= 200 and img.shape[1] >= 200, img.shape
    rgb = img[..., :3]
    ink = np.mean(np.any(np.abs(rgb - rgb[0, 0]) > 0.1, axis=-1))
    assert ink > min_ink, f"{path}: only {ink:.2%} of the pixels differ from the background"
    assert len(np.unique(rgb.reshape(-1, 3).round(2), axis=0)) > 8, f"{path}: too few colours"


def _labels(fig):
    return [(ax.get_xlabel(), ax.get_ylabel()) for ax in fig.axes]


HISTORY = {"epoch": [1, 2, 3, 4, 5, 6], "train_loss": [2.0, 1.2, 0.8, 0.7, 0.65, 0.6],
           "train_acc": [0.6, 0.9, 0.95, 0.96, 0.97, 0.975],
           "val_acc": [0.62, 0.91, 0.96, 0.98, 0.97, 0.965]}


def test_training_curves_mark_best_epoch_and_early_stop(tmp_path):
    fig = training_curves_figure(HISTORY, "ce", best_epoch=4, stopped_early=True,
                                 float_epochs=2)
    loss_ax, acc_ax = fig.axes
    assert _labels(fig) == [("epoch", "ce loss"), ("epoch", "accuracy")]
    legend = [t.get_text() for t in acc_ax.get_legend().get_texts()]
    assert any("best: epoch 4 (98.00% val)" in t for t in legend)
    assert any("early stop after epoch 6" in t for t in legend)
    assert any("quantization on after epoch 2" in t for t in legend)
    # a readable accuracy scale: zoomed around the data, in percent, not 0..1
    lo, hi = acc_ax.get_ylim()
    assert 0.5 < lo < 0.62 and 0.975 < hi <= 1.0
    assert acc_ax.yaxis.get_major_formatter()(0.5, 0).endswith("%")
    # whole epochs only
    fig.canvas.draw()
    ticks = [t for t in loss_ax.get_xticks() if 1 <= t <= 6]
    assert ticks and all(float(t).is_integer() for t in ticks)
    assert_png_has_content(save_png(fig, tmp_path / "curves.png"))


def test_training_curves_without_early_stop_have_no_such_mark():
    fig = training_curves_figure(HISTORY, "ce", best_epoch=4, stopped_early=False)
    legend = [t.get_text() for t in fig.axes[1].get_legend().get_texts()]
    assert not any("early stop" in t for t in legend)
    assert not any("quantization on" in t for t in legend)
    pyplot().close(fig)


def test_state_levels_figure(tmp_path):
    infos = [{"levels_float": [-1.0, -0.2, 0.0, 0.5, 0.9, 1.0, 1.1, 1.6],
              "state_family": "exponential", "threshold_float": 1.0},
             {"levels_float": None}]
    fig = state_levels_figure(infos)
    assert _labels(fig) == [("state code", "membrane (float units)")]
    assert fig.axes[0].get_title() == "layer 0: 8 levels"
    assert_png_has_content(save_png(fig, tmp_path / "levels.png"))
    assert state_levels_figure([{"levels_float": None}]) is None


def _network_run(seed=5):
    rng = np.random.default_rng(seed)
    net = random_network(rng, sizes=[12, 10, 4], state_bits=4, input_bits=1)
    x = random_inputs(rng, net, 1, 16, density=0.5)
    return net, x, simulate(net, x, trace=True)


def test_membrane_traces_label_every_panel(tmp_path):
    net, x, res = _network_run()
    spikes = [c[0] > layer.threshold_code for layer, c in zip(net.layers, res.codes,
                                                                strict=True)]
    fig = membrane_traces_figure(net, [m[0] for m in res.mem], spikes, res.counts[0], label=2)
    assert len(fig.axes) == 2
    for i, ax in enumerate(fig.axes):
        assert ax.get_ylabel() == "membrane / threshold" and ax.get_xlabel() == "timestep"
        assert ax.get_title().startswith(f"layer {i} (")
        assert len(ax.get_lines()) >= 3           # traces, spike marks, threshold
    out_legend = [t.get_text() for t in fig.axes[1].get_legend().get_texts()]
    assert "neuron 2 (label)" in out_legend[0]
    assert_png_has_content(save_png(fig, tmp_path / "traces.png"))


def test_spike_raster_shows_input_and_every_layer(tmp_path):
    net, x, res = _network_run()
    fig = spike_raster_figure(x[0], [s[0] for s in res.spikes], label=1)
    assert [ax.get_ylabel() for ax in fig.axes] == ["input\nindex", "layer 0\nneuron",
                                                     "layer 1 (output)\nneuron"]
    assert fig.axes[-1].get_xlabel() == "timestep"
    # each panel holds exactly the events of its array
    for ax, a in zip(fig.axes, [x[0]] + [s[0] for s in res.spikes], strict=True):
        assert len(ax.collections[0].get_offsets()) == np.count_nonzero(a)
    assert_png_has_content(save_png(fig, tmp_path / "raster.png"))


@pytest.mark.parametrize("bits", [1, 4])
def test_spike_raster_multibit_input(bits, tmp_path):
    rng = np.random.default_rng(bits)
    net = random_network(rng, sizes=[6, 5, 3], input_bits=bits)
    x = random_inputs(rng, net, 1, 8, density=0.7)
    res = simulate(net, x)
    fig = spike_raster_figure(x[0], [s[0] for s in res.spikes])
    assert len(fig.axes[0].collections[0].get_offsets()) == np.count_nonzero(x[0])
    save_png(fig, tmp_path / "r.png")


def test_trace_picks_are_distinct_and_spread():
    from qsnn_hw.train.plots import _spread
    steps = np.arange(6)[:, None]
    # neurons 0-3 saturate identically; 4-9 are quieter, each its own trace
    m = np.concatenate([np.full((6, 4), 9), steps * np.arange(1, 7)], axis=1)
    spk = m > 8
    pick = _spread(m, spk, [])
    assert len(pick) == 4 and len(set(pick)) == 4
    assert sum(n < 4 for n in pick) == 1          # one of the identical saturated traces
    assert _spread(m, spk, [7, 7])[0] == 7 and len(_spread(m, spk, [7, 7])) == 4


def test_build_report_chart(tmp_path):
    """report.png of a real build report (bench/results: the reference digits model on the
    iCEBreaker): every device resource labelled with its numbers, Fmax against the clock."""
    import json
    from pathlib import Path

    from qsnn_hw.boards.report_plot import report_figure
    path = Path(__file__).resolve().parents[1] / "bench/results/sweep-icebreaker-digits.json"
    report = json.loads(path.read_text())[0]
    fig = report_figure(report)
    res_ax, fmax_ax = fig.axes
    labels = [t.get_text() for t in res_ax.get_yticklabels()]
    assert "block RAM (EBR 4 kbit)" in labels and "I/O" not in labels
    texts = [t.get_text() for t in res_ax.texts]
    bram = report["resources"]["bram"]
    assert f"{bram['used']:,} / {bram['available']:,}" in texts
    assert res_ax.get_xlabel() == "used (% of the device)" and fmax_ax.get_ylabel() == "MHz"
    heights = [p.get_height() for p in fmax_ax.patches]
    assert heights == [v["achieved_mhz"] for v in report["fmax"].values()]
    assert fmax_ax.get_title().startswith("timing met")
    assert_png_has_content(save_png(fig, tmp_path / "report.png"))


def test_throughput_bench_chart(tmp_path):
    """bench/throughput.py draws its recorded figures: one bar per series and network."""
    import importlib.util
    import json
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    spec = importlib.util.spec_from_file_location("bench_throughput",
                                                  root / "bench" / "throughput.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    rows = json.loads((root / "bench/results/throughput.json").read_text())
    before = json.loads((root / "bench/results/throughput-before.json").read_text())
    fig = bench.throughput_figure(rows, before)
    ax = fig.axes[0]
    assert ax.get_ylabel() == "cycles per sample" and ax.get_yscale() == "log"
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend == ["before", "measured", "cycle model", "bandwidth bound"]
    assert len(ax.patches) == 4 * len(rows)
    measured = [p.get_height() for p in ax.containers[1]]
    assert measured == [r["cycles_per_sample"] for r in rows.values()]
    ratios = [t.get_text() for t in ax.texts]
    assert ratios[0] == f"{rows['flow']['cycles_per_sample'] / rows['flow']['bound']:.2f}x bound"
    assert_png_has_content(save_png(fig, tmp_path / "t.png"))
