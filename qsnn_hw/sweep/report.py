"""Sweep results: mean and standard deviation over seeds per cell, tables shaped like the
SQUAT paper's Tables II-VII (markdown + CSV) and bar charts like its Figs. 2-4 (PNG).

Accuracies are test accuracies in percent. ``std`` is the sample standard deviation over
seeds (ddof = 1); with one seed it is not defined and left empty.
"""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path

from .._io import atomic_write_bytes, atomic_write_text
from .grid import FAMILIES, METHODS, TARGETS, Cell

# metric key -> column label
SUMMARY_METRICS = {"quantized_accuracy": "trained", "golden_accuracy": "golden",
                   "float_accuracy": "float"}
METHOD_LABEL = {"ptq": "PTQ", "qat": "QAT/SQUAT", "fp": "full precision"}
TARGET_LABEL = {"weights": "weights only", "states": "states only",
                "both": "weights and states"}


def mean_std(values) -> tuple[float, float]:
    values = [float(v) for v in values]
    n = len(values)
    mean = sum(values) / n
    if n < 2:
        return mean, math.nan
    return mean, math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))


def summarize(cells: list[Cell], results: dict, seeds: list[int]) -> list[dict]:
    """One row per cell: tags, number of seeds done, mean/std (percent) of each metric and
    the mean training wall time (s)."""
    rows = []
    for cell in cells:
        docs = [results[(cell.name, s)] for s in seeds if (cell.name, s) in results]
        row = {"cell": cell.name, **{k: cell.tags.get(k, "") for k in
                                     ("method", "target", "family", "bits")},
               "seeds": len(docs)}
        for key, label in SUMMARY_METRICS.items():
            if docs:
                m, s = mean_std(100.0 * d["metrics"][key] for d in docs)
            else:
                m = s = math.nan
            row[f"{label}_mean"], row[f"{label}_std"] = m, s
        row["train_time_s"] = (sum(d["metrics"]["wall_time_s"] for d in docs) / len(docs)
                               if docs else math.nan)
        rows.append(row)
    return rows


def _num(x, digits=2) -> str:
    return "" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{digits}f}"


def _pm(row, label) -> str:
    m, s = row[f"{label}_mean"], row[f"{label}_std"]
    if math.isnan(m):
        return "—"
    return f"{m:.2f}" if math.isnan(s) else f"{m:.2f} ± {s:.2f}"


def _csv(rows: list[dict], columns: list[str]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(columns)
    for r in rows:
        w.writerow([_num(r[c]) if isinstance(r[c], float) else r[c] for c in columns])
    return buf.getvalue()


def summary_csv(rows: list[dict]) -> str:
    return _csv(rows, list(rows[0]))


def summary_markdown(rows: list[dict]) -> str:
    lines = ["| cell | seeds | trained (%) | golden (%) | float model (%) | train time (s) |",
             "|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['cell']} | {r['seeds']} | {_pm(r, 'trained')} | "
                     f"{_pm(r, 'golden')} | {_pm(r, 'float')} | "
                     f"{_num(r['train_time_s'], 1)} |")
    return "\n".join(lines) + "\n"


def paper_tables(rows: list[dict]) -> list[tuple[str, str, list[dict]]]:
    """The six paper tables (method x target): ``(name, title, rows)``; each row is one bit
    width with columns per state-level family (weights-only tables have one column)."""
    by = {(r["method"], r["target"], r["family"], r["bits"]): r for r in rows if r["method"]}
    fp = next((r for r in rows if r["method"] == "fp"), None)
    tables = []
    for target in TARGETS:
        for method in METHODS:
            families = ("-",) if target == "weights" else FAMILIES
            bits = sorted({r["bits"] for r in rows if r["method"] == method
                           and r["target"] == target}, reverse=True)
            if not bits:
                continue
            trows = []
            for b in bits:
                row = {"bits": b}
                for fam in families:
                    r = by.get((method, target, fam, b))
                    for label in ("trained", "golden"):
                        col = label if fam == "-" else f"{fam}_{label}"
                        row[f"{col}_mean"] = r[f"{label}_mean"] if r else math.nan
                        row[f"{col}_std"] = r[f"{label}_std"] if r else math.nan
                trows.append(row)
            title = (f"{METHOD_LABEL[method]}, {TARGET_LABEL[target]}"
                     + (f" (full precision: {_pm(fp, 'golden')} %)" if fp else ""))
            tables.append((f"{method}_{target}", title, trows))
    return tables


def paper_table_markdown(title: str, trows: list[dict]) -> str:
    cols = [k[:-5] for k in trows[0] if k.endswith("_mean")]
    head = [c.replace("_", " ") for c in cols]
    lines = [f"**{title}** — test accuracy (%), mean ± std over seeds", "",
             "| bits | " + " | ".join(head) + " |", "|---|" + "---|" * len(cols)]
    for r in trows:
        lines.append(f"| {r['bits']} | " + " | ".join(_pm(r, c) for c in cols) + " |")
    return "\n".join(lines) + "\n"


def bar_charts(rows: list[dict], out: Path, metric: str = "golden") -> list[Path]:
    """Figs. 2-4 style: one PNG per target (weights, states, both); grouped bars over bit
    widths, one bar per method x family, error bars = std, dashed line = full precision."""
    from .._extras import need
    matplotlib = need("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fp = next((r for r in rows if r["method"] == "fp"), None)
    paths = []
    for target in TARGETS:
        series = []
        for method in METHODS:
            for fam in (("-",) if target == "weights" else FAMILIES):
                pts = {r["bits"]: r for r in rows if r["method"] == method
                       and r["target"] == target and r["family"] == fam}
                if pts:
                    label = METHOD_LABEL[method] + ("" if fam == "-" else f" {fam}")
                    series.append((label, pts))
        if not series:
            continue
        bits = sorted({b for _, pts in series for b in pts}, reverse=True)
        fig, ax = plt.subplots(figsize=(6.4, 4.4), dpi=100)
        width = 0.8 / len(series)
        for i, (label, pts) in enumerate(series):
            xs = [j + (i - (len(series) - 1) / 2) * width for j in range(len(bits))]
            means = [pts[b][f"{metric}_mean"] if b in pts else math.nan for b in bits]
            stds = [0.0 if b not in pts or math.isnan(pts[b][f"{metric}_std"])
                    else pts[b][f"{metric}_std"] for b in bits]
            ax.bar(xs, means, width, yerr=stds, capsize=3, label=label)
        if fp is not None and not math.isnan(fp[f"{metric}_mean"]):
            ax.axhline(fp[f"{metric}_mean"], color="k", ls="--", lw=1,
                       label=f"full precision {fp[f'{metric}_mean']:.2f}")
        ax.set_xticks(range(len(bits)), [f"{b} bits" for b in bits])
        ax.set_ylabel(f"{metric} test accuracy (%)")
        ax.set_ylim(0, 100)
        ax.set_title(f"Quantizing {TARGET_LABEL[target]}")
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.1), ncol=3, fontsize=8,
                  frameon=False)
        fig.tight_layout()
        buf = io.BytesIO()
        fig.savefig(buf, format="png")
        plt.close(fig)
        path = out / f"fig_{target}.png"
        atomic_write_bytes(path, buf.getvalue())
        paths.append(path)
    return paths


