r"""Divergences between models evaluated on the same samples, and the clamping rule.

A *model* here is an array ``P`` of shape ``(n, C)``: one probability vector over
``C`` classes for each of ``n`` samples, the samples in a fixed order.

The clamping rule
-----------------
Every Bhattacharyya distance of :mod:`deepmanifold.geometry` (:func:`bhattacharyya`,
:func:`~deepmanifold.geometry.pairwise_distances` on every backend and tile, the
distances to the geodesic) follows one rule, so that a pair's distance does not
depend on how or with which other models it was computed:

1. each coefficient ``BC_i`` below ``floor`` (default :data:`FLOOR` = 1e-12) is
   raised to ``floor``, so a sample on which two models have disjoint supports
   contributes ``-log(floor) / n`` (27.6/n) instead of ``+inf``, and a
   :class:`ClampWarning` counts such terms;
2. coefficients above 1 are left as they are: they come only from rounding
   (float32 softmax rows sum to ``1 ± 1e-7``) and are as likely as ones below
   their true value, so keeping them keeps the sum of logs unbiased;
3. the distance ``-(1/n) sum_i log BC_i`` is then clipped at 0.

References
----------
.. [1] J. Mao, I. Griniasty, H. K. Teoh, R. Ramesh, R. Yang, M. K. Transtrum,
       J. P. Sethna, P. Chaudhari, "The training process of many deep networks
       explores the same low-dimensional manifold", PNAS 121 (12), 2024.
.. [2] K. N. Quinn, C. B. Clement, F. De Bernardis, M. D. Niemack, J. P. Sethna,
       "Visualizing probabilistic models and data with Intensive Principal
       Component Analysis", PNAS 116 (28), 2019.
"""

from __future__ import annotations

import warnings

import numpy as np

from .validation import check_floor, check_probabilities, check_same_samples

__all__ = ["FLOOR", "ClampWarning", "bhattacharyya"]

FLOOR = 1e-12
"""Default floor of every Bhattacharyya coefficient (and inner product with the geodesic)."""

# float64 (model, sample, class) elements of the temporaries of one chunk of models.
_CHUNK_ELEMENTS = 1 << 21


class ClampWarning(RuntimeWarning):
    """Some Bhattacharyya coefficients (or probabilities) were raised to ``floor``.

    Emitted once per call. The result is finite, but every clamped entry
    contributes at most ``-log(floor) / n`` instead of ``+inf``.
    """


def sqrt_probabilities(X: np.ndarray, *, log: bool, dtype=None) -> np.ndarray:
    """``sqrt(p)`` of validated probabilities (or log-probabilities), elementwise."""
    X = X if dtype is None else X.astype(dtype, copy=False)
    return np.exp(0.5 * X) if log else np.sqrt(X)


def clamp_coefficients(bc: np.ndarray, floor: float) -> np.ndarray | None:
    """Raise Bhattacharyya coefficients below ``floor`` to ``floor``, in place.

    Coefficients above 1 are kept (rule 2 of the module docstring). Returns the
    number of clamped entries per position of the last two axes (for attributing
    clamps to pairs), or ``None`` when nothing was below ``floor`` (the common
    case: one cheap pass).
    """
    if not bc.size or bc.min() >= floor:
        return None
    below = bc < floor
    counts = below.sum(axis=0) if bc.ndim > 1 else np.asarray(below.sum())
    np.maximum(bc, floor, out=bc)
    return counts


def mean_log_distance(bc: np.ndarray, floor: float) -> tuple[np.ndarray, int]:
    """``max(-mean(log max(bc, floor)), 0)`` over the last axis, and the number clamped.

    The clamping rule of the module docstring for coefficients (or inner
    products with the geodesic) already in memory; ``bc`` is clamped in place.
    """
    counts = clamp_coefficients(bc, floor)
    d = -np.log(bc).mean(axis=-1)
    np.maximum(d, 0.0, out=d)
    return d + 0.0, 0 if counts is None else int(counts.sum())  # + 0.0: no -0.0


def warn_clamped(count: int, what: str, floor: float, *, stacklevel: int = 3) -> None:
    """Emit the single :class:`ClampWarning` of a call if anything was clamped.

    The default ``stacklevel`` suits a call made directly from the public function.
    """
    if count:
        warnings.warn(
            f"{count} {what} below floor={floor:g} were clamped to it; each such "
            f"sample contributes at most -log(floor)/n = {-np.log(floor):.4g}/n "
            "instead of +inf",
            ClampWarning,
            stacklevel=stacklevel,
        )


