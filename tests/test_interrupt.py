"""Interruption: Ctrl-C (SIGINT) or SIGTERM during ``qsnn-hw synth`` exits 130, stops
every process the build started (the whole process group, not only the shell), removes
the temporary build directory and leaves the previous build untouched.

The synthesis tools are stand-ins on PATH (``--toolchain system``): the fake ``yosys``
starts a long ``sleep`` child and waits, as a real tool runs for a minute."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from qsnn_hw.artifact import Artifact, save_artifact
from qsnn_hw.testing import random_network

ROOT = Path(__file__).resolve().parent.parent


def _alive(pid: int) -> bool:
    """Running (a zombie left for init to reap counts as gone)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    return "\nState:\tZ" not in status


def _fake_tools(bin_dir: Path, mark: Path) -> None:
    bin_dir.mkdir()
    scripts = {"yosys": f"sleep 300 &\necho $! > {mark}\nwait\n",
               "nextpnr-ice40": "exit 1\n", "icepack": "exit 1\n"}
    for tool, body in scripts.items():
        path = bin_dir / tool
        path.write_text("#!/bin/sh\n" + body)
        path.chmod(path.stat().st_mode | stat.S_IEXEC)


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_interrupted_synth_stops_its_tools_and_keeps_the_old_build(tmp_path, sig):
    model = tmp_path / "m.qsnn"
    save_artifact(model, Artifact(random_network(np.random.default_rng(7), sizes=[8, 4, 3],
                                                 state_bits=3)))
    out = tmp_path / "build"
    out.mkdir()
    (out / "report.json").write_text('{"an": "earlier build"}\n')
    (out / "top.bin").write_bytes(b"old bitstream")
    mark = tmp_path / "child.pid"
    _fake_tools(tmp_path / "bin", mark)
    env = dict(os.environ, PATH=f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}",
               PYTHONPATH=str(ROOT))
    proc = subprocess.Popen(
        [sys.executable, "-m", "qsnn_hw.cli", "synth", str(model), "--board", "icebreaker",
         "--toolchain", "system", "--clock", "24", "--out", str(out), "--force"],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while not (mark.is_file() and mark.read_text().strip()):
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the fake yosys never started"
            time.sleep(0.2)
        child = int(mark.read_text())
        assert _alive(child)
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    assert "interrupted" in err and "Traceback" not in err, err
    deadline = time.monotonic() + 10
    while _alive(child) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _alive(child), "the build's tool kept running"
    assert not list(tmp_path.glob(".build.build-*")), "temporary build directory left"
    assert (out / "report.json").read_text() == '{"an": "earlier build"}\n'
    assert (out / "top.bin").read_bytes() == b"old bitstream"
