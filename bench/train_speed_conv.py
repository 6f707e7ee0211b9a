"""Training speed of a convolutional SNN: qsnn-hw's NumPy trainer vs snnTorch on the same
architecture, side by side in one run (issue 13).

bench/train_speed.py's method and settings (one training step per batch: forward over
T, cross-entropy on output spike counts, BPTT, Adam; one thread per side, float32, the
same allocator, batches of each side interleaved, medians; unquantized, 4-bit
exponential and 8-bit states on every layer with snnTorch's level tables; random 8-bit
-- or the dataset's -- pixels, static input every timestep) on a network given as an
``--arch`` string (qsnn_hw/train/arch.py). Two are built in (``--net``):

* ``digits``: ``16c3p1b-32c3p1s2b-10`` on 1x8x8 inputs of 4 bits (the digits direct
  encoding), T = 16 (the trainer's default), batch 128;
* ``fmnist``: the SQUAT paper's Fashion-MNIST network ``16c5b-mp2-64c5b-mp2-10`` on
  1x28x28 inputs of 8 bits, T = 25, batch 128 (``--batch`` to shrink it).

The snnTorch network is the same architecture, built from the same ``--arch`` layers:
``nn.Conv2d`` (same channels, kernel, stride, zero padding), ``nn.BatchNorm2d`` on the
current where the spec has ``b`` (``nn.BatchNorm1d`` on a dense one), ``snn.Leaky``
(same beta, threshold 1, subtract reset, arctan surrogate, ``state_quant`` as
train_speed.py), ``nn.MaxPool2d`` on the spikes after the LIF (``mp<K>``), flattened
channel-major into ``nn.Linear``. Weights are PyTorch's defaults (qsnn-hw initializes
alike). It is timed written two ways:

* ``hoisted`` -- as well as snnTorch allows: the static input's first convolution (and
  its batch norm) computed once and fed at every timestep, each later layer one
  convolution / product over all T timesteps at once (layer by layer, as qsnn-hw
  runs), no bias (qsnn-hw's layers have none: a batch-normalized layer's shift is BN's);
* ``tutorial`` -- the way snnTorch's tutorials write a network: one loop over
  timesteps, every layer stepped in it (the first convolution recomputed at each step,
  batch norm on each step's current), PyTorch's default biases.

With the same weights, unquantized, both sides give the same spikes, loss and weight
gradients (tests/test_bench_train_speed.py), except through max pooling, whose backward
differs by design: qsnn-hw routes a window's gradient to its highest membrane
(docs/training.md), ``nn.MaxPool2d`` to its first spike -- the same amount of work. In
training mode both sides normalize a float layer's current with the batch's statistics;
a qsnn-hw layer trained on its deployed grid (the 4- and 8-bit modes) uses the folded
running statistics instead (docs/training.md), snnTorch still the batch's.

    python bench/train_speed_conv.py [--net digits fmnist] [--arch SPEC --image C,H,W
        --timesteps T --input-bits B] [--batch 128] [--batches 10] [--warmup 2]
        [--modes unquantized 4-bit] [--no-snntorch] [--system-malloc]
"""

from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from train_speed import (  # noqa: E402  (sets the thread count before NumPy loads)
    BETA,
    MODES,
    TABLE_HEADER,
    common_arguments,
    leaky_over_time,
    qsnn_training_step,
    random_batch,
    settings_line,
    setup,
    time_mode,
    torch_training_step,
)

# isort: split
import numpy as np  # noqa: E402

from qsnn_hw.train.arch import geometry, parse_arch  # noqa: E402
from qsnn_hw.train.config import LayerConfig, TrainConfig  # noqa: E402
from qsnn_hw.train.model import SNN  # noqa: E402
from qsnn_hw.train.surrogate import SpikeFunction  # noqa: E402

# name -> (arch, image (C, H, W), T, input bits)
NETS = {
    "digits": ("16c3p1b-32c3p1s2b-10", (1, 8, 8), 16, 4),
    "fmnist": ("16c5b-mp2-64c5b-mp2-10", (1, 28, 28), 25, 8),
}
BATCH = 128


def layer_configs(arch: str, state: dict) -> tuple:
    """The qsnn-hw layers of ``arch`` with the bench's beta and a mode's state fields."""
    return tuple(LayerConfig(beta=BETA, **shape, **state) for shape in parse_arch(arch))


def qsnn_model(arch: str, image: tuple, state: dict, input_bits: int) -> SNN:
    layers = layer_configs(arch, state)
    model = SNN(int(np.prod(image)), layers, SpikeFunction("atan"), dtype=np.float32,
                in_shape=image)
    model.set_deployment(TrainConfig(layers=layers, input_bits=input_bits),
                         1 / ((1 << input_bits) - 1))
    model.init_params(np.random.default_rng(0))
    return model


def qsnn_step(arch, image, steps, state, x, y, input_bits):
    return qsnn_training_step(qsnn_model(arch, image, state, input_bits), x, y, steps)


