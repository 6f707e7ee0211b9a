"""Resource and Fmax sweep over the number of lanes P for one model and board (real
Yosys/nextpnr builds through qsnn_hw.boards.build), plus the plot in docs/boards.md.

    python bench/board_sweep.py --board icebreaker --clock 24 --lanes "1;2;4;8" \
        --model reference --out bench/results/sweep-icebreaker.json
    python bench/board_sweep.py --plot bench/results/sweep-*.json --png docs/boards_lanes.png

``--model``: ``reference`` (the trained digits model of rtl/, ``rtl/digits.qsnn``: 64
direct 4-bit inputs -> 128 -> 10, 4-bit weights, 4-bit exponential states), an artifact
path, or ``random:M,N1,...,NL`` (seeded random network with 4-bit weights and 4-bit
exponential states, for capacity builds; ``--weights auto`` puts layers that do not fit
the block RAM into the iCE40 UltraPlus' SPRAM). The core options are CoreConfig's
(``--quantizer``, ``--fifo-depth``, ``--count-bits``). Each build prints one markdown row
as soon as it finishes; the JSON keeps every report. Builds run one at a time (the
machine is shared).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from qsnn_hw.commands._args import auto_or, float_range  # noqa: E402


def load_model(spec: str):
    """``(network, counter bits)``: an artifact's counters are sized as ``qsnn-hw synth``
    sizes them (its timesteps), the others get 16 bits."""
    import numpy as np

    from qsnn_hw.artifact import load_artifact
    from qsnn_hw.commands.synth import default_count_bits
    from qsnn_hw.testing import random_network
    if spec == "reference":
        spec = str(ROOT / "rtl" / "digits.qsnn")
    if spec.startswith("random:"):
        sizes = [int(v) for v in spec[7:].split(",")]
        return random_network(np.random.default_rng(0), sizes=sizes, input_bits=1,
                              weight_bits=4, state_bits=4, family="exponential",
                              reset="subtract", bias=False, frac_bits=0), 16
    art = load_artifact(spec)
    return art.network, default_count_bits(art)


def hdl_state() -> str:
    """The commit and whether qsnn_hw/hdl had uncommitted changes when measured."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                              capture_output=True, text=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "qsnn_hw/hdl"], cwd=ROOT,
                               capture_output=True, text=True).stdout.strip()
        return head + ("+dirty-hdl" if dirty else "")
    except OSError:
        return "unknown"


def row(r: dict) -> str:
    res = r["resources"]
    logic = res.get("logic_cells") or res.get("luts")
    fmax = min(f["achieved_mhz"] for f in r["fmax"].values())
    dsp = res.get("dsp", {"used": 0})["used"]
    spram = res.get("spram", {}).get("used", "-")
    return (f"| {r['board']} | {r['model']['sizes']} | {r['lanes']} | "
            f"{logic['used']:,} / {logic['available']:,} | {res['ffs']['used']:,} | "
            f"{res['bram']['used']} / {res['bram']['available']} | {spram} | {dsp} | "
            f"{fmax:.1f} | {r['clock']['actual_mhz']:g} | "
            f"{'pass' if r['timing_pass'] else 'FAIL'} | {r['seconds']:.0f} |")


HEADER = ("| board | sizes | P | logic (LC or LUT4) | FF | EBR | SPRAM | DSP | Fmax MHz | "
          "clock MHz | timing | build s |\n"
          "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|")


def lane_settings(spec: str) -> list:
    """``"1;2,1"`` -> ``[1, (2, 1)]``: one lanes value per build."""
    return [tuple(int(v) for v in p.split(",")) if "," in p else int(p)
            for p in spec.split(";")]


def core_config(args, lanes, count_bits):
    """The CoreConfig of one build from the flags (``--pipelined`` and ``--min-fifo``
    are the old spellings of ``--quantizer pipelined`` and ``--fifo-depth min``)."""
    from qsnn_hw.hdl.config import CoreConfig
    depth = "min" if args.min_fifo else args.fifo_depth
    return CoreConfig(lanes=lanes, count_bits=args.count_bits or count_bits,
                      fifo_depth=depth if depth in ("default", "min") else int(depth),
                      quantizer="pipelined" if args.pipelined else args.quantizer)


