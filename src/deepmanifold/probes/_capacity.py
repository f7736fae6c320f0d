r"""Manifold capacity: the mean-field estimate and its check by linear programs.

A set of ``P`` class manifolds (point clouds) in ``R^N`` is linearly separable under a
random dichotomy (every point of a manifold shares its label) while ``P/N`` stays below the
manifold capacity ``α_M``. Points have ``α = 2`` (Cover 1965); extended manifolds less.

- :func:`manifold_capacity` -- the replica mean-field estimate of ``α_M`` with the
  manifolds' anchor radius ``R_M`` and dimension ``D_M`` (Chung, Lee & Sompolinsky, PRX
  2018) after the correlated structure of the centres is projected out (Cohen, Chung,
  Lee & Sompolinsky, Nat. Commun. 2020); the published reference implementation is the
  ``mftma`` package (``manifold_analysis_corr``), whose steps are followed here.
- :func:`simulated_capacity` -- the same quantity measured directly: the number of random
  projections ``N'`` at which half of the random dichotomies are separable, by linear
  programs (the reference's ``manifold_simcap_analysis``).
- :class:`CapacityResult`, :class:`SimulatedCapacity` -- their results.

The anchor points of the mean-field estimate are solutions of a small quadratic program
per Gaussian sample; its dual is a non-negative least-squares problem (with margin
``κ > 0`` too, see :func:`manifold_capacity`), solved for all samples of a manifold by one
compiled active-set kernel on the manifold's Gram matrix.
"""

from __future__ import annotations

import math
import numbers
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numba import njit

from deepmanifold.utils import check_int, numba_cache_enabled

__all__ = ["CapacityResult", "SimulatedCapacity", "manifold_capacity", "simulated_capacity"]


_CACHE = numba_cache_enabled(__file__)
# Reordered sums and fused multiply-adds let the solver's dot products vectorise; NaN and
# inf keep their meaning (no "nnan"/"ninf"), so the comparisons that end its loops hold.
_FAST = {"reassoc", "contract", "nsz", "arcp"}

#: Gaussian samples per manifold of the mean-field estimate: the reference's example and
#: advice ("a good default is 200").
DEFAULT_N_T = 200
#: Random starts per rank of the centres' low-rank search (the reference's n_reps).
DEFAULT_CENTER_RESTARTS = 10
# A column joins the active set only if the part of it outside the span of the columns
# already there holds at least this fraction of its squared norm; below, in the Gram
# form, the rounding of G_jj - |l|^2 (about eps * G_jj) would be a sizeable part of it.
_DEPENDENT = 1e-11
# An anchor is the manifold's max-projection point when |V - T| is below this (the
# reference's eps: the solution is then T itself, an interior point).
_INTERIOR_EPS = 1e-8
# A centre norm below this fraction of the data's scale counts as zero.
_ZERO_CENTRE = 1e-10


# --------------------------------------------------------------------------------------
# Results


@dataclass(frozen=True)
class CapacityResult:
    """Mean-field manifold capacity and geometry of ``P`` manifolds.

    Attributes
    ----------
    capacity : float
        ``α_M = 1 / mean_i(1/α_i)``: the capacity of the whole set (inverse average of the
        per-manifold capacities, as the reference averages them).
    radius : float
        Mean over manifolds of the anchor radius ``R_M`` (in units of the centre norm).
    dimension : float
        Mean over manifolds of the anchor dimension ``D_M``.
    center_correlation : float
        Mean absolute correlation between the centred manifold centres, before the
        low-rank structure is removed (the reference's ``res_coeff0``); 0 for
        uncorrelated centres.
    capacities, radii, dimensions : ndarray of shape (P,)
        ``α_i``, ``R_i`` and ``D_i`` of every manifold.
    center_rank : int
        Dimension ``K`` of the centres' common subspace that was projected out (the
        reference's ``KK``); 0 for two manifolds.
    n_t : int
        Gaussian samples per manifold.
    kappa : float
        Margin.
    """

    capacity: float
    radius: float
    dimension: float
    center_correlation: float
    capacities: np.ndarray
    radii: np.ndarray
    dimensions: np.ndarray
    center_rank: int
    n_t: int
    kappa: float


@dataclass(frozen=True)
class SimulatedCapacity:
    """Capacity found by linear programs on random dichotomies and random projections.

    Attributes
    ----------
    capacity : float
        ``P / N_c``; NaN when the search had no bracket (see ``n_critical``).
    n_critical : float
        ``N_c``: the number of projections at which half of the dichotomies are
        separable, interpolated linearly between the two closest values tried on either
        side of one half; NaN when even ``N`` projections separate fewer than half of
        them, or 2 already separate more than half.
    n_values : ndarray of int
        Every number of projections ``N'`` tried, increasing.
    p_separable : ndarray of float
        Fraction of the ``n_rep`` dichotomies found separable at each of ``n_values``.
    n_manifolds : int
        ``P``.
    n_rep : int
        Dichotomies (each with its own random projection) per ``N'``.
    """

    capacity: float
    n_critical: float
    n_values: np.ndarray
    p_separable: np.ndarray
    n_manifolds: int
    n_rep: int


# --------------------------------------------------------------------------------------
# Input checks


