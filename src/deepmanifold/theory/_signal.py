r"""Mean-field signal propagation through deep, wide, random fully connected networks.

A network ``h^{l+1} = W^{l+1} φ(h^l) + b^{l+1}`` of width ``N → ∞``, weights
``W_ij ~ N(0, σ_w²/N)`` and biases ``b_i ~ N(0, σ_b²)`` carries two inputs through two
deterministic maps (Poole et al. 2016): the squared length of a pre-activation
vector, ``q^l = |h^l|²/N``, and the correlation ``c^l`` of two inputs of equal length,

.. math::

    q^{l+1} = σ_w^2 \int Dz\, φ(\sqrt{q^l} z)^2 + σ_b^2, \qquad
    c^{l+1} = \frac{σ_w^2 \int Dz_1 Dz_2\, φ(u_1) φ(u_2) + σ_b^2}{q^*},

with ``u_1 = √q* z_1``, ``u_2 = √q* (c z_1 + √(1 − c²) z_2)`` and ``Dz`` the standard
Gaussian measure. Their fixed points and slopes decide how deep a signal can travel
(Schoenholz et al. 2017).

Fixed points and slopes
    :func:`q_star` (length), :func:`chi_1` (slope of the correlation map at ``c = 1``),
    :func:`length_map`, :func:`correlation_map`.
The order-to-chaos transition
    :func:`critical_sigma_w2` (the ``σ_w²`` at which ``χ₁ = 1``) and
    :func:`order_chaos_boundary` (the same along a range of ``σ_b²``).
Depth scales
    :func:`depth_scales` returns a :class:`DepthScales`: ``q*``, ``c*``, ``χ₁``,
    ``χ_c``, ``ξ_q`` and ``ξ_c``.

Activations are ``"tanh"``, ``"relu"`` and ``"erf"`` (:data:`ACTIVATIONS`). Every
function takes ``method="auto"`` (closed forms of the Gaussian integrals for ReLU and
erf, quadrature for tanh) or ``method="quadrature"`` (quadrature for all three, the
reference the closed forms are tested against). The quadrature is the trapezoidal rule
on a uniform grid in ``z``, spectrally accurate (~1e-16) for the analytic tanh and erf up
to ``q ≈ 180``; ReLU's kink (and the jump of its ``φ'``) makes its two-variable integrals
only ~1e-3 accurate by quadrature, which is why "auto" uses the arc-cosine kernel.

References
----------
.. [1] B. Poole, S. Lahiri, M. Raghu, J. Sohl-Dickstein and S. Ganguli, "Exponential
   expressivity in deep neural networks through transient chaos", *NeurIPS* 2016.
.. [2] S. S. Schoenholz, J. Gilmer, S. Ganguli and J. Sohl-Dickstein, "Deep information
   propagation", *ICLR* 2017.
.. [3] C. K. I. Williams, "Computing with infinite networks", *NeurIPS* 1997 (the erf
   kernel).
.. [4] Y. Cho and L. K. Saul, "Kernel methods for deep learning", *NeurIPS* 2009 (the
   ReLU arc-cosine kernel).
"""

from __future__ import annotations

import functools
import math
import numbers
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.optimize import brentq
from scipy.special import erf

__all__ = [
    "ACTIVATIONS",
    "CRITICAL_TOL",
    "METHODS",
    "DepthScales",
    "chi_1",
    "correlation_map",
    "critical_sigma_w2",
    "depth_scales",
    "length_map",
    "order_chaos_boundary",
    "q_star",
]

#: The activations φ the theory is computed for.
ACTIVATIONS: tuple[str, ...] = ("tanh", "relu", "erf")
#: How the Gaussian integrals are computed: closed forms where they exist ("auto") or
#: quadrature for every activation ("quadrature").
METHODS: tuple[str, ...] = ("auto", "quadrature")

#: A slope χ with |log χ| at most this is critical: its depth scale -1/log χ (beyond
#: 1e9 layers) is returned as inf. It also absorbs the root finders' rounding, so that
#: χ₁ at the computed critical σ_w² (|χ₁ − 1| ~ 1e-13) counts as critical.
CRITICAL_TOL = 1e-9

