"""The study's claims (docs/method.md §6) measured on a store and judged: ``deepmanifold analyze``.

:func:`analyze_store` reads the usable runs once, computes the distance matrix of
their checkpoints on each probe set once, and then, one claim at a time, *measures*
(a ``measure_*`` function here, returning a typed result) and *judges* (a pure
``judge_*`` function of that result, in :mod:`deepmanifold.analysis.claims`, whose
rule texts are :data:`~deepmanifold.analysis.claims.RULES`):

==============  ===========================  =========================================
claim           measured by                  on
==============  ===========================  =========================================
manifold        :func:`measure_manifold`     all checkpoints' distance matrix
architecture    :func:`measure_architecture` trajectories at equal progress
speed           :func:`measure_speed`        trajectories at equal progress
corners         :func:`measure_corners`      trajectories at equal progress
train_test      :func:`measure_train_test`   the train and test distance matrices
==============  ===========================  =========================================

:func:`measure_trajectories` resamples the runs at equal progress for the three
claims that need it, and :func:`measure_averaging` averages the final models (a
measurement, not a claim). Everything lands in a :class:`Findings`, whose
:meth:`Findings.to_dict` is the content of ``findings.json`` (:data:`SCHEMA_VERSION`),
and whose InPCA pictures, built from the same distance matrices, go to the report.
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

from deepmanifold.analysis.agreement import TrainTestAgreement, train_test_agreement
from deepmanifold.analysis.averaging import ModelAverages, average_models
from deepmanifold.analysis.checkpoints import (CheckpointDistances, checkpoint_distances, stacked_predictions,
                                               usable_runs)
from deepmanifold.analysis.claims import (CLAIMS, SPEED_LEVEL, TRAIN_TEST_AXES, ArchitectureEvidence, Claim,
                                          SpeedEvidence, judge_architecture, judge_corners, judge_manifold,
                                          judge_speed, judge_train_test, skipped_claim)
from deepmanifold.analysis.corners import CornerConvergence, corner_convergence
from deepmanifold.analysis.dimensionality import DimensionalityReport, dimensionality
from deepmanifold.analysis.embedding import build_picture
from deepmanifold.analysis.factors import IGNORED_KEYS, factor_effects, factor_predictability
from deepmanifold.analysis.picture import Picture
from deepmanifold.analysis.speed import DEFAULT_LEVELS, RunProgress, same_path, speed_by_width
from deepmanifold.analysis.trajectories import (Dendrogram, TrajectorySet, config_dendrogram,
                                                distance_to_geodesic_by_progress, trajectory_distance_matrix,
                                                tube_width)
from deepmanifold.utils import jsonable

__all__ = ["SCHEMA_VERSION", "Analyses", "Findings", "Trajectories", "analyze_store", "measure_architecture",
           "measure_averaging", "measure_corners", "measure_manifold", "measure_speed", "measure_train_test",
           "measure_trajectories"]

#: Version of the layout of ``findings.json``; raised when a key changes meaning or moves.
SCHEMA_VERSION = 1

# Speed: the progress level ranked against width when too few runs reach the claim's level.
SPEED_FALLBACK_LEVEL = 0.5


# ----------------------------------------------------------------------------- results

@dataclass
class Trajectories:
    """The runs resampled at equal progress, and what is measured on them directly.

    Attributes
    ----------
    runs : TrajectorySet
        Every usable run on the progress grid.
    distances : ndarray, shape (R, R)
        Mean d_B at equal progress between runs (NaN: no progress in common).
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

    runs: TrajectorySet
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

    def to_dict(self) -> dict:
        """The ``analyses`` entries of ``findings.json`` that come from the trajectories
        (``trajectory_distances.run_labels`` are the runs' display names)."""
        grid = self.runs.grid
        out = {"non_monotone_runs": list(self.non_monotone_runs),
               "trajectory_distances": {"run_ids": list(self.runs.run_ids), "run_labels": list(self.runs.run_labels),
                                        "matrix": self.distances},
               "distance_to_geodesic": {"grid": grid, "mean": self.distance_to_geodesic}}
        if self.dendrogram is not None:
            out["dendrogram"] = self.dendrogram.to_dict()
        if self.tube_width:
            out["tube_width"] = {"grid": grid, "by_configuration": self.tube_width}
        return jsonable(out)


