"""Claim 3 (SPEC §6): larger networks follow the same path, only faster.

Works on plain arrays, one run at a time, so it runs on any store or sweep:

- :func:`progress_milestones` -- the epoch and step at which one run's progress
  first reaches given levels (default 0.5 and 0.9).
- :func:`speed_by_width` -- those milestones per architecture and width, and
  the Spearman correlation between width and epochs (steps) to the top level
  within each architecture: negative means wider is faster.
- :func:`same_path` -- from the run-by-run trajectory distance matrix (mean d_B
  at equal progress, SPEC §5): are runs of one architecture at different widths
  closer to each other than runs of different architectures?

Everything returned is JSON-serialisable (dicts, lists, floats, ints, str, None).
"""

from __future__ import annotations

import math
from collections import defaultdict

import numpy as np
from scipy.stats import rankdata

__all__ = ["progress_milestones", "same_path", "spearman", "speed_by_width"]

DEFAULT_LEVELS = (0.5, 0.9)


def _level_key(level: float) -> str:
    return f"{float(level):g}"


def _check_levels(levels) -> tuple[float, ...]:
    levels = tuple(float(v) for v in np.atleast_1d(np.asarray(levels, dtype=float)))
    if not levels or any(not (0.0 < v <= 1.0) for v in levels):
        raise ValueError(f"levels must lie in (0, 1], got {levels!r}")
    return levels


def spearman(x, y) -> dict:
    """Spearman rank correlation of ``x`` and ``y`` over the pairs where both are finite.

    Ties get average ranks. Returns ``{"rho": float or None, "n": int}``; ``rho``
    is None (with a ``"reason"``) for fewer than 2 pairs or a constant input,
    instead of SciPy's NaN and warning.
    """
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    if x.shape != y.shape or x.ndim != 1:
        raise ValueError(f"x and y must be 1-D of equal length, got {x.shape} and {y.shape}")
    ok = np.isfinite(x) & np.isfinite(y)
    n = int(ok.sum())
    if n < 2:
        return {"rho": None, "n": n, "reason": "fewer than 2 finite pairs"}
    rx, ry = rankdata(x[ok]), rankdata(y[ok])
    rx -= rx.mean()
    ry -= ry.mean()
    den = math.sqrt(float(rx @ rx) * float(ry @ ry))
    if den == 0.0:
        return {"rho": None, "n": n, "reason": "constant input"}
    return {"rho": float(np.clip((rx @ ry) / den, -1.0, 1.0)), "n": n}


def progress_milestones(progress, epochs, steps, levels=DEFAULT_LEVELS) -> dict:
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
        Progress (SPEC §3) of each checkpoint, and its epoch and optimiser step.
    levels : sequence of float in (0, 1], default (0.5, 0.9)

    Returns
    -------
    dict
        ``{"0.5": {"epoch": float or None, "step": float or None}, "0.9": ...}``,
        keys formatted with ``f"{level:g}"``; None where the level is never reached.
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
    out = {}
    for level in levels:
        hit = np.flatnonzero(p >= level)
        if hit.size == 0:
            out[_level_key(level)] = {"epoch": None, "step": None}
            continue
        k = int(hit[0])
        if k == 0:
            out[_level_key(level)] = {"epoch": float(e[0]), "step": float(s[0])}
            continue
        frac = (level - p[k - 1]) / (p[k] - p[k - 1])  # p[k-1] < level <= p[k]
        out[_level_key(level)] = {"epoch": float(e[k - 1] + frac * (e[k] - e[k - 1])),
                                  "step": float(s[k - 1] + frac * (s[k] - s[k - 1]))}
    return out


def _mean_of(values) -> float | None:
    vals = [v for v in values if v is not None]
    return float(np.mean(vals)) if vals else None


