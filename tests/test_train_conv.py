"""Convolutional spiking networks in the trainer: the convolution and max pooling against
their definitions, BPTT through them (and batch normalization) against finite
differences, the --arch syntax, and the trained network's eval forward against the golden
model of its export on every spike of every layer."""

import json
import zipfile

import numpy as np
import pytest

from qsnn_hw.artifact import load_artifact
from qsnn_hw.cli import main
from qsnn_hw.data import Dataset, load_dataset
from qsnn_hw.golden import simulate
from qsnn_hw.train.arch import ArchError, describe_arch, geometry, parse_arch
from qsnn_hw.train.config import LayerConfig, TrainConfig
from qsnn_hw.train.deployed import run_deployed
from qsnn_hw.train.export import deploy
from qsnn_hw.train.linear import Conv2d, MaxPool
from qsnn_hw.train.losses import ce_count_loss
from qsnn_hw.train.model import SNN
from qsnn_hw.train.surrogate import SpikeFunction
from qsnn_hw.train.trainer import eval_encodings, fit, input_format, run_training


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


def slow_conv(x, w, stride, padding):
    """The convolution written out as its definition: (R, C, H, W) x (O, C, K, K)."""
    r, c, h, wd = x.shape
    o, _, k, _ = w.shape
    ho, wo = (h + 2 * padding - k) // stride + 1, (wd + 2 * padding - k) // stride + 1
    out = np.zeros((r, o, ho, wo), dtype=np.result_type(x, w))
    for y in range(ho):
        for xx in range(wo):
            for ky in range(k):
                for kx in range(k):
                    iy, ix = y * stride + ky - padding, xx * stride + kx - padding
                    if 0 <= iy < h and 0 <= ix < wd:
                        out[:, :, y, xx] += x[:, :, iy, ix] @ w[:, :, ky, kx].T
    return out


# ---- the convolution and its backward ------------------------------------------------

@pytest.mark.parametrize("shape,k,s,p", [((2, 5, 5), 3, 1, 0), ((3, 7, 6), 3, 2, 1),
                                         ((1, 8, 8), 5, 1, 2), ((2, 6, 6), 2, 2, 1)])
