# amaranth: UnusedElaboratable=no
"""Cycle model (qsnn_hw.hdl.cycles) against cycle counts measured in simulation."""

import numpy as np
import pytest

from qsnn_hw.golden import simulate
from qsnn_hw.hdl.config import CoreConfig
from qsnn_hw.hdl.cycles import layer_events, network_cycles, step_cycles
from qsnn_hw.hdl.geometry import network_geometry
from qsnn_hw.testing import random_inputs, random_network
from qsnn_hw.verify.amaranth import run_core


def measured_steps(net, x, lanes):
    """Steady-state cycles per timestep of a one-layer network (input always ready)."""
    run = run_core(net, x, CoreConfig(lanes=lanes))
    return np.diff(run.step_cycles[0][0])


def one_layer(m, n, state_bits, input_bits=1, seed=0):
    return random_network(np.random.default_rng(seed), sizes=[m, n], state_bits=state_bits,
                          input_bits=input_bits)


@pytest.mark.sim
@pytest.mark.parametrize("m,n,lanes,events,state_bits,input_bits", [
    (24, 16, 4, 6, None, 1), (24, 16, 4, 0, 3, 1), (30, 17, 5, 12, 6, 1),
    (12, 40, 1, 3, 8, 1), (10, 6, 8, 10, 2, 1), (8, 9, 2, 8, 4, 4),
])
def test_layer_step_cycles_within_5_percent(m, n, lanes, events, state_bits, input_bits):
    net = one_layer(m, n, state_bits, input_bits)
    x = np.zeros((1, 6, m), np.int64)
    x[:, :, :events] = 1
    meas = measured_steps(net, x, lanes)
    e = events if input_bits == 1 else m   # direct input: every value is an operation
    model = step_cycles(e, network_geometry(net, CoreConfig(lanes=lanes))[0])
    assert np.all(np.abs(meas - model) <= 0.05 * model), (meas, model)


@pytest.mark.sim
@pytest.mark.parametrize("n,lanes", [(16, 4), (32, 8), (12, 12), (16, 16)])
def test_accumulation_efficiency(n, lanes):
    """Synaptic operations per accumulate cycle >= 90 % of P when P divides N, measured as
    the extra cycles that E events add to a timestep."""
    m, events = 40, 30
    net = one_layer(m, n, 4)
    x = np.zeros((1, 4, m), np.int64)
    idle = measured_steps(net, x, lanes)[-1]
    x[:, :, :events] = 1
    busy = measured_steps(net, x, lanes)[-1]
    ops_per_cycle = events * n / (busy - idle)
    assert ops_per_cycle >= 0.9 * lanes


@pytest.mark.sim
@pytest.mark.parametrize("seed", range(6))
def test_network_sample_cycles_within_5_percent(seed):
    rng = np.random.default_rng(300 + seed)
    sizes = [int(rng.integers(8, 60)) for _ in range(int(rng.integers(2, 5)))]
    net = random_network(rng, sizes=sizes)
    x = random_inputs(rng, net, 3, 6, float(rng.uniform(0.1, 0.6)))
    lanes = [int(rng.integers(1, 17)) for _ in net.layers]
    config = CoreConfig(lanes=lanes)
    run = run_core(net, x, config)
    gold = simulate(net, x)
    model = network_cycles(layer_events(net, x, gold.spikes), network_geometry(net, config))
    err = abs(int(run.sample_cycles.sum()) - int(model.sum())) / model.sum()
    assert err <= 0.05, (run.sample_cycles, model)
