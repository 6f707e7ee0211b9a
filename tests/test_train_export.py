"""Export to the integer contract: the artifact run by the golden model reproduces the
trainer's eval-mode (deployed, integer) spikes exactly, for every quantization mode."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qsnn_hw.artifact import load_artifact
from qsnn_hw.data import load_dataset
from qsnn_hw.golden import simulate
from qsnn_hw.train.config import LayerConfig, TrainConfig, with_layers
from qsnn_hw.train.deployed import run_deployed
from qsnn_hw.train.encoding import encode
from qsnn_hw.train.export import ExportError, deploy
from qsnn_hw.train.model import SNN
from qsnn_hw.train.surrogate import SpikeFunction
from qsnn_hw.train.trainer import eval_encodings, run_training


def _deploy_drawn(model, cfg, bits: int):
    """``deploy`` of a randomly drawn model with ``bits``-bit inputs, or None when the draw
    cannot be exported (the error must then name the fractional bits or the threshold)."""
    try:
        return deploy(model, cfg, 1 / (2 ** bits - 1), bits)
    except ExportError as exc:
        assert "fractional bit" in str(exc) or "threshold" in str(exc)
        return None


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


MODES = (
    [("weights", dict(weight_mode="qat", weight_bits=b)) for b in (8, 4, 2)]
    + [("states", dict(state_mode="squat", state_bits=b, state_family=f))
       for f in ("uniform", "exponential") for b in (8, 4, 2)]
    + [("both", dict(weight_mode="qat", weight_bits=b, state_mode="squat", state_bits=b,
                     state_family=f)) for f in ("uniform", "exponential") for b in (8, 4, 2)]
    + [("ptq", dict(weight_mode="ptq", weight_bits=4, state_mode="ptq", state_bits=4)),
       ("float", dict())]
)


def _check_golden_equals_trainer(cfg, data, out):
    metrics = run_training(cfg, data, out, plots=False)
    art = load_artifact(out / "model.qsnn")
    n = 0
    for _, enc in eval_encodings(cfg, data.x_test, 1):
        gold = simulate(art.network, enc.golden_input())
        mine = run_deployed(art.network, enc)
        for g, m in zip(gold.spikes, mine.spikes, strict=True):
            np.testing.assert_array_equal(g, m)
        np.testing.assert_array_equal(gold.predictions, np.argmax(mine.counts, axis=1))
        n += len(enc.ints)
    assert n == len(data.y_test) == 360
    assert metrics["spike_agreement"] == 1.0
    assert metrics["golden_accuracy"] == metrics["quantized_accuracy"]
    # the trained network's own forward pass on its deployed grid is the golden model
    assert metrics["trained_layer_agreement"] == [1.0] * len(art.network.layers)
    if all(lc.weight_mode in ("qat", "tawq") or lc.state_mode == "squat"
           for lc in cfg.layers):
        # trained quantization-aware throughout: its eval forward is the deployed network
        assert metrics["fake_quant_accuracy"] == metrics["golden_accuracy"]
    return metrics, art


@pytest.mark.slow
@pytest.mark.parametrize("kind,mode", MODES, ids=[f"{k}-{i}" for i, (k, _) in enumerate(MODES)])
def test_golden_reproduces_trainer_on_digits_test_set(kind, mode, digits, tmp_path):
    # lr 3e-3 for every mode: two epochs must train even the 2-bit modes (whose "auto"
    # rate is the slower 1e-3) far above chance
    cfg = with_layers(TrainConfig(layers=(LayerConfig(48), LayerConfig(10)), epochs=2,
                                  timesteps=10, lr=3e-3), **mode)
    metrics, art = _check_golden_equals_trainer(cfg, digits, tmp_path)
    for layer, info in zip(art.network.layers, art.layer_info, strict=True):
        if mode.get("state_mode"):
            assert layer.state_bits == mode["state_bits"]
            assert info["levels_float"] is not None
        else:
            assert layer.levels is None
        if mode.get("weight_mode"):
            b = mode["weight_bits"]
            assert np.abs(layer.weight).max() <= 2 ** (b - 1) - 1
    assert metrics["quantized_accuracy"] > 0.3  # trained a little, far above chance


@pytest.mark.slow
@pytest.mark.parametrize("variant", [
    dict(encoding="rate"), dict(encoding="latency"),
    dict(layers=(LayerConfig(32, reset="zero", bias=True, learn_beta=True,
                             weight_mode="qat", weight_bits=3, state_mode="squat",
                             state_bits=5),
                 LayerConfig(10, reset="zero", bias=True, state_mode="squat", state_bits=3,
                             state_family="snntorch"))),
    dict(layers=(LayerConfig(32, weight_mode="qat", weight_scheme="asymmetric"),
                 LayerConfig(10, weight_mode="qat", weight_scheme="ternary"))),
    dict(input_bits=8, frac_bits=3, beta_shift=6),
    dict(loss="mse", surrogate="fast_sigmoid"),
    dict(surrogate="triangular", encoding="rate", input_bits=1),
    dict(layers=(LayerConfig(40, weight_mode="qat", weight_bits=6, state_mode="squat",
                             state_bits=6, state_family="snntorch_exponential"),
                 LayerConfig(20, weight_mode="ptq", weight_bits=5, state_mode="ptq",
                             state_bits=3, state_family="uniform"),
                 LayerConfig(10, state_mode="none"))),
], ids=["rate", "latency", "mixed-zero-bias-learnbeta-snntorch", "asym-ternary", "formats",
        "mse-fast-sigmoid", "triangular", "three-layers-mixed-modes"])
def test_golden_reproduces_trainer_other_settings(variant, digits, tmp_path):
    base = dict(layers=(LayerConfig(32, weight_mode="qat", weight_bits=4, state_mode="squat",
                                    state_bits=4),
                        LayerConfig(10, weight_mode="qat", weight_bits=4, state_mode="squat",
                                    state_bits=4)),
                epochs=2, timesteps=8)
    base.update(variant)
    _check_golden_equals_trainer(TrainConfig(**base), digits, tmp_path)


def _tawq(size, bits=4, **kw):
    return LayerConfig(size, weight_mode="tawq", weight_bits=bits, **kw)


@pytest.mark.slow
@pytest.mark.parametrize("variant", [
    dict(layers=(_tawq(32, state_mode="squat", state_bits=4),
                 _tawq(10, state_mode="squat", state_bits=4))),
    dict(layers=(_tawq(32, 3, bias=True), _tawq(10, 5))),
    dict(layers=(_tawq(40, state_mode="squat", state_bits=4, reset="zero", learn_beta=True),
                 LayerConfig(20, weight_mode="qat", weight_bits=3, state_mode="squat",
                             state_bits=3),
                 LayerConfig(10, weight_mode="ptq", weight_bits=5, state_mode="ptq",
                             state_bits=4))),
    dict(layers=(LayerConfig(32, weight_mode="qat", weight_bits=4, state_mode="squat"),
                 _tawq(10, 2, state_mode="squat", state_family="snntorch"))),
    dict(layers=(_tawq(32, state_mode="squat"), _tawq(10, state_mode="squat")),
         encoding="rate", input_bits=1),
    dict(layers=(_tawq(4, kernel=3, padding=1, pool=2, state_mode="squat"),
                 _tawq(6, kernel=3, stride=2, state_mode="squat", bias=True),
                 _tawq(10, state_mode="squat"))),
], ids=["tawq-squat", "tawq-float-states", "tawq-then-qat-then-ptq", "qat-then-tawq2",
        "tawq-rate", "tawq-conv"])
def test_golden_reproduces_trained_tawq(variant, digits, tmp_path):
    """TaWQ layers (docs/fixed-point.md, "TaWQ layers"), alone and mixed with the other
    modes: the trained eval forward, the trainer's integer path and the golden model of
    the artifact agree on every spike of every layer."""
    cfg = TrainConfig(**{**dict(epochs=2, timesteps=8), **variant})
    metrics, art = _check_golden_equals_trainer(cfg, digits, tmp_path)
    for lc, layer in zip(cfg.layers, art.network.layers, strict=True):
        assert layer.is_tawq == (lc.weight_mode == "tawq")
        if layer.is_tawq:
            assert layer.steps == 8 and layer.weight_bits <= lc.weight_bits
    if not cfg.layers[0].is_conv:     # (the small conv net needs more than two epochs)
        assert metrics["quantized_accuracy"] > 0.3


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), bits=st.integers(2, 6), steps=st.integers(1, 12),
       states=st.sampled_from(["none", "squat"]), spikes=st.booleans(),
       conv=st.booleans(), frac_bits=st.sampled_from([-1, 0, 5]))
def test_tawq_deployed_path_matches_golden_property(seed, bits, steps, states, spikes, conv,
                                                    frac_bits):
    """Random (untrained) TaWQ parameters: the model's forward on its deployed grid, the
    trainer's integer path and the golden model give the same spikes."""
    rng = np.random.default_rng(seed)
    first = (LayerConfig(3, kernel=3, padding=1, pool=2, weight_mode="tawq", weight_bits=bits,
                         state_mode=states, bias=True) if conv
             else _tawq(7, bits, state_mode=states, bias=True))
    lcs = (first, _tawq(4, bits, state_mode=states,
                        threshold=float(rng.uniform(0.2, 2.0))))
    cfg = TrainConfig(layers=lcs, timesteps=steps, frac_bits=frac_bits)
    model = SNN(16, lcs, SpikeFunction("atan"), in_shape=(1, 4, 4) if conv else None)
    model.init_params(rng, init_scale=4.0)
    in_bits = 1 if spikes else 4
    if (deployed := _deploy_drawn(model, cfg, in_bits)) is None:
        return
    net, _ = deployed
    enc = encode(rng.random((5, 16)), "rate" if spikes else "direct", steps, in_bits, rng)
    gold = simulate(net, enc.golden_input())
    mine = run_deployed(net, enc)
    model.set_deployment(cfg, 1 / (2 ** in_bits - 1))
    outs, _ = model.forward(enc.float_input(model.dtype), steps, deployed=True)
    for g, m, z in zip(gold.spikes, mine.spikes, outs, strict=True):
        np.testing.assert_array_equal(g, m)
        np.testing.assert_array_equal(g, z.transpose(1, 0, 2).astype(np.uint8))


