"""``qsnn-hw verify``: run a trained model's generated core on its test set in a simulator
and check it against the integer golden model, bit for bit.

Inputs: the test split of the dataset named in the artifact's training config, encoded
exactly as the trainer encodes its test set (``qsnn_hw.train.trainer.eval_encodings``:
same encoding, timesteps, input bits and seeds), so the samples are the ones behind the
accuracy the trainer reported.

Simulators: ``icarus`` and ``verilator`` run the cocotb testbench of the package
(``qsnn_hw.verify``: preloaded stimulus, randomized back-pressure); ``amaranth`` runs the
same core in Amaranth's simulator. Either way every layer's spikes and states at every
timestep, the counts and predictions are compared with the golden model. The core is the
one the flags describe, or exactly a build's with ``--config BUILD/report.json`` (RAM and
SPRAM weights are written through the weight-load port first, as ``qsnn-hw run`` does on
the board). Exit status 0 when everything matches, 1 on any mismatch, 2 on a usage error.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from ..errors import UserError
from ..verify import SIMULATORS
from ..verify.compare import waveform_viewer_hint


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
    net = art.network
    if net.n_in != data.n_in or net.n_out != data.n_classes:
        raise UserError(f"the network takes {net.n_in} inputs and has {net.n_out} outputs; "
                        f"dataset {cfg.dataset} has {data.n_in} inputs and "
                        f"{data.n_classes} classes: give the dataset the network was "
                        f"trained on (from Python, Core.verify(x) takes inputs of your "
                        f"own)")
    x_test, y = data.x_test, data.y_test
    if samples is not None:
        x_test, y = x_test[:samples], y[:samples]
    chunks = [enc.golden_input() for _, enc in eval_encodings(cfg, x_test, 1)]
    x = np.concatenate(chunks) if chunks else np.zeros((0, cfg.timesteps, art.network.n_in))
    return x.astype(np.int64), y


def run(args) -> int:
    from ..artifact import load_artifact
    from ._core import core_config

    model = Path(args.model)
    if not model.exists():
        raise UserError(f"artifact {model} does not exist")
    art = load_artifact(model)
    config = core_config(args, art.network)
    x, y = dataset_inputs(art, args.samples)
    if len(x) == 0:
        raise UserError("no test samples to verify")
    if args.sim in ("icarus", "verilator"):
        from ..verify.tools import find_simulator
        find_simulator(args.sim)       # a missing simulator: one line, before any work
    report = verify_model(art, x, y, config, args.sim, seed=args.seed,
                          build_dir=args.build_dir, model=str(model), verbose=args.verbose)
    if args.json:
        print(json.dumps(report, indent=1))
    else:
        _print(report)
    return 0 if report["ok"] else 1


def verify_model(art, x, y, config, sim: str, *, seed: int = 0, build_dir=None,
                 model: str = "", verbose: bool = False) -> dict:
    """Verify ``art``'s core built with ``config`` on ``x`` (labels ``y`` or None) in
    ``sim``; the report of ``qsnn-hw verify --json``. ``build_dir`` None: a temporary
    directory, removed unless the run failed (then it holds the bundle, waveform and the
    simulator's log). ``verbose``: the simulator's output on stdout instead of its log."""
    from ..verify import verify_core

    keep = build_dir is not None
    build = Path(build_dir) if keep else Path(tempfile.mkdtemp(prefix="qsnn-verify-"))
    ok = interrupted = False
    try:
        t0 = time.perf_counter()
        res = verify_core(art.network, x, config, sim=sim, build_dir=build, seed=seed,
                          describe="qsnn-hw verify", verbose=verbose)
        wall = time.perf_counter() - t0
        ok = bool(res["ok"])
    except KeyboardInterrupt:
        interrupted = True
        raise
    finally:
        # kept after a mismatch or a crash (it holds the bundle, the build and the
        # waveform to look at); an interrupted run leaves nothing behind
        if not keep and (ok or interrupted or not any(build.iterdir())):
            shutil.rmtree(build, ignore_errors=True)
    gold_preds = np.asarray(res["golden_predictions"])
    preds = np.asarray(res["predictions"])
    has_y = y is not None and preds.shape == np.shape(y)
    return {
        "model": model, "sim": sim, "core": config.to_dict(), "seed": seed,
        "samples": int(x.shape[0]), "timesteps": int(x.shape[1]), "ok": ok,
        "mismatches": int(res["mismatches"]), "mismatch_counts": res["mismatch_counts"],
        "first_mismatch": res["first"], "problems": res.get("problems", []),
        "golden_accuracy": float(np.mean(gold_preds == y)) if y is not None else None,
        "rtl_accuracy": float(np.mean(preds == y)) if has_y else None,
        "cycles": res["cycles"], "cycles_per_sample": (res["cycles"] or 0) / len(x),
        "sim_wall_s": res["sim_wall_s"], "cycles_per_s": res["cycles_per_s"],
        "wall_s": wall, "waveform": res.get("waveform"),
        "build_dir": str(build) if (keep or not ok) else None,
    }


def _print(r: dict) -> None:
    from ..hdl.config import CoreConfig
    status = "OK: bit-exact" if r["ok"] else "MISMATCH"
    print(f"verify {r['model']} on {r['sim']} ({CoreConfig.from_dict(r['core']).describe()})"
          f": {status}")
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
        print(f"  open it with: {waveform_viewer_hint(r['waveform'])}")
    if r["build_dir"]:
        print(f"  build directory: {r['build_dir']}")


def register(sub) -> None:
    from ._args import add_quiet, int_range, positive_int
    from ._core import add_core_options
    p = sub.add_parser("verify", help="check the generated core against the golden model "
                       "in a simulator", description=__doc__)
    p.add_argument("model", metavar="MODEL", help="artifact file (.qsnn)")
    p.add_argument("--sim", required=True, choices=SIMULATORS,
                   help="simulator: icarus, verilator (cocotb) or amaranth")
    p.add_argument("--samples", type=positive_int, default=None,
                   help="verify the first N test samples (default: the whole test split)")
    p.add_argument("--seed", type=int_range(0, 2**32 - 1), default=0,
                   help="seed of the randomized back-pressure (default 0)")
    p.add_argument("--build-dir", default=None,
                   help="keep the bundle, build and waveforms here (default: a temporary "
                        "directory, kept only on a mismatch)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    add_quiet(p)
    p.add_argument("--verbose", action="store_true",
                   help="show the simulator's output (compiler commands, cocotb's log); "
                        "default: kept in BUILD/SIM/sim.log, named on a failure")
    add_core_options(p)
    p.set_defaults(func=run)
