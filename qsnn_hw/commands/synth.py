"""``qsnn-hw synth``: an artifact -> a bitstream for a board, plus a resource and timing
report (``report.json`` and ``report.md``) read from nextpnr's own JSON report.

The board top wraps the core in a UART bridge (``qsnn-hw run`` talks to it), clocks it
from a PLL when the clock differs from the board clock, and shows status and the
predicted class on the LEDs (docs/boards.md). The build runs in a temporary directory
that replaces ``--out`` only when it succeeded; a failed build is kept in
``OUT.failed`` for its logs. An earlier build in ``--out`` (a ``report.json``) is replaced
only with ``--force``; a file, or a non-empty directory that is not a build, never is
(checked before the build starts). Exit status: 0 = built and timing met, 1 = built but
timing failed, 2 = error (does not fit, missing tool, bad input).

Clock (``--clock``): ``auto`` (default) builds at the board's default clock, reads the
Fmax nextpnr achieved and builds again at the fastest clock the PLL makes within it,
stepping down if that rebuild misses timing; ``--out`` gets the fastest build that met
timing. A number fixes the clock (one build).

Weights (``--weights``): ``bram`` puts every layer's weights in the bitstream as block-RAM
ROMs; ``spram`` puts them in the iCE40 UltraPlus' SPRAM (SB_SPRAM256KA), a RAM that
``qsnn-hw run`` loads over the UART after configuration; ``auto`` (default) uses ROMs
while they fit the block RAM and moves the largest layers to SPRAM when they do not.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from ..artifact import load_artifact
from ..errors import UserError
from ..hdl.config import CoreConfig
from ._core import add_core_options, core_config
from ._out import add_force, check_out


def board_choices():
    from ..boards.boards import BOARDS
    return list(BOARDS)


def default_count_bits(art) -> int:
    """Counter width that can never saturate: a neuron spikes at most once per timestep,
    so T timesteps need ``T.bit_length()`` bits (16 when T is unknown). Narrow counters
    shorten the argmax scan's compare path (an Fmax limiter on the iCE40)."""
    steps = (art.config or {}).get("timesteps")
    return max(1, int(steps).bit_length()) if isinstance(steps, int) and steps > 0 else 16


def board_config(art, board: str, config: CoreConfig, weights: str | None) -> CoreConfig:
    """``config`` with its weight storage placed for ``board`` (``weights``: "auto",
    "bram" or "spram"; None keeps the storage ``config`` names)."""
    from ..boards.build import BuildError, resolve_weights
    if weights is None:
        return config
    try:
        return resolve_weights(art.network, config, board, weights)[0]
    except (BuildError, ValueError) as exc:
        raise UserError(str(exc)) from None


def model_cycles(art, config: CoreConfig, samples: int = 20) -> dict:
    """Cycles per sample of ``config``'s core on the artifact's test samples (up to
    ``samples``), from the golden model's spikes and the exact cycle model."""
    from ..boards.samples import test_samples
    from ..golden import simulate
    from ..hdl.cycles import network_cycles
    from ..hdl.geometry import network_geometry
    x, _, what = test_samples(art, samples)
    per = network_cycles(art.network, x, simulate(art.network, x).spikes,
                         network_geometry(art.network, config))
    return {"per_sample": float(per.mean()),
            "source": f"cycle model, {x.shape[0]} samples of the {what}"}


def _log(message: str) -> None:
    from ..progress import line
    line(f"synth: {message}")


def run_synth(model: Path, board: str, out, config: CoreConfig, *, clock=None,
              toolchain="yowasp", baud=115200, seed=1, log=_log, cycles=None) -> dict:
    """Build ``model`` with exactly ``config`` for ``board`` (boards.build.synthesize;
    ``clock``: MHz, None for the board's default, or "auto"); messages go to ``log``
    (default: progress lines on stderr; None: none), the tools' stages to a progress
    bar (:mod:`qsnn_hw.progress`). ``cycles``: measured cycles per sample for the
    report's microseconds (default: :func:`model_cycles`)."""
    from .._extras import need
    from ..boards.boards import get_board
    from ..boards.build import BuildError, ToolMissing, resolve_tools, synthesize
    model = Path(model)
    try:
        spec = get_board(board)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    need(spec.platform_module)      # the tools, checked before any work or progress
    try:
        resolve_tools(spec.family, toolchain)
    except ToolMissing as exc:
        raise UserError(str(exc)) from None
    if not model.exists():
        raise UserError(f"artifact {model} does not exist")
    art = load_artifact(model)
    info = {"file": model.name, "sha256": hashlib.sha256(model.read_bytes()).hexdigest()}
    if cycles is None:
        cycles = model_cycles(art, config)
    try:
        return synthesize(art.network, board, out, config, clock_mhz=clock,
                          toolchain=toolchain, baud=baud, seed=seed,
                          model_info=info, log=log, cycles=cycles)
    except BuildError as exc:
        raise UserError(str(exc)) from None


