"""The :class:`Dataset` container and the helpers every loader uses (the name -> loader
registry is :mod:`.registry`)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.model_selection import train_test_split


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
    """``(x_rest, x_part, y_rest, y_part)`` with ``size`` samples (int or fraction) in the
    part, class proportions kept, seeded."""
    return train_test_split(x, y, test_size=size, stratify=y, random_state=seed)