def sweep(args) -> None:
    from qsnn_hw.boards.build import BuildError, resolve_weights, synthesize
    net, count_bits = load_model(args.model)
    results = []
    print(HEADER, flush=True)
    for p in lane_settings(args.lanes):
        tag = "-".join(map(str, p)) if isinstance(p, tuple) else p
        out = Path(args.build_root) / f"{args.board}-P{tag}"
        t0 = time.time()
        state = hdl_state()   # the gateware as elaborated (before the long build)
        try:
            config, _ = resolve_weights(net, core_config(args, p, count_bits).check(net),
                                        args.board, args.weights)
            rep = synthesize(net, args.board, out, config, clock_mhz=args.clock,
                             toolchain=args.toolchain, seed=args.seed,
                             model_info={"spec": args.model})
        except BuildError as exc:
            print(f"| {args.board} | {args.model} | {p} | build failed: "
                  f"{str(exc).splitlines()[0]} |", flush=True)
            results.append({"board": args.board, "lanes": p, "error": str(exc),
                            "seconds": time.time() - t0})
            continue
        rep["hdl_state"] = state
        results.append(rep)
        print(row(rep), flush=True)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=1) + "\n")


def plot(args) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    for path in args.plot:
        reps = [r for r in json.loads(Path(path).read_text()) if "error" not in r]
        if not reps:
            continue
        # x axis: the first (largest) layer's lanes
        reps.sort(key=lambda r: r["lanes"] if isinstance(r["lanes"], int) else r["lanes"][0])
        lanes = [r["lanes"] if isinstance(r["lanes"], int) else r["lanes"][0] for r in reps]
        label = f"{reps[0]['board']} {reps[0]['model']['sizes']}"
        logic = [(r["resources"].get("logic_cells") or r["resources"]["luts"]) for r in reps]
        ax1.plot(lanes, [100 * v["used"] / v["available"] for v in logic], "o-",
                 label=f"{label} logic")
        ax1.plot(lanes, [100 * r["resources"]["bram"]["used"] /
                         r["resources"]["bram"]["available"] for r in reps], "s--",
                 label=f"{label} EBR")
        ax2.plot(lanes, [min(f["achieved_mhz"] for f in r["fmax"].values()) for r in reps],
                 "o-", label=label)
    ax1.set(xscale="log", xlabel="lanes P", ylabel="% of device", title="resources")
    ax2.set(xscale="log", xlabel="lanes P", ylabel="MHz", title="Fmax (nextpnr)")
    for ax in (ax1, ax2):
        ax.set_xticks([1, 2, 4, 8, 16], labels=["1", "2", "4", "8", "16"])
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(args.png, dpi=110)
    print(f"wrote {args.png}")


def main() -> None:
    from qsnn_hw.boards.boards import BOARDS
    from qsnn_hw.hdl.config import QUANTIZERS
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--board", default="icebreaker", choices=list(BOARDS))
    ap.add_argument("--model", default="reference")
    ap.add_argument("--lanes", default="1;2;4;8",
                    help="lane settings separated by ';', each P or P1,P2,... per layer")
    ap.add_argument("--clock", type=auto_or(float_range(1, 500)), default=None,
                    help="core clock in MHz, or auto (the fastest the achieved Fmax allows; "
                         "default: the board's default clock)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--count-bits", type=int, default=None,
                    help="counter width (default: as qsnn-hw synth sizes it)")
    ap.add_argument("--quantizer", choices=QUANTIZERS, default="auto",
                    help="state quantizer (CoreConfig.quantizer)")
    ap.add_argument("--fifo-depth", default="default",
                    help="output FIFOs: default, min or a depth in words (CoreConfig)")
    ap.add_argument("--pipelined", action="store_true", help="= --quantizer pipelined")
    ap.add_argument("--min-fifo", action="store_true", help="= --fifo-depth min")
    ap.add_argument("--weights", choices=("auto", "bram", "spram"), default="auto",
                    help="weight storage (qsnn-hw synth --weights)")
    ap.add_argument("--toolchain", default="yowasp")
    ap.add_argument("--build-root", default="build/sweep")
    ap.add_argument("--out", default="bench/results/sweep.json")
    ap.add_argument("--plot", nargs="*", help="sweep JSON files to plot instead of building")
    ap.add_argument("--png", default="docs/boards_lanes.png")
    args = ap.parse_args()
    plot(args) if args.plot else sweep(args)


if __name__ == "__main__":
    main()
