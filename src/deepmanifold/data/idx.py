"""Reader of the IDX format of MNIST and Fashion-MNIST (plain or gzip-compressed).

An IDX file is a big-endian header followed by the raw array::

    bytes 0-1  zero
    byte  2    element type (0x08 unsigned byte, 0x09 signed byte, 0x0B int16,
               0x0C int32, 0x0D float32, 0x0E float64)
    byte  3    number of dimensions k
    then k big-endian uint32 sizes, then prod(sizes) elements, big-endian, C order.

So the "magic number" (the first four bytes read as a big-endian uint32) is 2049 for
the label files (unsigned bytes, one dimension) and 2051 for the image files
(unsigned bytes, three dimensions: N, rows, columns).

Nothing here downloads anything: the files come from the user or from a distribution
package (``apt-get install dataset-fashion-mnist``).
"""

from __future__ import annotations

import gzip
import os
import zlib
from functools import lru_cache
from pathlib import Path

import numpy as np

from ._common import files_key

__all__ = [
    "IDX_LABELS_MAGIC",
    "IDX_IMAGES_MAGIC",
    "read_idx",
    "read_idx_labels",
    "read_idx_images",
    "find_idx_file",
    "load_idx_split",
]

IDX_LABELS_MAGIC = 2049  # 0x00000801: unsigned bytes, 1 dimension
IDX_IMAGES_MAGIC = 2051  # 0x00000803: unsigned bytes, 3 dimensions

_IDX_DTYPES = {
    0x08: np.dtype("u1"),
    0x09: np.dtype("i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}

_GZIP_MAGIC = b"\x1f\x8b"

# The standard file names (the stem; a ".gz" suffix is also accepted).
IDX_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}


def _read_bytes(path: Path) -> bytes:
    """All bytes of ``path``, decompressed if the file is gzip (detected by content)."""
    with open(path, "rb") as fh:
        head = fh.read(2)
        fh.seek(0)
        if head != _GZIP_MAGIC:
            return fh.read()
        try:
            with gzip.GzipFile(fileobj=fh) as gz:
                return gz.read()
        except (EOFError, OSError, zlib.error) as exc:
            raise ValueError(f"{path}: corrupt or truncated gzip file ({exc})") from exc


def read_idx(path: str | os.PathLike, expected_magic: int | None = None) -> np.ndarray:
    """Read one IDX file (plain or gzip) into a read-only numpy array.

    Parameters
    ----------
    path : path-like
    expected_magic : int, optional
        If given, the file's magic number must equal it (2049 labels, 2051 images).

    Returns
    -------
    np.ndarray
        Native-endian array of the shape stored in the header (read-only).

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ValueError
        Naming the file, if the header is malformed, the magic number is not the
        expected one, or the data are shorter or longer than the header says.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"IDX file not found: {path}")
    raw = _read_bytes(path)
    if len(raw) < 4:
        raise ValueError(f"{path}: not an IDX file (only {len(raw)} bytes)")
    magic = int.from_bytes(raw[:4], "big")
    if expected_magic is not None and magic != expected_magic:
        raise ValueError(
            f"{path}: wrong IDX magic number {magic} (0x{magic:08x}), expected "
            f"{expected_magic} (0x{expected_magic:08x})"
        )
    if raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES or raw[3] == 0:
        raise ValueError(f"{path}: not an IDX file (bad magic number 0x{magic:08x})")
    dtype = _IDX_DTYPES[raw[2]]
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(f"{path}: truncated IDX header ({len(raw)} bytes, {header} needed)")
    shape = tuple(int.from_bytes(raw[4 + 4 * k : 8 + 4 * k], "big") for k in range(ndim))
    n_bytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    have = len(raw) - header
    if have < n_bytes:
        raise ValueError(
            f"{path}: truncated IDX file: header says shape {shape} ({n_bytes} data bytes) "
            f"but only {have} data bytes follow"
        )
    if have > n_bytes:
        raise ValueError(
            f"{path}: IDX file has {have - n_bytes} unexpected trailing bytes after the "
            f"{n_bytes} data bytes of shape {shape}"
        )
    arr = np.frombuffer(raw, dtype=dtype, count=n_bytes // dtype.itemsize, offset=header)
    arr = arr.reshape(shape)
    if dtype.byteorder == ">":
        arr = arr.astype(dtype.newbyteorder("="))
    arr.setflags(write=False)
    return arr


def read_idx_labels(path: str | os.PathLike) -> np.ndarray:
    """Labels from an IDX label file (magic 2049), shape ``(N,)``, uint8."""
    return read_idx(path, expected_magic=IDX_LABELS_MAGIC)


def read_idx_images(path: str | os.PathLike) -> np.ndarray:
    """Images from an IDX image file (magic 2051), shape ``(N, rows, cols)``, uint8."""
    return read_idx(path, expected_magic=IDX_IMAGES_MAGIC)


def find_idx_file(folder: str | os.PathLike, stem: str) -> Path:
    """The file of ``folder`` holding ``stem``: ``stem``, ``stem.gz`` (plain preferred),
    or the variant with a dot before ``idx`` (``train-images.idx3-ubyte``, as some
    mirrors name them).

    Raises
    ------
    FileNotFoundError
        Listing the names that were tried.
    """
    folder = Path(folder)
    dotted = stem.replace("-idx", ".idx")
    candidates = [stem, stem + ".gz", dotted, dotted + ".gz"]
    for name in candidates:
        p = folder / name
        if p.is_file():
            return p
    raise FileNotFoundError(
        f"no {stem} file in {folder} (looked for {', '.join(candidates)})"
    )


@lru_cache(maxsize=4)
def _load_idx_split_cached(key: tuple) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    (tri, _, _), (trl, _, _), (tei, _, _), (tel, _, _) = key
    x_train, y_train = read_idx_images(tri), read_idx_labels(trl)
    x_test, y_test = read_idx_images(tei), read_idx_labels(tel)
    for xi, yi, fx, fy in ((x_train, y_train, tri, trl), (x_test, y_test, tei, tel)):
        if xi.shape[0] != yi.shape[0]:
            raise ValueError(
                f"{fx} holds {xi.shape[0]} images but {fy} holds {yi.shape[0]} labels"
            )
    if x_train.shape[1:] != x_test.shape[1:]:
        raise ValueError(
            f"training images {x_train.shape[1:]} ({tri}) and test images "
            f"{x_test.shape[1:]} ({tei}) differ in size"
        )
    return x_train, y_train, x_test, y_test


def load_idx_split(
    folder: str | os.PathLike,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The four standard IDX files of ``folder`` as uint8 arrays (read-only).

    Each file is read once per process: the result is cached, keyed by the files'
    resolved paths, sizes and modification times.

    Returns
    -------
    x_train : (N_train, rows, cols) uint8
    y_train : (N_train,) uint8
    x_test : (N_test, rows, cols) uint8
    y_test : (N_test,) uint8
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"IDX folder not found: {folder}")
    paths = tuple(
        find_idx_file(folder, IDX_FILES[k])
        for k in ("train_images", "train_labels", "test_images", "test_labels")
    )
    return _load_idx_split_cached(files_key(paths))
