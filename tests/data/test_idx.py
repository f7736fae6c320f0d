"""Tests of the IDX reader (MNIST, Fashion-MNIST) and of the datasets read from IDX folders.

The files are written here byte by byte with ``struct``, independently of the reader
under test.
"""

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from deepmanifold.data import load_dataset, load_fashion_mnist, load_mnist
from deepmanifold.data.idx import read_idx, read_idx_images, read_idx_labels

FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")
FASHION_FILES = [
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
]
HAVE_FASHION = all((FASHION_DIR / f).is_file() for f in FASHION_FILES)


# --------------------------------------------------------------------------- writers

def _idx_bytes(arr: np.ndarray, magic: int | None = None) -> bytes:
    arr = np.asarray(arr, dtype=np.uint8)
    if magic is None:
        magic = 0x0800 + arr.ndim
    header = struct.pack(">I", magic) + b"".join(struct.pack(">I", s) for s in arr.shape)
    return header + arr.tobytes()


def _write(path: Path, payload: bytes, gz: bool) -> Path:
    if gz:
        path = path.with_name(path.name + ".gz")
        with gzip.open(path, "wb") as fh:
            fh.write(payload)
    else:
        path.write_bytes(payload)
    return path


def _toy_idx(n_train=40, n_test=20, rows=6, cols=5, seed=0):
    rng = np.random.default_rng(seed)
    x_tr = rng.integers(0, 256, size=(n_train, rows, cols), dtype=np.uint8)
    x_te = rng.integers(0, 256, size=(n_test, rows, cols), dtype=np.uint8)
    y_tr = (np.arange(n_train) % 10).astype(np.uint8)
    y_te = (np.arange(n_test) * 3 % 10).astype(np.uint8)
    return x_tr, y_tr, x_te, y_te


def _write_idx_folder(folder: Path, arrays, gz: bool) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    x_tr, y_tr, x_te, y_te = arrays
    for stem, a in (
        ("train-images-idx3-ubyte", x_tr),
        ("train-labels-idx1-ubyte", y_tr),
        ("t10k-images-idx3-ubyte", x_te),
        ("t10k-labels-idx1-ubyte", y_te),
    ):
        _write(folder / stem, _idx_bytes(a), gz)
    return folder


# --------------------------------------------------------------------------- IDX reader

@pytest.mark.parametrize("gz", [False, True])
def test_idx_roundtrip_plain_and_gzip(tmp_path, gz):
    rng = np.random.default_rng(1)
    imgs = rng.integers(0, 256, size=(3, 4, 5), dtype=np.uint8)
    labs = np.array([9, 0, 4], dtype=np.uint8)
    pi = _write(tmp_path / "imgs", _idx_bytes(imgs), gz)
    pl = _write(tmp_path / "labs", _idx_bytes(labs), gz)
    got_i, got_l = read_idx_images(pi), read_idx_labels(pl)
    assert got_i.shape == (3, 4, 5) and got_i.dtype == np.uint8
    assert np.array_equal(got_i, imgs) and np.array_equal(got_l, labs)
    # Header dims are big-endian: a 258-long label file (0x0102 bytes of size).
    long = (np.arange(258) % 10).astype(np.uint8)
    p = _write(tmp_path / "long", _idx_bytes(long), gz)
    assert np.array_equal(read_idx_labels(p), long)


def test_idx_other_element_types(tmp_path):
    vals = np.array([[1.5, -2.0], [3.25, 0.0]], dtype=">f4")
    payload = struct.pack(">I", 0x0D02) + struct.pack(">II", 2, 2) + vals.tobytes()
    p = tmp_path / "floats"
    p.write_bytes(payload)
    got = read_idx(p)
    assert got.dtype == np.float32 and np.array_equal(got, vals.astype(np.float32))


@pytest.mark.parametrize("gz", [False, True])
def test_idx_wrong_magic_names_the_file(tmp_path, gz):
    labs = np.arange(5, dtype=np.uint8)
    p = _write(tmp_path / "labels-file", _idx_bytes(labs), gz)  # magic 2049
    with pytest.raises(ValueError, match=r"labels-file.*2049.*expected 2051"):
        read_idx_images(p)
    imgs = np.zeros((2, 3, 3), dtype=np.uint8)
    p = _write(tmp_path / "images-file", _idx_bytes(imgs), gz)
    with pytest.raises(ValueError, match=r"images-file.*2051.*expected 2049"):
        read_idx_labels(p)
    p = _write(tmp_path / "garbage", b"\x12\x34\x56\x78" + b"\x00" * 20, gz)
    with pytest.raises(ValueError, match="garbage"):
        read_idx(p)


