"""Sanity of the snnTorch reference fixtures (tests/fixtures/snntorch/, issue 19).

The files were written by scripts/snntorch_fixtures.py with snnTorch 1.0.0 and torch; this
test needs neither: it checks that every NIR graph loads and has the expected node kinds, and
that every .npz has the documented arrays, shapes, dtypes and meta, spikes that are exactly
``mem > threshold`` of the recorded membranes (snnTorch 1.0.0's rule, verified by the script
against the forward pass, with no membrane ever equal to the threshold), level tables that are
snnTorch's (as reproduced by qsnn_hw.quant.snntorch_levels), and a non-trivial spike rate in
every layer. Comparing an imported network with these recordings is the importer's test.
"""

import json
from pathlib import Path

import nir
import numpy as np
import pytest

from qsnn_hw.quant import snntorch_levels

DIR = Path(__file__).parent / "fixtures" / "snntorch"
NAMES = ["dense_subtract", "dense_bias", "dense_zero", "sq_uniform4", "sq_exponential4",
         "direct_input"]
B, T, M = 16, 20, 24
META_KEYS = {"snntorch", "torch", "nir", "dt", "input", "layers"}
LAYER_KEYS = {"size", "bias", "beta", "threshold", "reset_mechanism", "reset_delay",
              "state_quant", "levels"}
SQ_KEYS = {"num_bits", "uniform", "thr_centered", "threshold", "lower_limit", "upper_limit",
           "multiplier"}


def load(name):
    with np.load(DIR / f"{name}.npz") as z:
        arrays = {k: z[k] for k in z.files}
    meta = json.loads(arrays.pop("meta")[()])
    return arrays, meta


def test_every_fixture_is_listed():
    assert sorted(p.stem for p in DIR.glob("*.npz")) == sorted(NAMES + ["conv_net"])
    assert sorted(p.stem for p in DIR.glob("*.nir")) == sorted(NAMES + ["conv_net"])


def test_conv_fixture():
    """conv_net: Conv2d -> LIF -> Conv2d -> LIF -> Flatten -> Linear -> LIF as snnTorch's
    exporter wrote it, spike images in, every layer's spikes (flattened channel-major)."""
    arrays, meta = load("conv_net")
    assert meta["snntorch"] == "1.0.0" and meta["nir"] == "1.0.8" and meta["dt"] == 1e-4
    layers = meta["layers"]
    assert [spec["kind"] for spec in layers] == ["conv", "conv", "dense"]
    x = arrays["x"]
    assert x.dtype == np.float32 and x.shape == (B, T, *meta["in_shape"])
    assert set(np.unique(x)) <= {0.0, 1.0}
    graph = nir.read(DIR / "conv_net.nir")
    succ = dict(graph.edges)
    chain, node = [], "input"
    while node in succ:
        chain.append(node)
        node = succ[node]
    chain.append(node)
    assert [type(graph.nodes[n]).__name__ for n in chain] == [
        "Input", "Conv2d", "LIF", "Conv2d", "LIF", "Flatten", "Linear", "LIF", "Output"]
    convs = [graph.nodes[n] for n in chain if type(graph.nodes[n]).__name__ == "Conv2d"]
    for conv, spec in zip(convs, layers, strict=False):
        assert np.asarray(conv.weight).shape[:3] == (spec["channels"],
                                                     np.asarray(conv.weight).shape[1],
                                                     spec["kernel"])
        assert tuple(np.ravel(conv.stride))[0] == spec["stride"]
        assert tuple(np.ravel(conv.padding))[0] == spec["padding"]
        assert bool(np.any(np.asarray(conv.bias))) == spec["bias"]
    sizes = [int(np.prod(spec["out_shape"])) for spec in layers[:2]] + [layers[2]["size"]]
    assert set(arrays) == {"x"} | {f"spikes{i}" for i in range(3)}
    for i, n in enumerate(sizes):
        s = arrays[f"spikes{i}"]
        assert s.dtype == np.uint8 and s.shape == (B, T, n) and set(np.unique(s)) <= {0, 1}
        assert 0.05 <= s.mean() <= 0.40, f"layer {i} spike rate {s.mean():.3f}"