# Quadrature: the trapezoidal rule on z ∈ [-_Z_MAX, _Z_MAX] with step h. Φ(-9) ≈ 1e-19,
# so the truncated tails are below float64 resolution. For an integrand analytic in the
# strip |Im z| < d the rule's error is ~exp(-2πd/h); tanh(√q z) has its poles at
# d = π/(2√q), so h√q <= 0.2 makes it ~exp(-π²/0.2) ≈ 4e-22, leaving room for the
# prefactor of sech⁴'s fourth-order poles (at h√q = 0.27 that integral was 4e-12 off);
# erf's growth off the real axis sets the same scale, and h <= 0.5 keeps the Gaussian
# itself exact (error ~exp(-2π²/h²)). The nodes sit at half-steps, none at z = 0, so that ReLU's
# kink at 0 splits the symmetric sums exactly in half.
_Z_MAX = 9.0
_STEP_MAX = 0.5
_STEP_SQRT_Q = 0.2
#: Nodes per axis at most (twice this): the rule keeps ~1e-16 accuracy up to
#: q ≈ (0.2·600/9)² ≈ 180; beyond, h stops shrinking and the error grows (2e-12 at q = 400
#: for tanh, against mpmath).
_MAX_HALF_NODES = 600
#: Root finders' absolute tolerances on q* and c*, and on σ_w² at the boundary.
_XTOL = 1e-14
#: The bracket for the critical σ_w² grows by doubling up to this before giving up.
_SIGMA_W2_LIMIT = 1e6


# ----------------------------------------------------------------------------- activations
def _dtanh(x: np.ndarray) -> np.ndarray:
    return 1.0 / np.cosh(np.clip(x, -350.0, 350.0)) ** 2


def _d2tanh(x: np.ndarray) -> np.ndarray:
    return -2.0 * np.tanh(x) * _dtanh(x)


def _relu(x: np.ndarray) -> np.ndarray:
    return np.maximum(x, 0.0)


def _drelu(x: np.ndarray) -> np.ndarray:
    return (x > 0).astype(float)


def _d2relu(x: np.ndarray) -> np.ndarray:
    # The distributional φ'' = δ(x) meets φ(0) = 0, so φ''φ integrates to 0.
    return np.zeros_like(x, dtype=float)


_ERF_SLOPE = 2.0 / math.sqrt(math.pi)


def _derf(x: np.ndarray) -> np.ndarray:
    return _ERF_SLOPE * np.exp(-np.square(x))


def _d2erf(x: np.ndarray) -> np.ndarray:
    return -2.0 * x * _derf(x)


@functools.lru_cache(maxsize=64)
def _nodes(half: int, step: float) -> tuple[np.ndarray, np.ndarray]:
    """Trapezoid nodes ``±(k + 1/2) step`` (2·half of them) and weights of the Gaussian measure."""
    z = (np.arange(-half, half) + 0.5) * step
    w = step * np.exp(-0.5 * z * z) / math.sqrt(2.0 * math.pi)
    z.flags.writeable = False
    w.flags.writeable = False
    return z, w


def _grid(q: float) -> tuple[np.ndarray, np.ndarray]:
    """Nodes and weights fine enough for ``E[g(√q z)]``; see the module's quadrature note."""
    step = _STEP_MAX if q <= 0 else min(_STEP_MAX, _STEP_SQRT_Q / math.sqrt(q))
    half = min(_MAX_HALF_NODES, math.ceil(_Z_MAX / step))
    return _nodes(half, _Z_MAX / half)


class _Quadrature:
    r"""The Gaussian integrals of an activation by the trapezoidal rule (any φ).

    ``mean_sq(q) = E φ(√q z)²``, ``mean_sq_slope(q) = d/dq mean_sq = E[φ'² + φ''φ](√q z)``
    (Stein's lemma), ``mean_dsq(q) = E φ'(√q z)²``, ``kernel(q, c) = E φ(u₁)φ(u₂)`` and
    ``dkernel(q, c) = E φ'(u₁)φ'(u₂)``, with ``(u₁, u₂)`` of variance ``q`` and
    correlation ``c``.
    """

    def __init__(self, phi: Callable, dphi: Callable, d2phi: Callable):
        self.phi, self.dphi, self.d2phi = phi, dphi, d2phi

    def _mean(self, g: Callable[[np.ndarray], np.ndarray], q: float) -> float:
        z, w = _grid(q)
        return float(w @ g(math.sqrt(q) * z))

    def mean_sq(self, q: float) -> float:
        return self._mean(lambda x: self.phi(x) ** 2, q)

    def mean_sq_slope(self, q: float) -> float:
        return self._mean(lambda x: self.dphi(x) ** 2 + self.d2phi(x) * self.phi(x), q)

    def mean_dsq(self, q: float) -> float:
        return self._mean(lambda x: self.dphi(x) ** 2, q)

    def _pair(self, g: Callable[[np.ndarray], np.ndarray], q: float, c: float) -> float:
        z, w = _grid(q)
        root_q, s = math.sqrt(q), math.sqrt(max(0.0, 1.0 - c * c))
        u2 = root_q * (c * z[:, None] + s * z[None, :])
        return float((w * g(root_q * z)) @ g(u2) @ w)

    def kernel(self, q: float, c: float) -> float:
        return self._pair(self.phi, q, c)

    def dkernel(self, q: float, c: float) -> float:
        return self._pair(self.dphi, q, c)


