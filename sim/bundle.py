"""Simulation bundles: generated cores + stimulus + golden expectations, ready for the
generic cocotb testbench (``sim/tb_core.py``).

A bundle is a directory holding K independent cores that one simulator build runs side
by side (one Verilator compile for many random configurations):

* ``<name>.v``: each core (``qsnn_hw.hdl.emit.generate``; module prefix = core name);
* ``qsnn_tb.v``: the generated harness top. Per core it preloads the input beats from
  ``<name>.stim.hex`` (``$readmemh``), drives ``events`` with a random number of idle
  cycles before each beat (drawn in Python, stored with the beat: the source never drops
  ``valid`` before the transfer), pulses ``start`` whenever ``busy`` is low, drives
  ``results.ready`` from a seeded LFSR, and writes every output-FIFO word and every
  state-memory write of every layer (through the hierarchy) plus every result beat to
  ``<name>.trace``. No Python runs per cycle; the clock is generated in Verilog
  (``--timing`` under Verilator);
* ``<name>.expected.npz``: the golden model's spikes and state traces per layer,
  counts and predictions (``qsnn_hw.golden.simulate(..., trace=True)``);
* ``bundle.json``: what the checker needs (geometry, field offsets, seeds).

The comparison (``sim/trace_check.py``) runs once at the end, in bulk.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from qsnn_hw.contract import IntNetwork
from qsnn_hw.golden import simulate

TOP = "qsnn_tb"
GAP_BITS = 4          # idle cycles before a beat: 0 .. 15
RESET_CYCLES = 4
WATCHDOG = 4000       # cycles without any activity of an unfinished core = a deadlock


@dataclass
class CoreCase:
    """One core to simulate.

    ``net``: the IntNetwork; ``x``: (B, T, M) inputs (golden format); ``lanes``: P (int or
    one per layer); ``seed``: the configuration seed (reported on a mismatch, and seeds the
    back-pressure); ``valid_gap``: probability of idle cycles before an input beat;
    ``ready_prob``: probability (in 1/16 steps) that ``results.ready`` is high in a cycle;
    ``layer_patch``: optional context manager factory applied while emitting the Verilog
    (fault injection in tests); ``describe``: free text for reports.
    """

    name: str
    net: IntNetwork
    x: np.ndarray
    lanes: object = 1
    seed: int = 0
    valid_gap: float = 0.2
    ready_prob: float = 0.5
    count_bits: int = 16
    describe: str = ""
    layer_patch: object = None
    extra: dict = field(default_factory=dict)


def _beats(kind: str, fields: dict, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Raw input beats of all samples back to back (uint64)."""
    eot = 1 << fields["eot"]["offset"]
    last = 1 << fields["last"]["offset"]
    batch, steps, m = x.shape
    out = []
    for b in range(batch):
        for t in range(steps):
            if kind == "spike":
                idx = rng.permutation(np.flatnonzero(x[b, t]))   # any order within a step
                out.append(idx.astype(np.uint64) << np.uint64(fields["addr"]["offset"]))
            else:
                out.append(x[b, t].astype(np.uint64) << np.uint64(fields["value"]["offset"]))
            out.append(np.array([eot | (last if t == steps - 1 else 0)], np.uint64))
    return np.concatenate(out) if out else np.zeros(0, np.uint64)


def _gaps(n: int, prob: float, rng: np.random.Generator) -> np.ndarray:
    gaps = np.where(rng.random(n) < prob, rng.integers(1, 4, n), 0)
    # now and then a long pause
    long = rng.random(n) < prob / 10
    return np.where(long, (1 << GAP_BITS) - 1, gaps).astype(np.uint64)


