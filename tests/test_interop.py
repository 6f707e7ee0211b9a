"""NIR in and out (qsnn_hw.interop, ``qsnn-hw import`` / ``export``): exact round trips of
qsnn-hw artifacts, foreign float graphs against an independent float LIF written here,
and a clear error for every graph qsnn-hw cannot run."""

from __future__ import annotations

import re
from pathlib import Path

import nir
import numpy as np
import pytest
from test_train_conv import slow_conv

from qsnn_hw.artifact import Artifact, load_artifact, save_artifact, to_bytes
from qsnn_hw.cli import main
from qsnn_hw.golden import simulate
from qsnn_hw.interop import DT, ImportOptions, InteropError, import_nir, write_nir
from qsnn_hw.testing import random_conv_network, random_inputs, random_network, schedule

ROOT = Path(__file__).resolve().parent.parent


# ---- export -> import: the identical artifact -----------------------------------------

def _round_trip(art: Artifact, tmp_path: Path) -> Artifact:
    path = write_nir(art, tmp_path / "m.nir")
    return import_nir(path)


def test_reference_model_round_trips_byte_for_byte(tmp_path):
    art = load_artifact(ROOT / "rtl" / "digits.qsnn")
    back = _round_trip(art, tmp_path)
    assert to_bytes(back) == to_bytes(art)