def _tiny_model(lc, w, beta=0.5, bias=None):
    net = SNN(w.shape[1], [lc], SpikeFunction("atan"), beta_shift=8, dtype=np.float64)
    net.params = {"layer0.weight": np.asarray(w, float), "layer0.beta": np.asarray(beta)}
    if bias is not None:
        net.params["layer0.bias"] = np.asarray(bias, float)
    return net


def test_export_hand_worked():
    # 4-bit symmetric weights: scale = max|w| / 7 = 0.125; spikes in (input scale 1);
    # frac_bits 2 -> unit 0.03125; threshold 1.0 -> 32; bias +-0.046875 -> +-1.5 -> 2, -1
    # (half up); beta 0.5 -> 128 / 2**8; uniform levels -1.0 -> -32, 1.2 -> 38.4 -> 38.
    lc = LayerConfig(2, threshold=1.0, bias=True, weight_mode="qat", weight_bits=4,
                     state_mode="squat", state_bits=2, state_family="uniform")
    w = np.array([[0.875, -0.25], [0.0625, 0.375]])
    cfg = TrainConfig(layers=(lc,), beta_shift=8, frac_bits=2)
    net, infos = deploy(_tiny_model(lc, w, bias=[0.046875, -0.046875]), cfg, 1.0, 1)
    layer = net.layers[0]
    # w / 0.125 = [7, -2], [0.5 -> 0 (half to even), 3]
    assert layer.weight.tolist() == [[7, -2], [0, 3]]
    assert layer.threshold == 32 and layer.frac_bits == 2
    assert layer.bias.tolist() == [2, -1]
    assert layer.beta_num == 128 and layer.beta_shift == 8
    assert layer.levels[0] == -32 and layer.levels[-1] == 38
    assert infos[0]["membrane_unit"] == pytest.approx(0.03125)


