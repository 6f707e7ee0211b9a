"""Where a qsnn-hw training batch spends its time: bench/train_speed.py's network
(784-256-10, T = 25, batch 128, one thread), profiled with cProfile and split into phases
by the functions that own them.

    python bench/train_profile.py [--batches 20] [--modes unquantized 4-bit] [--cpu]

Phases (ms per batch, cumulative time of the owning functions):

* ``currents``: the layers' linear operations forward (``Dense.current``, the exact
  integer product ``int_matmul`` of a layer on its deployed grid);
* ``deploy``: the layers' integer contract recomputed from the parameters at every
  batch (``SNN.grid``, layers trained on their deployed grid only);
* ``recurrence``: the rest of the layers' forward pass -- the LIF steps over T, input and
  integer conversions, the cache;
* ``surrogate``: the surrogate derivative (``SpikeFunction``);
* ``loss``: cross-entropy on the spike counts;
* ``backward recurrence``: BPTT through the LIF steps (``LIFLayer.backward`` less the
  linear operations' backward);
* ``gradients``: the linear operations backward (weight and input gradients);
* ``optimizer``: Adam.

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
from train_speed import BATCH, MODES, N_IN, N_OUT, qsnn_step  # noqa: E402

try:   # what the trainer does (qsnn_hw/train/memory.py); absent before it existed
    from qsnn_hw.train.memory import keep_freed_memory
except ImportError:
    keep_freed_memory = None

PHASES = ("currents", "deploy", "recurrence", "surrogate", "loss", "backward recurrence",
          "gradients", "optimizer")


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


def phases(stats: dict, batches: int) -> dict:
    lin, mod, sur = "train/linear.py", "train/model.py", "train/surrogate.py"
    currents = _cum(stats, lin, "current") + _cum(stats, lin, "int_matmul")
    surrogate = _cum(stats, sur, "__call__") + _cum(stats, sur, "derivative") \
        - _called_from(stats, sur, "derivative", "__call__")
    grads = _cum(stats, lin, "backward")
    out = {
        "currents": currents,
        "deploy": _cum(stats, mod, "grid"),
        "recurrence": _cum_layer(stats, "forward") - currents - surrogate,
        "surrogate": surrogate,
        "loss": _cum(stats, "train/losses.py", "ce_count_loss"),
        "backward recurrence": _cum_layer(stats, "backward") - grads,
        "gradients": grads,
        "optimizer": _cum(stats, "train/optim.py", "step"),
    }
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
    args = ap.parse_args(argv)
    clock = time.thread_time if args.cpu else time.perf_counter
    kept = keep_freed_memory() if keep_freed_memory is not None else False
    rng = np.random.default_rng(0)
    x = (rng.integers(0, 256, (BATCH, N_IN)) / 255).astype(np.float32)
    y = rng.integers(0, N_OUT, BATCH)
    print(f"OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']}, freed memory "
          f"{'kept' if kept else 'returned to the system'}; ms per batch "
          f"({'thread CPU time' if args.cpu else 'wall clock'})")
    modes = [m for m in MODES if any(m.startswith(p) for p in args.modes)]
    print(f"{'phase':<28}" + "".join(f"{m[:24]:>26}" for m in modes))
    rows: dict = {}
    for mode in modes:
        step = qsnn_step(MODES[mode][0], x, y)
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
        col = phases(stats, args.batches)
        col["total (profiled)"] = _cum(stats, "bench/train_speed.py", "step") * 1e3 / args.batches
        col["median (not profiled)"] = statistics.median(wall)
        for k, v in col.items():
            rows.setdefault(k, []).append(v)
    for k, vals in rows.items():
        print(f"{k:<28}" + "".join(f"{v:26.2f}" for v in vals))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
