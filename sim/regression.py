"""Seeded random core configurations for the RTL regression (``tests/test_sim_core.py``).

The space is the generator sweep's (``tests/test_hdl_top.py``): weight bits 2..16, state
bits 2..8 and unquantized, every level family, the three resets (subtract, zero, clear) and
both rest states (the level nearest 0, exactly 0), lanes 1..16 per layer (N not
a multiple of P included), spike and direct input (2..8 bits), input densities 0, 1 and
in between; categories cycle with the seed so any 16 consecutive seeds cover every state
width, family, reset and input kind. On top: several samples back to back (the per-sample
reset), long samples (T up to 64) and, every sixteenth seed, wide layers (60-120 neurons).
The core configurations ``synth`` builds cycle with the seed too (:data:`CORE_KINDS`):
default, minimal FIFOs, RAM weights, SPRAM weights (SB_SPRAM256KA with Yosys' cell
model) and the pipelined quantizer. Same seed, same configuration (network, inputs, core
configuration and back-pressure).

Run it: ``python -m sim.regression --sim icarus --configs 50 [--seed 0]``.
"""

from __future__ import annotations

import numpy as np

from qsnn_hw.hdl.config import CoreConfig
from qsnn_hw.testing import input_schedule, random_inputs, random_network, schedule
from qsnn_hw.verify.bundle import CoreCase

INPUT_BITS = [1, 1, 2, 8, 1, 4]
# core configurations by seed % 5 (5 is coprime with the 8/16-seed categories above)
CORE_KINDS = [{}, {"fifo_depth": "min"}, {"weight_storage": "ram"},
              {"weight_storage": "spram"}, {"quantizer": "pipelined"}]


def regression_case(seed: int) -> CoreCase:
    rng = np.random.default_rng([seed, 20261122])
    kind = seed % 8
    wide = seed % 16 == 7
    layers = int(rng.integers(1, 4))
    if wide:      # wide and sparse, short (emission time grows with the weight count)
        sizes = [int(rng.integers(80, 160))] + [int(rng.integers(30, 60))
                                                for _ in range(layers - 1)] + [10]
        input_bits = 1
    else:
        sizes = [int(rng.integers(1, 25)) for _ in range(layers + 1)]
        input_bits = INPUT_BITS[seed % len(INPUT_BITS)]
    cat = schedule(seed)
    net = random_network(rng, sizes=sizes, input_bits=input_bits, **cat)
    density = [0.0, 1.0, float(rng.uniform(0.05, 0.6))][seed % 3]
    if wide:
        density = min(density, 0.05)
        samples, steps = 2, 3
    elif kind in (3, 6):   # long samples (seeds 3 and 6 mod 8: every reset within 24 seeds)
        samples, steps = 3, int(rng.integers(32, 65))
    else:
        samples, steps = int(rng.integers(2, 5)), int(rng.integers(1, 12))
    modes = input_schedule(seed)
    x = random_inputs(rng, net, samples, steps, density,
                      static=CoreConfig(**modes).static_input(net))
    # P copies of a 2**n-entry level table and quantizer per layer: the C++ that
    # Verilator compiles grows with P * 2**n, so wide codes get few lanes (P * 2**n <= 256;
    # P = 1..16 is still covered with n <= 4 and unquantized states)
    lanes = [int(rng.integers(1, 1 + min(16, 256 >> (la.state_bits or 0))))
             for la in net.layers]
    config = CoreConfig(lanes=lanes, **CORE_KINDS[seed % len(CORE_KINDS)], **modes)
    describe = (f"sizes={[net.n_in] + [la.n_out for la in net.layers]} "
                f"input_bits={input_bits} state_bits={cat['state_bits']} "
                f"family={cat['family']} reset={cat['reset']} "
                f"density={density:.2f} samples={samples} T={steps}; {config.describe()}")
    return CoreCase(f"r{seed}", net, x, config, seed=seed,
                    valid_gap=float(rng.choice([0.0, 0.2, 0.6])),
                    ready_prob=float(rng.choice([1.0, 0.5, 0.15])), describe=describe)


def run_main(argv, make_case, prog: str, default_configs: int, prefix: str,
             doc: str | None = None) -> int:
    """The command line of a regression script: ``--sim``, ``--configs``, ``--seed``,
    ``--build-dir``; ``make_case(seed)`` gives one configuration."""
    import argparse
    import tempfile

    from qsnn_hw.verify.bundle import write_bundle
    from qsnn_hw.verify.compare import format_report
    from qsnn_hw.verify.runner import SIMULATORS, run_bundle

    ap = argparse.ArgumentParser(prog=prog, description=doc)
    ap.add_argument("--sim", choices=SIMULATORS, required=True)
    ap.add_argument("--configs", type=int, default=default_configs,
                    help="random configurations")
    ap.add_argument("--seed", type=int, default=0, help="first configuration seed")
    ap.add_argument("--build-dir", default=None, help="default: a temporary directory")
    args = ap.parse_args(argv)
    out = args.build_dir or tempfile.mkdtemp(prefix=prefix)
    cases = [make_case(args.seed + i) for i in range(args.configs)]
    bundle = write_bundle(cases, f"{out}/bundle")
    rep = run_bundle(args.sim, bundle, f"{out}/build_{args.sim}")
    for core in rep["cores"]:
        print(format_report(core, core["core"], core["describe"]))
    print(f"{args.sim}: {sum(c['ok'] for c in rep['cores'])}/{len(rep['cores'])} "
          f"configurations bit-exact, {rep['cycles']} cycles in {rep['total_s']:.1f} s; "
          f"build in {out}")
    return 0 if rep["ok"] else 1


def main(argv=None) -> int:
    return run_main(argv, regression_case, "python -m sim.regression", 50,
                    "qsnn-regression-", __doc__)


if __name__ == "__main__":
    raise SystemExit(main())
