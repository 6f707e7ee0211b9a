"""The trainer's float model: hand-worked LIF steps, BPTT against finite differences,
surrogates and losses against their closed forms, Adam and the LR schedule."""

import math
import platform
from dataclasses import replace

import numpy as np
import pytest

from qsnn_hw.train import model as model_mod
from qsnn_hw.train.config import LayerConfig, TrainConfig
from qsnn_hw.train.losses import ce_count_loss, mse_count_loss
from qsnn_hw.train.memory import keep_freed_memory
from qsnn_hw.train.model import SNN
from qsnn_hw.train.optim import Adam, clip_grad_norm, cosine_lr
from qsnn_hw.train.surrogate import SpikeFunction


def one_neuron(beta, threshold, reset, **kw):
    net = SNN(1, [LayerConfig(1, beta=beta, threshold=threshold, reset=reset, **kw)],
              SpikeFunction("atan"), dtype=np.float64)
    net.params = {"layer0.weight": np.array([[1.0]]), "layer0.beta": np.array(beta)}
    return net


def test_lif_subtract_reset_hand_worked():
    # I = 0.6 every step, beta 0.5, theta 1:
    # u0 = 0.6; u1 = 0.3 + 0.6 = 0.9; u2 = 0.45 + 0.6 = 1.05 -> spike;
    # u3 = 0.525 + 0.6 - 1 = 0.125; u4 = 0.0625 + 0.6 = 0.6625
    net = one_neuron(0.5, 1.0, "subtract")
    outs, caches = net.forward(np.array([[0.6]]), 5, keep=True)
    np.testing.assert_allclose(caches[0].u[1:, 0, 0], [0.6, 0.9, 1.05, 0.125, 0.6625])
    assert outs[0][:, 0, 0].tolist() == [0, 0, 1, 0, 0]


def test_lif_clear_reset_keeps_the_input():
    # I = 0.5, beta 1, theta 1: u = 0.5, 1.0, 1.5 spike, then the membrane is cleared but
    # that step's input counts (snnTorch's zero reset): 0.5, then 1.0, 1.5 spike again
    net = one_neuron(1.0, 1.0, "clear")
    outs, caches = net.forward(np.array([[0.5]]), 6, keep=True)
    np.testing.assert_allclose(caches[0].u[1:, 0, 0], [0.5, 1.0, 1.5, 0.5, 1.0, 1.5])
    assert outs[0][:, 0, 0].tolist() == [0, 0, 1, 0, 0, 1]


def test_lif_zero_reset_and_strict_threshold():
    # I = 0.5, beta 1, theta 1: u = 0.5, 1.0 (not > 1: no spike), 1.5 spike, then reset to 0
    # (the input of that step is dropped too: v = (1 - z) * (...)), then 0.5, 1.0.
    net = one_neuron(1.0, 1.0, "zero")
    outs, caches = net.forward(np.array([[0.5]]), 6, keep=True)
    np.testing.assert_allclose(caches[0].u[1:, 0, 0], [0.5, 1.0, 1.5, 0.0, 0.5, 1.0])
    assert outs[0][:, 0, 0].tolist() == [0, 0, 1, 0, 0, 0]


def test_squat_state_starts_at_level_nearest_zero_and_snaps():
    lc = LayerConfig(1, beta=1.0, threshold=1.0, state_mode="squat", state_bits=2,
                     state_family="uniform", lower_limit=0.0, upper_limit=0.2)
    net = SNN(1, [lc], SpikeFunction("atan"), dtype=np.float64)
    net.params = {"layer0.weight": np.array([[1.0]]), "layer0.beta": np.array(1.0)}
    # a fine grid (12 fractional bits; 16-bit weights); inputs in steps of 0.1
    net.set_deployment(TrainConfig(layers=(lc,), frac_bits=12), input_scale=0.1)
    # uniform 2-bit levels on [-1, 1.2]: -1, -4/15, 7/15, 1.2; nearest to 0 is -4/15.
    lv = [-1.0, -1.0 + 2.2 / 3, -1.0 + 4.4 / 3, 1.2]
    _, caches = net.forward(np.array([[0.3]]), 3, keep=True)
    u = caches[0].u[:, 0, 0]
    assert u[0] == pytest.approx(lv[1], abs=1e-4)
    # -4/15 + 0.3 = 0.0333 -> nearest -4/15 (distance 0.3) vs 7/15 (0.433): stays
    assert u[1] == pytest.approx(lv[1], abs=1e-4)
    _, caches = net.forward(np.array([[0.6]]), 2, keep=True)
    # -4/15 + 0.6 = 0.333 -> 7/15; 7/15 + 0.6 = 1.067 -> 1.2 (spike)
    np.testing.assert_allclose(caches[0].u[1:, 0, 0], [lv[2], lv[3]], atol=1e-4)


