"""The trainable network: dense layers of LIF neurons, float forward pass with optional
fake quantization (QAT weights, SQUAT states) and backpropagation through time.

Per layer and timestep (``x`` the input, ``theta`` the threshold):

* ``I[t] = W x[t] + b`` -- for all timesteps in one matrix product (once if ``x`` is static)
* ``v[t] = beta*u[t-1] + I[t] - theta*z[t-1]`` (subtract reset) or
  ``v[t] = (1 - z[t-1]) * (beta*u[t-1] + I[t])`` (zero reset)
* ``u[t] = Q(v[t])`` under SQUAT (nearest level, straight-through backward), else ``v[t]``
* ``z[t] = H(u[t] - theta)`` forward, surrogate derivative backward

``u[-1]`` is 0, or the level nearest 0 when states are quantized (the contract). As in
snnTorch the reset term is detached from the graph by default (``detach_reset``).
Arrays are time-major inside: ``(T, B, N)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..quant.levels import LEVEL_FAMILIES
from ..quant.state import LevelQuantizer
from ..quant.weights import WeightQuantizer
from .config import LayerConfig
from .surrogate import SpikeFunction


def state_quantizer(lc: LayerConfig) -> LevelQuantizer:
    """The float level table of a layer, in the trainer's membrane units."""
    kwargs = dict(lower_limit=lc.lower_limit, upper_limit=lc.upper_limit)
    for field_name, keyword in LEVEL_FAMILIES[lc.state_family].layer_params:
        kwargs[keyword] = getattr(lc, field_name)
    return LevelQuantizer.from_family(lc.state_family, lc.state_bits, lc.threshold, **kwargs)


def weight_quantizer(lc: LayerConfig) -> WeightQuantizer:
    return WeightQuantizer(lc.weight_scheme, lc.weight_bits)


@dataclass
class LayerCache:
    x: np.ndarray          # (B, M) static or (T, B, M) input
    w_used: np.ndarray     # weight used in the forward pass (fake-quantized under QAT)
    cur: np.ndarray        # (B, N) static or (T, B, N) input current
    u: np.ndarray          # (T+1, B, N): u[-1] (initial state) then u[0..T-1]
    z: np.ndarray          # (T, B, N) spikes
    g: np.ndarray          # (T, B, N) dz/du
    beta: float


class LIFLayer:
    """One dense LIF layer; parameters live in the owning :class:`SNN`'s dict."""

    def __init__(self, index: int, n_in: int, lc: LayerConfig):
        self.index = index
        self.n_in = n_in
        self.cfg = lc
        self.sq = state_quantizer(lc) if lc.state_mode != "none" else None
        self.wq = weight_quantizer(lc) if lc.weight_mode != "none" else None

    @property
    def n_out(self) -> int:
        return self.cfg.size

    def key(self, name: str) -> str:
        return f"layer{self.index}.{name}"

    def forward(self, params: dict, x: np.ndarray, steps: int, spike: SpikeFunction,
                quant: bool, detach_reset: bool, keep: bool):
        lc = self.cfg
        w = params[self.key("weight")]
        if quant and lc.weight_mode == "qat":
            w = self.wq(w).fake.astype(w.dtype)
        b = params.get(self.key("bias"))
        beta = float(params[self.key("beta")])
        theta = lc.threshold
        static = x.ndim == 2
        if static:
            cur = x @ w.T
        else:
            tt, bb, m = x.shape
            cur = (x.reshape(tt * bb, m) @ w.T).reshape(tt, bb, -1)
        if b is not None:
            cur = cur + b
        squat = quant and lc.state_mode == "squat"
        batch = x.shape[-2]
        dtype = w.dtype
        u0 = self.sq(np.zeros(1))[0] if squat else 0.0
        u = np.full((batch, self.n_out), u0, dtype=dtype)
        z = np.zeros((batch, self.n_out), dtype=dtype)
        us = np.empty((steps + 1, batch, self.n_out), dtype=dtype) if keep else None
        zs = np.empty((steps, batch, self.n_out), dtype=dtype)
        gs = np.empty((steps, batch, self.n_out), dtype=dtype) if keep else None
        if keep:
            us[0] = u
        for t in range(steps):
            i_t = cur if static else cur[t]
            if lc.reset == "subtract":
                v = beta * u + i_t - theta * z
            else:
                v = (1.0 - z) * (beta * u + i_t)
            u = self.sq(v).astype(dtype) if squat else v
            z, g = spike(u - theta)
            zs[t] = z
            if keep:
                us[t + 1] = u
                gs[t] = g
        cache = LayerCache(x, w, cur, us, zs, gs, beta) if keep else None
        return zs, cache

    def backward(self, params: dict, cache: LayerCache, dz_ext: np.ndarray,
                 detach_reset: bool, need_dx: bool):
        """Gradients of the loss given ``dL/dz`` (T, B, N) from above. Returns
        ``(grads dict, dL/dx or None)``."""
        lc = self.cfg
        theta = lc.threshold
        beta = cache.beta
        steps = dz_ext.shape[0]
        static = cache.x.ndim == 2
        d_cur = np.empty_like(dz_ext)
        carry_u = np.zeros_like(dz_ext[0])
        carry_z = np.zeros_like(dz_ext[0])
        dbeta = 0.0
        for t in range(steps - 1, -1, -1):
            du = (dz_ext[t] + carry_z) * cache.g[t] + carry_u
            dv = du  # straight-through estimator of Q under SQUAT
            u_prev = cache.u[t]
            if lc.reset == "subtract":
                d_cur[t] = dv
                carry_u = beta * dv
                dbeta += float(np.sum(dv * u_prev))
                carry_z = -theta * dv if not detach_reset else carry_z
            else:
                z_prev = cache.z[t - 1] if t > 0 else 0.0
                dvm = dv * (1.0 - z_prev)
                d_cur[t] = dvm
                carry_u = beta * dvm
                dbeta += float(np.sum(dvm * u_prev))
                if not detach_reset:
                    i_t = cache.cur if static else cache.cur[t]
                    carry_z = -dv * (beta * u_prev + i_t)
        grads = {}
        if static:
            d_static = d_cur.sum(axis=0)  # the same current feeds every timestep
            grads[self.key("weight")] = d_static.T @ cache.x
            db = d_static.sum(axis=0)
            dx = d_static @ cache.w_used if need_dx else None
        else:
            tt, bb, n = d_cur.shape
            flat = d_cur.reshape(tt * bb, n)
            grads[self.key("weight")] = flat.T @ cache.x.reshape(tt * bb, -1)
            db = flat.sum(axis=0)
            dx = (flat @ cache.w_used).reshape(tt, bb, -1) if need_dx else None
        if self.key("bias") in params:
            grads[self.key("bias")] = db
        if lc.learn_beta:
            grads[self.key("beta")] = np.asarray(dbeta, dtype=dz_ext.dtype)
        return grads, dx


