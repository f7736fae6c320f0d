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


def make_findings(*, measured_effects: bool = True) -> dict:
    """A ``Findings.to_dict()``-shaped dict: every claim with its real rule text, and analyses.

    With ``measured_effects=False`` no factor has a pair of runs differing in it only, as
    in a sweep whose factors always change together.
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
            {"factor": "arch", "status": "measured", "reason": "6 pairs", "mean": 0.16, "low": 0.15,
             "high": 0.17},
            {"factor": "seed", "status": "measured", "reason": "6 pairs", "mean": 0.23, "low": 0.03,
             "high": 0.44},
            {"factor": "optimizer", "status": "not a factor in this sweep",
             "reason": "every run has optimizer = sgd", "mean": None, "low": None, "high": None}]
    else:
        effects = [
            {"factor": "arch", "status": "no comparable pairs",
             "reason": "no two runs differ in arch only: the closest pairs also differ in seed, "
                       "init (4 such pairs)", "mean": None, "low": None, "high": None},
            {"factor": "seed", "status": "no comparable pairs",
             "reason": "no two runs differ in seed only: the closest pairs also differ in arch "
                       "(6 such pairs)", "mean": None, "low": None, "high": None},
            {"factor": "optimizer", "status": "not a factor in this sweep",
             "reason": "every run has optimizer = sgd", "mean": None, "low": None, "high": None},
            {"factor": "lr", "status": "not a factor in this sweep",
             "reason": "every run has lr = 0.05", "mean": None, "low": None, "high": None}]
    grid = [round(0.1 * i, 1) for i in range(11)]
    leaves = ["cnn / adam / width 64", "mlp / adam / width 64", "resnet / sgd / width 128",
              "cnn / sgd", "mlp / sgd"]
    points = np.array([[0.0], [0.05], [0.4], [0.42], [0.9]])
    distances = np.abs(points - points.T)
    return {
        "schema_version": 1, "store": "/tmp/store", "probe": "test", "n_runs": 6,
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


@pytest.fixture(name="make_findings", scope="session")
def _make_findings_fixture():
    """The `make_findings` helper."""
    return make_findings