class _ReluForms:
    """Closed forms for ReLU: the arc-cosine kernel of degree 1 [4]."""

    @staticmethod
    def mean_sq(q: float) -> float:
        return 0.5 * q

    @staticmethod
    def mean_sq_slope(q: float) -> float:
        return 0.5

    @staticmethod
    def mean_dsq(q: float) -> float:
        return 0.5

    @staticmethod
    def kernel(q: float, c: float) -> float:
        c = min(1.0, max(-1.0, c))
        return q / (2.0 * math.pi) * (math.sqrt(1.0 - c * c) + (math.pi - math.acos(c)) * c)

    @staticmethod
    def dkernel(q: float, c: float) -> float:
        return (math.pi - math.acos(min(1.0, max(-1.0, c)))) / (2.0 * math.pi)


class _ErfForms:
    """Closed forms for erf [3]: ``E erf(u₁)erf(u₂) = (2/π) arcsin(2qc/(1 + 2q))``."""

    @staticmethod
    def mean_sq(q: float) -> float:
        return 2.0 / math.pi * math.asin(2.0 * q / (1.0 + 2.0 * q))

    @staticmethod
    def mean_sq_slope(q: float) -> float:
        return 4.0 / (math.pi * (1.0 + 2.0 * q) * math.sqrt(1.0 + 4.0 * q))

    @staticmethod
    def mean_dsq(q: float) -> float:
        return 4.0 / (math.pi * math.sqrt(1.0 + 4.0 * q))

    @staticmethod
    def kernel(q: float, c: float) -> float:
        return 2.0 / math.pi * math.asin(min(1.0, max(-1.0, 2.0 * q * c / (1.0 + 2.0 * q))))

    @staticmethod
    def dkernel(q: float, c: float) -> float:
        return 4.0 / (math.pi * math.sqrt((1.0 + 2.0 * q) ** 2 - 4.0 * q * q * c * c))


@dataclass(frozen=True)
class _Activation:
    """One activation: its derivatives, its Gaussian integrals, the facts the solvers use.

    ``gain0`` is ``lim_{q→0} E φ(√q z)²/q = φ'(0)²``. ``homogeneous`` marks
    ``φ(ax) = aφ(x)`` for ``a > 0``: the length map is then linear in ``q``, ``φ'`` does not
    depend on the scale and the correlation map without bias does not depend on ``q``.
    Otherwise φ is odd, bounded by 1, with ``E φ(√q z)²`` increasing and concave in ``q``
    and ``φ'²`` largest at 0.
    """

    name: str
    phi: Callable[[np.ndarray], np.ndarray]
    dphi: Callable[[np.ndarray], np.ndarray]
    d2phi: Callable[[np.ndarray], np.ndarray]
    gain0: float
    homogeneous: bool
    closed: Any = None

    def integrals(self, method: str):
        if method == "auto" and self.closed is not None:
            return self.closed
        return _Quadrature(self.phi, self.dphi, self.d2phi)


_ACTIVATIONS = {
    "tanh": _Activation("tanh", np.tanh, _dtanh, _d2tanh, gain0=1.0, homogeneous=False),
    "relu": _Activation("relu", _relu, _drelu, _d2relu, gain0=0.5, homogeneous=True, closed=_ReluForms()),
    "erf": _Activation("erf", erf, _derf, _d2erf, gain0=_ERF_SLOPE ** 2, homogeneous=False, closed=_ErfForms()),
}


# ----------------------------------------------------------------------------- validation
def _check_activation(activation: Any) -> _Activation:
    if not isinstance(activation, str) or activation not in _ACTIVATIONS:
        raise ValueError(f"activation must be one of {', '.join(map(repr, ACTIVATIONS))}, got {activation!r}")
    return _ACTIVATIONS[activation]


def _check_method(method: Any) -> str:
    if not isinstance(method, str) or method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(map(repr, METHODS))}, got {method!r}")
    return method


def _check_variance(value: Any, name: str, *, positive: bool) -> float:
    """``value`` as a float if it is a finite real number > 0 (``positive``) or >= 0."""
    ok = isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))
    if ok:
        value = float(value)
        ok = math.isfinite(value) and (value > 0 if positive else value >= 0)
    if not ok:
        bound = "> 0" if positive else ">= 0"
        what = "weight variance σ_w² (weights ~ N(0, σ_w²/N))" if name == "sigma_w2" \
            else "bias variance σ_b² (biases ~ N(0, σ_b²))"
        raise ValueError(f"{name} must be a finite number {bound}, the {what}; got {value!r}")
    return value


