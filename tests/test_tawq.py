"""TaWQ (time-varying ternary weights): the trainer's ternary sequences and scales against
a slow pure-Python run of the update equations, the surrogate backward against finite
differences, the artifact's schema rules, the refusals of the core and of NIR export,
and grid files with TaWQ cells. (The golden model of TaWQ layers: tests/test_golden.py;
the trained network against the golden model: tests/test_train_export.py.)"""

import json
import math

import numpy as np
import pytest

from qsnn_hw import artifact as artifact_mod
from qsnn_hw.artifact import Artifact, ArtifactError, load_artifact, save_artifact, to_bytes
from qsnn_hw.contract import IntLayer, IntNetwork
from qsnn_hw.golden import simulate
from qsnn_hw.hdl.config import CoreConfig
from qsnn_hw.sweep.grid import parse_grid
from qsnn_hw.testing import random_inputs
from qsnn_hw.train import tawq as ttawq
from qsnn_hw.train.config import LayerConfig, TrainConfig
from qsnn_hw.train.export import deploy
from qsnn_hw.train.linear import Dense
from qsnn_hw.train.model import SNN
from qsnn_hw.train.surrogate import SpikeFunction

# ---- a slow reference of the update equations (BRIEF / the authors' code) ------------

def slow_sequences(weights, steps):
    """Per weight, in pure Python: normalize the layer (mean 0, population std 1), run
    v_t = v_{t-1} + (w_n - v_{t-1}) / 2 from v_{-1} = 0, s_t = (sign(v - 1/4) +
    sign(v + 1/4)) / 2, v_t <- (1 - |s_t|) v_t. Returns one list of T ternaries per weight
    (row-major)."""
    flat = [float(v) for v in np.asarray(weights).ravel()]
    mean = sum(flat) / len(flat)
    sd = math.sqrt(sum((v - mean) ** 2 for v in flat) / len(flat))

    def sign(a):
        return (a > 0) - (a < 0)

    out = []
    for w in flat:
        wn = (w - mean) / sd
        v, seq = 0.0, []
        for _ in range(steps):
            v = v + (wn - v) / 2
            s = (sign(v - 0.25) + sign(v + 0.25)) // 2
            seq.append(s)
            v = (1 - abs(s)) * v
        out.append(seq)
    return out


def _tiny_model(w, lc, steps, input_scale=1.0):
    net = SNN(w.shape[1], [lc], SpikeFunction("atan"), beta_shift=8, dtype=np.float64)
    net.params = {"layer0.weight": np.asarray(w, float), "layer0.beta": np.asarray(0.5)}
    cfg = TrainConfig(layers=(lc,), timesteps=steps, beta_shift=8)
    net.set_deployment(cfg, input_scale)
    return net, cfg


@pytest.mark.parametrize("seed", range(4))
def test_trainer_sequences_are_the_update_equations(seed):
    """The deployed layer the trainer trains on (codes looked up in the table) runs the
    same ternary sequence as the equations, weight by weight, when the code holds every
    period up to T (6-bit codes: 31 periods >= T = 20)."""
    rng = np.random.default_rng(seed)
    w = rng.normal(size=(7, 13)) * rng.uniform(0.01, 3) + rng.normal()
    lc = LayerConfig(7, weight_mode="tawq", weight_bits=6)
    net, _ = _tiny_model(w, lc, 20)
    il = net.grid(0).layer
    got = np.stack([il.ternary(t) for t in range(20)], axis=-1).reshape(-1, 20)
    assert got.tolist() == slow_sequences(w, 20)
    # the float dynamics the backward runs through are the same sequences, any code width
    s, _ = ttawq.calcium(ttawq.normalize(w)[0], 20)
    assert np.moveaxis(s, 0, -1).reshape(-1, 20).tolist() == slow_sequences(w, 20)


