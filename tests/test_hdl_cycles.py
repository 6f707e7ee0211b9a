# amaranth: UnusedElaboratable=no
"""Cycle model (qsnn_hw.hdl.cycles) against cycle counts measured in simulation: exact,
cycle for cycle, for every layer's end-of-timestep words and every sample."""

import numpy as np
import pytest

from qsnn_hw.contract import IntNetwork
from qsnn_hw.golden import simulate
from qsnn_hw.hdl.config import CoreConfig
from qsnn_hw.hdl.cycles import bandwidth_bound, schedule
from qsnn_hw.hdl.geometry import default_fifo_depth, layer_groups, network_geometry
from qsnn_hw.testing import (
    input_schedule,
    random_conv_layer,
    random_conv_network,
    random_inputs,
    random_network,
)
from qsnn_hw.verify.amaranth import run_core


def measure(net, x, config):
    run = run_core(net, x, config)
    gold = simulate(net, x)
    model = schedule(net, x, gold.spikes, network_geometry(net, config),
                     starts=run.start_cycles)
    return run, model, gold


@pytest.mark.sim
@pytest.mark.parametrize("seed", range(8))
def test_model_is_exact_on_random_networks(seed):
    """Random sizes, lanes, input kinds, densities (zero-heavy direct input included),
    input modes and accumulator banks; FIFOs deep enough never to fill."""
    rng = np.random.default_rng(300 + seed)
    sizes = [int(rng.integers(4, 50)) for _ in range(int(rng.integers(2, 5)))]
    net = random_network(rng, sizes=sizes, input_bits=[1, 4, 8, 2][seed % 4])
    lanes = [int(rng.integers(1, 17)) for _ in net.layers]
    config = CoreConfig(lanes=lanes, fifo_depth=128, **input_schedule(seed))
    x = random_inputs(rng, net, 3, int(rng.integers(1, 7)), float(rng.uniform(0.05, 0.6)),
                      static=config.static_input(net))
    run, model, _ = measure(net, x, config)
    for li in range(len(net.layers)):
        np.testing.assert_array_equal(run.step_cycles[li], model["step_ends"][li],
                                      err_msg=f"layer {li} end-of-timestep cycles")
    np.testing.assert_array_equal(run.sample_cycles, model["sample_cycles"])


@pytest.mark.sim
@pytest.mark.parametrize("seed", range(8))
def test_model_is_exact_on_random_conv_networks(seed):
    """Convolutions (kernel, stride, padding, pooling, lanes not dividing the channels,
    events that no output sees) before, between and after dense layers; spike and
    direct input; FIFOs deep enough never to fill."""
    rng = np.random.default_rng(700 + seed)
    net = random_conv_network(rng, convs=1 + seed % 2, input_bits=[1, 4][seed % 4 == 3])
    lanes = [int(rng.integers(1, 6)) for _ in net.layers]
    depths = [8 * (layer_groups(la, p)[1] + 1) + 64 for la, p in
              zip(net.layers, lanes, strict=True)]
    config = CoreConfig(lanes=lanes, fifo_depth=depths, **input_schedule(seed))
    x = random_inputs(rng, net, 2, int(rng.integers(1, 5)), float(rng.uniform(0.1, 0.7)),
                      static=config.static_input(net))
    run, model, gold = measure(net, x, config)
    assert any(s.any() for s in gold.spikes[:-1]) or len(net.layers) == 1
    for li in range(len(net.layers)):
        np.testing.assert_array_equal(run.step_cycles[li], model["step_ends"][li],
                                      err_msg=f"seed {700 + seed}: layer {li} "
                                              f"end-of-timestep cycles")
    np.testing.assert_array_equal(run.sample_cycles, model["sample_cycles"])
    bound = bandwidth_bound(net, x, gold.spikes, network_geometry(net, config))
    assert np.all(bound <= run.sample_cycles * len(net.layers))


@pytest.mark.sim
def test_conv_events_cost_their_valid_taps():
    """A stride-2 convolution with padding: a timestep with E events costs the sum of
    their valid kernel taps times CG (at least one cycle each), not E * K_h * K_w * CG."""
    rng = np.random.default_rng(17)
    layer = random_conv_layer(rng, (2, 7, 7), channels=5, kernel=3, stride=2, padding=1,
                              pool=1, state_bits=4)
    net = IntNetwork((layer,))
    config = CoreConfig(lanes=2, accumulators="single")
    geom = network_geometry(net, config)[0]
    issues = geom.event_issues()
    assert 0 < issues.min() < issues.max() < 3 * 3 * 3   # borders, stride-2 gaps
    x = np.zeros((1, 4, net.n_in), np.int64)
    idle = np.diff(run_core(net, x, config).step_cycles[0][0])[-1]
    active = rng.permutation(net.n_in)[:20]
    x[:, :, active] = 1
    busy = np.diff(run_core(net, x, config).step_cycles[0][0])[-1]
    cost = int(np.maximum(issues[active], 1).sum())
    assert cost <= busy - idle <= cost + 3


