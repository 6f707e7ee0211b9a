"""qsnn-hw sweep: the paper grid, grid files, the cache (resume after an interruption),
the process pool and a Dask LocalCluster giving identical results, the report."""

from __future__ import annotations

import csv
import json
import math
import statistics
from pathlib import Path

import pytest
from test_plots import assert_png_has_content

from qsnn_hw.cli import main
from qsnn_hw.sweep import Cell, load_grid_file, resolve_grid, run_sweep, squat_grid
from qsnn_hw.sweep.report import summarize
from qsnn_hw.train.config import LayerConfig, TrainConfig

# Tiny runs: a few seconds each on a loaded 2-core machine.
TINY = dict(epochs=2, patience=2, max_train_samples=200)
BASE = TrainConfig(layers=(LayerConfig(12), LayerConfig(10)), **TINY)
CELLS = [Cell("w4", layer={"weight_mode": "qat", "weight_bits": 4}),
         Cell("s3", layer={"state_mode": "squat", "state_bits": 3,
                           "state_family": "exponential"})]
CHANGING = ("wall_time_s",)


def _metrics(run):
    return {k: {m: v for m, v in doc["metrics"].items() if m not in CHANGING}
            for k, doc in run.results.items()}


def _cache_files(out: Path) -> dict:
    return {p.name: p.stat().st_mtime_ns for p in (out / "cache").glob("*.json")}


# ---------------------------------------------------------------- the grid


def test_squat_grid_is_the_papers_grid():
    cells = squat_grid()
    # baseline + weights (PTQ/QAT x 3 widths) + states and both (PTQ/QAT x 2 families x 3)
    assert len(cells) == 1 + 2 * 3 + 2 * (2 * 2 * 3)
    assert len({c.name for c in cells}) == len(cells)
    base = TrainConfig()
    seen = set()
    for c in cells:
        cfg = c.config(base, seed=1)
        assert cfg.seed == 1
        for lc in cfg.layers:  # every layer quantized alike
            w = (lc.weight_mode, lc.weight_bits if lc.weight_mode != "none" else None)
            s = (lc.state_mode, lc.state_bits if lc.state_mode != "none" else None,
                 lc.state_family if lc.state_mode != "none" else None)
            seen.add((w, s))
    expected = {(("none", None), ("none", None, None))}
    for b in (8, 4, 2):
        for wm, sm in (("ptq", "ptq"), ("qat", "squat")):
            expected.add(((wm, b), ("none", None, None)))
            for fam in ("uniform", "exponential"):
                expected.add((("none", None), (sm, b, fam)))
                expected.add(((wm, b), (sm, b, fam)))
    assert seen == expected


def test_grid_file_toml_and_json(tmp_path):
    toml = tmp_path / "g.toml"
    toml.write_text('[base]\nhidden = [20]\nepochs = 5\n\n[[cells]]\nname = "a"\n'
                    'weight_mode = "qat"\nweight_bits = 3\n\n[[cells]]\nname = "b"\n'
                    'state_mode = "squat"\nstate_bits = 2\nstate_family = "uniform"\n'
                    'epochs = 7\n')
    js = tmp_path / "g.json"
    js.write_text(json.dumps({"base": {"hidden": [20], "epochs": 5}, "cells": [
        {"name": "a", "weight_mode": "qat", "weight_bits": 3},
        {"name": "b", "state_mode": "squat", "state_bits": 2, "state_family": "uniform",
         "epochs": 7}]}))
    for path in (toml, js):
        a, b = (c.config(TrainConfig(), 0) for c in load_grid_file(path))
        assert [lc.size for lc in a.layers] == [20, 10]
        assert a.epochs == 5 and b.epochs == 7
        assert all(lc.weight_mode == "qat" and lc.weight_bits == 3 for lc in a.layers)
        assert all(lc.state_family == "uniform" and lc.state_bits == 2 for lc in b.layers)