@pytest.mark.parametrize("gz", [False, True])
def test_idx_truncated_or_too_long(tmp_path, gz):
    payload = _idx_bytes(np.zeros((4, 3, 3), dtype=np.uint8))
    p = _write(tmp_path / "short-data", payload[:-5], gz)
    with pytest.raises(ValueError, match=r"short-data.*truncated"):
        read_idx_images(p)
    p = _write(tmp_path / "short-header", payload[:10], gz)
    with pytest.raises(ValueError, match=r"short-header.*truncated"):
        read_idx_images(p)
    p = _write(tmp_path / "tiny", payload[:2], gz)
    with pytest.raises(ValueError, match="tiny"):
        read_idx(p)
    p = _write(tmp_path / "long-data", payload + b"\x00\x01", gz)
    with pytest.raises(ValueError, match=r"long-data.*trailing"):
        read_idx_images(p)


def test_idx_truncated_gzip_stream(tmp_path):
    p = _write(tmp_path / "cut", _idx_bytes(np.zeros((50, 8, 8), dtype=np.uint8)), gz=True)
    data = p.read_bytes()
    p.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match=r"cut\.gz"):
        read_idx_images(p)


def test_idx_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope"):
        read_idx(tmp_path / "nope")


# --------------------------------------------------------------------------- mnist / fashion from folders

@pytest.mark.parametrize("gz", [False, True])
@pytest.mark.parametrize("loader", ["mnist", "fashion_mnist"])
def test_idx_loader_on_tiny_folder(tmp_path, gz, loader):
    arrays = _toy_idx()
    folder = _write_idx_folder(tmp_path / f"{loader}-{gz}", arrays, gz)
    ds = load_dataset(loader, path=folder)
    x_tr, y_tr, x_te, y_te = arrays
    assert ds.name == loader and ds.n_classes == 10
    assert ds.x_train.shape == (40, 1, 6, 5) and ds.x_test.shape == (20, 1, 6, 5)
    assert ds.x_train.dtype == torch.float32 and ds.y_train.dtype == torch.int64
    assert np.array_equal(ds.y_train.numpy(), y_tr) and np.array_equal(ds.y_test.numpy(), y_te)
    # [0, 1] then standardised with the training statistics, same map for the test split.
    px = x_tr / 255.0
    mean, std = px.mean(), px.std()
    np.testing.assert_allclose(ds.x_train[:, 0].numpy(), (px - mean) / std, atol=1e-5)
    np.testing.assert_allclose(ds.x_test[:, 0].numpy(), (x_te / 255.0 - mean) / std, atol=1e-5)
    expected_aug = ("crop", "hflip") if loader == "fashion_mnist" else ("crop",)
    assert ds.augmentations == expected_aug


def test_idx_loader_dotted_names_and_plain_preferred(tmp_path):
    arrays = _toy_idx()
    folder = tmp_path / "dotted"
    folder.mkdir()
    for stem, a in zip(
        ("train-images.idx3-ubyte", "train-labels.idx1-ubyte", "t10k-images.idx3-ubyte", "t10k-labels.idx1-ubyte"),
        arrays,
    ):
        (folder / stem).write_bytes(_idx_bytes(a))
    ds = load_mnist(path=folder)
    assert len(ds.y_train) == 40


def test_idx_loader_mismatched_counts(tmp_path):
    x_tr, y_tr, x_te, y_te = _toy_idx()
    folder = _write_idx_folder(tmp_path / "bad", (x_tr, y_tr[:-1], x_te, y_te), gz=False)
    with pytest.raises(ValueError, match="40 images.*39 labels"):
        load_mnist(path=folder)


def test_idx_loader_label_out_of_range(tmp_path):
    x_tr, y_tr, x_te, y_te = _toy_idx()
    y_tr = y_tr.copy()
    y_tr[3] = 10
    folder = _write_idx_folder(tmp_path / "lab", (x_tr, y_tr, x_te, y_te), gz=False)
    with pytest.raises(ValueError, match="label 10"):
        load_mnist(path=folder)


