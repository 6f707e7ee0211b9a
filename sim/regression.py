"""Seeded random core configurations for the RTL regression (``tests/test_sim_core.py``).

The space is the generator sweep's (``tests/test_hdl_top.py``): weight bits 2..16, state
bits 2..8 and unquantized, every level family, both resets, lanes 1..16 per layer (N not
a multiple of P included), spike and direct input (2..8 bits), input densities 0, 1 and
in between; categories cycle with the seed so any 16 consecutive seeds cover every state
width, family, reset and input kind. On top: several samples back to back (the per-sample
reset), long samples (T up to 64) and, every sixteenth seed, wide layers (60-120 neurons).
Same seed, same configuration (network, inputs, lanes and back-pressure).
"""

from __future__ import annotations

import numpy as np

from qsnn_hw.testing import random_inputs, random_network, schedule

from .bundle import CoreCase

INPUT_BITS = [1, 1, 2, 8, 1, 4]


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
    elif kind in (3, 6):   # long samples (both reset modes: seeds 3 and 6 mod 8)
        samples, steps = 3, int(rng.integers(32, 65))
    else:
        samples, steps = int(rng.integers(2, 5)), int(rng.integers(1, 12))
    x = random_inputs(rng, net, samples, steps, density)
    # P copies of a 2**n-entry level table and quantizer per layer: the C++ that
    # Verilator compiles grows with P * 2**n, so wide codes get few lanes (P * 2**n <= 256;
    # P = 1..16 is still covered with n <= 4 and unquantized states)
    lanes = [int(rng.integers(1, 1 + min(16, 256 >> (la.state_bits or 0))))
             for la in net.layers]
    describe = (f"sizes={[net.n_in] + [la.n_out for la in net.layers]} lanes={lanes} "
                f"input_bits={input_bits} state_bits={cat['state_bits']} "
                f"family={cat['family']} reset={cat['reset']} "
                f"density={density:.2f} samples={samples} T={steps}")
    return CoreCase(f"r{seed}", net, x, lanes=lanes, seed=seed,
                    valid_gap=float(rng.choice([0.0, 0.2, 0.6])),
                    ready_prob=float(rng.choice([1.0, 0.5, 0.15])), describe=describe)
