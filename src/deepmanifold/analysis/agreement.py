r"""Do training and test predictions give the same picture? (docs/method.md §6, claim 5)

Judged at equal progress (:func:`equal_progress_agreement`, :data:`RULE`, :func:`judge`)
-----------------------------------------------------------------------------------------
The same runs are resampled at equal progress on two probe sets (a
:class:`~deepmanifold.analysis.trajectories.TrajectorySet` each, on one grid), and their
run × run trajectory distance matrices
(:func:`~deepmanifold.analysis.trajectories.trajectory_distance_matrix`) are compared.
At equal progress the ignorance→truth axis that every sweep shares is removed: two
unrelated sweeps with the same checkpoint schedule correlate strongly at the checkpoint
level (progress dominates both matrices) but not run by run.

* **Agreement**: Pearson ``r`` of the two matrices' upper triangles, with a Mantel
  permutation p-value (runs relabelled in one matrix): the permutation distribution is
  the range of ``r`` between pictures whose runs have nothing to do with each other.
* **Calibration by split-half reliability**: a probe's samples are split into two random
  halves and the run × run matrix is computed on each (:func:`distance_matrix_on_samples`);
  ``d_B`` is a mean over samples, so the full matrix is the mean of the two halves', and
  the Spearman–Brown formula ``rel = 2 r_half / (1 + r_half)`` gives the reliability of
  the full matrix from the correlation ``r_half`` of the halves
  (:func:`split_half_reliability`). Noise of finite probes caps the train/test
  correlation at ``√(rel_train · rel_test)`` (Spearman's attenuation), so the
  **calibrated agreement** is ``κ = r / √(rel_train · rel_test)``: about 1 when both
  probes see the same picture up to their sampling noise, about 0 for unrelated
  pictures. It is computed for each of ``n_splits`` random splits (one split of each
  probe per draw); the median is judged, the 2.5 / 97.5 percentiles are its interval.
* **Same clustering**: complete-linkage clusters of the runs, cut at the number of
  architectures, on each probe; the adjusted Rand index (ARI) of the two clusterings, read
  where the clusters follow the architectures on at least one probe (otherwise the cut splits
  runs that form no architecture-level clusters, and two arbitrary partitions are not compared).
* **Same top factor**: the factor ranked first on each probe's matrix.

Descriptive, at the checkpoint level (:func:`train_test_agreement`)
-------------------------------------------------------------------
Two checks on the distance matrices of the *same* ``T`` checkpoints computed on two
sample sets. Both are dominated by the progress axis every training run travels, so
they describe, and the rule does not read them:

* **Mantel test** (:func:`mantel`): Pearson and Spearman correlation of the upper
  triangles of the two matrices, with a permutation p-value obtained by relabelling the
  models of one matrix (rows and columns permuted together), which keeps each
  matrix's internal structure but breaks the pairing of models.
* **Procrustes fit** (:func:`procrustes_fit`) of the two InPCA embeddings on ``k``
  axes: after centring and scaling each to unit Frobenius norm, the best orthogonal map
  (:func:`scipy.linalg.orthogonal_procrustes`) restricted to the isometries of
  the signed metric that need no boost — rotations/reflections within the
  space-like axes and within the time-like axes (this includes per-axis sign
  flips) — and the best overall scale. The normalised residual
  ``1 - (Σσ)²`` lies in ``[0, 1]``; 0 means identical shapes.
"""

from __future__ import annotations

import dataclasses
import numbers
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import scipy.linalg
import scipy.stats

from deepmanifold import geometry
from deepmanifold.analysis.trajectories import TrajectorySet, config_dendrogram, trajectory_distance_matrix
from deepmanifold.analysis.verdicts import Judgement, decide
from deepmanifold.utils import jsonable

__all__ = ["RULE", "TRAIN_TEST_ARCH_CLUSTERS", "TRAIN_TEST_ARI", "TRAIN_TEST_CALIBRATED", "TRAIN_TEST_MIN_RELIABILITY", "TRAIN_TEST_P_VALUE",
           "TRAIN_TEST_REFUTED", "TRAIN_TEST_SPLITS", "ClusterAgreement", "EqualProgressAgreement", "Mantel",
           "ProcrustesFit", "ProcrustesSummary", "SplitHalfReliability", "TrainTestAgreement",
           "distance_matrix_on_samples", "equal_progress_agreement", "judge", "mantel", "procrustes_fit",
           "procrustes_residual", "split_half_reliability", "train_test_agreement"]

