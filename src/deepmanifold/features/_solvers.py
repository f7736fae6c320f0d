"""Kernel ridge solves ``(K + reg I) alpha = Y`` for the Recursive Feature Machine.

- :func:`solve_cholesky` -- direct: the kernel matrix in memory, a Cholesky factor
  (SciPy/LAPACK on the CPU, torch on CUDA), exact leave-one-out predictions.
- :func:`solve_cg` -- iterative: preconditioned conjugate gradients with the kernel
  recomputed in row blocks at every product (memory ``O(n (c + l))``), and a
  Nystrom preconditioner (:class:`NystromPreconditioner`).
- :func:`solve_kernel_ridge` -- picks one (``"auto"``: direct up to
  :data:`CHOLESKY_MAX_SAMPLES` samples).

Both return a :class:`KernelRidgeSolution`; a kernel matrix that cannot be
factorised at the given ``reg`` raises :class:`KernelRidgeError`.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import scipy.linalg
import torch
from sklearn.exceptions import ConvergenceWarning

from ._kernels import BLOCK_ELEMENTS, Kernel, kernel_matrix

__all__ = [
    "CG_MAX_ITER",
    "CG_TOL",
    "CHOLESKY_MAX_SAMPLES",
    "SOLVERS",
    "KernelRidgeError",
    "KernelRidgeSolution",
    "NystromPreconditioner",
    "solve_cg",
    "solve_cholesky",
    "solve_kernel_ridge",
]

#: Largest training set that ``solver="auto"`` solves directly (the kernel matrix
#: alone is 3.2 GB in float64 there; the factorisation costs ``n^3 / 3``).
CHOLESKY_MAX_SAMPLES = 20_000
#: Conjugate gradients stop when every column has ``||Y - (K + reg I) alpha|| <= CG_TOL ||Y||``.
CG_TOL = 1e-6
#: ... or after this many iterations, with a ConvergenceWarning.
CG_MAX_ITER = 500
#: Landmarks of the Nystrom preconditioner (at most n).
NYSTROM_LANDMARKS = 1000

SOLVERS = ("auto", "cholesky", "cg")


class KernelRidgeError(np.linalg.LinAlgError):
    """``K + reg I`` is not numerically positive definite (a ValueError and a LinAlgError)."""


def _not_pd(reg: float, detail: str) -> KernelRidgeError:
    return KernelRidgeError(
        f"the kernel matrix plus reg * I is not numerically positive definite at reg={reg:g} "
        f"({detail}); raise `reg` (e.g. to {max(10 * reg, 1e-6):g})")


@dataclass
class KernelRidgeSolution:
    """Result of one kernel ridge solve on ``n`` training rows with ``c`` targets.

    Attributes
    ----------
    alpha : tensor, shape (n, c)
        Dual coefficients, ``(K + reg I)^{-1} Y``.
    fitted : tensor, shape (n, c)
        Predictions at the training rows, ``K alpha = Y - reg alpha - r`` with
        ``r`` the solver's final residual (0 to rounding for the direct solve).
    loo : tensor, shape (n, c), or None
        Leave-one-out predictions ``Y - alpha / diag((K + reg I)^{-1})`` when
        asked for: exact for the direct solve, with the diagonal of the
        preconditioner's inverse in place of the true one for conjugate gradients.
    n_iter : int
        Conjugate-gradient iterations (0 for the direct solve).
    """

    alpha: torch.Tensor
    fitted: torch.Tensor
    loo: torch.Tensor | None
    n_iter: int


# ------------------------------------------------------------------------- direct
def solve_cholesky(K: torch.Tensor, Y: torch.Tensor, reg: float, *, loo: bool = False) -> KernelRidgeSolution:
    """Direct solve with the Cholesky factor of ``K + reg I``; ``K`` is overwritten.

    Parameters
    ----------
    K : tensor, shape (n, n)
        Kernel matrix, float64; used as workspace for the factor.
    Y : tensor, shape (n, c)
    reg : float
        Ridge, >= 0.
    loo : bool
        Also return the exact leave-one-out predictions: the diagonal of
        ``(K + reg I)^{-1}`` from the inverse of the factor (another ``n^3 / 3``).

    Raises
    ------
    KernelRidgeError
        The factorisation fails or gives non-finite coefficients.
    """
    K.diagonal().add_(reg)
    if K.device.type == "cpu":
        alpha, inv_diag = _cholesky_scipy(K.numpy(), Y.numpy(), reg, loo)
        alpha = torch.from_numpy(alpha)
        inv_diag = None if inv_diag is None else torch.from_numpy(inv_diag)
    else:
        alpha, inv_diag = _cholesky_torch(K, Y, reg, loo)
    if not bool(torch.isfinite(alpha).all()):
        raise _not_pd(reg, "the solve gave non-finite coefficients")
    loo_pred = None if inv_diag is None else Y - alpha / inv_diag[:, None]
    return KernelRidgeSolution(alpha, Y - reg * alpha, loo_pred, 0)


def _cholesky_scipy(A, Y, reg, loo):
    # A is symmetric and C-ordered: its transpose is the same matrix in Fortran order,
    # which LAPACK factorises in place instead of copying n^2 numbers.
    try:
        factor = scipy.linalg.cho_factor(A.T, lower=True, overwrite_a=True, check_finite=False)
    except np.linalg.LinAlgError as exc:
        raise _not_pd(reg, str(exc)) from None
    alpha = scipy.linalg.cho_solve(factor, Y, check_finite=False)
    if not loo:
        return alpha, None
    # diag(A^{-1}) = column sums of squares of L^{-1}, inverted in place.
    L_inv, info = scipy.linalg.lapack.dtrtri(factor[0], lower=1, overwrite_c=1)
    if info != 0:
        raise _not_pd(reg, f"triangular inverse failed, info={info}")
    return alpha, _lower_column_sq_sums(L_inv)


def _lower_column_sq_sums(T):
    """``sum_{i >= j} T[i, j]^2`` for every column ``j``, ignoring the strict upper triangle.

    cho_factor and dtrtri leave that triangle as it was, so it is masked block by
    block instead of copying ``T``.
    """
    n = T.shape[0]
    out = np.empty(n)
    step = max(1, BLOCK_ELEMENTS // max(1, n))
    for j0 in range(0, n, step):
        j1 = min(n, j0 + step)
        top = np.tril(T[j0:j1, j0:j1])
        below = T[j1:, j0:j1]
        out[j0:j1] = np.einsum("ij,ij->j", top, top) + np.einsum("ij,ij->j", below, below)
    return out


def _cholesky_torch(A, Y, reg, loo):
    L, info = torch.linalg.cholesky_ex(A)
    if int(info) != 0:
        raise _not_pd(reg, f"leading minor {int(info)} is not positive")
    alpha = torch.cholesky_solve(Y, L)
    if not loo:
        return alpha, None
    L_inv = torch.linalg.solve_triangular(L, torch.eye(L.shape[0], dtype=L.dtype, device=L.device), upper=False)
    return alpha, (L_inv * L_inv).sum(dim=0)


# ---------------------------------------------------------------------- iterative
class NystromPreconditioner:
    """Nystrom preconditioner for ``K + mu I`` from ``l`` uniformly sampled columns.

    With ``C = K[:, I]`` and ``W = K[I, I]`` the Nystrom approximation
    ``K ~ C W^+ C^T = U diag(lam) U^T`` (``U`` ``(n, l)`` orthonormal) gives

    .. math::

        P^{-1} = (\\lambda_l + \\mu) U (\\Lambda + \\mu I)^{-1} U^T + (I - U U^T),

    which maps the top ``l`` eigen-directions of ``K + mu I`` to about
    ``lambda_l + mu`` and leaves the rest (Frangella, Tropp & Udell, SIAM J.
    Matrix Anal. Appl. 44, 2023; the same top-eigenspace idea as EigenPro).
    ``W`` is shifted by ``nu = n eps trace(W)/l`` before its Cholesky factor
    (Tropp et al.'s stable Nystrom), and the shift is taken back from ``lam``.

    Setup costs ``n l d`` (the columns) and ``n l^2`` (a thin SVD); each
    application ``2 n l c``.
    """

    def __init__(self, kernel: Kernel, X: torch.Tensor, bandwidth: float, mu: float, n_landmarks: int, rng):
        n = X.shape[0]
        idx = torch.as_tensor(np.sort(rng.choice(n, size=min(n, n_landmarks), replace=False)), device=X.device)
        C = kernel_matrix(kernel, X, X[idx], bandwidth)  # (n, l)
        W = C[idx]
        nu = n * float(np.finfo(np.float64).eps) * float(torch.trace(W)) / len(idx) + 1e-300
        R, info = torch.linalg.cholesky_ex(W + nu * torch.eye(len(idx), dtype=W.dtype, device=W.device))
        if int(info) != 0:  # W is a principal block of a PSD matrix; only garbage gets here
            raise _not_pd(mu, "the Nystrom landmark block could not be factorised")
        B = torch.linalg.solve_triangular(R, C.T, upper=False).T  # C R^{-T}
        U, sigma, _ = torch.linalg.svd(B, full_matrices=False)
        self.U = U
        self.lam = (sigma * sigma - nu).clamp(min=0.0)
        self.mu = mu
        self.scale = float(self.lam[-1]) + mu

    def apply(self, R: torch.Tensor) -> torch.Tensor:
        """``P^{-1} R`` for ``R (n, c)``."""
        UR = self.U.T @ R
        return R + self.U @ ((self.scale / (self.lam + self.mu) - 1.0)[:, None] * UR)

    def inverse_diagonal(self) -> torch.Tensor:
        """``diag((U Lam U^T + mu I)^{-1})`` with the complement's eigenvalues set to ``lam_l``.

        Stands in for ``diag((K + mu I)^{-1})`` in the leave-one-out predictions of
        the iterative solve.
        """
        U2 = self.U * self.U
        inside = U2 @ (1.0 / (self.lam + self.mu))
        return inside + (1.0 - U2.sum(dim=1)).clamp(min=0.0) / self.scale


def _blocked_matmul(kernel: Kernel, X: torch.Tensor, V: torch.Tensor, bandwidth: float) -> torch.Tensor:
    """``K(X, X) V`` with the kernel formed one row block at a time."""
    n = X.shape[0]
    out = torch.empty_like(V)
    step = max(1, BLOCK_ELEMENTS // max(1, n))
    for i0 in range(0, n, step):
        out[i0:i0 + step] = kernel.value(X[i0:i0 + step], X, bandwidth) @ V
    return out


def solve_cg(kernel: Kernel, X: torch.Tensor, Y: torch.Tensor, reg: float, bandwidth: float, *,
             rng, loo: bool = False, tol: float = CG_TOL,
             max_iter: int = CG_MAX_ITER, n_landmarks: int = NYSTROM_LANDMARKS) -> KernelRidgeSolution:
    """Preconditioned conjugate gradients for ``(K(X, X) + reg I) alpha = Y``.

    The ``c`` columns run as independent CG recursions sharing each kernel
    product (one pass over the kernel per iteration for all of them).

    Parameters
    ----------
    kernel : Kernel
    X : tensor, shape (n, d)
        Feature-space training rows.
    Y : tensor, shape (n, c)
    reg : float
        Ridge, > 0.
    bandwidth : float
    rng : numpy RandomState or Generator
        Draws the Nystrom landmarks (its ``choice``).
    loo : bool
        Also return approximate leave-one-out predictions
        (:meth:`NystromPreconditioner.inverse_diagonal`).
    tol, max_iter, n_landmarks
        Relative residual per column, iteration cap, preconditioner rank.

    Raises
    ------
    ValueError
        ``reg`` is not positive.
    KernelRidgeError
        A search direction with ``p^T (K + reg I) p <= 0`` (the matrix is not
        numerically positive definite), or non-finite iterates.

    Warns
    -----
    ConvergenceWarning
        The tolerance is not reached within ``max_iter`` iterations.

    Notes
    -----
    Each iteration recomputes the kernel (``n^2 d`` operations, memory
    ``BLOCK_ELEMENTS``); the iteration count grows like the square root of the
    condition number left by the preconditioner, about ``(lam_l + reg) / reg``.
    """
    if not reg > 0:
        raise ValueError(f"solver='cg' needs reg > 0, got reg={reg!r}")
    precond = NystromPreconditioner(kernel, X, bandwidth, reg, n_landmarks, rng)
    y_norm = torch.linalg.vector_norm(Y, dim=0)
    alpha = torch.zeros_like(Y)
    R = Y.clone()
    active = y_norm > 0
    Zr = precond.apply(R)
    P = Zr.clone()
    rz = (R * Zr).sum(dim=0)
    it = 0
    while bool(active.any()) and it < max_iter:
        it += 1
        AP = _blocked_matmul(kernel, X, P, bandwidth) + reg * P
        pAp = (P * AP).sum(dim=0)
        if bool((pAp[active] <= 0).any()) or not bool(torch.isfinite(pAp).all()):
            raise _not_pd(reg, f"conjugate gradients met p^T A p <= 0 at iteration {it}")
        a = torch.where(active, rz / torch.where(active, pAp, 1.0), 0.0)
        alpha += a * P
        R -= a * AP
        active = torch.linalg.vector_norm(R, dim=0) > tol * y_norm
        Zr = precond.apply(R)
        rz_new = (R * Zr).sum(dim=0)
        P = Zr + torch.where(active, rz_new / torch.where(rz != 0, rz, 1.0), 0.0) * P
        rz = rz_new
    if bool(active.any()):
        worst = float((torch.linalg.vector_norm(R, dim=0) / y_norm.clamp(min=1e-300)).max())
        warnings.warn(f"conjugate gradients stopped after {it} iterations at relative residual "
                      f"{worst:.2e} > {tol:g}; raise `reg` or use solver='cholesky'",
                      ConvergenceWarning, stacklevel=3)
    if not bool(torch.isfinite(alpha).all()):
        raise _not_pd(reg, "conjugate gradients gave non-finite coefficients")
    loo_pred = Y - alpha / precond.inverse_diagonal()[:, None] if loo else None
    return KernelRidgeSolution(alpha, Y - reg * alpha - R, loo_pred, it)


def solve_kernel_ridge(kernel: Kernel, X: torch.Tensor, Y: torch.Tensor, reg: float, bandwidth: float, *,
                       solver: str = "auto", rng, loo: bool = False) -> KernelRidgeSolution:
    """Solve ``(K(X, X) + reg I) alpha = Y`` on feature-space rows ``X (n, d)``.

    ``solver``: ``"cholesky"``, ``"cg"``, or ``"auto"`` (Cholesky when
    ``n <= CHOLESKY_MAX_SAMPLES``, else CG). See :func:`solve_cholesky`,
    :func:`solve_cg`.
    """
    if solver == "auto":
        solver = "cholesky" if X.shape[0] <= CHOLESKY_MAX_SAMPLES else "cg"
    if solver == "cholesky":
        return solve_cholesky(kernel_matrix(kernel, X, X, bandwidth), Y, reg, loo=loo)
    if solver == "cg":
        return solve_cg(kernel, X, Y, reg, bandwidth, rng=rng, loo=loo)
    raise ValueError(f"solver must be one of {SOLVERS}, got {solver!r}")
