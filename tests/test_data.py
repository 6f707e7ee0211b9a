"""Dataset loaders: the digits split, Fashion-MNIST IDX files and SHD HDF5 files made by
the tests, and the errors for missing or broken files."""

import gzip

import numpy as np
import pytest

from qsnn_hw.data import DatasetMissingError, load_dataset, load_fashion_mnist, read_idx
from qsnn_hw.data.base import stratified_split
from qsnn_hw.data.digits import digits_arrays
from qsnn_hw.data.shd import bin_spikes, load_shd

# Facts of the UCI digits test set that scikit-learn ships as load_digits (its docs: 1797
# samples, 8x8 pixels, counts 0..16; class counts from its copy, which digits.npz was
# written from).
DIGITS_CLASS_COUNTS = [178, 182, 177, 183, 181, 182, 181, 179, 174, 180]


def test_digits_data_is_the_uci_set():
    images, labels = digits_arrays()
    assert images.shape == (1797, 8, 8) and labels.shape == (1797,)
    assert images.dtype == np.uint8 and labels.dtype == np.uint8
    assert images.min() == 0 and images.max() == 16
    assert np.bincount(labels).tolist() == DIGITS_CLASS_COUNTS
    # the corner columns are almost always blank; the centre is ink in most images
    assert images[:, :, 0].mean() < 0.1 and images[:, 3:5, 3:5].mean() > 5
    # pixel sum and the first image (a 0), as sklearn's copy has them
    assert int(images.astype(np.int64).sum()) == 561718
    assert labels[0] == 0 and images[0, 0].tolist() == [0, 0, 5, 13, 9, 1, 0, 0]


@pytest.mark.parametrize("seed", [0, 1])
def test_digits_split_sizes_stratified_disjoint_seeded(seed):
    """Seed 0 is the recorded split, other seeds stratified_split's: both kinds are
    stratified partitions of the whole set, the same on every call."""
    d = load_dataset("digits", seed=seed)
    assert (len(d.y_train), len(d.y_val), len(d.y_test)) == (1257, 180, 360)
    assert d.n_in == 64 and d.n_classes == 10 and not d.events
    assert d.x_train.min() >= 0 and d.x_train.max() <= 1
    # stratified: each class's share of the test split is within one sample of its share
    # of the whole set
    full = np.array(DIGITS_CLASS_COUNTS)
    test = np.bincount(d.y_test, minlength=10)
    assert np.all(np.abs(test - full * 360 / 1797) <= 1)
    # disjoint and complete: the rows of the three splits are the whole dataset
    rows = np.concatenate([d.x_train, d.x_val, d.x_test])
    images, _ = digits_arrays()
    allx = (images.reshape(1797, 64) / 16.0).astype(np.float32)
    assert sorted(map(bytes, rows)) == sorted(map(bytes, allx))
    again = load_dataset("digits", seed=seed)
    for name in ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test"):
        np.testing.assert_array_equal(getattr(d, name), getattr(again, name))
    other = load_dataset("digits", seed=seed + 1)
    assert not np.array_equal(d.y_test, other.y_test)


def test_digits_seed_0_is_the_split_measurements_were_made_with():
    """The recorded data_seed-0 split: scikit-learn's stratified train_test_split with
    random_state=0 (first indices as it produced them), so every earlier measurement
    (rtl/digits.qsnn's accuracy, the README's numbers) is on the same test samples."""
    from qsnn_hw.data.digits import recorded_split
    train, val, test = recorded_split()
    assert test[:5].tolist() == [1496, 188, 705, 820, 413]
    assert train[:5].tolist() == [807, 693, 7, 1018, 763]
    assert sorted(np.concatenate([train, val, test]).tolist()) == list(range(1797))
    d = load_dataset("digits", seed=0)
    images, labels = digits_arrays()
    np.testing.assert_array_equal(d.y_test, labels[test])
    np.testing.assert_array_equal(d.x_val, images[val].reshape(-1, 64) / np.float32(16))


