r"""Landmark (Nyström) InPCA for very many models.

Exact InPCA of ``m`` landmark models (an ``m x m`` distance matrix), then Gower
projection of all ``T`` models from their distances to the landmarks
(``T x m``, computed in batches) [1]_ [2]_:

.. math::

    w_q = -\tfrac12 (d_q - \bar d_q - r + \bar r), \qquad
    x_{qk} = \sqrt{|\lambda_k|}\, \frac{v_k \cdot w_q}{\lambda_k},

with ``λ, v, r`` the eigenpairs and row means of the landmarks' InPCA. Cost:
``m^2 + T m`` distances instead of ``T^2``; memory ``O(m^2 + T k)``. With every
model a landmark the result equals exact InPCA. :func:`landmark_error`
measures the error against exact InPCA on a moderate ``T``.

References
----------
.. [1] V. de Silva, J. B. Tenenbaum, "Sparse multidimensional scaling using
       landmark points", Technical report, Stanford University, 2004.
.. [2] J. C. Gower, "Adding a point to vector diagrams in multivariate
       analysis", Biometrika 55 (3), 1968.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from .distances import pairwise_distances
from .divergences import FLOOR
from .embedding import InPCAResult, embedded_sq_distances, inpca
from .validation import check_model_stack

__all__ = ["LandmarkError", "LandmarkInPCAResult", "landmark_error", "landmark_inpca"]


@dataclass(frozen=True, eq=False)
class LandmarkInPCAResult:
    """Landmark InPCA embedding of ``T`` models on ``k`` axes.

    Attributes
    ----------
    coords : ndarray, shape (T, k)
        Gower projections of all models (landmarks get their exact landmark
        coordinates).
    eigenvalues : ndarray, shape (k,)
        Eigenvalues of the landmarks' ``W`` (``m x m``); ``eigenvalues * T / m``
        estimates those of the full ``W``.
    signature : ndarray, shape (k,)
    landmark_indices : ndarray, shape (m,)
    landmark_result : InPCAResult
        Exact InPCA of the landmarks; its ``explained_stress`` and
        ``explained_fraction`` are those of the landmark matrix.
    """

    coords: np.ndarray
    eigenvalues: np.ndarray
    signature: np.ndarray
    landmark_indices: np.ndarray
    landmark_result: InPCAResult = field(repr=False)

    @property
    def n_components(self) -> int:
        return self.eigenvalues.shape[0]

    @property
    def explained_stress(self) -> np.ndarray:
        return self.landmark_result.explained_stress

    @property
    def explained_fraction(self) -> np.ndarray:
        return self.landmark_result.explained_fraction

    def transform(self, d_to_landmarks) -> np.ndarray:
        """Gower projection of new models from their distances to the landmarks, shape (q, m) or (m,).

        Coordinates of shape (q, k) or (k,); ``q`` may be 0. See :meth:`InPCAResult.transform`.
        """
        return self.landmark_result.transform(d_to_landmarks)


def _choose_landmarks(X, m, landmarks, rng, *, log, metric, floor, batch_size) -> np.ndarray:
    """Indices of the landmarks: drawn (``"random"``, ``"maxmin"``, ``m`` of them) or checked."""
    T = X.shape[0]
    if isinstance(landmarks, str):
        if landmarks not in ("random", "maxmin"):
            raise ValueError(f"landmarks must be 'random', 'maxmin' or an array of indices, got {landmarks!r}")
        m = _check_n_landmarks(m, T, landmarks)
        if landmarks == "random":
            return np.sort(rng.choice(T, size=m, replace=False))
        # Farthest-point sampling: each new landmark maximises its distance
        # to the landmarks chosen so far (m passes over the models).
        chosen = [int(rng.integers(T))]
        nearest = np.full(T, np.inf)
        for _ in range(m - 1):
            last = np.asarray(X[chosen[-1]:chosen[-1] + 1])
            for s in range(0, T, batch_size):
                e = min(T, s + batch_size)
                d = pairwise_distances(last, np.asarray(X[s:e]), log=log, metric=metric, floor=floor)[0]
                np.minimum(nearest[s:e], d, out=nearest[s:e])
            nearest[chosen] = -np.inf
            chosen.append(int(np.argmax(nearest)))
        return np.asarray(chosen)
    idx = np.asarray(landmarks)
    if idx.ndim != 1 or idx.dtype.kind not in "iu" or idx.size == 0:
        raise ValueError("landmarks: expected a non-empty 1-D array of integer indices")
    if idx.min() < 0 or idx.max() >= T or np.unique(idx).size != idx.size:
        raise ValueError(f"landmarks: indices must be distinct and in [0, {T})")
    if m is not None and m != idx.size:
        raise ValueError(f"n_landmarks = {m!r} but {idx.size} landmark indices were given; "
                         "leave n_landmarks out with explicit landmarks")
    return idx.astype(np.intp)


def _check_n_landmarks(m, T: int, landmarks: str) -> int:
    if m is None:
        raise ValueError(f"n_landmarks is required with landmarks={landmarks!r}")
    if isinstance(m, bool) or not isinstance(m, numbers.Integral) or not 1 <= m <= T:
        raise ValueError(f"n_landmarks must be an integer in [1, {T}], got {m!r}")
    return int(m)


def landmark_inpca(
    X,
    n_landmarks: int | None = None,
    n_components: int = 3,
    *,
    log: bool = False,
    metric: str = "bhattacharyya",
    floor: float = FLOOR,
    landmarks="random",
    random_state=None,
    batch_size: int = 4096,
    solver: str = "auto",
    callback: Callable | None = None,
) -> LandmarkInPCAResult:
    r"""Landmark (Nyström) InPCA: exact InPCA of ``m`` landmarks, Gower projection of all models.

    Parameters
    ----------
    X : array_like, shape (T, n, C)
        Model probabilities; anything sliceable along axis 0 (``np.memmap``,
        Zarr, ...); read ``batch_size`` models at a time.
    n_landmarks : int, optional
        ``m``, ``n_components <= m <= T``; required when ``landmarks`` is
        ``"random"`` or ``"maxmin"``. With explicit indices it may be left out
        (it is their number).
    n_components : int, default 3
    log, metric, floor
        As for :func:`pairwise_distances`.
    landmarks : {"random", "maxmin"} or array_like of int, default "random"
        ``"random"``: uniform without replacement. ``"maxmin"``: farthest-point
        sampling (covers outlying models; ``m`` extra passes over ``X``). Or
        explicit indices.
    random_state : None, int or numpy.random.Generator
    batch_size : int, default 4096
        Models per batch for the model-to-landmark distances.
    solver : str, default "auto"
        Eigensolver for the landmark InPCA (see :func:`inpca`).
    callback : callable, optional
        ``callback("projection", done_models, T)`` after every batch.

    Returns
    -------
    LandmarkInPCAResult

    Raises
    ------
    ValueError
        ``X`` not ``(T, n, C)``; ``n_landmarks`` missing or outside ``[1, T]``
        with drawn landmarks, or not the number of explicit ones; explicit
        indices repeated or out of range; an unknown ``landmarks`` string.

    Notes
    -----
    Time ``O(m^2 n C + T m n C)`` for the distances plus the landmark
    eigenproblem; memory ``O(m^2 + batch_size * m + T k)``. The error against
    exact InPCA falls with ``m`` (see :func:`landmark_error`); as a rule the
    landmarks must sample every part of the trajectory that should be
    resolved.
    """
    rng = np.random.default_rng(random_state)
    X, (T, _, _) = check_model_stack(X, "X")
    idx = _choose_landmarks(X, n_landmarks, landmarks, rng, log=log, metric=metric, floor=floor,
                            batch_size=batch_size)
    idx = np.sort(idx)  # the order of the landmarks does not matter
    XL = X[idx] if isinstance(X, np.ndarray) else np.stack([np.asarray(X[int(i)]) for i in idx])
    DL = pairwise_distances(XL, log=log, metric=metric, floor=floor)
    base = inpca(DL, n_components, solver=solver, random_state=rng)
    del DL
    coords = np.empty((T, base.n_components))
    for s in range(0, T, batch_size):
        e = min(T, s + batch_size)
        d = pairwise_distances(np.asarray(X[s:e]), XL, log=log, metric=metric, floor=floor)
        coords[s:e] = base.transform(d)
        if callback is not None:
            callback("projection", e, T)
    coords[idx] = base.coords  # exact for the landmarks themselves (up to rounding anyway)
    return LandmarkInPCAResult(coords=coords, eigenvalues=base.eigenvalues, signature=base.signature,
                               landmark_indices=idx, landmark_result=base)


@dataclass(frozen=True)
class LandmarkError:
    r"""Error of a landmark embedding against exact InPCA on the same models.

    Attributes
    ----------
    coord_rel_rmse : float
        ``||X_L S - X_E||_F / ||X_E||_F`` with ``S`` the per-axis sign
        alignment (``X`` the ``(T, k)`` coordinates).
    coord_rel_rmse_per_axis : ndarray, shape (k,)
        Same, per axis: ``||x_L,k s_k - x_E,k|| / ||x_E,k||``.
    coord_rel_rmse_procrustes : float
        Same after the best orthogonal rotation within the space-like axes and
        within the time-like axes (isometries of the embedding); this ignores
        the arbitrary mixing of axes with nearly equal eigenvalues.
    sq_dist_rel_error : float
        ``||D̂_L - D̂_E||_F / ||D̂_E||_F`` for the embedded squared distances
        ``D̂_ij = Σ_k sign(λ_k)(x_ik - x_jk)^2`` on ``k`` axes.
    eigenvalue_rel_error : ndarray, shape (k,)
        ``|λ_L T/m - λ_E| / |λ_E|``.
    sq_dist_rel_error_vs_D, reference_sq_dist_rel_error_vs_D : float
        ``||D̂ - D||_F / ||D||_F`` of the landmark and of the exact embedding
        (the exact one is the floor set by keeping ``k`` axes).
    """

    coord_rel_rmse: float
    coord_rel_rmse_per_axis: np.ndarray
    coord_rel_rmse_procrustes: float
    sq_dist_rel_error: float
    eigenvalue_rel_error: np.ndarray
    sq_dist_rel_error_vs_D: float
    reference_sq_dist_rel_error_vs_D: float


def landmark_error(result: LandmarkInPCAResult, D=None, *, X=None, reference: InPCAResult | None = None,
                   log: bool = False, metric: str = "bhattacharyya", floor: float = FLOOR) -> LandmarkError:
    """Measure a landmark embedding against exact InPCA (moderate ``T`` only: forms ``T x T`` arrays).

    Parameters
    ----------
    result : LandmarkInPCAResult
    D : array_like, shape (T, T), optional
        The full distance matrix; computed from ``X`` if None.
    X : array_like, shape (T, n, C), optional
    reference : InPCAResult, optional
        Exact InPCA of ``D`` with at least ``k`` axes; computed if None.
    log, metric, floor
        For computing ``D`` from ``X``.

    Returns
    -------
    LandmarkError
    """
    if D is None:
        if X is None:
            raise ValueError("landmark_error needs D or X")
        D = pairwise_distances(X, log=log, metric=metric, floor=floor)
    D = np.asarray(D, dtype=np.float64)
    k = result.n_components
    if reference is None:
        reference = inpca(D, k)
    XE = reference.coords[:, :k]
    XL = result.coords
    if XE.shape != XL.shape:
        raise ValueError(f"coordinates of shape {XL.shape} vs reference {XE.shape}")
    signs = np.where(np.sum(XL * XE, axis=0) < 0, -1.0, 1.0)
    XL = XL * signs
    per_axis = np.linalg.norm(XL - XE, axis=0) / np.maximum(np.linalg.norm(XE, axis=0), 1e-300)
    coord = float(np.linalg.norm(XL - XE) / np.linalg.norm(XE))
    aligned = XL.copy()
    for block in (result.signature > 0, result.signature < 0):
        if block.any() and np.array_equal(block, reference.signature[:k] == result.signature[block][0]):
            U, _, Vt = np.linalg.svd(XL[:, block].T @ XE[:, block])
            aligned[:, block] = XL[:, block] @ (U @ Vt)
    procrustes = float(np.linalg.norm(aligned - XE) / np.linalg.norm(XE))
    DE = embedded_sq_distances(XE, reference.signature[:k])
    DL = embedded_sq_distances(XL, result.signature)
    nD = np.linalg.norm(D)
    T, m = D.shape[0], result.landmark_indices.shape[0]
    lam = result.eigenvalues * T / m
    lamE = reference.eigenvalues[:k]
    return LandmarkError(
        coord_rel_rmse=coord,
        coord_rel_rmse_per_axis=per_axis,
        coord_rel_rmse_procrustes=procrustes,
        sq_dist_rel_error=float(np.linalg.norm(DL - DE) / np.linalg.norm(DE)),
        eigenvalue_rel_error=np.abs(lam - lamE) / np.abs(lamE),
        sq_dist_rel_error_vs_D=float(np.linalg.norm(DL - D) / nD),
        reference_sq_dist_rel_error_vs_D=float(np.linalg.norm(DE - D) / nD),
    )
