"""The study's claims (docs/method.md §6) measured on a store and judged: ``deepmanifold analyze``.

:func:`analyze_store` reads the usable runs once, leaves apart the runs whose final train
error exceeds 10 % (:mod:`.outliers`, as the reference study does), resamples the others
at equal progress on both probe sets (one common grid; comparisons on the points most
runs reached, :data:`COMMON_FRACTION`), and judges every claim on each probe set:

==============  ========================================  ===================================
claim           measured by                               on
==============  ========================================  ===================================
manifold        :func:`.dimensionality.manifold_evidence`  ordinary runs at equal progress
architecture    :func:`.factors.factor_analysis`           trajectory distances, crossed seeds
speed           :func:`.speed.speed_analysis`              matched narrow/wide pairs
corners         :func:`.corners.corner_band`               corner runs against the band
train_test      :func:`.agreement.equal_progress_agreement` both probes' run × run pictures
==============  ========================================  ===================================

Beside the claims it describes (no verdict): the explained stress of all checkpoints
against its null (:func:`.dimensionality.dimensionality`), milestones and speed against
width, the corner runs' distance to the manifold, averages of the final models, the
tangent experiment, trajectory-level InPCA, distance to the geodesic by architecture and
optimiser, the joint train+test embedding and the trajectory-distance heatmap
(docs/method.md §8). Everything lands in a :class:`Findings`, whose
:meth:`Findings.to_dict` is ``findings.json`` (:data:`SCHEMA_VERSION`); its InPCA pictures,
built from the checkpoint distance matrices computed here, go to the report.
"""

from __future__ import annotations

import json
import os
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from deepmanifold import geometry
from deepmanifold.analysis import agreement, corners, dimensionality, factors, speed
from deepmanifold.analysis.averaging import FinalModelAverages, average_final_models
from deepmanifold.analysis.checkpoints import (CheckpointDistances, checkpoint_distances, stacked_predictions,
                                               usable_runs)
from deepmanifold.analysis.claims import CLAIMS, Claim, claim, skipped_claim
from deepmanifold.analysis.embedding import build_picture
from deepmanifold.analysis.factors import IGNORED_KEYS
from deepmanifold.analysis.layers import layer_findings
from deepmanifold.analysis.outliers import TRAIN_ERROR_LIMIT, OutlierFilter, train_error_outliers
from deepmanifold.analysis.paths import (GridUsed, geodesic_distance_by_group, joint_embedding, trajectory_heatmap,
                                         trajectory_inpca)
from deepmanifold.analysis.picture import Picture
from deepmanifold.analysis.speed import DEFAULT_LEVELS, RunProgress, speed_by_width
from deepmanifold.analysis.tangent import mean_models, tangent_picture
from deepmanifold.analysis.trajectories import (Dendrogram, TrajectorySet, config_dendrogram,
                                                distance_to_geodesic_by_progress, trajectory_distance_matrix,
                                                tube_width)
from deepmanifold.analysis.verdicts import Judgement
from deepmanifold.utils import jsonable

__all__ = ["COMMON_FRACTION", "SCHEMA_VERSION", "Analyses", "Findings", "ProbeFindings", "Trajectories",
           "analyze_store", "judge_probe", "measure_trajectories"]

#: Version of the layout of ``findings.json``; raised when a key changes meaning or moves.
SCHEMA_VERSION = 2

#: Runs are compared on the grid points truly reached by at least this fraction of them.
COMMON_FRACTION = 0.9


# ----------------------------------------------------------------------------- results

