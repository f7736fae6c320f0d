r"""Training trajectories reparametrised by progress, and distances between them.

A run's checkpoints are models ``P_0, P_1, ...`` (in training order) with
progress values ``λ_k`` along the ignorance-to-truth geodesic (docs/method.md §3). Runs
train at different speeds, so they are compared *at equal progress*, not at
equal step: each run is resampled at a fixed progress grid ``t_0 < ... < t_G``
(docs/method.md §5).

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
    ``d_B = -(1/n) Σ_i log BC_i`` computed by :mod:`deepmanifold.geometry`, with
    its clamping rule. Stored ``sqrt p`` are float32; they are renormalised per
    sample in float64 and squared (:func:`probabilities_from_roots`) before any
    distance, so that ``d_B(P, P) = 0`` up to ~1e-16 rather than the ~1e-7 of
    float32 row sums.
"""

from __future__ import annotations

import dataclasses
import warnings
from dataclasses import dataclass, field

import numpy as np
from numba import njit
from scipy.special import logsumexp

from deepmanifold import geometry
from deepmanifold.analysis.checkpoints import usable_runs
from deepmanifold.geometry.validation import check_distance_matrix, check_labels, check_probabilities
from deepmanifold.utils import jsonable

__all__ = [
    "Dendrogram",
    "NearestOnRun",
    "Resampled",
    "TrajectorySet",
    "config_dendrogram",
    "discrete_frechet",
    "distance_to_geodesic_by_progress",
    "distance_to_run",
    "frechet_distance",
    "frechet_distance_matrix",
    "mean_trajectory",
    "probabilities_from_roots",
    "resample_by_progress",
    "trajectory_distance_matrix",
    "tube_width",
]

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
        ``sqrt p`` of the model at each grid value, unit norm per sample: the
        resampled model where reached, the last checkpoint where held, zero
        elsewhere.
    reached : ndarray, shape (G,), bool
        An upward crossing of the checkpoints' progress reaches the grid value.
    monotone : bool
        Progress is non-decreasing along the checkpoints.
    n_backtracks : int
        Number of consecutive checkpoint pairs along which progress decreased.
    residual : ndarray, shape (G,), float64
        ``|λ(resampled model) - t|`` at reached points; NaN there when no
        labels were given (progress not computable); 0 elsewhere.
    checkpoint : ndarray, shape (G,), int64
        Index ``k`` of the first checkpoint of the bracketing pair; ``K - 1``
        at held points, -1 at the other unreached ones.
    fraction : ndarray, shape (G,), float64
        Slerp fraction ``u`` within that pair (0 at unreached points).
    held : ndarray, shape (G,), bool
        Grid values above the run's highest checkpoint progress, where
        ``sqrt_p`` holds the run's last checkpoint (never reached ones).
    """

    sqrt_p: np.ndarray
    reached: np.ndarray
    monotone: bool
    n_backtracks: int
    residual: np.ndarray
    checkpoint: np.ndarray = field(default=None)
    fraction: np.ndarray = field(default=None)
    held: np.ndarray = field(default=None)


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


def probabilities_from_roots(sqrt_p) -> np.ndarray:
    """float64 probabilities from stored square roots, each sample renormalised.

    Stored ``sqrt p`` (:attr:`TrajectorySet.sqrt_p`, float32) have rows whose
    squares sum to 1 only within ~1e-7, which would dominate ``d_B`` of close
    models; each sample is scaled to unit norm in float64 first. Squaring
    loses nothing: the float64 square root of the float64 square of a root is
    that root, so :mod:`deepmanifold.geometry` works on the same roots.

    Parameters
    ----------
    sqrt_p : array_like, shape (..., n, C)
        Square roots of class probabilities; all-zero samples (unreached grid
        points) stay zero.

    Returns
    -------
    ndarray, shape (..., n, C), float64

    Examples
    --------
    >>> probabilities_from_roots(np.float32([[0.6, 0.8000001]])).round(6).tolist()
    [[0.36, 0.64]]
    """
    return np.square(_normalise(np.array(sqrt_p, dtype=np.float64)))


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
                         atol: float = 1e-6, method: str = "angle") -> Resampled:
    """Resample one run's checkpoints at a progress grid, along great circles.

    Parameters
    ----------
    P : array_like, shape (K, n, C)
        The run's checkpoints in training order: probabilities, or natural-log
        probabilities with ``log=True``. Read one checkpoint at a time (an
        ``np.memmap`` is fine).
    progress : array_like, shape (K,)
        Progress of each checkpoint (from :func:`deepmanifold.geometry.progress`
        with the same ``method``).
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
    method : {"angle", "bhattacharyya"}, default "angle"
        The definition of progress (docs/method.md §3.3) the fraction ``u`` is
        solved for.

    Returns
    -------
    Resampled
        Grid values above the run's highest progress are *held*: they carry
        the run's last checkpoint (``checkpoint = K - 1``, ``fraction = 0``,
        ``residual = 0``), the reference study's convention for runs that
        stop early.

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
    if labels is not None:
        labels = check_labels(labels, n, C)
    if not atol >= 0:
        raise ValueError(f"atol must be >= 0, got {atol!r}")
    method = geometry.check_progress_method(method)
    n_back = int(np.count_nonzero(np.diff(lam) < 0))
    k, reached = _first_crossings(lam, grid, float(atol))
    held = ~reached & (grid > lam.max())
    a, b, omega = _checkpoint_geometry(P, log=log, labels=labels, pairs=np.unique(k[reached & (k < K - 1)]))
    u, residual = _fractions(k, reached, grid, lam, a, b, omega, C, method)
    k[held] = K - 1
    out = _interpolate(P, log=log, k=k, u=u, omega=omega, at=np.flatnonzero(reached | held))
    return Resampled(sqrt_p=out, reached=reached, monotone=n_back == 0, n_backtracks=n_back,
                     residual=residual, checkpoint=k, fraction=u, held=held)


