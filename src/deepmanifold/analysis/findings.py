"""The study's claims (SPEC §6) tested on a store, with numbers and a written rule.

Each claim gets the numbers that bear on it and a verdict computed from them by a
rule stated here, in the code, and copied into the output so a reader can check
it: ``"supported"``, ``"not supported"``, ``"inconclusive"`` (the numbers point both
ways), or ``"skipped"`` with the reason (e.g. a sweep with one width says nothing
about speed against width). Nothing is hard-coded: a sweep where a claim fails says so.

The rules (thresholds are ours, chosen before looking at our data, and printed with
every verdict):

1. *One low-dimensional manifold.* Supported when the top ``MAX_AXES_LOW_DIM`` InPCA
   axes reach 90 % explained stress on the test probe AND fewer axes are needed than
   for the null model (mean of the null draws); not supported when more than
   ``MAX_AXES_LOW_DIM`` axes are needed; inconclusive otherwise.
2. *Architecture matters, the rest much less.* Architecture is the model family (width
   variants count as the factor ``arch_options.width``). Supported when architecture is the
   top-ranked factor by mean trajectory distance over pairs differing only in it,
   with its bootstrap interval above every other measured factor's mean, AND
   architecture is predictable from trajectories (leave-one-out nearest neighbour
   above chance, permutation p < 0.05). Not supported when another factor ranks
   first. Skipped with one architecture.
3. *Larger networks, same path, faster.* For each architecture with ≥ 2 widths:
   Spearman correlation of width with epochs to progress 0.9 < 0 (wider is faster)
   AND the mean trajectory distance between widths of one architecture is below the
   mean distance between architectures (ratio < 1). Supported when both hold for
   every such architecture; skipped when no architecture has two widths.
4. *Corners converge along the manifold.* Supported when every corner run's distance
   to the nearest ordinary run falls along training (last/first < 0.5) and ends
   within ``CORNER_SPREAD_FACTOR`` × the ordinary runs' own spread; skipped without
   corner runs.
5. *Train and test give the same picture.* Supported when the Mantel correlation of
   the train and test distance matrices is ≥ 0.9 (permutation p < 0.05) and the
   Procrustes residual of their 3-axis embeddings is ≤ 0.1.
"""

from __future__ import annotations

import json
import math
import os
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from deepmanifold import geometry

__all__ = ["Claim", "Findings", "analyze_store", "CLAIMS"]

MAX_AXES_LOW_DIM = 5
CORNER_SPREAD_FACTOR = 2.0
MAX_CHECKPOINT_MODELS = 6000  # dense InPCA of all checkpoints above this uses a subsample per run

CLAIMS = {
    "manifold": "All trajectories lie on one effectively low-dimensional manifold.",
    "architecture": "Architecture produces distinguishable trajectories; the other factors matter much less.",
    "speed": "Larger networks train along the same manifold, just faster.",
    "corners": "Networks started far away (corners) converge to the solution along a similar manifold.",
    "train_test": "Training and test predictions give the same picture.",
}


@dataclass
class Claim:
    """One claim of the study as measured on a store."""

    key: str
    statement: str
    verdict: str  # supported | not supported | inconclusive | skipped
    rule: str
    numbers: dict = field(default_factory=dict)
    reason: str = ""


@dataclass
class Findings:
    """Everything ``deepmanifold analyze`` measured on a store."""

    store: str
    probe: str
    n_runs: int
    claims: list[Claim]
    analyses: dict
    skipped: dict
    wall_time: float = 0.0

    def to_dict(self) -> dict:
        return _clean({
            "store": self.store, "probe": self.probe, "n_runs": self.n_runs,
            "claims": [asdict(c) for c in self.claims], "analyses": self.analyses,
            "skipped": self.skipped, "wall_time": self.wall_time,
        })

    def write_json(self, path: str | os.PathLike) -> Path:
        """Write ``findings.json`` atomically (strict JSON: NaN/inf become null)."""
        path = Path(path)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(self.to_dict(), indent=2, allow_nan=False))
        os.replace(tmp, path)
        return path


