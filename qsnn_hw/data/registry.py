"""The dataset name -> loader registry: ``load_dataset(name, data_dir, timesteps, seed)``.

Kept apart from :mod:`.base` (the :class:`~.base.Dataset` container every loader builds)
so that the loaders import the container and this module imports the loaders, never the
other way round.
"""

from __future__ import annotations

from .base import Dataset
from .digits import load_digits_dataset
from .fashion_mnist import load_fashion_mnist
from .shd import load_shd

# name -> loader(data_dir, timesteps, seed); the order is the order shown to users.
_LOADERS = {
    "digits": lambda data_dir, timesteps, seed: load_digits_dataset(seed),
    "fashion_mnist": lambda data_dir, timesteps, seed: load_fashion_mnist(data_dir, seed),
    "shd": lambda data_dir, timesteps, seed: load_shd(data_dir, timesteps, seed),
}
DATASETS = tuple(_LOADERS)


def load_dataset(name: str, data_dir: str = "", timesteps: int = 100, seed: int = 0) -> Dataset:
    loader = _LOADERS.get(name)
    if loader is None:
        raise ValueError(f"dataset must be one of {', '.join(DATASETS)}; got {name!r}")
    return loader(data_dir, timesteps, seed)


__all__ = ["DATASETS", "load_dataset"]
