"""Divergences between two models evaluated on the same samples.

A *model* here is an array ``P`` of shape ``(n, C)``: one probability vector over
``C`` classes for each of ``n`` samples, the samples in a fixed order.

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

__all__ = ["ClampWarning", "bhattacharyya"]


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
    """Clip Bhattacharyya coefficients in place to ``[floor, 1]``.

    The upper clip removes rounding excess (rows summing to slightly more than 1)
    so that distances are never negative. Returns the number of clamped entries
    per position of the last two axes (for attributing clamps to pairs), or
    ``None`` when nothing was below ``floor`` (the common case: one cheap pass).
    """
    counts = None
    if bc.size and bc.min() < floor:
        below = bc < floor
        counts = below.sum(axis=0) if bc.ndim > 1 else np.asarray(below.sum())
    np.clip(bc, floor, 1.0, out=bc)
    return counts


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


def bhattacharyya(P, Q, *, log: bool = False, floor: float = 1e-12) -> float:
    r"""Intensive Bhattacharyya distance between two models.

    .. math::

        d_B(P, Q) = -\frac{1}{n} \sum_{i=1}^{n} \log \mathrm{BC}_i, \qquad
        \mathrm{BC}_i = \sum_{c=1}^{C} \sqrt{p_{ic}\, q_{ic}} \in [0, 1].

    ``d_B >= 0``, ``d_B(P, P) = 0`` and it is symmetric, but it is not a metric
    (no triangle inequality). It is the zero-replica limit of the Hellinger
    distance between ``n`` replicas [2]_ and the distance used by InPCA, where it
    plays the role of a *squared* distance [1]_.

    Parameters
    ----------
    P, Q : array_like, shape (n, C)
        Class probabilities of two models on the same ``n`` samples, in the same
        order. Rows must sum to 1 (tolerance 1e-4 for float32 input, 1e-5 for
        float64).
    log : bool, default False
        If True, ``P`` and ``Q`` hold natural-log probabilities (``-inf`` allowed).
    floor : float, default 1e-12
        Each ``BC_i`` is clamped to ``[floor, 1]`` before the log, so a sample on
        which the models have disjoint supports contributes
        ``-log(floor) / n`` (27.6/n for the default) instead of ``+inf``; a
        :class:`ClampWarning` says how many samples were clamped.

    Returns
    -------
    float
        ``d_B(P, Q)``, computed in float64; never NaN.

    Raises
    ------
    ValueError
        Invalid probabilities (see :func:`pairwise_distances`) or mismatched shapes.

    See Also
    --------
    pairwise_distances : all pairs of many models at once.

    Examples
    --------
    Ignorance against truth is ``ln(C) / 2``:

    >>> import numpy as np
    >>> C = 10
    >>> uniform = np.full((4, C), 1 / C)
    >>> onehot = np.eye(C)[[0, 3, 3, 9]]
    >>> round(bhattacharyya(uniform, onehot), 4)
    1.1513
    """
    floor = check_floor(floor)
    P = check_probabilities(P, "P", log=log, ndim=2)
    Q = check_probabilities(Q, "Q", log=log, ndim=2)
    check_same_samples(P, Q, "P", "Q")
    bc = np.einsum(
        "ic,ic->i",
        sqrt_probabilities(P, log=log, dtype=np.float64),
        sqrt_probabilities(Q, log=log, dtype=np.float64),
    )
    counts = clamp_coefficients(bc, floor)
    warn_clamped(0 if counts is None else int(counts), "samples with a Bhattacharyya coefficient", floor)
    return float(-np.mean(np.log(bc)))
