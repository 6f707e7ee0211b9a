"""Encoded batches as the trainer sees them: one training batch, and the deterministic
evaluation chunks that the trainer, its plots, ``qsnn-hw verify`` and the board runner all
encode the same way (same config and ``which`` -> same spikes)."""

from __future__ import annotations

import numpy as np

from .config import TrainConfig
from .encoding import Encoded, encode

EVAL_BATCH = 512


def encode_batch(cfg: TrainConfig, x: np.ndarray, rng: np.random.Generator) -> Encoded:
    return encode(x, cfg.encoding, cfg.timesteps, cfg.input_bits, rng)


def eval_encodings(cfg: TrainConfig, x: np.ndarray, which: int):
    """Deterministic encoded chunks of an evaluation set (``which`` separates val/test)."""
    rng = np.random.default_rng([cfg.seed, 1000 + which])
    for s in range(0, len(x), EVAL_BATCH):
        yield s, encode_batch(cfg, x[s:s + EVAL_BATCH], rng)


__all__ = ["EVAL_BATCH", "encode_batch", "eval_encodings"]
