r"""Training trajectories reparametrised by progress, and distances between them.

A run's checkpoints are models ``P_0, P_1, ...`` (in training order) with
progress values ``λ_k`` along the ignorance-to-truth geodesic (SPEC §3). Runs
train at different speeds, so they are compared *at equal progress*, not at
equal step: each run is resampled at a fixed progress grid ``t_0 < ... < t_G``
(SPEC §5).

Resampling (:func:`resample_by_progress`)
    For each grid value ``t`` the *first crossing* is used: the first pair of
    consecutive checkpoints ``(k, k+1)`` with ``λ_k <= t <= λ_{k+1}`` (an upward
    crossing), or checkpoint 0 itself when ``t == λ_0`` (equalities within
    ``atol = 1e-6``, the accuracy of progress on float32 predictions). Between the two
    checkpoints every sample's ``sqrt p`` moves along the great circle of the
    unit sphere joining them (slerp), all samples with the same fraction ``u``.
    When the samples' labels are given, ``u`` is solved so that the progress of
    the interpolated model equals ``t`` (Illinois regula falsi on the closed
    form of progress, started from the linear guess
    ``u = (t - λ_k) / (λ_{k+1} - λ_k)``; progress of the slerp needs only its
    geodesic coefficients, which are themselves a slerp of the two
    checkpoints' coefficients). ``|λ(resampled) - t|`` is reported as
    ``residual`` (below 1e-9 in practice). Without labels the linear guess is
    used and the residual is unknown (NaN). Grid values no upward crossing
    reaches -- above the run's highest progress, below its first (unless a
    later dip and rise crosses them) -- are *unreached*: a boolean mask, their
    rows zero.

Distances
    All distances are the intensive Bhattacharyya distance
    ``d_B = -(1/n) Σ_i log BC_i`` with ``BC_i`` clamped to ``[1e-12, 1]`` as in
    :mod:`deepmanifold.geometry`. Stored ``sqrt p`` are float32; they are
    renormalised per sample in float64 before any inner product, so that
    ``d_B(P, P) = 0`` up to ~1e-16 rather than the ~1e-7 of float32 row sums.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field

import numpy as np
from scipy.special import logsumexp

from deepmanifold import geometry
from deepmanifold.geometry.validation import check_probabilities

__all__ = [
    "Resampled",
    "TrajectorySet",
    "config_dendrogram",
    "distance_to_geodesic_by_progress",
    "mean_trajectory",
    "resample_by_progress",
    "trajectory_distance_matrix",
    "tube_width",
]

FLOOR = 1e-12  # clamp of the Bhattacharyya coefficients, as in geometry
_U_TOL = 1e-13  # root bracket width at which the progress solve stops
_LAMBDA_TOL = 1e-11  # |λ(u) - t| at which the progress solve stops
_MAX_ITER = 100
_SOLVE_ELEMENTS = 1 << 20  # grid points x samples solved at once (bounds temporaries)
_SMALL_ANGLE = 1e-9  # below this, slerp weights are the linear ones


@dataclass
class Resampled:
    """One run resampled at a progress grid (see :func:`resample_by_progress`).

    Attributes
    ----------
    sqrt_p : ndarray, shape (G, n, C), float32
        ``sqrt p`` of the model at each grid value, unit norm per sample; rows
        of unreached grid points are zero.
    reached : ndarray, shape (G,), bool
    monotone : bool
        Progress is non-decreasing along the checkpoints.
    n_backtracks : int
        Number of consecutive checkpoint pairs along which progress decreased.
    residual : ndarray, shape (G,), float64
        ``|λ(resampled model) - t|``; 0 at unreached points; NaN at reached
        points when no labels were given (progress not computable).
    checkpoint : ndarray, shape (G,), int64
        Index ``k`` of the first checkpoint of the bracketing pair (-1 if unreached).
    fraction : ndarray, shape (G,), float64
        Slerp fraction ``u`` within that pair (0 at unreached points).
    """

    sqrt_p: np.ndarray
    reached: np.ndarray
    monotone: bool
    n_backtracks: int
    residual: np.ndarray
    checkpoint: np.ndarray = field(default=None)
    fraction: np.ndarray = field(default=None)


# --------------------------------------------------------------------------- helpers
def _check_grid(grid) -> np.ndarray:
    grid = np.asarray(grid, dtype=np.float64)
    if grid.ndim != 1 or grid.size == 0:
        raise ValueError(f"grid must be a non-empty 1-D array, got shape {grid.shape}")
    if not np.all(np.isfinite(grid)) or grid.min() < 0 or grid.max() > 1:
        raise ValueError("grid values must be finite and lie in [0, 1]")
    if np.any(np.diff(grid) <= 0):
        raise ValueError("grid must be strictly increasing")
    return grid


def _unit_roots(X: np.ndarray, *, log: bool) -> np.ndarray:
    """float64 ``sqrt p`` of validated (log-)probabilities, renormalised per sample."""
    root = np.exp(0.5 * X.astype(np.float64)) if log else np.sqrt(X.astype(np.float64))
    return _normalise(root)


def _normalise(root: np.ndarray) -> np.ndarray:
    """Scale each sample (last axis) to unit Euclidean norm, in place; zero rows stay zero."""
    norm = np.sqrt(np.einsum("...c,...c->...", root, root))
    np.divide(root, norm[..., None], out=root, where=norm[..., None] > 0)
    return root


def _slerp_weights(omega: np.ndarray, u: np.ndarray):
    """Weights ``(w0, w1)`` of the great-circle interpolation, shapes broadcast."""
    with np.errstate(invalid="ignore", divide="ignore"):
        s = np.sin(omega)
        w0 = np.sin((1.0 - u) * omega) / s
        w1 = np.sin(u * omega) / s
    small = omega < _SMALL_ANGLE
    if np.any(small):
        u_b = np.broadcast_to(u, w0.shape)
        w0 = np.where(small, 1.0 - u_b, w0)
        w1 = np.where(small, u_b, w1)
    return w0, w1


def _coefficients(root: np.ndarray, labels: np.ndarray):
    """Geodesic coefficients ``a = <√p, √p0>``, ``b = √p_y`` of unit roots ``(n, C)``."""
    C = root.shape[-1]
    return root.sum(axis=-1) / math.sqrt(C), root[np.arange(root.shape[0]), labels]


def _bhattacharyya_rows(X: np.ndarray, Y: np.ndarray) -> np.ndarray:
    """``d_B`` between matching models of two ``(..., n, C)`` stacks of ``sqrt p`` (float64)."""
    X = _normalise(np.array(X, dtype=np.float64))
    Y = _normalise(np.array(Y, dtype=np.float64))
    bc = np.einsum("...c,...c->...", X, Y)
    np.clip(bc, FLOOR, 1.0, out=bc)
    return -np.log(bc).mean(axis=-1) + 0.0


def _first_crossings(lam: np.ndarray, grid: np.ndarray, atol: float):
    """``(k, reached)`` per grid value: the first upward bracketing pair ``(k, k+1)``."""
    G = grid.shape[0]
    k = np.full(G, -1, dtype=np.int64)
    at_start = np.abs(grid - lam[0]) <= atol
    k[at_start] = 0
    if lam.shape[0] > 1:
        lo, hi = lam[:-1], lam[1:]
        cross = (lo[None, :] - atol <= grid[:, None]) & (grid[:, None] <= hi[None, :] + atol)  # (G, K-1)
        cross &= (lo <= hi)[None, :] | (np.abs(grid[:, None] - lo[None, :]) <= atol)
        any_cross = cross.any(axis=1)
        first = np.argmax(cross, axis=1)
        todo = any_cross & ~at_start
        k[todo] = first[todo]
    return k, k >= 0


# --------------------------------------------------------------------------- resampling
def resample_by_progress(P, progress, grid, *, log: bool = False, labels=None,
                         atol: float = 1e-6) -> Resampled:
    """Resample one run's checkpoints at a progress grid, along great circles.

    Parameters
    ----------
    P : array_like, shape (K, n, C)
        The run's checkpoints in training order: probabilities, or natural-log
        probabilities with ``log=True``. Read one checkpoint at a time (an
        ``np.memmap`` is fine).
    progress : array_like, shape (K,)
        Progress of each checkpoint (from :func:`deepmanifold.geometry.progress`).
    grid : array_like, shape (G,)
        Strictly increasing values in ``[0, 1]``.
    log : bool, default False
        ``P`` holds log-probabilities.
    labels : array_like of int, shape (n,), optional
        True labels of the samples. When given, the slerp fraction ``u`` within
        the bracketing pair is solved so that the progress of the interpolated
        model equals ``t`` (to ~1e-11), and ``residual`` reports
        ``|λ - t|``. Without labels ``u = (t - λ_k) / (λ_{k+1} - λ_k)`` and
        ``residual`` is NaN at reached points.
    atol : float, default 1e-6
        A grid value within ``atol`` of a checkpoint's progress counts as
        reached by that checkpoint (progress of float32 predictions is only
        accurate to ~1e-7, so a run ending exactly at ``t = 0.9`` may report
        ``0.8999999``); ``residual`` still reports the true ``|λ - t|``.

    Returns
    -------
    Resampled

    Notes
    -----
    First crossing: grid value ``t`` is taken from the first consecutive pair
    ``(k, k+1)`` with ``λ_k <= t <= λ_{k+1}``, or from checkpoint 0 when
    ``t == λ_0`` (both up to ``atol``). Downward crossings (progress going back) are never used: a run
    that backtracks keeps the model from its first passage. ``t`` with no
    such pair is unreached. Both checkpoints' ``sqrt p`` are renormalised per
    sample (float32 softmax rows are off by ~1e-7) before the slerp, so the
    result is on the unit sphere; a sample that does not move between the two
    checkpoints (angle < 1e-9) is interpolated linearly.

    The progress of the slerp at fraction ``u`` is continuous in ``u`` and
    brackets ``t`` at ``u = 0, 1`` (up to the accuracy of the given
    ``progress``), so the solve always finds a root; it uses the closed form
    ``a(u) = [sin((1-u)ω) a_k + sin(uω) a_{k+1}] / sin ω`` (same for ``b``)
    per sample, ``ω`` the sample's angle between the two checkpoints, and
    :func:`deepmanifold.geometry.progress_from_coefficients`.

    Cost: one pass over ``P`` (plus re-reading the bracketing checkpoints),
    then ``O(G n)`` per solver iteration (typically < 10 iterations).
    Memory: the ``G n C`` float32 result and ``O(n C)`` float64 temporaries.
    """
    P = P if hasattr(P, "shape") and hasattr(P, "dtype") else np.asarray(P)
    if len(P.shape) != 3 or 0 in P.shape:
        raise ValueError(f"P: expected shape (K, n, C), non-empty, got shape {tuple(P.shape)}")
    K, n, C = (int(s) for s in P.shape)
    lam = np.asarray(progress, dtype=np.float64)
    if lam.shape != (K,):
        raise ValueError(f"progress must have shape ({K},) like P's checkpoints, got {lam.shape}")
    if not np.all(np.isfinite(lam)):
        raise ValueError("progress must be finite")
    grid = _check_grid(grid)
    G = grid.shape[0]
    if labels is not None:
        labels = np.asarray(labels)
        if labels.shape != (n,) or labels.dtype.kind not in "iu" or labels.min() < 0 or labels.max() >= C:
            raise ValueError(f"labels must be {n} integers in [0, {C})")
        labels = labels.astype(np.int64)

    steps = np.diff(lam)
    n_back = int(np.count_nonzero(steps < 0))
    if not atol >= 0:
        raise ValueError(f"atol must be >= 0, got {atol!r}")
    k, reached = _first_crossings(lam, grid, float(atol))

    # One pass over the checkpoints: validation, geodesic coefficients, and the
    # per-sample angle between consecutive checkpoints (only pairs that are used).
    used_pairs = np.unique(k[reached & (k < K - 1)])
    need_pair = np.zeros(K, dtype=bool)
    need_pair[used_pairs] = True
    if labels is not None:
        a_ck, b_ck = np.empty((K, n)), np.empty((K, n))
    omega = np.zeros((K, n))
    prev = None
    for j in range(K):
        X = check_probabilities(np.asarray(P[j:j + 1]), "P", log=log, ndim=3, offset=j)[0]
        root = _unit_roots(X, log=log)
        if labels is not None:
            a_ck[j], b_ck[j] = _coefficients(root, labels)
        if j > 0 and need_pair[j - 1]:
            chord = np.sqrt(np.einsum("ic,ic->i", root - prev, root - prev))
            omega[j - 1] = 2.0 * np.arcsin(np.minimum(chord / 2.0, 1.0))
        prev = root

    # Slerp fraction per reached grid point.
    u = np.zeros(G)
    residual = np.zeros(G)
    inner = np.flatnonzero(reached)
    if K > 1 and inner.size:
        kk = np.minimum(k[inner], K - 2)
        lo, hi = lam[kk], lam[kk + 1]
        t = grid[inner]
        span = hi - lo
        with np.errstate(invalid="ignore", divide="ignore"):
            guess = np.where(span > 0, (t - lo) / np.where(span > 0, span, 1.0), 0.0)
        guess = np.where(t <= lo, 0.0, np.where(t >= hi, 1.0, guess))
        at_start_only = k[inner] == K - 1  # only possible when t == λ_0 with K == 1
        guess[at_start_only] = 0.0
        u[inner] = np.clip(guess, 0.0, 1.0)
        if labels is not None:
            solve = (t > lo) & (t < hi)
            idx = inner[solve]
            if idx.size:
                u[idx] = _solve_fraction(a_ck, b_ck, omega, k[idx], grid[idx], lam, u[idx], C)
    if labels is not None and inner.size:
        residual[inner] = np.abs(_progress_at(a_ck, b_ck, omega, np.minimum(k[inner], K - 1), u[inner], C)
                                 - grid[inner])
    elif inner.size:
        residual[inner] = np.nan

    # The resampled models, one grid point at a time (checkpoints re-read per pair).
    out = np.zeros((G, n, C), dtype=np.float32)
    cache: dict[int, np.ndarray] = {}

    def root_of(j):
        if j not in cache:
            if len(cache) > 2:
                cache.pop(next(iter(cache)))
            cache[j] = _unit_roots(np.asarray(P[j]), log=log)
        return cache[j]

    for g in inner:
        j = int(k[g])
        if u[g] == 0.0 or j == K - 1:
            res = root_of(j)
        elif u[g] == 1.0:
            res = root_of(j + 1)
        else:
            w0, w1 = _slerp_weights(omega[j], u[g])
            res = _normalise(w0[:, None] * root_of(j) + w1[:, None] * root_of(j + 1))
        out[g] = res
    return Resampled(sqrt_p=out, reached=reached, monotone=n_back == 0, n_backtracks=n_back,
                     residual=residual, checkpoint=k, fraction=u)


def _progress_at(a_ck, b_ck, omega, k, u, C):
    """Progress of the slerp at fraction ``u`` in pair ``(k, k+1)``, per entry, in chunks."""
    K, n = a_ck.shape
    out = np.empty(k.shape[0])
    step = max(1, _SOLVE_ELEMENTS // n)
    for s in range(0, k.shape[0], step):
        kk, uu = k[s:s + step], u[s:s + step]
        k1 = np.minimum(kk + 1, K - 1)
        w0, w1 = _slerp_weights(omega[kk], uu[:, None])
        a = w0 * a_ck[kk] + w1 * a_ck[k1]
        b = w0 * b_ck[kk] + w1 * b_ck[k1]
        out[s:s + step] = geometry.progress_from_coefficients(np.maximum(a, 1e-300), np.maximum(b, 0.0), C)
    return out


def _solve_fraction(a_ck, b_ck, omega, k, t, lam, u0, C):
    """``u`` in ``[0, 1]`` with ``λ(slerp_k(u)) = t``: Illinois regula falsi, vectorised."""
    ul, uh = np.zeros_like(u0), np.ones_like(u0)
    fl, fh = lam[k] - t, lam[k + 1] - t  # <= 0 and >= 0 by the choice of the bracket
    u = u0.copy()
    best_u, best_f = u0.copy(), np.full(u0.shape, np.inf)
    side = np.zeros(u0.shape, dtype=np.int8)
    active = np.arange(u0.shape[0])
    for _ in range(_MAX_ITER):
        f = _progress_at(a_ck, b_ck, omega, k[active], u[active], C) - t[active]
        better = np.abs(f) < best_f[active]
        best_u[active[better]], best_f[active[better]] = u[active][better], np.abs(f)[better]
        a_idx = active
        low = f < 0
        # Illinois: halve the value kept at the end that was kept the previous time too.
        keep_hi = low & (side[a_idx] == -1)
        keep_lo = ~low & (side[a_idx] == 1)
        fh[a_idx[keep_hi]] *= 0.5
        fl[a_idx[keep_lo]] *= 0.5
        ul[a_idx[low]], fl[a_idx[low]] = u[a_idx[low]], f[low]
        uh[a_idx[~low]], fh[a_idx[~low]] = u[a_idx[~low]], f[~low]
        side[a_idx] = np.where(low, -1, 1)
        done = (np.abs(f) <= _LAMBDA_TOL) | (uh[a_idx] - ul[a_idx] <= _U_TOL)
        active = a_idx[~done]
        if active.size == 0:
            break
        denom = fh[active] - fl[active]
        with np.errstate(invalid="ignore", divide="ignore"):
            new = ul[active] - fl[active] * (uh[active] - ul[active]) / denom
        bad = ~np.isfinite(new) | (new <= ul[active]) | (new >= uh[active])
        new[bad] = 0.5 * (ul[active][bad] + uh[active][bad])
        u[active] = new
    return best_u


# --------------------------------------------------------------------------- the set of runs
@dataclass
class TrajectorySet:
    """Many runs resampled at one progress grid, on the same probe samples.

    Attributes
    ----------
    run_ids : list of str
    labels : list of str
        Display label of each run (``config["label"]``, else the run id).
    configs : list of dict
    grid : ndarray, shape (G,)
    sqrt_p : ndarray, shape (R, G, n, C), float32
        Resampled ``sqrt p``; rows of unreached grid points are zero. Takes
        ``R G n C 4`` bytes (e.g. 300 runs x 101 points x 2,000 samples x 10
        classes = 2.4 GB): thin the grid or the probe set for large sweeps.
    reached : ndarray, shape (R, G), bool
    monotone : ndarray, shape (R,), bool
    progress, steps, epochs : list of ndarray
        Per run, per checkpoint: progress, optimiser step, epoch.
    n_backtracks : ndarray, shape (R,), int
    residual : ndarray, shape (R, G)
        ``|λ(resampled) - t|`` (see :class:`Resampled`).
    sample_labels : ndarray, shape (n,), optional
        True labels of the probe samples.
    probe : str, optional
        Probe-set name the predictions came from.
    """

    run_ids: list
    labels: list
    configs: list
    grid: np.ndarray
    sqrt_p: np.ndarray
    reached: np.ndarray
    monotone: np.ndarray
    progress: list
    steps: list
    epochs: list
    n_backtracks: np.ndarray = None
    residual: np.ndarray = None
    sample_labels: np.ndarray = None
    probe: str | None = None

    def __len__(self) -> int:
        return len(self.run_ids)

    def index(self, run_id: str) -> int:
        """Position of ``run_id`` (or of a run label) in the set."""
        if run_id in self.run_ids:
            return self.run_ids.index(run_id)
        if run_id in self.labels:
            return self.labels.index(run_id)
        raise KeyError(f"no run {run_id!r} in this trajectory set")

    @classmethod
    def from_runs(cls, runs, sample_labels, grid=None, *, log: bool = False, run_ids=None, labels=None,
                  configs=None, progress=None, steps=None, epochs=None, probe=None) -> "TrajectorySet":
        """Resample in-memory (or memory-mapped) runs.

        Parameters
        ----------
        runs : sequence of array_like, each (K_r, n, C)
            Checkpoints of each run (probabilities, or log-probabilities with ``log=True``).
        sample_labels : array_like of int, shape (n,)
        grid : array_like, shape (G,), default ``np.linspace(0, 1, 101)``
        run_ids, labels, configs, steps, epochs : optional per-run sequences
            Defaults: ``"run-<r>"``, the run ids, ``{}``, ``arange(K_r)``, NaN.
        progress : sequence of (K_r,) arrays, optional
            Progress of each run's checkpoints; computed with
            :func:`deepmanifold.geometry.progress` if not given.
        """
        grid = _check_grid(np.linspace(0.0, 1.0, 101) if grid is None else grid)
        runs = list(runs)
        R = len(runs)
        if R == 0:
            raise ValueError("no runs given")
        run_ids = [f"run-{r}" for r in range(R)] if run_ids is None else list(run_ids)
        labels = list(run_ids) if labels is None else [str(x) for x in labels]
        configs = [{} for _ in range(R)] if configs is None else list(configs)
        for name, seq in (("run_ids", run_ids), ("labels", labels), ("configs", configs)):
            if len(seq) != R:
                raise ValueError(f"{name} has {len(seq)} entries for {R} runs")
        sample_labels = np.asarray(sample_labels)
        loaders = [(lambda x=x: x) for x in runs]
        return cls._build(loaders, sample_labels, grid, log=log, run_ids=run_ids, labels=labels,
                          configs=configs, progress=progress, steps=steps, epochs=epochs, probe=probe)

    @classmethod
    def from_store(cls, store, probe: str = "test", grid=None, runs=None) -> "TrajectorySet":
        """Resample every usable run of a store (or the ones named in ``runs``).

        Runs are read one at a time (the store memory-maps them) and resampled
        at once, so peak memory is the result (``R G n C 4`` bytes, see the
        class docstring) plus one run's predictions. Progress is computed on
        the probe set's labels with :func:`deepmanifold.geometry.progress`.

        Parameters
        ----------
        store : deepmanifold.store.Store
        probe : str, default "test"
        grid : array_like, default ``np.linspace(0, 1, 101)``
        runs : iterable of str, optional
            Run ids to keep (in this order); each must be usable.

        Warns
        -----
        UserWarning
            Once naming the runs left out (diverged, damaged, no such probe
            set), once naming the runs whose progress is not monotone (their
            first crossing of each grid value is used).

        Raises
        ------
        ValueError
            No usable run, an unknown or unusable run in ``runs``, or runs on
            different probe sets.
        """
        from deepmanifold.analysis.embedding import usable_runs

        grid = _check_grid(np.linspace(0.0, 1.0, 101) if grid is None else grid)
        records, excluded = usable_runs(store, probe)
        if runs is not None:
            wanted = [r.run_id if hasattr(r, "run_id") else str(r) for r in runs]
            by_id = {rec.run_id: rec for rec in records}
            missing = [r for r in wanted if r not in by_id]
            if missing:
                raise ValueError(f"runs not usable on probe set {probe!r} in {store.root}: {', '.join(missing)}")
            records = [by_id[r] for r in wanted]
        elif excluded:
            warnings.warn("left out of the trajectories: "
                          + "; ".join(f"{label} ({why})" for label, why in excluded), UserWarning, stacklevel=2)
        if not records:
            raise ValueError(f"no complete run with predictions on probe set {probe!r} in {store.root}")
        sample_labels = store.probe(records[0].probes[probe]).labels
        metrics = [store.metrics(rec.run_id) for rec in records]
        loaders = [(lambda rid=rec.run_id: store.logp(rid, probe)) for rec in records]
        return cls._build(
            loaders, sample_labels, grid, log=True,
            run_ids=[rec.run_id for rec in records],
            labels=[str(rec.config.get("label", rec.run_id)) for rec in records],
            configs=[rec.config for rec in records],
            steps=[m["step"] for m in metrics], epochs=[m["epoch"] for m in metrics],
            probe=probe, stacklevel=3,
        )

    @classmethod
    def _build(cls, loaders, sample_labels, grid, *, log, run_ids, labels, configs, progress=None,
               steps=None, epochs=None, probe=None, stacklevel=3):
        R, G = len(loaders), grid.shape[0]
        sqrt_p = reached = residual = None
        monotone = np.zeros(R, dtype=bool)
        backtracks = np.zeros(R, dtype=np.int64)
        progs, steps_out, epochs_out = [], [], []
        for r, load in enumerate(loaders):
            X = load()
            K, n, C = X.shape
            if sqrt_p is None:
                sqrt_p = np.zeros((R, G, n, C), dtype=np.float32)
                reached = np.zeros((R, G), dtype=bool)
                residual = np.zeros((R, G))
            elif (n, C) != sqrt_p.shape[2:]:
                raise ValueError(f"run {run_ids[r]} has (n, C) = {(n, C)}, the first run {sqrt_p.shape[2:]}")
            lam = (np.asarray(progress[r], dtype=np.float64) if progress is not None
                   else np.atleast_1d(geometry.progress(X, sample_labels, log=log)))
            res = resample_by_progress(X, lam, grid, log=log, labels=sample_labels)
            sqrt_p[r], reached[r], residual[r] = res.sqrt_p, res.reached, res.residual
            monotone[r], backtracks[r] = res.monotone, res.n_backtracks
            progs.append(lam)
            steps_out.append(np.arange(K) if steps is None else np.asarray(steps[r]))
            epochs_out.append(np.full(K, np.nan) if epochs is None else np.asarray(epochs[r], dtype=np.float64))
            del X
        bad = [f"{labels[r]} ({backtracks[r]} backtracks)" for r in range(R) if not monotone[r]]
        if bad:
            warnings.warn(f"progress is not monotone along {len(bad)} run(s), the first crossing of each "
                          f"grid value is used: {', '.join(bad)}", UserWarning, stacklevel=stacklevel)
        return cls(run_ids=list(run_ids), labels=list(labels), configs=list(configs), grid=grid,
                   sqrt_p=sqrt_p, reached=reached, monotone=monotone, progress=progs, steps=steps_out,
                   epochs=epochs_out, n_backtracks=backtracks, residual=residual,
                   sample_labels=np.asarray(sample_labels), probe=probe)


# --------------------------------------------------------------------------- distances
def trajectory_distance_matrix(ts: TrajectorySet, *, grid_mask=None, **kwargs) -> np.ndarray:
    """Distance between every two trajectories: mean ``d_B`` at equal progress.

    ``D[r, s]`` is the mean, over the grid points reached by both runs (and
    selected by ``grid_mask``), of ``d_B`` between run ``r``'s and run ``s``'s
    resampled models at that progress. Pairs with no common grid point get
    NaN (they cannot be compared); the diagonal is 0 for every run that
    reaches at least one selected grid point.

    Parameters
    ----------
    ts : TrajectorySet
    grid_mask : array_like of bool, shape (G,), optional
        Grid points to use (default all).
    **kwargs
        Passed to :func:`deepmanifold.geometry.pairwise_distances` (e.g.
        ``n_jobs``, ``device``, ``precision``).

    Returns
    -------
    ndarray, shape (R, R), float64, symmetric

    Notes
    -----
    One :func:`~deepmanifold.geometry.pairwise_distances` call per grid point
    on the runs that reached it (tiled Gram products per sample, one log per
    group of coefficients): ``G R^2 n C / 2`` multiply-adds in all.
    """
    R, G = ts.reached.shape
    mask = np.ones(G, dtype=bool) if grid_mask is None else np.asarray(grid_mask, dtype=bool)
    if mask.shape != (G,):
        raise ValueError(f"grid_mask must have shape ({G},), got {mask.shape}")
    total = np.zeros((R, R))
    count = np.zeros((R, R), dtype=np.int64)
    for g in np.flatnonzero(mask):
        idx = np.flatnonzero(ts.reached[:, g])
        if idx.size == 0:
            continue
        p = _normalise(ts.sqrt_p[idx, g].astype(np.float64))
        np.square(p, out=p)
        D = geometry.pairwise_distances(p, **kwargs) if idx.size > 1 else np.zeros((1, 1))
        total[np.ix_(idx, idx)] += D
        count[np.ix_(idx, idx)] += 1
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(count > 0, total / np.maximum(count, 1), np.nan)
    out = 0.5 * (out + out.T)
    np.fill_diagonal(out, np.where(np.diag(count) > 0, 0.0, np.nan))
    return out


def _members(ts: TrajectorySet, members) -> np.ndarray:
    """Member indices from run ids, labels, indices or a boolean mask."""
    R = len(ts.run_ids)
    members = list(members) if not isinstance(members, np.ndarray) else members
    arr = np.asarray(members)
    if arr.dtype == bool:
        if arr.shape != (R,):
            raise ValueError(f"a boolean member mask must have shape ({R},)")
        idx = np.flatnonzero(arr)
    elif arr.dtype.kind in "iu":
        idx = arr.astype(np.int64)
        if idx.size and (idx.min() < 0 or idx.max() >= R):
            raise ValueError(f"member indices must lie in [0, {R})")
    else:
        idx = np.array([ts.index(str(m)) for m in members], dtype=np.int64)
    if idx.size == 0:
        raise ValueError("no members given")
    return idx


def mean_trajectory(ts: TrajectorySet, members):
    """Mean trajectory of a group of runs: per grid point, the normalised geometric mean.

    At each grid point the mean model of the members that reached it is the
    *normalised geometric mean* of their probabilities,
    ``q_ic ∝ exp(mean_m log p_mic)`` (the normalised arithmetic mean of
    ``log p``), one of the two means SPEC §5 allows. A class to which a member
    gives probability 0 (``sqrt p`` underflows in float32 below ``p ~ 1e-90``)
    gets mean probability 0.

    Parameters
    ----------
    ts : TrajectorySet
    members : sequence of run ids / labels / indices, or a boolean mask of shape (R,)

    Returns
    -------
    sqrt_p : ndarray, shape (G, n, C), float32
        ``sqrt q``; zero rows where no member reached the grid point.
    reached : ndarray, shape (G,), bool
        At least one member reached the grid point.
    """
    idx = _members(ts, members)
    _, G, n, C = ts.sqrt_p.shape
    out = np.zeros((G, n, C), dtype=np.float32)
    reached = ts.reached[idx].any(axis=0)
    for g in np.flatnonzero(reached):
        who = idx[ts.reached[idx, g]]
        roots = _normalise(ts.sqrt_p[who, g].astype(np.float64))
        with np.errstate(divide="ignore"):
            half_log = np.log(roots).mean(axis=0)  # mean of log sqrt p = (mean log p) / 2
        norm = 0.5 * logsumexp(2.0 * half_log, axis=-1, keepdims=True)
        out[g] = np.exp(half_log - norm)
    return out, reached


def tube_width(ts: TrajectorySet, members) -> np.ndarray:
    """Width of a group's tube: mean ``d_B`` of each member to the group's mean trajectory.

    At each grid point, the mean over the members that reached it of ``d_B``
    between the member's resampled model and the :func:`mean_trajectory` of
    the group at that point.

    Returns
    -------
    ndarray, shape (G,), float64
        NaN where fewer than 2 members reached the grid point.
    """
    idx = _members(ts, members)
    mean, _ = mean_trajectory(ts, idx)
    G = ts.grid.shape[0]
    out = np.full(G, np.nan)
    for g in range(G):
        who = idx[ts.reached[idx, g]]
        if who.size >= 2:
            out[g] = _bhattacharyya_rows(ts.sqrt_p[who, g], mean[g][None]).mean()
    return out


def distance_to_geodesic_by_progress(ts: TrajectorySet, labels=None) -> np.ndarray:
    """``d_B`` between each run's resampled model at ``t`` and the geodesic point ``γ(t)``.

    Parameters
    ----------
    ts : TrajectorySet
    labels : array_like of int, shape (n,), optional
        True labels of the probe samples (default ``ts.sample_labels``).

    Returns
    -------
    ndarray, shape (R, G), float64
        NaN where the run did not reach the grid point (``ts.reached``).

    Notes
    -----
    Uses ``<√p_i, √γ_i(t)> = [a_i sin((1-t)θ) + b_i sin(tθ)] / sin θ`` (SPEC §3):
    only the geodesic coefficients of each resampled model are needed. This is
    at least the distance to the geodesic (its minimum over ``t``) and equals it
    when the model's progress is exactly ``t``.
    """
    labels = ts.sample_labels if labels is None else labels
    if labels is None:
        raise ValueError("labels of the probe samples are needed (ts.sample_labels is not set)")
    R, G, n, C = ts.sqrt_p.shape
    labels = np.asarray(labels)
    if labels.shape != (n,):
        raise ValueError(f"labels must have shape ({n},), got {labels.shape}")
    theta = float(np.arccos(1.0 / np.sqrt(C)))
    w0 = np.sin((1.0 - ts.grid) * theta) / np.sin(theta)
    w1 = np.sin(ts.grid * theta) / np.sin(theta)
    out = np.full((R, G), np.nan)
    for r in range(R):
        gs = np.flatnonzero(ts.reached[r])
        if gs.size == 0:
            continue
        roots = _normalise(ts.sqrt_p[r, gs].astype(np.float64))  # (g, n, C)
        a = roots.sum(axis=-1) / math.sqrt(C)
        b = roots[:, np.arange(n), labels]
        inner = w0[gs, None] * a + w1[gs, None] * b
        np.clip(inner, FLOOR, 1.0, out=inner)
        out[r, gs] = -np.log(inner).mean(axis=-1) + 0.0
    return out


# --------------------------------------------------------------------------- dendrogram
def config_dendrogram(D, labels) -> dict:
    """Complete-linkage dendrogram of runs (or configurations) from a distance matrix.

    Parameters
    ----------
    D : array_like, shape (R, R)
        Symmetric, non-negative, e.g. from :func:`trajectory_distance_matrix`
        (or averaged over seeds per configuration). Symmetrised and its
        diagonal zeroed before use.
    labels : sequence of str, length R
        Leaf names.

    Returns
    -------
    dict (JSON-serialisable)
        ``linkage``: the ``(R-1) x 4`` SciPy linkage matrix as nested lists;
        ``leaves``: leaf indices in dendrogram order; ``labels``: the labels as
        given; ``leaf_labels``: labels in leaf order; ``icoord``/``dcoord``:
        the segment coordinates from ``scipy.cluster.hierarchy.dendrogram`` for
        drawing; ``method``: ``"complete"``.

    Raises
    ------
    ValueError
        ``D`` not square, of the wrong size, negative or infinite; NaN entries
        (pairs of runs with no common progress) are named -- drop those runs or
        restrict the grid first.
    """
    from scipy.cluster.hierarchy import dendrogram, leaves_list, linkage
    from scipy.spatial.distance import squareform

    D = np.asarray(D, dtype=np.float64)
    labels = [str(x) for x in labels]
    if D.ndim != 2 or D.shape[0] != D.shape[1]:
        raise ValueError(f"D must be a square matrix, got shape {D.shape}")
    R = D.shape[0]
    if len(labels) != R:
        raise ValueError(f"{len(labels)} labels for a {R} x {R} matrix")
    if R == 0:
        raise ValueError("D is empty")
    off = ~np.eye(R, dtype=bool)
    nan = np.isnan(D) & off
    if nan.any():
        pairs = [(labels[i], labels[j]) for i, j in zip(*np.nonzero(np.triu(nan)))]
        shown = ", ".join(f"{a}/{b}" for a, b in pairs[:10]) + (" ..." if len(pairs) > 10 else "")
        raise ValueError(f"D has NaN for {len(pairs)} pair(s) of runs with no progress in common "
                         f"({shown}); drop those runs or restrict the grid before clustering")
    if np.any(np.isinf(D[off])) or np.any(D[off] < 0):
        raise ValueError("D must be finite and non-negative")
    if R == 1:
        return {"linkage": [], "leaves": [0], "labels": labels, "leaf_labels": labels,
                "icoord": [], "dcoord": [], "method": "complete"}
    S = 0.5 * (D + D.T)
    np.fill_diagonal(S, 0.0)
    Z = linkage(squareform(S, checks=False), method="complete")
    leaves = [int(i) for i in leaves_list(Z)]
    dn = dendrogram(Z, no_plot=True)
    return {
        "linkage": [[float(v) for v in row] for row in Z],
        "leaves": leaves,
        "labels": labels,
        "leaf_labels": [labels[i] for i in leaves],
        "icoord": [[float(v) for v in seg] for seg in dn["icoord"]],
        "dcoord": [[float(v) for v in seg] for seg in dn["dcoord"]],
        "method": "complete",
    }