def cells_chart(rows: list[dict], out: Path) -> Path | None:
    """``fig_cells.png`` (:func:`cells_figure`) in ``out``; None when no cell has a result."""
    from .._plot import save_png

    fig = cells_figure(rows)
    return None if fig is None else save_png(fig, out / "fig_cells.png")


def cells_figure(rows: list[dict]):
    """Every cell of any grid (custom ones too) in one chart: golden test accuracy, mean
    and std over seeds, one row per cell, the trained model's mean beside it; the
    accuracy axis is zoomed to the results (dots, not bars, so the zoom does not mislead).
    None when no cell has a result yet."""
    from .._plot import percent_axis, pyplot

    done = [r for r in rows if not math.isnan(r["golden_mean"])]
    if not done:
        return None
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(8, max(2.6, 1.4 + 0.32 * len(done))))
    ys = list(range(len(done)))[::-1]
    gold = [r["golden_mean"] / 100 for r in done]
    err = [0.0 if math.isnan(r["golden_std"]) else r["golden_std"] / 100 for r in done]
    ax.errorbar(gold, ys, xerr=err, fmt="o", capsize=3, label="golden (std over seeds)")
    trained = [r["trained_mean"] / 100 for r in done]
    ax.plot(trained, ys, "x", color="0.4", label="trained model")
    ax.set_yticks(ys, [f"{r['cell']} ({r['seeds']} seed{'s' * (r['seeds'] != 1)})"
                       for r in done], fontsize=8)
    ax.set_xlabel("test accuracy")
    percent_axis(ax, [g - e for g, e in zip(gold, err, strict=True)]
                 + [g + e for g, e in zip(gold, err, strict=True)] + trained, axis="x")
    ax.grid(axis="x", alpha=0.3)
    ax.set_title(f"sweep: {len(done)} cells")
    ax.legend(fontsize=8, loc="lower left", bbox_to_anchor=(0.0, 1.06), ncol=2, frameon=False)
    fig.tight_layout()
    return fig


def write_report(out, cells: list[Cell], results: dict, seeds: list[int],
                 meta: dict | None = None, plots: bool = True) -> list[Path]:
    """Write results.json, results.csv, tables.md, fig_cells.png (every cell) (+
    table_<method>_<target>.csv and fig_<target>.png for paper-tagged cells) into
    ``out``; returns the paths written."""
    out = Path(out)
    rows = summarize(cells, results, seeds)
    written = []
    per_seed = [{"cell": c, "seed": s, **doc["metrics"]}
                for (c, s), doc in sorted(results.items())]
    doc = {"meta": meta or {}, "seeds": seeds, "summary": rows, "runs": per_seed}
    written.append(atomic_write_text(out / "results.json",
                                     json.dumps(doc, indent=1, allow_nan=True) + "\n"))
    written.append(atomic_write_text(out / "results.csv", summary_csv(rows)))
    md = ["# Sweep results", ""]
    if meta:
        md += [f"- {k}: {v}" for k, v in meta.items()] + [""]
    md += ["Trained = the trainer's deployed integer model; golden = the golden model on the "
           "exported artifact (the hardware's answer).", "", summary_markdown(rows)]
    if plots:
        chart = cells_chart(rows, out)
        written += [chart] if chart else []
    tagged = [r for r in rows if r["method"]]
    if tagged:
        for name, title, trows in paper_tables(tagged):
            md += [paper_table_markdown(title, trows)]
            cols = list(trows[0])
            written.append(atomic_write_text(out / f"table_{name}.csv", _csv(trows, cols)))
        if plots:
            written += bar_charts(tagged, out)
    written.append(atomic_write_text(out / "tables.md", "\n".join(md)))
    return written
