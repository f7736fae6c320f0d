"""Input checks for probability arrays, labels and distance matrices.

Public so that every room validates the same way: :mod:`deepmanifold.geometry`'s own
functions, the analyses, and user code holding arrays from any framework. Every check is vectorised and runs over the models axis in chunks, so validating
a large ``(T, n, C)`` array needs only a bounded amount of temporary memory.
Errors are :class:`ValueError` whose message names the argument, the offending
model/sample and what was expected.
"""

from __future__ import annotations

import numbers

import numpy as np

__all__ = [
    "PROGRESS_METHODS",
    "SUM_TOLERANCE",
    "check_distance_matrix",
    "check_distance_matrix_tiled",
    "check_floor",
    "check_labels",
    "check_model_stack",
    "check_n_classes",
    "check_probabilities",
    "check_progress_method",
    "check_same_samples",
    "sum_tolerance",
]

# Tolerance on |sum_c p_c - 1| (and on positive log-probabilities), by input dtype.
# float32 softmax outputs are normalised to ~C * 6e-8; float64 arrays are often
# float32 data cast up, hence 1e-5 rather than something near float64 eps.
SUM_TOLERANCE = {
    np.dtype(np.float16): 1e-2,
    np.dtype(np.float32): 1e-4,
    np.dtype(np.float64): 1e-5,
}

#: The definitions of progress along the ignorance-to-truth geodesic (docs/method.md §3.3),
#: the default first: the reference study's summed Bhattacharyya angle, and the intensive
#: Bhattacharyya distance.
PROGRESS_METHODS = ("angle", "bhattacharyya")

# Temporary elements per validation chunk (~32 MiB of float64).
_CHUNK_ELEMENTS = 1 << 22


def sum_tolerance(dtype: np.dtype) -> float:
    """Row-sum tolerance used for probability arrays of ``dtype``."""
    return SUM_TOLERANCE.get(np.dtype(dtype), SUM_TOLERANCE[np.dtype(np.float64)])


def _as_float_array(X, name: str) -> np.ndarray:
    """``X`` as a float32/float64 ndarray; no copy when it already is one."""
    X = np.asarray(X)
    if X.dtype == np.float16:
        return X.astype(np.float32)
    if X.dtype in (np.float32, np.float64):
        return X
    if X.dtype.kind in "biu":
        return X.astype(np.float64)
    raise ValueError(f"{name}: expected a real floating-point array, got dtype {X.dtype}")


def _where(name: str, index: tuple[int, ...], ndim: int) -> str:
    """``"X: model 3, sample 17"`` for the row index of a (T, n, C) or (n, C) array."""
    axes = ("model", "sample")[-(ndim - 1):]
    return f"{name}: " + ", ".join(f"{axis} {i}" for axis, i in zip(axes, index))


def _first(mask: np.ndarray) -> tuple[int, ...]:
    """Index of the first True entry of ``mask``."""
    return tuple(int(i) for i in np.unravel_index(int(np.argmax(mask)), mask.shape))


