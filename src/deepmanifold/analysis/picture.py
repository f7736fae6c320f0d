"""The InPCA picture of a store: every checkpoint of every run in one embedding.

This module holds only the *result* types that `deepmanifold.report` reads; the
computation that fills them lives in :mod:`deepmanifold.analysis.embedding`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class RunTrace:
    """One training run as seen in the picture.

    Attributes
    ----------
    run_id : str
        Identifier of the run in the store.
    run_label : str
        Display name of the run, e.g. ``"cnn / adam / seed 1"``.
    group : str
        Colour key in the report (the architecture).
    config : dict
        The run's resolved configuration.
    steps : ndarray, shape (K,)
        Optimiser step of each checkpoint (0 first).
    epochs : ndarray, shape (K,)
        Epoch of each checkpoint (fractional).
    coords : ndarray, shape (K, k)
        InPCA coordinates of each checkpoint.
    progress : ndarray, shape (K,)
        Progress lambda in [0, 1] along the ignorance-truth geodesic (docs/method.md §3).
    metrics : dict of str to ndarray, each shape (K,)
        ``train_loss``, ``train_acc``, ``test_loss``, ``test_acc`` on the probe sets.
    features : dict of str to ndarray, each shape (K, ...)
        The run's feature-learning arrays (those of the ``"nfa"`` measurement,
        :mod:`deepmanifold.features.measurement`), when it recorded them; empty otherwise.
    """

    run_id: str
    run_label: str
    group: str
    config: dict
    steps: np.ndarray
    epochs: np.ndarray
    coords: np.ndarray
    progress: np.ndarray
    metrics: dict[str, np.ndarray]
    features: dict[str, np.ndarray] = field(default_factory=dict)


@dataclass
class Picture:
    """Every checkpoint of a store embedded with InPCA on one probe set.

    Attributes
    ----------
    probe : str
        Probe set the predictions were evaluated on (``"train"`` or ``"test"``).
    n_samples, n_classes : int
        Shape of each model's prediction array ``(n, C)``.
    runs : list of RunTrace
        Runs in store order; each holds the checkpoints that were embedded (all of
        them, or an even subsample per run in very large stores).
    eigenvalues : ndarray, shape (k,)
        Signed eigenvalues of the centred matrix W, sorted by ``|lambda|`` descending.
        A negative eigenvalue marks a time-like axis.
    explained_stress : ndarray, shape (k,)
        Cumulative explained stress ``1 - sqrt(1 - sum_{l<=k} lambda_l^2 / ||W||_F^2)``.
    explained_fraction : ndarray, shape (k,)
        Cumulative plain fraction ``sum_{l<=k} lambda_l^2 / ||W||_F^2``.
    ignorance, truth : ndarray, shape (k,)
        Coordinates of the reference models P0 and P*, placed by Gower projection.
    geodesic : ndarray, shape (G, k)
        Coordinates of points of the ignorance-truth geodesic, Gower-projected.
    geodesic_t : ndarray, shape (G,)
        Geodesic parameter of each of those points.
    excluded : list of (str, str)
        Runs left out of the picture, with the reason (e.g. diverged).
    notes : list of str
        Anything the reader should know (clamped samples, ...).
    """

    probe: str
    n_samples: int
    n_classes: int
    runs: list[RunTrace]
    eigenvalues: np.ndarray
    explained_stress: np.ndarray
    explained_fraction: np.ndarray
    ignorance: np.ndarray
    truth: np.ndarray
    geodesic: np.ndarray
    geodesic_t: np.ndarray
    excluded: list[tuple[str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
