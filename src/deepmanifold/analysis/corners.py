"""Claim 4 (SPEC §6): networks started far away converge along a similar manifold.

"Corner" runs start from unusual points of prediction space (e.g. pre-trained on
random labels or on a tiny subset). :func:`corner_convergence` follows each corner
run at equal progress and measures how far it is from the manifold of ordinary
runs: at every point of the progress grid, the d_B to the NEAREST ordinary run
at that same progress. If the claim holds this distance falls as training goes
on and ends within the spread of the ordinary runs themselves, which is measured
the same way (each ordinary run to its nearest *other* ordinary run).

Input is the per-run resampling at equal progress (SPEC §5): ``sqrt_p`` of shape
``(R, G, n, C)`` (square roots of the class probabilities, float32 is fine; a
``np.memmap`` is read one grid point at a time), ``reached`` ``(R, G)`` telling
which grid points each run reached (the others are never read), and the grid
``(G,)`` of progress values.

Distance: ``d_B = -(1/n) sum_i log BC_i`` with ``BC_i = sum_c sqrt(p_ic) sqrt(q_ic)``
computed in float64 and clamped to ``[floor, 1]`` (``floor = 1e-12``, so one sample
contributes at most ``27.6/n``), the same clamp as
:func:`deepmanifold.geometry.pairwise_distances`.
"""

from __future__ import annotations

import math

import numpy as np

from .speed import spearman

__all__ = ["corner_convergence"]

_FLOOR = 1e-12
_GROUP = 8  # clamped BCs multiplied before one log: 8 * log(1e-12) = -221 > log(tiny float64)
_TILE_ELEMENTS = 1 << 21  # float64 (pair, sample) coefficients held at once (16 MiB)


