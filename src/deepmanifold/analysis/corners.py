"""Claim 4 (docs/method.md §6): networks started far away converge along a similar manifold.

"Corner" runs start from unusual points of prediction space (e.g. pre-trained on
random labels or on a tiny subset). Both analyses follow each corner run at equal
progress and measure how far it is from the manifold of ordinary runs: at every
point of the progress grid, the d_B to the NEAREST ordinary run at that same progress.

- :func:`corner_band` → :class:`CornerBand`, judged by :func:`judge` (rule :data:`RULE`):
  the claim is about the *path*, not the end point, so each corner must start outside
  the band ``B(t)`` that the ordinary runs make (each one's distance to the nearest
  ordinary run of a different configuration) and join it — stay inside from some
  ``t_join`` on — within the first half of its progress range (:class:`CornerJoin`).
  A run that keeps training on shuffled labels never joins: the rule's negative control.
- :func:`corner_convergence` → :class:`CornerConvergence`: the same distance curves
  summarised per run (first, middle and last value, their ratio, the rank correlation
  with progress) beside the ordinary runs' spread among themselves (nearest other
  ordinary run, seeds included); a description for the report, no verdict.

Input is the per-run resampling at equal progress (docs/method.md §5): ``sqrt_p`` of shape
``(R, G, n, C)`` (square roots of the class probabilities, float32 is fine; a
``np.memmap`` is read one grid point at a time), ``reached`` ``(R, G)`` telling
which grid points each run reached (the others are never read), and the grid
``(G,)`` of progress values.

Distance: ``d_B = -(1/n) sum_i log BC_i`` from
:func:`deepmanifold.geometry.pairwise_distances`, with its clamping rule (each
``BC_i`` raised to at least ``floor``, default 1e-12, so one sample contributes at
most ``27.6/n``), on the roots renormalised per sample
(:func:`~deepmanifold.analysis.trajectories.probabilities_from_roots`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from deepmanifold import geometry
from deepmanifold.geometry.validation import check_floor
from deepmanifold.utils import jsonable

from .speed import spearman
from .trajectories import probabilities_from_roots
from .verdicts import Judgement, decide

__all__ = ["CornerBand", "CornerConvergence", "CornerJoin", "CornerSummary", "CurveSummary", "NearestRunCurves",
           "RULE", "STATUSES", "Spread", "corner_band", "corner_convergence", "judge"]


@dataclass(frozen=True)
class CurveSummary:
    """One run's distance to the manifold along progress, in a few numbers.

    Missing values (no reached grid point, an undefined ratio or correlation)
    are NaN, or None for ``decreases``.

    Attributes
    ----------
    run : object
        The run's label.
    n_points : int
        Grid points where the distance is defined.
    t_first, d_first : float
        Progress and distance at the first of them.
    t_mid, d_mid : float
        At the grid point nearest to ``mid`` (``d_mid`` NaN if undefined there).
    t_last, d_last : float
        At the last of them.
    spearman : float
        Rank correlation of distance with progress over those points
        (negative: the run approaches the manifold).
    ratio_last_first : float
        ``d_last / d_first`` (NaN if ``d_first`` is 0).
    decreases : bool or None
        ``spearman < 0`` and ``ratio_last_first < 1``; None if either is undefined.
    reason : str or None
        Why there is nothing to summarise (``n_points == 0``).
    """

    run: Any
    n_points: int
    t_first: float
    d_first: float
    t_mid: float
    d_mid: float
    t_last: float
    d_last: float
    spearman: float
    ratio_last_first: float
    decreases: bool | None
    reason: str | None = None

    def to_dict(self) -> dict:
        """JSON form: the attributes (NaN as None; ``reason`` only when set), ``run`` last."""
        out = {key: getattr(self, key) for key in ("n_points", "t_first", "d_first", "t_mid", "d_mid", "t_last",
                                                   "d_last", "spearman", "ratio_last_first", "decreases")}
        if self.reason is not None:
            out["reason"] = self.reason
        out.update(self._extra())
        out["run"] = self.run
        return jsonable(out)

    def _extra(self) -> dict:
        return {}


@dataclass(frozen=True)
class CornerSummary(CurveSummary):
    """:class:`CurveSummary` of a corner run, with the ordinary spread at its last point.

    Attributes
    ----------
    spread_at_last : float
        Median over the ordinary runs of their distance to their nearest other
        ordinary run, at the corner's last point.
    spread_max_at_last : float
        The largest of those distances.
    excess_at_last : float
        ``d_last - spread_at_last``: <= 0 when the corner ends as close to the
        manifold as ordinary runs are to each other.
    """

    spread_at_last: float = np.nan
    spread_max_at_last: float = np.nan
    excess_at_last: float = np.nan

    def _extra(self) -> dict:
        return {"spread_at_last": self.spread_at_last, "spread_max_at_last": self.spread_max_at_last,
                "excess_at_last": self.excess_at_last}


@dataclass(frozen=True, eq=False)
class Spread:
    """How close ordinary runs are to each other, per grid point.

    Attributes
    ----------
    median, mean, max : ndarray, shape (G,)
        Of each ordinary run's distance to its nearest other ordinary run;
        NaN where ``n`` is 0.
    n : ndarray of int, shape (G,)
        Ordinary runs with another ordinary run at that grid point.
    """

    median: np.ndarray
    mean: np.ndarray
    max: np.ndarray
    n: np.ndarray

    def to_dict(self) -> dict:
        return jsonable({"median": self.median, "mean": self.mean, "max": self.max, "n": self.n})


@dataclass(frozen=True, eq=False)
class NearestRunCurves:
    """Distance of each run of a group to the nearest ordinary run, at every grid point.

    Attributes
    ----------
    index : ndarray of int, shape (k,)
        The group's runs (positions in the input).
    distance : ndarray, shape (k, G)
        d_B to the nearest ordinary run that reached the same grid point (for
        ordinary runs: the nearest *other* one); NaN where the run did not
        reach it or no such run did.
    nearest : ndarray of int, shape (k, G)
        Position of that ordinary run in the input; -1 where there is none.
    summary : list of CurveSummary
        One per run of the group.
    spread : Spread or None
        For the ordinary runs: their spread per grid point.
    """

    index: np.ndarray
    distance: np.ndarray
    nearest: np.ndarray
    summary: list
    spread: Spread | None = None

    def _json(self, run_labels: list) -> dict:
        out = {"runs": [run_labels[k] for k in self.index],
               "distance": jsonable(self.distance),
               "nearest": [[run_labels[k] if k >= 0 else None for k in row] for row in self.nearest.tolist()],
               "summary": [s.to_dict() for s in self.summary]}
        if self.spread is not None:
            out["spread"] = self.spread.to_dict()
        return jsonable(out)


@dataclass(frozen=True, eq=False)
class CornerConvergence:
    """Result of :func:`corner_convergence`.

    Attributes
    ----------
    grid : ndarray, shape (G,)
        The progress grid.
    floor : float
        Floor of the Bhattacharyya coefficients.
    mid_index : int
        Grid point nearest to ``mid``.
    run_labels : list, length R
        Label of every input run.
    corner : NearestRunCurves
        The corner runs against the ordinary ones.
    ordinary : NearestRunCurves
        Each ordinary run against the other ordinary runs, with their ``spread``.
    reasons : list of str
        Notes on what could not be measured (no corner runs, too few ordinary
        runs, a corner sharing no grid point with an ordinary run).
    """

    grid: np.ndarray
    floor: float
    mid_index: int
    run_labels: list
    corner: NearestRunCurves
    ordinary: NearestRunCurves
    reasons: list = field(default_factory=list)

    def to_dict(self) -> dict:
        """JSON form (findings.json): ``grid``, ``floor``, ``mid_index``, ``corner`` and
        ``ordinary`` (``runs``, ``distance``, ``nearest`` as run labels, ``summary``;
        ``spread`` for the ordinary runs) and ``reasons``; NaN as None."""
        return jsonable({"grid": self.grid, "floor": self.floor, "mid_index": self.mid_index,
                         "corner": self.corner._json(self.run_labels),
                         "ordinary": self.ordinary._json(self.run_labels),
                         "reasons": self.reasons})


def corner_convergence(sqrt_p, reached, grid, is_corner, *, ordinary=None, run_labels=None,
                       floor: float = geometry.FLOOR, mid: float = 0.5) -> CornerConvergence:
    """Distance of each corner run to the nearest ordinary run at equal progress.

    Parameters
    ----------
    sqrt_p : array_like, shape (R, G, n, C)
        Square roots of each run's class probabilities resampled at the progress
        grid. Entries at grid points a run did not reach are never read.
    reached : array_like of bool, shape (R, G)
    grid : array_like, shape (G,)
        Progress values of the grid, increasing.
    is_corner : array_like of bool, shape (R,), or int indices
        The corner runs.
    ordinary : array_like of bool (R,) or int indices, optional
        The runs that make the reference manifold; default: every run that is
        not a corner. Must not overlap the corners.
    run_labels : sequence, length R, optional
        Display labels of the runs, echoed in the result (default: run indices).
    floor : float, default :data:`deepmanifold.geometry.FLOOR` (1e-12)
        Floor of each Bhattacharyya coefficient (see module docstring).
    mid : float, default 0.5
        Progress of the middle summary point (the nearest grid point is used).

    Returns
    -------
    CornerConvergence
        Its ``to_dict()`` is the JSON form.

    Raises
    ------
    ValueError
        Shapes that do not match ``(R, G, n, C)``, ``(R, G)``, ``(G,)``; a
        non-finite grid; a bad ``floor``; corner or ordinary indices out of
        range, or a run that is both; ``run_labels`` of the wrong length.

    Examples
    --------
    Two identical ordinary runs and a corner that joins them at the end:

    >>> p = np.full((3, 2, 4, 2), 0.5)
    >>> p[2, 0] = [0.9, 0.1]
    >>> res = corner_convergence(np.sqrt(p), np.ones((3, 2), bool), [0.5, 1.0], [2])
    >>> res.corner.distance.round(4).tolist(), res.corner.summary[0].d_last
    ([[0.1116, 0.0]], 0.0)
    """
    sqrt_p, reached, grid, corner, ordin, labels, floor = _check_inputs(
        sqrt_p, reached, grid, is_corner, ordinary, run_labels, floor)
    c_idx, o_idx = np.flatnonzero(corner), np.flatnonzero(ordin)
    d_corner, n_corner, d_ord, n_ord = _nearest_ordinary(sqrt_p, reached, c_idx, o_idx, floor)
    spread = _spread(d_ord)
    mid_idx = int(np.argmin(np.abs(grid - mid)))
    corner_summary = []
    for r in range(c_idx.size):
        s = _summary(d_corner[r], grid, mid_idx, labels[c_idx[r]])
        extra = {}
        if s.n_points:
            last = int(np.flatnonzero(np.isfinite(d_corner[r]))[-1])
            extra = {"spread_at_last": float(spread.median[last]), "spread_max_at_last": float(spread.max[last]),
                     "excess_at_last": s.d_last - float(spread.median[last])}
        corner_summary.append(CornerSummary(**vars(s), **extra))
    ordinary_summary = [_summary(d_ord[r], grid, mid_idx, labels[o_idx[r]]) for r in range(o_idx.size)]
    return CornerConvergence(
        grid=grid, floor=floor, mid_index=mid_idx, run_labels=labels,
        corner=NearestRunCurves(c_idx, d_corner, n_corner, corner_summary),
        ordinary=NearestRunCurves(o_idx, d_ord, n_ord, ordinary_summary, spread),
        reasons=_reasons(c_idx, o_idx, corner_summary, labels))


def _check_inputs(sqrt_p, reached, grid, is_corner, ordinary, run_labels, floor):
    """Validated inputs: ``(sqrt_p, reached, grid, corner mask, ordinary mask, labels, floor)``."""
    shape = getattr(sqrt_p, "shape", None)
    if shape is None:
        sqrt_p = np.asarray(sqrt_p)
        shape = sqrt_p.shape
    if len(shape) != 4:
        raise ValueError(f"sqrt_p must have shape (R, G, n, C), got {shape}")
    R, G = int(shape[0]), int(shape[1])
    reached = np.asarray(reached, dtype=bool)
    if reached.shape != (R, G):
        raise ValueError(f"reached must have shape ({R}, {G}), got {reached.shape}")
    grid = np.asarray(grid, dtype=float)
    if grid.shape != (G,):
        raise ValueError(f"grid must have shape ({G},), got {grid.shape}")
    if not np.all(np.isfinite(grid)):
        raise ValueError("grid must be finite")
    floor = check_floor(floor)
    corner = _as_mask(is_corner, R, "is_corner")
    ordin = ~corner if ordinary is None else _as_mask(ordinary, R, "ordinary")
    if np.any(corner & ordin):
        raise ValueError("a run cannot be both a corner and an ordinary run: "
                         f"{np.flatnonzero(corner & ordin).tolist()}")
    labels = list(range(R)) if run_labels is None else [x.item() if isinstance(x, np.generic) else x
                                                        for x in run_labels]
    if len(labels) != R:
        raise ValueError(f"run_labels must have length {R}, got {len(labels)}")
    return sqrt_p, reached, grid, corner, ordin, labels, floor


def _as_mask(x, R: int, name: str) -> np.ndarray:
    arr = np.asarray(x)
    if arr.dtype == bool:
        if arr.shape != (R,):
            raise ValueError(f"{name} must have shape ({R},), got {arr.shape}")
        return arr.copy()
    idx = arr.astype(np.int64).ravel()
    if idx.size and (idx.min() < -R or idx.max() >= R):
        raise ValueError(f"{name} indices out of range for {R} runs")
    mask = np.zeros(R, dtype=bool)
    mask[idx] = True
    return mask


def _nearest_ordinary(sqrt_p, reached, c_idx, o_idx, floor):
    """Per grid point, the nearest ordinary run of each corner and of each ordinary run.

    Returns ``(d_corner, n_corner, d_ord, n_ord)``: distances (NaN where
    undefined) and input positions of the nearest runs (-1 where none).
    """
    d_corner, n_corner = _nearest(sqrt_p, reached, c_idx, o_idx, floor)
    d_ord, n_ord = _nearest(sqrt_p, reached, o_idx, o_idx, floor, excluded=np.eye(o_idx.size, dtype=bool))
    return d_corner, n_corner, d_ord, n_ord


def _nearest(sqrt_p, reached, rows, cols, floor, excluded=None):
    """Per grid point, the d_B of each run of ``rows`` to its nearest run of ``cols`` at the same progress.

    Only runs that reached the grid point take part; a pair with ``excluded[i, j]`` (positions in
    ``rows`` and ``cols``) is never a neighbour. When ``rows is cols`` one symmetric matrix is
    computed. Returns ``(distance, nearest)``, shapes ``(rows.size, G)``: NaN and -1 where a run did
    not reach the point or has no admissible neighbour there.
    """
    G = reached.shape[1]
    distance = np.full((rows.size, G), np.nan)
    nearest = np.full((rows.size, G), -1, dtype=np.int64)
    for g in range(G):
        rr = np.flatnonzero(reached[rows, g])
        cc = np.flatnonzero(reached[cols, g])
        if rr.size == 0 or cc.size == 0 or (rows is cols and cc.size < 2):
            continue
        Pc = probabilities_from_roots(sqrt_p[cols[cc], g])
        if rows is cols:
            D = geometry.pairwise_distances(Pc, floor=floor)
        else:
            D = geometry.pairwise_distances(probabilities_from_roots(sqrt_p[rows[rr], g]), Pc, floor=floor)
        if excluded is not None:
            D[excluded[np.ix_(rr, cc)]] = np.inf
        j = np.argmin(D, axis=1)
        d = D[np.arange(rr.size), j]
        ok = np.isfinite(d)
        distance[rr[ok], g] = d[ok]
        nearest[rr[ok], g] = cols[cc[j[ok]]]
    return distance, nearest


def _spread(d_ord: np.ndarray) -> Spread:
    has = np.isfinite(d_ord)
    n = has.sum(axis=0)
    G = d_ord.shape[1]

    def per_point(reduce):
        return np.array([reduce(d_ord[has[:, g], g]) if n[g] else np.nan for g in range(G)])

    return Spread(median=per_point(np.median), mean=per_point(np.mean), max=per_point(np.max),
                  n=n.astype(np.int64))


def _summary(curve: np.ndarray, grid: np.ndarray, mid_idx: int, run) -> CurveSummary:
    ok = np.flatnonzero(np.isfinite(curve))
    nan = float("nan")
    if ok.size == 0:
        return CurveSummary(run=run, n_points=0, t_first=nan, d_first=nan, t_mid=float(grid[mid_idx]), d_mid=nan,
                            t_last=nan, d_last=nan, spearman=nan, ratio_last_first=nan, decreases=None,
                            reason="no grid point reached")
    first, last = int(ok[0]), int(ok[-1])
    d_first, d_last = float(curve[first]), float(curve[last])
    rho = spearman(grid[ok], curve[ok]).rho
    ratio = d_last / d_first if d_first > 0 else None
    decreases = None if rho is None or ratio is None else bool(rho < 0 and ratio < 1)
    return CurveSummary(run=run, n_points=int(ok.size), t_first=float(grid[first]), d_first=d_first,
                        t_mid=float(grid[mid_idx]), d_mid=float(curve[mid_idx]), t_last=float(grid[last]),
                        d_last=d_last, spearman=nan if rho is None else rho,
                        ratio_last_first=nan if ratio is None else ratio, decreases=decreases)


def _reasons(c_idx, o_idx, corner_summary, labels) -> list:
    reasons = []
    if c_idx.size == 0:
        reasons.append("no corner runs")
    if o_idx.size == 0:
        reasons.append("no ordinary runs: no manifold to compare with")
    elif o_idx.size == 1:
        reasons.append("a single ordinary run: no baseline spread")
    for r, s in zip(c_idx, corner_summary):
        if s.n_points == 0:
            reasons.append(f"corner run {labels[r]!r} has no grid point shared with an ordinary run")
    return reasons


# ============================================================================ the band and the rule
#: A corner must join the band within this fraction of its progress range (the first half).
JOIN_BY = 0.5
#: A corner is measured when it and the band are both defined at this many grid points ...
MIN_POINTS = 5
#: ... spanning at least this much progress (otherwise "too little grid").
MIN_SPAN = 0.2
#: Quantile over the ordinary runs of their distance to another configuration that makes the band (the max).
BAND_QUANTILE = 1.0

#: What a corner run did, one of these (see :class:`CornerJoin`).
STATUSES = ("joins early", "joins late", "never joins", "starts inside", "too little grid")

RULE = (
    "Corners converge along the manifold. Band B(t): at each progress t, the largest distance of an ordinary "
    "run to the nearest ordinary run of a different configuration (seeds of one configuration are not "
    "neighbours), over the ordinary runs that reached t. A corner run is inside at t when its d_B to the "
    "nearest ordinary run at t is ≤ B(t); it joins at t_join when it is inside there and at every later grid "
    f"point it reached. A corner is measured where it and the band are both defined, on at least {MIN_POINTS} "
    f"grid points spanning at least {MIN_SPAN:g} of progress. Supported when every corner that starts "
    f"outside the band joins within the first {JOIN_BY * 100:g} % of its progress range; not supported when "
    "any corner never joins; inconclusive otherwise (a corner joins later, or is not measured). A corner run "
    "that starts inside "
    "the band is not a corner in prediction space: it is named and left out of the verdict (skipped when no "
    "corner starts outside)."
)


@dataclass(frozen=True)
class CornerJoin:
    """Whether and when one corner run joins the band of the ordinary runs.

    Attributes
    ----------
    run : object
        The run's label.
    n_points : int
        Grid points where the corner's distance and the band are both defined.
    t_first, t_last : float
        First and last of them (its progress range; NaN without any).
    d_first, band_first : float
        The corner's distance to the nearest ordinary run, and the band, at ``t_first``.
    t_join : float or None
        First grid point from which the corner stays inside the band; None when it is outside at
        ``t_last`` (never joins) or not measured.
    join_fraction : float or None
        ``(t_join - t_first) / (t_last - t_first)``: where in its progress range it joins.
    status : str
        One of :data:`STATUSES`.
    """

    run: Any
    n_points: int
    t_first: float
    t_last: float
    d_first: float
    band_first: float
    t_join: float | None
    join_fraction: float | None
    status: str

    def to_dict(self) -> dict:
        return jsonable({"run": self.run, "n_points": self.n_points, "t_first": self.t_first,
                         "t_last": self.t_last, "d_first": self.d_first, "band_first": self.band_first,
                         "t_join": self.t_join, "join_fraction": self.join_fraction, "status": self.status})


@dataclass(frozen=True, eq=False)
class CornerBand:
    """Result of :func:`corner_band`.

    Attributes
    ----------
    grid : ndarray, shape (G,)
        The progress grid (every comparison is at equal progress on it, reached points only).
    floor : float
        Floor of the Bhattacharyya coefficients.
    quantile : float
        Quantile over the ordinary runs that makes the band (1: the largest).
    band : ndarray, shape (G,)
        ``B(t)``; NaN where fewer than two configurations of ordinary runs reached ``t``.
    band_runs : ndarray of int, shape (G,)
        Ordinary runs that have a run of another configuration at ``t`` (those making ``B(t)``).
    ordinary_runs : list
        Labels of the ordinary runs.
    ordinary_distance : ndarray, shape (R_o, G)
        Each ordinary run's d_B to the nearest ordinary run of a different configuration.
    corner_runs : list
        Labels of the corner runs.
    corner_distance : ndarray, shape (R_c, G)
        Each corner's d_B to the nearest ordinary run (any configuration).
    corner_nearest : list of list
        Label of that ordinary run per grid point (None where undefined).
    joins : list of CornerJoin
        One per corner run.
    reasons : list of str
        What could not be measured.
    """

    grid: np.ndarray
    floor: float
    quantile: float
    band: np.ndarray
    band_runs: np.ndarray
    ordinary_runs: list
    ordinary_distance: np.ndarray
    corner_runs: list
    corner_distance: np.ndarray
    corner_nearest: list
    joins: list
    reasons: list = field(default_factory=list)

    def to_dict(self) -> dict:
        """JSON form (findings.json); NaN as None."""
        return jsonable({"grid": self.grid, "floor": self.floor, "quantile": self.quantile, "band": self.band,
                         "band_runs": self.band_runs,
                         "ordinary": {"runs": self.ordinary_runs, "distance": self.ordinary_distance},
                         "corner": {"runs": self.corner_runs, "distance": self.corner_distance,
                                    "nearest": self.corner_nearest, "joins": [j.to_dict() for j in self.joins]},
                         "reasons": self.reasons})


def corner_band(sqrt_p, reached, grid, is_corner, configuration, *, ordinary=None, run_labels=None,
                floor: float = geometry.FLOOR, quantile: float = BAND_QUANTILE) -> CornerBand:
    """Where each corner run joins the band of the ordinary runs, at equal progress (claim 4).

    The band ``B(t)`` is the manifold's own thickness across configurations: at each grid point, the
    ``quantile`` (default the largest) over the ordinary runs of their d_B to the nearest ordinary run
    of a *different* configuration. Seeds of one configuration are left out of each other's
    neighbours because they are much closer to each other than configurations are, and a corner is
    itself a configuration of its own. A corner is *inside* at ``t`` when its d_B to the nearest
    ordinary run (of any configuration) is at most ``B(t)``: no farther from the ordinary runs than
    an ordinary run is from the other configurations. It *joins* at ``t_join`` when it is inside
    there and at every later point of its progress range. Only grid points a run truly reached are
    used (never a held last checkpoint). See :data:`RULE` and :func:`judge`.

    Parameters
    ----------
    sqrt_p : array_like, shape (R, G, n, C)
        Square roots of each run's class probabilities resampled at the progress grid
        (:attr:`TrajectorySet.sqrt_p <deepmanifold.analysis.trajectories.TrajectorySet>`); entries at grid
        points a run did not reach are never read.
    reached : array_like of bool, shape (R, G)
    grid : array_like, shape (G,)
    is_corner : array_like of bool (R,) or int indices
    configuration : sequence, length R
        A hashable configuration key per run, equal for runs that differ only in the seed (e.g. the
        configuration-group name). Corner entries are not used.
    ordinary : array_like of bool (R,) or int indices, optional
        The ordinary runs; default every run that is not a corner.
    run_labels : sequence, length R, optional
    floor : float, default :data:`deepmanifold.geometry.FLOOR`
    quantile : float in (0, 1], default 1

    Returns
    -------
    CornerBand

    Raises
    ------
    ValueError
        Shapes that do not match, a run both corner and ordinary, ``configuration`` of the wrong
        length, ``quantile`` outside ``(0, 1]``, a bad ``floor``.

    Notes
    -----
    Cost: per grid point one matrix of the ``R_o`` ordinary runs and one ``R_c x R_o`` matrix,
    ``(R_o^2 / 2 + R_c R_o) n C`` multiply-adds; ``G`` times that in all.
    """
    sqrt_p, reached, grid, corner, ordin, labels, floor = _check_inputs(
        sqrt_p, reached, grid, is_corner, ordinary, run_labels, floor)
    config = list(configuration)
    if len(config) != len(labels):
        raise ValueError(f"configuration must have length {len(labels)}, got {len(config)}")
    if not 0.0 < quantile <= 1.0:
        raise ValueError(f"quantile must lie in (0, 1], got {quantile!r}")
    c_idx, o_idx = np.flatnonzero(corner), np.flatnonzero(ordin)
    keys = [_config_key(config[i]) for i in o_idx]
    same = np.array([[a == b for b in keys] for a in keys], dtype=bool).reshape(o_idx.size, o_idx.size)
    d_ord, _ = _nearest(sqrt_p, reached, o_idx, o_idx, floor, excluded=same)
    band, band_runs = _band(d_ord, quantile)
    d_corner, n_corner = _nearest(sqrt_p, reached, c_idx, o_idx, floor)
    joins = [_join(d_corner[k], band, grid, labels[r]) for k, r in enumerate(c_idx)]
    reasons = _band_reasons(c_idx, o_idx, keys, band)
    return CornerBand(grid=grid, floor=floor, quantile=float(quantile), band=band, band_runs=band_runs,
                      ordinary_runs=[labels[i] for i in o_idx], ordinary_distance=d_ord,
                      corner_runs=[labels[i] for i in c_idx], corner_distance=d_corner,
                      corner_nearest=[[labels[j] if j >= 0 else None for j in row] for row in n_corner.tolist()],
                      joins=joins, reasons=reasons)


def _config_key(value):
    """A comparable form of a configuration key (dicts by their sorted items)."""
    if isinstance(value, dict):
        return tuple(sorted((str(k), _config_key(v)) for k, v in value.items()))
    if isinstance(value, (list, tuple)):
        return tuple(_config_key(v) for v in value)
    return value


def _band(d_ord: np.ndarray, quantile: float):
    """``(B(t), runs making it)`` from the ordinary runs' distances to another configuration."""
    has = np.isfinite(d_ord)
    n = has.sum(axis=0).astype(np.int64)
    band = np.array([np.quantile(d_ord[has[:, g], g], quantile) if n[g] else np.nan
                     for g in range(d_ord.shape[1])])
    return band, n


