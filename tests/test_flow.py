"""``qsnn-hw flow`` end to end on a tiny digits model (seconds), and its fallback
verification path (Amaranth's simulator against the golden model)."""

import json

import pytest

from qsnn_hw.cli import main
from qsnn_hw.commands.flow import pick_simulator, summary_rows

pytestmark = pytest.mark.filterwarnings("ignore::amaranth.hdl.UnusedElaboratable")

TINY = ["--epochs", "1", "--hidden", "8", "--timesteps", "4", "--samples", "3",
        "--lanes", "4"]


def test_pick_simulator():
    assert pick_simulator("icarus") == "icarus"
    assert pick_simulator("auto") in ("verilator", "icarus", "amaranth")


def test_summary_microseconds_at_the_clock_built():
    """Microseconds per sample = simulated cycles / the clock the PLL makes in the build
    installed (not the first build's, nor the requested one)."""
    attempts = [{"mhz": 24.0, "fmax": 41.5, "pass": True},
                {"mhz": 41.25, "fmax": 43.8, "pass": True}]
    synth = {"board": "icebreaker", "bitstream": "top.bin", "timing_pass": True,
             "resources": {}, "fmax": {"clk": {"achieved_mhz": 43.8}},
             "clock": {"requested_mhz": 41.25, "actual_mhz": 41.25, "chosen": "auto",
                       "attempts": attempts}}
    s = {"dataset": "digits", "sizes": [64, 8, 10], "timesteps": 4, "weight_bits": 4,
         "state_bits": 4, "core": "lanes 1", "build_dir": "b", "seconds": 1.0,
         "times": {"train": 0, "verify": 0, "synth": 1},
         "train": {"float_accuracy": 0.9, "quantized_accuracy": 0.9, "golden_accuracy": 0.9},
         "verify": {"samples": 3, "via": "amaranth", "rtl_accuracy": 0.9,
                    "golden_accuracy": 0.9, "mismatches": 0, "cycles_per_sample": 825.0},
         "synth": synth}
    rows = dict(summary_rows(s))
    assert rows["microseconds per sample"] == "20.0 at 41.25 MHz"
    assert rows["Fmax"] == ("43.8 MHz at a 41.25 MHz clock (auto: built at 24, 41.25 MHz): "
                            "pass")


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
    with pytest.raises(SystemExit) as exc:
        main(["flow", "--out", str(tmp_path), "--board", "arty"])
    assert exc.value.code == 2
    assert "argument --board: invalid choice: 'arty'" in capsys.readouterr().err


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