#: Calibrated agreement κ (median over splits) at or above which the two probes see the same picture:
#: κ² ≥ 0.64, most of the variance each probe can reproduce of itself is shared with the other.
TRAIN_TEST_CALIBRATED = 0.8
#: Calibrated agreement below which the pictures differ more than they agree (κ² < 0.25).
TRAIN_TEST_REFUTED = 0.5
#: Mantel p-value (runs relabelled) at or above which r lies within the range of unrelated pictures.
TRAIN_TEST_P_VALUE = 0.05
#: Adjusted Rand index of the two architecture-level clusterings needed for "the same picture"
#: (0 = chance agreement, 1 = identical partitions; 0.6 leaves room for a run or two changing cluster).
TRAIN_TEST_ARI = 0.6
#: Adjusted Rand index between a probe's clustering and the architecture labels at or above which the
#: runs form architecture-level clusters on that probe. Where neither probe reaches it, the cut splits
#: runs that form no such clusters (e.g. one odd run against the rest), and comparing two arbitrary
#: partitions says nothing about the picture, so the clusterings are not compared.
TRAIN_TEST_ARCH_CLUSTERS = 0.5
#: Split-half reliability (Spearman–Brown) below which a probe's run × run matrix is mostly sampling
#: noise, so that neither agreement nor disagreement can be read from it.
TRAIN_TEST_MIN_RELIABILITY = 0.5
#: Random splits of each probe's samples (the calibration's bootstrap).
TRAIN_TEST_SPLITS = 20

RULE = (
    "Train and test give the same picture. The run × run matrices of trajectory distances at equal "
    "progress on the train and on the test probe are compared by the Pearson r of their upper triangles, "
    "with a Mantel p-value from relabelling the runs; r is calibrated by each probe's split-half "
    "reliability (two random halves of its samples, Spearman–Brown): κ = r / √(rel_train · rel_test), "
    f"median over {TRAIN_TEST_SPLITS} random splits. Supported when p < {TRAIN_TEST_P_VALUE}, "
    f"κ ≥ {TRAIN_TEST_CALIBRATED}, the complete-linkage clusterings of the runs cut at the number of "
    f"architectures agree (adjusted Rand index ≥ {TRAIN_TEST_ARI}; not applied with one architecture, nor "
    f"where neither probe's clustering recovers the architectures, ARI with them < {TRAIN_TEST_ARCH_CLUSTERS}) and "
    "the top-ranked factor is the same on both probes (not applied where a probe ranks none). Not "
    f"supported when r lies within the range of unrelated pictures (p ≥ {TRAIN_TEST_P_VALUE}) or "
    f"κ < {TRAIN_TEST_REFUTED}. Inconclusive otherwise, and whenever a probe's reliability is below "
    f"{TRAIN_TEST_MIN_RELIABILITY} (its matrix is then mostly sampling noise)."
)


@dataclass(frozen=True)
class Mantel:
    """A Mantel test between two distance matrices over the same objects.

    Attributes
    ----------
    pearson, spearman : float or None
        Correlations of the strict upper triangles (None when either triangle is
        constant).
    p_pearson, p_spearman : float
        One-sided permutation p-values (1.0 where the correlation is None).
    n_permutations : int
    n_pairs : int
        Pairs of objects compared, ``T (T - 1) / 2``.
    alternative : str
        ``"greater"``: the test is for a positive association.
    """

    pearson: float | None
    spearman: float | None
    p_pearson: float
    p_spearman: float
    n_permutations: int
    n_pairs: int
    alternative: str = "greater"

    def to_dict(self) -> dict:
        """The JSON form (as in ``findings.json``)."""
        return {"n_permutations": self.n_permutations, "n_pairs": self.n_pairs, "alternative": self.alternative,
                "pearson": self.pearson, "p_pearson": self.p_pearson,
                "spearman": self.spearman, "p_spearman": self.p_spearman}


@dataclass(frozen=True)
class ProcrustesFit:
    """The best fit of one configuration onto another (see :func:`procrustes_fit`).

    Attributes
    ----------
    residual : float
        Normalised residual in [0, 1]; 0 = identical shapes.
    scale : float
        ``||Y_c|| / ||X_c||``: the size of ``Y`` relative to ``X``.
    aligned : ndarray, shape (T, w)
        ``s X̂ R``: ``X`` moved onto ``Y``'s normalised frame (blocks side by side).
    target : ndarray, shape (T, w)
        ``Ŷ`` in the same column order (zero-padded blocks).
    """

    residual: float
    scale: float
    aligned: np.ndarray
    target: np.ndarray


@dataclass(frozen=True)
class ProcrustesSummary:
    """How well the InPCA embeddings of two distance matrices match (:func:`train_test_agreement`).

    Attributes
    ----------
    residual : float
        Procrustes residual (:func:`procrustes_fit`) of the ``n_components``-axis
        embeddings; 0 = identical shapes up to scale, boost-free isometry and translation.
    n_components : int
    scale_test_over_train : float
        Overall size of the test embedding relative to the train one.
    signature_train, signature_test : list of int
        +1 (space-like) / -1 (time-like) per axis.
    explained_stress_train, explained_stress_test : float
        Explained stress of the ``n_components`` axes of each.
    """

    residual: float
    n_components: int
    scale_test_over_train: float
    signature_train: list[int]
    signature_test: list[int]
    explained_stress_train: float
    explained_stress_test: float

    def to_dict(self) -> dict:
        """The JSON form (as in ``findings.json``)."""
        return dict(vars(self))


