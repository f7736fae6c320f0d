r"""How many InPCA axes the checkpoints need, against a null model.

Claim 1 of the reference study (docs/method.md §6) is that all trajectories lie on one
effectively low-dimensional manifold.  "Low" only means something against a
baseline: T points from R runs that shared nothing but their endpoints would
also need *some* number of axes.  :func:`dimensionality` reports the explained
stress (docs/method.md §4) against the number of axes for the real distance matrix and
for surrogate checkpoint sets drawn from a null model, and the number of axes
each needs to reach given stress thresholds.

The null: per-run sample permutation of per-sample progress
---------------------------------------------------------------
What makes trajectories of different runs *share* a manifold is that they learn
the same samples at the same stage of training (easy samples first, the same
confusions on the way).  The null keeps everything that is private to a run and
destroys exactly that shared order:

* each run's first and last checkpoint are kept unchanged (its endpoints);
* for every intermediate checkpoint ``t`` and sample ``i`` the run's
  prediction is summarised by its *per-sample fraction* along the great circle
  (on the sphere of ``sqrt p``) from the run's first to its last prediction for
  that sample, ``s_ti = α(u_i, x_ti) / (α(u_i, x_ti) + α(x_ti, w_i))``, with
  ``u = sqrt p_first``, ``w = sqrt p_last``, ``x = sqrt p_t`` and ``α`` the
  angle;
* one random permutation ``π_r`` of the samples is drawn per run (independent
  between runs, the same for all checkpoints of the run), and the surrogate
  checkpoint puts sample ``i`` at fraction ``s_{t, π_r(i)}`` on *its own*
  great circle from ``u_i`` to ``w_i``.

So every surrogate run has the same endpoints, the same number of checkpoints
and, at every checkpoint, the same distribution over samples of how far each
sample has moved (hence essentially the same progress profile and speed), but
*which* samples have moved is scrambled independently per run.  If the real
runs need markedly fewer axes than the surrogates, the low dimensionality comes
from shared structure between runs and not merely from the endpoints and the
pace of training.

Caveats, stated rather than hidden:

* each surrogate sample moves on the great circle between its endpoints, so
  off-circle excursions of the real trajectories (e.g. passing through a wrong
  class) are dropped.  That makes surrogates *lower*-dimensional than they
  would otherwise be, i.e. the comparison is conservative;
* if within every run all samples move in lockstep (e.g. checkpoints exactly on
  the ignorance-to-truth geodesic), permuting samples changes nothing and the
  null equals the data: its low dimensionality is then fully explained by the
  endpoints, which is the correct verdict;
* a sample whose first and last predictions coincide stays there in the
  surrogate.

``null="none"`` skips the null (``P`` is then not needed).
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass, field

import numpy as np

from deepmanifold import geometry
from deepmanifold.utils import jsonable

__all__ = ["DimensionalityReport", "NULLS", "dimensionality", "permutation_surrogate"]

NULLS = ("sample_permutation", "none")


@dataclass(frozen=True)
class DimensionalityReport:
    """Explained stress against axes, for the data and for the null.

    Attributes
    ----------
    explained_stress : ndarray, shape (k,)
        Cumulative explained stress of the top ``1..k`` axes (docs/method.md §4).
    explained_fraction : ndarray, shape (k,)
        Cumulative plain fraction ``Σ λ² / ||W||_F²``.
    eigenvalues : ndarray, shape (k,)
        Signed eigenvalues (negative = time-like axis).
    thresholds : tuple of float
    axes_needed : dict float -> int or None
        Smallest number of axes whose explained stress reaches the threshold;
        None when ``max_axes`` axes do not reach it.
    null : str
        Name of the null model.
    null_stress : ndarray, shape (n_null, k)
        Explained-stress curves of the surrogates (empty for ``null="none"``).
    null_axes_needed : ndarray, shape (n_null, len(thresholds))
        Axes needed by each surrogate, ``max_axes + 1`` where not reached
        (censored).
    n_runs : int
    n_models : int
    max_axes : int
        Axes actually computed, ``min(max_axes, T)``.
    info : dict
    """

    explained_stress: np.ndarray
    explained_fraction: np.ndarray
    eigenvalues: np.ndarray
    thresholds: tuple
    axes_needed: dict
    null: str
    null_stress: np.ndarray
    null_axes_needed: np.ndarray
    n_runs: int
    n_models: int
    max_axes: int
    info: dict = field(default_factory=dict)

    def null_summary(self) -> dict:
        """Per threshold: mean and sd of the surrogates' axes needed, censored count.

        Censored draws (threshold not reached within ``max_axes``) count as
        ``max_axes + 1``, so the mean is then a lower bound. ``fraction_at_most_data``
        is the fraction of surrogates needing at most as many axes as the data
        (a one-sided permutation-style p-value for "data needs fewer axes").
        """
        out = {}
        if self.null_axes_needed.size == 0:
            return out
        for j, thr in enumerate(self.thresholds):
            a = self.null_axes_needed[:, j].astype(float)
            data = self.axes_needed[thr]
            data_c = self.max_axes + 1 if data is None else data
            out[_key(thr)] = {
                "mean": float(a.mean()),
                "sd": float(a.std(ddof=1)) if a.size > 1 else 0.0,
                "min": int(a.min()),
                "max": int(a.max()),
                "n_censored": int((a > self.max_axes).sum()),
                "data": data,
                "data_fewer_than_null_mean": bool(data_c < a.mean()),
                "fraction_at_most_data": float((a <= data_c).mean()),
            }
        return out

    def to_dict(self) -> dict:
        """JSON-serialisable summary (plain floats, ints, lists, None)."""
        return {
            "n_models": int(self.n_models),
            "n_runs": int(self.n_runs),
            "max_axes": int(self.max_axes),
            "explained_stress": [float(v) for v in self.explained_stress],
            "explained_fraction": [float(v) for v in self.explained_fraction],
            "eigenvalues": [float(v) for v in self.eigenvalues],
            "thresholds": [float(t) for t in self.thresholds],
            "axes_needed": {_key(t): (None if a is None else int(a)) for t, a in self.axes_needed.items()},
            "null": self.null,
            "n_null": int(self.null_stress.shape[0]),
            "null_stress_mean": [float(v) for v in self.null_stress.mean(axis=0)] if self.null_stress.size else [],
            "null_stress_sd": ([float(v) for v in self.null_stress.std(axis=0, ddof=1)]
                               if self.null_stress.shape[0] > 1 else []),
            "null_axes_needed": self.null_summary(),
            "info": jsonable(self.info),
        }


def _key(thr) -> str:
    return f"{float(thr):g}"


def _axes_needed(stress: np.ndarray, thr: float) -> int | None:
    hit = np.nonzero(stress >= thr - 1e-12)[0]
    return int(hit[0]) + 1 if hit.size else None


def _run_groups(run_index, T: int) -> list[np.ndarray]:
    run_index = np.asarray(run_index)
    if run_index.shape != (T,):
        raise ValueError(f"run_index: expected shape ({T},), got {run_index.shape}")
    _, first, inverse = np.unique(run_index, return_index=True, return_inverse=True)
    # runs in order of first appearance; rows of a run in the given (checkpoint) order
    order = np.argsort(first, kind="stable")
    return [np.nonzero(inverse == g)[0] for g in order]


def permutation_surrogate(P, run_index, *, random_state=0, log: bool = False) -> np.ndarray:
    """One surrogate checkpoint set of the ``"sample_permutation"`` null.

    See the module docstring. The rows of each run are taken in the order in
    which they appear in ``P`` (checkpoint order); its first and last row are
    its endpoints and are returned unchanged (as probabilities).

    Parameters
    ----------
    P : array_like, shape (T, n, C)
        Probabilities (or log-probabilities with ``log=True``) of all checkpoints: an
        array, or a lazy stack such as :class:`~deepmanifold.geometry.ModelStack`, read
        one run at a time.
    run_index : array_like, shape (T,)
        Run of each row (any hashable values).
    random_state : None, int or numpy.random.Generator

    Returns
    -------
    ndarray, shape (T, n, C), float64 probabilities
    """
    shape = tuple(np.shape(P))
    if len(shape) != 3:
        raise ValueError(f"P: expected shape (T, n, C), got {shape}")
    T, n, _ = shape
    rng = np.random.default_rng(random_state)
    out = np.empty(shape)
    for rows in _run_groups(run_index, T):
        R = np.asarray(_rows_of(P, rows), dtype=np.float64)
        R = np.exp(0.5 * R) if log else np.sqrt(np.clip(R, 0.0, None))
        R /= np.linalg.norm(R, axis=-1, keepdims=True)
        out[rows] = R
        if rows.size < 3:
            continue
        u, w = R[0], R[-1]  # (n, C)
        mids = R[1:-1]  # (k, n, C)
        ang_uw = _angle(np.sum(u * w, axis=-1))  # (n,)
        a1 = _angle(np.sum(mids * u, axis=-1))  # (k, n)
        a2 = _angle(np.sum(mids * w, axis=-1))
        tot = a1 + a2
        s = np.where(tot > 1e-15, a1 / np.where(tot > 1e-15, tot, 1.0), 0.0)
        s = s[:, rng.permutation(n)]  # sample i takes the fraction of sample π(i)
        moving = ang_uw > 1e-12
        sin_uw = np.where(moving, np.sin(ang_uw), 1.0)
        cu = np.where(moving, np.sin((1.0 - s) * ang_uw) / sin_uw, 1.0)  # (k, n)
        cw = np.where(moving, np.sin(s * ang_uw) / sin_uw, 0.0)
        out[rows[1:-1]] = cu[..., None] * u + cw[..., None] * w
    np.square(out, out=out)
    out /= out.sum(axis=-1, keepdims=True)
    return out


def _rows_of(P, rows: np.ndarray):
    """``P[rows]`` of an array, or of a lazy stack that slices only (read as one slice when contiguous)."""
    if isinstance(P, np.ndarray):
        return P[rows]
    if rows.size and np.array_equal(rows, np.arange(rows[0], rows[0] + rows.size)):
        return P[int(rows[0]):int(rows[0]) + rows.size]
    return np.stack([np.asarray(P[int(i)]) for i in rows])


def _angle(cos):
    return np.arccos(np.clip(cos, -1.0, 1.0))


def _check_null(null: str, n_null, P, T: int) -> None:
    """Raise ``ValueError`` unless ``null`` is known and, when drawn, ``P`` and ``n_null`` fit it."""
    if null not in NULLS:
        raise ValueError(f"null must be one of {NULLS}, got {null!r}")
    if null == "none":
        return
    if P is None:
        raise ValueError(f"null={null!r} needs the predictions P (or use null='none')")
    if not isinstance(n_null, numbers.Integral) or n_null < 1:
        raise ValueError(f"n_null must be a positive integer, got {n_null!r}")
    if np.shape(P)[0] != T or len(np.shape(P)) != 3:
        raise ValueError(f"P: expected shape ({T}, n, C), got {np.shape(P)}")


def _null_curves(P, run_index, k: int, thresholds: tuple, n_null: int, random_state, log: bool):
    """Explained-stress curves ``(n_null, k)`` of the surrogates, and the axes each needs
    per threshold ``(n_null, len(thresholds))`` (``k + 1`` where not reached)."""
    rng = np.random.default_rng(random_state)
    curves, counts = [], []
    for _ in range(n_null):
        S = permutation_surrogate(P, run_index, random_state=rng, log=log)
        curve = np.asarray(geometry.inpca(geometry.pairwise_distances(S), n_components=k).explained_stress,
                           dtype=np.float64)
        curves.append(curve)
        counts.append([k + 1 if (a := _axes_needed(curve, t)) is None else a for t in thresholds])
    return np.array(curves), np.array(counts, dtype=int)


def dimensionality(
    D,
    run_index,
    *,
    max_axes: int = 10,
    thresholds=(0.8, 0.9, 0.95),
    null: str = "sample_permutation",
    n_null: int = 5,
    random_state=0,
    P=None,
    log: bool = False,
) -> DimensionalityReport:
    """Explained stress against number of InPCA axes, with a null model.

    Parameters
    ----------
    D : array_like, shape (T, T)
        Intensive Bhattacharyya distances between all checkpoints (of all runs).
    run_index : array_like, shape (T,)
        Run of each checkpoint. Within a run rows must be in checkpoint order:
        the first and last row of a run are its endpoints.
    max_axes : int, default 10
        Axes computed (capped at ``T``).
    thresholds : sequence of float in (0, 1]
        Explained-stress levels for which the number of axes is reported.
    null : {"sample_permutation", "none"}
        The null model (module docstring). ``"sample_permutation"`` needs ``P``.
    n_null : int, default 5
        Surrogates drawn. Each costs one :func:`~deepmanifold.geometry.pairwise_distances`
        of ``T`` models and one InPCA.
    random_state : None, int or numpy.random.Generator
    P : array_like, shape (T, n, C), optional
        The checkpoints' predictions that produced ``D``: an array or a lazy stack
        (:class:`~deepmanifold.geometry.ModelStack`), read one run at a time for each
        surrogate.
    log : bool
        ``P`` holds natural-log probabilities.

    Returns
    -------
    DimensionalityReport
    """
    D = np.asarray(D, dtype=np.float64)
    if D.ndim != 2 or D.shape[0] != D.shape[1]:
        raise ValueError(f"D: expected a square matrix, got shape {D.shape}")
    T = D.shape[0]
    groups = _run_groups(run_index, T)
    if not isinstance(max_axes, numbers.Integral) or max_axes < 1:
        raise ValueError(f"max_axes must be a positive integer, got {max_axes!r}")
    k = int(min(max_axes, T))
    thresholds = tuple(float(t) for t in thresholds)
    if not thresholds or any(not 0.0 < t <= 1.0 for t in thresholds):
        raise ValueError(f"thresholds must lie in (0, 1], got {thresholds!r}")
    _check_null(null, n_null, P, T)

    res = geometry.inpca(D, n_components=k)
    stress = np.asarray(res.explained_stress, dtype=np.float64)
    needed = {t: _axes_needed(stress, t) for t in thresholds}
    null_stress = np.empty((0, k))
    null_needed = np.empty((0, len(thresholds)), dtype=int)
    if null == "sample_permutation":
        null_stress, null_needed = _null_curves(P, run_index, k, thresholds, int(n_null), random_state, log)
    return DimensionalityReport(
        explained_stress=stress,
        explained_fraction=np.asarray(res.explained_fraction, dtype=np.float64),
        eigenvalues=np.asarray(res.eigenvalues, dtype=np.float64),
        thresholds=thresholds,
        axes_needed=needed,
        null=null,
        null_stress=null_stress,
        null_axes_needed=null_needed,
        n_runs=len(groups),
        n_models=T,
        max_axes=k,
        info={"n_null": int(null_stress.shape[0])},
    )