def _check_manifolds(manifolds) -> list[np.ndarray]:
    """``manifolds`` as a list of ``P >= 2`` finite float64 arrays of shape ``(M_i >= 1, N)``."""
    if isinstance(manifolds, np.ndarray) or not isinstance(manifolds, Sequence):
        arr = np.asarray(manifolds)
        if arr.ndim != 3:
            raise ValueError("manifolds must be an array of shape (P, M, N) or a sequence of P arrays of "
                             f"shape (M_i, N), got an array of shape {arr.shape}")
        items = list(arr)
    else:
        items = list(manifolds)
    if len(items) < 2:
        raise ValueError(f"manifold capacity needs at least 2 manifolds, got {len(items)}")
    out = []
    n = None
    for i, X in enumerate(items):
        X = np.asarray(X)
        if X.dtype.kind not in "biuf":
            raise ValueError(f"manifold {i}: expected real numbers, got dtype {X.dtype}")
        if X.ndim != 2:
            raise ValueError(f"manifold {i}: expected an array of shape (M_i, N) (points x dimensions), "
                             f"got shape {X.shape}")
        if X.shape[0] == 0:
            raise ValueError(f"manifold {i} is empty (0 points)")
        if X.shape[1] == 0:
            raise ValueError(f"manifold {i}: points have 0 dimensions")
        if n is None:
            n = X.shape[1]
        elif X.shape[1] != n:
            raise ValueError(f"manifold {i} has points of dimension N = {X.shape[1]}, manifold 0 of N = {n}")
        X = X.astype(np.float64, copy=False)
        if not np.isfinite(X).all():
            bad = np.argwhere(~np.isfinite(X))[0]
            raise ValueError(f"manifold {i} has {int((~np.isfinite(X)).sum())} non-finite values "
                             f"(first at point {bad[0]}, dimension {bad[1]})")
        out.append(X)
    return out


def _check_kappa(kappa) -> float:
    if isinstance(kappa, (bool, np.bool_)) or not isinstance(kappa, numbers.Real) or not 0 <= kappa < math.inf:
        raise ValueError(f"kappa must be a finite number >= 0, got {kappa!r}")
    return float(kappa)


def _zero_centre(i: int, norm: float, scale: float, where: str) -> ValueError:
    return ValueError(
        f"manifold {i}: its centre coincides with {where} (centre norm {norm:.3g}, data scale {scale:.3g}), "
        "so the manifold cannot be normalised by its centre norm and its capacity is undefined")


# --------------------------------------------------------------------------------------
# Compiled kernels


@njit(cache=_CACHE, nogil=True, fastmath=_FAST)
def _cholesky_into(G, passive, k, L):  # pragma: no cover - compiled
    """L[:k, :k] = lower Cholesky factor of G[passive[:k]][:, passive[:k]]; returns -1, or
    the first row whose pivot is not above :data:`_DEPENDENT` times its diagonal."""
    for r in range(k):
        pr = passive[r]
        for c in range(r + 1):
            s = G[pr, passive[c]]
            for q in range(c):
                s -= L[r, q] * L[c, q]
            if c < r:
                L[r, c] = s / L[c, c]
            else:
                if s <= _DEPENDENT * G[pr, pr]:
                    return r
                L[r, r] = math.sqrt(s)
    return -1


@njit(cache=_CACHE, nogil=True, fastmath=_FAST)
def _forward(L, k, b, passive, y, start):  # pragma: no cover - compiled
    """y[start:k] of the forward substitution L y = b[passive[:k]] (rows before start are kept)."""
    for r in range(start, k):
        s = b[passive[r]]
        for c in range(r):
            s -= L[r, c] * y[c]
        y[r] = s / L[r, r]


@njit(cache=_CACHE, nogil=True, fastmath=_FAST)
def _backward(L, k, y, z):  # pragma: no cover - compiled
    """z[:k] = L⁻ᵀ y[:k], by rows of L (contiguous)."""
    for r in range(k):
        z[r] = y[r]
    for r in range(k - 1, -1, -1):
        zr = z[r] / L[r, r]
        z[r] = zr
        for c in range(r):
            z[c] -= L[r, c] * zr


