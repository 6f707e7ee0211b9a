"""Training speed: qsnn-hw's NumPy trainer vs snnTorch, side by side in one run.

The snnTorch tutorial network (784-256-10 dense, Leaky beta 0.95, T=25, batch 128, Adam,
static input fed every timestep), one training step per batch (forward over T,
cross-entropy on output spike counts, BPTT, Adam step) for three state formats:
unquantized, 4-bit exponential states, 8-bit (uniform) states on both layers; both sides
use the same (snnTorch) level tables.

snnTorch is timed written two ways:

* ``hoisted`` -- the best way to write the same computation in snnTorch: the static
  input's current ``fc1(x)`` computed once, the second layer's currents one matrix
  product over all T (layer by layer, as qsnn-hw does), no bias (qsnn-hw's layers here
  have none);
* ``tutorial`` -- snnTorch tutorial 5 as written: ``fc1(x)`` recomputed at every
  timestep, both layers stepped together, ``nn.Linear`` with bias.

Both sides compute in float32 with the same number of threads (``OMP_NUM_THREADS``,
default 1 -- NumPy's BLAS and ``torch.set_num_threads``), the same optimizer (Adam,
lr 5e-4, PyTorch's defaults) and the same allocator settings: the trainer's
(:func:`qsnn_hw.train.memory.keep_freed_memory`, process-wide, so torch's arrays are
kept too; ``--system-malloc``: glibc's defaults). Prints the median ms/batch of each and the ratios
snnTorch / qsnn-hw. Random inputs and labels (timing only); the inputs are 8-bit pixels
(k/255), as MNIST's, so that a quantized qsnn-hw layer, which trains on its deployed
integer grid, sees inputs on it. snnTorch and torch are optional (``pip install -e
.[bench]``; on the project machines ``pip install torch==2.13.0`` uses a local CPU
wheel); without them only qsnn-hw is timed and the script says so.

    python bench/train_speed.py [--batches 10] [--warmup 2] [--modes unquantized 4-bit]
                                [--no-snntorch] [--system-malloc]

Convolutional networks: bench/train_speed_conv.py, built on this script's functions.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

# one BLAS thread unless told otherwise; read by OpenBLAS when NumPy is first imported
THREADS = int(os.environ.setdefault("OMP_NUM_THREADS", "1"))
os.environ.setdefault("OPENBLAS_NUM_THREADS", str(THREADS))

import numpy as np  # noqa: E402

from qsnn_hw.train.config import LayerConfig, TrainConfig  # noqa: E402
from qsnn_hw.train.losses import ce_count_loss  # noqa: E402
from qsnn_hw.train.memory import keep_freed_memory  # noqa: E402
from qsnn_hw.train.model import SNN  # noqa: E402
from qsnn_hw.train.optim import Adam  # noqa: E402
from qsnn_hw.train.surrogate import SpikeFunction  # noqa: E402

N_IN, N_HID, N_OUT, T, BATCH, BETA, LR = 784, 256, 10, 25, 128, 0.95, 5e-4

# name -> (qsnn-hw LayerConfig state fields, snnTorch state_quant kwargs or None)
MODES = {
    "unquantized": ({}, None),
    "4-bit exponential states": (dict(state_mode="squat", state_bits=4,
                                      state_family="snntorch_exponential"),
                                 dict(num_bits=4, uniform=False, threshold=1.0)),
    "8-bit states": (dict(state_mode="squat", state_bits=8, state_family="snntorch"),
                     dict(num_bits=8, uniform=True, threshold=1.0)),
}


def _median_ms(steps: list, batches: int, warmup: int) -> list:
    """Median ms per call of each step function, timed interleaved (one batch of each in
    turn) so that a change in machine load affects both sides alike."""
    for _ in range(warmup):
        for step in steps:
            step()
    times = [[] for _ in steps]
    for _ in range(batches):
        for step, tt in zip(steps, times, strict=True):
            t0 = time.perf_counter()
            step()
            tt.append((time.perf_counter() - t0) * 1e3)
    return [statistics.median(tt) for tt in times]


def random_batch(batch: int, n_in: int, n_out: int, input_bits: int = 8):
    """Random inputs of ``input_bits``-bit pixels (k / (2**bits - 1)) and labels (seed 0)."""
    rng = np.random.default_rng(0)
    top = (1 << input_bits) - 1
    x = (rng.integers(0, top + 1, (batch, n_in)) / top).astype(np.float32)
    return x, rng.integers(0, n_out, batch)


def qsnn_training_step(model: SNN, x: np.ndarray, y: np.ndarray, steps: int):
    """One qsnn-hw training step as the trainer takes it (forward over ``steps`` with
    training-time quantization and batch statistics, cross-entropy on the output spike
    counts, BPTT, Adam) -- without the trainer's gradient clipping and checks."""
    opt = Adam()

    def step():
        outs, caches = model.forward(x, steps, quant=True, keep=True, train=True)
        _, dc = ce_count_loss(outs[-1].sum(axis=0), y)
        grads = model.backward(caches, np.broadcast_to(dc, (steps,) + dc.shape))
        opt.step(model.params, grads, LR)

    return step


