"""Prune a Ray Tune experiment by the rule of a pruned sweep: a trial scheduler.

:class:`ProgressScheduler` stops Tune trials at rungs -- fractions of their training -- by
the same rule a pruned ``deepmanifold`` sweep uses (:class:`~deepmanifold.live.pruning.Pruning`),
so that a search run with Ray Tune and a sweep run with ``deepmanifold run`` keep the
same runs from the same scores. At the first result at or past each rung, the trial's
score is recorded with those of the trials judged there before it, and the trial goes on
only if :func:`~deepmanifold.live.pruning.asha_continues` says so: ASHA's asynchronous
promotion rule (Li et al. 2020, "A system for massively parallel hyperparameter tuning"),
which decides from the trials already seen at the rung, so that no trial waits for
another. About ``1/η`` of the trials pass each rung.

The score is the rule's:

- ``"accuracy"`` (ASHA): the test accuracy the trial reports (``metric``) at the rung;
- ``"forecast"``: the trial's *forecast final* test accuracy,
  :func:`~deepmanifold.live.forecast_run` from the reference store of the settings (the
  reference runs nearest at equal progress vote), which sees that a slow starter will
  end ahead where its accuracy at the rung does not.

Tune's schedulers run in the driver, so the scores at each rung are kept in the scheduler
rather than in a store's ledger (:class:`~deepmanifold.store.rungs.RungLedger`, used by
sweeps whose runs judge themselves). Needs Ray Tune (``pip install 'deepmanifold[ray]'``).

What the trainable reports, in every result (``tune.report``):

- ``time_attr`` (default ``"fraction"``): the fraction of its training done, in (0, 1] --
  report ``step / total_steps``;
- rule ``"accuracy"``: ``metric`` (default ``"test_acc"``);
- rule ``"forecast"``: ``"logp"``, its log-probabilities on the reference's probe set
  (shape ``(n, C)``, array or nested list), and ``"epoch"``. Tune's loggers write every
  result, so keep the probe set small (a few hundred samples).

Examples
--------
>>> from ray import tune                                        # doctest: +SKIP
>>> from deepmanifold.live.pruning import Pruning
>>> from deepmanifold.live.tune import ProgressScheduler        # doctest: +SKIP
>>> scheduler = ProgressScheduler(Pruning(eta=3))               # doctest: +SKIP
>>> tuner = tune.Tuner(train, param_space=space,                # doctest: +SKIP
...                    tune_config=tune.TuneConfig(scheduler=scheduler, metric="test_acc", mode="max"))
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Mapping

import numpy as np

from .pruning import Pruning, asha_continues

try:
    from ray.tune.schedulers import FIFOScheduler, TrialScheduler
except ImportError as exc:  # pragma: no cover - the optional extra is not installed
    raise ImportError("ProgressScheduler needs Ray Tune: pip install 'deepmanifold[ray]' (or 'ray[tune]')") from exc

if TYPE_CHECKING:
    from .reference import ReferencePicture

__all__ = ["ProgressScheduler"]


@dataclass
class _Progress:
    """What the scheduler keeps of one trial: where it is, and (forecast rule) its checkpoints so far."""

    fraction: float = 0.0  # the last fraction reported (0: none yet)
    fractions: list[float] = field(default_factory=list)  # of every result, to rewind to on a restart
    epochs: list[float] = field(default_factory=list)  # forecast rule only: one per result
    logp: list[np.ndarray] = field(default_factory=list)

    def rewind(self, fraction: float) -> None:
        """Forget the checkpoints at or past ``fraction``: the trial was restarted from before them."""
        keep = sum(f < fraction for f in self.fractions)
        del self.fractions[keep:], self.epochs[keep:], self.logp[keep:]
        self.fraction = self.fractions[-1] if self.fractions else 0.0


class ProgressScheduler(FIFOScheduler):
    """A Ray Tune scheduler that stops trials at rungs by a pruned sweep's rule (module docstring).

    Trials are started in submission order (:class:`~ray.tune.schedulers.FIFOScheduler`);
    :meth:`on_trial_result` stops one at a rung when
    :func:`~deepmanifold.live.pruning.asha_continues` says so over the scores recorded
    there by all trials so far (a trial judged again at a rung, after Tune restarted it,
    replaces its score). Higher scores are better: Tune's ``mode`` is ``"max"``.

    Parameters
    ----------
    pruning : Pruning
        The rule (``"accuracy"`` or ``"forecast"``), ``eta``, the rungs (fractions of
        training in (0, 1)) and, for the forecast, the reference store, its probe set and
        the neighbours ``k``.
    time_attr : str, default "fraction"
        The result key holding the fraction of its training the trial has done, in (0, 1].
    metric : str, default "test_acc"
        The result key holding the test accuracy, the score of rule ``"accuracy"``. The
        forecast rule does not read it, and does not ask Tune to check for it.

    Attributes
    ----------
    pruning : Pruning
    time_attr : str
    decisions : list of (str, int, float, str)
        ``(trial_id, rung_index, score, "continue" or "stop")`` for every judgement, in
        the order they were made.

    Raises
    ------
    ValueError
        From :meth:`on_trial_result`, when a result lacks a key the rule needs (the
        message names the key and the trial), or holds a fraction outside (0, 1], epochs
        that do not increase or log-probabilities that are not ``(n, C)``.
    """

    # A rung is judged at the first result past it: results buffered on the worker would
    # let a trial train on past a rung before the scheduler's STOP reaches it.
    _supports_buffered_results = False

    def __init__(self, pruning: Pruning, *, time_attr: str = "fraction", metric: str = "test_acc"):
        if not isinstance(pruning, Pruning):
            raise ValueError(f"pruning must be a Pruning (deepmanifold.live.pruning), got {type(pruning).__name__}")
        for name, value in (("time_attr", time_attr), ("metric", metric)):
            if not isinstance(value, str) or not value:
                raise ValueError(f"{name} must be a result key (a non-empty string), got {value!r}")
        super().__init__()
        self.pruning = pruning
        self.time_attr = time_attr
        self._score_key = metric
        # Tune checks that every result holds the scheduler's ``metric``; only the accuracy
        # rule reads one, so only it claims it.
        self._metric = metric if pruning.rule == "accuracy" else None
        self._mode = "max"
        self.decisions: list[tuple[str, int, float, str]] = []
        self._recorded: list[dict[str, float]] = [{} for _ in pruning.rungs]  # rung -> trial -> score
        self._stopped = [0] * len(pruning.rungs)
        self._trials: dict[str, _Progress] = {}
        self._reference: ReferencePicture | None = None

    def __getstate__(self) -> dict:
        # Tune pickles its settings, scheduler included; the reference picture is rebuilt
        # on first use rather than carried (it holds the reference store's checkpoints).
        state = self.__dict__.copy()
        state["_reference"] = None
        return state

    # -- Tune's side ---------------------------------------------------------------------

    def set_search_properties(self, metric: str | None, mode: str | None, **spec) -> bool:
        """Take Tune's ``metric`` and ``mode`` (``tune.TuneConfig``): the mode must be ``"max"``.

        The accuracy rule ranks trials by its own ``metric``, so another metric given to
        Tune is refused rather than silently not pruned on; the forecast rule takes any
        (Tune ranks its results by it; the scheduler does not read it).

        Raises
        ------
        ValueError
            ``mode`` is not ``"max"``, or (rule ``"accuracy"``) ``metric`` is not the
            scheduler's.
        """
        if mode is not None and mode != "max":
            raise ValueError(f"ProgressScheduler keeps the trials of highest score (mode 'max'), got mode {mode!r}: "
                             "report an accuracy (higher is better) and pass mode='max' to tune.TuneConfig")
        if metric is not None and self._metric is not None and metric != self._metric:
            raise ValueError(f"ProgressScheduler prunes on {self._metric!r} (its metric=), but Tune was given "
                             f"metric {metric!r}: pass ProgressScheduler(..., metric={metric!r}) or the same metric "
                             "to tune.TuneConfig")
        return True

    def on_trial_result(self, tune_controller, trial, result: Mapping[str, Any]) -> str:
        """Judge ``trial`` at every rung its result reaches first: ``TrialScheduler.STOP`` or ``CONTINUE``."""
        trial_id = trial.trial_id
        if self.time_attr not in result:
            if result.get("done"):  # a trial that ended without a new result: nothing to judge
                return TrialScheduler.CONTINUE
            raise self._missing(self.time_attr, trial_id, "the fraction of its training done, in (0, 1]")
        fraction = result[self.time_attr]
        if isinstance(fraction, bool) or not isinstance(fraction, numbers.Real) or not 0 < fraction <= 1:
            raise ValueError(f"trial {trial_id}: {self.time_attr!r} must be the fraction of its training done, "
                             f"in (0, 1], got {fraction!r}")
        fraction = float(fraction)
        state = self._trials.get(trial_id) or _Progress()
        if fraction == state.fraction:  # Tune repeats a trial's last result when it ends: judged already
            return TrialScheduler.CONTINUE
        # Tune restarted the trial (after a failure, from a checkpoint or from scratch) when its
        # fraction goes back: what it reported at or past this point is forgotten, and the rungs
        # past it are judged again, their scores replaced.
        kept = sum(f < fraction for f in state.fractions)
        # Check everything before keeping anything, so that a bad result changes nothing.
        if self.pruning.rule == "accuracy":
            accuracy, checkpoint = self._accuracy(result, trial_id), None
        else:
            checkpoint = self._checkpoint(result, trial_id)
            epoch, logp = checkpoint
            if kept and not epoch > state.epochs[kept - 1]:
                raise ValueError(f"trial {trial_id}: 'epoch' must increase from result to result, got {epoch} after "
                                 f"{state.epochs[kept - 1]}")
            if kept and logp.shape != state.logp[0].shape:
                raise ValueError(f"trial {trial_id}: 'logp' has shape {logp.shape}, its earlier results "
                                 f"{state.logp[0].shape}")
        self._trials[trial_id] = state
        if kept < len(state.fractions):
            state.rewind(fraction)
        if checkpoint is not None:
            state.epochs.append(checkpoint[0])
            state.logp.append(checkpoint[1])
        state.fractions.append(fraction)
        rungs = self.pruning.rungs
        crossed = [i for i, rung in enumerate(rungs) if state.fraction < rung <= fraction]
        state.fraction = fraction
        if not crossed:
            return TrialScheduler.CONTINUE
        # A result may pass several rungs at once: it is judged at each with the same score,
        # and stops at the first that stops it (as RungPruner does in a sweep).
        score = accuracy if checkpoint is None else self._forecast(state, trial_id)
        for i in crossed:
            self._recorded[i][trial_id] = score
            go_on = asha_continues(score, list(self._recorded[i].values()), self.pruning.eta)
            self.decisions.append((trial_id, i, score, "continue" if go_on else "stop"))
            if not go_on:
                self._stopped[i] += 1
                return TrialScheduler.STOP
        return TrialScheduler.CONTINUE

    def on_trial_complete(self, tune_controller, trial, result: Mapping[str, Any]) -> None:
        """Forget the trial's progress (its scores stay recorded at the rungs)."""
        self._trials.pop(trial.trial_id, None)

    def on_trial_remove(self, tune_controller, trial) -> None:
        """Forget the trial's progress (its scores stay recorded at the rungs)."""
        self._trials.pop(trial.trial_id, None)

    # A failed trial keeps its progress (on_trial_error is FIFOScheduler's no-op): Tune may
    # restart it, and a restart from a checkpoint continues the same history.

    def debug_string(self) -> str:
        """How many trials were judged and stopped at each rung (Tune's status output)."""
        rungs = ", ".join(f"rung {i + 1} ({rung:.0%} of training): {self._stopped[i]} of {len(self._recorded[i])} "
                          "stopped" for i, rung in enumerate(self.pruning.rungs))
        return f"Using ProgressScheduler ({self.pruning.rule} rule, eta={self.pruning.eta:g}): {rungs}"

    # -- scores --------------------------------------------------------------------------

    def _missing(self, key: str, trial_id: str, what: str) -> ValueError:
        return ValueError(f"trial {trial_id} reported a result without {key!r} ({what}); the "
                          f"{self.pruning.rule!r} rule of ProgressScheduler needs it in every result")

    def _checkpoint(self, result: Mapping[str, Any], trial_id: str) -> tuple[float, np.ndarray]:
        for key, what in (("logp", "log-probabilities on the reference's probe set, (n, C)"), ("epoch", "its epoch")):
            if key not in result:
                raise self._missing(key, trial_id, what)
        epoch = result["epoch"]
        if isinstance(epoch, bool) or not isinstance(epoch, numbers.Real) or not math.isfinite(epoch):
            raise ValueError(f"trial {trial_id}: 'epoch' must be a finite number, got {epoch!r}")
        # float32 as the reference's own checkpoints; one (n, C) array per result is all that is kept.
        logp = np.asarray(result["logp"], dtype=np.float32)
        if logp.ndim != 2:
            raise ValueError(f"trial {trial_id}: 'logp' must be (n, C) log-probabilities, got shape {logp.shape}")
        return float(epoch), logp

    def _accuracy(self, result: Mapping[str, Any], trial_id: str) -> float:
        if self._score_key not in result:
            raise self._missing(self._score_key, trial_id, "its test accuracy")
        value = result[self._score_key]
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise ValueError(f"trial {trial_id}: {self._score_key!r} must be a number, got {value!r}")
        return float(value)

    def _forecast(self, state: _Progress, trial_id: str) -> float:
        from .forecast import forecast_run

        try:
            return forecast_run(self.reference, np.stack(state.logp), np.asarray(state.epochs),
                                k=self.pruning.k).final_test_acc
        except ValueError as exc:  # e.g. a probe set that is not the reference's: say whose
            raise ValueError(f"trial {trial_id}: {exc}") from exc

    @property
    def reference(self) -> ReferencePicture:
        """The forecast rule's reference picture, built on first use (reading the store takes a while)."""
        if self._reference is None:
            if self.pruning.rule != "forecast":
                raise ValueError("only the 'forecast' rule has a reference")
            from .reference import ReferencePicture

            self._reference = ReferencePicture(self.pruning.reference, probe=self.pruning.probe)
        return self._reference
