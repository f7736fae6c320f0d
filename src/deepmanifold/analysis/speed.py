r"""Claim 3 (docs/method.md §6): larger networks follow the same path, only faster.

The claim judged (:func:`speed_analysis`, :data:`RULE`, :func:`judge`)
---------------------------------------------------------------------
Within each architecture *family* (the model name: ``cnn`` and its alias ``cnn_wide`` are
one family) trained at two or more widths (``arch_options.width``), corner-initialised
runs left out:

Faster: matched narrow/wide pairs
    Runs equal in every key but the width and the seed (bookkeeping keys aside) form a
    *base configuration*; its narrowest and widest width are compared, run by run,
    seeds matched (runs whose seed has no partner are paired in seed order and flagged).
    For each progress level of :data:`SPEED_LEVELS` reached by at least
    :data:`REACH_FRACTION` of the family's paired runs, the time to reach it
    (:func:`progress_milestones`, in epochs; a pair shares its batch size, so steps give
    the same ratio) gives ``log(T_wide / T_narrow)``; a pair's statistic is its mean over
    those levels that both runs reached after epoch 0. Intermediate widths telescope out
    of a chain of log ratios, so the extremes carry the test. The mean over pairs is
    tested one-sided by exact sign flips (:func:`scipy.stats.permutation_test`; every
    sign pattern up to 16 pairs, random ones beyond): ``p_faster`` for "wider needs fewer
    epochs" (mean < 0), ``p_not_faster`` for "the speed-up is below
    :data:`MIN_SPEEDUP`" (mean > log(1 − MIN_SPEEDUP)). Pairs, not seeds, are the units:
    each is an independent narrow/wide comparison. With fewer than 5 pairs no sign-flip
    p-value can fall below 0.05 (the smallest is 2⁻ⁿ).
Same path: crossed effects of width and architecture
    ``Δ_width / Δ_arch`` per family, both the crossed-seed effects of
    :mod:`deepmanifold.analysis.factors` on the trajectory distances: ``Δ_width`` over the
    family's pairs of configurations that differ in width only, ``Δ_arch`` over the pairs
    of configurations that differ in architecture only and involve the family. Its 95 %
    interval comes from resampling configuration groups for both at once
    (:func:`~deepmanifold.analysis.factors.resample_groups`).

Descriptions
------------
- :func:`progress_milestones` -- the epoch and step at which one run's progress first
  reaches given levels (default 0.5 and 0.9), as :class:`Milestones`.
- :func:`speed_by_width` -- those milestones per architecture and width, and the
  Spearman correlation between width and epochs (steps) to the top level within each
  architecture (:class:`SpeedByWidth`).
- :func:`spearman` -- the rank correlation they use (:class:`Spearman`).

Every result has a ``to_dict()`` giving its JSON form (as in ``findings.json``).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import scipy.stats
from scipy.stats import rankdata

from deepmanifold.analysis.factors import (IGNORED_KEYS, MIN_GROUPS, MUCH_LESS, crossed_pairs, flat_configs,
                                           ordinary_runs, resample_groups)
from deepmanifold.analysis.verdicts import Judgement, decide
from deepmanifold.utils import jsonable

__all__ = ["MIN_SPEEDUP", "REACH_FRACTION", "RULE", "SAME_PATH_MAX", "SPEED_LEVELS", "SPEED_P_VALUE",
           "ArchitectureSpeed", "FamilySpeed", "LevelRatio", "LevelTimes", "Milestone", "Milestones", "RunProgress",
           "RunSpeed", "SpeedAnalysis", "Spearman", "SpeedByWidth", "WidthPair", "WidthSpeed", "WidthTrend", "judge",
           "progress_milestones", "spearman", "speed_analysis", "speed_by_width"]

DEFAULT_LEVELS = (0.5, 0.9)
UNITS = ("epochs", "steps")  # the two clocks a milestone is read on

#: Progress levels whose times to reach are compared (those reached by enough runs of a family).
SPEED_LEVELS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
#: Share of a family's paired runs that must reach a level for it to count (as the common grid of
#: the trajectories): a level few runs reach would compare only the fast ones.
REACH_FRACTION = 0.9
#: Smallest speed-up that counts as "faster": the wider network needs at most 1 − MIN_SPEEDUP of
#: the narrower one's epochs. Below 10 % a difference is within what checkpoint spacing and
#: seed-to-seed variation give runs of one configuration.
MIN_SPEEDUP = 0.1
#: One-sided sign-flip p-value below which "faster" (or "not meaningfully faster") holds.
SPEED_P_VALUE = 0.05
#: Largest Δ_width / Δ_arch that is still "the same path": width changes trajectories at most
#: half as much as architecture does (the "much less" of claim 2).
SAME_PATH_MAX = MUCH_LESS

#: The rule that judges claim 3 (shown next to the verdict).
RULE = (
    "Larger networks, same path, faster. Per architecture family trained at two or more widths (corner runs "
    "left out): runs equal in everything but width and seed are paired narrowest against widest, seeds "
    "matched, and each pair gives log(epochs of the wider / epochs of the narrower) to reach each progress "
    f"level reached by ≥ {REACH_FRACTION * 100:g} % of the family's paired runs, averaged over those levels. "
    f"Faster: a one-sided exact sign-flip test of the mean over pairs, p < {SPEED_P_VALUE:g} (needs ≥ 5 "
    "pairs). Same path: Δ_width / Δ_arch, the crossed-seed effects of width and of architecture on the "
    "trajectories (as in the architecture claim) for that family, with a 95 % interval (configuration groups "
    f"resampled) whose upper bound is ≤ {SAME_PATH_MAX:g}. Supported when both hold in every such family. Not "
    f"supported when in some family the speed-up is significantly below {MIN_SPEEDUP * 100:g} % (sign-flip "
    f"p < {SPEED_P_VALUE:g} for mean log ratio > log {1 - MIN_SPEEDUP:g}) or the ratio's lower bound exceeds "
    f"{SAME_PATH_MAX:g}. Inconclusive otherwise. Skipped without a family trained at two widths."
)

_WIDTH = "arch_options.width"
_SIGN_FLIP_EXACT = 16  # pairs up to which every sign pattern is enumerated (65,536)


def _with_reason(out: dict, reason: str) -> dict:
    """``out`` with ``"reason"`` added when there is one (the JSON of a result that may be empty)."""
    if reason:
        out["reason"] = reason
    return out

@dataclass(frozen=True)
class Spearman:
    """A Spearman rank correlation.

    Attributes
    ----------
    rho : float or None
        The correlation; None for fewer than 2 finite pairs or a constant input.
    n : int
        Pairs where both values are finite.
    reason : str
        Why ``rho`` is None ("" otherwise).
    """

    rho: float | None
    n: int
    reason: str = ""


@dataclass(frozen=True)
class Milestone:
    """When one run's progress first reached one level (None: never).

    Attributes
    ----------
    epoch : float or None
    step : float or None
    """

    epoch: float | None
    step: float | None

    def to_dict(self) -> dict:
        return {"epoch": self.epoch, "step": self.step}


@dataclass(frozen=True)
class Milestones:
    """When one run's progress first reached each of several levels.

    Attributes
    ----------
    levels : tuple of float
        The levels, in the order asked.
    reached : tuple of Milestone
        One per level.

    ``milestones[0.9]`` (or ``milestones["0.9"]``) is the :class:`Milestone` of a level.
    """

    levels: tuple[float, ...]
    reached: tuple[Milestone, ...]

    def __getitem__(self, level) -> Milestone:
        key = level if isinstance(level, str) else _level_key(level)
        for lv, m in zip(self.levels, self.reached):
            if _level_key(lv) == key:
                return m
        raise KeyError(f"no milestone at level {level!r} (levels: {list(self.levels)})")

    def to_dict(self) -> dict:
        """``{"0.5": {"epoch", "step"}, ...}``, keys formatted with ``f"{level:g}"``."""
        return {_level_key(lv): m.to_dict() for lv, m in zip(self.levels, self.reached)}


@dataclass(frozen=True)
class RunProgress:
    """One run's progress along training: the input of :func:`speed_by_width`.

    Attributes
    ----------
    run_id : str
    arch : str
        Architecture (model family) of the run.
    width : int, float or None
        Its width (None: unknown).
    progress, epochs, steps : ndarray, shape (K,)
        Progress (docs/method.md §3), epoch and optimiser step of each checkpoint.
    """

    run_id: str
    arch: str
    width: int | float | None
    progress: np.ndarray
    epochs: np.ndarray
    steps: np.ndarray

    def milestones(self, levels=DEFAULT_LEVELS) -> Milestones:
        """:func:`progress_milestones` of this run."""
        return progress_milestones(self.progress, self.epochs, self.steps, levels)


@dataclass(frozen=True)
class RunSpeed:
    """Milestones of one run of :func:`speed_by_width`.

    Attributes
    ----------
    run_id : str
    arch : str
    width : int, float or None
        Integral widths are ints.
    milestones : Milestones
    """

    run_id: str
    arch: str
    width: int | float | None
    milestones: Milestones

    def to_dict(self) -> dict:
        return {"run_id": self.run_id, "arch": self.arch, "width": self.width,
                "milestones": self.milestones.to_dict()}


@dataclass(frozen=True)
class LevelTimes:
    """When the runs (seeds) of one width reached one level, on one clock.

    Attributes
    ----------
    mean : float or None
        Over the runs that reached it (None: none did).
    values : list of float or None
        Per run, in the order of :attr:`WidthSpeed.run_ids`; None where never reached.
    n_reached : int
    """

    mean: float | None
    values: list
    n_reached: int

    def to_dict(self) -> dict:
        return {"mean": self.mean, "values": list(self.values), "n_reached": self.n_reached}


@dataclass(frozen=True)
class WidthSpeed:
    """The runs of one architecture at one width.

    Attributes
    ----------
    width : int or float
    n_runs : int
    run_ids : list of str
    epochs, steps : dict of str to LevelTimes
        Per level (keyed ``f"{level:g}"``), when the runs reached it in epochs and in steps.
    """

    width: int | float
    n_runs: int
    run_ids: list
    epochs: dict
    steps: dict

    def to_dict(self) -> dict:
        return {"width": self.width, "n_runs": self.n_runs, "run_ids": list(self.run_ids),
                **{unit: {k: v.to_dict() for k, v in getattr(self, unit).items()} for unit in UNITS}}


@dataclass(frozen=True)
class WidthTrend:
    """Spearman correlation of width with the time to reach the trend level, on one clock.

    Negative: wider is faster. Runs that never reach the level are counted, not ranked
    (runs may have been trained for different lengths).

    Attributes
    ----------
    rho : float or None
        Over the runs that reached the level.
    n : int
        Those runs.
    rho_width_means : float or None
        Over the per-width means.
    n_widths : int
        Widths with a mean.
    n_not_reached : int
        Runs that never reached the level.
    reason : str
        Why ``rho`` is None ("" otherwise).
    """

    rho: float | None
    n: int
    rho_width_means: float | None
    n_widths: int
    n_not_reached: int
    reason: str = ""

    def to_dict(self) -> dict:
        return _with_reason({"rho": self.rho, "n": self.n, "rho_width_means": self.rho_width_means,
                             "n_widths": self.n_widths, "n_not_reached": self.n_not_reached}, self.reason)


@dataclass(frozen=True)
class ArchitectureSpeed:
    """Speed against width within one architecture trained at two or more widths.

    Attributes
    ----------
    widths : list of WidthSpeed
        Sorted by width.
    trend : dict of str to WidthTrend
        ``"epochs"`` and ``"steps"``: the width trend at the trend level on each clock.
    """

    widths: list
    trend: dict

    def to_dict(self) -> dict:
        return {"widths": [w.to_dict() for w in self.widths],
                "trend": {unit: t.to_dict() for unit, t in self.trend.items()}}


@dataclass(frozen=True)
class SpeedByWidth:
    """How fast each architecture reaches given progress levels, by width.

    Attributes
    ----------
    levels : list of float
    trend_level : float
        Level whose epochs/steps are correlated with width.
    runs : list of RunSpeed
        Every run, in input order.
    architectures : dict of str to ArchitectureSpeed
        Architectures with at least 2 widths, sorted by name.
    skipped : dict of str to str
        Architectures with a single width, and why.
    skipped_runs : list of (str, str)
        Runs left out (no width), and why.
    """

    levels: list
    trend_level: float
    runs: list
    architectures: dict
    skipped: dict = field(default_factory=dict)
    skipped_runs: list = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"levels": list(self.levels), "trend_level": self.trend_level,
                "runs": [r.to_dict() for r in self.runs],
                "architectures": {a: v.to_dict() for a, v in self.architectures.items()},
                "skipped": dict(self.skipped),
                "skipped_runs": [{"run_id": r, "reason": why} for r, why in self.skipped_runs]}



def _level_key(level: float) -> str:
    return f"{float(level):g}"


def _check_levels(levels) -> tuple[float, ...]:
    levels = tuple(float(v) for v in np.atleast_1d(np.asarray(levels, dtype=float)))
    if not levels or any(not (0.0 < v <= 1.0) for v in levels):
        raise ValueError(f"levels must lie in (0, 1], got {levels!r}")
    return levels


def spearman(x, y) -> Spearman:
    """Spearman rank correlation of ``x`` and ``y`` over the pairs where both are finite.

    Ties get average ranks. ``rho`` is None (with a ``reason``) for fewer than 2 pairs
    or a constant input, instead of SciPy's NaN and warning.

    Returns
    -------
    Spearman
    """
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    if x.shape != y.shape or x.ndim != 1:
        raise ValueError(f"x and y must be 1-D of equal length, got {x.shape} and {y.shape}")
    ok = np.isfinite(x) & np.isfinite(y)
    n = int(ok.sum())
    if n < 2:
        return Spearman(None, n, "fewer than 2 finite pairs")
    rx, ry = rankdata(x[ok]), rankdata(y[ok])
    rx -= rx.mean()
    ry -= ry.mean()
    den = math.sqrt(float(rx @ rx) * float(ry @ ry))
    if den == 0.0:
        return Spearman(None, n, "constant input")
    return Spearman(float(np.clip((rx @ ry) / den, -1.0, 1.0)), n)


def progress_milestones(progress, epochs, steps, levels=DEFAULT_LEVELS) -> Milestones:
    """Epoch and step at which one run's progress FIRST reaches each level.

    Checkpoints are taken in the order of ``steps`` (stable, so equal steps keep
    their order); checkpoints with a non-finite progress are ignored. For each
    level, the first checkpoint ``k`` with ``progress[k] >= level`` is found and
    the epoch and step are linearly interpolated between checkpoints ``k - 1``
    and ``k`` (whose progress brackets the level). Progress need not be monotone:
    the first crossing counts, later dips do not. A level already reached at the
    first checkpoint gives that checkpoint's epoch and step.

    Parameters
    ----------
    progress, epochs, steps : array_like, shape (K,)
        Progress (docs/method.md §3) of each checkpoint, and its epoch and optimiser step.
    levels : sequence of float in (0, 1], default (0.5, 0.9)

    Returns
    -------
    Milestones
        Epoch and step None where a level is never reached.
    """
    levels = _check_levels(levels)
    p = np.asarray(progress, dtype=float)
    e = np.asarray(epochs, dtype=float)
    s = np.asarray(steps, dtype=float)
    if p.ndim != 1 or p.shape != e.shape or p.shape != s.shape:
        raise ValueError(f"progress, epochs and steps must be 1-D of equal length, "
                         f"got {p.shape}, {e.shape}, {s.shape}")
    if not (np.all(np.isfinite(e)) and np.all(np.isfinite(s))):
        raise ValueError("epochs and steps must be finite")
    order = np.argsort(s, kind="stable")
    p, e, s = p[order], e[order], s[order]
    keep = np.isfinite(p)
    p, e, s = p[keep], e[keep], s[keep]
    reached = []
    for level in levels:
        hit = np.flatnonzero(p >= level)
        if hit.size == 0:
            reached.append(Milestone(None, None))
            continue
        k = int(hit[0])
        if k == 0:
            reached.append(Milestone(float(e[0]), float(s[0])))
            continue
        frac = (level - p[k - 1]) / (p[k] - p[k - 1])  # p[k-1] < level <= p[k]
        reached.append(Milestone(float(e[k - 1] + frac * (e[k] - e[k - 1])),
                                 float(s[k - 1] + frac * (s[k] - s[k - 1]))))
    return Milestones(levels=levels, reached=tuple(reached))


def _mean_of(values) -> float | None:
    vals = [v for v in values if v is not None]
    return float(np.mean(vals)) if vals else None


def _plain_width(width):
    """A width as an int when integral, a float otherwise, None when unknown."""
    if width is None:
        return None
    width = float(width)
    return int(width) if width.is_integer() else width


def speed_by_width(runs: Sequence[RunProgress], levels=DEFAULT_LEVELS, *,
                   trend_level: float | None = None) -> SpeedByWidth:
    """How fast each architecture reaches given progress levels, by width.

    Parameters
    ----------
    runs : sequence of RunProgress
        Runs with ``width`` None are listed in :attr:`SpeedByWidth.skipped_runs`.
    levels : sequence of float, default (0.5, 0.9)
    trend_level : float, optional
        Level whose epochs/steps are correlated with width (default: the largest
        of ``levels``, i.e. 0.9).

    Returns
    -------
    SpeedByWidth
        Per run its milestones; for each architecture with at least 2 widths, the
        times of each width (per run, i.e. seed, and their mean over the runs that
        reached the level) and the Spearman trend of width against time at
        ``trend_level`` (:class:`WidthTrend`: negative = wider is faster).
    """
    levels = _check_levels(levels)
    trend_level = max(levels) if trend_level is None else _check_levels([trend_level])[0]
    all_levels = levels if trend_level in levels else levels + (trend_level,)

    per_run, skipped_runs = [], []
    by_arch: dict = defaultdict(lambda: defaultdict(list))
    for r in runs:
        if not isinstance(r, RunProgress):
            raise ValueError(f"runs must be RunProgress records, got {type(r).__name__}")
        width = _plain_width(r.width)
        speed = RunSpeed(r.run_id, r.arch, width, r.milestones(all_levels))
        per_run.append(speed)
        if width is None:
            skipped_runs.append((r.run_id, "no width"))
        else:
            by_arch[r.arch][width].append(speed)

    architectures, skipped = {}, {}
    for arch in sorted(by_arch, key=str):
        widths = by_arch[arch]
        if len(widths) < 2:
            (w,) = widths
            skipped[str(arch)] = f"a single width ({w}): no width trend to measure"
            continue
        entries = [_width_speed(w, widths[w], all_levels) for w in sorted(widths)]
        trend = {unit: _width_trend(entries, unit, _level_key(trend_level)) for unit in UNITS}
        architectures[str(arch)] = ArchitectureSpeed(widths=entries, trend=trend)
    return SpeedByWidth(levels=list(levels), trend_level=trend_level, runs=per_run,
                        architectures=architectures, skipped=skipped, skipped_runs=skipped_runs)


def _width_speed(width, members: list[RunSpeed], levels) -> WidthSpeed:
    """The times of the runs of one width, per clock and level."""
    times = {}
    for unit in UNITS:
        times[unit] = {}
        for level in levels:
            vals = [getattr(m.milestones[level], unit[:-1]) for m in members]  # "epoch", "step"
            times[unit][_level_key(level)] = LevelTimes(mean=_mean_of(vals), values=vals,
                                                        n_reached=sum(v is not None for v in vals))
    return WidthSpeed(width=width, n_runs=len(members), run_ids=[m.run_id for m in members], **times)


def _width_trend(entries: list[WidthSpeed], unit: str, level_key: str) -> WidthTrend:
    """Spearman of width against the time to ``level_key`` on one clock, over runs and over width means."""
    xs, ys, n_missing = [], [], 0
    for entry in entries:
        for v in getattr(entry, unit)[level_key].values:
            if v is None:
                n_missing += 1
            else:
                xs.append(entry.width)
                ys.append(v)
    over_runs = spearman(xs, ys)
    means = [(e.width, getattr(e, unit)[level_key].mean) for e in entries]
    means = [(w, m) for w, m in means if m is not None]
    over_means = spearman([w for w, _ in means], [m for _, m in means])
    return WidthTrend(rho=over_runs.rho, n=over_runs.n, rho_width_means=over_means.rho, n_widths=over_means.n,
                      n_not_reached=n_missing, reason=over_runs.reason)


@dataclass(frozen=True)
class WidthPair:
    """One matched narrow/wide pair of runs (see the module docstring).

    Attributes
    ----------
    narrow, wide : int
        Rows of the runs (indices into the inputs of :func:`speed_analysis`).
    narrow_width, wide_width : int or float
    seed_matched : bool
        The two runs share their seed.
    log_ratios : dict of str to float
        ``log(T_wide / T_narrow)`` per family level (keyed ``f"{level:g}"``) both runs reached after epoch 0.
    log_ratio : float or None
        Their mean (None: no such level).
    """

    narrow: int
    wide: int
    narrow_width: int | float
    wide_width: int | float
    seed_matched: bool
    log_ratios: dict
    log_ratio: float | None

    def to_dict(self) -> dict:
        return jsonable({"narrow": self.narrow, "wide": self.wide, "narrow_width": self.narrow_width,
                         "wide_width": self.wide_width, "seed_matched": self.seed_matched,
                         "log_ratios": self.log_ratios, "log_ratio": self.log_ratio})


@dataclass(frozen=True)
class LevelRatio:
    """Mean ``log(T_wide / T_narrow)`` at one progress level over the pairs that reached it (``n``)."""

    mean: float | None
    n: int

    def to_dict(self) -> dict:
        return jsonable({"mean": self.mean, "n": self.n})


@dataclass
class FamilySpeed:
    """Speed and path of one architecture family against width.

    Attributes
    ----------
    family : str
    widths : list
        The family's widths among the ordinary runs, sorted.
    levels : list of float
        Progress levels reached by at least :data:`REACH_FRACTION` of its paired runs.
    pairs : list of WidthPair
    n_pairs : int
        Pairs with a log ratio.
    n_seed_matched : int
        Of those, pairs sharing their seed.
    mean_log_ratio : float or None
        Mean over pairs of ``log(T_wide / T_narrow)``.
    time_ratio : float or None
        ``exp(mean_log_ratio)``: epochs of the wide over epochs of the narrow (< 1: wider is faster).
    by_level : dict of str to LevelRatio
    p_faster, p_not_faster : float or None
        One-sided sign-flip p-values for "mean < 0" and for "mean > log(1 − MIN_SPEEDUP)".
    test : str
        Exact or random sign flips, and over how many pairs.
    width_effect, arch_effect : float
        Crossed-seed ``Δ_width`` (the family's width pairs) and ``Δ_arch`` (architecture pairs
        involving the family); NaN when not measured.
    path_ratio : float or None
        ``width_effect / arch_effect``.
    path_low, path_high : float
        95 % interval of ``path_ratio`` (configuration groups resampled; NaN without one).
    path_groups : int
        Configuration groups resampled.
    reason : str
        What is missing and why ("" when nothing is).
    """

    family: str
    widths: list
    levels: list
    pairs: list
    n_pairs: int = 0
    n_seed_matched: int = 0
    mean_log_ratio: float | None = None
    time_ratio: float | None = None
    by_level: dict = field(default_factory=dict)
    p_faster: float | None = None
    p_not_faster: float | None = None
    test: str = ""
    width_effect: float = float("nan")
    arch_effect: float = float("nan")
    path_ratio: float | None = None
    path_low: float = float("nan")
    path_high: float = float("nan")
    path_groups: int = 0
    reason: str = ""

    def to_dict(self) -> dict:
        out = {k: getattr(self, k) for k in self.__dataclass_fields__ if k not in ("pairs", "by_level")}
        out["pairs"] = [p.to_dict() for p in self.pairs]
        out["by_level"] = {k: v.to_dict() for k, v in self.by_level.items()}
        return jsonable(out)


@dataclass
class SpeedAnalysis:
    """What claim 3 is judged on (:func:`speed_analysis`, :func:`judge`).

    Attributes
    ----------
    families : dict of str to FamilySpeed
        Families with matched narrow/wide pairs, by name.
    skipped : dict of str to str
        Families without, and why.
    corner_runs : list of int
        Rows left out as corner-initialised.
    grid : str
        The progress grid of the trajectory distances (as the caller described it).
    candidate_levels : list of float
    reach_fraction : float
    """

    families: dict
    skipped: dict
    corner_runs: list
    grid: str
    candidate_levels: list
    reach_fraction: float

    def to_dict(self) -> dict:
        return jsonable({"grid": self.grid, "candidate_levels": self.candidate_levels,
                         "reach_fraction": self.reach_fraction, "corner_runs": self.corner_runs,
                         "families": {f: v.to_dict() for f, v in self.families.items()}, "skipped": self.skipped})


def speed_analysis(D, configs: Sequence[Mapping], progress: Sequence, epochs: Sequence, steps: Sequence, *,
                   levels=SPEED_LEVELS, reach_fraction: float = REACH_FRACTION, n_boot: int = 1000,
                   n_resamples: int = 9999, random_state: int | None = 0, grid: str = "",
                   ignore: Sequence[str] = IGNORED_KEYS) -> SpeedAnalysis:
    """Claim 3's measurement: matched narrow/wide speed and Δ_width / Δ_arch per family.

    Parameters
    ----------
    D : array_like, shape (R, R)
        Trajectory distances at equal progress on one grid (described by ``grid``).
    configs : sequence of R mappings
        Run configurations; the family is ``arch`` (``arch_alias`` is ignored), the width
        ``arch_options.width``.
    progress, epochs, steps : sequences of R arrays, each (K_r,)
        Each run's checkpoints: progress (docs/method.md §3), epoch and optimiser step.
    levels : sequence of float in (0, 1]
        Candidate progress levels (default :data:`SPEED_LEVELS`).
    reach_fraction : float in (0, 1]
        Share of a family's paired runs that must reach a level for it to count.
    n_boot : int
        Bootstrap replicates of the path ratio's interval.
    n_resamples : int
        Random sign patterns when a family has more than 16 pairs (below, all are used).
    random_state : int, optional
    grid : str
        The progress grid of ``D``, in words.
    ignore : sequence of str
        Bookkeeping keys.

    Returns
    -------
    SpeedAnalysis
    """
    levels = _check_levels(levels)
    if not 0.0 < reach_fraction <= 1.0:
        raise ValueError(f"reach_fraction must lie in (0, 1], got {reach_fraction!r}")
    R = len(configs)
    for name, seq in (("progress", progress), ("epochs", epochs), ("steps", steps)):
        if len(seq) != R:
            raise ValueError(f"{name} has {len(seq)} runs, configs {R}")
    ordinary = ordinary_runs(configs)
    family_configs = [{k: v for k, v in c.items() if k != "arch_alias"} for c in configs]
    flat = flat_configs(family_configs, ignore)
    chains, skipped = _chains(flat, ordinary)
    paired = {r for bases in chains.values() for _, _, run_pairs, _ in bases for pair in run_pairs for r in pair}
    times = {r: progress_milestones(progress[r], epochs[r], steps[r], levels) for r in paired}
    crossed = crossed_pairs(D, family_configs, ["arch", _WIDTH], ignore=ignore)
    rng = np.random.default_rng(random_state)
    families = {}
    for family, bases in chains.items():
        fam = _family_speed(family, bases, times, levels, reach_fraction, n_resamples, rng)
        in_family = np.array([bool(ordinary[r]) and str(flat[r].get("arch")) == family for r in range(R)])
        _path(fam, crossed, in_family, n_boot, rng)
        families[family] = fam
    return SpeedAnalysis(families=families, skipped=skipped, corner_runs=np.flatnonzero(~ordinary).tolist(),
                         grid=grid, candidate_levels=list(levels), reach_fraction=float(reach_fraction))


def _chains(flat: list[dict], ordinary: np.ndarray):
    """Per family, its base configurations' narrowest and widest runs, paired.

    Returns ``(chains, skipped)``: ``chains[family]`` is a list of ``(w_narrow, w_wide,
    [(narrow_row, wide_row), ...], [seed_matched, ...])``; ``skipped[family]`` says why a
    family with a width has no pair.
    """
    bases: dict = defaultdict(lambda: defaultdict(lambda: defaultdict(list)))
    widths: dict = defaultdict(set)
    for r, c in enumerate(flat):
        if not ordinary[r] or c.get(_WIDTH) is None:
            continue
        family, width = str(c.get("arch")), c[_WIDTH]
        base = frozenset((k, v) for k, v in c.items() if k not in (_WIDTH, "seed"))
        bases[family][base][width].append(r)
        widths[family].add(width)
    chains, skipped = {}, {}
    for family in sorted(bases):
        found = []
        for by_width in bases[family].values():
            if len(by_width) < 2:
                continue
            lo, hi = min(by_width), max(by_width)
            pairs, matched = _match_seeds(by_width[lo], by_width[hi], flat)
            found.append((lo, hi, pairs, matched))
        if found:
            chains[family] = found
        elif len(widths[family]) < 2:
            skipped[family] = f"one width only ({_plain_width(next(iter(widths[family])))})"
        else:
            skipped[family] = "no two runs differ in width only (other settings change with the width)"
    return chains, skipped


def _match_seeds(narrow: list, wide: list, flat: list[dict]):
    """Pairs of rows, equal seeds first, then the rest in seed order; and whether each pair shares its seed."""
    def seed(r):
        return flat[r].get("seed")

    def order(r):  # numbers by value, anything else after them by its text
        s = seed(r)
        return (0, s, "") if isinstance(s, (int, float)) else (1, 0, repr(s))

    wide_by_seed = {}
    for r in wide:
        wide_by_seed.setdefault(seed(r), []).append(r)
    pairs, matched, left_n = [], [], []
    for r in sorted(narrow, key=order):
        partner = wide_by_seed.get(seed(r))
        if partner:
            pairs.append((r, partner.pop(0)))
            matched.append(True)
        else:
            left_n.append(r)
    left_w = sorted((r for rs in wide_by_seed.values() for r in rs), key=order)
    for a, b in zip(left_n, left_w):
        pairs.append((a, b))
        matched.append(False)
    return pairs, matched


def _family_speed(family, bases, times, levels, reach_fraction, n_resamples, rng) -> FamilySpeed:
    """Log ratios of matched pairs at the family's common levels, and their sign-flip tests."""
    rows = sorted({r for _, _, pairs, _ in bases for pair in pairs for r in pair})
    common = [lv for lv in levels if np.mean([times[r][lv].epoch is not None for r in rows]) >= reach_fraction]
    pairs = []
    for lo, hi, run_pairs, matched in bases:
        for (n, w), same_seed in zip(run_pairs, matched):
            ratios = {}
            for lv in common:
                tn, tw = times[n][lv].epoch, times[w][lv].epoch
                if tn is not None and tw is not None and tn > 0 and tw > 0:
                    ratios[_level_key(lv)] = math.log(tw / tn)
            pairs.append(WidthPair(n, w, _plain_width(lo), _plain_width(hi), bool(same_seed), ratios,
                                   float(np.mean(list(ratios.values()))) if ratios else None))
    widths = sorted({_plain_width(x) for lo, hi, _, _ in bases for x in (lo, hi)})
    fam = FamilySpeed(family=family, widths=widths, levels=list(common), pairs=pairs)
    x = np.array([p.log_ratio for p in pairs if p.log_ratio is not None])
    fam.n_pairs, fam.n_seed_matched = int(x.size), sum(p.seed_matched for p in pairs if p.log_ratio is not None)
    fam.by_level = {_level_key(lv): _level_ratio([p.log_ratios.get(_level_key(lv)) for p in pairs])
                    for lv in common}
    if not x.size:
        fam.reason = (f"no level reached by {reach_fraction * 100:g} % of the paired runs" if not common
                      else "no pair reached a common level after epoch 0 with both runs")
        return fam
    fam.mean_log_ratio = float(x.mean())
    fam.time_ratio = float(math.exp(fam.mean_log_ratio))
    fam.p_faster, fam.test = _sign_flip(x, "less", n_resamples, rng)
    fam.p_not_faster, _ = _sign_flip(x - math.log(1.0 - MIN_SPEEDUP), "greater", n_resamples, rng)
    return fam


