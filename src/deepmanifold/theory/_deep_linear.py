r"""Deep linear networks learn the data's singular modes one after another, on a schedule.

Saxe, McClelland & Ganguli (ICLR 2014; PNAS 116, 11537, 2019) solved gradient flow on the
squared loss of a linear network ``x ↦ W_L ⋯ W_1 x`` from small, balanced initial weights,
with whitened inputs (``Σ_xx = I``). The input–output correlation
``Σ_yx = (1/n) Σ_i y_i x_iᵀ = U S Vᵀ`` decouples the dynamics: the network's map stays
``U diag(u(t)) Vᵀ`` and each mode's strength follows, for a network with one hidden layer,

.. math::

    u_α(t) = \frac{s_α\, e^{2 s_α t/τ}}{e^{2 s_α t/τ} - 1 + s_α/u_0},

a sigmoid from ``u_0`` to ``s_α`` (``τ = 1/η`` for the learning rate ``η``, time in
optimiser steps of full-batch gradient descent). Stronger modes are learned first: mode
``α`` reaches half its strength at ``t_½ = (τ / 2s_α) log(s_α/u_0 − 1)``.

- :func:`io_modes` -- the modes of a data set (``Σ_yx``'s singular triplets).
- :func:`mode_strengths` -- ``u_α(t)`` on a grid of times.
- :func:`half_times` -- ``t_½`` per mode; the order of learning is their order.
- :func:`linear_learning_curve` -- the squared loss ``½ Σ_α (s_α − u_α(t))²`` above its
  minimum.
- :func:`mode_projections` -- any model's map projected on the modes,
  ``u_α = u_αᵀ Σ_{ŷx} v_α`` with ``Σ_{ŷx}`` the correlation of its outputs with the inputs,
  to compare a trained network (linear or not) with the closed form.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

import numpy as np

__all__ = ["IOModes", "half_times", "io_modes", "linear_learning_curve", "mode_projections", "mode_strengths"]


@dataclass(frozen=True)
class IOModes:
    """The singular modes of an input–output correlation ``Σ_yx = U diag(s) Vᵀ``.

    Attributes
    ----------
    s : ndarray, shape (k,)
        Singular values, descending (the modes' final strengths).
    U : ndarray, shape (C, k)
        Output directions.
    V : ndarray, shape (d, k)
        Input directions.
    """

    s: np.ndarray
    U: np.ndarray
    V: np.ndarray


def _positive(value, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0 < value < math.inf:
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    return float(value)


def _check_xy(X, Y) -> tuple[np.ndarray, np.ndarray]:
    X = np.asarray(X, dtype=np.float64)
    Y = np.asarray(Y, dtype=np.float64)
    X = X.reshape(X.shape[0], -1) if X.ndim > 2 else X
    if X.ndim != 2 or Y.ndim != 2 or X.shape[0] != Y.shape[0] or X.shape[0] < 1:
        raise ValueError(f"X must be (n, d) and Y (n, C) with the same n >= 1, got {X.shape} and {Y.shape}")
    if not (np.isfinite(X).all() and np.isfinite(Y).all()):
        raise ValueError("X and Y must be finite")
    return X, Y


def io_modes(X, Y, k: int | None = None) -> IOModes:
    """The modes of the data: the SVD of ``Σ_yx = Yᵀ X / n``.

    Parameters
    ----------
    X : array_like, shape (n, d) (or (n, ...), flattened)
        Inputs; the closed forms assume they are whitened (``XᵀX/n = I``).
    Y : array_like, shape (n, C)
        Targets (e.g. one-hot labels).
    k : int, optional
        Keep the ``k`` strongest modes (default: all ``min(C, d)``).

    Returns
    -------
    IOModes
    """
    X, Y = _check_xy(X, Y)
    U, s, Vt = np.linalg.svd(Y.T @ X / X.shape[0], full_matrices=False)
    k = len(s) if k is None else max(1, min(int(k), len(s)))
    return IOModes(s=s[:k], U=U[:, :k], V=Vt[:k].T)


def mode_strengths(s, t, *, u0: float, tau: float = 1.0) -> np.ndarray:
    """``u_α(t)`` of each mode at each time (module docstring), shape (T, k).

    Parameters
    ----------
    s : array_like, shape (k,)
        Mode strengths ``s_α > 0`` (:attr:`IOModes.s`).
    t : array_like, shape (T,)
        Times ``>= 0`` in units of optimiser steps when ``tau = 1/η``.
    u0 : float
        Initial strength of every mode, ``0 < u0 < min(s)`` (small initialisation).
    tau : float, default 1
        Time constant ``1/η``.
    """
    s = np.atleast_1d(np.asarray(s, dtype=np.float64))
    t = np.atleast_1d(np.asarray(t, dtype=np.float64))
    u0, tau = _positive(u0, "u0"), _positive(tau, "tau")
    if not (s > 0).all() or (t < 0).any():
        raise ValueError("mode strengths s must be > 0 and times t >= 0")
    x = 2.0 * np.outer(t, s) / tau
    # s e^x / (e^x - 1 + s/u0) = s / (1 - e^{-x} (1 - s/u0)): no overflow for large x.
    return s / (1.0 - np.exp(-x) * (1.0 - s / u0))


def half_times(s, *, u0: float, tau: float = 1.0) -> np.ndarray:
    """Time at which each mode reaches half its strength, ``(τ/2s) log(s/u0 − 1)``, shape (k,).

    Raises
    ------
    ValueError
        ``u0 >= s/2`` for a mode (it starts above half its strength).
    """
    s = np.atleast_1d(np.asarray(s, dtype=np.float64))
    u0, tau = _positive(u0, "u0"), _positive(tau, "tau")
    if (s <= 2 * u0).any():
        raise ValueError(f"u0 = {u0} must be below half of every mode's strength (min s = {s.min():.4g})")
    return tau / (2.0 * s) * np.log(s / u0 - 1.0)


def linear_learning_curve(s, t, *, u0: float, tau: float = 1.0) -> np.ndarray:
    """The squared loss above its minimum, ``½ Σ_α (s_α − u_α(t))²``, shape (T,)."""
    s = np.atleast_1d(np.asarray(s, dtype=np.float64))
    return 0.5 * ((s[None, :] - mode_strengths(s, t, u0=u0, tau=tau)) ** 2).sum(axis=1)


def mode_projections(outputs, X, modes: IOModes) -> np.ndarray:
    """A model's map projected on the data's modes, ``u_α = u_αᵀ (Ŷᵀ X / n) v_α``, shape (k,).

    Parameters
    ----------
    outputs : array_like, shape (n, C)
        The model's outputs on the inputs ``X`` (for a linear network, its map applied to
        ``X``; for any network, its logits or its probabilities minus ``1/C``).
    X : array_like, shape (n, d)
        The inputs ``modes`` were computed from.
    modes : IOModes

    Notes
    -----
    For a linear map ``W`` and whitened inputs this is ``u_αᵀ W v_α`` exactly: the
    strength of mode ``α`` in the network, which the closed form predicts.
    """
    X, Y = _check_xy(X, outputs)
    if Y.shape[1] != modes.U.shape[0] or X.shape[1] != modes.V.shape[0]:
        raise ValueError(f"outputs (n, {Y.shape[1]}) and X (n, {X.shape[1]}) do not match the modes' "
                         f"({modes.U.shape[0]}, {modes.V.shape[0]})")
    corr = Y.T @ X / X.shape[0]
    return np.einsum("ck,cd,dk->k", modes.U, corr, modes.V)
