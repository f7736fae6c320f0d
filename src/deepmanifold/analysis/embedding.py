"""Put every checkpoint of a store in one InPCA picture.

All checkpoints of all usable runs (subsampled per run past
:data:`~deepmanifold.analysis.checkpoints.MAX_CHECKPOINT_MODELS`) are embedded together:
exact InPCA of their pairwise intensive Bhattacharyya distances. The reference models
(ignorance, truth) and points of the geodesic between them are then *placed* in that
picture by Gower out-of-sample projection rather than embedded: they are landmarks for
the reader, and must not pull the axes towards themselves.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from deepmanifold import geometry
from deepmanifold.analysis.checkpoints import (CheckpointDistances, checkpoint_distances, stacked_predictions,
                                               usable_runs)
from deepmanifold.analysis.picture import Picture, RunTrace
from deepmanifold.store import RunRecord, Store

__all__ = ["FEATURE_MEASUREMENTS", "StoreEmbedding", "build_picture", "embed_store"]

#: Measurements whose arrays a picture carries for the report's feature-learning figures.
FEATURE_MEASUREMENTS = ("nfa", "capacity", "infoplane", "collapse")

_MAX_AXES = 10  # axes kept for the explained-stress curve


def build_picture(store: Store, probe: str = "test", *, n_geodesic: int = 41,
                  distances: CheckpointDistances | None = None, progress_method: str = "angle") -> Picture:
    """Embed every checkpoint of every usable run of ``store`` with InPCA.

    Parameters
    ----------
    store : Store
    probe : str
        Probe set whose predictions are compared (``"test"`` or ``"train"``).
    n_geodesic : int
        Number of points of the ignorance-truth geodesic to place in the picture.
    distances : CheckpointDistances, optional
        The distance matrix of the usable runs' checkpoints on ``probe``, when the
        caller already has it (:func:`~deepmanifold.analysis.checkpoints.checkpoint_distances`,
        as :func:`~deepmanifold.analysis.analyze_store` computes it); computed otherwise.
    progress_method : {"angle", "bhattacharyya"}, default "angle"
        The definition of the checkpoints' progress (docs/method.md §3.3).

    Returns
    -------
    Picture
        Coordinates on up to 10 InPCA axes, with signed eigenvalues, explained
        stress, progress of every checkpoint, and the projected reference points.

    Raises
    ------
    ValueError
        If no run can be embedded, runs were recorded on different probe sets, or
        ``distances`` were computed on another probe set or other runs.
    """
    return embed_store(store, probe, n_geodesic=n_geodesic, distances=distances,
                       progress_method=progress_method).picture


@dataclass(frozen=True)
class StoreEmbedding:
    """A store's picture with what places new models in it (:func:`embed_store`).

    Attributes
    ----------
    picture : Picture
    embedding : InPCAResult
        Its ``transform`` places a model from its distances to the embedded checkpoints.
    models : ModelStack, shape (T, n, C)
        The embedded checkpoints' log-probabilities, in the embedding's order.
    labels : ndarray, shape (n,)
        The probe set's labels.
    fingerprint : str
        The probe set's fingerprint.
    progress_method : str
    """

    picture: Picture
    embedding: geometry.InPCAResult
    models: object
    labels: np.ndarray
    fingerprint: str
    progress_method: str


def embed_store(store: Store, probe: str = "test", *, n_geodesic: int = 41,
                distances: CheckpointDistances | None = None, progress_method: str = "angle") -> StoreEmbedding:
    """:func:`build_picture`, keeping the embedding and the embedded models to place new ones with."""
    progress_method = geometry.check_progress_method(progress_method)
    runs, excluded = usable_runs(store, probe)
    pruned = [run_label for run_label, why in excluded if why.startswith("pruned")]
    for run_label, why in excluded:
        if not why.startswith("pruned"):
            warnings.warn(f"left out of the picture: {run_label} ({why})", stacklevel=3)
    if pruned:  # a pruned sweep stops most of its runs: one line for them, not one each
        warnings.warn(f"left out of the picture: {len(pruned)} run(s) stopped early by the sweep's pruning "
                      f"({', '.join(pruned[:3])}{', …' if len(pruned) > 3 else ''})", stacklevel=3)
    if not runs:
        raise ValueError(f"no complete run with predictions on probe set {probe!r} in {store.root}")
    if distances is None:
        distances = checkpoint_distances(store, probe, runs)
    else:
        _check_distances(distances, probe, runs)

    fingerprint = runs[0].probes[probe]
    sample_labels = store.probe(fingerprint).labels
    models = stacked_predictions(store, probe, distances.run_ids, distances.checkpoints)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        emb = geometry.inpca(distances.matrix, n_components=min(_MAX_AXES, len(distances.matrix)))
        t, ref_coords = _geodesic_in(emb, models, sample_labels, n_geodesic)
        progress = [_progress(store, rec.run_id, probe, keep, sample_labels, progress_method)
                    for rec, keep in zip(runs, distances.checkpoints)]
    notes = sorted(set(distances.notes) | {str(w.message) for w in caught})

    offsets = np.cumsum([0] + [len(k) for k in distances.checkpoints])
    traces = [_trace(store, rec, keep, emb.coords[lo:hi], lam)
              for rec, keep, lo, hi, lam in zip(runs, distances.checkpoints, offsets[:-1], offsets[1:], progress)]
    picture = Picture(
        probe=probe,
        n_samples=models.shape[1],
        n_classes=models.shape[2],
        runs=traces,
        eigenvalues=emb.eigenvalues,
        explained_stress=emb.explained_stress,
        explained_fraction=emb.explained_fraction,
        ignorance=ref_coords[0],
        truth=ref_coords[-1],
        geodesic=ref_coords,
        geodesic_t=t,
        excluded=excluded,
        notes=notes,
    )
    return StoreEmbedding(picture=picture, embedding=emb, models=models, labels=np.asarray(sample_labels),
                          fingerprint=fingerprint, progress_method=progress_method)


def _check_distances(distances: CheckpointDistances, probe: str, runs: list[RunRecord]) -> None:
    """Raise ``ValueError`` unless ``distances`` are those of ``runs`` on ``probe``."""
    run_ids = [r.run_id for r in runs]
    if distances.probe != probe or list(distances.run_ids) != run_ids:
        raise ValueError(f"distances were computed on probe {distances.probe!r} for runs {list(distances.run_ids)}, "
                         f"but the {probe!r} picture shows runs {run_ids}")
    T = sum(len(k) for k in distances.checkpoints)
    if np.shape(distances.matrix) != (T, T):
        raise ValueError(f"distances.matrix has shape {np.shape(distances.matrix)}, expected ({T}, {T}) "
                         "for the selected checkpoints")
    for rec, keep in zip(runs, distances.checkpoints):
        if len(keep) and (np.min(keep) < 0 or np.max(keep) >= rec.n_checkpoints):
            raise ValueError(f"distances select checkpoints outside run {rec.run_id!r} "
                             f"({rec.n_checkpoints} checkpoints)")


def _geodesic_in(emb: geometry.InPCAResult, models, sample_labels, n_geodesic: int):
    """Geodesic parameters ``(G,)`` and the Gower-projected coordinates ``(G, k)`` of its points.

    ``t = 0`` is ignorance, ``t = 1`` truth.
    """
    t = np.linspace(0.0, 1.0, n_geodesic)
    refs = geometry.geodesic(sample_labels, models.shape[2], t)
    with np.errstate(divide="ignore"):
        ref_logp = np.log(refs)
    return t, emb.transform(geometry.pairwise_distances(ref_logp, models, log=True))


def _progress(store: Store, run_id: str, probe: str, keep: np.ndarray, sample_labels, method: str) -> np.ndarray:
    """Progress of the kept checkpoints of one run (read one run at a time)."""
    logp = store.logp(run_id, probe)
    if not np.array_equal(keep, np.arange(len(logp))):
        logp = logp[keep]
    return np.atleast_1d(geometry.progress(logp, sample_labels, log=True, method=method))


def _trace(store: Store, rec: RunRecord, keep: np.ndarray, coords: np.ndarray, progress: np.ndarray) -> RunTrace:
    """One run of the picture, its per-checkpoint columns restricted to the kept checkpoints."""
    m = store.metrics(rec.run_id)
    return RunTrace(
        run_id=rec.run_id,
        run_label=rec.config.get("label", rec.run_id),
        group=str(rec.config.get("arch_alias", rec.config.get("arch", "run"))),
        config=rec.config,
        steps=m["step"][keep],
        epochs=m["epoch"][keep],
        coords=coords,
        progress=progress,
        metrics={key: val[keep] for key, val in m.items() if key not in ("step", "epoch")},
        features={name: np.array(store.array(rec.run_id, name)[keep])
                  for name, measurement in rec.arrays.items() if measurement in FEATURE_MEASUREMENTS},
    )
