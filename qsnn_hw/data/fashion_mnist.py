"""Fashion-MNIST from its IDX files (plain or gzip) in a user directory."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

from .base import Dataset, DatasetMissingError, stratified_split

FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
URL = "https://github.com/zalandoresearch/fashion-mnist (data/fashion/*.gz)"
VAL_SIZE = 5000
_IDX_TYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4",
              0x0E: ">f8"}


def read_idx(path) -> np.ndarray:
    """Read one IDX file (``.gz`` allowed); validates magic, type and size."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError) as exc:
        raise ValueError(f"{path}: cannot read IDX file ({exc})") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_TYPES:
        raise ValueError(f"{path}: not an IDX file (bad magic number)")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(f"{path}: truncated IDX header")
    shape = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    dtype = np.dtype(_IDX_TYPES[raw[2]])
    need = int(np.prod(shape)) * dtype.itemsize
    if len(raw) - header != need:
        raise ValueError(f"{path}: IDX data has {len(raw) - header} bytes, header shape "
                         f"{shape} needs {need} (truncated or corrupted)")
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape)


def _find(data_dir: Path, stem: str) -> Path:
    for name in (stem, stem + ".gz"):
        if (data_dir / name).is_file():
            return data_dir / name
    raise DatasetMissingError(
        f"Fashion-MNIST file {stem}[.gz] not found in {data_dir}. Download "
        f"{', '.join(v + '.gz' for v in FILES.values())} from {URL} and put them in "
        f"{data_dir} (or pass --data-dir DIR)")


def load_fashion_mnist(data_dir, seed: int = 0, val_size: int | None = None) -> Dataset:
    """60000 train (minus ``val_size`` stratified for validation; default 5000, or a sixth
    of a smaller training file) / 10000 test, pixels/255 flattened to 784 inputs."""
    if not data_dir:
        raise DatasetMissingError("fashion_mnist needs --data-dir DIR holding the IDX files "
                                  f"({', '.join(FILES.values())}, .gz allowed) from {URL}")
    d = Path(data_dir)
    arrays = {k: read_idx(_find(d, stem)) for k, stem in FILES.items()}
    for split in ("train", "test"):
        xi, yi = arrays[f"{split}_images"], arrays[f"{split}_labels"]
        if xi.ndim != 3 or yi.ndim != 1 or len(xi) != len(yi):
            raise ValueError(f"Fashion-MNIST {split} images {xi.shape} and labels {yi.shape} "
                             f"do not match")
    x = arrays["train_images"].reshape(len(arrays["train_images"]), -1) / np.float32(255)
    y = arrays["train_labels"].astype(np.int64)
    x_test = arrays["test_images"].reshape(len(arrays["test_images"]), -1) / np.float32(255)
    y_test = arrays["test_labels"].astype(np.int64)
    if val_size is None:
        val_size = min(VAL_SIZE, max(len(np.unique(y)), len(y) // 6))
    x_train, x_val, y_train, y_val = stratified_split(x.astype(np.float32), y, val_size, seed)
    return Dataset("fashion_mnist", x_train, y_train, x_val, y_val,
                   x_test.astype(np.float32), y_test, 10,
                   image_shape=(1,) + arrays["train_images"].shape[1:])
