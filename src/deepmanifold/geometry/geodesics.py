r"""Reference models, the ignorance-to-truth geodesic, and progress along it.

For a labelled sample set (labels ``y_i``, ``C`` classes) the *ignorance* model
predicts ``1/C`` for every class and the *truth* model the one-hot label. On the
unit sphere of ``sqrt p`` they are joined, per sample, by the great circle

.. math::

    \sqrt{\gamma_i(t)} = \frac{\sin((1-t)\theta)\,\sqrt{p^0_i}
                         + \sin(t\theta)\,\sqrt{p^*_i}}{\sin\theta},
    \qquad \cos\theta = 1/\sqrt{C}, \quad t \in [0, 1].

For any model ``P``, with ``a_i = sum_c sqrt(p_ic / C)`` and ``b_i = sqrt(p_{i,y_i})``,

.. math::

    \langle \sqrt{p_i}, \sqrt{\gamma_i(t)} \rangle
    = \frac{a_i \sin((1-t)\theta) + b_i \sin(t\theta)}{\sin\theta},

so the progress of ``P`` along the geodesic and its distance to it need only
these ``2n`` numbers (Mao et al., PNAS 2024).
"""

from __future__ import annotations

import numpy as np

from ._validation import check_floor, check_labels, check_n_classes, check_probabilities
from .divergences import clamp_coefficients, sqrt_probabilities, warn_clamped

__all__ = [
    "distance_to_geodesic",
    "geodesic",
    "ignorance",
    "progress",
    "progress_and_distance",
    "truth",
]

# Elements of a (models x samples) chunk processed at once (8 MiB of float64).
_CHUNK_ELEMENTS = 1 << 20
_T_TOL = 1e-12
_MAX_ITER = 200


def _angle(n_classes: int) -> float:
    """Angle between ignorance and truth on the sphere: ``arccos(1/sqrt(C))``."""
    return float(np.arccos(1.0 / np.sqrt(n_classes)))


def _labels_and_classes(labels, n_classes) -> tuple[np.ndarray, int]:
    n_classes = check_n_classes(n_classes)
    labels = np.asarray(labels)
    return check_labels(labels, labels.shape[0] if labels.ndim else -1, n_classes), n_classes


def ignorance(labels, n_classes: int) -> np.ndarray:
    """The ignorance model ``P0``: ``p_i = (1/C, ..., 1/C)`` for every sample.

    Parameters
    ----------
    labels : array_like of int, shape (n,)
        Class labels in ``[0, n_classes)`` (only their number is used).
    n_classes : int
        Number of classes ``C >= 2``.

    Returns
    -------
    ndarray, shape (n, C), float64
    """
    labels, n_classes = _labels_and_classes(labels, n_classes)
    return np.full((labels.shape[0], n_classes), 1.0 / n_classes)


def truth(labels, n_classes: int) -> np.ndarray:
    """The truth model ``P*``: ``p_i`` is the one-hot vector of label ``y_i``.

    Parameters
    ----------
    labels : array_like of int, shape (n,)
        Class labels in ``[0, n_classes)``.
    n_classes : int
        Number of classes ``C >= 2``.

    Returns
    -------
    ndarray, shape (n, C), float64
    """
    labels, n_classes = _labels_and_classes(labels, n_classes)
    return np.eye(n_classes)[labels]


