r"""Infinite-width kernels of deep fully connected networks, and kernel regression with them.

A fully connected network of ``depth`` affine layers in the NTK parameterisation,

.. math::

    h^1(x) = \frac{\sigma_w}{\sqrt{d}} W^1 x + \sigma_b b^1, \qquad
    h^{l+1}(x) = \frac{\sigma_w}{\sqrt{n_l}} W^{l+1} \phi(h^l(x)) + \sigma_b b^{l+1},

with every entry of ``W^l`` and ``b^l`` drawn from ``N(0, 1)`` and ``f(x) = h^{depth}(x)``,
becomes, as the hidden widths ``n_l`` grow, a Gaussian process with covariance ``Σ`` (the
NNGP kernel; Neal 1996, Lee et al. 2018) whose training by gradient flow is governed by the
deterministic, constant neural tangent kernel ``Θ`` (Jacot, Gabriel & Hongler 2018):

.. math::

    Σ^1(x, x') = Θ^1(x, x') = σ_w^2\, x \cdot x' / d + σ_b^2,

    Σ^{l+1} = σ_w^2\, E[\phi(u)\phi(v)] + σ_b^2, \qquad
    Θ^{l+1} = Σ^{l+1} + σ_w^2\, E[\phi'(u)\phi'(v)]\, Θ^l,

    (u, v) \sim N\left(0, \begin{pmatrix} Σ^l(x, x) & Σ^l(x, x') \\
                                          Σ^l(x, x') & Σ^l(x', x') \end{pmatrix}\right).

The kernels are those of each output of the network (all ``C`` outputs share them and are
independent of each other in the limit).

Activations (registry :data:`ACTIVATIONS`; adding one is one :class:`Activation` entry):

- ``"relu"`` -- the arc-cosine kernels of Cho & Saul (2009): with
  ``cos θ = Σ12 / sqrt(Σ11 Σ22)``,
  ``E[φ(u)φ(v)] = sqrt(Σ11 Σ22) (sin θ + (π - θ) cos θ) / 2π`` and
  ``E[φ'(u)φ'(v)] = (π - θ) / 2π``.
- ``"erf"`` -- Williams (1997):
  ``E[φ(u)φ(v)] = (2/π) arcsin(2Σ12 / sqrt((1 + 2Σ11)(1 + 2Σ22)))`` and
  ``E[φ'(u)φ'(v)] = (4/π) / sqrt((1 + 2Σ11)(1 + 2Σ22) - 4Σ12²)``.

Entry points:

- :func:`nngp`, :func:`ntk` -- one kernel matrix; :func:`nngp_and_ntk` -- both at the
  cost of one (:class:`NeuralKernels`).
- :func:`gaussian_expectations` -- the two expectations above, in closed form or by 2-D
  Gauss–Hermite quadrature (the plain reference the closed forms are tested against).
- :func:`kernel_regression` -- kernel (ridge) regression, by Cholesky.
- :func:`check_inputs`, :func:`check_kernel_matrix`, :func:`check_targets` -- the input
  checks shared with :mod:`deepmanifold.theory._linearized`.

References
----------
Cho, Y. & Saul, L. K. (2009). Kernel methods for deep learning. NeurIPS.
Williams, C. K. I. (1997). Computing with infinite networks. NeurIPS.
Jacot, A., Gabriel, F. & Hongler, C. (2018). Neural tangent kernel: convergence and
generalization in neural networks. NeurIPS.
Lee, J., Bahri, Y., Novak, R., Schoenholz, S. S., Pennington, J. & Sohl-Dickstein, J.
(2018). Deep neural networks as Gaussian processes. ICLR.
Lee, J., Xiao, L., Schoenholz, S. S., Bahri, Y., Novak, R., Sohl-Dickstein, J. &
Pennington, J. (2019). Wide neural networks of any depth evolve as linear models under
gradient descent. NeurIPS.
Arora, S., Du, S. S., Hu, W., Li, Z., Salakhutdinov, R. & Wang, R. (2019). On exact
computation with an infinitely wide neural net. NeurIPS.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Callable

import numpy as np
import scipy.linalg
from scipy.special import erf as _erf

from ..utils import check_int

__all__ = [
    "ACTIVATIONS",
    "Activation",
    "NeuralKernels",
    "check_inputs",
    "check_kernel_matrix",
    "check_targets",
    "gaussian_expectations",
    "kernel_regression",
    "nngp",
    "nngp_and_ntk",
    "ntk",
]

# Elements of one row block of a kernel matrix (16 MiB of float64): the recursion keeps
# about ten temporaries of this size, whatever the number of samples.
_BLOCK_ELEMENTS = 1 << 21
# Relative asymmetry |K - Kᵀ| / max|K| tolerated in a kernel matrix: above float32 rounding.
_SYMMETRY_RTOL = 1e-5
_TWO_PI = 2.0 * math.pi


# ---------------------------------------------------------------------------- activations
@dataclass(frozen=True)
class Activation:
    """One activation function of the registry.

    Attributes
    ----------
    name : str
        Registry key.
    phi, dphi : callable
        The function and its derivative, elementwise on float64 arrays (used by the
        quadrature reference only).
    smooth : bool
        Whether ``φ`` and ``φ'`` are smooth everywhere (the quadrature reference is then a
        Gauss–Hermite rule); otherwise they may have a kink or jump at 0 and nowhere else
        (a polar rule split at the kinks).
    expectations : callable
        ``(s11, s22, s12, derivative) -> (E[φ(u)φ(v)], E[φ'(u)φ'(v)] or None)`` in closed
        form, for broadcastable arrays of variances ``s11``, ``s22`` and covariance ``s12``;
        the second item only when ``derivative`` is true.
    reference : str
        Where the closed form comes from.
    """

    name: str
    phi: Callable[[np.ndarray], np.ndarray]
    dphi: Callable[[np.ndarray], np.ndarray]
    smooth: bool
    expectations: Callable
    reference: str


def _relu_expectations(s11, s22, s12, derivative: bool):
    """Arc-cosine kernels of degree 1 (``E[φφ]``) and 0 (``E[φ'φ']``); Cho & Saul 2009.

    ``cos θ`` is clipped to ``[-1, 1]`` against rounding. Where a variance is 0 the unit is
    identically 0, so both expectations are 0 (``relu'(0) = 0``, as in torch).
    """
    norm = np.sqrt(s11 * s22)
    positive = norm > 0
    cos = np.divide(s12, norm, out=np.zeros(np.broadcast(s12, norm).shape), where=positive)
    np.clip(cos, -1.0, 1.0, out=cos)
    theta_c = np.arccos(cos)
    np.subtract(math.pi, theta_c, out=theta_c)  # π - θ
    sin = np.multiply(cos, cos)
    np.subtract(1.0, sin, out=sin)
    np.sqrt(sin, out=sin)
    e = np.multiply(theta_c, cos, out=cos)  # (π - θ) cos θ
    e += sin
    e *= norm
    e /= _TWO_PI
    if not derivative:
        return e, None
    theta_c /= _TWO_PI
    theta_c[~np.broadcast_to(positive, theta_c.shape)] = 0.0
    return e, theta_c


def _erf_expectations(s11, s22, s12, derivative: bool):
    """Williams' (1997) arcsine kernel and the expectation of ``erf'(u) erf'(v)``.

    The arcsine's argument is clipped to ``[-1, 1]``, and ``(1+2Σ11)(1+2Σ22) - 4Σ12²`` kept at
    least ``1 + 2Σ11 + 2Σ22``, its value at ``Σ12² = Σ11 Σ22``, against rounding.
    """
    a = 1.0 + 2.0 * s11
    b = 1.0 + 2.0 * s22
    ab = a * b
    arg = np.multiply(s12, 2.0)
    arg /= np.sqrt(ab)
    np.clip(arg, -1.0, 1.0, out=arg)
    e = np.arcsin(arg, out=arg)
    e *= 2.0 / math.pi
    if not derivative:
        return e, None
    det = np.multiply(s12, s12)
    det *= -4.0
    det += ab
    np.maximum(det, a + b - 1.0, out=det)
    np.sqrt(det, out=det)
    ed = np.divide(4.0 / math.pi, det, out=det)
    return e, ed


ACTIVATIONS: dict[str, Activation] = {
    "relu": Activation(
        "relu", lambda u: np.maximum(u, 0.0), lambda u: (u > 0).astype(np.float64), False,
        _relu_expectations, "Cho & Saul (2009), arc-cosine kernels of degree 1 and 0"),
    "erf": Activation(
        "erf", _erf, lambda u: (2.0 / math.sqrt(math.pi)) * np.exp(-u * u), True,
        _erf_expectations, "Williams (1997)"),
}


def _activation(activation) -> Activation:
    if not isinstance(activation, str) or activation not in ACTIVATIONS:
        supported = ", ".join(repr(k) for k in sorted(ACTIVATIONS))
        raise ValueError(f"activation must be one of {supported}, got {activation!r}")
    return ACTIVATIONS[activation]


# ---------------------------------------------------------------------------- validators
def _finite_number(value, name: str, *, low: float, strict: bool) -> float:
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or (value <= low if strict else value < low):
        raise ValueError(f"{name} must be a finite number {'>' if strict else '>='} {low:g}, got {value!r}")
    return float(value)


def _check_hyperparameters(depth, sigma_w2, sigma_b2) -> tuple[int, float, float]:
    depth = check_int(depth, "depth (the number of affine layers)", low=1)
    return (depth, _finite_number(sigma_w2, "sigma_w2", low=0.0, strict=True),
            _finite_number(sigma_b2, "sigma_b2", low=0.0, strict=False))


def check_inputs(X, name: str = "X", *, n_features: int | None = None) -> np.ndarray:
    """Validate network inputs: ``(n, d)`` float64 with ``n, d >= 1``, rows flattened.

    Parameters
    ----------
    X : array_like, shape (n, d) or (n, ...)
        Inputs; any trailing axes (images) are flattened into ``d``.
    name : str, default "X"
        Argument name used in error messages.
    n_features : int, optional
        Required ``d`` (that of the other input set).

    Returns
    -------
    ndarray, shape (n, d), float64

    Raises
    ------
    ValueError
        Fewer than 1 dimension, an empty axis, non-finite entries, or ``d != n_features``.
    """
    X = np.asarray(X, dtype=np.float64)
    if X.ndim < 1 or X.shape[0] < 1:
        raise ValueError(f"{name}: expected shape (n, d) or (n, ...) with n >= 1, got shape {X.shape}")
    X = X.reshape(X.shape[0], -1)
    if X.shape[1] < 1:
        raise ValueError(f"{name}: every sample needs at least one feature, got shape {X.shape}")
    if n_features is not None and X.shape[1] != n_features:
        raise ValueError(f"{name} has {X.shape[1]} features per sample but X has {n_features}")
    if not np.isfinite(X).all():
        raise ValueError(f"{name} contains NaN or inf")
    return X


def check_kernel_matrix(K, name: str, *, shape: tuple | None = None, symmetric: bool = False) -> np.ndarray:
    """Validate a finite float64 kernel matrix.

    Parameters
    ----------
    K : array_like, shape (n, m)
    name : str
        Argument name used in error messages.
    shape : tuple, optional
        Required shape; an entry ``None`` leaves that axis free.
    symmetric : bool, default False
        Require a square matrix with ``|K - Kᵀ| <= 1e-5 max|K|`` (checked in row blocks).

    Returns
    -------
    ndarray, shape (n, m), float64

    Raises
    ------
    ValueError
        Not 2-D, an empty axis, a shape other than ``shape``, NaN or inf, or asymmetry.
    """
    K = np.asarray(K, dtype=np.float64)
    if K.ndim != 2 or 0 in K.shape:
        raise ValueError(f"{name}: expected a non-empty 2-D kernel matrix, got shape {K.shape}")
    if shape is not None and any(s is not None and s != k for s, k in zip(shape, K.shape)):
        expected = "(" + ", ".join("*" if s is None else str(s) for s in shape) + ")"
        raise ValueError(f"{name}: expected shape {expected}, got shape {K.shape}")
    if not np.isfinite(K).all():
        raise ValueError(f"{name} contains NaN or inf")
    if symmetric:
        n = K.shape[0]
        if K.shape[1] != n:
            raise ValueError(f"{name}: expected a square kernel matrix, got shape {K.shape}")
        tol = _SYMMETRY_RTOL * float(np.abs(K).max())
        rows = max(1, _BLOCK_ELEMENTS // n)
        for s in range(0, n, rows):
            gap = np.abs(K[s:s + rows] - K[:, s:s + rows].T)
            if gap.max() > tol:
                i, j = np.unravel_index(int(np.argmax(gap)), gap.shape)
                raise ValueError(f"{name} is not symmetric: |K[{s + i}, {j}] - K[{j}, {s + i}]| = "
                                 f"{gap[i, j]:.3g} > {tol:.3g} (1e-5 max|K|)")
    return K


def check_targets(y, n: int, name: str = "y") -> np.ndarray:
    """Validate regression targets: ``(n,)`` or ``(n, C)``, finite; returned as float64."""
    y = np.asarray(y, dtype=np.float64)
    if y.ndim not in (1, 2) or y.shape[0] != n or 0 in y.shape:
        raise ValueError(f"{name}: expected shape ({n},) or ({n}, C) with C >= 1, got shape {y.shape}")
    if not np.isfinite(y).all():
        raise ValueError(f"{name} contains NaN or inf")
    return y


# ---------------------------------------------------------------------------- expectations
def gaussian_expectations(s11, s22, s12, activation: str, *, method: str = "closed", order: int = 128):
    r"""``E[φ(u)φ(v)]`` and ``E[φ'(u)φ'(v)]`` for a centred Gaussian pair ``(u, v)``.

    .. math::

        (u, v) \sim N\left(0, \begin{pmatrix} s_{11} & s_{12} \\ s_{12} & s_{22}\end{pmatrix}\right).

    Parameters
    ----------
    s11, s22 : array_like of float
        Variances, ``>= 0``; broadcast against each other and ``s12``.
    s12 : array_like of float
        Covariance; clipped to ``[-sqrt(s11 s22), sqrt(s11 s22)]``.
    activation : {"relu", "erf"}
    method : {"closed", "quadrature"}, default "closed"
        ``"closed"``: the activation's closed form (module docstring). ``"quadrature"``: a
        plain numerical reference that uses only ``φ`` and ``φ'``, on
        ``u = sqrt(s11) z1``, ``v = ρ sqrt(s22) z1 + sqrt(s22 (1 - ρ²)) z2`` with
        ``z ~ N(0, I_2)``, ``O(order²)`` evaluations per pair. A smooth activation (erf)
        gets the tensor-product Gauss–Hermite rule, accurate to 1e-12 at ``order = 128``.
        A tensor Gauss–Hermite rule converges only algebraically across a kink (1e-2 for
        ``E[relu'(u) relu'(v)]`` at 256 nodes per axis), so an activation with a kink or jump
        at 0 (ReLU) gets a polar rule instead: Gauss–Laguerre in ``r²/2`` and Gauss–Legendre
        on each arc of the angle between the lines ``u = 0`` and ``v = 0``.
    order : int, default 128
        Nodes per axis (``"quadrature"`` only).

    Returns
    -------
    (e, ed) : tuple of ndarray, float64
        ``E[φ(u)φ(v)]`` and ``E[φ'(u)φ'(v)]``, of the broadcast shape.

    Raises
    ------
    ValueError
        Unknown activation or method, a negative or non-finite variance, bad ``order``.

    References
    ----------
    Cho & Saul (2009); Williams (1997).
    """
    act = _activation(activation)
    s11, s22, s12 = (np.asarray(a, dtype=np.float64) for a in (s11, s22, s12))
    for a, name in ((s11, "s11"), (s22, "s22"), (s12, "s12")):
        if not np.isfinite(a).all():
            raise ValueError(f"{name} contains NaN or inf")
    if (s11 < 0).any() or (s22 < 0).any():
        raise ValueError("the variances s11 and s22 must be >= 0")
    shape = np.broadcast_shapes(s11.shape, s22.shape, s12.shape)
    # Flat 1-D arrays: ufuncs on 0-d arrays return scalars, which `out=` cannot take.
    s11, s22, s12 = (np.broadcast_to(a, shape).reshape(-1) for a in (s11, s22, s12))
    bound = np.sqrt(s11 * s22)
    s12 = np.clip(s12, -bound, bound)
    if method == "closed":
        e, ed = act.expectations(s11, s22, s12, True)
        return e.reshape(shape), ed.reshape(shape)
    if method != "quadrature":
        raise ValueError(f"method must be 'closed' or 'quadrature', got {method!r}")
    order = check_int(order, "order", low=2)
    sd1, sd2 = np.sqrt(s11), np.sqrt(s22)
    rho = np.clip(np.divide(s12, bound, out=np.zeros(s12.shape), where=bound > 0), -1.0, 1.0)
    # u = a1 z1, v = b1 z1 + b2 z2 with z ~ N(0, I).
    a1, b1, b2 = sd1, rho * sd2, np.sqrt(1.0 - rho**2) * sd2
    rule = _hermite_rule if act.smooth else _polar_rule
    z1, z2, w = rule(rho, order)  # each (pairs, q)
    u = a1[:, None] * z1
    v = b1[:, None] * z1 + b2[:, None] * z2
    return (np.sum(w * act.phi(u) * act.phi(v), axis=-1).reshape(shape),
            np.sum(w * act.dphi(u) * act.dphi(v), axis=-1).reshape(shape))


def _hermite_rule(rho, order):
    """Tensor-product Gauss–Hermite nodes and weights for ``E[g(z)]``, ``z ~ N(0, I_2)``."""
    z, w = np.polynomial.hermite_e.hermegauss(order)
    w = w / math.sqrt(_TWO_PI)  # probabilists' weights summing to 1
    shape = rho.shape + (order * order,)
    return (np.broadcast_to(np.repeat(z, order), shape), np.broadcast_to(np.tile(z, order), shape),
            np.broadcast_to(np.outer(w, w).ravel(), shape))


def _polar_rule(rho, order):
    """Nodes and weights for ``E[g(z)]``, ``z ~ N(0, I_2)``, with ``g`` smooth off the lines
    ``z1 = 0`` and ``ρ z1 + sqrt(1 - ρ²) z2 = 0`` (where ``u`` or ``v`` vanishes).

    In polar coordinates ``E[g] = (1/2π) ∫ dα ∫_0^∞ g(sqrt(2s) (cos α, sin α)) e^{-s} ds``:
    Gauss–Laguerre in ``s`` and Gauss–Legendre on each arc of ``α`` between the lines'
    angles, so that no rule straddles a kink or a jump.
    """
    s, ws = np.polynomial.laguerre.laggauss(order)
    x, wx = np.polynomial.legendre.leggauss(order)
    r = np.sqrt(2.0 * s)
    alpha_v = np.arctan2(np.sqrt(1.0 - rho**2), rho) + math.pi / 2  # v = 0 along this angle
    breaks = np.stack(np.broadcast_arrays(
        0.0, math.pi / 2, 3 * math.pi / 2, np.mod(alpha_v, _TWO_PI), np.mod(alpha_v + math.pi, _TWO_PI),
        _TWO_PI), axis=-1)
    breaks.sort(axis=-1)
    lo, hi = breaks[..., :-1, None], breaks[..., 1:, None]  # (..., 5 arcs, 1)
    alpha = (lo + (hi - lo) * (x + 1) / 2).reshape(rho.shape + (-1,))  # (..., 5 q)
    walpha = ((hi - lo) / 2 * wx).reshape(rho.shape + (-1,)) / _TWO_PI
    z1 = (np.cos(alpha)[..., :, None] * r).reshape(rho.shape + (-1,))
    z2 = (np.sin(alpha)[..., :, None] * r).reshape(rho.shape + (-1,))
    w = (walpha[..., :, None] * ws).reshape(rho.shape + (-1,))
    return z1, z2, w


# ---------------------------------------------------------------------------- kernels
@dataclass(frozen=True)
class NeuralKernels:
    """The NNGP and NTK of one network between two input sets.

    Attributes
    ----------
    nngp : ndarray, shape (n, m), float64
        ``Σ^{depth}(x_i, y_j)``: the covariance of the output at initialisation.
    ntk : ndarray, shape (n, m), float64
        ``Θ^{depth}(x_i, y_j)``: the neural tangent kernel.
    depth, activation, sigma_w2, sigma_b2
        The network they describe.
    """

    nngp: np.ndarray
    ntk: np.ndarray
    depth: int
    activation: str
    sigma_w2: float
    sigma_b2: float


def _diagonal_recursion(X, depth, act, sigma_w2, sigma_b2, want_ntk):
    """``Σ^l(x, x)`` for l = 1..depth as rows of ``(depth, n)``, and ``Θ^l(x, x)`` (or None)."""
    q = np.empty((depth, X.shape[0]))
    q[0] = sigma_w2 * np.einsum("ij,ij->i", X, X) / X.shape[1] + sigma_b2
    t = q.copy() if want_ntk else None
    for l in range(depth - 1):
        e, ed = act.expectations(q[l], q[l], q[l], want_ntk)
        q[l + 1] = sigma_w2 * e + sigma_b2
        if want_ntk:
            t[l + 1] = q[l + 1] + sigma_w2 * ed * t[l]
    return q, t


def _block(Xb, Yc, qx, qy, depth, act, sigma_w2, sigma_b2, want_ntk):
    """The recursion on one block: ``Σ^{depth}`` and ``Θ^{depth}`` (or None) of ``Xb`` against ``Yc``.

    ``qx (depth, b)`` and ``qy (depth, m)`` are the blocks' diagonal variances.
    """
    S = Xb @ Yc.T
    S *= sigma_w2 / Xb.shape[1]
    S += sigma_b2
    T = S.copy() if want_ntk else None
    for l in range(depth - 1):
        e, ed = act.expectations(qx[l][:, None], qy[l][None, :], S, want_ntk)
        S = e
        S *= sigma_w2
        S += sigma_b2
        if want_ntk:
            T *= ed
            T *= sigma_w2
            T += S
    return S, T


def _kernels(X, Y, depth, activation, sigma_w2, sigma_b2, *, want_nngp: bool, want_ntk: bool):
    """Validate, then fill the requested ``(n, m)`` kernels in row blocks.

    With ``Y`` None only the blocks on and above the diagonal are computed and mirrored, and
    the diagonal is taken from the scalar recursion, so the result is exactly symmetric.
    """
    act = _activation(activation)
    depth, sigma_w2, sigma_b2 = _check_hyperparameters(depth, sigma_w2, sigma_b2)
    X = check_inputs(X, "X")
    symmetric = Y is None
    Y = X if symmetric else check_inputs(Y, "Y", n_features=X.shape[1])
    n, m = X.shape[0], Y.shape[0]
    qx, tx = _diagonal_recursion(X, depth, act, sigma_w2, sigma_b2, want_ntk)
    qy, _ = (qx, tx) if symmetric else _diagonal_recursion(Y, depth, act, sigma_w2, sigma_b2, False)
    outputs = {"nngp": np.empty((n, m)) if want_nngp else None,
               "ntk": np.empty((n, m)) if want_ntk else None}
    rows = max(1, _BLOCK_ELEMENTS // m)
    for s in range(0, n, rows):
        e = min(n, s + rows)
        c0 = s if symmetric else 0
        S, T = _block(X[s:e], Y[c0:], qx[:, s:e], qy[:, c0:], depth, act, sigma_w2, sigma_b2, want_ntk)
        for key, B in (("nngp", S), ("ntk", T)):
            out = outputs[key]
            if out is None:
                continue
            if symmetric:
                square = B[:, : e - s]
                lower = np.tril_indices(e - s, -1)
                square[lower] = square.T[lower]
                square[np.diag_indices(e - s)] = (qx if key == "nngp" else tx)[depth - 1, s:e]
                out[e:, s:e] = B[:, e - s:].T
            out[s:e, c0:] = B
    return outputs["nngp"], outputs["ntk"]


_KERNEL_PARAMETERS = """
    Parameters
    ----------
    X : array_like, shape (n, d) or (n, ...)
        Inputs; trailing axes are flattened.
    Y : array_like, shape (m, d) or (m, ...), optional
        Second input set; ``None`` means ``X`` (the result is then exactly symmetric).
    depth : int
        Number of affine layers, ``>= 1`` (``depth - 1`` hidden layers); ``depth = 1`` is
        the linear kernel ``σ_w² x·x'/d + σ_b²``.
    activation : {"relu", "erf"}
    sigma_w2 : float
        Weight variance ``σ_w² > 0`` (``2`` keeps ReLU signals at a fixed scale).
    sigma_b2 : float
        Bias variance ``σ_b² >= 0``.
"""

_KERNEL_NOTES = """
    Raises
    ------
    ValueError
        Unsupported activation (the message names the supported ones), ``depth`` not an
        integer ``>= 1``, ``sigma_w2 <= 0``, ``sigma_b2 < 0``, inputs of different feature
        counts, empty or non-finite inputs.

    Notes
    -----
    ``O(n m (d + depth))`` time; filled in row blocks of about 2 M entries, so the memory
    beyond the result is bounded (about 200 MB) whatever ``n`` and ``m``. Every output of a
    network with ``C`` outputs has this kernel, and distinct outputs are uncorrelated.
"""


def nngp(X, Y=None, *, depth: int, activation: str, sigma_w2: float, sigma_b2: float) -> np.ndarray:
    r"""The NNGP kernel ``Σ^{depth}``: the output covariance of an infinitely wide network.

    .. math::

        Σ^1 = σ_w^2\, x \cdot x' / d + σ_b^2, \qquad
        Σ^{l+1}(x, x') = σ_w^2\, E_{(u, v) \sim N(0, Σ^l|_{x, x'})}[\phi(u)\phi(v)] + σ_b^2.
    {parameters}
    Returns
    -------
    ndarray, shape (n, m), float64
        ``Σ^{depth}(x_i, y_j)``.
    {notes}
    References
    ----------
    Neal (1996), Bayesian learning for neural networks; Lee et al. (2018), Deep neural
    networks as Gaussian processes, ICLR; Cho & Saul (2009); Williams (1997).

    Examples
    --------
    >>> import numpy as np
    >>> X = np.array([[1.0, 0.0], [0.0, 1.0]])
    >>> nngp(X, depth=2, activation="relu", sigma_w2=2.0, sigma_b2=0.0).round(4)
    array([[1.    , 0.3183],
           [0.3183, 1.    ]])
    """
    return _kernels(X, Y, depth, activation, sigma_w2, sigma_b2, want_nngp=True, want_ntk=False)[0]


def ntk(X, Y=None, *, depth: int, activation: str, sigma_w2: float, sigma_b2: float) -> np.ndarray:
    r"""The neural tangent kernel ``Θ^{depth}`` of an infinitely wide network (NTK parameterisation).

    .. math::

        Θ^1 = Σ^1, \qquad
        Θ^{l+1}(x, x') = Σ^{l+1}(x, x')
            + σ_w^2\, E_{(u, v) \sim N(0, Σ^l|_{x, x'})}[\phi'(u)\phi'(v)]\, Θ^l(x, x').

    In the limit, ``Θ(x, x') = Σ_p ∂f(x)/∂θ_p ∂f(x')/∂θ_p`` of one output ``f`` is the same
    at every draw of the weights and stays constant during training by gradient flow.
    {parameters}
    Returns
    -------
    ndarray, shape (n, m), float64
        ``Θ^{depth}(x_i, y_j)``.
    {notes}
    References
    ----------
    Jacot, Gabriel & Hongler (2018), Neural tangent kernel, NeurIPS; Lee et al. (2019), Wide
    neural networks of any depth evolve as linear models, NeurIPS; Arora et al. (2019), On
    exact computation with an infinitely wide neural net, NeurIPS (eq. 3-4 without the
    ``c_σ`` normalisation, which is ``σ_w² = 2`` here for ReLU).

    Examples
    --------
    >>> import numpy as np
    >>> X = np.array([[1.0, 0.0], [0.0, 1.0]])
    >>> ntk(X, depth=2, activation="relu", sigma_w2=2.0, sigma_b2=0.0).round(4)
    array([[2.    , 0.3183],
           [0.3183, 2.    ]])
    """
    return _kernels(X, Y, depth, activation, sigma_w2, sigma_b2, want_nngp=False, want_ntk=True)[1]


def nngp_and_ntk(X, Y=None, *, depth: int, activation: str, sigma_w2: float,
                 sigma_b2: float) -> NeuralKernels:
    """Both :func:`nngp` and :func:`ntk` in one pass (the NTK's recursion computes the NNGP).
    {parameters}
    Returns
    -------
    NeuralKernels
        ``.nngp`` and ``.ntk``, each ``(n, m)`` float64.
    {notes}
    References
    ----------
    Lee et al. (2018); Jacot, Gabriel & Hongler (2018).
    """
    S, T = _kernels(X, Y, depth, activation, sigma_w2, sigma_b2, want_nngp=True, want_ntk=True)
    return NeuralKernels(S, T, int(depth), str(activation), float(sigma_w2), float(sigma_b2))


for _f in (nngp, ntk, nngp_and_ntk):
    _f.__doc__ = _f.__doc__.replace("{parameters}", _KERNEL_PARAMETERS).replace("{notes}", _KERNEL_NOTES)
del _f


# ---------------------------------------------------------------------------- regression
def kernel_regression(K_train, y, K_test=None, *, reg: float = 0.0) -> np.ndarray:
    r"""Predictions of kernel (ridge) regression.

    .. math::

        \hat f(X_{test}) = K_{test,train} (K_{train} + λ I)^{-1} y,

    which is also the mean of the NNGP posterior (``K = Σ``, ``λ`` the noise variance) and
    the ``t → ∞`` limit of an infinitely wide network trained from ``f_0 = 0`` by gradient
    flow on the squared loss (``K = Θ``, ``λ = 0``; Lee et al. 2019).

    Parameters
    ----------
    K_train : array_like, shape (n, n)
        Symmetric kernel among the training points.
    y : array_like, shape (n,) or (n, C)
        Targets (for classification e.g. one-hot labels minus ``1/C``).
    K_test : array_like, shape (m, n), optional
        Kernel between the points to predict and the training points; ``None`` predicts at
        the training points (``K_train`` itself).
    reg : float, default 0.0
        Ridge ``λ >= 0`` added to the diagonal.

    Returns
    -------
    ndarray, shape (m,) or (m, C), float64
        Predictions, 1-D when ``y`` is (``m = n`` when ``K_test`` is None).

    Raises
    ------
    ValueError
        Shapes that do not match, NaN or inf, an asymmetric ``K_train``, ``reg < 0``, or
        ``K_train + reg I`` not positive definite (the message gives its smallest eigenvalue
        and suggests a larger ``reg``).

    Notes
    -----
    One Cholesky factorisation, ``n³/3`` flops, then ``O(n² C + m n C)``.

    References
    ----------
    Rasmussen & Williams (2006), Gaussian processes for machine learning, Algorithm 2.1.
    """
    K_train = check_kernel_matrix(K_train, "K_train", symmetric=True)
    n = K_train.shape[0]
    y = check_targets(y, n)
    reg = _finite_number(reg, "reg", low=0.0, strict=False)
    if K_test is not None:
        K_test = check_kernel_matrix(K_test, "K_test", shape=(None, n))
    A = K_train + reg * np.eye(n) if reg else K_train
    try:
        factor = scipy.linalg.cho_factor(A, lower=True, check_finite=False)
    except np.linalg.LinAlgError:
        lam = float(scipy.linalg.eigvalsh(A, subset_by_index=[0, 0], check_finite=False)[0])
        raise ValueError(
            f"K_train + reg*I (reg = {reg:g}) is not positive definite: its smallest eigenvalue is "
            f"{lam:.3g}; use a larger reg (e.g. reg > {max(-lam, 0.0) + 1e-8 * float(np.trace(A)) / n:.3g})"
        ) from None
    alpha = scipy.linalg.cho_solve(factor, y, check_finite=False)
    return (K_train if K_test is None else K_test) @ alpha
