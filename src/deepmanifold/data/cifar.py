"""Reader of the *binary* version of CIFAR-10 (never the pickled Python version).

Each of ``data_batch_1.bin`` … ``data_batch_5.bin`` and ``test_batch.bin`` is a
sequence of 3,073-byte records: one label byte (0..9), then 3,072 pixel bytes: the
1,024 red values of the 32x32 image in row-major order, then the 1,024 green, then
the 1,024 blue. Nothing is ever unpickled and nothing is downloaded.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

import numpy as np

from ._common import files_key

__all__ = [
    "CIFAR10_RECORD_BYTES",
    "CIFAR10_TRAIN_FILES",
    "CIFAR10_TEST_FILE",
    "read_cifar10_batch",
    "load_cifar10_split",
]

CIFAR10_RECORD_BYTES = 1 + 3 * 32 * 32  # 3073
CIFAR10_TRAIN_FILES = tuple(f"data_batch_{k}.bin" for k in range(1, 6))
CIFAR10_TEST_FILE = "test_batch.bin"
_SUBFOLDER = "cifar-10-batches-bin"  # the folder inside the official tarball


def read_cifar10_batch(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """Read one CIFAR-10 binary batch file.

    Returns
    -------
    images : np.ndarray, shape (N, 3, 32, 32), uint8
        Channels in the order R, G, B.
    labels : np.ndarray, shape (N,), uint8
        In ``[0, 10)``.

    Raises
    ------
    FileNotFoundError
        If the file does not exist.
    ValueError
        Naming the file, if its size is not a positive multiple of 3,073 bytes or a
        label byte is not in ``[0, 10)``.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"CIFAR-10 batch file not found: {path}")
    raw = np.fromfile(path, dtype=np.uint8)
    if raw.size == 0 or raw.size % CIFAR10_RECORD_BYTES:
        raise ValueError(
            f"{path}: size {raw.size} bytes is not a positive multiple of "
            f"{CIFAR10_RECORD_BYTES} (1 label byte + 3072 pixel bytes per record); "
            "is this the binary version of CIFAR-10 (cifar-10-binary.tar.gz)?"
        )
    records = raw.reshape(-1, CIFAR10_RECORD_BYTES)
    labels = np.ascontiguousarray(records[:, 0])
    bad = labels >= 10
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(
            f"{path}: record {i} has label byte {int(labels[i])}, expected 0..9 "
            "(not a CIFAR-10 binary batch? CIFAR-100 records have 2 label bytes)"
        )
    images = np.ascontiguousarray(records[:, 1:]).reshape(-1, 3, 32, 32)
    images.setflags(write=False)
    labels.setflags(write=False)
    return images, labels


def _resolve_folder(folder: Path) -> Path:
    """``folder`` itself, or its ``cifar-10-batches-bin`` subfolder when the batch
    files are there (the layout of the unpacked official tarball)."""
    if (folder / CIFAR10_TEST_FILE).is_file() or not (folder / _SUBFOLDER).is_dir():
        return folder
    return folder / _SUBFOLDER


@lru_cache(maxsize=2)
def _load_cached(key: tuple) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    paths = [Path(k[0]) for k in key]
    train = [read_cifar10_batch(p) for p in paths[:-1]]
    x_test, y_test = read_cifar10_batch(paths[-1])
    x_train = np.concatenate([t[0] for t in train])
    y_train = np.concatenate([t[1] for t in train])
    for a in (x_train, y_train):
        a.setflags(write=False)
    return x_train, y_train, x_test, y_test


def load_cifar10_split(
    folder: str | os.PathLike,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The official CIFAR-10 split from the binary batch files of ``folder``.

    ``folder`` holds ``data_batch_1.bin`` … ``data_batch_5.bin`` and
    ``test_batch.bin``, or is the parent of ``cifar-10-batches-bin/`` holding them.
    The files are read once per process (cached by resolved path, size, mtime).

    Returns
    -------
    x_train : (N_train, 3, 32, 32) uint8 (50,000 for the real data)
    y_train : (N_train,) uint8
    x_test : (N_test, 3, 32, 32) uint8 (10,000)
    y_test : (N_test,) uint8
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(
            f"CIFAR-10 folder not found: {folder} (expected the binary version: "
            f"{', '.join(CIFAR10_TRAIN_FILES)}, {CIFAR10_TEST_FILE})"
        )
    folder = _resolve_folder(folder)
    names = (*CIFAR10_TRAIN_FILES, CIFAR10_TEST_FILE)
    missing = [n for n in names if not (folder / n).is_file()]
    if missing:
        raise FileNotFoundError(
            f"CIFAR-10 binary file(s) missing in {folder}: {', '.join(missing)} "
            "(the binary version, cifar-10-binary.tar.gz, is needed; the pickled "
            "Python version is never read)"
        )
    return _load_cached(files_key(folder / n for n in names))
