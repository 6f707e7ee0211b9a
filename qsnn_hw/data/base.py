"""The :class:`Dataset` container and the helpers every loader uses (the name -> loader
registry is :mod:`.registry`)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


class DatasetMissingError(FileNotFoundError):
    """A dataset's files are not where the loader looks (message says what to download)."""


@dataclass(frozen=True, eq=False)
class Dataset:
    """Splits of one dataset.

    ``x_*``: (N, M) float32 in [0, 1] (static data, encoded by the trainer) or
    (N, T, M) uint8 binary spikes (event data). ``y_*``: (N,) int64 class labels.
    ``image_shape``: (C, H, W) when the M inputs are an image flattened channel-major
    (what convolutions read), None otherwise.
    """

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    n_classes: int
    image_shape: tuple | None = None

    @property
    def n_in(self) -> int:
        return self.x_train.shape[-1]

    @property
    def events(self) -> bool:
        return self.x_train.ndim == 3

    def summary(self) -> dict:
        return {"name": self.name, "n_in": self.n_in, "n_classes": self.n_classes,
                "events": self.events, "train": len(self.y_train), "val": len(self.y_val),
                "test": len(self.y_test),
                "image_shape": None if self.image_shape is None else list(self.image_shape)}


def stratified_split(x, y, size, seed: int):
    """``(x_rest, x_part, y_rest, y_part)`` with ``size`` samples (an int, or a fraction of
    ``len(y)`` rounded up) in the part, class proportions kept, seeded: the same ``seed``
    gives the same split.

    Each class gets ``size * n_class / n`` samples of the part, rounded down, and the samples
    still missing go to the classes with the largest remainders (ties: lower class first);
    which samples of a class go to the part, and the order of both outputs, come from
    ``numpy.random.default_rng(seed)``."""
    y = np.asarray(y)
    x = np.asarray(x)
    n = len(y)
    if len(x) != n:
        raise ValueError(f"{len(x)} samples but {n} labels")
    k = math.ceil(size * n) if isinstance(size, float) else int(size)
    classes, counts = np.unique(y, return_counts=True)
    if not 0 < k < n or k < len(classes) or n - k < len(classes):
        raise ValueError(f"cannot split {n} samples of {len(classes)} classes into "
                         f"{n - k} + {k} with every class on both sides")
    exact = k * counts / n
    quota = np.floor(exact).astype(np.int64)
    order = np.lexsort((np.arange(len(classes)), -(exact - quota)))
    quota[order[:k - quota.sum()]] += 1
    rng = np.random.default_rng(seed)
    part, rest = [], []
    for c, q in zip(classes, quota, strict=True):
        idx = rng.permutation(np.flatnonzero(y == c))
        part.append(idx[:q])
        rest.append(idx[q:])
    part = rng.permutation(np.concatenate(part))
    rest = rng.permutation(np.concatenate(rest))
    return x[rest], x[part], y[rest], y[part]
