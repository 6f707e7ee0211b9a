"""Make the snnTorch reference fixtures in ``tests/fixtures/snntorch/`` (issue 19).

For each of a few small snnTorch networks (24 inputs, Leaky layers of 16 and 8 neurons, one
network 24-16-12-8) this script writes

- ``NAME.nir``: the graph from ``snntorch.export_nir.export_to_nir(net, sample,
  ignore_dims=[0])``, written with ``nir.write``;
- ``NAME.npz``: the input ``x`` (float32, batch 16 x 20 steps x 24) and, per Leaky layer i,
  snnTorch's own forward pass on it: ``spikes{i}`` (uint8) and ``mem{i}`` (float32, the
  membrane the layer holds after the step, i.e. what ``Leaky`` returns as ``mem``), plus
  ``meta``, a 0-d string array holding JSON (versions, dt, input kind, and per layer: size,
  bias, beta, threshold, reset mechanism, reset_delay, the ``state_quant`` arguments with
  their defaults filled in, and the level table).

The level table of a layer with ``state_quant`` is read from snnTorch's own quantizer object:
``snntorch.functional.quant.state_quant(...)`` returns a closure over a float32 tensor named
``levels``; ``inspect.getclosurevars(q).nonlocals["levels"]`` yields it, and it is stored
sorted, each float32 value written as the float64 that equals it exactly.

The script also checks its own output: every graph is read back with ``nir.read`` (the node
kinds are printed as a table), every layer must spike on 5-40 % of (sample, step, neuron), and
every layer's membrane is recomputed in plain NumPy from the NIR file's weights and the
recorded input spikes of that layer, under the semantics observed in snnTorch 1.0.0 and under
a few alternatives, printing the max abs difference of each (see tests/fixtures/snntorch/
README.md for the facts this established).

Made with snnTorch 1.0.0, torch 2.13.0 (CPU), nir 1.0.8, nirtorch 2.6 (``export_to_nir``
imports it), numpy 2.4 and h5py 3.16, in a separate venv:

    python3 -m venv /tmp/snnvenv
    /tmp/snnvenv/bin/pip install torch==2.13.0 snntorch==1.0.0 nir==1.0.8 nirtorch numpy h5py
    /tmp/snnvenv/bin/python scripts/snntorch_fixtures.py --out tests/fixtures/snntorch

Deterministic (weights and inputs come from fixed NumPy seeds; torch's seed is fixed too) and
idempotent (the .npz files are written byte for byte the same on every run). CI never runs
this script: it has no torch; ``tests/test_snntorch_fixtures.py`` only reads the files.
"""

from __future__ import annotations

import argparse
import inspect
import io
import json
import sys
import zipfile
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path

import numpy as np

B, T, M = 16, 20, 24  # samples, timesteps, inputs
DT = 1e-4  # the dt snnTorch's exporter uses
SPIKE_P = 0.3  # Bernoulli rate of the spike input
RATE_RANGE = (0.05, 0.40)  # accepted spike rate of every layer


@dataclass
class Net:
    name: str
    seed: int
    sizes: list[int]  # inputs, then one entry per Leaky layer
    betas: list[float]
    thresholds: list[float]
    # weights ~ gain * N(mean, 1) per layer, in units chosen so the layers spike moderately
    w_mean: list[float]
    w_gain: list[float]
    bias: bool = False
    reset: str = "subtract"
    state_quant: dict | None = None  # arguments for state_quant (all but threshold)
    input: str = "spikes"
    notes: list[str] = field(default_factory=list)


NETS = [
    Net("dense_subtract", 1, [24, 16, 8], [0.9, 0.8], [1.0, 1.0], [0.2, 0.1], [0.25, 0.5]),
    Net("dense_bias", 2, [24, 16, 8], [0.9, 0.8], [1.0, 1.0], [0.2, 0.1], [0.25, 0.5],
        bias=True),
    Net("dense_zero", 3, [24, 16, 8], [0.9, 0.8], [1.0, 1.0], [0.2, 0.1], [0.25, 0.5],
        reset="zero"),
    Net("sq_uniform4", 4, [24, 16, 8], [0.9, 0.8], [1.0, 1.0], [0.2, 0.1], [0.25, 0.5],
        state_quant=dict(num_bits=4, uniform=True, thr_centered=True, lower_limit=0,
                         upper_limit=0.2, multiplier=None)),
    Net("sq_exponential4", 5, [24, 16, 8], [0.9, 0.8], [1.0, 1.0], [0.2, 0.1], [0.25, 0.5],
        state_quant=dict(num_bits=4, uniform=False, thr_centered=True, lower_limit=0,
                         upper_limit=0.2, multiplier=0.5)),
    Net("direct_input", 6, [24, 16, 12, 8], [0.9, 0.8, 0.7], [0.5, 0.5, 0.5],
        [0.15, 0.1, 0.1], [0.1, 0.2, 0.25], input="direct"),
]