def test_export_direct_input_scale_and_auto_frac_bits():
    # 8-bit float export of w (max 0.5 -> scale 0.5/127), 4-bit direct input (scale 1/15):
    # unit0 = 0.5/127/15; threshold 1.0 / unit0 = 3810 >= 256 at frac_bits 0.
    lc = LayerConfig(1, threshold=1.0)
    cfg = TrainConfig(layers=(lc,), float_weight_bits=8)
    net, _ = deploy(_tiny_model(lc, np.array([[0.5, -0.25]])), cfg, 1 / 15, 4)
    assert net.layers[0].frac_bits == 0
    assert net.layers[0].threshold == 3810
    assert net.layers[0].weight.tolist() == [[127, -64]]  # -63.5 -> -64 (half to even)
    assert net.input_bits == 4
    # a tiny threshold needs fractional bits: 0.05 / unit0 = 190.5 -> 1 more bit -> 381
    lc = LayerConfig(1, threshold=0.05)
    net, _ = deploy(_tiny_model(lc, np.array([[0.5, -0.25]])),
                    TrainConfig(layers=(lc,), float_weight_bits=8), 1 / 15, 4)
    assert net.layers[0].frac_bits == 1 and net.layers[0].threshold == 381


def test_export_rejects_colliding_levels_with_clear_error():
    lc = LayerConfig(1, threshold=1.0, weight_mode="qat", weight_bits=2, state_mode="squat",
                     state_bits=8)
    cfg = TrainConfig(layers=(lc,), frac_bits=0)
    with pytest.raises(ExportError, match="more fractional bit"):
        deploy(_tiny_model(lc, np.array([[0.5]])), cfg, 1.0, 1)