@dataclass
class Analyses:
    """Every measurement of :func:`analyze_store`; None where an analysis was skipped.

    Attributes
    ----------
    excluded : list of (str, str)
        Runs left out (diverged, damaged, without the probe set), and why.
    dimensionality : DimensionalityReport or None
        Explained stress of all checkpoints against its null (claim 1).
    trajectories : Trajectories
        Runs at equal progress (claims 2-4).
    architecture : ArchitectureEvidence
        Factor effects and architecture predictability (claim 2).
    speed : SpeedEvidence
        Milestones, speed against width and same-path distances (claim 3).
    corners : CornerConvergence or None
        The corner runs' distance to the ordinary runs along progress (claim 4).
    train_test : TrainTestAgreement or None
        Agreement of the train and test distance matrices (claim 5).
    averaging : ModelAverages or None
        Averages of the final models.
    """

    excluded: list[tuple[str, str]]
    dimensionality: DimensionalityReport | None
    trajectories: Trajectories
    architecture: ArchitectureEvidence
    speed: SpeedEvidence
    corners: CornerConvergence | None = None
    train_test: TrainTestAgreement | None = None
    averaging: ModelAverages | None = None

    def to_dict(self) -> dict:
        """The ``analyses`` object of ``findings.json``: one key per analysis that ran."""
        out: dict[str, Any] = {"excluded": [{"run": r, "why": w} for r, w in self.excluded]}
        if self.dimensionality is not None:
            out["dimensionality"] = self.dimensionality.to_dict()
        out.update(self.trajectories.to_dict())
        out["factor_effects"] = self.architecture.effects.to_dict()
        out["architecture_predictability"] = self.architecture.predictability.to_dict()
        out["milestones"] = {run_id: m.to_dict() for run_id, m in self.speed.milestones.items()}
        out["speed"] = self.speed.to_dict()
        for key, result in (("corners", self.corners), ("train_test_agreement", self.train_test),
                            ("averaging", self.averaging)):
            if result is not None:
                out[key] = result.to_dict()
        return jsonable(out)


@dataclass
class Findings:
    """Everything ``deepmanifold analyze`` measured on a store.

    Attributes
    ----------
    store : str
        Root of the store.
    probe : str
        Probe set the claims are judged on.
    n_runs : int
        Usable runs.
    claims : list of Claim
        One per claim of :data:`~deepmanifold.analysis.claims.CLAIMS`, in that order.
    analyses : Analyses
        The measurements behind the claims.
    skipped : dict of str to str
        Analyses that could not run, and why.
    wall_time : float
        Seconds :func:`analyze_store` took.
    pictures : dict of str to Picture
        InPCA picture of each probe set, built from the same distance matrices as the
        claims (for the report; not part of ``findings.json``).
    """

    store: str
    probe: str
    n_runs: int
    claims: list[Claim]
    analyses: Analyses
    skipped: dict[str, str]
    wall_time: float = 0.0
    pictures: dict[str, Picture] = field(default_factory=dict, repr=False)

    def to_dict(self) -> dict:
        """The content of ``findings.json`` (strict JSON: NaN and inf become None)."""
        return jsonable({
            "schema_version": SCHEMA_VERSION, "store": self.store, "probe": self.probe, "n_runs": self.n_runs,
            "claims": [asdict(c) for c in self.claims], "analyses": self.analyses.to_dict(),
            "skipped": self.skipped, "wall_time": self.wall_time,
        })

    def write_json(self, path: str | os.PathLike) -> Path:
        """Write ``findings.json`` atomically."""
        path = Path(path)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(self.to_dict(), indent=2, allow_nan=False))
        os.replace(tmp, path)
        return path


# ----------------------------------------------------------------------------- measuring

def measure_manifold(distances: CheckpointDistances, store, *, random_state: int = 0) -> DimensionalityReport:
    """Claim 1: explained stress of all checkpoints against the sample-permutation null.

    The null's surrogates are drawn from the stored predictions, read one run at a time.
    """
    models = stacked_predictions(store, distances.probe, distances.run_ids, distances.checkpoints)
    return dimensionality(distances.matrix, distances.run_index, P=models, log=True, random_state=random_state)