@dataclass
class Trajectories:
    """The runs resampled at equal progress on one probe set, and what is measured on them directly.

    Attributes
    ----------
    runs : TrajectorySet or None
        The runs on the progress grid (a run holds its last checkpoint past its highest
        progress); None when no run is left to judge.
    grid : GridUsed
        The grid points the comparisons use: those reached by :data:`COMMON_FRACTION` of the runs.
    mask : ndarray, shape (G,), bool
        Those grid points.
    distances : ndarray, shape (R, R)
        Mean d_B at equal progress between runs over ``mask`` (docs/method.md §5.3).
    non_monotone_runs : list of str
        Warnings about runs whose progress went back along training.
    distance_to_geodesic : ndarray, shape (G,)
        Mean over runs of the distance to the ignorance-truth geodesic along progress.
    configurations : dict of str to list of int
        Runs grouped by configuration (all but the seed), by display name.
    dendrogram : Dendrogram or None
        Complete-linkage dendrogram of the configurations.
    tube_width : dict of str to ndarray, shape (G,)
        Spread of the seeds of each configuration with at least two, along progress.
    skipped : dict of str to str
        ``"dendrogram"`` / ``"tube_width"`` when they could not be measured, and why.
    """

    runs: TrajectorySet | None
    grid: GridUsed
    mask: np.ndarray
    distances: np.ndarray
    non_monotone_runs: list[str]
    distance_to_geodesic: np.ndarray
    configurations: dict[str, list[int]]
    dendrogram: Dendrogram | None = None
    tube_width: dict[str, np.ndarray] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)

    @property
    def configs(self) -> list[dict]:
        """Each run's configuration, in run order."""
        return [dict(c) for c in self.runs.configs]

    @property
    def is_corner(self) -> np.ndarray:
        """Runs started from a corner (``init`` other than ``"default"``), shape (R,)."""
        return np.array([c.get("init", "default") != "default" for c in self.configs], dtype=bool)

    def configuration_of_runs(self) -> list[str]:
        """Each run's configuration group name (equal across seeds)."""
        names = [""] * len(self.runs.run_ids)
        for name, members in self.configurations.items():
            for i in members:
                names[i] = name
        return names

    def to_dict(self) -> dict:
        """The ``analyses`` entries of ``findings.json`` that come from the trajectories
        (``trajectory_distances.run_labels`` are the runs' display names); none without runs."""
        if self.runs is None:
            return {}
        grid = self.runs.grid
        out = {"non_monotone_runs": list(self.non_monotone_runs),
               "trajectory_distances": {"run_ids": list(self.runs.run_ids), "run_labels": list(self.runs.run_labels),
                                        "matrix": self.distances, "grid": self.grid.to_dict()},
               "distance_to_geodesic": {"grid": grid, "mean": self.distance_to_geodesic}}
        if self.dendrogram is not None:
            out["dendrogram"] = self.dendrogram.to_dict()
        if self.tube_width:
            out["tube_width"] = {"grid": grid, "by_configuration": self.tube_width}
        return jsonable(out)


@dataclass
class ProbeFindings:
    """The four probe-level claims judged on one probe set.

    Attributes
    ----------
    probe : str
    trajectories : Trajectories
    manifold : ManifoldEvidence or None
        Sharing and shared dimension of the ordinary runs (claim 1).
    architecture : FactorAnalysis or None
        Factor effects with crossed seeds and predictability (claim 2).
    speed : SpeedAnalysis or None
        Matched narrow/wide pairs per family (claim 3).
    corners : CornerBand or None
        The corner runs against the ordinary runs' band (claim 4).
    claims : dict of str to Claim
        The claims judged on this probe set (``train_test`` is added by :func:`analyze_store`).
    """

    probe: str
    trajectories: Trajectories
    manifold: Any = None
    architecture: Any = None
    speed: Any = None
    corners: Any = None
    claims: dict[str, Claim] = field(default_factory=dict)

    def to_dict(self) -> dict:
        """The measurements behind this probe set's claims, by claim."""
        out: dict[str, Any] = {}
        for key, result in (("manifold", self.manifold), ("factor_effects", self.architecture),
                            ("speed", self.speed), ("corner_band", self.corners)):
            if result is not None:
                out[key] = result.to_dict()
        return jsonable(out)