def _checkpoint_geometry(P, *, log: bool, labels, pairs: np.ndarray):
    """One pass over the checkpoints: validation, geodesic coefficients, angles.

    Returns ``(a, b, omega)``: the geodesic coefficients ``(K, n)`` of every
    checkpoint (None without ``labels``) and, for the consecutive pairs
    ``(k, k+1)`` listed in ``pairs``, each sample's angle ``omega[k]`` between
    the two checkpoints on the unit sphere (0 for the other pairs).
    """
    K, n, _ = P.shape
    need = np.zeros(K, dtype=bool)
    need[pairs] = True
    a = b = None
    if labels is not None:
        a, b = np.empty((K, n)), np.empty((K, n))
    omega = np.zeros((K, n))
    prev = None
    for j in range(K):
        X = check_probabilities(np.asarray(P[j:j + 1]), "P", log=log, ndim=3, offset=j)[0]
        root = _unit_roots(X, log=log)
        if labels is not None:
            a[j], b[j] = geometry.geodesic_coefficients(np.square(root), labels)
        if j > 0 and need[j - 1]:
            chord = np.sqrt(np.einsum("ic,ic->i", root - prev, root - prev))
            omega[j - 1] = 2.0 * np.arcsin(np.minimum(chord / 2.0, 1.0))
        prev = root
    return a, b, omega


def _fractions(k, reached, grid, lam, a, b, omega, C, method):
    """Slerp fraction ``u`` per grid point and the residual ``|λ - t|`` (NaN without coefficients)."""
    K, G = lam.shape[0], grid.shape[0]
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
        if a is not None:
            solve = (t > lo) & (t < hi)
            idx = inner[solve]
            if idx.size:
                u[idx] = _solve_fraction(a, b, omega, k[idx], grid[idx], lam, u[idx], C, method)
    if inner.size:
        residual[inner] = np.nan if a is None else np.abs(
            _progress_at(a, b, omega, np.minimum(k[inner], K - 1), u[inner], C, method) - grid[inner])
    return u, residual


def _interpolate(P, *, log: bool, k, u, omega, at) -> np.ndarray:
    """The resampled roots ``(G, n, C)`` float32 at grid points ``at`` (others zero).

    Checkpoints are re-read per bracketing pair, at most three held at once.
    """
    K, n, C = P.shape
    out = np.zeros((k.shape[0], n, C), dtype=np.float32)
    cache: dict[int, np.ndarray] = {}

    def root_of(j):
        if j not in cache:
            if len(cache) > 2:
                cache.pop(next(iter(cache)))
            cache[j] = _unit_roots(np.asarray(P[j]), log=log)
        return cache[j]

    for g in at:
        j = int(k[g])
        if u[g] == 0.0 or j == K - 1:
            res = root_of(j)
        elif u[g] == 1.0:
            res = root_of(j + 1)
        else:
            w0, w1 = _slerp_weights(omega[j], u[g])
            res = _normalise(w0[:, None] * root_of(j) + w1[:, None] * root_of(j + 1))
        out[g] = res
    return out


def _progress_at(a_ck, b_ck, omega, k, u, C, method):
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
        out[s:s + step] = geometry.progress_from_coefficients(np.maximum(a, 1e-300), np.maximum(b, 0.0), C,
                                                              method=method)
    return out


