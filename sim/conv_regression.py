"""Seeded random convolutional core configurations for the RTL regression
(``tests/test_sim_conv.py``), the counterpart of :mod:`sim.regression` for the
convolution engine.

Every case: 1-2 convolutions (kernel 1-5, stride 1-2, padding, 1-6 channels, pooling)
then 0-1 dense layers; lanes 1-5 (often not a divisor of the channel count); spike or
direct multi-bit input; the weights mostly excitatory on three seeds of four so the later
layers see spikes too; several samples back to back; the core kinds synth builds
(default, minimal FIFOs, RAM weights, SPRAM weights, pipelined quantizer) cycled with the
seed, and the input modes and accumulator banks of :func:`qsnn_hw.testing.input_schedule`.

Run it: ``python -m sim.conv_regression --sim icarus --configs 12 [--seed 0]``.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from qsnn_hw.contract import IntNetwork
from qsnn_hw.hdl.config import CoreConfig
from qsnn_hw.testing import input_schedule, random_conv_network, random_inputs, schedule
from qsnn_hw.verify.bundle import CoreCase

from .regression import CORE_KINDS, core_case, layer_kinds


def conv_regression_case(seed: int) -> CoreCase:
    rng = np.random.default_rng([seed, 20261203])
    convs = 1 + seed % 2
    dense = [int(rng.integers(2, 11))] if seed % 3 else []
    input_bits = [1, 1, 4, 1, 8, 2][seed % 6]
    in_shape = (int(rng.integers(1, 4)), int(rng.integers(3, 9)), int(rng.integers(3, 9)))
    cat = schedule(seed)
    net = random_conv_network(rng, in_shape=in_shape, convs=convs, dense=dense,
                              input_bits=input_bits, **cat)
    if seed % 4 != 3:
        net = IntNetwork(tuple(
            replace(la, weight=np.where(rng.random(la.weight.shape) < 0.8,
                                        np.abs(la.weight), -np.abs(la.weight)))
            for la in net.layers), net.input_bits)
    density = {0: 0.0, 1: 1.0}.get(seed % 6, float(rng.uniform(0.1, 0.8)))
    modes = input_schedule(seed)
    samples, steps = int(rng.integers(2, 4)), int(rng.integers(1, 7))
    x = random_inputs(rng, net, samples, steps, density,
                      static=CoreConfig(**modes).static_input(net))
    lanes = [int(rng.integers(1, 6)) for _ in net.layers]
    config = CoreConfig(lanes=lanes, **CORE_KINDS[seed % len(CORE_KINDS)], **modes)
    describe = (f"{net.layers[0].in_shape} -> {layer_kinds(net)}; input_bits={input_bits} "
                f"state_bits={cat['state_bits']} reset={cat['reset']} "
                f"density={density:.2f} samples={samples} T={steps}; {config.describe()}")
    return core_case(f"c{seed}", net, x, config, seed, rng, describe)


def main(argv=None) -> int:
    from sim.regression import run_main
    return run_main(argv, conv_regression_case, "python -m sim.conv_regression", 12,
                    "qsnn-conv-regression-", __doc__)


if __name__ == "__main__":
    raise SystemExit(main())