@dataclass(frozen=True)
class TrainTestAgreement:
    """Agreement between the pictures of the same models on two sample sets.

    Attributes
    ----------
    n_models : int
    mantel : Mantel
        Mantel test of the two distance matrices.
    procrustes : ProcrustesSummary
        Procrustes fit of their InPCA embeddings.
    """

    n_models: int
    mantel: Mantel
    procrustes: ProcrustesSummary

    def to_dict(self) -> dict:
        """The JSON form (as in ``findings.json``)."""
        return {"n_models": self.n_models, "mantel": self.mantel.to_dict(),
                "procrustes": self.procrustes.to_dict()}


def _square(D, name: str) -> np.ndarray:
    D = np.asarray(D, dtype=np.float64)
    if D.ndim != 2 or D.shape[0] != D.shape[1]:
        raise ValueError(f"{name}: expected a square matrix, got shape {D.shape}")
    if not np.all(np.isfinite(D)):
        raise ValueError(f"{name} contains NaN or inf")
    return 0.5 * (D + D.T)


def mantel(A, B, *, n_permutations: int = 999, random_state=0) -> Mantel:
    """Mantel test between two symmetric matrices over the same ``T`` objects.

    Pearson ``r`` and Spearman ``rho`` of the strict upper triangles; one-sided
    (positive association) permutation p-values
    ``(1 + #{stat_perm >= stat}) / (n_permutations + 1)`` where each permutation
    relabels the objects of ``B`` (rows and columns together). Spearman uses
    average ranks for ties, computed once: relabelling only permutes the
    ranks. Cost ``O(n_permutations * T²)``.

    Returns
    -------
    Mantel
        A correlation is None (and its p-value 1) when either triangle is constant.
    """
    A = _square(A, "A")
    B = _square(B, "B")
    if A.shape != B.shape:
        raise ValueError(f"matrices of different shapes {A.shape} and {B.shape}")
    T = A.shape[0]
    if T < 3:
        raise ValueError(f"need at least 3 objects, got {T}")
    if not isinstance(n_permutations, numbers.Integral) or n_permutations < 0:
        raise ValueError(f"n_permutations must be a non-negative integer, got {n_permutations!r}")
    iu = np.triu_indices(T, k=1)
    rng = np.random.default_rng(random_state)

    def prepared(M):
        v = M[iu]
        v = v - v.mean()
        nrm = np.linalg.norm(v)
        return v / nrm if nrm > 0 else None

    def rank_matrix(M):
        R = np.zeros_like(M)
        R[iu] = scipy.stats.rankdata(M[iu])
        return R + R.T

    out = {}
    for name, fa, fb in (("pearson", A, B), ("spearman", rank_matrix(A), rank_matrix(B))):
        x, yv = prepared(fa), fb[iu]
        ynorm = np.linalg.norm(yv - yv.mean())
        if x is None or ynorm == 0:
            out[name], out[f"p_{name}"] = None, 1.0
            continue
        ymean = yv.mean()
        # permuting B keeps the multiset of its off-diagonal values: mean and norm fixed
        stat = float(np.clip(x @ (yv - ymean) / ynorm, -1.0, 1.0))
        hits = 0
        for _ in range(int(n_permutations)):
            p = rng.permutation(T)
            yp = fb[p[iu[0]], p[iu[1]]]
            hits += (x @ (yp - ymean) / ynorm) >= stat - 1e-12
        out[name] = stat
        out[f"p_{name}"] = float((1 + hits) / (n_permutations + 1))
    return Mantel(n_permutations=int(n_permutations), n_pairs=int(iu[0].size), **out)


def _blocks(sig, k: int) -> tuple[np.ndarray, np.ndarray]:
    if sig is None:
        return np.arange(k), np.arange(0)
    sig = np.asarray(sig)
    if sig.shape != (k,):
        raise ValueError(f"signature: expected shape ({k},), got {sig.shape}")
    return np.nonzero(sig >= 0)[0], np.nonzero(sig < 0)[0]


def procrustes_residual(X, Y, *, signature_x=None, signature_y=None) -> float:
    """Normalised Procrustes residual between two configurations of the same points.

    ``procrustes_fit(X, Y, ...).residual``: see :func:`procrustes_fit`.

    Returns
    -------
    float in [0, 1]
        0 for identical shapes (up to translation, scale and the allowed isometries).
    """
    return procrustes_fit(X, Y, signature_x=signature_x, signature_y=signature_y).residual


