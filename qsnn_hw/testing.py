"""Seeded random integer networks and inputs, built through the real quantizers.

Shared by the golden-model, gateware and simulator regressions so that every stage is
checked over the same configuration space. Every choice comes from the ``rng`` passed
in: same seed, same network.
"""

from __future__ import annotations

import numpy as np

from .contract import IntLayer, IntNetwork
from .quant.levels import (
    LEVEL_FAMILIES,
    custom_levels,
    level_family,
    levels_to_fixed_point,
    make_levels,
)
from .quant.weights import quantize_symmetric

# The level families the regressions cycle through (registry order).
FAMILIES = tuple(name for name, f in LEVEL_FAMILIES.items() if f.in_regressions)


def _pick(rng: np.random.Generator, value, choices):
    if value is not None and not (isinstance(value, str) and value == "random"):
        return value
    return choices[int(rng.integers(len(choices)))]


def random_levels(rng: np.random.Generator, family: str, state_bits: int,
                  threshold: int) -> tuple[np.ndarray, int]:
    """An integer level table of ``family`` around ``threshold`` (membrane units).

    Returns ``(levels, threshold)``: the threshold is doubled until the float table maps
    onto distinct integers. A family without a builder (``custom``) gets random distinct
    integers."""
    spec = level_family(family)
    if spec.build is None:
        n = 1 << state_bits
        span = max(4 * n, 3 * threshold)
        vals = np.sort(rng.choice(np.arange(-span, span), size=n, replace=False))
        return custom_levels(vals).astype(np.int64), threshold
    kwargs = spec.random_params(rng)
    table = make_levels(family, state_bits, 1.0, upper_limit=float(rng.uniform(0.1, 0.5)),
                        lower_limit=float(rng.uniform(0.0, 0.5)), **kwargs)
    while True:
        try:
            return levels_to_fixed_point(table, 0, unit=1.0 / threshold), threshold
        except ValueError:
            threshold *= 2


