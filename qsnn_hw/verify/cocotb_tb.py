"""The cocotb testbench of simulation bundles (:mod:`.bundle`); shipped in the package,
so an installed qsnn-hw verifies on Icarus and Verilator without a source checkout.

The bundle's harness top drives every core from preloaded stimulus with randomized
back-pressure and writes traces; this test only waits for the harness to finish (one
trigger, no Python per cycle), then checks every core's trace against the golden model
in bulk (:func:`.check.check_core`) and writes ``report.json`` into the working directory.
Environment: ``QSNN_BUNDLE`` (path of bundle.json), ``QSNN_EXT_CLOCK=1`` when the harness
was built without its own clock (cocotb then drives ``clk``).

Written for cocotb 2 (``Clock(..., unit=)``); the rest (``cocotb.test``, ``RisingEdge``,
``int(handle.value)``) is the same in every cocotb.
"""

import json
import os
import time
from pathlib import Path

import cocotb
from cocotb.triggers import RisingEdge

from qsnn_hw.verify.check import check_core
from qsnn_hw.verify.compare import format_report


def _clock(dut):
    from cocotb.clock import Clock
    cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())


@cocotb.test()
async def bundle_matches_golden(dut):
    bundle = Path(os.environ["QSNN_BUNDLE"])
    info = json.loads(bundle.read_text())
    if os.environ.get("QSNN_EXT_CLOCK") == "1":
        _clock(dut)
    t0 = time.perf_counter()
    await RisingEdge(dut.all_done)      # low from time 0: the harness never starts done
    wall = time.perf_counter() - t0
    cycles = int(dut.cycle.value)
    timeout = bool(int(dut.timeout.value))
    reports = []
    for core in info["cores"]:
        rep = check_core(bundle.parent, core)
        if timeout:
            rep["problems"].append(f"timeout at cycle {cycles}: a core made no progress for "
                                   f"{info['watchdog']} cycles, or the cycle limit "
                                   f"({info['cycle_limit']}) was reached")
            rep["ok"] = False
        reports.append(rep)
    summary = {"cycles": cycles, "sim_wall_s": wall,
               "cycles_per_s": cycles / wall if wall > 0 else None,
               "timeout": timeout, "cores": reports,
               "ok": all(r["ok"] for r in reports)}
    Path("report.json").write_text(json.dumps(summary, indent=1) + "\n")
    failed = [format_report(r, r["core"], f"configuration seed {r['seed']}; "
                            f"{r['describe']}") for r in reports if not r["ok"]]
    assert not failed, "\n".join(failed)