def _join(curve: np.ndarray, band: np.ndarray, grid: np.ndarray, run) -> CornerJoin:
    """Whether the corner's distance ``curve (G,)`` starts outside ``band`` and where it joins it."""
    ok = np.flatnonzero(np.isfinite(curve) & np.isfinite(band))
    nan = float("nan")
    if ok.size == 0:
        return CornerJoin(run, 0, nan, nan, nan, nan, None, None, "too little grid")
    t = grid[ok]
    inside = curve[ok] <= band[ok]
    first = dict(run=run, n_points=int(ok.size), t_first=float(t[0]), t_last=float(t[-1]),
                 d_first=float(curve[ok[0]]), band_first=float(band[ok[0]]))
    if ok.size < MIN_POINTS or t[-1] - t[0] < MIN_SPAN - 1e-12:
        return CornerJoin(**first, t_join=None, join_fraction=None, status="too little grid")
    if inside[0]:
        return CornerJoin(**first, t_join=None, join_fraction=None, status="starts inside")
    if not inside[-1]:
        return CornerJoin(**first, t_join=None, join_fraction=None, status="never joins")
    t_join = float(t[np.flatnonzero(~inside)[-1] + 1])
    fraction = (t_join - t[0]) / (t[-1] - t[0])
    status = "joins early" if fraction <= JOIN_BY + 1e-12 else "joins late"
    return CornerJoin(**first, t_join=t_join, join_fraction=float(fraction), status=status)