def test_short_codes_cap_the_period():
    """3-bit codes hold periods 1..3: weights of those periods keep their sequence, the
    slower ones (period >= 4, or never) never fire."""
    rng = np.random.default_rng(7)
    w = rng.normal(size=(9, 40))
    net, _ = _tiny_model(w, LayerConfig(9, weight_mode="tawq", weight_bits=3), 12)
    il = net.grid(0).layer
    got = np.stack([il.ternary(t) for t in range(12)], axis=-1).reshape(-1, 12).tolist()
    ref = slow_sequences(w, 12)
    kept = 0
    for g, r in zip(got, ref, strict=True):
        first = next((t for t, s in enumerate(r) if s), None)
        if first is not None and first <= 2:
            assert g == r
            kept += 1
        else:
            assert g == [0] * 12
    assert 0 < kept < len(ref)
    assert il.tawq_table.shape == (7, 12) and il.weight_bits == 3


def test_scale_multipliers_are_the_authors_scale():
    """``mult[t][n] = round_half_up(2**8 / (mean_m |s_t[n, m]| + 1e-6))``, 0 for a row
    with no non-zero weight; the real scale (mult / 2**8) is what the trainer uses."""
    rng = np.random.default_rng(3)
    w = rng.normal(size=(6, 10))
    w[2] = 0.0                         # a row near the mean: silent at some steps
    steps = 9
    net, _ = _tiny_model(w, LayerConfig(6, weight_mode="tawq", weight_bits=4), steps)
    il = net.grid(0).layer
    seqs = slow_sequences(w, steps)
    for t in range(steps):
        for n in range(6):
            row = [seqs[n * 10 + m][t] for m in range(10)]
            fill = sum(abs(s) for s in row)
            want = 0 if fill == 0 else math.floor(256 / (fill / 10 + 1e-6) + 0.5)
            assert il.tawq_mult[t][n] == want, (t, n)
    assert il.tawq_shift == 8
    assert (il.tawq_mult == 0).any()


def test_code_grid_is_monotone_and_its_table_is_the_dynamics():
    """Codes grow with the normalized weight; each code's row of the table is the slow
    run of the equations from the code's representative value (sd 1 around mean 0)."""
    from qsnn_hw.quant.tawq import code_values, codes_of, tawq_table
    for periods, steps in ((1, 5), (3, 8), (7, 16), (15, 15)):
        vals = code_values(periods)
        assert codes_of(vals, periods).tolist() == list(range(2 * periods + 1))
        xs = np.linspace(-3, 3, 2001)
        assert np.all(np.diff(codes_of(xs, periods)) >= 0)
        table = tawq_table(periods, steps)
        for c, v in enumerate(vals):
            # a layer of two weights +-v normalizes to +-1: scale the reference instead
            seq = slow_sequences([v, -v], steps)[0] if v else [0] * steps
            ref = seq if abs(v) == 1 else _slow_from_value(v, steps)
            assert table[c].tolist() == ref
        # period p fires at t = p - 1, 2p - 1, ...
        for p in range(1, periods + 1):
            row = table[2 * periods + 1 - p]
            assert row.tolist() == [int((t + 1) % p == 0) for t in range(steps)]


def _slow_from_value(wn, steps):
    v, seq = 0.0, []
    for _ in range(steps):
        v = v + (wn - v) / 2
        s = 1 if v > 0.25 else (-1 if v < -0.25 else 0)
        seq.append(s)
        v = (1 - abs(s)) * v
    return seq


@pytest.mark.parametrize("bits,msg", [(1, r"weight_bits must be in \[2, 16\], got 1"),
                                      (9, r"weight_bits \(the TaWQ code width\) must be in "
                                          r"\[2, 8\], got 9")])
def test_code_width_is_validated(bits, msg):
    with pytest.raises(ValueError, match=msg):
        LayerConfig(4, weight_mode="tawq", weight_bits=bits)


def test_tawq_refuses_batch_norm():
    with pytest.raises(ValueError, match="weight_mode='tawq' cannot be combined with "
                                         "batch_norm"):
        LayerConfig(4, kernel=3, weight_mode="tawq", batch_norm=True)


