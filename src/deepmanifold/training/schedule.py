"""Schedules: when along a run the recorder evaluates the probe sets, and the exponential learning rate."""

from __future__ import annotations

import math

import numpy as np

__all__ = ["checkpoint_steps", "exp_lr_factor"]


def _is_whole(value) -> bool:
    """A real number with an integral value (``3`` or ``3.0``; not ``True``, ``inf`` or ``None``)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        return False
    return bool(np.isfinite(value)) and int(value) == value


def checkpoint_steps(total_steps: int, n_checkpoints: int) -> np.ndarray:
    """Steps at which to record a run: dense early, geometric in steps.

    Training changes fastest at the start (docs/method.md §5), so checkpoints are spaced
    geometrically in the step count: ``0, 1, 2, ...`` (every step while the
    geometric spacing would be below one step), then ratios ``r`` chosen so that
    the remaining checkpoints reach ``total_steps`` geometrically. Each new step is
    ``max(prev + 1, round(prev * r))`` with ``r = (total_steps / prev) ** (1 / k)``
    recomputed for the ``k`` checkpoints still to place, so rounding never loses a
    checkpoint: the count is exactly ``n_checkpoints`` whenever
    ``total_steps + 1 >= n_checkpoints``, and ``total_steps + 1`` (every step) otherwise.

    Parameters
    ----------
    total_steps : int
        Number of optimiser steps in the run (>= 0).
    n_checkpoints : int
        Target number of checkpoints, including step 0 and ``total_steps`` (>= 2,
        or 1 when ``total_steps == 0``).

    Returns
    -------
    np.ndarray, shape (K,), int64
        Sorted, unique, ``steps[0] == 0`` and ``steps[-1] == total_steps``,
        ``K = min(n_checkpoints, total_steps + 1)``.

    Examples
    --------
    >>> checkpoint_steps(1000, 10).tolist()
    [0, 1, 2, 5, 12, 29, 70, 170, 412, 1000]
    """
    if not _is_whole(total_steps) or total_steps < 0:
        raise ValueError(f"total_steps must be an integer >= 0, got {total_steps!r}")
    if not _is_whole(n_checkpoints) or n_checkpoints < 1:
        raise ValueError(f"n_checkpoints must be an integer >= 1, got {n_checkpoints!r}")
    total, n = int(total_steps), int(n_checkpoints)
    if total == 0:
        return np.zeros(1, dtype=np.int64)
    if n < 2:
        raise ValueError(
            f"n_checkpoints must be >= 2 (step 0 and the last step), got {n_checkpoints!r}"
        )
    if total + 1 <= n:
        return np.arange(total + 1, dtype=np.int64)
    if n == 2:
        return np.array([0, total], dtype=np.int64)
    steps = [0, 1]
    current = 1
    for remaining in range(n - 2, 0, -1):
        ratio = (total / current) ** (1.0 / remaining)
        nxt = max(current + 1, int(math.floor(current * ratio + 0.5)))
        # Leave room for the checkpoints still to come (one step each at least).
        nxt = min(nxt, total - (remaining - 1))
        steps.append(nxt)
        current = nxt
    out = np.asarray(steps, dtype=np.int64)
    assert out[-1] == total and len(out) == n and np.all(np.diff(out) > 0)
    return out


def exp_lr_factor(lr: float, weight_decay: float, momentum: float) -> float:
    r"""The factor ``α`` of the exponential learning rate equivalent to SGD with weight decay.

    Li & Arora (ICLR 2020, Theorem 1.1): for a network whose loss is invariant to the scale
    of its weights (every weight layer followed by a normalisation), SGD with learning rate
    ``η``, momentum ``γ`` and weight decay ``λ`` trains like SGD with momentum ``γ``, no
    weight decay and the learning rate ``η α^{−2t−1}`` at step ``t``, where ``α`` is the
    larger root of

    .. math:: x^2 - (1 + γ - λη)\,x + γ = 0.

    Raises
    ------
    ValueError
        A root that is not real and in ``(0, 1]`` (``λη`` too large for the momentum:
        ``(1 + γ − λη)² < 4γ``), or arguments out of range.
    """
    eta, lam, gamma = float(lr), float(weight_decay), float(momentum)
    if not (eta > 0 and lam >= 0 and 0 <= gamma < 1) or not all(map(math.isfinite, (eta, lam, gamma))):
        raise ValueError(f"the exponential learning rate needs lr > 0, weight_decay >= 0 and momentum in [0, 1), "
                         f"got {lr!r}, {weight_decay!r}, {momentum!r}")
    b = 1.0 + gamma - lam * eta
    disc = b * b - 4.0 * gamma
    if disc < 0 or b <= 0:
        raise ValueError(f"no real factor: lr * weight_decay = {lam * eta:.4g} is too large for momentum {gamma} "
                         "(the equivalence needs (1 + momentum - lr * weight_decay)^2 >= 4 momentum)")
    return (b + math.sqrt(disc)) / 2.0