def run(args) -> int:
    out = args.out or f"build/{args.board}"
    model = Path(args.model)
    if not model.exists():
        raise UserError(f"artifact {model} does not exist")
    check_out(out, outputs=("report.json",), force=args.force, replaces_dir=True)
    art = load_artifact(model)
    config = core_config(args, art.network, count_bits_default=default_count_bits(art))
    # --config names the storage of a verified core: keep it; otherwise place the weights
    config = board_config(art, args.board, config, None if args.config else args.weights)
    report = run_synth(model, args.board, out, config, clock=args.clock,
                       toolchain=args.toolchain, baud=args.baud, seed=args.seed)
    print((Path(out) / "report.md").read_text())
    print(f"wrote {out}/{report['bitstream']}, {out}/report.json, {out}/report.md")
    if report["weights"].get("spram_layers"):
        print("the weights of layers " + ", ".join(map(str, report["weights"]["spram_layers"]))
              + " are in SPRAM: `qsnn-hw run ... --report " + f"{out}/report.json` loads "
              "them over the UART before the first sample")
    if not report["timing_pass"]:
        if report["clock"]["chosen"] == "auto":
            tried = ", ".join(f"{a['mhz']:g}" for a in report["clock"]["attempts"])
            print(f"timing FAILED at every clock tried ({tried} MHz): give --clock below "
                  f"the Fmax above, or use fewer --lanes")
        else:
            print("timing FAILED: lower --clock to the Fmax above, or use fewer --lanes")
        return 1
    return 0


def register(sub) -> None:
    from ._args import add_quiet, auto_or, float_range, int_range
    p = sub.add_parser("synth", help="build a bitstream for a board and report resources/Fmax",
                       description=__doc__)
    p.add_argument("model", metavar="MODEL", help="artifact file (.qsnn)")
    p.add_argument("--board", required=True, choices=board_choices(), metavar="BOARD",
                   help=" | ".join(board_choices()))
    p.add_argument("--clock", type=auto_or(float_range(1, 500)), default="auto",
                   metavar="auto|MHZ",
                   help="core clock: auto (default: build at 24 MHz on iCEBreaker, 50 on "
                        "ULX3S, then again at the fastest clock the achieved Fmax allows) "
                        "or MHz (one build); a PLL makes it unless it equals the board "
                        "clock (12 / 25 MHz)")
    p.add_argument("--out", default=None, help="build directory (default: build/BOARD)")
    add_force(p, "an earlier build (a directory with report.json)")
    p.add_argument("--toolchain", choices=("yowasp", "system"), default="yowasp",
                   help="yowasp: WebAssembly tools from PyPI (default); system: yosys, "
                        "nextpnr-*, icepack/ecppack on PATH")
    p.add_argument("--baud", type=int_range(1200, 3_000_000), default=115200,
                   help="UART bit rate (default 115200)")
    p.add_argument("--seed", type=int_range(0, 2**31 - 1), default=1,
                   help="nextpnr placement seed (default 1)")
    p.add_argument("--weights", choices=("auto", "bram", "spram"), default="auto",
                   help="weight storage: auto (default: block-RAM ROMs while they fit, else "
                        "the largest layers in SPRAM), bram (ROMs in the bitstream), spram "
                        "(iCE40 UltraPlus SPRAM, loaded over the UART by qsnn-hw run); "
                        "ignored with --config (its storage is kept)")
    add_quiet(p)
    add_core_options(p, storage=False)
    p.set_defaults(func=run)
