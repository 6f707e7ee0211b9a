"""Export a trained :class:`~qsnn_hw.train.model.SNN` to the integer contract.

Per layer, with per-tensor weight scale ``s_w`` and input scale ``s_in`` (1 for spikes,
``1/(2**input_bits-1)`` for direct multi-bit input), one membrane unit is
``unit = s_w * s_in / 2**frac_bits`` and

* ``weight = q`` (the quantizer's signed integers; layers with weight_mode ``none``
  are quantized here, symmetric per-tensor at ``float_weight_bits``, default 16)
* ``threshold = round_half_up(theta / unit)``, ``bias = round_half_up(b / unit)``
* a batch-normalized layer exports its eval-mode form folded in:
  ``W * k`` and ``b = beta_bn - running_mean * k`` with ``k = gamma / sqrt(running_var +
  eps)`` per output channel (:func:`~.batchnorm.folded_bn`), before the weight quantizer
* a convolutional layer exports ``(C_out, C, K, K)`` weights, its input shape, stride,
  padding and pooling (the contract's convolutional layer)
* a TaWQ layer (weight_mode ``tawq``) exports its per-weight codes, the shared table of
  ternary sequences, the multipliers of its per-(timestep, channel) scale and
  ``s_w = std W`` (:func:`~.tawq.tawq_weights`; docs/fixed-point.md, "TaWQ layers")
* ``beta_num = round_half_up(beta * 2**beta_shift)`` (clipped to [1, 2**beta_shift])
* ``levels = levels_to_fixed_point(float_levels, frac_bits, unit=s_w * s_in)``

``frac_bits = -1`` (auto) picks the smallest value that keeps the level table strictly
increasing and resolves the threshold in at least ``AUTO_THRESHOLD_STEPS`` steps.
``mem_bits = -1`` (auto) sizes the saturating membrane of unquantized layers to hold
``+-AUTO_MEM_THRESHOLDS * threshold`` (at most 32 bits).
"""

from __future__ import annotations

import numpy as np

from ..contract import MAX_MEM_BITS, IntLayer, IntNetwork, signed_width
from ..quant.levels import levels_to_fixed_point, round_half_up
from ..quant.tawq import code_values
from ..quant.weights import WeightQuantizer
from .batchnorm import folded_bn
from .config import TrainConfig
from .tawq import tawq_weights

AUTO_THRESHOLD_STEPS = 256
AUTO_MEM_THRESHOLDS = 16
MAX_AUTO_FRAC_BITS = 32


class ExportError(ValueError):
    """The trained model cannot be expressed in the integer contract (message says why)."""


def _auto_frac_bits(theta: float, unit0: float, levels) -> int:
    for f in range(MAX_AUTO_FRAC_BITS + 1):
        if round_half_up(theta / unit0 * 2.0 ** f) < AUTO_THRESHOLD_STEPS:
            continue
        if levels is not None:
            try:
                levels_to_fixed_point(levels, f, unit=unit0)
            except ValueError:
                continue
        return f
    raise ExportError(f"no frac_bits <= {MAX_AUTO_FRAC_BITS} represents this layer's level "
                      f"table and threshold; use fewer state bits or a wider level range")