@njit(cache=_CACHE, nogil=True, fastmath=_FAST)
def _nnls_gram_one(G, b, tol, lam, L, passive, is_passive, rejected, y, z, w):  # pragma: no cover
    """Minimise ``½ λᵀGλ − bᵀλ`` over ``λ >= 0`` (Lawson–Hanson active set, Gram form).

    ``G`` is ``(m, m)`` positive semi-definite. Writes ``λ`` into ``lam`` and returns the
    number of outer iterations (``3m + 1`` if the cap was hit). The Cholesky factor ``L``
    of the active block and the forward solution ``y = L⁻¹ b_active`` grow by one row per
    added column and are recomputed only when columns leave; the gradient ``w = b − Gλ``
    is needed, and computed, only off the active set. A column nearly in the span of the
    active ones (:data:`_DEPENDENT`), or that would enter with a non-positive value, is
    left out for good: its gradient is zero up to rounding.
    """
    m = G.shape[0]
    for i in range(m):
        lam[i] = 0.0
        is_passive[i] = False
        rejected[i] = False
        w[i] = b[i]
    k = 0
    it = 0
    while it < 3 * m:
        it += 1
        j = -1
        best = tol
        for i in range(m):
            if not is_passive[i] and not rejected[i] and w[i] > best:
                best = w[i]
                j = i
        if j < 0:
            return it
        # Append column j to the Cholesky factor of the active block.
        d2 = G[j, j]
        for r in range(k):
            s = G[passive[r], j]
            for c in range(r):
                s -= L[r, c] * L[k, c]
            L[k, r] = s / L[r, r]
            d2 -= L[k, r] * L[k, r]
        if d2 <= _DEPENDENT * G[j, j]:
            rejected[j] = True
            continue
        L[k, k] = math.sqrt(d2)
        passive[k] = j
        is_passive[j] = True
        k += 1
        _forward(L, k, b, passive, y, k - 1)
        first = True
        while True:
            _backward(L, k, y, z)
            if first and z[k - 1] <= 0.0:
                # Rounding: a column with positive gradient must enter with a positive value.
                k -= 1
                is_passive[j] = False
                rejected[j] = True
                break
            first = False
            alpha = 2.0
            arg = -1
            for r in range(k):
                if z[r] <= 0.0:
                    lr = lam[passive[r]]
                    a = lr / (lr - z[r])
                    if a < alpha:
                        alpha = a
                        arg = r
            if arg < 0:
                for r in range(k):
                    lam[passive[r]] = z[r]
                break
            # Step towards z until the first variable reaches 0, drop those at 0, refactor.
            for r in range(k):
                p = passive[r]
                lam[p] += alpha * (z[r] - lam[p])
            lam[passive[arg]] = 0.0
            kk = 0
            for r in range(k):
                p = passive[r]
                if lam[p] > 0.0:
                    passive[kk] = p
                    kk += 1
                else:
                    lam[p] = 0.0
                    is_passive[p] = False
            k = kk
            bad = _cholesky_into(G, passive, k, L)
            while bad >= 0:  # rounding made a remaining column dependent: leave it out
                p = passive[bad]
                lam[p] = 0.0
                is_passive[p] = False
                rejected[p] = True
                for r in range(bad, k - 1):
                    passive[r] = passive[r + 1]
                k -= 1
                bad = _cholesky_into(G, passive, k, L)
            _forward(L, k, b, passive, y, 0)
        for i in range(m):
            w[i] = b[i]
        for r in range(k):  # w = b − G λ by rows of G (symmetric), for every i at once
            p = passive[r]
            lp = lam[p]
            for i in range(m):
                w[i] -= G[p, i] * lp
    return it + 1


@njit(cache=_CACHE, nogil=True, fastmath=_FAST)
def _nnls_gram_batch(G, B, tol, lam):  # pragma: no cover - compiled
    """Row ``i`` of ``lam`` (n, m) = argmin over λ >= 0 of ``½ λᵀGλ − B[i]ᵀλ``; returns
    the outer iterations of every row."""
    n, m = B.shape
    iters = np.empty(n, np.int64)
    L = np.empty((m, m))
    passive = np.empty(m, np.int64)
    is_passive = np.empty(m, np.bool_)
    rejected = np.empty(m, np.bool_)
    y = np.empty(m)
    z = np.empty(m)
    w = np.empty(m)
    for i in range(n):
        iters[i] = _nnls_gram_one(G, B[i], tol[i], lam[i], L, passive, is_passive, rejected, y, z, w)
    return iters


def _nnls_gram(G: np.ndarray, B: np.ndarray, tol: np.ndarray) -> np.ndarray:
    """``λ`` of shape (n, m): for each row ``b`` of ``B``, argmin over λ >= 0 of ``½ λᵀGλ − bᵀλ``."""
    G = np.ascontiguousarray(G, dtype=np.float64)
    B = np.ascontiguousarray(B, dtype=np.float64)
    lam = np.empty_like(B)
    iters = _nnls_gram_batch(G, B, np.ascontiguousarray(tol, dtype=np.float64), lam)
    if (iters > 3 * G.shape[0]).any():
        warnings.warn(f"the active-set solver hit its iteration cap on {int((iters > 3 * G.shape[0]).sum())} "
                      "of the anchor problems; their anchors may be inexact", RuntimeWarning, stacklevel=5)
    return lam


def _cone_projection(S: np.ndarray, T: np.ndarray, kappa: float = 0.0) -> np.ndarray:
    """Dual solutions ``λ`` (n, m) of ``min ‖V − t‖²`` s.t. ``Sᵀ V <= −κ``, one per column ``t`` of ``T``.

    ``S`` is ``(D + 1, m)`` with a last row of ones. With ``e`` the last unit vector,
    ``Sᵀe = 1``, so the dual ``min_{λ>=0} ½‖Sλ − t‖² − κ 1ᵀλ`` is the non-negative least
    squares of ``t + κe`` onto the columns of ``S``; the solution is ``V = t − Sλ``.
    """
    G = S.T @ S
    B = (T.T @ S) + kappa  # (n, m): Sᵀ(t + κe)
    tnorm = np.sqrt(np.einsum("ij,ij->j", T, T) + 2 * kappa * T[-1] + kappa**2)
    tol = 10 * G.shape[0] * np.finfo(float).eps * math.sqrt(float(np.max(np.diag(G)))) * tnorm
    return _nnls_gram(G, B, tol)


