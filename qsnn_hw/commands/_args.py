"""argparse value types shared by every subcommand: each error names the allowed range."""

from __future__ import annotations

import argparse
import re


def int_range(lo: int | None = None, hi: int | None = None):
    """An argparse ``type`` accepting integers in ``[lo, hi]``."""
    allowed = f"[{'-inf' if lo is None else lo}, {'inf' if hi is None else hi}]"

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be an integer in {allowed}, "
                                             f"got {text!r}") from None
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            raise argparse.ArgumentTypeError(f"must be an integer in {allowed}, got {value}")
        return value
    return parse


def float_range(lo: float | None = None, hi: float | None = None, lo_open: bool = False):
    """An argparse ``type`` accepting finite floats in ``[lo, hi]`` (``(lo, hi]`` if lo_open)."""
    allowed = (f"{'(' if lo_open else '['}{'-inf' if lo is None else lo}, "
               f"{'inf' if hi is None else hi}]")

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be a number in {allowed}, "
                                             f"got {text!r}") from None
        bad = value != value or value in (float("inf"), float("-inf"))
        if lo is not None:
            bad |= value <= lo if lo_open else value < lo
        if hi is not None:
            bad |= value > hi
        if bad:
            raise argparse.ArgumentTypeError(f"must be a number in {allowed}, got {text}")
        return value
    return parse


def auto_or(parse):
    """An argparse ``type`` accepting the word ``auto`` or what ``parse`` (one of the types
    above) accepts; the error names both."""

    def parse_auto(text: str):
        if text == "auto":
            return text
        try:
            return parse(text)
        except argparse.ArgumentTypeError as exc:
            raise argparse.ArgumentTypeError(
                f"must be 'auto' or {str(exc).removeprefix('must be ')}") from None
    return parse_auto


positive_int = int_range(1)
probability = float_range(0.0, 1.0)


def add_quiet(p) -> None:
    """Add ``--quiet`` to the parser (or group) ``p``: no progress (bars, stage lines);
    errors and the final result still print. :func:`qsnn_hw.cli.main` applies it
    (:func:`qsnn_hw.progress.set_quiet`)."""
    p.add_argument("--quiet", action="store_true",
                   help="no progress output (errors and the final result still print)")


def show_value(value) -> str:
    """A default as a user types it: lists comma-joined, no Python quotes or brackets."""
    if isinstance(value, list | tuple):
        return ",".join(show_value(v) for v in value) if value else "none"
    if value == "":
        return "none"
    return str(value)


_ROLE = re.compile(r":(?:func|mod|class|meth|attr|data):`~?([^`]+)`")


def plain(text: str) -> str:
    """reST markup of the docstrings the help is made from, as plain terminal text:
    ``literal`` -> literal, :func:`name` -> name."""
    return _ROLE.sub(lambda m: m.group(1).rsplit(".", 1)[-1], text).replace("``", "")


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Every subcommand's help: the description keeps its paragraphs, reST markup shows as
    plain text, and every option that has a default says it, as the user would type it
    (``--hidden 256``, not ``[256]``)."""

    def _get_help_string(self, action):
        text = plain(action.help or "")
        default = action.default
        shown = ("default" in text or not action.option_strings or action.nargs == 0
                 or default is None or default is False or default is argparse.SUPPRESS)
        if not shown:   # argparse %-formats the help: the default's own % are escaped
            text += f" (default: {show_value(default)})".replace("%", "%%")
        return text

    def _format_text(self, text):
        return super()._format_text(plain(text))