@dataclass
class Analyses:
    """Every measurement of :func:`analyze_store`; None where an analysis could not run.

    Attributes
    ----------
    excluded : list of (str, str)
        Runs left out (diverged, damaged, without the probe set), and why.
    outliers : OutlierFilter
        Runs whose final train error exceeds 10 %, reported apart and left out of the claims.
    main : ProbeFindings
        The claims' measurements on the main probe set.
    other : ProbeFindings or None
        The same on the other probe set.
    train_test : EqualProgressAgreement or None
        Both probes' run × run pictures compared at equal progress (claim 5).
    description : DimensionalityReport or None
        Explained stress of all checkpoints against its null: a description, no verdict.
    milestones : dict of str to Milestones
        When each run's progress first reached 0.5 and 0.9.
    speed_by_width : SpeedByWidth or None
        Times to progress against width, per architecture (for the speed figure).
    corner_convergence : CornerConvergence or None
        Each corner run's distance to the nearest ordinary run along progress.
    averaging : FinalModelAverages or None
        Averages of the ordinary runs' final models, pooled and per configuration.
    extra : dict of str to object
        The reference study's other analyses, each with ``to_dict()``: ``tangent``,
        ``trajectory_inpca``, ``geodesic_distance_by_group``, ``joint_embedding``,
        ``trajectory_heatmap``.
    layers : LayerFindings or None
        Per-layer summaries of the runs that recorded layer measurements (capacity,
        information plane, neural collapse) and where capacity grows most.
    """

    excluded: list[tuple[str, str]]
    outliers: OutlierFilter
    main: ProbeFindings
    other: ProbeFindings | None = None
    train_test: Any = None
    description: Any = None
    milestones: dict = field(default_factory=dict)
    speed_by_width: Any = None
    corner_convergence: Any = None
    averaging: FinalModelAverages | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    layers: Any = None

    def to_dict(self) -> dict:
        """The ``analyses`` object of ``findings.json``: one key per analysis that ran."""
        main = self.main.to_dict()
        out: dict[str, Any] = {"excluded": [{"run": r, "why": w} for r, w in self.excluded],
                               "outliers": self.outliers.to_dict()}
        if self.description is not None:
            out["dimensionality"] = self.description.to_dict()
        if "manifold" in main:
            out["manifold"] = main["manifold"]
        out.update(self.main.trajectories.to_dict())
        if self.main.architecture is not None:
            out["factor_effects"] = self.main.architecture.effects.to_dict()
            predictability = self.main.architecture.predictability.get("arch")
            out["architecture_predictability"] = predictability.to_dict() if predictability is not None else {}
        out["milestones"] = {run_id: m.to_dict() for run_id, m in self.milestones.items()}
        out["speed"] = {"by_width": self.speed_by_width.to_dict() if self.speed_by_width is not None else {},
                        "analysis": main.get("speed", {})}
        if self.corner_convergence is not None:
            out["corners"] = self.corner_convergence.to_dict()
        if "corner_band" in main:
            out["corner_band"] = main["corner_band"]
        for key, result in (("train_test_agreement", self.train_test), ("averaging", self.averaging),
                            *self.extra.items()):
            if result is not None:
                out[key] = result.to_dict()
        if self.layers is not None:
            out["layers"] = self.layers.to_dict()
        if self.other is not None:
            out["other_probe"] = {"probe": self.other.probe, **self.other.to_dict()}
        return jsonable(out)


@dataclass
class Findings:
    """Everything ``deepmanifold analyze`` measured on a store.

    Attributes
    ----------
    store : str
        Root of the store.
    probe : str
        Probe set the claims are judged on first.
    other_probe : str or None
        The probe set every claim is judged on again.
    n_runs : int
        Usable runs (outliers included).
    claims : list of Claim
        One per claim of :data:`~deepmanifold.analysis.claims.CLAIMS`, in that order, on ``probe``.
    claims_other_probe : list of Claim
        The same on ``other_probe`` (empty without one).
    analyses : Analyses
        The measurements behind the claims.
    skipped : dict of str to str
        Analyses that could not run, and why.
    wall_time : float
        Seconds :func:`analyze_store` took.
    progress_method : str
        The definition of progress every analysis used (docs/method.md §3.3).
    pictures : dict of str to Picture
        InPCA picture of each probe set, built from the same checkpoint distance matrices
        (for the report; not part of ``findings.json``).
    """

    store: str
    probe: str
    other_probe: str | None
    n_runs: int
    claims: list[Claim]
    claims_other_probe: list[Claim]
    analyses: Analyses
    skipped: dict[str, str]
    wall_time: float = 0.0
    progress_method: str = "angle"
    pictures: dict[str, Picture] = field(default_factory=dict, repr=False)

    def to_dict(self) -> dict:
        """The content of ``findings.json`` (strict JSON: NaN and inf become None)."""
        return jsonable({
            "schema_version": SCHEMA_VERSION, "store": self.store, "probe": self.probe,
            "other_probe": self.other_probe, "n_runs": self.n_runs, "progress_method": self.progress_method,
            "claims": [asdict(c) for c in self.claims],
            "claims_other_probe": [asdict(c) for c in self.claims_other_probe],
            "analyses": self.analyses.to_dict(), "skipped": self.skipped, "wall_time": self.wall_time,
        })

    def write_json(self, path: str | os.PathLike) -> Path:
        """Write ``findings.json`` atomically."""
        path = Path(path)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(self.to_dict(), indent=2, allow_nan=False))
        os.replace(tmp, path)
        return path


