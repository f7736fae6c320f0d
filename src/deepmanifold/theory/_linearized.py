r"""The training trajectory of an infinitely wide network, and its outputs as probabilities.

Trained by gradient flow with learning rate ``η`` on the squared loss
``½ Σ_i ||f(x_i) - y_i||²``, a network in the NTK regime is its own linearisation around
initialisation, with a constant kernel ``Θ`` (Jacot et al. 2018; Lee et al. 2019, eq. 9-10):

.. math::

    f_t(X) = f_0(X) + (I - e^{-η Θ t}) (y - f_0(X)),

    f_t(X_*) = f_0(X_*) + Θ_{*X} Θ^{-1} (I - e^{-η Θ t}) (y - f_0(X)),

with ``Θ = Θ(X, X)`` on the training inputs and ``Θ_{*X} = Θ(X_*, X)``. The mean over
initialisations is the same with ``f_0 = 0``; at ``t → ∞`` it is kernel regression with
the NTK (:func:`~deepmanifold.theory._kernels.kernel_regression`, ``reg = 0``).

- :func:`linearized_trajectory` -- ``f_t`` on train and test inputs at many times, from one
  eigendecomposition (:class:`LinearizedTrajectory`).
- :func:`probabilities_from_outputs` -- outputs to class probabilities by a softmax with
  a temperature; :func:`fit_temperature` -- the temperature of least cross-entropy, or of
  a given cross-entropy (:class:`TemperatureFit`).

References
----------
Jacot, A., Gabriel, F. & Hongler, C. (2018). Neural tangent kernel. NeurIPS.
Lee, J., Xiao, L., Schoenholz, S. S., Bahri, Y., Novak, R., Sohl-Dickstein, J. &
Pennington, J. (2019). Wide neural networks of any depth evolve as linear models under
gradient descent. NeurIPS.
Guo, C., Pleiss, G., Sun, Y. & Weinberger, K. Q. (2017). On calibration of modern neural
networks. ICML (temperature scaling).
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize_scalar
from scipy.special import log_softmax

from ._kernels import check_kernel_matrix, check_targets

__all__ = [
    "LinearizedTrajectory",
    "TemperatureFit",
    "fit_temperature",
    "linearized_trajectory",
    "probabilities_from_outputs",
]

# Eigenvalues of Θ below this multiple of n eps λ_max are rounding: set to 0.
_NULL_RTOL = 1.0
# Eigenvalues below -_NEGATIVE_RTOL λ_max mean the kernel is not positive semi-definite.
_NEGATIVE_RTOL = 1e-6


@dataclass(frozen=True)
class LinearizedTrajectory:
    """Outputs of the linearised network along gradient flow.

    Attributes
    ----------
    times : ndarray, shape (T,)
        The times ``t``: with learning rate ``η``, ``t`` counts steps of full-batch gradient
        descent (the flow is their small-step limit).
    train : ndarray, shape (T, n, C) or (T, n)
        ``f_t`` on the training inputs (2-D per time when ``y`` was 1-D).
    test : ndarray, shape (T, m, C) or (T, m), or None
        ``f_t`` on the test inputs; None without ``K_test``.
    eigenvalues : ndarray, shape (n,)
        Eigenvalues of ``Θ`` (ascending; rounding-level ones set to 0): mode ``k`` of the
        residual decays as ``exp(-η λ_k t)``.
    """

    times: np.ndarray
    train: np.ndarray
    test: np.ndarray | None
    eigenvalues: np.ndarray


def _positive(value, name: str) -> float:
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or value <= 0:
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    return float(value)


def _check_times(times) -> np.ndarray:
    times = np.asarray(times, dtype=np.float64)
    if times.ndim != 1 or times.shape[0] < 1:
        raise ValueError(f"times: expected a non-empty 1-D array, got shape {times.shape}")
    if np.isnan(times).any() or (times < 0).any():
        raise ValueError("times must be >= 0 (np.inf is allowed) and not NaN")
    return times


def _check_initial(f0, shape: tuple, name: str) -> np.ndarray:
    if f0 is None:
        return np.zeros(shape)
    f0 = np.asarray(f0, dtype=np.float64)
    if f0.shape != shape:
        raise ValueError(f"{name}: expected shape {shape} (that of the targets), got shape {f0.shape}")
    if not np.isfinite(f0).all():
        raise ValueError(f"{name} contains NaN or inf")
    return f0


def _eigen(K: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Eigenpairs of a symmetric PSD kernel; rounding-level eigenvalues set to exactly 0."""
    lam, V = np.linalg.eigh(K)
    top = max(float(lam[-1]), 0.0)
    if lam[0] < -_NEGATIVE_RTOL * top:
        raise ValueError(f"K_train is not positive semi-definite: its smallest eigenvalue is {lam[0]:.3g} "
                         f"(largest {top:.3g}); the flow would diverge along it")
    lam[lam <= _NULL_RTOL * K.shape[0] * np.finfo(np.float64).eps * top] = 0.0
    return lam, V