def qsnn_step(state: dict, x: np.ndarray, y: np.ndarray, with_model: bool = False):
    layers = [LayerConfig(N_HID, beta=BETA, **state), LayerConfig(N_OUT, beta=BETA, **state)]
    model = SNN(N_IN, layers, SpikeFunction("atan"), dtype=np.float32)
    model.set_deployment(TrainConfig(layers=tuple(layers), input_bits=8), 1 / 255)
    model.init_params(np.random.default_rng(0))
    step = qsnn_training_step(model, x, y, T)
    return (step, model) if with_model else step


def leaky_over_time(lif, currents):
    """An ``snn.Leaky`` run over the currents of every timestep (a sequence, or a tensor
    whose first axis is time): its spikes stacked ``(T, ...)``."""
    import torch
    mem = lif.init_leaky()
    spikes = []
    for cur in currents:
        spk, mem = lif(cur, mem)
        spikes.append(spk)
    return torch.stack(spikes)


def torch_training_step(net, x: np.ndarray, y: np.ndarray):
    """One snnTorch training step of ``net`` (returns output spikes ``(T, B, classes)``):
    snnTorch's cross-entropy on spike counts, BPTT, Adam (same lr and betas)."""
    import snntorch.functional as SF
    import torch
    opt = torch.optim.Adam(net.parameters(), lr=LR, betas=(0.9, 0.999))
    loss_fn = SF.ce_count_loss()
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)

    def step():
        loss = loss_fn(net(xt), yt)
        opt.zero_grad()
        loss.backward()
        opt.step()

    return step


def snntorch_step(sq_kwargs, x: np.ndarray, y: np.ndarray, hoisted: bool):
    """One snnTorch training step: ``hoisted`` (the input current once, layer by layer,
    no bias) or the tutorial's code (module docstring)."""
    import snntorch as snn
    import torch
    from snntorch.functional.quant import state_quant
    from torch import nn

    torch.manual_seed(0)
    sq = state_quant(**sq_kwargs) if sq_kwargs else False

    class Tutorial(nn.Module):  # snnTorch tutorial 5
        def __init__(self):
            super().__init__()
            self.fc1 = nn.Linear(N_IN, N_HID)
            self.lif1 = snn.Leaky(beta=BETA, state_quant=sq)
            self.fc2 = nn.Linear(N_HID, N_OUT)
            self.lif2 = snn.Leaky(beta=BETA, state_quant=sq)

        def forward(self, inp):
            mem1 = self.lif1.init_leaky()
            mem2 = self.lif2.init_leaky()
            spk_rec = []
            for _ in range(T):
                spk1, mem1 = self.lif1(self.fc1(inp), mem1)
                spk2, mem2 = self.lif2(self.fc2(spk1), mem2)
                spk_rec.append(spk2)
            return torch.stack(spk_rec)

    class Hoisted(nn.Module):  # the same network, each linear map once over all T
        def __init__(self):
            super().__init__()
            self.fc1 = nn.Linear(N_IN, N_HID, bias=False)
            self.lif1 = snn.Leaky(beta=BETA, state_quant=sq)
            self.fc2 = nn.Linear(N_HID, N_OUT, bias=False)
            self.lif2 = snn.Leaky(beta=BETA, state_quant=sq)

        def forward(self, inp):
            spk1 = leaky_over_time(self.lif1, [self.fc1(inp)] * T)   # static input: once
            return leaky_over_time(self.lif2, self.fc2(spk1))   # (T, B, N_OUT) in one product

    return torch_training_step(Hoisted() if hoisted else Tutorial(), x, y)