def procrustes_fit(X, Y, *, signature_x=None, signature_y=None) -> ProcrustesFit:
    r"""Best fit of configuration ``X`` onto ``Y`` (same points), and its residual.

    Both are centred and scaled to unit Frobenius norm; then

    .. math::

        \min_{s > 0,\; R} \| s \hat X R - \hat Y \|_F^2 = 1 - \Big(\sum \sigma\Big)^2,

    with ``R`` orthogonal and the ``σ`` the singular values of ``X̂ᵀŶ``
    (``scipy.linalg.orthogonal_procrustes``). With signatures (``+1``
    space-like, ``-1`` time-like axes, e.g. :attr:`InPCAResult.signature`),
    ``R`` is block-diagonal: it only mixes space-like axes with space-like axes
    and time-like with time-like, the boost-free isometries of the signed
    metric (sign flips included). Blocks of unequal width in ``X`` and ``Y``
    are padded with zero columns, so an axis that is space-like in one
    embedding and time-like in the other cannot be matched and counts as
    residual.

    Parameters
    ----------
    X, Y : array_like, shape (T, k) and (T, k2)
    signature_x, signature_y : array_like of ±1, shapes (k,) and (k2,), optional
        Both or neither. Without them ``R`` is any orthogonal matrix (columns
        of the narrower configuration padded with zeros).

    Returns
    -------
    ProcrustesFit

    Raises
    ------
    ValueError
        Shapes that do not describe the same points, one signature only, NaN or
        inf, or a configuration whose points all coincide.
    """
    X = np.asarray(X, dtype=np.float64)
    Y = np.asarray(Y, dtype=np.float64)
    if X.ndim != 2 or Y.ndim != 2 or X.shape[0] != Y.shape[0]:
        raise ValueError(f"X and Y must be (T, k) arrays over the same points, got {X.shape} and {Y.shape}")
    if (signature_x is None) != (signature_y is None):
        raise ValueError("give both signatures or neither")
    if not (np.all(np.isfinite(X)) and np.all(np.isfinite(Y))):
        raise ValueError("X or Y contains NaN or inf")
    Xc = X - X.mean(axis=0)
    Yc = Y - Y.mean(axis=0)
    nx, ny = np.linalg.norm(Xc), np.linalg.norm(Yc)
    if nx == 0 or ny == 0:
        raise ValueError("a configuration has all points coincident after centring")
    Xc /= nx
    Yc /= ny
    xs, xt = _blocks(signature_x, X.shape[1])
    ys, yt = _blocks(signature_y, Y.shape[1])
    T = X.shape[0]
    total_sigma = 0.0
    aligned_parts, target_parts = [], []
    for bx, by in ((xs, ys), (xt, yt)):
        w = max(bx.size, by.size)
        if w == 0:
            continue
        A = np.zeros((T, w))
        B = np.zeros((T, w))
        A[:, : bx.size] = Xc[:, bx]
        B[:, : by.size] = Yc[:, by]
        R, sigma_sum = scipy.linalg.orthogonal_procrustes(A, B)
        total_sigma += float(sigma_sum)
        aligned_parts.append(A @ R)
        target_parts.append(B)
    residual = float(np.clip(1.0 - total_sigma**2, 0.0, 1.0))
    return ProcrustesFit(residual=residual, scale=float(ny / nx), aligned=total_sigma * np.hstack(aligned_parts),
                         target=np.hstack(target_parts))


def train_test_agreement(D_train, D_test, *, n_permutations: int = 999, n_components: int = 3,
                         random_state=0) -> TrainTestAgreement:
    """Agreement between the pictures of the same models on two sample sets.

    Parameters
    ----------
    D_train, D_test : array_like, shape (T, T)
        Intensive Bhattacharyya distances between the same ``T`` models (same
        order), on training and on test samples.
    n_permutations : int, default 999
        Permutations for the Mantel p-values.
    n_components : int, default 3
        InPCA axes compared by the Procrustes fit (capped at ``T``).
    random_state : None, int or numpy.random.Generator

    Returns
    -------
    TrainTestAgreement
    """
    A = _square(D_train, "D_train")
    B = _square(D_test, "D_test")
    if A.shape != B.shape:
        raise ValueError(f"D_train and D_test have different shapes {A.shape} and {B.shape}")
    T = A.shape[0]
    if not isinstance(n_components, numbers.Integral) or n_components < 1:
        raise ValueError(f"n_components must be a positive integer, got {n_components!r}")
    k = int(min(n_components, T))
    test = mantel(A, B, n_permutations=n_permutations, random_state=random_state)
    ra = geometry.inpca(A, n_components=k)
    rb = geometry.inpca(B, n_components=k)
    fit = procrustes_fit(ra.coords, rb.coords, signature_x=ra.signature, signature_y=rb.signature)
    summary = ProcrustesSummary(
        residual=fit.residual,
        n_components=k,
        scale_test_over_train=fit.scale,
        signature_train=[int(s) for s in ra.signature],
        signature_test=[int(s) for s in rb.signature],
        explained_stress_train=float(ra.explained_stress[-1]),
        explained_stress_test=float(rb.explained_stress[-1]),
    )
    return TrainTestAgreement(n_models=int(T), mantel=test, procrustes=summary)


