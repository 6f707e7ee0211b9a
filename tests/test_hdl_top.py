# amaranth: UnusedElaboratable=no
"""Whole networks in Amaranth's simulator, bit-exact against the golden model: spikes of
every layer and timestep, final codes/membranes, counts and predictions.

The seeded sweep size comes from QSNN_REGRESSION_CONFIGS (default 48, well under a minute);
QSNN_REGRESSION_SEED shifts the seeds. A failure prints the seed that replays it:
``QSNN_REGRESSION_SEED=<seed> QSNN_REGRESSION_CONFIGS=1 pytest tests/test_hdl_top.py``.
"""

import os

import numpy as np
import pytest

from qsnn_hw.contract import IntLayer, IntNetwork
from qsnn_hw.golden import simulate
from qsnn_hw.hdl.config import CoreConfig
from qsnn_hw.hdl.top import NetworkTop
from qsnn_hw.testing import input_schedule, random_inputs, random_network, schedule
from qsnn_hw.verify.amaranth import run_core
from qsnn_hw.verify.compare import compare, format_report
from qsnn_hw.verify.stimulus import event_layout, sample_beats

pytestmark = pytest.mark.filterwarnings("ignore::amaranth.hdl.UnusedElaboratable")

CONFIGS = int(os.environ.get("QSNN_REGRESSION_CONFIGS", "48"))
SEED0 = int(os.environ.get("QSNN_REGRESSION_SEED", "0"))


def sweep_config(seed: int):
    """One random configuration; categories cycle with the seed so a short sweep still
    covers every state width, family, reset mode, input kind and density class."""
    rng = np.random.default_rng(seed)
    big = seed % 8 == 7
    layers = int(rng.integers(1, 4))
    if big:   # a few hundred neurons/inputs, short and sparse to bound the cycle count
        sizes = [int(rng.integers(100, 300))] + [int(rng.integers(50, 300))
                                                 for _ in range(layers - 1)] + [10]
    else:
        sizes = [int(rng.integers(1, 40)) for _ in range(layers + 1)]
    input_bits = [1, 1, 2, 8][seed % 4] if not big else 1
    net = random_network(rng, sizes=sizes, input_bits=input_bits, **schedule(seed))
    density = [0.0, 1.0, float(rng.uniform(0.05, 0.5))][seed % 3]
    if big:
        density = min(density, 0.1)
    steps = 2 if big else int(rng.integers(1, 7))
    modes = input_schedule(seed)
    static = CoreConfig(**modes).static_input(net)
    x = random_inputs(rng, net, 1 if big else 2, steps, density, static=static)
    lanes = [int(rng.integers(1, 17)) for _ in net.layers]
    return net, x, lanes, modes, rng


def assert_bit_exact(net, x, run, context, error=False):
    """Every layer's spikes and states at every timestep, counts, predictions (the
    package's one comparison), plus the final states as the golden model reports them."""
    gold = simulate(net, x, trace=True)
    rep = compare(net, gold, run.observed)
    counts = dict(rep["mismatch_counts"])
    assert (counts.pop("error_flag") > 0) == error, f"{context}: error flag"
    assert not any(counts.values()), f"{context}\n{format_report(rep)}"
    for li in range(len(net.layers)):
        np.testing.assert_array_equal(run.spikes[li], gold.spikes[li],
                                      err_msg=f"{context}: spikes of layer {li}")
        np.testing.assert_array_equal(run.final_mem[li], gold.final_mem[li],
                                      err_msg=f"{context}: final membranes of layer {li}")
        if net.layers[li].quantized:
            np.testing.assert_array_equal(run.final_codes[li], gold.final_codes[li],
                                          err_msg=f"{context}: final codes of layer {li}")
    np.testing.assert_array_equal(run.counts, gold.counts, err_msg=f"{context}: counts")
    np.testing.assert_array_equal(run.predictions, gold.predictions,
                                  err_msg=f"{context}: predictions")


@pytest.mark.sim
@pytest.mark.parametrize("seed", range(SEED0, SEED0 + CONFIGS))
def test_random_networks_bit_exact(seed):
    net, x, lanes, modes, rng = sweep_config(seed)
    context = (f"replay with QSNN_REGRESSION_SEED={seed} QSNN_REGRESSION_CONFIGS=1 "
               f"(sizes={[net.n_in] + [la.n_out for la in net.layers]}, lanes={lanes}, "
               f"input_bits={net.input_bits}, state_bits={[la.state_bits for la in net.layers]}"
               f", {modes})")
    run = run_core(net, x, CoreConfig(lanes=lanes, **modes), rng=rng)
    assert not run.error, context
    assert_bit_exact(net, x, run, context)


