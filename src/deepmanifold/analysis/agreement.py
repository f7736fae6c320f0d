r"""Do training and test predictions give the same picture? (docs/method.md §6, claim 5)

Two checks on the distance matrices of the *same* ``T`` models computed on two
sample sets (e.g. train and test probes):

* **Mantel test**: Pearson and Spearman correlation of the upper triangles of
  the two matrices, with a permutation p-value obtained by relabelling the
  models of one matrix (rows and columns permuted together), which keeps each
  matrix's internal structure but breaks the pairing of models.
* **Procrustes fit** of the two InPCA embeddings on ``k`` axes: after centring
  and scaling each to unit Frobenius norm, the best orthogonal map
  (:func:`scipy.linalg.orthogonal_procrustes`) restricted to the isometries of
  the signed metric that need no boost — rotations/reflections within the
  space-like axes and within the time-like axes (this includes per-axis sign
  flips) — and the best overall scale. The normalised residual
  ``1 - (Σσ)²`` lies in ``[0, 1]``; 0 means identical shapes.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass

import numpy as np
import scipy.linalg
import scipy.stats

from deepmanifold import geometry

__all__ = ["Mantel", "ProcrustesFit", "ProcrustesSummary", "TrainTestAgreement", "mantel", "procrustes_fit",
           "procrustes_residual", "train_test_agreement"]


@dataclass(frozen=True)
class Mantel:
    """A Mantel test between two distance matrices over the same objects.

    Attributes
    ----------
    pearson, spearman : float or None
        Correlations of the strict upper triangles (None when either triangle is
        constant).
    p_pearson, p_spearman : float
        One-sided permutation p-values (1.0 where the correlation is None).
    n_permutations : int
    n_pairs : int
        Pairs of objects compared, ``T (T - 1) / 2``.
    alternative : str
        ``"greater"``: the test is for a positive association.
    """

    pearson: float | None
    spearman: float | None
    p_pearson: float
    p_spearman: float
    n_permutations: int
    n_pairs: int
    alternative: str = "greater"

    def to_dict(self) -> dict:
        """The JSON form (as in ``findings.json``)."""
        return {"n_permutations": self.n_permutations, "n_pairs": self.n_pairs, "alternative": self.alternative,
                "pearson": self.pearson, "p_pearson": self.p_pearson,
                "spearman": self.spearman, "p_spearman": self.p_spearman}


@dataclass(frozen=True)
class ProcrustesFit:
    """The best fit of one configuration onto another (see :func:`procrustes_fit`).

    Attributes
    ----------
    residual : float
        Normalised residual in [0, 1]; 0 = identical shapes.
    scale : float
        ``||Y_c|| / ||X_c||``: the size of ``Y`` relative to ``X``.
    aligned : ndarray, shape (T, w)
        ``s X̂ R``: ``X`` moved onto ``Y``'s normalised frame (blocks side by side).
    target : ndarray, shape (T, w)
        ``Ŷ`` in the same column order (zero-padded blocks).
    """

    residual: float
    scale: float
    aligned: np.ndarray
    target: np.ndarray


@dataclass(frozen=True)
class ProcrustesSummary:
    """How well the InPCA embeddings of two distance matrices match (:func:`train_test_agreement`).

    Attributes
    ----------
    residual : float
        Procrustes residual (:func:`procrustes_fit`) of the ``n_components``-axis
        embeddings; 0 = identical shapes up to scale, boost-free isometry and translation.
    n_components : int
    scale_test_over_train : float
        Overall size of the test embedding relative to the train one.
    signature_train, signature_test : list of int
        +1 (space-like) / -1 (time-like) per axis.
    explained_stress_train, explained_stress_test : float
        Explained stress of the ``n_components`` axes of each.
    """

    residual: float
    n_components: int
    scale_test_over_train: float
    signature_train: list[int]
    signature_test: list[int]
    explained_stress_train: float
    explained_stress_test: float

    def to_dict(self) -> dict:
        """The JSON form (as in ``findings.json``)."""
        return dict(vars(self))


@dataclass(frozen=True)
class TrainTestAgreement:
    """Agreement between the pictures of the same models on two sample sets.

    Attributes
    ----------
    n_models : int
    mantel : Mantel
        Mantel test of the two distance matrices.
    procrustes : ProcrustesSummary
        Procrustes fit of their InPCA embeddings.
    """

    n_models: int
    mantel: Mantel
    procrustes: ProcrustesSummary

    def to_dict(self) -> dict:
        """The JSON form (as in ``findings.json``)."""
        return {"n_models": self.n_models, "mantel": self.mantel.to_dict(),
                "procrustes": self.procrustes.to_dict()}


def _square(D, name: str) -> np.ndarray:
    D = np.asarray(D, dtype=np.float64)
    if D.ndim != 2 or D.shape[0] != D.shape[1]:
        raise ValueError(f"{name}: expected a square matrix, got shape {D.shape}")
    if not np.all(np.isfinite(D)):
        raise ValueError(f"{name} contains NaN or inf")
    return 0.5 * (D + D.T)


def mantel(A, B, *, n_permutations: int = 999, random_state=0) -> Mantel:
    """Mantel test between two symmetric matrices over the same ``T`` objects.

    Pearson ``r`` and Spearman ``rho`` of the strict upper triangles; one-sided
    (positive association) permutation p-values
    ``(1 + #{stat_perm >= stat}) / (n_permutations + 1)`` where each permutation
    relabels the objects of ``B`` (rows and columns together). Spearman uses
    average ranks for ties, computed once: relabelling only permutes the
    ranks. Cost ``O(n_permutations * T²)``.

    Returns
    -------
    Mantel
        A correlation is None (and its p-value 1) when either triangle is constant.
    """
    A = _square(A, "A")
    B = _square(B, "B")
    if A.shape != B.shape:
        raise ValueError(f"matrices of different shapes {A.shape} and {B.shape}")
    T = A.shape[0]
    if T < 3:
        raise ValueError(f"need at least 3 objects, got {T}")
    if not isinstance(n_permutations, numbers.Integral) or n_permutations < 0:
        raise ValueError(f"n_permutations must be a non-negative integer, got {n_permutations!r}")
    iu = np.triu_indices(T, k=1)
    rng = np.random.default_rng(random_state)

    def prepared(M):
        v = M[iu]
        v = v - v.mean()
        nrm = np.linalg.norm(v)
        return v / nrm if nrm > 0 else None

    def rank_matrix(M):
        R = np.zeros_like(M)
        R[iu] = scipy.stats.rankdata(M[iu])
        return R + R.T

    out = {}
    for name, fa, fb in (("pearson", A, B), ("spearman", rank_matrix(A), rank_matrix(B))):
        x, yv = prepared(fa), fb[iu]
        ynorm = np.linalg.norm(yv - yv.mean())
        if x is None or ynorm == 0:
            out[name], out[f"p_{name}"] = None, 1.0
            continue
        ymean = yv.mean()
        # permuting B keeps the multiset of its off-diagonal values: mean and norm fixed
        stat = float(np.clip(x @ (yv - ymean) / ynorm, -1.0, 1.0))
        hits = 0
        for _ in range(int(n_permutations)):
            p = rng.permutation(T)
            yp = fb[p[iu[0]], p[iu[1]]]
            hits += (x @ (yp - ymean) / ynorm) >= stat - 1e-12
        out[name] = stat
        out[f"p_{name}"] = float((1 + hits) / (n_permutations + 1))
    return Mantel(n_permutations=int(n_permutations), n_pairs=int(iu[0].size), **out)


def _blocks(sig, k: int) -> tuple[np.ndarray, np.ndarray]:
    if sig is None:
        return np.arange(k), np.arange(0)
    sig = np.asarray(sig)
    if sig.shape != (k,):
        raise ValueError(f"signature: expected shape ({k},), got {sig.shape}")
    return np.nonzero(sig >= 0)[0], np.nonzero(sig < 0)[0]


def procrustes_residual(X, Y, *, signature_x=None, signature_y=None) -> float:
    """Normalised Procrustes residual between two configurations of the same points.

    ``procrustes_fit(X, Y, ...).residual``: see :func:`procrustes_fit`.

    Returns
    -------
    float in [0, 1]
        0 for identical shapes (up to translation, scale and the allowed isometries).
    """
    return procrustes_fit(X, Y, signature_x=signature_x, signature_y=signature_y).residual


def procrustes_fit(X, Y, *, signature_x=None, signature_y=None) -> ProcrustesFit:
    r"""Best fit of configuration ``X`` onto ``Y`` (same points), and its residual.

    Both are centred and scaled to unit Frobenius norm; then

    .. math::

        \min_{s > 0,\; R} \| s \hat X R - \hat Y \|_F^2 = 1 - \Big(\sum \sigma\Big)^2,

    with ``R`` orthogonal and the ``σ`` the singular values of ``X̂ᵀŶ``
    (``scipy.linalg.orthogonal_procrustes``). With signatures (``+1``
    space-like, ``-1`` time-like axes, e.g. :attr:`InPCAResult.signature`),
    ``R`` is block-diagonal: it only mixes space-like axes with space-like axes
    and time-like with time-like, the boost-free isometries of the signed
    metric (sign flips included). Blocks of unequal width in ``X`` and ``Y``
    are padded with zero columns, so an axis that is space-like in one
    embedding and time-like in the other cannot be matched and counts as
    residual.

    Parameters
    ----------
    X, Y : array_like, shape (T, k) and (T, k2)
    signature_x, signature_y : array_like of ±1, shapes (k,) and (k2,), optional
        Both or neither. Without them ``R`` is any orthogonal matrix (columns
        of the narrower configuration padded with zeros).

    Returns
    -------
    ProcrustesFit

    Raises
    ------
    ValueError
        Shapes that do not describe the same points, one signature only, NaN or
        inf, or a configuration whose points all coincide.
    """
    X = np.asarray(X, dtype=np.float64)
    Y = np.asarray(Y, dtype=np.float64)
    if X.ndim != 2 or Y.ndim != 2 or X.shape[0] != Y.shape[0]:
        raise ValueError(f"X and Y must be (T, k) arrays over the same points, got {X.shape} and {Y.shape}")
    if (signature_x is None) != (signature_y is None):
        raise ValueError("give both signatures or neither")
    if not (np.all(np.isfinite(X)) and np.all(np.isfinite(Y))):
        raise ValueError("X or Y contains NaN or inf")
    Xc = X - X.mean(axis=0)
    Yc = Y - Y.mean(axis=0)
    nx, ny = np.linalg.norm(Xc), np.linalg.norm(Yc)
    if nx == 0 or ny == 0:
        raise ValueError("a configuration has all points coincident after centring")
    Xc /= nx
    Yc /= ny
    xs, xt = _blocks(signature_x, X.shape[1])
    ys, yt = _blocks(signature_y, Y.shape[1])
    T = X.shape[0]
    total_sigma = 0.0
    aligned_parts, target_parts = [], []
    for bx, by in ((xs, ys), (xt, yt)):
        w = max(bx.size, by.size)
        if w == 0:
            continue
        A = np.zeros((T, w))
        B = np.zeros((T, w))
        A[:, : bx.size] = Xc[:, bx]
        B[:, : by.size] = Yc[:, by]
        R, sigma_sum = scipy.linalg.orthogonal_procrustes(A, B)
        total_sigma += float(sigma_sum)
        aligned_parts.append(A @ R)
        target_parts.append(B)
    residual = float(np.clip(1.0 - total_sigma**2, 0.0, 1.0))
    return ProcrustesFit(residual=residual, scale=float(ny / nx), aligned=total_sigma * np.hstack(aligned_parts),
                         target=np.hstack(target_parts))


def train_test_agreement(D_train, D_test, *, n_permutations: int = 999, n_components: int = 3,
                         random_state=0) -> TrainTestAgreement:
    """Agreement between the pictures of the same models on two sample sets.

    Parameters
    ----------
    D_train, D_test : array_like, shape (T, T)
        Intensive Bhattacharyya distances between the same ``T`` models (same
        order), on training and on test samples.
    n_permutations : int, default 999
        Permutations for the Mantel p-values.
    n_components : int, default 3
        InPCA axes compared by the Procrustes fit (capped at ``T``).
    random_state : None, int or numpy.random.Generator

    Returns
    -------
    TrainTestAgreement
    """
    A = _square(D_train, "D_train")
    B = _square(D_test, "D_test")
    if A.shape != B.shape:
        raise ValueError(f"D_train and D_test have different shapes {A.shape} and {B.shape}")
    T = A.shape[0]
    if not isinstance(n_components, numbers.Integral) or n_components < 1:
        raise ValueError(f"n_components must be a positive integer, got {n_components!r}")
    k = int(min(n_components, T))
    test = mantel(A, B, n_permutations=n_permutations, random_state=random_state)
    ra = geometry.inpca(A, n_components=k)
    rb = geometry.inpca(B, n_components=k)
    fit = procrustes_fit(ra.coords, rb.coords, signature_x=ra.signature, signature_y=rb.signature)
    summary = ProcrustesSummary(
        residual=fit.residual,
        n_components=k,
        scale_test_over_train=fit.scale,
        signature_train=[int(s) for s in ra.signature],
        signature_test=[int(s) for s in rb.signature],
        explained_stress_train=float(ra.explained_stress[-1]),
        explained_stress_test=float(rb.explained_stress[-1]),
    )
    return TrainTestAgreement(n_models=int(T), mantel=test, procrustes=summary)
