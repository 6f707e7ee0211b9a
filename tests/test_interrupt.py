"""Interruption: Ctrl-C (SIGINT) or SIGTERM during a long command exits 130, stops every
process the command started (whole process groups, not only the first child), removes
its temporary files and leaves an earlier run's outputs as they were.

``synth``: the synthesis tools are stand-ins on PATH (``--toolchain system``): the fake
``yosys`` starts a long ``sleep`` child and waits, as a real tool runs for a minute.
``verify`` (Icarus: while ``vvp`` simulates; Verilator: while ``g++`` compiles, from an
empty object cache), ``train`` (after its first checkpoint), ``sweep`` (two pool workers
mid-training) and ``flow`` (while training and while simulating) run for real."""

from __future__ import annotations

import contextlib
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


# ---- the real commands -------------------------------------------------------------

def _descendants(pid: int) -> dict[int, str]:
    """Every living process below ``pid``: {pid: command name}."""
    parent, names = {}, {}
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            stat = (d / "stat").read_text()
        except OSError:
            continue
        # pid (comm) state ppid ...; comm may hold spaces and parentheses
        name = stat[stat.index("(") + 1:stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2:].split()
        if fields[0] != "Z":
            parent[int(d.name)], names[int(d.name)] = int(fields[1]), name
    found, todo = {}, [pid]
    while todo:
        p = todo.pop()
        for c, pp in parent.items():
            if pp == p and c not in found:
                found[c] = names[c]
                todo.append(c)
    return found


def _snapshot(root: Path) -> dict[str, bytes | None]:
    """Every file under ``root`` with its bytes (None for a directory)."""
    return {str(p.relative_to(root)): (None if p.is_dir() else p.read_bytes())
            for p in sorted(root.rglob("*"))}