def make_params(net: Net) -> tuple[list[np.ndarray], list[np.ndarray | None], np.ndarray]:
    """Weights, biases and the input x (B, T, M), all float32, from the network's seed."""
    rng = np.random.default_rng(net.seed)
    weights, biases = [], []
    for i, (n_in, n_out) in enumerate(zip(net.sizes[:-1], net.sizes[1:], strict=True)):
        w = net.w_gain[i] * (net.w_mean[i] + rng.standard_normal((n_out, n_in)))
        weights.append(w.astype(np.float32))
        b = 0.05 * rng.standard_normal(n_out) if net.bias else None
        biases.append(None if b is None else b.astype(np.float32))
    if net.input == "spikes":
        x = (rng.random((B, T, M)) < SPIKE_P).astype(np.float32)
    else:  # the same vector, multiples of 1/15 in [0, 1], at every step
        v = rng.integers(0, 16, (B, 1, M)) / 15
        x = np.repeat(v, T, axis=1).astype(np.float32)
    return weights, biases, x


def build(net: Net, weights, biases):
    """The snnTorch network (nn.Sequential of Linear and Leaky, init_hidden=True)."""
    import snntorch as snn
    import torch
    from snntorch.functional.quant import state_quant

    modules, quants = [], []
    for i, w in enumerate(weights):
        n_out, n_in = w.shape
        lin = torch.nn.Linear(n_in, n_out, bias=net.bias)
        with torch.no_grad():
            lin.weight.copy_(torch.from_numpy(w))
            if net.bias:
                lin.bias.copy_(torch.from_numpy(biases[i]))
        q = None
        if net.state_quant is not None:
            q = state_quant(threshold=net.thresholds[i], **net.state_quant)
        quants.append(q)
        lif = snn.Leaky(beta=torch.full((n_out,), net.betas[i]),
                        threshold=torch.full((n_out,), net.thresholds[i]),
                        reset_mechanism=net.reset, state_quant=q if q is not None else False,
                        init_hidden=True)
        modules += [lin, lif]
    return torch.nn.Sequential(*modules), quants


def quant_levels(q) -> np.ndarray:
    """The float32 level table snnTorch's state_quant closure snaps to."""
    levels = inspect.getclosurevars(q).nonlocals["levels"]
    return levels.detach().cpu().numpy().astype(np.float32)


def run_snntorch(seq, x: np.ndarray) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """snnTorch's forward, one step at a time; per Leaky layer the spikes and the membrane."""
    import snntorch as snn
    import torch

    lifs = [m for m in seq if isinstance(m, snn.Leaky)]
    for lif in lifs:
        lif.reset_mem()  # export_to_nir ran a forward pass; start from the initial state
    spikes = [np.zeros((B, T, lif.threshold.numel()), np.uint8) for lif in lifs]
    mems = [np.zeros((B, T, lif.threshold.numel()), np.float32) for lif in lifs]
    with torch.no_grad():
        for t in range(T):
            h = torch.from_numpy(x[:, t, :])
            i = 0
            for m in seq:
                h = m(h)
                if isinstance(m, snn.Leaky):
                    s = h.numpy()
                    assert set(np.unique(s)) <= {0.0, 1.0}
                    spikes[i][:, t, :] = s.astype(np.uint8)
                    mems[i][:, t, :] = m.mem.numpy()
                    i += 1
    return spikes, mems