@settings(max_examples=60)
@given(seed=st.integers(0, 2**32 - 1), reset=st.sampled_from(["subtract", "zero", "clear"]),
       states=st.sampled_from(["none", "squat"]),
       family=st.sampled_from(["uniform", "exponential", "snntorch", "snntorch_exponential"]),
       weight_bits=st.integers(2, 8), state_bits=st.integers(1, 6),
       input_bits=st.integers(1, 8), beta_shift=st.integers(1, 16),
       frac_bits=st.sampled_from([-1, 6, 12]), spikes=st.booleans())
def test_deployed_path_matches_golden_property(seed, reset, states, family, weight_bits,
                                               state_bits, input_bits, beta_shift, frac_bits,
                                               spikes):
    # Random (untrained) parameters in many formats: the trainer's integer path and the
    # model's own forward on its deployed grid == the golden model (the snnTorch families
    # start from exactly 0: rest "auto")
    rng = np.random.default_rng(seed)
    lcs = (LayerConfig(7, reset=reset, state_mode=states, state_bits=state_bits, bias=True,
                       weight_mode="qat", weight_bits=weight_bits, state_family=family),
           LayerConfig(4, reset=reset, state_mode=states, state_bits=state_bits,
                       state_family=family, threshold=float(rng.uniform(0.2, 2.0))))
    cfg = TrainConfig(layers=lcs, timesteps=9, beta_shift=beta_shift, frac_bits=frac_bits)
    model = SNN(6, lcs, SpikeFunction("atan"), beta_shift=beta_shift)
    model.init_params(rng, init_scale=4.0)
    model.params["layer1.beta"] = np.asarray(rng.uniform(0.05, 1.0))
    bits = 1 if spikes else input_bits
    if (deployed := _deploy_drawn(model, cfg, bits)) is None:
        return
    net, _ = deployed
    enc = encode(rng.random((5, 6)), "rate" if spikes else "direct", 9, bits, rng)
    gold = simulate(net, enc.golden_input())
    mine = run_deployed(net, enc)
    for g, m in zip(gold.spikes, mine.spikes, strict=True):
        np.testing.assert_array_equal(g, m)
    model.set_deployment(cfg, 1 / (2 ** bits - 1))
    outs, _ = model.forward(enc.float_input(model.dtype), 9, deployed=True)
    for g, z in zip(gold.spikes, outs, strict=True):
        np.testing.assert_array_equal(g, z.transpose(1, 0, 2).astype(np.uint8))