# ----------------------------------------------------------------------------- measuring

def measure_trajectories(store, run_ids: list[str], probe: str, grid: np.ndarray, *,
                         progress_method: str = "angle") -> Trajectories:
    """Runs resampled at equal progress (by ``progress_method``) on ``probe``; their distances over the common grid, the
    distance to the geodesic, the dendrogram of configurations and the tubes of their seeds."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ts = TrajectorySet.from_store(store, probe=probe, grid=grid, runs=run_ids, method=progress_method)
    mask = ts.common(COMMON_FRACTION)
    D = trajectory_distance_matrix(ts, grid_mask=mask, include_held=True)
    geo = distance_to_geodesic_by_progress(ts, ts.sample_labels)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a grid point no run reached stays NaN
        geo_mean = np.nanmean(np.where(ts.reached, geo, np.nan), axis=0)
    out = Trajectories(runs=ts, grid=GridUsed.of(ts.grid, mask, f"reached by >= {COMMON_FRACTION:.0%} of runs"),
                       mask=mask, distances=D, non_monotone_runs=[str(w.message) for w in caught],
                       distance_to_geodesic=geo_mean, configurations=_config_groups([dict(c) for c in ts.configs]))
    groups = out.configurations
    overlapping = ts.overlapping(mask)
    names = [name for name, members in groups.items() if overlapping[members].all()]
    if len(names) < len(groups):  # their distances to the others are undefined on this grid
        out.skipped["dendrogram_left_out"] = ("configurations without progress in common with the others: "
                                              + ", ".join(name for name in groups if name not in names))
    if len(names) >= 2:
        Dg = np.array([[np.nanmean(D[np.ix_(groups[a], groups[b])]) if a != b else 0.0 for b in names]
                       for a in names])
        try:
            out.dendrogram = config_dendrogram(Dg, names)
        except ValueError as exc:
            out.skipped["dendrogram"] = str(exc)
    else:
        out.skipped["dendrogram"] = "needs at least 2 configurations"
    out.tube_width = {name: tube_width(ts, members) for name, members in groups.items() if len(members) >= 2}
    if not out.tube_width:
        out.skipped["tube_width"] = "every configuration has a single seed: no spread to measure"
    return out


def judge_probe(traj: Trajectories, *, n_boot: int = 1000, random_state: int = 0) -> ProbeFindings:
    """Claims 1-4 measured and judged on one probe set's trajectories."""
    ts, configs = traj.runs, traj.configs
    grid = traj.grid.name
    corner = traj.is_corner
    out = ProbeFindings(probe=ts.probe, trajectories=traj)
    if (~corner).sum() >= 2:
        out.manifold = dimensionality.manifold_evidence(ts, runs=~corner, random_state=random_state)
        out.claims["manifold"] = claim("manifold", dimensionality.judge(out.manifold))
    else:
        out.claims["manifold"] = skipped_claim("manifold", "needs at least 2 ordinary runs")
    out.architecture = factors.factor_analysis(traj.distances, configs, grid=grid, n_boot=n_boot,
                                               random_state=random_state)
    out.claims["architecture"] = claim("architecture", factors.judge(out.architecture))
    out.speed = speed.speed_analysis(traj.distances, configs, ts.progress, ts.epochs, ts.steps, grid=grid,
                                     n_boot=n_boot, random_state=random_state)
    out.claims["speed"] = claim("speed", speed.judge(out.speed))
    if corner.any() and (~corner).any():
        out.corners = corners.corner_band(ts.sqrt_p, ts.reached, ts.grid, corner, traj.configuration_of_runs(),
                                          run_labels=ts.run_labels)
        out.claims["corners"] = claim("corners", corners.judge(out.corners))
    else:
        out.claims["corners"] = skipped_claim(
            "corners", "no corner-initialised runs" if not corner.any() else "no ordinary runs to compare with")
    return out