@njit(cache=_CACHE, nogil=True, fastmath=_FAST)
def _corr_cost_grad(X, C, V, grad, want_grad):  # pragma: no cover - compiled
    """Cost of the centres' residual correlations after removing span(V), and its gradient.

    ``X`` (P, n) centres, ``C = X Xᵀ``, ``V`` (n, K) orthonormal. With ``c = XV``,
    ``A = C − c cᵀ`` and ``a_m = A_mm``, the cost is ``½ Σ_mn A_mn² / (a_m a_n)`` (the
    reference's ``square_corrcoeff_full_cost``). With ``want_grad``, ``grad`` (n, K)
    receives its Euclidean gradient ``Xᵀ(−2 (A/(a aᵀ)) c + 2 q ∘ c)`` with
    ``q_m = Σ_n A_mn² / (a_m² a_n)``.
    """
    P = X.shape[0]
    K = V.shape[1]
    c = X @ V
    ia = np.empty(P)  # 1 / a
    for i in range(P):
        s = C[i, i]
        for k in range(K):
            s -= c[i, k] * c[i, k]
        ia[i] = 1.0 / s
    cost = 0.5 * P  # the diagonal terms, A_mm² / a_m² = 1
    if not want_grad:
        for i in range(P):
            acc = 0.0
            for j in range(i):
                s = C[i, j]
                for k in range(K):
                    s -= c[i, k] * c[j, k]
                acc += s * s * ia[j]
            cost += acc * ia[i]
        return cost
    gc = np.zeros((P, K))
    q = np.zeros(P)  # the diagonal's terms of q and of (A/(a aᵀ)) c cancel
    for i in range(P):
        for j in range(i):
            s = C[i, j]
            for k in range(K):
                s -= c[i, k] * c[j, k]
            f = s * ia[i] * ia[j]
            sf = s * f
            cost += sf
            q[i] += sf * ia[i]
            q[j] += sf * ia[j]
            for k in range(K):
                gc[i, k] -= 2.0 * f * c[j, k]
                gc[j, k] -= 2.0 * f * c[i, k]
    for i in range(P):
        for k in range(K):
            gc[i, k] += 2.0 * q[i] * c[i, k]
    grad[:, :] = X.T @ gc
    return cost


@njit(cache=_CACHE, nogil=True)
def _tangent(V, G):  # pragma: no cover - compiled
    """Projection of ``G`` onto the tangent space of the Stiefel manifold at ``V``."""
    VtG = V.T @ G
    return G - V @ (0.5 * (VtG + VtG.T))


@njit(cache=_CACHE, nogil=True, fastmath=_FAST)
def _retract(Y):  # pragma: no cover - compiled
    """The Q factor of ``Y`` with a positive diagonal R (modified Gram–Schmidt)."""
    Q = Y.copy()
    n, K = Q.shape
    for k in range(K):
        for j in range(k):
            s = 0.0
            for i in range(n):
                s += Q[i, j] * Q[i, k]
            for i in range(n):
                Q[i, k] -= s * Q[i, j]
        s = 0.0
        for i in range(n):
            s += Q[i, k] * Q[i, k]
        s = math.sqrt(s)
        for i in range(n):
            Q[i, k] /= s
    return Q


@njit(cache=_CACHE, nogil=True)
def _stiefel_cg(X, C, V, max_iter, gtol, min_step):  # pragma: no cover - compiled
    """Minimise :func:`_corr_cost_grad` over orthonormal ``V`` by Riemannian conjugate
    gradients (Hestenes–Stiefel, transport by projection, Armijo backtracking), the method
    of the reference's pymanopt ``ConjugateGradient``."""
    eg = np.empty_like(V)
    f = _corr_cost_grad(X, C, V, eg, True)
    g = _tangent(V, eg)
    d = -g
    step = 1.0
    for _ in range(max_iter):
        gg = np.sum(g * g)
        if math.sqrt(gg) < gtol:
            break
        df0 = np.sum(g * d)
        if df0 >= 0.0:
            d = -g
            df0 = -gg
        dn = math.sqrt(np.sum(d * d))
        # Armijo backtracking from twice the previous step's length.
        alpha = min(2.0 * step, 1e6) / dn
        Vn = _retract(V + alpha * d)
        fn = _corr_cost_grad(X, C, Vn, eg, False)
        tries = 0
        while not (fn <= f + 1e-4 * alpha * df0) and tries < 40:
            alpha *= 0.5
            Vn = _retract(V + alpha * d)
            fn = _corr_cost_grad(X, C, Vn, eg, False)
            tries += 1
        if not (fn <= f):
            break
        fn = _corr_cost_grad(X, C, Vn, eg, True)
        step = alpha * dn
        gn = _tangent(Vn, eg)
        gt = _tangent(Vn, g)
        dt = _tangent(Vn, d)
        y = gn - gt
        den = np.sum(dt * y)
        beta = max(0.0, np.sum(gn * y) / den) if den != 0.0 else 0.0
        d = -gn + beta * dt
        V, g, f = Vn, gn, fn
        if step < min_step:
            break
    return V


# --------------------------------------------------------------------------------------
# Mean-field capacity


def _mean_abs_correlation(X: np.ndarray) -> float:
    """Mean absolute correlation ``Σ_{m≠n} |x_m·x_n| / (|x_m||x_n|) / (P(P − 1))`` of the rows."""
    P = X.shape[0]
    norms = np.linalg.norm(X, axis=1)
    C = (X @ X.T) / np.outer(norms, norms)
    return float((np.abs(C).sum() - P) / (P * (P - 1)))


