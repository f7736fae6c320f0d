r"""Matrix-free double centring and eigensolvers for InPCA (private).

The centred matrix ``W = -1/2 J D J`` is never formed. With ``r`` the row means
of the symmetric ``D`` and ``g`` their mean,

.. math::

    W_{ij} = -\tfrac12 (D_{ij} - r_i - r_j + g), \qquad
    W X = -\tfrac12 \left(D X - r\,(\mathbf 1^\top X) - \mathbf 1\,(r^\top X)
          + g\,\mathbf 1 (\mathbf 1^\top X)\right),

so a product with ``W`` costs one product with ``D``, which may be held in
memory or streamed from disk in row panels. ``||W||_F^2`` is summed exactly,
panel by panel.

Eigensolvers for the ``k`` eigenpairs of largest ``|λ|`` (both signs):

- ``"lanczos"``: ARPACK implicitly restarted Lanczos
  (:func:`scipy.sparse.linalg.eigsh`, ``which="LM"``), one vector per product;
- ``"randomized"``: randomised block Krylov iteration with full
  re-orthogonalisation, Rayleigh-Ritz on the whole Krylov basis and restarts
  from the best Ritz vectors, stopped on the true residual norms. Every pass
  over ``D`` multiplies a block of ``b`` vectors, which suits matrices streamed
  from disk.

References
----------
.. [1] C. Musco, C. Musco, "Randomized block Krylov methods for stronger and
       faster approximate singular value decomposition", NeurIPS 2015.
.. [2] N. Halko, P.-G. Martinsson, J. A. Tropp, "Finding structure with
       randomness", SIAM Review 53 (2), 2011.
.. [3] R. B. Lehoucq, D. C. Sorensen, C. Yang, ARPACK Users' Guide, SIAM, 1998.
"""

from __future__ import annotations

import warnings
from typing import Callable, Iterator

import numpy as np
import scipy.linalg
import scipy.sparse.linalg

from . import _panel_kernels

# Rows of float64 temporaries per panel when converting/centring (~bounded memory).
_PANEL_ELEMENTS = 1 << 24  # 128 MiB of float64


