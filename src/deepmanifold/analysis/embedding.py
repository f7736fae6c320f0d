"""Put every checkpoint of a store in one InPCA picture.

All checkpoints of all usable runs are embedded together (exact InPCA of their
pairwise intensive Bhattacharyya distances).  The reference models (ignorance,
truth) and points of the geodesic between them are then *placed* in that
picture by Gower out-of-sample projection rather than embedded: they are
landmarks for the reader, and must not pull the axes towards themselves.
"""

from __future__ import annotations

import warnings
from collections import Counter

import numpy as np

from deepmanifold import geometry
from deepmanifold.analysis.picture import Picture, RunTrace
from deepmanifold.store import RunRecord, Store

__all__ = ["build_picture", "usable_runs"]

_MAX_AXES = 10  # axes kept for the explained-stress curve


def usable_runs(store: Store, probe: str) -> tuple[list[RunRecord], list[tuple[str, str]]]:
    """Runs that can share one picture on ``probe``, and the ones left out with why.

    Diverged runs, damaged runs and runs without that probe set are left out.
    All remaining runs must share one probe set (same samples in the same order);
    otherwise the comparison is meaningless and a ``ValueError`` names the runs.
    """
    records, damaged = store.records(on_error="skip")
    excluded = [(run_id, f"damaged: {why}") for run_id, why in damaged]
    keep = []
    for rec in records:
        label = rec.config.get("label", rec.run_id)
        if rec.status != "complete":
            excluded.append((label, f"{rec.status}: {rec.message}".rstrip(": ")))
        elif probe not in rec.probes:
            excluded.append((label, f"no predictions on probe set {probe!r}"))
        elif rec.n_checkpoints < 1:
            excluded.append((label, "no checkpoints recorded"))
        else:
            keep.append(rec)
    fingerprints = Counter(rec.probes[probe] for rec in keep)
    if len(fingerprints) > 1:
        detail = "; ".join(
            f"{fp[:12]}: " + ", ".join(r.run_id for r in keep if r.probes[probe] == fp)
            for fp in fingerprints
        )
        raise ValueError(
            f"runs in {store.root} were recorded on {len(fingerprints)} different {probe!r} probe sets "
            f"and cannot share one picture ({detail})"
        )
    return keep, excluded


def build_picture(store: Store, probe: str = "test", *, n_geodesic: int = 41) -> Picture:
    """Embed every checkpoint of every usable run of ``store`` with InPCA.

    Parameters
    ----------
    store : Store
    probe : str
        Probe set whose predictions are compared (``"test"`` or ``"train"``).
    n_geodesic : int
        Number of points of the ignorance-truth geodesic to place in the picture.

    Returns
    -------
    Picture
        Coordinates on up to 10 InPCA axes, with signed eigenvalues, explained
        stress, progress of every checkpoint, and the projected reference points.

    Raises
    ------
    ValueError
        If no run can be embedded, or runs were recorded on different probe sets.
    """
    runs, excluded = usable_runs(store, probe)
    for label, why in excluded:
        warnings.warn(f"left out of the picture: {label} ({why})", stacklevel=2)
    if not runs:
        raise ValueError(f"no complete run with predictions on probe set {probe!r} in {store.root}")

    stored_probe = store.probe(runs[0].probes[probe])
    labels = stored_probe.labels
    logps = [store.logp(rec.run_id, probe) for rec in runs]
    counts = [len(lp) for lp in logps]
    # float64: float32 kernels lose ~1e-4 relative accuracy on close checkpoint pairs (d_B ~ 1e-5).
    X = np.concatenate(logps, axis=0).astype(np.float64)  # (T, n, C)
    n_classes = X.shape[2]
    notes = []

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        D = geometry.pairwise_distances(X, log=True)
        k = min(_MAX_AXES, len(D))
        emb = geometry.inpca(D, n_components=k)

        t = np.linspace(0.0, 1.0, n_geodesic)
        refs = geometry.geodesic(labels, n_classes, t)  # t=0 is ignorance, t=1 truth
        with np.errstate(divide="ignore"):
            ref_logp = np.log(refs)
        ref_coords = emb.transform(geometry.pairwise_distances(ref_logp, X, log=True))
        progress = geometry.progress(X, labels, log=True)
    notes += sorted({str(w.message) for w in caught})

    traces = []
    offsets = np.cumsum([0] + counts)
    for rec, lo, hi in zip(runs, offsets[:-1], offsets[1:]):
        m = store.metrics(rec.run_id)
        traces.append(RunTrace(
            run_id=rec.run_id,
            label=rec.config.get("label", rec.run_id),
            group=str(rec.config.get("arch_alias", rec.config.get("arch", "run"))),
            config=rec.config,
            steps=m["step"],
            epochs=m["epoch"],
            coords=emb.coords[lo:hi],
            progress=progress[lo:hi],
            metrics={key: val for key, val in m.items() if key not in ("step", "epoch")},
        ))

    return Picture(
        probe=probe,
        n_samples=X.shape[1],
        n_classes=n_classes,
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