# ---- the backward pass ----------------------------------------------------------------

ALPHA, CTH = 4.0, 0.25


def _sig(x):
    return 1.0 / (1.0 + np.exp(-x))


def _smooth_step(p):
    """A smooth ternary step whose derivative is the surrogate: sigmoids at +-1/4."""
    return _sig(ALPHA * (p - CTH)) + _sig(ALPHA * (p + CTH)) - 1.0


def test_surrogate_is_the_sigmoid_derivative():
    p = np.linspace(-2, 2, 101)
    h = 1e-6
    fd = (_smooth_step(p + h) - _smooth_step(p - h)) / (2 * h)
    np.testing.assert_allclose(ttawq.surrogate_slope(p), fd, rtol=1e-6, atol=1e-9)


def test_calcium_bptt_against_finite_differences():
    """With the resets held at given values, ``sum_t c_t * step(p_t(w))`` differentiated
    by the BPTT of :func:`calcium_backward` equals finite differences of the smooth
    forward written here."""
    rng = np.random.default_rng(0)
    steps = 11
    w = rng.normal(size=(5,))
    keep = rng.integers(0, 2, size=(steps, 5)).astype(float)
    c = rng.normal(size=(steps, 5))

    def run(wv):
        v = np.zeros_like(wv)
        ps, total = [], 0.0
        for t in range(steps):
            p = v + (wv - v) / 2.0
            ps.append(p)
            total = total + c[t] * _smooth_step(p)
            v = keep[t] * p
        return total, np.array(ps)

    _, ps = run(w)
    grad = ttawq.calcium_backward(ps, keep, c)
    h = 1e-6
    fd = (run(w + h)[0] - run(w - h)[0]) / (2 * h)   # weights are independent
    np.testing.assert_allclose(grad, fd, rtol=1e-5, atol=1e-8)


def test_normalization_backward_against_finite_differences():
    rng = np.random.default_rng(1)
    w = rng.normal(size=(4, 6)) * 0.3 + 0.1
    a = rng.normal(size=w.shape)
    b = 0.7

    def f(wv):
        cen = wv - wv.mean()
        sd = np.sqrt((cen ** 2).mean())
        return float(np.sum(a * cen / sd) + b * sd)

    w_n, sigma = ttawq.normalize(w)
    grad = ttawq.normalize_backward(w_n, sigma, a, b)
    h = 1e-6
    fd = np.zeros_like(w)
    for i in np.ndindex(w.shape):
        e = np.zeros_like(w)
        e[i] = h
        fd[i] = (f(w + e) - f(w - e)) / (2 * h)
    np.testing.assert_allclose(grad, fd, rtol=1e-6, atol=1e-8)


def test_layer_backward_structure(monkeypatch):
    """The gradient the layer sends into the calcium BPTT, written out with loops: the
    direct term ``G * sigma * scale`` plus the scale's ``-sigma * exact**2 / M *
    sum_m(G s) * sign(s)``; ``dL/dsigma = sum G * scale * s``; ``dL/dx = d @ W_t``."""
    rng = np.random.default_rng(2)
    steps, batch, m, n = 5, 3, 6, 4
    w = rng.normal(size=(n, m))
    tw = ttawq.tawq_weights(w, 4, steps)
    cache = ttawq.tawq_cache(tw, steps)
    d = rng.normal(size=(steps, batch, n))
    x = rng.random((steps, batch, m))
    seen = {}
    monkeypatch.setattr(ttawq, "calcium_backward",
                        lambda p, keep, ds: seen.setdefault("ds", ds) * 0.0)
    monkeypatch.setattr(ttawq, "normalize_backward",
                        lambda w_n, sigma, dw, dsig: seen.setdefault("dsig", dsig) + dw)
    _, dx = cache.backward(Dense(m, n), d, x, True)
    s = np.moveaxis(tw.table[tw.codes], -1, 0)
    sigma = tw.sigma
    dsig = 0.0
    for t in range(steps):
        for i in range(n):
            fill = sum(abs(int(s[t, i, k])) for k in range(m))
            exact = 1.0 / (fill / m + 1e-6)
            scale = tw.mult[t, i] / 256.0
            g = [sum(d[t, b, i] * x[t, b, k] for b in range(batch)) for k in range(m)]
            gs = sum(g[k] * s[t, i, k] for k in range(m))
            dsig += gs * scale
            for k in range(m):
                want = g[k] * sigma * scale - sigma * exact ** 2 / m * gs * np.sign(s[t, i, k])
                assert seen["ds"][t, i, k] == pytest.approx(want, rel=1e-9, abs=1e-12)
        for b in range(batch):
            for k in range(m):
                want = sum(d[t, b, i] * sigma * tw.mult[t, i] / 256.0 * s[t, i, k]
                           for i in range(n))
                assert dx[t, b, k] == pytest.approx(want, rel=1e-9, abs=1e-12)
    assert seen["dsig"] == pytest.approx(dsig, rel=1e-9)


