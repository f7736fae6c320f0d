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
these ``2n`` numbers (Mao et al., PNAS 2024). :func:`progress`,
:func:`distance_to_geodesic` and :func:`progress_and_distance` read ``P`` once,
in blocks of models (an ``np.memmap`` of any size is fine), reduce each block to
``(a, b)`` and minimise over ``t`` for all models of the block at once.
:func:`geodesic_coefficients` and :func:`progress_from_coefficients` split those
two steps for callers that keep or stream the ``(a, b)`` of their models, and
:func:`distance_to_geodesic_point` gives ``d_B(P, γ(t))`` at a given ``t`` from
them. Inner products with the geodesic are clamped like Bhattacharyya
coefficients (:mod:`deepmanifold.geometry.divergences`): raised to ``floor``
when below it, kept above 1, and the distance clipped at 0.
"""

from __future__ import annotations

import numpy as np

from . import _progress
from .divergences import FLOOR, mean_log_distance, warn_clamped
from .validation import check_floor, check_labels, check_n_classes, check_probabilities

__all__ = [
    "distance_to_geodesic",
    "distance_to_geodesic_point",
    "geodesic",
    "geodesic_between",
    "geodesic_coefficients",
    "ignorance",
    "progress",
    "progress_and_distance",
    "progress_from_coefficients",
    "truth",
]

# A block of models is read, validated and reduced to (a, b) at once: at most
# _INPUT_ELEMENTS input elements (models x samples x classes) and _SOLVE_ELEMENTS
# (models x samples), so that the solver's float64 temporaries (512 KiB each)
# stay in cache.
_INPUT_ELEMENTS = 1 << 20
_SOLVE_ELEMENTS = 1 << 16
_CLAMPED = "(model, sample) inner products with the geodesic"  # what a ClampWarning counts
_SMALL_ANGLE = 1e-9  # below this a sample's great circle is interpolated linearly


_angle = _progress.angle


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


def geodesic_between(P, Q, t, *, log: bool = False) -> np.ndarray:
    r"""Models on the geodesic from ``P`` (``t = 0``) to ``Q`` (``t = 1``), any two models.

    Per sample, the great circle of the unit sphere joining ``x_i = sqrt p_i``
    and ``z_i = sqrt q_i`` (each scaled to unit norm), run at constant speed:

    .. math::

        \sqrt{r_i(t)} = rac{\sin((1-t)\omega_i)\, x_i + \sin(t\omega_i)\, z_i}{\sin\omega_i},
        \qquad \cos\omega_i = \langle x_i, z_i 