def _db_cross(A: np.ndarray, B: np.ndarray, floor: float = _FLOOR) -> np.ndarray:
    """d_B between every model of ``A`` (a, n, C) and of ``B`` (b, n, C), given as sqrt p."""
    a, n, _ = A.shape
    b = B.shape[0]
    out = np.zeros((a, b))
    if a == 0 or b == 0:
        return out
    chunk = max(_GROUP, (_TILE_ELEMENTS // (a * b)) // _GROUP * _GROUP)
    for s in range(0, n, chunk):
        e = min(n, s + chunk)
        As = np.asarray(A[:, s:e], dtype=np.float64).transpose(1, 0, 2)  # (m, a, C)
        Bs = np.asarray(B[:, s:e], dtype=np.float64).transpose(1, 2, 0)  # (m, C, b)
        bc = np.matmul(As, Bs)  # (m, a, b)
        np.clip(bc, floor, 1.0, out=bc)
        m = e - s
        pad = (-m) % _GROUP
        if pad:
            bc = np.concatenate([bc, np.ones((pad, a, b))], axis=0)
        prod = bc.reshape(-1, _GROUP, a, b).prod(axis=1)
        out += np.log(prod).sum(axis=0)
    out *= -1.0 / n
    np.maximum(out, 0.0, out=out)
    return out


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


def _none_if_nan(x) -> float | None:
    x = float(x)
    return x if math.isfinite(x) else None


def _curve_to_list(curve: np.ndarray) -> list:
    return [_none_if_nan(v) for v in curve]


def _summary(curve: np.ndarray, grid: np.ndarray, mid_idx: int) -> dict:
    ok = np.flatnonzero(np.isfinite(curve))
    if ok.size == 0:
        return {"n_points": 0, "t_first": None, "d_first": None, "t_mid": float(grid[mid_idx]),
                "d_mid": None, "t_last": None, "d_last": None, "spearman": None,
                "ratio_last_first": None, "decreases": None, "reason": "no grid point reached"}
    first, last = int(ok[0]), int(ok[-1])
    d_first, d_last = float(curve[first]), float(curve[last])
    rho = spearman(grid[ok], curve[ok])["rho"]
    ratio = d_last / d_first if d_first > 0 else None
    decreases = None if rho is None or ratio is None else bool(rho < 0 and ratio < 1)
    return {"n_points": int(ok.size),
            "t_first": float(grid[first]), "d_first": d_first,
            "t_mid": float(grid[mid_idx]), "d_mid": _none_if_nan(curve[mid_idx]),
            "t_last": float(grid[last]), "d_last": d_last,
            "spearman": rho, "ratio_last_first": ratio, "decreases": decreases}


def corner_convergence(sqrt_p, reached, grid, is_corner, *, ordinary=None, run_ids=None,
                       floor: float = _FLOOR, mid: float = 0.5) -> dict:
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
    run_ids : sequence, length R, optional
        Labels echoed in the output (default: run indices).
    floor : float, default 1e-12
        Clamp of each Bhattacharyya coefficient (see module docstring).
    mid : float, default 0.5
        Progress of the middle summary point (the nearest grid point is used).

    Returns
    -------
    dict (JSON-serialisable; NaN written as None)
        - ``"grid"``, ``"floor"``, ``"mid_index"``;
        - ``"corner"``: ``"runs"`` (labels), ``"distance"`` (n_corner x G: d_B to
          the nearest ordinary run that reached the same grid point; None where
          the corner did not reach it or no ordinary run did), ``"nearest"``
          (label of that ordinary run, or None), ``"summary"`` per corner run:
          ``n_points``, ``t_first``/``d_first`` (first reached grid point),
          ``t_mid``/``d_mid``, ``t_last``/``d_last`` (last reached point),
          ``spearman`` (of distance with progress over the reached points:
          negative = approaches the manifold), ``ratio_last_first``,
          ``decreases`` (spearman < 0 and ratio < 1), and the ordinary spread
          at its last point: ``spread_at_last`` (median over ordinary runs of
          their nearest-other distance there), ``spread_max_at_last``, and
          ``excess_at_last`` = d_last - spread_at_last (<= 0: the corner ends
          as close to the manifold as ordinary runs are to each other);
        - ``"ordinary"``: the same ``"runs"``, ``"distance"``, ``"nearest"``,
          ``"summary"`` for each ordinary run to its nearest OTHER ordinary run,
          and ``"spread"``: per grid point ``"median"``, ``"mean"``, ``"max"``
          of those distances and ``"n"`` (ordinary runs with a neighbour there).
        - ``"reasons"``: list of notes (no corner runs, too few ordinary runs, ...).
    """
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
    if not (0.0 < floor < 1.0):
        raise ValueError(f"floor must lie in (0, 1), got {floor}")
    corner = _as_mask(is_corner, R, "is_corner")
    ordin = ~corner if ordinary is None else _as_mask(ordinary, R, "ordinary")
    if np.any(corner & ordin):
        raise ValueError("a run cannot be both a corner and an ordinary run: "
                         f"{np.flatnonzero(corner & ordin).tolist()}")
    labels = list(range(R)) if run_ids is None else [x.item() if isinstance(x, np.generic) else x
                                                     for x in run_ids]
    if len(labels) != R:
        raise ValueError(f"run_ids must have length {R}, got {len(labels)}")

    c_idx = np.flatnonzero(corner)
    o_idx = np.flatnonzero(ordin)
    d_corner = np.full((c_idx.size, G), np.nan)
    n_corner = np.full((c_idx.size, G), -1, dtype=np.int64)
    d_ord = np.full((o_idx.size, G), np.nan)
    n_ord = np.full((o_idx.size, G), -1, dtype=np.int64)

    for g in range(G):
        cr = np.flatnonzero(reached[c_idx, g])  # positions in c_idx
        orr = np.flatnonzero(reached[o_idx, g])  # positions in o_idx
        if orr.size == 0:
            continue
        O = np.asarray(sqrt_p[o_idx[orr], g])
        if cr.size:
            Dc = _db_cross(np.asarray(sqrt_p[c_idx[cr], g]), O, floor)
            j = np.argmin(Dc, axis=1)
            d_corner[cr, g] = Dc[np.arange(cr.size), j]
            n_corner[cr, g] = o_idx[orr[j]]
        if orr.size >= 2:
            Do = _db_cross(O, O, floor)
            Do = 0.5 * (Do + Do.T)
            np.fill_diagonal(Do, np.inf)
            j = np.argmin(Do, axis=1)
            d_ord[orr, g] = Do[np.arange(orr.size), j]
            n_ord[orr, g] = o_idx[orr[j]]

    mid_idx = int(np.argmin(np.abs(grid - mid)))
    with np.errstate(all="ignore"):
        has = np.isfinite(d_ord)
        n_spread = has.sum(axis=0)
        spread_med = np.array([np.median(d_ord[has[:, g], g]) if n_spread[g] else np.nan for g in range(G)])
        spread_mean = np.array([np.mean(d_ord[has[:, g], g]) if n_spread[g] else np.nan for g in range(G)])
        spread_max = np.array([np.max(d_ord[has[:, g], g]) if n_spread[g] else np.nan for g in range(G)])

    def nearest_labels(nn):
        return [[labels[k] if k >= 0 else None for k in row] for row in nn.tolist()]

    corner_summary = []
    for r in range(c_idx.size):
        s = _summary(d_corner[r], grid, mid_idx)
        if s["t_last"] is not None:
            last = int(np.flatnonzero(np.isfinite(d_corner[r]))[-1])
            s["spread_at_last"] = _none_if_nan(spread_med[last])
            s["spread_max_at_last"] = _none_if_nan(spread_max[last])
            s["excess_at_last"] = (None if s["spread_at_last"] is None
                                   else s["d_last"] - s["spread_at_last"])
        else:
            s["spread_at_last"] = s["spread_max_at_last"] = s["excess_at_last"] = None
        s["run"] = labels[c_idx[r]]
        corner_summary.append(s)
    ordinary_summary = []
    for r in range(o_idx.size):
        s = _summary(d_ord[r], grid, mid_idx)
        s["run"] = labels[o_idx[r]]
        ordinary_summary.append(s)

    reasons = []
    if c_idx.size == 0:
        reasons.append("no corner runs")
    if o_idx.size == 0:
        reasons.append("no ordinary runs: no manifold to compare with")
    elif o_idx.size == 1:
        reasons.append("a single ordinary run: no baseline spread")
    for r, s in zip(c_idx, corner_summary):
        if s["n_points"] == 0:
            reasons.append(f"corner run {labels[r]!r} has no grid point shared with an ordinary run")

    return {
        "grid": grid.tolist(),
        "floor": float(floor),
        "mid_index": mid_idx,
        "corner": {"runs": [labels[k] for k in c_idx],
                   "distance": [_curve_to_list(c) for c in d_corner],
                   "nearest": nearest_labels(n_corner),
                   "summary": corner_summary},
        "ordinary": {"runs": [labels[k] for k in o_idx],
                     "distance": [_curve_to_list(c) for c in d_ord],
                     "nearest": nearest_labels(n_ord),
                     "summary": ordinary_summary,
                     "spread": {"median": _curve_to_list(spread_med), "mean": _curve_to_list(spread_mean),
                                "max": _curve_to_list(spread_max), "n": n_spread.astype(int).tolist()}},
        "reasons": reasons,
    }
