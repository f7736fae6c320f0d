"""Distance matrices between many models, computed in tiles of models.

For each sample ``i`` the Bhattacharyya coefficients between all pairs of models
form the Gram matrix of the ``T x C`` matrix of ``sqrt p_i``; the ``T x T``
distance matrix therefore costs ``T^2 n C`` multiply-adds and ``T^2 n``
logarithms. Here ``sqrt p`` is computed once per model, the matrix is filled in
tiles of up to ``block_size x block_size`` models (the numba kernel's column blocks
are narrower, :func:`_kernels.column_width`; only the upper triangle when
``Y is None``), and each tile is swept over chunks of samples, so the temporary
memory is bounded independently of ``T`` and ``n``.
"""

from __future__ import annotations

import numbers
from types import SimpleNamespace

import numpy as np
from scipy.special import xlogy

from . import _kernels
from .divergences import FLOOR, clamp_coefficients, sqrt_probabilities, warn_clamped
from .sources import read_models
from .validation import check_floor, check_model_stack, check_probabilities, sum_tolerance

__all__ = ["BACKENDS", "METRICS", "PRECISIONS", "pairwise_distances"]

PRECISIONS = ("exact", "fast")
BACKENDS = ("numba", "numpy", "torch")
# Default budget for the prepared square roots held at once (row panel + column chunk).
_MAX_MEMORY = 1 << 30

METRICS = ("bhattacharyya", "hellinger", "jensen_shannon", "symmetric_kl")

# Elements of the per-tile temporary buffer (16 MiB of float64).
_TILE_ELEMENTS = 1 << 21
# Products of at most this many coefficients are taken before one log.
_MAX_GROUP = 16
# Row models per tile of the numba kernel (columns: block_size, at most _kernels.column_width).
_TILE_ROWS = 256  # the faster of 128 and 256 on 1 and 2 cores (benchmarks/bench_distances.py)


