"""Where a run is heading: its end forecast from the reference trajectories nearest at equal progress.

A run seen up to some checkpoint is compared with every run of a reference picture *at
equal progress*: each of its checkpoints is paired with the reference run's checkpoint of
the closest progress λ, and the run's distance to that reference run is the mean intensive
Bhattacharyya distance of the pairs (docs/method.md §5.2 reparametrises by progress for
the same reason: runs travel the same path at different speeds). The ``k`` nearest
reference runs then vote:

- the final test accuracy and the final progress: the neighbours' mean, with the
  neighbours' range as the interval;
- the epoch at which the run reaches a progress ``λ*``: each neighbour's epoch at ``λ*``
  scaled by the run's speed relative to it, ``e_run(λ_now) / e_ref(λ_now)`` at the run's
  current progress ``λ_now`` (a faster run gets there sooner), the median with the range.

:func:`power_law_forecast` is the learning-curve baseline: ``1 − y = a t^{−b}`` fitted to the
curve so far (log–log least squares) and extrapolated.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, field
from typing import Iterable

import numpy as np

from deepmanifold import geometry
from deepmanifold.analysis.speed import progress_milestones

from .reference import ReferencePicture

__all__ = ["Forecast", "forecast_run", "power_law_fit", "power_law_forecast"]


@dataclass(frozen=True)
class Forecast:
    """A run's forecast (:func:`forecast_run`).

    Attributes
    ----------
    final_test_acc, final_progress : float
        The neighbours' mean at the end of their training.
    final_test_acc_range, final_progress_range : (float, float)
        The neighbours' smallest and largest.
    epoch_to_progress : dict of float to (float, float, float)
        Target ``λ*`` -> (predicted epoch, lowest, highest); the epoch already reached
        (three times) when the run is past ``λ*``; NaN when no neighbour reaches ``λ*``.
    neighbours : list of str
        Run ids of the ``k`` nearest reference runs, nearest first, and ``distances``,
        their mean distances at equal progress.
    distances : list of float
    progress_now, epoch_now : float
        Where the run is: its last observed checkpoint.
    """

    final_test_acc: float
    final_test_acc_range: tuple[float, float]
    final_progress: float
    final_progress_range: tuple[float, float]
    epoch_to_progress: dict[float, tuple[float, float, float]] = field(default_factory=dict)
    neighbours: list[str] = field(default_factory=list)
    distances: list[float] = field(default_factory=list)
    progress_now: float = math.nan
    epoch_now: float = math.nan


def _epoch_at(epochs, progress, level: float) -> float:
    """The epoch at which ``progress`` first reaches ``level`` (:func:`~deepmanifold.analysis.speed.progress_milestones`);
    NaN if it never does, the first epoch for a level of 0."""
    if not level > 0:
        return float(epochs[0])
    epoch = progress_milestones(progress, epochs, epochs, [min(float(level), 1.0)]).reached[0].epoch
    return math.nan if epoch is None else epoch


def _check(logp, epochs) -> tuple[np.ndarray, np.ndarray]:
    lp = np.asarray(logp, dtype=np.float32)
    e = np.asarray(epochs, dtype=np.float64)
    if lp.ndim != 3 or e.shape != (lp.shape[0],) or lp.shape[0] < 1:
        raise ValueError(f"logp must be (K, n, C) and epochs (K,) with K >= 1, got {lp.shape} and {e.shape}")
    if not (np.isfinite(e).all() and np.all(np.diff(e) > 0)):
        raise ValueError("epochs must be finite and increasing")
    return lp, e


def forecast_run(reference: ReferencePicture, logp, epochs, *, k: int = 5, targets: Iterable[float] = (0.5, 0.8),
                 exclude: Iterable[str] = (), distances=None) -> Forecast:
    """Forecast a run's end from its checkpoints so far (module docstring).

    Parameters
    ----------
    reference : ReferencePicture
        The reference runs (their progress, test accuracy and predictions).
    logp : array_like, shape (K, n, C)
        The run's log-probabilities on the reference's probe set at its ``K`` checkpoints so far.
    epochs : array_like, shape (K,)
        Their epochs, increasing.
    k : int, default 5
        Neighbours that vote (fewer if the reference has fewer runs).
    targets : iterable of float
        Progress values ``λ*`` in (0, 1] whose epoch is forecast.
    exclude : iterable of str
        Reference run ids not to use (e.g. the run itself, for leave-one-out).
    distances : array_like, shape (K, T), optional
        :meth:`ReferencePicture.distances` of ``logp``, when the caller has them (a
        watcher keeps each checkpoint's row from placing it); computed otherwise.

    Raises
    ------
    ValueError
        Shapes that do not match the reference's probe set, epochs that do not increase,
        ``k < 1``, targets outside (0, 1], or no reference run left.
    """
    lp, e = _check(logp, epochs)
    if isinstance(k, bool) or not isinstance(k, numbers.Integral) or k < 1:
        raise ValueError(f"k must be an integer >= 1, got {k!r}")
    targets = [float(t) for t in targets]
    if any(not 0 < t <= 1 for t in targets):
        raise ValueError(f"targets must lie in (0, 1], got {targets}")
    excluded = set(exclude)
    runs = [(i, r) for i, r in enumerate(reference.picture.runs) if r.run_id not in excluded]
    if not runs:
        raise ValueError("no reference run is left to forecast from")
    if distances is not None:
        D = np.asarray(distances, dtype=np.float64)
        if D.shape != (len(lp), reference.n_checkpoints):
            raise ValueError(f"distances must be (K, T) = ({len(lp)}, {reference.n_checkpoints}), got {D.shape}")
    else:
        lp = reference.check_models(lp)  # the shape error that names the reference's probe set, before any work
    progress = np.atleast_1d(geometry.progress(lp, reference.labels, log=True, method=reference.progress_method))
    offsets = np.cumsum([0] + [len(r.steps) for r in reference.picture.runs])
    # Column j: each checkpoint's partner at equal progress in the j-th reference run.
    partners = np.stack([offsets[i] + np.abs(progress[:, None] - run.progress[None, :]).argmin(axis=1)
                         for i, run in runs], axis=1)  # (K, runs)
    if distances is None:  # only the partners' distances: K x runs of them, not K x T
        paired = reference.paired_distances(lp, partners)
    else:
        paired = D[np.arange(len(lp))[:, None], partners]
    scored = [(float(paired[:, j].mean()), run) for j, (_, run) in enumerate(runs)]
    scored.sort(key=lambda item: item[0])
    nearest = scored[:int(k)]
    now_p, now_e = float(progress[-1]), float(e[-1])
    acc = np.array([r.metrics["test_acc"][-1] for _, r in nearest], dtype=np.float64)
    final = np.array([r.progress[-1] for _, r in nearest], dtype=np.float64)
    when = {}
    for target in targets:
        reached = _epoch_at(e, progress, target)
        if math.isfinite(reached):
            when[target] = (reached, reached, reached)
            continue
        guesses = []
        for _, r in nearest:
            at_now, at_target = _epoch_at(r.epochs, r.progress, now_p), _epoch_at(r.epochs, r.progress, target)
            if math.isfinite(at_target):
                scale = now_e / at_now if math.isfinite(at_now) and at_now > 0 else 1.0
                guesses.append(max(now_e, scale * at_target))
        when[target] = ((float(np.median(guesses)), float(min(guesses)), float(max(guesses))) if guesses
                        else (math.nan, math.nan, math.nan))
    return Forecast(final_test_acc=float(acc.mean()), final_test_acc_range=(float(acc.min()), float(acc.max())),
                    final_progress=float(final.mean()), final_progress_range=(float(final.min()), float(final.max())),
                    epoch_to_progress=when, neighbours=[r.run_id for _, r in nearest],
                    distances=[d for d, _ in nearest], progress_now=now_p, epoch_now=now_e)


def power_law_fit(t, values) -> tuple[float, float] | None:
    """``(a, b)`` of ``1 − y = a t^{−b}`` fitted to ``values`` by least squares on ``log(1 − y)`` against ``log t``.

    Over the points with ``t > 0`` and ``y < 1``; None with fewer than two such points or
    when the fit does not decrease (``b <= 0``).
    """
    t = np.asarray(t, dtype=np.float64)
    y = np.asarray(values, dtype=np.float64)
    use = (t > 0) & (y < 1) & np.isfinite(y)
    if use.sum() < 2:
        return None
    slope, intercept = np.polyfit(np.log(t[use]), np.log(1.0 - y[use]), 1)
    return (math.exp(intercept), -slope) if slope < 0 else None


def power_law_forecast(t, values, at: float) -> float:
    """The learning-curve baseline: :func:`power_law_fit` evaluated at ``at``, clipped to ``[0, 1]``.

    The last value when there is no fit.
    """
    fit = power_law_fit(t, values)
    if fit is None:
        return float(np.asarray(values, dtype=np.float64)[-1])
    a, b = fit
    return float(np.clip(1.0 - a * float(at) ** -b, 0.0, 1.0))
