"""Claim 4 (docs/method.md §6): networks started far away converge along a similar manifold.

"Corner" runs start from unusual points of prediction space (e.g. pre-trained on
random labels or on a tiny subset). :func:`corner_convergence` follows each corner
run at equal progress and measures how far it is from the manifold of ordinary
runs: at every point of the progress grid, the d_B to the NEAREST ordinary run
at that same progress. If the claim holds this distance falls as training goes
on and ends within the spread of the ordinary runs themselves, which is measured
the same way (each ordinary run to its nearest *other* ordinary run).

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

__all__ = ["CornerConvergence", "CornerSummary", "CurveSummary", "NearestRunCurves", "Spread",
           "corner_convergence"]


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
    G = reached.shape[1]
    d_corner = np.full((c_idx.size, G), np.nan)
    n_corner = np.full((c_idx.size, G), -1, dtype=np.int64)
    d_ord = np.full((o_idx.size, G), np.nan)
    n_ord = np.full((o_idx.size, G), -1, dtype=np.int64)
    for g in range(G):
        cr = np.flatnonzero(reached[c_idx, g])  # positions in c_idx
        orr = np.flatnonzero(reached[o_idx, g])  # positions in o_idx
        if orr.size == 0:
            continue
        O = probabilities_from_roots(sqrt_p[o_idx[orr], g])
        if cr.size:
            Dc = geometry.pairwise_distances(probabilities_from_roots(sqrt_p[c_idx[cr], g]), O, floor=floor)
            j = np.argmin(Dc, axis=1)
            d_corner[cr, g] = Dc[np.arange(cr.size), j]
            n_corner[cr, g] = o_idx[orr[j]]
        if orr.size >= 2:
            Do = geometry.pairwise_distances(O, floor=floor)
            np.fill_diagonal(Do, np.inf)
            j = np.argmin(Do, axis=1)
            d_ord[orr, g] = Do[np.arange(orr.size), j]
            n_ord[orr, g] = o_idx[orr[j]]
    return d_corner, n_corner, d_ord, n_ord


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
