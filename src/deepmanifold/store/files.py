"""Durable files of a store: the error type, fsync'd writes, ``.npy`` headers, values as tuples.

The lowest module of :mod:`deepmanifold.store`: :mod:`.catalog` and :mod:`.store` both
build on it, and it imports neither.
"""

from __future__ import annotations

import contextlib
import errno
import io
import os
import zlib
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["StoreError", "checksum", "fsync_dir", "locked", "npy_bytes", "npy_header", "pid_alive", "tupled",
           "write_bytes"]


try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX: locks are advisory helpers only
    fcntl = None


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
    """Write ``data`` to ``path`` and flush it to disk before returning.

    Raises
    ------
    OSError
        With ``errno.ENOSPC`` and a message naming the path when the disk is full.
    """
    try:
        with open(path, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
    except OSError as exc:
        if exc.errno == errno.ENOSPC:
            raise OSError(errno.ENOSPC, f"the disk is full: {len(data)} bytes could not be written", str(path)) from exc
        raise


def npy_bytes(array: np.ndarray) -> bytes:
    """``array`` as the bytes of a ``.npy`` file (never pickled)."""
    buffer = io.BytesIO()
    np.save(buffer, np.ascontiguousarray(array), allow_pickle=False)
    return buffer.getvalue()


def checksum(data: bytes) -> int:
    """CRC-32 of a file's bytes: what a run's ``run.json`` records of each of its files."""
    return zlib.crc32(data)


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


def pid_alive(pid: int) -> bool:
    """Whether a process with this pid exists on this machine."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@contextlib.contextmanager
def locked(path: Path):
    """Hold an exclusive advisory lock on ``path`` (created if missing) for the ``with`` block.

    The kernel releases it if the process dies; without ``fcntl`` (not POSIX) it is a no-op.
    """
    if fcntl is None:
        yield
        return
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)
