"""``qsnn-hw flow`` end to end on a tiny digits model (seconds), and its fallback
verification path (Amaranth's simulator against the golden model)."""

import json

import pytest

from qsnn_hw.cli import main
from qsnn_hw.commands.flow import pick_simulator

pytestmark = pytest.mark.filterwarnings("ignore::amaranth.hdl.UnusedElaboratable")

TINY = ["--epochs", "1", "--hidden", "8", "--timesteps", "4", "--samples", "3",
        "--lanes", "4"]


def test_pick_simulator():
    assert pick_simulator("icarus") == "icarus"
    assert pick_simulator("auto") in ("verilator", "icarus", "amaranth")


@pytest.mark.sim
def test_flow_without_synth(tmp_path, capsys):
    out = tmp_path / "flow"
    code = main(["flow", "--out", str(out), "--no-synth", "--sim", "amaranth", *TINY])
    text = capsys.readouterr().out
    s = json.loads((out / "summary.json").read_text())
    assert code == 0, text
    assert s["verify"]["mismatches"] == 0 and s["verify"]["samples"] == 3
    assert s["verify"]["core"] == s["config"] and s["config"]["lanes"] == 4
    assert s["sizes"] == [64, 8, 10]
    for f in ("train/model.qsnn", "rtl/qsnn_core.v", "rtl/qsnn_core.json", "verify.json",
              "summary.md"):
        assert (out / f).is_file(), f
    assert "bit-exact (RTL vs golden)" in text and "yes" in text
    assert "skipped (--no-synth)" in (out / "summary.md").read_text()


def test_flow_unknown_board(tmp_path, capsys):
    assert main(["flow", "--out", str(tmp_path), "--board", "arty"]) == 2
    assert "unknown board 'arty'" in capsys.readouterr().err


@pytest.mark.synth
@pytest.mark.slow
def test_flow_with_synth_icebreaker(tmp_path, capsys):
    out = tmp_path / "flow"
    code = main(["flow", "--out", str(out), "--sim", "amaranth", "--clock", "16", *TINY,
                 "--lanes", "1", "--fifo-depth", "min", "--quantizer", "pipelined"])
    s = json.loads((out / "summary.json").read_text())
    assert s["synth"] is not None, s.get("synth_error")
    assert (out / "build-icebreaker" / "top.bin").is_file()
    # the synthesized configuration is the verified one, recorded in both reports
    assert s["synth"]["core"] == s["verify"]["core"] == s["config"]
    assert s["config"]["fifo_depth"] == "min" and s["config"]["quantizer"] == "pipelined"
    assert s["verify"]["mismatches"] == 0
    assert code == (0 if s["synth"]["timing_pass"] else 1)
    assert "Fmax" in capsys.readouterr().out
