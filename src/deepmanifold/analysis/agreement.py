r"""Do training and test predictions give the same picture? (SPEC §6, claim 5)

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

import numpy as np
import scipy.linalg
import scipy.stats

from deepmanifold import geometry

__all__ = ["mantel", "procrustes_residual", "train_test_agreement"]


def _square(D, name: str) -> np.ndarray:
    D = np.asarray(D, dtype=np.float64)
    if D.ndim != 2 or D.shape[0] != D.shape[1]:
        raise ValueError(f"{name}: expected a square matrix, got shape {D.shape}")
    if not np.all(np.isfinite(D)):
        raise ValueError(f"{name} contains NaN or inf")
    return 0.5 * (D + D.T)


def mantel(A, B, *, n_permutations: int = 999, random_state=0) -> dict:
    """Mantel test between two symmetric matrices over the same ``T`` objects.

    Pearson ``r`` and Spearman ``rho`` of the strict upper triangles; one-sided
    (positive association) permutation p-values
    ``(1 + #{stat_perm >= stat}) / (n_permutations + 1)`` where each permutation
    relabels the objects of ``B`` (rows and columns together). Spearman uses
    average ranks for ties, computed once: relabelling only permutes the
    ranks. Cost ``O(n_permutations * T²)``.

    Returns
    -------
    dict with keys ``pearson``, ``spearman``, ``p_pearson``, ``p_spearman``,
    ``n_permutations``, ``n_pairs``, ``alternative`` (``"greater"``). A
    correlation is None (and its p-value 1) when either triangle is constant.
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

    out = {"n_permutations": int(n_permutations), "n_pairs": int(iu[0].size), "alternative": "greater"}
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
    return out


def _blocks(sig, k: int) -> tuple[np.ndarray, np.ndarray]:
    if sig is None:
        return np.arange(k), np.arange(0)
    sig = np.asarray(sig)
    if sig.shape != (k,):
        raise ValueError(f"signature: expected shape ({k},), got {sig.shape}")
    return np.nonzero(sig >= 0)[0], np.nonzero(sig < 0)[0]


def procrustes_residual(X, Y, *, signature_x=None, signature_y=None, return_details: bool = False):
    r"""Normalised Procrustes residual between two configurations of the same points.

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
    return_details : bool
        Also return a dict with ``scale`` (``||Y_c|| / ||X_c||``, the size of
        ``Y`` relative to ``X``) and the aligned ``X`` (``s X̂ R``, in ``Y``'s
        normalised frame).

    Returns
    -------
    float in [0, 1], or (float, dict)
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
    if not return_details:
        return residual
    return residual, {
        "scale": float(ny / nx),
        "aligned": total_sigma * np.hstack(aligned_parts),
        "target": np.hstack(target_parts),
    }


def train_test_agreement(D_train, D_test, *, n_permutations: int = 999, n_components: int = 3,
                         random_state=0) -> dict:
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
    dict (JSON-serialisable)
        ``n_models``; ``mantel`` (see :func:`mantel`); ``procrustes`` with
        ``residual`` (0 = identical shapes up to scale, signed-metric
        isometry and translation), ``n_components``, ``scale_test_over_train``
        (overall size of the test embedding relative to the train one), the
        two signatures and the explained stress of the ``k`` axes of each.
    """
    A = _square(D_train, "D_train")
    B = _square(D_test, "D_test")
    if A.shape != B.shape:
        raise ValueError(f"D_train and D_test have different shapes {A.shape} and {B.shape}")
    T = A.shape[0]
    if not isinstance(n_components, numbers.Integral) or n_components < 1:
        raise ValueError(f"n_components must be a positive integer, got {n_components!r}")
    k = int(min(n_components, T))
    out = {"n_models": int(T), "mantel": mantel(A, B, n_permutations=n_permutations, random_state=random_state)}
    ra = geometry.inpca(A, n_components=k)
    rb = geometry.inpca(B, n_components=k)
    res, det = procrustes_residual(ra.coords, rb.coords, signature_x=ra.signature, signature_y=rb.signature,
                                   return_details=True)
    out["procrustes"] = {
        "residual": res,
        "n_components": k,
        "scale_test_over_train": det["scale"],
        "signature_train": [int(s) for s in ra.signature],
        "signature_test": [int(s) for s in rb.signature],
        "explained_stress_train": float(ra.explained_stress[-1]),
        "explained_stress_test": float(rb.explained_stress[-1]),
    }
    return out
