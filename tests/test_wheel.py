"""The installed package verifies on its own: build the wheel, install it into a fresh
virtual environment outside the checkout and run ``qsnn-hw verify`` on Icarus, Verilator
and Amaranth's simulator on a tiny model, from a directory with no ``sim/`` or ``rtl/``.

The wheel is installed without dependencies; the fresh environment sees the test
environment's site-packages (a ``.pth`` line) for them, so this checks what the wheel
ships, not pip's resolver, in seconds instead of minutes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import numpy as np
import pytest

from qsnn_hw.artifact import Artifact, save_artifact
from qsnn_hw.testing import random_network
from qsnn_hw.train.config import LayerConfig, TrainConfig

ROOT = Path(__file__).resolve().parents[1]
pytestmark = [pytest.mark.sim, pytest.mark.slow]


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """(python of a fresh venv holding only the qsnn-hw wheel, a work dir, a model)."""
    tmp = tmp_path_factory.mktemp("wheel")
    dist = tmp / "dist"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w",
                    str(dist), str(ROOT)], check=True, cwd=tmp)
    wheel = next(dist.glob("qsnn_hw-*.whl"))
    venv = tmp / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    py = venv / "bin" / "python"
    subprocess.run([str(py), "-m", "pip", "install", "--quiet", "--no-deps", str(wheel)],
                   check=True)
    site = subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()"
                           "['purelib'])"], check=True, capture_output=True, text=True)
    Path(site.stdout.strip(), "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    work = tmp / "work"
    work.mkdir()
    net = random_network(np.random.default_rng(8), sizes=[64, 6, 10], input_bits=4,
                         state_bits=3, family="exponential", frac_bits=0)
    cfg = TrainConfig(layers=(LayerConfig(6), LayerConfig(10)), timesteps=3,
                      encoding="direct", input_bits=4)
    save_artifact(work / "tiny.qsnn", Artifact(net, config=cfg.to_dict()))
    return py, work


def test_the_wheel_is_what_runs(installed):
    py, work = installed
    where = subprocess.run([str(py), "-c", "import qsnn_hw, qsnn_hw.verify.cocotb_tb as t; "
                            "print(qsnn_hw.__file__); print(t.__file__)"], cwd=work,
                           check=True, capture_output=True, text=True).stdout.split()
    for path in where:
        assert Path(path).is_relative_to(py.parents[1]), path
        assert not Path(path).is_relative_to(ROOT), path


def test_the_wheel_ships_the_digits_data(installed):
    py, work = installed
    out = subprocess.run([str(py), "-c", "from qsnn_hw.data import load_dataset; "
                          "d = load_dataset('digits'); print(len(d.y_train) + len(d.y_val) + "
                          "len(d.y_test)); import qsnn_hw.data.digits as m; print(m.__file__)"],
                         cwd=work, check=True, capture_output=True, text=True).stdout.split()
    assert out[0] == "1797"
    assert Path(out[1]).is_relative_to(py.parents[1]), out[1]


@pytest.mark.parametrize("sim", ["icarus", "verilator", "amaranth"])
def test_installed_verify(installed, sim):
    py, work = installed
    from qsnn_hw.verify.tools import simulator_available
    if sim != "amaranth" and not simulator_available(sim):
        pytest.skip(f"{sim} is not installed")
    env = dict(os.environ, PATH=f"{py.parent}{os.pathsep}{os.environ['PATH']}")
    env.pop("PYTHONPATH", None)
    p = subprocess.run([str(py.parent / "qsnn-hw"), "verify", "tiny.qsnn", "--sim", sim,
                        "--samples", "3", "--lanes", "3,4", "--json"], cwd=work, env=env,
                       capture_output=True, text=True)
    assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-3000:]
    report = json.loads(p.stdout[p.stdout.index("{"):])
    assert report["ok"] and report["mismatches"] == 0 and report["samples"] == 3
    assert report["cycles"] > 0
    assert not [d for d in work.iterdir() if d.name not in ("tiny.qsnn",)]
