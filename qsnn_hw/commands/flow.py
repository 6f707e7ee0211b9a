"""``qsnn-hw flow``: the whole pipeline in one command, ending in one summary table.

train (QAT weights + SQUAT exponential states) -> export (the artifact) -> generate
(Verilog + manifest) -> verify (the best simulator available: Verilator, else Icarus,
else Amaranth's) -> synth (bitstream and report for a board).

Verification goes through ``qsnn-hw verify`` (cocotb on Icarus/Verilator, or Amaranth's
simulator) when that command is available; otherwise flow runs the Amaranth-simulator
equivalence itself (``qsnn_hw.hdl.sim_util.run_core`` against ``qsnn_hw.golden``) and
says so in the table. Everything lands in ``--out``: ``train/`` (artifact, metrics),
``rtl/`` (Verilog, manifest), ``verify.json``, ``build-<board>/`` (bitstream, report) and
``summary.json`` / ``summary.md``.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from .._io import atomic_write_text
from ..errors import UserError


def pick_simulator(choice: str) -> str:
    if choice != "auto":
        return choice
    if shutil.which("verilator"):
        return "verilator"
    if shutil.which("iverilog"):
        return "icarus"
    return "amaranth"


def _cli(argv: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "qsnn_hw.cli", *argv],
                          capture_output=True, text=True)


def verify_step(model: Path, sim: str, samples: int, lanes, seed: int = 0) -> dict:
    """``qsnn-hw verify --json`` if it exists, else the Amaranth equivalence here."""
    from ..cli import build_parser
    have_verify = "verify" in build_parser()._subparsers._group_actions[0].choices
    lanes_text = ",".join(map(str, lanes)) if isinstance(lanes, list) else str(lanes)
    if not have_verify:
        return _verify_amaranth(model, samples, lanes, "qsnn-hw verify not available")
    p = _cli(["verify", str(model), "--sim", sim, "--samples", str(samples),
              "--lanes", lanes_text, "--seed", str(seed), "--json"])
    if p.returncode in (0, 1):
        try:
            rep = json.loads(p.stdout[p.stdout.find("{"):])
            rep["via"] = f"qsnn-hw verify --sim {sim}"
            return rep
        except ValueError:
            pass    # a crash (exit 1 with a traceback), not a report
    print(f"flow: qsnn-hw verify --sim {sim} failed ({p.stderr.strip()[-300:]}); "
          f"falling back to Amaranth's simulator", file=sys.stderr)
    return _verify_amaranth(model, samples, lanes, f"qsnn-hw verify --sim {sim} failed")


def _verify_amaranth(model: Path, samples: int, lanes, reason: str) -> dict:
    from ..artifact import load_artifact
    from ..boards.samples import test_samples
    from ..golden import simulate
    from ..hdl.sim_util import run_core
    art = load_artifact(model)
    x, y, _ = test_samples(art, samples)
    gold = simulate(art.network, x)
    t0 = time.perf_counter()
    run = run_core(art.network, x, lanes=lanes)
    wall = time.perf_counter() - t0
    mism = sum(int(np.sum(a != b)) for a, b in zip(gold.spikes, run.spikes, strict=True))
    mism += int(np.sum(gold.counts != run.counts))
    mism += int(np.sum(gold.predictions != run.predictions)) + int(run.error)
    return {"via": f"flow's own Amaranth run_core vs golden ({reason})",
            "sim": "amaranth", "samples": int(x.shape[0]), "mismatches": mism,
            "golden_accuracy": float(np.mean(gold.predictions == y)) if y is not None else None,
            "rtl_accuracy": float(np.mean(run.predictions == y)) if y is not None else None,
            "cycles_per_sample": float(run.sample_cycles.mean()), "wall_s": wall}


def check_board_config(model: Path, lanes, pipelined, min_fifo: bool, samples: int) -> dict:
    """Run the configuration that is synthesized (pipelined quantizer / minimal FIFOs) in
    Amaranth's simulator on a few test samples against the golden model."""
    from ..artifact import load_artifact
    from ..boards.bridge import min_fifo_depths
    from ..boards.samples import test_samples
    from ..golden import simulate
    from ..hdl.sim_util import run_core
    art = load_artifact(model)
    x, _, _ = test_samples(art, samples)
    gold = simulate(art.network, x)
    run = run_core(art.network, x, lanes=lanes, pipelined=pipelined,
                   fifo_depth=min_fifo_depths(art.network, lanes) if min_fifo else None)
    mism = sum(int(np.sum(a != b)) for a, b in zip(gold.spikes, run.spikes, strict=True))
    mism += int(np.sum(gold.counts != run.counts)) + int(run.error)
    what = ", ".join(w for w, on in (("pipelined quantizer", pipelined),
                                     ("minimal FIFOs", min_fifo)) if on)
    return {"what": what, "samples": int(x.shape[0]), "mismatches": mism,
            "cycles_per_sample": float(run.sample_cycles.mean())}