# ----------------------------------------------------------------------------- at equal progress
@dataclass(frozen=True, eq=False)
class SplitHalfReliability:
    """How reproducible one probe's run × run matrix is (:func:`split_half_reliability`).

    Attributes
    ----------
    half_correlation : ndarray, shape (n_splits,)
        Pearson ``r`` of the upper triangles of the two halves' matrices, per random
        split (NaN where a half's matrix is constant).
    reliability : ndarray, shape (n_splits,)
        Spearman–Brown reliability of the full matrix, ``2 r / (1 + r)``, per split.
    median, low, high : float or None
        Median and 2.5 / 97.5 percentiles of ``reliability`` over the splits (None when
        no split gave a number).
    n_samples : int
        Samples in each half (``n // 2``; one is left out when ``n`` is odd).
    """

    half_correlation: np.ndarray
    reliability: np.ndarray
    median: float | None
    low: float | None
    high: float | None
    n_samples: int

    @property
    def n_splits(self) -> int:
        return int(self.reliability.shape[0])

    def to_dict(self) -> dict:
        """The JSON form (as in ``findings.json``)."""
        return jsonable({"n_splits": self.n_splits, "n_samples": self.n_samples, "median": self.median,
                         "low": self.low, "high": self.high, "reliability": self.reliability,
                         "half_correlation": self.half_correlation})


@dataclass(frozen=True)
class ClusterAgreement:
    """Architecture-level clusterings of the runs on two probes (complete linkage).

    Attributes
    ----------
    n_clusters : int
        Where each dendrogram is cut: the number of architectures among the runs.
    ari : float or None
        Adjusted Rand index of the two clusterings (1 = the same partition, 0 = chance);
        None when there is nothing to compare (fewer than two architectures, or as many
        as runs).
    ari_train_architecture, ari_test_architecture : float or None
        Adjusted Rand index of each probe's clusters with the architectures themselves.
    clusters_train, clusters_test : list of int
        Cluster of each run (1-based, :func:`scipy.cluster.hierarchy.fcluster`).
    """

    n_clusters: int
    ari: float | None
    ari_train_architecture: float | None
    ari_test_architecture: float | None
    clusters_train: list
    clusters_test: list

    def to_dict(self) -> dict:
        """The JSON form (as in ``findings.json``)."""
        return jsonable(dataclasses.asdict(self))


@dataclass(frozen=True, eq=False)
class EqualProgressAgreement:
    """The pictures of the same runs on two probes, compared at equal progress (:func:`equal_progress_agreement`).

    Attributes
    ----------
    run_ids : list of str
    grid : str
        Which grid points the trajectory distances average over, in words.
    grid_values : ndarray
        Those progress values.
    include_held : bool
        Runs that stopped early hold their last checkpoint at the points beyond it.
    r : float or None
        Pearson correlation of the upper triangles of the train and test matrices.
    mantel : Mantel
        Mantel test of the two matrices (runs relabelled); ``mantel.pearson`` is ``r``.
    reliability_train, reliability_test : SplitHalfReliability
    calibrated : float or None
        Median over the splits of ``κ = r / √(rel_train · rel_test)`` (splits where a
        reliability is not positive are left out); None when no split gives a number.
    calibrated_low, calibrated_high : float or None
        2.5 / 97.5 percentiles of ``κ`` over the splits.
    clusters : ClusterAgreement
    top_factor_train, top_factor_test : str or None
        The factor ranked first on each probe's matrix (None: not ranked).
    D_train, D_test : ndarray, shape (R, R)
        The two run × run trajectory distance matrices (not in ``to_dict``).
    """

    run_ids: list
    grid: str
    grid_values: np.ndarray
    include_held: bool
    r: float | None
    mantel: Mantel
    reliability_train: SplitHalfReliability
    reliability_test: SplitHalfReliability
    calibrated: float | None
    calibrated_low: float | None
    calibrated_high: float | None
    clusters: ClusterAgreement
    top_factor_train: str | None
    top_factor_test: str | None
    D_train: np.ndarray
    D_test: np.ndarray

    @property
    def n_runs(self) -> int:
        return len(self.run_ids)

    def to_dict(self) -> dict:
        """The JSON form (as in ``findings.json``); the matrices are left out."""
        return jsonable({
            "n_runs": self.n_runs, "run_ids": self.run_ids, "grid": self.grid, "grid_values": self.grid_values,
            "include_held": self.include_held, "r": self.r, "mantel": self.mantel.to_dict(),
            "reliability_train": self.reliability_train.to_dict(),
            "reliability_test": self.reliability_test.to_dict(),
            "calibrated": self.calibrated, "calibrated_low": self.calibrated_low,
            "calibrated_high": self.calibrated_high, "clusters": self.clusters.to_dict(),
            "top_factor_train": self.top_factor_train, "top_factor_test": self.top_factor_test})


def _grid_mask(ts: TrajectorySet, grid_mask) -> np.ndarray:
    G = ts.grid.shape[0]
    mask = np.ones(G, dtype=bool) if grid_mask is None else np.asarray(grid_mask, dtype=bool)
    if mask.shape != (G,):
        raise ValueError(f"grid_mask must have shape ({G},), got {mask.shape}")
    if not mask.any():
        raise ValueError("grid_mask selects no grid point")
    return mask