def geodesic(labels, n_classes: int, t) -> np.ndarray:
    r"""Models on the great circle from ignorance (``t = 0``) to truth (``t = 1``).

    Per sample ``sqrt(gamma_i(t)) = [sin((1-t)θ) sqrt(p0_i) + sin(tθ) sqrt(p*_i)] / sin θ``
    with ``cos θ = 1/sqrt(C)``; the returned probabilities are its square. Along
    the curve ``d_B(γ(s), γ(t)) = -ln cos(|s - t| θ)``.

    Parameters
    ----------
    labels : array_like of int, shape (n,)
        Class labels in ``[0, n_classes)``.
    n_classes : int
        Number of classes ``C >= 2``.
    t : float or array_like of float, shape (m,)
        Positions in ``[0, 1]``.

    Returns
    -------
    ndarray, float64
        Shape ``(n, C)`` for scalar ``t``, ``(m, n, C)`` for a 1-D ``t``.
        ``γ(0)`` is exactly uniform and ``γ(1)`` exactly one-hot.

    Raises
    ------
    ValueError
        Bad labels or ``n_classes``; ``t`` not finite, outside ``[0, 1]`` or more
        than 1-D.
    """
    labels, n_classes = _labels_and_classes(labels, n_classes)
    t_arr = np.asarray(t, dtype=np.float64)
    if t_arr.ndim > 1:
        raise ValueError(f"t must be a scalar or 1-D, got shape {t_arr.shape}")
    if not np.all(np.isfinite(t_arr)) or np.any((t_arr < 0) | (t_arr > 1)):
        raise ValueError(f"t must lie in [0, 1], got {t!r}")
    theta = _angle(n_classes)
    ts = np.atleast_1d(t_arr)
    alpha = np.sin((1.0 - ts) * theta) / np.sin(theta)  # weight of sqrt(p0)
    beta = np.sin(ts * theta) / np.sin(theta)  # weight of sqrt(p*)
    n = labels.shape[0]
    out = np.empty((ts.shape[0], n, n_classes))
    out[...] = (alpha**2 / n_classes)[:, None, None]
    out[:, np.arange(n), labels] = ((alpha / np.sqrt(n_classes) + beta) ** 2)[:, None]
    return out[0] if t_arr.ndim == 0 else out


def progress(P, labels, *, log: bool = False, floor: float = 1e-12):
    r"""Progress ``λ(P)`` of a model along the ignorance-to-truth geodesic.

    .. math::

        \lambda(P) = \operatorname*{arg\,min}_{t \in [0, 1]} f(t), \qquad
        f(t) = -\frac{1}{n} \sum_i \log
        \frac{a_i \sin((1-t)\theta) + b_i \sin(t\theta)}{\sin\theta},

    with ``a_i = sum_c sqrt(p_ic / C)``, ``b_i = sqrt(p_{i,y_i})`` and
    ``cos θ = 1/sqrt(C)``. ``λ(P0) = 0``, ``λ(P*) = 1`` and ``λ(γ(t)) = t``.

    Parameters
    ----------
    P : array_like, shape (n, C) or (T, n, C)
        One model or ``T`` models; ``C`` is taken from the last axis.
    labels : array_like of int, shape (n,)
        True labels of the samples.
    log : bool, default False
        ``P`` holds natural-log probabilities.
    floor : float, default 1e-12
        Guards the logarithm: inner products below ``floor`` are raised to it
        in the reported distance (with a :class:`ClampWarning`). The argmin is
        that of the unclamped objective. An inner product is at least
        ``min(1/sqrt(C), sqrt(p_{i,y_i}))`` away from ``t = 1``, so with the
        default floor clamping is practically unreachable.

    Returns
    -------
    float or ndarray of shape (T,)
        Accurate to ~1e-12 in ``t``.

    Notes
    -----
    Each term ``-log(R_i cos(θt - φ_i))`` is convex on ``[0, 1]``, and
    ``f''(t) = θ² + mean_i (g_i'/g_i)² > 0``, so the minimiser is unique. It is
    ``0`` if ``f'(0) >= 0``, ``1`` if ``f'(1) <= 0``, otherwise the root of
    ``f'``, found by Newton's method safeguarded by bisection, vectorised over
    models (typically < 10 iterations, at most ~45).

    References
    ----------
    J. Mao et al., "The training process of many deep networks explores the
    same low-dimensional manifold", PNAS 121 (12), 2024.
    """
    return _fit(P, labels, log=log, floor=floor)[0]


def distance_to_geodesic(P, labels, *, log: bool = False, floor: float = 1e-12):
    """Intensive Bhattacharyya distance from ``P`` to the nearest geodesic point.

    The minimum value ``f(λ(P))`` of the objective of :func:`progress`, i.e.
    ``d_B(P, γ(λ(P)))``: the "tube" coordinate. Parameters and shapes as in
    :func:`progress`; a :class:`ClampWarning` is emitted if any inner product
    was clamped at ``floor``.
    """
    return _fit(P, labels, log=log, floor=floor)[1]


def progress_and_distance(P, labels, *, log: bool = False, floor: float = 1e-12):
    """Both :func:`progress` and :func:`distance_to_geodesic`, in one pass.

    Returns
    -------
    (progress, distance) : tuple of float, or of ndarray of shape (T,)
    """
    return _fit(P, labels, log=log, floor=floor)