def _interrupt(cmd: list, cwd: Path, ready, sig=signal.SIGINT, env=None, timeout=300):
    """Start ``qsnn-hw CMD``, wait until ``ready(proc)`` is true, record its descendants,
    send ``sig``; returns (exit status, stderr, the descendants it had)."""
    env = dict(os.environ, PYTHONPATH=str(ROOT), TMPDIR=str(cwd / "tmp"), **(env or {}))
    (cwd / "tmp").mkdir(exist_ok=True)
    proc = subprocess.Popen([sys.executable, "-m", "qsnn_hw.cli", *map(str, cmd)], cwd=cwd,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        deadline = time.monotonic() + timeout
        while not ready(proc):
            if proc.poll() is not None:
                out, err = proc.communicate()
                pytest.fail(f"{cmd[0]} ended ({proc.returncode}) before the point to "
                            f"interrupt:\n{out[-2000:]}\n{err[-3000:]}")
            assert time.monotonic() < deadline, f"{cmd[0]} never reached the point"
            time.sleep(0.1)
        children = _descendants(proc.pid)
        proc.send_signal(sig)
        try:   # stopping takes seconds, not the rest of the work
            _, err = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            pytest.fail(f"{cmd[0]} still running 30 s after {sig.name}")
    finally:   # a failed test leaves nothing running (children hold the pipes open)
        for pid in [*_descendants(proc.pid), proc.pid]:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        proc.communicate()
    return proc.returncode, err, children


def _assert_clean(status: int, err: str, children: dict, tmp: Path) -> None:
    assert status == 130, err[-3000:]
    assert "interrupted" in err and "Traceback" not in err, err[-3000:]
    deadline = time.monotonic() + 15
    while any(_alive(c) for c in children) and time.monotonic() < deadline:
        time.sleep(0.1)
    left = {c: n for c, n in children.items() if _alive(c)}
    assert not left, f"processes kept running: {left}"
    assert not list(tmp.iterdir()), f"temporary files left: {list(tmp.iterdir())}"


def _running(name: str):
    return lambda proc: name in _descendants(proc.pid).values()


@pytest.mark.slow
@pytest.mark.sim
@pytest.mark.parametrize("sim, phase", [("icarus", "vvp"), ("verilator", "cc1plus")])
def test_interrupted_verify_stops_the_simulator_and_leaves_nothing(tmp_path, sim, phase):
    from qsnn_hw.verify.tools import simulator_available
    if not simulator_available(sim):
        pytest.skip(f"{sim} not installed")
    status, err, children = _interrupt(
        ["verify", ROOT / "rtl" / "digits.qsnn", "--sim", sim, "--samples", "360"], tmp_path,
        _running(phase), env={"QSNN_VERILATOR_CACHE": str(tmp_path / "vcache")})
    assert phase in children.values()
    _assert_clean(status, err, children, tmp_path / "tmp")


@pytest.mark.slow
def test_interrupted_retrain_keeps_the_old_model_and_says_how_to_resume(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / "model.qsnn").write_bytes((ROOT / "rtl" / "digits.qsnn").read_bytes())
    (out / "metrics.json").write_text('{"golden_accuracy": 0.97}\n')
    before = _snapshot(out)
    status, err, children = _interrupt(
        ["train", "--dataset", "digits", "--epochs", "100000", "--patience", "100000",
         "--hidden", "16", "--timesteps", "4", "--no-plots", "--out", out, "--force"], tmp_path,
        lambda proc: (out / "checkpoint.npz").is_file())
    _assert_clean(status, err, children, tmp_path / "tmp")
    assert "--resume" in err and "untouched" in err, err
    after = _snapshot(out)
    assert after.pop("checkpoint.npz")      # this run's last epoch, for --resume
    assert after == before


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_interrupted_sweep_stops_its_workers_and_keeps_the_finished_tables(tmp_path, sig):
    import json
    grid = tmp_path / "grid.json"
    grid.write_text(json.dumps({"base": {"hidden": [16], "timesteps": 4}, "cells": [
        {"name": "a", "weight_mode": "qat", "weight_bits": 3},
        {"name": "b", "weight_mode": "qat", "weight_bits": 4}]}))
    out = tmp_path / "sweep"
    out.mkdir()
    (out / "results.json").write_text('{"an": "earlier sweep"}\n')
    before = _snapshot(out)

    def training(proc):    # both workers have made their temporary run directory
        return sum(1 for _ in (tmp_path / "tmp").glob("qsnn-sweep-*/*")) >= 2
    status, err, children = _interrupt(
        ["sweep", "--grid", grid, "--seeds", "1", "--workers", "2", "--epochs", "100000",
         "--patience", "100000", "--no-plots", "--out", out, "--force"], tmp_path, training,
        sig=sig)
    assert sum("python" in n for n in children.values()) >= 2, children
    _assert_clean(status, err, children, tmp_path / "tmp")
    assert _snapshot(out) == before


@pytest.mark.slow
@pytest.mark.sim
@pytest.mark.parametrize("point", ["train", "verify"])
def test_interrupted_flow_puts_the_earlier_flow_back(tmp_path, point):
    from qsnn_hw.verify.tools import simulator_available
    if point == "verify" and not simulator_available("icarus"):
        pytest.skip("icarus not installed")
    out = tmp_path / "flow"
    files = {"summary.json": b'{"an": "earlier flow"}\n', "summary.md": b"| earlier |\n",
             "train/model.qsnn": (ROOT / "rtl" / "digits.qsnn").read_bytes(),
             "train/metrics.json": b"{}\n", "rtl/qsnn_core.v": b"module old; endmodule\n",
             "rtl/qsnn_core.json": b"{}\n", "rtl/notes.txt": b"the user's\n",
             "verify.json": b'{"ok": true}\n'}
    for name, data in files.items():
        (out / name).parent.mkdir(parents=True, exist_ok=True)
        (out / name).write_bytes(data)
    before = _snapshot(out)
    ready = ((lambda proc: (out / "train" / "checkpoint.npz").is_file()) if point == "train"
             else _running("vvp"))
    status, err, children = _interrupt(
        ["flow", "--out", out, "--force", "--epochs", "1" if point == "verify" else "500",
         "--hidden", "16", "--timesteps", "4", "--samples", "360", "--sim", "icarus",
         "--no-synth"], tmp_path, ready)
    _assert_clean(status, err, children, tmp_path / "tmp")
    assert _snapshot(out) == before
