"""Which checkpoints of which runs of a store are compared, and how they are read.

One reader serves the picture (:func:`~deepmanifold.analysis.build_picture`) and the
claims (:func:`~deepmanifold.analysis.analyze_store`), so both see the same runs, the
same checkpoints and the same distance matrix:

- :func:`usable_runs` -- the runs that can share one picture on a probe set, and the
  ones left out with why.
- :func:`checkpoint_selection` -- every checkpoint, or an even subsample per run once
  a store holds more than :data:`MAX_CHECKPOINT_MODELS` of them (dense InPCA holds a
  ``T x T`` matrix).
- :func:`stacked_predictions` -- the stored log-probabilities of those checkpoints as
  one :class:`~deepmanifold.geometry.ModelStack`: read run by run as the geometry
  streams over it, never concatenated into one array.
- :func:`checkpoint_distances` -- their intensive Bhattacharyya distance matrix, as a
  :class:`CheckpointDistances` that says which checkpoints its rows are.
"""

from __future__ import annotations

import warnings
from collections import Counter
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from deepmanifold import geometry
from deepmanifold.store import RunRecord, Store, StoreError
from deepmanifold.store.repair import damaged_runs

__all__ = ["MAX_CHECKPOINT_MODELS", "CheckpointDistances", "checkpoint_distances", "checkpoint_selection",
           "stacked_predictions", "usable_runs"]

#: Checkpoints embedded together at most; past it each run is subsampled evenly.
MAX_CHECKPOINT_MODELS = 6000


def usable_runs(store: Store, probe: str) -> tuple[list[RunRecord], list[tuple[str, str]]]:
    """Runs that can share one picture on ``probe``, and the ones left out with why.

    Damaged runs (any file unreadable, truncated or changed since the commit:
    :mod:`deepmanifold.store.repair`), diverged runs, runs without that probe set and
    runs whose probe file is missing or damaged are left out, each named once. All
    remaining runs must share one probe set (same samples in the same order); otherwise
    the comparison is meaningless and a ``ValueError`` names the runs.

    Returns
    -------
    records : list of RunRecord
        In store order.
    excluded : list of (str, str)
        Display name (or run id) of each run left out, and the reason.
    """
    # The reason names the run too ("run X in S is damaged: ..."): keep only what is wrong.
    excluded = [(run_id, f"damaged: {why.split(' is damaged: ', 1)[-1]}") for run_id, why in damaged_runs(store)]
    healthy = store.catalog(on_error="skip")
    probe_problems: dict[str, str | None] = {}
    keep = []
    for run_id in healthy["run_id"]:
        rec = store.record(run_id, verify=False)  # verified in full when its catalog row was built
        run_label = rec.config.get("label", rec.run_id)
        if rec.status != "complete":
            excluded.append((run_label, f"{rec.status}: {rec.message}".rstrip(": ")))
        elif probe not in rec.probes:
            excluded.append((run_label, f"no predictions on probe set {probe!r}"))
        elif rec.n_checkpoints < 1:
            excluded.append((run_label, "no checkpoints recorded"))
        elif _probe_problem(store, rec.probes[probe], probe_problems):
            excluded.append((run_label, probe_problems[rec.probes[probe]]))
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


def _probe_problem(store: Store, fingerprint: str, seen: dict[str, str | None]) -> str | None:
    """Why the probe file ``fingerprint`` cannot be read (None if it can), read once per fingerprint."""
    if fingerprint not in seen:
        try:
            store.probe(fingerprint)
            seen[fingerprint] = None
        except StoreError as exc:
            seen[fingerprint] = str(exc)
    return seen[fingerprint]


def checkpoint_selection(per_run: Sequence[int], budget: int = MAX_CHECKPOINT_MODELS) -> list[np.ndarray]:
    """Indices of the checkpoints kept per run: all, or evenly spread with first and last kept.

    Parameters
    ----------
    per_run : sequence of int
        Number of checkpoints of each run.
    budget : int
        Checkpoints kept at most over all runs (approximately, once subsampled: each run
        keeps ``max(2, round(K * budget / total))`` of its ``K``).

    Returns
    -------
    list of int ndarray
        One sorted index array per run.
    """
    per_run = [int(k) for k in per_run]
    if any(k < 1 for k in per_run):
        raise ValueError(f"every run needs at least one checkpoint, got counts {per_run}")
    if budget < 1:
        raise ValueError(f"budget must be a positive number of checkpoints, got {budget}")
    total = sum(per_run)
    if total <= budget:
        return [np.arange(k) for k in per_run]
    out = []
    for k in per_run:
        m = max(2, int(round(k * budget / total)))
        out.append(np.unique(np.round(np.linspace(0, k - 1, m)).astype(int)))
    return out