class PanelSource:
    """Row panels of a symmetric ``T x T`` matrix, for streaming products.

    Subclasses implement :meth:`panels`, yielding ``(start, stop, panel)`` with
    ``panel`` the rows ``start:stop`` (any float dtype).
    """

    n: int

    def panels(self, rows: int | None = None) -> Iterator[tuple[int, int, np.ndarray]]:  # pragma: no cover
        raise NotImplementedError

    def panel_rows(self) -> int:
        return max(1, _PANEL_ELEMENTS // max(1, self.n))

    def matmat(self, X: np.ndarray) -> np.ndarray:
        """``D @ X`` for ``X`` of shape (T, b), float64."""
        out = np.empty((self.n, X.shape[1]))
        X = np.ascontiguousarray(X, dtype=np.float64)
        for start, stop, panel in self.panels():
            _panel_kernels.panel_matmat(_plain(panel), X, out[start:stop])
        return out

    def row_sums(self) -> np.ndarray:
        out = np.empty(self.n)
        for start, stop, panel in self.panels():
            out[start:stop] = panel.sum(axis=1, dtype=np.float64)
        return out

    def centred_sq_norm(self, row_means: np.ndarray) -> float:
        """Exact ``||W||_F^2``, summed panel by panel."""
        shift = row_means - float(row_means.mean())  # W_ij = -1/2 (D_ij - (r_i - g) - r_j)
        col = np.ascontiguousarray(row_means, dtype=np.float64)
        total = 0.0
        for start, stop, panel in self.panels():
            total += _panel_kernels.centred_sq_sum(_plain(panel), np.ascontiguousarray(shift[start:stop]), col)
        return 0.25 * total

    def weighted_centred_sq_norm(self, row_means: np.ndarray, grand_mean: float, weights: np.ndarray) -> float:
        """Exact ``sum_ij m_i m_j W_ij^2`` of the weighted centring (``||S||_F^2``), panel by panel.

        ``W_ij = -1/2 (D_ij - ρ_i - ρ_j + γ)`` with ``ρ`` the weighted row means and
        ``γ`` their weighted mean; ``m`` the weights.
        """
        total = 0.0
        for start, stop, panel in self.panels():
            total += _weighted_sq_sum(np.array(panel, dtype=np.float64), row_means[start:stop], row_means,
                                      grand_mean, weights[start:stop], weights)
        return 0.25 * total


def _weighted_sq_sum(block, rows_r, cols_r, grand_mean, rows_m, cols_m) -> float:
    """``sum_ij m_i m_j (block_ij - ρ_i - ρ_j + γ)^2`` of a copy of one block of ``D`` (changed in place)."""
    block -= rows_r[:, None]
    block -= cols_r[None, :]
    block += grand_mean
    np.square(block, out=block)
    return float(rows_m @ block @ cols_m)


def _plain(panel) -> np.ndarray:
    """A C-contiguous float32/float64 ndarray view (or copy) of a panel, for the kernels."""
    panel = np.asarray(panel)
    if panel.dtype not in (np.float32, np.float64):
        panel = panel.astype(np.float64)
    return np.ascontiguousarray(panel)


class ArraySource(PanelSource):
    """An in-memory (or memory-mapped) ``(T, T)`` array, assumed symmetric unless told otherwise."""

    def __init__(self, D: np.ndarray, *, symmetric: bool = True):
        self.D = D
        self.n = D.shape[0]
        self.symmetric = symmetric

    def panels(self, rows=None):
        rows = rows or self.panel_rows()
        for s in range(0, self.n, rows):
            e = min(self.n, s + rows)
            yield s, e, self.D[s:e]

    def matmat(self, X):
        D = self.D
        if D.dtype == np.float64 and type(D) is np.ndarray:
            out = D @ X  # BLAS, no copy of D (either memory order)
            if not self.symmetric:
                out += D.T @ X
                out *= 0.5
            return out
        out = super().matmat(X)
        if not self.symmetric:
            step = self.panel_rows()
            for s in range(0, self.n, step):
                e = min(self.n, s + step)
                out += np.asarray(D[s:e], dtype=np.float64).T @ X[s:e]
            out *= 0.5
        return out

    def row_sums(self):
        sums = super().row_sums()
        if not self.symmetric:
            col = np.zeros(self.n)
            for s, e, panel in self.panels():
                col += panel.sum(axis=0, dtype=np.float64)
            sums = 0.5 * (sums + col)
        return sums

    def centred_sq_norm(self, row_means):
        if self.symmetric:
            return super().centred_sq_norm(row_means)
        return self.weighted_centred_sq_norm(row_means, float(row_means.mean()), np.ones(self.n))

    def weighted_centred_sq_norm(self, row_means, grand_mean, weights):
        if self.symmetric:
            return super().weighted_centred_sq_norm(row_means, grand_mean, weights)
        # symmetric part, tile by tile: 1/4 sum m_i m_j (S_ij - ρ_i - ρ_j + γ)^2
        rows = max(1, int(np.sqrt(_PANEL_ELEMENTS)))
        total = 0.0
        for s in range(0, self.n, rows):
            e = min(self.n, s + rows)
            for t in range(0, self.n, rows):
                f = min(self.n, t + rows)
                S = 0.5 * (np.asarray(self.D[s:e, t:f], dtype=np.float64)
                           + np.asarray(self.D[t:f, s:e], dtype=np.float64).T)
                total += _weighted_sq_sum(S, row_means[s:e], row_means[t:f], grand_mean, weights[s:e],
                                          weights[t:f])
        return 0.25 * total


class CentredOperator:
    """``X -> W X`` with ``W = -1/2 J D J``, from a :class:`PanelSource`.

    With ``grand_mean`` and ``scale`` it is the weighted operator
    ``X -> M^{1/2} W_w M^{1/2} X``: ``W_w = -1/2 (D - ρ 1^T - 1 ρ^T + γ 1 1^T)``
    with ``ρ = row_means`` (weighted row means), ``γ = grand_mean`` and
    ``scale = sqrt(m)``, the square roots of the weights.
    """

    def __init__(self, source: PanelSource, row_means: np.ndarray, callback: Callable | None = None, *,
                 grand_mean: float | None = None, scale: np.ndarray | None = None):
        self.source = source
        self.r = row_means
        self.g = float(row_means.mean()) if grand_mean is None else float(grand_mean)
        self.scale = scale
        self.n = source.n
        self.n_products = 0  # number of passes over D
        self.callback = callback

    def __call__(self, X: np.ndarray) -> np.ndarray:
        X = np.asarray(X, dtype=np.float64)
        vec = X.ndim == 1
        if vec:
            X = X[:, None]
        if self.scale is not None:
            X = X * self.scale[:, None]
        Y = self.source.matmat(X)
        colsum = X.sum(axis=0)
        Y -= np.outer(self.r, colsum)
        Y -= (self.r @ X)[None, :]
        Y += self.g * colsum[None, :]
        Y *= -0.5
        if self.scale is not None:
            Y *= self.scale[:, None]
        self.n_products += 1
        if self.callback is not None:
            self.callback("eigensolver", self.n_products, None)
        return Y[:, 0] if vec else Y


def sort_by_magnitude(lam: np.ndarray, vecs: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    order = np.argsort(-np.abs(lam), kind="stable")[:k]
    return lam[order], vecs[:, order]


def lanczos(op: CentredOperator, k: int, *, tol: float, rng: np.random.Generator, maxiter: int | None = None):
    """Top-``k`` eigenpairs by ``|λ|`` with ARPACK (``which="LM"``)."""
    n = op.n
    A = scipy.sparse.linalg.LinearOperator((n, n), matvec=op, matmat=op, dtype=np.float64)
    v0 = rng.standard_normal(n)
    lam, vecs = scipy.sparse.linalg.eigsh(A, k=k, which="LM", tol=tol, v0=v0,
                                          ncv=min(n, max(2 * k + 1, 20)), maxiter=maxiter)
    return sort_by_magnitude(lam, vecs, k)


def _orthonormalise(Z: np.ndarray, K: np.ndarray | None, rng: np.random.Generator) -> np.ndarray:
    """Orthonormal basis of ``Z`` orthogonal to the orthonormal columns of ``K``.

    Classical Gram-Schmidt twice against ``K``, then QR, then once more; columns
    that vanish (an exhausted Krylov space) are replaced by random directions.
    """
    scale = np.linalg.norm(Z, axis=0)
    for _ in range(2):
        if K is not None:
            Z = Z - K @ (K.T @ Z)
    small = np.linalg.norm(Z, axis=0) <= 1e-10 * max(float(scale.max(initial=0.0)), 1e-300)
    if small.any():
        R = rng.standard_normal((Z.shape[0], int(small.sum())))
        if K is not None:
            R -= K @ (K.T @ R)
            R -= K @ (K.T @ R)
        Z[:, small] = R
    Q, _ = np.linalg.qr(Z)
    if K is not None:
        Q = Q - K @ (K.T @ Q)
        Q, _ = np.linalg.qr(Q)
    return Q


def block_krylov(op: CentredOperator, k: int, *, tol: float, rng: np.random.Generator,
                 block: int | None = None, depth: int | None = None, max_restarts: int = 50):
    """Top-``k`` eigenpairs by ``|λ|`` with restarted randomised block Krylov iteration.

    Each restart builds the orthonormal Krylov basis
    ``K = [Q, W Q, ..., W^{q-1} Q]`` (re-orthogonalised), keeps every product
    ``W K`` (so Rayleigh-Ritz needs no extra pass over ``D``), solves the small
    ``(qb x qb)`` eigenproblem ``K^T W K`` and stops when every wanted Ritz pair
    has ``||W u - θ u|| <= tol * max|θ|``; otherwise it restarts from the best
    ``b`` Ritz vectors.
    """
    n = op.n
    b = block or min(n, k + max(6, k // 2))
    q = depth or 8
    q = max(2, min(q, n // b))
    Q = _orthonormalise(rng.standard_normal((n, b)), None, rng)
    WQ = None
    lam = vecs = None
    for _ in range(max_restarts):
        basis, images = [Q], []
        for j in range(q):
            Y = op(basis[j]) if (j > 0 or WQ is None) else WQ
            images.append(Y)
            if j == q - 1:
                break
            K = np.hstack(basis)
            basis.append(_orthonormalise(Y.copy(), K, rng))
        K = np.hstack(basis)
        WK = np.hstack(images)
        H = K.T @ WK
        H = 0.5 * (H + H.T)
        theta, S = scipy.linalg.eigh(H)
        order = np.argsort(-np.abs(theta), kind="stable")
        theta, S = theta[order], S[:, order]
        U = K @ S[:, :b]
        WU = WK @ S[:, :b]
        resid = np.linalg.norm(WU[:, :k] - U[:, :k] * theta[:k], axis=0)
        lam, vecs = theta[:k], U[:, :k]
        scale = float(np.abs(theta).max(initial=0.0))
        if scale == 0.0 or np.all(resid <= tol * scale):
            break
        # Restart from the best b Ritz vectors (orthonormal); their images are
        # known, so the restart costs no extra pass over D.
        Q, WQ = U, WU
    else:
        warnings.warn(f"randomized eigensolver: no convergence to tol={tol:g} after {max_restarts} "
                      f"restarts (largest relative residual {float(resid.max()) / scale:.2e})",
                      RuntimeWarning, stacklevel=3)
    return lam, vecs
