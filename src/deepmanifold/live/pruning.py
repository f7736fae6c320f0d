"""Pruning a sweep by progress: successive halving on test accuracy or on forecast final accuracy.

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

A sweep prunes live with :class:`Pruning` (its ``[prune]`` table): every run reports its
score at each rung to a ledger in the store (:class:`~deepmanifold.store.rungs.RungLedger`)
and stops there unless :func:`asha_continues` — ASHA's asynchronous rule, which decides from
the runs that reached the rung before it, so no run waits for another. :class:`RungPruner`
is the training loop's side of it; a stopped run is committed with status ``"pruned"`` and
the checkpoints it has, and is not trained again on resume.
"""

from __future__ import annotations

import hashlib
import json
import math
import numbers
import os
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Mapping, Sequence

import numpy as np

__all__ = ["RULES", "HalvingResult", "Pruning", "RungPruner", "asha_continues", "asha_cutoff", "asynchronous_halving",
           "successive_halving", "training_order"]

#: What a pruned sweep ranks runs by at a rung: ``"accuracy"`` (ASHA: test accuracy at the
#: rung) or ``"forecast"`` (the forecast final test accuracy from a reference store).
RULES = ("accuracy", "forecast")


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


def asynchronous_halving(run_ids: Sequence[str], rungs: Sequence[float], eta: float,
                         score: Callable[[str, float], float]) -> HalvingResult:
    """What a pruned sweep with one worker does: the runs in order, each judged by :func:`asha_continues`.

    Run by run, in the order given, each is trained to each rung in turn and reports
    ``score(run, rung)``; it stops at the first rung where its score falls below the cutoff of
    the scores reported there before (its own included), else it trains to the end.

    Parameters
    ----------
    run_ids : sequence of str
        In the order the sweep trains them.
    rungs : sequence of float
        Increasing fractions of training in (0, 1).
    eta : float
        Reduction factor (> 1).
    score : callable(run_id, fraction) -> float
        Higher is better; ``fraction == 1`` is asked for the runs trained to the end, and
        chooses the best of them.

    Returns
    -------
    HalvingResult
        ``survivors[i]`` are the runs that reached rung ``i`` (the last entry: those trained
        to the end).
    """
    runs, rungs = list(run_ids), [float(r) for r in rungs]
    if not runs:
        raise ValueError("asynchronous halving needs at least one run")
    if not rungs or any(not 0 < r < 1 for r in rungs) or any(b <= a for a, b in zip(rungs, rungs[1:])):
        raise ValueError(f"rungs must increase within (0, 1), got {rungs}")
    if isinstance(eta, bool) or not isinstance(eta, numbers.Real) or not eta > 1:
        raise ValueError(f"eta must be a number > 1, got {eta!r}")
    recorded: list[list[float]] = [[] for _ in rungs]
    survivors: list[list[str]] = [[] for _ in range(len(rungs) + 1)]
    reached: dict[str, float] = {}
    for run in runs:
        reached[run] = 1.0
        for i, rung in enumerate(rungs):
            survivors[i].append(run)
            value = float(score(run, rung))
            recorded[i].append(value)
            if not asha_continues(value, recorded[i], eta):
                reached[run] = rung
                break
        else:
            survivors[-1].append(run)
    finals = {run: float(score(run, 1.0)) for run in survivors[-1]}
    chosen = max(finals, key=lambda r: finals[r] if math.isfinite(finals[r]) else -math.inf)
    return HalvingResult(survivors=survivors, reached=reached, compute=sum(reached.values()) / len(runs),
                         chosen=chosen)


def asha_continues(score: float, recorded: Sequence[float], eta: float) -> bool:
    """Whether a run goes on past a rung: ASHA's asynchronous promotion rule.

    A run continues iff its ``score`` is at least the ``(1 − 1/η)`` quantile (linear
    interpolation) of the finite scores recorded at the rung, its own included (Li et al.
    2020, "A system for massively parallel hyperparameter tuning"; Ray Tune's
    ``AsyncHyperBandScheduler`` takes the same quantile of the scores recorded *before* the
    run's own, which differs only while few have reported). The first run at a rung always
    continues; once many have reported, about ``1/η`` of them do. A non-finite score never
    continues.
    """
    if not math.isfinite(score):
        return False
    cutoff = asha_cutoff(recorded, eta)
    return bool(math.isnan(cutoff) or score >= cutoff)


