"""Throughput of the core against the weight-memory bandwidth bound, side by side.

For four networks -- the flow model (``bash scripts/main.sh``: digits 64-64-10, T = 16),
the reference digits model (``rtl/digits.qsnn``, 64-128-10, T = 16), an MNIST-shaped
784-128-10 (static direct 8-bit input, T = 25) and an SHD-shaped 700-1000-20 (spike
input, T = 100) -- it simulates test samples on the core (Verilator by default, through
``qsnn_hw.verify.verify_core``: bit-exact against the golden model or the row says so)
and prints per network: measured cycles per sample, the bandwidth bound
(``qsnn_hw.hdl.cycles.bandwidth_bound``, from the golden model's events alone: every
input event reads its G weight words once, a static input layer once per sample, plus G
update cycles per layer and timestep), their ratio, the cycle model's prediction, and
microseconds per sample at the clock the board build achieved (``--report NAME=FILE``, a
``qsnn-hw synth`` report.json of that network, whose core configuration is then the one
simulated; "-" without one). With ``--before FILE``
it also prints the same measurements taken on the core before the throughput work (the
JSON that ``--record`` wrote when this script ran against that older package).

    python bench/throughput.py --flow-model runs/flow/train/model.qsnn \\
        --report flow=runs/flow/synth/report.json --report mnist=BUILD/report.json \\
        --before bench/results/throughput-before.json --record bench/results/throughput.json
    python bench/throughput.py --save-models DIR     # the MNIST/SHD artifacts, for synth
    python bench/throughput.py --plot bench/results/throughput.json \
        --before bench/results/throughput-before.json --png throughput.png   # chart only

``--png FILE`` draws the figures as a chart (cycles per sample against the bound and the
model, per network, with the old core's where ``--before`` has them; log scale).

The random networks (``qsnn_hw.testing.random_network``, seed 0; 4-bit weights and
states) stand in for trained ones of those shapes. Their inputs are random at the
density of the dataset they mimic (MNIST: 19 % non-zero pixels; SHD: 5 % of the
channel-bins), and each layer's threshold is set so that about :data:`RATE` of its
neurons spike per timestep on those inputs (a random network's own thresholds leave
these sparse inputs silent), so the hidden activity, and the cycles, are of that rate.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from qsnn_hw.artifact import Artifact, load_artifact, save_artifact  # noqa: E402
from qsnn_hw.contract import IntLayer, IntNetwork  # noqa: E402
from qsnn_hw.golden import run_layer, simulate  # noqa: E402
from qsnn_hw.hdl.config import CoreConfig  # noqa: E402
from qsnn_hw.testing import random_levels, random_network  # noqa: E402
from qsnn_hw.verify import verify_core  # noqa: E402

# name: (what, lanes, weight storage, timesteps, input density)
RANDOM = {
    "mnist": ("784-128-10, static direct input", [784, 128, 10], 8, (4, 2),
              ("spram", "rom"), 25, 0.19),
    "shd": ("700-1000-20, spike input", [700, 1000, 20], 1, (16, 4), "rom", 100, 0.05),
}


RATE = 0.1       # spikes per neuron and timestep each bench layer is tuned to


def with_rate(net: IntNetwork, x: np.ndarray, rate: float = RATE) -> IntNetwork:
    """``net`` with every layer's threshold (and its level table) chosen from a geometric
    grid so that the layer's spike rate on ``x`` is closest to ``rate``."""
    layers, h = [], x
    for la in net.layers:
        best = None
        for thr in np.unique(np.geomspace(1, 1 << 20, 61).astype(np.int64)):
            levels, t = random_levels(np.random.default_rng(2), "exponential", 4, int(thr))
            cand = IntLayer(la.weight, t, la.beta_num, la.beta_shift, la.reset, None, 0,
                            levels, la.mem_bits)
            spikes = run_layer(cand, h)[0]
            err = abs(float(spikes.mean()) - rate)
            if best is None or err < best[0]:
                best = (err, cand, spikes)
        layers.append(best[1])
        h = best[2].astype(np.int64)
    return IntNetwork(tuple(layers), input_bits=net.input_bits)


def random_model(name: str):
    what, sizes, input_bits, lanes, storage, steps, density = RANDOM[name]
    net = random_network(np.random.default_rng(0), sizes=sizes, input_bits=input_bits,
                         weight_bits=4, state_bits=4, family="exponential",
                         reset="subtract", bias=False, frac_bits=0)
    net = with_rate(net, random_samples(net, 8, steps, density, seed=7))
    # MNIST: the pipelined quantizer keeps P = (4, 2) within the iCE40UP5K's logic cells
    # (8-bit inputs make the update values, and the comparators, wide)
    opts = {"lanes": lanes, "weight_storage": storage,
            **({"quantizer": "pipelined"} if name == "mnist" else {})}
    return what, net, opts, steps, density


