"""The ``qsnn-hw`` command line. Each subcommand lives in ``qsnn_hw/commands/<name>.py``
and exposes ``register(subparsers)``, which adds its parser and sets ``func``."""

from __future__ import annotations

import argparse
import importlib
import sys

from . import __version__
from .errors import UserError

# Order = the order shown in --help (the pipeline order).
COMMANDS = ("demo", "train", "generate", "verify", "synth", "run", "flow", "sweep")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="qsnn-hw",
        description="Quantization-aware SNN training to a bit-exact FPGA core.")
    parser.add_argument("--version", action="version", version=f"qsnn-hw {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        try:
            module = importlib.import_module(f"qsnn_hw.commands.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"qsnn_hw.commands.{name}":
                continue  # not built yet
            raise
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (UserError, ValueError, TypeError, FileNotFoundError) as exc:
        print(f"qsnn-hw {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"qsnn-hw {args.command}: interrupted", file=sys.stderr)
        return 130


# ``qsnn_hw.cli.UserError`` stays importable (it lives in qsnn_hw.errors).
__all__ = ["COMMANDS", "UserError", "build_parser", "main"]


if __name__ == "__main__":
    sys.exit(main())
