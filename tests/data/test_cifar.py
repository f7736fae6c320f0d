"""Tests of the CIFAR-10 binary reader and of ``load_cifar10``.

The batch files are written here byte by byte, independently of the reader under test.
"""

from pathlib import Path

import numpy as np
import pytest

from deepmanifold.data import load_cifar10, load_dataset
from deepmanifold.data.cifar import read_cifar10_batch


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
