"""Bulk comparison of a simulated core's trace with the golden expectations of its bundle
(``sim/bundle.py``). Pure NumPy: no simulator, no cocotb, so the cocotb testbench, the
runners and ``qsnn-hw verify`` share it.

Trace lines (written by the generated harness): ``B <cycle>`` (start of a sample),
``R <cycle> <error> <result hex>`` (result beat accepted), ``W<l> <word hex>`` (a word
written into layer l's output FIFO), ``S<l> <addr hex> <data hex>`` (a state-memory write
of layer l: one group of P lanes, codes or membranes).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


class TraceError(Exception):
    """The trace does not have the expected structure."""


def _lanes(words: list[int], width: int, lanes: int, signed: bool) -> np.ndarray:
    """Unpack P lanes of ``width`` bits from each word (lane 0 in the low bits): (R, P)."""
    nbytes = max(1, -(-(width * lanes) // 8))
    raw = b"".join(w.to_bytes(nbytes, "little") for w in words)
    bits = np.unpackbits(np.frombuffer(raw, np.uint8).reshape(len(words), nbytes),
                         axis=1, bitorder="little")[:, :width * lanes]
    bits = bits.reshape(len(words), lanes, width).astype(np.int64)
    vals = np.zeros((len(words), lanes), np.int64)
    for i in range(width):   # at most 32 bits: exact in int64
        vals |= bits[:, :, i] << i
    if signed:
        vals -= bits[:, :, width - 1] << width
    return vals


_UNKNOWN = str.maketrans("xXzZ", "0000")


def _hex(text: str, unknown: list) -> int:
    """Hex value of a trace field; X/Z digits (4-state simulators) read as 0 and are
    recorded in ``unknown``."""
    try:
        return int(text, 16)
    except ValueError:
        unknown.append(text)
        return int(text.translate(_UNKNOWN), 16)


def parse_trace(text: str, n_layers: int) -> dict:
    starts, results = [], []
    words = [[] for _ in range(n_layers)]
    states = [[] for _ in range(n_layers)]
    state_x = [[] for _ in range(n_layers)]   # indices of state writes holding X/Z
    unknown = []
    for line in text.splitlines():
        if not line:
            continue
        tag = line[0]
        parts = line.split()
        if tag == "W":
            words[int(parts[0][1:])].append(_hex(parts[1], unknown))
        elif tag == "S":
            li = int(parts[0][1:])
            x = []
            states[li].append((_hex(parts[1], x), _hex(parts[2], x)))
            if x:
                state_x[li].append(len(states[li]) - 1)
        elif tag == "B":
            starts.append(int(parts[1]))
        elif tag == "R":
            results.append((int(parts[1]), _hex(parts[2], unknown), _hex(parts[3], unknown)))
        else:
            raise TraceError(f"unknown trace line {line!r}")
    return {"starts": starts, "results": results, "words": words, "states": states,
            "state_x": state_x, "unknown": unknown}


def _field(words: np.ndarray, f) -> np.ndarray:
    off, width = f
    return (words >> off) & ((1 << width) - 1)


def rebuild(core: dict, tr: dict) -> dict:
    """The core's observed behaviour in golden shapes: spikes[l] (B, T, N), state[l]
    (B, T, N), counts (B, N_out), predictions (B,), errors (B,), and structural problems."""
    B, T = core["samples"], core["timesteps"]
    problems = []
    spikes, states = [], []
    for lay, wlist, slist in zip(core["layers"], tr["words"], tr["states"], strict=True):
        li, N, P, G = lay["index"], lay["neurons"], lay["lanes"], lay["groups"]
        # ---- spike words: an eot word closes each timestep --------------------------
        sp = np.zeros((B * T, G * P), np.uint8)
        if wlist:
            f = lay["word_fields"]
            # words wider than int64 (P > ~56) stay Python ints (object arrays)
            w = np.array(wlist, dtype=object if f["last"][0] >= 62 else np.int64)
            eot = _field(w, f["eot"]).astype(bool)
            step = np.cumsum(eot) - eot           # index of the timestep each word is in
            n_steps = int(eot.sum())
            if n_steps != B * T:
                problems.append(f"layer {li}: {n_steps} end-of-timestep words, expected "
                                f"{B * T}")
            data = ~eot & (step < B * T)
            g = _field(w[data], f["group"]).astype(np.int64)
            mask = _field(w[data], f["mask"])
            bits = ((mask[:, None] >> np.arange(P)) & 1).astype(np.uint8)
            rows = np.repeat(step[data], P)
            cols = (g[:, None] * P + np.arange(P)).ravel()
            ok = cols < G * P
            np.add.at(sp, (rows[ok], cols[ok]), bits.ravel()[ok])
            lastw = _field(w[eot], f["last"]).astype(bool)
            want_last = (np.arange(n_steps) % T) == T - 1
            if n_steps == B * T and not np.array_equal(lastw, want_last):
                k = int(np.argmax(lastw != want_last))
                problems.append(f"layer {li}: 'last' flag wrong on timestep word {k} "
                                f"(sample {k // T}, timestep {k % T})")
        spikes.append(np.minimum(sp[:, :N], 1).reshape(B, T, N))
        # ---- state writes: G per timestep, groups in order ---------------------------
        st = np.zeros((B * T, G * P), np.int64)
        if len(slist) != B * T * G:
            problems.append(f"layer {li}: {len(slist)} state writes, expected {B * T * G} "
                            f"({B} samples x {T} timesteps x {G} groups)")
        n = min(len(slist), B * T * G) // G * G
        if n:
            addr = np.array([a for a, _ in slist[:n]], np.int64)
            want = np.tile(np.arange(G), n // G)
            if not np.array_equal(addr, want):
                k = int(np.argmax(addr != want))
                problems.append(f"layer {li}: state write {k} went to group {addr[k]}, "
                                f"expected {want[k]}")
            vals = _lanes([d for _, d in slist[:n]], lay["state_bits"], P, lay["state_signed"])
            st[:n // G] = vals.reshape(n // G, G * P)
        xw = [k for k in tr["state_x"][li] if k < n]
        if xw:
            k = xw[0]
            problems.append(f"layer {li}: {len(xw)} state write(s) hold X/Z (unknown) bits; "
                            f"first: sample {k // G // T}, timestep {k // G % T}, group "
                            f"{k % G}")
        states.append(st[:, :N].reshape(B, T, N))
    if tr["unknown"]:
        problems.append(f"{len(tr['unknown'])} spike word/result field(s) hold X/Z bits")
    res = tr["results"]
    counts = np.zeros((B, core["outputs"]), np.int64)
    preds = np.full(B, -1, np.int64)
    errors = np.zeros(B, bool)
    if len(res) != B:
        problems.append(f"{len(res)} result beats, expected {B}")
    pf, cf, cb = core["prediction"], core["counts"], core["count_bits"]
    for b, (_, err, word) in enumerate(res[:B]):
        preds[b] = (word >> pf["offset"]) & ((1 << pf["width"]) - 1)
        c = word >> cf["offset"]
        counts[b] = [(c >> (i * cb)) & ((1 << cb) - 1) for i in range(core["outputs"])]
        errors[b] = bool(err)
    cycles = None
    if len(tr["starts"]) >= B and len(res) >= B:
        cycles = int(res[B - 1][0] - tr["starts"][0])
    return {"spikes": spikes, "state": states, "counts": counts, "predictions": preds,
            "errors": errors, "problems": problems, "sample_cycles": cycles}


def compare(core: dict, expected: dict, got: dict) -> dict:
    """Compare in bulk. Returns a report: ``ok``, ``mismatches`` (number of differing
    values), ``first`` (the earliest failing sample/timestep, lowest layer and neuron,
    expected vs actual) and per-quantity mismatch counts."""
    B, T = core["samples"], core["timesteps"]
    report = {"core": core["name"], "seed": core["seed"], "describe": core.get("describe", ""),
              "samples": B, "timesteps": T, "problems": list(got["problems"])}
    firsts = []
    counts = {}
    for lay in core["layers"]:
        li = lay["index"]
        for what, key in (("state", f"state{li}"), ("spike", f"spikes{li}")):
            exp = np.asarray(expected[key]).astype(np.int64)
            act = got["state" if what == "state" else "spikes"][li].astype(np.int64)
            bad = exp != act
            counts[f"layer{li}_{what}"] = int(bad.sum())
            if bad.any():
                b, t, n = (int(v) for v in np.argwhere(bad)[0])
                # order: sample, timestep, layer, then state before spike, then neuron
                firsts.append(((b, t, li, 0 if what == "state" else 1, n), {
                    "sample": b, "timestep": t, "layer": li, "neuron": n, "what": what
                    if what == "spike" else lay["state_kind"],
                    "expected": int(exp[b, t, n]), "actual": int(act[b, t, n])}))
    for what, key in (("counts", "counts"), ("prediction", "predictions")):
        exp = np.asarray(expected[key]).astype(np.int64)
        act = got[key]
        bad = exp != act
        counts[what] = int(bad.sum())
        if bad.any():
            idx = np.argwhere(bad)[0]
            b = int(idx[0])
            n = int(idx[1]) if exp.ndim == 2 else None
            firsts.append(((b, T, len(core["layers"]), 2, n or 0), {
                "sample": b, "timestep": None, "layer": "output", "neuron": n, "what": what,
                "expected": int(exp[tuple(idx)]), "actual": int(act[tuple(idx)])}))
    counts["error_flag"] = int(got["errors"].sum())
    if counts["error_flag"]:
        report["problems"].append(f"error flag raised in {counts['error_flag']} sample(s)")
    report["mismatch_counts"] = counts
    report["mismatches"] = sum(counts.values())
    report["first"] = min(firsts, key=lambda f: f[0])[1] if firsts else None
    report["ok"] = report["mismatches"] == 0 and not report["problems"]
    report["sample_cycles"] = got["sample_cycles"]
    report["prediction_mismatches"] = counts["prediction"]
    report["count_mismatches"] = counts["counts"]
    return report


def format_report(r: dict) -> str:
    if r["ok"]:
        return f"{r['core']}: OK ({r['samples']} samples x {r['timesteps']} timesteps)"
    lines = [f"{r['core']}: MISMATCH (configuration seed {r['seed']}; {r['describe']})"]
    f = r["first"]
    if f:
        where = (f"sample {f['sample']}, timestep {f['timestep']}, layer {f['layer']}, "
                 f"neuron {f['neuron']}")
        lines.append(f"  first failure: {where}: {f['what']} expected {f['expected']}, "
                     f"got {f['actual']}")
    bad = {k: v for k, v in r["mismatch_counts"].items() if v}
    if bad:
        lines.append(f"  mismatching values: {bad}")
    for p in r["problems"]:
        lines.append(f"  problem: {p}")
    if r.get("waveform"):
        lines.append(f"  waveform: {r['waveform']}")
    return "\n".join(lines)


def check_core(bundle_dir, core: dict) -> dict:
    d = Path(bundle_dir)
    path = d / f"{core['name']}.trace"
    text = path.read_text() if path.exists() else ""
    tr = parse_trace(text, len(core["layers"]))
    got = rebuild(core, tr)
    expected = dict(np.load(d / f"{core['name']}.expected.npz"))
    rep = compare(core, expected, got)
    rep["predictions"] = got["predictions"].tolist()
    return rep
