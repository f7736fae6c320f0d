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
