"""Nothing of the user's is overwritten, and every output error is one line with exit
status 2, found before any work (issue 17, parts 1-2). docs/reliability.md lists each
case with its test here. Training and synthesis are stubbed: these tests prove what
happens before (or instead of) the work, in seconds."""

import json
import os
import time
from pathlib import Path

import numpy as np
import pytest

from qsnn_hw import _io
from qsnn_hw.artifact import Artifact, save_artifact
from qsnn_hw.cli import main
from qsnn_hw.errors import UserError
from qsnn_hw.testing import random_network


@pytest.fixture
def model(tmp_path):
    path = tmp_path / "m.qsnn"
    net = random_network(np.random.default_rng(3), sizes=[8, 5, 3], input_bits=1,
                         state_bits=4)
    save_artifact(path, Artifact(net, {"timesteps": 4}))
    return path


@pytest.fixture
def no_build(monkeypatch):
    """Fail the test if synth starts a build."""
    def refuse(*args, **kwargs):
        raise AssertionError("the build started")
    monkeypatch.setattr("qsnn_hw.commands.synth.run_synth", refuse)
    monkeypatch.setattr("qsnn_hw.boards.build.synthesize", refuse)


@pytest.fixture
def no_training(monkeypatch):
    """Fail the test if training starts."""
    def refuse(*args, **kwargs):
        raise AssertionError("training started")
    monkeypatch.setattr("qsnn_hw.train.trainer.run_training", refuse)


def one_line_error(capsys, *words):
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    for w in words:
        assert w in err, err
    return err


# ---------------------------------------------------------------- synth


def test_synth_over_a_file_is_refused_before_building(model, tmp_path, no_build, capsys):
    victim = tmp_path / "bad" / "victim.qsnn"
    victim.parent.mkdir()
    victim.write_bytes(b"the user's file")
    t0 = time.perf_counter()
    rc = main(["synth", str(model), "--board", "icebreaker", "--out", str(victim)])
    assert rc == 2 and time.perf_counter() - t0 < 10
    one_line_error(capsys, f"--out {victim} is a file, not a directory")
    assert victim.read_bytes() == b"the user's file"
    assert sorted(p.name for p in victim.parent.iterdir()) == ["victim.qsnn"]
    # with --force too: a file is never replaced by a build directory
    assert main(["synth", str(model), "--board", "icebreaker", "--out", str(victim),
                 "--force"]) == 2
    assert victim.read_bytes() == b"the user's file"


def test_synth_library_refuses_a_file_before_building(tmp_path):
    from qsnn_hw.boards.build import BuildError, synthesize
    victim = tmp_path / "victim"
    victim.write_text("x")
    net = random_network(np.random.default_rng(1), sizes=[4, 3], input_bits=1, state_bits=4)
    with pytest.raises(BuildError, match="is a file, not a directory"):
        synthesize(net, "icebreaker", victim, toolchain="yowasp", clock_mhz=12)
    assert victim.read_text() == "x"


def test_synth_over_an_earlier_build_needs_force(model, tmp_path, monkeypatch, capsys):
    out = tmp_path / "build"
    out.mkdir()
    (out / "report.json").write_text("{}")
    calls = []

    def fake_build(model, board, out, config, **kw):
        calls.append(out)
        (Path(out) / "report.md").write_text("new build\n")
        return {"bitstream": "top.bin", "weights": {}, "timing_pass": True,
                "clock": {"chosen": "fixed"}}
    monkeypatch.setattr("qsnn_hw.commands.synth.run_synth", fake_build)
    args = ["synth", str(model), "--board", "icebreaker", "--out", str(out)]
    assert main(args) == 2 and not calls
    one_line_error(capsys, f"--out {out} already holds report.json", "--force")
    assert (out / "report.json").read_text() == "{}"
    assert main(args + ["--force"]) == 0 and calls == [str(out)]


def test_synth_never_replaces_a_directory_that_is_not_a_build(model, tmp_path, no_build,
                                                               capsys):
    out = tmp_path / "project"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    assert main(["synth", str(model), "--board", "icebreaker", "--out", str(out),
                 "--force"]) == 2
    one_line_error(capsys, "not an earlier qsnn-hw output", "not even with --force")
    assert (out / "notes.txt").read_text() == "mine"


# ---------------------------------------------------------------- train


def test_train_over_a_model_is_refused_before_training(tmp_path, no_training, capsys):
    out = tmp_path / "r1"
    out.mkdir()
    (out / "model.qsnn").write_bytes(b"good model")
    assert main(["train", "--out", str(out), "--epochs", "1"]) == 2
    one_line_error(capsys, f"--out {out} already holds model.qsnn", "--resume", "--force")
    assert (out / "model.qsnn").read_bytes() == b"good model"


def test_train_over_an_interrupted_run_points_to_resume(tmp_path, no_training, capsys):
    out = tmp_path / "r1"
    out.mkdir()
    (out / "checkpoint.npz").write_bytes(b"epoch 3")
    assert main(["train", "--out", str(out)]) == 2
    one_line_error(capsys, "already holds checkpoint.npz", "--resume to continue")
    assert main(["train", "--out", str(out), "--resume", "--force"]) == 2
    one_line_error(capsys, "give one of them")


