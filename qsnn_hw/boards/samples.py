"""Test samples for a trained artifact, encoded exactly as the trainer evaluated them
(the same deterministic test-set encoding), so board results compare with the trainer's
and the golden model's numbers. Artifacts without a dataset (random networks) get seeded
random inputs and no labels."""

from __future__ import annotations

import numpy as np

from ..artifact import Artifact


def test_samples(art: Artifact, n: int, *, seed: int = 0, steps: int = 8
                 ) -> tuple[np.ndarray, np.ndarray | None, str]:
    """``(x (B, T, M) int64, labels or None, description)`` with B <= n."""
    cfg_dict = art.config or {}
    if "dataset" in cfg_dict and "timesteps" in cfg_dict:
        from ..data import load_dataset
        from ..train.config import TrainConfig
        from ..train.trainer import eval_encodings
        cfg = TrainConfig.from_dict(cfg_dict)
        data = load_dataset(cfg.dataset, cfg.data_dir, cfg.timesteps, cfg.data_seed)
        xs, ys = data.x_test[:n], data.y_test[:n]
        chunks = [enc.golden_input() for _, enc in eval_encodings(cfg, xs, 1)]
        return np.concatenate(chunks), np.asarray(ys), f"{cfg.dataset} test set"
    from ..testing import random_inputs
    rng = np.random.default_rng(seed)
    return random_inputs(rng, art.network, n, steps, density=0.2), None, "random inputs"
