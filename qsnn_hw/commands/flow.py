"""``qsnn-hw flow``: the whole pipeline in one command, ending in one summary table.

train (QAT weights + SQUAT exponential states) -> export (the artifact) -> generate
(Verilog + manifest) -> verify (the best simulator available: Verilator, else Icarus,
else Amaranth's) -> synth (bitstream and report for a board, by default at the fastest
clock the achieved Fmax allows: ``--clock auto``, see ``qsnn-hw synth``).

Every stage is a library call in this process (the trainer, ``qsnn_hw.hdl.emit``,
``qsnn_hw.verify``, ``qsnn_hw.boards.build``), and one :class:`~qsnn_hw.hdl.config.CoreConfig`
travels through generate, verify and synth: the core that is verified is the core that
is built. Each stage reports its outcome; a failing stage ends the flow with its message.
Everything lands in ``--out``: ``train/`` (artifact, metrics), ``rtl/`` (Verilog,
manifest), ``verify.json``, ``build-<board>/`` (bitstream, report) and ``summary.json`` /
``summary.md``. An ``--out`` that already holds any of them is refused before training
starts; ``--force`` runs the flow again over them. The earlier outputs are set aside
while it runs: a flow that is interrupted or stops with an error removes what it wrote
and puts them back, so ``--out`` holds one whole flow's outputs, never a mix.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from .._io import atomic_write_text
from ..errors import UserError
from ._out import add_force, check_out, replacing


def pick_simulator(choice: str) -> str:
    """``choice``, or for "auto" the first installed of Verilator (>= 5.036), Icarus,
    Amaranth's simulator (cocotb needed for the first two: the ``sim`` extra)."""
    if choice != "auto":
        return choice
    from ..verify.tools import simulator_available
    for sim in ("verilator", "icarus"):
        if simulator_available(sim):
            return sim
    return "amaranth"


def train_step(args, train_dir: Path) -> dict:
    """``qsnn-hw train`` with the flow's settings, in this process; returns metrics."""
    from ..progress import line
    from . import train
    argv = ["train", "--dataset", args.dataset, "--out", str(train_dir), "--no-plots",
            "--epochs", str(args.epochs), "--hidden", args.hidden,
            "--timesteps", str(args.timesteps), "--weight-mode", "qat",
            "--weight-bits", str(args.weight_bits), "--state-mode", "squat",
            "--state-bits", str(args.state_bits), "--state-family", "exponential",
            "--seed", str(args.seed)]
    line(f"flow: train settings: {' '.join(argv[1:])}")
    parser = argparse.ArgumentParser(prog="qsnn-hw")
    train.register(parser.add_subparsers())
    targs = parser.parse_args(argv)
    targs.flow_step = True      # its summary is a progress line of the flow
    try:
        train.run(targs)
    except (ValueError, TypeError, FileNotFoundError) as exc:
        raise UserError(f"training failed: {exc}") from None
    return json.loads((train_dir / "metrics.json").read_text())


def synth_step(args, model: Path, config, out: Path, summary: dict) -> None:
    """Build exactly ``config`` for the board; the report (or the error) into
    ``summary``."""
    from ..progress import line
    from .synth import run_synth
    build_dir = out / f"build-{args.board}"
    line(f"flow: synth for {args.board} into {build_dir}")
    try:
        ver = summary.get("verify") or {}
        cycles = ({"per_sample": ver["cycles_per_sample"],
                   "source": f"simulated on {ver['sim']}, {ver['samples']} test samples"}
                  if ver.get("cycles_per_sample") else None)
        summary["synth"] = run_synth(
            model, args.board, build_dir, config, clock=args.clock,
            toolchain=args.toolchain, log=lambda m: line(f"flow: synth: {m}"),
            cycles=cycles)
        summary["build_dir"] = str(build_dir)
        line(f"flow: synth {'met' if summary['synth']['timing_pass'] else 'MISSED'} "
             f"timing at {summary['synth']['clock']['actual_mhz']:g} MHz")
    except UserError as exc:
        summary["synth_error"] = str(exc).splitlines()[0]
        line(f"flow: synth failed: {summary['synth_error']}")


