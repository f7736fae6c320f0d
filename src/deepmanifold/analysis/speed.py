"""Claim 3 (docs/method.md §6): larger networks follow the same path, only faster.

Works on plain arrays, one run at a time, so it runs on any store or sweep:

- :func:`progress_milestones` -- the epoch and step at which one run's progress
  first reaches given levels (default 0.5 and 0.9), as :class:`Milestones`.
- :func:`speed_by_width` -- those milestones per architecture and width, and
  the Spearman correlation between width and epochs (steps) to the top level
  within each architecture: negative means wider is faster (:class:`SpeedByWidth`).
- :func:`same_path` -- from the run-by-run trajectory distance matrix (mean d_B
  at equal progress, docs/method.md §5): are runs of one architecture at different widths
  closer to each other than runs of different architectures? (:class:`SamePath`).
- :func:`spearman` -- the rank correlation they use (:class:`Spearman`).

Every result has a ``to_dict()`` giving its JSON form (as in ``findings.json``).
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
from scipy.stats import rankdata

__all__ = ["ArchitectureSpeed", "Milestone", "Milestones", "PairStats", "RunProgress", "RunSpeed", "SamePath",
           "Spearman", "SpeedByWidth", "WidthPath", "WidthSpeed", "WidthTrend", "LevelTimes",
           "progress_milestones", "same_path", "spearman", "speed_by_width"]

DEFAULT_LEVELS = (0.5, 0.9)
UNITS = ("epochs", "steps")  # the two clocks a milestone is read on



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


@dataclass(frozen=True)
class PairStats:
    """Mean trajectory distance over a set of pairs of runs.

    Attributes
    ----------
    mean : float or None
        None without pairs.
    n_pairs : int
    """

    mean: float | None
    n_pairs: int

    @classmethod
    def of(cls, values) -> "PairStats":
        return cls(float(np.mean(values)) if values else None, len(values))

    def to_dict(self) -> dict:
        return {"mean": self.mean, "n_pairs": self.n_pairs}


@dataclass(frozen=True)
class WidthPath:
    """Within one architecture: its widths against its distance to the other architectures.

    Attributes
    ----------
    same_arch_diff_width : PairStats
        Its own runs at different widths.
    to_other_archs : PairStats
        Its runs against the runs of other architectures.
    ratio : float or None
        ``same_arch_diff_width.mean / to_other_archs.mean``.
    reason : str
        Why ``ratio`` is None ("" otherwise).
    """

    same_arch_diff_width: PairStats
    to_other_archs: PairStats
    ratio: float | None
    reason: str = ""

    def to_dict(self) -> dict:
        return _with_reason({"same_arch_diff_width": self.same_arch_diff_width.to_dict(),
                             "to_other_archs": self.to_other_archs.to_dict(), "ratio": self.ratio}, self.reason)


@dataclass(frozen=True)
class SamePath:
    """Trajectory distances by kind of pair of runs (:func:`same_path`).

    Attributes
    ----------
    same_arch_diff_width : PairStats
        Pairs of one architecture at different widths.
    diff_arch : PairStats
        Pairs of different architectures.
    same_arch_same_width : PairStats
        Pairs of one architecture at one width (a seed-level reference).
    ratio : float or None
        ``same_arch_diff_width.mean / diff_arch.mean``: well below 1, widths follow the
        same path; near 1, width changes the path as much as architecture does.
    reason : str
        Why ``ratio`` is None ("" otherwise): a set of pairs is empty or the
        denominator is 0.
    by_arch : dict of str to WidthPath
        The same per architecture.
    n_missing : int
        Pairs left out for a non-finite distance.
    """

    same_arch_diff_width: PairStats
    diff_arch: PairStats
    same_arch_same_width: PairStats
    ratio: float | None
    reason: str
    by_arch: dict
    n_missing: int

    def to_dict(self) -> dict:
        out = _with_reason({"same_arch_diff_width": self.same_arch_diff_width.to_dict(),
                            "diff_arch": self.diff_arch.to_dict(),
                            "same_arch_same_width": self.same_arch_same_width.to_dict(), "ratio": self.ratio},
                           self.reason)
        out["by_arch"] = {a: v.to_dict() for a, v in self.by_arch.items()}
        out["n_missing"] = self.n_missing
        return out


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


def _ratio(num: list, den: list) -> tuple[float | None, str]:
    """``mean(num) / mean(den)``, or None and why."""
    if not num:
        return None, "no pairs of one architecture at different widths"
    if not den:
        return None, "no pairs of different architectures"
    m = float(np.mean(den))
    if m == 0.0:
        return None, "mean distance between architectures is 0"
    return float(np.mean(num)) / m, ""


def same_path(D_traj, archs, widths) -> SamePath:
    """Do different widths of one architecture share a path? Trajectory distances by kind of pair.

    Parameters
    ----------
    D_traj : array_like, shape (R, R)
        Distance between the trajectories of runs ``i`` and ``j`` (mean d_B at
        equal progress, docs/method.md §5). Only the upper triangle ``i < j`` is read;
        non-finite entries (e.g. runs with no progress in common) are left out
        and counted in ``n_missing``.
    archs : sequence, length R
        Architecture of each run.
    widths : sequence, length R
        Width of each run (None = unknown: such a run counts only in pairs with
        other architectures).

    Returns
    -------
    SamePath
    """
    D = np.asarray(D_traj, dtype=float)
    R = D.shape[0] if D.ndim == 2 else -1
    if D.ndim != 2 or D.shape[1] != R:
        raise ValueError(f"D_traj must be square, got shape {D.shape}")
    archs = list(archs)
    widths = list(widths)
    if len(archs) != R or len(widths) != R:
        raise ValueError(f"archs and widths must have length {R}, got {len(archs)} and {len(widths)}")

    within, between, seeds, n_missing = [], [], [], 0
    arch_within: dict = defaultdict(list)
    arch_between: dict = defaultdict(list)
    for i in range(R):
        for j in range(i + 1, R):
            d = D[i, j]
            if not math.isfinite(d):
                n_missing += 1
                continue
            if archs[i] != archs[j]:
                between.append(d)
                arch_between[archs[i]].append(d)
                arch_between[archs[j]].append(d)
            elif widths[i] is None or widths[j] is None:
                continue
            elif widths[i] != widths[j]:
                within.append(d)
                arch_within[archs[i]].append(d)
            else:
                seeds.append(d)

    by_arch = {}
    for arch in sorted(set(archs), key=str):
        r, why = _ratio(arch_within[arch], arch_between[arch])
        by_arch[str(arch)] = WidthPath(PairStats.of(arch_within[arch]), PairStats.of(arch_between[arch]), r, why)
    ratio, reason = _ratio(within, between)
    return SamePath(same_arch_diff_width=PairStats.of(within), diff_arch=PairStats.of(between),
                    same_arch_same_width=PairStats.of(seeds), ratio=ratio, reason=reason, by_arch=by_arch,
                    n_missing=n_missing)
