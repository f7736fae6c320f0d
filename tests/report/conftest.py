"""Synthetic pictures for the report tests (no training, no geometry code)."""

from __future__ import annotations

import numpy as np
import pytest

from deepmanifold.analysis.picture import Picture, RunTrace

GROUPS = ("cnn", "mlp", "resnet")


def _curve(t: np.ndarray, k: int, bend: float) -> np.ndarray:
    """Points of a smooth curve from ignorance (t=0) to truth (t=1) in k coordinates."""
    cols = [2.0 * t - 1.0, bend * np.sin(np.pi * t), 0.3 * bend * np.sin(2 * np.pi * t)]
    cols += [0.05 * np.cos((j + 1) * np.pi * t) for j in range(max(0, k - 3))]
    return np.stack(cols[:k], axis=1)


def make_picture(*, probe: str = "test", k: int = 4, eigenvalues=None, n_runs: int = 6,
                 n_checkpoints: int = 12, excluded=(), notes=(), seed: int = 0) -> Picture:
    """A picture whose runs lie on architecture-specific curves.

    Parameters
    ----------
    probe : str
        Probe name.
    k : int
        Number of InPCA components (ignored when `eigenvalues` is given).
    eigenvalues : sequence of float, optional
        Signed eigenvalues, sorted by |lambda| descending. Default: the second
        one negative (a time-like axis).
    n_runs, n_checkpoints : int
        Runs (cycling over ``GROUPS``) and checkpoints per run.
    excluded, notes : sequence
        Passed to the picture.
    seed : int
        Seed of the small jitter added to each run.
    """
    if eigenvalues is None:
        eigenvalues = [3.0, -1.2, 0.6, 0.2, -0.05][:k]
    eig = np.asarray(eigenvalues, dtype=float)
    k = eig.size
    rng = np.random.default_rng(seed)
    runs = []
    for r in range(n_runs):
        group = GROUPS[r % len(GROUPS)]
        speed = 0.5 + 0.4 * r
        steps = np.unique(np.geomspace(1, 2000, n_checkpoints - 1).astype(int))
        steps = np.concatenate([[0], steps])
        epochs = steps / 100.0
        progress = 1.0 - np.exp(-speed * epochs / 5.0)
        coords = _curve(progress, k, bend=0.4 + 0.3 * GROUPS.index(group))
        coords = coords + 0.01 * rng.standard_normal(coords.shape)
        acc = 0.1 + 0.85 * progress
        runs.append(RunTrace(
            run_id=f"run-{r:03d}", run_label=f"{group} / adam / seed {r}", group=group,
            config={"arch": group, "seed": r}, steps=steps, epochs=epochs, coords=coords,
            progress=progress, metrics={"train_loss": 2.3 * (1 - progress), "train_acc": acc,
                                        "test_loss": 2.3 * (1 - 0.9 * progress),
                                        "test_acc": 0.95 * acc}))
    total = float(np.sum(eig**2)) * 1.25
    fraction = np.cumsum(eig**2) / total
    t = np.linspace(0.0, 1.0, 21)
    geodesic = _curve(t, k, bend=0.2)
    return Picture(
        probe=probe, n_samples=500, n_classes=10, runs=runs, eigenvalues=eig,
        explained_stress=1.0 - np.sqrt(1.0 - fraction), explained_fraction=fraction,
        ignorance=geodesic[0], truth=geodesic[-1], geodesic=geodesic, geodesic_t=t,
        excluded=list(excluded), notes=list(notes))


@pytest.fixture(name="make_picture", scope="session")
def _make_picture_fixture():
    """The `make_picture` helper (tests take it as a fixture: test folders are no packages)."""
    return make_picture


RUN_IDS = [f"run-{r:03d}" for r in range(6)]  # the runs of make_picture()
RUN_LABELS = [f"{GROUPS[r % 3]} / adam / seed {r}" for r in range(6)]