def _clean(value: Any) -> Any:
    """JSON-ready: numpy scalars/arrays to Python, NaN/inf to None, tuples to lists."""
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if isinstance(value, np.ndarray):
        return _clean(value.tolist())
    if isinstance(value, (np.bool_, bool)):
        return bool(value)
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        v = float(value)
        return v if math.isfinite(v) else None
    return value


def _rule(key: str) -> str:
    """The rule of one claim, as written in this module's docstring."""
    doc = __doc__.split("The rules", 1)[1]
    number = list(CLAIMS).index(key) + 1
    start = doc.index(f"{number}. ")
    end = doc.find(f"{number + 1}. ", start)
    text = doc[start + 3:end if end > 0 else None]
    text = text.replace("``MAX_AXES_LOW_DIM``", str(MAX_AXES_LOW_DIM))
    text = text.replace("``CORNER_SPREAD_FACTOR``", str(CORNER_SPREAD_FACTOR))
    return " ".join(text.replace("*", "").split())


def _skip(key: str, reason: str) -> Claim:
    return Claim(key, CLAIMS[key], "skipped", _rule(key), {}, reason)


def analyze_store(store, *, probe: str = "test", other_probe: str | None = "train",
                  grid_points: int = 101, n_boot: int = 1000, random_state: int = 0,
                  on_step: Callable[[str], None] | None = None) -> Findings:
    """Run every analysis of the study on a store and judge each claim.

    Parameters
    ----------
    store : deepmanifold.store.Store
    probe : str, default "test"
        Probe set the claims are judged on.
    other_probe : str or None, default "train"
        Second probe set, for the train/test agreement.
    grid_points : int, default 101
        Points of the progress grid the trajectories are resampled on.
    n_boot : int
        Bootstrap draws of the factor-effect intervals.
    on_step : callable(str), optional
        Called with the name of each analysis as it starts (progress display).

    Returns
    -------
    Findings
    """
    from deepmanifold.analysis.agreement import train_test_agreement
    from deepmanifold.analysis.averaging import average_models
    from deepmanifold.analysis.corners import corner_convergence
    from deepmanifold.analysis.dimensionality import dimensionality
    from deepmanifold.analysis.factors import factor_effects, factor_predictability
    from deepmanifold.analysis.speed import progress_milestones, same_path, speed_by_width
    from deepmanifold.analysis.embedding import usable_runs
    from deepmanifold.analysis.trajectories import (
        TrajectorySet, config_dendrogram, distance_to_geodesic_by_progress, trajectory_distance_matrix,
        tube_width)

    started = time.perf_counter()
    step = on_step or (lambda name: None)
    analyses: dict[str, Any] = {}
    skipped: dict[str, str] = {}
    claims: list[Claim] = []

    step("reading runs")
    records, excluded = usable_runs(store, probe)
    if not records:
        raise ValueError(f"no usable run in {store.root} on probe {probe!r}")
    analyses["excluded"] = [{"run": r, "why": w} for r, w in excluded]
    labels = np.asarray(store.probe(records[0].probes[probe]).labels)
    n_classes = int(store.logp(records[0].run_id, probe).shape[-1])

    # All checkpoints of all runs: the distance matrix behind the picture and the
    # dimensionality claim (subsampled per run past MAX_CHECKPOINT_MODELS models).
    step("checkpoint distances")
    per_run = [int(r.n_checkpoints) for r in records]
    keep = _checkpoint_subsample(per_run, MAX_CHECKPOINT_MODELS)
    P = np.concatenate([np.exp(np.asarray(store.logp(r.run_id, probe), dtype=np.float64)[k])
                        for r, k in zip(records, keep)])
    run_index = np.concatenate([np.full(len(k), i) for i, k in enumerate(keep)])
    P /= P.sum(axis=-1, keepdims=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", geometry.ClampWarning)
        D = geometry.pairwise_distances(P)

    # 1. manifold
    step("dimensionality")
    if len(records) < 2:
        skipped["dimensionality"] = "needs at least 2 runs"
        claims.append(_skip("manifold", "needs at least 2 runs"))
    else:
        dim = dimensionality(D, run_index, P=P, random_state=random_state)
        dim_d = _clean(dim.to_dict())
        analyses["dimensionality"] = dim_d
        claims.append(_judge_manifold(dim_d))

    # Trajectories at equal progress
    step("trajectories")
    grid = np.linspace(0.0, 1.0, grid_points)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ts = TrajectorySet.from_store(store, probe=probe, grid=grid, runs=[r.run_id for r in records])
    analyses["non_monotone_runs"] = [str(w.message) for w in caught]
    configs = [dict(c) for c in ts.configs]
    D_traj = trajectory_distance_matrix(ts)
    analyses["trajectory_distances"] = {"run_ids": list(ts.run_ids), "labels": list(ts.labels),
                                        "matrix": D_traj}
    dist_geo = distance_to_geodesic_by_progress(ts, labels)
    analyses["distance_to_geodesic"] = {"grid": grid, "mean": _nanmean_rows(dist_geo, ts.reached)}

    groups = _config_groups(configs)
    if len(groups) >= 2:
        group_ids = list(groups)
        Dg = np.array([[np.nanmean(D_traj[np.ix_(groups[a], groups[b])]) if a != b else 0.0
                        for b in group_ids] for a in group_ids])
        try:
            analyses["dendrogram"] = config_dendrogram(Dg, group_ids)
        except ValueError as exc:
            skipped["dendrogram"] = str(exc)
    else:
        skipped["dendrogram"] = "needs at least 2 configurations"
    tubes = {}
    for name, members in groups.items():
        if len(members) >= 2:
            tubes[name] = tube_width(ts, members)
    if tubes:
        analyses["tube_width"] = {"grid": grid, "by_configuration": tubes}
    else:
        skipped["tube_width"] = "every configuration has a single seed: no spread to measure"

    # 2. factors
    step("factor effects")
    # Architecture = the model family (the registry name): width variants of one family
    # (aliases such as "cnn_wide") are the subject of the speed claim and show up here as
    # the factor arch_options.width.
    family = [{k: v for k, v in c.items() if k != "arch_alias"} for c in configs]
    rep = factor_effects(D_traj, family, n_boot=n_boot, random_state=random_state)
    analyses["factor_effects"] = _clean(rep.to_dict())
    arch_pred = factor_predictability(D_traj, family, "arch")
    analyses["architecture_predictability"] = _clean(arch_pred)
    claims.append(_judge_architecture(rep, arch_pred))

    # 3. speed
    step("speed")
    width_runs = []
    for i, cfg in enumerate(configs):
        width = (cfg.get("arch_options") or {}).get("width")
        width_runs.append({"run_id": ts.run_ids[i], "arch": _arch_family(cfg), "width": width,
                           "progress": ts.progress[i], "epochs": ts.epochs[i], "steps": ts.steps[i]})
    analyses["milestones"] = {
        r["run_id"]: progress_milestones(r["progress"], r["epochs"], r["steps"]) for r in width_runs}
    with_width = [r for r in width_runs if r["width"] is not None]
    sp = speed_by_width(with_width) if with_width else {}
    if sp and not any(((v.get("trend") or {}).get("epochs") or {}).get("rho") is not None
                      for v in sp.get("architectures", {}).values()):
        # Too few runs reach progress 0.9 (e.g. short runs): rank widths at 0.5 instead.
        sp = speed_by_width(with_width, trend_level=0.5)
    same = same_path(D_traj, [r["arch"] for r in width_runs],
                           [r["width"] for r in width_runs])
    analyses["speed"] = _clean({"by_width": sp, "same_path": same})
    claims.append(_judge_speed(_clean(sp), _clean(same)))

    # 4. corners
    step("corners")
    is_corner = np.array([c.get("init", "default") != "default" for c in configs])
    if is_corner.any() and (~is_corner).any():
        cor = _clean(corner_convergence(ts.sqrt_p, ts.reached, grid, is_corner, run_ids=list(ts.labels)))
        analyses["corners"] = cor
        claims.append(_judge_corners(cor))
    else:
        reason = "no corner-initialised runs" if not is_corner.any() else "no ordinary runs to compare with"
        skipped["corners"] = reason
        claims.append(_skip("corners", reason))

    # 5. train vs test
    step("train vs test")
    if other_probe and all(other_probe in r.probes for r in records):
        P2 = np.concatenate([np.exp(np.asarray(store.logp(r.run_id, other_probe), dtype=np.float64)[k])
                             for r, k in zip(records, keep)])
        P2 /= P2.sum(axis=-1, keepdims=True)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", geometry.ClampWarning)
            D2 = geometry.pairwise_distances(P2)
        agr = _clean(train_test_agreement(D2, D, random_state=random_state))
        analyses["train_test_agreement"] = agr
        claims.append(_judge_train_test(agr))
    else:
        skipped["train_test_agreement"] = f"not every run has predictions on probe {other_probe!r}"
        claims.append(_skip("train_test", skipped["train_test_agreement"]))

    # Averaging of final models (a measurement, not a claim)
    step("averaging")
    finals = np.stack([np.exp(np.asarray(store.logp(r.run_id, probe)[-1], dtype=np.float64)) for r in records])
    finals /= finals.sum(axis=-1, keepdims=True)
    if len(records) >= 2:
        analyses["averaging"] = _clean(average_models(finals, labels))
    else:
        skipped["averaging"] = "needs at least 2 runs"

    return Findings(store=str(store.root), probe=probe, n_runs=len(records), claims=claims,
                    analyses=_clean(analyses), skipped=skipped,
                    wall_time=round(time.perf_counter() - started, 2))


# ----------------------------------------------------------------------------- helpers


def _arch_family(cfg: dict) -> str:
    """The architecture a run belongs to for the width analysis (the registry name)."""
    return str(cfg.get("arch"))


def _config_groups(configs: list[dict]) -> dict[str, list[int]]:
    """Runs grouped by configuration (everything but the seed and bookkeeping)."""
    from deepmanifold.analysis.factors import IGNORED_KEYS

    skip = set(IGNORED_KEYS) | {"seed"}  # the same bookkeeping keys the factor analysis ignores
    groups: dict[str, list[int]] = {}
    for i, cfg in enumerate(configs):
        key = json.dumps({k: v for k, v in cfg.items() if k not in skip}, sort_keys=True, default=str)
        groups.setdefault(key, []).append(i)
    named = {}
    for key, members in groups.items():
        cfg = configs[members[0]]
        label = str(cfg.get("label", "")).rsplit(" / seed", 1)[0] or key
        while label in named:
            label += "'"
        named[label] = members
    return named


def _checkpoint_subsample(per_run: list[int], budget: int) -> list[np.ndarray]:
    """Indices of checkpoints kept per run: all, or evenly spread with first and last kept."""
    total = sum(per_run)
    if total <= budget:
        return [np.arange(k) for k in per_run]
    out = []
    for k in per_run:
        m = max(2, int(round(k * budget / total)))
        out.append(np.unique(np.round(np.linspace(0, k - 1, m)).astype(int)))
    return out


def _nanmean_rows(values: np.ndarray, reached: np.ndarray) -> list:
    v = np.where(reached, values, np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(v, axis=0).tolist()


def _judge_manifold(dim: dict) -> Claim:
    axes = dim.get("axes_needed", {})
    need90 = axes.get("0.9")
    null90 = ((dim.get("null_axes_needed") or {}).get("0.9") or {}).get("mean")
    stress = dim.get("explained_stress") or []
    numbers = {"axes_for_80%": axes.get("0.8"), "axes_for_90%": need90, "axes_for_95%": axes.get("0.95"),
               "null": dim.get("null"), "null_axes_for_90% (mean)": null90,
               "explained_stress_top3": stress[2] if len(stress) >= 3 else None,
               "checkpoints": dim.get("n_models"), "runs": dim.get("n_runs")}
    if need90 is None or need90 > MAX_AXES_LOW_DIM:
        verdict = "not supported"
    elif null90 is not None and need90 < null90:
        verdict = "supported"
    else:
        verdict = "inconclusive"
    return Claim("manifold", CLAIMS["manifold"], verdict, _rule("manifold"), numbers)


def _judge_architecture(rep, pred: dict) -> Claim:
    effects = {e.factor: e for e in rep.effects}
    arch = effects.get("arch")
    if arch is None or arch.status != "measured":
        return _skip("architecture", arch.reason if arch is not None else "architecture does not vary")
    others = [e for f, e in effects.items() if f != "arch" and e.status == "measured"]
    numbers = {"arch_mean": arch.mean, "arch_interval": [arch.low, arch.high],
               "others": {e.factor: e.mean for e in others}, "ranking": list(rep.ranking),
               "arch_predictability": pred.get("accuracy"), "chance": pred.get("chance"),
               "p_value": pred.get("p_value")}
    top = rep.ranking[0] if rep.ranking else None
    separated = all(arch.low is not None and e.mean is not None and arch.low > e.mean for e in others)
    predictable = (pred.get("accuracy") is not None and pred.get("chance") is not None
                   and pred["accuracy"] > pred["chance"] and (pred.get("p_value") or 1.0) < 0.05)
    if top == "arch" and separated and predictable:
        verdict = "supported"
    elif top is not None and top != "arch":
        verdict = "not supported"
    else:
        verdict = "inconclusive"
    return Claim("architecture", CLAIMS["architecture"], verdict, _rule("architecture"), numbers)


def _judge_speed(by_width: dict, same: dict) -> Claim:
    rhos = {}
    for arch, v in (by_width.get("architectures") or {}).items():
        trend = (v.get("trend") or {}).get("epochs") or {}
        rho = trend.get("rho") if trend.get("rho") is not None else trend.get("rho_width_means")
        if rho is not None:
            rhos[arch] = rho
    if not rhos:
        reasons = by_width.get("skipped") or {}
        why = "; ".join(f"{a}: {r}" for a, r in reasons.items())
        return _skip("speed", "no architecture was trained at two or more widths that reached the progress "
                     f"level{': ' + why if why else ''}")
    ratio = same.get("ratio") if isinstance(same, dict) else None
    numbers = {"trend_level": by_width.get("trend_level"),
               "spearman_width_vs_epochs": rhos, "same_path_ratio": ratio}
    faster = all(r < 0 for r in rhos.values())
    same_path = ratio is not None and ratio < 1
    if faster and same_path:
        verdict = "supported"
    elif not faster and not same_path:
        verdict = "not supported"
    else:
        verdict = "inconclusive"
    return Claim("speed", CLAIMS["speed"], verdict, _rule("speed"), numbers)


def _judge_corners(cor: dict) -> Claim:
    runs = (cor.get("corner") or {}).get("summary") or []
    numbers = {"corner_runs": len(runs),
               "last_over_first": [r.get("ratio_last_first") for r in runs],
               "final_distance": [r.get("d_last") for r in runs],
               "ordinary_spread_at_end": [r.get("spread_at_last") for r in runs]}
    usable = [r for r in runs if r.get("ratio_last_first") is not None and r.get("d_last") is not None
              and r.get("spread_at_last") is not None]
    if not usable:
        return Claim("corners", CLAIMS["corners"], "inconclusive", _rule("corners"), numbers,
                     "no corner run reached enough of the progress grid")
    ok = all(r["ratio_last_first"] < 0.5 and r["d_last"] <= CORNER_SPREAD_FACTOR * max(r["spread_at_last"], 1e-12)
             for r in usable)
    return Claim("corners", CLAIMS["corners"], "supported" if ok else "not supported", _rule("corners"),
                 numbers)


def _judge_train_test(agr: dict) -> Claim:
    mantel = agr.get("mantel") or {}
    r = mantel.get("pearson", agr.get("mantel_r"))
    p = mantel.get("p_pearson", mantel.get("p_value"))
    resid = (agr.get("procrustes") or {}).get("residual", agr.get("procrustes_residual"))
    numbers = {"mantel_r": r, "p_value": p, "procrustes_residual": resid}
    if r is None or resid is None:
        return Claim("train_test", CLAIMS["train_test"], "inconclusive", _rule("train_test"), numbers)
    ok = r >= 0.9 and p is not None and p < 0.05 and resid <= 0.1
    return Claim("train_test", CLAIMS["train_test"], "supported" if ok else "not supported",
                 _rule("train_test"), numbers)