def _setup(activation, sigma_w2, sigma_b2, method):
    act = _check_activation(activation)
    ints = act.integrals(_check_method(method))
    return (act, ints, _check_variance(sigma_w2, "sigma_w2", positive=True),
            _check_variance(sigma_b2, "sigma_b2", positive=False))


def _check_unit_interval(values: Any, name: str) -> np.ndarray:
    arr = np.asarray(values, dtype=float)
    bad = ~(np.isfinite(arr) & (np.abs(arr) <= 1.0))
    if bad.any():
        raise ValueError(f"{name} must be correlations in [-1, 1]; got {arr[bad].ravel()[0]!r} "
                         f"({int(bad.sum())} value(s) outside)")
    return arr


# ----------------------------------------------------------------------------- solvers
def _q_star(act: _Activation, ints, sw: float, sb: float) -> float:
    if act.homogeneous:
        slope = sw * ints.mean_sq(1.0)
        if slope < 1.0 - CRITICAL_TOL:
            return sb / (1.0 - slope)
        if slope <= 1.0 + CRITICAL_TOL and sb == 0.0:
            return math.nan  # the length map is the identity: every q is a fixed point
        return math.inf
    if sb == 0.0:
        if sw * act.gain0 <= 1.0:
            return 0.0  # a concave map with slope <= 1 at 0 stays below the diagonal
        # The nonzero root of σ_w² A(q)/q = 1; A(q)/q falls from φ'(0)² at 0 to at most 1/q.
        def ratio(q: float) -> float:
            return sw * (act.gain0 if q == 0.0 else ints.mean_sq(q) / q) - 1.0

        return float(brentq(ratio, 0.0, sw, xtol=_XTOL))
    # |φ| <= 1, so the map lies between σ_b² at q = 0 and below the diagonal at σ_w² + σ_b².
    return float(brentq(lambda q: sw * ints.mean_sq(q) + sb - q, 0.0, sw + sb, xtol=_XTOL))


def _chi_1(act: _Activation, ints, sw: float, q: float) -> float:
    # φ' of a homogeneous φ does not see the scale, so χ₁ needs no (finite) q* there.
    return sw * ints.mean_dsq(1.0 if act.homogeneous else q)


def _c_star(ints, sw: float, q: float, chi1: float) -> float:
    """The stable correlation fixed point below 1 in the chaotic phase (χ₁ > 1).

    ``h(c) = (C(c) − c)/(1 − c)`` is >= 0 at ``c = 0`` (``C(0) = σ_b²/q*`` for an odd φ)
    and tends to ``1 − χ₁ < 0`` at ``c = 1``; C is convex on [0, 1] (see
    :func:`depth_scales`), so h has exactly one root there. ``C(c) − c`` is written as
    ``(1 − c) − σ_w² (K(1) − K(c))/q*`` to use ``C(1) = 1`` exactly.
    """
    top = ints.kernel(q, 1.0)

    def h(c: float) -> float:
        if c >= 1.0:
            return 1.0 - chi1
        return 1.0 - sw * (top - ints.kernel(q, c)) / (q * (1.0 - c))

    if h(0.0) <= 0.0:
        return 0.0  # σ_b² = 0: C(0) = 0 exactly, and rounding must not move the root
    return float(brentq(h, 0.0, 1.0, xtol=_XTOL))


def _depth(chi: float) -> float:
    """The depth scale ``-1/log χ`` of a fixed point of slope χ: inf when critical, nan when unstable."""
    if not math.isfinite(chi) or chi > 1.0 + CRITICAL_TOL:
        return math.nan
    if chi <= 0.0:
        return 0.0
    log_chi = math.log(chi)
    return math.inf if abs(log_chi) <= CRITICAL_TOL else -1.0 / log_chi


