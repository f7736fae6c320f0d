"""Lazy sources of models for the streaming distance computations.

Every function of :mod:`deepmanifold.geometry` that takes a ``(T, n, C)`` stack of
models and streams over it (see :func:`pairwise_distances`) accepts any array-like
with ``.shape``, ``.dtype`` and slicing ``X[a:b]`` along the first axis:
``np.ndarray``, ``np.memmap``, zarr arrays, ... :class:`ModelStack` joins several
such arrays (e.g. one memory map per training run) into one model axis without
copying or loading them.
"""

from __future__ import annotations

import numbers

import numpy as np

__all__ = ["ModelStack", "read_models", "release_pages"]


def release_pages(array) -> None:
    """Drop the pages of an ``np.memmap`` (or a view of one) from this process's memory.

    The file stays in the page cache, so a later read is cheap; what goes is this
    process's resident share of it, which would otherwise grow with every run a
    streamed computation touches. Anything that is not a memory map is left alone.
    """
    mm = getattr(array, "_mmap", None)
    if mm is None:
        base = getattr(array, "base", None)
        mm = getattr(base, "_mmap", None) if base is not None else None
        mm = mm if mm is not None else (base if type(base).__name__ == "mmap" else None)
    madvise = getattr(mm, "madvise", None)
    if madvise is not None:
        try:
            import mmap

            madvise(mmap.MADV_DONTNEED)
        except (AttributeError, OSError, ValueError):  # pragma: no cover - platform dependent
            pass


def read_models(source, a: int, b: int, dtype=None) -> np.ndarray:
    """Models ``source[a:b]`` as an ndarray in memory; a memory-mapped source's pages are dropped after the copy."""
    raw = source[a:b]
    if isinstance(source, np.memmap) or isinstance(raw, np.memmap):
        raw = np.array(raw, dtype=dtype)
        release_pages(source)
    return np.asarray(raw, dtype=dtype)


class ModelStack:
    """Several ``(T_k, n, C)`` arrays seen as one ``(sum T_k, n, C)`` array.

    Only slicing along axis 0 (``stack[a:b]``, step 1) and integer indexing are
    supported; both read just the models asked for, so memory maps and zarr
    arrays stay on disk until needed, and the pages a slice read from a memory
    map are dropped once copied (a pass over a whole store of runs never holds
    more than the slice it is working on).

    Parameters
    ----------
    arrays : sequence of array-like
        Each with ``.shape`` ``(T_k, n, C)`` (the same ``(n, C)``) and ``.dtype``.

    Examples
    --------
    >>> import numpy as np
    >>> a, b = np.zeros((2, 3, 4)), np.ones((5, 3, 4))
    >>> s = ModelStack([a, b])
    >>> s.shape, s[1:4].sum(axis=(1, 2)).tolist()
    ((7, 3, 4), [0.0, 12.0, 12.0])
    """

    def __init__(self, arrays):
        arrays = list(arrays)
        if not arrays:
            raise ValueError("ModelStack needs at least one array")
        tails = {tuple(a.shape[1:]) for a in arrays}
        if any(len(a.shape) != 3 for a in arrays) or len(tails) != 1:
            shapes = [tuple(a.shape) for a in arrays]
            raise ValueError(f"ModelStack: every array must have shape (T_k, n, C) with the same (n, C), got {shapes}")
        self.arrays = arrays
        self.dtype = np.result_type(*[np.dtype(a.dtype) for a in arrays])
        self.offsets = np.cumsum([0] + [int(a.shape[0]) for a in arrays])
        self.shape = (int(self.offsets[-1]),) + tails.pop()
        self.ndim = 3

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, key):
        if isinstance(key, numbers.Integral):
            i = int(key) + (self.shape[0] if key < 0 else 0)
            if not 0 <= i < self.shape[0]:
                raise IndexError(f"model index {key} out of range for {self.shape[0]} models")
            k = int(np.searchsorted(self.offsets, i, side="right")) - 1
            return np.asarray(self.arrays[k][i - self.offsets[k]], dtype=self.dtype)
        if not isinstance(key, slice):
            raise TypeError("ModelStack supports only an integer or a slice along the model axis")
        start, stop, step = key.indices(self.shape[0])
        if step != 1:
            raise ValueError("ModelStack slices must have step 1")
        parts = []
        for k, a in enumerate(self.arrays):
            lo, hi = max(start, self.offsets[k]), min(stop, self.offsets[k + 1])
            if lo < hi:
                parts.append(read_models(a, lo - self.offsets[k], hi - self.offsets[k], self.dtype))
        if not parts:
            return np.empty((0,) + self.shape[1:], dtype=self.dtype)
        return parts[0] if len(parts) == 1 else np.concatenate(parts, axis=0)

    def __array__(self, dtype=None, copy=None):
        return self[:] if dtype is None else self[:].astype(dtype)

    def __repr__(self) -> str:
        return f"ModelStack({len(self.arrays)} arrays, shape={self.shape}, dtype={self.dtype})"