def test_train_force_trains_from_scratch(tmp_path, monkeypatch):
    out = tmp_path / "r1"
    out.mkdir()
    (out / "model.qsnn").write_bytes(b"old")
    seen = {}

    def fake_training(cfg, data, out_dir, resume, progress, plots):
        seen["resume"] = resume
        (out / "model.qsnn").write_bytes(b"new")
        return {"artifact": str(out / "model.qsnn")}
    monkeypatch.setattr("qsnn_hw.train.trainer.run_training", fake_training)
    assert main(["train", "--out", str(out), "--force", "--quiet"]) == 0
    assert seen == {"resume": False} and (out / "model.qsnn").read_bytes() == b"new"


# ---------------------------------------------------------------- generate


def test_generate_over_a_file_is_one_line(model, tmp_path, capsys):
    victim = tmp_path / "victim"
    victim.write_text("x")
    assert main(["generate", str(model), "--out", str(victim)]) == 2
    one_line_error(capsys, f"--out {victim} is a file, not a directory")
    assert victim.read_text() == "x"


@pytest.mark.parametrize("existing", [("qsnn_core.v",), ("qsnn_core.json",),
                                      ("qsnn_core.v", "qsnn_core.json")])
def test_generate_over_verilog_needs_force(model, tmp_path, capsys, existing):
    out = tmp_path / "rtl"
    out.mkdir()
    for name in existing:
        (out / name).write_text("old")
    assert main(["generate", str(model), "--out", str(out)]) == 2
    one_line_error(capsys, f"--out {out} already holds {', '.join(existing)}", "--force")
    assert sorted(p.name for p in out.iterdir()) == sorted(existing)
    assert all((out / name).read_text() == "old" for name in existing)


def test_generate_force_replaces_the_pair(model, tmp_path):
    out = tmp_path / "rtl"
    out.mkdir()
    (out / "core.v").write_text("old verilog")
    (out / "core.json").write_text("{}")
    assert main(["generate", str(model), "--out", str(out), "--name", "core",
                 "--force"]) == 0
    assert "module core(" in (out / "core.v").read_text()
    assert json.loads((out / "core.json").read_text())["artifact"]["file"] == "m.qsnn"
    assert sorted(p.name for p in out.iterdir()) == ["core.json", "core.v"]


def test_pair_write_failing_before_the_renames_touches_nothing(tmp_path):
    (tmp_path / "a.v").write_text("old v")
    (tmp_path / "a.json").write_text("old json")
    (tmp_path / "blocker").write_text("a file where a directory would be")
    with pytest.raises(OSError):
        _io.atomic_write_together([(tmp_path / "a.v", b"new v"),
                                   (tmp_path / "blocker" / "a.json", b"new json")])
    assert (tmp_path / "a.v").read_text() == "old v"
    assert (tmp_path / "a.json").read_text() == "old json"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json", "a.v", "blocker"]


def test_pair_write_interrupted_between_renames_leaves_no_mismatched_pair(tmp_path,
                                                                            monkeypatch):
    (tmp_path / "a.v").write_text("old v")
    (tmp_path / "a.json").write_text("old json")
    renames = []
    real_replace = os.replace

    def replace_then_crash(src, dst):
        if renames:
            raise KeyboardInterrupt
        renames.append(dst)
        real_replace(src, dst)
    monkeypatch.setattr(_io.os, "replace", replace_then_crash)
    with pytest.raises(KeyboardInterrupt):
        _io.atomic_write_together([(tmp_path / "a.v", b"new v"),
                                   (tmp_path / "a.json", b"new json")])
    # the new Verilog without a manifest: incomplete, not the old manifest beside it
    assert (tmp_path / "a.v").read_text() == "new v"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.v"]


def test_single_file_write_keeps_the_old_file_until_the_rename(tmp_path, monkeypatch):
    (tmp_path / "a").write_text("old")

    def crash(src, dst):
        raise KeyboardInterrupt
    monkeypatch.setattr(_io.os, "replace", crash)
    with pytest.raises(KeyboardInterrupt):
        _io.atomic_write_text(tmp_path / "a", "new")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a"]
    assert (tmp_path / "a").read_text() == "old"


# ---------------------------------------------------------------- flow and sweep


def test_flow_over_an_earlier_flow_needs_force(tmp_path, no_training, capsys):
    out = tmp_path / "flow"
    (out / "train").mkdir(parents=True)
    (out / "train" / "model.qsnn").write_bytes(b"old")
    assert main(["flow", "--out", str(out), "--no-synth"]) == 2
    one_line_error(capsys, "already holds train/model.qsnn", "--force")


def test_sweep_over_a_finished_sweep_needs_force(tmp_path, capsys):
    out = tmp_path / "sweep"
    out.mkdir()
    (out / "results.json").write_text("{}")
    assert main(["sweep", "--out", str(out)]) == 2
    one_line_error(capsys, "already holds results.json", "--force")
    assert (out / "results.json").read_text() == "{}"


