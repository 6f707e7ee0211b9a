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
from qsnn_hw.golden import input_currents, simulate
from qsnn_hw.hdl.config import CoreConfig
from qsnn_hw.hdl.top import NetworkTop
from qsnn_hw.testing import input_schedule, random_inputs, random_network, schedule
from qsnn_hw.verify.amaranth import run_core
from qsnn_hw.verify.stimulus import event_layout, sample_beats
from sim.regression import assert_bit_exact

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


def _timesteps(net, xs, static):
    """The beats of one sample ``xs`` (T, M) as a list per timestep, each closed by its
    end-of-timestep beat (a static sample: the input in the first one only)."""
    eot = 1 << event_layout(net)["eot"].offset
    steps, cur = [], []
    for beat in sample_beats(net, xs, static=static).tolist():
        cur.append(beat)
        if beat & eot:
            steps.append(cur)
            cur = []
    return steps


# Each invalid beat kind (docs/hardware.md, "Stream formats") inserts its beat into the
# beats of sample 0 (``steps``: per timestep, as _timesteps gives them) and, where dropping
# it changes what the core computes, edits that sample's ``xs`` (T, M) to match (a short
# direct timestep: its missing values count as 0).

def _address_ge_m(net, steps, xs, static):
    """A spike event with address M, the first out of range, amid timestep 0."""
    steps[0].insert(len(steps[0]) // 2, net.n_in << event_layout(net)["addr"].offset)


def _last_without_eot(net, steps, xs, static):
    """``last`` on an input beat (spike address 0 / direct value 1) opening timestep 0:
    dropped whole (a direct value does not take a position)."""
    layout = event_layout(net)
    field = "addr" if net.input_bits == 1 else "value"
    steps[0].insert(0, (int(net.input_bits > 1) << layout[field].offset)
                    | (1 << layout["last"].offset))


def _value_beyond_m(net, steps, xs, static):
    """An (M+1)-th direct value in timestep 0."""
    steps[0].insert(-1, net.input_max << event_layout(net)["value"].offset)


def _short_timestep(net, steps, xs, static):
    """Timestep 0 closed without its M-th value (non-zero): that input counts as 0 (in
    every timestep of a static sample, which sends its input once)."""
    assert xs[0, -1] != 0
    del steps[0][-2]
    if static:
        xs[:, -1] = 0
    else:
        xs[0, -1] = 0


def _input_after_first_eot(net, steps, xs, static):
    """A static sample's first input beat again, opening timestep 1."""
    steps[1].insert(0, steps[0][0])


# kind: (edit, input kinds, static/streamed it applies to)
INVALID_BEATS = {
    "address_ge_M": (_address_ge_m, ("spike",), (False, True)),
    "last_without_eot": (_last_without_eot, ("spike", "direct"), (False, True)),
    "value_beyond_M": (_value_beyond_m, ("direct",), (False, True)),
    "short_timestep": (_short_timestep, ("direct",), (False, True)),
    "input_after_first_eot": (_input_after_first_eot, ("spike", "direct"), (True,)),
}


@pytest.mark.sim
@pytest.mark.parametrize("kind,inputs,static", [
    pytest.param(kind, inputs, static,
                 id=f"{kind}-{inputs}-{'static' if static else 'streamed'}")
    for kind, (_, kinds, modes) in INVALID_BEATS.items()
    for inputs in kinds for static in modes])
def test_invalid_beat_is_dropped_and_flagged(kind, inputs, static):
    """One invalid beat alone in sample 0 of two (so nothing else can raise the flag):
    the flag is set, both samples are bit-exact with that beat dropped (a short direct
    timestep: its missing values as 0), sample 1 starts clean; the same input without the
    beat leaves the flag low."""
    net = random_network(np.random.default_rng(11), sizes=[5, 6, 3], state_bits=None,
                         input_bits=1 if inputs == "spike" else 4)
    x = random_inputs(np.random.default_rng(12), net, 2, 3, 0.6, static=static)
    x[:, :, 0] = x[:, :, -1] = net.input_max   # the beats edited above exist, non-zero
    if inputs == "direct":
        x[:, :, 1] = 0   # a zero value: skipped by the core, still counted as a position
    cfg = CoreConfig(input="static" if static else "streamed")
    clean = run_core(net, x, cfg)
    assert not clean.error
    assert_bit_exact(net, x, clean, f"{kind}: clean input")
    steps = _timesteps(net, x[0], static)
    x_eff = x.copy()
    INVALID_BEATS[kind][0](net, steps, x_eff[0], static)
    if kind == "short_timestep":   # the missing value must change what the core computes
        assert not np.array_equal(simulate(net, x_eff, trace=True).mem[0],
                                  simulate(net, x, trace=True).mem[0])
    beats = [sum(steps, []), sample_beats(net, x[1], static=static).tolist()]
    run = run_core(net, x, cfg, beats=beats)
    assert run.error
    assert_bit_exact(net, x_eff, run, f"{kind} ({inputs}, static={static})", error=True)


def _before_clip(net, x):
    """The golden run of ``x`` (traced) and every layer's value ``v`` (B, T, N) before the
    clip or the quantizer, recomputed from the traces by the contract's recursion (so a
    test can show that saturation happens; the clip of ``v`` is checked against the
    trace)."""
    gold = simulate(net, x, trace=True)
    h, values = x, []
    for li, la in enumerate(net.layers):
        mem, s = gold.mem[li], gold.spikes[li].astype(bool)
        rest = la.levels[la.rest_code] if la.quantized else 0
        prev = np.concatenate([np.full_like(mem[:, :1], rest), mem[:, :-1]], axis=1)
        z = np.concatenate([np.zeros_like(s[:, :1]), s[:, :-1]], axis=1)
        v = la.leak(prev) + input_currents(la, h)
        v = v - la.threshold * z if la.reset == "subtract" else np.where(z, 0, v)
        if not la.quantized:
            np.testing.assert_array_equal(np.clip(v, la.mem_lo, la.mem_hi), mem)
        values.append(v)
        h = s.astype(np.int64)
    return gold, values


def _saturating_network(input_bits: int, first_quantized: bool):
    """Two layers, one unquantized (6-bit membrane, [-32, 31]) and one quantized (8 levels
    from -12 to 18), subtract reset first, zero reset second: even neurons get large
    positive weights, odd ones large negative, so membranes run past both ends."""
    rng = np.random.default_rng(5)
    sign = {n: np.where(np.arange(n) % 2, -1, 1)[:, None] for n in (5, 7)}

    def unquantized(m, n, reset):
        return IntLayer(rng.integers(2, 16, (n, m)) * sign[n], 12, 7, 3, reset, None, 0,
                        None, 6)

    def quantized(m, n, reset):
        return IntLayer(rng.integers(2, 11, (n, m)) * sign[n], 5, 3, 2, reset, None, 0,
                        np.array([-12, -6, -2, 0, 3, 7, 12, 18]))

    first, second = (quantized, unquantized) if first_quantized else (unquantized, quantized)
    return IntNetwork((first(6, 7, "subtract"), second(7, 5, "zero")), input_bits)


@pytest.mark.sim
@pytest.mark.parametrize("input_bits,first_quantized", [(1, False), (4, True)],
                         ids=["spikes-unquantized-first", "direct-quantized-first"])
def test_saturation_at_both_ends(input_bits, first_quantized):
    """Membranes beyond ``mem_hi`` and below ``mem_lo`` (unquantized: clipped; quantized:
    the highest and lowest level) in every layer, under both resets: bit-exact. The golden
    traces show that both ends are passed in every layer."""
    net = _saturating_network(input_bits, first_quantized)
    rng = np.random.default_rng(6)
    x = rng.integers(1, net.input_max + 1, (2, 6, 6)) * (rng.random((2, 6, 6)) < 0.7)
    _, values = _before_clip(net, x)
    for li, (la, v) in enumerate(zip(net.layers, values, strict=True)):
        assert (v > la.mem_hi).any() and (v < la.mem_lo).any(), f"layer {li} saturates"
    run = run_core(net, x, CoreConfig(lanes=[3, 2], input="streamed"), rng=rng)
    assert_bit_exact(net, x, run, f"saturation, input_bits={input_bits}")


@pytest.mark.sim
def test_count_ties_go_to_the_lowest_index():
    """Output neurons 1 and 2 have the same, strongest weights, so their counts tie at the
    maximum (prediction 1); an empty sample ties every count at 0 (prediction 0)."""
    rng = np.random.default_rng(21)
    net = random_network(rng, sizes=[6, 8, 4], input_bits=1, state_bits=None,
                         reset="subtract", bias=False)
    out = net.layers[-1]
    w = -np.abs(out.weight)
    w[1] = w[2] = np.abs(out.weight).max()
    net = IntNetwork((net.layers[0], IntLayer(w, out.threshold, out.beta_num,
                                              out.beta_shift, out.reset, None,
                                              out.frac_bits, None, out.mem_bits)))
    x = np.ones((3, 5, 6), np.int64)
    x[1] = rng.random((5, 6)) < 0.5
    x[2] = 0
    gold = simulate(net, x)
    top = gold.counts.max(axis=1)
    assert ((gold.counts == top[:, None]).sum(axis=1) >= 2).all() and top.max() > 0
    assert gold.predictions.tolist() == [1, 1, 0]
    run = run_core(net, x, CoreConfig(lanes=[3, 3]))
    assert_bit_exact(net, x, run, "count ties")


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
def test_static_input_must_be_the_same_at_every_timestep():
    net = random_network(np.random.default_rng(17), sizes=[6, 3], input_bits=4)
    x = random_inputs(np.random.default_rng(18), net, 2, 3, 0.9, static=False)
    with pytest.raises(ValueError, match="input='static'.*sample 0 differs at timestep 1"):
        run_core(net, x, CoreConfig(input="static"))