def measure_trajectories(store, records, probe: str, grid: np.ndarray) -> Trajectories:
    """Runs resampled at equal progress; their distances, distance to the geodesic, dendrogram and tubes."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ts = TrajectorySet.from_store(store, probe=probe, grid=grid, runs=[r.run_id for r in records])
    D = trajectory_distance_matrix(ts)
    geo = distance_to_geodesic_by_progress(ts, ts.sample_labels)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a grid point no run reached stays NaN
        geo_mean = np.nanmean(np.where(ts.reached, geo, np.nan), axis=0)
    out = Trajectories(runs=ts, distances=D, non_monotone_runs=[str(w.message) for w in caught],
                       distance_to_geodesic=geo_mean, configurations=_config_groups([dict(c) for c in ts.configs]))
    groups = out.configurations
    if len(groups) >= 2:
        names = list(groups)
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


def measure_architecture(traj: Trajectories, *, n_boot: int = 1000, random_state: int = 0) -> ArchitectureEvidence:
    """Claim 2: factor effects and architecture predictability on the trajectory distances.

    Architecture is the model family (the registry name): width variants of one family
    (aliases such as ``"cnn_wide"``) are the subject of the speed claim and count here
    as the factor ``arch_options.width``.
    """
    family = [{k: v for k, v in c.items() if k != "arch_alias"} for c in traj.configs]
    return ArchitectureEvidence(
        effects=factor_effects(traj.distances, family, n_boot=n_boot, random_state=random_state),
        predictability=factor_predictability(traj.distances, family, "arch"))


def measure_speed(traj: Trajectories) -> SpeedEvidence:
    """Claim 3: milestones of every run, speed against width, and same-path distances.

    Widths are ranked at the claim's progress level (``claims.SPEED_LEVEL``); when no
    architecture has runs reaching it (e.g. short runs), at :data:`SPEED_FALLBACK_LEVEL`.
    """
    ts = traj.runs
    runs = [RunProgress(run_id=ts.run_ids[i], arch=str(cfg.get("arch")),
                        width=(cfg.get("arch_options") or {}).get("width"),
                        progress=ts.progress[i], epochs=ts.epochs[i], steps=ts.steps[i])
            for i, cfg in enumerate(traj.configs)]
    with_width = [r for r in runs if r.width is not None]
    by_width = speed_by_width(with_width, trend_level=SPEED_LEVEL) if with_width else None
    if by_width is not None and not any(
            a.trend["epochs"].rho is not None for a in by_width.architectures.values()):
        by_width = speed_by_width(with_width, trend_level=SPEED_FALLBACK_LEVEL)
    return SpeedEvidence(milestones={r.run_id: r.milestones(DEFAULT_LEVELS) for r in runs}, by_width=by_width,
                         same_path=same_path(traj.distances, [r.arch for r in runs], [r.width for r in runs]))


def _corner_runs(configs: list[dict]) -> np.ndarray:
    """Boolean mask of the runs started from a corner (``init`` other than ``"default"``)."""
    return np.array([c.get("init", "default") != "default" for c in configs], dtype=bool)


def _no_corners(configs: list[dict]) -> str:
    """Why the corner claim cannot be measured on runs with these configurations ("" when it can)."""
    is_corner = _corner_runs(configs)
    if not is_corner.any():
        return "no corner-initialised runs"
    return "" if (~is_corner).any() else "no ordinary runs to compare with"


def measure_corners(traj: Trajectories) -> CornerConvergence:
    """Claim 4: each corner run's distance to the nearest ordinary run along progress.

    Raises
    ------
    ValueError
        Without corner runs, or without ordinary runs to compare them with.
    """
    why = _no_corners(traj.configs)
    if why:
        raise ValueError(why)
    is_corner = _corner_runs(traj.configs)
    ts = traj.runs
    return corner_convergence(ts.sqrt_p, ts.reached, ts.grid, is_corner, run_labels=ts.run_labels)


def measure_train_test(train: CheckpointDistances, test: CheckpointDistances, *,
                       random_state: int = 0) -> TrainTestAgreement:
    """Claim 5: Mantel test and Procrustes fit of the same checkpoints on two probe sets."""
    if list(train.run_ids) != list(test.run_ids) or train.matrix.shape != test.matrix.shape:
        raise ValueError("the two distance matrices must cover the same checkpoints of the same runs")
    return train_test_agreement(train.matrix, test.matrix, n_components=TRAIN_TEST_AXES, random_state=random_state)


def measure_averaging(store, records, probe: str) -> ModelAverages:
    """Averages of the final models of ``records`` (arithmetic, geometric, ... docs/method.md §5) on ``probe``."""
    sample_labels = np.asarray(store.probe(records[0].probes[probe]).labels)
    finals = np.stack([np.exp(np.asarray(store.logp(r.run_id, probe)[-1], dtype=np.float64)) for r in records])
    finals /= finals.sum(axis=-1, keepdims=True)
    return average_models(finals, sample_labels)


# ----------------------------------------------------------------------------- the whole study

def analyze_store(store, *, probe: str = "test", other_probe: str | None = "train",
                  grid_points: int = 101, n_boot: int = 1000, random_state: int = 0, pictures: bool = True,
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
    random_state : int
        Seed of every random draw (null surrogates, bootstrap, permutations).
    pictures : bool, default True
        Also build the InPCA picture of each probe set from the distance matrices the
        claims used (:attr:`Findings.pictures`, for the report).
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
    step = on_step or (lambda name: None)
    step("reading runs")
    records, excluded = usable_runs(store, probe)
    if not records:
        raise ValueError(f"no usable run in {store.root} on probe {probe!r}")
    claims: dict[str, Claim] = {}

    step("checkpoint distances")
    distances = checkpoint_distances(store, probe, records)
    step("dimensionality")
    dim, claims["manifold"] = _manifold(store, distances, random_state=random_state)

    step("trajectories")
    traj = measure_trajectories(store, records, probe, np.linspace(0.0, 1.0, grid_points))
    step("factor effects")
    architecture = measure_architecture(traj, n_boot=n_boot, random_state=random_state)
    claims["architecture"] = judge_architecture(architecture)
    step("speed")
    speed = measure_speed(traj)
    claims["speed"] = judge_speed(speed)
    step("corners")
    corners, claims["corners"] = _corners(traj)

    step("train vs test")
    other, train_test, claims["train_test"] = _train_test(store, records, distances, other_probe,
                                                          random_state=random_state)
    step("averaging")
    averaging = None
    if len(records) >= 2:
        averaging = measure_averaging(store, records, probe)

    analyses = Analyses(excluded=excluded, dimensionality=dim, trajectories=traj, architecture=architecture,
                        speed=speed, corners=corners, train_test=train_test, averaging=averaging)
    findings = Findings(store=str(store.root), probe=probe, n_runs=len(records),
                        claims=[claims[k] for k in CLAIMS], analyses=analyses, skipped=_skipped(analyses, claims))
    if pictures:
        step("pictures")
        by_probe = {probe: distances, **({other_probe: other} if other is not None else {})}
        findings.pictures = _pictures(store, by_probe)
    findings.wall_time = round(time.perf_counter() - started, 2)
    return findings


def _manifold(store, distances: CheckpointDistances, *,
              random_state: int) -> tuple[DimensionalityReport | None, Claim]:
    """Claim 1 measured and judged, or skipped with fewer than two runs."""
    if len(distances.run_ids) < 2:
        return None, skipped_claim("manifold", "needs at least 2 runs")
    dim = measure_manifold(distances, store, random_state=random_state)
    return dim, judge_manifold(dim)


def _corners(traj: Trajectories) -> tuple[CornerConvergence | None, Claim]:
    """Claim 4 measured and judged, or skipped without corner (or ordinary) runs."""
    why = _no_corners(traj.configs)
    if why:
        return None, skipped_claim("corners", why)
    corners = measure_corners(traj)
    return corners, judge_corners(corners)


def _train_test(store, records, distances: CheckpointDistances, other_probe: str | None, *, random_state: int):
    """Claim 5: ``(other probe's distances, agreement, claim)``; skipped unless every run has ``other_probe``."""
    if not (other_probe and all(other_probe in r.probes for r in records)):
        return None, None, skipped_claim("train_test", f"not every run has predictions on probe {other_probe!r}")
    other = checkpoint_distances(store, other_probe, records)
    agreement = measure_train_test(other, distances, random_state=random_state)
    return other, agreement, judge_train_test(agreement)


def _skipped(analyses: Analyses, claims: dict[str, Claim]) -> dict[str, str]:
    """Each analysis that did not run, and why."""
    skipped = {}
    if analyses.dimensionality is None:
        skipped["dimensionality"] = claims["manifold"].reason
    skipped.update(analyses.trajectories.skipped)
    if analyses.corners is None:
        skipped["corners"] = claims["corners"].reason
    if analyses.train_test is None:
        skipped["train_test_agreement"] = claims["train_test"].reason
    if analyses.averaging is None:
        skipped["averaging"] = "needs at least 2 runs"
    return skipped


# ----------------------------------------------------------------------------- helpers

def _pictures(store, distances: dict[str, CheckpointDistances]) -> dict[str, Picture]:
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
            pictures[probe] = build_picture(store, probe, distances=dist if same else None)
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