@pytest.mark.parametrize("text, suffix, needle", [
    ("cells = [", ".toml", "not valid TOML"),
    ("{\"cells\": [", ".json", "not valid JSON"),
    ('{"cells": []}', ".json", "'cells' must be a non-empty list"),
    ('{"cells": [{"weight_mode": "qat"}]}', ".json", "has no 'name'"),
    ('{"cells": [{"name": "a", "wieght_bits": 4}]}', ".json", "unknown key 'wieght_bits'"),
    ('{"cells": [{"name": "a", "weight_bits": 40}]}', ".json", "weight_bits"),
    ('{"cells": [{"name": "a"}, {"name": "a"}]}', ".json", "duplicate cell name"),
    ('{"cells": [{"name": "a", "seed": 3}]}', ".json", "'seed' is not a cell field"),
    ('{"grid": 1, "cells": [{"name": "a"}]}', ".json", "unknown top-level keys"),
])
def test_malformed_grid_file(tmp_path, text, suffix, needle):
    path = tmp_path / f"grid{suffix}"
    path.write_text(text)
    with pytest.raises(ValueError, match="grid|cell") as err:
        for c in resolve_grid(str(path)):
            c.config(TrainConfig(), 0)
    assert needle in str(err.value)
    assert str(path) in str(err.value) or "cell 'a'" in str(err.value)