def path_analyses() -> dict:
    """The path analyses' ``to_dict()`` entries, for the runs of ``make_picture()``, from
    results filled with round numbers by hand (no geometry), so figures can be checked
    against them."""
    from deepmanifold.analysis.paths import (GeodesicDistanceByGroup, GridUsed, GroupCurve, JointEmbedding,
                                             TrajectoryHeatmap, TrajectoryInPCA)
    from deepmanifold.analysis.tangent import TangentPicture

    grid = GridUsed("all", 11, 0.0, 1.0)
    run_index = np.repeat(np.arange(6), 3)
    coords = np.column_stack([np.tile([0.0, 0.5, 1.0], 6), 0.1 * run_index, -0.05 * run_index])
    refs = np.array([[0.0, 0.0, 0.0], [0.3, 0.02, 0.0], [0.7, 0.02, 0.0], [1.0, 0.0, 0.0]])
    t = np.linspace(0.0, 1.0, 5)
    tangent = TangentPicture(
        levels=np.array([0.3, 0.7]), reference_names=["ignorance", "mean at progress 0.3",
                                                      "mean at progress 0.7", "truth"],
        reference_coords=refs, eigenvalues=np.array([0.5, -0.03, 0.002]), signature=np.array([1, -1, 1]),
        coords=coords, geodesic_t=t, geodesic_coords=np.column_stack([t, 0 * t, 0 * t]), score=0.8,
        full_score=0.99, relative_score=0.8 / 0.99, run_index=run_index, run_ids=RUN_IDS, run_labels=RUN_LABELS,
        progress=np.tile([0.0, 0.5, 1.0], 6))
    D = np.abs(np.subtract.outer(np.arange(6) % 3, np.arange(6) % 3)) * 0.1
    order = np.array([0, 3, 1, 4, 2, 5])
    runs_inpca = TrajectoryInPCA(
        run_ids=RUN_IDS, run_labels=RUN_LABELS, coords=np.column_stack([np.arange(6) % 3, np.arange(6) / 10]),
        geodesic_coords=np.array([-1.0, 0.0]), distance_to_geodesic=0.05 * (1 + np.arange(6)),
        matrix=np.zeros((7, 7)), eigenvalues=np.array([0.2, -0.01]), signature=np.array([1, -1]),
        explained_stress=np.array([0.9, 0.95]), grid=grid)
    g = np.linspace(0.0, 1.0, 11)
    by_group = GeodesicDistanceByGroup(grid=g, groups={
        "arch": [GroupCurve(a, [RUN_IDS[r] for r in range(a_i, 6, 3)], mean=0.1 * (a_i + 1) * np.sin(np.pi * g),
                            sd=np.full(11, 0.01), n=np.full(11, 2)) for a_i, a in enumerate(GROUPS)],
        "optimizer": [GroupCurve("adam", RUN_IDS, mean=0.2 * np.sin(np.pi * g), sd=np.where(g < 0.5, 0.02, np.nan),
                                 n=np.full(11, 6))]})
    joint = JointEmbedding(
        probes=["train", "test"], n_samples=[500, 2000], coords=coords[:, :2], eigenvalues=np.array([0.4, 0.02]),
        signature=np.array([1, 1]), explained_stress=np.array([0.9, 0.93]), run_index=run_index, run_ids=RUN_IDS,
        run_labels=RUN_LABELS, geodesic_t=t, geodesic_coords=np.column_stack([t, 0 * t]))
    heatmap = TrajectoryHeatmap(run_ids=[RUN_IDS[i] for i in order], run_labels=[RUN_LABELS[i] for i in order],
                                matrix=D[np.ix_(order, order)], order=order, grid=grid)
    return {"tangent": tangent.to_dict(), "trajectory_inpca": runs_inpca.to_dict(),
            "geodesic_distance_by_group": by_group.to_dict(), "joint_embedding": joint.to_dict(),
            "trajectory_heatmap": heatmap.to_dict()}