def _coefficients(lam: np.ndarray, times: np.ndarray, lr: float) -> tuple[np.ndarray, np.ndarray]:
    """Per time and eigenmode: ``1 - e^{-η λ t}`` (train) and ``(1 - e^{-η λ t}) / λ`` (test).

    For ``λ = 0`` the test coefficient is its limit ``η t`` at finite ``t`` and 0 at
    ``t = ∞`` (the pseudo-inverse; such a mode has ``Θ_{*X} v = 0`` for a PSD joint kernel).
    """
    with np.errstate(invalid="ignore"):  # inf * 0 on null modes at t = inf, overwritten below
        decay = -np.expm1(-lr * times[:, None] * lam)  # (T, n)
    positive = lam > 0
    decay[:, ~positive] = 0.0
    test = np.zeros_like(decay)
    test[:, positive] = decay[:, positive] / lam[positive]
    finite = np.isfinite(times)
    test[np.ix_(finite, ~positive)] = lr * times[finite, None]
    return decay, test


def linearized_trajectory(K_train, y, times, *, K_test=None, f0_train=None, f0_test=None,
                          lr: float = 1.0) -> LinearizedTrajectory:
    r"""Outputs of an infinitely wide network trained by gradient flow on the squared loss.

    With ``Θ = V diag(λ) Vᵀ`` and the residual ``r = Vᵀ (y - f_0(X))``,

    .. math::

        f_t(X) = f_0(X) + V \operatorname{diag}(1 - e^{-η λ t})\, r, \qquad
        f_t(X_*) = f_0(X_*) + Θ_{*X} V \operatorname{diag}\Big(\frac{1 - e^{-η λ t}}{λ}\Big) r,

    the solution of ``df/dt = -η Θ (f(X) - y)`` (Lee et al. 2019, eq. 9-10).

    Parameters
    ----------
    K_train : array_like, shape (n, n)
        The NTK ``Θ`` among the training inputs (symmetric positive semi-definite).
    y : array_like, shape (n,) or (n, C)
        Targets (for classification e.g. one-hot labels minus ``1/C``).
    times : array_like, shape (T,)
        Times ``t >= 0``; ``np.inf`` gives the limit.
    K_test : array_like, shape (m, n), optional
        ``Θ(X_*, X)`` between test and training inputs.
    f0_train : array_like, shape of ``y``, optional
        Outputs at initialisation on the training inputs; default 0, i.e. the mean over
        initialisations (the output at initialisation is a centred Gaussian process).
    f0_test : array_like, shape (m,) or (m, C), optional
        Outputs at initialisation on the test inputs (needs ``K_test``); default 0.
    lr : float, default 1.0
        Learning rate ``η > 0``; only ``η t`` matters. The loss is the summed
        ``½ Σ_i ||f(x_i) - y_i||²``: for the mean over ``n`` samples use ``η / n``.

    Returns
    -------
    LinearizedTrajectory
        ``.train (T, n, C)``, ``.test (T, m, C)`` or None, ``.times``, ``.eigenvalues``;
        the class axis is absent when ``y`` is 1-D.

    Raises
    ------
    ValueError
        Shapes that do not match, NaN or inf, an asymmetric ``K_train`` or one with an
        eigenvalue below ``-1e-6 λ_max``, negative or NaN times, ``lr <= 0``, or
        ``f0_test`` without ``K_test``.

    Notes
    -----
    One symmetric eigendecomposition (``O(n³)``) and, with test points, one product
    ``Θ_{*X} V`` (``O(m n²)``); then each time costs one product, ``O((n + m) n C)``.
    Eigenvalues below ``n eps λ_max`` are treated as 0: such a mode does not move on the
    training inputs; on the test inputs its coefficient is the limit ``η t`` (0 at
    ``t = ∞``, where the test outputs are ``f_0 + Θ_{*X} Θ^+ (y - f_0)``). Modes with
    tiny positive ``λ`` make the ``t = ∞`` test outputs ill-conditioned, as in kernel
    regression without a ridge.

    References
    ----------
    Lee et al. (2019), Wide neural networks of any depth evolve as linear models under
    gradient descent, NeurIPS; Jacot, Gabriel & Hongler (2018).
    """
    K_train = check_kernel_matrix(K_train, "K_train", symmetric=True)
    n = K_train.shape[0]
    y = check_targets(y, n)
    times = _check_times(times)
    lr = _positive(lr, "lr")
    if K_test is not None:
        K_test = check_kernel_matrix(K_test, "K_test", shape=(None, n))
    elif f0_test is not None:
        raise ValueError("f0_test needs K_test (the kernel between the test and training inputs)")
    vector = y.ndim == 1
    y2 = y[:, None] if vector else y
    f0 = _check_initial(f0_train, y.shape, "f0_train").reshape(y2.shape)
    lam, V = _eigen(K_train)
    r = V.T @ (y2 - f0)  # (n, C)
    decay, test_coef = _coefficients(lam, times, lr)
    train = f0 + V @ (decay[:, :, None] * r)  # (T, n, C)
    test = None
    if K_test is not None:
        m = K_test.shape[0]
        g0 = _check_initial(f0_test, (m,) if vector else (m, y2.shape[1]), "f0_test").reshape(m, -1)
        test = g0 + (K_test @ V) @ (test_coef[:, :, None] * r)  # (T, m, C)
    if vector:
        train = train[..., 0]
        test = None if test is None else test[..., 0]
    return LinearizedTrajectory(times, train, test, lam)