def _fit(P, labels, *, log: bool, floor: float):
    """Validate, then progress and distance per model, in chunks of models.

    Called directly by each public function, so that the ClampWarning points
    at the user's line (stacklevel 4).
    """
    floor = check_floor(floor)
    P = check_probabilities(P, "P", log=log, ndim=(2, 3))
    n_classes = check_n_classes(P.shape[-1])
    labels = check_labels(labels, P.shape[-2], n_classes)
    models = P if P.ndim == 3 else P[None]
    T, n, _ = models.shape
    theta = _angle(n_classes)
    t_star = np.empty(T)
    value = np.empty(T)
    clamped = 0
    step = max(1, _CHUNK_ELEMENTS // n)
    for t0 in range(0, T, step):
        a, b = _coefficients(models[t0:t0 + step], labels, log=log)
        t_star[t0:t0 + step] = _minimise(a, b, theta, floor)
        value[t0:t0 + step], chunk_clamped = _objective(a, b, t_star[t0:t0 + step], theta, floor)
        clamped += chunk_clamped
    warn_clamped(clamped, "(model, sample) inner products with the geodesic", floor, stacklevel=4)
    if P.ndim == 2:
        return float(t_star[0]), float(value[0])
    return t_star, value


def _coefficients(models: np.ndarray, labels: np.ndarray, *, log: bool):
    """``a = <sqrt p, sqrt p0>`` and ``b = sqrt p_y``, each ``(T, n)`` float64."""
    root = sqrt_probabilities(models, log=log, dtype=np.float64)
    a = root.sum(axis=-1) / np.sqrt(models.shape[-1])
    b = np.take_along_axis(root, labels[None, :, None], axis=-1)[..., 0]
    return a, b


def _inner(a, b, t, theta):
    """Unnormalised inner products ``g_i(t) = a_i sin((1-t)θ) + b_i sin(tθ)`` and ``g_i'(t)``."""
    t = t[:, None]
    g = a * np.sin((1.0 - t) * theta) + b * np.sin(t * theta)
    dg = theta * (b * np.cos(t * theta) - a * np.cos((1.0 - t) * theta))
    return g, dg


def _derivatives(a, b, t, theta, floor):
    """``f'(t)`` and ``f''(t) = θ² + mean((g'/g)²)`` (uses ``g'' = -θ² g``)."""
    g, dg = _inner(a, b, t, theta)
    # Guard g = 0 (b_i = 0 at t = 1): keeps the sign of g'/g, i.e. f' -> +large.
    ratio = dg / np.maximum(g, floor * np.sin(theta))
    return -ratio.mean(axis=1), theta**2 + np.square(ratio).mean(axis=1)


def _minimise(a, b, theta, floor) -> np.ndarray:
    """Vectorised argmin over ``[0, 1]`` of the strictly convex objective."""
    m = a.shape[0]
    slope0 = _derivatives(a, b, np.zeros(m), theta, floor)[0]
    slope1 = _derivatives(a, b, np.ones(m), theta, floor)[0]
    t = np.where(slope0 >= 0, 0.0, 1.0)
    active = np.flatnonzero((slope0 < 0) & (slope1 > 0))  # root of f' inside (0, 1)
    lo, hi = np.zeros(active.size), np.ones(active.size)
    x = np.full(active.size, 0.5)
    for _ in range(_MAX_ITER):
        if active.size == 0:
            break
        d1, d2 = _derivatives(a[active], b[active], x, theta, floor)
        lo = np.where(d1 < 0, x, lo)
        hi = np.where(d1 > 0, x, hi)
        new = x - d1 / d2
        outside = ~((new > lo) & (new < hi))
        new[outside] = 0.5 * (lo[outside] + hi[outside])
        done = (np.abs(new - x) <= _T_TOL) | (hi - lo <= _T_TOL) | (d1 == 0)
        t[active[done]] = np.where(d1[done] == 0, x[done], new[done])
        keep = ~done
        active, lo, hi, x = active[keep], lo[keep], hi[keep], new[keep]
    t[active] = x  # not reached in practice: bisection alone converges in ~41 steps
    return t


def _objective(a, b, t, theta, floor) -> tuple[np.ndarray, int]:
    """``f(t)`` per model with inner products clamped to ``[floor, 1]``, and the clamp count."""
    inner = _inner(a, b, t, theta)[0] / np.sin(theta)
    counts = clamp_coefficients(inner, floor)
    value = -np.log(inner).mean(axis=1) + 0.0  # + 0.0 turns -0.0 into 0.0
    return value, 0 if counts is None else int(counts.sum())