def _solve_fraction(a_ck, b_ck, omega, k, t, lam, u0, C, method):
    """``u`` in ``[0, 1]`` with ``λ(slerp_k(u)) = t``: Illinois regula falsi, vectorised."""
    ul, uh = np.zeros_like(u0), np.ones_like(u0)
    fl, fh = lam[k] - t, lam[k + 1] - t  # <= 0 and >= 0 by the choice of the bracket
    u = u0.copy()
    best_u, best_f = u0.copy(), np.full(u0.shape, np.inf)
    side = np.zeros(u0.shape, dtype=np.int8)
    active = np.arange(u0.shape[0])
    for _ in range(_MAX_ITER):
        f = _progress_at(a_ck, b_ck, omega, k[active], u[active], C, method) - t[active]
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
    run_labels : list of str
        Display label of each run (``config["label"]``, else the run id).
    configs : list of dict
    grid : ndarray, shape (G,)
        Progress values, by default the 101 points ``0, 0.01, ..., 1``.
    sqrt_p : ndarray, shape (R, G, n, C), float32
        Resampled ``sqrt p``: the model at progress ``t`` where reached, the
        run's last checkpoint where held, zero elsewhere. Takes ``R G n C 4``
        bytes (e.g. 300 runs x 101 points x 2,000 samples x 10 classes =
        2.4 GB): thin the grid or the probe set for large sweeps.
    reached : ndarray, shape (R, G), bool
        The run's progress crossed ``t`` (upwards): ``sqrt_p`` has progress ``t``.
    held : ndarray, shape (R, G), bool
        Grid points above the run's highest progress, where ``sqrt_p`` holds
        the run's last checkpoint: with them every run that starts at
        progress 0 has a model at every grid point (the reference study's
        convention for runs that stop early). Disjoint from ``reached``.
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
    progress_method : str
        The definition of progress (``"angle"`` or ``"bhattacharyya"``,
        docs/method.md §3.3) of ``progress``, ``grid`` and the resampling.
    """

    run_ids: list
    run_labels: list
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
    held: np.ndarray = None
    progress_method: str = "angle"

    def __len__(self) -> int:
        return len(self.run_ids)

    def common(self, fraction: float = 0.9) -> np.ndarray:
        """Grid points truly reached by at least ``fraction`` of the runs, shape (G,), bool.

        Held points do not count: this is the progress range where most runs
        really got, e.g. ``grid_mask=ts.common(0.9)`` in
        :func:`trajectory_distance_matrix`. ``fraction = 1`` asks every run.

        Raises
        ------
        ValueError
            ``fraction`` not in ``(0, 1]``.
        """
        fraction = float(fraction)
        if not 0.0 < fraction <= 1.0:
            raise ValueError(f"fraction must lie in (0, 1], got {fraction!r}")
        need = int(np.ceil(fraction * len(self.run_ids) - 1e-9))
        return self.reached.sum(axis=0) >= need

    def has_model(self, include_held: bool = True) -> np.ndarray:
        """``(R, G)`` bool: the run has a model at the grid point (reached, or held if ``include_held``)."""
        if include_held and self.held is not None:
            return self.reached | self.held
        return self.reached.copy()

    def take(self, indices) -> "TrajectorySet":
        """The runs at ``indices`` (in that order), every per-run field restricted alike."""
        idx = np.asarray(indices, dtype=np.int64).reshape(-1)
        per_run = lambda values: None if values is None else (  # noqa: E731
            values[idx] if isinstance(values, np.ndarray) else [values[i] for i in idx])
        return dataclasses.replace(
            self, run_ids=per_run(self.run_ids), run_labels=per_run(self.run_labels), configs=per_run(self.configs),
            sqrt_p=per_run(self.sqrt_p), reached=per_run(self.reached), monotone=per_run(self.monotone),
            progress=per_run(self.progress), steps=per_run(self.steps), epochs=per_run(self.epochs),
            n_backtracks=per_run(self.n_backtracks), residual=per_run(self.residual), held=per_run(self.held))

    def overlapping(self, grid_mask=None, *, include_held: bool = True) -> np.ndarray:
        """Runs that share a grid point of ``grid_mask`` with every other kept run, shape (R,), bool.

        Runs are dropped one at a time, the one without a common point with the most others
        first (ties: the later run), until every pair of the rest has one: the runs whose
        trajectory distances at equal progress are all defined.
        """
        H = self.has_model(include_held)
        if grid_mask is not None:
            H = H[:, np.asarray(grid_mask, dtype=bool)]
        H = H.astype(np.int64)
        apart = (H @ H.T) == 0
        keep = np.ones(len(self.run_ids), dtype=bool)
        while True:
            counts = (apart & keep[None, :] & keep[:, None]).sum(axis=1)
            if not counts.any():
                return keep
            worst = np.flatnonzero(counts == counts.max())[-1]
            keep[worst] = False

    def index(self, run_id: str) -> int:
        """Position of ``run_id`` (or of a run label) in the set."""
        if run_id in self.run_ids:
            return self.run_ids.index(run_id)
        if run_id in self.run_labels:
            return self.run_labels.index(run_id)
        raise KeyError(f"no run {run_id!r} in this trajectory set")

    @classmethod
    def from_runs(cls, runs, sample_labels, grid=None, *, log: bool = False, run_ids=None, run_labels=None,
                  configs=None, progress=None, steps=None, epochs=None, probe=None,
                  method: str = "angle") -> "TrajectorySet":
        """Resample in-memory (or memory-mapped) runs.

        Parameters
        ----------
        runs : sequence of array_like, each (K_r, n, C)
            Checkpoints of each run (probabilities, or log-probabilities with ``log=True``).
        sample_labels : array_like of int, shape (n,)
        grid : array_like, shape (G,), default ``np.linspace(0, 1, 101)``
        run_ids, run_labels, configs, steps, epochs : optional per-run sequences
            Defaults: ``"run-<r>"``, the run ids, ``{}``, ``arange(K_r)``, NaN.
        progress : sequence of (K_r,) arrays, optional
            Progress of each run's checkpoints (by ``method``); computed with
            :func:`deepmanifold.geometry.progress` if not given.
        method : {"angle", "bhattacharyya"}, default "angle"
            The definition of progress (docs/method.md §3.3).
        """
        grid = _check_grid(np.linspace(0.0, 1.0, 101) if grid is None else grid)
        runs = list(runs)
        R = len(runs)
        if R == 0:
            raise ValueError("no runs given")
        run_ids = [f"run-{r}" for r in range(R)] if run_ids is None else list(run_ids)
        run_labels = list(run_ids) if run_labels is None else [str(x) for x in run_labels]
        configs = [{} for _ in range(R)] if configs is None else list(configs)
        for name, seq in (("run_ids", run_ids), ("run_labels", run_labels), ("configs", configs)):
            if len(seq) != R:
                raise ValueError(f"{name} has {len(seq)} entries for {R} runs")
        sample_labels = np.asarray(sample_labels)
        loaders = [(lambda x=x: x) for x in runs]
        return cls._build(loaders, sample_labels, grid, log=log, run_ids=run_ids, run_labels=run_labels,
                          configs=configs, progress=progress, steps=steps, epochs=epochs, probe=probe,
                          method=method)

    @classmethod
    def from_store(cls, store, probe: str = "test", grid=None, runs=None, *,
                   method: str = "angle") -> "TrajectorySet":
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
        method : {"angle", "bhattacharyya"}, default "angle"
            The definition of progress (docs/method.md §3.3).

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
            run_labels=[str(rec.config.get("label", rec.run_id)) for rec in records],
            configs=[rec.config for rec in records],
            steps=[m["step"] for m in metrics], epochs=[m["epoch"] for m in metrics],
            probe=probe, stacklevel=3, method=method,
        )

    @classmethod
    def _build(cls, loaders, sample_labels, grid, *, log, run_ids, run_labels, configs, progress=None,
               steps=None, epochs=None, probe=None, stacklevel=3, method="angle"):
        method = geometry.check_progress_method(method)
        R, G = len(loaders), grid.shape[0]
        sqrt_p = reached = residual = held = None
        monotone = np.zeros(R, dtype=bool)
        backtracks = np.zeros(R, dtype=np.int64)
        progs, steps_out, epochs_out = [], [], []
        for r, load in enumerate(loaders):
            X = load()
            K, n, C = X.shape
            if sqrt_p is None:
                sqrt_p = np.zeros((R, G, n, C), dtype=np.float32)
                reached = np.zeros((R, G), dtype=bool)
                held = np.zeros((R, G), dtype=bool)
                residual = np.zeros((R, G))
            elif (n, C) != sqrt_p.shape[2:]:
                raise ValueError(f"run {run_ids[r]} has (n, C) = {(n, C)}, the first run {sqrt_p.shape[2:]}")
            lam = (np.asarray(progress[r], dtype=np.float64) if progress is not None
                   else np.atleast_1d(geometry.progress(X, sample_labels, log=log, method=method)))
            res = resample_by_progress(X, lam, grid, log=log, labels=sample_labels, method=method)
            sqrt_p[r], reached[r], held[r], residual[r] = res.sqrt_p, res.reached, res.held, res.residual
            monotone[r], backtracks[r] = res.monotone, res.n_backtracks
            progs.append(lam)
            steps_out.append(np.arange(K) if steps is None else np.asarray(steps[r]))
            epochs_out.append(np.full(K, np.nan) if epochs is None else np.asarray(epochs[r], dtype=np.float64))
            del X
        bad = [f"{run_labels[r]} ({backtracks[r]} backtracks)" for r in range(R) if not monotone[r]]
        if bad:
            warnings.warn(f"progress is not monotone along {len(bad)} run(s), the first crossing of each "
                          f"grid value is used: {', '.join(bad)}", UserWarning, stacklevel=stacklevel)
        return cls(run_ids=list(run_ids), run_labels=list(run_labels), configs=list(configs), grid=grid,
                   sqrt_p=sqrt_p, reached=reached, monotone=monotone, progress=progs, steps=steps_out,
                   epochs=epochs_out, n_backtracks=backtracks, residual=residual,
                   sample_labels=np.asarray(sample_labels), probe=probe, held=held, progress_method=method)


# --------------------------------------------------------------------------- distances
def trajectory_distance_matrix(ts: TrajectorySet, *, grid_mask=None, include_held: bool = True,
                               **kwargs) -> np.ndarray:
    """Distance between every two trajectories: mean ``d_B`` at equal progress.

    ``D[r, s]`` is the mean, over the grid points selected by ``grid_mask``
    where both runs have a model, of ``d_B`` between run ``r``'s and run
    ``s``'s models at that progress (docs/method.md §5.3). With
    ``include_held`` (the default) a run has a model at every grid point it
    reached and at every point above its highest progress (its last
    checkpoint, held), so runs that start at progress 0 are all compared on
    the same grid points -- a pair with a slow run is not compared only
    early, where distances are small. ``grid_mask=ts.common(0.9)`` restricts
    the comparison to where at least 90 % of the runs truly got. Pairs with
    no common grid point get NaN (they cannot be compared); the diagonal is
    0 for every run with a model at a selected grid point.

    Parameters
    ----------
    ts : TrajectorySet
    grid_mask : array_like of bool, shape (G,), optional
        Grid points to use (default all).
    include_held : bool, default True
        Use held points (``ts.held``); False compares only points both runs reached.
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
    has = ts.has_model(include_held)
    for g in np.flatnonzero(mask):
        idx = np.flatnonzero(has[:, g])
        if idx.size == 0:
            continue
        p = probabilities_from_roots(ts.sqrt_p[idx, g])
        D = geometry.pairwise_distances(p, **kwargs) if idx.size > 1 else np.zeros((1, 1))
        total[np.ix_(idx, idx)] += D
        count[np.ix_(idx, idx)] += 1
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(count > 0, total / np.maximum(count, 1), np.nan)
    out = 0.5 * (out + out.T)
    np.fill_diagonal(out, np.where(np.diag(count) > 0, 0.0, np.nan))
    return out


