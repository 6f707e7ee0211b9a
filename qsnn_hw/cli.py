"""The ``qsnn-hw`` command line. Each subcommand lives in ``qsnn_hw/commands/<name>.py``
and exposes ``register(subparsers)``, which adds its parser and sets ``func``.

Exit status, the same for every subcommand (docs/reliability.md):
0 done; 1 done, but the result failed its check (RTL/golden mismatch, timing missed,
failed sweep runs); 2 error (bad flag or input, an output that would be overwritten,
an unwritable path, a failed tool), reported as one line naming the flag and what to do
(``--debug``: re-raised, with its traceback and Python's status 1); 130 interrupted
(Ctrl-C)."""

from __future__ import annotations

import argparse
import importlib
import signal
import sys
import threading

from . import __version__
from .errors import UserError
from .progress import set_quiet

# Order = the order shown in --help (the pipeline order).
COMMANDS = ("demo", "train", "import", "export", "generate", "verify", "prove", "synth",
            "run", "flow", "sweep")
# commands whose module is not named as the command (``import`` is a Python keyword)
_MODULES = {"import": "nir_import", "export": "nir_export"}
# one example per command, shown at the end of its --help
EXAMPLES = {
    "demo": "qsnn-hw demo --samples 8",
    "train": "qsnn-hw train --out runs/w4s4 --epochs 30      "
             "# 4-bit QAT weights, 4-bit exponential SQUAT states\n"
             "  qsnn-hw train --out runs/conv --arch 16c3p1b-32c3p1s2b-10 --epochs 40",
    "import": "qsnn-hw import net.nir --out net.qsnn --weight-bits 8 --state-bits 4",
    "export": "qsnn-hw export runs/w4s4/model.qsnn --nir model.nir",
    "generate": "qsnn-hw generate runs/w4s4/model.qsnn --out rtl_out --lanes 2",
    "verify": "qsnn-hw verify runs/w4s4/model.qsnn --sim verilator --samples 100",
    "prove": "qsnn-hw prove runs/w4s4/model.qsnn      "
             "# or: qsnn-hw prove --protocol --depth 24",
    "synth": "qsnn-hw synth runs/w4s4/model.qsnn --board icebreaker --lanes 2 "
             "--out build/icebreaker",
    "run": "qsnn-hw run runs/w4s4/model.qsnn --board icebreaker --port /dev/ttyUSB1 "
           "--report build/icebreaker/report.json",
    "flow": "qsnn-hw flow --board icebreaker --out runs/flow",
    "sweep": "qsnn-hw sweep --grid squat --seeds 3 --out runs/squat",
}


def build_parser() -> argparse.ArgumentParser:
    from .commands._args import HelpFormatter
    parser = argparse.ArgumentParser(
        prog="qsnn-hw", allow_abbrev=False, formatter_class=HelpFormatter,
        description="Quantization-aware SNN training to a bit-exact FPGA core.",
        epilog="exit status: 0 ok, 1 check failed (mismatch, timing), 2 error, "
               "130 interrupted")
    parser.add_argument("--version", action="version", version=f"qsnn-hw {__version__}")
    parser.add_argument("--debug", action="store_true",
                        help="show the traceback of an error instead of the one-line message")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        path = f"qsnn_hw.commands.{_MODULES.get(name, name)}"
        try:
            module = importlib.import_module(path)
        except ModuleNotFoundError as exc:
            if exc.name == path:
                continue  # not built yet
            raise
        module.register(sub)
    for name, p in sub.choices.items():
        # the same help and parsing rules everywhere: no abbreviated flags (--epoch is
        # not --epochs), defaults shown as typed, an example at the end
        p.formatter_class = HelpFormatter
        p.allow_abbrev = False
        example = EXAMPLES.get(name)
        if example:
            p.epilog = (p.epilog + "\n\n" if p.epilog else "") + f"example:\n  {example}"
    return parser


def _sigterm_as_interrupt(signum, frame):
    """SIGTERM takes the Ctrl-C path: cleanup blocks run, child process groups are
    stopped, the exit status is 130."""
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGTERM, _sigterm_as_interrupt)
    was_quiet = set_quiet(bool(getattr(args, "quiet", False)))   # --quiet: no progress
    try:
        return int(args.func(args) or 0)
    except (UserError, ValueError, TypeError, OSError) as exc:
        if args.debug:
            raise
        print(f"qsnn-hw {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"qsnn-hw {args.command}: interrupted", file=sys.stderr)
        return 130
    finally:
        set_quiet(was_quiet)
        if previous is not None:   # a caller's own handler (main called in-process)
            signal.signal(signal.SIGTERM, previous)


# ``qsnn_hw.cli.UserError`` stays importable (it lives in qsnn_hw.errors).
__all__ = ["COMMANDS", "UserError", "build_parser", "main"]


if __name__ == "__main__":
    sys.exit(main())