def _describe(store, records, distances: CheckpointDistances, traj: Trajectories, *,
              random_state: int) -> dict[str, Any]:
    """The descriptions of the main probe set: stress of all checkpoints, milestones, speed by width,
    corner convergence."""
    ts = traj.runs
    out: dict[str, Any] = {"description": None, "speed_by_width": None, "corner_convergence": None}
    if len(distances.run_ids) >= 2:
        models = stacked_predictions(store, distances.probe, distances.run_ids, distances.checkpoints)
        out["description"] = dimensionality.dimensionality(distances.matrix, distances.run_index, P=models, log=True,
                                                           random_state=random_state)
    runs = [RunProgress(run_id=ts.run_ids[i], arch=str(cfg.get("arch")),
                        width=(cfg.get("arch_options") or {}).get("width"),
                        progress=ts.progress[i], epochs=ts.epochs[i], steps=ts.steps[i])
            for i, cfg in enumerate(traj.configs)]
    out["milestones"] = {r.run_id: r.milestones(DEFAULT_LEVELS) for r in runs}
    with_width = [r for r, c in zip(runs, traj.is_corner) if r.width is not None and not c]
    if with_width:
        out["speed_by_width"] = speed_by_width(with_width, trend_level=0.5)
    corner = traj.is_corner
    if corner.any() and (~corner).any():
        out["corner_convergence"] = corners.corner_convergence(ts.sqrt_p, ts.reached, ts.grid, corner,
                                                               run_labels=ts.run_labels)
    return out


def _extra(store, distances: CheckpointDistances, other: CheckpointDistances | None, traj: Trajectories,
           pictures: dict[str, Picture], skipped: dict[str, str]) -> dict[str, Any]:
    """The reference study's other analyses (docs/method.md §8.5), each skipped with its reason when it cannot run."""
    ts, ordinary = traj.runs, ~traj.is_corner
    labels_by_run = dict(zip(ts.run_ids, ts.run_labels))
    run_labels = [labels_by_run.get(r, r) for r in distances.run_ids]
    out: dict[str, Any] = {}

    def attempt(key: str, make: Callable[[], Any]) -> None:
        try:
            out[key] = make()
        except ValueError as exc:
            skipped[key] = str(exc)

    def tangent():
        means, levels = mean_models(ts, members=ordinary)
        models = stacked_predictions(store, distances.probe, distances.run_ids, distances.checkpoints)
        picture = pictures.get(distances.probe)
        progress = (np.concatenate([r.progress for r in picture.runs])
                    if picture is not None and [r.run_id for r in picture.runs] == list(distances.run_ids) else None)
        return tangent_picture(models, ts.sample_labels, means, distances.matrix, log=True, levels=levels,
                               run_index=distances.run_index, run_ids=distances.run_ids, run_labels=run_labels,
                               progress=progress)

    attempt("tangent", tangent)
    # both need every pair of runs: a run with no progress in common with the others leaves them, named
    paired = np.flatnonzero(ts.overlapping(traj.mask))
    if paired.size < len(ts.run_ids):
        skipped["paths_left_out"] = ("left out of the trajectory InPCA and the heatmap, no progress in common "
                                     "with the other runs: " + ", ".join(
                                         ts.run_labels[i] for i in sorted(set(range(len(ts.run_ids))) - set(paired))))
    attempt("trajectory_inpca",
            lambda: trajectory_inpca(ts.take(paired), grid_mask=traj.mask, grid_name=traj.grid.name))
    attempt("geodesic_distance_by_group", lambda: geodesic_distance_by_group(ts, members=ordinary))
    attempt("trajectory_heatmap",
            lambda: trajectory_heatmap(traj.distances[np.ix_(paired, paired)], [ts.run_ids[i] for i in paired],
                                       [ts.run_labels[i] for i in paired], grid=traj.grid))
    if other is not None and list(other.run_ids) == list(distances.run_ids):
        def joint():
            n_other = store.logp(other.run_ids[0], other.probe, checkpoints=slice(0, 1)).shape[1]
            n_main = store.logp(distances.run_ids[0], distances.probe, checkpoints=slice(0, 1)).shape[1]
            labels = [store.probe(store.record(distances.run_ids[0], verify=False).probes[p]).labels
                      for p in (other.probe, distances.probe)]
            models = [stacked_predictions(store, d.probe, d.run_ids, d.checkpoints) for d in (other, distances)]
            return joint_embedding(other.matrix, distances.matrix, n_other, n_main, probes=(other.probe, distances.probe),
                                   run_index=distances.run_index, run_ids=distances.run_ids, run_labels=run_labels,
                                   models=tuple(models), labels=tuple(labels), log=True)

        attempt("joint_embedding", joint)
    return out


