"""scikit-learn's 8x8 digits: offline, 1797 samples, 10 classes."""

from __future__ import annotations

import numpy as np

from .base import Dataset, stratified_split

TEST_SIZE = 360
VAL_SIZE = 180


def load_digits_dataset(seed: int = 0) -> Dataset:
    """Stratified seeded split: 1257 train / 180 validation / 360 test; pixels / 16."""
    from sklearn.datasets import load_digits
    d = load_digits()
    x = (d.data / 16.0).astype(np.float32)
    y = d.target.astype(np.int64)
    x_rest, x_test, y_rest, y_test = stratified_split(x, y, TEST_SIZE, seed)
    x_train, x_val, y_train, y_val = stratified_split(x_rest, y_rest, VAL_SIZE, seed)
    return Dataset("digits", x_train, y_train, x_val, y_val, x_test, y_test, 10,
                   image_shape=(1, 8, 8))