# ----------------------------------------------------------------------------- public
def q_star(activation: str, sigma_w2: float, sigma_b2: float, *, method: str = "auto") -> float:
    r"""The fixed point ``q*`` of the length map: the squared pre-activation length of a deep layer.

    .. math::

        q^* = σ_w^2 \int Dz\, φ(\sqrt{q^*} z)^2 + σ_b^2 .

    Parameters
    ----------
    activation : {"tanh", "relu", "erf"}
        The nonlinearity φ.
    sigma_w2 : float
        Weight variance ``σ_w² > 0``; weights are ``N(0, σ_w²/N)``.
    sigma_b2 : float
        Bias variance ``σ_b² >= 0``.
    method : {"auto", "quadrature"}
        Closed forms where they exist, or quadrature for every activation.

    Returns
    -------
    float
        ``q* >= 0``; ``inf`` where the length map has no finite attracting fixed point (ReLU
        with ``σ_w² > 2``, or ``σ_w² = 2`` and ``σ_b² > 0``: ``q^l`` grows without bound);
        ``nan`` for ReLU at ``σ_w² = 2, σ_b² = 0``, where the map is the identity and every
        ``q`` is a fixed point (``q^l = q^0`` at every depth).

    Raises
    ------
    ValueError
        For an unknown activation or method, ``σ_w² <= 0``, ``σ_b² < 0`` or a non-finite
        variance.

    Notes
    -----
    For ReLU the map is linear, ``q ↦ σ_w² q/2 + σ_b²``, so ``q* = σ_b²/(1 − σ_w²/2)``
    for ``σ_w² < 2``. For tanh and erf, ``|φ| <= 1`` and ``E φ(√q z)²`` is increasing and
    concave in ``q`` [1]_, so the root is unique and bracketed by ``[0, σ_w² + σ_b²]``
    (Brent's method). With ``σ_b² = 0`` it is ``0`` when ``σ_w² φ'(0)² <= 1``
    (``σ_w² <= 1`` for tanh, ``<= π/4`` for erf) and the nonzero root otherwise. For erf,
    ``E erf(√q z)² = (2/π) arcsin(2q/(1 + 2q))`` [2]_.

    References
    ----------
    .. [1] B. Poole et al., "Exponential expressivity in deep neural networks through
       transient chaos", *NeurIPS* 2016, eq. (3).
    .. [2] C. K. I. Williams, "Computing with infinite networks", *NeurIPS* 1997.

    Examples
    --------
    >>> q_star("relu", 1.5, 0.5)
    2.0
    >>> f"{q_star('tanh', critical_sigma_w2('tanh', 0.05), 0.05):.4f}"
    '0.5700'
    """
    act, ints, sw, sb = _setup(activation, sigma_w2, sigma_b2, method)
    return _q_star(act, ints, sw, sb)


def length_map(q: Any, activation: str, sigma_w2: float, sigma_b2: float, *, method: str = "auto") -> Any:
    r"""One layer of the length map, ``q ↦ σ_w² ∫Dz φ(√q z)² + σ_b²``.

    Parameters
    ----------
    q : float or array_like, shape (m,)
        Squared pre-activation lengths ``q >= 0`` of the layer below.
    activation, sigma_w2, sigma_b2, method
        As in :func:`q_star`.

    Returns
    -------
    float or ndarray, shape of `q`
        The squared length one layer up.

    Raises
    ------
    ValueError
        For a negative or non-finite `q`, and as :func:`q_star`.

    References
    ----------
    .. [1] B. Poole et al., *NeurIPS* 2016, eq. (3).
    """
    act, ints, sw, sb = _setup(activation, sigma_w2, sigma_b2, method)
    arr = np.asarray(q, dtype=float)
    bad = ~(np.isfinite(arr) & (arr >= 0))
    if bad.any():
        raise ValueError(f"q must be squared lengths >= 0 (finite); got {arr[bad].ravel()[0]!r}")
    out = np.array([sw * ints.mean_sq(float(v)) + sb for v in arr.ravel()]).reshape(arr.shape)
    return float(out) if out.ndim == 0 else out


def chi_1(activation: str, sigma_w2: float, sigma_b2: float, *, method: str = "auto") -> float:
    r"""The slope ``χ₁`` of the correlation map at ``c = 1``: the order parameter of the transition.

    .. math::

        χ_1 = σ_w^2 \int Dz\, φ'(\sqrt{q^*} z)^2 .

    ``χ₁ < 1``: ordered (nearby inputs converge, gradients vanish); ``χ₁ > 1``: chaotic
    (nearby inputs decorrelate, gradients explode); ``χ₁ = 1``: critical. It is also the
    factor by which the mean squared gradient grows per layer, backwards [2]_.

    Parameters
    ----------
    activation, sigma_w2, sigma_b2, method
        As in :func:`q_star`.

    Returns
    -------
    float
        ``χ₁ > 0``. For ReLU ``φ'`` is a step and ``χ₁ = σ_w²/2`` whatever ``q*`` (also where
        ``q*`` is inf or nan).

    Raises
    ------
    ValueError
        As :func:`q_star`.

    References
    ----------
    .. [1] B. Poole et al., *NeurIPS* 2016, eq. (7).
    .. [2] S. S. Schoenholz et al., "Deep information propagation", *ICLR* 2017, eq. (5).

    Examples
    --------
    >>> chi_1("relu", 2.0, 0.0)
    1.0
    """
    act, ints, sw, sb = _setup(activation, sigma_w2, sigma_b2, method)
    return _chi_1(act, ints, sw, _q_star(act, ints, sw, sb))