# ----------------------------------------------------------------------------- the whole study

def analyze_store(store, *, probe: str = "test", other_probe: str | None = "train",
                  grid_points: int = 101, n_boot: int = 1000, random_state: int = 0, pictures: bool = True,
                  train_error_limit: float = TRAIN_ERROR_LIMIT, progress_method: str = "angle",
                  on_step: Callable[[str], None] | None = None) -> Findings:
    """Run every analysis of the study on a store and judge each claim on both probe sets.

    Parameters
    ----------
    store : deepmanifold.store.Store
    probe : str, default "test"
        Probe set the claims are judged on first (and the report's main picture).
    other_probe : str or None, default "train"
        Second probe set: every claim judged again on it, and the train/test agreement.
    grid_points : int, default 101
        Points of the progress grid on [0, 1] the trajectories are resampled on.
    n_boot : int
        Bootstrap draws of the factor-effect and speed intervals.
    random_state : int
        Seed of every random draw (nulls, bootstraps, permutations, splits).
    pictures : bool, default True
        Also build the InPCA picture of each probe set from the checkpoint distance
        matrices (:attr:`Findings.pictures`, for the report).
    train_error_limit : float, default 0.10
        Runs whose final train-probe error exceeds it are reported apart and left out of
        the claims (the reference study's filter; 1 keeps every run).
    progress_method : {"angle", "bhattacharyya"}, default "angle"
        The definition of progress every analysis uses (docs/method.md §3.3): the reference
        study's summed Bhattacharyya angle, or the intensive Bhattacharyya distance, which
        weighs confident errors more and places confident, partly wrong models further from
        truth.
    on_step : callable(str), optional
        Called with the name of each analysis as it starts (progress display).

    Returns
    -------
    Findings

    Raises
    ------
    ValueError
        No usable run on ``probe``, or runs recorded on different probe sets.
    """
    started = time.perf_counter()
    progress_method = geometry.check_progress_method(progress_method)
    step = on_step or (lambda name: None)
    step("reading runs")
    records, excluded = usable_runs(store, probe)
    if not records:
        raise ValueError(f"no usable run in {store.root} on probe {probe!r}")
    outliers = train_error_outliers(store, records, threshold=train_error_limit)
    judged = [r.run_id for r in records if r.run_id not in set(outliers.outlier_ids)]
    if len(judged) < 2:
        return _too_few(store, records, excluded, outliers, probe, other_probe, pictures, step, started,
                        progress_method)
    has_other = bool(other_probe) and all(other_probe in r.probes for r in records)
    skipped: dict[str, str] = {}
    if not has_other:
        skipped["other_probe"] = f"not every run has predictions on probe {other_probe!r}"

    step("checkpoint distances")
    distances = checkpoint_distances(store, probe, records)
    other_distances = checkpoint_distances(store, other_probe, records) if has_other else None
    grid = np.linspace(0.0, 1.0, grid_points)
    step(f"trajectories ({probe})")
    traj = measure_trajectories(store, judged, probe, grid, progress_method=progress_method)
    step(f"claims ({probe})")
    main = judge_probe(traj, n_boot=n_boot, random_state=random_state)
    other = train_test = None
    if has_other:
        step(f"trajectories and claims ({other_probe})")
        other = judge_probe(measure_trajectories(store, judged, other_probe, grid, progress_method=progress_method),
                            n_boot=n_boot,
                            random_state=random_state)
        step("train vs test")
        try:
            train_test, judged_tt = _train_test(other.trajectories.runs, traj.runs, traj.mask, random_state)
            main.claims["train_test"] = claim("train_test", judged_tt)
        except ValueError as exc:
            main.claims["train_test"] = skipped_claim("train_test", str(exc))
        other.claims["train_test"] = main.claims["train_test"]
    else:
        main.claims["train_test"] = skipped_claim("train_test", skipped["other_probe"])

    step("descriptions")
    described = _describe(store, records, distances, traj, random_state=random_state)
    averaging = None
    if len(judged) >= 2:
        step("averaging")
        averaging = _averaging(store, traj, probe, n_boot=min(n_boot, 200), random_state=random_state)
    else:
        skipped["averaging"] = "needs at least 2 runs"
    figures: dict[str, Picture] = {}
    if pictures:
        step("pictures")
        figures = _pictures(store, {probe: distances, **({other_probe: other_distances} if has_other else {})},
                            progress_method)
    step("tangent, trajectory InPCA, joint embedding")
    extra = _extra(store, distances, other_distances, traj, figures, skipped)
    step("layers")
    # Every usable run, outliers too: the layers' summaries describe runs, they judge no claim of the picture.
    layer_summary = layer_findings(store, [r.run_id for r in records],
                                   _progress_by_checkpoint(store, records, probe, progress_method))
    analyses = Analyses(excluded=excluded, outliers=outliers, main=main, other=other, train_test=train_test,
                        averaging=averaging, extra=extra, layers=layer_summary, **described)
    skipped.update(traj.skipped)
    findings = Findings(store=str(store.root), probe=probe, other_probe=other_probe if has_other else None,
                        n_runs=len(records), claims=[main.claims[k] for k in CLAIMS],
                        claims_other_probe=[other.claims[k] for k in CLAIMS] if other is not None else [],
                        analyses=analyses, skipped=skipped, pictures=figures, progress_method=progress_method)
    findings.wall_time = round(time.perf_counter() - started, 2)
    return findings