def random_samples(net, n: int, steps: int, density: float, seed: int = 1) -> np.ndarray:
    """Static samples for multi-bit input (the same image every timestep), else spikes."""
    rng = np.random.default_rng(seed)
    if net.input_bits > 1:
        img = (rng.random((n, 1, net.n_in)) < density) * \
            rng.integers(1, net.input_max + 1, (n, 1, net.n_in))
        return np.repeat(img, steps, axis=1).astype(np.int64)
    return (rng.random((n, steps, net.n_in)) < density).astype(np.int64)


def config_of(options: dict) -> CoreConfig:
    """A CoreConfig of the options this package knows (an older package, measured for
    ``--before``, lacks the throughput options: it gets the one behaviour it has)."""
    known = set(CoreConfig.__dataclass_fields__)
    return CoreConfig(**{k: v for k, v in options.items() if k in known})


def networks(args):
    """(name, description, net, x, core options) of every network measured."""
    from qsnn_hw.boards.samples import test_samples
    out = []
    if args.flow_model and Path(args.flow_model).is_file():
        art = load_artifact(args.flow_model)
        x, _, what = test_samples(art, args.samples)
        sizes = [art.network.n_in] + [la.n_out for la in art.network.layers]
        out.append(("flow", f"flow model {sizes}, {what}", art.network, x, {"lanes": 2}))
    else:
        print(f"(no flow model at {args.flow_model}: run bash scripts/main.sh first; "
              f"skipped)")
    art = load_artifact(ROOT / "rtl" / "digits.qsnn")
    x, _, what = test_samples(art, args.samples)
    out.append(("reference", f"reference digits 64-128-10, {what}", art.network, x,
                {"lanes": (4, 2)}))
    for name in RANDOM:
        what, net, opts, steps, density = random_model(name)
        out.append((name, f"{name.upper()}-shaped {what}, T = {steps}", net,
                    random_samples(net, args.samples, steps, density), opts))
    return out


def measure(net, x, options: dict, sim: str) -> dict:
    config = config_of(options)
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        rep = verify_core(net, x, config, sim=sim, build_dir=tmp, gaps=0.0)
        wall = time.perf_counter() - t0
    counts = {k: v for k, v in rep["mismatch_counts"].items() if v}
    return {"cycles_per_sample": rep["cycles"] / x.shape[0], "bit_exact": not counts,
            "mismatches": counts, "config": config.to_dict(), "sim": sim,
            "samples": int(x.shape[0]), "sim_wall_s": round(wall, 1)}


def model_figures(net, x, options: dict) -> dict:
    """The bandwidth bound and the cycle model's prediction (this package only)."""
    from qsnn_hw.hdl.cycles import bandwidth_bound, network_cycles
    from qsnn_hw.hdl.geometry import network_geometry
    config = config_of(options)
    geoms = network_geometry(net, config)
    spikes = simulate(net, x).spikes
    return {"bound": float(bandwidth_bound(net, x, spikes, geoms).mean()),
            "model": float(network_cycles(net, x, spikes, geoms).mean())}


def clock_of(reports: dict, name: str):
    path = reports.get(name)
    if not path:
        return None, None
    rep = json.loads(Path(path).read_text())
    if isinstance(rep, list):     # a bench/board_sweep.py result: one build in it
        if len(rep) != 1:
            raise SystemExit(f"--report {name}={path}: {len(rep)} builds in it; give one")
        rep = rep[0]
    return rep["clock"]["actual_mhz"], rep


def fmt(v, spec=",.0f"):
    return "-" if v is None else format(v, spec)


