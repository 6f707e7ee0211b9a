"""The command line: the demo job end to end, and argument errors."""

import json
import subprocess
import sys

import numpy as np

from qsnn_hw.artifact import load_artifact
from qsnn_hw.cli import main
from qsnn_hw.golden import simulate


def test_demo_end_to_end(tmp_path, capsys):
    assert main(["demo", "--out", str(tmp_path), "--samples", "8", "--timesteps", "10"]) == 0
    out = capsys.readouterr().out
    assert "predictions per class" in out
    report = json.loads((tmp_path / "demo.json").read_text())
    art = load_artifact(tmp_path / "demo.qsnn")
    # Re-run the reported experiment independently and compare the prediction histogram.
    rng = np.random.default_rng(1)
    x = (rng.random((8, 10, art.network.n_in)) < 0.3).astype(np.int64)
    hist = np.bincount(simulate(art.network, x).predictions, minlength=10).tolist()
    assert report["predictions"] == hist
    assert [r["state_bits"] for r in report["layers"]] == [4, 4]


def test_bad_arguments_exit_2_with_message():
    r = subprocess.run([sys.executable, "-m", "qsnn_hw.cli", "demo", "--density", "1.5"],
                       capture_output=True, text=True)
    assert r.returncode == 2
    assert "--density: must be a number in [0.0, 1.0], got 1.5" in r.stderr
    r = subprocess.run([sys.executable, "-m", "qsnn_hw.cli", "nosuch"], capture_output=True,
                       text=True)
    assert r.returncode == 2 and "invalid choice" in r.stderr