@pytest.mark.parametrize("name", NAMES)
def test_fixture(name):
    arrays, meta = load(name)
    assert META_KEYS <= meta.keys()
    assert meta["snntorch"] == "1.0.0" and meta["nir"] == "1.0.8" and meta["dt"] == 1e-4
    assert meta["input"] in ("spikes", "direct")
    layers = meta["layers"]
    assert set(arrays) == {"x"} | {f"{k}{i}" for k in ("spikes", "mem")
                                   for i in range(len(layers))}

    x = arrays["x"]
    assert x.dtype == np.float32 and x.shape == (B, T, M)
    if meta["input"] == "spikes":
        assert set(np.unique(x)) <= {0.0, 1.0}
    else:  # the same vector at every step, multiples of 1/15 in [0, 1]
        assert np.array_equal(x, np.broadcast_to(x[:, :1], x.shape))
        k = x * 15
        assert np.allclose(k, np.round(k), atol=1e-5) and x.min() >= 0 and x.max() <= 1

    graph = nir.read(DIR / f"{name}.nir")
    succ = dict(graph.edges)
    assert len(succ) == len(graph.edges)  # a chain: one successor per node
    chain, node = [], "input"
    while node in succ:
        chain.append(node)
        node = succ[node]
    chain.append(node)
    kinds = [type(graph.nodes[n]).__name__ for n in chain]
    lin = "Affine" if layers[0]["bias"] else "Linear"
    assert kinds == ["Input"] + [lin, "LIF"] * len(layers) + ["Output"]
    assert set(chain) == set(graph.nodes)

    n_in = M
    for i, layer in enumerate(layers):
        assert LAYER_KEYS <= layer.keys()
        n = layer["size"]
        weight_node, lif = graph.nodes[chain[1 + 2 * i]], graph.nodes[chain[2 + 2 * i]]
        assert np.asarray(weight_node.weight).shape == (n, n_in)
        thr = np.float32(layer["threshold"])
        assert np.all(np.asarray(lif.v_threshold) == thr)
        # snnTorch's exporter: r = tau/dt = 1/(1 - beta), as float32
        beta_nir = 1 - 1 / np.asarray(lif.r, np.float64)
        assert np.all(beta_nir.astype(np.float32) == np.float32(layer["beta"]))
        assert np.all(np.asarray(lif.v_reset) == 0) and np.all(np.asarray(lif.v_leak) == 0)
        n_in = n

        s, mem = arrays[f"spikes{i}"], arrays[f"mem{i}"]
        assert s.dtype == np.uint8 and s.shape == (B, T, n)
        assert mem.dtype == np.float32 and mem.shape == (B, T, n)
        assert set(np.unique(s)) <= {0, 1}
        assert not np.any(mem == thr)  # so > and >= cannot be confused on this data
        assert np.array_equal(s, (mem > thr).astype(np.uint8))
        assert 0.05 <= s.mean() <= 0.40, f"layer {i} spike rate {s.mean():.3f}"

        assert layer["reset_mechanism"] in ("subtract", "zero")
        assert layer["reset_delay"] is True
        sq = layer["state_quant"]
        if sq is None:
            assert layer["levels"] is None
            continue
        assert set(sq) == SQ_KEYS and sq["threshold"] == layer["threshold"]
        levels = np.array(layer["levels"], np.float64)
        assert np.all(np.diff(levels) > 0)
        assert np.array_equal(levels.astype(np.float32), levels)  # float32 values, exact
        assert np.array_equal(levels.astype(np.float32), snntorch_levels(**sq))
        assert np.all(np.isin(mem, levels.astype(np.float32)))  # every state is a level