def pairwise_distances(
    X,
    Y=None,
    *,
    log: bool = False,
    metric: str = "bhattacharyya",
    floor: float = FLOOR,
    block_size: int | None = None,
    precision: str = "exact",
    n_jobs: int | None = None,
    device: str | None = None,
    backend: str | None = None,
    out=None,
    max_memory: int | None = None,
) -> np.ndarray:
    r"""Distances between every model of ``X`` and every model of ``Y``.

    With ``p = X[s]``, ``q = Y[t]`` (each ``(n, C)``) and
    ``BC_i = sum_c sqrt(p_ic q_ic)``, entry ``[s, t]`` is, for ``metric``:

    ``"bhattacharyya"`` (default)
        intensive Bhattacharyya distance ``-(1/n) sum_i log BC_i`` [1]_ [2]_, a
        *squared* distance for InPCA;
    ``"hellinger"``
        squared Hellinger distance ``1 - (1/n) sum_i BC_i``;
    ``"jensen_shannon"``
        ``(1/n) sum_i JS(p_i, q_i)`` with
        ``JS(p, q) = KL(p||m)/2 + KL(q||m)/2``, ``m = (p + q)/2``, natural log
        (so each term is in ``[0, ln 2]``);
    ``"symmetric_kl"``
        ``(1/n) sum_i [KL(p_i||q_i) + KL(q_i||p_i)]
        = (1/n) sum_i sum_c (p_ic - q_ic)(log p'_ic - log q'_ic)`` with
        ``p' = max(p, floor)``.

    Parameters
    ----------
    X : array_like, shape (T, n, C)
        Class probabilities of ``T`` models on the same ``n`` samples. For the
        Bhattacharyya metric any object with ``.shape``, ``.dtype`` and slicing
        ``X[a:b]`` along axis 0 is streamed (``np.memmap``, zarr arrays,
        :class:`~deepmanifold.geometry.sources.ModelStack`): only bounded
        panels of models are read at a time, for every metric.
    Y : array_like, shape (T2, n, C), optional
        Second set of models on the same samples (e.g. models to project). If
        None, distances within ``X``: only the upper triangle is computed and
        mirrored, and the diagonal is exactly 0.
    log : bool, default False
        Inputs are natural-log probabilities (``-inf`` allowed for ``p = 0``).
    metric : {"bhattacharyya", "hellinger", "jensen_shannon", "symmetric_kl"}
    floor : float, default :data:`FLOOR` (1e-12)
        Clamp for the logarithms. Bhattacharyya: each ``BC_i`` below ``floor``
        is raised to it, so a sample where two models have disjoint supports
        contributes ``-log(floor)/n`` (27.6/n) instead of ``+inf``;
        coefficients above 1 (rounding of rows that sum to ``1 ± 1e-7``) are
        kept, and the distance is clipped at 0. This one rule holds on every
        backend and whatever the tiling (see
        :mod:`deepmanifold.geometry.divergences`), so ``D[s, t]`` does not
        depend on the other models computed with it. Symmetric KL:
        probabilities are raised to ``floor`` inside the logs. When anything
        is clamped, one :class:`ClampWarning` gives the count of clamped
        (pair, sample) coefficients, respectively probability entries.
    block_size : int, optional
        Models per tile along each axis (default: 256 for Bhattacharyya, 32 for
        Jensen-Shannon, 512 for the others). Only affects speed and memory.
    precision : {"exact", "fast"}, default "exact"
        Bhattacharyya only. ``"exact"``: square roots and Gram products in
        float64, relative error ~1e-12 even for very close models. ``"fast"``:
        float32 square roots and products (about half the memory and up to 2x
        faster), absolute error ~1e-7 on each ``BC_i``, hence relative error
        ~1e-7 / d_B: fine for d_B >~ 1e-2, poor for very close models. Logs
        are always accumulated in float64.
    n_jobs : int, optional
        Threads for the numba kernel (default: all cores, for this call only;
        the previous numba thread count is restored).
    device : {None, "cpu", "cuda"}
        Bhattacharyya only. None: ``"cuda"`` when ``torch.cuda.is_available()``,
        else ``"cpu"``. On ``"cuda"`` tiles are computed with torch on the GPU.
    backend : {None, "numba", "numpy", "torch"}
        Bhattacharyya only. None: torch on ``"cuda"``, numba on the CPU.
        ``"numpy"`` (a plain reference) and ``"torch"`` (the CUDA tile kernel,
        on the CPU with ``device="cpu"``) give the same numbers to rounding.
    out : array-like, shape (T, T2), float32 or float64, optional
        Where to write the result tile by tile, e.g. a float32 ndarray (half the
        memory of the default float64 result), an ``np.memmap`` or a zarr
        array. Returned instead of a new array. Any other dtype (integers,
        bool, float16) is refused: it would truncate the distances.
    max_memory : int, optional
        Bytes of prepared models held at once (default 1 GiB). Bhattacharyya
        and Hellinger keep ``sqrt p``, ``n*C*8`` bytes per model (``n*C*4``
        with ``precision="fast"``), e.g. 160 kB for n = 2000, C = 10;
        Jensen-Shannon keeps ``p`` (as much), symmetric KL ``p`` and
        ``log p`` (twice). When all ``T`` models do not fit, rows are
        processed in panels of models and the column models are re-read from
        ``X`` once per panel.

    Returns
    -------
    D : ndarray, shape (T, T2), float64 (or ``out``)
        Non-negative, never NaN.

    Raises
    ------
    ValueError
        Wrong ndim, ``X`` and ``Y`` with different ``(n, C)``, NaN/inf,
        negative probabilities, rows not summing to 1 within 1e-4 (float32
        input) or 1e-5 (float64); with ``log=True``: NaN, ``+inf``, positive
        log-probabilities beyond that tolerance, or rows whose ``exp`` does not
        sum to 1. Messages name the model and sample index. Unknown
        ``metric``, ``precision``, ``device``, ``backend``; bad ``floor`` or
        ``block_size``; ``out`` of the wrong shape, not float32/float64, or
        read-only.

    Notes
    -----
    Algorithm (Bhattacharyya). ``sqrt p`` is computed (and the input validated)
    once per model per panel, in one parallel pass; for every sample the
    coefficients of a tile of model pairs are one small matrix product, folded
    into a running float64 product per pair that is renormalised every ~25
    samples by moving its binary exponent into an integer (exact; this is the
    underflow guard, valid while every factor is ``>= floor``); one log per pair
    is taken at the end. A tile is first computed with the coefficients as they
    are; only if it met one below ``floor`` is it computed again with the clamp
    and its clamped terms counted (every other factor is the same in both
    passes). Symmetric tiles skip the pairs below the diagonal. Tiles run in
    parallel on numba threads. The Gram form ``BC = sum_c sqrt(p) sqrt(q)`` is
    used rather than ``1 - BC = 1/2 sum_c (sqrt p - sqrt q)^2``: the latter
    needs exactly normalised rows (float32 softmax rows are off by ~1e-7,
    which would dominate ``d_B`` of close models), while the float64 Gram
    product has an absolute error ~1e-16, i.e. a relative error of d_B below
    1e-9 for ``d_B >= 1e-6``.

    Cost: Bhattacharyya and Hellinger need ``T T2 n C`` multiply-adds (only
    half for the symmetric case), symmetric KL twice that; Jensen-Shannon needs
    ``T T2 n C`` logs and is by far the slowest.

    Memory: the result (``T T2 * 8`` bytes unless ``out`` is given), at most
    ``max_memory`` bytes of prepared models, one chunk of raw input models
    (Bhattacharyya; a whole panel for the other metrics) and the per-tile
    buffers (a few MB per thread). Pages of an input ``np.memmap`` are
    released after each chunk is read.

    References
    ----------
    .. [1] J. Mao et al., "The training process of many deep networks explores
           the same low-dimensional manifold", PNAS 121 (12), 2024.
    .. [2] K. N. Quinn et al., "Visualizing probabilistic models and data with
           Intensive Principal Component Analysis", PNAS 116 (28), 2019.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> X = rng.dirichlet(np.ones(10), size=(5, 100))
    >>> D = pairwise_distances(X)
    >>> D.shape, bool(np.allclose(D, D.T)), float(D[2, 2])
    ((5, 5), True, 0.0)
    """
    if metric not in METRICS:
        raise ValueError(f"metric must be one of {METRICS}, got {metric!r}")
    floor = check_floor(floor)
    if block_size is not None and (
        isinstance(block_size, bool) or not isinstance(block_size, numbers.Integral) or block_size < 1
    ):
        raise ValueError(f"block_size must be a positive integer or None, got {block_size!r}")
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    if device not in (None, "cpu", "cuda"):
        raise ValueError(f"device must be None, 'cpu' or 'cuda', got {device!r}")
    if backend is not None and backend not in BACKENDS:
        raise ValueError(f"backend must be None or one of {BACKENDS}, got {backend!r}")
    if metric == "bhattacharyya":
        return _bhattacharyya_streamed(
            X, Y, log=log, floor=floor, block=block_size or 256, precision=precision, n_jobs=n_jobs,
            device=device, backend=backend, out=out, max_memory=max_memory or _MAX_MEMORY,
        )
    return _companion_streamed(_KERNELS[metric](floor, np.float64), X, Y, log=log, floor=floor,
                               block=block_size, out=out, max_memory=max_memory or _MAX_MEMORY)