def _sample_index(samples, n: int) -> np.ndarray:
    idx = np.asarray(samples)
    if idx.dtype == bool:
        if idx.shape != (n,):
            raise ValueError(f"samples: a boolean mask must have shape ({n},), got {idx.shape}")
        idx = np.flatnonzero(idx)
    elif idx.ndim != 1 or (idx.size and idx.dtype.kind not in "iu"):
        raise ValueError(f"samples must be a 1-D array of sample indices or a boolean mask, got {idx.dtype} "
                         f"of shape {idx.shape}")
    if idx.size == 0:
        raise ValueError("samples selects no sample")
    if idx.min() < 0 or idx.max() >= n:
        raise ValueError(f"samples must lie in [0, {n})")
    return idx.astype(np.int64)


def distance_matrix_on_samples(ts: TrajectorySet, samples=None, *, grid_mask=None, include_held: bool = True,
                               **kwargs) -> np.ndarray:
    """Trajectory distance matrix of ``ts`` over a subset of its probe samples.

    The runs keep the models they were resampled to (progress measured on all the
    samples); only the samples over which ``d_B`` averages change. The matrix is
    :func:`~deepmanifold.analysis.trajectories.trajectory_distance_matrix` of a copy of
    ``ts`` whose ``sqrt_p`` (and ``sample_labels``) hold the chosen samples.

    Parameters
    ----------
    ts : TrajectorySet
    samples : array_like of int, or bool mask of shape (n,), optional
        Probe samples to use (default all, without a copy).
    grid_mask, include_held, **kwargs
        As for :func:`~deepmanifold.analysis.trajectories.trajectory_distance_matrix`.

    Returns
    -------
    ndarray, shape (R, R)

    Notes
    -----
    Memory: the copy takes ``R G m C`` float32 (``m`` chosen samples).
    """
    if not include_held:  # holding the last checkpoints is trajectory_distance_matrix's default
        kwargs["include_held"] = False
    if samples is not None:
        idx = _sample_index(samples, ts.sqrt_p.shape[2])
        labels = None if ts.sample_labels is None else np.asarray(ts.sample_labels)[idx]
        ts = dataclasses.replace(ts, sqrt_p=ts.sqrt_p[:, :, idx], sample_labels=labels)
    return trajectory_distance_matrix(ts, grid_mask=grid_mask, **kwargs)


def _finite(D: np.ndarray, name: str) -> np.ndarray:
    if np.isnan(D).any():
        n_pairs = int(np.count_nonzero(np.triu(np.isnan(D), 1)))
        raise ValueError(f"{name} has NaN for {n_pairs} pair(s) of runs with no progress in common: hold "
                         "the last checkpoints (include_held=True) or restrict the runs or the grid")
    return D


def _upper_pearson(A: np.ndarray, B: np.ndarray) -> float:
    """Pearson correlation of the strict upper triangles (NaN when either is constant)."""
    iu = np.triu_indices(A.shape[0], k=1)
    a, b = A[iu] - A[iu].mean(), B[iu] - B[iu].mean()
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    return float(np.clip(a @ b / (na * nb), -1.0, 1.0)) if na > 0 and nb > 0 else float("nan")


def _percentiles(x: np.ndarray) -> tuple[float | None, float | None, float | None]:
    """Median, 2.5 and 97.5 percentiles of the finite entries (Nones when there are none)."""
    x = x[np.isfinite(x)]
    if x.size == 0:
        return None, None, None
    med, lo, hi = np.percentile(x, [50.0, 2.5, 97.5])
    return float(med), float(lo), float(hi)


def split_half_reliability(ts: TrajectorySet, *, n_splits: int = TRAIN_TEST_SPLITS, grid_mask=None,
                           include_held: bool = True, random_state=0, **kwargs) -> SplitHalfReliability:
    r"""Split-half reliability of a probe's run × run trajectory distance matrix.

    For each of ``n_splits`` random splits of the ``n`` probe samples into two halves of
    ``n // 2``, the matrix is computed on each half (:func:`distance_matrix_on_samples`)
    and the Pearson ``r`` of their upper triangles taken. ``d_B`` averages over samples,
    so the full matrix is the mean of the halves' (for even ``n``), and its reliability
    follows from the Spearman–Brown formula

    .. math::  \mathrm{rel} = \frac{2 r}{1 + r}.

    Parameters
    ----------
    ts : TrajectorySet
        At least 3 runs and 4 samples.
    n_splits : int, default :data:`TRAIN_TEST_SPLITS`
    grid_mask, include_held, **kwargs
        As for :func:`~deepmanifold.analysis.trajectories.trajectory_distance_matrix`.
    random_state : None, int or numpy.random.Generator

    Returns
    -------
    SplitHalfReliability

    Notes
    -----
    Cost: each split computes two matrices on half the samples, together about one full
    :func:`~deepmanifold.analysis.trajectories.trajectory_distance_matrix`.
    """
    R, _, n, _ = ts.sqrt_p.shape
    if not isinstance(n_splits, numbers.Integral) or n_splits < 1:
        raise ValueError(f"n_splits must be a positive integer, got {n_splits!r}")
    if R < 3 or n < 4:
        raise ValueError(f"split-half reliability needs at least 3 runs and 4 samples, got {R} runs and {n} samples")
    rng = np.random.default_rng(random_state)
    half = n // 2
    r_half = np.empty(int(n_splits))
    for s in range(int(n_splits)):
        perm = rng.permutation(n)
        A, B = (_finite(distance_matrix_on_samples(ts, np.sort(part), grid_mask=grid_mask,
                                                   include_held=include_held, **kwargs), "a half's matrix")
                for part in (perm[:half], perm[half:2 * half]))
        r_half[s] = _upper_pearson(A, B)
    with np.errstate(invalid="ignore", divide="ignore"):
        rel = np.where(r_half > -1.0, 2.0 * r_half / (1.0 + r_half), np.nan)
    med, lo, hi = _percentiles(rel)
    return SplitHalfReliability(half_correlation=r_half, reliability=rel, median=med, low=lo, high=hi,
                                n_samples=int(half))