def _level_ratio(values) -> LevelRatio:
    vals = [v for v in values if v is not None]
    return LevelRatio(float(np.mean(vals)) if vals else None, len(vals))


def _sign_flip(x: np.ndarray, alternative: str, n_resamples: int, rng) -> tuple[float, str]:
    """One-sided sign-flip p-value of the mean of ``x`` (exact up to 16 values)."""
    exact = x.size <= _SIGN_FLIP_EXACT
    res = scipy.stats.permutation_test((x,), np.mean, permutation_type="samples", alternative=alternative,
                                       n_resamples=np.inf if exact else n_resamples, vectorized=True, axis=-1,
                                       random_state=rng)
    how = (f"exact sign flips over {x.size} pairs ({2 ** x.size} patterns)" if exact
           else f"{n_resamples} random sign patterns over {x.size} pairs")
    return float(res.pvalue), how


def _path(fam: FamilySpeed, crossed: dict, in_family: np.ndarray, n_boot: int, rng) -> None:
    """Fill the family's Δ_width, Δ_arch and their ratio with a joint group-bootstrap interval."""
    width, arch = crossed[_WIDTH].involving(in_family), crossed["arch"].involving(in_family)
    fam.width_effect, fam.arch_effect = width.mean, arch.mean
    missing = [f"{name}: {cp.reason or 'no pair involves this family'}"
               for name, cp in (("width", width), ("architecture", arch)) if not cp.delta.size]
    if missing:
        fam.reason = "; ".join(filter(None, [fam.reason, "same path not measured (" + "; ".join(missing) + ")"]))
        return
    if arch.mean > 0:
        fam.path_ratio = float(width.mean / arch.mean)
    groups = np.unique(np.concatenate([width.g, width.h, arch.g, arch.h]))
    fam.path_groups = int(groups.size)
    if groups.size < MIN_GROUPS:
        fam.reason = "; ".join(filter(None, [fam.reason, f"no interval for the path ratio ({groups.size} groups)"]))
        return
    reps = resample_groups([width, arch], n_boot=n_boot, random_state=rng)
    ok = np.isfinite(reps).all(axis=1)
    w, a = reps[ok, 0], reps[ok, 1]
    ratio = np.where(a > 0, w / np.where(a > 0, a, 1.0), np.inf)  # no architecture effect: no bound on the ratio
    fam.path_low, fam.path_high = (float(q) for q in np.quantile(ratio, [0.025, 0.975], method="inverted_cdf"))


