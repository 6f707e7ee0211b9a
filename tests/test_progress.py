"""The progress module (qsnn_hw.progress) and --quiet on the long commands."""

from __future__ import annotations

import io
import json
import time

import pytest

from qsnn_hw import progress
from qsnn_hw.boards.build import tool_stage
from qsnn_hw.cli import main


class _Terminal(io.StringIO):
    def isatty(self):
        return True


@pytest.fixture(autouse=True)
def _shown():
    """Every test starts with progress shown and the default interval."""
    was_quiet, was_interval = progress.set_quiet(False), progress.interval()
    yield
    progress.set_quiet(was_quiet)
    progress.set_interval(was_interval)


def test_quiet_silences_bars_lines_and_stages():
    out = io.StringIO()
    with progress.quiet():
        with progress.bar(10, "work", "items", stream=out) as b:
            for _ in range(10):
                b.update()
            b.stage("half way")
        progress.line("a message", out)
        with progress.stage("a step", stream=out):
            pass
    assert out.getvalue() == ""
    # and shown again after the block
    progress.line("a message", out)
    assert out.getvalue() == "a message\n"


def test_off_a_terminal_plain_lines_no_carriage_returns():
    out = io.StringIO()
    progress.set_interval(3600)      # no periodic line during this test
    with progress.bar(500, "work", "items", stream=out) as b:
        for i in range(500):
            b.update()
            if i == 100:
                b.stage("second half")          # a milestone: a line of its own
            if i == 200:
                b.stage("minor detail", milestone=False)
    text = out.getvalue()
    assert "\r" not in text and "\x1b" not in text
    lines = text.splitlines()
    # the start, the milestone, the end: not one line per update
    assert len(lines) == 3, lines
    assert lines[0].startswith("work: 0/500 items")
    assert "second half" in lines[1]
    assert lines[-1].startswith("work: 500/500 items (100 %)")


def test_off_a_terminal_a_line_every_interval_while_nothing_moves():
    out = io.StringIO()
    progress.set_interval(0.5)
    with progress.bar(None, "build", stream=out, stage="synthesis"):
        time.sleep(2.6)
    lines = out.getvalue().splitlines()
    # about one a second (identical lines -- the same elapsed second -- are dropped)
    assert 3 <= len(lines) <= 6, lines
    assert all(ln.startswith("build: [") and "synthesis" in ln for ln in lines)


def test_total_elapsed_and_eta_shown():
    out = _Terminal()
    with progress.bar(4, "work", "items", stream=out) as b:
        b.update()
        time.sleep(0.2)
        b.update()
        b._tqdm.refresh()
        assert "~" in b.times() and "left" in b.times()
    text = out.getvalue()
    assert "\r" in text                     # a terminal: redrawn in place
    assert "/4 items" in text
    # elapsed<remaining, with a remaining time computed (not "?") once items are done
    assert any("<00:0" in part for part in text.split("\r")[2:]), text


def test_line_mode_eta():
    out = io.StringIO()
    progress.set_interval(0.0)
    with progress.bar(10, "work", "items", stream=out) as b:
        for _ in range(5):
            time.sleep(0.01)
            b.update()
    mid = [ln for ln in out.getvalue().splitlines() if "5/10" in ln][0]
    assert "<00:00" in mid and "?" not in mid.split("<")[1]


def test_stage_lines_with_elapsed_time():
    out = io.StringIO()
    with progress.stage("verify", "flow [4/5] ", stream=out):
        pass
    with pytest.raises(RuntimeError), progress.stage("synth", stream=out):
        raise RuntimeError("tool failed")
    lines = out.getvalue().splitlines()
    assert lines[0] == "flow [4/5] verify ..."
    assert lines[1].startswith("flow [4/5] verify: done in ") and lines[1].endswith(" s")
    assert lines[3].startswith("synth: stopped after ")


def test_tool_stages_from_yosys_and_nextpnr_logs():
    assert tool_stage("2.52. Executing ABC9 pass.", "yosys") == ("synthesis: ABC9 pass",
                                                                 False)
    assert tool_stage("2.3. Executing PROC pass (convert processes to netlists).",
                      "yosys") == ("synthesis: PROC pass", False)
    assert tool_stage("2.3.1. Executing PROC_CLEAN pass.", "yosys") is None
    assert tool_stage("Info: Routing..", "nextpnr") == ("place and route: routing", True)
    assert tool_stage("Info: Max frequency for clock", "nextpnr") is None


def test_cocotb_trace_watch_counts_flushed_results(tmp_path):
    from qsnn_hw.verify.runner import _TraceWatch

    (tmp_path / "a.trace").write_text("B 1\nR 5 0 3\n")      # an earlier run's
    info = {"cores": [{"name": "a", "samples": 3}]}
    b = progress.bar(3, "t", stream=io.StringIO())
    watch = _TraceWatch(tmp_path / "bundle.json", info, "icarus", b)
    assert watch.poll() == 0                         # unchanged: not this run's
    time.sleep(0.01)
    (tmp_path / "a.trace").write_text("B 7\nW0 1f\nR 9 0 2\nB 10\nR 1")   # a partial line
    assert watch.poll() == 1 and b.n == 1
    with open(tmp_path / "a.trace", "a") as f:
        f.write("2 0 4\nB 13\nR 15 0 1\n")
    assert watch.poll() == 3 and b.n == 3
    assert b.stage_text == "checking against the golden model"
    b.close()


def test_quiet_command_prints_no_progress(tmp_path, capsys):
    """train --quiet: no bars, no epoch lines; its result still printed."""
    args = ["train", "--epochs", "2", "--hidden", "8", "--timesteps", "4",
            "--max-train-samples", "200", "--no-plots", "--out"]
    assert main(args + [str(tmp_path / "loud")]) == 0
    loud = capsys.readouterr().err
    assert "epoch 1/2" in loud and "train: " in loud
    assert main(args + [str(tmp_path / "quiet"), "--quiet"]) == 0
    err = capsys.readouterr().err
    assert "epoch" not in err and "train: " not in err and "%|" not in err
    lines = err.splitlines()
    assert len(lines) == 2, lines
    assert lines[0].startswith("test: float ") and lines[1].startswith("wrote ")
    assert json.loads((tmp_path / "quiet" / "metrics.json").read_text())["epochs_run"] == 2
    assert not progress.is_quiet()          # the flag does not outlive the command
