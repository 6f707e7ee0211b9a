"""Losses on output spike counts (SQUAT paper, eqs. 7-8; snnTorch ``ce_count_loss`` and
``mse_count_loss``). Each returns ``(loss, dL/dcounts)``; since counts = sum over time
of the output spikes, ``dL/dz[t] = dL/dcounts`` for every timestep."""

from __future__ import annotations

import numpy as np


def ce_count_loss(counts: np.ndarray, labels: np.ndarray) -> tuple[float, np.ndarray]:
    """Mean cross-entropy of ``softmax(counts)`` against integer ``labels``."""
    c = counts.astype(np.float64)
    c = c - c.max(axis=1, keepdims=True)
    logp = c - np.log(np.exp(c).sum(axis=1, keepdims=True))
    b = counts.shape[0]
    loss = -float(np.mean(logp[np.arange(b), labels]))
    grad = np.exp(logp)
    grad[np.arange(b), labels] -= 1.0
    return loss, grad / b


def mse_count_loss(counts: np.ndarray, labels: np.ndarray, steps: int,
                   correct_rate: float = 0.8,
                   incorrect_rate: float = 0.2) -> tuple[float, np.ndarray]:
    """Mean squared error between counts and the target ``correct_rate*T`` for the true
    class, ``incorrect_rate*T`` for the others (mean over samples and classes)."""
    c = counts.astype(np.float64)
    target = np.full_like(c, incorrect_rate * steps)
    target[np.arange(c.shape[0]), labels] = correct_rate * steps
    diff = c - target
    return float(np.mean(diff ** 2)), 2.0 * diff / diff.size


def count_loss(name: str, counts, labels, steps: int, correct_rate: float = 0.8,
               incorrect_rate: float = 0.2):
    if name == "ce":
        return ce_count_loss(counts, labels)
    return mse_count_loss(counts, labels, steps, correct_rate, incorrect_rate)


def predict(counts: np.ndarray) -> np.ndarray:
    """argmax of the counts, ties to the lowest index (the contract)."""
    return np.argmax(counts, axis=1)