def asha_cutoff(recorded: Sequence[float], eta: float) -> float:
    """The score a run needs at a rung to go on (:func:`asha_continues`): the ``(1 − 1/η)``
    quantile (linear interpolation) of the finite ``recorded`` scores; NaN if there are none."""
    values = [v for v in recorded if math.isfinite(v)]
    return float(np.quantile(values, 1.0 - 1.0 / float(eta))) if values else math.nan


@dataclass(frozen=True)
class Pruning:
    """How a sweep prunes its runs (the spec's ``[prune]`` table).

    Attributes
    ----------
    rule : {"accuracy", "forecast"}
        Rank runs at a rung by their test accuracy there (ASHA) or by their forecast final
        test accuracy (:func:`~deepmanifold.live.forecast_run` from ``reference``).
    eta : float
        Reduction factor (> 1): about ``1/η`` of the runs pass each rung.
    rungs : tuple of float
        Fractions of training in (0, 1), increasing, at which runs are judged; default
        ``(1/η², 1/η)``.
    reference : str or None
        The reference store of ``"forecast"`` (a finished sweep on the same probe sets).
    probe : str
        The probe set scored (its accuracy; the reference's probe for the forecast).
    k : int
        Neighbours of the forecast.
    order : {"shuffled", "spec"}
        The order runs start in: a fixed random permutation of the spec's runs (seed 0), or
        the spec's own. ASHA lets the first runs at a rung through, so a grid's order (all
        of one architecture first) would decide which configurations get that advantage;
        a shuffle spreads it at random, as a random search would (:func:`training_order`).
    """

    rule: str = "accuracy"
    eta: float = 3.0
    rungs: tuple[float, ...] = ()
    reference: str | None = None
    probe: str = "test"
    k: int = 5
    order: str = "shuffled"

    def __post_init__(self):
        if self.rule not in RULES:
            raise ValueError(f"rule must be one of {RULES}, got {self.rule!r}")
        if isinstance(self.eta, bool) or not isinstance(self.eta, numbers.Real) or not self.eta > 1:
            raise ValueError(f"eta must be a number > 1, got {self.eta!r}")
        object.__setattr__(self, "eta", float(self.eta))  # eta = 2 and 2.0 are one setting (one ledger)
        rungs = tuple(float(r) for r in self.rungs) or (1.0 / float(self.eta) ** 2, 1.0 / float(self.eta))
        if any(not 0 < r < 1 for r in rungs) or any(b <= a for a, b in zip(rungs, rungs[1:])):
            raise ValueError(f"rungs must increase within (0, 1) (fractions of training), got {list(rungs)}")
        object.__setattr__(self, "rungs", rungs)
        if self.rule == "forecast" and not self.reference:
            raise ValueError("rule 'forecast' needs a reference store (reference = \"PATH\")")
        if self.rule == "accuracy" and self.reference:
            raise ValueError("rule 'accuracy' takes no reference; the forecast rule does")
        if isinstance(self.k, bool) or not isinstance(self.k, numbers.Integral) or self.k < 1:
            raise ValueError(f"k must be an integer >= 1, got {self.k!r}")
        if self.order not in ("shuffled", "spec"):
            raise ValueError(f"order must be 'shuffled' or 'spec', got {self.order!r}")
        if not isinstance(self.probe, str) or not self.probe:
            raise ValueError(f"probe must be a probe set's name, got {self.probe!r}")

    @classmethod
    def from_mapping(cls, table: Mapping[str, Any]) -> "Pruning":
        """From a spec's ``[prune]`` table; unknown keys are refused by name."""
        known = {"rule", "eta", "rungs", "reference", "probe", "k", "order"}
        unknown = sorted(set(table) - known)
        if unknown:
            raise ValueError(f"unknown key(s) in [prune]: {unknown}; known: {sorted(known)}")
        values = dict(table)
        if "rungs" in values:
            if not isinstance(values["rungs"], (list, tuple)) or not all(
                    isinstance(r, numbers.Real) and not isinstance(r, bool) for r in values["rungs"]):
                raise ValueError(f"rungs must be a list of numbers, got {values['rungs']!r}")
            values["rungs"] = tuple(values["rungs"])
        if values.get("reference") is not None:
            values["reference"] = os.fspath(values["reference"])
        return cls(**values)

    @property
    def key(self) -> str:
        """Names these settings: the ledger file of their rung scores in a store."""
        digest = hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()[:10]
        return f"{self.rule}-{digest}"


