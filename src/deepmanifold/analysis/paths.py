r"""Analyses of whole training paths, after the reference study (Mao et al., PNAS 2024).

Each run is compared with the others at equal progress (docs/method.md §5); these
functions turn those comparisons into the study's trajectory-level pictures. Every
result records the progress grid it used (``grid``: its name, number of points and
range), because the same runs compared over different grids give different numbers.

:func:`trajectory_inpca`
    InPCA (docs/method.md §4.1) with one point per *run*: the squared-distance matrix
    is the trajectory distance matrix (mean :math:`d_B` at equal progress,
    docs/method.md §5.3), bordered by one more trajectory, the ignorance-truth geodesic
    itself: its model at grid value :math:`t` is :math:`\gamma(t)`
    (:func:`deepmanifold.geometry.geodesic`), so its distance to run :math:`r` is
    :math:`\operatorname{mean}_t d_B(P_r(t), \gamma(t))` over the grid points the run
    has a model at. Runs that follow the geodesic embed at the geodesic's point.
:func:`geodesic_distance_by_group`
    Distance to the geodesic against progress,
    :math:`d_B(P_r(t), \gamma(t))` (:func:`~deepmanifold.analysis.trajectories.distance_to_geodesic_by_progress`),
    averaged over the runs of each value of a configuration key (architecture,
    optimiser, ...), at each grid point over the runs that reached it.
:func:`joint_embedding`
    One InPCA of the checkpoints on the train and the test probe together. A
    checkpoint on both probes is the product distribution over the
    :math:`n_a + n_b` samples of the two probes (docs/method.md §1), so its intensive
    distance is the sample-weighted mean of the two probes' distances,

    .. math::

        d_B^{a \cup b} = \frac{n_a\, d_B^{a} + n_b\, d_B^{b}}{n_a + n_b}

    (:func:`joint_distances`), exact because :math:`d_B` is a mean over samples.
:func:`trajectory_heatmap`
    The trajectory distance matrix with runs ordered by the leaves of its
    complete-linkage dendrogram, so that runs travelling the same path sit in blocks.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from deepmanifold import geometry
from deepmanifold.analysis.trajectories import (TrajectorySet, config_dendrogram, distance_to_geodesic_by_progress,
                                                probabilities_from_roots, trajectory_distance_matrix)
from deepmanifold.geometry.validation import check_distance_matrix, check_labels
from deepmanifold.utils import flatten, jsonable

__all__ = ["GROUP_KEYS", "GeodesicDistanceByGroup", "GridUsed", "GroupCurve", "JointEmbedding",
           "TrajectoryHeatmap", "TrajectoryInPCA", "geodesic_distance_by_group", "joint_distances",
           "joint_embedding", "trajectory_heatmap", "trajectory_inpca"]

#: Configuration keys :func:`geodesic_distance_by_group` groups runs by: architecture and optimiser.
GROUP_KEYS = ("arch", "optimizer")
#: Name of the group of runs without the key.
NOT_SET = "not set"


@dataclass(frozen=True)
class GridUsed:
    """Which progress grid a comparison used.

    Attributes
    ----------
    name : str
        What the selection is, e.g. ``"all"`` or ``"reached by >= 90 % of runs"``.
    points : int
        Grid points used.
    low, high : float or None
        Smallest and largest grid value used (None when no point is).
    """

    name: str
    points: int
    low: float | None
    high: float | None

    @classmethod
    def of(cls, grid: np.ndarray, mask: np.ndarray, name: str) -> "GridUsed":
        used = grid[mask]
        return cls(name=str(name), points=int(used.size), low=float(used.min()) if used.size else None,
                   high=float(used.max()) if used.size else None)

    def to_dict(self) -> dict:
        return {"name": self.name, "points": self.points, "low": self.low, "high": self.high}


def _grid_mask(ts: TrajectorySet, grid_mask) -> np.ndarray:
    G = ts.grid.shape[0]
    mask = np.ones(G, dtype=bool) if grid_mask is None else np.asarray(grid_mask)
    if mask.shape != (G,) or mask.dtype != bool:
        raise ValueError(f"grid_mask must be a boolean array of shape ({G},), got {mask.dtype} {mask.shape}")
    return mask


def _has_model(ts: TrajectorySet, include_held: bool) -> np.ndarray:
    """``(R, G)``: the runs' grid points compared at equal progress -- those reached, and with
    ``include_held`` those holding the run's last checkpoint past its highest progress
    (``TrajectorySet.held``), as :func:`trajectory_distance_matrix` selects them."""
    held = getattr(ts, "held", None) if include_held else None
    return ts.reached if held is None else ts.reached | held


# ----------------------------------------------------------------------------- trajectory-level InPCA
@dataclass(frozen=True, eq=False)
class TrajectoryInPCA:
    """Runs as points, with the geodesic as a reference trajectory (:func:`trajectory_inpca`).

    Attributes
    ----------
    run_ids, run_labels : list of str
    coords : ndarray, shape (R, k)
        Each run's coordinates.
    geodesic_coords : ndarray, shape (k,)
        The geodesic's coordinates (embedded with the runs).
    distance_to_geodesic : ndarray, shape (R,)
        Mean ``d_B(P_r(t), γ(t))`` over the grid points used: the bordering row.
    matrix : ndarray, shape (R + 1, R + 1)
        The embedded matrix: runs, then the geodesic last.
    eigenvalues, signature, explained_stress : ndarray, shape (k,)
        Of the embedding (docs/method.md §4).
    grid : GridUsed
    """

    run_ids: list
    run_labels: list
    coords: np.ndarray
    geodesic_coords: np.ndarray
    distance_to_geodesic: np.ndarray
    matrix: np.ndarray
    eigenvalues: np.ndarray
    signature: np.ndarray
    explained_stress: np.ndarray
    grid: GridUsed

    def to_dict(self) -> dict:
        """JSON form (``analyses["trajectory_inpca"]``): ``runs`` (one
        ``{"run_id", "label", "coords": [k], "distance_to_geodesic"}`` per run), ``geodesic``
        (``{"coords": [k]}``), ``eigenvalues``, ``signature``, ``explained_stress`` and
        ``grid`` (:meth:`GridUsed.to_dict`)."""
        runs = [{"run_id": i, "label": s, "coords": c, "distance_to_geodesic": d}
                for i, s, c, d in zip(self.run_ids, self.run_labels, self.coords, self.distance_to_geodesic)]
        return jsonable({"runs": runs, "geodesic": {"coords": self.geodesic_coords},
                         "eigenvalues": self.eigenvalues, "signature": self.signature,
                         "explained_stress": self.explained_stress, "grid": self.grid.to_dict()})


def _to_geodesic(ts: TrajectorySet, mask: np.ndarray, labels, include_held: bool) -> np.ndarray:
    """``(R,)``: mean ``d_B(P_r(t), γ(t))`` over the selected grid points run ``r`` is compared at."""
    R, G, n, C = ts.sqrt_p.shape
    if labels is None and ts.sample_labels is None:
        raise ValueError("labels of the probe samples are needed (ts.sample_labels is not set)")
    labels = check_labels(ts.sample_labels if labels is None else labels, n, C)
    has = _has_model(ts, include_held) & mask[None, :]
    out = np.full(R, np.nan)
    for r in range(R):
        gs = np.flatnonzero(has[r])
        if gs.size:
            d = geometry.bhattacharyya(probabilities_from_roots(ts.sqrt_p[r, gs]),
                                       geometry.geodesic(labels, C, ts.grid[gs]))
            out[r] = float(np.mean(d))
    return out


def _no_nan(D: np.ndarray, names: list) -> None:
    bad = np.argwhere(np.triu(np.isnan(D)))
    if bad.size:
        pairs = ", ".join(f"{names[i]}/{names[j]}" for i, j in bad[:10]) + (" ..." if len(bad) > 10 else "")
        raise ValueError(f"{len(bad)} pair(s) share no grid point and cannot be compared ({pairs}); "
                         "drop those runs or choose another grid")


def trajectory_inpca(ts: TrajectorySet, *, grid_mask=None, grid_name: str = "all", labels=None,
                     n_components: int = 3, distances=None, **kwargs) -> TrajectoryInPCA:
    """InPCA of whole runs, the ignorance-truth geodesic added as a reference trajectory.

    Parameters
    ----------
    ts : TrajectorySet
    grid_mask : array_like of bool, shape (G,), optional
        Grid points to compare over (default all), e.g. ``ts.common(0.9)``.
    grid_name : str
        What ``grid_mask`` selects, recorded in the result.
    labels : array_like of int, shape (n,), optional
        True labels of the probe samples (default ``ts.sample_labels``).
    n_components : int, default 3
        Axes (at most ``R + 1``).
    distances : array_like, shape (R, R), optional
        :func:`~deepmanifold.analysis.trajectories.trajectory_distance_matrix` of
        ``ts`` on the same grid, when the caller has it; computed otherwise.
    **kwargs
        Passed to :func:`~deepmanifold.analysis.trajectories.trajectory_distance_matrix`
        (``include_held``, ``n_jobs``, ...). ``include_held`` (default True) selects the
        geodesic's grid points with each run the same way: a run is compared with
        ``γ(t)`` wherever it is compared with the other runs.

    Returns
    -------
    TrajectoryInPCA

    Raises
    ------
    ValueError
        No labels, a bad ``grid_mask``, a ``distances`` of another shape, or two runs
        (or a run and the geodesic) that share no grid point.
    """
    mask = _grid_mask(ts, grid_mask)
    R = len(ts.run_ids)
    D = trajectory_distance_matrix(ts, grid_mask=mask, **kwargs) if distances is None \
        else np.asarray(distances, dtype=np.float64)
    if D.shape != (R, R):
        raise ValueError(f"distances has shape {D.shape}, expected ({R}, {R}) for the runs of ts")
    to_geo = _to_geodesic(ts, mask, labels, kwargs.get("include_held", True))
    full = np.zeros((R + 1, R + 1))
    full[:R, :R], full[:R, R], full[R, :R] = D, to_geo, to_geo
    _no_nan(full, [*ts.run_labels, "geodesic"])
    emb = geometry.inpca(full, n_components=min(n_components, R + 1))
    return TrajectoryInPCA(run_ids=list(ts.run_ids), run_labels=list(ts.run_labels), coords=emb.coords[:R],
                           geodesic_coords=emb.coords[R], distance_to_geodesic=to_geo, matrix=full,
                           eigenvalues=emb.eigenvalues, signature=emb.signature,
                           explained_stress=emb.explained_stress, grid=GridUsed.of(ts.grid, mask, grid_name))


# ----------------------------------------------------------------------------- by group
@dataclass(frozen=True, eq=False)
class GroupCurve:
    """Distance to the geodesic along progress for the runs of one value of a key.

    Attributes
    ----------
    value : str
        The key's value (``"not set"`` for runs without the key).
    runs : list of str
        Run ids of the group.
    mean, sd : ndarray, shape (G,)
        Mean and standard deviation (``ddof=1``) over the group's runs that reached each
        grid point; NaN where none did (``sd``: fewer than two).
    n : ndarray of int, shape (G,)
        Runs of the group that reached each grid point.
    """

    value: str
    runs: list
    mean: np.ndarray
    sd: np.ndarray
    n: np.ndarray

    def to_dict(self) -> dict:
        return jsonable({"value": self.value, "runs": self.runs, "mean": self.mean, "sd": self.sd, "n": self.n})


@dataclass(frozen=True, eq=False)
class GeodesicDistanceByGroup:
    """Distance to the geodesic against progress, by architecture, optimiser, ... (:func:`geodesic_distance_by_group`).

    Attributes
    ----------
    grid : ndarray, shape (G,)
        The progress grid (each group's curve is over the grid points its runs reached).
    groups : dict of str to list of GroupCurve
        For each configuration key, one curve per value, values sorted.
    """

    grid: np.ndarray
    groups: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        """JSON form (``analyses["geodesic_distance_by_group"]``):
        ``{"grid": [G], "groups": {key: [GroupCurve.to_dict(), ...]}}``."""
        return jsonable({"grid": self.grid,
                         "groups": {k: [c.to_dict() for c in curves] for k, curves in self.groups.items()}})


def _group_values(configs, key: str) -> list[str]:
    """Each run's value of the (dotted) configuration ``key`` as text, :data:`NOT_SET` when missing."""
    return [str(flatten(c or {}).get(key, NOT_SET)) for c in configs]


def geodesic_distance_by_group(ts: TrajectorySet, keys=GROUP_KEYS, *, members=None,
                               labels=None) -> GeodesicDistanceByGroup:
    """Group means of the distance to the geodesic along progress, for each configuration key.

    Parameters
    ----------
    ts : TrajectorySet
    keys : sequence of str, default :data:`GROUP_KEYS`
        Configuration keys, dotted when nested (``"arch_options.width"``).
    members : array_like of bool, shape (R,), optional
        Runs to include (e.g. the ordinary ones, not corner-initialised); default all.
    labels : array_like of int, optional
        True labels of the probe samples (default ``ts.sample_labels``).

    Returns
    -------
    GeodesicDistanceByGroup
        Per key, one :class:`GroupCurve` per value among the included runs. Only grid
        points a run reached count (not those holding its last checkpoint): the
        curve is the distance *at* progress ``t``.
    """
    R = len(ts.run_ids)
    keep = np.ones(R, dtype=bool) if members is None else np.asarray(members)
    if keep.shape != (R,) or keep.dtype != bool:
        raise ValueError(f"members must be a boolean array of shape ({R},)")
    keys = [keys] if isinstance(keys, str) else list(keys)
    d = np.where(ts.reached, distance_to_geodesic_by_progress(ts, labels), np.nan)
    groups = {}
    for key in keys:
        values = np.array(_group_values(ts.configs, key), dtype=object)
        curves = []
        for value in sorted(set(values[keep])):
            rows = np.flatnonzero(keep & (values == value))
            curves.append(_curve(value, [ts.run_ids[i] for i in rows], d[rows]))
        groups[key] = curves
    return GeodesicDistanceByGroup(grid=ts.grid.copy(), groups=groups)


def _curve(value: str, runs: list, d: np.ndarray) -> GroupCurve:
    """Mean, sd and count over the rows of ``d`` (runs x grid) that are not NaN."""
    n = np.sum(~np.isnan(d), axis=0)
    total = np.nansum(d, axis=0)
    mean = np.where(n > 0, total / np.maximum(n, 1), np.nan)
    dev = np.nansum((d - mean) ** 2, axis=0)
    sd = np.where(n > 1, np.sqrt(dev / np.maximum(n - 1, 1)), np.nan)
    return GroupCurve(value=str(value), runs=runs, mean=mean, sd=sd, n=n.astype(np.int64))


# ----------------------------------------------------------------------------- joint train + test
def joint_distances(D_a, D_b, n_a: int, n_b: int) -> np.ndarray:
    """Distances of the same models on two probe sets joined: the sample-weighted mean.

    The intensive Bhattacharyya distance is a mean over samples (docs/method.md §2.1),
    so on the union of two probes' samples it is
    ``(n_a D_a + n_b D_b) / (n_a + n_b)``, entry by entry.

    Parameters
    ----------
    D_a, D_b : array_like, shape (T, T)
        The same ``T`` models' distance matrices on probe sets of ``n_a`` and ``n_b`` samples.
    n_a, n_b : int
        Samples of each probe set (positive).

    Returns
    -------
    ndarray, shape (T, T), float64

    Examples
    --------
    >>> float(joint_distances([[0, 1.0], [1.0, 0]], [[0, 4.0], [4.0, 0]], 3, 1)[0, 1])
    1.75
    """
    A, B = check_distance_matrix(D_a, "D_a"), check_distance_matrix(D_b, "D_b")
    if A.shape != B.shape:
        raise ValueError(f"D_a and D_b must cover the same models, got shapes {A.shape} and {B.shape}")
    for name, v in (("n_a", n_a), ("n_b", n_b)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
            raise ValueError(f"{name} must be a positive number of samples, got {v!r}")
    return (n_a * A + n_b * B) / (n_a + n_b)


@dataclass(frozen=True, eq=False)
class JointEmbedding:
    """Checkpoints embedded on two probe sets joined (:func:`joint_embedding`).

    Attributes
    ----------
    probes : list of str
        Names of the two probe sets, e.g. ``["train", "test"]``.
    n_samples : list of int
        Samples of each.
    coords : ndarray, shape (T, k)
    eigenvalues, signature, explained_stress : ndarray, shape (k,)
    run_index : ndarray of int, shape (T,)
    run_ids, run_labels : list of str
    geodesic_t, geodesic_coords : ndarray, shapes (G,) and (G, k)
        The ignorance-truth geodesic on the joined samples, Gower-projected (empty
        when the models were not given).
    """

    probes: list
    n_samples: list
    coords: np.ndarray
    eigenvalues: np.ndarray
    signature: np.ndarray
    explained_stress: np.ndarray
    run_index: np.ndarray
    run_ids: list
    run_labels: list
    geodesic_t: np.ndarray
    geodesic_coords: np.ndarray

    def to_dict(self) -> dict:
        """JSON form (``analyses["joint_embedding"]``): ``probes``, ``n_samples``,
        ``eigenvalues``, ``signature``, ``explained_stress``, ``geodesic``
        (``{"t": [G], "coords": [G x k]}``) and ``runs`` (one
        ``{"run_id", "label", "coords": [K_r x k]}`` per run)."""
        runs = [{"run_id": i, "label": s, "coords": self.coords[self.run_index == r]}
                for r, (i, s) in enumerate(zip(self.run_ids, self.run_labels))]
        return jsonable({"probes": self.probes, "n_samples": self.n_samples, "eigenvalues": self.eigenvalues,
                         "signature": self.signature, "explained_stress": self.explained_stress,
                         "geodesic": {"t": self.geodesic_t, "coords": self.geodesic_coords}, "runs": runs})


def _joint_geodesic(emb, models, labels, n_samples, log: bool, t: np.ndarray) -> np.ndarray:
    """Gower coordinates of geodesic points on the joined samples: the weighted mean of their
    distances on each probe set."""
    rows = 0.0
    for X, y, n in zip(models, labels, n_samples):
        shape = tuple(int(s) for s in X.shape)
        y = check_labels(y, shape[1], shape[2])
        ref = geometry.geodesic(y, shape[2], t)
        if log:
            with np.errstate(divide="ignore"):
                ref = np.log(ref)
        rows = rows + n * geometry.pairwise_distances(ref, X, log=log)
    return emb.transform(rows / sum(n_samples))


def joint_embedding(D_a, D_b, n_a: int, n_b: int, *, probes=("train", "test"), n_components: int = 3,
                    run_index=None, run_ids=None, run_labels=None, models=None, labels=None, log: bool = False,
                    n_geodesic: int = 41) -> JointEmbedding:
    """InPCA of checkpoints on the union of two probe sets (:func:`joint_distances`).

    Parameters
    ----------
    D_a, D_b : array_like, shape (T, T)
        The checkpoints' distance matrices on each probe set (same checkpoints, same order).
    n_a, n_b : int
        Samples of each probe set.
    probes : pair of str
        Their names.
    n_components : int, default 3
    run_index : array_like of int, shape (T,), optional
        Run of each checkpoint (default one run).
    run_ids, run_labels : sequence of str, optional
    models : pair of array_like, shapes (T, n_a, C) and (T, n_b, C), optional
        The checkpoints on each probe set, with ``labels`` (a pair of label arrays),
        to place the geodesic on the joined samples; ``log=True`` when they hold
        log-probabilities.
    n_geodesic : int, default 41

    Returns
    -------
    JointEmbedding
    """
    D = joint_distances(D_a, D_b, n_a, n_b)
    T = D.shape[0]
    idx = np.zeros(T, dtype=np.int64) if run_index is None else np.asarray(run_index)
    if idx.shape != (T,) or idx.dtype.kind not in "iu":
        raise ValueError(f"run_index must be {T} integers, one per checkpoint")
    R = int(idx.max()) + 1 if T else 0
    ids = [f"run-{r}" for r in range(R)] if run_ids is None else [str(r) for r in run_ids]
    names = list(ids) if run_labels is None else [str(r) for r in run_labels]
    if len(ids) < R or len(names) != len(ids):
        raise ValueError(f"run_ids / run_labels must name the {R} runs of run_index")
    emb = geometry.inpca(D, n_components=min(n_components, T))
    t = np.linspace(0.0, 1.0, n_geodesic) if models is not None else np.zeros(0)
    if models is not None:
        if labels is None or len(models) != 2 or len(labels) != 2:
            raise ValueError("models and labels must be pairs (one per probe set)")
        for name, X, n in zip(probes, models, (n_a, n_b)):
            if tuple(X.shape)[:2] != (T, n):
                raise ValueError(f"models of probe {name!r}: expected shape ({T}, {n}, C), got {tuple(X.shape)}")
        geo = _joint_geodesic(emb, models, labels, (n_a, n_b), log, t)
    else:
        geo = np.zeros((0, emb.n_components))
    return JointEmbedding(probes=[str(p) for p in probes], n_samples=[int(n_a), int(n_b)], coords=emb.coords,
                          eigenvalues=emb.eigenvalues, signature=emb.signature,
                          explained_stress=emb.explained_stress, run_index=idx.astype(np.int64), run_ids=ids,
                          run_labels=names, geodesic_t=t, geodesic_coords=geo)


# ----------------------------------------------------------------------------- heatmap
@dataclass(frozen=True, eq=False)
class TrajectoryHeatmap:
    """The trajectory distance matrix in dendrogram order (:func:`trajectory_heatmap`).

    Attributes
    ----------
    run_ids, run_labels : list of str
        In dendrogram-leaf order.
    matrix : ndarray, shape (R, R)
        ``D[order][:, order]``.
    order : ndarray of int, shape (R,)
        Row of ``D`` of each position (the dendrogram's leaves).
    grid : GridUsed
    """

    run_ids: list
    run_labels: list
    matrix: np.ndarray
    order: np.ndarray
    grid: GridUsed

    def to_dict(self) -> dict:
        """JSON form (``analyses["trajectory_heatmap"]``): ``run_ids``, ``run_labels``,
        ``matrix`` (rows and columns in that order), ``order`` and ``grid``."""
        return jsonable({"run_ids": self.run_ids, "run_labels": self.run_labels, "matrix": self.matrix,
                         "order": self.order, "grid": self.grid.to_dict()})


def trajectory_heatmap(D, run_ids, run_labels=None, *, grid: GridUsed) -> TrajectoryHeatmap:
    """Order a trajectory distance matrix by its complete-linkage dendrogram.

    Parameters
    ----------
    D : array_like, shape (R, R)
        Trajectory distances (:func:`~deepmanifold.analysis.trajectories.trajectory_distance_matrix`);
        NaN pairs are refused by the clustering.
    run_ids : sequence of str, length R
    run_labels : sequence of str, optional
        Display names (default the ids).
    grid : GridUsed
        The grid ``D`` was computed over (``GridUsed.of(ts.grid, grid_mask, name)``).

    Returns
    -------
    TrajectoryHeatmap
    """
    ids = [str(r) for r in run_ids]
    names = list(ids) if run_labels is None else [str(r) for r in run_labels]
    if len(names) != len(ids):
        raise ValueError(f"run_labels has {len(names)} entries for {len(ids)} run_ids")
    tree = config_dendrogram(D, names)
    order = np.asarray(tree.leaves, dtype=np.int64)
    M = np.array(D, dtype=np.float64)
    np.fill_diagonal(M, 0.0)
    M = 0.5 * (M + M.T)
    return TrajectoryHeatmap(run_ids=[ids[i] for i in order], run_labels=[names[i] for i in order],
                             matrix=M[np.ix_(order, order)], order=order, grid=grid)