def clock_choice(report: dict) -> str:
    """How a build's clock was chosen: "fixed", or "auto" with the clocks built."""
    clock = report["clock"]
    if clock["chosen"] != "auto":
        return "fixed"
    return "auto: built at " + ", ".join(f"{a['mhz']:g}" for a in clock["attempts"]) + " MHz"


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
            ("trained forward = golden (test spikes, per layer)",
             " / ".join(pct(a) for a in t.get("trained_layer_agreement") or []) or "n/a"),
            (f"RTL accuracy ({v['samples']} test samples, {v['via']})",
             f"{pct(v.get('rtl_accuracy'))} (golden on the same samples: "
             f"{pct(v.get('golden_accuracy'))})"),
            ("bit-exact (RTL vs golden)", "yes" if v["mismatches"] == 0 else
             f"NO ({v['mismatches']} mismatches)"),
            ("core (verified = synthesized)", s["core"]),
            ("cycles per sample (simulated)", f"{v['cycles_per_sample']:,.0f}")]
    if b:
        mhz = b["clock"]["actual_mhz"]
        cyc = v["cycles_per_sample"]
        fmax = min(f["achieved_mhz"] for f in b["fmax"].values())
        rows.append(("microseconds per sample", f"{cyc / mhz:.1f} at {mhz:g} MHz"))
        for r in b["resources"].values():
            if r["label"] in ("PLL", "I/O"):
                continue
            rows.append((f"{r['label']} ({b['board']})",
                         f"{r['used']:,} / {r['available']:,} "
                         f"({100 * r['used'] / max(r['available'], 1):.1f} %)"))
        rows.append(("Fmax", f"{fmax:.1f} MHz at a {mhz:g} MHz clock ({clock_choice(b)}): "
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


def flow_outputs(board: str) -> tuple[str, ...]:
    """The files in ``--out`` that mark an earlier (complete or interrupted) flow."""
    return ("summary.json", "train/model.qsnn", "train/checkpoint.npz", "rtl/qsnn_core.v",
            "rtl/qsnn_core.json", "verify.json", f"build-{board}/report.json")


def flow_files(board: str) -> tuple[str, ...]:
    """Everything a flow writes in ``--out``."""
    return ("train", "rtl/qsnn_core.v", "rtl/qsnn_core.json", "verify.json",
            f"build-{board}", "summary.json", "summary.md")


def run(args) -> int:
    from ..boards.boards import get_board
    try:
        board = get_board(args.board)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    # the tools the steps after training need, checked before training
    if args.sim in ("icarus", "verilator"):
        from ..verify.tools import find_simulator
        find_simulator(args.sim)
    if not args.no_synth:
        from .._extras import need
        from ..boards.build import ToolMissing, resolve_tools
        need(board.platform_module)
        try:
            resolve_tools(board.family, args.toolchain)
        except ToolMissing as exc:
            raise UserError(str(exc)) from None
    # every lane costs a LIF datapath, a quantizer and a leaked-level table: the UP5K
    # holds a few (docs/boards.md), the ECP5 boards many more
    lanes_default = "2" if args.board == "icebreaker" else "4"
    out = check_out(args.out, outputs=flow_outputs(args.board), force=args.force)
    # an interrupted or failed flow leaves --out as it found it (an earlier flow's
    # outputs are set aside, and restored unless this one finishes)
    with replacing(out, flow_files(args.board)):
        out.mkdir(parents=True, exist_ok=True)
        return _flow(args, out, lanes_default)


def _flow(args, out: Path, lanes_default: str) -> int:
    from ..artifact import load_artifact
    from ..progress import line, stage
    from ._core import core_config
    from .generate import write_core_files
    from .synth import board_config, default_count_bits
    from .verify import dataset_inputs, verify_model
    times = {}
    t_all = time.perf_counter()

    n = 4 if args.no_synth else 5
    # ---- train + export ---------------------------------------------------------------
    t0 = time.perf_counter()
    with stage("train", f"flow [1/{n}] "):
        metrics = train_step(args, out / "train")
    model = out / "train" / "model.qsnn"
    with stage(f"export {model}", f"flow [2/{n}] "):
        art = load_artifact(model)
        net = art.network
    times["train"] = time.perf_counter() - t0

    # ---- one core configuration: generate, verify and synth all use it --------------
    config = core_config(args, net, lanes_default=None if args.config else lanes_default,
                         count_bits_default=None if args.config else default_count_bits(art))
    if not args.no_synth and not args.config:
        config = board_config(art, args.board, config, "auto")
    line(f"flow: core {config.describe()}")
    with stage(f"generate {out / 'rtl'}", f"flow [3/{n}] "):
        v, _ = write_core_files(net, out / "rtl", config, name="qsnn_core")

    # ---- verify -----------------------------------------------------------------------
    t0 = time.perf_counter()
    sim = pick_simulator(args.sim)
    with stage(f"verify on {sim} ({args.samples} test samples)", f"flow [4/{n}] "):
        x, y = dataset_inputs(art, args.samples)
        ver = verify_model(art, x, y, config, sim, model=str(model), verbose=args.verbose)
        ver["via"] = f"qsnn_hw.verify on {sim}"
        atomic_write_text(out / "verify.json", json.dumps(ver, indent=1, default=str) + "\n")
    times["verify"] = time.perf_counter() - t0
    line(f"flow: verify {'bit-exact' if ver['ok'] else 'MISMATCH'}")

    # ---- synth ------------------------------------------------------------------------
    summary = {"dataset": args.dataset, "sizes": [net.n_in] + [la.n_out for la in net.layers],
               "timesteps": args.timesteps, "weight_bits": args.weight_bits,
               "state_bits": args.state_bits, "core": config.describe(),
               "config": config.to_dict(), "board": args.board,
               "train": metrics, "verify": ver, "synth": None, "times": times}
    if not args.no_synth:
        t0 = time.perf_counter()
        with stage(f"synth for {args.board}", f"flow [5/{n}] "):
            synth_step(args, model, config, out, summary)
        times["synth"] = time.perf_counter() - t0
    summary["seconds"] = time.perf_counter() - t_all
    rows = summary_rows(summary)
    atomic_write_text(out / "summary.json", json.dumps(summary, indent=1, default=str) + "\n")
    atomic_write_text(out / "summary.md", markdown(rows))
    w = max(len(k) for k, _ in rows)
    print()
    print("\n".join(f"{k:<{w}}  {v}" for k, v in rows))
    ok = ver["ok"] and (args.no_synth or (summary["synth"] or {}).get("timing_pass"))
    return 0 if ok else 1


def register(sub) -> None:
    from ..boards.boards import BOARDS
    from ..data import DATASETS
    from ._args import add_quiet, auto_or, float_range, int_range
    from ._core import add_core_options
    p = sub.add_parser("flow", help="train -> export -> generate -> verify -> synth, one "
                       "summary table", description=__doc__)
    p.add_argument("--dataset", default="digits", choices=DATASETS,
                   help="dataset (digits needs no download; default)")
    p.add_argument("--board", default="icebreaker", choices=list(BOARDS), metavar="BOARD",
                   help=" | ".join(BOARDS))
    p.add_argument("--out", default="runs/flow", help="output directory (default runs/flow)")
    add_force(p, "an earlier flow's outputs")
    p.add_argument("--epochs", type=int_range(1, 100000), default=30,
                   help="training epochs (default 30; fewer = faster, less accurate)")
    p.add_argument("--hidden", default="64", help="hidden layer sizes, comma list (default 64)")
    p.add_argument("--timesteps", type=int_range(1, 10000), default=16,
                   help="timesteps T per sample, 1..10000")
    p.add_argument("--weight-bits", type=int_range(2, 16), default=4,
                   help="QAT weight bits, 2..16")
    p.add_argument("--state-bits", type=int_range(1, 8), default=4,
                   help="SQUAT state bits (exponential levels), 1..8")
    p.add_argument("--seed", type=int_range(0, 2**32 - 1), default=0,
                   help="training seed (same seed, same artifact)")
    p.add_argument("--samples", type=int_range(1, 1_000_000), default=40,
                   help="test samples to verify in simulation (default 40)")
    p.add_argument("--sim", default="auto", choices=("auto", "verilator", "icarus", "amaranth"),
                   help="simulator for verify (auto: Verilator, else Icarus, else Amaranth)")
    p.add_argument("--clock", type=auto_or(float_range(1, 500)), default="auto",
                   metavar="auto|MHZ",
                   help="core clock: auto (default: the fastest the achieved Fmax allows, "
                        "qsnn-hw synth --help) or MHz")
    p.add_argument("--toolchain", choices=("yowasp", "system"), default="yowasp",
                   help="yowasp (Yosys/nextpnr from PyPI) or system (the tools on PATH)")
    p.add_argument("--no-synth", action="store_true", help="stop after verification")
    add_quiet(p)
    p.add_argument("--verbose", action="store_true",
                   help="show the simulator's output (compiler commands, cocotb's log); "
                        "default: kept in sim.log in the build directory")
    # lanes default: 2 on the iCEBreaker, 4 on the ULX3S; weights placed for the board
    add_core_options(p, storage=False, lanes_default="2 on the iCEBreaker, 4 elsewhere")
    p.set_defaults(func=run)
