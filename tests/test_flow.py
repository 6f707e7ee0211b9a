"""``qsnn-hw flow`` end to end on a tiny digits model (seconds), and its fallback
verification path (Amaranth's simulator against the golden model)."""

import json
from pathlib import Path

import numpy as np
import pytest

from qsnn_hw.artifact import Artifact, save_artifact
from qsnn_hw.cli import main
from qsnn_hw.commands.flow import _verify_amaranth, pick_simulator
from qsnn_hw.golden import simulate
from qsnn_hw.testing import random_inputs, random_network

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
    assert s["sizes"] == [64, 8, 10]
    for f in ("train/model.qsnn", "rtl/qsnn_core.v", "rtl/qsnn_core.json", "verify.json",
              "summary.md"):
        assert (out / f).is_file(), f
    assert "bit-exact (RTL vs golden)" in text and "yes" in text
    assert "skipped (--no-synth)" in (out / "summary.md").read_text()


@pytest.mark.sim
def test_fallback_verification_is_bit_exact(tmp_path):
    rng = np.random.default_rng(3)
    net = random_network(rng, sizes=[10, 6, 3], input_bits=1, state_bits=4)
    path = save_artifact(tmp_path / "m.qsnn", Artifact(net))
    rep = _verify_amaranth(Path(path), 4, 2, "qsnn-hw verify not available")
    assert rep["mismatches"] == 0 and rep["samples"] == 4
    assert "not available" in rep["via"]
    # its inputs are the seeded random ones; the golden model agrees with itself there
    x = random_inputs(np.random.default_rng(0), net, 4, 8, density=0.2)
    assert simulate(net, x).counts.shape == (4, 3)


def test_flow_unknown_board(tmp_path, capsys):
    assert main(["flow", "--out", str(tmp_path), "--board", "arty"]) == 2
    assert "unknown board 'arty'" in capsys.readouterr().err


@pytest.mark.synth
@pytest.mark.slow
def test_flow_with_synth_icebreaker(tmp_path, capsys):
    out = tmp_path / "flow"
    code = main(["flow", "--out", str(out), "--sim", "amaranth", "--clock", "16", *TINY,
                 "--lanes", "1", "--min-fifo", "--pipelined-quantizer"])
    s = json.loads((out / "summary.json").read_text())
    assert s["synth"] is not None, s.get("synth_error")
    assert (out / "build-icebreaker" / "top.bin").is_file()
    # the synthesized configuration (pipelined quantizer, minimal FIFOs) differs from the
    # verified one, so it was also checked
    assert s["config_check"]["mismatches"] == 0 and s["config_check"]["samples"] == 2
    assert code == (0 if s["synth"]["timing_pass"] else 1)
    assert "Fmax" in capsys.readouterr().out


@pytest.mark.sim
@pytest.mark.parametrize("code,stdout", [(2, ""), (1, "Traceback (most recent call last)")])
def test_verify_step_falls_back_when_verify_fails(tmp_path, monkeypatch, code, stdout):
    import subprocess

    from qsnn_hw.commands import flow
    net = random_network(np.random.default_rng(4), sizes=[8, 5, 3], input_bits=1,
                         state_bits=4)
    path = save_artifact(tmp_path / "m.qsnn", Artifact(net))
    monkeypatch.setattr(flow, "_cli", lambda argv: subprocess.CompletedProcess(
        argv, code, stdout=stdout, stderr="boom"))
    rep = flow.verify_step(Path(path), "verilator", 2, 1)
    assert "verify --sim verilator failed" in rep["via"] and rep["mismatches"] == 0
