"""Distance matrices between many models, computed in tiles of models.

For each sample ``i`` the Bhattacharyya coefficients between all pairs of models
form the Gram matrix of the ``T x C`` matrix of ``sqrt p_i``; the ``T x T``
distance matrix therefore costs ``T^2 n C`` multiply-adds and ``T^2 n``
logarithms. Here ``sqrt p`` is computed once per model, the matrix is filled in
tiles of ``block_size x block_size`` models (only the upper triangle when
``Y is None``), and each tile is swept over chunks of samples, so the temporary
memory is bounded independently of ``T`` and ``n``.
"""

from __future__ import annotations

import numbers
from types import SimpleNamespace

import numpy as np
from scipy.special import xlogy

from ._validation import check_floor, check_probabilities, check_same_samples
from .divergences import clamp_coefficients, sqrt_probabilities, warn_clamped

__all__ = ["METRICS", "pairwise_distances"]

METRICS = ("bhattacharyya", "hellinger", "jensen_shannon", "symmetric_kl")

# Elements of the per-tile temporary buffer (16 MiB of float64).
_TILE_ELEMENTS = 1 << 21
# Products of at most this many coefficients are taken before one log.
_MAX_GROUP = 16


def pairwise_distances(
    X,
    Y=None,
    *,
    log: bool = False,
    metric: str = "bhattacharyya",
    floor: float = 1e-12,
    block_size: int | None = None,
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
        Class probabilities of ``T`` models on the same ``n`` samples.
    Y : array_like, shape (T2, n, C), optional
        Second set of models on the same samples. If None, distances within
        ``X``: only the upper triangle is computed and mirrored, and the
        diagonal is exactly 0.
    log : bool, default False
        Inputs are natural-log probabilities (``-inf`` allowed for ``p = 0``).
    metric : {"bhattacharyya", "hellinger", "jensen_shannon", "symmetric_kl"}
    floor : float, default 1e-12
        Clamp for the logarithms. Bhattacharyya: each ``BC_i`` is clamped to
        ``[floor, 1]``, so a sample where two models have disjoint supports
        contributes ``-log(floor)/n`` (27.6/n) instead of ``+inf``. Symmetric
        KL: probabilities are raised to ``floor`` inside the logs. When anything
        is clamped, one :class:`ClampWarning` gives the count of clamped
        (pair, sample) coefficients, respectively probability entries.
    block_size : int, optional
        Models per tile along each axis (default: 128 for Bhattacharyya, 32 for
        Jensen-Shannon, 512 for the others). Only affects speed and memory.

    Returns
    -------
    D : ndarray, shape (T, T2), float64
        Non-negative, never NaN.

    Raises
    ------
    ValueError
        Wrong ndim, ``X`` and ``Y`` with different ``(n, C)``, NaN/inf,
        negative probabilities, rows not summing to 1 within 1e-4 (float32
        input) or 1e-5 (float64); with ``log=True``: NaN, ``+inf``, positive
        log-probabilities beyond that tolerance, or rows whose ``exp`` does not
        sum to 1. Unknown ``metric``, bad ``floor`` or ``block_size``.

    Notes
    -----
    Precision. The Bhattacharyya Gram products run in float32 when all inputs
    are float32 and in float64 otherwise; the logs are accumulated in float64.
    Products of up to 16 (float64) or 3 (float32) clamped coefficients are
    taken before a single log, which cannot underflow because of the clamp. In
    float32, ``d_B`` has a relative error of ~1e-4 for ``d_B ~ 1e-5`` and
    grows for closer models; pass float64 when such pairs matter. The other
    metrics always compute in float64.

    Cost: Bhattacharyya and Hellinger need ``T T2 n C`` multiply-adds (plus
    ``T T2 n / 16`` logs for Bhattacharyya), symmetric KL twice that;
    Jensen-Shannon needs ``T T2 n C`` logs and is by far the slowest.

    Memory: one transformed copy of ``X`` (and ``Y``) -- two float64 copies for
    symmetric KL -- plus a tile buffer of ~16 MiB, on top of the ``(T, T2)``
    result.

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
    if metric not in _KERNELS:
        raise ValueError(f"metric must be one of {METRICS}, got {metric!r}")
    floor = check_floor(floor)
    if block_size is not None and (
        isinstance(block_size, bool) or not isinstance(block_size, numbers.Integral) or block_size < 1
    ):
        raise ValueError(f"block_size must be a positive integer or None, got {block_size!r}")
    X = check_probabilities(X, "X", log=log, ndim=3)
    if Y is not None:
        Y = check_probabilities(Y, "Y", log=log, ndim=3)
        check_same_samples(X, Y, "X", "Y")
    dtype = np.result_type(X.dtype, (X if Y is None else Y).dtype)
    kernel = _KERNELS[metric](floor, dtype)
    px = kernel.prepare(X, log)
    py = px if Y is None else kernel.prepare(Y, log)
    D, clamped = _fill_tiles(kernel, px, py, symmetric=Y is None, block=block_size or kernel.default_block)
    clamped += px.clamped + (0 if Y is None else py.clamped)
    warn_clamped(clamped, kernel.clamp_what, floor)
    return D


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

    def __init__(self, floor: float, dtype: np.dtype):
        self.floor = floor
        self.dtype = np.dtype(dtype)


class _Bhattacharyya(_Kernel):
    default_block = 128
    clamp_what = "(pair, sample) Bhattacharyya coefficients"

    def __init__(self, floor: float, dtype: np.dtype):
        super().__init__(floor, dtype)
        self.group = _group_size(self.dtype, floor)
        if self.group == 0:  # floor below float32's smallest normal number
            self.dtype, self.group = np.dtype(np.float64), _group_size(np.dtype(np.float64), floor)

    def prepare(self, X: np.ndarray, log: bool) -> _Prepared:
        T, n, _ = X.shape
        # Samples first, so that one sample's (models x classes) slab is contiguous.
        root = np.empty((n, T, X.shape[2]), dtype=self.dtype)
        step = max(1, _TILE_ELEMENTS // X[0].size)
        for t0 in range(0, T, step):  # chunks of models: no second full-size temporary
            chunk = sqrt_probabilities(X[t0:t0 + step], log=log, dtype=self.dtype)
            root[:, t0:t0 + step, :] = chunk.transpose(1, 0, 2)
        return _Prepared(T, n, root=root)

    def tile(self, px: _Prepared, py: _Prepared, rows: slice, cols: slice):
        A, B = px.root[:, rows, :], py.root[:, cols, :]
        n, b1, b2 = A.shape[0], A.shape[1], B.shape[1]
        per_chunk = max(self.group, _TILE_ELEMENTS // (b1 * b2) // self.group * self.group)
        buffer = np.empty((min(per_chunk, n), b1, b2), dtype=self.dtype)
        log_sum = np.zeros(b1 * b2, dtype=np.float64)
        counts = None
        for s in range(0, n, per_chunk):
            a, b = A[s:s + per_chunk], B[s:s + per_chunk]
            bc = np.matmul(a, b.transpose(0, 2, 1), out=buffer[: a.shape[0]])
            chunk_counts = clamp_coefficients(bc, self.floor)
            if chunk_counts is not None:
                counts = chunk_counts if counts is None else counts + chunk_counts
            log_sum += _sum_log_products(bc.reshape(bc.shape[0], -1), self.group)
        return (-log_sum / n).reshape(b1, b2), counts


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


_KERNELS = {
    "bhattacharyya": _Bhattacharyya,
    "hellinger": _Hellinger,
    "jensen_shannon": _JensenShannon,
    "symmetric_kl": _SymmetricKL,
}
