r"""The exponential learning rate equivalent to weight decay (Li & Arora 2020).

For a loss that does not change when the weights are rescaled (a network with batch
normalisation after each layer, its last layer fixed), gradient descent with learning
rate ``η``, weight decay ``λ`` and heavy-ball momentum ``γ`` gives the same network
function, step for step, as gradient descent with momentum ``γ``, *no* weight decay and
the learning rate growing exponentially,

.. math::

    \tilde η_t = η\, α^{-2t-1}, \qquad t = 0, 1, 2, \dots,

where ``α`` is a nonzero root of ``x² − (1 + γ − λη) x + γ = 0`` (their Theorem 1.1;
without momentum ``α = 1 − λη``). Of the two roots this module takes the larger, near 1:
it is the one that gives their growth of the rate by 1.4812 an epoch (CIFAR-10 at batch
128, ``η = 0.1``, ``λ = 5·10⁻⁴``, ``γ = 0.9``); the smaller, ``γ/α ≈ γ``, would multiply
it by ``e^82``.

- :func:`exp_lr_alpha` -- the root ``α``.
- :func:`exp_lr_schedule` -- the equivalent learning rates ``η̃_t``.

References
----------
.. [1] Z. Li and S. Arora, "An exponential learning rate schedule for deep learning",
   *ICLR* 2020, Theorem 1.1.
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np

from deepmanifold.utils import check_int

__all__ = ["exp_lr_alpha", "exp_lr_schedule"]


def _check_real(value: Any, name: str, *, low: float, low_open: bool, high: float | None = None,
                what: str) -> float:
    """``value`` as a float if it is a finite real number in the stated range; a ValueError naming `name` otherwise."""
    ok = isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))
    if ok:
        value = float(value)
        ok = math.isfinite(value) and (value > low if low_open else value >= low) and (high is None or value < high)
    if not ok:
        bound = f"{'>' if low_open else '>='} {low:g}" if high is None else f"in [{low:g}, {high:g})"
        raise ValueError(f"{name} must be a finite number {bound} ({what}), got {value!r}")
    return value


def exp_lr_alpha(lr: float, weight_decay: float, momentum: float) -> float:
    r"""The ratio ``α`` of Li & Arora's exponential learning rate schedule.

    The larger root of

    .. math::

        x^2 - (1 + γ - λη)\, x + γ = 0, \qquad
        α = \frac{1 + γ - λη + \sqrt{(1 + γ - λη)^2 - 4γ}}{2}.

    Parameters
    ----------
    lr : float
        Learning rate ``η > 0``.
    weight_decay : float
        Weight decay ``λ >= 0`` (the L2 coefficient: the update adds ``λ w`` to the gradient).
    momentum : float
        Heavy-ball momentum ``γ`` in ``[0, 1)``.

    Returns
    -------
    float
        ``α`` in ``[√γ, 1]``, ``1`` exactly when ``λ = 0``; ``1 − λη`` when ``γ = 0``.

    Raises
    ------
    ValueError
        For a non-positive or non-finite `lr`, a negative `weight_decay`, a `momentum`
        outside ``[0, 1)``, or when the quadratic has no root in ``(0, 1]``: that is when
        ``λη > (1 − √γ)²`` (also ``λη = 1`` without momentum, where ``α = 0``).

    Notes
    -----
    The roots are real when ``(1 + γ − λη)² >= 4γ``, i.e. ``λη <= (1 − √γ)²`` or
    ``λη >= (1 + √γ)²``. In the second range both roots are negative (their sum
    ``1 + γ − λη`` is), so the admissible range is ``0 <= λη <= (1 − √γ)²``: both roots are
    then positive, with product ``γ``, and the larger lies in ``[√γ, 1]``. Practical
    settings sit far inside it (``η = 0.1``, ``λ = 5·10⁻⁴``, ``γ = 0.9``:
    ``λη = 5·10⁻⁵ <= 0.0263``). With ``x = 1 − ε`` the quadratic reads
    ``ε² − (1 − γ + λη) ε + λη = 0``; its smaller root
    ``ε = 2λη / (1 − γ + λη + √((1 − γ + λη)² − 4λη))`` is formed without cancellation, so
    ``1 − α`` (which the schedule's growth ``α^{-2t}`` depends on) keeps its relative
    precision even when it is ~1e-9.

    References
    ----------
    .. [1] Z. Li and S. Arora, "An exponential learning rate schedule for deep learning",
       *ICLR* 2020, Theorem 1.1.

    Examples
    --------
    >>> alpha = exp_lr_alpha(0.1, 5e-4, 0.9)
    >>> round(alpha, 8)
    0.99949773
    >>> round(alpha ** (-2 * 391), 4)  # one epoch of CIFAR-10 at batch 128
    1.4812
    """
    return 1.0 - _alpha_gap(lr, weight_decay, momentum)


def _alpha_gap(lr: Any, weight_decay: Any, momentum: Any) -> float:
    """``1 − α``, validated: the smaller root of ``ε² − (1 − γ + λη) ε + λη = 0`` (``x = 1 − ε``
    in the quadratic of :func:`exp_lr_alpha`), formed without cancellation."""
    eta = _check_real(lr, "lr", low=0.0, low_open=True, what="the learning rate η")
    lam = _check_real(weight_decay, "weight_decay", low=0.0, low_open=False, what="the weight decay λ")
    gamma = _check_real(momentum, "momentum", low=0.0, low_open=False, high=1.0, what="the heavy-ball momentum γ")
    decay = lam * eta
    bound = (1.0 - math.sqrt(gamma)) ** 2
    if decay > bound or (gamma == 0.0 and decay >= 1.0):
        raise ValueError(
            f"lr * weight_decay = {decay:g} must be at most (1 - sqrt(momentum))**2 = {bound:g} "
            f"(and below 1 without momentum): otherwise x**2 - (1 + momentum - lr*weight_decay) x + momentum "
            f"has no root in (0, 1] and there is no equivalent exponential learning rate")
    b = 1.0 - gamma + decay
    # max(): rounding may dip the discriminant below 0 at the bound, where the root is double.
    return 2.0 * decay / (b + math.sqrt(max(0.0, b * b - 4.0 * decay)))


def exp_lr_schedule(lr: float, weight_decay: float, momentum: float, steps: int) -> np.ndarray:
    r"""Learning rates without weight decay equivalent to (``η``, ``λ``, ``γ``): ``η̃_t = η α^{-2t-1}``.

    Parameters
    ----------
    lr, weight_decay, momentum : float
        As in :func:`exp_lr_alpha`.
    steps : int
        Number of steps ``>= 1``.

    Returns
    -------
    ndarray, shape (steps,)
        ``η̃_t`` for ``t = 0, …, steps − 1``; consecutive rates grow by ``α⁻²``. Rates past
        the float64 range are ``inf``.

    Raises
    ------
    ValueError
        As :func:`exp_lr_alpha`, or for `steps` not an integer ``>= 1``.

    References
    ----------
    .. [1] Z. Li and S. Arora, "An exponential learning rate schedule for deep learning",
       *ICLR* 2020, Theorem 1.1.

    Examples
    --------
    >>> rates = exp_lr_schedule(0.1, 5e-4, 0.9, steps=2 * 391)
    >>> round(float(rates[391] / rates[0]), 4)
    1.4812
    """
    gap = _alpha_gap(lr, weight_decay, momentum)
    n = check_int(steps, "steps", low=1)
    exponent = -(2.0 * np.arange(n) + 1.0) * math.log1p(-gap)
    with np.errstate(over="ignore"):
        return float(lr) * np.exp(exponent)