def speed_by_width(runs, levels=DEFAULT_LEVELS, *, trend_level: float | None = None) -> dict:
    """How fast each architecture reaches given progress levels, by width.

    Parameters
    ----------
    runs : list of dict
        Each ``{"run_id", "arch", "width", "progress" (K,), "epochs" (K,), "steps" (K,)}``.
        Runs with ``width`` None are listed under ``"skipped_runs"``.
    levels : sequence of float, default (0.5, 0.9)
    trend_level : float, optional
        Level whose epochs/steps are correlated with width (default: the largest
        of ``levels``, i.e. 0.9).

    Returns
    -------
    dict
        - ``"levels"``, ``"trend_level"``;
        - ``"runs"``: per run ``{"run_id", "arch", "width", "milestones"}``
          (see :func:`progress_milestones`);
        - ``"architectures"``: for each architecture with at least 2 widths,
          ``{"widths": [...], "trend": {...}}``. ``widths`` is sorted by width,
          each entry ``{"width", "n_runs", "run_ids", "epochs": {level: {"mean",
          "values", "n_reached"}}, "steps": {...}}`` -- ``values`` are per run
          (seed) in ``run_ids`` order, None where the level was never reached,
          and ``mean`` is over the runs that reached it. ``trend`` has, for
          ``"epochs"`` and ``"steps"`` at ``trend_level``, the Spearman
          correlation between width and time over the runs that reached the level
          (``"rho"``, ``"n"`` runs) and over the per-width means
          (``"rho_width_means"``, ``"n_widths"``), plus ``"n_not_reached"``.
          Negative rho = wider is faster. Runs that never reach the level are
          left out of the correlation (they are counted, not ranked, because
          runs may have been trained for different lengths).
        - ``"skipped"``: ``{arch: reason}`` for architectures with a single width.
        - ``"skipped_runs"``: ``[{"run_id", "reason"}]``.
    """
    levels = _check_levels(levels)
    trend_level = max(levels) if trend_level is None else _check_levels([trend_level])[0]
    all_levels = levels if trend_level in levels else levels + (trend_level,)
    tkey = _level_key(trend_level)

    per_run, skipped_runs = [], []
    by_arch: dict[str, dict] = defaultdict(lambda: defaultdict(list))
    for r in runs:
        missing = {"run_id", "arch", "width", "progress", "epochs", "steps"} - set(r)
        if missing:
            raise ValueError(f"run {r.get('run_id')!r} lacks {sorted(missing)}")
        ms = progress_milestones(r["progress"], r["epochs"], r["steps"], all_levels)
        width = r["width"]
        if width is not None:
            width = float(width)
            width = int(width) if width.is_integer() else width
        per_run.append({"run_id": r["run_id"], "arch": r["arch"], "width": width, "milestones": ms})
        if width is None:
            skipped_runs.append({"run_id": r["run_id"], "reason": "no width"})
            continue
        by_arch[r["arch"]][width].append((r["run_id"], ms))

    architectures, skipped = {}, {}
    for arch in sorted(by_arch, key=str):
        widths = by_arch[arch]
        if len(widths) < 2:
            (w,) = widths
            skipped[str(arch)] = f"a single width ({w}): no width trend to measure"
            continue
        entries = []
        for w in sorted(widths):
            members = widths[w]
            entry = {"width": w, "n_runs": len(members), "run_ids": [m[0] for m in members]}
            for unit in ("epochs", "steps"):
                field = unit[:-1]  # "epoch", "step"
                entry[unit] = {}
                for level in all_levels:
                    vals = [m[1][_level_key(level)][field] for m in members]
                    entry[unit][_level_key(level)] = {
                        "mean": _mean_of(vals), "values": vals,
                        "n_reached": sum(v is not None for v in vals)}
            entries.append(entry)
        trend = {}
        for unit in ("epochs", "steps"):
            xs, ys, n_missing = [], [], 0
            for entry in entries:
                for v in entry[unit][tkey]["values"]:
                    if v is None:
                        n_missing += 1
                    else:
                        xs.append(entry["width"])
                        ys.append(v)
            runs_corr = spearman(xs, ys)
            wm = [(e["width"], e[unit][tkey]["mean"]) for e in entries if e[unit][tkey]["mean"] is not None]
            means_corr = spearman([a for a, _ in wm], [b for _, b in wm])
            t = {"rho": runs_corr["rho"], "n": runs_corr["n"],
                 "rho_width_means": means_corr["rho"], "n_widths": means_corr["n"],
                 "n_not_reached": n_missing}
            if "reason" in runs_corr:
                t["reason"] = runs_corr["reason"]
            trend[unit] = t
        architectures[str(arch)] = {"widths": entries, "trend": trend}

    return {"levels": list(levels), "trend_level": trend_level, "runs": per_run,
            "architectures": architectures, "skipped": skipped, "skipped_runs": skipped_runs}


def _pair_stats(values) -> dict:
    return {"mean": float(np.mean(values)) if values else None, "n_pairs": len(values)}


def same_path(D_traj, archs, widths) -> dict:
    """Do different widths of one architecture share a path? Trajectory distances by kind of pair.

    Parameters
    ----------
    D_traj : array_like, shape (R, R)
        Distance between the trajectories of runs ``i`` and ``j`` (mean d_B at
        equal progress, SPEC §5). Only the upper triangle ``i < j`` is read;
        non-finite entries (e.g. runs with no progress in common) are left out
        and counted in ``"n_missing"``.
    archs : sequence, length R
        Architecture of each run.
    widths : sequence, length R
        Width of each run (None = unknown: such a run counts only in pairs with
        other architectures).

    Returns
    -------
    dict
        ``"same_arch_diff_width"``, ``"diff_arch"`` and, as a seed-level
        reference, ``"same_arch_same_width"``: each ``{"mean", "n_pairs"}``;
        ``"ratio"`` = same_arch_diff_width mean / diff_arch mean (well below 1:
        widths follow the same path; near 1: width changes the path as much as
        architecture does), None with ``"reason"`` when either set of pairs is
        empty or the denominator is 0; ``"by_arch"``: per architecture, the same
        two means (its own widths vs. its runs to other architectures) and ratio;
        ``"n_missing"``.
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

    def ratio(num, den):
        if not num:
            return None, "no pairs of one architecture at different widths"
        if not den:
            return None, "no pairs of different architectures"
        m = float(np.mean(den))
        if m == 0.0:
            return None, "mean distance between architectures is 0"
        return float(np.mean(num)) / m, None

    out = {"same_arch_diff_width": _pair_stats(within), "diff_arch": _pair_stats(between),
           "same_arch_same_width": _pair_stats(seeds)}
    out["ratio"], reason = ratio(within, between)
    if reason is not None:
        out["reason"] = reason
    by_arch = {}
    for arch in sorted(set(archs), key=str):
        r, why = ratio(arch_within[arch], arch_between[arch])
        entry = {"same_arch_diff_width": _pair_stats(arch_within[arch]),
                 "to_other_archs": _pair_stats(arch_between[arch]), "ratio": r}
        if why is not None:
            entry["reason"] = why
        by_arch[str(arch)] = entry
    out["by_arch"] = by_arch
    out["n_missing"] = n_missing
    return out
