"""Gateware throughput: measured cycles per timestep vs the cycle model, side by side.

For one-layer cores of several N, M, P and input spike densities, runs the core in
Amaranth's simulator (T timesteps, input always available) and prints, per row: the
measured steady-state cycles per timestep, the model ``E*G + G + L + 4 + 3*[E > 0]``, their
relative error, synaptic operations per cycle over the whole timestep and over the
accumulate phase alone (measured as the extra cycles the events add), and both as a
ratio to P. A last block runs multi-layer networks and compares whole-sample cycles
with :func:`qsnn_hw.hdl.cycles.network_cycles`.

    python bench/hw_cycles.py [--steps 6] [--quick]
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np

from qsnn_hw.golden import simulate
from qsnn_hw.hdl.config import CoreConfig
from qsnn_hw.hdl.cycles import layer_events, network_cycles, step_cycles
from qsnn_hw.hdl.geometry import network_geometry
from qsnn_hw.testing import random_inputs, random_network
from qsnn_hw.verify.amaranth import run_core

LAYER_CASES = [  # (M, N, P, density)
    (64, 32, 1, 0.1), (64, 32, 4, 0.1), (64, 32, 8, 0.1), (64, 32, 16, 0.1),
    (64, 32, 8, 0.5), (64, 32, 8, 1.0), (64, 30, 8, 0.3), (128, 100, 16, 0.2),
    (256, 64, 16, 0.05), (64, 10, 16, 0.3),
]
NETWORK_CASES = [([64, 32, 10], [4, 2]), ([64, 64, 10], [8, 2]), ([100, 50, 50, 10], [8, 8, 2])]


def steady_steps(net, x, lanes):
    run = run_core(net, x, CoreConfig(lanes=lanes))
    return float(np.mean(np.diff(run.step_cycles[0][0])))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=6, help="timesteps per run (default 6)")
    ap.add_argument("--quick", action="store_true", help="first four layer cases only")
    args = ap.parse_args(argv)
    warnings.simplefilter("ignore")
    start = time.perf_counter()
    cases = LAYER_CASES[:4] if args.quick else LAYER_CASES
    print(f"{'M':>4} {'N':>4} {'P':>3} {'dens':>5} {'E':>4} {'meas':>7} {'model':>7} {'err%':>6} "
          f"{'ops/cyc':>8} {'/P':>5} {'acc ops/cyc':>11} {'/P':>5}")
    for m, n, p, dens in cases:
        rng = np.random.default_rng(m * 1000 + n * 10 + p)
        net = random_network(rng, sizes=[m, n], input_bits=1, state_bits=4)
        events = int(round(dens * m))
        x = np.zeros((1, args.steps, m), np.int64)
        x[:, :, rng.permutation(m)[:events]] = 1
        meas = steady_steps(net, x, p)
        idle = steady_steps(net, np.zeros_like(x), p)
        model = float(step_cycles(events, network_geometry(net, CoreConfig(lanes=p))[0]))
        ops = events * n
        acc = ops / (meas - idle) if meas > idle else float("nan")
        print(f"{m:>4} {n:>4} {p:>3} {dens:>5.2f} {events:>4} {meas:>7.1f} {model:>7.1f} "
              f"{100 * (meas - model) / model:>6.2f} {ops / meas:>8.2f} {ops / meas / p:>5.2f} "
              f"{acc:>11.2f} {acc / p:>5.2f}")
    if not args.quick:
        print()
        print(f"{'sizes':>18} {'lanes':>10} {'meas/sample':>12} {'model':>8} {'err%':>6}")
        for sizes, lanes in NETWORK_CASES:
            rng = np.random.default_rng(len(sizes) * 7 + sum(sizes))
            net = random_network(rng, sizes=sizes, input_bits=1, state_bits=4)
            x = random_inputs(rng, net, 2, args.steps, 0.2)
            run = run_core(net, x, CoreConfig(lanes=lanes))
            gold = simulate(net, x)
            model = network_cycles(layer_events(net, x, gold.spikes),
                                   network_geometry(net, CoreConfig(lanes=lanes)))
            meas = float(run.sample_cycles.mean())
            print(f"{str(sizes):>18} {str(lanes):>10} {meas:>12.1f} {model.mean():>8.1f} "
                  f"{100 * (meas - model.mean()) / model.mean():>6.2f}")
    print(f"({time.perf_counter() - start:.1f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