def training_order(items: Sequence, pruning: Pruning | None) -> list:
    """``items`` in the order a sweep pruned by ``pruning`` starts them (:attr:`Pruning.order`).

    ``"shuffled"``: the permutation ``numpy.random.default_rng(0).permutation(len(items))``,
    the same on every machine and every resume; unpruned sweeps keep the spec's order.
    """
    items = list(items)
    if pruning is None or pruning.order == "spec":
        return items
    return [items[i] for i in np.random.default_rng(0).permutation(len(items))]


_REFERENCES: dict[tuple[str, str], Any] = {}  # one reference picture per process, store and probe set


def _reference(path: str, probe: str):
    from .reference import ReferencePicture

    key = (os.path.abspath(path), probe)
    if key not in _REFERENCES:
        _REFERENCES[key] = ReferencePicture(path, probe=probe)
    return _REFERENCES[key]


class RungPruner:
    """The training loop's side of a pruned sweep: judge a run at each rung it passes.

    Call it after every kept checkpoint (``train_run(..., pruner=)`` does): at the first
    checkpoint at or past each rung (``step >= rung × total_steps``) the run's score is
    reported to the store's ledger, and a message is returned when
    :func:`asha_continues` says stop (None otherwise).

    Parameters
    ----------
    pruning : Pruning
    store_root : path-like
        The sweep's store (its ledger).
    run_id : str
    total_steps : int
        The run's updates in all.
    """

    def __init__(self, pruning: Pruning, store_root: str | os.PathLike, run_id: str, total_steps: int):
        from deepmanifold.store.rungs import RungLedger

        self.pruning, self.run_id, self.total_steps = pruning, run_id, int(total_steps)
        self.ledger = RungLedger(store_root, pruning.key)
        self.reference = _reference(pruning.reference, pruning.probe) if pruning.rule == "forecast" else None
        self.scores: list[float] = []  # the run's score at each rung judged so far
        self._next = 0

    def __call__(self, recorder, step: int) -> str | None:
        rungs = self.pruning.rungs
        while self._next < len(rungs) and step >= rungs[self._next] * self.total_steps:
            rung = self._next
            self._next += 1
            score = self.score(recorder)
            self.scores.append(score)
            recorded = self.ledger.report(self.run_id, rung, score)
            if not asha_continues(score, list(recorded.values()), self.pruning.eta):
                cutoff = asha_cutoff(list(recorded.values()), self.pruning.eta)
                return (f"pruned at rung {rung + 1} of {len(rungs)} ({rungs[rung]:.0%} of training, step {step}): "
                        f"{self.pruning.rule} score {score:.4f} below the cutoff {cutoff:.4f} of the "
                        f"{len(recorded)} runs judged there (top 1/{self.pruning.eta:g} go on)")
        return None

    def score(self, recorder) -> float:
        """The run's score now: its accuracy on the probe set, or its forecast final test accuracy."""
        if self.reference is None:
            probe = recorder.probes.get(self.pruning.probe)
            if probe is None:
                raise ValueError(f"prune probe {self.pruning.probe!r} is not one of the run's probe sets "
                                 f"{sorted(recorder.probes)}")
            logp = recorder.latest()[self.pruning.probe]
            return float((np.asarray(logp).argmax(axis=1) == np.asarray(probe.labels)).mean())
        from .forecast import forecast_run

        name = self.reference.matching_probe({n: p.fingerprint for n, p in recorder.probes.items()})
        logp, epochs = recorder.history(name)
        return forecast_run(self.reference, logp, epochs, k=self.pruning.k, exclude=[self.run_id]).final_test_acc