def test_golden_reproduces_trainer_on_event_data(tmp_path):
    # Event (spike) datasets such as SHD bypass the encoder: (N, T, M) binary inputs.
    from qsnn_hw.data import Dataset
    rng = np.random.default_rng(5)
    steps, m, classes = 12, 40, 4

    def split(n):
        y = np.arange(n) % classes
        # class c drives inputs [10c, 10c+10) harder
        p = np.full((n, steps, m), 0.05)
        for i, c in enumerate(y):
            p[i, :, 10 * c:10 * c + 10] = 0.5
        return (rng.random((n, steps, m)) < p).astype(np.uint8), y

    (xtr, ytr), (xva, yva), (xte, yte) = split(120), split(40), split(60)
    data = Dataset("events", xtr, ytr, xva, yva, xte, yte, classes)
    cfg = TrainConfig(layers=(LayerConfig(16, weight_mode="qat", weight_bits=4,
                                          state_mode="squat", state_bits=4),
                              LayerConfig(classes)), timesteps=steps, epochs=10, lr=1e-2)
    metrics = run_training(cfg, data, tmp_path, plots=False)
    assert metrics["spike_agreement"] == 1.0
    art = load_artifact(tmp_path / "model.qsnn")
    assert art.network.input_bits == 1
    gold = simulate(art.network, xte.astype(np.int64))
    assert np.mean(gold.predictions == yte) == pytest.approx(metrics["golden_accuracy"])
    assert metrics["golden_accuracy"] > 0.5


TRAINED_MODES = {
    "w4s4-exponential": dict(weight_mode="qat", weight_bits=4, state_mode="squat",
                             state_bits=4, state_family="exponential"),
    "w2s2-uniform-zero-bias": dict(weight_mode="qat", weight_bits=2, state_mode="squat",
                                   state_bits=2, state_family="uniform", reset="zero",
                                   bias=True),
    "ternary-snntorch": dict(weight_mode="qat", weight_scheme="ternary", state_mode="squat",
                             state_bits=3, state_family="snntorch"),
    "qat-float-states": dict(weight_mode="qat", weight_bits=3, learn_beta=True),
    "ptq": dict(weight_mode="ptq", weight_bits=4, state_mode="ptq", state_bits=4),
}