def throughput_figure(rows: dict, before: dict | None = None):
    """Cycles per sample per network: the old core (``before``), the core now, the cycle
    model's prediction and the bandwidth bound, side by side on a log scale, with the
    ratio to the bound above each network."""
    from qsnn_hw._plot import pyplot

    plt = pyplot()
    before = before or {}
    names = list(rows)
    series = [("before", "tab:gray", [before.get(n, {}).get("cycles_per_sample")
                                      for n in names]),
              ("measured", "tab:blue", [rows[n]["cycles_per_sample"] for n in names]),
              ("cycle model", "tab:green", [rows[n].get("model") for n in names]),
              ("bandwidth bound", "tab:orange", [rows[n].get("bound") for n in names])]
    series = [s for s in series if any(v is not None for v in s[2])]
    fig, ax = plt.subplots(figsize=(9, 4.5))
    width = 0.8 / len(series)
    for i, (label, color, vals) in enumerate(series):
        xs = [j + (i - (len(series) - 1) / 2) * width for j in range(len(names))]
        ax.bar(xs, [float("nan") if v is None else v for v in vals], width, label=label,
               color=color)
    for j, n in enumerate(names):
        r = rows[n]
        if r.get("bound"):
            ax.annotate(f"{r['cycles_per_sample'] / r['bound']:.2f}x bound", (j, 1),
                        xycoords=("data", "axes fraction"), ha="center", va="top",
                        fontsize=8, xytext=(0, -4), textcoords="offset points")
    import textwrap
    ax.set_yscale("log")
    lo, hi = ax.get_ylim()
    ax.set_ylim(lo, hi * 4)            # room for the ratios
    ax.set_xticks(range(len(names)), [n + "\n" + textwrap.fill(rows[n]["what"], 26)
                                      for n in names], fontsize=7)
    ax.set_ylabel("cycles per sample")
    ax.set_title("core throughput against the weight-memory bandwidth bound")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    return fig


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, default=5, help="samples per network (default 5)")
    ap.add_argument("--sim", default="verilator", choices=("verilator", "icarus", "amaranth"))
    ap.add_argument("--flow-model", default=str(ROOT / "runs" / "flow" / "train" / "model.qsnn"))
    ap.add_argument("--report", action="append", default=[], metavar="NAME=FILE",
                    help="a synth report.json of network NAME (flow, reference, mnist, shd)")
    ap.add_argument("--only", default=None, help="comma list of network names")
    ap.add_argument("--before", default=None, help="a JSON --record wrote on the old core")
    ap.add_argument("--measure-only", action="store_true",
                    help="measured cycles only (for --record on an older package)")
    ap.add_argument("--record", default=None, help="write the figures to this JSON")
    ap.add_argument("--png", default=None, help="also draw the figures as a chart here")
    ap.add_argument("--plot", default=None, metavar="JSON",
                    help="draw --png from a JSON --record wrote, without simulating")
    ap.add_argument("--save-models", default=None, metavar="DIR",
                    help="write the MNIST- and SHD-shaped artifacts into DIR and stop")
    args = ap.parse_args(argv)
    # the simulators' chatter (cocotb-test resets the level on every run: a filter stays)
    logging.getLogger("cocotb").addFilter(lambda rec: rec.levelno >= logging.WARNING)
    if args.save_models:
        out = Path(args.save_models)
        out.mkdir(parents=True, exist_ok=True)
        for name in RANDOM:
            _, net, opts, _, _ = random_model(name)
            save_artifact(out / f"{name}.qsnn", Artifact(net))
            print(f"wrote {out / name}.qsnn (lanes {opts['lanes']}, weights "
                  f"{opts['weight_storage']})")
        return 0
    reports = dict(r.split("=", 1) for r in args.report)
    before = json.loads(Path(args.before).read_text()) if args.before else {}
    if args.plot:
        if not args.png:
            ap.error("--plot needs --png FILE")
        from qsnn_hw._plot import save_png
        save_png(throughput_figure(json.loads(Path(args.plot).read_text()), before), args.png)
        print(f"wrote {args.png}")
        return 0
    only = set(args.only.split(",")) if args.only else None
    rows = {}
    for name, what, net, x, opts in networks(args):
        if only and name not in only:
            continue
        mhz, rep = clock_of(reports, name)
        if rep is not None:    # simulate exactly the core that was built
            opts = rep["core"]
        print(f"{name}: {what}; {x.shape[0]} samples on {args.sim} ...", flush=True)
        row = {"what": what, **measure(net, x, opts, args.sim)}
        if not args.measure_only:
            row.update(model_figures(net, x, opts))
            row["clock_mhz"] = mhz
            row["us_per_sample"] = row["cycles_per_sample"] / mhz if mhz else None
        rows[name] = row
    if args.record:
        Path(args.record).write_text(json.dumps(rows, indent=1) + "\n")
    if args.png and not args.measure_only:
        from qsnn_hw._plot import save_png
        save_png(throughput_figure(rows, before), args.png)
    if args.measure_only:
        for name, r in rows.items():
            print(f"{name}: {r['cycles_per_sample']:,.0f} cycles/sample, bit-exact "
                  f"{r['bit_exact']}")
        return 0
    print()
    print("| network | cycles/sample | bound | ratio | model | clock MHz | us/sample | "
          "before: cycles | before: us | speed-up | bit-exact |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for name, r in rows.items():
        b = before.get(name, {})
        bc, bmhz = b.get("cycles_per_sample"), b.get("clock_mhz")
        bus = bc / bmhz if bc and bmhz else None
        print(f"| {r['what']} | {fmt(r['cycles_per_sample'])} | {fmt(r['bound'])} | "
              f"{r['cycles_per_sample'] / r['bound']:.2f} | {fmt(r['model'])} | "
              f"{fmt(r['clock_mhz'], '.2f')} | {fmt(r['us_per_sample'], ',.1f')} | "
              f"{fmt(bc)} | {fmt(bus, ',.1f')} | "
              f"{fmt(bc / r['cycles_per_sample'], '.1f') + 'x' if bc else '-'} | "
              f"{'yes' if r['bit_exact'] else 'NO ' + str(r['mismatches'])} |")
    return 0 if all(r["bit_exact"] for r in rows.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
