"""The :class:`Dataset` container and the name -> loader registry."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.model_selection import train_test_split

DATASETS = ("digits", "fashion_mnist", "shd")


class DatasetMissingError(FileNotFoundError):
    """A dataset's files are not where the loader looks (message says what to download)."""


@dataclass(frozen=True, eq=False)
class Dataset:
    """Splits of one dataset.

    ``x_*``: (N, M) float32 in [0, 1] (static data, encoded by the trainer) or
    (N, T, M) uint8 binary spikes (event data). ``y_*``: (N,) int64 class labels.
    """

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    n_classes: int

    @property
    def n_in(self) -> int:
        return self.x_train.shape[-1]

    @property
    def events(self) -> bool:
        return self.x_train.ndim == 3

    def summary(self) -> dict:
        return {"name": self.name, "n_in": self.n_in, "n_classes": self.n_classes,
                "events": self.events, "train": len(self.y_train), "val": len(self.y_val),
                "test": len(self.y_test)}


def stratified_split(x, y, size, seed: int):
    """``(x_rest, x_part, y_rest, y_part)`` with ``size`` samples (int or fraction) in the
    part, class proportions kept, seeded."""
    return train_test_split(x, y, test_size=size, stratify=y, random_state=seed)


def load_dataset(name: str, data_dir: str = "", timesteps: int = 100, seed: int = 0) -> Dataset:
    if name == "digits":
        from .digits import load_digits_dataset
        return load_digits_dataset(seed)
    if name == "fashion_mnist":
        from .fashion_mnist import load_fashion_mnist
        return load_fashion_mnist(data_dir, seed)
    if name == "shd":
        from .shd import load_shd
        return load_shd(data_dir, timesteps, seed)
    raise ValueError(f"dataset must be one of {', '.join(DATASETS)}; got {name!r}")
