"""The one comparison of a simulated core with the integer golden model.

Every simulator path (Amaranth's simulator, Icarus, Verilator) turns what it observed on
the core's trace and result ports into an :class:`Observed` (golden shapes), and
:func:`compare` checks it, in bulk, against :func:`qsnn_hw.golden.simulate` with
``trace=True``: every layer's spikes and states at every timestep, the counts, the
predictions and the error flag.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..contract import IntNetwork
from ..golden import GoldenResult


@dataclass
class Observed:
    """What a simulation saw, in golden shapes: ``spikes[l]`` and ``states[l]`` (B, T, N)
    (codes for quantized layers, membranes otherwise), ``counts`` (B, N_out),
    ``predictions`` (B,), ``errors`` (B,) error flag after each sample, ``problems``
    (structural: missing words, writes out of order, X/Z bits), ``sample_cycles`` (B,)
    cycles from ``start`` to the result, or None."""

    spikes: list
    states: list
    counts: np.ndarray
    predictions: np.ndarray
    errors: np.ndarray
    problems: list = field(default_factory=list)
    sample_cycles: np.ndarray | None = None


def golden_states(net: IntNetwork, gold: GoldenResult) -> list:
    """The golden state trace per layer: codes of quantized layers, else membranes."""
    if gold.mem is None:
        raise ValueError("compare needs the golden model's traces: simulate(net, x, trace=True)")
    return [gold.codes[i] if layer.quantized else gold.mem[i]
            for i, layer in enumerate(net.layers)]


def compare(net: IntNetwork, gold: GoldenResult, got: Observed) -> dict:
    """A report: ``ok``, ``mismatches`` (number of differing values plus structural
    problems), ``mismatch_counts`` per quantity, ``first`` (the earliest failure: sample,
    timestep, lowest layer, state before spike, lowest neuron; expected vs actual) and
    ``problems``."""
    B, T = gold.spikes[0].shape[:2]
    firsts, counts = [], {}
    for li, (layer, exp_state) in enumerate(zip(net.layers, golden_states(net, gold),
                                                strict=True)):
        kind = "code" if layer.quantized else "membrane"
        for what, exp, act in (("state", exp_state, got.states[li]),
                               ("spike", gold.spikes[li], got.spikes[li])):
            exp = np.asarray(exp, np.int64)
            act = np.asarray(act, np.int64)
            bad = exp != act
            counts[f"layer{li}_{what}"] = int(bad.sum())
            if bad.any():
                b, t, n = (int(v) for v in np.argwhere(bad)[0])
                firsts.append(((b, t, li, 0 if what == "state" else 1, n), {
                    "sample": b, "timestep": t, "layer": li, "neuron": n,
                    "what": kind if what == "state" else "spike",
                    "expected": int(exp[b, t, n]), "actual": int(act[b, t, n])}))
    for what, exp, act in (("counts", gold.counts, got.counts),
                           ("prediction", gold.predictions, got.predictions)):
        exp, act = np.asarray(exp, np.int64), np.asarray(act, np.int64)
        bad = exp != act
        counts[what] = int(bad.sum())
        if bad.any():
            idx = tuple(int(i) for i in np.argwhere(bad)[0])
            n = idx[1] if exp.ndim == 2 else None
            firsts.append(((idx[0], T, len(net.layers), 2, n or 0), {
                "sample": idx[0], "timestep": None, "layer": "output", "neuron": n,
                "what": what, "expected": int(exp[idx]), "actual": int(act[idx])}))
    problems = list(got.problems)
    counts["error_flag"] = int(np.asarray(got.errors).sum())
    if counts["error_flag"]:
        problems.append(f"error flag raised in {counts['error_flag']} sample(s)")
    mismatches = sum(counts.values()) + len(got.problems)
    return {
        "ok": mismatches == 0 and not problems, "samples": int(B), "timesteps": int(T),
        "mismatches": mismatches, "mismatch_counts": counts,
        "first": min(firsts, key=lambda f: f[0])[1] if firsts else None,
        "problems": problems, "predictions": np.asarray(got.predictions).tolist(),
        "golden_predictions": np.asarray(gold.predictions).tolist(),
        "sample_cycles": None if got.sample_cycles is None
        else np.asarray(got.sample_cycles).tolist(),
        # each sample's cycles from ``start`` to its result, summed: one definition for
        # every simulator
        "cycles": None if got.sample_cycles is None else int(np.sum(got.sample_cycles)),
    }


def format_report(r: dict, name: str = "core", describe: str = "") -> str:
    """A few lines for a terminal."""
    if r["ok"]:
        return f"{name}: OK ({r['samples']} samples x {r['timesteps']} timesteps)"
    lines = [f"{name}: MISMATCH" + (f" ({describe})" if describe else "")]
    f = r["first"]
    if f:
        lines.append(f"  first failure: sample {f['sample']}, timestep {f['timestep']}, "
                     f"layer {f['layer']}, neuron {f['neuron']}: {f['what']} expected "
                     f"{f['expected']}, got {f['actual']}")
    bad = {k: v for k, v in r["mismatch_counts"].items() if v}
    if bad:
        lines.append(f"  mismatching values: {bad}")
    lines += [f"  problem: {p}" for p in r["problems"]]
    if r.get("waveform"):
        lines.append(f"  waveform: {r['waveform']}")
        lines.append(f"  open it with: {waveform_viewer_hint(r['waveform'])}")
    return "\n".join(lines)


def waveform_viewer_hint(path) -> str:
    """How to look at a waveform file: GTKWave reads VCD and FST; Surfer (surfer-project.org)
    reads VCD and FST too and installs without root (``cargo install surfer`` or its
    release binary)."""
    return f"gtkwave {path}   (or: surfer {path})"