def _progress_by_checkpoint(store, records, probe: str, method: str) -> dict[str, np.ndarray]:
    """Each run's progress (by ``method``) on ``probe`` at every stored checkpoint, outliers included."""
    out = {}
    for rec in records:
        labels = store.probe(rec.probes[probe]).labels
        out[rec.run_id] = np.atleast_1d(geometry.progress(store.logp(rec.run_id, probe), labels, log=True,
                                                          method=method))
    return out


def _train_test(ts_train: TrajectorySet, ts_test: TrajectorySet, mask: np.ndarray, random_state: int):
    """The equal-progress train/test agreement of the runs whose trajectories share progress with
    every other's on both probes, and its judgement, which names the runs left out.

    A run can have nothing in common with the others on the grid used, e.g. a kernel machine
    that interpolates its training data sits at truth from its first checkpoint on the train
    probe; its distances to the others are undefined, and it leaves the comparison rather than
    taking the claim with it."""
    keep = ts_train.overlapping(mask) & ts_test.overlapping(mask)
    left = [ts_test.run_labels[i] for i in np.flatnonzero(~keep)]
    idx = np.flatnonzero(keep)
    result = agreement.equal_progress_agreement(ts_train.take(idx), ts_test.take(idx), grid_mask=mask,
                                                random_state=random_state)
    judged = agreement.judge(result)
    if left:
        note = f"left out, no progress in common with the other runs: {', '.join(left)}"
        judged = Judgement(judged.verdict, {**judged.numbers, "left_out": left},
                           f"{judged.reason}; {note}" if judged.reason else note)
    return result, judged