def random_layer(rng: np.random.Generator, n_in: int, n_out: int, *, input_max: int = 1,
                 weight_bits=None, state_bits="random", family=None, reset=None,
                 bias=None, frac_bits=None, rest: str = "level") -> IntLayer:
    """One random layer. ``state_bits``: int (quantized), None (unquantized) or "random".
    ``reset`` None draws subtract or zero (``clear`` only when asked: the draws, and so
    every seeded network, stay as they were before it existed)."""
    weight_bits = int(_pick(rng, weight_bits, list(range(2, 17))))
    if isinstance(state_bits, str):
        state_bits = _pick(rng, None, [None, 2, 3, 4, 5, 6, 7, 8])
    family = _pick(rng, family, FAMILIES)
    reset = _pick(rng, reset, ["subtract", "zero"])
    frac_bits = int(_pick(rng, frac_bits, [0, 0, 1, 3]))
    use_bias = bool(rng.integers(2)) if bias is None else bias
    w = quantize_symmetric(rng.normal(size=(n_out, n_in)), weight_bits).signed
    # Threshold near a fraction of the typical drive so layers neither die nor saturate.
    drive = float(np.abs(w).sum(axis=1).mean()) * input_max * (1 << frac_bits)
    threshold = max(1, int(drive * rng.uniform(0.05, 0.5)))
    beta_shift = int(rng.integers(0, 13))
    beta_num = int(rng.integers((1 << beta_shift) // 2 + 1, (1 << beta_shift) + 1))
    b = rng.integers(-threshold // 2, threshold // 2 + 1, size=n_out) if use_bias else None
    levels = None
    mem_bits = 24
    if state_bits is not None:
        levels, threshold = random_levels(rng, family, int(state_bits), threshold)
    else:
        need = max(threshold + 2, int(drive) + threshold).bit_length() + 2
        mem_bits = int(rng.integers(min(need, 30), 31))
    return IntLayer(w, threshold, beta_num, beta_shift, reset, b, frac_bits, levels, mem_bits,
                    rest)


def random_conv_layer(rng: np.random.Generator, in_shape, *, input_max: int = 1,
                      channels=None, kernel=None, stride=None, padding=None, pool=None,
                      **layer_kwargs) -> IntLayer:
    """One random convolutional layer reading ``in_shape = (C, H, W)``: 1-6 output
    channels, kernel 1-5 (at most the padded input), stride 1-2, padding below the
    kernel, pooling 1-2 when the output allows it. Other keywords go to
    :func:`random_layer` (weights, states, reset, bias, ...)."""
    c, h, w = in_shape
    channels = int(_pick(rng, channels, list(range(1, 7))))
    padding_pick = padding
    while True:
        k = int(_pick(rng, kernel, list(range(1, 6))))
        p = int(_pick(rng, padding_pick, list(range(k))))
        if k <= min(h, w) + 2 * p:
            break
        if kernel is not None and padding_pick is not None:
            raise ValueError(f"kernel {k} does not fit in_shape {in_shape} with padding {p}")
    s = int(_pick(rng, stride, [1, 1, 2]))
    ho, wo = (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1
    pool = int(_pick(rng, pool, [1, 2] if min(ho, wo) >= 2 else [1]))
    # draw the LIF part as a dense layer of C_out rows over the kernel's fan-in, then
    # give the weight its kernel shape (the bias is per channel either way)
    base = random_layer(rng, c * k * k, channels, input_max=input_max, **layer_kwargs)
    return IntLayer(base.weight.reshape(channels, c, k, k), base.threshold, base.beta_num,
                    base.beta_shift, base.reset, base.bias, base.frac_bits, base.levels,
                    base.mem_bits, base.rest, in_shape=(c, h, w), stride=s, padding=p,
                    pool=pool)


def random_conv_network(rng: np.random.Generator, *, in_shape=None, convs=None,
                        dense=None, input_bits=None, **layer_kwargs) -> IntNetwork:
    """A random chain of 1-2 convolutional layers (optionally pooled) then 0-2 dense
    layers. ``in_shape`` (default: 1-3 channels of 3-9 x 3-9), ``convs``: number of
    convolutions, ``dense``: sizes of the dense layers after them."""
    if in_shape is None:
        in_shape = (int(rng.integers(1, 4)), int(rng.integers(3, 10)),
                    int(rng.integers(3, 10)))
    input_bits = int(_pick(rng, input_bits, [1, 1, 1, 2, 4, 8]))
    convs = int(rng.integers(1, 3)) if convs is None else int(convs)
    if dense is None:
        dense = [int(rng.integers(1, 13)) for _ in range(int(rng.integers(0, 3)))]
    layers, shape = [], tuple(in_shape)
    for i in range(convs):
        layer = random_conv_layer(rng, shape, input_max=(1 << input_bits) - 1 if i == 0
                                  else 1, **layer_kwargs)
        layers.append(layer)
        shape = layer.out_shape
    n = layers[-1].n_out
    for size in dense:
        layers.append(random_layer(rng, n, size, **layer_kwargs))
        n = size
    return IntNetwork(tuple(layers), input_bits)


def random_network(rng: np.random.Generator, *, sizes=None, input_bits=None, **layer_kwargs
                   ) -> IntNetwork:
    """A random chain of layers. ``sizes``: [M, N_1, ..., N_L] (default: 1-3 layers of
    1-24 neurons); ``input_bits``: 1 (spikes) or more; other keywords go to
    :func:`random_layer` for every layer (None/"random" = drawn per layer)."""
    if sizes is None:
        sizes = [int(rng.integers(1, 25)) for _ in range(int(rng.integers(2, 5)))]
    input_bits = int(_pick(rng, input_bits, [1, 1, 1, 2, 4, 8]))
    layers = []
    for i in range(len(sizes) - 1):
        layers.append(random_layer(rng, sizes[i], sizes[i + 1],
                                   input_max=(1 << input_bits) - 1 if i == 0 else 1,
                                   **layer_kwargs))
    return IntNetwork(tuple(layers), input_bits)


def random_tawq_layer(rng: np.random.Generator, layer: IntLayer, steps: int, *,
                      n_codes=None, mult_bits=None, tawq_shift=None) -> IntLayer:
    """``layer`` (dense or convolutional) made a TaWQ layer of ``steps`` timesteps: any
    table of {-1, 0, +1} (not only the trainer's), random codes, multipliers below
    ``2**mult_bits`` and ``tawq_shift``; each drawn when None (1-16 codes, 1-13 bits,
    shift 0-10)."""
    from dataclasses import replace
    n_codes = int(rng.integers(1, 17)) if n_codes is None else int(n_codes)
    table = rng.integers(-1, 2, size=(n_codes, steps))
    codes = rng.integers(0, n_codes, size=layer.weight.shape)
    bits = int(rng.integers(1, 14)) if mult_bits is None else int(mult_bits)
    mult = rng.integers(0, 1 << bits, size=(steps, layer.channels))
    shift = int(rng.integers(0, 11)) if tawq_shift is None else int(tawq_shift)
    return replace(layer, weight=codes, tawq_table=table, tawq_mult=mult, tawq_shift=shift)


def random_tawq_network(rng: np.random.Generator, net: IntNetwork, steps: int, *,
                        share: float = 0.7, first: bool = True) -> IntNetwork:
    """``net`` with each layer made a TaWQ layer (:func:`random_tawq_layer`) with
    probability ``share``, the first always when ``first``."""
    layers = [random_tawq_layer(rng, la, steps) if rng.random() < share or (first and not i)
              else la for i, la in enumerate(net.layers)]
    return IntNetwork(tuple(layers), input_bits=net.input_bits)


SCHEDULE_STATE_BITS = (None, 2, 3, 4, 5, 6, 7, 8)
RESETS = ("subtract", "zero", "clear")
RESTS = ("level", "zero")


def schedule(seed: int) -> dict:
    """The regression sweeps' category schedule (tests/test_hdl_top.py, sim/regression.py):
    state width, family, reset mode, rest state and weight bits cycle with ``seed``, so
    any 16 consecutive seeds cover every state width, family, reset and rest, and weight
    bits run through 2..16. Keywords for :func:`random_network`."""
    return {"weight_bits": 2 + (seed * 7) % 15,
            "state_bits": SCHEDULE_STATE_BITS[seed % len(SCHEDULE_STATE_BITS)],
            "family": FAMILIES[(seed // 2) % len(FAMILIES)],
            "reset": RESETS[seed % len(RESETS)],
            "rest": RESTS[(seed // 3) % len(RESTS)]}


# input modes and accumulator banks by seed % 7 (7 is coprime with the 3-, 5-, 8- and
# 16-seed categories of the regressions, so every combination meets every category)
INPUT_SCHEDULE = [("auto", "auto"), ("static", "double"), ("streamed", "double"),
                  ("streamed", "single"), ("static", "single"), ("auto", "double"),
                  ("streamed", "auto")]


def input_schedule(seed: int) -> dict:
    """``CoreConfig`` keywords ``input`` and ``accumulators`` of regression seed ``seed``
    (:data:`INPUT_SCHEDULE`)."""
    mode, acc = INPUT_SCHEDULE[seed % len(INPUT_SCHEDULE)]
    return {"input": mode, "accumulators": acc}


def random_inputs(rng: np.random.Generator, net: IntNetwork, batch: int, steps: int,
                  density: float | None = None, static: bool | None = None) -> np.ndarray:
    """(batch, steps, M) int64 inputs: each entry active with probability ``density``
    (random if None); active entries are 1 for spikes, uniform in 1..max otherwise.
    ``static``: the same input at every timestep (what a static-input core takes; None:
    static for multi-bit input, as ``CoreConfig(input="auto")`` builds it)."""
    if density is None:
        density = float(rng.choice([0.0, 1.0, rng.uniform(0.05, 0.6)]))
    if static is None:
        static = net.input_bits > 1
    active = rng.random((batch, 1 if static else steps, net.n_in)) < density
    if static:
        active = np.repeat(active, steps, axis=1)
    if net.input_bits == 1:
        return active.astype(np.int64)
    values = rng.integers(1, net.input_max + 1, size=active.shape)
    if static:
        values = np.repeat(values[:, :1], steps, axis=1)
    return active * values
