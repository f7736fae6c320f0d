r"""Intensive principal component analysis (InPCA).

Given the ``T x T`` matrix ``D`` of intensive Bhattacharyya distances between
``T`` models (a *squared* distance), InPCA is classical multidimensional scaling
that keeps the negative eigenvalues:

.. math::

    W = -\tfrac12 J D J, \quad J = I - \tfrac1T \mathbf{1}\mathbf{1}^\top, \qquad
    W = \sum_k \lambda_k v_k v_k^\top, \qquad x_k = \sqrt{|\lambda_k|}\, v_k,

with eigenpairs sorted by ``|λ|`` descending. Axes with ``λ_k < 0`` are
"time-like": the embedded squared distance is
``d̂_ij = Σ_k sign(λ_k) (x_ik - x_jk)²``, which reproduces ``D`` exactly when all
axes are kept.

References
----------
.. [1] K. N. Quinn, C. B. Clement, F. De Bernardis, M. D. Niemack, J. P. Sethna,
       "Visualizing probabilistic models and data with Intensive Principal
       Component Analysis", PNAS 116 (28), 2019.
.. [2] J. Mao et al., "The training process of many deep networks explores the
       same low-dimensional manifold", PNAS 121 (12), 2024.
.. [3] J. C. Gower, "Adding a point to vector diagrams in multivariate
       analysis", Biometrika 55 (3), 1968.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass, field

import numpy as np
import scipy.linalg

from . import _eigen
from .validation import check_distance_matrix, check_distance_matrix_tiled

__all__ = ["InPCAResult", "embedded_sq_distances", "inpca"]


@dataclass(frozen=True, eq=False)
class InPCAResult:
    """An InPCA embedding of ``T`` models on ``k`` axes.

    Attributes
    ----------
    coords : ndarray, shape (T, k)
        ``x_k = sqrt|λ_k| v_k``; each eigenvector's largest-magnitude entry is
        positive (deterministic signs).
    eigenvalues : ndarray, shape (k,)
        Signed eigenvalues of ``W``, sorted by ``|λ|`` descending.
    signature : ndarray, shape (k,)
        ``+1`` for space-like axes (``λ >= 0``), ``-1`` for time-like ones.
    explained_stress : ndarray, shape (k,)
        Cumulative ``1 - sqrt(1 - Σ_{l<=k} λ_l² / ||W||_F²) = 1 - ||W - W_k||_F / ||W||_F``.
    explained_fraction : ndarray, shape (k,)
        Cumulative ``Σ_{l<=k} λ_l² / ||W||_F²``.
    total_sq_norm : float
        ``||W||_F²``, summed over the full matrix.
    """

    coords: np.ndarray
    eigenvalues: np.ndarray
    signature: np.ndarray
    explained_stress: np.ndarray
    explained_fraction: np.ndarray
    total_sq_norm: float
    _eigenvectors: np.ndarray = field(repr=False)
    _row_means: np.ndarray = field(repr=False)
    info: dict = field(default_factory=dict, repr=False, compare=False)

    @property
    def n_components(self) -> int:
        return self.eigenvalues.shape[0]

    def transform(self, d_new) -> np.ndarray:
        r"""Place new models in the embedding without re-embedding (Gower projection).

        For a new model with distances ``d`` to the ``T`` embedded models,

        .. math::

            w = -\tfrac12 \left(d - \bar d - r + \bar r\right), \qquad
            x_k = \sqrt{|\lambda_k|}\, \frac{v_k \cdot w}{\lambda_k},

        with ``r`` the row means of the fitted ``D``. An embedded model's own
        distance row maps to its coordinates. Axes whose eigenvalue is
        numerically zero (``|λ| <= 1e-12 max|λ|``) get coordinate 0.

        Parameters
        ----------
        d_new : array_like, shape (m, T) or (T,)
            Distances (the same measure as ``D``) from ``m`` new models to the
            ``T`` embedded ones, columns in the fitted order; ``m`` may be 0.

        Returns
        -------
        ndarray, shape (m, k) or (k,), float64
            An empty ``(0, k)`` array for ``m = 0``.
        """
        d = np.asarray(d_new, dtype=np.float64)
        T = self._row_means.shape[0]
        if d.ndim not in (1, 2) or d.shape[-1] != T:
            raise ValueError(f"d_new: expected shape (m, {T}) or ({T},), got shape {d.shape}")
        if not np.all(np.isfinite(d)):
            raise ValueError("d_new contains NaN or inf")
        w = -0.5 * (d - d.mean(axis=-1, keepdims=True) - self._row_means + self._row_means.mean())
        lam = self.eigenvalues
        usable = np.abs(lam) > 1e-12 * np.abs(lam).max()
        scale = np.zeros_like(lam)
        scale[usable] = np.sqrt(np.abs(lam[usable])) / lam[usable]
        return (w @ self._eigenvectors) * scale


_SOLVERS = ("auto", "dense", "lanczos", "randomized")
# "auto" uses dense eigh up to this many models, an iterative solver above.
DENSE_MAX_T = 1500


def inpca(
    D,
    n_components: int = 3,
    *,
    solver: str = "auto",
    tol: float = 1e-10,
    random_state=None,
    callback=None,
) -> InPCAResult:
    r"""Intensive PCA of a matrix of (squared-distance-like) divergences.

    Parameters
    ----------
    D : array_like, shape (T, T), or DiskDistanceMatrix
        Symmetric, finite, zero diagonal (checked to within
        ``1e-6 max(1, max|D|)``; the symmetric part is used) and non-negative
        (up to rounding, see :func:`~deepmanifold.geometry.check_distance_matrix`), e.g. from
        :func:`pairwise_distances` with the Bhattacharyya metric. Not squared.
        float32 and ``np.memmap`` input are used without a float64 copy by
        the iterative solvers. A :class:`~deepmanifold.geometry.outofcore.DiskDistanceMatrix`
        (from :func:`compute_distance_matrix_on_disk`) is streamed from disk
        in row panels and never held in memory.
    n_components : int, default 3
        Number of axes ``k``, ``1 <= k <= T``.
    solver : {"auto", "dense", "lanczos", "randomized"}, default "auto"
        ``"dense"``: :func:`scipy.linalg.eigh` of the formed ``W``
        (``O(T^3)`` time, two ``T x T`` float64 arrays). ``"lanczos"``:
        ARPACK (:func:`scipy.sparse.linalg.eigsh`, ``which="LM"``, largest
        ``|λ|`` of both signs) on the matrix-free ``W``. ``"randomized"``:
        restarted randomised block Krylov iteration on the matrix-free ``W``
        (block products; fewest passes over ``D``, the default for disk).
        ``"auto"``: dense for ``T <= 1500``, lanczos for larger in-memory
        matrices, randomized for a DiskDistanceMatrix. The
        iterative solvers fall back to dense when ``T < 2 (k + 6)``.
    tol : float, default 1e-10
        Iterative solvers: stop when every Ritz pair has residual
        ``||W u - θ u|| <= tol * |θ_max|`` (``"randomized"``), or ARPACK's
        relative accuracy ``tol`` (``"lanczos"``).
    random_state : None, int or numpy.random.Generator
        Starting vectors of the iterative solvers.
    callback : callable, optional
        ``callback(stage, done, total)`` is called after each pass over ``D``
        (``total`` is None where unknown), e.g. to report on long out-of-core
        runs.

    Returns
    -------
    InPCAResult
        ``total_sq_norm = ||W||_F^2`` is always summed exactly over the full
        matrix (streamed), never estimated from the computed eigenvalues, so
        ``explained_stress`` and ``explained_fraction`` are exact for every
        solver. ``info`` records the solver used and the number of passes
        over ``D``.

    Notes
    -----
    ``W = -1/2 J D J`` is double-centred by subtracting row and column means
    and adding the grand mean; ``J`` is never formed. The iterative solvers
    apply ``W X = -1/2 (D X - r 1^T X - 1 r^T X + g 1 1^T X)`` (``r`` the row
    means, ``g`` their mean), so their extra memory is ``O(T k)`` on top of
    ``D``. Eigenvector signs are fixed (largest-magnitude entry positive), so
    all solvers return the same coordinates up to their tolerance.

    A ``W`` of all zeros (identical models) has explained stress and fraction
    defined as 1.

    Examples
    --------
    Points on a line at positions ``u`` with ``D = (u_i - u_j)^2`` embed on one
    axis with coordinates ``u - mean(u)`` (up to sign):

    >>> import numpy as np
    >>> u = np.array([0.0, 1.0, 3.0])
    >>> res = inpca((u[:, None] - u[None, :]) ** 2, n_components=1)
    >>> np.round(np.abs(res.coords[:, 0]), 6).tolist()
    [1.333333, 0.333333, 1.666667]
    """
    if solver not in _SOLVERS:
        raise ValueError(f"solver must be one of {_SOLVERS}, got {solver!r}")
    tol = float(tol)
    if not 0.0 <= tol < 1.0:
        raise ValueError(f"tol must lie in [0, 1), got {tol!r}")
    on_disk = hasattr(D, "_inpca_source")
    if on_disk:
        T = D.shape[0]
    else:
        D = np.asarray(D)
        T = D.shape[0] if D.ndim == 2 and D.shape[0] == D.shape[1] else None
    _check_n_components(n_components, T)
    if solver == "auto":
        # In memory Lanczos needs more passes than block Krylov, but each
        # single-vector pass is much cheaper (benchmarks/bench_inpca.py); on disk
        # every pass is I/O-bound, so the fewest passes win.
        if on_disk:
            solver = "randomized"
        else:
            solver = "lanczos" if (T is not None and T > DENSE_MAX_T) else "dense"
    if T is None or (solver != "dense" and T < 2 * (n_components + 6)):
        solver = "dense"
    if solver == "dense":
        if on_disk:
            D = D.to_numpy()
        return _inpca_dense(check_distance_matrix(D), n_components)

    if on_disk:
        source, row_means, total_sq_norm = D._inpca_source(callback)
    else:
        D, symmetric = check_distance_matrix_tiled(D)
        source = _eigen.ArraySource(D, symmetric=symmetric)
        row_means = source.row_sums() / T
        total_sq_norm = source.centred_sq_norm(row_means)
    rng = np.random.default_rng(random_state)
    op = _eigen.CentredOperator(source, row_means, callback)
    if total_sq_norm == 0.0:
        lam, vecs = np.zeros(n_components), np.eye(T, n_components)
    elif solver == "lanczos":
        lam, vecs = _eigen.lanczos(op, n_components, tol=tol, rng=rng)
    else:
        lam, vecs = _eigen.block_krylov(op, n_components, tol=tol, rng=rng)
    return _result(lam, _fix_signs(vecs), row_means, total_sq_norm,
                   info={"solver": solver, "passes": op.n_products, "T": T})


def _check_n_components(n_components, T) -> None:
    upper = T if T is not None else "T"
    if isinstance(n_components, bool) or not isinstance(n_components, numbers.Integral) or not (
        1 <= n_components and (T is None or n_components <= T)
    ):
        raise ValueError(f"n_components must be an integer in [1, {upper}], got {n_components!r}")


def _inpca_dense(D: np.ndarray, n_components: int) -> InPCAResult:
    T = D.shape[0]
    _check_n_components(n_components, T)
    row_means = D.mean(axis=1)
    # -1/2 J D J without forming J; D is symmetric so column means = row means.
    W = -0.5 * (D - row_means[:, None] - row_means[None, :] + row_means.mean())
    total_sq_norm = float(np.sum(W * W))
    eigenvalues, eigenvectors = scipy.linalg.eigh(W)
    order = np.argsort(-np.abs(eigenvalues), kind="stable")[:n_components]
    lam, vecs = eigenvalues[order], _fix_signs(eigenvectors[:, order])
    return _result(lam, vecs, row_means, total_sq_norm, info={"solver": "dense", "passes": 0, "T": T})


def _result(lam, vecs, row_means, total_sq_norm, *, info) -> InPCAResult:
    k = lam.shape[0]
    if total_sq_norm > 0:
        fraction = np.minimum(np.cumsum(lam**2) / total_sq_norm, 1.0)
    else:
        fraction = np.ones(k)
    return InPCAResult(
        coords=vecs * np.sqrt(np.abs(lam)),
        eigenvalues=lam,
        signature=np.where(lam < 0, -1, 1),
        explained_stress=1.0 - np.sqrt(1.0 - fraction),
        explained_fraction=fraction,
        total_sq_norm=float(total_sq_norm),
        _eigenvectors=vecs,
        _row_means=row_means,
        info=info,
    )


def _fix_signs(vectors: np.ndarray) -> np.ndarray:
    """Flip each column so its largest-magnitude entry (first one on ties) is positive."""
    pivots = vectors[np.argmax(np.abs(vectors), axis=0), np.arange(vectors.shape[1])]
    return vectors * np.where(pivots < 0, -1.0, 1.0)


def embedded_sq_distances(coords, signature) -> np.ndarray:
    """Squared distances in the (pseudo-Euclidean) InPCA embedding.

    ``d̂_ij = Σ_k signature_k (x_ik - x_jk)²``; with all axes of an
    :func:`inpca` result this reproduces ``D``.

    Parameters
    ----------
    coords : array_like, shape (T, k)
    signature : array_like, shape (k,)
        ``±1`` per axis, e.g. ``InPCAResult.signature``.

    Returns
    -------
    ndarray, shape (T, T), float64, exact zero diagonal
    """
    x = np.asarray(coords, dtype=np.float64)
    s = np.asarray(signature, dtype=np.float64)
    if x.ndim != 2 or s.shape != (x.shape[1],):
        raise ValueError(f"expected coords (T, k) and signature (k,), got shapes {x.shape} and {s.shape}")
    gram = (x * s) @ x.T
    sq = np.diagonal(gram)
    d = sq[:, None] + sq[None, :] - 2.0 * gram
    d = 0.5 * (d + d.T)  # the matrix product need not be bitwise symmetric
    np.fill_diagonal(d, 0.0)
    return d
