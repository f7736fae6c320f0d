r"""The empirical neural tangent kernel of a torch model, and how far two kernels are apart.

For a model ``f(x; θ)`` with ``C`` outputs the empirical NTK between two inputs is

.. math::

    \hat Θ(x, x') = \frac{1}{C} \sum_{c=1}^{C} \sum_p
        \frac{\partial f_c(x)}{\partial θ_p} \frac{\partial f_c(x')}{\partial θ_p},

the mean over outputs of each output's tangent kernel (the normalised trace of the
``C x C`` kernel block). In the infinite-width limit the block is ``Θ(x, x') I_C``
(:func:`~deepmanifold.theory._kernels.ntk`), so this mean is directly comparable with
``Θ``; at finite width it is what the network's kernel "is" at its current weights, and
its motion during training measures feature learning (Fort et al. 2020).

- :func:`empirical_ntk` -- the ``(n, m)`` kernel, by per-sample Jacobians
  (``torch.func.vmap(jacrev)``), in blocks of samples.
- :func:`kernel_distance` -- ``1 - cos`` of the angle between two kernel matrices.

References
----------
Jacot, A., Gabriel, F. & Hongler, C. (2018). Neural tangent kernel. NeurIPS.
Fort, S., Dziugaite, G. K., Paul, M., Kharaghani, S., Roy, D. M. & Ganguli, S. (2020).
Deep learning versus kernel learning: an empirical study of loss landscape geometry and the
time evolution of the neural tangent kernel. NeurIPS.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch.func import functional_call, jacrev, vmap

from ..utils import check_int

__all__ = ["empirical_ntk", "kernel_distance"]

# Jacobian entries (samples x outputs x parameters) held per block: 64 Mi (256 MiB float32).
_JACOBIAN_ELEMENTS = 1 << 26
# Jacobians of the second input set are kept, rather than recomputed per block of the
# first, when all of them fit in this many entries (1 GiB of float32).
_CACHE_ELEMENTS = 1 << 28


def _as_batch(X, name: str, like: torch.Tensor) -> torch.Tensor:
    if not isinstance(X, torch.Tensor):
        X = torch.from_numpy(np.array(X))  # a copy: torch cannot wrap read-only arrays
    X = X.to(device=like.device, dtype=like.dtype)
    if X.ndim < 1 or X.shape[0] < 1:
        raise ValueError(f"{name}: expected a batch of inputs of shape (n, ...) with n >= 1, got {tuple(X.shape)}")
    if not torch.isfinite(X).all():
        raise ValueError(f"{name} contains NaN or inf")
    return X


def _jacobian_fn(model: torch.nn.Module, params: dict, buffers: dict):
    """Per-sample Jacobians: a batch ``(b, ...)`` -> ``(b, C, P)`` with every parameter flattened."""

    def output(p, x):
        return functional_call(model, (p, buffers), (x.unsqueeze(0),)).reshape(-1)

    per_sample = vmap(jacrev(output), in_dims=(None, 0))

    def jacobian(x: torch.Tensor) -> torch.Tensor:
        jac = per_sample(params, x)  # name -> (b, C, *shape)
        return torch.cat([j.reshape(j.shape[0], j.shape[1], -1) for j in jac.values()], dim=2)

    return jacobian


def empirical_ntk(model: torch.nn.Module, X, Y=None, *, batch_size: int | None = None) -> np.ndarray:
    r"""The empirical NTK of ``model``, averaged over its outputs, between two input sets.

    .. math::

        \hat Θ(x_i, y_j) = \frac{1}{C} \sum_{c=1}^{C} \big\langle \nabla_θ f_c(x_i),
        \nabla_θ f_c(y_j) \big\rangle ,

    with ``θ`` every parameter that requires a gradient, in the parameterisation the model
    uses (for a layer written ``(σ_w/sqrt(fan_in)) W x`` with ``W ~ N(0, 1)``, the NTK
    parameterisation, this tends to :func:`~deepmanifold.theory._kernels.ntk` as the width
    grows; for PyTorch's default ``nn.Linear`` the gradient with respect to ``W`` is not
    rescaled and the kernel grows with the width).

    Parameters
    ----------
    model : torch.nn.Module
        Any model mapping a batch ``(b, ...)`` to outputs ``(b,)`` or ``(b, C, ...)``
        (flattened to ``C``). Evaluated in eval mode (dropout off, batch norm on its running
        statistics, so that each sample's output is its own); the modules' training flags
        are restored afterwards.
    X : array_like or torch.Tensor, shape (n, ...)
        Inputs, cast to the dtype and device of the model's parameters.
    Y : array_like or torch.Tensor, shape (m, ...), optional
        Second input set; ``None`` means ``X`` (the result is then exactly symmetric).
    batch_size : int, optional
        Samples per Jacobian block; default: as many as keep a block's ``b x C x P``
        entries under 64 Mi (256 MiB in float32).

    Returns
    -------
    ndarray, shape (n, m), float64

    Raises
    ------
    ValueError
        A model without trainable parameters, empty or non-finite inputs, bad
        ``batch_size``.

    Notes
    -----
    Per-sample Jacobians ``(b, C, P)`` by ``torch.func.vmap(jacrev)`` (one backward pass per
    output and sample), contracted block by block: ``O((n + m) C)`` backward passes and
    ``O(n m C P)`` flops. The Jacobians of ``Y`` are kept when they fit in 1 GiB (float32)
    and recomputed for each block of ``X`` otherwise; with ``Y = None`` only blocks on or
    above the diagonal are contracted. The contraction runs in the parameters' dtype
    (float32 sums over ``P`` parameters carry a relative rounding error of order
    ``1e-7 sqrt(P)``); the result is float64.

    References
    ----------
    Jacot, Gabriel & Hongler (2018); Lee et al. (2019), Wide neural networks of any depth
    evolve as linear models under gradient descent, NeurIPS.
    """
    named = [(k, v) for k, v in model.named_parameters() if v.requires_grad]
    if not named:
        raise ValueError("model has no parameters that require a gradient: its NTK is 0")
    params = {k: v.detach() for k, v in named}
    buffers = {k: v.detach() for k, v in model.named_buffers()}
    like = named[0][1]
    X = _as_batch(X, "X", like)
    symmetric = Y is None
    Y = X if symmetric else _as_batch(Y, "Y", like)
    n_params = sum(v.numel() for v in params.values())

    flags = {module: module.training for module in model.modules()}
    model.eval()
    try:
        jacobian = _jacobian_fn(model, params, buffers)
        n_outputs = jacobian(X[:1]).shape[1]
        per_sample = n_outputs * n_params
        if batch_size is None:
            batch_size = max(1, _JACOBIAN_ELEMENTS // per_sample)
        batch_size = check_int(batch_size, "batch_size", low=1)
        return _contract(jacobian, X, Y, symmetric, batch_size, n_outputs,
                         cache=Y.shape[0] * per_sample <= _CACHE_ELEMENTS)
    finally:
        for module, training in flags.items():
            module.training = training


def _contract(jacobian, X, Y, symmetric: bool, batch_size: int, n_outputs: int, *, cache: bool) -> np.ndarray:
    """Fill ``K[i, j] = <J(x_i), J(y_j)> / C`` block by block (upper blocks only when symmetric)."""
    n, m = X.shape[0], Y.shape[0]
    K = np.empty((n, m))
    starts_y = list(range(0, m, batch_size))
    kept: dict[int, torch.Tensor] = {}

    def jac_y(s: int) -> torch.Tensor:
        if s in kept:
            return kept[s]
        J = jacobian(Y[s:s + batch_size]).flatten(1)  # (b, C P)
        if cache:
            kept[s] = J
        return J

    with torch.no_grad():
        for sx in range(0, n, batch_size):
            # With Y = X a block of X is a block of Y: kept once computed.
            if symmetric:
                Jx = jac_y(sx)
                kept.pop(sx, None)  # later blocks of X read only blocks sy > sx
            else:
                Jx = jacobian(X[sx:sx + batch_size]).flatten(1)
            ex = min(n, sx + batch_size)
            for sy in starts_y:
                if symmetric and sy < sx:
                    continue
                Jy = Jx if symmetric and sy == sx else jac_y(sy)
                block = (Jx @ Jy.T).double().cpu().numpy() / n_outputs
                ey = min(m, sy + batch_size)
                if symmetric and sy == sx:
                    block = (block + block.T) / 2
                K[sx:ex, sy:ey] = block
                if symmetric and sy > sx:
                    K[sy:ey, sx:ex] = block.T
    return K


def kernel_distance(K0, K1) -> float:
    r"""Kernel distance ``1 - <K0, K1>_F / (||K0||_F ||K1||_F)`` (Fort et al. 2020).

    .. math::

        S(K_0, K_1) = 1 - \frac{\operatorname{tr}(K_0^T K_1)}{\|K_0\|_F\, \|K_1\|_F}
        \in [0, 2],

    ``0`` for kernels equal up to a positive factor (``[0, 1]`` for entrywise non-negative
    or positive semi-definite kernels). Blind to the kernel's scale, it measures how much
    the kernel's shape has moved, e.g. the empirical NTK between two checkpoints.

    Parameters
    ----------
    K0, K1 : array_like, shape (n, m)
        Kernel matrices of the same shape.

    Returns
    -------
    float

    Raises
    ------
    ValueError
        Shapes that differ, NaN or inf, or a kernel that is identically 0.

    References
    ----------
    Fort et al. (2020), Deep learning versus kernel learning, NeurIPS, eq. 4.
    """
    K0 = np.asarray(K0, dtype=np.float64)
    K1 = np.asarray(K1, dtype=np.float64)
    if K0.shape != K1.shape or K0.ndim != 2:
        raise ValueError(f"K0 and K1 must be 2-D kernel matrices of the same shape, got {K0.shape} and {K1.shape}")
    if not (np.isfinite(K0).all() and np.isfinite(K1).all()):
        raise ValueError("K0 and K1 must be finite")
    # Scaled by the largest entry so that the norms neither overflow nor underflow.
    s0, s1 = float(np.abs(K0).max()), float(np.abs(K1).max())
    if s0 == 0 or s1 == 0:
        raise ValueError("kernel_distance is undefined for a kernel that is identically 0")
    A, B = K0 / s0, K1 / s1
    cos = float(np.vdot(A, B)) / (math.sqrt(float(np.vdot(A, A))) * math.sqrt(float(np.vdot(B, B))))
    return 1.0 - min(max(cos, -1.0), 1.0)