def _companion_streamed(kernel, X, Y, *, log, floor, block, out, max_memory):
    """Hellinger, symmetric KL, Jensen-Shannon in panels of models, like Bhattacharyya.

    Each panel of models is read, validated and transformed by ``kernel.prepare``
    once; tiles of a row panel against a column panel go straight into ``out``.
    Per-model clamp counts are taken once per model (as a row, or for ``Y`` on the
    first row panel).
    """
    X, Ysrc, (T, n, C), T2 = _sources(X, Y)
    symmetric = Y is None
    D = _result(out, (T, T2))
    block = block or kernel.default_block
    panel = _panel_size(block, max_memory, n * C * 8 * kernel.arrays_per_model)
    clamped = 0

    def prepare(src, a, b, name, validate):
        nonlocal clamped
        prepared = kernel.prepare(_read_checked(src, a, b, name, log, validate=validate), log)
        clamped += prepared.clamped if validate else 0  # each model is validated once
        return prepared

    for p0, c0, c1, px, py, diagonal in _panel_pairs(X, Ysrc, T, T2, panel, symmetric, prepare):
        tile, count = _fill_tiles(kernel, px, py, symmetric=diagonal, block=block)
        clamped += count
        # a diagonal tile comes back whole (mirrored inside _fill_tiles)
        _store_panel(D, tile, p0, c0, c1 - c0, upper=False, mirror=symmetric and not diagonal)
    warn_clamped(clamped, kernel.clamp_what, floor, stacklevel=4)
    return D