def correlation_map(c: Any, activation: str, sigma_w2: float, sigma_b2: float, *,
                    method: str = "auto") -> Any:
    r"""One layer of the correlation map at the length fixed point ``q*``.

    .. math::

        C(c) = \frac{σ_w^2 \int Dz_1 Dz_2\, φ(u_1) φ(u_2) + σ_b^2}{q^*}, \quad
        u_1 = \sqrt{q^*} z_1, \; u_2 = \sqrt{q^*}\,(c z_1 + \sqrt{1 - c^2}\, z_2).

    Parameters
    ----------
    c : float or array_like, shape (m,)
        Correlations in ``[-1, 1]`` of two inputs at layer ``l``.
    activation, sigma_w2, sigma_b2, method
        As in :func:`q_star`.

    Returns
    -------
    float or ndarray, shape of `c`
        The correlations at layer ``l + 1``; ``C(1) = 1``.

    Raises
    ------
    ValueError
        For a correlation outside ``[-1, 1]``, and as :func:`q_star`.

    Notes
    -----
    Where ``q*`` is not a finite positive number the map is its limit: for ReLU it is the
    bias-free map ``E φ(u₁)φ(u₂)/E φ(u₁)²`` (the normalised arc-cosine kernel
    ``(√(1 − c²) + (π − arccos c) c)/π``), which holds at every ``q`` when ``σ_b² = 0`` and
    is the limit ``q → ∞`` where ``q*`` is inf; for tanh and erf at ``q* = 0`` (``σ_b² = 0``
    in the ordered phase) the network is linear as ``q → 0`` and the map is the identity.

    References
    ----------
    .. [1] B. Poole et al., *NeurIPS* 2016, eqs. (4)–(5).
    .. [2] S. S. Schoenholz et al., *ICLR* 2017, eq. (3).
    """
    act, ints, sw, sb = _setup(activation, sigma_w2, sigma_b2, method)
    arr = _check_unit_interval(c, "c")
    q = _q_star(act, ints, sw, sb)
    if 0.0 < q < math.inf:
        def one(v: float) -> float:
            return (sw * ints.kernel(q, v) + sb) / q
    elif act.homogeneous:
        scale = ints.mean_sq(1.0)

        def one(v: float) -> float:
            return ints.kernel(1.0, v) / scale
    else:
        def one(v: float) -> float:
            return v
    out = np.array([one(float(v)) for v in arr.ravel()]).reshape(arr.shape)
    return float(out) if out.ndim == 0 else out


def critical_sigma_w2(activation: str, sigma_b2: float, *, method: str = "auto") -> float:
    r"""The weight variance at the order-to-chaos transition: the ``σ_w²`` where ``χ₁ = 1``.

    .. math::

        σ_w^2 \int Dz\, φ'\big(\sqrt{q^*(σ_w^2, σ_b^2)}\, z\big)^2 = 1 .

    Parameters
    ----------
    activation : {"tanh", "relu", "erf"}
        The nonlinearity φ.
    sigma_b2 : float
        Bias variance ``σ_b² >= 0``.
    method : {"auto", "quadrature"}
        As in :func:`q_star`.

    Returns
    -------
    float
        The critical ``σ_w²``. ReLU: ``2`` for every ``σ_b²`` (where ``σ_b² > 0``, ``q*`` is
        inf there). tanh: ``1`` at ``σ_b² = 0``; erf: ``π/4`` at ``σ_b² = 0``.

    Raises
    ------
    ValueError
        As :func:`q_star`; also if no transition is found below ``σ_w² = 1e6``.

    Notes
    -----
    ``χ₁ <= σ_w² φ'(0)²`` (``φ'²`` is largest at 0 for tanh and erf), so the root is at least
    ``1/φ'(0)²``; the upper end of the bracket doubles until ``χ₁ > 1``, then Brent's method
    finds the root to ~1e-14. ``χ₁`` there equals 1 to about 1e-13.

    References
    ----------
    .. [1] S. S. Schoenholz et al., "Deep information propagation", *ICLR* 2017, §3 and
       Fig. 1 (tanh at ``σ_b² = 0.05``: ``σ_w² ≈ 1.76``).

    Examples
    --------
    >>> critical_sigma_w2("relu", 0.0)
    2.0
    >>> round(critical_sigma_w2("tanh", 0.05), 3)
    1.761
    """
    act = _check_activation(activation)
    ints = act.integrals(_check_method(method))
    sb = _check_variance(sigma_b2, "sigma_b2", positive=False)
    if act.homogeneous:
        return 1.0 / ints.mean_dsq(1.0)
    lo = 1.0 / act.gain0
    if sb == 0.0:
        return lo  # q* = 0 up to here, where χ₁ = σ_w² φ'(0)² reaches 1

    def excess(sw: float) -> float:
        return _chi_1(act, ints, sw, _q_star(act, ints, sw, sb)) - 1.0

    hi = 2.0 * lo
    while excess(hi) <= 0.0:
        if hi > _SIGMA_W2_LIMIT:
            raise ValueError(f"no order-to-chaos transition found for {act.name} with sigma_b2={sb!r} "
                             f"below sigma_w2={_SIGMA_W2_LIMIT:g}")
        lo, hi = hi, 2.0 * hi
    return float(brentq(excess, lo, hi, xtol=_XTOL))


