"""``qsnn-hw verify``: run a trained model's generated core on its test set in a simulator
and check it against the integer golden model, bit for bit.

Inputs: the test split of the dataset named in the artifact's training config, encoded
exactly as the trainer encodes its test set (``qsnn_hw.train.trainer.eval_encodings``:
same encoding, timesteps, input bits and seeds), so the samples are the ones behind the
accuracy the trainer reported.

Simulators: ``icarus`` and ``verilator`` run the generic cocotb testbench (``sim/``:
preloaded stimulus, randomized back-pressure, every layer's spikes and state writes
checked at every timestep, counts and predictions); ``amaranth`` runs the same core in
Amaranth's simulator (``qsnn_hw.hdl.sim_util.run_core``: spikes of every layer, final
states, counts, predictions). Exit status 0 when everything matches, 1 on any mismatch,
2 on a usage error.
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from ..errors import UserError

SIMS = ("icarus", "verilator", "amaranth")


def _sim_package():
    """The repository's ``sim/`` package (testbenches and runners live beside the package,
    not inside it)."""
    try:
        import sim.runner  # noqa: F401
    except ImportError:
        root = Path(__file__).resolve().parents[2]
        if not (root / "sim" / "runner.py").exists():
            raise UserError("the cocotb testbenches (sim/) are not installed; run from a "
                            "qsnn-hw source checkout, or use --sim amaranth") from None
        sys.path.insert(0, str(root))
    import sim.bundle
    import sim.runner
    import sim.trace_check
    return sim


def dataset_inputs(art, samples: int | None):
    """``(x (B, T, M) int64, labels (B,))``: the artifact's test split as the trainer
    encoded it for its test accuracy."""
    from ..data import load_dataset
    from ..train.config import TrainConfig
    from ..train.trainer import eval_encodings

    if not art.config:
        raise UserError("the artifact has no training config, so its dataset and input "
                        "encoding are unknown")
    cfg = TrainConfig.from_dict(art.config)
    data = load_dataset(cfg.dataset, cfg.data_dir, cfg.timesteps, cfg.data_seed)
    x_test, y = data.x_test, data.y_test
    if samples is not None:
        x_test, y = x_test[:samples], y[:samples]
    chunks = [enc.golden_input() for _, enc in eval_encodings(cfg, x_test, 1)]
    x = np.concatenate(chunks) if chunks else np.zeros((0, cfg.timesteps, art.network.n_in))
    return x.astype(np.int64), y


def _verify_amaranth(net, x, lanes, seed, gold) -> dict:
    from ..hdl.sim_util import run_core

    t0 = time.perf_counter()
    run = run_core(net, x, lanes=lanes, rng=np.random.default_rng(seed), gaps=0.2)
    wall = time.perf_counter() - t0
    mism = {}
    first = None
    for li, layer in enumerate(net.layers):
        bad = gold.spikes[li] != run.spikes[li]
        mism[f"layer{li}_spike"] = int(bad.sum())
        if bad.any() and first is None:
            b, t, n = (int(v) for v in np.argwhere(bad)[0])
            first = {"sample": b, "timestep": t, "layer": li, "neuron": n, "what": "spike",
                     "expected": int(gold.spikes[li][b, t, n]),
                     "actual": int(run.spikes[li][b, t, n])}
        exp = gold.final_codes[li] if layer.quantized else gold.final_mem[li]
        act = run.final_codes[li] if layer.quantized else run.final_mem[li]
        mism[f"layer{li}_final_state"] = int((exp != act).sum())
    mism["counts"] = int((gold.counts != run.counts).sum())
    mism["prediction"] = int((gold.predictions != run.predictions).sum())
    mism["error_flag"] = int(run.error)
    cycles = int(run.sample_cycles.sum())
    return {"mismatches": sum(mism.values()), "mismatch_counts": mism, "first": first,
            "predictions": run.predictions.tolist(), "cycles": cycles, "sim_wall_s": wall,
            "cycles_per_s": cycles / wall if wall > 0 else None, "waveform": None}


def _verify_cocotb(simname, net, x, lanes, seed, build_dir: Path) -> dict:
    sim = _sim_package()
    case = sim.bundle.CoreCase("core", net, x, lanes=lanes, seed=seed,
                               describe="qsnn-hw verify")
    bundle = sim.bundle.write_bundle([case], build_dir / "bundle")
    rep = sim.runner.run_bundle(simname, bundle, build_dir / simname, opt="-O2")
    core = rep["cores"][0]
    out = {k: core[k] for k in ("mismatches", "mismatch_counts", "first", "predictions")}
    out["problems"] = core["problems"]
    if core["problems"]:
        out["mismatches"] += len(core["problems"])
    out.update(cycles=rep["cycles"], sim_wall_s=rep["sim_wall_s"],
               cycles_per_s=rep["cycles_per_s"], build_and_run_s=rep["total_s"],
               waveform=rep.get("waveform"))
    return out


def run(args) -> int:
    from ..artifact import load_artifact
    from ..golden import simulate
    from .generate import parse_lanes

    model = Path(args.model)
    if not model.is_file():
        raise UserError(f"artifact {model} does not exist")
    art = load_artifact(model)
    net = art.network
    lanes = parse_lanes(args.lanes)
    if isinstance(lanes, list) and len(lanes) != len(net.layers):
        raise UserError(f"--lanes lists {len(lanes)} values but the model has "
                        f"{len(net.layers)} layers")
    x, y = dataset_inputs(art, args.samples)
    if len(x) == 0:
        raise UserError("no test samples to verify")
    gold = simulate(net, x)
    keep = args.build_dir is not None
    build = Path(args.build_dir) if keep else Path(tempfile.mkdtemp(prefix="qsnn-verify-"))
    t0 = time.perf_counter()
    if args.sim == "amaranth":
        res = _verify_amaranth(net, x, lanes, args.seed, gold)
    else:
        res = _verify_cocotb(args.sim, net, x, lanes, args.seed, build)
    wall = time.perf_counter() - t0
    preds = np.asarray(res["predictions"])
    report = {
        "model": str(model), "sim": args.sim, "lanes": lanes, "seed": args.seed,
        "samples": int(x.shape[0]), "timesteps": int(x.shape[1]),
        "mismatches": int(res["mismatches"]), "mismatch_counts": res["mismatch_counts"],
        "first_mismatch": res["first"], "problems": res.get("problems", []),
        "golden_accuracy": float(np.mean(gold.predictions == y)),
        "rtl_accuracy": float(np.mean(preds == y)) if preds.shape == y.shape else None,
        "cycles": res["cycles"], "cycles_per_sample": res["cycles"] / len(x),
        "sim_wall_s": res["sim_wall_s"], "cycles_per_s": res["cycles_per_s"],
        "wall_s": wall, "waveform": res.get("waveform"),
        "build_dir": str(build) if (keep or res["mismatches"]) else None,
    }
    if args.json:
        print(json.dumps(report, indent=1))
    else:
        _print(report)
    if not keep and not res["mismatches"]:
        shutil.rmtree(build, ignore_errors=True)
    return 1 if report["mismatches"] else 0


def _print(r: dict) -> None:
    status = "OK: bit-exact" if r["mismatches"] == 0 else "MISMATCH"
    print(f"verify {r['model']} on {r['sim']} (lanes {r['lanes']}): {status}")
    print(f"  samples {r['samples']} x timesteps {r['timesteps']}; mismatches "
          f"{r['mismatches']}")
    bad = {k: v for k, v in r["mismatch_counts"].items() if v}
    if bad:
        print(f"  mismatching values: {bad}")
    if r["first_mismatch"]:
        f = r["first_mismatch"]
        print(f"  first: sample {f['sample']}, timestep {f['timestep']}, layer {f['layer']}, "
              f"neuron {f['neuron']}: {f['what']} expected {f['expected']}, "
              f"got {f['actual']}")
    for p in r["problems"]:
        print(f"  problem: {p}")
    acc = r["rtl_accuracy"]
    print(f"  accuracy: golden {r['golden_accuracy']:.2%}, RTL "
          f"{'n/a' if acc is None else f'{acc:.2%}'}")
    cps = r["cycles_per_s"]
    print(f"  simulated cycles {r['cycles']} ({r['cycles_per_sample']:.0f} per sample), "
          f"{'n/a' if cps is None else f'{cps:,.0f}'} cycles/s; wall {r['wall_s']:.1f} s")
    if r["waveform"]:
        print(f"  waveform: {r['waveform']}")
    if r["build_dir"]:
        print(f"  build directory: {r['build_dir']}")


def register(sub) -> None:
    from ._args import int_range, positive_int
    p = sub.add_parser("verify", help="check the generated core against the golden model "
                       "in a simulator", description=__doc__)
    p.add_argument("model", metavar="MODEL", help="artifact file (.qsnn)")
    p.add_argument("--sim", required=True, choices=SIMS,
                   help="simulator: icarus, verilator (cocotb) or amaranth")
    p.add_argument("--samples", type=positive_int, default=None,
                   help="verify the first N test samples (default: the whole test split)")
    p.add_argument("--lanes", default="1",
                   help="parallel lanes P: one value, or one per layer as P1,P2,... "
                        "(default 1)")
    p.add_argument("--seed", type=int_range(0, 2**32 - 1), default=0,
                   help="seed of the randomized back-pressure (default 0)")
    p.add_argument("--build-dir", default=None,
                   help="keep the bundle, build and waveforms here (default: a temporary "
                        "directory, kept only on a mismatch)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(func=run)
