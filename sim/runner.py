"""Run a cocotb testbench on emitted Verilog under Icarus or Verilator (cocotb-test).

Facts this relies on (shared/BRIEF.md): cocotb 1.9.2 drives both Icarus 11 and Debian's
Verilator 5.006; Amaranth's Verilog carries no `timescale`, so one is given here; Verilator
needs -Wno-fatal for Amaranth output.
"""

from __future__ import annotations

import shutil
from pathlib import Path

SIMULATORS = ("icarus", "verilator")
_BINARIES = {"icarus": "iverilog", "verilator": "verilator"}
SIM_DIR = Path(__file__).resolve().parent


def simulator_available(sim: str) -> bool:
    return shutil.which(_BINARIES[sim]) is not None


def run_cocotb(sim: str, verilog: list, toplevel: str, test_module: str, build_dir,
               env: dict | None = None, waves: bool = False) -> Path:
    """Compile ``verilog`` with ``sim`` and run the cocotb module ``test_module`` (a module
    in ``sim/``) against ``toplevel``. cocotb-test raises ``SystemExit`` on a failing or
    crashed cocotb test; returns the path of the results XML (JUnit format)."""
    from cocotb_test.simulator import run

    if sim not in SIMULATORS:
        raise ValueError(f"sim must be one of {', '.join(SIMULATORS)}; got {sim!r}")
    if not simulator_available(sim):
        raise FileNotFoundError(f"{_BINARIES[sim]} not found: install it with "
                                f"`sudo apt-get install {_BINARIES[sim]}`")
    build_dir = Path(build_dir)
    build_dir.mkdir(parents=True, exist_ok=True)
    compile_args = ["-Wno-fatal"] if sim == "verilator" else []
    return Path(run(simulator=sim, verilog_sources=[str(v) for v in verilog], toplevel=toplevel,
        module=test_module, python_search=[str(SIM_DIR)], sim_build=str(build_dir),
        work_dir=str(build_dir), timescale="1ns/1ps", compile_args=compile_args,
        extra_env={k: str(v) for k, v in (env or {}).items()}, waves=waves))