def _panel_pairs(X, Ysrc, T: int, T2: int, panel: int, symmetric: bool, prepare):
    """Every (row panel, column panel) pair of a streamed path, each panel prepared once per row panel.

    ``prepare(src, a, b, name, validate)`` reads and transforms models ``src[a:b]``.
    Yields ``(p0, c0, c1, rows, cols, diagonal)``; with ``symmetric`` only the
    column panels from the row panel's own (``diagonal``, which reuses ``rows``)
    onwards. X's models are validated as rows, Y's on the first row panel.
    """
    for p0 in range(0, T, panel):
        rows = prepare(X, p0, min(T, p0 + panel), "X", True)
        for c0 in range(p0 if symmetric else 0, T2, panel):
            c1 = min(T2, c0 + panel)
            diagonal = symmetric and c0 == p0
            cols = rows if diagonal else prepare(Ysrc, c0, c1, "X" if symmetric else "Y",
                                                  not symmetric and p0 == 0)
            yield p0, c0, c1, rows, cols, diagonal


def _read_checked(src, a: int, b: int, name: str, log: bool, *, validate: bool = True) -> np.ndarray:
    """Models ``src[a:b]``, validated (errors name the model by its index in ``src``) if asked."""
    raw = read_models(src, a, b)
    return check_probabilities(raw, name, log=log, ndim=3, offset=a) if validate else raw


