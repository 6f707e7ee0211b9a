"""The integer golden model against a deliberately simple scalar pure-Python reference."""

import os
from fractions import Fraction
from math import floor

import numpy as np
import pytest

from qsnn_hw.contract import IntLayer, IntNetwork, beta_to_fixed
from qsnn_hw.golden import simulate
from qsnn_hw.testing import (
    random_conv_network,
    random_inputs,
    random_network,
    random_tawq_network,
)

N_CONFIGS = int(os.environ.get("QSNN_REGRESSION_CONFIGS", "120"))


def scalar_weights(layer: IntLayer, t: int):
    """The layer's weights at timestep ``t`` as nested Python lists: ``weight`` itself,
    or for a TaWQ layer every code looked up in its table's column ``t``."""
    if not layer.is_tawq:
        return layer.weight.tolist()
    table = layer.tawq_table.tolist()

    def look(v):
        return [look(e) for e in v] if isinstance(v, list) else table[v][t]
    return look(layer.weight.tolist())


def scalar_currents(layer: IntLayer, x_t: list, t: int = 0) -> list:
    """``W @ x`` of one timestep for every neuron, as Python ints: a dense layer's rows,
    or a convolution written out as its definition (zero outside the input)."""
    if not layer.is_conv:
        return [sum(wm * xm for wm, xm in zip(row, x_t, strict=True))
                for row in scalar_weights(layer, t)]
    c_in, h, w = layer.in_shape
    kernel = scalar_weights(layer, t)
    c_out, ho, wo = layer.conv_shape
    kh, kw = layer.kernel
    out = []
    for co in range(c_out):
        for oy in range(ho):
            for ox in range(wo):
                acc = 0
                for ci in range(c_in):
                    for ky in range(kh):
                        for kx in range(kw):
                            y = oy * layer.stride + ky - layer.padding
                            xx = ox * layer.stride + kx - layer.padding
                            if 0 <= y < h and 0 <= xx < w:
                                acc += kernel[co][ci][ky][kx] * x_t[(ci * h + y) * w + xx]
                out.append(acc)
    return out


