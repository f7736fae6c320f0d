r"""The tangent experiment of the reference study: how much of the picture four models span.

Mao et al. (PNAS 2024) embed just four models -- ignorance :math:`P^0`, truth
:math:`P^*`, and the *mean models* of the runs at progress 0.3 and 0.7 -- and place
every checkpoint in that small embedding. If the training trajectories explore a
low-dimensional manifold that the mean path spans, this *tangent picture* shows almost
as much of the geometry as the InPCA of all checkpoints together.

Construction (:func:`tangent_picture`)
    1. The four reference models, in this order: ignorance, the mean model at the
       first level, the mean model at the second level, truth. A mean model is the
       normalised geometric mean of the runs' resampled models at that progress
       (:func:`mean_models`, which reads :func:`~deepmanifold.analysis.trajectories.mean_trajectory`,
       docs/method.md §5.3).
    2. Exact InPCA (docs/method.md §4.1) of their ``4 x 4`` matrix of intensive
       Bhattacharyya distances. Four points span at most three axes (the
       double-centred matrix has rank <= 3), so the picture has ``k <= 3`` axes and
       reproduces the four models' distances exactly with ``k = 3``.
    3. Every checkpoint, and points of the ignorance-truth geodesic for the reader,
       placed in it by Gower projection (docs/method.md §4.3) from their distances to
       the four models: the checkpoints never move the axes.

Embedding score (:func:`embedding_score`)
    For ``T`` checkpoints with distance matrix :math:`D` and any embedding of them
    with coordinates :math:`x` and axis signature :math:`s` (docs/method.md §4.1),
    the embedded squared distances are
    :math:`\hat D_{ij} = \sum_k s_k (x_{ik} - x_{jk})^2` and the score is

    .. math::

        \text{score} = 1 - \frac{\lVert D - \hat D \rVert_F}{\lVert D \rVert_F},

    the share of the checkpoints' distances the embedding reproduces, in the
    Frobenius norm over all ordered pairs (1 when :math:`\hat D = D`; it can be
    negative for an embedding worse than none). :class:`TangentPicture` gives it for
    the tangent picture (``score``) and for the top-``k`` InPCA of all checkpoints on
    the same number of axes (``full_score``); ``relative_score = score / full_score``
    says how much of what the best ``k``-axis picture of the checkpoints reproduces the
    four-model picture reproduces too (the full InPCA minimises the stress of the
    double-centred matrix, not this error, so the ratio can slightly exceed 1).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from deepmanifold import geometry
from deepmanifold.analysis.trajectories import TrajectorySet, mean_trajectory, probabilities_from_roots
from deepmanifold.geometry.validation import check_distance_matrix, check_labels, check_probabilities
from deepmanifold.utils import jsonable

__all__ = ["REFERENCE_LEVELS", "TangentPicture", "embedding_score", "mean_models", "tangent_picture"]

#: Progress of the two mean models among the four reference models (the reference study's choice).
REFERENCE_LEVELS = (0.3, 0.7)
#: A progress level counts as on the grid when a grid value is this close to it.
_GRID_TOL = 1e-6
#: Rows of the embedded-distance matrix formed at once by :func:`embedding_score`.
_SCORE_ROWS = 512


@dataclass(frozen=True, eq=False)
class TangentPicture:
    """Checkpoints placed in the InPCA of four reference models (see the module docstring).

    Attributes
    ----------
    levels : ndarray, shape (2,)
        Progress of the two mean models (grid values of the trajectories).
    reference_names : list of str
        ``["ignorance", "mean at progress 0.3", "mean at progress 0.7", "truth"]``.
    reference_coords : ndarray, shape (4, k)
        The four reference models' coordinates.
    eigenvalues : ndarray, shape (k,)
        Signed eigenvalues μ of the four-model InPCA, ``|μ|`` descending.
    signature : ndarray, shape (k,)
        ``+1`` space-like, ``-1`` time-like axis.
    coords : ndarray, shape (T, k)
        The checkpoints, Gower-projected.
    geodesic_t, geodesic_coords : ndarray, shapes (G,) and (G, k)
        Points of the ignorance-truth geodesic, Gower-projected.
    score : float
        :func:`embedding_score` of ``coords`` against the checkpoints' distances.
    full_score : float
        The same for the top-``k`` InPCA of all checkpoints.
    relative_score : float
        ``score / full_score`` (NaN when ``full_score`` is 0).
    run_index : ndarray of int, shape (T,)
        Run of each checkpoint (a position in ``run_ids``).
    run_ids, run_labels : list of str
        The runs, and their display names.
    progress : ndarray, shape (T,)
        Progress of each checkpoint (NaN where not given).
    """

    levels: np.ndarray
    reference_names: list
    reference_coords: np.ndarray
    eigenvalues: np.ndarray
    signature: np.ndarray
    coords: np.ndarray
    geodesic_t: np.ndarray
    geodesic_coords: np.ndarray
    score: float
    full_score: float
    relative_score: float
    run_index: np.ndarray
    run_ids: list
    run_labels: list
    progress: np.ndarray

    @property
    def n_components(self) -> int:
        return int(self.eigenvalues.shape[0])

    def to_dict(self) -> dict:
        """JSON form (``analyses["tangent"]`` of findings.json).

        Keys: ``levels``, ``score``, ``full_score``, ``relative_score``,
        ``n_components``, ``eigenvalues``, ``signature``, ``references``
        (``{"names": [4 str], "coords": [4 x k]}``), ``geodesic``
        (``{"t": [G], "coords": [G x k]}``) and ``runs``: one
        ``{"run_id", "label", "coords": [K_r x k], "progress": [K_r]}`` per run, its
        checkpoints in the order of the distance matrix.
        """
        runs = []
        for r, (run_id, label) in enumerate(zip(self.run_ids, self.run_labels)):
            rows = self.run_index == r
            runs.append({"run_id": run_id, "label": label, "coords": self.coords[rows],
                         "progress": self.progress[rows]})
        return jsonable({
            "levels": self.levels, "score": self.score, "full_score": self.full_score,
            "relative_score": self.relative_score, "n_components": self.n_components,
            "eigenvalues": self.eigenvalues, "signature": self.signature,
            "references": {"names": self.reference_names, "coords": self.reference_coords},
            "geodesic": {"t": self.geodesic_t, "coords": self.geodesic_coords}, "runs": runs})


# ----------------------------------------------------------------------------- score
def embedding_score(D, coords, signature) -> float:
    r"""Share of a distance matrix an embedding reproduces: ``1 - ||D - D̂||_F / ||D||_F``.

    Parameters
    ----------
    D : array_like, shape (T, T)
        Distances between ``T`` models (intensive Bhattacharyya, a squared distance).
    coords : array_like, shape (T, k)
        The same models' coordinates in some InPCA embedding (fitted on them, or
        Gower-projected into another one).
    signature : array_like, shape (k,)
        ``±1`` per axis (``InPCAResult.signature``).

    Returns
    -------
    float
        1 when the embedded squared distances
        :math:`\hat D_{ij} = \sum_k s_k (x_{ik} - x_{jk})^2` equal ``D``; 1 also for
        a ``D`` of zeros embedded at one point. Lower is worse; negative when
        :math:`\lVert D - \hat D \rVert_F > \lVert D \rVert_F`.

    Notes
    -----
    :math:`\hat D` is formed :data:`_SCORE_ROWS` rows at a time, so the temporary
    memory is ``O(T)`` rows rather than a second ``T x T`` matrix.

    Examples
    --------
    Points on a line embedded by their positions reproduce ``(u_i - u_j)^2``:

    >>> u = np.array([0.0, 1.0, 3.0])
    >>> embedding_score((u[:, None] - u) ** 2, u[:, None], [1])
    1.0
    """
    D = check_distance_matrix(D, "D")
    x = np.asarray(coords, dtype=np.float64)
    s = np.asarray(signature, dtype=np.float64)
    T = D.shape[0]
    if x.ndim != 2 or x.shape[0] != T:
        raise ValueError(f"coords: expected shape ({T}, k) for a {T} x {T} D, got shape {x.shape}")
    if s.shape != (x.shape[1],):
        raise ValueError(f"signature: expected shape ({x.shape[1]},) like coords' axes, got shape {s.shape}")
    if not np.all(np.isfinite(x)):
        raise ValueError("coords contains NaN or inf")
    return _score(D, x, s)


def _score(D: np.ndarray, x: np.ndarray, s: np.ndarray) -> float:
    """:func:`embedding_score` of validated float64 arrays."""
    T = D.shape[0]
    sq = np.einsum("ik,ik,k->i", x, x, s)
    err = norm = 0.0
    for a in range(0, T, _SCORE_ROWS):
        b = min(T, a + _SCORE_ROWS)
        block = sq[a:b, None] + sq[None, :] - 2.0 * ((x[a:b] * s) @ x.T)
        block[np.arange(b - a), np.arange(a, b)] = 0.0  # d̂(i, i) = 0 exactly
        err += float(np.sum((D[a:b] - block) ** 2))
        norm += float(np.sum(D[a:b] ** 2))
    if norm == 0.0:
        return 1.0 if err == 0.0 else -np.inf
    return 1.0 - float(np.sqrt(err / norm))


# ----------------------------------------------------------------------------- mean models
def mean_models(ts: TrajectorySet, levels=REFERENCE_LEVELS, members=None) -> tuple[np.ndarray, np.ndarray]:
    """The runs' mean models at given progress levels.

    At each level, the normalised geometric mean of the resampled models at that
    progress (:func:`~deepmanifold.analysis.trajectories.mean_trajectory`) of the members
    that reached it: a run that stopped earlier and holds its last checkpoint there
    (``TrajectorySet.held``) is left out, so the mean is a model *at* that progress.

    Parameters
    ----------
    ts : TrajectorySet
    levels : sequence of float, default :data:`REFERENCE_LEVELS`
        Each must be a value of ``ts.grid`` (within 1e-6).
    members : array_like of bool, shape (R,), optional
        Runs to average (e.g. the ordinary ones, not corner-initialised); default all.

    Returns
    -------
    models : ndarray, shape (L, n, C), float64
        Probabilities of the mean model at each level.
    levels : ndarray, shape (L,)
        The grid values used.

    Raises
    ------
    ValueError
        A level not on the grid or reached by none of the members, or a bad ``members``.
    """
    wanted = np.atleast_1d(np.asarray(levels, dtype=np.float64))
    if wanted.ndim != 1 or wanted.size == 0:
        raise ValueError(f"levels must be a non-empty 1-D sequence, got {levels!r}")
    where = np.abs(ts.grid[None, :] - wanted[:, None]).argmin(axis=1)
    off = np.abs(ts.grid[where] - wanted) > _GRID_TOL
    if off.any():
        raise ValueError(f"levels {wanted[off].tolist()} are not values of the progress grid")
    R = len(ts.run_ids)
    chosen = np.ones(R, dtype=bool) if members is None else np.asarray(members)
    if chosen.shape != (R,) or chosen.dtype != bool:
        raise ValueError(f"members must be a boolean array of shape ({R},)")
    out = []
    for g, level in zip(where, wanted):
        who = np.flatnonzero(chosen & ts.reached[:, g])
        if who.size == 0:
            raise ValueError(f"levels: no run reached progress {level:g}")
        out.append(mean_trajectory(ts, who)[0][g])
    return probabilities_from_roots(np.stack(out)), ts.grid[where].copy()


# ----------------------------------------------------------------------------- the picture
def _references(labels, means: np.ndarray, n_classes: int) -> np.ndarray:
    """The four reference models ``(4, n, C)``: ignorance, the two means, truth."""
    return np.concatenate([geometry.ignorance(labels, n_classes)[None], means,
                           geometry.truth(labels, n_classes)[None]])


def _as_log(P: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore"):
        return np.log(P)


def _check_runs(T: int, run_index, run_ids, run_labels, progress):
    """Per-checkpoint run index and progress, and the run names, with defaults."""
    idx = np.zeros(T, dtype=np.int64) if run_index is None else np.asarray(run_index)
    if idx.shape != (T,) or idx.dtype.kind not in "iu" or (T and idx.min() < 0):
        raise ValueError(f"run_index must be {T} non-negative integers, one per checkpoint")
    R = int(idx.max()) + 1 if T else 0
    ids = [f"run-{r}" for r in range(R)] if run_ids is None else [str(r) for r in run_ids]
    if len(ids) < R:
        raise ValueError(f"run_ids has {len(ids)} entries; run_index refers to {R} runs")
    labels = list(ids) if run_labels is None else [str(r) for r in run_labels]
    if len(labels) != len(ids):
        raise ValueError(f"run_labels has {len(labels)} entries for {len(ids)} runs")
    lam = np.full(T, np.nan) if progress is None else np.asarray(progress, dtype=np.float64)
    if lam.shape != (T,):
        raise ValueError(f"progress must have shape ({T},), one value per checkpoint, got {lam.shape}")
    return idx.astype(np.int64), ids, labels, lam


def tangent_picture(models, labels, means, D, *, log: bool = False, levels=REFERENCE_LEVELS,
                    n_components: int = 3, full: geometry.InPCAResult | None = None, run_index=None,
                    run_ids=None, run_labels=None, progress=None, n_geodesic: int = 41) -> TangentPicture:
    """Place every checkpoint in the InPCA of ignorance, truth and two mean models, and score it.

    Parameters
    ----------
    models : array_like, shape (T, n, C)
        The checkpoints (probabilities, or log-probabilities with ``log=True``); a
        :class:`~deepmanifold.geometry.ModelStack` or memory map is streamed.
    labels : array_like of int, shape (n,)
        True labels of the samples.
    means : array_like, shape (2, n, C)
        Probabilities of the mean models at ``levels`` (:func:`mean_models`).
    D : array_like, shape (T, T)
        The checkpoints' intensive Bhattacharyya distance matrix (e.g.
        ``CheckpointDistances.matrix``), against which both pictures are scored.
    log : bool, default False
        ``models`` hold log-probabilities.
    levels : sequence of 2 floats
        Progress of the two mean models (for the names only).
    n_components : int, default 3
        Axes of the tangent picture and of the full InPCA it is scored against, 1-3.
    full : InPCAResult, optional
        InPCA of ``D`` with at least ``n_components`` axes, when the caller has it
        (the report's picture); computed otherwise.
    run_index : array_like of int, shape (T,), optional
        Run of each checkpoint (default: one run).
    run_ids, run_labels : sequence of str, optional
        The runs' ids and display names.
    progress : array_like, shape (T,), optional
        Progress of each checkpoint, kept for the reader.
    n_geodesic : int, default 41
        Points of the ignorance-truth geodesic to place.

    Returns
    -------
    TangentPicture

    Raises
    ------
    ValueError
        Shapes that disagree (``models``, ``means``, ``D``, ``labels``,
        ``run_index``), invalid probabilities or distances, ``n_components``
        outside 1-3, or a ``full`` embedding of another size.
    """
    if isinstance(n_components, bool) or not isinstance(n_components, (int, np.integer)) \
            or not 1 <= n_components <= 3:
        raise ValueError(f"n_components must be 1, 2 or 3 (four models span 3 axes), got {n_components!r}")
    shape = tuple(int(s) for s in models.shape) if hasattr(models, "shape") else np.shape(models)
    if len(shape) != 3:
        raise ValueError(f"models: expected shape (T, n, C), got shape {shape}")
    T, n, C = shape
    labels = check_labels(labels, n, C)
    means = check_probabilities(means, "means", log=False, ndim=3).astype(np.float64)
    if means.shape != (2, n, C):
        raise ValueError(f"means: expected shape (2, {n}, {C}) like the models' samples, got {means.shape}")
    D = check_distance_matrix(D, "D")
    if D.shape != (T, T):
        raise ValueError(f"D has shape {D.shape}, expected ({T}, {T}) for the {T} models")
    level_arr = np.asarray(levels, dtype=np.float64)
    if level_arr.shape != (2,):
        raise ValueError(f"levels must hold 2 values, got {levels!r}")
    idx, ids, names, lam = _check_runs(T, run_index, run_ids, run_labels, progress)

    refs = _references(labels, means, C)
    emb = geometry.inpca(geometry.pairwise_distances(refs), n_components=n_components, solver="dense")
    to_refs = geometry.pairwise_distances(_as_log(refs) if log else refs, models, log=log)  # (4, T)
    coords = emb.transform(to_refs.T)
    t = np.linspace(0.0, 1.0, n_geodesic)
    geo_coords = emb.transform(geometry.pairwise_distances(geometry.geodesic(labels, C, t), refs))
    if full is None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", geometry.ClampWarning)
            full = geometry.inpca(D, n_components=min(n_components, T))
    elif full.coords.shape[0] != T or full.n_components < min(n_components, T):
        raise ValueError(f"full: expected an InPCA of the {T} models with >= {n_components} axes, "
                         f"got coordinates of shape {full.coords.shape}")
    k = min(n_components, full.n_components)
    score = _score(D, coords, emb.signature.astype(np.float64))
    full_score = _score(D, full.coords[:, :k], full.signature[:k].astype(np.float64))
    return TangentPicture(
        levels=level_arr, reference_names=["ignorance", *(f"mean at progress {v:g}" for v in level_arr), "truth"],
        reference_coords=emb.coords, eigenvalues=emb.eigenvalues, signature=emb.signature, coords=coords,
        geodesic_t=t, geodesic_coords=geo_coords, score=score, full_score=full_score,
        relative_score=score / full_score if full_score != 0 else float("nan"),
        run_index=idx, run_ids=ids, run_labels=names, progress=lam)