@pytest.mark.parametrize("seed", range(24))
def test_random_networks_round_trip(seed, tmp_path):
    rng = np.random.default_rng(seed)
    net = random_network(rng, **schedule(seed))
    art = Artifact(net, {"note": "random"}, {"seed": seed}, [{"i": i} for i in
                                                            range(len(net.layers))])
    back = _round_trip(art, tmp_path)
    assert to_bytes(back) == to_bytes(art)
    x = random_inputs(rng, net, 4, 6)
    for a, b in zip(simulate(net, x).spikes, simulate(back.network, x).spikes, strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("seed", range(16))
def test_random_conv_networks_round_trip(seed, tmp_path):
    """Convolutions (stride, padding, bias, max pooling as SumPool2d + Threshold) and the
    dense layers after them (behind a Flatten) come back identical."""
    rng = np.random.default_rng(100 + seed)
    net = random_conv_network(rng, **schedule(seed))
    art = Artifact(net, {}, {"seed": seed}, [{} for _ in net.layers])
    path = write_nir(art, tmp_path / "m.nir")
    kinds = [type(n).__name__ for n in nir.read(path).nodes.values()]
    assert kinds.count("Conv2d") == sum(layer.is_conv for layer in net.layers)
    assert kinds.count("SumPool2d") == kinds.count("Threshold") == sum(
        layer.is_conv and layer.pool > 1 for layer in net.layers)
    back = import_nir(path)
    assert to_bytes(back) == to_bytes(art)
    x = random_inputs(rng, net, 3, 5)
    for a, b in zip(simulate(net, x).spikes, simulate(back.network, x).spikes, strict=True):
        np.testing.assert_array_equal(a, b)


def test_export_is_in_membrane_units(tmp_path):
    # a float NIR reader sees the integer model: W * 2**frac_bits, integer bias and
    # threshold, and beta through tau / r as snnTorch writes them
    art = load_artifact(ROOT / "rtl" / "digits.qsnn")
    g = nir.read(write_nir(art, tmp_path / "m.nir"))
    for i, layer in enumerate(art.network.layers):
        np.testing.assert_array_equal(g.nodes[f"fc{i}"].weight,
                                      layer.weight * 2.0 ** layer.frac_bits)
        lif = g.nodes[f"lif{i}"]
        assert np.all(lif.v_threshold == layer.threshold)
        beta = layer.beta_num / 2 ** layer.beta_shift
        np.testing.assert_allclose(1 - DT / lif.tau, beta, rtol=1e-9)
        np.testing.assert_allclose(DT * lif.r / lif.tau, 1.0, rtol=1e-12)


# ---- a foreign float graph ------------------------------------------------------------

def _float_graph(rng, sizes=(24, 16, 8), betas=(0.9, 0.8), thresholds=(1.0, 0.5),
                 bias=(False, True), per_neuron_thr=False):
    nodes = {"input": nir.Input({"input": np.array([sizes[0]])})}
    edges, prev, params = [], "input", []
    for i, (m, n) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        w = rng.normal(0, 1.2 / np.sqrt(m), (n, m))
        b = rng.normal(0, 0.1, n) if bias[i] else None
        nodes[f"l{i}"] = nir.Affine(w, b) if b is not None else nir.Linear(w)
        thr = np.full(n, thresholds[i])
        if per_neuron_thr:
            thr = thr * rng.uniform(0.5, 1.5, n)
        tau = np.full(n, DT / (1 - betas[i]))
        nodes[f"n{i}"] = nir.LIF(tau, tau / DT, np.zeros(n), thr, np.zeros(n))
        edges += [(prev, f"l{i}"), (f"l{i}", f"n{i}")]
        prev = f"n{i}"
        params.append((w, b, betas[i], thr))
    nodes["output"] = nir.Output({"output": np.array([sizes[-1]])})
    edges.append((prev, "output"))
    return nir.NIRGraph(nodes=nodes, edges=edges), params


def _float_lif(params, x, reset="subtract"):
    """The discrete LIF NIR means with snnTorch's semantics, in float64: v = beta*v + I
    minus theta*z[t-1] (or to 0), z = v > theta, v starting at 0."""
    h, out = x.astype(np.float64), []
    for w, b, beta, thr in params:
        v = np.zeros((x.shape[0], w.shape[0]))
        z = np.zeros_like(v)
        zs = []
        for t in range(x.shape[1]):
            cur = h[:, t] @ w.T + (0 if b is None else b)
            v = beta * v + cur - thr * z if reset == "subtract" else \
                np.where(z > 0, 0.0, beta * v + cur)
            z = (v > thr).astype(np.float64)
            zs.append(z)
        h = np.stack(zs, axis=1)
        out.append(h.astype(np.uint8))
    return out


@pytest.mark.parametrize("reset", ["subtract", "zero"])
@pytest.mark.parametrize("per_neuron_thr", [False, True])
def test_foreign_float_graph_agrees_with_the_float_lif(tmp_path, reset, per_neuron_thr):
    rng = np.random.default_rng(3)
    graph, params = _float_graph(rng, per_neuron_thr=per_neuron_thr)
    nir.write(tmp_path / "f.nir", graph)
    art = import_nir(tmp_path / "f.nir", ImportOptions(reset=reset, weight_bits=16))
    x = (rng.random((32, 30, 24)) < 0.3).astype(np.int64)
    gold = simulate(art.network, x).spikes
    ref = _float_lif(params, x, reset)
    for i, (g, r) in enumerate(zip(gold, ref, strict=True)):
        agree = float(np.mean(g == r))
        assert agree >= 0.995, (i, agree)
        assert 0.02 < r.mean() < 0.6, r.mean()        # the layers do spike
    assert art.metadata["semantics"]["reset"] == reset


def _conv_float_graph(rng, pool=2, per_channel_thr=True, bias=True):
    """A float graph Input(2, 7, 7) -> Conv2d(2->3, 3, padding 1) -> LIF -> [SumPool2d
    + Threshold] -> Conv2d(3->4, 2, stride 2) -> LIF -> Flatten -> Affine -> LIF."""
    shape = (2, 7, 7)
    nodes = {"input": nir.Input({"input": np.array(shape)})}
    specs = []                            # (w, b, beta, thr per channel, stride, padding)
    w0 = rng.normal(0.15, 0.5, (3, 2, 3, 3))
    b0 = rng.normal(0, 0.1, 3) if bias else np.zeros(3)
    thr0 = rng.uniform(0.6, 1.4, 3) if per_channel_thr else np.ones(3)
    nodes["c0"] = nir.Conv2d((7, 7), w0, 1, 1, 1, 1, b0)
    tau0 = DT / (1 - 0.9)
    # per-neuron arrays as snnTorch writes them, equal within a channel
    nodes["n0"] = nir.LIF(np.full((3, 7, 7), tau0), np.full((3, 7, 7), tau0 / DT),
                          np.zeros((3, 7, 7)), np.repeat(thr0, 49).reshape(3, 7, 7),
                          np.zeros((3, 7, 7)))
    chain_ = ["input", "c0", "n0"]
    specs.append((w0, b0, 0.9, thr0, 1, 1))
    side = 7
    if pool > 1:
        side //= pool
        k = np.array([pool, pool])
        nodes["p0"] = nir.SumPool2d(k, k, np.zeros(2, dtype=np.int64))
        nodes["t0"] = nir.Threshold(np.full((3, side, side), 0.5))
        chain_ += ["p0", "t0"]
    w1 = rng.normal(0.2, 0.6, (4, 3, 2, 2))
    nodes["c1"] = nir.Conv2d((side, side), w1, 2, 0, 1, 1, np.zeros(4))
    side1 = (side - 2) // 2 + 1
    tau1 = DT / (1 - 0.8)
    nodes["n1"] = nir.LIF(np.full(1, tau1), np.full(1, tau1 / DT), np.zeros(1), np.ones(1),
                          np.zeros(1))
    specs.append((w1, None, 0.8, np.ones(4), 2, 0))
    n1 = 4 * side1 * side1
    nodes["f"] = nir.Flatten({"input": np.array([4, side1, side1])}, 0, -1)
    w2 = rng.normal(0.1, 0.5, (5, n1))
    nodes["d"] = nir.Affine(w2, rng.normal(0, 0.1, 5))
    nodes["n2"] = nir.LIF(np.full(5, tau1), np.full(5, tau1 / DT), np.zeros(5), np.ones(5),
                          np.zeros(5))
    nodes["output"] = nir.Output({"output": np.array([5])})
    chain_ += ["c1", "n1", "f", "d", "n2", "output"]
    edges = list(zip(chain_[:-1], chain_[1:], strict=True))
    return nir.NIRGraph(nodes=nodes, edges=edges, type_check=False), specs, \
        (w2, nodes["d"].bias), shape, pool


def test_foreign_conv_graph_agrees_with_the_float_conv_lif(tmp_path):
    """Convolutions with per-channel thresholds (folded into the kernels), max pooling of
    spikes written as SumPool2d + Threshold, a Flatten and a dense layer: the imported
    golden model (16-bit weights) spikes as an independent float computation."""
    rng = np.random.default_rng(7)
    graph, specs, (w2, b2), shape, pool = _conv_float_graph(rng)
    nir.write(tmp_path / "c.nir", graph)
    art = import_nir(tmp_path / "c.nir", ImportOptions(weight_bits=16))
    layers = art.network.layers
    assert [layer.is_conv for layer in layers] == [True, True, False]
    assert layers[0].pool == pool and layers[1].stride == 2 and layers[0].padding == 1
    b_, t_ = 24, 12
    x = (rng.random((b_, t_) + shape) < 0.3).astype(np.int64)
    gold = simulate(art.network, x.reshape(b_, t_, -1)).spikes
    # the float reference, time step by time step (subtract reset, v from 0)
    vs = [None] * 3
    zs = [None] * 3
    ref = [[], [], []]
    for t in range(t_):
        h = x[:, t].astype(np.float64)
        for i, (w, b, beta, thr, s, p) in enumerate(specs):
            cur = slow_conv(h, w, s, p) + (0 if b is None else b[None, :, None, None])
            thr4 = thr[None, :, None, None]
            v = cur if vs[i] is None else beta * vs[i] + cur - thr4 * zs[i]
            z = (v > thr4).astype(np.float64)
            vs[i], zs[i] = v, z
            ref[i].append(z.reshape(b_, -1))
            h = z
            if i == 0 and pool > 1:            # OR over pool x pool windows (floor)
                n, c, hh, ww = z.shape
                hh, ww = hh // pool, ww // pool
                h = z[:, :, :hh * pool, :ww * pool].reshape(n, c, hh, pool, ww, pool) \
                    .max(axis=(3, 5))
        cur = h.reshape(b_, -1) @ w2.T + b2
        v = cur if vs[2] is None else 0.8 * vs[2] + cur - zs[2]
        z = (v > 1).astype(np.float64)
        vs[2], zs[2] = v, z
        ref[2].append(z)
    for i, g in enumerate(gold):
        r = np.stack(ref[i], axis=1).astype(np.uint8)
        if i == 0 and pool > 1:       # golden spikes of a pooled layer are the pooled ones
            n = r.shape[0]
            r4 = r.reshape(n, t_, 3, 7, 7)[:, :, :, :6, :6].reshape(n, t_, 3, 3, 2, 3, 2)
            r = r4.max(axis=(4, 6)).reshape(n, t_, -1)
        agree = float(np.mean(g == r))
        assert agree >= 0.995, (i, agree)
        assert 0.02 < r.mean() < 0.7, (i, r.mean())     # the layers do spike


SNNTORCH_CONV = Path(__file__).parent / "fixtures" / "snntorch" / "conv_net"


def test_imported_snntorch_conv_graph_spikes_as_snntorch():
    """snnTorch's own Conv2d -> Leaky -> Conv2d (stride 2, bias) -> Leaky -> Flatten ->
    Linear -> Leaky, exported by snnTorch 1.0.0 (tests/fixtures/snntorch/conv_net.*):
    the golden model of the imported graph (16-bit weights) spikes as snnTorch did."""
    rec = np.load(SNNTORCH_CONV.with_suffix(".npz"))
    art = import_nir(SNNTORCH_CONV.with_suffix(".nir"), ImportOptions(weight_bits=16))
    x = rec["x"]
    gold = simulate(art.network, x.reshape(x.shape[0], x.shape[1], -1).astype(np.int64))
    for i, g in enumerate(gold.spikes):
        agree = float(np.mean(g == rec[f"spikes{i}"]))
        assert agree >= 0.995, (i, agree)
    # and at 4-bit weights and states (post-training): a deployable conv network
    art4 = import_nir(SNNTORCH_CONV.with_suffix(".nir"),
                      ImportOptions(weight_bits=4, state_bits=4))
    assert [layer.is_conv for layer in art4.network.layers] == [True, True, False]
    assert all(np.abs(layer.weight).max() <= 7 for layer in art4.network.layers)


def test_foreign_graph_quantized_states_and_direct_input(tmp_path):
    rng = np.random.default_rng(4)
    graph, _ = _float_graph(rng)
    nir.write(tmp_path / "f.nir", graph)
    art = import_nir(tmp_path / "f.nir", ImportOptions(weight_bits=4, state_bits=4,
                                                       state_family="snntorch",
                                                       input_bits=4))
    assert art.network.input_bits == 4
    for layer in art.network.layers:
        assert layer.state_bits == 4 and np.abs(layer.weight).max() <= 7


# ---- graphs qsnn-hw cannot run: one clear error each ---------------------------------

def _edit(graph, **nodes):
    g = dict(graph.nodes)
    g.update(nodes)
    return nir.NIRGraph(nodes=g, edges=list(graph.edges), type_check=False)


def _bad_graphs():
    rng = np.random.default_rng(0)
    good, _ = _float_graph(rng, sizes=(4, 3, 2))
    n0 = good.nodes["n0"]
    cuba = nir.CubaLIF(n0.tau, n0.tau, n0.r, n0.v_leak, n0.v_threshold)
    yield "cubalif", _edit(good, n0=cuba), "'n0' is a CubaLIF"
    yield "leak", _edit(good, n0=nir.LIF(n0.tau, n0.r, np.full(3, 0.1), n0.v_threshold)), \
        "v_leak"
    yield "reset", _edit(good, n0=nir.LIF(n0.tau, n0.r, n0.v_leak, n0.v_threshold,
                                          np.full(3, 0.2))), "v_reset"
    tau = n0.tau * np.array([1.0, 2.0, 1.0])
    yield "tau", _edit(good, n0=nir.LIF(tau, tau / DT, n0.v_leak, n0.v_threshold)), \
        "tau differs between neurons"
    yield "fast", _edit(good, n0=nir.LIF(np.full(3, DT / 2), np.full(3, 0.5), n0.v_leak,
                                         n0.v_threshold)), "below dt"
    cyc = nir.NIRGraph(nodes=dict(good.nodes), edges=list(good.edges) + [("n0", "l0")],
                       type_check=False)
    yield "merge", cyc, "'l0' has 2 inputs"
    branch = nir.NIRGraph(nodes=dict(good.nodes), edges=list(good.edges) + [("n0", "output")],
                          type_check=False)
    yield "branch", branch, "'n0' feeds 2 nodes"
    loop = nir.NIRGraph(nodes=dict(good.nodes),
                        edges=[e for e in good.edges if e != ("n0", "l1")]
                        + [("n0", "l0")], type_check=False)
    yield "recurrence", loop, "recurrence"
    yield "order", nir.NIRGraph(
        nodes=dict(good.nodes),
        edges=[("input", "n0"), ("n0", "l0"), ("l0", "l1"), ("l1", "n1"),
               ("n1", "output")], type_check=False), \
        "LIF 'n0' where synapses (Linear, Affine, Conv2d) belong; qsnn-hw runs Input -> (Conv2d"
    conv, *_ = _conv_float_graph(np.random.default_rng(1))
    c0, c1, n0c = conv.nodes["c0"], conv.nodes["c1"], conv.nodes["n0"]
    yield "dilation", _edit(conv, c0=nir.Conv2d((7, 7), c0.weight, 1, 1, 2, 1, c0.bias)), \
        "dilation 1 are supported"
    yield "stride3", _edit(conv, c1=nir.Conv2d((3, 3), c1.weight, 3, 0, 1, 1, c1.bias)), \
        "stride (3, 3); qsnn-hw runs stride 1 or 2"
    yield "rect", _edit(conv, c1=nir.Conv2d((3, 3), c1.weight[:, :, :, :1], 2, 0, 1, 1,
                                             c1.bias)), "kernel 2x1: qsnn-hw builds square"
    thr = np.asarray(n0c.v_threshold).copy()
    thr[0, 0, 0] *= 2
    yield "thr_in_channel", _edit(conv, n0=nir.LIF(n0c.tau, n0c.r, n0c.v_leak, thr,
                                                   n0c.v_reset)), \
        "v_threshold differs within a channel"
    yield "pool_thr", _edit(conv, t0=nir.Threshold(np.full((3, 3, 3), 1.5))), \
        "the Threshold must be in (0, 1)"
    k3 = np.array([3, 3])
    yield "pool_overlap", _edit(conv, p0=nir.SumPool2d(k3, np.array([2, 2]),
                                                       np.zeros(2, dtype=np.int64))), \
        "pooling must be K x K windows with stride K"
    yield "flatten_part", _edit(conv, f=nir.Flatten({"input": np.array([4, 1, 1])}, 1, -1)), \
        "Flatten must flatten the whole (C, H, W)"
    nodes = dict(good.nodes)
    nodes["c"] = nir.Conv2d((1, 2), np.ones((1, 1, 1, 1)), 1, 0, 1, 1, np.zeros(1))
    nodes["nc"] = good.nodes["n1"]
    edges = [e for e in good.edges if e[0] != "n1"] + [("n1", "c"), ("c", "nc"),
                                                        ("nc", "output")]
    yield "conv_after_dense", nir.NIRGraph(nodes=nodes, edges=edges, type_check=False), \
        "convolution 'c' after a dense layer"


@pytest.mark.parametrize("name, graph, message", list(_bad_graphs()),
                         ids=[b[0] for b in _bad_graphs()])
def test_unsupported_graphs_are_one_clear_error(tmp_path, capsys, name, graph, message):
    path = tmp_path / "bad.nir"
    nir.write(path, graph)
    with pytest.raises(InteropError, match=re.escape(message)):
        import_nir(path)
    out = tmp_path / "out.qsnn"
    assert main(["import", str(path), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("qsnn-hw import: error: "), err
    assert not out.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["bad.nir"]


@pytest.mark.parametrize("content", [b"", b"not hdf5 at all", None])
def test_files_that_are_not_nir_are_one_clear_error(tmp_path, capsys, content):
    path = tmp_path / "x.nir"
    if content is None:
        save_artifact(path, load_artifact(ROOT / "rtl" / "digits.qsnn"))  # a zip file
    else:
        path.write_bytes(content)
    with pytest.raises(InteropError, match="not a readable NIR file"):
        import_nir(path)
    assert main(["import", str(path), "--out", str(tmp_path / "o.qsnn")]) == 2
    assert "Traceback" not in capsys.readouterr().err
    with pytest.raises(InteropError, match="no such file"):
        import_nir(tmp_path / "missing.nir")


# ---- the commands ---------------------------------------------------------------------

def test_cli_export_import_and_overwrites(tmp_path, capsys):
    model = ROOT / "rtl" / "digits.qsnn"
    nir_path, back = tmp_path / "d.nir", tmp_path / "d.qsnn"
    assert main(["export", str(model), "--nir", str(nir_path)]) == 0
    assert main(["import", str(nir_path), "--out", str(back)]) == 0
    assert back.read_bytes() == model.read_bytes()
    before = nir_path.read_bytes()
    capsys.readouterr()
    assert main(["export", str(model), "--nir", str(nir_path)]) == 2
    assert "--force" in capsys.readouterr().err
    assert main(["import", str(nir_path), "--out", str(back)]) == 2
    assert nir_path.read_bytes() == before
    assert main(["export", str(model), "--nir", str(nir_path), "--force"]) == 0
    assert main(["import", str(nir_path), "--out", str(tmp_path)]) == 2   # a directory
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.nir", "d.qsnn"]


def test_cli_import_records_the_dataset_for_verify(tmp_path):
    rng = np.random.default_rng(5)
    graph, _ = _float_graph(rng, sizes=(64, 16, 10))
    nir.write(tmp_path / "f.nir", graph)
    out = tmp_path / "f.qsnn"
    assert main(["import", str(tmp_path / "f.nir"), "--out", str(out), "--dataset",
                 "digits", "--timesteps", "8", "--input-bits", "4", "--encoding",
                 "direct"]) == 0
    from qsnn_hw.commands.verify import dataset_inputs
    x, y = dataset_inputs(load_artifact(out), 5)
    assert x.shape == (5, 8, 64) and x.max() <= 15 and len(y) == 5


# ---- fine-tuning an imported network (train --init) -----------------------------------

def _digits_float_graph(tmp_path) -> Path:
    """A float network trained briefly on digits, written as snnTorch writes a Leaky
    chain (Affine + LIF with tau = dt/(1-beta), r = tau/dt, threshold 1)."""
    from qsnn_hw.data import load_dataset
    from qsnn_hw.train.config import LayerConfig, TrainConfig
    from qsnn_hw.train.trainer import fit
    cfg = TrainConfig(layers=(LayerConfig(32, bias=True, beta=0.9), LayerConfig(10, beta=0.8)),
                      epochs=6, timesteps=8, seed=1)
    model = fit(cfg, load_dataset("digits")).model
    nodes = {"input": nir.Input({"input": np.array([64])})}
    edges, prev = [], "input"
    for i, layer in enumerate(model.layers):
        w = model.params[layer.key("weight")].astype(np.float64)
        b = model.params.get(layer.key("bias"))
        n = w.shape[0]
        tau = np.full(n, DT / (1 - float(model.params[layer.key("beta")])))
        nodes[str(2 * i)] = nir.Affine(w, b.astype(np.float64)) if b is not None \
            else nir.Linear(w)
        nodes[str(2 * i + 1)] = nir.LIF(tau, tau / DT, np.zeros(n), np.ones(n), np.zeros(n))
        edges += [(prev, str(2 * i)), (str(2 * i), str(2 * i + 1))]
        prev = str(2 * i + 1)
    nodes["output"] = nir.Output({"output": np.array([10])})
    edges.append((prev, "output"))
    path = tmp_path / "float.nir"
    nir.write(path, nir.NIRGraph(nodes=nodes, edges=edges))
    return path


@pytest.mark.slow
def test_fine_tuning_an_imported_network_beats_its_ptq(tmp_path):
    import json

    from qsnn_hw.commands.verify import dataset_inputs
    graph = _digits_float_graph(tmp_path)
    data = ["--timesteps", "8", "--input-bits", "4", "--encoding", "direct"]
    ptq = tmp_path / "ptq.qsnn"
    assert main(["import", str(graph), "--out", str(ptq), "--weight-bits", "4",
                 "--state-bits", "4", "--dataset", "digits", *data]) == 0
    x, y = dataset_inputs(load_artifact(ptq), None)
    ptq_acc = float(np.mean(simulate(load_artifact(ptq).network, x).predictions == y))
    out = tmp_path / "ft"
    assert main(["train", "--init", str(graph), "--out", str(out), "--epochs", "30",
                 "--weight-mode", "qat", "--weight-bits", "4", "--state-mode", "squat",
                 "--state-bits", "4", "--lr", "3e-4", "--lr-min", "1e-5", "--no-plots",
                 "--quiet", *data]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    art = load_artifact(out / "model.qsnn")
    assert [la.n_out for la in art.network.layers] == [32, 10]
    assert art.network.layers[0].bias is not None and art.network.layers[1].bias is None
    # the imported network deployed at W4/S4 is the run's epoch-0 candidate, so the
    # result is never worse on validation; here an epoch of QAT/SQUAT is better on test
    # too (measured: PTQ 88.33 %, fine-tuned 88.89 %, best epoch 8)
    assert metrics["best_epoch"] >= 1
    assert metrics["golden_accuracy"] > ptq_acc > 0.5, (metrics["golden_accuracy"], ptq_acc)


def _digits_conv_graph(tmp_path) -> Path:
    """A float conv graph on digits' 1x8x8 images: Conv2d 4x3x3 padding 1 (bias) -> LIF ->
    max pooling 2 (SumPool2d + Threshold) -> Flatten -> Linear 64-10 -> LIF."""
    rng = np.random.default_rng(5)
    tau = DT / (1 - 0.9)
    k = np.array([2, 2])
    nodes = {
        "input": nir.Input({"input": np.array([1, 8, 8])}),
        "c": nir.Conv2d((8, 8), rng.normal(0.2, 0.4, (4, 1, 3, 3)), 1, 1, 1, 1,
                        rng.normal(0, 0.1, 4)),
        "n": nir.LIF(np.full((4, 8, 8), tau), np.full((4, 8, 8), tau / DT),
                     np.zeros((4, 8, 8)), np.ones((4, 8, 8)), np.zeros((4, 8, 8))),
        "p": nir.SumPool2d(k, k, np.zeros(2, dtype=np.int64)),
        "t": nir.Threshold(np.full((4, 4, 4), 0.5)),
        "f": nir.Flatten({"input": np.array([4, 4, 4])}, 0, -1),
        "d": nir.Linear(rng.normal(0.05, 0.3, (10, 64))),
        "o": nir.LIF(np.full(10, tau), np.full(10, tau / DT), np.zeros(10), np.ones(10),
                     np.zeros(10)),
        "output": nir.Output({"output": np.array([10])})}
    names = list(nodes)
    path = tmp_path / "conv.nir"
    nir.write(path, nir.NIRGraph(nodes=nodes, edges=list(zip(names[:-1], names[1:],
                                                                strict=True)),
                                 type_check=False))
    return path


def test_train_init_from_a_conv_graph(tmp_path):
    """``--init`` takes a convolutional graph's shape (kernel, padding, pooling) and float
    weights; the run's epoch-0 network is the one ``qsnn-hw import`` deploys at the same
    widths, integer for integer."""
    from qsnn_hw.cli import build_parser
    from qsnn_hw.commands.train import build_config
    from qsnn_hw.data import load_dataset
    from qsnn_hw.train.export import deploy
    from qsnn_hw.train.trainer import build_model, init_from_nir, input_format
    graph = _digits_conv_graph(tmp_path)
    widths = ["--weight-bits", "4", "--state-bits", "4", "--state-family", "exponential"]
    data = ["--timesteps", "8", "--input-bits", "4", "--encoding", "direct"]
    ptq = tmp_path / "ptq.qsnn"
    assert main(["import", str(graph), "--out", str(ptq), "--dataset", "digits", *widths,
                 *data]) == 0
    args = build_parser().parse_args(
        ["train", "--init", str(graph), "--out", str(tmp_path / "x"), *widths, *data])
    cfg = build_config(args, 10)
    assert [(lc.kernel, lc.padding, lc.stride, lc.pool, lc.bias) for lc in cfg.layers] == \
        [(3, 1, 1, 2, True), (0, 0, 1, 1, False)]
    ds = load_dataset("digits")
    scale, bits = input_format(cfg, ds)
    model = build_model(cfg, ds.n_in, np.float64, scale, ds.image_shape)
    model.init_params(np.random.default_rng(0))
    init_from_nir(model, cfg)
    net, _ = deploy(model, cfg, scale, bits)
    for a, b in zip(net.layers, load_artifact(ptq).network.layers, strict=True):
        np.testing.assert_array_equal(a.weight, b.weight)
        assert (a.threshold, a.beta_num, a.frac_bits, a.pool, a.in_shape) == \
            (b.threshold, b.beta_num, b.frac_bits, b.pool, b.in_shape)
    out = tmp_path / "ft"
    assert main(["train", "--init", str(graph), "--out", str(out), "--epochs", "1",
                 "--weight-mode", "qat", "--state-mode", "squat", *widths, *data,
                 "--no-plots", "--quiet"]) == 0
    layers = load_artifact(out / "model.qsnn").network.layers
    assert layers[0].is_conv and layers[0].pool == 2 and layers[0].kernel == (3, 3)
    assert layers[1].n_in == 64 and layers[1].n_out == 10


def test_verify_refuses_a_dataset_of_another_shape(tmp_path, capsys):
    """snnTorch's conv fixture has 8 outputs: recorded as a digits network at import,
    verify says the shapes differ instead of scoring 8 outputs against 10 classes."""
    out = tmp_path / "c.qsnn"
    assert main(["import", str(SNNTORCH_CONV.with_suffix(".nir")), "--out", str(out),
                 "--dataset", "digits", "--weight-bits", "8"]) == 0
    capsys.readouterr()
    assert main(["verify", str(out), "--sim", "amaranth", "--samples", "2"]) == 2
    err = capsys.readouterr().err
    assert "8 outputs" in err and "10 classes" in err and "Traceback" not in err


def test_train_init_refuses_a_graph_of_another_shape(tmp_path, capsys):
    rng = np.random.default_rng(0)
    graph, _ = _float_graph(rng, sizes=(64, 16, 8))          # 8 outputs, digits has 10
    nir.write(tmp_path / "g.nir", graph)
    assert main(["train", "--init", str(tmp_path / "g.nir"), "--out",
                 str(tmp_path / "r")]) == 2
    assert "8 neurons" in capsys.readouterr().err
    assert not (tmp_path / "r" / "model.qsnn").exists()


# ---- snnTorch's own spikes (fixtures made by scripts/snntorch_fixtures.py) -------------

SNNTORCH = ROOT / "tests" / "fixtures" / "snntorch"


def _snntorch_agreement(name: str) -> list[float]:
    """Per layer: the fraction of (sample, step, neuron) where the golden model of the
    imported graph (16-bit weights, automatic fine membrane grid; snnTorch's level table
    where it used state_quant) spikes as snnTorch 1.0.0 did."""
    import json
    rec = np.load(SNNTORCH / f"{name}.npz")
    meta = json.loads(str(rec["meta"]))
    first = meta["layers"][0]
    sq = first["state_quant"]
    bits = 4 if meta["input"] == "direct" else 1
    # snnTorch's reset_mechanism "zero" keeps the reset step's input: the contract's
    # "clear" (the contract's "zero" drops it too)
    reset = {"subtract": "subtract", "zero": "clear"}[first["reset_mechanism"]]
    opts = ImportOptions(reset=reset, weight_bits=16,
                         state_bits=sq["num_bits"] if sq else 0,
                         state_family=("snntorch" if sq["uniform"] else
                                       "snntorch_exponential") if sq else "exponential",
                         input_bits=bits)
    art = import_nir(SNNTORCH / f"{name}.nir", opts)
    x = np.rint(rec["x"] * ((1 << bits) - 1)).astype(np.int64)
    gold = simulate(art.network, x)
    return [float(np.mean(g == rec[f"spikes{i}"])) for i, g in enumerate(gold.spikes)]


@pytest.mark.parametrize("name", ["dense_subtract", "dense_bias", "dense_zero",
                                  "direct_input", "sq_uniform4", "sq_exponential4"])
def test_imported_snntorch_graphs_spike_as_snntorch(name):
    agreement = _snntorch_agreement(name)
    assert min(agreement) >= 0.995, agreement


def test_snntorch_semantics_matter():
    """The two semantic options are what makes these agree: the contract's own zero
    reset on snnTorch's zero-reset network, and the level-nearest-0 start on its uniform
    state_quant network, each disagree clearly."""
    import json
    rec = np.load(SNNTORCH / "dense_zero.npz")
    art = import_nir(SNNTORCH / "dense_zero.nir", ImportOptions(reset="zero"))
    gold = simulate(art.network, rec["x"].astype(np.int64))
    assert np.mean(gold.spikes[1] == rec["spikes1"]) < 0.9
    rec = np.load(SNNTORCH / "sq_uniform4.npz")
    assert json.loads(str(rec["meta"]))["layers"][0]["state_quant"]["uniform"]
    art = import_nir(SNNTORCH / "sq_uniform4.nir",
                     ImportOptions(rest="level", state_bits=4, state_family="snntorch"))
    gold = simulate(art.network, rec["x"].astype(np.int64))
    assert min(np.mean(g == rec[f"spikes{i}"]) for i, g in enumerate(gold.spikes)) < 0.995


@pytest.mark.parametrize("name", ["sq_uniform4", "sq_exponential4", "dense_zero"])
def test_trainer_float_forward_is_snntorchs_leaky(name):
    """The trainer's float LIF (SQUAT on the float snnTorch level table, the membrane
    starting at exactly 0, reset clear for snnTorch's zero reset) with snnTorch's own
    float weights gives snnTorch's spikes exactly (the forward a model trained in float
    or with float SQUAT runs; quantization-aware layers train on the deployed grid,
    docs/training.md)."""
    import json

    from qsnn_hw.train.config import LayerConfig
    from qsnn_hw.train.model import SNN
    from qsnn_hw.train.surrogate import SpikeFunction
    rec = np.load(SNNTORCH / f"{name}.npz")
    meta = json.loads(str(rec["meta"]))
    graph = nir.read(SNNTORCH / f"{name}.nir")
    fcs = [graph.nodes[k] for k in sorted(graph.nodes, key=lambda k: (len(k), k))
           if type(graph.nodes[k]).__name__ in ("Linear", "Affine")]
    lcs = []
    for spec in meta["layers"]:
        sq = spec["state_quant"]
        lcs.append(LayerConfig(
            spec["size"], bias=spec["bias"], beta=spec["beta"], threshold=spec["threshold"],
            reset={"subtract": "subtract", "zero": "clear"}[spec["reset_mechanism"]],
            state_mode="squat" if sq else "none", state_bits=sq["num_bits"] if sq else 4,
            state_family=("snntorch" if sq["uniform"] else "snntorch_exponential")
            if sq else "exponential", rest="zero"))
    model = SNN(rec["x"].shape[2], lcs, SpikeFunction("atan"), dtype=np.float32)
    for i, (layer, fc) in enumerate(zip(model.layers, fcs, strict=True)):
        model.params[layer.key("weight")] = np.asarray(fc.weight, np.float32)
        model.params[layer.key("beta")] = np.float32(meta["layers"][i]["beta"])
        if lcs[i].bias:
            model.params[layer.key("bias")] = np.asarray(fc.bias, np.float32)
        if lcs[i].state_mode == "squat":      # snnTorch's own table, as recorded
            np.testing.assert_array_equal(layer.sq.levels.astype(np.float32),
                                          np.asarray(meta["layers"][i]["levels"], np.float32))
    h = np.ascontiguousarray(rec["x"].transpose(1, 0, 2))     # time-major
    for i, layer in enumerate(model.layers):   # the float path: no deployed grid
        z, _ = layer.forward(model.params, h, h.shape[0], model.spike, True, True, False)
        np.testing.assert_array_equal(z.transpose(1, 0, 2).astype(np.uint8), rec[f"spikes{i}"])
        h = z


def test_from_snntorch_converts_a_sequential_directly():
    """Where torch and snnTorch are installed (not in CI: the fixtures above stand in for
    them there). Measured with snnTorch 1.0.0 / torch 2.13.0: 100 % output agreement."""
    torch = pytest.importorskip("torch")
    pytest.importorskip("snntorch")
    pytest.importorskip("nirtorch")
    from qsnn_hw.interop import from_snntorch
    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Linear(10, 6, bias=False), _leaky((6,), 0.9),
        torch.nn.Linear(6, 4, bias=False), _leaky((4,), 0.8, output=True))
    with torch.no_grad():
        net[0].weight.mul_(3)
        net[2].weight.mul_(3)
    art = from_snntorch(net, 10)
    x = (np.random.default_rng(0).random((8, 15, 10)) < 0.4).astype(np.int64)
    assert np.mean(simulate(art.network, x).spikes[-1] == _snntorch_run(net, x)) >= 0.995


def _leaky(shape, beta: float, output: bool = False):
    """An snnTorch ``Leaky`` with per-neuron beta and threshold 1 tensors of ``shape`` (what
    snnTorch's exporter needs)."""
    import snntorch as snn
    import torch
    return snn.Leaky(beta=torch.full(shape, beta), threshold=torch.full(shape, 1.0),
                     init_hidden=True, output=output)


def _snntorch_run(net, x: np.ndarray) -> np.ndarray:
    """The output spikes of an snnTorch Sequential (``output=True`` last Leaky) stepped over
    ``x``'s time axis 1: (B, T, N_out)."""
    import torch
    spikes = []
    with torch.no_grad():
        for t in range(x.shape[1]):
            s, _ = net(torch.tensor(x[:, t], dtype=torch.float32))
            spikes.append(s.numpy())
    return np.stack(spikes, 1)


def test_from_snntorch_converts_a_conv_sequential_directly():
    """Where torch and snnTorch are installed: a Conv2d -> Leaky -> Flatten -> Linear ->
    Leaky network given with its (C, H, W) input shape."""
    torch = pytest.importorskip("torch")
    pytest.importorskip("snntorch")
    pytest.importorskip("nirtorch")
    from qsnn_hw.interop import from_snntorch
    torch.manual_seed(1)
    net = torch.nn.Sequential(
        torch.nn.Conv2d(1, 3, 3, padding=1, bias=False), _leaky((3, 6, 6), 0.9),
        torch.nn.Flatten(),
        torch.nn.Linear(108, 4, bias=False), _leaky((4,), 0.8, output=True))
    with torch.no_grad():
        net[0].weight.mul_(4)
        net[3].weight.mul_(3)
    art = from_snntorch(net, (1, 6, 6))
    assert [layer.is_conv for layer in art.network.layers] == [True, False]
    x = (np.random.default_rng(1).random((8, 15, 1, 6, 6)) < 0.4).astype(np.int64)
    out = simulate(art.network, x.reshape(8, 15, -1)).spikes[-1]
    ref = _snntorch_run(net, x)
    assert 0.02 < ref.mean() < 0.9 and np.mean(out == ref) >= 0.995

