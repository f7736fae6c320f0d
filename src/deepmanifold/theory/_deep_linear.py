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
  ``u_α = u_αᵀ M v_α`` with ``M`` the linear map that best explains its outputs, to
  compare a trained network (linear or not) with the closed form.
- :func:`effective_initial_strengths` -- the ``u_0`` of each mode that a small *random*
  initialisation amounts to, and :func:`predict_mode_learning`, the half-times of a
  one-hidden-layer linear network (the zoo's ``linear`` architecture, ``depth = 1``)
  from its own initial weights: no constant is fitted.
- :func:`crossing_times` -- when measured strengths first reach given levels.
- :func:`hierarchical_data` -- items at the leaves of a binary tree with features drawn
  by branching diffusion (Saxe et al. 2019), the theory's own example.

From small random weights the closed form still holds, with an effective ``u_0``: while
the weights are small the dynamics are linear, ``τ ȧ = s b`` and ``τ ḃ = s a`` for
``a = W_1 v_α`` and ``b = W_2ᵀ u_α``, so ``a + b`` grows as ``e^{st/τ}``, ``a − b``
decays and ``u_α = a·b → |a_0 + b_0|² e^{2st/τ}/4``: the sigmoid's early growth with
``u_0 = |a_0 + b_0|²/4``. The modes' directions in the hidden layer are random and
nearly orthogonal in a wide layer, so the modes stay decoupled. Gradient descent with
step ``η`` approximates the flow to ``O(η s)``: the predicted half-times hold to a few
per mille for ``η s_1 ≲ 0.01`` (docs/results.md, "Theory beside practice").
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

import numpy as np

__all__ = ["IOModes", "ModeLearningPrediction", "crossing_times", "effective_initial_strengths", "half_times",
           "hierarchical_data", "io_modes", "linear_learning_curve", "mode_projections", "mode_strengths",
           "predict_mode_learning"]


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


def _initial(u0, k: int) -> np.ndarray:
    """``u0`` as one positive value per mode, shape (k,)."""
    if np.ndim(u0) == 0:
        return np.full(k, _positive(u0, "u0"))
    u0 = np.asarray(u0, dtype=np.float64)
    if u0.shape != (k,) or not (np.isfinite(u0).all() and (u0 > 0).all()):
        raise ValueError(f"u0 must be a number > 0 or one such number per mode ({k}), got {u0!r}")
    return u0


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
    u0 : float or array_like, shape (k,)
        Initial strength of every mode (or of each), ``0 < u0 < s`` (small
        initialisation; :func:`effective_initial_strengths` for random weights).
    tau : float, default 1
        Time constant ``1/η``.
    """
    s = np.atleast_1d(np.asarray(s, dtype=np.float64))
    t = np.atleast_1d(np.asarray(t, dtype=np.float64))
    u0, tau = _initial(u0, s.size), _positive(tau, "tau")
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

    ``u0`` is one number or one per mode, as in :func:`mode_strengths`.
    """
    s = np.atleast_1d(np.asarray(s, dtype=np.float64))
    u0, tau = _initial(u0, s.size), _positive(tau, "tau")
    if (s <= 2 * u0).any():
        j = int(np.argmax(s <= 2 * u0))
        raise ValueError(f"u0 = {u0[j]:.4g} must be below half of every mode's strength (mode {j}: s = {s[j]:.4g})")
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
        ``X``; for any network, its logits, its log-probabilities, or its probabilities
        minus ``1/C``).
    X : array_like, shape (n, d)
        Inputs in the space the modes live in (any samples of it that span the modes'
        input directions: e.g. a probe subset of the training set the modes were
        computed from).
    modes : IOModes

    Notes
    -----
    ``M = Ŷᵀ X (XᵀX)⁺`` is the least-squares linear map from ``X`` to the outputs
    (``Ŷᵀ X / n`` when ``XᵀX/n = I``). For a linear network ``W`` it is ``W`` on the span
    of ``X``, so ``u_αᵀ M v_α`` is the strength of mode ``α`` in the network, which the
    closed form predicts. A per-sample constant added to the outputs (log-probabilities
    differ from logits by one) changes nothing when the modes' output directions are
    orthogonal to ``(1, …, 1)``, as they are for centred inputs and one-hot targets.
    Directions in which ``X``'s singular values fall below ``10⁻⁶`` of the largest are
    treated as absent: in float32 data they are rounding noise, and fitting them would
    amplify the outputs' rounding into ``M``.
    """
    X, Y = _check_xy(X, outputs)
    if Y.shape[1] != modes.U.shape[0] or X.shape[1] != modes.V.shape[0]:
        raise ValueError(f"outputs (n, {Y.shape[1]}) and X (n, {X.shape[1]}) do not match the modes' "
                         f"({modes.U.shape[0]}, {modes.V.shape[0]})")
    M = np.linalg.lstsq(X, Y, rcond=1e-6)[0].T
    return np.einsum("ck,cd,dk->k", modes.U, M, modes.V)


def effective_initial_strengths(first, second, modes: IOModes) -> np.ndarray:
    """The initial strength ``u_0`` that small random weights amount to, per mode, shape (k,).

    ``u_0,α = |W_1 v_α + W_2ᵀ u_α|² / 4`` for the network ``x ↦ W_2 W_1 x`` (module
    docstring): the strength whose sigmoid :func:`mode_strengths` starts from once the
    linear phase of learning has aligned the two layers.

    Parameters
    ----------
    first : array_like, shape (h, d)
        ``W_1``, the first layer's weights at initialisation.
    second : array_like, shape (C, h)
        ``W_2``, the second layer's.
    modes : IOModes
        The data's modes (``d`` inputs, ``C`` outputs).
    """
    W1 = np.asarray(first, dtype=np.float64)
    W2 = np.asarray(second, dtype=np.float64)
    if W1.ndim != 2 or W2.ndim != 2 or W2.shape[1] != W1.shape[0]:
        raise ValueError(f"first (h, d) and second (C, h) must be weight matrices that compose, "
                         f"got {W1.shape} and {W2.shape}")
    if W1.shape[1] != modes.V.shape[0] or W2.shape[0] != modes.U.shape[0]:
        raise ValueError(f"the network maps {W1.shape[1]} inputs to {W2.shape[0]} outputs; the modes need "
                         f"{modes.V.shape[0]} and {modes.U.shape[0]}")
    c = W1 @ modes.V + W2.T @ modes.U
    return (c**2).sum(axis=0) / 4.0


@dataclass(frozen=True)
class ModeLearningPrediction:
    """What deep linear theory predicts of one network's training (:func:`predict_mode_learning`).

    Attributes
    ----------
    modes : IOModes
        The data's modes that carry signal (``s_α > 10⁻⁸ s_1``).
    u0 : ndarray, shape (k,)
        Effective initial strength of each mode (:func:`effective_initial_strengths`).
    tau : float
        ``1/η`` (time in optimiser steps).
    half_times : ndarray, shape (k,)
        Steps at which each mode reaches half its strength.
    """

    modes: IOModes
    u0: np.ndarray
    tau: float
    half_times: np.ndarray

    def strengths(self, t) -> np.ndarray:
        """Predicted strengths at steps ``t``, shape (T, k)."""
        return mode_strengths(self.modes.s, t, u0=self.u0, tau=self.tau)


def _two_layers(model) -> tuple[np.ndarray, np.ndarray]:
    """The two weight matrices of a one-hidden-layer linear network, or a clear error."""
    from torch import nn

    layers = [m for m in model.modules() if isinstance(m, nn.Linear)]
    others = [type(m).__name__ for m in model.modules()
              if not isinstance(m, (nn.Linear, nn.Sequential, nn.Flatten)) and m is not model]
    if len(layers) != 2 or others or any(layer.bias is not None for layer in layers):
        raise ValueError("the closed form describes a linear network with one hidden layer and no biases: "
                         "the 'linear' architecture with depth = 1; got "
                         f"{len(layers)} Linear layers" + (f" and {sorted(set(others))}" if others else "")
                         + (" with biases" if any(layer.bias is not None for layer in layers) else ""))
    return (layers[0].weight.detach().double().cpu().numpy(), layers[1].weight.detach().double().cpu().numpy())


def predict_mode_learning(model, X, Y, *, lr: float, whitening_tolerance: float = 1e-3) -> ModeLearningPrediction:
    """Half-times of the data's modes for a one-hidden-layer linear network, from its initial weights.

    Gradient descent with learning rate ``lr`` on ``½ mean_i |f(x_i) − y_i|²`` over the
    full batch ``(X, Y)`` (module docstring): each mode's half-time
    ``(τ/2s) log(s/u_0 − 1)`` with ``τ = 1/lr`` and ``u_0`` from the model's weights.

    Parameters
    ----------
    model : torch.nn.Module
        At initialisation; two bias-free ``Linear`` layers and nothing else that computes
        (:class:`deepmanifold.models.DeepLinear` with ``depth = 1``).
    X : array_like, shape (n, d) (or (n, ...), flattened)
        The training inputs, whitened (``XᵀX/n`` the identity on their span; e.g. a
        dataset loaded with ``whiten=True``).
    Y : array_like, shape (n, C)
        The targets (one-hot labels).
    lr : float
        The learning rate of full-batch gradient descent without momentum.
    whitening_tolerance : float, default 1e-3
        Largest allowed distance of ``XᵀX/n``'s non-zero eigenvalues from 1.

    Raises
    ------
    ValueError
        A model that is not a one-hidden-layer linear network; inputs that are not
        whitened; a mode whose ``u_0`` is not below half its strength (the
        initialisation is not small).
    """
    X, Y = _check_xy(X, Y)
    lr = _positive(lr, "lr")
    eig = np.linalg.eigvalsh(X.T @ X / X.shape[0])
    live = eig[eig > 1e-6 * max(eig.max(), 1e-300)]
    if live.size == 0 or np.abs(live - 1.0).max() > whitening_tolerance:
        raise ValueError("the closed form assumes whitened inputs (XᵀX/n = I on their span); the non-zero "
                         f"eigenvalues of XᵀX/n lie in [{live.min() if live.size else 0:.4g}, "
                         f"{live.max() if live.size else 0:.4g}]: load the data with whiten=True "
                         "([data] whiten = true in a spec)")
    W1, W2 = _two_layers(model)
    full = io_modes(X, Y)
    keep = full.s > 1e-8 * full.s[0]
    modes = IOModes(s=full.s[keep], U=full.U[:, keep], V=full.V[:, keep])
    u0 = effective_initial_strengths(W1, W2, modes)
    return ModeLearningPrediction(modes=modes, u0=u0, tau=1.0 / lr, half_times=half_times(modes.s, u0=u0, tau=1.0 / lr))


def crossing_times(t, u, levels, *, ceilings=None) -> np.ndarray:
    """The first time each column of ``u`` reaches its level, interpolated between samples, shape (k,).

    Parameters
    ----------
    t : array_like, shape (T,)
        Increasing times (e.g. the recorded steps).
    u : array_like, shape (T, k)
        Measured values (e.g. :func:`mode_projections` at each checkpoint).
    levels : array_like, shape (k,)
        One level per column (``s/2`` for half-times).
    ceilings : array_like, shape (k,), optional
        Upper limits of sigmoid-shaped columns (the strengths ``s``): interpolate on
        ``log(u/(c − u))``, which is linear in time for :func:`mode_strengths`, so
        half-times from sparse checkpoints are exact for the closed form. Without them
        (or where a neighbouring sample lies outside ``(0, c)``), linearly in ``u``.

    Returns
    -------
    ndarray
        NaN where a column never reaches its level; ``t[0]`` where it starts there.

    Examples
    --------
    Measured half-times of a run's modes: ``crossing_times(steps, u, s / 2, ceilings=s)``.
    """
    t = np.asarray(t, dtype=np.float64)
    u = np.asarray(u, dtype=np.float64)
    levels = np.atleast_1d(np.asarray(levels, dtype=np.float64))
    if t.ndim != 1 or u.shape != (t.size, levels.size) or t.size < 1:
        raise ValueError(f"t must be (T,), u (T, k) and levels (k,), got {t.shape}, {u.shape}, {levels.shape}")
    if np.any(np.diff(t) <= 0):
        raise ValueError("t must be strictly increasing")
    if ceilings is not None:
        ceilings = np.atleast_1d(np.asarray(ceilings, dtype=np.float64))
        if ceilings.shape != levels.shape or not (ceilings > levels).all():
            raise ValueError(f"ceilings must be (k,) and above their levels, got {ceilings!r} for levels {levels!r}")
    out = np.full(levels.size, np.nan)
    for j in range(levels.size):
        reached = np.flatnonzero(u[:, j] >= levels[j])
        if reached.size == 0:
            continue
        i = reached[0]
        if i == 0:
            out[j] = t[0]
            continue
        a, b, level = u[i - 1, j], u[i, j], levels[j]
        if ceilings is not None and 0 < a and b < ceilings[j]:
            c = ceilings[j]
            a, b, level = (np.log(v / (c - v)) for v in (a, b, level))
        out[j] = t[i - 1] + (level - a) / (b - a) * (t[i] - t[i - 1])
    return out


def hierarchical_data(levels: int = 3, n_features: int = 1000, flip_probability: float = 0.1,
                      random_state=None) -> tuple[np.ndarray, np.ndarray]:
    """Items on a binary tree and their features, drawn by branching diffusion (Saxe et al. 2019).

    Each feature starts as ±1 at the root and is passed down the tree, flipping sign
    with probability ``flip_probability`` on every branch; the ``P = 2^levels`` leaves
    are the items. Nearby items share more features, so the input–output correlation's
    modes follow the tree: the whole set first, then its halves, then their halves.

    Parameters
    ----------
    levels : int, default 3
        Depth of the tree (``P = 2^levels`` items, ``1 <= levels <= 12``).
    n_features : int, default 1000
    flip_probability : float, default 0.1
        In ``[0, 0.5)``.
    random_state : int, numpy Generator or None

    Returns
    -------
    X : ndarray, shape (P, P)
        One-hot items scaled to whitened inputs, ``√P I`` (``XᵀX/P = I``).
    Y : ndarray, shape (P, n_features)
        The items' features, ±1.
    """
    if isinstance(levels, bool) or not isinstance(levels, numbers.Integral) or not 1 <= levels <= 12:
        raise ValueError(f"levels must be an integer in [1, 12], got {levels!r}")
    if isinstance(n_features, bool) or not isinstance(n_features, numbers.Integral) or n_features < 1:
        raise ValueError(f"n_features must be an integer >= 1, got {n_features!r}")
    if not isinstance(flip_probability, numbers.Real) or not 0 <= flip_probability < 0.5:
        raise ValueError(f"flip_probability must lie in [0, 0.5), got {flip_probability!r}")
    rng = np.random.default_rng(random_state)
    values = rng.choice([-1.0, 1.0], size=(1, int(n_features)))
    for _ in range(int(levels)):
        values = np.repeat(values, 2, axis=0)
        values = np.where(rng.random(values.shape) < flip_probability, -values, values)
    P = 2 ** int(levels)
    return np.sqrt(P) * np.eye(P), values