@pytest.mark.sim
@pytest.mark.parametrize("seed", range(SEED0 + 1000, SEED0 + 1000 + max(4, CONFIGS // 6)))
def test_random_networks_bit_exact_other_configurations(seed):
    """The configurations synth builds besides the default: minimal FIFOs, RAM weights
    written through ``weight_load`` before the first sample, the pipelined quantizer
    everywhere; cycled over the seeds, with a bursty input."""
    net, x, lanes, modes, rng = sweep_config(seed)
    k = seed % 4
    cfg = CoreConfig(lanes=lanes, fifo_depth="min" if k in (0, 3) else "default",
                     weight_storage="ram" if k in (1, 3) else "rom",
                     quantizer="pipelined" if k in (2, 3) else "auto", **modes)
    run = run_core(net, x, cfg, rng=rng, gaps=0.3)
    assert_bit_exact(net, x, run, f"seed {seed}: {cfg.describe()}")


def _extreme_network(sign: int, state_bits, reset, input_bits):
    rng = np.random.default_rng(7)
    base = random_network(rng, sizes=[9, 6, 4], weight_bits=16, state_bits=state_bits,
                          reset=reset, input_bits=input_bits, family="exponential")
    layers = []
    for la in base.layers:
        w = np.full(la.weight.shape, sign * int(np.abs(la.weight).max()), np.int64)
        layers.append(IntLayer(w, la.threshold, la.beta_num, la.beta_shift, la.reset,
                               la.bias, la.frac_bits, la.levels, la.mem_bits))
    return IntNetwork(tuple(layers), input_bits)


@pytest.mark.sim
@pytest.mark.parametrize("sign", [1, -1])
@pytest.mark.parametrize("state_bits,reset,input_bits",
                         [(None, "subtract", 1), (3, "zero", 8), (8, "subtract", 16)])
def test_extremes_all_weights_at_max_every_input_every_step(sign, state_bits, reset,
                                                            input_bits):
    net = _extreme_network(sign, state_bits, reset, input_bits)
    x = np.full((1, 5, net.n_in), net.input_max, np.int64)
    run = run_core(net, x, CoreConfig(lanes=[4, 3]))
    assert_bit_exact(net, x, run, f"extreme sign={sign} state_bits={state_bits}")


@pytest.mark.sim
def test_counts_saturate_and_argmax_uses_saturated_counts():
    net = random_network(np.random.default_rng(3), sizes=[5, 4], state_bits=None)
    layer = net.layers[0]
    strong = IntLayer(np.abs(layer.weight) + 1, 1, layer.beta_num, layer.beta_shift,
                      "zero", None, 0, None, 16)
    net = IntNetwork((strong,))
    x = np.ones((1, 7, 5), np.int64)
    run = run_core(net, x, CoreConfig(count_bits=2))
    gold = simulate(net, x)
    want = np.minimum(gold.counts, 3)
    np.testing.assert_array_equal(run.counts, want)
    assert run.predictions[0] == int(np.argmax(want[0]))


def _beats(net, x, extra):
    """Valid beats of one sample with ``extra`` invalid beats inserted in timestep 0."""
    return [extra + sample_beats(net, x[0]).tolist()]


@pytest.mark.sim
def test_invalid_spike_beats_are_dropped_and_flagged():
    net = random_network(np.random.default_rng(11), sizes=[5, 6, 3], input_bits=1)
    x = random_inputs(np.random.default_rng(12), net, 1, 3, 0.5)
    layout = event_layout(net)
    addr, last = layout["addr"].offset, layout["last"].offset
    bad = [(5 << addr), (7 << addr), (1 << addr) | (1 << last)]  # addr >= M, last w/o eot
    run = run_core(net, x, beats=_beats(net, x, bad))
    assert run.error
    assert_bit_exact(net, x, run, "invalid spike beats", error=True)
    clean = run_core(net, x)
    assert not clean.error


@pytest.mark.sim
def test_direct_input_wrong_value_count_is_flagged():
    net = random_network(np.random.default_rng(13), sizes=[4, 5], input_bits=4)
    x = random_inputs(np.random.default_rng(14), net, 1, 3, 0.7, static=False)
    x[0, :, 1] = 0   # a zero value: skipped by the core, still counted as a position
    eot = 1 << event_layout(net)["eot"].offset
    beats = sample_beats(net, x[0]).tolist()
    # timestep 0: one value too many (dropped); timestep 1: the last value missing (= 0)
    m = net.n_in
    t0 = beats[:m] + [9] + [beats[m]]
    t1 = beats[m + 1:2 * m] + [eot]
    rest = beats[2 * m + 2:]
    run = run_core(net, x, CoreConfig(input="streamed"), beats=[t0 + t1 + rest])
    assert run.error
    x_eff = x.copy()
    x_eff[0, 1, m - 1] = 0
    assert_bit_exact(net, x_eff, run, "short/long direct timesteps", error=True)


def test_top_validation():
    net = random_network(np.random.default_rng(0), sizes=[3, 2, 2])
    with pytest.raises(ValueError, match="lanes must be one value or have one entry per "
                                         "layer"):
        NetworkTop(net, CoreConfig(lanes=[1, 2, 3]))
    with pytest.raises(ValueError, match="count_bits must be in"):
        CoreConfig(count_bits=0)
    with pytest.raises(TypeError, match="net must be an IntNetwork"):
        NetworkTop(net.layers[0])
    with pytest.raises(TypeError, match="config must be a CoreConfig"):
        NetworkTop(net, {"lanes": 2})


@pytest.mark.sim
@pytest.mark.parametrize("seed", range(8))
def test_minimal_fifos_and_bursty_input(seed):
    """Smallest output FIFOs (one timestep of words: every layer waits for the next to
    drain) and an input source that pauses at random: still bit-exact."""
    net, x, lanes, modes, rng = sweep_config(500 + seed)
    cfg = CoreConfig(lanes=lanes, fifo_depth="min", **modes)
    depths = [o.fifo_depth for o in cfg.layers(net)]
    # an independent statement of the minimum: G + 1 words, at least 3
    assert depths == [max(-(-la.n_out // p) + 1, 3) for la, p in zip(net.layers, lanes,
                                                                     strict=True)]
    run = run_core(net, x, cfg, rng=rng, gaps=0.3)
    assert not run.error
    assert_bit_exact(net, x, run, f"seed={500 + seed} minimal FIFOs {depths}")


@pytest.mark.sim
def test_minimal_fifos_one_group_per_layer():
    """G = 1 in every layer (P >= N): back-to-back update words into the smallest
    block-RAM FIFO (a depth of 2 would drop the end-of-timestep word and hang)."""
    rng = np.random.default_rng(77)
    net = random_network(rng, sizes=[12, 5, 3], input_bits=1)
    x = (rng.random((3, 6, 12)) < 0.5).astype(np.int64)
    depths = [3, 3]
    run = run_core(net, x, CoreConfig(lanes=[5, 3], fifo_depth=depths), rng=rng, gaps=0.0)
    assert not run.error
    assert_bit_exact(net, x, run, f"G = 1, FIFOs {depths}")


@pytest.mark.sim
@pytest.mark.parametrize("groups", [1, 2, 3, 4])
@pytest.mark.parametrize("gaps", [0.0, 0.5])
def test_accumulator_forwarding(groups, gaps):
    """With G <= 3 an event reads an accumulator word G to 3 cycles after an earlier
    event's sum for it was issued (dense input, back to back or with random gaps): every
    distance the accumulate pipeline forwards; G = 4 needs no forwarding. (Dropping the
    distance-3 forwarding fails G = 1, 2, 3 here.)"""
    rng = np.random.default_rng(900 + groups)
    n = 3 * groups
    net = random_network(rng, sizes=[10, n, 2], input_bits=1)
    x = (rng.random((2, 5, 10)) < 0.9).astype(np.int64)
    run = run_core(net, x, CoreConfig(lanes=[3, 1]), rng=rng, gaps=gaps)
    assert not run.error
    assert_bit_exact(net, x, run, f"G = {groups}, gaps {gaps}")


@pytest.mark.sim
@pytest.mark.parametrize("input_bits", [1, 4])
def test_static_input_beats_after_the_first_timestep_are_dropped_and_flagged(input_bits):
    """A static sample sends its input once; an input beat after its first end of
    timestep is dropped and sets the error flag (the result is the one of the sample as
    first sent), and the next sample loads its input again."""
    net = random_network(np.random.default_rng(15), sizes=[6, 5, 3], input_bits=input_bits)
    x = random_inputs(np.random.default_rng(16), net, 2, 4, 0.6, static=True)
    cfg = CoreConfig(input="static")
    clean = run_core(net, x, cfg)
    assert not clean.error
    assert_bit_exact(net, x, clean, "static input")
    beats = [sample_beats(net, x[b], static=True).tolist() for b in range(2)]
    m = int(np.count_nonzero(x[0, 0])) if input_bits == 1 else net.n_in
    assert len(beats[0]) == m + 4           # the input once, then T end-of-timestep beats
    stray = beats[0][0] if m else 0
    beats[0] = beats[0][:m + 1] + [stray] + beats[0][m + 1:]   # an input beat in timestep 1
    run = run_core(net, x, cfg, beats=beats)
    assert run.error
    assert_bit_exact(net, x, run, "static input with a stray beat", error=True)


@pytest.mark.sim
def test_static_input_must_be_the_same_at_every_timestep():
    net = random_network(np.random.default_rng(17), sizes=[6, 3], input_bits=4)
    x = random_inputs(np.random.default_rng(18), net, 2, 3, 0.9, static=False)
    with pytest.raises(ValueError, match="input='static'.*sample 0 differs at timestep 1"):
        run_core(net, x, CoreConfig(input="static"))
