"""Batch normalization of a layer's current, per output channel: its running statistics
and its eval-mode form folded into the layer's weights and bias (docs/training.md).

``layer`` below is a :class:`~.model.LIFLayer` (its ``key`` names the parameters, its
``op`` spreads per-channel vectors); parameters ``bn_weight`` (gamma), ``bn_bias``
(beta), ``bn_mean`` and ``bn_var`` (running statistics), each (C_out,).
"""

from __future__ import annotations

import numpy as np

BN_EPS = 1e-5
BN_MOMENTUM = 0.1


def folded_bn(layer, params: dict):
    """Eval-mode batch normalization of ``layer`` folded into its linear operation:
    ``(w_f, b_f, k, inv_sd)`` with ``inv_sd = 1 / sqrt(running_var + eps)``,
    ``k = gamma * inv_sd`` per output channel, ``w_f = W * k`` and
    ``b_f = beta_bn - running_mean * k`` -- then ``w_f x + b_f = BN(W x)``."""
    w = params[layer.key("weight")]
    inv_sd = 1.0 / np.sqrt(params[layer.key("bn_var")].astype(np.float64) + BN_EPS)
    k = params[layer.key("bn_weight")] * inv_sd
    w_f = w * layer.op.channel_view(k)
    b_f = params[layer.key("bn_bias")] - params[layer.key("bn_mean")] * k
    return w_f.astype(w.dtype), b_f.astype(w.dtype), k.astype(w.dtype), inv_sd.astype(w.dtype)


def update_running_stats(layer, params: dict, mean, var, count: int) -> None:
    """PyTorch's rule: exponential averages, the variance unbiased."""
    m = BN_MOMENTUM
    for name, value in (("bn_mean", mean), ("bn_var", var * count / max(count - 1, 1))):
        key = layer.key(name)
        params[key] = ((1 - m) * params[key] + m * value).astype(params[key].dtype)


__all__ = ["BN_EPS", "BN_MOMENTUM", "folded_bn", "update_running_stats"]