def test_training_reduces_the_loss_of_a_tawq_layer():
    """Gradient steps on a learnable toy task (the label is the brightest of the first
    three inputs) lower the loss: the surrogate gradient points downhill."""
    from qsnn_hw.train.losses import ce_count_loss
    for seed in range(2):
        rng = np.random.default_rng(seed)
        lc = LayerConfig(3, weight_mode="tawq", weight_bits=5)
        x = np.round(rng.random((30, 8)) * 15) / 15
        y = np.argmax(x[:, :3], axis=1)
        net = SNN(8, [lc], SpikeFunction("atan"), beta_shift=8, dtype=np.float64)
        net.init_params(rng)
        net.set_deployment(TrainConfig(layers=(lc,), timesteps=10, beta_shift=8), 1 / 15)

        def loss_grad(net=net, x=x, y=y):
            outs, caches = net.forward(x, 10, keep=True)
            loss, dc = ce_count_loss(outs[-1].sum(axis=0), y)
            return loss, net.backward(caches, np.broadcast_to(dc, (10,) + dc.shape))

        first, _ = loss_grad()
        for _ in range(60):
            _, g = loss_grad()
            gw = g["layer0.weight"]
            net.params["layer0.weight"] -= 0.01 * gw / np.abs(gw).max()
        assert loss_grad()[0] < 0.8 * first


# ---- artifact, golden, core ---------------------------------------------------------

def _tawq_net(seed=0, steps=6):
    rng = np.random.default_rng(seed)
    lc = (LayerConfig(7, weight_mode="tawq", weight_bits=4, bias=True),
          LayerConfig(3, weight_mode="qat", weight_bits=4, state_mode="squat"))
    cfg = TrainConfig(layers=lc, timesteps=steps)
    model = SNN(5, lc, SpikeFunction("atan"))
    model.init_params(rng, init_scale=3.0)
    net, infos = deploy(model, cfg, 1.0, 1)
    return net, infos


def test_artifact_round_trip_and_schema_3(tmp_path):
    net, infos = _tawq_net()
    art = Artifact(net, {"x": 1}, {}, infos)
    head = json.loads(__import__("zipfile").ZipFile(__import__("io").BytesIO(to_bytes(art)))
                      .read("header.json"))
    assert head["schema_version"] == 3
    assert head["network"]["layers"][0]["tawq_shift"] == 8
    assert "tawq_shift" not in head["network"]["layers"][1]
    back = load_artifact(save_artifact(tmp_path / "t.qsnn", art))
    a, b = net.layers[0], back.network.layers[0]
    for name in ("weight", "tawq_table", "tawq_mult"):
        assert np.array_equal(getattr(a, name), getattr(b, name))
    assert b.tawq_shift == a.tawq_shift and back.network.layers[1].tawq_table is None
    assert back.layer_info[0]["weight_quantizer"]["scheme"] == "tawq"
    x = random_inputs(np.random.default_rng(1), net, 4, 6, density=0.5)
    assert all(np.array_equal(p, q) for p, q in
               zip(simulate(net, x).spikes, simulate(back.network, x).spikes, strict=True))
    assert to_bytes(art) == to_bytes(back)


