"""Every sample's dynamics: data maps, forgetting events, learning times, and whether runs agree on them.

A run's stored predictions hold each probe sample's predicted distribution at every
checkpoint. From them, per sample ``i`` with label ``y_i`` and ``p_k = P_k(y_i | x_i)`` at
checkpoint ``k``:

- **data map** (Swayamdipta et al. 2020): *confidence* ``mean_k p_k``, *variability*
  ``std_k p_k`` and *correctness*, the fraction of checkpoints at which the most probable
  class is ``y_i``. Mislabelled samples sit at low confidence and low variability
  ("hard to learn"), ambiguous ones at high variability.
- **forgetting events** (Toneva et al. 2019): how often the sample goes from correctly to
  incorrectly classified between consecutive checkpoints.
- **learning time**: the run's progress λ (docs/method.md §3.3) at the first checkpoint
  from which the sample stays correctly classified to the end ("learned for good"); NaN
  when it is misclassified at the end. Progress rather than epoch, so that runs of
  different speeds compare.
- **agreement** (Hacohen et al. 2020): the Spearman correlation of two runs' learning
  times over the samples both learned: do all networks learn samples in the same order?

The checkpoints are those recorded (dense early); statistics over them weight each
checkpoint equally.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import stats

from deepmanifold import geometry

__all__ = ["SampleDynamics", "SampleMaps", "auroc", "learning_order_agreement", "sample_dynamics",
           "store_sample_maps"]


@dataclass(frozen=True)
class SampleDynamics:
    """Per-sample statistics of one run (:func:`sample_dynamics`); every array has shape (n,).

    Attributes
    ----------
    confidence, variability, correctness : ndarray of float
    forgetting : ndarray of int
        Forgetting events.
    learned_at : ndarray of float
        Learning time as progress λ; NaN when not learned for good.
    learned_index : ndarray of int
        The checkpoint index it was learned at; -1 when not learned for good.
    """

    confidence: np.ndarray
    variability: np.ndarray
    correctness: np.ndarray
    forgetting: np.ndarray
    learned_at: np.ndarray
    learned_index: np.ndarray


def sample_dynamics(logp, labels, progress=None) -> SampleDynamics:
    """Data map, forgetting events and learning times of the ``n`` samples of one run.

    Parameters
    ----------
    logp : array_like, shape (K, n, C)
        Log-probabilities at ``K`` checkpoints (e.g. ``Store.logp(run_id, "train")``).
    labels : array_like of int, shape (n,)
        The labels the run was trained on (noisy ones included).
    progress : array_like, shape (K,), optional
        The run's progress at each checkpoint; default: the checkpoint index over
        ``K − 1`` (then ``learned_at`` is the fraction of checkpoints).

    Raises
    ------
    ValueError
        Shapes that do not match, labels outside ``[0, C)``, or no checkpoint.
    """
    lp = np.asarray(logp)
    y = np.asarray(labels)
    if lp.ndim != 3 or lp.shape[0] < 1 or y.shape != (lp.shape[1],):
        raise ValueError(f"logp must be (K, n, C) with K >= 1 and labels (n,), got {lp.shape} and {y.shape}")
    if not np.issubdtype(y.dtype, np.integer) or (y.size and (y.min() < 0 or y.max() >= lp.shape[2])):
        raise ValueError(f"labels must be integers in [0, {lp.shape[2]})")
    K = lp.shape[0]
    lam = (np.arange(K) / max(K - 1, 1) if progress is None else np.asarray(progress, dtype=np.float64))
    if lam.shape != (K,):
        raise ValueError(f"progress must have one value per checkpoint ({K}), got shape {lam.shape}")
    p_true = np.exp(np.take_along_axis(lp, y[None, :, None], axis=2)[..., 0].astype(np.float64))  # (K, n)
    correct = lp.argmax(axis=2) == y[None, :]  # (K, n)
    forgetting = (correct[:-1] & ~correct[1:]).sum(axis=0)
    # Learned for good at the first k after the last incorrect checkpoint (if correct at the end).
    wrong = ~correct
    last_wrong = np.where(wrong.any(axis=0), K - 1 - np.argmax(wrong[::-1], axis=0), -1)
    learned = correct[-1]
    index = np.where(learned, last_wrong + 1, -1)
    return SampleDynamics(confidence=p_true.mean(axis=0), variability=p_true.std(axis=0),
                          correctness=correct.mean(axis=0), forgetting=forgetting.astype(np.int64),
                          learned_at=np.where(learned, lam[np.clip(index, 0, K - 1)], np.nan),
                          learned_index=index.astype(np.int64))


def learning_order_agreement(times) -> np.ndarray:
    """Spearman correlation of learning times between every two runs, shape (R, R).

    Parameters
    ----------
    times : array_like, shape (R, n)
        Learning times of the same ``n`` samples in ``R`` runs (NaN: not learned).

    Returns
    -------
    ndarray
        Over the samples both runs learned; NaN where fewer than 3 are, or one run's
        times are all equal; 1 on the diagonal.
    """
    T = np.asarray(times, dtype=np.float64)
    if T.ndim != 2:
        raise ValueError(f"times must be (R, n), got shape {T.shape}")
    R = T.shape[0]
    out = np.eye(R)
    for a in range(R):
        for b in range(a + 1, R):
            both = np.isfinite(T[a]) & np.isfinite(T[b])
            rho = np.nan
            if both.sum() >= 3 and np.ptp(T[a, both]) > 0 and np.ptp(T[b, both]) > 0:
                rho = float(stats.spearmanr(T[a, both], T[b, both]).statistic)
            out[a, b] = out[b, a] = rho
    return out


def auroc(scores, positives) -> float:
    """Area under the ROC curve of ``scores`` for finding ``positives`` (ties count half).

    The probability that a random positive scores above a random negative
    (Mann–Whitney); 0.5 is chance. NaN without both classes.
    """
    s = np.asarray(scores, dtype=np.float64)
    pos = np.asarray(positives, dtype=bool)
    if s.shape != pos.shape or s.ndim != 1:
        raise ValueError(f"scores and positives must be (n,) alike, got {s.shape} and {pos.shape}")
    n_pos, n_neg = int(pos.sum()), int((~pos).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = stats.rankdata(s)
    return float((ranks[pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


@dataclass
class SampleMaps:
    """The per-sample dynamics of a store's runs on one probe set (:func:`store_sample_maps`).

    Attributes
    ----------
    probe : str
    labels : ndarray of int, shape (n,)
        The labels the runs trained on.
    runs : list of (str, str, SampleDynamics)
        Run id, display label and dynamics of each run.
    flipped : ndarray of bool, shape (n,), or None
        The samples whose training label was flipped (``label_noise``), when recorded.
    images : ndarray of uint8, shape (n, H, W) or (n, H, W, 3), or None
        The samples' images for display, when the caller adds them.
    """

    probe: str
    labels: np.ndarray
    runs: list = field(default_factory=list)
    flipped: np.ndarray | None = None
    images: np.ndarray | None = None


def store_sample_maps(store, probe: str = "train", *, max_runs: int = 60) -> SampleMaps | None:
    """:func:`sample_dynamics` of the runs of ``store`` that a picture on ``probe`` would show.

    The runs are those of :func:`~deepmanifold.analysis.checkpoints.usable_runs` (complete,
    undamaged, with an undamaged probe file, all on one probe set); runs past ``max_runs``
    (in store order) are left out. Returns None when there is none.
    """
    import warnings

    from deepmanifold.analysis.checkpoints import usable_runs

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            records, _ = usable_runs(store, probe)
        except ValueError:  # runs on different probe sets: no one map of the samples
            return None
    if not records:
        return None
    records = records[:max_runs]
    stored = store.probe(records[0].probes[probe])
    labels = np.asarray(stored.labels)
    maps = SampleMaps(probe=probe, labels=labels)
    for rec in records:
        logp = np.asarray(store.logp(rec.run_id, probe))
        progress = geometry.progress(logp, labels, log=True)
        maps.runs.append((rec.run_id, str(rec.config.get("label", rec.run_id)), sample_dynamics(logp, labels, progress)))
        flipped = rec.info.get("flipped_train")
        if flipped is not None and stored.split == "train" and maps.flipped is None:
            maps.flipped = np.isin(stored.indices, np.asarray(flipped, dtype=np.int64))
    return maps