class _Rows:
    """Some checkpoints of one run's predictions, read only when sliced (for ModelStack)."""

    def __init__(self, array, index: np.ndarray):
        self.array, self.index = array, np.asarray(index, dtype=np.int64)
        self.shape = (len(self.index),) + tuple(array.shape[1:])
        self.dtype = array.dtype
        self.ndim = len(self.shape)

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, key):
        return np.asarray(self.array[self.index[key]])


def stacked_predictions(store: Store, probe: str, run_ids: Sequence[str],
                        checkpoints: Sequence[np.ndarray] | None = None) -> geometry.ModelStack:
    """The stored log-probabilities of several runs as one lazy ``(T, n, C)`` stack.

    Parameters
    ----------
    store : Store
    probe : str
        Probe set; every run must have predictions on it.
    run_ids : sequence of str
        Runs in the order of the stack.
    checkpoints : sequence of int arrays, optional
        Checkpoints kept per run (:func:`checkpoint_selection`); all by default.

    Returns
    -------
    ModelStack
        float32 natural-log probabilities (pass ``log=True`` to the geometry). Rows are
        read from each run's stored array when the stack is sliced.
    """
    run_ids = list(run_ids)
    if not run_ids:
        raise ValueError("stacked_predictions needs at least one run")
    if checkpoints is not None and len(checkpoints) != len(run_ids):
        raise ValueError(f"checkpoints: expected one index array per run ({len(run_ids)}), got {len(checkpoints)}")
    arrays = []
    for i, run_id in enumerate(run_ids):
        logp = store.logp(run_id, probe)
        keep = None if checkpoints is None else np.asarray(checkpoints[i])
        if keep is None or np.array_equal(keep, np.arange(len(logp))):
            arrays.append(logp)
        else:
            arrays.append(_Rows(logp, keep))
    return geometry.ModelStack(arrays)


@dataclass
class CheckpointDistances:
    """Intensive Bhattacharyya distances between the selected checkpoints of some runs.

    Attributes
    ----------
    probe : str
        Probe set the predictions were compared on.
    run_ids : list of str
        Runs, in the order of the rows.
    checkpoints : list of int ndarray
        Checkpoints of each run kept (indices into the run's stored checkpoints); the
        rows of ``matrix`` are these, run after run.
    matrix : ndarray, shape (T, T)
        d_B between every pair of kept checkpoints (docs/method.md §2), float64.
    notes : list of str
        Warnings raised while computing it (e.g. clamped Bhattacharyya coefficients).
    """

    probe: str
    run_ids: list[str]
    checkpoints: list[np.ndarray]
    matrix: np.ndarray
    notes: list[str] = field(default_factory=list)

    @property
    def run_index(self) -> np.ndarray:
        """Position of each row's run in ``run_ids``, shape (T,)."""
        return np.concatenate([np.full(len(k), i) for i, k in enumerate(self.checkpoints)])


def checkpoint_distances(store: Store, probe: str, records: Sequence[RunRecord], *,
                         budget: int = MAX_CHECKPOINT_MODELS) -> CheckpointDistances:
    """Distance matrix of the checkpoints of ``records`` on ``probe`` (selected by
    :func:`checkpoint_selection`), streamed from the store.

    Raises
    ------
    ValueError
        No runs, or stored predictions that are not log-probabilities.
    """
    records = list(records)
    if not records:
        raise ValueError(f"no run to compare on probe set {probe!r}")
    keep = checkpoint_selection([r.n_checkpoints for r in records], budget)
    run_ids = [r.run_id for r in records]
    models = stacked_predictions(store, probe, run_ids, keep)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        matrix = geometry.pairwise_distances(models, log=True)
    return CheckpointDistances(probe=probe, run_ids=run_ids, checkpoints=keep, matrix=matrix,
                               notes=sorted({str(w.message) for w in caught}))