def _center_subspace(centres: np.ndarray, rng: np.random.Generator, n_reps: int):
    """Orthonormal ``(N, K)`` basis of the centres' common low-rank subspace, ``K`` and the
    centres' mean absolute correlation (the reference's ``fun_FA``).

    For each rank ``K = 1, 2, ...`` the ``K``-dimensional subspace whose removal leaves
    the least correlated centres is searched from ``n_reps`` random starts (each grown
    from the best subspace of rank ``K − 1``); the start whose residual centres keep the
    largest smallest fraction of their norm is kept. The search stops after the rank
    limit or once the residual correlation has risen three times in a row, and the rank
    with the least residual correlation is returned.
    """
    P, N = centres.shape
    Xb = centres - centres.mean(axis=0)
    q = np.linalg.qr(Xb.T)[0][:, : P - 1]  # (N, min(N, P - 1)): the centres' span
    X = np.ascontiguousarray(Xb @ q)  # the centres in that basis
    corr0 = _mean_abs_correlation(X)
    # Rank limit as in the reference (the last rank below 95 % explained variance + 11),
    # capped below the rank of the centres so that the residual centres keep a dimension
    # to be correlated in (the reference would go on and divide by zero norms).
    sv = np.linalg.svd(Xb, compute_uv=False)
    rank = int(np.sum(sv > sv[0] * max(P, N) * np.finfo(float).eps))
    total = np.cumsum(sv**2 / np.sum(sv**2))
    max_k = min(int(np.argmax(np.where(total < 0.95, total, 0.0))) + 11, rank - 1)
    if max_k < 1:
        return np.zeros((N, 0)), 0, corr0
    C = X @ X.T
    xnorm = np.linalg.norm(X, axis=1)
    V1 = np.zeros((X.shape[1], 0))
    subspaces, costs = [], []
    for k in range(1, max_k + 1):
        best, best_stability = None, -np.inf
        for _ in range(n_reps):
            s = rng.standard_normal(P)
            V0 = np.linalg.qr(np.column_stack([X.T @ s, V1]))[0]
            V = _stiefel_cg(X, C, np.ascontiguousarray(V0), 1000, 1e-6, 1e-10)
            stability = float(np.min(np.linalg.norm(X - (X @ V) @ V.T, axis=1) / xnorm))
            if best is None or stability > best_stability:
                best, best_stability = V, stability
        V1 = best
        subspaces.append(V1)
        costs.append(_mean_abs_correlation(X - (X @ V1) @ V1.T))
        if k > 4 and costs[-1] > costs[-2] > costs[-3] > costs[-4]:
            break
    costs = np.array(costs)
    K = int(np.argmin(np.where(np.isfinite(costs), costs, np.inf))) + 1
    return q @ subspaces[K - 1], K, corr0


def _reduce(points: np.ndarray) -> np.ndarray:
    """``S`` (D + 1, M): the centre-normalised points reduced to ``D = min(M, N)``
    coordinates by QR, with the constant coordinate 1 appended as the last row."""
    M, N = points.shape
    R = np.linalg.qr(points.T, mode="r") if N > M else points.T  # Qᵀ(points.T) = R
    return np.vstack([R, np.ones((1, M))])


def _anchor_geometry(S: np.ndarray, T: np.ndarray, kappa: float) -> tuple[float, float, float]:
    """``(α, R_M, D_M)`` of one manifold ``S`` (D + 1, M) from the Gaussian samples ``T``
    (D + 1, n_t), as the reference's ``each_manifold_analysis_D1`` computes them."""
    D = S.shape[0] - 1
    lam = _cone_projection(S, T, kappa)  # (n_t, M)
    fields = T.T @ S  # (n_t, M): t·s_μ
    top = np.argmax(fields, axis=1)
    SL = S @ lam.T  # (D + 1, n_t) = T − V; its last row is Σλ
    interior = (fields[np.arange(T.shape[1]), top] + kappa < 0) | (
        np.sqrt(np.einsum("ij,ij->j", SL, SL)) < _INTERIOR_EPS)
    with np.errstate(divide="ignore", invalid="ignore"):
        anchors = np.where(interior, S[:, top], SL / SL[-1])
    # α⁻¹ = ⟨[t·s̃ + κ]₊² / ‖s̃‖²⟩ (the reference's eq. 16-17 in its sign convention).
    h = np.maximum(np.einsum("ij,ij->j", T, anchors) + kappa, 0.0)
    s2 = np.einsum("ij,ij->j", anchors, anchors)
    contrib = np.divide(h * h, s2, out=np.zeros_like(h), where=s2 > 0)
    with np.errstate(divide="ignore"):
        alpha = 1.0 / contrib.mean()
    # R_M² = ⟨‖δs̃‖²⟩, the anchors' spread about their mean (eq. 28).
    ds = (anchors - anchors.mean(axis=1, keepdims=True))[:D] / anchors[D]
    radius = math.sqrt(float(np.mean(np.einsum("ij,ij->j", ds, ds))))
    # D_M = D ⟨t̂·ŝ⟩² over the first D coordinates (eq. 29).
    t_hat = T[:D] / np.linalg.norm(T[:D], axis=0)
    s_hat = anchors[:D] / np.sqrt(np.einsum("ij,ij->j", anchors[:D], anchors[:D]) + 1e-12)
    dimension = D * float(np.mean(np.einsum("ij,ij->j", t_hat, s_hat))) ** 2
    return float(alpha), radius, dimension