@pytest.mark.parametrize("size", [7, 0.3, 0.5])
def test_stratified_split_quota_and_seed(size):
    rng = np.random.default_rng(5)
    y = np.repeat(np.arange(4), [40, 25, 10, 3])
    rng.shuffle(y)
    x = np.arange(len(y) * 2).reshape(-1, 2)
    x_rest, x_part, y_rest, y_part = stratified_split(x, y, size, seed=3)
    k = size if isinstance(size, int) else int(np.ceil(size * len(y)))
    assert len(y_part) == k and len(y_rest) == len(y) - k
    # rows travel with their labels; every sample on exactly one side
    assert np.array_equal(y[x_part[:, 0] // 2], y_part) and np.array_equal(
        y[x_rest[:, 0] // 2], y_rest)
    assert sorted(np.concatenate([x_part[:, 0], x_rest[:, 0]]).tolist()) == x[:, 0].tolist()
    # each class within one sample of its exact share
    share = np.bincount(y) * k / len(y)
    assert np.all(np.abs(np.bincount(y_part, minlength=4) - share) < 1)
    same = stratified_split(x, y, size, seed=3)
    assert all(np.array_equal(a, b) for a, b in
               zip(same, (x_rest, x_part, y_rest, y_part), strict=True))
    assert not np.array_equal(stratified_split(x, y, size, seed=4)[1], x_part)


def test_stratified_split_rejects_impossible_sizes():
    y = np.array([0, 0, 1, 1, 2, 2])
    for size in (0, 6, 2, 5):      # empty, everything, fewer than the classes, either side
        with pytest.raises(ValueError, match="cannot split"):
            stratified_split(y, y, size, seed=0)


def _write_idx(path, arr, gz=False):
    codes = {np.dtype(np.uint8): 0x08}
    header = bytes([0, 0, codes[arr.dtype], arr.ndim]) + b"".join(
        int(n).to_bytes(4, "big") for n in arr.shape)
    data = header + arr.tobytes()
    (gzip.open if gz else open)(path, "wb").write(data)


def _fashion_dir(tmp_path, gz, n_train=40, n_test=12):
    rng = np.random.default_rng(0)
    tr_x = rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8)
    tr_y = np.arange(n_train, dtype=np.uint8) % 10
    te_x = rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8)
    te_y = np.arange(n_test, dtype=np.uint8) % 10
    sfx = ".gz" if gz else ""
    _write_idx(tmp_path / f"train-images-idx3-ubyte{sfx}", tr_x, gz)
    _write_idx(tmp_path / f"train-labels-idx1-ubyte{sfx}", tr_y, gz)
    _write_idx(tmp_path / f"t10k-images-idx3-ubyte{sfx}", te_x, gz)
    _write_idx(tmp_path / f"t10k-labels-idx1-ubyte{sfx}", te_y, gz)
    return tr_x, tr_y, te_x, te_y


@pytest.mark.parametrize("gz", [False, True])
def test_fashion_mnist_idx_roundtrip(tmp_path, gz):
    tr_x, tr_y, te_x, te_y = _fashion_dir(tmp_path, gz)
    d = load_fashion_mnist(tmp_path, seed=0, val_size=10)
    assert (len(d.y_train), len(d.y_val), len(d.y_test)) == (30, 10, 12)
    np.testing.assert_allclose(d.x_test, te_x.reshape(12, 784) / 255.0, rtol=1e-6)
    np.testing.assert_array_equal(d.y_test, te_y)
    assert d.n_in == 784 and np.bincount(d.y_val).tolist() == [1] * 10


def test_idx_reader_rejects_truncated_and_bad_magic(tmp_path):
    _write_idx(tmp_path / "a", np.zeros((3, 2, 2), np.uint8))
    raw = (tmp_path / "a").read_bytes()
    (tmp_path / "a").write_bytes(raw[:-1])
    with pytest.raises(ValueError, match="truncated or corrupted"):
        read_idx(tmp_path / "a")
    (tmp_path / "b").write_bytes(b"\x12\x34" + raw[2:])
    with pytest.raises(ValueError, match="bad magic"):
        read_idx(tmp_path / "b")


def test_missing_files_say_what_to_download(tmp_path):
    with pytest.raises(DatasetMissingError, match=r"train-images-idx3-ubyte.*fashion-mnist"):
        load_dataset("fashion_mnist", str(tmp_path))
    with pytest.raises(DatasetMissingError, match=r"shd_train.h5.*zenkelab"):
        load_dataset("shd", str(tmp_path))
    with pytest.raises(DatasetMissingError, match="--data-dir"):
        load_dataset("shd", "")


def test_bin_spikes_hand_worked():
    # T=4 bins over 1 s: 0.1 -> bin 0, 0.3 -> bin 1, 0.35 -> bin 1 (same bin, one spike),
    # 0.99 -> bin 3, 1.2 s is past max_time and dropped.
    r = bin_spikes([np.array([0.1, 0.3, 0.35, 0.99, 1.2])], [np.array([2, 0, 0, 5, 1])],
                   4, 1.0, n_channels=6)
    expect = np.zeros((1, 4, 6), np.uint8)
    expect[0, 0, 2] = expect[0, 1, 0] = expect[0, 3, 5] = 1
    np.testing.assert_array_equal(r, expect)
    # several samples, one empty
    r = bin_spikes([np.array([0.5]), np.array([]), np.array([0.0, 0.26])],
                   [np.array([1]), np.array([], int), np.array([3, 3])], 4, 1.0, n_channels=6)
    assert [tuple(map(int, i)) for i in np.argwhere(r)] == [(0, 2, 1), (2, 0, 3), (2, 1, 3)]
    with pytest.raises(ValueError, match="sample 1: spike unit outside"):
        bin_spikes([np.array([0.1]), np.array([0.2])], [np.array([0]), np.array([6])], 4,
                   1.0, n_channels=6)


def _write_shd(path, n, rng):
    import h5py
    with h5py.File(path, "w") as f:
        vf = h5py.vlen_dtype(np.dtype("float32"))
        vu = h5py.vlen_dtype(np.dtype("uint16"))
        times = f.create_dataset("spikes/times", (n,), dtype=vf)
        units = f.create_dataset("spikes/units", (n,), dtype=vu)
        for i in range(n):
            k = rng.integers(1, 30)
            times[i] = np.sort(rng.random(k)).astype(np.float32)
            units[i] = rng.integers(0, 700, k).astype(np.uint16)
        f.create_dataset("labels", data=np.arange(n) % 20)


def test_shd_hdf5_loader(tmp_path):
    rng = np.random.default_rng(1)
    _write_shd(tmp_path / "shd_train.h5", 60, rng)
    _write_shd(tmp_path / "shd_test.h5", 20, rng)
    d = load_shd(tmp_path, timesteps=10, seed=0, val_fraction=20)
    assert d.events and d.x_train.shape[1:] == (10, 700) and d.n_classes == 20
    assert (len(d.y_train), len(d.y_val), len(d.y_test)) == (40, 20, 20)
    import h5py
    with h5py.File(tmp_path / "shd_test.h5") as f:
        t, u = f["spikes/times"][3], f["spikes/units"][3]
    expect = np.zeros((10, 700), np.uint8)
    expect[np.minimum((t * 10).astype(int), 9), u] = 1
    np.testing.assert_array_equal(d.x_test[3], expect)


def test_shd_rejects_non_hdf5(tmp_path):
    (tmp_path / "shd_train.h5").write_bytes(b"not hdf5")
    (tmp_path / "shd_test.h5").write_bytes(b"not hdf5")
    with pytest.raises(ValueError, match="not a readable SHD HDF5 file"):
        load_shd(tmp_path, 10)


def test_cli_trains_on_fashion_mnist_files(tmp_path, capsys):
    import json

    from qsnn_hw.artifact import load_artifact
    from qsnn_hw.cli import main
    from qsnn_hw.golden import simulate
    _, _, te_x, te_y = _fashion_dir(tmp_path, gz=True, n_train=60, n_test=10)
    out = tmp_path / "run"
    assert main(["train", "--dataset", "fashion_mnist", "--data-dir", str(tmp_path),
                 "--out", str(out), "--epochs", "1", "--hidden", "8", "--timesteps", "4",
                 "--encoding", "latency", "--no-plots", "--quiet"]) == 0
    m = json.loads((out / "metrics.json").read_text())
    art = load_artifact(out / "model.qsnn")
    assert art.network.n_in == 784 and art.metadata["dataset"]["test"] == 10
    # latency code by hand: pixel p spikes once at round_half_up((1 - p) * 3) if p > 0
    p = te_x.reshape(10, 784) / 255.0
    t = np.floor((1 - p) * 3 + 0.5).astype(int)
    x = np.zeros((10, 4, 784), np.int64)
    for i, j in zip(*np.nonzero(p > 0), strict=True):
        x[i, t[i, j], j] = 1
    pred = simulate(art.network, x).predictions
    assert np.mean(pred == te_y) == m["golden_accuracy"]


@pytest.mark.parametrize("seed", [0, 1])
def test_digits_is_an_image_of_one_channel(seed):
    """Every split of digits knows its (channels, height, width): convolutions read it."""
    assert load_dataset("digits", seed=seed).image_shape == (1, 8, 8)