def test_squat_needs_inputs_on_the_input_grid():
    lc = LayerConfig(1, state_mode="squat", state_bits=2)
    net = SNN(1, [lc], SpikeFunction("atan"), dtype=np.float64)
    net.params = {"layer0.weight": np.array([[1.0]]), "layer0.beta": np.array(0.5)}
    net.set_deployment(TrainConfig(layers=(lc,)), input_scale=0.1)
    with pytest.raises(ValueError, match="input step"):
        net.forward(np.array([[0.35]]), 2)


@pytest.mark.parametrize("name,param", [("atan", 2.0), ("fast_sigmoid", 25.0),
                                        ("triangular", 1.0)])
def test_surrogate_derivatives_match_their_primitives(name, param):
    # Each surrogate is the derivative of a known smooth step; check by central differences.
    prim = {
        "atan": lambda x: np.arctan(np.pi / 2 * param * x) / np.pi + 0.5,
        "fast_sigmoid": lambda x: x / (1 + param * np.abs(x)),
        "triangular": lambda x: np.sign(x) * (np.minimum(np.abs(x), param) / param
                                              - np.minimum(np.abs(x), param) ** 2
                                              / (2 * param ** 2)),
    }[name]
    x = np.linspace(-2, 2, 41) + 0.013
    z, g = SpikeFunction(name, param)(x)
    h = 1e-6
    np.testing.assert_allclose(g, (prim(x + h) - prim(x - h)) / (2 * h), rtol=1e-5, atol=1e-7)
    assert z.tolist() == (x > 0).astype(float).tolist()
    assert SpikeFunction(name, param)(np.zeros(1))[0][0] == 0  # strict


def _smooth_net(reset, static, seed, learn_beta=True, bias=True):
    rng = np.random.default_rng(seed)
    layers = [LayerConfig(4, beta=0.8, threshold=1.0, reset=reset, bias=bias,
                          learn_beta=learn_beta),
              LayerConfig(3, beta=0.7, threshold=0.5, reset=reset, bias=bias,
                          learn_beta=learn_beta)]
    net = SNN(5, layers, SpikeFunction("smooth_sigmoid", 3.0), detach_reset=False,
              dtype=np.float64)
    net.init_params(rng, init_scale=3.0)
    steps, batch = 6, 3
    x = rng.random((batch, 5)) if static else (rng.random((steps, batch, 5)) < 0.5) * 1.0
    y = rng.integers(0, 3, batch)
    return net, x, y, steps


def _loss(net, x, y, steps):
    outs, caches = net.forward(x, steps, quant=False, keep=True)
    loss, dc = ce_count_loss(outs[-1].sum(axis=0), y)
    return loss, dc, caches


@pytest.mark.parametrize("reset", ["subtract", "zero", "clear"])
@pytest.mark.parametrize("static", [True, False])
def test_bptt_matches_finite_differences(reset, static):
    net, x, y, steps = _smooth_net(reset, static, seed=3)
    loss, dc, caches = _loss(net, x, y, steps)
    grads = net.backward(caches, np.broadcast_to(dc, (steps,) + dc.shape))
    assert set(grads) == set(net.params)
    h = 1e-6
    for k, p in net.params.items():
        num = np.zeros(p.shape)
        for idx in np.ndindex(p.shape):
            orig = p[idx]
            p[idx] = orig + h
            lp = _loss(net, x, y, steps)[0]
            p[idx] = orig - h
            lm = _loss(net, x, y, steps)[0]
            p[idx] = orig
            num[idx] = (lp - lm) / (2 * h)
        np.testing.assert_allclose(grads[k], num, rtol=1e-5, atol=1e-8, err_msg=k)


def test_mse_count_loss_gradient_and_value():
    counts = np.array([[3.0, 1.0], [0.0, 4.0]])
    loss, g = mse_count_loss(counts, np.array([0, 0]), steps=5, correct_rate=0.8,
                             incorrect_rate=0.2)
    # targets: true class 4, other 1 -> errors (-1, 0), (-4, 3): mean of squares = 26/4
    assert loss == pytest.approx(26 / 4)
    np.testing.assert_allclose(g, 2 * np.array([[-1, 0], [-4, 3]]) / 4)


def test_ce_count_loss_matches_closed_form():
    counts = np.array([[2.0, 0.0, 1.0]])
    loss, g = ce_count_loss(counts, np.array([2]))
    z = math.exp(2) + 1 + math.e
    assert loss == pytest.approx(-math.log(math.e / z))
    np.testing.assert_allclose(g, [[math.exp(2) / z, 1 / z, math.e / z - 1]])