def manifold_capacity(manifolds, *, kappa: float = 0.0, n_t: int = DEFAULT_N_T,
                      random_state=None, center_restarts: int = DEFAULT_CENTER_RESTARTS) -> CapacityResult:
    r"""Mean-field capacity, radius and dimension of class manifolds.

    The replica mean-field theory of Chung, Lee & Sompolinsky (2018) with the correlated
    centres of Cohen et al. (2020), computed as the reference implementation
    (``mftma.manifold_analysis_corr``) computes it.

    Parameters
    ----------
    manifolds : array_like of shape (P, M, N), or sequence of P array_like of shape (M_i, N)
        ``P >= 2`` manifolds (classes), each a cloud of ``M_i >= 1`` points in ``R^N``
        (rows are points; e.g. a layer's activations of ``M_i`` inputs of class ``i``).
    kappa : float, default 0
        Margin ``κ >= 0``, in units of the centre norms.
    n_t : int, default 200
        Gaussian samples ``t`` per manifold (the reference's default).
    random_state : int, numpy.random.Generator or None
        Source of the Gaussian samples and of the random starts of the centre-subspace
        search; an int gives reproducible results.
    center_restarts : int, default 10
        Random starts per rank of the centre-subspace search (step 1; the reference's
        ``n_reps``). The search is most of the cost for ``P ≈ 10`` classes of 50 points;
        fewer starts find the same subspace when the centres share one, and an equally
        good local optimum otherwise.

    Returns
    -------
    CapacityResult

    Raises
    ------
    ValueError
        Fewer than 2 manifolds, an empty manifold, points of different dimensions,
        non-finite values, a manifold whose centre coincides with the global mean (before
        or after the centres' common subspace is projected out), ``kappa < 0`` or
        ``n_t < 1``.

    Notes
    -----
    Steps (reference ``manifold_analysis_corr``):

    1. The global mean of all points is subtracted. The manifolds' centres
       (means) span a low-rank subspace of correlated directions, found by minimising the
       residual correlation of the centres over orthonormal bases of rank ``K``
       (reference ``fun_FA``, Riemannian conjugate gradients here), and projected out of
       every point. The rank search is capped one below the rank of the centred
       centres (at most ``P − 2``), so that no residual centre is forced to zero; with
       ``P = 2``, or collinear centres, nothing is projected out (the reference would
       divide by zero there).
    2. Manifold ``i`` is shifted to its centre ``x⁰_i`` and divided by ``‖x⁰_i‖``; QR
       reduces it to ``D_i = min(M_i, N)`` coordinates and a constant coordinate 1 (the
       centre direction) is appended: ``s̃_μ = (u_μ, 1) ∈ R^{D+1}``.
    3. For ``n_t`` samples ``t ~ N(0, I_{D+1})`` the anchor point ``s̃(t)`` is found.
       With the reference's signs, ``V(t) = argmin ‖V − t‖²`` subject to
       ``V·s̃_μ <= −κ`` for all ``μ``; by duality ``V = t − Sλ`` with

       .. math::

           λ = \operatorname{argmin}_{λ >= 0} \tfrac12 ‖Sλ − (t + κ e)‖²,

       ``S = (s̃_1, ..., s̃_M)`` and ``e`` the last unit vector (``Sᵀe = 1`` turns the
       margin into a shift of the target), and ``s̃(t) = Sλ / Σλ``, a convex combination
       of the points. When ``max_μ t·s̃_μ + κ < 0`` (or ``‖Sλ‖ < 10⁻⁸``), ``t`` itself
       is feasible and the anchor is the max-projection point ``argmax_μ t·s̃_μ``.
    4. With ``⟨·⟩`` the mean over the samples (2018 paper, eqs. 16-17, 28, 29):

       .. math::

           α_i^{-1} = \Big\langle \frac{[t·s̃(t) + κ]_+^2}{‖s̃(t)‖^2} \Big\rangle, \qquad
           R_i^2 = \big\langle ‖δs̃(t)‖^2 \big\rangle, \qquad
           D_i = D \big\langle \hat t · \hat s(t) \big\rangle^2,

       where ``δs̃`` is the anchor's first ``D`` coordinates minus their mean over the
       samples (divided by the last coordinate, 1) and ``\hat t, \hat s`` are the unit
       vectors along the first ``D`` coordinates of ``t`` and ``s̃(t)`` (the reference's
       estimators). Then ``α_M = 1/⟨1/α_i⟩_i``, and ``R_M``, ``D_M`` are plain means
       over the manifolds.

    For large ``D`` a manifold behaves like a ball of radius ``R_M`` in ``D_M``
    dimensions, ``α_M ≈ (1 + R_M^{-2}) / D_M``; points (``M = 1``) give ``α = 2``.

    The dual problems of a manifold share its Gram matrix ``SᵀS``: one compiled
    Lawson–Hanson active-set kernel (incremental Cholesky of the active block) solves all
    ``n_t`` of them, on one thread; it agrees with the reference's cvxopt QP to
    about 1e-10 in ``α``, ``R_M``, ``D_M``. Time on one core (numba kernels cached; the
    first call of a fresh install compiles them, ~15 s): 25 ms for a layer probe of
    ``P = 10`` classes of ``M = 50`` points in ``N = 512`` dimensions at ``n_t = 200``;
    1.0 s for the reference's example ``P = 100, M = 50, N = 5000``, where the reference
    algorithm with one ``scipy.optimize.nnls`` per sample takes 3.3 s
    (``benchmarks/bench_capacity.py``). The centres' low-rank step costs ``O(P²K)`` per
    iteration of its solver, a third of the time at ``P = 100``.

    References
    ----------
    S. Chung, D. D. Lee & H. Sompolinsky, "Classification and geometry of general
    perceptual manifolds", Phys. Rev. X 8, 031003 (2018).

    U. Cohen, S. Chung, D. D. Lee & H. Sompolinsky, "Separability and geometry of object
    manifolds in deep neural networks", Nat. Commun. 11, 746 (2020).

    Reference implementation: github.com/schung039/neural_manifolds_replicaMFT
    (``mftma/manifold_analysis_correlation.py``).

    Examples
    --------
    Points (one per manifold) have Cover's capacity 2:

    >>> rng = np.random.default_rng(0)
    >>> r = manifold_capacity(rng.standard_normal((20, 1, 50)), n_t=5000, random_state=0)
    >>> abs(r.capacity - 2) < 0.05, r.radius, r.dimension
    (True, 0.0, 0.0)
    """
    Xs = _check_manifolds(manifolds)
    kappa = _check_kappa(kappa)
    n_t = check_int(n_t, "n_t")
    rng = np.random.default_rng(random_state)
    P = len(Xs)

    sizes = np.array([len(X) for X in Xs])
    means = np.stack([X.mean(axis=0) for X in Xs])  # (P, N)
    origin = sizes @ means / sizes.sum()  # the mean of all points
    centres = means - origin
    dev = np.linalg.norm(centres - centres.mean(axis=0), axis=1)
    scale = max(float(dev.max()), max(float(np.abs(X).max()) for X in Xs))
    for i in range(P):
        if dev[i] <= _ZERO_CENTRE * scale or scale == 0.0:
            raise _zero_centre(i, float(dev[i]), scale, "the mean of the centres")

    basis, K, corr0 = _center_subspace(centres, rng, check_int(center_restarts, "center_restarts"))

    alphas, radii, dims = np.empty(P), np.empty(P), np.empty(P)
    for i, X in enumerate(Xs):
        # The centre of manifold i after the projection, and its points relative to it.
        c, Z = centres[i], X - means[i]
        if K:
            c = c - (c @ basis) @ basis.T
            Z -= (Z @ basis) @ basis.T
        cn = float(np.linalg.norm(c))
        if cn <= _ZERO_CENTRE * scale:
            raise _zero_centre(i, cn, scale, "the global mean after the centres' common subspace is projected out")
        S = _reduce(Z / cn)
        T = rng.standard_normal((S.shape[0], n_t))
        alphas[i], radii[i], dims[i] = _anchor_geometry(S, T, kappa)
    return CapacityResult(
        capacity=float(1.0 / np.mean(1.0 / alphas)), radius=float(radii.mean()), dimension=float(dims.mean()),
        center_correlation=corr0, capacities=alphas, radii=radii, dimensions=dims, center_rank=K,
        n_t=n_t, kappa=kappa)