def judge(analysis: SpeedAnalysis) -> Judgement:
    """Claim 3 by :data:`RULE` from :func:`speed_analysis`."""
    fams = {f: v for f, v in analysis.families.items() if v.n_pairs}
    if not fams:
        why = "; ".join(f"{f}: {r}" for f, r in {**analysis.skipped, **{f: v.reason for f, v in
                                                                      analysis.families.items()}}.items())
        return Judgement("skipped", {"grid": analysis.grid},
                         "no architecture family has matched runs at two widths" + (f" ({why})" if why else ""))
    numbers = {"grid": analysis.grid, "families": {
        f: {"pairs": v.n_pairs, "time_ratio": v.time_ratio, "p_faster": v.p_faster, "p_not_faster": v.p_not_faster,
            "levels": v.levels, "path_ratio": v.path_ratio, "path_interval": [v.path_low, v.path_high]}
        for f, v in fams.items()}}
    notes, supported, refuted = [], True, False
    for f, v in fams.items():
        faster = v.p_faster is not None and v.p_faster < SPEED_P_VALUE
        same = v.path_high <= SAME_PATH_MAX
        slow = v.p_not_faster is not None and v.p_not_faster < SPEED_P_VALUE
        changed = v.path_low > SAME_PATH_MAX
        supported &= faster and same
        refuted |= slow or changed
        if slow:
            notes.append(f"{f}: the wider network is not {MIN_SPEEDUP * 100:g} % faster (time ratio "
                         f"{v.time_ratio:.3g}, p = {v.p_not_faster:.3g})")
        elif not faster:
            notes.append(f"{f}: wider is not significantly faster (time ratio {v.time_ratio:.3g}, "
                         f"p = {v.p_faster:.3g}, {v.n_pairs} pairs)")
        if changed:
            notes.append(f"{f}: width changes the path by more than {SAME_PATH_MAX:g} × architecture "
                         f"(Δ_width / Δ_arch ≥ {v.path_low:.3g})")
        elif not same:
            notes.append(f"{f}: the path ratio's upper bound is not ≤ {SAME_PATH_MAX:g}"
                         + (f" ({v.reason})" if v.reason else f" ({v.path_high:.3g})"))
    return Judgement(decide(supported=supported, refuted=refuted), numbers, "; ".join(notes))