# ---------------------------------------------------------------- unwritable --out


def _command(name, model):
    return {"generate": ["generate", str(model)],
            "synth": ["synth", str(model), "--board", "icebreaker"],
            "train": ["train"], "flow": ["flow"], "sweep": ["sweep"], "demo": ["demo"]}[name]


@pytest.mark.parametrize("name", ["generate", "synth", "train", "flow", "sweep", "demo"])
def test_out_under_a_file_is_refused_before_work(name, model, tmp_path, no_build,
                                                 no_training, capsys):
    blocker = tmp_path / "existing_file"
    blocker.write_text("x")
    out = blocker / "sub"
    assert main([*_command(name, model), "--out", str(out)]) == 2
    one_line_error(capsys, f"--out {out} is under the file {blocker}")
    assert blocker.read_text() == "x"


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only directories")
@pytest.mark.parametrize("name", ["generate", "synth", "train", "flow", "sweep", "demo"])
def test_out_in_a_read_only_directory_is_refused_before_work(name, model, tmp_path,
                                                             no_build, no_training, capsys):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        assert main([*_command(name, model), "--out", str(ro / "out")]) == 2
    finally:
        ro.chmod(0o755)
    one_line_error(capsys, f"cannot write in {ro}")


@pytest.mark.parametrize("name", ["generate", "synth", "train", "flow", "sweep", "demo"])
def test_out_where_writing_is_denied_is_refused_before_work(name, model, tmp_path,
                                                            monkeypatch, no_build,
                                                            no_training, capsys):
    """The same as above for any user (root included): the write probe is denied."""
    def denied(*args, **kwargs):
        raise PermissionError(13, "Permission denied")
    monkeypatch.setattr("qsnn_hw.commands._out.tempfile.mkstemp", denied)
    assert main([*_command(name, model), "--out", str(tmp_path / "out")]) == 2
    one_line_error(capsys, f"cannot write in {tmp_path} (Permission denied)")
    assert not (tmp_path / "out").exists()


# ---------------------------------------------------------------- exit status


def test_debug_shows_the_traceback(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        main(["--debug", "generate", str(tmp_path / "nope.qsnn"), "--out", str(tmp_path)])


def test_os_errors_and_interrupts_have_their_exit_status(monkeypatch, capsys):
    def denied(args):
        raise PermissionError(13, "Permission denied", "somewhere")
    monkeypatch.setattr("qsnn_hw.commands.demo.run", denied)
    assert main(["demo"]) == 2
    one_line_error(capsys, "Permission denied")

    def interrupted(args):
        raise KeyboardInterrupt
    monkeypatch.setattr("qsnn_hw.commands.demo.run", interrupted)
    assert main(["demo"]) == 130
    one_line_error(capsys, "interrupted")


# ---- replacing(): an earlier run set aside, restored unless the new one finishes -------

def _files(root: Path) -> dict:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def _earlier_run(out: Path) -> dict:
    for name, data in {"summary.json": b"old summary", "train/model.qsnn": b"old model",
                       "rtl/core.v": b"old verilog", "rtl/mine.txt": b"the user's"}.items():
        (out / name).parent.mkdir(parents=True, exist_ok=True)
        (out / name).write_bytes(data)
    return _files(out)


def _new_run(out: Path) -> None:
    for name in ("summary.json", "train/model.qsnn", "rtl/core.v", "build/report.json"):
        (out / name).parent.mkdir(parents=True, exist_ok=True)
        (out / name).write_bytes(b"new " + name.encode())


NAMES = ("summary.json", "train", "rtl/core.v", "build")


@pytest.mark.parametrize("failure", [KeyboardInterrupt, RuntimeError])
def test_replacing_puts_the_earlier_run_back_when_the_new_one_fails(tmp_path, failure):
    from qsnn_hw.commands._out import replacing
    before = _earlier_run(tmp_path)
    with pytest.raises(failure), replacing(tmp_path, NAMES):
        assert not (tmp_path / "train").exists() and not (tmp_path / "summary.json").exists()
        _new_run(tmp_path)
        raise failure()
    assert _files(tmp_path) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rtl", "summary.json", "train"]


def test_replacing_keeps_the_new_run_and_the_users_files_when_it_finishes(tmp_path):
    from qsnn_hw.commands._out import replacing
    _earlier_run(tmp_path)
    with replacing(tmp_path, NAMES):
        _new_run(tmp_path)
    assert _files(tmp_path) == {"summary.json": b"new summary.json",
                                "train/model.qsnn": b"new train/model.qsnn",
                                "rtl/core.v": b"new rtl/core.v", "rtl/mine.txt": b"the user's",
                                "build/report.json": b"new build/report.json"}
    assert not list(tmp_path.glob(".previous-*"))


def test_replacing_a_fresh_directory_that_fails_leaves_none(tmp_path):
    from qsnn_hw.commands._out import replacing
    out = tmp_path / "a" / "out"
    with pytest.raises(KeyboardInterrupt), replacing(out, NAMES):
        out.mkdir(parents=True)
        _new_run(out)
        raise KeyboardInterrupt
    assert list(tmp_path.iterdir()) == []