def test_bad_input_errors_name_the_parameter(tmp_path, capsys):
    assert main(["sweep", "--grid", "paper", "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "--grid" in err and "'paper'" in err and "squat" in err
    bad = tmp_path / "bad.toml"
    bad.write_text("[[cells]\n")
    assert main(["sweep", "--grid", str(bad), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "--grid" in err and "bad.toml" in err and "TOML" in err
    for value in ("0", "-1", "two"):
        with pytest.raises(SystemExit) as exc:
            main(["sweep", "--seeds", value, "--out", str(tmp_path / "o")])
        assert exc.value.code == 2
        assert "--seeds" in capsys.readouterr().err
    with pytest.raises(ValueError, match="--seeds"):
        run_sweep(CELLS, BASE, [], tmp_path / "o")
    assert main(["sweep", "--grid", str(tmp_path / "missing.json"),
                 "--out", str(tmp_path / "o")]) == 2
    assert "missing.json" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()  # nothing ran


# ---------------------------------------------------------------- executors and cache


def test_process_pool_and_dask_give_identical_results(tmp_path):
    distributed = pytest.importorskip("distributed")
    pool = run_sweep(CELLS, BASE, [0, 1], tmp_path / "pool", workers=2)
    assert len(pool.trained) == 4 and not pool.failed
    # one BLAS thread in every worker (no oversubscription), on distinct worker processes
    docs = list(pool.results.values())
    assert all(n == 1 for d in docs for n in d["blas_threads"])
    with distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=False,
                                  dashboard_address=None) as cluster:
        # the address, as `--scheduler ADDRESS` passes it
        dask = run_sweep(CELLS, BASE, [0, 1], tmp_path / "dask",
                         scheduler=cluster.scheduler_address)
    assert len(dask.trained) == 4 and not dask.failed
    assert _metrics(pool) == _metrics(dask)
    # the cache files agree too (same keys, same metrics)
    a = {p.name: json.loads(p.read_text())["metrics"] for p in (tmp_path / "pool/cache").iterdir()}
    b = {p.name: json.loads(p.read_text())["metrics"] for p in (tmp_path / "dask/cache").iterdir()}
    assert a.keys() == b.keys() and len(a) == 4
    for k in a:
        a[k].pop("wall_time_s"), b[k].pop("wall_time_s")
    assert a == b


class _Count:
    """Counts trainings in this process (workers=1 trains in-process)."""

    def __init__(self, monkeypatch):
        import qsnn_hw.train.trainer as trainer
        self.seen = []
        real = trainer.run_training

        def counting(cfg, *args, **kwargs):
            self.seen.append((cfg.layers[0].weight_mode, cfg.layers[0].state_mode, cfg.seed))
            return real(cfg, *args, **kwargs)
        monkeypatch.setattr(trainer, "run_training", counting)


def test_deleted_cache_entry_is_the_only_run_retrained(tmp_path, monkeypatch):
    count = _Count(monkeypatch)
    out = tmp_path / "s"
    first = run_sweep(CELLS, BASE, [0, 1], out, workers=1)
    assert len(count.seen) == 4
    files = _cache_files(out)
    assert len(files) == 4
    # delete the cache of cell s3, seed 1
    victim = next(p for p in (out / "cache").iterdir()
                  if json.loads(p.read_text())["cell"] == "s3"
                  and json.loads(p.read_text())["seed"] == 1)
    victim.unlink()
    count.seen.clear()
    again = run_sweep(CELLS, BASE, [0, 1], out, workers=1)
    assert count.seen == [("none", "squat", 1)]
    after = _cache_files(out)
    assert after.keys() == files.keys()
    assert all(after[k] == files[k] for k in files if k != victim.name)  # untouched
    assert _metrics(again) == _metrics(first)  # and the retrained one is identical


def test_interrupted_pool_sweep_resumes_with_only_the_missing_runs(tmp_path, monkeypatch):
    out = tmp_path / "s"
    done = []

    def stop_after_first(doc):
        done.append((doc["cell"], doc["seed"]))
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_sweep(CELLS, BASE, [0], out, workers=2, on_result=stop_after_first)
    assert len(done) == 1 and len(_cache_files(out)) == 1
    count = _Count(monkeypatch)
    res = run_sweep(CELLS, BASE, [0], out, workers=1)
    missing = {("w4", 0), ("s3", 0)} - set(done)
    modes = {"w4": ("qat", "none"), "s3": ("none", "squat")}
    assert count.seen == [(*modes[c], s) for c, s in missing]
    assert len(res.reused) == 1 and len(res.trained) == 1


def test_corrupt_cache_file_is_retrained(tmp_path, monkeypatch):
    out = tmp_path / "s"
    run_sweep(CELLS[:1], BASE, [0], out, workers=1)
    (path,) = (out / "cache").iterdir()
    path.write_text("{not json")
    count = _Count(monkeypatch)
    run_sweep(CELLS[:1], BASE, [0], out, workers=1)
    assert len(count.seen) == 1
    assert json.loads(path.read_text())["cell"] == "w4"


def test_cache_key_changes_with_config_seed_and_version(monkeypatch):
    from qsnn_hw.sweep import runner
    k = runner.cell_key(CELLS[0].config(BASE, 0))
    assert runner.cell_key(CELLS[0].config(BASE, 0)) == k
    assert runner.cell_key(CELLS[0].config(BASE, 1)) != k
    assert runner.cell_key(CELLS[1].config(BASE, 0)) != k
    monkeypatch.setattr(runner, "__version__", "9.9.9")
    assert runner.cell_key(CELLS[0].config(BASE, 0)) != k


# ---------------------------------------------------------------- CLI and report


def test_cli_sweep_results_match_the_train_command_and_statistics(tmp_path):
    grid = tmp_path / "grid.toml"
    grid.write_text('[[cells]]\nname = "w4s4"\nweight_mode = "qat"\nweight_bits = 4\n'
                    'state_mode = "squat"\nstate_bits = 4\n')
    out = tmp_path / "sweep"
    args = ["sweep", "--grid", str(grid), "--seeds", "2", "--epochs", "2", "--hidden", "12",
            "--max-train-samples", "200", "--out", str(out), "--keep-runs", "--quiet"]
    assert main(args) == 0
    # The same run through `qsnn-hw train`: same metrics as the sweep's seed 1.
    tr = tmp_path / "train"
    assert main(["train", "--out", str(tr), "--epochs", "2", "--hidden",
                 "12", "--max-train-samples", "200", "--seed", "1", "--weight-mode", "qat",
                 "--weight-bits", "4", "--state-mode", "squat", "--state-bits", "4",
                 "--no-plots", "--quiet"]) == 0
    direct = json.loads((tr / "metrics.json").read_text())
    kept = [json.loads((out / "runs" / f"w4s4-s{s}" / "metrics.json").read_text())
            for s in (0, 1)]
    for key in ("float_accuracy", "quantized_accuracy", "golden_accuracy"):
        assert kept[1][key] == direct[key]
    # mean / sample std over seeds, in percent, from the runs' own metrics.json
    with open(out / "results.csv") as f:
        (row,) = list(csv.DictReader(f))
    for label, key in (("trained", "quantized_accuracy"), ("golden", "golden_accuracy")):
        vals = [100 * m[key] for m in kept]
        assert float(row[f"{label}_mean"]) == pytest.approx(statistics.mean(vals), abs=0.006)
        assert float(row[f"{label}_std"]) == pytest.approx(statistics.stdev(vals), abs=0.006)
    assert "w4s4" in (out / "tables.md").read_text()
    # a second run replaces the report only with --force, and reuses both seeds
    assert main(args) == 2
    assert main(args + ["--force"]) == 0
    meta = json.loads((out / "results.json").read_text())["meta"]
    assert meta["runs trained / reused"] == "0 / 2"


def test_paper_tables_and_figures(tmp_path):
    """The report of a (fake, hand-made) paper-grid result: tables II-VII and figures."""
    from qsnn_hw.sweep.report import write_report
    cells = squat_grid(bits=(4, 2))
    seeds = [0, 1, 2]
    results = {}
    for i, c in enumerate(cells):
        for s in seeds:
            acc = (50 + i + s) / 100  # known values: mean 51 + i, std 1
            results[(c.name, s)] = {"metrics": {"float_accuracy": 0.9,
                                                "quantized_accuracy": acc,
                                                "golden_accuracy": acc, "wall_time_s": 1.0}}
    paths = write_report(tmp_path, cells, results, seeds)
    names = {p.name for p in paths}
    for m in ("ptq", "qat"):
        for t in ("weights", "states", "both"):
            assert f"table_{m}_{t}.csv" in names
    for t in ("weights", "states", "both"):
        assert_png_has_content(tmp_path / f"fig_{t}.png")
    assert_png_has_content(tmp_path / "fig_cells.png")
    idx = {c.name: i for i, c in enumerate(cells)}
    with open(tmp_path / "table_qat_both.csv") as f:
        rows = {int(r["bits"]): r for r in csv.DictReader(f)}
    assert set(rows) == {4, 2}
    assert float(rows[2]["exponential_golden_mean"]) == 51 + idx["qat-both-exp-2"]
    assert float(rows[4]["uniform_trained_std"]) == 1.0
    md = (tmp_path / "tables.md").read_text()
    assert f"| 2 | {51 + idx['ptq-weights-2']:.2f} ± 1.00 |" in md
    rows = summarize(cells, results, seeds)
    assert math.isclose(rows[0]["golden_mean"], 51.0)


def test_a_custom_grid_gets_a_chart_of_every_cell(tmp_path):
    """Cells without paper tags (a custom grid) still get fig_cells.png: one row per cell
    with results, the mean as a dot, the std as an error bar."""
    from qsnn_hw.sweep.report import cells_chart, cells_figure
    cells = [Cell("a", train={"epochs": 1}), Cell("b", train={"epochs": 2}),
             Cell("c", train={"epochs": 3})]
    results = {(c.name, s): {"metrics": {"float_accuracy": 0.9, "quantized_accuracy": acc,
                                         "golden_accuracy": acc, "wall_time_s": 1.0}}
               for c, base in zip(cells[:2], (0.95, 0.97), strict=True)
               for s, acc in ((0, base), (1, base + 0.01))}
    rows = summarize(cells, results, [0, 1])
    path = cells_chart(rows, tmp_path)
    assert_png_has_content(path)
    assert cells_chart(summarize(cells, {}, [0, 1]), tmp_path / "none") is None
    ax = cells_figure(rows).axes[0]
    rows_at = {t.get_text(): y for t, y in zip(ax.get_yticklabels(), ax.get_yticks(),
                                                strict=True)}
    assert set(rows_at) == {"a (2 seeds)", "b (2 seeds)"}
    assert rows_at["a (2 seeds)"] > rows_at["b (2 seeds)"]    # in grid order, top down
    assert ax.get_xlabel() == "test accuracy"
    assert ax.get_xlim()[0] > 0.9                 # zoomed to the results


def test_a_failed_run_is_reported_not_cached_and_retried(tmp_path, monkeypatch):
    import qsnn_hw.train.trainer as trainer
    real = trainer.run_training

    def diverge_on_states(cfg, *args, **kwargs):
        if cfg.layers[0].state_mode == "squat":
            raise trainer.TrainingDiverged("epoch 1 batch 3 (a test)")
        return real(cfg, *args, **kwargs)
    monkeypatch.setattr(trainer, "run_training", diverge_on_states)
    out = tmp_path / "s"
    res = run_sweep(CELLS, BASE, [0], out, workers=1)
    assert set(res.failed) == {("s3", 0)} and "epoch 1 batch 3" in res.failed[("s3", 0)]
    assert len(_cache_files(out)) == 1
    monkeypatch.setattr(trainer, "run_training", real)
    count = _Count(monkeypatch)
    res = run_sweep(CELLS, BASE, [0], out, workers=1)
    assert count.seen == [("none", "squat", 0)] and not res.failed


def test_grid_cells_may_be_convolutional(tmp_path):
    """A cell's 'arch' (grid file or --arch) builds the whole network: convolutions take
    the first layer's settings and the cell's layer fields, the output layer its own."""
    grid = tmp_path / "conv.toml"
    grid.write_text('[[cells]]\nname = "conv"\narch = "4c3p1-mp2-10"\nweight_mode = "qat"\n'
                    'weight_bits = 3\n\n[[cells]]\nname = "dense"\nhidden = [12]\n')
    cells = load_grid_file(grid)
    base = TrainConfig(layers=(LayerConfig(32), LayerConfig(10)))
    cfg = cells[0].config(base, 0)
    assert [(lc.size, lc.kernel, lc.padding, lc.pool) for lc in cfg.layers] == \
        [(4, 3, 1, 2), (10, 0, 0, 1)]
    assert all(lc.weight_mode == "qat" and lc.weight_bits == 3 for lc in cfg.layers)
    assert [lc.size for lc in cells[1].config(base, 0).layers] == [12, 10]
    with pytest.raises(ValueError, match="one neuron per class \\(10\\), got 7"):
        Cell("x", train={"arch": "4c3-7"}).config(base, 0)
    with pytest.raises(ValueError, match="by 'arch' or by 'hidden', not both"):
        Cell("x", train={"arch": "4c3-10", "hidden": (5,)}).config(base, 0)


def test_cli_sweep_conv_cell_trains_and_checks_shapes_first(tmp_path, capsys):
    grid = tmp_path / "g.toml"
    grid.write_text('[[cells]]\nname = "c"\narch = "2c3p1s2-10"\n')
    out = tmp_path / "sweep"
    args = ["sweep", "--grid", str(grid), "--seeds", "1", "--epochs", "1", "--timesteps",
            "3", "--max-train-samples", "100", "--out", str(out), "--no-plots", "--quiet",
            "--workers", "1"]
    assert main(args) == 0
    run = json.loads((out / "results.json").read_text())["runs"][0]
    assert run["cell"] == "c" and run["golden_accuracy"] > 0
    # a kernel the 8x8 digits cannot hold is refused before anything trains
    grid.write_text('[[cells]]\nname = "big"\narch = "2c9-10"\n')
    assert main([*args[:-4], "--out", str(tmp_path / "s2"), "--no-plots", "--quiet"]) == 2
    assert "cell 'big': layer 0: kernel 9x9 does not fit" in capsys.readouterr().err
    assert not (tmp_path / "s2" / "cache").exists()