class SNN:
    """A feed-forward chain of :class:`LIFLayer`.

    ``params``: dict name -> array (``layer{i}.weight`` (N, M), ``layer{i}.bias`` (N,),
    ``layer{i}.beta`` scalar). ``spike``: the spike function (surrogate).
    """

    def __init__(self, n_in: int, layer_cfgs, spike: SpikeFunction, beta_shift: int = 12,
                 detach_reset: bool = True, dtype=np.float32):
        self.n_in = int(n_in)
        self.layers = []
        m = self.n_in
        for i, lc in enumerate(layer_cfgs):
            self.layers.append(LIFLayer(i, m, lc))
            m = lc.size
        self.spike = spike
        self.beta_shift = beta_shift
        self.detach_reset = detach_reset
        self.dtype = np.dtype(dtype)
        self.params: dict = {}

    def init_params(self, rng: np.random.Generator, init_scale: float = 1.0) -> None:
        """PyTorch ``nn.Linear`` default: U(-1/sqrt(M), 1/sqrt(M)) for weights and biases."""
        self.params = {}
        for layer in self.layers:
            bound = init_scale / np.sqrt(layer.n_in)
            w = rng.uniform(-bound, bound, size=(layer.n_out, layer.n_in))
            self.params[layer.key("weight")] = w.astype(self.dtype)
            if layer.cfg.bias:
                b = rng.uniform(-bound, bound, size=layer.n_out)
                self.params[layer.key("bias")] = b.astype(self.dtype)
            self.params[layer.key("beta")] = np.asarray(layer.cfg.beta, dtype=self.dtype)

    def clamp(self) -> None:
        """Keep learnable betas deployable: in [2**-beta_shift, 1]."""
        lo = 2.0 ** -self.beta_shift
        for layer in self.layers:
            k = layer.key("beta")
            self.params[k] = np.clip(self.params[k], lo, 1.0).astype(self.dtype)

    @property
    def n_out(self) -> int:
        return self.layers[-1].n_out

    def forward(self, x: np.ndarray, steps: int, quant: bool = True, keep: bool = False):
        """Run the float network. ``x``: (B, M) static input (fed every timestep) or
        (T, B, M) spikes. ``quant``: apply training-time quantization (QAT weights,
        SQUAT states); False gives the plain float model. Returns ``(spikes per layer
        (T, B, N), caches or None)``."""
        h = x.astype(self.dtype, copy=False)
        outs, caches = [], []
        for layer in self.layers:
            z, cache = layer.forward(self.params, h, steps, self.spike, quant,
                                     self.detach_reset, keep)
            outs.append(z)
            caches.append(cache)
            h = z
        return outs, (caches if keep else None)

    def backward(self, caches, d_out: np.ndarray) -> dict:
        """BPTT: gradients of every parameter given ``dL/dz`` of the output layer (T, B, N)."""
        grads: dict = {}
        dz = d_out.astype(self.dtype, copy=False)
        for i in range(len(self.layers) - 1, -1, -1):
            g, dz = self.layers[i].backward(self.params, caches[i], dz, self.detach_reset,
                                            need_dx=i > 0)
            grads.update(g)
        return grads