def test_schema_2_reader_refuses_tawq(tmp_path, monkeypatch):
    net, _ = _tawq_net()
    p = save_artifact(tmp_path / "t.qsnn", Artifact(net))
    monkeypatch.setattr(artifact_mod, "SCHEMA_VERSION", 2)
    with pytest.raises(ArtifactError, match=r"schema 3.*reads schema <= 2: upgrade qsnn-hw"):
        load_artifact(p)


def test_tawq_layer_in_an_older_schema_is_refused(tmp_path, monkeypatch):
    """A header that claims schema 2 but carries a TaWQ layer (hand-edited or damaged)."""
    net, _ = _tawq_net()
    monkeypatch.setattr(artifact_mod, "schema_of", lambda net: 2)
    p = save_artifact(tmp_path / "t.qsnn", Artifact(net))
    monkeypatch.undo()
    with pytest.raises(ArtifactError, match="TaWQ layer, which schema 2 cannot hold"):
        load_artifact(p)


def test_static_weight_networks_keep_their_schema():
    lay = IntLayer(np.array([[1, -1]]), 2, 1, 0)
    assert artifact_mod.schema_of(IntNetwork((lay,))) == 1


def test_golden_refuses_another_timestep_count():
    net, _ = _tawq_net(steps=6)
    with pytest.raises(ValueError, match=r"inputs have 8 timesteps but the network's TaWQ "
                                         r"layers are built for T = 6"):
        simulate(net, np.zeros((1, 8, 5), np.int64))


def test_core_builds_a_trained_tawq_network_bit_exact():
    """The trainer's TaWQ network (its tables and multipliers, not random ones) in the
    core, against the golden model (tests/test_hdl_tawq.py has the random ones)."""
    from qsnn_hw.verify.amaranth import run_core
    from qsnn_hw.verify.compare import compare, format_report
    net, _ = _tawq_net()
    x = random_inputs(np.random.default_rng(4), net, 2, 6, density=0.6, static=False)
    run = run_core(net, x, CoreConfig(lanes=[3, 2]))
    rep = compare(net, simulate(net, x, trace=True), run.observed)
    assert rep["ok"] and not run.error, format_report(rep)


def test_nir_export_refuses_tawq_layers():
    pytest.importorskip("nir")
    from qsnn_hw.interop import InteropError, export_nir
    net, _ = _tawq_net()
    with pytest.raises(InteropError, match="TaWQ layer"):
        export_nir(Artifact(net))


# ---- sweep grids -----------------------------------------------------------------------

def test_grid_file_accepts_tawq_cells():
    cells = parse_grid({"base": {"epochs": 3},
                        "cells": [{"name": "tawq4", "weight_mode": "tawq", "weight_bits": 4},
                                  {"name": "tern", "weight_mode": "qat",
                                   "weight_scheme": "ternary"}]}, "test")
    cfg = cells[0].config(TrainConfig(), 0)
    assert all(lc.weight_mode == "tawq" and lc.weight_bits == 4 for lc in cfg.layers)
    with pytest.raises(ValueError, match=r"cell .bad.: weight_bits \(the TaWQ code width\)"):
        parse_grid({"cells": [{"name": "bad", "weight_mode": "tawq",
                               "weight_bits": 12}]}, "test")[0].config(TrainConfig(), 0)


def test_the_documented_tawq_grid_parses():
    from pathlib import Path

    from qsnn_hw.sweep.grid import load_grid_file
    cells = load_grid_file(Path(__file__).parent.parent / "docs" / "tawq_grid.toml")
    modes = {c.name: c.layer["weight_mode"] for c in cells}
    assert modes["tawq4-s4exp"] == "tawq" and len(cells) == 12