def order_chaos_boundary(activation: str, sigma_b2: Any, *, method: str = "auto") -> np.ndarray:
    r"""The critical ``σ_w²`` (:func:`critical_sigma_w2`) along a range of bias variances.

    Parameters
    ----------
    activation : {"tanh", "relu", "erf"}
        The nonlinearity φ.
    sigma_b2 : array_like, shape (m,)
        Bias variances ``σ_b² >= 0``.
    method : {"auto", "quadrature"}
        As in :func:`q_star`.

    Returns
    -------
    ndarray, shape (m,)
        ``σ_w²`` at which ``χ₁ = 1`` for each ``σ_b²``: the line between the ordered phase
        (left, smaller ``σ_w²``) and the chaotic phase (right).

    Raises
    ------
    ValueError
        As :func:`critical_sigma_w2`, naming the first bad ``σ_b²``.

    References
    ----------
    .. [1] S. S. Schoenholz et al., *ICLR* 2017, Fig. 1.
    """
    values = np.atleast_1d(np.asarray(sigma_b2, dtype=float))
    if values.ndim != 1:
        raise ValueError(f"sigma_b2 must be a 1-D sequence of bias variances, got shape {values.shape}")
    return np.array([critical_sigma_w2(activation, float(v), method=method) for v in values])


@dataclass(frozen=True)
class DepthScales:
    r"""The fixed points of the mean-field maps and how fast a deep network reaches them.

    Attributes
    ----------
    activation : str
        The nonlinearity φ.
    sigma_w2, sigma_b2 : float
        Weight and bias variances.
    q_star : float
        Fixed point of the length map (:func:`q_star`): 0, finite, inf or nan.
    c_star : float
        Stable fixed point of the correlation map: 1 in the ordered phase and at
        criticality, in ``[0, 1)`` in the chaotic phase; nan where every ``c`` is a fixed
        point (tanh, erf at ``q* = 0``).
    chi_1 : float
        Slope of the correlation map at ``c = 1`` (:func:`chi_1`).
    chi_c : float
        Slope of the correlation map at ``c*``: ``χ₁`` in the ordered phase, below 1 in the
        chaotic phase, 1 where the map is marginal.
    xi_q : float
        Depth scale ``-1/log(σ_w² ∫Dz [φ'² + φ''φ](√q* z))`` over which ``|q^l − q*|``
        decays by ``e``: inf at a marginal fixed point (ReLU at ``σ_w² = 2`` without bias,
        tanh at ``σ_w² = 1`` without bias), nan where ``q*`` is inf.
    xi_c : float
        Depth scale ``-1/log χ_c`` over which ``|c^l − c*|`` decays by ``e``: inf at
        criticality.
    """

    activation: str
    sigma_w2: float
    sigma_b2: float
    q_star: float
    c_star: float
    chi_1: float
    chi_c: float
    xi_q: float
    xi_c: float

    @property
    def phase(self) -> str:
        """``"ordered"`` (χ₁ < 1), ``"critical"`` (χ₁ = 1 within :data:`CRITICAL_TOL`) or ``"chaotic"``."""
        if abs(math.log(self.chi_1)) <= CRITICAL_TOL:
            return "critical"
        return "ordered" if self.chi_1 < 1.0 else "chaotic"