def write_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """np.savez_compressed, but with fixed zip timestamps so the bytes never change."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, arr in arrays.items():
            data = io.BytesIO()
            np.lib.format.write_array(data, np.asanyarray(arr), allow_pickle=False)
            info = zipfile.ZipInfo(name + ".npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, data.getvalue())
    if not path.exists() or path.read_bytes() != buf.getvalue():
        path.write_bytes(buf.getvalue())


# --- a convolutional network ---------------------------------------------------------------

CONV_SHAPE = (1, 8, 8)  # the conv fixture's input image (C, H, W)
# (out channels, kernel, stride, padding, bias, beta, weight mean, weight gain) per conv
CONVS = [(4, 3, 1, 1, False, 0.9, 0.15, 0.45), (6, 3, 2, 0, True, 0.8, 0.1, 0.35)]
CONV_DENSE = (8, 0.85, 0.05, 0.3)  # the output layer: size, beta, weight mean, weight gain


def conv_fixture(out: Path, versions: dict) -> bool:
    """``conv_net.nir`` / ``.npz``: Conv2d(1->4, 3, padding 1) -> Leaky -> Conv2d(4->6, 3,
    stride 2, bias) -> Leaky -> Flatten -> Linear(54->8) -> Leaky on 8 x 8 spike images
    (x: B x T x 1 x 8 x 8). snnTorch's exporter needs per-neuron beta and threshold
    tensors shaped like the layer's output (a scalar fails NIR's type inference after a
    convolution). ``spikes{i}`` / ``mem{i}``: B x T x (neurons of layer i, flattened
    channel-major as torch's Flatten)."""
    import nir
    import snntorch as snn
    import torch
    from snntorch.export_nir import export_to_nir

    rng = np.random.default_rng(11)
    modules, layers, shape = [], [], CONV_SHAPE
    for c_out, k, s, p, bias, beta, mean, gain in CONVS:
        conv = torch.nn.Conv2d(shape[0], c_out, k, stride=s, padding=p, bias=bias)
        w = gain * (mean + rng.standard_normal(tuple(conv.weight.shape)))
        with torch.no_grad():
            conv.weight.copy_(torch.from_numpy(w.astype(np.float32)))
            if bias:
                conv.bias.copy_(torch.from_numpy((0.05 * rng.standard_normal(c_out))
                                                 .astype(np.float32)))
        shape = (c_out, (shape[1] + 2 * p - k) // s + 1, (shape[2] + 2 * p - k) // s + 1)
        modules += [conv, snn.Leaky(beta=torch.full(shape, beta),
                                    threshold=torch.full(shape, 1.0), init_hidden=True)]
        layers.append({"kind": "conv", "channels": c_out, "kernel": k, "stride": s,
                       "padding": p, "bias": bias, "beta": beta, "threshold": 1.0,
                       "out_shape": list(shape)})
    n_out, beta, mean, gain = CONV_DENSE
    n_in = int(np.prod(shape))
    lin = torch.nn.Linear(n_in, n_out, bias=False)
    with torch.no_grad():
        lin.weight.copy_(torch.from_numpy(
            (gain * (mean + rng.standard_normal((n_out, n_in)))).astype(np.float32)))
    modules += [torch.nn.Flatten(), lin,
                snn.Leaky(beta=torch.full((n_out,), beta), threshold=torch.full((n_out,), 1.0),
                          init_hidden=True)]
    layers.append({"kind": "dense", "size": n_out, "bias": False, "beta": beta,
                   "threshold": 1.0})
    seq = torch.nn.Sequential(*modules)
    graph = export_to_nir(seq, torch.zeros(1, *CONV_SHAPE), ignore_dims=[0])
    graph.edges = sorted(graph.edges)
    nir.write(out / "conv_net.nir", graph, compression=None)

    x = (rng.random((B, T, *CONV_SHAPE)) < SPIKE_P).astype(np.float32)
    lifs = [m for m in seq if isinstance(m, snn.Leaky)]
    for lif in lifs:
        lif.reset_mem()
    spikes = [np.zeros((B, T, lif.threshold.numel()), np.uint8) for lif in lifs]
    with torch.no_grad():
        for t in range(T):
            h, i = torch.from_numpy(x[:, t]), 0
            for m in seq:
                h = m(h)
                if isinstance(m, snn.Leaky):
                    spikes[i][:, t] = h.reshape(B, -1).numpy().astype(np.uint8)
                    i += 1
    meta = {**versions, "dt": DT, "input": "spikes", "in_shape": list(CONV_SHAPE),
            "reset_mechanism": "subtract", "layers": layers}
    arrays = {"x": x} | {f"spikes{i}": v for i, v in enumerate(spikes)}
    arrays["meta"] = np.array(json.dumps(meta, sort_keys=True))
    write_npz(out / "conv_net.npz", arrays)
    kinds = [type(n).__name__ for n in nir.read(out / "conv_net.nir").nodes.values()]
    rates = [float(v.mean()) for v in spikes]
    print(f"\nconv_net: nodes {sorted(kinds)}; spike rates {[round(r, 3) for r in rates]}")
    ok = all(RATE_RANGE[0] <= r <= RATE_RANGE[1] for r in rates)
    if not ok:
        print(f"conv_net: a spike rate is outside {RATE_RANGE}")
    return ok


# --- NumPy re-computation (the semantics under test) -------------------------------------

def quantize(m: np.ndarray, levels: np.ndarray) -> np.ndarray:
    """Nearest level in float32, the first (lowest) one on a tie, as torch.min(dim) returns."""
    idx = np.argmin(np.abs(levels - m[..., None]), axis=-1)
    return levels[idx]


def numpy_layer(cur: np.ndarray, beta: float, thr: float, reset: str,
                levels: np.ndarray | None, variant: str = "observed"):
    """One Leaky layer over (B, T, N) float32 input currents; returns (spikes, mems).

    "observed": m_t = beta*m_{t-1} + I_t - s_{t-1}*thr (subtract) or
    m_t = beta*(1 - s_{t-1})*m_{t-1} + I_t (zero); then m_t = Q(m_t); s_t = m_t > thr;
    m_0 = 0 before the first step; the returned membrane is m_t (not reset).
    The alternatives change one thing each.
    """
    beta, thr = np.float32(beta), np.float32(thr)
    n = cur.shape[-1]
    m = np.zeros((cur.shape[0], n), np.float32)
    s = np.zeros((cur.shape[0], n), np.float32)
    spikes, mems = np.zeros(cur.shape, np.uint8), np.zeros(cur.shape, np.float32)
    for t in range(cur.shape[1]):
        i_t = cur[:, t, :]
        if variant == "reset_now":  # reset_delay=False style: this step's spike resets now
            m = beta * m + i_t
            if levels is not None:
                m = quantize(m, levels)
            s = (m > thr).astype(np.float32)
            m = m - s * thr if reset == "subtract" else m * (1 - s)
        else:
            if reset == "subtract":
                sub = s * (np.float32(1.0) if variant == "subtract_one" else thr)
                if variant == "reset_before_decay":
                    m = beta * (m - sub) + i_t
                elif variant == "quant_before_reset" and levels is not None:
                    m = quantize(beta * m + i_t, levels) - sub
                else:
                    m = beta * m + i_t - sub
            else:
                m = beta * ((1 - s) * m) + i_t
            if levels is not None and variant != "quant_before_reset":
                m = quantize(m, levels)
            s = (m >= thr if variant == "ge" else m > thr).astype(np.float32)
        spikes[:, t, :], mems[:, t, :] = s, m
    return spikes, mems


VARIANTS = ["observed", "reset_now", "reset_before_decay", "subtract_one", "quant_before_reset"]


def nir_layers(graph) -> list[tuple[np.ndarray, np.ndarray | None, object]]:
    """(weight, bias, LIF node) per layer, following the graph's edges from the input."""
    succ = {a: b for a, b in graph.edges}
    node, out = succ["input"], []
    while node != "output":
        lin, lif = graph.nodes[node], graph.nodes[succ[node]]
        out.append((np.asarray(lin.weight, np.float32),
                    np.asarray(lin.bias, np.float32) if hasattr(lin, "bias") else None, lif))
        node = succ[succ[node]]
    return out


def check_semantics(net: Net, graph, x, spikes, mems, layer_meta) -> dict:
    """Max abs membrane difference and spike mismatches of each variant, per layer, with
    every layer fed its recorded input (x, or the previous layer's recorded spikes)."""
    res = {}
    layers = nir_layers(graph)
    for i, (w, b, lif) in enumerate(layers):
        inp = x if i == 0 else spikes[i - 1].astype(np.float32)
        cur = inp.astype(np.float64) @ w.T.astype(np.float64)
        if b is not None:
            cur = cur + b
        cur = cur.astype(np.float32)
        lm = layer_meta[i]
        levels = None if lm["levels"] is None else np.array(lm["levels"], np.float32)
        thr = float(np.asarray(lif.v_threshold)[0])
        for v in VARIANTS:
            if v == "subtract_one" and (net.reset != "subtract" or thr == 1.0):
                continue
            if v in ("quant_before_reset", "reset_before_decay") and net.reset != "subtract":
                continue  # with a reset to zero these are the observed rule again
            if v == "quant_before_reset" and levels is None:
                continue
            s, m = numpy_layer(cur, lm["beta"], thr, net.reset, levels, v)
            res[(i, v)] = (float(np.max(np.abs(m - mems[i]))), int(np.sum(s != spikes[i])))
        # beta as an importer recovers it from the NIR LIF: 1 - 1/r (= 1 - dt/tau)
        beta_nir = 1 - 1 / np.asarray(lif.r, np.float64)
        res[(i, "beta_from_nir")] = float(np.max(np.abs(beta_nir - lm["beta"])))
        res[(i, "float32(1 - 1/r) == float32(beta)")] = bool(
            np.all(beta_nir.astype(np.float32) == np.float32(lm["beta"])))
        s, m = numpy_layer(cur, float(np.float32(beta_nir[0])), thr, net.reset, levels)
        res[(i, "observed, beta from NIR r")] = (float(np.max(np.abs(m - mems[i]))),
                                                 int(np.sum(s != spikes[i])))
        res[(i, "mem == thr cases")] = int(np.sum(mems[i] == np.float32(thr)))
    # free run: the whole network from x alone, in NumPy
    h = x
    worst, flips = 0.0, 0
    for i, (w, b, _lif) in enumerate(layers):
        cur = h.astype(np.float64) @ w.T.astype(np.float64)
        if b is not None:
            cur = cur + b
        lm = layer_meta[i]
        levels = None if lm["levels"] is None else np.array(lm["levels"], np.float32)
        s, m = numpy_layer(cur.astype(np.float32), lm["beta"], lm["threshold"], net.reset,
                           levels)
        worst = max(worst, float(np.max(np.abs(m - mems[i]))))
        flips += int(np.sum(s != spikes[i]))
        h = s.astype(np.float32)
    res["free_run"] = (worst, flips)
    return res


def probe_threshold_equality() -> dict:
    """Feed a Leaky exactly its threshold: does mem == threshold spike? Also the reset."""
    import snntorch as snn
    import torch

    out = {}
    for reset in ("subtract", "zero"):
        lif = snn.Leaky(beta=torch.full((1,), 0.5), threshold=torch.full((1,), 0.5),
                        reset_mechanism=reset)
        mem = lif.reset_mem()
        trace = []
        for cur in (0.5, 0.25, 0.0, 0.0):  # 0.5 == thr; then 0.5*0.5+0.25 = 0.5 again
            spk, mem = lif(torch.full((1, 1), cur), mem)
            trace.append((float(spk[0, 0]), float(mem[0, 0])))
        lif2 = snn.Leaky(beta=torch.full((1,), 0.5), threshold=torch.full((1,), 0.5),
                         reset_mechanism=reset)
        mem = lif2.reset_mem()
        trace2 = []
        for cur in (0.75, 0.0, 0.0):  # crosses: 0.75 > 0.5
            spk, mem = lif2(torch.full((1, 1), cur), mem)
            trace2.append((float(spk[0, 0]), float(mem[0, 0])))
        out[reset] = (trace, trace2)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("tests/fixtures/snntorch"))
    args = ap.parse_args()

    import nir
    import snntorch as snn
    import torch
    from snntorch.export_nir import export_to_nir

    torch.manual_seed(0)
    np.random.seed(0)  # noqa: NPY002 (nothing uses it; fixed in case a library does)
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)
    args.out.mkdir(parents=True, exist_ok=True)
    versions = {"snntorch": snn.__version__, "torch": torch.__version__,
                "nir": version("nir"), "nirtorch": version("nirtorch")}
    print("versions:", versions)

    ok = True
    kinds_rows, rate_rows, sem_rows = [], [], []
    for net in NETS:
        weights, biases, x = make_params(net)
        seq, quants = build(net, weights, biases)
        graph = export_to_nir(seq, torch.zeros(1, M), ignore_dims=[0])
        # nirtorch collects the edges in a set: their order follows the string hash seed,
        # and so would the file's bytes; sorted, the file is the same on every run
        graph.edges = sorted(graph.edges)
        nir_path = args.out / f"{net.name}.nir"
        nir.write(nir_path, graph, compression=None)  # contiguous datasets: 24 kB, not 54
        spikes, mems = run_snntorch(seq, x)

        layers = []
        for i, q in enumerate(quants):
            sq = None
            levels = None
            if q is not None:
                sq = {"num_bits": net.state_quant["num_bits"],
                      "uniform": net.state_quant["uniform"],
                      "thr_centered": net.state_quant["thr_centered"],
                      "threshold": net.thresholds[i],
                      "lower_limit": net.state_quant["lower_limit"],
                      "upper_limit": net.state_quant["upper_limit"],
                      "multiplier": net.state_quant["multiplier"]}
                lv = quant_levels(q)
                levels = [float(v) for v in np.sort(lv)]
            layers.append({"size": net.sizes[i + 1], "bias": net.bias, "beta": net.betas[i],
                           "threshold": net.thresholds[i], "reset_mechanism": net.reset,
                           "reset_delay": True, "state_quant": sq, "levels": levels})
        meta = {**versions, "dt": DT, "input": net.input, "seed": net.seed,
                "layers": layers}
        arrays = {"x": x}
        arrays |= {f"spikes{i}": s for i, s in enumerate(spikes)}
        arrays |= {f"mem{i}": m for i, m in enumerate(mems)}
        arrays["meta"] = np.array(json.dumps(meta, sort_keys=True))
        npz_path = args.out / f"{net.name}.npz"
        write_npz(npz_path, arrays)

        # read back and check
        g = nir.read(nir_path)
        succ = dict(g.edges)
        chain, node = [], "input"
        while node in succ:
            chain.append(type(g.nodes[node]).__name__)
            node = succ[node]
        chain.append(type(g.nodes[node]).__name__)
        lin = "Affine" if net.bias else "Linear"
        expect = ["Input"] + [lin, "LIF"] * (len(net.sizes) - 1) + ["Output"]
        if chain != expect or len(g.edges) != len(expect) - 1:
            print(f"{net.name}: unexpected graph {chain} (want {expect})")
            ok = False
        for (w, b, _), w0, b0 in zip(nir_layers(g), weights, biases, strict=True):
            if not np.array_equal(w, w0) or (b0 is not None and not np.array_equal(b, b0)):
                print(f"{net.name}: NIR weights differ from the network's")
                ok = False
        kinds_rows.append((net.name, " -> ".join(chain),
                           nir_path.stat().st_size, npz_path.stat().st_size))
        for i, s in enumerate(spikes):
            rate = float(s.mean())
            rate_rows.append((net.name, i, rate))
            if not RATE_RANGE[0] <= rate <= RATE_RANGE[1]:
                print(f"{net.name} layer {i}: spike rate {rate:.3f} outside {RATE_RANGE}")
                ok = False
        sem_rows.append((net.name, check_semantics(net, g, x, spikes, mems, layers)))

    print("\nnode kinds (read back with nir.read) and file sizes:")
    for name, chain, s_nir, s_npz in kinds_rows:
        print(f"  {name:16s} {chain:58s} nir {s_nir:6d} B  npz {s_npz:6d} B")
    print("\nspike rates (fraction of sample x step x neuron):")
    for name, i, rate in rate_rows:
        print(f"  {name:16s} layer {i}: {rate:.3f}")
    print("\nNumPy re-computation from the NIR weights and each layer's recorded input")
    print("(max abs membrane difference, spike mismatches out of B*T*N):")
    for name, res in sem_rows:
        for key, val in res.items():
            if key == "free_run":
                print(f"  {name:16s} free run from x    : {val[0]:.3g}, {val[1]} spikes")
            elif isinstance(val, tuple):
                print(f"  {name:16s} layer {key[0]} {key[1]:28s}: {val[0]:.3g}, {val[1]}")
            else:
                print(f"  {name:16s} layer {key[0]} {key[1]:28s}: {val:.3g}"
                      if isinstance(val, float) else f"  {name:16s} layer {key[0]} {key[1]}: {val}")
        for key, val in res.items():
            if key == "free_run" or (isinstance(key, tuple) and key[1] == "observed"):
                if val[1] != 0 or val[0] > 1e-5:
                    print(f"{name}: the observed semantics do not reproduce snnTorch ({key})")
                    ok = False
    print("\nprobe, threshold 0.5, beta 0.5: (spike, mem) per step")
    for reset, (eq, cross) in probe_threshold_equality().items():
        print(f"  {reset:8s} input 0.5, 0.25, 0, 0: {eq}")
        print(f"  {reset:8s} input 0.75, 0, 0     : {cross}")
    ok = conv_fixture(args.out, versions) and ok
    print("\nall checks passed" if ok else "\nSOME CHECKS FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