def test_idx_loader_rereads_changed_files(tmp_path):
    folder = _write_idx_folder(tmp_path / "chg", _toy_idx(seed=0), gz=False)
    a = load_mnist(path=folder)
    again = load_mnist(path=folder)
    assert torch.equal(a.x_train, again.x_train)
    _write_idx_folder(folder, _toy_idx(n_train=30, seed=5), gz=False)
    b = load_mnist(path=folder)
    assert len(b.y_train) == 30


def test_idx_loader_missing(tmp_path):
    with pytest.raises(ValueError, match="path"):
        load_mnist()
    with pytest.raises(FileNotFoundError, match="no-such-folder"):
        load_mnist(path=tmp_path / "no-such-folder")
    with pytest.raises(FileNotFoundError, match="no-such-folder"):
        load_fashion_mnist(path=tmp_path / "no-such-folder")
    x_tr, y_tr, x_te, y_te = _toy_idx()
    folder = _write_idx_folder(tmp_path / "partial", (x_tr, y_tr, x_te, y_te), gz=True)
    (folder / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(FileNotFoundError, match="t10k-labels-idx1-ubyte"):
        load_mnist(path=folder)


def test_fashion_default_folder_missing_says_how_to_install(tmp_path, monkeypatch):
    import deepmanifold.data.datasets as datasets_module

    monkeypatch.setattr(datasets_module, "FASHION_MNIST_DIR", tmp_path / "absent")
    with pytest.raises(FileNotFoundError, match="apt-get install dataset-fashion-mnist") as err:
        load_fashion_mnist()
    assert "path" in str(err.value)


# --------------------------------------------------------------------------- real Fashion-MNIST

@pytest.fixture(scope="module")
def fashion():
    if not HAVE_FASHION:
        pytest.skip(f"Fashion-MNIST not installed in {FASHION_DIR} (apt-get install dataset-fashion-mnist)")
    return load_dataset("fashion_mnist")


def test_real_fashion_mnist(fashion):
    ds = fashion
    assert ds.x_train.shape == (60000, 1, 28, 28) and ds.x_test.shape == (10000, 1, 28, 28)
    assert np.array_equal(np.bincount(ds.y_train.numpy()), np.full(10, 6000))
    assert np.array_equal(np.bincount(ds.y_test.numpy()), np.full(10, 1000))
    assert ds.augmentations == ("crop", "hflip")
    x = ds.x_train.double()
    assert abs(float(x.mean())) < 1e-4 and abs(float(x.std()) - 1.0) < 1e-4
    # Known pixel statistics of Fashion-MNIST's training split: mean 0.2860, std 0.3530.
    lo = float(ds.x_train.min())  # pixel 0
    assert lo == pytest.approx(-0.2860 / 0.3530, abs=2e-3)


def test_real_fashion_mnist_train_size_keeps_test_split(fashion):
    small = load_dataset("fashion_mnist", train_size=1000, seed=3)
    assert small.x_train.shape == (1000, 1, 28, 28)
    assert np.array_equal(np.bincount(small.y_train.numpy()), np.full(10, 100))
    assert torch.equal(small.x_test, fashion.x_test) and torch.equal(small.y_test, fashion.y_test)
    # The subsample is made of training images, in their original order.
    first = small.x_train[0]
    hits = torch.nonzero((fashion.x_train == first).flatten(1).all(1)).flatten()
    assert len(hits) >= 1


def test_train_size_seed_changes_subsample_on_fixed_split(tmp_path):
    folder = _write_idx_folder(tmp_path / "m", _toy_idx(n_train=100, n_test=10), gz=False)
    a = load_mnist(path=folder, train_size=30, seed=0)
    b = load_mnist(path=folder, train_size=30, seed=1)
    full = load_mnist(path=folder)
    assert len(a.y_train) == len(b.y_train) == 30
    assert np.array_equal(np.bincount(a.y_train.numpy()), np.full(10, 3))
    assert not torch.equal(a.x_train, b.x_train)
    assert torch.equal(a.x_test, b.x_test) and torch.equal(a.x_test, full.x_test)