def deploy_layer(model, index: int, cfg: TrainConfig, input_scale: float):
    """``(IntLayer, info dict)`` for layer ``index`` of ``model``, a
    :class:`~qsnn_hw.train.model.SNN` (not imported here: the model asks this function
    for its deployed grid at every quantization-aware forward pass)."""
    layer = model.layers[index]
    lc = layer.cfg
    p = model.params
    w = p[layer.key("weight")].astype(np.float64)
    b = p[layer.key("bias")].astype(np.float64) if layer.key("bias") in p else None
    if lc.batch_norm:   # eval-mode batch normalization is affine per channel: folded
        w, b, _, _ = (np.asarray(a, np.float64) for a in folded_bn(layer, p))
    tw = None
    if lc.weight_mode == "tawq":   # codes + table + multipliers (train/tawq.py)
        tw = tawq_weights(w, lc.weight_bits, cfg.timesteps)
        s_w = tw.sigma
    else:
        if lc.weight_mode == "none":
            wq = WeightQuantizer("symmetric", cfg.float_weight_bits)
        else:
            wq = WeightQuantizer(lc.weight_scheme, lc.weight_bits)
        if wq.per_channel:
            raise ExportError(f"layer {index}: per-channel weight scales cannot share one "
                              f"integer threshold; use per-tensor scales")
        qt = wq(w)
        s_w = float(qt.scale)
    unit0 = s_w * input_scale
    theta = lc.threshold
    levels_f = layer.sq.levels if layer.sq is not None else None
    f = cfg.frac_bits if cfg.frac_bits >= 0 else _auto_frac_bits(theta, unit0, levels_f)
    scale = 2.0 ** f / unit0  # real value -> membrane units
    threshold = int(round_half_up(theta * scale))
    if threshold < 1:
        raise ExportError(f"layer {index}: threshold {theta} is below one membrane unit "
                          f"({unit0 / 2 ** f:g}); raise --frac-bits")
    bias = None
    if b is not None:
        bias = round_half_up(b * scale).astype(np.int64)
    beta = float(p[layer.key("beta")])
    beta_num = int(np.clip(round_half_up(beta * 2.0 ** cfg.beta_shift), 1, 1 << cfg.beta_shift))
    levels = None
    mem_bits = 24
    if levels_f is not None:
        try:
            levels = levels_to_fixed_point(levels_f, f, unit=unit0)
        except ValueError as exc:
            raise ExportError(f"layer {index}: {exc} (set --frac-bits higher or -1 for auto)") \
                from None
    elif cfg.mem_bits > 0:
        mem_bits = cfg.mem_bits
    else:
        reach = AUTO_MEM_THRESHOLDS * threshold
        mem_bits = min(signed_width(-reach, reach), MAX_MEM_BITS)
        if threshold >= (1 << (mem_bits - 1)) - 1:
            raise ExportError(f"layer {index}: threshold {threshold} does not fit a "
                              f"{MAX_MEM_BITS}-bit membrane; lower --frac-bits or "
                              f"--float-weight-bits")
    tawq = {}
    if tw is not None:
        tawq = dict(tawq_table=tw.table, tawq_mult=tw.mult, tawq_shift=tw.shift)
    try:
        il = IntLayer(weight=qt.signed if tw is None else tw.codes, threshold=threshold,
                      beta_num=beta_num,
                      beta_shift=cfg.beta_shift, reset=lc.reset, bias=bias, frac_bits=f,
                      levels=levels, mem_bits=mem_bits,
                      rest=lc.rest_mode if levels is not None else "level",
                      in_shape=layer.op.in_shape, stride=layer.op.stride,
                      padding=layer.op.padding, pool=lc.pool, **tawq)
    except ValueError as exc:
        raise ExportError(f"layer {index}: {exc}") from None
    if tw is None:
        wquant = {"scheme": wq.scheme, "bits": wq.bits,
                  "deployed_by": "ptq" if lc.weight_mode != "qat" else "qat"}
    else:
        wquant = {"scheme": "tawq", "bits": lc.weight_bits, "deployed_by": "tawq",
                  "periods": tw.periods, "code_values": [float(v) for v in
                                                         code_values(tw.periods)]}
    info = {
        "weight_scale": s_w,
        "weight_zero_point": int(qt.zero_point) if tw is None else 0,
        "weight_quantizer": wquant,
        "input_scale": input_scale,
        "membrane_unit": unit0 / 2 ** f,
        "threshold_float": theta,
        "beta_float": beta,
        "beta_deployed": beta_num / 2 ** cfg.beta_shift,
        "levels_float": None if levels_f is None else [float(v) for v in levels_f],
        "state_family": lc.state_family if levels_f is not None else None,
        "weight_mode": lc.weight_mode,
        "state_mode": lc.state_mode,
    }
    return il, info


def deploy(model, cfg: TrainConfig, input_scale: float, input_bits: int):
    """``(IntNetwork, layer_info list)`` for the whole model."""
    layers, infos = [], []
    for i in range(len(model.layers)):
        il, info = deploy_layer(model, i, cfg, input_scale if i == 0 else 1.0)
        layers.append(il)
        infos.append(info)
    try:
        net = IntNetwork(tuple(layers), input_bits=input_bits)
    except ValueError as exc:
        raise ExportError(str(exc)) from None
    return net, infos