def snntorch_net(arch: str, image: tuple, steps: int, sq_kwargs, hoisted: bool):
    """The snnTorch network of ``arch`` (module docstring): ``hoisted`` or tutorial-style.
    Its forward takes flat images ``(B, C*H*W)`` and returns output spikes
    ``(T, B, classes)``."""
    import snntorch as snn
    import torch
    from snntorch.functional.quant import state_quant
    from torch import nn

    torch.manual_seed(0)
    sq = state_quant(**sq_kwargs) if sq_kwargs else False
    layers = layer_configs(arch, {})
    geos = geometry(layers, int(np.prod(image)), image)

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.ops, self.bns = nn.ModuleList(), nn.ModuleList()
            self.lifs, self.pools = nn.ModuleList(), nn.ModuleList()
            for lc, geo in zip(layers, geos, strict=True):
                if lc.is_conv:
                    self.ops.append(nn.Conv2d(geo.in_shape[0], lc.size, lc.kernel, lc.stride,
                                              lc.padding, bias=not hoisted))
                    bn = nn.BatchNorm2d(lc.size) if lc.batch_norm else nn.Identity()
                else:
                    self.ops.append(nn.Linear(geo.n_in, lc.size, bias=not hoisted))
                    bn = nn.BatchNorm1d(lc.size) if lc.batch_norm else nn.Identity()
                self.bns.append(bn)
                self.lifs.append(snn.Leaky(beta=BETA, state_quant=sq))
                self.pools.append(nn.MaxPool2d(lc.pool) if lc.pool > 1 else nn.Identity())

        def layer_input(self, i, h):
            """Layer ``i``'s input from the previous layer's output (or the flat image)."""
            if layers[i].is_conv:
                return h.reshape(h.shape[0], *geos[i].in_shape)
            return h.flatten(1)

        def forward(self, inp):
            return self.by_layer(inp) if hoisted else self.by_step(inp)

        def by_layer(self, inp):
            h = None
            for i, (op, bn, lif, pool) in enumerate(zip(self.ops, self.bns, self.lifs,
                                                        self.pools, strict=True)):
                if i == 0:            # the static input: one current for every timestep
                    spk = leaky_over_time(lif, [bn(op(self.layer_input(0, inp)))] * steps)
                else:                 # all T timesteps in one operation
                    cur = bn(op(self.layer_input(i, h.flatten(0, 1))))
                    spk = leaky_over_time(lif, cur.reshape(steps, -1, *cur.shape[1:]))
                h = pool(spk.flatten(0, 1)).reshape(steps, *spk.shape[1:2], -1)
            return h

        def by_step(self, inp):
            mems = [lif.init_leaky() for lif in self.lifs]
            out = []
            for _ in range(steps):
                h = inp
                for i, (op, bn, lif, pool) in enumerate(zip(self.ops, self.bns, self.lifs,
                                                            self.pools, strict=True)):
                    spk, mems[i] = lif(bn(op(self.layer_input(i, h))), mems[i])
                    h = pool(spk)
                out.append(h)
            return torch.stack(out)

    return Net()


def snntorch_step(arch, image, steps, sq_kwargs, x, y, hoisted: bool):
    return torch_training_step(snntorch_net(arch, image, steps, sq_kwargs, hoisted), x, y)


def _image(text: str) -> tuple:
    try:
        shape = tuple(int(v) for v in text.lower().replace("x", ",").split(","))
    except ValueError:
        shape = ()
    if len(shape) != 3 or min(shape) < 1:
        raise argparse.ArgumentTypeError(f"--image must be C,H,W (three positive integers), "
                                         f"got {text!r}")
    return shape


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {value}")
    return value


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--net", nargs="+", choices=list(NETS), default=list(NETS),
                    help="built-in networks to time (default: both)")
    ap.add_argument("--arch", default=None,
                    help="time this --arch network instead (with --image, --timesteps, "
                         "--input-bits)")
    ap.add_argument("--image", type=_image, default=(1, 8, 8), help="C,H,W (with --arch)")
    ap.add_argument("--timesteps", type=_positive, default=16, help="T (with --arch)")
    ap.add_argument("--input-bits", type=int, choices=range(1, 9), default=8,
                    metavar="1..8", help="pixel bits (with --arch)")
    ap.add_argument("--batch", type=_positive, default=BATCH, help="batch size")
    common_arguments(ap)
    args = ap.parse_args(argv)
    nets = ({args.arch: (args.arch, args.image, args.timesteps, args.input_bits)}
            if args.arch else {n: NETS[n] for n in args.net})
    for arch, image, _, _ in nets.values():   # a bad spec fails before anything is timed
        geometry(layer_configs(arch, {}), int(np.prod(image)), image)
    kept, have_snntorch, modes = setup(args)
    for arch, image, steps, bits in nets.values():
        n_out = parse_arch(arch)[-1]["size"]
        x, y = random_batch(args.batch, int(np.prod(image)), n_out, bits)
        print()
        print(settings_line(f"{arch} on {'x'.join(map(str, image))} ({bits}-bit pixels)",
                            steps, args.batch, args, kept))
        print(TABLE_HEADER)
        for name in modes:
            state, sq = MODES[name]
            timed = [qsnn_step(arch, image, steps, state, x, y, bits)]
            if have_snntorch:
                timed += [snntorch_step(arch, image, steps, sq, x, y, hoisted=True),
                          snntorch_step(arch, image, steps, sq, x, y, hoisted=False)]
            time_mode(name, timed, args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