def summary_rows(s: dict) -> list[tuple[str, str]]:
    t, v, b = s["train"], s["verify"], s.get("synth")

    def pct(x):
        return "n/a" if x is None else f"{100 * x:.2f} %"
    rows = [("dataset / network", f"{s['dataset']} {s['sizes']} (T = {s['timesteps']}, "
                                  f"{s['weight_bits']}-bit weights, {s['state_bits']}-bit "
                                  f"exponential states)"),
            ("float accuracy (test)", pct(t["float_accuracy"])),
            ("quantized accuracy (trainer's integer path)", pct(t["quantized_accuracy"])),
            ("golden-model accuracy", pct(t["golden_accuracy"])),
            (f"RTL accuracy ({v['samples']} test samples, {v['via']})",
             f"{pct(v.get('rtl_accuracy'))} (golden on the same samples: "
             f"{pct(v.get('golden_accuracy'))})"),
            ("bit-exact (RTL vs golden)", "yes" if v["mismatches"] == 0 else
             f"NO ({v['mismatches']} mismatches)"),
            ("cycles per sample (simulated, comparator quantizer)",
             f"{v['cycles_per_sample']:.0f}")]
    c = s.get("config_check")
    if c:
        rows.append((f"synthesized configuration ({c['what']}; {c['samples']} samples, "
                     f"Amaranth) bit-exact", "yes" if c["mismatches"] == 0 else
                     f"NO ({c['mismatches']} mismatches)"))
        rows.append(("cycles per sample (synthesized configuration)",
                     f"{c['cycles_per_sample']:.0f}"))
    if b:
        mhz = b["clock"]["actual_mhz"]
        cyc = c["cycles_per_sample"] if c else v["cycles_per_sample"]
        fmax = min(f["achieved_mhz"] for f in b["fmax"].values())
        rows.append(("microseconds per sample", f"{cyc / mhz:.1f} at {mhz:g} MHz"))
        for r in b["resources"].values():
            if r["label"] in ("PLL", "I/O"):
                continue
            rows.append((f"{r['label']} ({b['board']})",
                         f"{r['used']:,} / {r['available']:,} "
                         f"({100 * r['used'] / max(r['available'], 1):.1f} %)"))
        rows.append(("Fmax", f"{fmax:.1f} MHz vs {mhz:g} MHz requested: "
                             f"{'pass' if b['timing_pass'] else 'FAIL'}"))
        rows.append(("bitstream", f"{s['build_dir']}/{b['bitstream']}"))
    elif s.get("synth_error"):
        rows.append(("synth", f"FAILED: {s['synth_error']}"))
    else:
        rows.append(("synth", "skipped (--no-synth)"))
    rows.append(("wall time", f"{s['seconds']:.0f} s (train {s['times']['train']:.0f}, "
                              f"verify {s['times']['verify']:.0f}, synth "
                              f"{s['times'].get('synth', 0):.0f})"))
    return rows


def markdown(rows) -> str:
    return "\n".join(["| step | result |", "|---|---|"] +
                     [f"| {k} | {v} |" for k, v in rows]) + "\n"


