"""Datasets with a seeded, stratified train/validation/test split.

* ``digits``: the UCI 8x8 handwritten digits (1797 images, CC BY 4.0; ``digits.npz``
  ships with the wheel, so everything works offline); pixels / 16 in [0, 1]; test split =
  360 samples.
* ``fashion_mnist``: the four IDX files (optionally .gz) from a user directory.
* ``shd``: Spiking Heidelberg Digits HDF5 files (``shd_train.h5``, ``shd_test.h5``),
  binned into T timesteps of binary spikes over 700 channels.

``load_dataset(name, data_dir, timesteps, seed)`` returns a :class:`Dataset`.
"""

from .base import Dataset, DatasetMissingError
from .digits import load_digits_dataset
from .fashion_mnist import load_fashion_mnist, read_idx
from .registry import DATASETS, load_dataset
from .shd import load_shd

__all__ = ["DATASETS", "Dataset", "DatasetMissingError", "load_dataset",
           "load_digits_dataset", "load_fashion_mnist", "read_idx", "load_shd"]
