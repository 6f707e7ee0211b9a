# amaranth: UnusedElaboratable=no
"""Formal proof of the LIF datapath (qsnn_hw.formal, ``qsnn-hw prove``): the reference
model and a seeded sample of random networks are proven; mutated datapaths are refuted,
and each counterexample is checked against a scalar Python model of the contract and a
simulation of the mutant (docs/verification.md, "What is proven, what is simulated")."""

import functools
import inspect
import types
from pathlib import Path

import numpy as np
import pytest

import qsnn_hw.hdl.lif as lif_module
import qsnn_hw.hdl.quantizer as quantizer_module
from qsnn_hw.artifact import Artifact, load_artifact, save_artifact
from qsnn_hw.cli import main
from qsnn_hw.contract import IntLayer
from qsnn_hw.formal import prove_datapath, prove_network
from qsnn_hw.formal.spec import ContractSpec
from qsnn_hw.hdl.config import CoreConfig
from qsnn_hw.hdl.geometry import LayerGeometry
from qsnn_hw.hdl.sim_util import run_simulation
from qsnn_hw.testing import random_layer, random_network

pytestmark = [pytest.mark.formal,
              pytest.mark.filterwarnings("ignore::amaranth.hdl.UnusedElaboratable")]

DIGITS = Path(__file__).resolve().parents[1] / "rtl" / "digits.qsnn"


# ---- an independent scalar model of one update (docs/fixed-point.md) -----------------
def contract_step(layer: IntLayer, state: int, fresh: int, acc: int, bias: int):
    """(new state, spike) by the contract's equations, brute-force nearest level."""
    if layer.quantized:
        lv = [int(v) for v in layer.levels]
        rest = min(range(len(lv)), key=lambda k: (abs(lv[k]), k))
        u = (lv[rest] if layer.rest == "level" else 0) if fresh else lv[state]
    else:
        u = 0 if fresh else state
    z = (not fresh) and u > layer.threshold
    s = layer.beta_shift
    leak = (layer.beta_num * u + (1 << (s - 1))) // (1 << s) if s else u
    cur = acc * 2 ** layer.frac_bits + (bias if layer.bias is not None else 0)
    if layer.reset == "subtract":
        v = leak + cur - (layer.threshold if z else 0)
    elif layer.reset == "zero":
        v = 0 if z else leak + cur
    else:
        v = (0 if z else leak) + cur
    if layer.quantized:
        best = 0
        for k in range(len(lv)):
            if abs(lv[k] - v) < abs(lv[best] - v):
                best = k
        return best, int(lv[best] > layer.threshold)
    lo, hi = -(1 << (layer.mem_bits - 1)), (1 << (layer.mem_bits - 1)) - 1
    u = min(max(v, lo), hi)
    return u, int(u > layer.threshold)


def simulate_datapath(cls, layer, geom, pipelined, state, fresh, acc, bias):
    """(new state, spike) of datapath class ``cls`` in Amaranth's simulator."""
    dut = cls(layer, input_max=geom.input_max, acc_width=geom.acc_width, pipelined=pipelined)
    got = []

    async def tb(ctx):
        ctx.set(dut.state, state)
        ctx.set(dut.fresh, fresh)
        ctx.set(dut.acc, acc)
        ctx.set(dut.bias, bias)
        for _ in range(dut.latency):
            await ctx.tick()
        got.append((ctx.get(dut.new_state), ctx.get(dut.spike)))

    run_simulation(dut, [tb], name="formal_cex")
    return got[0]


