"""The 8x8 handwritten digits, built in (no download): 1797 samples, 10 classes.

``digits.npz`` beside this module holds the test set of the UCI "Optical Recognition of
Handwritten Digits" data set (E. Alpaydin, C. Kaynak, 1998; UCI Machine Learning Repository,
https://doi.org/10.24432/C50P49), licensed CC BY 4.0: 1797 images of 8x8 pixels, each
pixel a count 0..16 (``images``, uint8, (1797, 8, 8)) and their labels 0..9 (``labels``,
uint8). It is the copy scikit-learn ships as ``load_digits`` (written once from it, values
unchanged), so results match those made with scikit-learn's loader.

The split of ``data_seed`` 0, the one every measurement in this project was made with, is
stored beside the data (``split0_train``, ``split0_val``, ``split0_test``: sample indices
in order): it is the split scikit-learn's stratified ``train_test_split`` made with
``random_state=0`` (360 test samples, then 180 validation samples from the rest), recorded
once when the dependency was dropped, so seed-0 runs see the same samples in the same
order as before. Other data seeds use :func:`~.base.stratified_split`.
"""

from __future__ import annotations

from importlib import resources

import numpy as np

from .base import Dataset, stratified_split

TEST_SIZE = 360
VAL_SIZE = 180
IMAGE_SHAPE = (1, 8, 8)     # (channels, height, width) of the flat 64 features


def digits_arrays() -> tuple[np.ndarray, np.ndarray]:
    """``(images, labels)`` as stored: (1797, 8, 8) uint8 counts 0..16 and (1797,) uint8."""
    with resources.files(__package__).joinpath("digits.npz").open("rb") as f, \
            np.load(f) as z:
        return z["images"], z["labels"]


def recorded_split() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The stored ``data_seed`` 0 split: (train, validation, test) sample indices."""
    with resources.files(__package__).joinpath("digits.npz").open("rb") as f, \
            np.load(f) as z:
        return tuple(z[f"split0_{k}"].astype(np.int64) for k in ("train", "val", "test"))


def load_digits_dataset(seed: int = 0) -> Dataset:
    """Stratified seeded split: 1257 train / 180 validation / 360 test; pixels / 16.
    Seed 0 is the recorded split (module docstring)."""
    images, labels = digits_arrays()
    x = (images.reshape(len(images), -1) / np.float32(16)).astype(np.float32)
    y = labels.astype(np.int64)
    if seed == 0:
        tr, va, te = recorded_split()
        return Dataset("digits", x[tr], y[tr], x[va], y[va], x[te], y[te], 10,
                       image_shape=IMAGE_SHAPE)
    x_rest, x_test, y_rest, y_test = stratified_split(x, y, TEST_SIZE, seed)
    x_train, x_val, y_train, y_val = stratified_split(x_rest, y_rest, VAL_SIZE, seed)
    return Dataset("digits", x_train, y_train, x_val, y_val, x_test, y_test, 10,
                   image_shape=IMAGE_SHAPE)