# --------------------------------------------------------------------------------------
# Simulated capacity


def _separable(X: np.ndarray, y: np.ndarray) -> bool:
    """Whether some ``(w, b)`` has ``y_i (w·x_i + b) >= 1`` for every row ``x_i`` of ``X``.

    A feasibility linear program (HiGHS); infeasible means not strictly separable. When
    the dual simplex ends undecided (rare, on nearly degenerate data) the interior-point
    method is asked, then Gordan's alternative: not separable iff some convex
    combination of the ``y_i (x_i, 1)`` is 0.
    """
    from scipy.optimize import linprog

    n, d = X.shape
    Z = y[:, None] * np.hstack([X, np.ones((n, 1))])
    for method in ("highs", "highs-ipm"):
        res = linprog(np.zeros(d + 1), A_ub=-Z, b_ub=-np.ones(n), bounds=(None, None), method=method)
        if res.status in (0, 2):
            return res.status == 0
    b_eq = np.zeros(d + 2)
    b_eq[-1] = 1.0
    res = linprog(np.zeros(n), A_eq=np.vstack([Z.T, np.ones((1, n))]), b_eq=b_eq, bounds=(0, None),
                  method="highs")
    if res.status in (0, 2):
        return res.status == 2
    warnings.warn(f"linprog could not decide a separability test ({res.message}); counted as not separable",
                  RuntimeWarning, stacklevel=5)
    return False