angle = \mathrm{BC}_i(P, Q),

    so every sample moves the same fraction ``t`` of its own angle, and along
    the curve (docs/method.md §3.5)

    .. math::

        d_B(r(s), r(t)) = -rac{1}{n} \sum_i \log\cos(|s - t|\,\omega_i).

    ``geodesic_between(ignorance, truth, t)`` is :func:`geodesic`. The path
    stays in the non-negative orthant (``ω_i <= π/2``), so its squares are
    probabilities.

    Parameters
    ----------
    P, Q : array_like, shape (n, C)
        The two end models (probabilities, or log-probabilities with ``log=True``).
    t : float or array_like of float, shape (m,)
        Positions in ``[0, 1]``.
    log : bool, default False
        ``P`` and ``Q`` hold natural-log probabilities.

    Returns
    -------
    ndarray, float64
        Shape ``(n, C)`` for scalar ``t``, ``(m, n, C)`` for a 1-D ``t``; each
        row sums to 1 within ~1e-16. A sample on which ``P`` and ``Q`` agree
        (``ω_i < 1e-9``) is interpolated linearly in ``sqrt p``.

    Raises
    ------
    ValueError
        Invalid probabilities; ``P`` and ``Q`` of different shapes; ``t`` not
        finite, outside ``[0, 1]`` or more than 1-D.
    """
    x = _unit_root(check_probabilities(np.asarray(P), "P", log=log, ndim=2), log)
    z = _unit_root(check_probabilities(np.asarray(Q), "Q", log=log, ndim=2), log)
    if x.shape != z.shape:
        raise ValueError(f"P and Q must have the same shape (n, C), got {x.shape} and {z.shape}")
    t_arr = np.asarray(t, dtype=np.float64)
    if t_arr.ndim > 1 or not np.all(np.isfinite(t_arr)) or np.any((t_arr < 0) | (t_arr > 1)):
        raise ValueError(f"t must be a value in [0, 1] or a 1-D array of such values, got {t!r}")
    ts = np.atleast_1d(t_arr)[:, None]
    chord = np.sqrt(np.einsum("ic,ic->i", x - z, x - z))
    omega = 2.0 * np.arcsin(np.minimum(chord / 2.0, 1.0))  # accurate for small angles too
    moving = omega >= _SMALL_ANGLE
    w0, w1 = np.repeat(1.0 - ts, x.shape[0], axis=1), np.repeat(ts, x.shape[0], axis=1)  # linear, (m, n)
    sin_omega = np.sin(omega[moving])
    w0[:, moving] = np.sin((1.0 - ts) * omega[moving]) / sin_omega
    w1[:, moving] = np.sin(ts * omega[moving]) / sin_omega
    out = np.square(w0[..., None] * x + w1[..., None] * z)
    return out[0] if t_arr.ndim == 0 else out


def _unit_root(X: np.ndarray, log: bool) -> np.ndarray:
    """float64 ``sqrt p`` of validated (log-)probabilities, each sample scaled to unit norm."""
    root = np.exp(0.5 * X.astype(np.float64)) if log else np.sqrt(X.astype(np.float64))
    return root / np.sqrt(np.einsum("ic,ic->i", root, root))[:, None]


def progress(P, labels, *, log: bool = False, method: str = "angle", floor: float = FLOOR):
    r"""Progress ``λ(P)`` of a model along the ignorance-to-truth geodesic (docs/method.md §3.3).

    The position ``t`` in ``[0, 1]`` of the geodesic point closest to ``P``,
    with ``g_i(t) = [a_i sin((1-t)θ) + b_i sin(tθ)] / sin θ`` the inner product
    of ``sqrt p_i`` with ``sqrt γ_i(t)``, ``a_i = sum_c sqrt(p_ic / C)``,
    ``b_i = sqrt(p_{i,y_i})`` and ``cos θ = 1/sqrt(C)``:

    .. math::

        \lambda(P) = \operatorname*{arg\,min}_{t \in [0, 1]} \sum_i \arccos g_i(t)
        \quad (\texttt{"angle"}), \qquad
        \lambda_B(P) = \operatorname*{arg\,min}_{t \in [0, 1]} -\frac{1}{n} \sum_i \log g_i(t)
        \quad (\texttt{"bhattacharyya"}).

    Both give ``λ(P0) = 0``, ``λ(P*) = 1`` and ``λ(γ(t)) = t``; off the
    geodesic they differ (a model 85 % right and 15 % wrong at confidence 0.99
    on ``C = 10`` classes has ``λ ≈ 0.92`` and ``λ_B ≈ 0.67``).

    Parameters
    ----------
    P : array_like, shape (n, C) or (T, n, C)
        One model or ``T`` models; ``C`` is taken from the last axis. A
        ``(T, n, C)`` array (e.g. an ``np.memmap``) is read once, in blocks of
        models, with bounded temporary memory. Each sample's ``sqrt p`` is
        scaled to unit norm (float32 rows sum to 1 only within ~1e-7).
    labels : array_like of int, shape (n,)
        True labels of the samples.
    log : bool, default False
        ``P`` holds natural-log probabilities.
    method : {"angle", "bhattacharyya"}, default "angle"
        ``"angle"``: the sum over samples of the Bhattacharyya angle
        ``arccos g_i`` (the reference study's definition). ``"bhattacharyya"``:
        the intensive Bhattacharyya distance ``d_B(P, γ(t))``.
    floor : float, default :data:`FLOOR` (1e-12)
        Guards the logarithm of the distance reported by
        :func:`distance_to_geodesic` and :func:`progress_and_distance`
        (validated here, used there): inner products below ``floor`` are
        raised to it (with a :class:`ClampWarning`). The argmin is that of the
        unclamped objective. An inner product is at least
        ``a_i sin((1-t)θ) / sin θ >= sin((1-t)θ) / (sqrt(C) sin θ)``, so only
        ``t`` near 1 can clamp: ``λ_B < 1`` as soon as one sample has
        ``p_{i,y_i} = 0`` (then ``d_B(P, γ(1)) = +inf``), while the angle
        definition may put such a model at ``λ = 1``, where that sample's
        inner product is 0 and clamps.

    Returns
    -------
    float or ndarray of shape (T,)
        Within 1e-12 of the exact minimiser.

    Raises
    ------
    ValueError
        Invalid probabilities or labels; ``method`` not one of the two.

    Notes
    -----
    ``"bhattacharyya"``: each term ``-log g_i`` is strictly convex because
    ``g_i'' = -θ² g_i``; ``f''(t) = θ² + mean_i (g_i'/g_i)² >= θ² > 0``. The
    minimiser is ``0`` if ``f'(0) >= 0``, ``1`` if ``f'(1) <= 0`` (closed forms
    in ``r_i = b_i / a_i``), otherwise the root of ``f'``, found for all models
    of a block at once by Newton's method safeguarded by bisection (typically
    4-5 iterations).

    ``"angle"``: in the plane of sample ``i``'s great circle, ``sqrt p_i`` has
    coordinates ``(x_i, y_i)`` and squared distance ``h_i`` from the plane;
    with ``s_i = y_i cos(tθ) - x_i sin(tθ)`` the angle ``A_i(t)`` to
    ``sqrt γ_i(t)`` has ``A_i' = -θ s_i / sqrt(h_i + s_i²)`` and
    ``A_i'' = θ² g_i h_i / (h_i + s_i²)^{3/2} >= 0``, so the objective is convex
    (not strictly: a sample on the geodesic contributes the kink
    ``|tθ - φ_i|``). Its minimiser is bracketed by the sign of the right
    derivative and found by Newton steps inside the bracket, bisection
    otherwise (typically 5-10 iterations). Computing the angle as
    ``atan2(sqrt(h_i + s_i²), g_i)`` rather than ``arccos g_i`` keeps it accurate
    near 0. Cost for either: one pass over ``P``, then ``O(T n)`` per iteration.

    References
    ----------
    J. Mao et al., "The training process of many deep networks explores the
    same low-dimensional manifold", PNAS 121 (12), 2024.
    """
    return _fit(P, labels, log=log, method=method, floor=floor, distance=False)[0]


def distance_to_geodesic(P, labels, *, log: bool = False, method: str = "angle", floor: float = FLOOR):
    """Intensive Bhattacharyya distance from ``P`` to its point on the geodesic.

    ``d_B(P, γ(λ(P)))``, the "tube" coordinate (docs/method.md §3.4), with
    ``λ`` the progress of ``method``. For ``"bhattacharyya"`` it is the
    minimum of ``d_B(P, γ(t))`` over ``t``; for ``"angle"`` it is ``d_B`` at the
    angle's minimiser, never smaller than that minimum. Parameters and shapes
    as in :func:`progress`; a :class:`ClampWarning` is emitted if any inner
    product was clamped at ``floor``.
    """
    return _fit(P, labels, log=log, method=method, floor=floor)[1]


def progress_and_distance(P, labels, *, log: bool = False, method: str = "angle", floor: float = FLOOR):
    """Both :func:`progress` and :func:`distance_to_geodesic`, in one pass.

    Returns
    -------
    (progress, distance) : tuple of float, or of ndarray of shape (T,)
    """
    return _fit(P, labels, log=log, method=method, floor=floor)


def geodesic_coefficients(P, labels, *, log: bool = False):
    r"""The ``2n`` numbers per model that locate it relative to the geodesic.

    ``a_i = <sqrt p_i, sqrt p0_i> = sum_c sqrt(p_ic / C)`` and
    ``b_i = <sqrt p_i, sqrt p*_i> = sqrt(p_{i,y_i})``, each divided by the norm
    of ``sqrt p_i`` (1 up to the row-sum rounding of the input), so that
    ``<sqrt p_i, sqrt γ_i(t)> = [a_i sin((1-t)θ) + b_i sin(tθ)] / sin θ``.
    Keep them instead of the ``n C`` probabilities (e.g. one checkpoint at a
    time during training) and pass them to :func:`progress_from_coefficients`.

    Parameters
    ----------
    P : array_like, shape (n, C) or (T, n, C)
        Probabilities (or log-probabilities with ``log=True``), validated as
        in :func:`progress`; read once, in blocks of models.
    labels : array_like of int, shape (n,)
        True labels of the samples.
    log : bool, default False
        ``P`` holds natural-log probabilities.

    Returns
    -------
    (a, b) : tuple of float64 ndarray, each of shape (n,) or (T, n)
        ``1/sqrt(C) <= a_i <= 1`` and ``0 <= b_i <= 1``; the result takes
        ``16 T n`` bytes.
    """
    models, labels, single, checked = _prepare(P, labels, log)
    T, n, _ = models.shape
    a, b = np.empty((T, n)), np.empty((T, n))
    for start, a_block, b_block in _coefficient_blocks(models, labels, log=log, checked=checked):
        a[start:start + a_block.shape[0]] = a_block
        b[start:start + b_block.shape[0]] = b_block
    return (a[0], b[0]) if single else (a, b)


def progress_from_coefficients(a, b, n_classes: int, *, method: str = "angle", floor: float = FLOOR,
                               return_distance: bool = False):
    """Progress (and distance to the geodesic) from :func:`geodesic_coefficients`.

    Gives exactly what :func:`progress` / :func:`progress_and_distance` give
    for the model the coefficients came from.

    Parameters
    ----------
    a, b : array_like, shape (n,) or (T, n)
        Coefficients of one or ``T`` models on the same ``n`` samples: finite,
        ``a > 0`` and ``b >= 0``. The angle definition assumes each sample's
        ``sqrt p`` has unit norm, as :func:`geodesic_coefficients` makes it.
    n_classes : int
        Number of classes ``C >= 2`` of the models.
    method : {"angle", "bhattacharyya"}, default "angle"
        As in :func:`progress`.
    floor : float, default :data:`FLOOR` (1e-12)
        As in :func:`progress`.
    return_distance : bool, default False
        Also return the distance to the geodesic, ``d_B(P, γ(λ))``.

    Returns
    -------
    progress : float or ndarray of shape (T,)
        If ``return_distance``, the tuple ``(progress, distance)``.
    """
    floor = check_floor(floor)
    method = _progress.check_method(method)
    n_classes = check_n_classes(n_classes)
    a, b = _check_coefficients(a, b)
    single = a.ndim == 1
    a2, b2 = (a[None], b[None]) if single else (a, b)
    T, n = a2.shape
    t_star, value = np.empty(T), np.empty(T)
    clamped = 0
    step = max(1, _SOLVE_ELEMENTS // n)
    for start in range(0, T, step):
        block = slice(start, start + step)
        t_star[block], value[block], count = _solve(a2[block], b2[block], n_classes, floor, method,
                                                    return_distance)
        clamped += count
    warn_clamped(clamped, _CLAMPED, floor, stacklevel=3)
    if single:
        t_star, value = float(t_star[0]), float(value[0])
    return (t_star, value) if return_distance else t_star


def distance_to_geodesic_point(a, b, n_classes: int, t, *, floor: float = FLOOR):
    r"""``d_B(P, γ(t))`` from the geodesic coefficients of ``P``, at a given ``t``.

    .. math::

        d_B(P, \gamma(t)) = -\frac{1}{n} \sum_i \log
        \frac{a_i \sin((1-t)\theta) + b_i \sin(t\theta)}{\sin\theta},
        \qquad \cos\theta = 1/\sqrt{C},

    the objective that :func:`progress` minimises over ``t``. At ``t = λ(P)``
    it is :func:`distance_to_geodesic`; at any other ``t`` it is larger.

    Parameters
    ----------
    a, b : array_like, shape (n,) or (T, n)
        Coefficients of one or ``T`` models (:func:`geodesic_coefficients`):
        finite, ``a > 0`` and ``b >= 0``.
    n_classes : int
        Number of classes ``C >= 2`` of the models.
    t : float or array_like of shape (T,)
        Position on the geodesic, in ``[0, 1]``: one for all models, or one per model.
    floor : float, default :data:`FLOOR` (1e-12)
        Inner products below ``floor`` are raised to it (with a
        :class:`ClampWarning`); the distance is clipped at 0.

    Returns
    -------
    float or ndarray of shape (T,)

    Raises
    ------
    ValueError
        Bad coefficients, ``n_classes`` or ``floor``; ``t`` not finite, outside
        ``[0, 1]`` or of a shape other than ``()`` or ``(T,)``.

    Examples
    --------
    Ignorance (``a = 1``, ``b = 1/sqrt(C)``) is at distance ``ln(C) / 2`` from
    truth, ``γ(1)``:

    >>> import numpy as np
    >>> C = 10
    >>> a, b = np.ones(5), np.full(5, 1 / np.sqrt(C))
    >>> round(distance_to_geodesic_point(a, b, C, 1.0), 4), distance_to_geodesic_point(a, b, C, 0.0)
    (1.1513, 0.0)
    """
    floor = check_floor(floor)
    n_classes = check_n_classes(n_classes)
    a, b = _check_coefficients(a, b)
    models = a.shape[0] if a.ndim == 2 else 1
    t_arr = np.asarray(t, dtype=np.float64)
    if t_arr.shape not in ((), (models,)) or not np.all(np.isfinite(t_arr)) or np.any((t_arr < 0) | (t_arr > 1)):
        raise ValueError(f"t must be a value in [0, 1] or {models} such values (one per model), got {t!r}")
    value, clamped = _objective(np.atleast_2d(a), np.atleast_2d(b), np.broadcast_to(t_arr, (models,)),
                                _angle(n_classes), floor)
    warn_clamped(clamped, _CLAMPED, floor, stacklevel=3)
    return float(value[0]) if a.ndim == 1 else value


def _fit(P, labels, *, log: bool, method: str, floor: float, distance: bool = True):
    """Validate, then progress and (if ``distance``) distance per model, in blocks of models.

    Called directly by each public function, so that the ClampWarning points
    at the user's line (stacklevel 4).
    """
    floor = check_floor(floor)
    method = _progress.check_method(method)
    models, labels, single, checked = _prepare(P, labels, log)
    T, _, n_classes = models.shape
    t_star, value = np.empty(T), np.empty(T)
    clamped = 0
    for start, a, b in _coefficient_blocks(models, labels, log=log, checked=checked):
        block = slice(start, start + a.shape[0])
        t_star[block], value[block], count = _solve(a, b, n_classes, floor, method, distance)
        clamped += count
    warn_clamped(clamped, _CLAMPED, floor, stacklevel=4)
    if single:
        return float(t_star[0]), float(value[0])
    return t_star, value


def _prepare(P, labels, log: bool):
    """``(models (T, n, C), labels, single model?, already validated?)`` without reading ``P``.

    A ``(T, n, C)`` array is validated block by block as it is read (in
    :func:`_coefficient_blocks`), so that it is read only once.
    """
    X = np.asarray(P)  # no copy for ndarrays and memmaps
    if X.ndim not in (2, 3) or 0 in X.shape:
        check_probabilities(X, "P", log=log, ndim=(2, 3))  # raises the usual message
    n_classes = check_n_classes(X.shape[-1])
    labels = check_labels(labels, X.shape[-2], n_classes)
    if X.ndim == 2:
        return check_probabilities(X, "P", log=log, ndim=2)[None], labels, True, True
    return X, labels, False, False


def _coefficient_blocks(models, labels: np.ndarray, *, log: bool, checked: bool):
    """Yield ``(start, a, b)`` for consecutive blocks of models, each read once."""
    T, n, C = models.shape
    step = max(1, min(_INPUT_ELEMENTS // (n * C), _SOLVE_ELEMENTS // n))
    for start in range(0, T, step):
        block = models[start:start + step]
        if not checked:
            block = check_probabilities(block, "P", log=log, ndim=3, offset=start)
        yield (start, *_coefficients(block, labels, log=log))


def _coefficients(models: np.ndarray, labels: np.ndarray, *, log: bool):
    """``a = <sqrt p, sqrt p0>`` and ``b = sqrt p_y`` of the unit-norm ``sqrt p``, each ``(m, n)`` float64.

    ``sqrt p`` is taken in float64 (from float32 input without an extra copy)
    over at most ``_INPUT_ELEMENTS`` elements at a time, and each sample is
    scaled to unit norm: float32 softmax rows sum to 1 only within ~1e-7, and
    near the geodesic the angle objective moves by the square root of such an
    error.
    """
    m, n, C = models.shape
    a, b, norm = np.empty((m, n)), np.empty((m, n)), np.empty((m, n))
    step = max(1, _INPUT_ELEMENTS // (m * C))
    rows = np.arange(min(step, n))
    for s in range(0, n, step):
        part = models[:, s:s + step]
        k = part.shape[1]
        if log:
            root = np.multiply(part, 0.5, dtype=np.float64)
            np.exp(root, out=root)
        else:
            root = np.sqrt(part, dtype=np.float64)
        np.einsum("ijc->ij", root, out=a[:, s:s + k])  # faster than .sum(-1) for small C
        b[:, s:s + k] = root[:, rows[:k], labels[s:s + k]]
        np.einsum("ijc,ijc->ij", root, root, out=norm[:, s:s + k])
    np.sqrt(norm, out=norm)
    b /= norm
    norm *= np.sqrt(C)
    a /= norm
    return a, b


def _check_coefficients(a, b):
    """Validate the ``(a, b)`` given to :func:`progress_from_coefficients`."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape or a.ndim not in (1, 2) or 0 in a.shape:
        raise ValueError(
            f"a and b must have the same shape (n,) or (T, n), non-empty; got {a.shape} and {b.shape}"
        )
    if not (np.all(np.isfinite(a)) and np.all(np.isfinite(b))):
        raise ValueError("a and b must be finite")
    if not np.all(a > 0):
        raise ValueError("a must be positive (a_i = sum_c sqrt(p_ic / C) >= 1/sqrt(C))")
    if not np.all(b >= 0):
        raise ValueError("b must be non-negative (b_i = sqrt(p_{i,y_i}))")
    return a, b


def _solve(a: np.ndarray, b: np.ndarray, n_classes: int, floor: float, method: str, distance: bool):
    """``(t*, d_B(P, γ(t*)), number clamped)`` for a block of models given their ``(a, b)``.

    Without ``distance`` the distance is NaN and nothing is clamped.
    """
    t_star = _progress.argmin(a, b, n_classes, method)
    if not distance:
        return t_star, np.nan, 0
    value, clamped = _objective(a, b, t_star, _angle(n_classes), floor)
    return t_star, value, clamped


def _objective(a, b, t, theta, floor) -> tuple[np.ndarray, int]:
    """``f(t)`` per model (one ``t`` per row of ``a``, ``b``), and the number of inner products clamped."""
    t = t[:, None]
    inner = a * (np.sin((1.0 - t) * theta) / np.sin(theta))
    inner += b * (np.sin(t * theta) / np.sin(theta))
    return mean_log_distance(inner, floor)
