"""The training-speed benches (bench/train_speed.py, bench/train_speed_conv.py) run, and
the conv bench's snnTorch network is the qsnn-hw network it is timed against: with the
same weights (float32, unquantized, batch norm on batch statistics) both give the same
output spikes, the same loss and the same weight gradients (but through max pooling,
whose backward differs by design), and the tutorial-style variant computes what the
hoisted one does (needs torch and snnTorch, the ``bench`` extra: skipped without).
Timings are printed, never asserted."""

import importlib.util
import os
from pathlib import Path

import numpy as np
import pytest

from qsnn_hw.train.losses import ce_count_loss

BENCH = Path(__file__).resolve().parents[1] / "bench"


def _load(name: str):
    """A bench script as a module (it sets OMP_NUM_THREADS for its own process only:
    the environment is restored)."""
    env = dict(os.environ)
    try:
        spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCH / f"{name}.py")
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
    finally:
        os.environ.clear()
        os.environ.update(env)
    return mod


@pytest.fixture(scope="module")
def conv():
    return _load("train_speed_conv")


TINY = ["--batch", "4", "--batches", "1", "--warmup", "0", "--no-snntorch"]


def test_conv_bench_times_qsnn_alone(conv, capsys):
    assert conv.main(["--arch", "4c3p1b-mp2-6c3s2-5", "--image", "1,8,8", "--timesteps", "3",
                      "--modes", "unq", "4", *TINY]) == 0
    out = capsys.readouterr().out
    assert "4c3p1b-mp2-6c3s2-5 on 1x8x8 (8-bit pixels)" in out and "T=3, batch 4" in out
    rows = [line.split() for line in out.splitlines() if line.startswith(("unq", "4-bit"))]
    assert [r[0] for r in rows] == ["unquantized", "4-bit"]
    assert all(float(r[-5]) > 0 and r[-4:] == ["-"] * 4 for r in rows)


def test_conv_bench_refuses_a_bad_network_before_timing(conv, capsys):
    with pytest.raises(ValueError, match="kernel 5x5 does not fit"):
        conv.main(["--arch", "4c5-10", "--image", "1,4,4", *TINY])
    with pytest.raises(SystemExit):
        conv.main(["--image", "1,8", *TINY])
    assert "--image must be C,H,W" in capsys.readouterr().err


def test_dense_bench_times_qsnn_alone(capsys):
    dense = _load("train_speed")
    assert dense.main(["--batches", "1", "--warmup", "0", "--no-snntorch", "--modes", "4"]) == 0
    out = capsys.readouterr().out
    assert "network 784-256-10, beta 0.95, T=25, batch 128" in out
    assert out.splitlines()[-1].startswith("4-bit exponential states")


def _copy_weights(model, net, bias: bool):
    """qsnn-hw's parameters into the snnTorch network (its biases zeroed)."""
    import torch
    with torch.no_grad():
        for i, layer in enumerate(model.layers):
            net.ops[i].weight.copy_(torch.from_numpy(model.params[layer.key("weight")]))
            if bias:
                net.ops[i].bias.zero_()
            if layer.cfg.batch_norm:
                net.bns[i].weight.copy_(torch.from_numpy(model.params[layer.key("bn_weight")]))
                net.bns[i].bias.copy_(torch.from_numpy(model.params[layer.key("bn_bias")]))


@pytest.mark.parametrize("arch, image, seed", [
    ("16c3p1b-32c3p1s2b-10", (1, 8, 8), 0),     # the digits bench network
    ("3c5b-mp2-4c3p1b-mp2-7b-5", (2, 13, 12), 1),  # pooling, odd sizes, a BN dense layer
])
def test_snntorch_network_is_the_qsnn_network(conv, arch, image, seed):
    pytest.importorskip("snntorch")
    import snntorch.functional as SF
    import torch

    steps, batch = 6, 8
    rng = np.random.default_rng(seed)
    x = (rng.integers(0, 256, (batch, int(np.prod(image)))) / 255).astype(np.float32)
    y = rng.integers(0, 5, batch)
    model = conv.qsnn_model(arch, image, {}, 8)
    for k, v in model.params.items():
        if k.endswith(".weight"):        # enough current for spikes in every layer
            v = v * 3
        elif k.endswith(("bn_weight", "bn_bias")):   # BN's affine part not the identity
            v = (rng.uniform(0.5, 1.5, v.shape) - 0.5 * k.endswith("bn_bias")).astype(v.dtype)
        model.params[k] = v
    outs, caches = model.forward(x, steps, quant=True, keep=True, train=True)
    counts = outs[-1].sum(axis=0)
    assert 0 < counts.mean() < steps, "the comparison needs spikes, not silence or saturation"
    loss, dc = ce_count_loss(counts, y)
    grads = model.backward(caches, np.broadcast_to(dc, (steps,) + dc.shape))

    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    net = conv.snntorch_net(arch, image, steps, None, hoisted=True)
    _copy_weights(model, net, bias=False)
    out = net(xt)
    assert np.array_equal(out.detach().numpy(), outs[-1])
    t_loss = SF.ce_count_loss()(out, yt)
    assert float(t_loss.detach()) == pytest.approx(loss, rel=1e-6)
    t_loss.backward()
    # max pooling's backward differs by design: qsnn-hw sends a window's gradient to its
    # highest membrane (docs/training.md), nn.MaxPool2d to its first spike; the weight
    # gradients agree in the layers with no pooling at or above them
    compared = 0
    for i, layer in enumerate(model.layers):
        if any(later.cfg.pool > 1 for later in model.layers[i:]):
            continue
        compared += 1
        np.testing.assert_allclose(net.ops[i].weight.grad.numpy(), grads[layer.key("weight")],
                                   rtol=1e-4, atol=1e-6)
        if layer.cfg.batch_norm:
            np.testing.assert_allclose(net.bns[i].weight.grad.numpy(),
                                       grads[layer.key("bn_weight")], rtol=1e-4, atol=1e-6)
    assert compared >= 2

    # the tutorial-style network computes the same function step by step (eval mode:
    # its batch norm normalizes each timestep's current with the running statistics,
    # the hoisted one all of them at once)
    net = conv.snntorch_net(arch, image, steps, None, hoisted=True)
    tut = conv.snntorch_net(arch, image, steps, None, hoisted=False)
    _copy_weights(model, net, bias=False)
    _copy_weights(model, tut, bias=True)
    net.eval()
    tut.eval()
    with torch.no_grad():
        assert torch.equal(tut(xt), net(xt))