# ---------------------------------------------------------------------------- probabilities
def _check_outputs(f) -> np.ndarray:
    f = np.asarray(f, dtype=np.float64)
    if f.ndim < 1 or f.shape[-1] < 2:
        raise ValueError(f"f: expected outputs of shape (..., C) with C >= 2 classes, got shape {f.shape}")
    if not np.isfinite(f).all():
        raise ValueError("f contains NaN or inf")
    return f


def probabilities_from_outputs(f, temperature: float = 1.0) -> np.ndarray:
    r"""Class probabilities from network outputs: ``softmax(f / T)`` along the last axis.

    .. math::

        p_c = \frac{e^{f_c / T}}{\sum_{c'} e^{f_{c'} / T}}.

    A network trained on the squared loss (the setting of the NTK theory) does not output
    log-probabilities: its outputs approach the regression targets (e.g. one-hot minus
    ``1/C``), which a softmax at ``T = 1`` maps to barely confident probabilities. Placing
    such outputs among the probability models of trained classifiers is therefore our
    choice, and the temperature is a free parameter of it. Two ways to fix it
    (:func:`fit_temperature`): the temperature of least cross-entropy on held-out labelled
    samples (temperature scaling, Guo et al. 2017; on the training samples, which the flow
    interpolates as ``t → ∞``, the least cross-entropy is at ``T → 0``), or the one at which
    the final kernel model has the train-probe cross-entropy of the final finite-width
    networks it is compared with, so that both end at the same distance from the truth.
    One temperature serves every checkpoint of a trajectory.

    Parameters
    ----------
    f : array_like, shape (..., C)
        Outputs, e.g. :attr:`LinearizedTrajectory.test` of shape ``(T, m, C)``.
    temperature : float, default 1.0
        ``T > 0``.

    Returns
    -------
    ndarray, shape of ``f``, float64
        Probabilities, each row summing to 1.

    Raises
    ------
    ValueError
        Fewer than 2 classes, NaN or inf, or ``temperature <= 0``.
    """
    f = _check_outputs(f)
    temperature = _positive(temperature, "temperature")
    return np.exp(log_softmax(f / temperature, axis=-1))


@dataclass(frozen=True)
class TemperatureFit:
    """A temperature for :func:`probabilities_from_outputs`.

    Attributes
    ----------
    temperature : float
        The temperature found.
    cross_entropy : float
        Mean cross-entropy ``-(1/N) Σ_i log p_{i, y_i}`` at that temperature (nats).
    at_bound : bool
        Whether the search ended within 1e-3 (in ``log T``) of a bound of ``bounds``: the
        optimum may lie beyond it (e.g. ``T → 0`` when every sample's top output is its label).
    """

    temperature: float
    cross_entropy: float
    at_bound: bool