def _architectures(configs: Sequence[dict], architectures) -> list:
    if architectures is not None:
        archs = list(architectures)
        if len(archs) != len(configs):
            raise ValueError(f"architectures has {len(archs)} entries for {len(configs)} runs")
        return archs
    return [str(c.get("arch_alias", c.get("arch"))) for c in configs]


def _cluster_agreement(D_train: np.ndarray, D_test: np.ndarray, archs: list, names: list) -> ClusterAgreement:
    """Complete-linkage clusters of the runs on each probe, cut at the number of architectures."""
    from scipy.cluster.hierarchy import fcluster
    from sklearn.metrics import adjusted_rand_score

    k = len(set(archs))
    cut = [fcluster(config_dendrogram(D, names).linkage, k, criterion="maxclust") for D in (D_train, D_test)]
    if k < 2 or k >= len(archs):
        ari = ari_tr = ari_te = None
    else:
        ari = float(adjusted_rand_score(cut[0], cut[1]))
        ari_tr, ari_te = (float(adjusted_rand_score(archs, c)) for c in cut)
    return ClusterAgreement(n_clusters=int(k), ari=ari, ari_train_architecture=ari_tr,
                            ari_test_architecture=ari_te, clusters_train=[int(c) for c in cut[0]],
                            clusters_test=[int(c) for c in cut[1]])


def _top_factor_by_effect(D: np.ndarray, configs: Sequence[dict]) -> str | None:
    """The factor ranked first by :func:`~deepmanifold.analysis.factors.factor_effects` on ``D`` (the ranking
    needs neither its interval nor its p-values: one bootstrap replicate, no permutation)."""
    from deepmanifold.analysis.factors import factor_effects

    ranking = factor_effects(D, configs, n_boot=1, n_permutations=0).ranking
    return ranking[0] if ranking else None


def _check_pair(ts_train: TrajectorySet, ts_test: TrajectorySet) -> None:
    if list(ts_train.run_ids) != list(ts_test.run_ids):
        raise ValueError("ts_train and ts_test must hold the same runs in the same order")
    if not np.array_equal(ts_train.grid, ts_test.grid):
        raise ValueError("ts_train and ts_test must be resampled on the same progress grid")
    if len(ts_train.run_ids) < 3:
        raise ValueError(f"need at least 3 runs, got {len(ts_train.run_ids)}")


def _grid_words(grid: np.ndarray, mask: np.ndarray, include_held: bool) -> str:
    used = grid[mask]
    held = ("runs that stopped early hold their last checkpoint beyond it" if include_held
            else "each pair over the points both runs reached")
    return f"{used.size} of {grid.size} grid points, progress {used.min():.2f}–{used.max():.2f}; {held}"


