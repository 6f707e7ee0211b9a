"""CLI fuzz: random flag sets for every subcommand, drawn from each parser's own options
(valid values, edge values and junk), never produce a traceback.

The long work behind each command (training, simulation, synthesis, a sweep, a serial
port) is replaced by a sentinel that only records that the flags got that far, so an
example costs milliseconds; what runs for real is everything before it: argument
parsing, flag validation, the output-directory checks, loading and checking the artifact
and the core configuration, generating a core (the tiny model's). Every example must end
in one of: argparse's usage error (exit 2), exit 0/1/2 from ``main`` with any error as
one line ``qsnn-hw CMD: error: ...``, or the sentinel."""

from __future__ import annotations

import argparse
import contextlib
import io

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from qsnn_hw.artifact import Artifact, save_artifact
from qsnn_hw.cli import COMMANDS, build_parser, main
from qsnn_hw.testing import random_network

# values any flag may get besides its own choices: edges, junk, lists, specials
JUNK = ["", "0", "1", "-1", "2", "3", "16", "256", "65536", "1e309", "nan", "inf", "-inf",
        "0.5", "1.5", "auto", "min", "default", "static", "1,2", "1,0", "2,2,2", "a,b", ",",
        "rom", "spram", "double", "icebreaker", "ulx3s-85f", "digits", "shd", "x" * 300,
        "é", "--", "None"]


class ReachedWork(Exception):
    """The flags passed every check before the command's long work."""


def _options(command: str) -> list[argparse.Action]:
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return [a for a in sub.choices[command]._actions
            if not isinstance(a, argparse._HelpAction)]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A tiny valid artifact, the trained reference model (it carries a training config,
    so verify and flow get past loading it), a damaged one, a directory, a plain file."""
    from pathlib import Path
    root = tmp_path_factory.mktemp("fuzz")
    good = root / "m.qsnn"
    save_artifact(good, Artifact(random_network(np.random.default_rng(1), sizes=[6, 4, 3],
                                                state_bits=3)))
    bad = root / "bad.qsnn"
    bad.write_bytes(good.read_bytes()[:100])
    (root / "plain.txt").write_text("not a model\n")
    trained = Path(__file__).resolve().parent.parent / "rtl" / "digits.qsnn"
    from qsnn_hw.artifact import load_artifact
    from qsnn_hw.interop import write_nir
    graph = write_nir(load_artifact(good), root / "m.nir")       # for import
    return {"good": str(good), "trained": str(trained), "bad": str(bad), "dir": str(root),
            "file": str(root / "plain.txt"), "missing": str(root / "none.qsnn"),
            "nir": str(graph)}


@pytest.fixture(autouse=True)
def no_long_work(monkeypatch, tmp_path):
    """Training, simulation (the demo's golden run too), proofs, synthesis, sweeps and
    serial ports raise ReachedWork;
    every dataset name loads the built-in digits (no download); default output
    directories (relative to the working directory) land in ``tmp_path``."""
    monkeypatch.chdir(tmp_path)
    import qsnn_hw.boards.build as build
    import qsnn_hw.commands.demo as demo_cmd
    import qsnn_hw.commands.prove as prove_cmd
    import qsnn_hw.commands.run as run_cmd
    import qsnn_hw.commands.verify as verify_cmd
    import qsnn_hw.data as data
    import qsnn_hw.sweep as sweep
    import qsnn_hw.train.trainer as trainer
    from qsnn_hw.data.registry import load_dataset as real_load

    def stop(*_args, **_kw):
        raise ReachedWork

    digits = {}

    def load(name, data_dir="", timesteps=100, seed=0):
        if name not in ("digits", "fashion_mnist", "shd"):
            return real_load(name, data_dir, timesteps, seed)   # its own error
        key = (timesteps, seed)
        if key not in digits:
            digits[key] = real_load("digits", "", timesteps, seed)
        return digits[key]

    monkeypatch.setattr(trainer, "run_training", stop)
    monkeypatch.setattr(demo_cmd, "simulate", stop)
    monkeypatch.setattr(verify_cmd, "verify_model", stop)
    monkeypatch.setattr(prove_cmd, "prove_network", stop)
    import qsnn_hw.formal.protocol as protocol
    monkeypatch.setattr(protocol, "prove_protocol", stop)
    monkeypatch.setattr(build, "synthesize", stop)
    monkeypatch.setattr(sweep, "run_sweep", stop)
    monkeypatch.setattr(run_cmd, "BoardLink", stop)
    monkeypatch.setattr(data, "load_dataset", load)


@st.composite
def argv_for(draw, command: str, files: dict, out: str):
    """The command, its required arguments, then up to five of its other flags, each
    with a valid value (its default or one of its choices, listed first: hypothesis
    starts from those) or junk."""
    actions = _options(command)
    optional = [a for a in actions if a.option_strings and not a.required]
    chosen = draw(st.lists(st.sampled_from(optional), max_size=5, unique_by=id))
    args = [command]
    for action in [a for a in actions if a not in optional] + chosen:
        if not action.option_strings:      # the MODEL positional
            first = ["nir"] if command == "import" else ["trained", "good"]
            args.append(files[draw(st.sampled_from(first + sorted(files)))])
            continue
        flag = action.option_strings[0]
        if action.nargs == 0:              # store_true
            args.append(flag)
            continue
        default = [] if action.default in (None, False, True, argparse.SUPPRESS) \
            else [str(action.default)]
        pool = default + list(action.choices or []) + JUNK
        if flag in ("--out", "--build-dir", "--data-dir", "--nir"):
            pool = [out, out + "/sub", files["file"], files["file"] + "/sub", files["dir"]]
        elif flag == "--board":
            pool = ["icebreaker", "ulx3s-85f"] + JUNK
        elif flag in ("--config", "--report"):
            pool = [files["file"], files["missing"], files["good"], files["dir"]]
        args += [flag, draw(st.sampled_from(pool))]
    return args


def _outcome(argv: list[str]) -> str:
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            code = main(argv)
        except ReachedWork:
            return "work"
        except SystemExit as exc:          # argparse: a usage error
            assert exc.code == 2, (argv, exc.code)
            return "usage"
    text = err.getvalue()
    assert "Traceback" not in text, (argv, text)
    if code == 2:
        lines = [ln for ln in text.splitlines() if ln.startswith("qsnn-hw ")]
        assert len(lines) == 1 and lines[0].startswith(f"qsnn-hw {argv[0]}: error: "), \
            (argv, text)
    assert code in (0, 1, 2), (argv, code)
    return f"exit {code}"


@pytest.mark.parametrize("command", [c for c in COMMANDS])
def test_random_flags_never_give_a_traceback(command, files, tmp_path):
    seen = set()

    @settings(max_examples=60, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    @given(st.data())
    def check(data):
        argv = data.draw(argv_for(command, files, str(tmp_path / "out")))
        seen.add(_outcome(argv))

    check()
    # the fuzz reached past the parser and, for every command but run (it stops at the
    # serial port: exit 2), through the checks to the work
    assert seen - {"usage"}, seen
    assert command == "run" or seen & {"work", "exit 0"}, seen