def scalar_pool(layer: IntLayer, spikes: list) -> list:
    """Max pooling of one timestep's spikes: any spike in each k x k window."""
    if not layer.is_conv or layer.pool == 1:
        return spikes
    c, h, w = layer.conv_shape
    k = layer.pool
    return [max(spikes[(ch * h + py * k + dy) * w + px * k + dx]
                for dy in range(k) for dx in range(k))
            for ch in range(c) for py in range(h // k) for px in range(w // k)]


def scalar_reference(net: IntNetwork, x: np.ndarray):
    """One sample, one neuron, one timestep at a time, with Python ints and Fractions.

    Shares nothing with the golden model: the leak is an exact rational rounded half up,
    quantization is a scan over every level, spikes compare values, not codes.
    """
    results = []
    for sample in x.tolist():
        inp = sample
        per_layer = []
        for layer in net.layers:
            n_neurons = layer.n_neurons
            per_channel = n_neurons // layer.channels
            bias = ([b for b in layer.bias.tolist() for _ in range(per_channel)]
                    if layer.bias is not None else [0] * n_neurons)
            levels = layer.levels.tolist() if layer.levels is not None else None
            lo, hi = -(2 ** (layer.mem_bits - 1)), 2 ** (layer.mem_bits - 1) - 1

            def quantize(v, levels=levels):
                best = min(range(len(levels)), key=lambda k: (abs(v - levels[k]), k))
                return best, levels[best]

            u = [quantize(0)[1] if levels else 0 for _ in range(n_neurons)]
            codes = [quantize(0)[0] if levels else None for _ in range(n_neurons)]
            z = [False] * n_neurons
            out = []
            for t in range(len(inp)):
                spikes_t = []
                currents = scalar_currents(layer, inp[t], t)
                for n in range(n_neurons):
                    if layer.is_tawq:     # scaled per (t, channel), rounded half up
                        mult = int(layer.tawq_mult[t][n // per_channel])
                        scaled = Fraction(currents[n] * mult * 2 ** layer.frac_bits,
                                          2 ** layer.tawq_shift)
                        current = floor(scaled + Fraction(1, 2)) + bias[n]
                    else:
                        current = currents[n] * 2 ** layer.frac_bits + bias[n]
                    beta = Fraction(layer.beta_num, 2 ** layer.beta_shift)
                    leak = floor(beta * u[n] + Fraction(1, 2))
                    if layer.reset == "subtract":
                        v = leak + current - (layer.threshold if z[n] else 0)
                    else:
                        v = 0 if z[n] else leak + current
                    if levels:
                        codes[n], u[n] = quantize(v)
                    else:
                        u[n] = min(max(v, lo), hi)
                    spikes_t.append(1 if u[n] > layer.threshold else 0)
                z = [bool(s) for s in spikes_t]
                out.append(scalar_pool(layer, spikes_t))
            per_layer.append((out, list(u), codes))
            inp = out
        counts = [sum(col) for col in zip(*per_layer[-1][0], strict=True)]
        pred = next(i for i, c in enumerate(counts) if c == max(counts))
        results.append((per_layer, counts, pred))
    return results


def assert_matches_reference(net, x, where=""):
    got = simulate(net, x)
    ref = scalar_reference(net, x)
    for b, (per_layer, counts, pred) in enumerate(ref):
        for li, (spikes, u, codes) in enumerate(per_layer):
            assert got.spikes[li][b].tolist() == spikes, f"{where} sample {b} layer {li} spikes"
            assert got.final_mem[li][b].tolist() == u, f"{where} sample {b} layer {li} membrane"
            if codes[0] is not None:
                assert got.final_codes[li][b].tolist() == codes, f"{where} layer {li} codes"
        assert got.counts[b].tolist() == counts, f"{where} sample {b} counts"
        assert int(got.predictions[b]) == pred, f"{where} sample {b} prediction"
    return got


@pytest.mark.parametrize("seed", range(N_CONFIGS))
def test_random_networks_match_scalar_reference(seed):
    rng = np.random.default_rng(seed)
    net = random_network(rng)
    x = random_inputs(rng, net, batch=int(rng.integers(1, 4)), steps=int(rng.integers(1, 12)))
    assert_matches_reference(net, x, where=f"seed {seed}:")


@pytest.mark.parametrize("seed", range(N_CONFIGS // 2))
def test_random_conv_networks_match_scalar_reference(seed):
    """Convolutions (kernel, stride, padding, channels, pooling, then dense layers) against
    the convolution written out as its definition."""
    rng = np.random.default_rng(10_000 + seed)
    net = random_conv_network(rng, reset=["subtract", "zero"][seed % 2])
    x = random_inputs(rng, net, batch=int(rng.integers(1, 3)), steps=int(rng.integers(1, 6)))
    assert_matches_reference(net, x, where=f"conv seed {seed}:")


def test_random_conv_sweep_exercises_the_space():
    """The conv sweep covers strides, paddings, kernels, pooling and activity."""
    seen = {"stride": set(), "padding": set(), "kernel": set(), "pool": set()}
    active = 0
    for seed in range(N_CONFIGS // 2):
        rng = np.random.default_rng(10_000 + seed)
        net = random_conv_network(rng, reset=["subtract", "zero"][seed % 2])
        x = random_inputs(rng, net, batch=int(rng.integers(1, 3)),
                          steps=int(rng.integers(1, 6)))
        for layer in net.layers:
            if layer.is_conv:
                seen["stride"].add(layer.stride)
                seen["padding"].add(layer.padding)
                seen["kernel"].add(layer.kernel[0])
                seen["pool"].add(layer.pool)
        active += int(simulate(net, x).spikes[0].any())
    assert seen["stride"] == {1, 2} and seen["pool"] == {1, 2}
    assert seen["kernel"] == {1, 2, 3, 4, 5}
    assert {0, 1, 2} <= seen["padding"]
    assert active >= N_CONFIGS // 8


def test_random_sweep_exercises_the_space():
    """The sweep above is only meaningful if it covers every mode and produces activity."""
    seen, active, total = set(), 0, 0
    for seed in range(N_CONFIGS):
        rng = np.random.default_rng(seed)
        net = random_network(rng)
        x = random_inputs(rng, net, batch=int(rng.integers(1, 4)), steps=int(rng.integers(1, 12)))
        res = simulate(net, x)
        for layer, s in zip(net.layers, res.spikes, strict=True):
            seen.add((layer.reset, layer.state_bits is not None, net.input_bits > 1))
            active += int(0 < s.mean() < 1)
            total += 1
    assert len(seen) == 8
    assert active > total // 3


def test_hand_worked_example():
    """docs/fixed-point.md, "Worked example": computed there by hand."""
    layer = IntLayer(weight=np.array([[3, -2], [1, 4]]), threshold=4, beta_num=3, beta_shift=2,
                     reset="subtract", levels=np.array([-4, -1, 0, 2, 3, 4, 5, 8]))
    net = IntNetwork((layer,))
    x = np.array([[[1, 0], [1, 1], [0, 1], [1, 1]]])
    res = simulate(net, x, trace=True)
    assert layer.rest_code == 2 and layer.threshold_code == 5
    assert res.mem[0][0].tolist() == [[3, 0], [3, 5], [0, 4], [0, 8]]
    assert res.codes[0][0].tolist() == [[4, 2], [4, 6], [2, 5], [2, 7]]
    assert res.spikes[0][0].tolist() == [[0, 0], [0, 1], [0, 0], [0, 1]]
    assert res.counts.tolist() == [[0, 2]] and res.predictions.tolist() == [1]


def test_hand_worked_conv_example():
    """docs/fixed-point.md, "Convolutional layers", worked example."""
    layer = IntLayer(np.array([[[[1, 2], [-1, 1]]]]), 3, 1, 1, mem_bits=8, in_shape=(1, 3, 3),
                     pool=2)
    net = IntNetwork((layer,))
    x = np.array([[[1, 0, 1, 0, 1, 0, 1, 0, 0], [0, 1, 1, 1, 1, 0, 0, 0, 1]]])
    res = simulate(net, x, trace=True)
    assert layer.conv_shape == (1, 2, 2) and layer.out_shape == (1, 1, 1)
    assert res.mem[0][0].tolist() == [[2, 1, 1, 1], [3, 3, 4, 3]]
    assert res.spikes[0][0].tolist() == [[0], [1]]


def test_conv_layer_validation():
    w = np.ones((2, 1, 3, 3), dtype=np.int64)
    good = dict(weight=w, threshold=2, beta_num=1, beta_shift=0, in_shape=(1, 5, 5))
    assert IntLayer(**good).n_neurons == 2 * 3 * 3
    cases = [
        (dict(stride=3), "stride must be in \\[1, 2\\]"),
        (dict(padding=3), "padding must be in \\[0, 2\\]"),
        (dict(pool=4), "pool must be in \\[1, 3\\]"),
        (dict(in_shape=(2, 5, 5)), "shape \\(C_out >= 1, 2, K_h, K_w\\)"),
        (dict(in_shape=(1, 2, 5)), "does not fit the height 2"),
        (dict(in_shape=(1, 5)), "in_shape must be \\(channels, height, width\\)"),
        (dict(bias=np.zeros(18, dtype=np.int64)), "bias must have shape \\(2,\\)"),
        (dict(weight=np.ones((2, 9), dtype=np.int64)), "must have 4 dimension"),
    ]
    for change, msg in cases:
        with pytest.raises(ValueError, match=msg):
            IntLayer(**{**good, **change})
    with pytest.raises(ValueError, match="pool must be in \\[1, 1\\]"):
        IntLayer(np.ones((2, 3), dtype=np.int64), 2, 1, 0, pool=2)
    conv = IntLayer(**good, pool=3)                    # outputs (2, 1, 1)
    with pytest.raises(ValueError, match="reads its input as in_shape \\(1, 1, 2\\)"):
        IntNetwork((conv, IntLayer(np.ones((1, 1, 1, 1), dtype=np.int64), 1, 1, 0,
                                   in_shape=(1, 1, 2))))


def test_zero_reset_and_unquantized_saturation():
    layer = IntLayer(weight=np.array([[5]]), threshold=6, beta_num=1, beta_shift=0,
                     reset="zero", mem_bits=4)  # membrane in [-8, 7]
    res = simulate(IntNetwork((layer,)), np.ones((1, 5, 1), np.int64), trace=True)
    # 5, 10 -> saturates to 7 (spike), reset to 0, 5, 10 -> 7 (spike)
    assert res.mem[0][0, :, 0].tolist() == [5, 7, 0, 5, 7]
    assert res.spikes[0][0, :, 0].tolist() == [0, 1, 0, 0, 1]


def test_argmax_ties_lowest_index():
    layer = IntLayer(weight=np.array([[1], [2], [2]]), threshold=1, beta_num=1, beta_shift=0)
    res = simulate(IntNetwork((layer,)), np.ones((1, 3, 1), np.int64))
    assert res.counts.tolist() == [[2, 3, 3]] and res.predictions.tolist() == [1]


@pytest.mark.parametrize("quantized", [False, True])
def test_worst_case_no_wraparound(quantized):
    """Every weight at its extreme, every input at its maximum, every timestep, long T."""
    m, steps = 512, 300
    wmax = 2 ** 15 - 1  # 16-bit symmetric narrow range
    levels = np.arange(-2 ** 20, 2 ** 20 + 1, 2 ** 15 + 1)[:64] if quantized else None
    sign = -1 if quantized else 1
    layer = IntLayer(weight=np.full((3, m), sign * wmax), threshold=2 ** 20, beta_num=1,
                     beta_shift=0, frac_bits=4, levels=levels, mem_bits=32)
    net = IntNetwork((layer,), input_bits=16)
    x = np.full((2, steps, m), net.input_max, np.int64)
    bound = m * wmax * (2 ** 16 - 1) * 2 ** 4
    assert layer.current_bound(net.input_max) == bound  # attained by this input
    assert layer.current_width(net.input_max) == bound.bit_length() + 1
    res = simulate(net, x, trace=True)
    if quantized:  # driven hard negative: saturates at the lowest level, never wraps
        assert np.all(res.codes[0] == 0) and np.all(res.mem[0] == levels[0])
    else:  # beta = 1, huge drive: saturates at the top of the 32-bit membrane
        assert np.all(res.mem[0] == 2 ** 31 - 1)
        assert np.all(res.spikes[0] == 1)
    # An independent exact computation of the first step agrees.
    first = min(bound, 2 ** 31 - 1) if not quantized else levels[0]
    assert np.all(res.mem[0][:, 0] == first)


def test_overflowing_configuration_is_refused():
    layer = IntLayer(weight=np.full((1, 4096), 2 ** 15 - 1), threshold=1, beta_num=1,
                     beta_shift=0, frac_bits=32)
    with pytest.raises(ValueError, match="exceeds 2\\*\\*62"):
        IntNetwork((layer,), input_bits=16)


def _layer(**kw):
    args = dict(weight=np.ones((2, 3), np.int64), threshold=4, beta_num=3, beta_shift=2)
    args.update(kw)
    return IntLayer(**args)


@pytest.mark.parametrize("kw,exc,msg", [
    (dict(threshold=0), ValueError, r"threshold must be in \[1, "),
    (dict(threshold=-3), ValueError, r"threshold must be in \[1, "),
    (dict(beta_num=0), ValueError, r"beta_num must be in \[1, 4\]"),
    (dict(beta_num=5), ValueError, r"beta_num must be in \[1, 4\]"),
    (dict(beta_shift=25), ValueError, r"beta_shift must be in \[0, 24\]"),
    (dict(reset="hard"), ValueError, "reset must be one of 'subtract', 'zero'"),
    (dict(levels=np.array([0, 5, 3, 9])), ValueError, "not sorted at indices 1, 2"),
    (dict(levels=np.array([0, 3, 3, 9])), ValueError, "duplicates at indices 1, 2"),
    (dict(levels=np.array([0, 3, 9])), ValueError, r"2\*\*k entries"),
    (dict(bias=np.array([1, 2, 3])), ValueError, r"bias must have shape \(2,\)"),
    (dict(weight=np.ones((2, 3))), TypeError, "weight must be an integer array"),
    (dict(weight=np.ones(3, np.int64)), ValueError, "weight must have 2 dimension"),
    (dict(mem_bits=1), ValueError, r"mem_bits must be in \[2, 32\]"),
    (dict(threshold=200, mem_bits=8), ValueError, "does not fit below the largest membrane"),
])
def test_layer_validation(kw, exc, msg):
    with pytest.raises(exc, match=msg):
        _layer(**kw)


def test_network_and_input_validation():
    with pytest.raises(ValueError, match=r"layers\[1\] has 3 inputs but layers\[0\] has 2"):
        IntNetwork((_layer(), _layer()))
    with pytest.raises(ValueError, match=r"input_bits must be in \[1, 16\]"):
        IntNetwork((_layer(),), input_bits=0)
    net = IntNetwork((_layer(),))
    with pytest.raises(ValueError, match=r"inputs must have shape \(batch, timesteps, 3\)"):
        simulate(net, np.zeros((1, 2, 4), np.int64))
    with pytest.raises(ValueError, match=r"inputs must be in \[0, 1\] for input_bits=1"):
        simulate(net, np.full((1, 2, 3), 2))
    with pytest.raises(TypeError, match="inputs must be an integer array"):
        simulate(net, np.zeros((1, 2, 3)))


@pytest.mark.parametrize("beta,shift,expect", [(0.95, 8, 243), (1.0, 8, 256), (1e-9, 4, 1),
                                               (0.5, 0, 1), (0.75, 2, 3)])
def test_beta_to_fixed(beta, shift, expect):
    assert beta_to_fixed(beta, shift) == expect


@pytest.mark.parametrize("beta", [0.0, -0.1, 1.01, float("nan")])
def test_beta_out_of_range(beta):
    with pytest.raises(ValueError, match=r"beta must be a finite number in \(0, 1\]"):
        beta_to_fixed(beta, 8)


def test_golden_uses_no_floats():
    """Integer code is integer code: no float dtype anywhere in the golden path."""
    rng = np.random.default_rng(7)
    net = random_network(rng, state_bits=4)
    res = simulate(net, random_inputs(rng, net, 2, 5), trace=True)
    arrays = res.spikes + res.final_mem + res.final_codes + res.mem + res.codes
    arrays += [res.counts, res.predictions]
    assert all(a.dtype.kind in "iu" for a in arrays)


# ---- TaWQ layers (time-varying ternary weights) --------------------------------------

@pytest.mark.parametrize("seed", range(N_CONFIGS // 2))
def test_random_tawq_networks_match_scalar_reference(seed):
    """TaWQ layers (dense and convolutional, mixed with static-weight layers) against the
    scalar reference: every code looked up per timestep, the scale as an exact Fraction
    rounded half up."""
    rng = np.random.default_rng(20_000 + seed)
    steps = int(rng.integers(1, 9))
    if seed % 2:
        net = random_conv_network(rng, reset=["subtract", "zero"][seed % 4 // 2])
    else:
        net = random_network(rng)
    net = random_tawq_network(rng, net, steps)
    x = random_inputs(rng, net, batch=int(rng.integers(1, 3)), steps=steps)
    assert_matches_reference(net, x, where=f"tawq seed {seed}:")


def test_hand_worked_tawq_example():
    """docs/fixed-point.md, "TaWQ layers", worked example."""
    table = np.array([[-1, -1, -1, -1], [0, -1, 0, -1], [0, 0, -1, 0], [0, 0, 0, 0],
                      [0, 0, 1, 0], [0, 1, 0, 1], [1, 1, 1, 1]])
    layer = IntLayer(np.array([[6, 5, 0], [4, 1, 6]]), threshold=1, beta_num=1,
                     beta_shift=1, mem_bits=8, tawq_table=table,
                     tawq_mult=np.array([[6, 12], [4, 6], [6, 6], [4, 6]]), tawq_shift=2)
    net = IntNetwork((layer,))
    x = np.array([[[1, 0, 0], [1, 1, 0], [0, 1, 1], [1, 1, 1]]])
    res = simulate(net, x, trace=True)
    assert layer.ternary(1).tolist() == [[1, 1, -1], [0, -1, 1]]
    assert layer.current_bound(1) == 3 and layer.current_width(1) == 3
    assert layer.weight_bits == 3 and net.steps == 4
    assert res.mem[0][0].tolist() == [[2, 0], [2, -1], [-1, 2], [1, 0]]
    assert res.spikes[0][0].tolist() == [[1, 0], [1, 0], [0, 1], [0, 0]]
    assert res.counts.tolist() == [[2, 1]] and res.predictions.tolist() == [0]


def test_tawq_current_bound_is_attained_and_never_exceeded():
    """The worst case of a TaWQ layer's current is reached by the input that enables
    exactly the synapses of one sign, and no input exceeds it."""
    rng = np.random.default_rng(5)
    table = rng.integers(-1, 2, size=(9, 6))
    layer = IntLayer(rng.integers(0, 9, size=(5, 11)), threshold=3, beta_num=1, beta_shift=0,
                     bias=rng.integers(-9, 10, size=5), frac_bits=2, tawq_table=table,
                     tawq_mult=rng.integers(0, 1000, size=(6, 5)), tawq_shift=5)
    from qsnn_hw.golden import input_currents
    xs = rng.integers(0, 8, size=(200, 6, 11))
    assert np.abs(input_currents(layer, xs)).max() <= layer.current_bound(7)
    worst = 0
    for t in range(6):
        s = layer.ternary(t)
        for n in range(5):
            for sign in (1, -1):
                x = np.zeros((1, 6, 11), np.int64)
                x[0, t] = np.where(s[n] == sign, 7, 0)
                worst = max(worst, int(np.abs(input_currents(layer, x)[0, t, n])))
    assert worst == layer.current_bound(7)


def test_tawq_timesteps_are_part_of_the_layer():
    layer = IntLayer(np.array([[1, 0]]), 2, 1, 0, tawq_table=np.array([[0, 1, 0], [1, 1, -1]]),
                     tawq_mult=np.array([[4], [4], [4]]), tawq_shift=2)
    net = IntNetwork((layer,))
    assert net.steps == 3
    simulate(net, np.ones((1, 3, 2), np.int64))
    with pytest.raises(ValueError, match=r"5 timesteps.*T = 3"):
        simulate(net, np.ones((1, 5, 2), np.int64))


@pytest.mark.parametrize("kw,msg", [
    (dict(tawq_table=np.array([[0, 2]])), r"tawq_table entries must be -1, 0 or 1"),
    (dict(weight=np.array([[0, 3]])), r"codes in \[0, 1\]"),
    (dict(weight=np.array([[-1, 0]])), r"codes in \[0, 1\]"),
    (dict(tawq_mult=np.array([[1, 1]])), r"tawq_mult must have shape \(T, channels\) = \(2, 1\)"),
    (dict(tawq_mult=np.array([[-1], [1]])), r"tawq_mult must be in \[0, 2\*\*32 - 1\]"),
    (dict(tawq_shift=25), r"tawq_shift must be in \[0, 24\]"),
    (dict(tawq_mult=None), r"needs tawq_mult"),
    (dict(tawq_table=None), r"give tawq_table too"),
    (dict(tawq_table=np.zeros((300, 2), np.int64)), r"n_codes in \[1, 256\]"),
])
def test_tawq_layer_validation(kw, msg):
    args = dict(weight=np.array([[0, 1]]), threshold=2, beta_num=1, beta_shift=0,
                tawq_table=np.array([[0, 1], [1, -1]]), tawq_mult=np.array([[3], [4]]),
                tawq_shift=1)
    args.update(kw)
    with pytest.raises(ValueError, match=msg):
        IntLayer(**args)


def test_tawq_network_refuses_mixed_timesteps():
    def tl(steps):
        return IntLayer(np.array([[0]]), 2, 1, 0, tawq_table=np.zeros((1, steps), np.int64),
                        tawq_mult=np.ones((steps, 1), np.int64))
    with pytest.raises(ValueError, match=r"different timestep counts \[3, 4\]"):
        IntNetwork((tl(3), tl(4)))
