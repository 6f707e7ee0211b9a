"""Exceptions shared across the package. Imports nothing from ``qsnn_hw``, so any module
(the subcommands included) can raise them without importing the command line."""

from __future__ import annotations


class UserError(Exception):
    """An error caused by the user's input: printed as one line, exit status 2."""


__all__ = ["UserError"]
