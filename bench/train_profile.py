"""Where a qsnn-hw training batch spends its time: bench/train_speed.py's network
(784-256-10, T = 25, batch 128, one thread) or one of bench/train_speed_conv.py's
(``--net digits|fmnist``), profiled with cProfile and split into phases by the functions
that own them.

    python bench/train_profile.py [--batches 20] [--modes unquantized 4-bit] [--cpu]
                                  [--net dense|digits|fmnist] [--batch B]

Phases (ms per batch, cumulative time of the owning functions):

* ``currents``: the layers' linear operations forward (``Dense.current`` /
  ``Conv2d.current``, the exact integer product ``int_current`` of a layer on its
  deployed grid; a convolution's receptive fields gathered (im2col) included);
* ``deploy``: the layers' integer contract recomputed from the parameters at every
  batch (``SNN.grid``, layers trained on their deployed grid only);
* ``recurrence``: the rest of the layers' forward pass -- the LIF steps over T, input and
  integer conversions, the cache;
* ``surrogate``: the surrogate derivative (``SpikeFunction``);
* ``loss``: cross-entropy on the spike counts;
* ``backward recurrence``: BPTT through the LIF steps (``LIFLayer.backward`` less the
  linear operations' backward);
* ``gradients``: the linear operations backward (weight and input gradients; a
  convolution's im2col and scatter-add of the input gradient included);
* ``optimizer``: Adam;
* conv networks only: ``pooling`` (``MaxPool``: forward, the routes of the gradient and
  its backward; taken out of the recurrences) and ``batch norm`` (training-mode batch
  normalization of a float layer's current, ``LIFLayer._batch_norm``).

cProfile adds a little to every Python-level call; the median without the profiler is
printed last. Timings are noisy on a loaded machine (they never gate a test): ``--cpu``
times both with this thread's CPU time instead of the wall clock, which excludes the
time other processes hold the core (not their effect on caches).
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import statistics
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", os.environ["OMP_NUM_THREADS"])

import numpy as np  # noqa: E402
from train_speed import BATCH, MODES, N_IN, N_OUT, qsnn_step, random_batch  # noqa: E402
from train_speed_conv import NETS  # noqa: E402
from train_speed_conv import qsnn_step as conv_step  # noqa: E402

from qsnn_hw.train.linear import MaxPool  # noqa: E402
from qsnn_hw.train.model import LIFLayer  # noqa: E402

try:   # what the trainer does (qsnn_hw/train/memory.py); absent before it existed
    from qsnn_hw.train.memory import keep_freed_memory
except ImportError:
    keep_freed_memory = None

PHASES = ("currents", "deploy", "recurrence", "surrogate", "loss", "backward recurrence",
          "gradients", "optimizer")
CONV_PHASES = ("pooling", "batch norm")


def _cum(stats: dict, file_end: str, name: str) -> float:
    """Cumulative seconds of every function ``name`` defined in a file ending ``file_end``."""
    return sum(v[3] for (f, _, n), v in stats.items() if f.endswith(file_end) and n == name)


def _called_from(stats: dict, file_end: str, name: str, caller: str) -> float:
    """Cumulative seconds of ``name`` (in ``file_end``) when called by ``caller``."""
    total = 0.0
    for (f, _, n), v in stats.items():
        if f.endswith(file_end) and n == name:
            total += sum(c[3] for (_, _, cn), c in v[4].items() if cn == caller)
    return total


def _cum_fn(stats: dict, fn) -> float:
    """Cumulative seconds of the function (or method) ``fn``."""
    code = fn.__code__
    return sum(v[3] for (f, line, n), v in stats.items()
               if f == code.co_filename and line == code.co_firstlineno and n == code.co_name)


def phases(stats: dict, batches: int, conv: bool = False) -> dict:
    lin, mod, sur = "train/linear.py", "train/model.py", "train/surrogate.py"
    currents = _cum(stats, lin, "current") + _cum(stats, lin, "int_current")
    surrogate = _cum(stats, sur, "__call__") + _cum(stats, sur, "derivative") \
        - _called_from(stats, sur, "derivative", "__call__")
    pool_fwd = _cum_fn(stats, MaxPool.forward) + _cum_fn(stats, MaxPool.route)
    pool_bwd = _cum_fn(stats, MaxPool.backward)
    grads = _cum(stats, lin, "backward") - pool_bwd
    bn = _cum_fn(stats, LIFLayer._batch_norm)
    out = {
        "currents": currents,
        "deploy": _cum(stats, mod, "grid"),
        "recurrence": _cum_layer(stats, "forward") - currents - surrogate - pool_fwd - bn,
        "surrogate": surrogate,
        "loss": _cum(stats, "train/losses.py", "ce_count_loss"),
        "backward recurrence": _cum_layer(stats, "backward") - grads - pool_bwd,
        "gradients": grads,
        "optimizer": _cum(stats, "train/optim.py", "step"),
    }
    if conv:
        out |= {"pooling": pool_fwd + pool_bwd, "batch norm": bn}
    return {k: v * 1e3 / batches for k, v in out.items()}


def _cum_layer(stats: dict, name: str) -> float:
    """``LIFLayer.<name>``'s cumulative time (``SNN`` has methods of the same names: the
    layer's are the ones ``SNN``'s call)."""
    return _called_from(stats, "train/model.py", name, name)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batches", type=int, default=20, help="batches timed and profiled")
    ap.add_argument("--modes", nargs="+", metavar="PREFIX", default=["unquantized", "4-bit"],
                    help=f"modes starting with these ({', '.join(MODES)})")
    ap.add_argument("--cpu", action="store_true",
                    help="this thread's CPU time instead of the wall clock")
    ap.add_argument("--net", choices=["dense", *NETS], default="dense",
                    help="train_speed.py's dense network (default) or a conv network of "
                         "train_speed_conv.py")
    ap.add_argument("--batch", type=int, default=BATCH, help="batch size (conv networks)")
    args = ap.parse_args(argv)
    clock = time.thread_time if args.cpu else time.perf_counter
    kept = keep_freed_memory() if keep_freed_memory is not None else False
    conv = args.net != "dense"
    if conv:
        arch, image, steps, bits = NETS[args.net]
        x, y = random_batch(args.batch, int(np.prod(image)), 10, bits)

        def make_step(state):
            return conv_step(arch, image, steps, state, x, y, bits)
        print(f"{arch} on {'x'.join(map(str, image))}, T={steps}, batch {args.batch}")
    else:
        x, y = random_batch(BATCH, N_IN, N_OUT)

        def make_step(state):
            return qsnn_step(state, x, y)
    print(f"OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']}, freed memory "
          f"{'kept' if kept else 'returned to the system'}; ms per batch "
          f"({'thread CPU time' if args.cpu else 'wall clock'})")
    modes = [m for m in MODES if any(m.startswith(p) for p in args.modes)]
    print(f"{'phase':<28}" + "".join(f"{m[:24]:>26}" for m in modes))
    rows: dict = {}
    for mode in modes:
        step = make_step(MODES[mode][0])
        for _ in range(3):
            step()
        wall = []
        for _ in range(args.batches):
            t0 = clock()
            step()
            wall.append((clock() - t0) * 1e3)
        prof = cProfile.Profile(clock)
        prof.enable()
        for _ in range(args.batches):
            step()
        prof.disable()
        stats = pstats.Stats(prof).stats
        col = phases(stats, args.batches, conv)
        col["total (profiled)"] = _cum(stats, "bench/train_speed.py", "step") * 1e3 / args.batches
        col["median (not profiled)"] = statistics.median(wall)
        for k, v in col.items():
            rows.setdefault(k, []).append(v)
    for k, vals in rows.items():
        print(f"{k:<28}" + "".join(f"{v:26.2f}" for v in vals))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