def test_adam_first_step_moves_by_lr_times_sign():
    # After one step the bias-corrected update is g / (|g| + eps) -> lr * sign(g).
    p = {"w": np.array([1.0, -2.0, 0.5])}
    Adam().step(p, {"w": np.array([0.3, -4.0, 0.0])}, lr=0.1)
    np.testing.assert_allclose(p["w"], [0.9, -1.9, 0.5], atol=1e-6)


def test_cosine_lr_and_clipping():
    assert cosine_lr(0, 10, 1.0, 0.0) == pytest.approx(1.0)
    assert cosine_lr(5, 10, 1.0, 0.0) == pytest.approx(0.5)
    assert cosine_lr(10, 10, 1.0, 0.1) == pytest.approx(0.1)
    g = {"a": np.array([3.0]), "b": np.array([4.0])}
    assert clip_grad_norm(g, 1.0) == pytest.approx(5.0)
    np.testing.assert_allclose([g["a"][0], g["b"][0]], [0.6, 0.8])


def test_snntorch_exponential_family_is_snntorchs_table():
    # snnTorch state_quant(num_bits=2, uniform=False, threshold=1): range [-1, 1.2],
    # L = floor(4 * 2 / 2.2) = 3 levels below the threshold with multiplier 0.1:
    # room = (1 + 0.1 + 0.01) / 2; levels -1, -1 + 1/room, that + 0.1/room; above: 1.2.
    from qsnn_hw.train.model import state_quantizer
    room = 1.11 / 2
    lv = state_quantizer(LayerConfig(1, state_mode="squat", state_bits=2,
                                     state_family="snntorch_exponential")).levels
    np.testing.assert_allclose(lv, [-1, -1 + 1 / room, -1 + 1.1 / room, 1.2], rtol=1e-6)


def test_grid_forward_on_grid_parameters_is_the_float_model():
    # Parameters exactly on the deployed grid -- weights k * 2**-3 (4-bit, scale 1/8),
    # threshold, bias and beta = 1 representable, a 24-bit membrane that never clips,
    # spike input -- make every rounding of the deployed forward a no-op: its spikes,
    # membranes and (straight-through) gradients are the float model's, to the last bit.
    rng = np.random.default_rng(2)
    lcs = (LayerConfig(5, beta=1.0, threshold=1.0, bias=True, weight_mode="qat",
                       weight_bits=4),
           LayerConfig(3, beta=1.0, threshold=0.5, weight_mode="qat", weight_bits=4))
    grid = SNN(6, lcs, SpikeFunction("atan"), dtype=np.float64)
    grid.set_deployment(TrainConfig(layers=lcs, frac_bits=4, mem_bits=24), 1.0)
    flat = SNN(6, [replace(lc, weight_mode="none") for lc in lcs], SpikeFunction("atan"),
               dtype=np.float64)
    params = {}
    for i, (m, n) in enumerate(((6, 5), (5, 3))):
        w = rng.integers(-7, 8, (n, m)) / 8.0
        w[0, 0] = 7 / 8                     # the scale is max|w| / 7 = 1/8 exactly
        params[f"layer{i}.weight"] = w
        params[f"layer{i}.beta"] = np.asarray(1.0)
    params["layer0.bias"] = rng.integers(-4, 5, 5) / 128.0   # whole membrane units
    grid.params, flat.params = params, {k: v.copy() for k, v in params.items()}
    x = (rng.random((8, 4, 6)) < 0.6).astype(np.float64)
    y = rng.integers(0, 3, 4)
    grads = []
    for net in (grid, flat):
        outs, caches = net.forward(x, 8, quant=True, keep=True)
        _, dc = ce_count_loss(outs[-1].sum(axis=0), y)
        grads.append(net.backward(caches, np.broadcast_to(dc, (8,) + dc.shape)))
        if net is grid:
            g_outs, g_caches = outs, caches
    for a, b in zip(g_outs, outs, strict=True):
        np.testing.assert_array_equal(a, b)
    assert sum(o.sum() for o in outs) > 10                  # the network does spike
    for a, b in zip(g_caches, caches, strict=True):
        np.testing.assert_array_equal(a.u, b.u)
    for k in grads[0]:
        np.testing.assert_allclose(grads[0][k], grads[1][k], rtol=1e-12, atol=1e-14,
                                   err_msg=k)


def _reference_forward(params, x, y, steps, reset, k, frozen=None):
    """Independent slow forward (time-major spikes x, smooth sigmoid spikes). ``frozen``:
    per-layer reset spikes to use instead of the live ones (detached reset). Returns the
    CE loss on output counts and the live spikes used as resets."""
    h, resets = x, []
    for li, theta in enumerate((1.0, 0.5)):
        w = params[f"layer{li}.weight"]
        b = params[f"layer{li}.bias"]
        beta = float(params[f"layer{li}.beta"])
        u = np.zeros((h.shape[1], w.shape[0]))
        z = np.zeros_like(u)
        zs = []
        for t in range(steps):
            zr = z if frozen is None else frozen[li][t]
            cur = h[t] @ w.T + b
            if reset == "subtract":
                u = beta * u + cur - theta * zr
            elif reset == "zero":
                u = (1 - zr) * (beta * u + cur)
            else:
                u = (1 - zr) * beta * u + cur
            z = 1 / (1 + np.exp(-k * (u - theta)))
            zs.append(z)
        resets.append([np.zeros_like(zs[0])] + zs[:-1])
        h = np.array(zs)
    counts = h.sum(axis=0)
    return ce_count_loss(counts, y)[0], resets