def test_conv_current_and_backward_are_the_definition(shape, k, s, p):
    rng = np.random.default_rng(1)
    op = Conv2d(shape, 4, k, s, p)
    x = rng.normal(size=(3, op.n_in))
    w = rng.normal(size=op.weight_shape)
    ref = slow_conv(x.reshape((3,) + shape), w, s, p)
    assert ref.shape[1:] == op.conv_shape
    np.testing.assert_allclose(op.current(x, w), ref.reshape(3, -1), rtol=1e-12, atol=1e-12)
    # exact integers: int_current == the definition in int64
    xi = rng.integers(0, 16, size=(3, op.n_in))
    wi = rng.integers(-7, 8, size=op.weight_shape)
    np.testing.assert_array_equal(op.int_current(xi, wi, 15),
                                  slow_conv(xi.reshape((3,) + shape), wi, s, p).reshape(3, -1))
    # the backward of a linear map: dL/dW and dL/dx of L = sum(d * conv(x, W)), by
    # central differences of the definition (exact up to rounding for a linear map)
    d = rng.normal(size=(3, op.n_neurons))
    dw, dx = op.backward(d, x, w, need_dx=True)

    def loss(xv, wv):
        return float(np.sum(d * slow_conv(xv.reshape((3,) + shape), wv, s, p).reshape(3, -1)))
    h = 1e-3
    for idx in [(0, 0, 0, 0), (3, shape[0] - 1, k - 1, k - 1), (1, 0, k // 2, 0)]:
        e = np.zeros_like(w)
        e[idx] = h
        assert dw[idx] == pytest.approx((loss(x, w + e) - loss(x, w - e)) / (2 * h), rel=1e-7)
    for idx in [(0, 0), (2, op.n_in - 1), (1, op.n_in // 2)]:
        e = np.zeros_like(x)
        e[idx] = h
        assert dx[idx] == pytest.approx((loss(x + e, w) - loss(x - e, w)) / (2 * h),
                                        rel=1e-7, abs=1e-9)


def test_max_pool_hand_worked():
    # one channel, 5 x 5 neurons, 2 x 2 windows: the last row and column are dropped
    pool = MaxPool((1, 5, 5), 2)
    z = np.zeros((1, 25))
    z[0, [0 * 5 + 1, 3 * 5 + 3, 4 * 5 + 4]] = 1   # (0,1) in window (0,0); (3,3) in (1,1);
    assert pool.out_shape == (1, 2, 2)             # (4,4) is outside every window
    assert pool.forward(z).tolist() == [[1, 0, 0, 1]]
    # backward: each window's gradient to its highest membrane, first on ties
    u = np.zeros((1, 25))
    u[0, 1 * 5 + 1] = 0.9      # window (0,0): (1,1) highest
    u[0, 0 * 5 + 3] = 0.2      # window (0,1): (0,3) highest
    u[0, [12, 13, 17, 18]] = 0.5   # window (1,1): a tie -> (2,2), the first
    u[0, 2 * 5 + 0] = -0.1     # window (1,0): all others 0 -> (2,1) (first of the zeros)
    route = pool.route(u)
    assert route.tolist() == [[1 * 5 + 1, 0 * 5 + 3, 2 * 5 + 1, 2 * 5 + 2]]
    d = pool.backward(np.array([[1.0, 2.0, 3.0, 4.0]]), route)
    expect = np.zeros((1, 25))
    expect[0, [6, 3, 11, 12]] = [1.0, 2.0, 3.0, 4.0]
    np.testing.assert_array_equal(d, expect)


def test_max_pool_is_or_of_spikes_over_channels_and_batch():
    rng = np.random.default_rng(4)
    pool = MaxPool((3, 6, 4), 2)
    z = (rng.random((5, 7, 72)) < 0.2).astype(np.float32)
    grid = z.reshape(5, 7, 3, 6, 4)
    expect = np.zeros((5, 7, 3, 3, 2))
    for py in range(3):
        for px in range(2):
            expect[..., py, px] = grid[..., 2 * py:2 * py + 2, 2 * px:2 * px + 2].max(axis=(-2, -1))
    np.testing.assert_array_equal(pool.forward(z), expect.reshape(5, 7, 18))


@pytest.mark.parametrize("seed", range(6))
def test_max_pool_routes_to_the_first_highest_membrane(seed):
    """Random shapes (partial windows dropped), integer membranes with many ties: each
    window routes to its first highest neuron in (dy, dx) order, found here by a loop."""
    rng = np.random.default_rng(seed)
    c, h, w = (int(v) for v in rng.integers(1, 7, 3) + np.array([0, 2, 2]))
    k = int(rng.integers(2, min(h, w) + 1))
    pool = MaxPool((c, h, w), k)
    u = rng.integers(-2, 3, size=(3, c * h * w)).astype(np.float32)
    route = pool.route(u)
    for r in range(3):
        grid = u[r].reshape(c, h, w)
        j = 0
        for ch in range(c):
            for py in range(h // k):
                for px in range(w // k):
                    best = None
                    for dy in range(k):
                        for dx in range(k):
                            y, x = py * k + dy, px * k + dx
                            if best is None or grid[ch, y, x] > grid[ch][best]:
                                best = (y, x)
                    assert route[r, j] == (ch * h + best[0]) * w + best[1]
                    j += 1


# ---- BPTT through convolution, pooling and batch norm ------------------------------

def _conv_net(batch_norm, static, seed, stride=1, padding=1, pool=2):
    rng = np.random.default_rng(seed)
    layers = [LayerConfig(3, kernel=3, stride=stride, padding=padding, pool=pool,
                          batch_norm=batch_norm, bias=True, beta=0.8, learn_beta=True),
              LayerConfig(3, beta=0.7, threshold=0.5, bias=True, learn_beta=True,
                          batch_norm=batch_norm)]
    net = SNN(2 * 5 * 5, layers, SpikeFunction("smooth_sigmoid", 3.0), detach_reset=False,
              dtype=np.float64, in_shape=(2, 5, 5))
    net.init_params(rng, init_scale=3.0)
    for i in (0, 1) if batch_norm else ():
        net.params[f"layer{i}.bn_weight"] = rng.uniform(0.5, 1.5, 3)
        net.params[f"layer{i}.bn_bias"] = rng.uniform(-0.3, 0.3, 3)
        net.params[f"layer{i}.bn_mean"] = rng.uniform(-0.2, 0.2, 3)
        net.params[f"layer{i}.bn_var"] = rng.uniform(0.5, 2.0, 3)
    steps, b = 5, 3
    x = rng.random((b, 50)) if static else (rng.random((steps, b, 50)) < 0.5) * 1.0
    return net, x, rng.integers(0, 3, b), steps


def _fd_check(net, x, y, steps, train):
    def loss():
        outs, _ = net.forward(x, steps, quant=False, train=train)
        return ce_count_loss(outs[-1].sum(axis=0), y)[0]
    outs, caches = net.forward(x, steps, quant=False, keep=True, train=train)
    _, dc = ce_count_loss(outs[-1].sum(axis=0), y)
    grads = net.backward(caches, np.broadcast_to(dc, (steps,) + dc.shape))
    trainable = {k for k in net.params if not k.endswith(("bn_mean", "bn_var"))}
    assert set(grads) == trainable
    h = 1e-6
    for k in sorted(trainable):
        p = net.params[k]
        num = np.zeros(p.shape)
        for idx in np.ndindex(p.shape):
            orig = p[idx]
            p[idx] = orig + h
            lp = loss()
            p[idx] = orig - h
            lm = loss()
            p[idx] = orig
            num[idx] = (lp - lm) / (2 * h)
        np.testing.assert_allclose(grads[k], num, rtol=1e-5, atol=1e-8, err_msg=k)


@pytest.mark.parametrize("static", [True, False])
@pytest.mark.parametrize("stride,padding,pool", [(1, 1, 2), (2, 0, 1)])
def test_conv_bptt_matches_finite_differences(static, stride, padding, pool):
    net, x, y, steps = _conv_net(False, static, 7, stride, padding, pool)
    _fd_check(net, x, y, steps, train=False)


@pytest.mark.parametrize("train", [True, False], ids=["batch-stats", "folded-running-stats"])
@pytest.mark.parametrize("static", [True, False])
def test_batch_norm_bptt_matches_finite_differences(train, static):
    # training mode: batch statistics (their gradient included); eval mode: the folded
    # running statistics (what the deployed grid runs), gradients through the fold; on the
    # convolution (per channel) and on the dense output layer (per neuron)
    net, x, y, steps = _conv_net(True, static, 11)
    assert "layer0.bias" not in net.params and "layer1.bias" not in net.params
    _fd_check(net, x, y, steps, train=train)


def test_batch_norm_normalizes_and_folds_to_its_eval_form():
    net, x, _, steps = _conv_net(True, False, 3)
    mean0 = net.params["layer0.bn_mean"].copy()
    _, caches = net.forward(x, steps, quant=False, keep=True, train=True)
    # the normalized current has zero mean and unit variance per channel over
    # timesteps, batch and positions (gamma/beta applied afterwards)
    cur = caches[0].cur.reshape(steps * 3, 3, -1)
    norm = (cur - net.params["layer0.bn_bias"][None, :, None]) \
        / net.params["layer0.bn_weight"][None, :, None]
    np.testing.assert_allclose(norm.mean(axis=(0, 2)), 0, atol=1e-12)
    np.testing.assert_allclose(norm.var(axis=(0, 2)), 1, rtol=1e-3)
    # running mean moved 10 % of the way to the batch mean of W x
    w = net.params["layer0.weight"]
    pre = slow_conv(x.reshape(-1, 2, 5, 5), w, 1, 1).transpose(1, 0, 2, 3).reshape(3, -1)
    np.testing.assert_allclose(net.params["layer0.bn_mean"],
                               0.9 * mean0 + 0.1 * pre.mean(axis=1), rtol=1e-10)
    # eval mode == gamma * (W x - mean) / sqrt(var + eps) + beta, written out
    _, caches = net.forward(x, steps, quant=False, keep=True)
    g, b = net.params["layer0.bn_weight"], net.params["layer0.bn_bias"]
    m, v = net.params["layer0.bn_mean"], net.params["layer0.bn_var"]
    expect = g[:, None] * (pre - m[:, None]) / np.sqrt(v[:, None] + 1e-5) + b[:, None]
    got = caches[0].cur.reshape(steps * 3, 3, -1).transpose(1, 0, 2).reshape(3, -1)
    np.testing.assert_allclose(got, expect, rtol=1e-10, atol=1e-12)


# ---- the --arch syntax --------------------------------------------------------------

def test_parse_arch_and_back():
    layers = parse_arch("8c3-mp2-16c3p1s2b-mp2-32-10")
    assert layers == [
        dict(size=8, kernel=3, stride=1, padding=0, pool=2, batch_norm=False),
        dict(size=16, kernel=3, stride=2, padding=1, pool=2, batch_norm=True),
        dict(size=32, kernel=0, stride=1, padding=0, pool=1, batch_norm=False),
        dict(size=10, kernel=0, stride=1, padding=0, pool=1, batch_norm=False)]
    assert parse_arch("4c5bs2p2-10b")[0] == dict(size=4, kernel=5, stride=2, padding=2,
                                                 pool=1, batch_norm=True)
    for text in ("8c3-mp2-16c3p1s2b-mp2-32-10", "16c5b-mp2-64c5b-mp2-10", "64-10"):
        assert describe_arch([LayerConfig(**d) for d in parse_arch(text)]) == text


@pytest.mark.parametrize("text,message", [
    ("mp2-8c3-10", "'mp2' must follow a convolution (it pools that layer's spikes); it "
                   "follows the input"),
    ("8c3-32-mp2-10", "'mp2' must follow a convolution (it pools that layer's spikes); it "
                      "follows a dense layer"),
    ("8c3-mp2-mp2-10", "two poolings after one convolution"),
    ("32-8c3-10", "convolution '8c3' after a dense layer; convolutions must come first"),
    ("8c3-mp2", "the last layer must be dense"),
    ("8c3p3-10", "the padding in '8c3p3' must be in [0, 2], got 3"),
    ("8c3s3-10", "the stride in '8c3s3' must be in [1, 2], got 3"),
    ("8c3p1p1-10", "'8c3p1p1' repeats an option"),
    ("8c0-10", "the kernel size in '8c0' must be in [1, 15], got 0"),
    ("8c3-mp1-10", "the pool size in 'mp1' must be in [2, 16], got 1"),
    ("8x3-10", "cannot read '8x3'"),
    ("8c3--10", "empty layer"),
    ("0-10", "the layer size in '0' must be in [1, 65536], got 0"),
])
def test_parse_arch_errors(text, message):
    with pytest.raises(ArchError, match="^--arch: ") as info:
        parse_arch(text)
    assert message in str(info.value)


def test_geometry_and_its_errors():
    layers = [LayerConfig(**d) for d in parse_arch("16c5-mp2-64c5-mp2-10")]
    geo = geometry(layers, 784, (1, 28, 28))
    assert [g.conv_shape for g in geo[:2]] == [(16, 24, 24), (64, 8, 8)]
    assert [g.out_shape for g in geo[:2]] == [(16, 12, 12), (64, 4, 4)]
    assert geo[2].n_in == 1024          # the SQUAT paper's 1024Dense10
    with pytest.raises(ArchError, match="is a convolution but dataset shd is not an image"):
        geometry(layers, 700, None, "dataset shd")
    with pytest.raises(ArchError, match="kernel 5x5 does not fit its 4x4 input"):
        geometry([LayerConfig(2, kernel=5), LayerConfig(10)], 16, (1, 4, 4))
    with pytest.raises(ValueError, match="stride=2 applies to convolutional layers only"):
        LayerConfig(10, stride=2)
    with pytest.raises(ValueError, match=r"padding must be in \[0, 2\], got 3"):
        LayerConfig(4, kernel=3, padding=3)


def test_conv_needs_an_image_dataset():
    rng = np.random.default_rng(0)
    x = (rng.random((20, 4, 30)) < 0.3).astype(np.uint8)
    y = np.arange(20) % 2
    data = Dataset("events", x, y, x, y, x, y, 2)     # event data: no image shape
    cfg = TrainConfig(layers=(LayerConfig(4, kernel=3), LayerConfig(2)), timesteps=4,
                      epochs=1)
    with pytest.raises(ValueError, match="layer 0 is a convolution but dataset events is "
                                         "not an image"):
        fit(cfg, data)


@pytest.mark.parametrize("flags,message", [
    (["--arch", "8c3-mp2-12"], "--arch: the last layer is the output and must have one "
                               "neuron per class of the dataset (10), got 12"),
    (["--arch", "8c3-10", "--hidden", "32"], "give the network by --arch or by --hidden"),
    (["--arch", "mp2-10"], "argument --arch: 'mp2' must follow a convolution"),
    (["--arch", "8c3-16-10", "--weight-bits", "4,4"],
     "--weight-bits has 2 values but the network has 3 layers"),
    (["--arch", "8c9-10"], "layer 0: kernel 9x9 does not fit its 8x8 input with padding 0"),
])
def test_cli_arch_errors_exit_2(flags, message, tmp_path, capsys):
    try:
        rc = main(["train", "--out", str(tmp_path / "run"), "--epochs", "1", *flags])
    except SystemExit as exc:
        rc = exc.code
    assert rc == 2
    assert message in capsys.readouterr().err


# ---- trained conv networks == the golden model -------------------------------------

CONV_MODES = {
    "w4s4-exponential": dict(weight_mode="qat", weight_bits=4, state_mode="squat",
                             state_bits=4, state_family="exponential"),
    "w3-float-states-zero-reset": dict(weight_mode="qat", weight_bits=3, reset="zero"),
    "ptq": dict(weight_mode="ptq", weight_bits=4, state_mode="ptq", state_bits=4),
    "float": dict(),
}


@pytest.mark.slow
@pytest.mark.parametrize("encoding", ["direct", "rate"])
@pytest.mark.parametrize("mode", CONV_MODES.values(), ids=CONV_MODES)
def test_trained_conv_forward_is_the_golden_model(mode, encoding, digits):
    """The trained SNN (convolutions with padding, stride, pooling and batch norm, then a
    dense layer) run forward on its deployed grid, against the golden model of its export
    and the trainer's own integer path: every spike of every layer of the test split."""
    layers = tuple(LayerConfig(**d, **mode) for d in parse_arch("6c3p1b-mp2-8c3p1s2b-10"))
    cfg = TrainConfig(layers=layers, epochs=4, float_epochs=1, timesteps=6, encoding=encoding,
                      max_train_samples=600, lr=1e-2)
    model = fit(cfg, digits).model
    scale, bits = input_format(cfg, digits)
    net, _ = deploy(model, cfg, scale, bits)
    assert [la.is_conv for la in net.layers] == [True, True, False]
    assert net.layers[0].pool == 2 and net.layers[1].stride == 2
    assert net.layers[0].bias is not None        # the folded batch norm
    aware = mode.get("weight_mode") == "qat" or mode.get("state_mode") == "squat"
    for _, enc in eval_encodings(cfg, digits.x_test, 1):
        gold = simulate(net, enc.golden_input())
        mine = run_deployed(net, enc)
        x = enc.float_input(model.dtype)
        runs = [model.forward(x, cfg.timesteps, deployed=True)[0]]
        if aware:
            runs.append(model.forward(x, cfg.timesteps, quant=True)[0])
        for g, m in zip(gold.spikes, mine.spikes, strict=True):
            np.testing.assert_array_equal(g, m)
        for outs in runs:
            for g, z in zip(gold.spikes, outs, strict=True):
                np.testing.assert_array_equal(g, z.transpose(1, 0, 2).astype(np.uint8))
        assert all(s.any() for s in gold.spikes), [s.mean() for s in gold.spikes]


@pytest.mark.parametrize("seed", range(16))
def test_random_conv_networks_deployed_forward_is_the_golden_model(seed):
    # Seeded random (untrained) convolutional networks over kernels, strides, paddings,
    # pooling, batch norm (random running statistics), resets, state and weight formats
    # and inputs: the model's forward on its deployed grid == the trainer's integer path
    # == the golden model, every spike
    from qsnn_hw.train.encoding import encode
    rng = np.random.default_rng(seed)
    c, h = int(rng.integers(1, 3)), int(rng.integers(5, 9))
    common = dict(reset=str(rng.choice(["subtract", "zero", "clear"])), bias=True,
                  state_mode=str(rng.choice(["none", "squat"])),
                  state_bits=int(rng.integers(2, 6)),
                  state_family=str(rng.choice(["uniform", "exponential", "snntorch"])),
                  weight_mode="qat", weight_bits=int(rng.integers(2, 8)))
    k1 = int(rng.integers(1, 4))
    first = LayerConfig(int(rng.integers(1, 5)), kernel=k1, stride=int(rng.integers(1, 3)),
                        padding=int(rng.integers(0, k1)), pool=int(rng.integers(1, 3)),
                        batch_norm=bool(rng.integers(0, 2)), threshold=2.0, **common)
    geo = geometry([first], c * h * h, (c, h, h))[0]
    k2 = int(min(rng.integers(1, 4), *geo.out_shape[1:]))
    layers = (first, LayerConfig(int(rng.integers(1, 5)), kernel=k2, padding=k2 // 2,
                                 batch_norm=bool(rng.integers(0, 2)), **common),
              LayerConfig(4, threshold=float(rng.uniform(0.3, 1.5)),
                          batch_norm=bool(rng.integers(0, 2)), **common))
    bits = int(rng.integers(1, 5))
    cfg = TrainConfig(layers=layers, timesteps=7, beta_shift=int(rng.integers(2, 13)))
    model = SNN(c * h * h, layers, SpikeFunction("atan"), beta_shift=cfg.beta_shift,
                in_shape=(c, h, h))
    model.init_params(rng, init_scale=3.0)
    # excitatory first layer (inputs are >= 0), so that it spikes
    model.params["layer0.weight"] = np.abs(model.params["layer0.weight"])
    for i, lc in enumerate(layers):
        if lc.batch_norm:
            n = lc.size
            model.params[f"layer{i}.bn_weight"] = rng.uniform(0.5, 2.0, n).astype(np.float32)
            model.params[f"layer{i}.bn_bias"] = rng.uniform(-0.5, 0.5, n).astype(np.float32)
            model.params[f"layer{i}.bn_mean"] = rng.uniform(-0.5, 0.5 * i, n).astype(np.float32)
            model.params[f"layer{i}.bn_var"] = rng.uniform(0.2, 2.0, n).astype(np.float32)
    scale = 1 / (2 ** bits - 1)
    net, _ = deploy(model, cfg, scale, bits)
    model.set_deployment(cfg, scale)
    enc = encode(rng.random((6, c * h * h)), "rate" if bits == 1 else "direct", 7, bits, rng)
    gold = simulate(net, enc.golden_input())
    mine = run_deployed(net, enc)
    outs, _ = model.forward(enc.float_input(model.dtype), 7, deployed=True)
    for g, m, z in zip(gold.spikes, mine.spikes, outs, strict=True):
        np.testing.assert_array_equal(g, m)
        np.testing.assert_array_equal(g, z.transpose(1, 0, 2).astype(np.uint8))
    assert gold.spikes[0].any()


def test_conv_run_exports_schema_2_and_reports_full_agreement(digits, tmp_path):
    layers = tuple(LayerConfig(**d, weight_mode="qat", weight_bits=4, state_mode="squat",
                               state_bits=4) for d in parse_arch("4c3b-mp2-10"))
    cfg = TrainConfig(layers=layers, epochs=1, timesteps=4, max_train_samples=200)
    metrics = run_training(cfg, digits, tmp_path, plots=True)
    assert metrics["trained_layer_agreement"] == [1.0, 1.0]
    assert metrics["spike_agreement"] == 1.0
    assert metrics["fake_quant_accuracy"] == metrics["golden_accuracy"]
    with zipfile.ZipFile(tmp_path / "model.qsnn") as z:
        assert json.loads(z.read("header.json"))["schema_version"] == 2
    art = load_artifact(tmp_path / "model.qsnn")
    first = art.network.layers[0]
    assert first.in_shape == (1, 8, 8) and first.weight.shape == (4, 1, 3, 3)
    assert first.pool == 2 and first.out_shape == (4, 3, 3)
    assert art.config["layers"][0]["kernel"] == 3
    assert (tmp_path / "plots" / "membrane_traces.png").is_file()


def test_conv_training_on_digits_beats_chance_quickly(digits, tmp_path):
    # a small batch-normalized conv net, 4-bit QAT weights (8-bit in the output layer:
    # per-layer precision) and 4-bit SQUAT states
    assert main(["train", "--out", str(tmp_path), "--arch", "8c3b-mp2-16c3p1b-10",
                 "--weight-mode", "qat", "--weight-bits", "4,4,8", "--state-mode", "squat",
                 "--state-bits", "4", "--epochs", "4", "--timesteps", "6", "--lr", "1e-2",
                 "--max-train-samples", "600", "--no-plots", "--quiet"]) == 0
    m = json.loads((tmp_path / "metrics.json").read_text())
    assert m["golden_accuracy"] > 0.5           # chance is 0.1
    assert m["trained_spike_agreement"] == 1.0
    # symmetric max-abs scales: the largest weight of a b-bit layer is 2**(b-1) - 1
    net = load_artifact(tmp_path / "model.qsnn").network
    assert [int(np.abs(la.weight).max()) for la in net.layers] == [7, 7, 127]
    assert all(la.state_bits == 4 for la in net.layers)


def _write_idx(path, arr):
    header = bytes([0, 0, 0x08, arr.ndim]) + b"".join(int(n).to_bytes(4, "big")
                                                       for n in arr.shape)
    path.write_bytes(header + arr.astype(np.uint8).tobytes())


def test_squat_paper_fashion_mnist_arch_trains_from_idx_files(tmp_path):
    # The SQUAT paper's FMNIST network, 16Conv5-MP2-64Conv5-MP2-1024Dense10 with batch norm
    # on the convolutions, on small generated 28 x 28 IDX files: it builds, trains,
    # exports (1024 inputs into the dense layer) and equals the golden model
    rng = np.random.default_rng(0)
    files = {"train-images-idx3-ubyte": rng.integers(0, 256, (60, 28, 28)),
             "train-labels-idx1-ubyte": np.arange(60) % 10,
             "t10k-images-idx3-ubyte": rng.integers(0, 256, (10, 28, 28)),
             "t10k-labels-idx1-ubyte": np.arange(10) % 10}
    for name, arr in files.items():
        _write_idx(tmp_path / name, arr)
    out = tmp_path / "run"
    assert main(["train", "--dataset", "fashion_mnist", "--data-dir", str(tmp_path),
                 "--out", str(out), "--arch", "16c5b-mp2-64c5b-mp2-10", "--epochs", "1",
                 "--timesteps", "3", "--weight-mode", "qat", "--weight-bits", "4",
                 "--state-mode", "squat", "--state-bits", "4", "--no-plots", "--quiet"]) == 0
    m = json.loads((out / "metrics.json").read_text())
    assert m["trained_layer_agreement"] == [1.0, 1.0, 1.0] and m["spike_agreement"] == 1.0
    net = load_artifact(out / "model.qsnn").network
    assert [la.weight.shape for la in net.layers] == [(16, 1, 5, 5), (64, 16, 5, 5),
                                                     (10, 1024)]
    assert net.layers[1].in_shape == (16, 12, 12) and net.layers[1].out_shape == (64, 4, 4)


def test_conv_resume_after_ctrl_c_gives_the_same_artifact(digits, tmp_path):
    # the running statistics of batch norm travel in the checkpoint with the parameters
    from qsnn_hw.train import trainer

    class Interrupt(trainer.Progress):
        def batch(self, epoch, epochs, done, total, loss, acc):
            if epoch == 3 and done == 2:
                raise KeyboardInterrupt

    layers = tuple(LayerConfig(**d, weight_mode="qat", weight_bits=4, state_mode="squat",
                               state_bits=4) for d in parse_arch("4c3p1b-mp2-6c3s2b-10"))
    cfg = TrainConfig(layers=layers, epochs=3, float_epochs=1, timesteps=4,
                      max_train_samples=200, encoding="rate")
    run_training(cfg, digits, tmp_path / "straight", plots=False)
    with pytest.raises(KeyboardInterrupt):
        run_training(cfg, digits, tmp_path / "cut", progress=Interrupt(None), plots=False)
    with np.load(tmp_path / "cut" / "checkpoint.npz") as z:
        assert json.loads(z["meta"].tobytes())["epoch"] == 2
        assert "p.layer1.bn_var" in z.files
    run_training(cfg, digits, tmp_path / "cut", resume=True, plots=False)
    assert (tmp_path / "cut" / "model.qsnn").read_bytes() == \
        (tmp_path / "straight" / "model.qsnn").read_bytes()