def depth_scales(activation: str, sigma_w2: float, sigma_b2: float, *, method: str = "auto") -> DepthScales:
    r"""Fixed points, slopes and depth scales of signal propagation (Schoenholz et al. 2017).

    .. math::

        ξ_q^{-1} = -\log\Big(σ_w^2 \int Dz\,\big[φ'(\sqrt{q^*}z)^2
                   + φ''(\sqrt{q^*}z)\,φ(\sqrt{q^*}z)\big]\Big), \qquad
        ξ_c^{-1} = -\log χ_c, \quad
        χ_c = σ_w^2 \int Dz_1 Dz_2\, φ'(u_1) φ'(u_2) \big|_{c = c^*},

    so that ``|q^l − q*| ~ e^{-l/ξ_q}`` and ``|c^l − c*| ~ e^{-l/ξ_c}``. ``e^{-1/ξ_q}`` is
    the slope of the length map at ``q*`` (Stein's lemma), and ``χ_c`` that of the
    correlation map at ``c*``.

    Parameters
    ----------
    activation, sigma_w2, sigma_b2, method
        As in :func:`q_star`.

    Returns
    -------
    DepthScales

    Raises
    ------
    ValueError
        As :func:`q_star`.

    Notes
    -----
    The correlation map is a power series in ``c`` with non-negative coefficients
    (Mehler's expansion of the Gaussian kernel), so it is increasing and convex on
    ``[0, 1]``, with ``C(1) = 1`` and ``C'(1) = χ₁``. If ``χ₁ <= 1`` the map lies above the
    diagonal below 1 and ``c* = 1``, ``χ_c = χ₁`` (ordered). If ``χ₁ > 1`` (chaotic) it
    crosses the diagonal exactly once in ``[0, 1)``, because ``C(0) = σ_b²/q* >= 0`` for
    the odd tanh and erf; that ``c*`` is found by Brent's method and ``χ_c < 1`` there.
    At ``χ₁ = 1`` both coincide and ``ξ_c`` is inf.

    Degenerate cases, where eqs. (7)–(10) of [2]_ do not apply as written:

    - tanh, erf with ``σ_b² = 0`` in the ordered phase: ``q* = 0``. The signal dies
      (``ξ_q = -1/log(σ_w² φ'(0)²)``) and, the network being linear in that limit, every
      correlation is preserved: ``c*`` nan, ``χ_c = 1``, ``ξ_c`` inf. The published
      ``ξ_c = -1/log χ₁`` there is the rate at which ``q`` vanishes, not a correlation
      scale.
    - ReLU with ``σ_b² = 0`` (any ``σ_w²``) or ``σ_w² >= 2``: the correlations follow the
      bias-free arc-cosine map (exact without bias; the limit as ``q → ∞`` otherwise),
      whose slope at ``c* = 1`` is 1, so ``χ_c = 1`` and ``ξ_c`` is inf (``1 − c`` decays
      as a power of depth). ``ξ_q`` is nan for ``σ_w² > 2`` (``q`` diverges).

    References
    ----------
    .. [1] B. Poole et al., *NeurIPS* 2016.
    .. [2] S. S. Schoenholz, J. Gilmer, S. Ganguli and J. Sohl-Dickstein, "Deep information
       propagation", *ICLR* 2017, eqs. (7)–(10).

    Examples
    --------
    >>> s = depth_scales("tanh", 1.5, 0.05)
    >>> s.phase, s.c_star
    ('ordered', 1.0)
    >>> depth_scales("relu", 2.0, 0.1).xi_c
    inf
    """
    act, ints, sw, sb = _setup(activation, sigma_w2, sigma_b2, method)
    q = _q_star(act, ints, sw, sb)
    x1 = _chi_1(act, ints, sw, q)
    if 0.0 < q < math.inf:
        xi_q = _depth(sw * ints.mean_sq_slope(q))
        if x1 <= 1.0 + CRITICAL_TOL:
            c, chi_c = 1.0, x1
        else:
            # C(0) = σ_b²/q* for the odd tanh and erf: without bias c* = 0 exactly.
            c = 0.0 if sb == 0.0 else _c_star(ints, sw, q, x1)
            chi_c = sw * ints.dkernel(q, c)
    elif act.homogeneous:
        # Euler's identity φ = xφ' makes E φ'(u)² = E φ(u)²/q: the bias-free map has slope 1 at c = 1.
        c, chi_c = 1.0, 1.0
        xi_q = _depth(sw * ints.mean_sq_slope(1.0)) if not math.isinf(q) else math.nan
    else:
        c, chi_c = math.nan, 1.0
        xi_q = _depth(sw * act.gain0)
    return DepthScales(activation=act.name, sigma_w2=sw, sigma_b2=sb, q_star=q, c_star=c,
                       chi_1=x1, chi_c=chi_c, xi_q=xi_q, xi_c=_depth(chi_c))
