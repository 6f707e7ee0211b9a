"""Adam, cosine-annealing learning rate and global-norm gradient clipping."""

from __future__ import annotations

import math

import numpy as np


def cosine_lr(epoch: int, epochs: int, lr: float, lr_min: float) -> float:
    """``lr_min + (lr - lr_min) * (1 + cos(pi * epoch / epochs)) / 2`` (epoch from 0)."""
    return lr_min + (lr - lr_min) * 0.5 * (1.0 + math.cos(math.pi * epoch / max(epochs, 1)))


def clip_grad_norm(grads: dict, max_norm: float) -> float:
    """Scale all gradients so their global L2 norm is at most ``max_norm`` (0 = no clip).
    Returns the norm before clipping (NaN/inf if a gradient is not finite)."""
    norm = math.sqrt(sum(float(np.sum(np.square(g, dtype=np.float64))) for g in grads.values()))
    if max_norm > 0 and math.isfinite(norm) and norm > max_norm:
        s = max_norm / norm
        for k in grads:
            grads[k] = grads[k] * s
    return norm


class Adam:
    """Adam (Kingma & Ba) with PyTorch's defaults; state is a dict of arrays (checkpointable)."""

    def __init__(self, beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8):
        self.beta1, self.beta2, self.eps = beta1, beta2, eps
        self.step_count = 0
        self.m: dict = {}
        self.v: dict = {}

    def step(self, params: dict, grads: dict, lr: float) -> None:
        self.step_count += 1
        b1, b2 = self.beta1, self.beta2
        c1 = 1.0 - b1 ** self.step_count
        c2 = 1.0 - b2 ** self.step_count
        for k, g in grads.items():
            p = params[k]
            m = self.m.get(k)
            if m is None:
                m = self.m[k] = np.zeros_like(p)
                self.v[k] = np.zeros_like(p)
            v = self.v[k]
            m *= b1
            m += (1 - b1) * g
            v *= b2
            v += (1 - b2) * np.square(g)
            # p - lr * (m / c1) / (sqrt(v / c2) + eps), in two buffers of m's dtype
            step = np.divide(m, c1, out=np.empty_like(m))
            step *= lr
            den = np.divide(v, c2, out=np.empty_like(v))
            np.sqrt(den, out=den)
            den += self.eps
            step /= den
            params[k] = np.subtract(p, step, out=step).astype(p.dtype, copy=False)

    def state(self) -> dict:
        out = {"adam.step": np.asarray(self.step_count)}
        for k in self.m:
            out[f"adam.m.{k}"] = self.m[k]
            out[f"adam.v.{k}"] = self.v[k]
        return out

    def load_state(self, arrays: dict) -> None:
        self.step_count = int(arrays["adam.step"])
        self.m = {k[len("adam.m."):]: np.array(v) for k, v in arrays.items()
                  if k.startswith("adam.m.")}
        self.v = {k[len("adam.v."):]: np.array(v) for k, v in arrays.items()
                  if k.startswith("adam.v.")}