def common_arguments(ap: argparse.ArgumentParser) -> None:
    """The options every training-speed bench takes."""
    ap.add_argument("--batches", type=int, default=10, help="timed batches per mode")
    ap.add_argument("--warmup", type=int, default=2, help="untimed batches first")
    ap.add_argument("--modes", nargs="+", metavar="PREFIX", default=None,
                    help=f"time only the modes starting with these ({', '.join(MODES)}); "
                         f"8-bit states take snnTorch seconds per batch")
    ap.add_argument("--no-snntorch", action="store_true", help="time qsnn-hw only")
    ap.add_argument("--system-malloc", action="store_true",
                    help="leave glibc's allocator as it is (the trainer raises its "
                         "thresholds: qsnn_hw/train/memory.py)")


def setup(args) -> tuple[bool, bool, list]:
    """Allocator, threads and snnTorch as the options say: ``(freed memory kept, snnTorch
    timed, the modes to time)``; prints the versions (or why snnTorch is not timed)."""
    # as qsnn-hw's trainer does; process-wide, so torch's arrays are kept alike
    kept = False if args.system_malloc else keep_freed_memory()
    modes = [m for m in MODES if args.modes is None or any(m.startswith(p) for p in args.modes)]
    have_snntorch = not args.no_snntorch
    if have_snntorch:
        try:
            import snntorch  # noqa: F401
            import torch
            torch.set_num_threads(THREADS)
            print(f"snnTorch {snntorch.__version__}, torch {torch.__version__} "
                  f"({torch.get_num_threads()} threads)")
        except ImportError as exc:
            have_snntorch = False
            print(f"snnTorch is not installed ({exc}); timing qsnn-hw only. Install it with "
                  f"`pip install -e .[bench]` (torch: `pip install torch==2.13.0`).")
    return kept, have_snntorch, modes


def settings_line(network: str, steps: int, batch: int, args, kept: bool) -> str:
    return (f"NumPy {np.__version__} (OMP_NUM_THREADS={THREADS}); network "
            f"{network}, beta {BETA}, T={steps}, batch {batch}, Adam, float32; "
            f"median of {args.batches} batches after {args.warmup} warm-up; freed memory "
            f"{'kept (both sides)' if kept else 'returned to the system (malloc default)'}")


TABLE_HEADER = (f"{'mode':<26} {'qsnn-hw':>8} {'hoisted':>9} {'tutorial':>9} "
                f"{'hoisted/qsnn':>13} {'tutorial/qsnn':>14}   (ms/batch)")


def time_mode(name: str, steps: list, args) -> list:
    """Time ``steps`` (qsnn-hw, then snnTorch hoisted and tutorial if given) interleaved
    and print the mode's row; returns the medians (ms/batch)."""
    ms = _median_ms(steps, args.batches, args.warmup)
    if len(ms) == 3:
        print(f"{name:<26} {ms[0]:8.1f} {ms[1]:9.1f} {ms[2]:9.1f} {ms[1] / ms[0]:12.2f}x "
              f"{ms[2] / ms[0]:13.2f}x", flush=True)
    else:
        print(f"{name:<26} {ms[0]:8.1f} {'-':>9} {'-':>9} {'-':>13} {'-':>14}", flush=True)
    return ms


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    common_arguments(ap)
    args = ap.parse_args(argv)
    kept, have_snntorch, modes = setup(args)
    x, y = random_batch(BATCH, N_IN, N_OUT)
    print(settings_line(f"{N_IN}-{N_HID}-{N_OUT}", T, BATCH, args, kept))
    print(TABLE_HEADER)
    for name in modes:
        state, sq = MODES[name]
        steps = [qsnn_step(state, x, y)]
        if have_snntorch:
            steps += [snntorch_step(sq, x, y, hoisted=True),
                      snntorch_step(sq, x, y, hoisted=False)]
        time_mode(name, steps, args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