def check_probabilities(
    X, name: str, *, log: bool, ndim: int | tuple[int, ...], offset: int = 0
) -> np.ndarray:
    """Validate an array of probability vectors along its last axis.

    Parameters
    ----------
    X : array_like, shape ``(T, n, C)`` or ``(n, C)``
        Probabilities (``log=False``) or natural-log probabilities (``log=True``).
    name : str
        Argument name used in error messages.
    log : bool
        Whether ``X`` holds log-probabilities.
    ndim : int or tuple of int
        Accepted number of dimensions.
    offset : int, default 0
        Index of ``X[0]`` in a larger array (when ``X`` is one chunk of models
        streamed from it), added to the model index in error messages.

    Returns
    -------
    ndarray
        ``X`` as float32 (float16/float32 input) or float64 (anything else);
        not copied when it already has one of those dtypes.

    Raises
    ------
    ValueError
        Wrong ndim, an empty axis, NaN, +inf (and -inf for probabilities),
        negative probabilities, positive log-probabilities beyond the tolerance,
        or rows that do not sum to 1 within :data:`SUM_TOLERANCE` of the dtype.
    """
    X = np.asarray(X)
    tol = sum_tolerance(X.dtype)  # of the input dtype: float16 is widened below
    X = _as_float_array(X, name)
    ndims = (ndim,) if isinstance(ndim, int) else tuple(ndim)
    if X.ndim not in ndims:
        expected = " or ".join(_shape_name(d) for d in ndims)
        raise ValueError(f"{name}: expected shape {expected}, got shape {X.shape}")
    if 0 in X.shape:
        raise ValueError(f"{name}: every axis must be non-empty, got shape {X.shape}")
    # Chunk over the leading axis (models, or samples for 2-D input) so that
    # temporaries stay bounded.
    rows_per_chunk = max(1, _CHUNK_ELEMENTS // X[0].size)
    for start in range(0, X.shape[0], rows_per_chunk):
        problem = _chunk_problem(X[start:start + rows_per_chunk], log=log, tol=tol)
        if problem is not None:
            index, what = problem
            index = (index[0] + start + offset,) + index[1:]
            raise ValueError(f"{_where(name, index, X.ndim)} {what}")
    return X


def _shape_name(ndim: int) -> str:
    return {2: "(n, C)", 3: "(T, n, C)"}.get(ndim, f"with {ndim} dimensions")


def _chunk_problem(chunk: np.ndarray, *, log: bool, tol: float):
    """First problem in ``chunk`` as ``(row index, description)`` or None."""
    nan = np.isnan(chunk)
    if nan.any():
        return _first(nan.any(axis=-1)), "contains NaN"
    if log:
        posinf = np.isposinf(chunk)
        if posinf.any():
            return _first(posinf.any(axis=-1)), "contains +inf (log-probabilities must be <= 0)"
        positive = chunk > tol
        if positive.any():
            idx = _first(positive)
            return idx[:-1], (f"contains the positive log-probability {chunk[idx]:.6g} "
                              f"in class {idx[-1]} (tolerance {tol:g})")
        sums = np.exp(chunk).sum(axis=-1, dtype=np.float64)  # exp(-inf) = 0: p = 0 is legal
        what = "exp(log-probabilities) sums to"
    else:
        inf = np.isinf(chunk)
        if inf.any():
            return _first(inf.any(axis=-1)), "contains inf"
        negative = chunk < 0
        if negative.any():
            idx = _first(negative)
            return idx[:-1], f"contains the negative probability {chunk[idx]:.6g} in class {idx[-1]}"
        sums = chunk.sum(axis=-1, dtype=np.float64)
        what = "probabilities sum to"
    off = np.abs(sums - 1.0) > tol
    if off.any():
        idx = _first(off)
        return idx, f"{what} {sums[idx]:.8g}, not 1 (tolerance {tol:g})"
    return None


def check_same_samples(X: np.ndarray, Y: np.ndarray, x_name: str, y_name: str) -> None:
    """Raise unless ``X`` and ``Y`` share their last two axes ``(n, C)``."""
    if X.shape[-2:] != Y.shape[-2:]:
        raise ValueError(
            f"{x_name} has shape {X.shape} and {y_name} has shape {Y.shape}: "
            "both must describe the same samples and classes (last two axes (n, C) equal)"
        )


def check_labels(labels, n_samples: int, n_classes: int, name: str = "labels") -> np.ndarray:
    """Validate integer class labels of shape ``(n_samples,)`` in ``[0, n_classes)``."""
    labels = np.asarray(labels)
    if labels.ndim != 1:
        raise ValueError(f"{name}: expected shape (n,), got shape {labels.shape}")
    if labels.dtype.kind not in "iu":
        raise ValueError(f"{name}: expected integer class labels, got dtype {labels.dtype}")
    if labels.shape[0] != n_samples:
        raise ValueError(f"{name} has length {labels.shape[0]} but there are {n_samples} samples")
    out = (labels < 0) | (labels >= n_classes)
    if out.any():
        i = int(np.argmax(out))
        raise ValueError(f"{name}[{i}] = {labels[i]} is outside [0, {n_classes})")
    return labels.astype(np.intp, copy=False)


def check_n_classes(n_classes) -> int:
    """Validate the number of classes (an integer >= 2)."""
    if isinstance(n_classes, bool) or not isinstance(n_classes, numbers.Integral) or n_classes < 2:
        raise ValueError(f"n_classes must be an integer >= 2, got {n_classes!r}")
    return int(n_classes)


def check_floor(floor) -> float:
    """Validate the clamp floor, a float in (0, 1)."""
    floor = float(floor)
    if not 0.0 < floor < 1.0:
        raise ValueError(f"floor must lie in (0, 1), got {floor!r}")
    return floor


def check_model_stack(X, name: str = "X"):
    """Check the shape of a stack of models without reading it.

    Parameters
    ----------
    X : array_like, shape (T, n, C)
        Anything with ``.shape``, ``.dtype`` and slicing along axis 0
        (``np.ndarray``, ``np.memmap``, zarr arrays, :class:`ModelStack`) is
        kept as it is; anything else goes through :func:`numpy.asarray`.
    name : str, default "X"
        Argument name used in error messages.

    Returns
    -------
    (X, (T, n, C)) : tuple
        ``X`` (unread) and its shape as Python ints.

    Raises
    ------
    ValueError
        ``X`` is not 3-D, or an axis is empty.
    """
    if not (hasattr(X, "shape") and hasattr(X, "dtype") and hasattr(X, "__getitem__")):
        X = np.asarray(X)
    shape = tuple(int(s) for s in X.shape)
    if len(shape) != 3:
        raise ValueError(f"{name}: expected shape (T, n, C), got shape {shape}")
    if 0 in shape:
        raise ValueError(f"{name}: every axis must be non-empty, got shape {shape}")
    return X, shape


def check_distance_matrix(D, name: str = "D") -> np.ndarray:
    """Validate a square, finite, non-negative, symmetric distance matrix with a zero diagonal.

    Symmetry and the zero diagonal are checked to within
    ``1e-6 * max(1, max|D|)``. Entries must be non-negative, as every divergence
    is (docs/method.md §2), except for rounding: an entry above
    ``-max(1e-12, 10 eps) * max|D|`` (``eps`` of the input dtype: ``1e-12`` for
    float64, ``1.2e-6`` for float32) is accepted as it is. The returned float64
    array is the symmetric part ``(D + D.T) / 2``.

    Raises
    ------
    ValueError
        Not a real square non-empty matrix, a non-finite entry, asymmetry or a
        non-zero diagonal beyond the tolerance, or a negative entry beyond
        rounding; the message names the entry.
    """
    D, _ = check_distance_matrix_tiled(D, name)
    D = np.asarray(D, dtype=np.float64)
    return (D + D.T) / 2


def check_distance_matrix_tiled(D, name: str = "D", *, tile: int = 256) -> tuple[np.ndarray, bool]:
    """:func:`check_distance_matrix` tile by tile, without copying the matrix.

    The same rules, read in ``tile x tile`` blocks, so the temporaries are
    ``O(tile^2)`` whatever the size of ``D`` (e.g. a large ``np.memmap``).

    Returns
    -------
    (D, exactly_symmetric) : tuple
        ``D`` itself when it is a float32/float64 ndarray or memmap (other real
        dtypes are converted to float64), and whether ``D == D.T`` exactly.
    """
    D = _square_real(D, name)
    T = D.shape[0]
    max_abs, max_asym, asym_at, max_diag, diag_at = 0.0, 0.0, (0, 0), 0.0, 0
    lowest, lowest_at = 0.0, (0, 0)
    for s in range(0, T, tile):
        e = min(T, s + tile)
        for t in range(s, T, tile):
            f = min(T, t + tile)
            A = np.asarray(D[s:e, t:f])
            B = A if t == s else np.asarray(D[t:f, s:e])
            blocks = [(A, s, t)] if t == s else [(A, s, t), (B, t, s)]
            for block, row0, col0 in blocks:
                lo, hi = _finite_range(block, name, row0, col0)
                max_abs = max(max_abs, -lo, hi)
                if lo < lowest:
                    i, j = _first(block == lo)
                    lowest, lowest_at = lo, (row0 + i, col0 + j)
            diff = np.abs(A - B.T)
            if float(diff.max()) > max_asym:
                i, j = _first(diff == diff.max())
                max_asym, asym_at = float(diff.max()), (s + i, t + j)
            if t == s:
                diag = np.abs(np.diagonal(A))
                if float(diag.max()) > max_diag:
                    max_diag, diag_at = float(diag.max()), s + int(np.argmax(diag))
    tol = 1e-6 * max(1.0, max_abs)
    if max_asym > tol:
        i, j = asym_at
        raise ValueError(
            f"{name} is not symmetric: {name}[{i}, {j}] = {D[i, j]:.8g} but "
            f"{name}[{j}, {i}] = {D[j, i]:.8g} (tolerance {tol:.3g})"
        )
    if max_diag > tol:
        i = diag_at
        raise ValueError(f"{name} must have a zero diagonal: {name}[{i}, {i}] = {D[i, i]:.8g}")
    rounding = _negative_rounding(D.dtype) * max_abs
    if lowest < -rounding:
        i, j = lowest_at
        raise ValueError(
            f"{name} must be non-negative (distances are divergences): {name}[{i}, {j}] = {lowest:.8g} "
            f"(entries down to -{rounding:.3g} are accepted as rounding)"
        )
    return D, max_asym == 0.0


def _negative_rounding(dtype) -> float:
    """Largest negative entry, relative to ``max|D|``, taken as rounding for a matrix of ``dtype``."""
    return max(1e-12, 10 * float(np.finfo(dtype).eps))


def _square_real(D, name: str) -> np.ndarray:
    """``D`` as a real, square, non-empty 2-D array; float32/float64 arrays are not copied."""
    D = D if isinstance(D, np.ndarray) else np.asarray(D)
    if D.dtype.kind not in "fiu":
        raise ValueError(f"{name}: expected a real array, got dtype {D.dtype}")
    if D.ndim != 2 or D.shape[0] != D.shape[1]:
        raise ValueError(f"{name}: expected a square (T, T) matrix, got shape {D.shape}")
    if D.shape[0] == 0:
        raise ValueError(f"{name}: the matrix is empty")
    if D.dtype not in (np.float32, np.float64):
        D = D.astype(np.float64)
    return D


def _finite_range(A: np.ndarray, name: str, row0: int, col0: int) -> tuple[float, float]:
    """``(min A, max A)`` of a block whose top-left entry is ``D[row0, col0]``; raise on NaN or inf."""
    lo, hi = float(A.min()), float(A.max())  # NaN or inf shows up in one of them
    if not (np.isfinite(lo) and np.isfinite(hi)):
        i, j = _first(~np.isfinite(A))
        raise ValueError(f"{name}[{row0 + i}, {col0 + j}] = {A[i, j]} is not finite")
    return lo, hi


def check_progress_method(method) -> str:
    """The definition of progress, checked to be one of :data:`PROGRESS_METHODS`.

    Raises
    ------
    ValueError
        ``method`` is not one of them.
    """
    if not isinstance(method, str) or method not in PROGRESS_METHODS:
        raise ValueError(f"progress method must be one of {PROGRESS_METHODS}, got {method!r}")
    return method