# ---- the spec itself, against the scalar model ------------------------------------------
@pytest.mark.parametrize("state_bits", [None, 3])
@pytest.mark.parametrize("reset", ["subtract", "zero", "clear"])
@pytest.mark.parametrize("rest", ["level", "zero"])
def test_spec_matches_the_scalar_model(state_bits, reset, rest):
    rng = np.random.default_rng(7)
    layer = random_layer(rng, 4, 3, input_max=3, state_bits=state_bits, reset=reset, bias=True,
                         rest=rest)
    geom = LayerGeometry.of(layer, 1, input_bits=2)
    spec = ContractSpec(layer, acc_width=geom.acc_width, bias_width=geom.bias_width)
    bound = layer.current_bound(3) >> layer.frac_bits
    cases = []
    for i in range(120):
        st = (int(rng.integers(0, layer.levels.size)) if layer.quantized
              else int(rng.integers(layer.mem_lo, layer.mem_hi + 1)))
        if not layer.quantized and i % 10 == 0:
            st = [layer.mem_lo, layer.mem_hi][i % 20 // 10]
        acc = int(rng.integers(-bound // 2, bound // 2 + 1))
        cases.append((st, int(i % 4 == 0), acc, int(layer.bias[i % layer.n_out])))
    got = []

    async def tb(ctx):
        for st, fr, acc, b in cases:
            ctx.set(spec.state, st)
            ctx.set(spec.fresh, fr)
            ctx.set(spec.acc, acc)
            ctx.set(spec.bias, b)
            got.append((ctx.get(spec.new_state), ctx.get(spec.spike)))

    run_simulation(spec, [tb], name="formal_spec")
    assert got == [contract_step(layer, *c) for c in cases]


# ---- proofs -----------------------------------------------------------------------------
@pytest.mark.parametrize("quantizer", ["auto", "pipelined"])
def test_reference_model_is_proven(quantizer, capsys):
    assert main(["prove", str(DIGITS), "--quantizer", quantizer, "--lanes", "64,10"]) == 0
    out = capsys.readouterr().out
    kind = "comparators" if quantizer == "auto" else "pipelined-search"
    assert out.count(f"{kind}, subtract reset") == 2
    assert out.count(": proven in ") == 2 and "PROVEN: 2 of 2" in out


# (seed, state bits, reset, quantizer, input bits): both quantizer kinds, both resets,
# quantized and unquantized layers, spike and multi-bit input
SAMPLE = [(0, 3, "subtract", "comparators", 4), (1, None, "zero", "auto", 1),
          (2, 4, "zero", "pipelined", 8), (3, 5, "subtract", "pipelined", 1),
          (4, 2, "zero", "comparators", 1), (5, None, "subtract", "auto", 8),
          (6, 3, "clear", "comparators", 1), (7, None, "clear", "auto", 4)]


@pytest.mark.parametrize("seed,state_bits,reset,quantizer,input_bits", SAMPLE)
def test_random_networks_are_proven(seed, state_bits, reset, quantizer, input_bits):
    # odd seeds start from exactly 0 (rest "zero", snnTorch's), even ones from the level
    # nearest 0
    net = random_network(np.random.default_rng(500 + seed), sizes=[6, 5, 4],
                         input_bits=input_bits, state_bits=state_bits, reset=reset,
                         rest="zero" if seed % 2 else "level")
    proofs = prove_network(net, CoreConfig(quantizer=quantizer))
    assert [p.proven for p in proofs] == [True, True], [p.counterexample for p in proofs]
    if state_bits is not None:
        want = {"comparators": "comparators", "pipelined": "pipelined-search"}[quantizer]
        assert {p.quantizer for p in proofs} == {want}


# ---- mutants: the proof must fail, with a real counterexample ---------------------------
def _load_mutant(module, old: str, new: str, name: str):
    src = inspect.getsource(module)
    assert src.count(old) == 1, f"mutation text of {name} not found exactly once"
    mod = types.ModuleType(f"{module.__name__}_{name}")
    mod.__package__ = module.__package__
    exec(compile(src.replace(old, new), f"<mutant {name}>", "exec"), mod.__dict__)
    return mod


def mutant_datapath(name: str, file: str, old: str, new: str):
    """A LIFDatapath class with one fault, built from a modified copy of the source of
    ``qsnn_hw/hdl/<file>`` (lif.py, or quantizer.py used by an unmodified lif.py)."""
    if file == "lif.py":
        return _load_mutant(lif_module, old, new, name).LIFDatapath
    quant = _load_mutant(quantizer_module, old, new, name)
    same = "from .quantizer import CodeQuantizer"
    lif = _load_mutant(lif_module, same, same, name)    # a copy that uses the mutant
    lif.CodeQuantizer = quant.CodeQuantizer
    return lif.LIFDatapath


def _digits_layer():
    return load_artifact(DIGITS).network.layers[0], 4


def _unquantized_layer(reset):
    """8-bit membrane, beta = 8/8 (so the top clip is reachable: u = 100 without a
    spike, I up to 38), a bias."""
    layer = IntLayer(np.array([[20, 15, -9], [-12, 7, 3]]), 100, 8, 3, reset,
                     np.array([3, -5]), 0, None, 8)
    return layer, 1


MUTANTS = {
    # name: (file, old, new, layer, quantizer pipelined)
    "ties_go_high": (
        "lif.py", "CodeQuantizer(layer.boundaries,",
        "CodeQuantizer([(int(a) + int(b) - 1) >> 1 for a, b in "
        "zip(layer.levels[:-1], layer.levels[1:])],", "digits", False),
    "search_compares_not_strictly": (
        "quantizer.py", "bit = val > bound", "bit = val >= bound", "digits", True),
    "leak_table_rounds_down": (
        "lif.py", "LevelTable(leaked_levels(L))",
        "LevelTable([(L.beta_num * int(u)) >> L.beta_shift for u in L.levels])",
        "digits", False),
    "leak_rounding_constant_doubled": (
        "lif.py", "leak = (pre_r + (1 << (L.beta_shift - 1))) >> L.beta_shift",
        "leak = (pre_r + (1 << L.beta_shift)) >> L.beta_shift", "subtract", None),
    "reset_subtract_dropped": (
        "lif.py", "m.d.sync += v.eq(leak + current_r - Mux(z_prev_r, thr, 0))",
        "m.d.sync += v.eq(leak + current_r)", "digits", True),
    "previous_spike_not_strict": (
        "lif.py", "z_prev = ~fresh & (state > L.threshold_code)",
        "z_prev = ~fresh & (state >= L.threshold_code)", "digits", False),
    "zero_reset_keeps_the_current": (
        "lif.py", "m.d.sync += v.eq(Mux(z_prev_r, 0, leak + current_r))",
        "m.d.sync += v.eq(leak + current_r)", "zero", None),
    "top_clip_removed": (
        "lif.py", "u = Mux(v < L.mem_lo, L.mem_lo, Mux(v > L.mem_hi, L.mem_hi, v))",
        "u = Mux(v < L.mem_lo, L.mem_lo, v)", "subtract", None),
    "fresh_ignored": (
        "lif.py", "u_prev = Mux(fresh, 0, state)", "u_prev = state",
        "zero", None),
}


@pytest.mark.parametrize("name", sorted(MUTANTS))
def test_mutant_is_refuted_with_a_real_counterexample(name):
    file, old, new, which, pipelined = MUTANTS[name]
    layer, input_bits = _digits_layer() if which == "digits" else _unquantized_layer(which)
    geom = LayerGeometry.of(layer, 1, input_bits=input_bits, pipelined=pipelined)
    cls = mutant_datapath(name, file, old, new)
    proof = prove_datapath(layer, geom, pipelined, datapath=cls)
    assert not proof.proven
    cex = proof.counterexample
    bound = layer.current_bound(geom.input_max)
    current = cex.acc * 2 ** layer.frac_bits + cex.bias
    assert -bound <= current <= bound            # an input the engine can give
    want = contract_step(layer, cex.state, cex.fresh, cex.acc, cex.bias)
    assert cex.expected == want
    got = simulate_datapath(cls, layer, geom, pipelined, cex.state, cex.fresh, cex.acc,
                            cex.bias)
    assert got == cex.got and got != want
    # the unmutated datapath computes the contract on the same input
    real = simulate_datapath(lif_module.LIFDatapath, layer, geom, pipelined, cex.state,
                             cex.fresh, cex.acc, cex.bias)
    assert real == want


def test_prove_reports_a_counterexample_and_exits_1(monkeypatch, capsys, tmp_path):
    import qsnn_hw.commands.prove as prove_cmd
    file, old, new, _, _ = MUTANTS["reset_subtract_dropped"]
    cls = mutant_datapath("cli", file, old, new)
    monkeypatch.setattr(prove_cmd, "prove_network",
                        functools.partial(prove_network, datapath=cls))
    net = load_artifact(DIGITS).network
    model = tmp_path / "one.qsnn"
    save_artifact(model, Artifact(type(net)((net.layers[1],), 1)))
    assert main(["prove", str(model)]) == 1
    out = capsys.readouterr().out
    assert "layer 0 (128 -> 10" in out and "COUNTEREXAMPLE" in out and "FAILED: 0 of 1" in out
    line = next(ln for ln in out.splitlines() if ln.strip().startswith("state code"))
    assert "acc " in line and "bias " in line and "fresh " in line
    assert "expected code" in line and "got code" in line


def test_prove_errors(tmp_path, capsys):
    assert main(["prove", str(tmp_path / "none.qsnn")]) == 2
    assert "does not exist" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main(["prove", str(DIGITS), "--timeout", "0"])
    assert exc.value.code == 2
    assert "--timeout" in capsys.readouterr().err