def _band_reasons(c_idx, o_idx, keys, band) -> list:
    reasons = []
    if c_idx.size == 0:
        reasons.append("no corner runs")
    if len(set(keys)) < 2:
        reasons.append("fewer than two configurations of ordinary runs: no band")
    elif not np.isfinite(band).any():
        reasons.append("no grid point reached by ordinary runs of two configurations: no band")
    return reasons


def judge(result: CornerBand) -> Judgement:
    """Claim 4 from where each corner run joins the band (rule: :data:`RULE`)."""
    joins = result.joins
    by = {s: [j.run for j in joins if j.status == s] for s in STATUSES}
    numbers = {"corner_runs": len(joins), **{s.replace(" ", "_"): runs for s, runs in by.items()},
               "join_fraction": {str(j.run): j.join_fraction for j in joins}}
    if not joins or not np.isfinite(result.band).any():
        return Judgement("skipped", numbers, "; ".join(result.reasons) or "no corner runs")
    tested = [j for j in joins if j.status != "starts inside"]
    inside = f"; left out, starting inside the band: {', '.join(map(str, by['starts inside']))}" if by[
        "starts inside"] else ""
    if not tested:
        return Judgement("skipped", numbers, "no corner run starts outside the band of the ordinary runs: "
                                             "none is a corner in prediction space")
    refuted = bool(by["never joins"])
    supported = all(j.status == "joins early" for j in tested)
    if refuted:
        reason = f"never joins the band: {', '.join(map(str, by['never joins']))}"
    elif supported:
        reason = f"every corner starting outside joins within the first {JOIN_BY * 100:g} % of its progress"
    else:
        late, short = by["joins late"], by["too little grid"]
        reason = "; ".join(part for part in (
            f"joins late: {', '.join(map(str, late))}" if late else "",
            f"too little of the grid reached: {', '.join(map(str, short))}" if short else "") if part)
    return Judgement(decide(supported=supported, refuted=refuted), numbers, reason + inside)
