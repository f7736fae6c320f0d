"""Pruning a sweep by progress: successive halving on forecast final accuracy.

Successive halving trains every run to a first *rung* (a fraction of its training), keeps
the best ``1/η`` of them, trains those to the next rung, and so on; only the last survivors
train to the end. What "best" means decides what it finds. ASHA (Li et al. 2020) ranks
runs by their accuracy *at the rung*; :func:`forecast_score` ranks them by their
*forecast final* accuracy (:func:`~deepmanifold.live.forecast_run`: the reference runs
nearest at equal progress), which sees that a slow starter will end ahead.

:func:`successive_halving` runs the schedule for any score, so that the two rules are
compared on the same stored runs by replaying them (``examples/pruning_replay.py``): the
compute each rule spends (epochs trained, as a fraction of training every run to the end)
and the final rank of the best run it keeps.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, field
from typing import Callable, Sequence

__all__ = ["HalvingResult", "successive_halving"]


@dataclass(frozen=True)
class HalvingResult:
    """What one successive-halving schedule did (:func:`successive_halving`).

    Attributes
    ----------
    survivors : list of list of str
        The runs trained to each rung, first rung first (all runs at the first).
    reached : dict of str to float
        The fraction of its training each run received (the last rung it was trained to).
    compute : float
        ``mean(reached)``: the compute spent, as a fraction of training every run to the end.
    chosen : str
        The best of the runs trained to the end, by the score at the last rung.
    """

    survivors: list[list[str]] = field(default_factory=list)
    reached: dict[str, float] = field(default_factory=dict)
    compute: float = math.nan
    chosen: str = ""


def successive_halving(run_ids: Sequence[str], rungs: Sequence[float], eta: float,
                       score: Callable[[str, float], float]) -> HalvingResult:
    """Successive halving of ``run_ids`` over ``rungs`` keeping ``ceil(n/η)`` runs at each.

    Parameters
    ----------
    run_ids : sequence of str
    rungs : sequence of float
        Increasing fractions of training in (0, 1]; the last should be 1 (trained to the end).
    eta : float
        Reduction factor (> 1): each rung keeps the best ``ceil(n/η)`` of its ``n`` runs.
    score : callable(run_id, fraction) -> float
        Higher is better: the run's score when trained to ``fraction`` (e.g. its test
        accuracy there, ASHA's rule, or its forecast final accuracy).

    Raises
    ------
    ValueError
        No runs, rungs that do not increase within (0, 1], or ``eta <= 1``.
    """
    runs = list(run_ids)
    rungs = [float(r) for r in rungs]
    if not runs:
        raise ValueError("successive halving needs at least one run")
    if not rungs or any(not 0 < r <= 1 for r in rungs) or any(b <= a for a, b in zip(rungs, rungs[1:])):
        raise ValueError(f"rungs must increase within (0, 1], got {rungs}")
    if isinstance(eta, bool) or not isinstance(eta, numbers.Real) or not eta > 1:
        raise ValueError(f"eta must be a number > 1, got {eta!r}")
    alive, survivors, reached = runs, [], {}
    scores: dict[str, float] = {}
    for i, rung in enumerate(rungs):
        survivors.append(list(alive))
        for run in alive:
            reached[run] = rung
        scores = {run: float(score(run, rung)) for run in alive}
        if i < len(rungs) - 1:
            keep = max(1, math.ceil(len(alive) / eta))
            alive = sorted(alive, key=lambda r: -scores[r] if math.isfinite(scores[r]) else math.inf)[:keep]
    chosen = max(alive, key=lambda r: scores[r] if math.isfinite(scores[r]) else -math.inf)
    return HalvingResult(survivors=survivors, reached=reached, compute=sum(reached.values()) / len(runs),
                         chosen=chosen)
