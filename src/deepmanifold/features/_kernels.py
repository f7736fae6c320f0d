"""Kernels of the Recursive Feature Machine, the gradients of kernel predictors, the AGOP.

A kernel with a Mahalanobis matrix ``M`` (symmetric positive semi-definite, ``(d, d)``,
or its diagonal ``(d,)``) is a plain kernel evaluated in feature space: with the
symmetric square root ``S = M^{1/2}`` and ``x~ = S x``,

.. math::

    \\|x - z\\|_M^2 = (x - z)^T M (x - z) = \\|\\tilde x - \\tilde z\\|^2,
    \\qquad x^T M z = \\tilde x^T \\tilde z .

So each kernel below is written once, for ``M = I``, on feature-space rows;
:func:`feature_map` and :func:`to_features` do the mapping, and the chain rule
``J = J~ S`` brings a feature-space Jacobian back to input coordinates.

Registry (:data:`KERNELS`): one entry per kernel, each a value function, the
Jacobian of a kernel predictor ``f(x) = sum_j alpha_j K(x, z_j)`` and, where a
cheaper closed form exists, the AGOP itself.

- ``"laplace"``   -- :func:`laplace`, :func:`laplace_jacobian`.
- ``"gaussian"``  -- :func:`gaussian`, :func:`gaussian_jacobian`.
- ``"quadratic"`` -- :func:`quadratic`, :func:`quadratic_jacobian`, :func:`quadratic_agop`.

Entry points used by the estimators and the tests: :func:`kernel_matrix` (a full
kernel matrix built in row blocks), :func:`kernel_predict` (``K(X, Z) alpha`` in
row blocks), :func:`predictor_jacobian` (Jacobians in input coordinates) and
:func:`agop` (the average gradient outer product).

All functions take and return float64 torch tensors on any device.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

__all__ = [
    "KERNELS",
    "Kernel",
    "agop",
    "feature_map",
    "gaussian",
    "gaussian_jacobian",
    "get_kernel",
    "kernel_matrix",
    "kernel_predict",
    "laplace",
    "laplace_jacobian",
    "predictor_jacobian",
    "quadratic",
    "quadratic_agop",
    "quadratic_jacobian",
    "sq_distances",
    "to_features",
]

# Temporary elements per block (32 MiB of float64): kernel rows, Jacobian blocks.
BLOCK_ELEMENTS = 1 << 22

_EPS = float(np.finfo(np.float64).eps)


def sq_distances(X: torch.Tensor, Z: torch.Tensor) -> torch.Tensor:
    """Squared Euclidean distances ``D[i, j] = ||x_i - z_j||^2``, shape ``(s, n)``.

    Computed as ``|x|^2 + |z|^2 - 2 x.z`` after subtracting the mean of ``Z`` from
    both sets, so that an offset shared by the data does not cost precision.

    Notes
    -----
    The expansion leaves a rounding error of up to about ``d eps (|x|^2 + |z|^2)``
    where the true distance is 0. Values below ``4 d eps (|x|^2 + |z|^2)`` are set
    to exactly 0 and negative values cannot occur: a sample compared with itself
    (or a duplicate) then has distance 0, which the Laplace gradient needs to
    recognise the ``x = z`` term.
    """
    mu = Z.mean(dim=0)
    X = X - mu
    Z = Z - mu
    xx = (X * X).sum(dim=1)
    zz = (Z * Z).sum(dim=1)
    D = X @ Z.T
    D.mul_(-2.0).add_(xx[:, None]).add_(zz[None, :])
    tol = 4.0 * X.shape[1] * _EPS
    D.masked_fill_(D <= tol * (xx[:, None] + zz[None, :]), 0.0)
    return D


# ---------------------------------------------------------------------------- kernels
def laplace(X: torch.Tensor, Z: torch.Tensor, bandwidth: float) -> torch.Tensor:
    """Laplace kernel ``K(x, z) = exp(-||x - z|| / L)``, shape ``(s, n)``."""
    D = sq_distances(X, Z)
    return D.sqrt_().mul_(-1.0 / bandwidth).exp_()


def laplace_jacobian(X, Z, alpha, bandwidth):
    """Jacobian of ``f(x) = sum_j alpha_j exp(-||x - z_j|| / L)`` at the rows of ``X``.

    .. math::

        \\nabla_x K(x, z) = \\frac{K(x, z)}{L \\|x - z\\|} (z - x),

    with the ``x = z`` term taken as 0 (the kernel has a cusp there; 0 is the
    mean of its one-sided derivatives). Shapes: ``X (s, d)``, ``Z (n, d)``,
    ``alpha (n, c)``; returns ``(s, c, d)``.
    """
    r = sq_distances(X, Z).sqrt_()
    K = torch.exp(-r / bandwidth)
    W = torch.where(r > 0, K / (bandwidth * torch.where(r > 0, r, 1.0)), 0.0)
    return _radial_jacobian(W, X, Z, alpha)


def gaussian(X: torch.Tensor, Z: torch.Tensor, bandwidth: float) -> torch.Tensor:
    """Gaussian kernel ``K(x, z) = exp(-||x - z||^2 / (2 L^2))``, shape ``(s, n)``."""
    return sq_distances(X, Z).mul_(-0.5 / bandwidth**2).exp_()


def gaussian_jacobian(X, Z, alpha, bandwidth):
    """Jacobian of ``f(x) = sum_j alpha_j exp(-||x - z_j||^2 / (2 L^2))``, ``(s, c, d)``.

    .. math::

        \\nabla_x K(x, z) = \\frac{K(x, z)}{L^2} (z - x).
    """
    W = gaussian(X, Z, bandwidth).div_(bandwidth**2)
    return _radial_jacobian(W, X, Z, alpha)


def quadratic(X: torch.Tensor, Z: torch.Tensor, bandwidth: float) -> torch.Tensor:
    """Quadratic kernel ``K(x, z) = (x^T z)^2``, shape ``(s, n)``; ``bandwidth`` is unused."""
    return (X @ Z.T).square_()


def quadratic_jacobian(X, Z, alpha, bandwidth):
    """Jacobian of ``f(x) = sum_j alpha_j (x^T z_j)^2``, ``(s, c, d)``.

    .. math::

        J_{k\\cdot}(x) = 2 \\sum_j \\alpha_{jk} (x^T z_j) z_j^T = 2 x^T B_k,
        \\qquad B_k = \\sum_j \\alpha_{jk} z_j z_j^T .

    Formed through the ``(s, n)`` matrix of ``2 x^T z_j`` (cost ``s n c d``); the
    AGOP uses :func:`quadratic_agop` instead.
    """
    return _weighted_sum(2.0 * (X @ Z.T), Z, alpha)


def quadratic_agop(X, Z, alpha, bandwidth, *, centering=False, diag=False):
    """Feature-space AGOP of ``f(x) = sum_j alpha_j (x^T z_j)^2`` in closed form.

    With ``B_k = Z^T diag(alpha_k) Z`` the Jacobian is linear in ``x``
    (``J_k(x) = 2 x^T B_k``), so

    .. math::

        \\frac{1}{s} \\sum_i J(x_i)^T J(x_i) = 4 \\sum_k B_k C B_k,
        \\qquad C = \\frac{1}{s} \\sum_i x_i x_i^T ,

    and centring the gradients replaces ``C`` by the covariance of the rows of
    ``X``. Cost ``c (n d^2 + 2 d^3)`` instead of ``s n c d``; no per-sample
    Jacobian is formed. Returns ``(d, d)``, or its diagonal ``(d,)`` when ``diag``.
    """
    s = X.shape[0]
    C = X.T @ X / s
    if centering:
        mean = X.mean(dim=0)
        C = C - torch.outer(mean, mean)
    G = torch.zeros((X.shape[1], X.shape[1]), dtype=X.dtype, device=X.device)
    for k in range(alpha.shape[1]):
        B = Z.T @ (alpha[:, k:k + 1] * Z)
        G += B @ C @ B
    G *= 4.0
    return torch.diagonal(G).clone() if diag else G


def _weighted_sum(W, Z, alpha):
    """``T[i, k, :] = sum_j W[i, j] alpha[j, k] z_j``, ``(s, c, d)``, in class chunks.

    One matrix product per chunk with the ``(n, chunk * d)`` matrix of rows
    ``alpha_j[chunk] (x) z_j``, whose size stays under :data:`BLOCK_ELEMENTS`.
    """
    (s, n), (c, d) = W.shape, (alpha.shape[1], Z.shape[1])
    out = torch.empty((s, c, d), dtype=W.dtype, device=W.device)
    step = max(1, min(c, BLOCK_ELEMENTS // max(1, n * d)))
    for k0 in range(0, c, step):
        k1 = min(c, k0 + step)
        AZ = (alpha[:, k0:k1, None] * Z[:, None, :]).reshape(n, (k1 - k0) * d)
        out[:, k0:k1, :] = (W @ AZ).reshape(s, k1 - k0, d)
    return out


def _radial_jacobian(W, X, Z, alpha):
    """Jacobian of ``sum_j alpha_j K(x, z_j)`` for ``grad_x K(x, z_j) = W[i, j] (z_j - x)``.

    ``J[i, k, :] = sum_j W[i, j] alpha[j, k] z_j - (W alpha)[i, k] x_i``.
    """
    J = _weighted_sum(W, Z, alpha)
    J -= (W @ alpha)[:, :, None] * X[:, None, :]
    return J


@dataclass(frozen=True)
class Kernel:
    """One registry entry: the kernel, the Jacobian of its predictors, the AGOP.

    Attributes
    ----------
    value : callable
        ``value(X, Z, bandwidth) -> (s, n)`` kernel matrix on feature-space rows.
    jacobian : callable
        ``jacobian(X, Z, alpha, bandwidth) -> (s, c, d)``: Jacobian of
        ``f(x) = sum_j alpha_j K(x, z_j)`` with respect to feature-space ``x``.
    agop : callable or None
        ``agop(X, Z, alpha, bandwidth, centering=, diag=) -> (d, d) or (d,)``, a
        closed form of the feature-space AGOP; None to accumulate ``J^T J`` over
        blocks of :attr:`jacobian`.
    translation_invariant : bool
        Whether ``K(x + a, z + a) = K(x, z)``; such kernels give zero weight to
        constant input columns.
    """

    value: Callable
    jacobian: Callable
    agop: Callable | None = None
    translation_invariant: bool = True


#: The kernels by name; adding one is a function, its Jacobian and an entry here.
KERNELS: dict[str, Kernel] = {
    "laplace": Kernel(laplace, laplace_jacobian),
    "gaussian": Kernel(gaussian, gaussian_jacobian),
    "quadratic": Kernel(quadratic, quadratic_jacobian, quadratic_agop, translation_invariant=False),
}


def get_kernel(name: str) -> Kernel:
    """The registry entry for ``name``; ValueError naming the known kernels otherwise."""
    try:
        return KERNELS[name]
    except (KeyError, TypeError):
        raise ValueError(f"kernel must be one of {sorted(KERNELS)}, got {name!r}") from None


# ------------------------------------------------------------------- Mahalanobis map
def feature_map(M: torch.Tensor) -> torch.Tensor:
    """Symmetric square root ``S = M^{1/2}``: ``(d, d)``, or ``(d,)`` for a diagonal ``M``.

    Negative eigenvalues (rounding of a PSD matrix) are set to 0.
    """
    if M.ndim == 1:
        return M.clamp(min=0.0).sqrt()
    w, V = torch.linalg.eigh((M + M.T) / 2)
    return (V * w.clamp(min=0.0).sqrt()) @ V.T


def to_features(X: torch.Tensor, S: torch.Tensor) -> torch.Tensor:
    """Rows of ``X`` in feature space, ``X S`` (``X * S`` for a diagonal map)."""
    return X * S if S.ndim == 1 else X @ S


def kernel_matrix(kernel: Kernel, X: torch.Tensor, Z: torch.Tensor, bandwidth: float) -> torch.Tensor:
    """``K(X, Z)`` on feature-space rows, ``(s, n)``, built in row blocks.

    Temporary memory stays at about :data:`BLOCK_ELEMENTS` elements beyond the result.
    """
    s, n = X.shape[0], Z.shape[0]
    if s * n <= BLOCK_ELEMENTS:
        return kernel.value(X, Z, bandwidth)
    out = torch.empty((s, n), dtype=X.dtype, device=X.device)
    step = max(1, BLOCK_ELEMENTS // max(1, n))
    for i0 in range(0, s, step):
        out[i0:i0 + step] = kernel.value(X[i0:i0 + step], Z, bandwidth)
    return out


def predictor_jacobian(kernel: Kernel, X, centers, alpha, M, bandwidth) -> torch.Tensor:
    """Jacobian ``(s, c, d)`` of ``f(x) = sum_j alpha_j K_M(x, z_j)`` in input coordinates.

    ``X (s, d)`` evaluation points, ``centers (n, d)``, ``alpha (n, c)``, ``M``
    ``(d, d)`` or ``(d,)``. ``J = J~ S`` with ``J~`` the feature-space Jacobian.
    """
    S = feature_map(M)
    Jf = kernel.jacobian(to_features(X, S), to_features(centers, S), alpha, bandwidth)
    return Jf * S if S.ndim == 1 else Jf @ S


def agop(kernel: Kernel, X, centers, alpha, M, bandwidth, *, centering=False) -> torch.Tensor:
    """Average gradient outer product of ``f(x) = sum_j alpha_j K_M(x, z_j)`` over rows of ``X``.

    .. math::

        G = \\frac{1}{s} \\sum_{i=1}^{s} (J(x_i) - \\bar J)^T (J(x_i) - \\bar J),
        \\qquad J(x) = \\partial f / \\partial x \\in \\mathbb{R}^{c \\times d},

    with ``J_bar`` the mean Jacobian when ``centering`` and 0 otherwise.

    Parameters
    ----------
    kernel : Kernel
        Registry entry.
    X : tensor, shape (s, d)
        Points at which the gradients are averaged (input coordinates).
    centers : tensor, shape (n, d)
        Kernel centres of the predictor (its training rows).
    alpha : tensor, shape (n, c)
        Dual coefficients.
    M : tensor, shape (d, d) or (d,)
        Mahalanobis matrix of the kernel, or its diagonal.
    bandwidth : float
        ``L`` of the kernel.
    centering : bool
        Subtract the mean Jacobian first (the covariance of the gradients).

    Returns
    -------
    G : tensor, shape (d, d), or (d,) when ``M`` is diagonal (then only the
        diagonal of the AGOP is computed).

    Notes
    -----
    In feature space ``G = S G~ S`` with ``G~`` the AGOP of the feature-space
    Jacobians. Without a closed form (:attr:`Kernel.agop`), Jacobians are formed
    for blocks of rows of ``X`` so that a block and its ``(rows, n)`` kernel stay
    under :data:`BLOCK_ELEMENTS` elements; cost ``s n c d + s c d^2`` (``s n c d``
    for a diagonal ``M``).
    """
    S = feature_map(M)
    diag = S.ndim == 1
    Xf, Zf = to_features(X, S), to_features(centers, S)
    if kernel.agop is not None:
        Gf = kernel.agop(Xf, Zf, alpha, bandwidth, centering=centering, diag=diag)
    else:
        Gf = _accumulated_agop(kernel, Xf, Zf, alpha, bandwidth, centering=centering, diag=diag)
    return S * Gf * S if diag else S @ Gf @ S


def _accumulated_agop(kernel, X, Z, alpha, bandwidth, *, centering, diag):
    """Feature-space AGOP by blocks of per-sample Jacobians (see :func:`agop`)."""
    (s, d), (n, c) = X.shape, alpha.shape
    G = torch.zeros((d,) if diag else (d, d), dtype=X.dtype, device=X.device)
    J_sum = torch.zeros((c, d), dtype=X.dtype, device=X.device)
    step = max(1, BLOCK_ELEMENTS // max(1, n, c * d))
    for i0 in range(0, s, step):
        J = kernel.jacobian(X[i0:i0 + step], Z, alpha, bandwidth)
        J_sum += J.sum(dim=0)
        J = J.reshape(-1, d)
        G += (J * J).sum(dim=0) if diag else J.T @ J
    G /= s
    if centering:
        J_mean = J_sum / s
        G -= (J_mean * J_mean).sum(dim=0) if diag else J_mean.T @ J_mean
    return G


def kernel_predict(kernel: Kernel, X: torch.Tensor, Z: torch.Tensor, alpha: torch.Tensor,
                   bandwidth: float) -> torch.Tensor:
    """``K(X, Z) alpha``, shape ``(s, c)``, on feature-space rows, in row blocks of ``X``."""
    s, n = X.shape[0], Z.shape[0]
    out = torch.empty((s, alpha.shape[1]), dtype=alpha.dtype, device=alpha.device)
    step = max(1, BLOCK_ELEMENTS // max(1, n))
    for i0 in range(0, s, step):
        out[i0:i0 + step] = kernel.value(X[i0:i0 + step], Z, bandwidth) @ alpha
    return out
