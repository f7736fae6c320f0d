"""Durable files of a store: the error type, fsync'd writes, ``.npy`` headers, values as tuples.

The lowest module of :mod:`deepmanifold.store`: :mod:`.catalog` and :mod:`.store` both
build on it, and it imports neither.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["StoreError", "fsync_dir", "npy_header", "tupled", "write_bytes", "write_npy"]


class StoreError(RuntimeError):
    """A store or one of its runs cannot be read as written by this version."""


def fsync_dir(path: Path) -> None:
    """Flush a folder's entries (a rename inside it) to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` and flush it to disk before returning."""
    with open(path, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


def write_npy(path: Path, array: np.ndarray) -> None:
    """Write ``array`` as a ``.npy`` file (never pickled) and flush it to disk."""
    with open(path, "wb") as fh:
        np.save(fh, np.ascontiguousarray(array), allow_pickle=False)
        fh.flush()
        os.fsync(fh.fileno())


def npy_header(path: Path) -> tuple[tuple[int, ...], np.dtype, int, int]:
    """``(shape, dtype, data offset, file size)`` of a ``.npy`` file, reading only its header.

    Raises
    ------
    FileNotFoundError
        The file does not exist.
    ValueError, OSError
        The header is not that of a ``.npy`` file.
    """
    with open(path, "rb") as fh:
        version = np.lib.format.read_magic(fh)
        read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                       else np.lib.format.read_array_header_2_0)
        shape, _, dtype = read_header(fh)
        return tuple(int(s) for s in shape), dtype, fh.tell(), os.fstat(fh.fileno()).st_size


def tupled(value: Any) -> Any:
    """Lists (recursively) as tuples, so that catalog values are hashable and comparable."""
    if isinstance(value, (list, tuple)):
        return tuple(tupled(v) for v in value)
    return value