def _members(ts: TrajectorySet, members) -> np.ndarray:
    """Member indices from run ids, run labels, indices or a boolean mask."""
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
    ``log p``), one of the two means docs/method.md §5 allows. A class to which a member
    gives probability 0 (``sqrt p`` underflows in float32 below ``p ~ 1e-90``)
    gets mean probability 0.

    Parameters
    ----------
    ts : TrajectorySet
    members : sequence of run ids / run labels / indices, or a boolean mask of shape (R,)

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
            out[g] = geometry.bhattacharyya(probabilities_from_roots(ts.sqrt_p[who, g]),
                                            probabilities_from_roots(mean[g])).mean()
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

    Raises
    ------
    ValueError
        No labels (neither given nor ``ts.sample_labels``), or labels that are
        not ``n`` integers in ``[0, C)``.

    Notes
    -----
    Uses ``<√p_i, √γ_i(t)> = [a_i sin((1-t)θ) + b_i sin(tθ)] / sin θ`` (docs/method.md §3):
    only the geodesic coefficients of each resampled model are needed
    (:func:`deepmanifold.geometry.distance_to_geodesic_point`). This is at
    least the distance to the geodesic (its minimum over ``t``) and equals it
    when the model's progress is exactly ``t``.
    """
    labels = ts.sample_labels if labels is None else labels
    if labels is None:
        raise ValueError("labels of the probe samples are needed (ts.sample_labels is not set)")
    R, G, n, C = ts.sqrt_p.shape
    labels = check_labels(labels, n, C)
    out = np.full((R, G), np.nan)
    for r in range(R):
        gs = np.flatnonzero(ts.reached[r])
        if gs.size:
            a, b = geometry.geodesic_coefficients(probabilities_from_roots(ts.sqrt_p[r, gs]), labels)
            out[r, gs] = geometry.distance_to_geodesic_point(a, b, C, ts.grid[gs])
    return out


# --------------------------------------------------------------------------- dendrogram
@dataclass(frozen=True, eq=False)
class Dendrogram:
    """Complete-linkage dendrogram of runs or configurations (see :func:`config_dendrogram`).

    Attributes
    ----------
    linkage : ndarray, shape (R - 1, 4)
        The SciPy linkage matrix (:func:`scipy.cluster.hierarchy.linkage`).
    leaves : ndarray of int, shape (R,)
        Leaf indices (rows of ``D``) in dendrogram order.
    names : list of str
        Leaf names, in the order of the rows of ``D``.
    leaf_names : list of str
        ``names`` in dendrogram order.
    icoord, dcoord : ndarray, shape (R - 1, 4)
        Segment coordinates from :func:`scipy.cluster.hierarchy.dendrogram`,
        for drawing.
    method : str
        ``"complete"``.
    """

    linkage: np.ndarray
    leaves: np.ndarray
    names: list
    leaf_names: list
    icoord: np.ndarray
    dcoord: np.ndarray
    method: str = "complete"

    def to_dict(self) -> dict:
        """JSON form (findings.json): ``linkage``, ``leaves``, ``names``, ``leaf_names``,
        ``icoord``, ``dcoord`` and ``method``, arrays as nested lists."""
        return jsonable({"linkage": self.linkage, "leaves": self.leaves, "names": self.names,
                         "leaf_names": self.leaf_names, "icoord": self.icoord, "dcoord": self.dcoord,
                         "method": self.method})


def config_dendrogram(D, names) -> Dendrogram:
    """Complete-linkage dendrogram of runs (or configurations) from a distance matrix.

    Parameters
    ----------
    D : array_like, shape (R, R)
        Symmetric, non-negative, e.g. from :func:`trajectory_distance_matrix`
        (or averaged over seeds per configuration). Its diagonal is not used;
        the symmetric part is clustered.
    names : sequence of str, length R
        Leaf names (run labels, configuration names).

    Returns
    -------
    Dendrogram

    Raises
    ------
    ValueError
        NaN entries (pairs of runs with no common progress) are named -- drop
        those runs or restrict the grid first; ``D`` not square, empty,
        infinite, asymmetric or negative; ``names`` not of length ``R``.

    Examples
    --------
    >>> tree = config_dendrogram([[0, 1, 4], [1, 0, 4], [4, 4, 0]], ["a", "b", "c"])
    >>> tree.leaf_names, tree.linkage[:, 2].tolist()
    (['c', 'a', 'b'], [1.0, 4.0])
    """
    from scipy.cluster.hierarchy import dendrogram, leaves_list, linkage
    from scipy.spatial.distance import squareform

    D = np.array(D, dtype=np.float64)
    names = [str(x) for x in names]
    if D.ndim == 2 and D.shape == (len(names), len(names)):
        np.fill_diagonal(D, 0.0)
        nan = np.isnan(D)
        if nan.any():
            pairs = [(names[i], names[j]) for i, j in zip(*np.nonzero(np.triu(nan)))]
            shown = ", ".join(f"{a}/{b}" for a, b in pairs[:10]) + (" ..." if len(pairs) > 10 else "")
            raise ValueError(f"D has NaN for {len(pairs)} pair(s) of runs with no progress in common "
                             f"({shown}); drop those runs or restrict the grid before clustering")
    S = check_distance_matrix(D, "D")
    R = S.shape[0]
    if len(names) != R:
        raise ValueError(f"{len(names)} names for a {R} x {R} matrix")
    if np.any(S < 0):
        raise ValueError("D must be non-negative")
    if R == 1:
        none = np.empty((0, 4))
        return Dendrogram(linkage=none, leaves=np.zeros(1, dtype=np.int64), names=names, leaf_names=names,
                          icoord=none, dcoord=none)
    Z = linkage(squareform(S, checks=False), method="complete")
    leaves = leaves_list(Z).astype(np.int64)
    dn = dendrogram(Z, no_plot=True)
    return Dendrogram(linkage=Z, leaves=leaves, names=names, leaf_names=[names[i] for i in leaves],
                      icoord=np.asarray(dn["icoord"], dtype=np.float64),
                      dcoord=np.asarray(dn["dcoord"], dtype=np.float64))


# --------------------------------------------------------------------------- without resampling
@njit(cache=False, nogil=True)
def _frechet_kernel(cost):  # pragma: no cover - compiled
    """Discrete Fréchet distance of a ``(K, L)`` cost matrix (Eiter & Mannila's recursion)."""
    K, L = cost.shape
    prev = np.empty(L)
    row = np.empty(L)
    prev[0] = cost[0, 0]
    for j in range(1, L):
        prev[j] = max(prev[j - 1], cost[0, j])
    for i in range(1, K):
        row[0] = max(prev[0], cost[i, 0])
        for j in range(1, L):
            row[j] = max(min(prev[j], prev[j - 1], row[j - 1]), cost[i, j])
        prev, row = row, prev
    return prev[L - 1]


def discrete_frechet(cost) -> float:
    r"""Discrete Fréchet distance from a matrix of ground costs between two sequences.

    .. math::

        F(P, Q) = \min_{\text{couplings}} \max_{(k, l)} c(P_k, Q_l),

    over the monotone couplings of ``0..K-1`` with ``0..L-1`` that start at
    ``(0, 0)``, end at ``(K-1, L-1)`` and advance one index or both at each
    step (Eiter & Mannila 1994): the smallest leash with which two walkers can
    go along the two sequences, each only forwards. ``O(K L)`` time, ``O(L)``
    memory.

    Parameters
    ----------
    cost : array_like, shape (K, L)
        ``cost[k, l] = c(P_k, Q_l)``, finite.

    Returns
    -------
    float
        ``F = 0`` when the sequences agree up to repeated elements
        (``cost`` zero on the coupling); repeating an element of either
        sequence never changes ``F``.

    Examples
    --------
    >>> discrete_frechet([[0, 1, 4], [1, 0, 1], [4, 1, 0]])
    0.0
    >>> discrete_frechet([[1, 5], [5, 2]])
    2.0
    """
    cost = np.asarray(cost, dtype=np.float64)
    if cost.ndim != 2 or 0 in cost.shape:
        raise ValueError(f"cost must be a non-empty 2-D array, got shape {cost.shape}")
    if not np.all(np.isfinite(cost)):
        raise ValueError("cost must be finite")
    return float(_frechet_kernel(np.ascontiguousarray(cost)))


def frechet_distance(P, Q, *, log: bool = False, **kwargs) -> float:
    """Discrete Fréchet distance between two runs' checkpoint sequences, with ``d_B`` as ground cost.

    Needs no progress and no resampling: the checkpoints are compared as
    recorded, in training order (docs/method.md §5.3). Since ``d_B`` plays
    the role of a squared distance, so does the result.

    Parameters
    ----------
    P, Q : array_like, shape (K, n, C) and (L, n, C)
        Checkpoints of the two runs (probabilities, or log-probabilities with ``log=True``).
    **kwargs
        Passed to :func:`deepmanifold.geometry.pairwise_distances`.

    Returns
    -------
    float
    """
    return discrete_frechet(geometry.pairwise_distances(P, Q, log=log, **kwargs))


def frechet_distance_matrix(runs, *, log: bool = False, **kwargs) -> np.ndarray:
    """Discrete Fréchet distance (``d_B`` ground cost) between every two runs, shape (R, R).

    One :func:`~deepmanifold.geometry.pairwise_distances` call per pair of
    runs (``K_r x K_s`` distances each, so the memory is that of one pair),
    then :func:`discrete_frechet`. Symmetric, zero diagonal.

    Parameters
    ----------
    runs : sequence of array_like, each (K_r, n, C)
        Checkpoints of each run in training order (e.g. ``store.logp(run_id, probe)``
        with ``log=True``).
    **kwargs
        Passed to :func:`deepmanifold.geometry.pairwise_distances`.
    """
    runs = list(runs)
    R = len(runs)
    out = np.zeros((R, R))
    for r in range(R):
        for s in range(r + 1, R):
            out[r, s] = out[s, r] = frechet_distance(runs[r], runs[s], log=log, **kwargs)
    return out


@dataclass(frozen=True, eq=False)
class NearestOnRun:
    """Where models are closest to a run's path (see :func:`distance_to_run`).

    Attributes
    ----------
    distance : ndarray, shape (m,)
        ``d_B`` from each model to the nearest point of the path.
    checkpoint : ndarray of int, shape (m,)
        ``k`` of the nearest point: on the great-circle arc from checkpoint
        ``k`` to ``k + 1`` (``path="great_circles"``), or checkpoint ``k``
        itself (``path="checkpoints"``).
    fraction : ndarray, shape (m,)
        Slerp fraction ``u`` in ``[0, 1]`` along that arc (0 for checkpoints).
    path : str
        ``"great_circles"`` or ``"checkpoints"``.
    """

    distance: np.ndarray
    checkpoint: np.ndarray
    fraction: np.ndarray
    path: str

    def to_dict(self) -> dict:
        """JSON form: ``distance``, ``checkpoint``, ``fraction`` (lists) and ``path``."""
        return jsonable({"distance": self.distance, "checkpoint": self.checkpoint, "fraction": self.fraction,
                         "path": self.path})


_PATHS = ("great_circles", "checkpoints")


def distance_to_run(P, run, *, log: bool = False, path: str = "great_circles") -> NearestOnRun:
    r"""``d_B`` from models to the nearest point of a run, without resampling.

    ``path="great_circles"`` (default): the run is the piecewise path joining
    consecutive checkpoints by the great circles of every sample (the slerp of
    docs/method.md §5.2, the path along which runs are resampled), and the
    distance is the least ``d_B`` to any point of it. On the arc from
    checkpoint ``k`` to ``k + 1``, with ``α_i``, ``β_i`` the Bhattacharyya
    coefficients of the model with the two checkpoints and ``ω_i`` the
    sample's angle between them,

    .. math::

        d_B(P, r_k(u)) = -\frac1n \sum_i \log
            \frac{\alpha_i \sin((1-u)\omega_i) + \beta_i \sin(u\omega_i)}{\sin\omega_i},

    strictly convex in ``u`` (each term's second derivative is
    ``ω_i² + (g_i'/g_i)²``, like the geodesic objective of §3.3), minimised on
    every arc at once by Newton's method safeguarded by bisection.
    ``path="checkpoints"``: the least ``d_B`` to a checkpoint (an upper bound
    of the former).

    Parameters
    ----------
    P : array_like, shape (n, C) or (m, n, C)
        The models (probabilities, or log-probabilities with ``log=True``).
    run : array_like, shape (K, n, C)
        The run's checkpoints in training order (same ``log``).
    path : {"great_circles", "checkpoints"}, default "great_circles"

    Returns
    -------
    NearestOnRun
        The reported distance is :func:`deepmanifold.geometry.bhattacharyya`
        of the model and the nearest point (clamping rule included).
    """
    if path not in _PATHS:
        raise ValueError(f"path must be one of {_PATHS}, got {path!r}")
    X = check_probabilities(np.asarray(P), "P", log=log, ndim=(2, 3))
    X = X[None] if X.ndim == 2 else X
    Y = check_probabilities(np.asarray(run), "run", log=log, ndim=3)
    if X.shape[1:] != Y.shape[1:]:
        raise ValueError(f"P and run must share (n, C), got {X.shape[1:]} and {Y.shape[1:]}")
    m, K = X.shape[0], Y.shape[0]
    if path == "checkpoints" or K == 1:
        D = geometry.pairwise_distances(X, Y, log=log)
        k = np.argmin(D, axis=1)
        return NearestOnRun(distance=D[np.arange(m), k], checkpoint=k.astype(np.int64), fraction=np.zeros(m),
                            path=path)
    x, y = _unit_roots(X, log=log), _unit_roots(Y, log=log)
    chord = np.sqrt(np.einsum("kic,kic->ki", y[1:] - y[:-1], y[1:] - y[:-1]))
    omega = 2.0 * np.arcsin(np.minimum(chord / 2.0, 1.0))  # (K - 1, n)
    best_k, best_u = np.zeros(m, dtype=np.int64), np.zeros(m)
    for q in range(m):
        coef = np.einsum("ic,kic->ki", x[q], y)  # (K, n) Bhattacharyya coefficients
        u, value = _nearest_on_arcs(coef[:-1], coef[1:], omega)
        best_k[q] = int(np.argmin(value))
        best_u[q] = u[best_k[q]]
    w0, w1 = _slerp_weights(omega[best_k], best_u[:, None])
    points = _normalise(w0[..., None] * y[best_k] + w1[..., None] * y[best_k + 1])
    distance = np.atleast_1d(geometry.bhattacharyya(np.square(x), np.square(points)))
    return NearestOnRun(distance=distance, checkpoint=best_k, fraction=best_u, path=path)


def _arc_slopes(alpha, beta, omega, u):
    """``(f'(u), f''(u), f(u))`` per row of ``f(u) = -mean_i log g_i(u)`` on the arcs (rows: arcs)."""
    u = u[:, None]
    small = omega < _SMALL_ANGLE
    with np.errstate(invalid="ignore", divide="ignore"):
        s = np.where(small, 1.0, np.sin(omega))
        g = (alpha * np.sin((1 - u) * omega) + beta * np.sin(u * omega)) / s
        dg = omega * (beta * np.cos(u * omega) - alpha * np.cos((1 - u) * omega)) / s
    g = np.where(small, (1 - u) * alpha + u * beta, g)
    dg = np.where(small, beta - alpha, dg)
    g = np.maximum(g, 1e-300)
    ratio = dg / g
    return -ratio.mean(axis=1), (omega**2 + ratio**2).mean(axis=1), -np.log(g).mean(axis=1)


def _nearest_on_arcs(alpha, beta, omega):
    """Per arc (row), the minimiser ``u`` in ``[0, 1]`` of the convex ``f`` and ``f(u)``."""
    A = alpha.shape[0]
    d0 = _arc_slopes(alpha, beta, omega, np.zeros(A))[0]
    d1 = _arc_slopes(alpha, beta, omega, np.ones(A))[0]
    u = np.where(d0 >= 0, 0.0, 1.0)
    inside = np.flatnonzero((d0 < 0) & (d1 > 0))
    lo, hi = np.zeros(inside.size), np.ones(inside.size)
    x = np.full(inside.size, 0.5)
    for _ in range(_MAX_ITER):
        if inside.size == 0:
            break
        f1, f2, _ = _arc_slopes(alpha[inside], beta[inside], omega[inside], x)
        lo, hi = np.where(f1 < 0, x, lo), np.where(f1 > 0, x, hi)
        step = f1 / f2
        new = x - step
        done = (np.abs(step) <= _U_TOL) | (hi - lo <= _U_TOL) | (f1 == 0)
        new = np.where((new > lo) & (new < hi), new, 0.5 * (lo + hi))
        u[inside[done]] = np.clip(new[done], 0.0, 1.0)
        keep = ~done
        inside, lo, hi, x = inside[keep], lo[keep], hi[keep], new[keep]
    u[inside] = x
    return u, _arc_slopes(alpha, beta, omega, u)[2]
