"""Gateware cycles per timestep against the cycle model, side by side.

For one-layer cores of several N, M, P, input spike densities and accumulator banks,
runs the core in Amaranth's simulator (T timesteps, input always available) and prints,
per row: the measured steady-state cycles per timestep, the cycle model's
(:func:`qsnn_hw.hdl.cycles.schedule`), synaptic operations per cycle over the whole
timestep and as a ratio to P. With two banks the update overlaps the next timestep's
accumulation, so a timestep costs max(E*G + 1, G + 2) cycles rather than their sum. A
last block runs multi-layer networks and compares whole-sample cycles with the model.

    python bench/hw_cycles.py [--steps 6] [--quick]
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np

from qsnn_hw.golden import simulate
from qsnn_hw.hdl.config import CoreConfig
from qsnn_hw.hdl.cycles import schedule
from qsnn_hw.hdl.geometry import network_geometry
from qsnn_hw.testing import random_inputs, random_network
from qsnn_hw.verify.amaranth import run_core

LAYER_CASES = [  # (M, N, P, density)
    (64, 32, 1, 0.1), (64, 32, 8, 0.1), (64, 32, 16, 0.1), (64, 32, 8, 0.5),
    (64, 30, 8, 0.3), (128, 100, 16, 0.2), (256, 64, 16, 0.05),
]
NETWORK_CASES = [([64, 32, 10], [4, 2]), ([64, 64, 10], [8, 2]), ([100, 50, 50, 10], [8, 8, 2])]


def steady(net, x, config):
    """Measured and modelled cycles of the last timestep (steady state)."""
    run = run_core(net, x, config)
    model = schedule(net, x, simulate(net, x).spikes, network_geometry(net, config),
                     starts=run.start_cycles)
    return (float(np.diff(run.step_cycles[0][0])[-1]),
            float(np.diff(model["step_ends"][0][0])[-1]))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=6, help="timesteps per run (default 6)")
    ap.add_argument("--quick", action="store_true", help="first three layer cases only")
    args = ap.parse_args(argv)
    warnings.simplefilter("ignore")
    start = time.perf_counter()
    cases = LAYER_CASES[:3] if args.quick else LAYER_CASES
    print(f"{'M':>4} {'N':>4} {'P':>3} {'dens':>5} {'E':>4} {'banks':>5} {'meas':>6} "
          f"{'model':>6} {'ops/cyc':>8} {'/P':>5}")
    for m, n, p, dens in cases:
        rng = np.random.default_rng(m * 1000 + n * 10 + p)
        net = random_network(rng, sizes=[m, n], input_bits=1, state_bits=4)
        events = int(round(dens * m))
        x = np.zeros((1, args.steps, m), np.int64)
        x[:, :, rng.permutation(m)[:events]] = 1
        for acc in ("single", "double"):
            meas, model = steady(net, x, CoreConfig(lanes=p, accumulators=acc))
            ops = events * n
            print(f"{m:>4} {n:>4} {p:>3} {dens:>5.2f} {events:>4} {acc:>6} {meas:>6.0f} "
                  f"{model:>6.0f} {ops / meas:>8.2f} {ops / meas / p:>5.2f}")
    if not args.quick:
        print()
        print(f"{'sizes':>18} {'lanes':>10} {'meas/sample':>12} {'model':>8}")
        for sizes, lanes in NETWORK_CASES:
            rng = np.random.default_rng(len(sizes) * 7 + sum(sizes))
            net = random_network(rng, sizes=sizes, input_bits=1, state_bits=4)
            x = random_inputs(rng, net, 2, args.steps, 0.2)
            config = CoreConfig(lanes=lanes)
            run = run_core(net, x, config)
            model = schedule(net, x, simulate(net, x).spikes, network_geometry(net, config),
                             starts=run.start_cycles)["sample_cycles"]
            print(f"{str(sizes):>18} {str(lanes):>10} {run.sample_cycles.mean():>12.1f} "
                  f"{model.mean():>8.1f}")
    print(f"({time.perf_counter() - start:.1f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