@pytest.mark.parametrize("reset", ["subtract", "zero", "clear"])
def test_bptt_with_detached_reset_matches_finite_differences(reset):
    # The default training path (reset term detached, as snnTorch): the gradient is that of
    # the network in which the reset spikes are constants equal to their current values.
    net, x, y, steps = _smooth_net(reset, static=False, seed=4)
    net.detach_reset = True
    outs, caches = net.forward(x, steps, quant=False, keep=True)
    loss, dc = ce_count_loss(outs[-1].sum(axis=0), y)
    grads = net.backward(caches, np.broadcast_to(dc, (steps,) + dc.shape))
    base, frozen = _reference_forward(net.params, x, y, steps, reset, 3.0)
    assert base == pytest.approx(loss, rel=1e-12)
    h = 1e-6
    for name in ("layer0.weight", "layer1.weight", "layer0.bias", "layer1.beta"):
        p = net.params[name]
        num = np.zeros(p.shape)
        for idx in np.ndindex(p.shape):
            orig = p[idx]
            p[idx] = orig + h
            lp = _reference_forward(net.params, x, y, steps, reset, 3.0, frozen)[0]
            p[idx] = orig - h
            lm = _reference_forward(net.params, x, y, steps, reset, 3.0, frozen)[0]
            p[idx] = orig
            num[idx] = (lp - lm) / (2 * h)
        np.testing.assert_allclose(grads[name], num, rtol=1e-5, atol=1e-8, err_msg=name)


@pytest.mark.parametrize("reset", ["subtract", "zero", "clear"])
@pytest.mark.parametrize("static", [True, False])
@pytest.mark.parametrize("surrogate", ["atan", "fast_sigmoid", "triangular"])
def test_in_place_float_steps_give_the_equations_values_bit_for_bit(reset, static, surrogate):
    # The in-place recurrence (spikes and derivatives over all T afterwards) against the
    # equations written out step by step (the path smooth spikes take), in float32.
    rng = np.random.default_rng(5)
    spike = SpikeFunction(surrogate)
    layer = SNN(6, [LayerConfig(40, beta=0.9, reset=reset)], spike).layers[0]
    cur = rng.normal(0.4, 1.0, (30, 40) if static else (9, 30, 40)).astype(np.float32)
    fast = layer._float_steps(cur, static, 9, 0.9, spike, keep=True)
    slow = layer._float_steps_general(cur, static, 9, 0.9, spike, squat=False, keep=True)
    assert fast[0].sum() > 20          # spikes, and so resets, happen
    for a, b in zip(fast, slow, strict=True):
        assert a.dtype == b.dtype == np.float32
        np.testing.assert_array_equal(a.view(np.uint32), b.view(np.uint32))
    no_cache = layer._float_steps(cur, static, 9, 0.9, spike, keep=False)
    np.testing.assert_array_equal(no_cache[0], fast[0])


@pytest.mark.parametrize("dtype", [np.int32, np.int64])
def test_code_lookup_counts_the_boundaries_below_like_a_binary_search(dtype, monkeypatch):
    rng = np.random.default_rng(6)
    for trial in range(40):
        n = int(rng.integers(1, 40))
        gaps = rng.integers(1, 1 << int(rng.integers(1, 20)), n)
        bounds = int(rng.integers(-1 << 20, 1 << 20)) + np.cumsum(gaps)
        span = int(bounds[-1] - bounds[0])
        v = rng.integers(bounds[0] - span - 5, bounds[-1] + span + 5, 3000)
        v = np.concatenate([v, bounds - 1, bounds, bounds + 1]).astype(dtype)
        if trial % 4 == 3:   # a table too big: the binary search itself
            monkeypatch.setattr(model_mod, "MAX_CODE_TABLE", 1)
        lookup = model_mod._CodeLookup(bounds, dtype)
        monkeypatch.undo()
        codes = lookup.codes(v, np.empty(v.shape, np.intp))
        np.testing.assert_array_equal(codes, [np.sum(bounds < e) for e in v.tolist()])


def test_keep_freed_memory_says_whether_it_applied():
    assert keep_freed_memory() in (True, False)
    if platform.libc_ver()[0] == "glibc":
        assert keep_freed_memory()