def _panel_size(block: int, max_memory: int, per_model: int) -> int:
    """Models per panel: two panels (rows, columns) of ``per_model`` bytes fit in ``max_memory``."""
    return max(block, int(max_memory // (2 * per_model)) // block * block)


def _store_panel(D, tile: np.ndarray, p0: int, c0: int, K: int, *, upper: bool, mirror: bool) -> None:
    """``D[p0:p0+R, c0:c0+K] = tile[:, :K]`` (only its strict upper triangle and a zero
    diagonal if ``upper``); with ``mirror`` also the transpose at ``D[c0:c0+K, p0:p0+R]``.

    A float NumPy ``D`` (memmaps included) is written by a parallel numba copy; any other
    array-like (e.g. zarr) by slice assignment.
    """
    if (isinstance(D, np.ndarray) and D.dtype in (np.float32, np.float64)
            and tile.dtype == np.float64 and tile.flags.c_contiguous):
        _kernels.store_tile(np.asarray(D), tile, p0, c0, K, upper, mirror)
        return
    R = tile.shape[0]
    part = tile[:, :K]
    if upper:
        part = np.triu(part, 1)
        if mirror:
            part = part + part.T
            mirror = False
    D[p0:p0 + R, c0:c0 + K] = part
    if mirror:
        D[c0:c0 + K, p0:p0 + R] = part.T


# ----------------------------------------------------------------------------
# Bhattacharyya: streamed panels of models, tile engines (numba, numpy, torch).


# dtypes ``out`` may have: an integer or bool ``out`` would silently truncate every distance.
_OUT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def _check_out(out, shape):
    """Raise unless ``out`` is a writable float32/float64 array-like of ``shape``."""
    expected = f"a float32 or float64 array of shape {tuple(shape)}"
    if not (hasattr(out, "shape") and hasattr(out, "dtype") and hasattr(out, "__setitem__")):
        raise ValueError(f"out must be {expected} (an ndarray, np.memmap or zarr array), "
                         f"got {type(out).__name__}")
    try:
        dtype = np.dtype(out.dtype)
    except TypeError:
        dtype = None
    if dtype not in _OUT_DTYPES:
        raise ValueError(f"out must be {expected}, got dtype {out.dtype}")
    if tuple(out.shape) != tuple(shape):
        raise ValueError(f"out must be {expected}, got shape {tuple(out.shape)}")
    if isinstance(out, np.ndarray) and not out.flags.writeable:
        raise ValueError(f"out must be {expected} that can be written to; it is read-only")


def _prepare_roots(X, a: int, b: int, *, name: str, log: bool, dtype, validate: bool) -> np.ndarray:
    """Square roots of models ``X[a:b]`` as a ``(n, b - a, C)`` array of ``dtype``."""
    n, C = X.shape[1], X.shape[2]
    roots = np.empty((n, b - a, C), dtype=dtype)
    step = max(1, (1 << 22) // (n * C))  # ~32 MiB of raw input at a time
    for t0 in range(a, b, step):
        t1 = min(b, t0 + step)
        raw = read_models(X, t0, t1)
        if validate:
            raw = check_probabilities(raw, name, log=log, ndim=3, offset=t0)
        elif raw.dtype not in (np.float32, np.float64):
            raw = raw.astype(np.float64)
        work = raw.astype(np.float64 if np.dtype(dtype) == np.float64 else raw.dtype, copy=False)
        root = np.exp(0.5 * work) if log else np.sqrt(work)
        roots[:, t0 - a:t1 - a, :] = root.transpose(1, 0, 2)
    return roots


def _sources(X, Y):
    """``(X, Y or X, (T, n, C), T2)`` of the streamed paths, shapes checked, nothing loaded."""
    X, (T, n, C) = check_model_stack(X, "X")
    if Y is None:
        return X, X, (T, n, C), T
    Ysrc, shape_y = check_model_stack(Y, "Y")
    if shape_y[1:] != (n, C):
        raise ValueError(
            f"X has shape {(T, n, C)} and Y has shape {shape_y}: both must describe the same samples "
            "and classes (last two axes (n, C) equal)"
        )
    return X, Ysrc, (T, n, C), shape_y[0]


def _result(out, shape):
    """``out`` after checking its shape, or a new float64 array."""
    if out is None:
        return np.empty(shape, dtype=np.float64)
    _check_out(out, shape)
    return out


def _bhattacharyya_streamed(X, Y, *, log, floor, block, precision, n_jobs, device, backend, out, max_memory):
    X, Ysrc, (T, n, C), T2 = _sources(X, Y)
    symmetric = Y is None
    for name, src in (("X", X), ("Y", Ysrc)):
        kind = np.dtype(src.dtype).kind
        if kind not in "fiub":
            raise ValueError(f"{name}: expected a real floating-point array, got dtype {src.dtype}")
    if device is None:
        from ._torch_kernels import cuda_available

        device = "cuda" if (backend in (None, "torch") and cuda_available()) else "cpu"
    if device == "cuda":
        backend = "torch"
    elif backend is None:
        backend = "numba"
    dtype = np.dtype(np.float64 if precision == "exact" else np.float32)
    D = _result(out, (T, T2))
    panel = _panel_size(block, max_memory, n * C * dtype.itemsize)
    if backend == "numba":
        with _kernels.set_threads(n_jobs):
            clamped = _numba_streamed(X, Ysrc, T=T, T2=T2, symmetric=symmetric, log=log, floor=floor, block=block,
                                      dtype=dtype, D=D, panel=panel)
        warn_clamped(clamped, "(pair, sample) Bhattacharyya coefficients", floor, stacklevel=4)
        return D
    engine = {"numpy": _numpy_engine, "torch": _torch_engine}[backend]
    clamped = 0

    def prepare(src, a, b, name, validate):
        return _prepare_roots(src, a, b, name=name, log=log, dtype=dtype, validate=validate)

    with _kernels.set_threads(n_jobs):
        for p0, c0, c1, A, B, diagonal in _panel_pairs(X, Ysrc, T, T2, panel, symmetric, prepare):
            tile, count = engine(A, B, floor=floor, upper=diagonal, block=block, device=device)
            clamped += count
            _store_panel(D, tile, p0, c0, c1 - c0, upper=diagonal, mirror=symmetric)
    warn_clamped(clamped, "(pair, sample) Bhattacharyya coefficients", floor, stacklevel=4)
    return D


def _numba_streamed(X, Ysrc, *, T, T2, symmetric, log, floor, block, dtype, D, panel) -> int:
    """Fill D with the numba kernel, panel by panel; return the number of clamped terms.

    Roots are written straight into the kernel's layouts by parallel numba passes
    (rows ``(n, R, C)``, column blocks ``(L, n, C, W)``), into two buffers allocated
    once; a diagonal block takes its columns from the row panel already in memory.
    Tiles go into D by a parallel copy (mirrored for the lower triangle) when D is
    a NumPy array.
    """
    n, C = X.shape[1], X.shape[2]
    renorm = _kernels.renorm_interval(floor)
    rows_buf = np.empty((n, min(panel, T), C), dtype=dtype)
    cols_buf = _blocks_for(min(panel, T2), block, n, C, dtype)
    clamped = 0
    cols_hold = None  # (c0, c1) of the models now in cols_buf
    for p0 in range(0, T, panel):
        p1 = min(T, p0 + panel)
        R = p1 - p0
        A = rows_buf if R == rows_buf.shape[1] else np.empty((n, R, C), dtype=dtype)
        _fill_roots(X, p0, p1, name="X", log=log, validate=True, out=A, rows=True)
        starts = list(range(p0 if symmetric else 0, T2, panel))
        if cols_hold is not None and cols_hold[0] in starts:
            # Begin with the column panel still in the buffer, and end with another one that
            # the next row panel needs: one preparation fewer per row panel.
            starts.remove(cols_hold[0])
            starts.insert(0, cols_hold[0])
        for c0 in starts:
            c1 = min(T2, c0 + panel)
            K = c1 - c0
            diagonal = symmetric and c0 == p0
            W = cols_buf.shape[3]
            L = -(-K // W)
            Bs = cols_buf[:L]
            if diagonal:
                _kernels.rows_to_blocks(A, Bs)
                _pad_blocks(Bs, K)
                cols_hold = None
            elif cols_hold != (c0, c1):
                # Y's models are validated on the first panel; X's ones as rows.
                _fill_roots(Ysrc, c0, c1, name="X" if symmetric else "Y", log=log,
                            validate=not symmetric and p0 == 0, out=Bs, rows=False)
                _pad_blocks(Bs, K)
                cols_hold = (c0, c1)
            widths = np.full(L, W, dtype=np.int64)
            widths[-1] = K - (L - 1) * W
            tile = np.empty((R, L * W))
            clamped += _kernels.bhattacharyya_tiles(A, Bs, tile, floor, renorm, min(block, _TILE_ROWS), 0, 0, widths,
                                                    diagonal)
            _store_panel(D, tile, p0, c0, K, upper=diagonal, mirror=symmetric)
    return int(clamped)


def _blocks_for(K: int, block: int, n: int, C: int, dtype) -> np.ndarray:
    """Empty column blocks ``(L, n, C, W)`` for K models: W = min(block, K, the kernel's
    :func:`_kernels.column_width`) rounded up to the kernel's multiple
    (:func:`_kernels.column_multiple`), the extra columns padding."""
    multiple = _kernels.column_multiple()
    W = -(-min(block, K, _kernels.column_width(C, dtype)) // multiple) * multiple
    return np.empty((-(-K // W), n, C, W), dtype=dtype)


def _pad_blocks(Bs: np.ndarray, K: int) -> None:
    """Fill the unused columns of the last block with copies of a real model (never written out)."""
    tail = K - (Bs.shape[0] - 1) * Bs.shape[3]
    if tail < Bs.shape[3]:
        Bs[-1, :, :, tail:] = Bs[-1, :, :, tail - 1:tail]


def _fill_roots(src, a: int, b: int, *, name: str, log: bool, validate: bool, out: np.ndarray, rows: bool):
    """Square roots of ``src[a:b]`` into the rows layout (n, R, C) or the column blocks (L, n, C, W).

    Validation is fused into the same pass; only a chunk it flags goes through
    :func:`check_probabilities`, which names the model and sample (or, at the edge
    of the tolerance, passes it).
    """
    n, C = src.shape[1], src.shape[2]
    step = max(1, (1 << 22) // (n * C))  # ~16-32 MiB of raw input at a time
    fill = _kernels.roots_rows if rows else _kernels.roots_blocks
    for t0 in range(a, b, step):
        t1 = min(b, t0 + step)
        raw = read_models(src, t0, t1)  # dtype kind checked by the caller
        tol = sum_tolerance(raw.dtype)
        if raw.dtype not in (np.float32, np.float64):
            raw = raw.astype(np.float64)
        raw = np.ascontiguousarray(raw)
        if not fill(raw, log, out, t0 - a, validate, tol):
            check_probabilities(raw, name, log=log, ndim=3, offset=t0)


def _torch_engine(A, B, *, floor, upper, block, device):
    from ._torch_kernels import bhattacharyya_tile

    R, K = A.shape[1], B.shape[1]
    tile = np.zeros((R, K))
    count = 0
    step = max(block, 1024) if device == "cuda" else block
    for r0 in range(0, R, step):
        for k0 in range(r0 if upper else 0, K, step):
            sub_upper = upper and k0 == r0
            d, c = bhattacharyya_tile(A[:, r0:r0 + step], B[:, k0:k0 + step], floor, device=device,
                                      upper=sub_upper)
            tile[r0:r0 + step, k0:k0 + step] = d
            if upper and not sub_upper:
                tile[k0:k0 + step, r0:r0 + step] = d.T
            count += c
    return tile, count


def _numpy_engine(A, B, *, floor, upper, block, device):
    R, K = A.shape[1], B.shape[1]
    n = A.shape[0]
    tile = np.zeros((R, K))
    count = 0
    group = _group_size(A.dtype, floor) or 1
    for r0 in range(0, R, block):
        a_all = A[:, r0:r0 + block]
        for k0 in range(r0 if upper else 0, K, block):
            b_all = B[:, k0:k0 + block]
            b1, b2 = a_all.shape[1], b_all.shape[1]
            per_chunk = max(group, _TILE_ELEMENTS // (b1 * b2) // group * group)
            log_sum = np.zeros(b1 * b2)
            counts = np.zeros((b1, b2), dtype=np.int64)
            for s in range(0, n, per_chunk):
                bc = np.matmul(a_all[s:s + per_chunk], b_all[s:s + per_chunk].transpose(0, 2, 1))
                c = clamp_coefficients(bc, floor)
                if c is not None:
                    counts += c
                log_sum += _sum_log_products(bc.reshape(bc.shape[0], -1), group)
            d = np.maximum(-log_sum / n, 0.0).reshape(b1, b2)
            if upper and k0 == r0:
                counts = np.triu(counts, 1)
            elif upper:
                tile[k0:k0 + b2, r0:r0 + b1] = d.T
            tile[r0:r0 + b1, k0:k0 + b2] = d
            count += int(counts.sum())
    return tile, count


def _fill_tiles(kernel, px, py, *, symmetric: bool, block: int) -> tuple[np.ndarray, int]:
    """Fill the distance matrix tile by tile; return it and the clamp count."""
    T, T2 = px.n_models, py.n_models
    D = np.empty((T, T2), dtype=np.float64)
    clamped = 0
    for r0 in range(0, T, block):
        rows = slice(r0, min(r0 + block, T))
        for c0 in range(r0 if symmetric else 0, T2, block):
            cols = slice(c0, min(c0 + block, T2))
            tile, counts = kernel.tile(px, py, rows, cols)
            if symmetric and r0 == c0:
                # Diagonal tile: keep its strict upper triangle (each pair once,
                # zero self-distance) and mirror it.
                tile = np.triu(tile, 1)
                tile += tile.T
                counts = None if counts is None else np.triu(counts, 1)
            elif symmetric:
                D[cols, rows] = tile.T
            D[rows, cols] = tile
            if counts is not None:
                clamped += int(counts.sum())
    return D, clamped


class _Prepared(SimpleNamespace):
    """Per-model arrays of one input, transformed once by a kernel's ``prepare``."""

    def __init__(self, n_models: int, n_samples: int, clamped: int = 0, **arrays):
        super().__init__(n_models=n_models, n_samples=n_samples, clamped=clamped, **arrays)


class _Kernel:
    """One metric: ``prepare`` transforms each input once, ``tile`` fills a block.

    ``tile(px, py, rows, cols)`` returns the ``(len(rows), len(cols))`` float64
    block and either None or per-pair counts of clamped entries.
    """

    default_block = 512
    clamp_what = ""  # what ClampWarning counts, for kernels that clamp
    arrays_per_model = 1  # (n, C) float64 arrays that prepare() keeps per model

    def __init__(self, floor: float, dtype: np.dtype):
        self.floor = floor
        self.dtype = np.dtype(dtype)


def _group_size(dtype: np.dtype, floor: float) -> int:
    """How many coefficients >= floor can be multiplied without underflow."""
    tiny = np.finfo(dtype).tiny
    return int(min(_MAX_GROUP, np.floor(np.log(tiny) / np.log(floor))))


def _sum_log_products(values: np.ndarray, group: int) -> np.ndarray:
    """``sum(log(values), axis=0)`` in float64, one log per ``group`` rows."""
    m = values.shape[0] // group * group
    total = np.zeros(values.shape[1], dtype=np.float64)
    if m:
        head = np.prod(values[:m].reshape(m // group, group, -1), axis=1)
        total += np.log(head, out=head).sum(axis=0, dtype=np.float64)
    if m < values.shape[0]:
        total += np.log(values[m:]).sum(axis=0, dtype=np.float64)
    return total


# Hellinger and symmetric KL reduce to matrix products of (T, n*C) float64 arrays.


class _Hellinger(_Kernel):
    def prepare(self, X: np.ndarray, log: bool) -> _Prepared:
        T, n, _ = X.shape
        root = sqrt_probabilities(X, log=log, dtype=np.float64).reshape(T, -1)
        return _Prepared(T, n, root=root)

    def tile(self, px, py, rows, cols):
        mean_bc = px.root[rows] @ py.root[cols].T / px.n_samples
        return np.clip(1.0 - mean_bc, 0.0, 1.0), None


class _SymmetricKL(_Kernel):
    clamp_what = "probability entries"
    arrays_per_model = 2

    def prepare(self, X: np.ndarray, log: bool) -> _Prepared:
        T, n, _ = X.shape
        X = X.astype(np.float64, copy=False)
        log_floor = np.log(self.floor)
        if log:
            p = np.exp(X)
            clamped = int(np.count_nonzero(X < log_floor))
            logp = np.maximum(X, log_floor)
        else:
            p = X
            clamped = int(np.count_nonzero(X < self.floor))
            logp = np.log(np.maximum(X, self.floor))
        p, logp = p.reshape(T, -1), logp.reshape(T, -1)
        # sum_c p log p' per model; the cross terms p log q' are matrix products.
        self_term = np.einsum("tk,tk->t", p, logp)
        return _Prepared(T, n, clamped, p=p, logp=logp, self_term=self_term)

    def tile(self, px, py, rows, cols):
        cross = px.p[rows] @ py.logp[cols].T + px.logp[rows] @ py.p[cols].T
        total = px.self_term[rows, None] + py.self_term[None, cols] - cross
        return np.maximum(total / px.n_samples, 0.0), None


class _JensenShannon(_Kernel):
    default_block = 32  # its tiles hold (block, block, samples, C) mixtures

    def prepare(self, X: np.ndarray, log: bool) -> _Prepared:
        T, n, _ = X.shape
        p = np.exp(X, dtype=np.float64) if log else X.astype(np.float64, copy=False)
        # JS = (sum p log p + sum q log q)/2 - sum m log m: the first part is per model.
        self_term = xlogy(p, p).reshape(T, -1).sum(axis=1)
        return _Prepared(T, n, p=p, self_term=self_term)

    def tile(self, px, py, rows, cols):
        A, B = px.p[rows], py.p[cols]
        b1, b2, (n, C) = A.shape[0], B.shape[0], A.shape[1:]
        per_chunk = max(1, _TILE_ELEMENTS // (b1 * b2 * C))
        mixture_term = np.zeros((b1, b2))
        for s in range(0, n, per_chunk):
            m = A[:, None, s:s + per_chunk] + B[None, :, s:s + per_chunk]
            m *= 0.5
            mixture_term += xlogy(m, m).sum(axis=(2, 3))
        total = 0.5 * (px.self_term[rows, None] + py.self_term[None, cols]) - mixture_term
        return np.maximum(total / n, 0.0), None


# Bhattacharyya has its own streamed path (_bhattacharyya_streamed); these are the companions.
_KERNELS = {
    "hellinger": _Hellinger,
    "jensen_shannon": _JensenShannon,
    "symmetric_kl": _SymmetricKL,
}
