"""Spiking Heidelberg Digits (Cramer et al.) from its HDF5 files.

Each file holds ``spikes/times`` (per sample, seconds), ``spikes/units`` (per sample,
channel 0..699) and ``labels`` (20 classes). Spikes are binned into ``timesteps`` equal
bins over ``[0, max_time)``; a bin holds 1 if the channel fired in it at least once.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .base import Dataset, DatasetMissingError, stratified_split

N_CHANNELS = 700
N_CLASSES = 20
MAX_TIME = 1.0
URL = "https://zenkelab.org/datasets/ (shd_train.h5.gz, shd_test.h5.gz; gunzip them)"


def bin_spikes(times, units, timesteps: int, max_time: float = MAX_TIME,
               n_channels: int = N_CHANNELS) -> np.ndarray:
    """(N, T, C) uint8 binary spike raster from per-sample event lists (vectorised over
    all events of all samples)."""
    if len(times) != len(units):
        raise ValueError(f"{len(times)} spike-time lists but {len(units)} unit lists")
    n_t = np.array([np.size(t) for t in times], dtype=np.int64)
    n_u = np.array([np.size(u) for u in units], dtype=np.int64)
    if np.any(n_t != n_u):
        i = int(np.argmax(n_t != n_u))
        raise ValueError(f"sample {i}: {n_t[i]} spike times but {n_u[i]} units")
    out = np.zeros((len(times), timesteps, n_channels), dtype=np.uint8)
    if not n_t.sum():
        return out
    t = np.concatenate([np.asarray(x, dtype=np.float64).ravel() for x in times])
    u = np.concatenate([np.asarray(x, dtype=np.int64).ravel() for x in units])
    sample = np.repeat(np.arange(len(times)), n_t)
    if u.min() < 0 or u.max() >= n_channels:
        i = int(sample[np.argmax((u < 0) | (u >= n_channels))])
        raise ValueError(f"sample {i}: spike unit outside [0, {n_channels - 1}]")
    keep = (t >= 0) & (t < max_time)
    b = np.minimum((t[keep] / max_time * timesteps).astype(np.int64), timesteps - 1)
    out[sample[keep], b, u[keep]] = 1
    return out


def read_shd_file(path, timesteps: int, max_time: float = MAX_TIME):
    from .._extras import need
    h5py = need("h5py")
    try:
        with h5py.File(path, "r") as f:
            times = list(f["spikes"]["times"][:])
            units = list(f["spikes"]["units"][:])
            labels = np.asarray(f["labels"][:], dtype=np.int64)
    except (OSError, KeyError) as exc:
        raise ValueError(f"{path}: not a readable SHD HDF5 file ({exc})") from None
    if len(times) != len(labels) or len(units) != len(labels):
        raise ValueError(f"{path}: {len(times)} spike trains but {len(labels)} labels")
    if labels.size and (labels.min() < 0 or labels.max() >= N_CLASSES):
        raise ValueError(f"{path}: labels outside [0, {N_CLASSES - 1}]")
    return bin_spikes(times, units, timesteps, max_time), labels


def load_shd(data_dir, timesteps: int = 100, seed: int = 0, val_fraction: float = 0.1,
             max_time: float = MAX_TIME) -> Dataset:
    if not data_dir:
        raise DatasetMissingError(f"shd needs --data-dir DIR holding shd_train.h5 and "
                                  f"shd_test.h5 from {URL}")
    d = Path(data_dir)
    for name in ("shd_train.h5", "shd_test.h5"):
        if not (d / name).is_file():
            raise DatasetMissingError(f"SHD file {name} not found in {d}. Download it from "
                                      f"{URL} and put it in {d} (or pass --data-dir DIR)")
    x, y = read_shd_file(d / "shd_train.h5", timesteps, max_time)
    x_test, y_test = read_shd_file(d / "shd_test.h5", timesteps, max_time)
    x_train, x_val, y_train, y_val = stratified_split(x, y, val_fraction, seed)
    return Dataset("shd", x_train, y_train, x_val, y_val, x_test, y_test, N_CLASSES)
