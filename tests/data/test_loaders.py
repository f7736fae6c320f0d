"""Tests of the file-based loaders (IDX for MNIST/Fashion-MNIST, CIFAR-10 binary),
``train_size``, ``Dataset.augmentations`` and the registry.

The file formats are written here byte by byte with ``struct``, independently of the
readers under test.
"""

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from deepmanifold.data import (
    AUGMENTATION_OPS,
    Dataset,
    available_datasets,
    load_cifar10,
    load_dataset,
    load_digits,
    load_fashion_mnist,
    load_mnist,
    make_probes,
)
from deepmanifold.data.cifar import read_cifar10_batch
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


def _cifar_record(label: int, r: np.ndarray, g: np.ndarray, b: np.ndarray) -> bytes:
    return bytes([label]) + r.astype(np.uint8).tobytes() + g.astype(np.uint8).tobytes() + b.astype(np.uint8).tobytes()


def _write_cifar_folder(folder: Path, n_per_file=7, seed=0):
    """Six batch files of ``n_per_file`` records; returns the images/labels written,
    in (R, G, B) plane order, as the reference."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    written = {}
    names = [f"data_batch_{k}.bin" for k in range(1, 6)] + ["test_batch.bin"]
    for f, name in enumerate(names):
        imgs, labs, payload = [], [], b""
        for i in range(n_per_file):
            lab = int((f * n_per_file + i) % 10)
            planes = rng.integers(0, 256, size=(3, 32, 32), dtype=np.uint8)
            payload += _cifar_record(lab, planes[0], planes[1], planes[2])
            imgs.append(planes)
            labs.append(lab)
        (folder / name).write_bytes(payload)
        written[name] = (np.stack(imgs), np.array(labs))
    return written


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


# --------------------------------------------------------------------------- CIFAR-10 binary

def test_cifar_batch_plane_order(tmp_path):
    r = np.full((32, 32), 200, np.uint8)
    g = np.full((32, 32), 100, np.uint8)
    b = np.arange(1024).reshape(32, 32).astype(np.uint8)  # row-major within a plane
    payload = _cifar_record(7, r, g, b) + _cifar_record(0, b, r, g)
    p = tmp_path / "one.bin"
    p.write_bytes(payload)
    imgs, labs = read_cifar10_batch(p)
    assert imgs.shape == (2, 3, 32, 32) and imgs.dtype == np.uint8
    assert labs.tolist() == [7, 0]
    assert np.all(imgs[0, 0] == 200) and np.all(imgs[0, 1] == 100)
    assert np.array_equal(imgs[0, 2], b) and imgs[0, 2, 0, 5] == 5 and imgs[0, 2, 1, 0] == 32
    assert np.array_equal(imgs[1, 0], b) and np.all(imgs[1, 2] == 100)


@pytest.mark.parametrize("size", [0, 3072, 3074, 3073 * 2 + 1])
def test_cifar_bad_size(tmp_path, size):
    p = tmp_path / "bad_batch.bin"
    p.write_bytes(b"\x01" * size)
    with pytest.raises(ValueError, match=r"bad_batch\.bin.*3073"):
        read_cifar10_batch(p)


def test_cifar_bad_label(tmp_path):
    p = tmp_path / "lab.bin"
    p.write_bytes(_cifar_record(3, *np.zeros((3, 32, 32))) + _cifar_record(12, *np.zeros((3, 32, 32))))
    with pytest.raises(ValueError, match=r"lab\.bin.*record 1.*12"):
        read_cifar10_batch(p)


def test_cifar_loader(tmp_path):
    written = _write_cifar_folder(tmp_path / "c10")
    ds = load_cifar10(path=tmp_path / "c10")
    assert ds.name == "cifar10" and ds.augmentations == ("crop", "hflip")
    assert ds.x_train.shape == (35, 3, 32, 32) and ds.x_test.shape == (7, 3, 32, 32)
    x_tr = np.concatenate([written[f"data_batch_{k}.bin"][0] for k in range(1, 6)]).astype(np.float64)
    y_tr = np.concatenate([written[f"data_batch_{k}.bin"][1] for k in range(1, 6)])
    x_te, y_te = written["test_batch.bin"]
    assert np.array_equal(ds.y_train.numpy(), y_tr) and np.array_equal(ds.y_test.numpy(), y_te)
    # Per-channel standardisation with the training statistics of x/255.
    px = x_tr / 255.0
    mean = px.mean(axis=(0, 2, 3), keepdims=True)
    std = px.std(axis=(0, 2, 3), keepdims=True)
    np.testing.assert_allclose(ds.x_train.numpy(), (px - mean) / std, atol=1e-5)
    np.testing.assert_allclose(ds.x_test.numpy(), (x_te / 255.0 - mean) / std, atol=1e-5)
    # The tarball layout (parent of cifar-10-batches-bin/) is accepted too.
    _write_cifar_folder(tmp_path / "tar" / "cifar-10-batches-bin")
    assert load_dataset("cifar10", path=tmp_path / "tar").x_train.shape == (35, 3, 32, 32)


def test_cifar_loader_errors(tmp_path):
    with pytest.raises(ValueError, match="path"):
        load_cifar10()
    with pytest.raises(FileNotFoundError, match="nowhere"):
        load_cifar10(path=tmp_path / "nowhere")
    _write_cifar_folder(tmp_path / "c")
    (tmp_path / "c" / "data_batch_4.bin").unlink()
    with pytest.raises(FileNotFoundError, match="data_batch_4.bin"):
        load_cifar10(path=tmp_path / "c")
    _write_cifar_folder(tmp_path / "d")
    with open(tmp_path / "d" / "test_batch.bin", "ab") as fh:
        fh.write(b"\x00" * 10)
    with pytest.raises(ValueError, match=r"test_batch\.bin.*multiple of 3073"):
        load_cifar10(path=tmp_path / "d")
    # Pickled-version files alone are not read.
    (tmp_path / "py").mkdir()
    (tmp_path / "py" / "data_batch_1").write_bytes(b"\x80\x04fake pickle")
    with pytest.raises(FileNotFoundError, match="binary"):
        load_cifar10(path=tmp_path / "py")


# --------------------------------------------------------------------------- train_size

def test_train_size_digits_stratified_seeded():
    full = load_digits(seed=0)
    a = load_dataset("digits", train_size=200)
    b = load_dataset("digits", train_size=200)
    c = load_dataset("digits", train_size=200, seed=0)
    assert len(a.y_train) == 200 and torch.equal(a.x_train, b.x_train) and torch.equal(a.x_train, c.x_train)
    counts = np.bincount(full.y_train.numpy(), minlength=10)
    sub = np.bincount(a.y_train.numpy(), minlength=10)
    assert sub.sum() == 200 and np.all(np.abs(sub - counts * 200 / counts.sum()) < 1.0)
    # Test split and normalisation unchanged.
    assert torch.equal(a.x_test, full.x_test) and torch.equal(a.y_test, full.y_test)
    # Each kept sample is a training sample of the full split, original order kept.
    rows = {tuple(r) for r in full.x_train.flatten(1).numpy().tolist()}
    keys = [tuple(r) for r in a.x_train.flatten(1).numpy().tolist()]
    assert all(k in rows for k in keys)
    pos = {tuple(r): i for i, r in enumerate(full.x_train.flatten(1).numpy().tolist())}
    assert all(np.diff([pos[k] for k in keys]) > 0)
    # Another seed: another subsample (and another split, digits' seed drives both).
    other = load_dataset("digits", train_size=200, seed=1)
    assert not torch.equal(other.x_train, a.x_train)
    # train_size = whole split is the full dataset.
    assert torch.equal(load_digits(train_size=len(full.y_train)).x_train, full.x_train)


def test_train_size_seed_changes_subsample_on_fixed_split(tmp_path):
    folder = _write_idx_folder(tmp_path / "m", _toy_idx(n_train=100, n_test=10), gz=False)
    a = load_mnist(path=folder, train_size=30, seed=0)
    b = load_mnist(path=folder, train_size=30, seed=1)
    full = load_mnist(path=folder)
    assert len(a.y_train) == len(b.y_train) == 30
    assert np.array_equal(np.bincount(a.y_train.numpy()), np.full(10, 3))
    assert not torch.equal(a.x_train, b.x_train)
    assert torch.equal(a.x_test, b.x_test) and torch.equal(a.x_test, full.x_test)


def test_probes_drawn_from_subsample():
    ds = load_dataset("digits", train_size=120)
    probes = make_probes(ds, n_train=500, n_test=None)
    assert len(probes["train"]) == 120  # clipped to the subsample
    assert torch.equal(probes["train"].inputs(ds), ds.x_train)


@pytest.mark.parametrize("bad", [0, -5, 10**7, 2.5, "100", True])
def test_train_size_invalid(bad):
    with pytest.raises(ValueError, match="train_size"):
        load_dataset("digits", train_size=bad)


# --------------------------------------------------------------------------- registry, augmentations

def test_registry_lists_all_loaders():
    assert available_datasets() == ["cifar10", "digits", "fashion_mnist", "gaussian_teacher", "mnist"]


@pytest.mark.parametrize(
    "name, options",
    [
        ("digits", dict(path="/tmp")),
        ("fashion_mnist", dict(test_fraction=0.2)),
        ("mnist", dict(augment=True)),
        ("cifar10", dict(n_train=5)),
        ("gaussian_teacher", dict(path="/tmp")),
    ],
)
def test_unknown_options(name, options):
    (bad,) = options
    with pytest.raises(ValueError, match=rf"unknown option.*{bad}.*{name}"):
        load_dataset(name, **options)


def test_augmentations_per_dataset(tmp_path):
    assert load_digits().augmentations == ("crop",)
    assert load_dataset("gaussian_teacher", n_train=20, n_test=5, dim=8).augmentations == ()
    assert AUGMENTATION_OPS == ("crop", "hflip")


def _toy_tensors(**extra):
    return dict(
        name="toy",
        x_train=torch.zeros(4, 1, 2, 2),
        y_train=torch.tensor([0, 1, 0, 1]),
        x_test=torch.zeros(2, 1, 2, 2),
        y_test=torch.tensor([0, 1]),
        n_classes=2,
        **extra,
    )


def test_dataset_augmentations_field():
    assert Dataset(**_toy_tensors()).augmentations == ()  # backward compatible default
    ds = Dataset(**_toy_tensors(augmentations=["hflip", "crop"]))
    assert ds.augmentations == ("hflip", "crop") and isinstance(ds.augmentations, tuple)
    with pytest.raises(AttributeError):
        ds.augmentations = ()
    for bad, match in ((("rotate",), "rotate"), ("crop", "string"), (("crop", "crop"), "repeat")):
        with pytest.raises(ValueError, match=match):
            Dataset(**_toy_tensors(augmentations=bad))