def _too_few(store, records, excluded, outliers: OutlierFilter, probe, other_probe, pictures: bool, step,
             started: float, progress_method: str) -> Findings:
    """Findings of a store with fewer than two runs to judge (the others left apart as outliers):
    every claim skipped with the reason, the pictures still drawn."""
    why = (f"fewer than 2 runs to judge: {len(outliers.outlier_ids)} of {len(records)} usable runs have a final "
           f"train error above {outliers.threshold:.0%} (outliers, reported apart)")
    figures: dict[str, Picture] = {}
    if pictures:
        step("pictures")
        has_other = bool(other_probe) and all(other_probe in r.probes for r in records)
        probes = [probe] + ([other_probe] if has_other else [])
        figures = _pictures(store, {p: checkpoint_distances(store, p, records) for p in probes}, progress_method)
    claims = [skipped_claim(key, why) for key in CLAIMS]
    empty = Trajectories(runs=None, grid=GridUsed("none", 0, None, None), mask=np.zeros(0, dtype=bool),
                         distances=np.zeros((0, 0)), non_monotone_runs=[], distance_to_geodesic=np.zeros(0),
                         configurations={})
    analyses = Analyses(excluded=excluded, outliers=outliers, main=ProbeFindings(probe=probe, trajectories=empty),
                        layers=layer_findings(store, [r.run_id for r in records],
                                              _progress_by_checkpoint(store, records, probe, progress_method)))
    findings = Findings(store=str(store.root), probe=probe, other_probe=None, n_runs=len(records), claims=claims,
                        claims_other_probe=[], analyses=analyses, skipped={"claims": why}, pictures=figures,
                        progress_method=progress_method)
    findings.wall_time = round(time.perf_counter() - started, 2)
    return findings


def _averaging(store, traj: Trajectories, probe: str, *, n_boot: int, random_state: int) -> FinalModelAverages:
    """Averages of the final models of the judged runs (docs/method.md §5.7), pooled over the
    ordinary ones and per configuration."""
    ts = traj.runs
    finals = np.stack([np.exp(np.asarray(store.logp(r, probe)[-1], dtype=np.float64)) for r in ts.run_ids])
    finals /= finals.sum(axis=-1, keepdims=True)
    return average_final_models(finals, ts.sample_labels, groups=traj.configuration_of_runs(),
                                progress_method=ts.progress_method,
                                ordinary=~traj.is_corner, n_boot=n_boot, random_state=random_state)


# ----------------------------------------------------------------------------- helpers

def _pictures(store, distances: dict[str, CheckpointDistances], progress_method: str) -> dict[str, Picture]:
    """The InPCA picture of each probe set from its distance matrix.

    A picture whose probe set has other usable runs than the claims' (e.g. runs with
    train but no test predictions) computes its own matrix; a probe set that cannot be
    pictured is reported by a warning.
    """
    pictures = {}
    for probe, dist in distances.items():
        try:
            runs, _ = usable_runs(store, probe)
            same = [r.run_id for r in runs] == list(dist.run_ids)
            pictures[probe] = build_picture(store, probe, distances=dist if same else None,
                                            progress_method=progress_method)
        except ValueError as exc:
            warnings.warn(f"no {probe}-probe picture: {exc}", stacklevel=3)
    return pictures


def _config_groups(configs: list[dict]) -> dict[str, list[int]]:
    """Runs grouped by configuration (everything but the seed and bookkeeping), by display name."""
    skip = set(IGNORED_KEYS) | {"seed"}  # the same bookkeeping keys the factor analysis ignores
    groups: dict[str, list[int]] = {}
    for i, cfg in enumerate(configs):
        key = json.dumps({k: v for k, v in cfg.items() if k not in skip}, sort_keys=True, default=str)
        groups.setdefault(key, []).append(i)
    named = {}
    for key, members in groups.items():
        cfg = configs[members[0]]
        name = str(cfg.get("label", "")).rsplit(" / seed", 1)[0] or key
        while name in named:
            name += "'"
        named[name] = members
    return named