def equal_progress_agreement(ts_train: TrajectorySet, ts_test: TrajectorySet, *, grid_mask=None,
                             include_held: bool = True, n_splits: int = TRAIN_TEST_SPLITS,
                             n_permutations: int = 999, architectures=None,
                             top_factor: Callable[[np.ndarray, Sequence[dict]], str | None] | None = None,
                             random_state=0, **kwargs) -> EqualProgressAgreement:
    """Compare the run × run pictures of the same runs on two probes, at equal progress.

    See the module docstring for what is measured and :func:`judge` for the rule.

    Parameters
    ----------
    ts_train, ts_test : TrajectorySet
        The same runs (same order) resampled on the same grid, on the train and on the
        test probe (each resampled by its own progress).
    grid_mask : array_like of bool, shape (G,), optional
        Grid points the trajectory distances average over (default all), e.g. the
        intersection of both sets' ``common()``.
    include_held : bool, default True
        Runs that stopped early hold their last checkpoint beyond it (the reference
        study's convention); False compares each pair where both truly reached.
    n_splits : int, default :data:`TRAIN_TEST_SPLITS`
        Random splits of each probe's samples (:func:`split_half_reliability`).
    n_permutations : int, default 999
        Relabellings of the runs for the Mantel p-value.
    architectures : sequence, optional
        Architecture of each run (default ``config["arch_alias"]``, else ``config["arch"]``).
    top_factor : callable ``(D, configs) -> str or None``, optional
        Ranks the factors on one matrix; default the first of
        :func:`~deepmanifold.analysis.factors.factor_effects`'s ranking.
    random_state : None, int or numpy.random.Generator
    **kwargs
        Passed to :func:`~deepmanifold.analysis.trajectories.trajectory_distance_matrix`.

    Returns
    -------
    EqualProgressAgreement

    Raises
    ------
    ValueError
        Different runs or grids, fewer than 3 runs, a bad ``grid_mask``, or pairs of runs
        with no progress in common (NaN distances).
    """
    _check_pair(ts_train, ts_test)
    mask = _grid_mask(ts_test, grid_mask)
    rng = np.random.default_rng(random_state)
    opts = dict(grid_mask=mask, include_held=include_held, **kwargs)
    D_train = _finite(distance_matrix_on_samples(ts_train, **opts), "the train matrix")
    D_test = _finite(distance_matrix_on_samples(ts_test, **opts), "the test matrix")
    test = mantel(D_train, D_test, n_permutations=n_permutations, random_state=rng)
    rel_train = split_half_reliability(ts_train, n_splits=n_splits, random_state=rng, **opts)
    rel_test = split_half_reliability(ts_test, n_splits=n_splits, random_state=rng, **opts)
    r = test.pearson
    product = rel_train.reliability * rel_test.reliability
    kappa = np.full(product.shape, np.nan)
    usable = np.isfinite(product) & (product > 0)
    if r is not None:
        kappa[usable] = r / np.sqrt(product[usable])
    kappa_med, kappa_lo, kappa_hi = _percentiles(kappa)
    configs = list(ts_test.configs)
    rank = _top_factor_by_effect if top_factor is None else top_factor
    clusters = _cluster_agreement(D_train, D_test, _architectures(configs, architectures), list(ts_test.run_labels))
    return EqualProgressAgreement(
        run_ids=list(ts_test.run_ids), grid=_grid_words(ts_test.grid, mask, include_held),
        grid_values=ts_test.grid[mask], include_held=bool(include_held), r=r, mantel=test,
        reliability_train=rel_train, reliability_test=rel_test, calibrated=kappa_med, calibrated_low=kappa_lo,
        calibrated_high=kappa_hi, clusters=clusters, top_factor_train=rank(D_train, configs),
        top_factor_test=rank(D_test, configs), D_train=D_train, D_test=D_test)


def judge(result: EqualProgressAgreement) -> Judgement:
    """Claim 5 from :func:`equal_progress_agreement` by :data:`RULE`."""
    rel_tr, rel_te = result.reliability_train.median, result.reliability_test.median
    p, kappa, ari = result.mantel.p_pearson, result.calibrated, result.clusters.ari
    tf_tr, tf_te = result.top_factor_train, result.top_factor_test
    numbers = {"r": result.r, "p": p, "calibrated": kappa, "calibrated_low": result.calibrated_low,
               "calibrated_high": result.calibrated_high, "reliability_train": rel_tr, "reliability_test": rel_te,
               "ari": ari, "ari_train_architecture": result.clusters.ari_train_architecture,
               "ari_test_architecture": result.clusters.ari_test_architecture, "top_factor_train": tf_tr, "top_factor_test": tf_te, "n_runs": result.n_runs,
               "grid": result.grid}
    unreliable = [name for name, rel in (("train", rel_tr), ("test", rel_te))
                  if rel is None or rel < TRAIN_TEST_MIN_RELIABILITY]
    if unreliable or kappa is None:
        why = (f"split-half reliability below {TRAIN_TEST_MIN_RELIABILITY} on the {' and '.join(unreliable)} "
               "probe" if unreliable else "no calibrated agreement (a matrix is constant)")
        return Judgement("inconclusive", numbers, why)
    unrelated = p >= TRAIN_TEST_P_VALUE
    c = result.clusters
    structured = [a for a in (c.ari_train_architecture, c.ari_test_architecture) if a is not None]
    compared = ari is not None and bool(structured) and max(structured) >= TRAIN_TEST_ARCH_CLUSTERS
    ari_ok = not compared or ari >= TRAIN_TEST_ARI
    factor_ok = tf_tr is None or tf_te is None or tf_tr == tf_te
    verdict = decide(supported=not unrelated and kappa >= TRAIN_TEST_CALIBRATED and ari_ok and factor_ok,
                     refuted=unrelated or kappa < TRAIN_TEST_REFUTED)
    notes = []
    if unrelated:
        notes.append(f"r = {result.r:.3g} lies within the range of unrelated pictures (p = {p:.3g})")
    if kappa < TRAIN_TEST_CALIBRATED:
        notes.append(f"calibrated agreement κ = {kappa:.3g} < {TRAIN_TEST_CALIBRATED}")
    if not ari_ok:
        notes.append(f"the architecture-level clusterings differ (ARI {ari:.3g} < {TRAIN_TEST_ARI})")
    if ari is not None and not compared:
        notes.append(f"clusterings not compared: neither probe's clusters follow the architectures "
                     f"(ARI with them {max(structured, default=float('nan')):.3g} < {TRAIN_TEST_ARCH_CLUSTERS})")
    if not factor_ok:
        notes.append(f"the top factor differs ({tf_tr} on train, {tf_te} on test)")
    return Judgement(verdict, numbers, "; ".join(notes))
