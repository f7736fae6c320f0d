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

*Weighted* InPCA gives model ``i`` the weight ``m_i`` (e.g. ``1 / K_r`` for a
checkpoint of a run with ``K_r`` checkpoints, so that every run counts once):
the centring uses the weighted means, ``W_w = -1/2 J_w D J_w^T`` with
``J_w = I - 1 p^T``, ``p = m / Σm``, and the eigenpairs are those of
``S = M^{1/2} W_w M^{1/2}``, ``M = diag(m)``; coordinates
``x_k = sqrt|λ_k| u_k / sqrt(m)``. Equal weights give plain InPCA; integer
weights give exactly the InPCA of the models repeated that many times
(docs/method.md §4.5).

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
    explained_distance : ndarray, shape (k,)
        ``1 - ||D - D_k||_F / ||D||_F``, ``D_k`` the embedded squared
        distances on the top ``k`` axes (:func:`embedded_sq_distances`): how
        much of the distances themselves the axes reproduce. From the
        eigenpairs in closed form (docs/method.md §4.2); with
        weights, both norms weigh entry ``ij`` by ``m_i m_j``.
    total_sq_norm : float
        ``||W||_F²`` (``||S||_F²`` with weights), summed over the full matrix.
    weights : ndarray, shape (T,), or None
        The model weights ``m`` of a weighted InPCA, as given.
    """

    coords: np.ndarray
    eigenvalues: np.ndarray
    signature: np.ndarray
    explained_stress: np.ndarray
    explained_fraction: np.ndarray
    explained_distance: np.ndarray
    total_sq_norm: float
    _eigenvectors: np.ndarray = field(repr=False)
    _row_means: np.ndarray = field(repr=False)
    info: dict = field(default_factory=dict, repr=False, compare=False)
    weights: np.ndarray | None = field(default=None, repr=False)

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
        numerically zero (``|λ| <= 1e-12 max|λ|``) get coordinate 0. With
        weights the means are weighted (``\bar d = p \cdot d``, ``r`` the
        weighted row means) and ``v_k = sqrt(m) u_k``: the projection of a
        model repeated ``m_i`` times.

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
        p = None if self.weights is None else self.weights / self.weights.sum()
        d_mean = d.mean(axis=-1, keepdims=True) if p is None else (d @ p)[..., None]
        r_mean = self._row_means.mean() if p is None else self._row_means @ p
        w = -0.5 * (d - d_mean - self._row_means + r_mean)
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
    weights=None,
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
    weights : array_like, shape (T,), optional
        Positive, finite weight ``m_i`` per model: weighted InPCA (module
        docstring). Only ratios matter for the coordinates; the eigenvalues
        scale with the weights (integer weights give those of the repeated
        models). Default: every model weight 1, plain InPCA.
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

    A ``W`` of all zeros (identical models) has explained stress, fraction
    and distance defined as 1.

    The explained distance costs ``O(T k)`` from the eigenpairs, the row means
    and ``||W||_F²``, at any ``T`` (docs/method.md §4.2): no ``D_k`` is formed.

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
    weights = _check_weights(weights, T)
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
        return _inpca_dense(check_distance_matrix(D), n_components, weights)

    if on_disk and weights is None:
        source, row_means, total_sq_norm = D._inpca_source(callback)
    elif on_disk:
        D._require_complete()
        source = D._source()
    else:
        D, symmetric = check_distance_matrix_tiled(D)
        source = _eigen.ArraySource(D, symmetric=symmetric)
    if weights is not None:
        p = weights / weights.sum()
        row_means = source.matmat(p[:, None])[:, 0]  # weighted row means ρ = D p
        grand_mean = float(p @ row_means)
        total_sq_norm = source.weighted_centred_sq_norm(row_means, grand_mean, weights)
        op = _eigen.CentredOperator(source, row_means, callback, grand_mean=grand_mean, scale=np.sqrt(weights))
    else:
        if not on_disk:
            row_means = source.row_sums() / T
            total_sq_norm = source.centred_sq_norm(row_means)
        op = _eigen.CentredOperator(source, row_means, callback)
    rng = np.random.default_rng(random_state)
    if total_sq_norm == 0.0:
        lam, vecs = np.zeros(n_components), np.eye(T, n_components)
    elif solver == "lanczos":
        lam, vecs = _eigen.lanczos(op, n_components, tol=tol, rng=rng)
    else:
        lam, vecs = _eigen.block_krylov(op, n_components, tol=tol, rng=rng)
    return _result(lam, vecs, row_means, total_sq_norm, weights,
                   info={"solver": solver, "passes": op.n_products, "T": T})


def _check_n_components(n_components, T) -> None:
    upper = T if T is not None else "T"
    if isinstance(n_components, bool) or not isinstance(n_components, numbers.Integral) or not (
        1 <= n_components and (T is None or n_components <= T)
    ):
        raise ValueError(f"n_components must be an integer in [1, {upper}], got {n_components!r}")


def _check_weights(weights, T):
    """None, or the weights as a float64 ``(T,)`` array of positive finite numbers."""
    if weights is None:
        return None
    w = np.asarray(weights, dtype=np.float64)
    if T is not None and w.shape != (T,):
        raise ValueError(f"weights must have shape ({T},), one per model, got {w.shape}")
    if not (np.all(np.isfinite(w)) and np.all(w > 0)):
        raise ValueError("weights must be positive and finite")
    return w


def _inpca_dense(D: np.ndarray, n_components: int, weights: np.ndarray | None = None) -> InPCAResult:
    T = D.shape[0]
    _check_n_components(n_components, T)
    weights = _check_weights(weights, T)
    if weights is None:
        row_means = D.mean(axis=1)
        # -1/2 J D J without forming J; D is symmetric so column means = row means.
        W = -0.5 * (D - row_means[:, None] - row_means[None, :] + row_means.mean())
    else:
        row_means = D @ (weights / weights.sum())
        W = -0.5 * (D - row_means[:, None] - row_means[None, :] + row_means @ (weights / weights.sum()))
        root = np.sqrt(weights)
        W *= root[:, None]
        W *= root[None, :]  # S = M^{1/2} W_w M^{1/2}
    total_sq_norm = float(np.sum(W * W))
    eigenvalues, eigenvectors = scipy.linalg.eigh(W)
    order = np.argsort(-np.abs(eigenvalues), kind="stable")[:n_components]
    return _result(eigenvalues[order], eigenvectors[:, order], row_means, total_sq_norm, weights,
                   info={"solver": "dense", "passes": 0, "T": T})


def _result(lam, vecs, row_means, total_sq_norm, weights, *, info) -> InPCAResult:
    """The result from the top eigenpairs ``(λ, u)`` of ``W`` (or ``S`` with weights)."""
    k = lam.shape[0]
    if total_sq_norm > 0:
        fraction = np.minimum(np.cumsum(lam**2) / total_sq_norm, 1.0)
    else:
        fraction = np.ones(k)
    root = np.ones(vecs.shape[0]) if weights is None else np.sqrt(weights)
    directions = _fix_signs(vecs / root[:, None])  # u / sqrt(m): the coordinate directions
    return InPCAResult(
        coords=directions * np.sqrt(np.abs(lam)),
        eigenvalues=lam,
        signature=np.where(lam < 0, -1, 1),
        explained_stress=1.0 - np.sqrt(1.0 - fraction),
        explained_fraction=fraction,
        explained_distance=_explained_distance(lam, directions, row_means, total_sq_norm, weights),
        total_sq_norm=float(total_sq_norm),
        _eigenvectors=directions if weights is None else directions * weights[:, None],  # sqrt(m) u
        _row_means=row_means,
        info=info,
        weights=weights,
    )


def _explained_distance(lam, directions, row_means, total_sq_norm, weights) -> np.ndarray:
    r"""``1 - ||D - D_k||_F / ||D||_F`` for ``k = 1..K``, in ``O(T K)`` (docs/method.md §4.2).

    Any symmetric ``D`` with zero diagonal is ``D_ij = w_i + w_j - 2 W_ij`` with
    ``w = diag(W) = ρ - γ/2``, and ``D_k`` is the same expression of
    ``B_k = Σ_{l<=k} λ_l x̃_l x̃_l^T`` (``x̃_l`` the coordinate directions). So
    ``D - D_k = e 1^T + 1 e^T - 2 R`` with ``R = W - B_k``, ``e = diag(R)``, and
    with weights ``m`` (``N = Σm``; ``W m = 0`` by the centring)

    .. math::

        \sum_{ij} m_i m_j (D - D_k)_{ij}^2 = 2 N \sum_i m_i e_i^2 + 2 \Big(\sum_i m_i e_i\Big)^2
            + 4 \Big(\lVert S 
Vert_F^2 - \sum_{l \le k} \lambda_l^2\Big)
            + 8 \sum_{l \le k} \lambda_l\, (m \circ e)^	op 	ilde x_l\; 	ilde x_l^	op m,

    the last term zero for exact eigenvectors (kept for the solvers' tolerance).
    ``||D||`` is the same with ``k = 0``. Accurate to ~1e-8 of ``||D||``
    (cancellation in ``||S||² - Σλ²``).
    """
    T, k = directions.shape
    m = np.ones(T) if weights is None else weights
    N = float(m.sum())
    grand_mean = float(row_means @ m) / N
    diag = row_means - 0.5 * grand_mean

    def sq_norm(e, rest, cross):
        return 2.0 * N * float(m @ (e * e)) + 2.0 * float(m @ e) ** 2 + 4.0 * rest + 8.0 * cross

    total = sq_norm(diag, total_sq_norm, 0.0)
    if total <= 0.0:
        return np.ones(k)
    out = np.empty(k)
    e = diag.copy()
    along = lam * (m @ directions)  # λ_l x̃_l^T m
    for l in range(k):
        e -= lam[l] * directions[:, l] ** 2
        cross = float(((m * e) @ directions[:, :l + 1]) @ along[:l + 1])
        rest = max(total_sq_norm - float(np.sum(lam[:l + 1] ** 2)), 0.0)
        out[l] = 1.0 - np.sqrt(max(sq_norm(e, rest, cross), 0.0) / total)
    return out


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
