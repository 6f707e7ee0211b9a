"""Toolchain smoke testbench: a saturating accumulator, checked against a Python model
over random stimulus. cocotb 2 (``unit=``, ``LogicArray.to_signed``), Icarus and Verilator."""

import os
import random

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import RisingEdge, Timer


@cocotb.test()
async def accumulate_and_saturate(dut):
    rng = random.Random(int(os.environ.get("SMOKE_SEED", "1")))
    width = int(os.environ["SMOKE_WIDTH"])
    lo, hi = -(1 << (width - 1)), (1 << (width - 1)) - 1
    cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
    dut.rst.value = 1
    dut.en.value = 0
    dut.inc.value = 0
    await RisingEdge(dut.clk)
    await RisingEdge(dut.clk)
    dut.rst.value = 0
    model = 0
    for cycle in range(400):
        en = rng.random() < 0.8
        inc = rng.randint(-(1 << 7), (1 << 7) - 1)
        dut.en.value = int(en)
        dut.inc.value = inc & 0xFF
        await RisingEdge(dut.clk)
        if en:
            model = min(max(model + inc, lo), hi)
        await Timer(1, unit="ns")
        got = dut.acc.value.to_signed()
        assert got == model, f"cycle {cycle}: acc {got} != model {model}"
