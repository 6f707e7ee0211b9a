"""The one simulation harness of the gateware (Amaranth's simulator, no external tools).

:func:`run_simulation` sets up the clock and, when ``GENERATE_VCDS`` is set, dumps a VCD
waveform (into ``$QSNN_VCD_DIR``, default ``vcd/``). Every gateware test uses it; the
whole-core runner built on it is :func:`qsnn_hw.verify.amaranth.run_core`.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from amaranth.hdl import ClockDomain, Module
from amaranth.sim import Simulator

CLOCK_PERIOD = 1e-8
_vcd_names: dict[str, int] = {}


class SimTimeout(RuntimeError):
    """The design did not respond within the cycle budget (a deadlock)."""


def run_simulation(dut, testbenches=(), processes=(), *, name: str = "sim",
                   period: float = CLOCK_PERIOD) -> None:
    """Simulate ``dut`` with a clock on the ``sync`` domain until every testbench returns.
    ``processes`` run in the background (monitors)."""
    # An explicit sync domain, so purely combinational components get a clock too.
    wrapper = Module()
    wrapper.domains.sync = ClockDomain("sync")
    wrapper.submodules.dut = dut
    sim = Simulator(wrapper)
    sim.add_clock(period)
    for tb in testbenches:
        sim.add_testbench(tb)
    for proc in processes:
        sim.add_process(proc)
    if os.environ.get("GENERATE_VCDS"):
        out = Path(os.environ.get("QSNN_VCD_DIR", "vcd"))
        out.mkdir(parents=True, exist_ok=True)
        # pytest sets PYTEST_CURRENT_TEST: one file per test (and parameter set)
        test = os.environ.get("PYTEST_CURRENT_TEST", "").split(" ")[0]
        stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", f"{test}-{name}" if test else name)
        k = _vcd_names[stem] = _vcd_names.get(stem, -1) + 1  # several per test: keep all
        path = out / (f"{stem}.vcd" if k == 0 else f"{stem}-{k}.vcd")
        with sim.write_vcd(str(path)):
            sim.run()
    else:
        sim.run()


async def wait_until(ctx, cond, *sample, limit: int = 1_000_000):
    """Tick until ``cond`` is high at a clock edge; returns the ``sample`` values there."""
    for _ in range(limit):
        _, _, *vals, c = await ctx.tick().sample(*sample, cond)
        if c:
            return vals
    raise SimTimeout(f"no response within {limit} cycles")