def bhattacharyya(P, Q, *, log: bool = False, floor: float = FLOOR):
    r"""Intensive Bhattacharyya distance between two models, or between matching models.

    .. math::

        d_B(P, Q) = -\frac{1}{n} \sum_{i=1}^{n} \log \mathrm{BC}_i, \qquad
        \mathrm{BC}_i = \sum_{c=1}^{C} \sqrt{p_{ic}\, q_{ic}} \in [0, 1].

    ``d_B >= 0``, ``d_B(P, P) = 0`` and it is symmetric, but it is not a metric
    (no triangle inequality). It is the zero-replica limit of the Hellinger
    distance between ``n`` replicas [2]_ and the distance used by InPCA, where it
    plays the role of a *squared* distance [1]_.

    Given stacks of models, the distances are paired, like
    :func:`sklearn.metrics.pairwise.paired_distances`: ``P[k]`` against
    ``Q[k]``; a single ``(n, C)`` model is compared with every model of the
    other stack. For all pairs of two stacks use :func:`pairwise_distances`.

    Parameters
    ----------
    P, Q : array_like, shape (n, C) or (T, n, C)
        Class probabilities on the same ``n`` samples, in the same order. Two
        stacks must hold the same number ``T`` of models. Rows must sum to 1
        (tolerance 1e-4 for float32 input, 1e-5 for float64).
    log : bool, default False
        If True, ``P`` and ``Q`` hold natural-log probabilities (``-inf`` allowed).
    floor : float, default :data:`FLOOR` (1e-12)
        Each ``BC_i`` below ``floor`` is raised to it, so a sample on which the
        models have disjoint supports contributes ``-log(floor) / n`` (27.6/n
        for the default) instead of ``+inf``; a :class:`ClampWarning` says how
        many were clamped. Coefficients above 1 (rounding) are kept and the
        distance is clipped at 0: the clamping rule of
        :mod:`deepmanifold.geometry.divergences`, which
        :func:`pairwise_distances` follows too.

    Returns
    -------
    float, or ndarray of shape (T,)
        ``d_B(P, Q)`` (a float when both are ``(n, C)``), computed in float64;
        never NaN.

    Raises
    ------
    ValueError
        Invalid probabilities (see :func:`pairwise_distances`), ``P`` and ``Q``
        with different ``(n, C)`` or stacks of different lengths, a bad ``floor``.

    See Also
    --------
    pairwise_distances : all pairs of many models at once.

    Notes
    -----
    ``sqrt p`` and the coefficients are computed in float64, in chunks of
    models (bounded temporary memory); cost ``T n C``.

    Examples
    --------
    Ignorance against truth is ``ln(C) / 2``:

    >>> import numpy as np
    >>> C = 10
    >>> uniform = np.full((4, C), 1 / C)
    >>> onehot = np.eye(C)[[0, 3, 3, 9]]
    >>> round(bhattacharyya(uniform, onehot), 4)
    1.1513

    Each model of a stack against one model:

    >>> bhattacharyya(np.stack([uniform, onehot]), uniform).round(4).tolist()
    [0.0, 1.1513]
    """
    floor = check_floor(floor)
    P = check_probabilities(P, "P", log=log, ndim=(2, 3))
    Q = check_probabilities(Q, "Q", log=log, ndim=(2, 3))
    check_same_samples(P, Q, "P", "Q")
    if P.ndim == 3 and Q.ndim == 3 and P.shape[0] != Q.shape[0]:
        raise ValueError(f"P holds {P.shape[0]} models and Q holds {Q.shape[0]}: paired distances need "
                         "stacks of the same length (or one (n, C) model)")
    if P.ndim == Q.ndim == 2:
        d, count = _paired(P[None], Q[None], log=log, floor=floor)
        warn_clamped(count, "samples with a Bhattacharyya coefficient", floor)
        return float(d[0])
    d, count = _paired(P if P.ndim == 3 else P[None], Q if Q.ndim == 3 else Q[None], log=log, floor=floor)
    warn_clamped(count, "(pair, sample) Bhattacharyya coefficients", floor)
    return d


def _paired(P: np.ndarray, Q: np.ndarray, *, log: bool, floor: float) -> tuple[np.ndarray, int]:
    """d_B of ``P[k]`` against ``Q[k]`` for validated stacks, one of which may hold one model."""
    T = max(P.shape[0], Q.shape[0])
    n, C = P.shape[1:]
    out = np.empty(T)
    clamped = 0
    step = max(1, _CHUNK_ELEMENTS // (n * C))
    for s in range(0, T, step):
        p = P[s:s + step] if P.shape[0] > 1 else P
        q = Q[s:s + step] if Q.shape[0] > 1 else Q
        bc = np.einsum("...ic,...ic->...i", sqrt_probabilities(p, log=log, dtype=np.float64),
                       sqrt_probabilities(q, log=log, dtype=np.float64))
        out[s:s + bc.shape[0]], count = mean_log_distance(bc, floor)
        clamped += count
    return out, clamped