@pytest.mark.slow
@pytest.mark.parametrize("mode", TRAINED_MODES.values(), ids=TRAINED_MODES)
def test_trained_forward_is_the_golden_model(mode, digits):
    """The trained SNN object itself, run forward on its deployed grid, against the
    golden model of its export: every spike of every layer on the test split. Under
    QAT/SQUAT that forward is the training forward (quant=True) too."""
    from qsnn_hw.train.trainer import fit, input_format
    cfg = with_layers(TrainConfig(layers=(LayerConfig(24), LayerConfig(10)), epochs=1,
                                  timesteps=6, max_train_samples=400), **mode)
    model = fit(cfg, digits).model
    scale, bits = input_format(cfg, digits)
    net, _ = deploy(model, cfg, scale, bits)
    aware = mode.get("weight_mode") == "qat" or mode.get("state_mode") == "squat"
    for _, enc in eval_encodings(cfg, digits.x_test, 1):
        gold = simulate(net, enc.golden_input())
        x = enc.float_input(model.dtype)
        runs = [model.forward(x, cfg.timesteps, deployed=True)[0]]
        if aware:
            runs.append(model.forward(x, cfg.timesteps, quant=True)[0])
        for outs in runs:
            for g, z in zip(gold.spikes, outs, strict=True):
                np.testing.assert_array_equal(g, z.transpose(1, 0, 2).astype(np.uint8))
        assert gold.spikes[0].any() and gold.spikes[-1].any()


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), reset=st.sampled_from(["subtract", "zero", "clear"]),
       family=st.sampled_from(["uniform", "exponential", "snntorch", "snntorch_exponential"]),
       state_bits=st.integers(1, 6), beta_shift=st.integers(1, 16),
       frac_bits=st.sampled_from([-1, 6, 12]), spikes=st.booleans(),
       lookup=st.sampled_from(["buckets", "binary search", "int64 updates"]))
def test_grid_forward_caches_the_golden_membranes_and_their_derivatives(
        seed, reset, family, state_bits, beta_shift, frac_bits, spikes, lookup):
    # What the backward pass reads of a quantized-state layer on its deployed grid -- the
    # membranes' real values and the surrogate derivative at them, every step -- against
    # the golden model's membrane trace; with the code lookup's bucket table, the binary
    # search it falls back to, and updates in int64 instead of int32
    from unittest import mock

    from qsnn_hw.train import model as model_mod
    rng = np.random.default_rng(seed)
    lcs = (LayerConfig(9, reset=reset, state_mode="squat", state_bits=state_bits,
                       weight_mode="qat", weight_bits=int(rng.integers(2, 9)),
                       state_family=family),
           LayerConfig(5, reset=reset, state_mode="squat", state_bits=state_bits,
                       state_family=family, threshold=float(rng.uniform(0.2, 2.0))))
    cfg = TrainConfig(layers=lcs, timesteps=8, beta_shift=beta_shift, frac_bits=frac_bits)
    spike = SpikeFunction("atan")
    model = SNN(6, lcs, spike, beta_shift=beta_shift)
    model.init_params(rng, init_scale=4.0)
    bits = 1 if spikes else 8
    if (deployed := _deploy_drawn(model, cfg, bits)) is None:
        return
    net, infos = deployed
    enc = encode(rng.random((7, 6)), "rate" if spikes else "direct", 8, bits, rng)
    gold = simulate(net, enc.golden_input(), trace=True)
    model.set_deployment(cfg, 1 / (2 ** bits - 1))
    steps = model_mod.LIFLayer._quantized_steps
    patches = {
        "buckets": mock.patch.object(model_mod, "MAX_CODE_TABLE", model_mod.MAX_CODE_TABLE),
        "binary search": mock.patch.object(model_mod, "MAX_CODE_TABLE", 1),
        "int64 updates": mock.patch.object(model_mod.LIFLayer, "_quantized_steps", staticmethod(
            lambda il, unit, cur, *rest: steps(il, unit, cur.astype(np.int64), *rest)))}
    with patches[lookup]:
        outs, caches = model.forward(enc.float_input(model.dtype), 8, keep=True)
    for z, cache, layer, info, spk, mem in zip(outs, caches, net.layers, infos, gold.spikes,
                                              gold.mem, strict=True):
        np.testing.assert_array_equal(z.transpose(1, 0, 2), spk)
        mem = mem.transpose(1, 0, 2)                          # (T, B, N)
        unit = info["membrane_unit"]
        np.testing.assert_array_equal(cache.u[1:], (mem * unit).astype(np.float32))
        np.testing.assert_array_equal(
            cache.g, spike.derivative(((mem - layer.threshold) * unit).astype(np.float32)))