def make_findings(*, measured_effects: bool = True, paths: bool = True, other_probe: bool = True) -> dict:
    """A ``Findings.to_dict()``-shaped dict: every claim with its real rule text, and analyses.

    With ``measured_effects=False`` no factor has a pair of runs differing in it only, as
    in a sweep whose factors always change together. ``paths`` adds the path analyses
    (:func:`path_analyses`); ``other_probe`` the claims judged on the train probe too.
    """
    from deepmanifold.analysis.claims import CLAIMS, RULES
    from deepmanifold.analysis.trajectories import config_dendrogram

    verdicts = ("inconclusive", "not supported", "skipped", "supported", "supported")
    claims = [{"key": key, "statement": statement, "verdict": verdict, "rule": RULES[key],
               "numbers": {"runs": 6, "mean": 0.1234567},
               "reason": "no architecture has two widths" if verdict == "skipped" else ""}
              for (key, statement), verdict in zip(CLAIMS.items(), verdicts)]
    if measured_effects:
        effects = [
            {"factor": "arch", "status": "measured", "reason": "6 pairs", "delta": 0.16, "low": 0.15,
             "high": 0.17},
            {"factor": "seed", "status": "measured", "reason": "6 pairs", "delta": 0.23, "low": 0.03,
             "high": 0.44},
            {"factor": "optimizer", "status": "not a factor in this sweep",
             "reason": "every run has optimizer = sgd", "delta": None, "low": None, "high": None}]
    else:
        effects = [
            {"factor": "arch", "status": "no comparable pairs",
             "reason": "no two runs differ in arch only: the closest pairs also differ in seed, "
                       "init (4 such pairs)", "delta": None, "low": None, "high": None},
            {"factor": "seed", "status": "no comparable pairs",
             "reason": "no two runs differ in seed only: the closest pairs also differ in arch "
                       "(6 such pairs)", "delta": None, "low": None, "high": None},
            {"factor": "optimizer", "status": "not a factor in this sweep",
             "reason": "every run has optimizer = sgd", "delta": None, "low": None, "high": None},
            {"factor": "lr", "status": "not a factor in this sweep",
             "reason": "every run has lr = 0.05", "mean": None, "low": None, "high": None}]
    grid = [round(0.1 * i, 1) for i in range(11)]
    leaves = ["cnn / adam / width 64", "mlp / adam / width 64", "resnet / sgd / width 128",
              "cnn / sgd", "mlp / sgd"]
    points = np.array([[0.0], [0.05], [0.4], [0.42], [0.9]])
    distances = np.abs(points - points.T)
    findings = {
        "schema_version": 2, "store": "/tmp/store", "probe": "test", "n_runs": 6, "progress_method": "angle",
        "claims": claims, "skipped": {},
        "analyses": {
            "factor_effects": {"n_runs": 6, "ranking": [e["factor"] for e in effects
                                                        if e["status"] == "measured"],
                               "effects": effects},
            "distance_to_geodesic": {"grid": grid, "mean": [0.3 - 0.02 * i for i in range(11)]},
            "tube_width": {"by_configuration": {"cnn / adam": [0.01 * i for i in range(11)]}},
            "dendrogram": config_dendrogram(distances, leaves).to_dict(),
            "averaging": {
                "individual": {"progress_mean": 0.93, "accuracy_mean": 0.98},
                **{m: {"progress": 0.94, "accuracy": 0.98, "mean_distance": 0.1}
                   for m in ("arithmetic", "geometric", "harmonic", "sqrt_arithmetic",
                             "bhattacharyya")}},
        },
    }
    if paths:
        findings["analyses"].update(path_analyses())
    if other_probe:
        findings["other_probe"] = "train"
        findings["claims_other_probe"] = [
            {**c, "verdict": "supported" if c["verdict"] == "inconclusive" else c["verdict"],
             "numbers": {"runs": 6, "mean": 0.25}} for c in claims[1:]]  # the first claim not judged there
    return findings


@pytest.fixture(name="make_findings", scope="session")
def _make_findings_fixture():
    """The `make_findings` helper."""
    return make_findings
