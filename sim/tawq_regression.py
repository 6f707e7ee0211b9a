"""Seeded random TaWQ core configurations (time-varying ternary weights,
docs/hardware.md "TaWQ layers") for the gateware regressions: the Amaranth simulator
(``tests/test_hdl_tawq.py``) and Icarus / Verilator (``tests/test_sim_tawq.py``).

Every case: a dense network (seeds not divisible by 3) or a convolutional one (1-2
convolutions, then 0-1 dense layers), its first layer and each other with probability
0.7 made a TaWQ layer (:func:`qsnn_hw.testing.random_tawq_network`: any ternary table,
1-16 codes, multipliers of 1-13 bits, shift 0-10, T = 1-6); spike or direct multi-bit
input; lanes 1-5 (often not a divisor); several samples back to back; the core kinds
synth builds (:data:`sim.regression.CORE_KINDS`) cycled with the seed, streamed input
(a TaWQ first layer takes no static input) with one or two accumulator banks.

Run it: ``python -m sim.tawq_regression --sim icarus --configs 12 [--seed 0]``.
"""

from __future__ import annotations

import numpy as np

from qsnn_hw.hdl.config import CoreConfig
from qsnn_hw.testing import (
    random_conv_network,
    random_inputs,
    random_network,
    random_tawq_network,
    schedule,
)
from qsnn_hw.verify.bundle import CoreCase

from .regression import CORE_KINDS, core_case, layer_kinds

INPUT_BITS = (1, 4, 1, 2, 8, 1, 3)
ACCUMULATORS = ("auto", "single", "double")


def tawq_regression_case(seed: int) -> CoreCase:
    rng = np.random.default_rng([seed, 1414])
    input_bits = INPUT_BITS[seed % len(INPUT_BITS)]
    cat = schedule(seed)
    steps = int(rng.integers(1, 7))
    if seed % 3:
        sizes = [int(rng.integers(1, 20)) for _ in range(int(rng.integers(2, 4)))]
        base = random_network(rng, sizes=sizes, input_bits=input_bits, **cat)
    else:
        in_shape = (int(rng.integers(1, 3)), int(rng.integers(3, 7)), int(rng.integers(3, 7)))
        dense = [int(rng.integers(2, 9))] if seed % 2 else []
        base = random_conv_network(rng, in_shape=in_shape, convs=1 + (seed // 3) % 2,
                                   dense=dense, input_bits=input_bits, **cat)
    net = random_tawq_network(rng, base, steps)
    density = {0: 1.0}.get(seed % 5, float(rng.uniform(0.1, 0.8)))
    samples = int(rng.integers(2, 4))
    x = random_inputs(rng, net, samples, steps, density, static=False)
    lanes = [int(rng.integers(1, 6)) for _ in net.layers]
    config = CoreConfig(lanes=lanes, **CORE_KINDS[seed % len(CORE_KINDS)],
                        accumulators=ACCUMULATORS[seed % len(ACCUMULATORS)])
    describe = (f"{layer_kinds(net)}; input_bits={input_bits} "
                f"state_bits={cat['state_bits']} reset={cat['reset']} "
                f"density={density:.2f} samples={samples} T={steps}; {config.describe()}")
    return core_case(f"t{seed}", net, x, config, seed, rng, describe)


def main(argv=None) -> int:
    from sim.regression import run_main
    return run_main(argv, tawq_regression_case, "python -m sim.tawq_regression", 12,
                    "qsnn-tawq-regression-", __doc__)


if __name__ == "__main__":
    raise SystemExit(main())