def run(args) -> int:
    from ..artifact import load_artifact
    from ..boards.boards import get_board
    from ..hdl.emit import write_core
    from .generate import parse_lanes
    from .synth import run_synth
    try:
        get_board(args.board)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    if args.lanes is None:
        # every lane costs a LIF datapath, a quantizer and a leaked-level table: the UP5K
        # holds a few (docs/boards.md), the ECP5 boards many more
        args.lanes = "2" if args.board == "icebreaker" else "4"
    lanes = parse_lanes(args.lanes)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    times = {}
    t_all = time.perf_counter()

    # ---- train + export ---------------------------------------------------------------
    t0 = time.perf_counter()
    train_dir = out / "train"
    argv = ["train", "--dataset", args.dataset, "--out", str(train_dir), "--no-plots",
            "--epochs", str(args.epochs), "--hidden", args.hidden,
            "--timesteps", str(args.timesteps), "--weight-mode", "qat",
            "--weight-bits", str(args.weight_bits), "--state-mode", "squat",
            "--state-bits", str(args.state_bits), "--state-family", "exponential",
            "--seed", str(args.seed)]
    print(f"flow: train ({' '.join(argv[1:])})", flush=True)
    p = subprocess.run([sys.executable, "-m", "qsnn_hw.cli", *argv], text=True,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    if p.returncode != 0:
        raise UserError(f"training failed:\n{p.stdout[-1500:]}")
    metrics = json.loads((train_dir / "metrics.json").read_text())
    model = train_dir / "model.qsnn"
    art = load_artifact(model)
    net = art.network
    times["train"] = time.perf_counter() - t0

    # ---- generate ---------------------------------------------------------------------
    if isinstance(lanes, list) and len(lanes) != len(net.layers):
        raise UserError(f"--lanes lists {len(lanes)} values but the model has "
                        f"{len(net.layers)} layers")
    v, j = write_core(net, out / "rtl", lanes=lanes, name="qsnn_core")
    print(f"flow: generated {v}", flush=True)

    # ---- verify -----------------------------------------------------------------------
    t0 = time.perf_counter()
    sim = pick_simulator(args.sim)
    print(f"flow: verify on {sim} ({args.samples} test samples)", flush=True)
    ver = verify_step(model, sim, args.samples, lanes)
    atomic_write_text(out / "verify.json", json.dumps(ver, indent=1, default=str) + "\n")
    times["verify"] = time.perf_counter() - t0

    # ---- the synthesized configuration, if it differs from the verified one -------------
    pipelined = True if args.pipelined_quantizer else None
    min_fifo = bool(args.min_fifo)
    config_check = None
    if not args.no_synth and (pipelined or min_fifo) and args.config_samples:
        t0 = time.perf_counter()
        config_check = check_board_config(model, lanes, pipelined, min_fifo,
                                          args.config_samples)
        times["verify"] += time.perf_counter() - t0

    # ---- synth ------------------------------------------------------------------------
    summary = {"dataset": args.dataset, "sizes": [net.n_in] + [la.n_out for la in net.layers],
               "timesteps": args.timesteps, "weight_bits": args.weight_bits,
               "state_bits": args.state_bits, "lanes": lanes, "board": args.board,
               "train": metrics, "verify": ver, "synth": None, "times": times,
               "config_check": config_check}
    if not args.no_synth:
        t0 = time.perf_counter()
        build_dir = out / f"build-{args.board}"
        print(f"flow: synth for {args.board} into {build_dir}", flush=True)
        try:
            summary["synth"] = run_synth(model, args.board, build_dir, lanes=args.lanes,
                                         clock=args.clock, toolchain=args.toolchain,
                                         quiet=True,
                                         pipelined=pipelined,
                                         fifo_depth="min" if min_fifo else None)
            summary["build_dir"] = str(build_dir)
        except UserError as exc:
            summary["synth_error"] = str(exc).splitlines()[0]
        times["synth"] = time.perf_counter() - t0
    summary["seconds"] = time.perf_counter() - t_all
    rows = summary_rows(summary)
    atomic_write_text(out / "summary.json", json.dumps(summary, indent=1, default=str) + "\n")
    atomic_write_text(out / "summary.md", markdown(rows))
    w = max(len(k) for k, _ in rows)
    print()
    print("\n".join(f"{k:<{w}}  {v}" for k, v in rows))
    ok = ver["mismatches"] == 0 and (config_check is None or config_check["mismatches"] == 0) \
        and (args.no_synth or (summary["synth"] or {}).get("timing_pass"))
    return 0 if ok else 1


def register(sub) -> None:
    from ._args import float_range, int_range
    p = sub.add_parser("flow", help="train -> export -> generate -> verify -> synth, one "
                       "summary table", description=__doc__)
    p.add_argument("--dataset", default="digits", choices=("digits", "fashion_mnist", "shd"),
                   help="dataset (digits needs no download; default)")
    p.add_argument("--board", default="icebreaker",
                   help="icebreaker | ulx3s-12f | ulx3s-25f | ulx3s-45f | ulx3s-85f")
    p.add_argument("--out", default="runs/flow", help="output directory (default runs/flow)")
    p.add_argument("--epochs", type=int_range(1, 100000), default=30,
                   help="training epochs (default 30; fewer = faster, less accurate)")
    p.add_argument("--hidden", default="64", help="hidden layer sizes, comma list (default 64)")
    p.add_argument("--timesteps", type=int_range(1, 10000), default=16)
    p.add_argument("--weight-bits", type=int_range(2, 16), default=4)
    p.add_argument("--state-bits", type=int_range(1, 8), default=4)
    p.add_argument("--seed", type=int_range(0, 2**32 - 1), default=0)
    p.add_argument("--samples", type=int_range(1, 1_000_000), default=40,
                   help="test samples to verify in simulation (default 40)")
    p.add_argument("--sim", default="auto", choices=("auto", "verilator", "icarus", "amaranth"),
                   help="simulator for verify (auto: Verilator, else Icarus, else Amaranth)")
    p.add_argument("--lanes", default=None,
                   help="parallel lanes P, or P1,P2 per layer (default: 2 on the iCEBreaker, "
                        "4 on the ULX3S)")
    p.add_argument("--clock", type=float_range(1, 500), default=None,
                   help="core clock in MHz (default: the board's default)")
    p.add_argument("--toolchain", choices=("yowasp", "system"), default="yowasp")
    p.add_argument("--pipelined-quantizer", action="store_true",
                   help="synthesize with the pipelined state quantizer (fewer logic cells "
                        "for wide codes, n more cycles per timestep)")
    p.add_argument("--min-fifo", action="store_true",
                   help="smallest inter-layer FIFOs (one timestep of words per layer)")
    p.add_argument("--config-samples", type=int_range(0, 1000), default=2,
                   help="test samples to run in the synthesized configuration when it differs "
                        "from the verified one (Amaranth simulator; default 2, 0 = skip)")
    p.add_argument("--no-synth", action="store_true", help="stop after verification")
    p.set_defaults(func=run)