def _hex_lines(words: np.ndarray, width: int) -> str:
    digits = max(1, -(-width // 4))
    return "".join(f"{int(w):0{digits}x}\n" for w in words)


def write_core(case: CoreCase, out: Path) -> dict:
    """Emit one core's Verilog, stimulus and expectations into ``out``; returns its entry
    of ``bundle.json``."""
    from qsnn_hw.hdl.emit import generate

    if case.layer_patch is not None:
        with case.layer_patch():
            verilog, man = generate(case.net, lanes=case.lanes, name=case.name,
                                    count_bits=case.count_bits)
    else:
        verilog, man = generate(case.net, lanes=case.lanes, name=case.name,
                                count_bits=case.count_bits)
    (out / f"{case.name}.v").write_text(verilog)
    rng = np.random.default_rng([case.seed, 77])
    ev = man["streams"]["events"]
    x = np.asarray(case.x, np.int64)
    beats = _beats(ev["kind"], ev["fields"], x, rng)
    pw = next(p["width"] for p in man["ports"] if p["name"] == "events__payload")
    if pw + GAP_BITS > 63:
        raise ValueError(f"events payload of {pw} bits does not fit the 64-bit stimulus word")
    words = beats | (_gaps(beats.size, case.valid_gap, rng) << np.uint64(pw))
    (out / f"{case.name}.stim.hex").write_text(_hex_lines(words, pw + GAP_BITS))

    gold = simulate(case.net, x, trace=True)
    arrays = {"counts": gold.counts, "predictions": gold.predictions}
    for li, layer in enumerate(case.net.layers):
        arrays[f"spikes{li}"] = gold.spikes[li]
        arrays[f"state{li}"] = gold.codes[li] if layer.quantized else gold.mem[li]
    np.savez_compressed(out / f"{case.name}.expected.npz", **arrays)

    layers = []
    for li, (layer, ml) in enumerate(zip(case.net.layers, man["layers"], strict=True)):
        st = ml["state"]
        layers.append({"index": li, "neurons": layer.n_out, "lanes": ml["lanes"],
                       "groups": ml["groups"], "state_kind": st["kind"],
                       "state_bits": st["bits"], "state_signed": st["kind"] == "membrane",
                       "word_fields": _word_fields(ml["groups"], ml["lanes"])})
    res = man["streams"]["results"]["fields"]
    return {
        "name": case.name, "seed": int(case.seed), "describe": case.describe,
        "samples": int(x.shape[0]), "timesteps": int(x.shape[1]), "inputs": int(x.shape[2]),
        "input_bits": case.net.input_bits, "beats": int(beats.size),
        "payload_width": pw, "gap_bits": GAP_BITS,
        "eot_offset": ev["fields"]["eot"]["offset"], "last_offset": ev["fields"]["last"]["offset"],
        "result_width": next(p["width"] for p in man["ports"]
                             if p["name"] == "results__payload"),
        "prediction": res["prediction"], "counts": res["counts"],
        "count_bits": case.count_bits, "outputs": case.net.n_out,
        "ready_prob16": max(1, min(16, round(case.ready_prob * 16))),
        "layers": layers, "extra": case.extra,
    }


def _word_fields(groups: int, lanes: int) -> dict:
    """Offsets of the internal spike-word layout (``hdl/layouts.spike_word_layout``:
    group, mask, eot, last, bit 0 first)."""
    gw = max(1, (groups - 1).bit_length())
    return {"group": [0, gw], "mask": [gw, lanes], "eot": [gw + lanes, 1],
            "last": [gw + lanes + 1, 1]}


def _harness(entries: list[dict], out: Path, limit: int) -> str:
    """The Verilog top that drives every core of the bundle (see the module docstring)."""
    L = []
    a = L.append
    a("// Generated by sim/bundle.py: preloaded stimulus, randomized back-pressure, traces.")
    a("`timescale 1ns/1ps")
    a(f"module {TOP}(")
    a("`ifdef QSNN_EXT_CLOCK")
    a("  input clk")
    a("`endif")
    a(");")
    a("`ifndef QSNN_EXT_CLOCK")
    a("  reg clk = 1'b0;")
    a("  always #5 clk = ~clk;")
    a("`endif")
    a("  reg [7:0] rcnt = 8'd0;")
    a(f"  wire rst = rcnt < 8'd{RESET_CYCLES};")
    a("  always @(posedge clk) if (rst) rcnt <= rcnt + 8'd1;")
    a("  reg [63:0] cycle /*verilator public_flat_rd*/ = 64'd0;")
    a("  always @(posedge clk) cycle <= cycle + 64'd1;")
    a("  reg all_done /*verilator public_flat_rd*/ = 1'b0;")
    a("  reg timeout /*verilator public_flat_rd*/ = 1'b0;")
    a("  initial begin")
    a('    if ($test$plusargs("qsnn_vcd")) begin')
    a('      $dumpfile("waves.vcd");')
    a(f"      $dumpvars(0, {TOP});")
    a("    end")

    a("  end")
    finished, stuck = [], []
    for k, e in enumerate(entries):
        n = e["name"]
        pw, w = e["payload_width"], e["payload_width"] + e["gap_bits"]
        nb, ns = max(1, e["beats"]), e["samples"]
        rw = e["result_width"]
        seed = (e["seed"] * 2654435761 + k) % 65535 + 1
        p = f"c{k}_"
        a(f"  // ---- core {k}: {n} (seed {e['seed']})")
        a(f"  reg [{w - 1}:0] {p}stim [0:{nb - 1}];")
        a(f'  initial $readmemh("{(out / (n + ".stim.hex")).as_posix()}", {p}stim);')
        a(f"  integer {p}f;")
        a(f'  initial {p}f = $fopen("{(out / (n + ".trace")).as_posix()}", "w");')
        a(f"  reg [31:0] {p}ptr = 32'd0;")
        a(f"  reg [{e['gap_bits'] - 1}:0] {p}wait = 0;")
        a(f"  reg [31:0] {p}started = 32'd0;")
        a(f"  reg [31:0] {p}got = 32'd0;")
        a(f"  reg [15:0] {p}lfsr = 16'd{seed};")
        a(f"  wire {p}have = {p}ptr < 32'd{e['beats']};")
        a(f"  wire [{w - 1}:0] {p}cur = {p}stim[{p}have ? {p}ptr : 32'd0];")
        a(f"  wire {p}ev_valid = !rst && {p}have && {p}wait == 0;")
        a(f"  wire {p}ev_ready, {p}busy, {p}done, {p}error, {p}res_valid;")
        a(f"  wire [{rw - 1}:0] {p}res;")
        a(f"  wire {p}res_ready = {{1'b0, {p}lfsr[3:0]}} < 5'd{e['ready_prob16']};")
        a(f"  wire {p}start = !rst && !{p}busy && {p}started < 32'd{ns};")
        # The core's clock stops once it delivered every result: an event-driven
        # simulator then spends nothing on it (Yosys emits one always block per register).
        # Gated on the falling edge, so the gated clock never glitches.
        a(f"  reg {p}run = 1'b1;")
        a(f"  always @(negedge clk) {p}run <= {p}got != 32'd{ns};")
        a(f"  wire {p}clk = clk & {p}run;")
        a(f"  {n} {p}dut (")
        a(f"    .clk({p}clk), .rst(rst),")
        a(f"    .events__payload({p}cur[{pw - 1}:0]), .events__valid({p}ev_valid),")
        a(f"    .events__ready({p}ev_ready),")
        a(f"    .results__payload({p}res), .results__valid({p}res_valid),")
        a(f"    .results__ready({p}res_ready),")
        a(f"    .start({p}start), .busy({p}busy), .done({p}done), .error({p}error));")
        a(f"  always @(posedge {p}clk) begin")
        a("    if (!rst) begin")
        a(f"      {p}lfsr <= {{{p}lfsr[14:0], {p}lfsr[15] ^ {p}lfsr[13] ^ {p}lfsr[12] ^ "
          f"{p}lfsr[10]}};")
        a(f"      if ({p}ev_valid && {p}ev_ready) begin")
        a(f"        {p}ptr <= {p}ptr + 32'd1;")
        a(f"        {p}wait <= ({p}ptr + 32'd1 < 32'd{e['beats']}) ? "
          f"{p}stim[{p}ptr + 32'd1][{w - 1}:{pw}] : 0;")
        a(f"      end else if ({p}wait != 0) {p}wait <= {p}wait - 1;")
        a(f"      if ({p}start) begin")
        a(f"        {p}started <= {p}started + 32'd1;")
        a(f'        $fwrite({p}f, "B %0d\\n", cycle);')
        a("      end")
        a(f"      if ({p}res_valid && {p}res_ready) begin")
        a(f"        {p}got <= {p}got + 32'd1;")
        a(f'        $fwrite({p}f, "R %0d %0d %h\\n", cycle, {p}error, {p}res);')
        a(f"        $fflush({p}f);")
        a("      end")
        for layer in e["layers"]:
            li = layer["index"]
            h = f"{p}dut.layer{li}"
            a(f"      if ({h}.fifo.w_en) $fwrite({p}f, \"W{li} %h\\n\", "
              f"{h}.fifo.w_port__data);")
            a(f"      if ({h}.states.wr__en) $fwrite({p}f, \"S{li} %h %h\\n\", "
              f"{h}.states.wr__addr, {h}.states.wr__data);")
        a("    end")
        a("  end")
        # watchdog: cycles without any activity while the core still owes results
        act = [f"({p}ev_valid && {p}ev_ready)", f"({p}res_valid && {p}res_ready)",
               f"{p}start", f"({p}got == 32'd{ns})"]
        for layer in e["layers"]:
            h = f"{p}dut.layer{layer['index']}"
            act += [f"{h}.fifo.w_en", f"{h}.states.wr__en"]
        a(f"  reg [31:0] {p}idle = 32'd0;")
        a("  always @(posedge clk)")
        a(f"    {p}idle <= (rst || {' || '.join(act)}) ? 32'd0 : {p}idle + 32'd1;")
        stuck.append(f"({p}idle > 32'd{WATCHDOG})")
        finished.append(f"({p}got == 32'd{ns})")
    a("  always @(posedge clk) begin")
    a("    if (!all_done) begin")
    a(f"      if ({' && '.join(finished)}) begin")
    for k in range(len(entries)):
        a(f"        $fflush(c{k}_f);")
    a("        all_done <= 1'b1;")
    a(f"      end else if (cycle >= 64'd{limit} || {' || '.join(stuck)}) begin")
    for k in range(len(entries)):
        a(f"        $fflush(c{k}_f);")
    a("        timeout <= 1'b1;")
    a("        all_done <= 1'b1;")
    a("      end")
    a("    end")
    a("  end")
    a("endmodule")
    return "\n".join(L) + "\n"


def cycle_limit(entries: list[dict]) -> int:
    """A generous deadlock guard: far above the cycle model of the slowest core."""
    worst = 0
    for e in entries:
        steps = e["samples"] * e["timesteps"]
        per = sum(g["groups"] for g in e["layers"])
        work = e["beats"] * (1 + max(g["groups"] for g in e["layers"])) * 4
        worst = max(worst, work + steps * (per + 64) * 8 + e["samples"] * 4096)
    return 10 * worst + 100_000


def write_bundle(cases: list[CoreCase], out_dir, jobs: int | None = None) -> Path:
    """Write a bundle of ``cases`` (distinct names) into ``out_dir``; returns the
    ``bundle.json`` path. Verilog emission (Amaranth + Yosys, seconds per core) runs in
    ``jobs`` worker processes (default: the CPU count) unless a case patches the
    generator (``layer_patch`` only applies in this process)."""
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
    (out / f"{TOP}.v").write_text(_harness(entries, out, limit))
    info = {"format": "qsnn-sim-bundle", "version": 1, "top": TOP, "cycle_limit": limit,
            "watchdog": WATCHDOG,
            "verilog": [f"{n}.v" for n in names] + [f"{TOP}.v"], "cores": entries}
    path = out / "bundle.json"
    path.write_text(json.dumps(info, indent=1, sort_keys=True) + "\n")
    return path


def subset_bundle(bundle_json, core: str, samples: int, out_dir) -> Path:
    """A copy of one core of a bundle, cut to its first ``samples`` samples (the rerun
    that keeps a waveform of a failure). Regenerates the harness only; the core's Verilog
    and expectations are reused."""
    src = Path(bundle_json).resolve()
    info = json.loads(src.read_text())
    e = next(c for c in info["cores"] if c["name"] == core)
    out = Path(out_dir).resolve()
    out.mkdir(parents=True, exist_ok=True)
    d = src.parent
    (out / f"{core}.v").write_text((d / f"{core}.v").read_text())
    exp = dict(np.load(d / f"{core}.expected.npz"))
    exp = {k: v[:samples] for k, v in exp.items()}
    np.savez_compressed(out / f"{core}.expected.npz", **exp)
    words = (d / f"{core}.stim.hex").read_text().split()
    pw = e["payload_width"]
    # keep the beats of the first `samples` samples (each ends with an eot+last beat)
    kept, seen = [], 0
    eot_bit, last_bit = e["eot_offset"], e["last_offset"]
    for wtxt in words:
        if seen >= samples:
            break
        w = int(wtxt, 16)
        kept.append(wtxt)
        payload = w & ((1 << pw) - 1)
        if (payload >> eot_bit) & 1 and (payload >> last_bit) & 1:
            seen += 1
    (out / f"{core}.stim.hex").write_text("".join(k + "\n" for k in kept))
    e = dict(e, samples=samples, beats=len(kept))
    limit = cycle_limit([e])
    (out / f"{TOP}.v").write_text(_harness([e], out, limit))
    new = dict(info, cycle_limit=limit, verilog=[f"{core}.v", f"{TOP}.v"], cores=[e])
    path = out / "bundle.json"
    path.write_text(json.dumps(new, indent=1, sort_keys=True) + "\n")
    return path