def _cross_entropy(f: np.ndarray, labels: np.ndarray, temperature: float) -> float:
    """Mean ``-log softmax(f_i / T)_{y_i}``, as ``m + log1p(Σ_{c ≠ argmax} e^{g_c - m})`` with
    ``g = (f_i - f_{i y_i}) / T`` and ``m = max g``: accurate when it is tiny (confident,
    correct outputs at a low temperature), where ``log(1 + ...)`` would round to 0."""
    rows = np.arange(f.shape[0])
    g = (f - f[rows, labels][:, None]) / temperature
    top = g.argmax(axis=1)
    m = g[rows, top]
    e = np.exp(g - m[:, None])
    e[rows, top] = 0.0
    return float(np.mean(m + np.log1p(e.sum(axis=1))))


def fit_temperature(f, labels, *, target: float | None = None,
                    bounds: tuple[float, float] = (1e-3, 1e3)) -> TemperatureFit:
    r"""The temperature ``T`` of :func:`probabilities_from_outputs` fitted to labelled outputs.

    .. math::

        \operatorname{CE}(T) = -\frac{1}{N} \sum_i \log \operatorname{softmax}(f_i / T)_{y_i},
        \qquad T^* = \arg\min_T \operatorname{CE}(T)
        \quad \text{or} \quad \arg\min_T (\operatorname{CE}(T) - \text{target})^2.

    Parameters
    ----------
    f : array_like, shape (N, C)
        Outputs of one model on labelled samples (e.g. the final linearised train-probe
        outputs).
    labels : array_like of int, shape (N,)
        Class labels in ``[0, C)``.
    target : float, optional
        A cross-entropy to match (e.g. the final finite-width networks' mean train-probe
        cross-entropy) instead of the least one; ``> 0``.
    bounds : (float, float), default (1e-3, 1e3)
        Search interval ``0 < T_lo < T_hi``.

    Returns
    -------
    TemperatureFit

    Raises
    ------
    ValueError
        Bad shapes, NaN or inf, labels outside ``[0, C)``, ``target <= 0`` or bad bounds.

    Notes
    -----
    A bounded Brent search (:func:`scipy.optimize.minimize_scalar`) on ``log T``, to
    ``1e-6`` in ``log T``. ``CE(T)`` need not be unimodal in general; with ``target``,
    ``CE`` may cross it more than once or never (then the closest bound is returned, with
    ``at_bound``).

    References
    ----------
    Guo, Pleiss, Sun & Weinberger (2017), On calibration of modern neural networks, ICML.
    """
    f = _check_outputs(f)
    if f.ndim != 2:
        raise ValueError(f"f: expected shape (N, C), got shape {f.shape}")
    labels = np.asarray(labels)
    if labels.shape != (f.shape[0],) or labels.dtype.kind not in "iu":
        raise ValueError(f"labels: expected integers of shape ({f.shape[0]},), got {labels.dtype} "
                         f"of shape {labels.shape}")
    if ((labels < 0) | (labels >= f.shape[1])).any():
        raise ValueError(f"labels must lie in [0, {f.shape[1]})")
    if target is not None:
        target = _positive(target, "target")
    lo, hi = (_positive(b, "bounds") for b in bounds)
    if not lo < hi:
        raise ValueError(f"bounds must satisfy 0 < low < high, got {bounds!r}")
    labels = labels.astype(np.intp)

    def objective(log_t: float) -> float:
        ce = _cross_entropy(f, labels, math.exp(log_t))
        return ce if target is None else (ce - target) ** 2

    log_lo, log_hi = math.log(lo), math.log(hi)
    res = minimize_scalar(objective, bounds=(log_lo, log_hi), method="bounded", options={"xatol": 1e-6})
    # Brent never evaluates the bounds themselves: a bound at least as good wins (e.g. CE
    # flat at 0 below some T when every top output is its label).
    log_t = min((log_lo, log_hi, float(res.x)), key=objective)
    temperature = math.exp(log_t)
    at_bound = min(log_t - log_lo, log_hi - log_t) < 1e-3
    return TemperatureFit(temperature, _cross_entropy(f, labels, temperature), bool(at_bound))