def _fraction_separable(Xs, n_proj: int, seeds) -> float:
    """Fraction of the dichotomies (one per seed) separable after projecting onto ``n_proj``
    random unit directions.

    A seed fixes a balanced dichotomy (``⌊P/2⌋`` manifolds labelled +1) and a stream of
    Gaussian directions whose first ``n_proj`` are used, so the dichotomies are the same
    at every ``n_proj`` and the projections nested.
    """
    P, N = len(Xs), Xs[0].shape[1]
    sizes = [len(X) for X in Xs]
    points = np.concatenate(Xs)
    hits = 0
    for seed in seeds:
        gen = np.random.default_rng(seed)
        labels = np.where(gen.permutation(P) < P // 2, 1.0, -1.0)
        W = gen.standard_normal((n_proj, N))
        W /= np.linalg.norm(W, axis=1, keepdims=True)
        hits += _separable(points @ W.T, np.repeat(labels, sizes))
    return hits / len(seeds)


def simulated_capacity(manifolds, *, n_rep: int = 20, random_state=None, p_tol: float = 0.05) -> SimulatedCapacity:
    r"""Capacity of manifolds measured by linear programs: ``P / N_c`` at 50 % separability.

    ``n_rep`` random balanced dichotomies of the ``P`` manifolds (all points of a manifold
    share its label) are projected onto ``N'`` random unit directions and tested for
    linear separability (with a bias) by a linear program; the fraction ``p(N')`` found
    separable is bisected over ``N' ∈ [2, N]`` for ``p(N_c) = 1/2``, as the reference's
    ``manifold_simcap_analysis``.

    Parameters
    ----------
    manifolds : array_like of shape (P, M, N), or sequence of P array_like of shape (M_i, N)
        As :func:`manifold_capacity`.
    n_rep : int, default 20
        Dichotomies (each with its own random projection) per ``N'``; ``p(N')`` moves in
        steps of ``1/n_rep``.
    random_state : int, numpy.random.Generator or None
        Source of the dichotomies and projections.
    p_tol : float, default 0.05
        The bisection stops once ``|p(N') − 1/2| <= p_tol`` or the bracket is one wide.

    Returns
    -------
    SimulatedCapacity

    Raises
    ------
    ValueError
        Inputs as :func:`manifold_capacity`, ``n_rep < 1`` or ``p_tol`` outside ``[0, 0.5)``.

    Warns
    -----
    RuntimeWarning
        When ``p(N) < 1/2`` (the manifolds are not separable in their own space often
        enough) or ``p(2) >= 1/2``: no bracket, the capacity is NaN.

    Notes
    -----
    With the dichotomy's labels ``y_i = ±1`` of the points ``x_i`` (projected), the test is
    the feasibility of ``y_i (w·x_i + b) >= 1`` for all ``i``, one HiGHS linear program of
    ``ΣM_i`` constraints and ``N' + 1`` variables (the reference solves the equivalent
    max-margin QP with cvxopt). ``N_c`` is interpolated linearly in ``p`` between the
    final bracket ``p(N_lo) < 1/2 <= p(N_hi)``. The dichotomies and directions of a
    repetition are the same at every ``N'`` (common random numbers), so ``p`` is close to
    monotone. Unlike the reference, ``n_rep`` is not reduced for ``N' > 1500``.

    For points (``M = 1``) ``α`` tends to Cover's 2 as ``P`` grows (with the bias, ``P``
    points in ``N'`` dimensions are separable with probability 1/2 at ``P = 2(N' + 1)``).
    Cost: about ``n_rep · log₂ N`` linear programs; meant for checks on small problems.

    References
    ----------
    T. M. Cover, "Geometrical and statistical properties of systems of linear
    inequalities with applications in pattern recognition", IEEE Trans. Electron.
    Comput. EC-14, 326 (1965).

    S. Chung, D. D. Lee & H. Sompolinsky, Phys. Rev. X 8, 031003 (2018);
    U. Cohen et al., Nat. Commun. 11, 746 (2020).
    """
    Xs = _check_manifolds(manifolds)
    n_rep = check_int(n_rep, "n_rep")
    if isinstance(p_tol, (bool, np.bool_)) or not isinstance(p_tol, numbers.Real) or not 0 <= p_tol < 0.5:
        raise ValueError(f"p_tol must be a number in [0, 0.5), got {p_tol!r}")
    rng = np.random.default_rng(random_state)
    seeds = rng.integers(2**63, size=n_rep)
    P, N = len(Xs), Xs[0].shape[1]
    scale = math.sqrt(np.mean([np.mean(X * X) for X in Xs])) or 1.0
    Xs = [X / scale for X in Xs]  # O(1) entries for the LP tolerances

    seen: dict[int, float] = {}

    def p(n: int) -> float:
        if n not in seen:
            seen[n] = _fraction_separable(Xs, n, seeds)
        return seen[n]

    lo, hi = 2, N
    p_lo, p_hi = p(lo), p(hi)
    n_c = math.nan
    if p_hi < 0.5:
        warnings.warn(f"with all N = {N} dimensions only {p_hi:.2f} of the dichotomies are separable (< 1/2): "
                      "the capacity is below P/N and cannot be measured", RuntimeWarning, stacklevel=2)
    elif p_lo >= 0.5:
        warnings.warn(f"{p_lo:.2f} of the dichotomies are separable in 2 dimensions (>= 1/2): the capacity is "
                      "above P/2 and cannot be measured", RuntimeWarning, stacklevel=2)
    else:
        while hi - lo > 1:
            mid = (lo + hi + 1) // 2
            if p(mid) < 0.5:
                lo = mid
            else:
                hi = mid
            if abs(p(mid) - 0.5) <= p_tol:
                break
        n_c = float(np.interp(0.5, [p(lo), p(hi)], [lo, hi]))
    n_values = np.array(sorted(seen), dtype=np.int64)
    return SimulatedCapacity(capacity=P / n_c, n_critical=n_c, n_values=n_values,
                             p_separable=np.array([seen[n] for n in n_values]), n_manifolds=P, n_rep=n_rep)