@pytest.mark.sim
def test_model_is_a_lower_bound_with_minimal_fifos():
    """With one-timestep FIFOs a layer waits for the next to drain: the model, which
    assumes it never does, can only be early."""
    rng = np.random.default_rng(9)
    net = random_network(rng, sizes=[30, 40, 20, 5], input_bits=1)
    config = CoreConfig(lanes=[8, 1, 1], fifo_depth="min")
    x = random_inputs(rng, net, 2, 5, 0.5)
    run, model, _ = measure(net, x, config)
    assert np.all(model["sample_cycles"] <= run.sample_cycles)


def _one_layer(m, n, state_bits=4, input_bits=1, seed=0):
    return random_network(np.random.default_rng(seed), sizes=[m, n], state_bits=state_bits,
                          input_bits=input_bits)


@pytest.mark.sim
@pytest.mark.parametrize("n,lanes", [(16, 4), (32, 8), (12, 12), (16, 16)])
def test_accumulation_runs_at_p_synaptic_operations_per_cycle(n, lanes):
    """Events cost G cycles each, back to back: the extra cycles that E events add to a
    timestep are E * G, plus at most 3 for the last sums' drain (P synaptic operations
    per cycle when P divides N)."""
    m, events = 40, 30
    net = _one_layer(m, n)
    config = CoreConfig(lanes=lanes, accumulators="single")
    x = np.zeros((1, 4, m), np.int64)
    idle = np.diff(run_core(net, x, config).step_cycles[0][0])[-1]
    x[:, :, :events] = 1
    busy = np.diff(run_core(net, x, config).step_cycles[0][0])[-1]
    G = -(-n // lanes)
    assert events * G <= busy - idle <= events * G + 3


@pytest.mark.sim
def test_two_banks_overlap_the_update_with_accumulation():
    """With events every timestep, two banks make a timestep cost its accumulation
    (E * G, plus the cycle of its end-of-timestep beat) alone; one bank adds the update
    (G + L and more)."""
    m, n, lanes, events = 40, 32, 4, 6
    net = _one_layer(m, n)
    x = np.zeros((1, 8, m), np.int64)
    x[:, :, :events] = 1
    G = n // lanes
    per_step = {acc: np.diff(run_core(net, x, CoreConfig(lanes=lanes, accumulators=acc))
                             .step_cycles[0][0])[2:]
                for acc in ("single", "double")}
    assert np.all(per_step["double"] == events * G + 1)
    assert np.all(per_step["single"] >= events * G + G)


@pytest.mark.sim
def test_static_input_is_accumulated_once_and_zeros_cost_nothing():
    """A static direct-input layer: the first timestep pays the non-zero values (G
    cycles each; zeros are free), every later one only its update (G + 2 cycles)."""
    m, n, lanes, steps = 24, 16, 2, 6
    net = _one_layer(m, n, input_bits=4, seed=4)
    G = n // lanes
    x = np.zeros((1, steps, m), np.int64)
    x[:, :, ::3] = 5                               # 8 non-zero values, 16 zeros
    run = run_core(net, x, CoreConfig(lanes=lanes))
    ends = run.step_cycles[0][0]
    assert np.all(np.diff(ends) == G + 2)
    dense = run_core(net, np.full_like(x, 5), CoreConfig(lanes=lanes)).step_cycles[0][0]
    assert dense[0] - ends[0] == (m - 8) * G       # only the non-zero values cost cycles


@pytest.mark.sim
def test_measured_cycles_within_the_bandwidth_bound_ratio():
    """The bound counts weight reads and update cycles only; a sample of a two-layer
    network stays within 1.25x of it (the overheads are the drains and the argmax)."""
    rng = np.random.default_rng(21)
    net = random_network(rng, sizes=[64, 64, 10], input_bits=4, state_bits=4)
    config = CoreConfig(lanes=2)
    x = random_inputs(rng, net, 3, 16, 0.5)
    run, _, gold = measure(net, x, config)
    bound = bandwidth_bound(net, x, gold.spikes, network_geometry(net, config))
    assert np.all(run.sample_cycles <= 1.25 * bound), (run.sample_cycles, bound)


def test_default_fifo_depth_trims_one_word_for_power_of_two_groups():
    """Two timesteps, 2 (G + 1); one word less (2 G + 1, a memory of 2 G words) only for
    a power of two G >= 64."""
    assert [default_fifo_depth(g) for g in (1, 32, 63, 64, 100, 128, 1024)] == \
        [4, 66, 128, 129, 202, 257, 2049]


@pytest.mark.sim
def test_model_is_exact_with_the_trimmed_default_fifo():
    """A 64-group layer with the default (trimmed, 129-word) FIFO: still exact."""
    rng = np.random.default_rng(41)
    net = random_network(rng, sizes=[24, 64, 6], input_bits=1)
    config = CoreConfig(lanes=1)
    assert [o.fifo_depth for o in config.layers(net)] == [129, 14]
    x = random_inputs(rng, net, 2, 4, 0.5)
    run, model, gold = measure(net, x, config)
    assert gold.spikes[0].any()
    np.testing.assert_array_equal(run.step_cycles[0], model["step_ends"][0])
    np.testing.assert_array_equal(run.sample_cycles, model["sample_cycles"])
