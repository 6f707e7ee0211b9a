"""Optional features and the one-line error when one is not installed.

The core install (``pip install qsnn-hw``) trains, exports, generates Verilog and verifies in
Amaranth's simulator. The rest comes with extras (pyproject.toml): a module that needs one
imports it through :func:`need`, so a missing package stops the command with
``pip install 'qsnn-hw[EXTRA]'`` instead of a traceback.
"""

from __future__ import annotations

import importlib

from .errors import UserError

# importable module -> (extra that installs it, what it is for[, another way out])
EXTRAS = {
    "matplotlib": ("plots", "PNG plots", "or pass --no-plots"),
    "cocotb": ("sim", "simulation with cocotb"),
    "cocotb_test": ("sim", "simulation with cocotb"),
    "amaranth_boards": ("synth", "board builds"),
    "serial": ("board", "the serial link to a board"),
    "h5py": ("shd", "the SHD dataset's HDF5 files"),
    "nir": ("nir", "NIR graphs"),
    "distributed": ("dask", "the sweep on a Dask cluster"),
}


class MissingExtra(UserError, ImportError):
    """An optional package is not installed; the message names the extra to install."""


def hint(module: str) -> str:
    return f"pip install 'qsnn-hw[{EXTRAS[module][0]}]'"


def missing_message(module: str) -> str:
    extra, what, *alt = EXTRAS[module]
    return f"{module!r} is not installed ({what}): {' '.join([hint(module), *alt])}"


def need(module: str):
    """Import and return ``module`` (a key of :data:`EXTRAS` or a submodule of one); raise
    :class:`MissingExtra` naming the extra when it is not installed."""
    top = module.partition(".")[0]
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name is None or exc.name.partition(".")[0] != top or top not in EXTRAS:
            raise
        raise MissingExtra(missing_message(top)) from None


def have(module: str) -> bool:
    """Whether ``module`` is importable (without importing it)."""
    import importlib.util
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


__all__ = ["EXTRAS", "MissingExtra", "have", "hint", "missing_message", "need"]
