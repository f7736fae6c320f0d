r"""Claim 1 of the reference study (docs/method.md §6): one low-dimensional manifold.

The claim is judged at equal progress, on the ordinary runs (corners left out),
because a statistic of all checkpoints cannot fail: the ignorance-to-truth axis
carries 90 % of the explained stress of any sweep (90 % stress is 99 % of Σμ²), a
single random walk needs only 3 axes for it (:func:`brownian_stress`), and
independent paths with a common drift need fewer than one shared path.

Judged (:func:`manifold_evidence` → :class:`ManifoldEvidence`, :func:`judge`, :data:`RULE`)
    - :func:`sharing` → :class:`Sharing`: at each progress ``t``, ``φ_t``, the share of the
      runs' departure from the geodesic common to all runs (≈ 0 for independent paths,
      ≈ 1 for one shared path), summarised over the grid as ``Φ``, against the null below.
    - :func:`shared_dimension` → :class:`SharedDimension`: parallel analysis of the InPCA of
      each progress cross-section against a per-sample shuffle of run identities;
      ``d_eff = 1 +`` the median count of eigenvalues above the shuffle.

Described, no verdict
    - :func:`stress_description` → :class:`StressDescription`: explained stress for
      ``k = 1..10`` axes of the runs' models at equal progress, beside
      :func:`brownian_stress`;
    - :func:`dimensionality` → :class:`DimensionalityReport`: explained stress of all
      checkpoints against the null's surrogates.

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
*which* samples have moved is scrambled independently per run.  The null is
drawn from a run's checkpoints (:func:`dimensionality`) or from its trajectory
resampled at equal progress, whose endpoints are then the first and last grid
points the run reached (:func:`sharing`). If the real runs share more than the
surrogates (``Φ`` above the null's), the sharing comes from structure common to
the runs and not merely from their endpoints and the pace of training.

Caveats, stated rather than hidden:

* each surrogate sample moves on the great circle between its endpoints, so
  off-circle excursions of the real trajectories (e.g. passing through a wrong
  class) are dropped.  That makes surrogates *lower*-dimensional than they
  would otherwise be, i.e. the comparison of axes is conservative;
* if within every run all samples move in lockstep (e.g. checkpoints exactly on
  the ignorance-to-truth geodesic), permuting samples changes nothing and the
  null equals the data: whatever the runs share is then fully explained by
  their endpoints, and the rule never calls it "supported";
* a sample whose first and last predictions coincide stays there in the
  surrogate.

``null="none"`` skips the null of :func:`dimensionality` (``P`` is then not needed).
"""

from __future__ import annotations

import math
import numbers
import warnings
from dataclasses import dataclass, field

import numpy as np

from deepmanifold import geometry
from deepmanifold.analysis.averaging import mean_model
from deepmanifold.analysis.trajectories import probabilities_from_roots
from deepmanifold.analysis.verdicts import Judgement, decide
from deepmanifold.utils import jsonable

__all__ = ["DimensionalityReport", "ManifoldEvidence", "NULLS", "RULE", "SHARING_NULL", "SHARING_NULLS",
           "SharedDimension", "Sharing",
           "StressDescription", "brownian_stress", "dimensionality", "judge", "manifold_evidence",
           "permutation_surrogate", "shared_dimension", "sharing", "stress_description"]

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
        s = _circle_fractions(u, w, R[1:-1])  # (k, n)
        s = s[:, rng.permutation(n)]  # sample i takes the fraction of sample π(i)
        out[rows[1:-1]] = _on_circles(u, w, s)
    np.square(out, out=out)
    out /= out.sum(axis=-1, keepdims=True)
    return out


def _circle_fractions(u: np.ndarray, w: np.ndarray, X: np.ndarray) -> np.ndarray:
    """Per-sample fraction ``α(u, x) / (α(u, x) + α(x, w))`` of unit roots ``X (..., n, C)``
    between the endpoints ``u, w (n, C)`` (0 where ``x`` sits on both)."""
    a1 = _angle(np.sum(X * u, axis=-1))
    a2 = _angle(np.sum(X * w, axis=-1))
    tot = a1 + a2
    return np.where(tot > 1e-15, a1 / np.where(tot > 1e-15, tot, 1.0), 0.0)


def _on_circles(u: np.ndarray, w: np.ndarray, s: np.ndarray, ang_uw: np.ndarray | None = None) -> np.ndarray:
    """Unit roots ``(..., n, C)`` at fraction ``s (..., n)`` of each sample's great circle from ``u`` to ``w``
    (``ang_uw``: the angles between ``u`` and ``w``, computed when not given)."""
    ang_uw = _angle(np.sum(u * w, axis=-1)) if ang_uw is None else ang_uw  # (..., n) or (n,)
    moving = ang_uw > 1e-12
    sin_uw = np.where(moving, np.sin(ang_uw), 1.0)
    cu = np.where(moving, np.sin((1.0 - s) * ang_uw) / sin_uw, 1.0)
    cw = np.where(moving, np.sin(s * ang_uw) / sin_uw, 0.0)
    return cu[..., None] * u + cw[..., None] * w


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
    """Explained stress against number of InPCA axes, with a null model: a description.

    No verdict is drawn from it (module docstring); claim 1 is judged by :func:`judge`
    on :func:`manifold_evidence`.

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


# ============================================================================ equal progress
@dataclass(frozen=True, eq=False)
class Sharing:
    r"""How much of the runs' departure from the geodesic is common to all of them (:func:`sharing`).

    Attributes
    ----------
    grid : ndarray, shape (G,)
        Progress values used.
    n_runs : ndarray of int, shape (G,)
        Runs that reached each of them.
    departure : ndarray, shape (G,)
        ``mean_r d_B(P_r(t), γ(t))``; NaN with fewer than 2 runs.
    private : ndarray, shape (G,)
        ``m/(m-1) mean_r d_B(P_r(t), M(t))``, ``M(t)`` the runs' normalised geometric mean.
    phi : ndarray, shape (G,)
        ``φ_t = clip(1 - private / departure, 0, 1)``; NaN where the departure is 0 or undefined.
    phi_summary : float
        ``Φ = clip(1 - Σ_t private / Σ_t departure, 0, 1)``: ``φ`` weighted by the departure.
    phi_median : float
        Median of ``φ_t`` over the grid points where it is defined.
    null_phi : ndarray, shape (n_null, G)
        ``φ_t`` of each surrogate draw.
    null_summary : ndarray, shape (n_null,)
        ``Φ`` of each surrogate draw.
    p_value : float
        ``(1 + #{null Φ >= Φ}) / (1 + n_null)``: one-sided, "more sharing than the null".
    null : str
        The null drawn, one of :data:`SHARING_NULLS`.
    """

    grid: np.ndarray
    n_runs: np.ndarray
    departure: np.ndarray
    private: np.ndarray
    phi: np.ndarray
    phi_summary: float
    phi_median: float
    null_phi: np.ndarray
    null_summary: np.ndarray
    p_value: float
    null: str = "sample_permutation"

    @property
    def null_mean(self) -> float:
        return float(np.mean(self.null_summary)) if self.null_summary.size else float("nan")

    @property
    def null_q95(self) -> float:
        return float(np.quantile(self.null_summary, 0.95)) if self.null_summary.size else float("nan")

    def to_dict(self) -> dict:
        """JSON form: every attribute (NaN as None), with the null's mean and 95th percentile."""
        return jsonable({"grid": self.grid, "n_runs": self.n_runs, "departure": self.departure,
                         "private": self.private, "phi": self.phi, "phi_summary": self.phi_summary,
                         "phi_median": self.phi_median, "n_null": int(self.null_summary.size),
                         "null_mean": self.null_mean, "null_q95": self.null_q95,
                         "null_summary": self.null_summary, "null_phi_mean": (
                             self.null_phi.mean(axis=0) if self.null_phi.size else []),
                         "p_value": self.p_value, "null": self.null})


@dataclass(frozen=True, eq=False)
class SharedDimension:
    """Parallel analysis of the runs' cross-sections at equal progress (:func:`shared_dimension`).

    Attributes
    ----------
    grid : ndarray, shape (S,)
        Progress of each cross-section analysed.
    n_runs : ndarray of int, shape (S,)
        Runs in each cross-section.
    eigenvalues : ndarray, shape (S, k)
        Signed InPCA eigenvalues ``μ`` of each cross-section, sorted by ``|μ|`` (0 beyond ``n_runs``).
    null_q95 : ndarray, shape (S, k)
        95th percentile of ``|μ|`` of the same rank under the per-sample shuffle of run identities.
    count : ndarray of int, shape (S,)
        Leading ranks whose ``|μ|`` exceeds that percentile.
    d_eff : float
        ``1 + median(count)`` (NaN without a cross-section).
    n_shuffle : int
    """

    grid: np.ndarray
    n_runs: np.ndarray
    eigenvalues: np.ndarray
    null_q95: np.ndarray
    count: np.ndarray
    d_eff: float
    n_shuffle: int

    def to_dict(self) -> dict:
        return jsonable({"grid": self.grid, "n_runs": self.n_runs, "eigenvalues": self.eigenvalues,
                         "null_q95": self.null_q95, "count": self.count, "d_eff": self.d_eff,
                         "n_shuffle": self.n_shuffle})


@dataclass(frozen=True, eq=False)
class StressDescription:
    """Explained stress of the runs' models at equal progress, beside a Brownian path (no verdict).

    Attributes
    ----------
    grid : ndarray, shape (S,)
        Progress values whose models (every run that reached them) were embedded together.
    n_models : int
    explained_stress : ndarray, shape (k,)
        Cumulative explained stress of the top ``1..k`` InPCA axes (docs/method.md §4.2).
    brownian : ndarray, shape (k,)
        The same for a Brownian path (:func:`brownian_stress`).
    """

    grid: np.ndarray
    n_models: int
    explained_stress: np.ndarray
    brownian: np.ndarray

    def to_dict(self) -> dict:
        return jsonable({"grid": self.grid, "n_models": self.n_models, "explained_stress": self.explained_stress,
                         "brownian": self.brownian})


@dataclass(frozen=True, eq=False)
class ManifoldEvidence:
    """What claim 1 is judged on (:func:`manifold_evidence`, :func:`judge`).

    Attributes
    ----------
    run_labels : list
        The runs analysed (ordinary runs: no corner).
    grid_rule : str
        Which grid points were used, in words (every comparison says which grid it used).
    sharing : Sharing
    dimension : SharedDimension
    stress : StressDescription or None
        A description only; None when not asked for.
    reasons : list of str
        What could not be measured.
    """

    run_labels: list
    grid_rule: str
    sharing: Sharing
    dimension: SharedDimension
    stress: StressDescription | None = None
    reasons: list = field(default_factory=list)

    def to_dict(self) -> dict:
        """JSON form (findings.json)."""
        return jsonable({"runs": self.run_labels, "grid_rule": self.grid_rule, "sharing": self.sharing.to_dict(),
                         "dimension": self.dimension.to_dict(),
                         "stress": None if self.stress is None else self.stress.to_dict(),
                         "reasons": self.reasons})


# ---------------------------------------------------------------------------- the rule
#: Runs must have reached a grid point for it to be used by default (the common grid).
COMMON_FRACTION = 0.9
#: Φ at least this: the part of the departure common to all runs is at least the private part.
SHARING_HIGH = 0.5
#: Φ at least this far above the null's mean (and above every draw: p <= P_VALUE) to count as shared.
SHARING_MARGIN = 0.2
#: Φ less than this above the null's mean: no more sharing than the runs' endpoints and pace make.
SHARING_NEAR = 0.1
P_VALUE = 0.05
#: d_eff at most this is "low" (the reference study: the top 3 InPCA axes hold most of the geometry).
DIM_SMALL = 3.0
#: d_eff above this is "not low" (the reference study needed ~5 axes for 85 % stress on a smaller set).
DIM_LARGE = 5.0
#: Surrogate draws of each null; 19 makes p = 1/20 = 0.05 the smallest p-value.
N_NULL = 19
#: The nulls :func:`sharing` can draw, in words (see its docstring).
SHARING_NULLS = {
    "sample_permutation": "the per-run sample-permutation null (each run's samples put at permuted fractions "
                          "of their circles between its first and last grid point)",
    "within_label": "a per-run permutation of the samples within each class (each run's departure kept exactly)",
}
#: The null the rule reads. Within-label permutation keeps each run's progress and its
#: departure from the geodesic exactly (excursions off the great circles included) and
#: only breaks which samples the runs share; the endpoint surrogate moves samples along
#: their circles, drops those excursions and so raises its own Φ (on the digits demo store
#: above the runs' own: 0.355 against 0.304).
SHARING_NULL = "within_label"

RULE = (
    "One low-dimensional manifold, judged at equal progress on the ordinary runs (corners left out), on the "
    f"grid points reached by at least {COMMON_FRACTION * 100:g} % of them. Sharing Φ: the share of the runs' "
    "departure from the geodesic common to all runs, 1 − Σ_t [m/(m−1) · mean_r d_B(run r at t, the runs' "
    "geometric mean at t)] / Σ_t [mean_r d_B(run r at t, geodesic at t)], against "
    f"{N_NULL} draws of {SHARING_NULLS[SHARING_NULL]}. Dimension d_eff: 1 + the median over progress "
    "cross-sections of the number of leading InPCA eigenvalues of the runs' models above the 95th percentile "
    "of the same rank under a per-sample shuffle of run identities. "
    f"Supported when Φ ≥ {SHARING_HIGH:g}, Φ ≥ the null's mean + {SHARING_MARGIN:g} with p ≤ {P_VALUE:g}, "
    f"AND d_eff ≤ {DIM_SMALL:g}; not supported when Φ < the null's mean + {SHARING_NEAR:g} OR d_eff > "
    f"{DIM_LARGE:g}; inconclusive otherwise. Explained stress is shown beside a Brownian path's as a "
    "description; no verdict is drawn from it."
)


def judge(evidence: ManifoldEvidence) -> Judgement:
    """Claim 1 from sharing and shared dimension at equal progress (rule: :data:`RULE`)."""
    sh, dim = evidence.sharing, evidence.dimension
    phi, null_mean, p = sh.phi_summary, sh.null_mean, sh.p_value
    numbers = {"phi": phi, "null": sh.null, "phi_null_mean": null_mean, "phi_null_q95": sh.null_q95,
               "p_value": p, "d_eff": dim.d_eff, "runs": len(evidence.run_labels), "grid": evidence.grid_rule,
               "grid_points": int(sh.grid.size), "cross_sections": int(dim.grid.size)}
    if not all(math.isfinite(v) for v in (phi, null_mean, p, dim.d_eff)):
        why = "; ".join(evidence.reasons) or "sharing or dimension undefined on this grid"
        return Judgement("skipped", numbers, why)
    margin = phi - null_mean
    refuted = margin < SHARING_NEAR or dim.d_eff > DIM_LARGE
    supported = phi >= SHARING_HIGH and margin >= SHARING_MARGIN and p <= P_VALUE and dim.d_eff <= DIM_SMALL
    reason = (f"Φ = {phi:.3g}, {margin:+.3g} from its null's mean {null_mean:.3g} (p = {p:.3g}); "
              f"d_eff = {dim.d_eff:g}")
    return Judgement(decide(supported=supported, refuted=refuted), numbers, reason)


# ---------------------------------------------------------------------------- measuring
def manifold_evidence(ts, *, runs=None, grid_mask=None, null: str = SHARING_NULL, n_null: int = N_NULL,
                      n_shuffle: int = N_NULL, max_points: int = 26, max_sections: int = 21,
                      stress_sections: int | None = 11, max_axes: int = 10, random_state=0) -> ManifoldEvidence:
    """Claim 1 at equal progress: :func:`sharing`, :func:`shared_dimension` and the stress description.

    Parameters
    ----------
    ts : TrajectorySet
        Runs resampled at equal progress (:class:`~deepmanifold.analysis.trajectories.TrajectorySet`:
        ``sqrt_p``, ``reached``, ``grid``, ``sample_labels``, ``run_labels`` are read). Only grid points a
        run truly reached (``ts.reached``) are used, never a held last checkpoint.
    runs : array_like of bool (R,) or int indices, optional
        The ordinary runs (corners left out by the caller); default every run.
    grid_mask : array_like of bool, shape (G,), optional
        Grid points to use; default those reached by at least :data:`COMMON_FRACTION` of ``runs``.
    null : str, default :data:`SHARING_NULL`
        The null of the sharing statistic, one of :data:`SHARING_NULLS` (see :func:`sharing`).
    n_null, n_shuffle : int, default 19
        Draws of the sharing null and of the parallel analysis's shuffle.
    max_points : int, default 26
        Grid points of the sharing statistic, spread evenly over the grid used (every 0.04 of
        progress on the default 101-point grid).
    max_sections : int, default 21
        Cross-sections of the parallel analysis, spread evenly over the grid used.
    stress_sections : int or None, default 11
        Grid points whose models are embedded together for the stress description; None skips it.
    max_axes : int, default 10
    random_state : None, int or numpy.random.Generator

    Returns
    -------
    ManifoldEvidence

    Notes
    -----
    Cost, with ``m`` runs, ``n`` samples and ``C`` classes: sharing ``(1 + n_null)`` geometric means
    and ``2 m`` distances of ``(n, C)`` models per grid point, ``O((1 + n_null) m n C)`` each; the
    parallel analysis ``(1 + n_shuffle)`` matrices of ``m (m - 1) / 2`` distances per cross-section,
    ``O((1 + n_shuffle) m^2 n C)`` each; the description one matrix of ``stress_sections m`` models.
    With the defaults, on a digits store (m = 45 runs, n = 450 samples, the 101-point grid) about
    5 s on one core, half in each of the two judged parts; both grow linearly in ``n``.
    """
    idx, gsel, rule = _selection(ts, runs, grid_mask)
    rng = np.random.default_rng(random_state)
    reached = np.asarray(ts.reached, dtype=bool)[idx]
    reasons = [] if gsel.size else [f"no grid point is {rule[len('grid points '):]}"]
    sh = _sharing(ts, idx, _spread_out(gsel, reached, _count(max_points, "max_points"), 2),
                  _check_sharing_null(null), _count(n_null, "n_null"), rng)
    dim = _shared_dimension(ts, idx, _spread_out(gsel, reached, _count(max_sections, "max_sections"), 3),
                            _count(n_shuffle, "n_shuffle"), _count(max_axes, "max_axes"), rng)
    if gsel.size and not dim.grid.size:
        reasons.append("no grid point reached by at least 3 runs: no cross-section to analyse")
    stress = None
    if stress_sections is not None and gsel.size:
        stress = stress_description(ts, runs=idx, grid_mask=np.isin(np.arange(ts.grid.size), gsel),
                                    max_sections=stress_sections, max_axes=max_axes)
    return ManifoldEvidence(run_labels=[ts.run_labels[i] for i in idx], grid_rule=rule, sharing=sh,
                            dimension=dim, stress=stress, reasons=reasons)


def _count(value, name: str) -> int:
    if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def _selection(ts, runs, grid_mask):
    """``(run indices, grid indices, the grid's rule in words)`` after checking ``ts`` and the arguments."""
    reached = np.asarray(ts.reached, dtype=bool)
    R, G = reached.shape
    if tuple(ts.sqrt_p.shape[:2]) != (R, G) or np.shape(ts.grid) != (G,):
        raise ValueError(f"ts: sqrt_p {tuple(ts.sqrt_p.shape)}, reached {reached.shape} and grid "
                         f"{np.shape(ts.grid)} do not match")
    if getattr(ts, "sample_labels", None) is None:
        raise ValueError("ts.sample_labels: the probe samples' labels are needed (the geodesic)")
    arr = np.arange(R) if runs is None else np.asarray(runs)
    if arr.dtype == bool:
        if arr.shape != (R,):
            raise ValueError(f"runs: a boolean mask must have shape ({R},), got {arr.shape}")
        arr = np.flatnonzero(arr)
    idx = arr.astype(np.int64).ravel()
    if idx.size and (idx.min() < 0 or idx.max() >= R or np.unique(idx).size != idx.size):
        raise ValueError(f"runs: indices must be distinct and lie in [0, {R})")
    if idx.size < 2:
        raise ValueError(f"runs: at least 2 runs are needed, got {idx.size}")
    if grid_mask is None:
        mask = reached[idx].mean(axis=0) >= COMMON_FRACTION - 1e-12
        rule = f"grid points reached by at least {COMMON_FRACTION * 100:g} % of the {idx.size} runs"
    else:
        mask = np.asarray(grid_mask, dtype=bool)
        if mask.shape != (G,):
            raise ValueError(f"grid_mask must have shape ({G},), got {mask.shape}")
        rule = f"grid points selected by the caller ({int(mask.sum())} of {G})"
    return idx, np.flatnonzero(mask), rule


def _spread_out(gsel: np.ndarray, reached: np.ndarray, most: int, min_runs: int) -> np.ndarray:
    """At most ``most`` of the grid indices ``gsel`` reached by ``min_runs`` runs, evenly spread."""
    ok = gsel[reached[:, gsel].sum(axis=0) >= min_runs]
    if ok.size > most:
        ok = ok[np.unique(np.round(np.linspace(0, ok.size - 1, most)).astype(int))]
    return ok


def _models(ts, who: np.ndarray, g: int) -> np.ndarray:
    """Probabilities ``(len(who), n, C)`` of runs ``who`` at grid index ``g``."""
    return probabilities_from_roots(ts.sqrt_p[who, g])


# ---------------------------------------------------------------------------- sharing
def sharing(ts, *, runs=None, grid_mask=None, null: str = SHARING_NULL, n_null: int = N_NULL,
            max_points: int = 26, random_state=0) -> Sharing:
    r"""Share of the runs' departure from the geodesic that is common to all runs, at equal progress.

    At each progress ``t`` of the grid, with the ``m`` runs that reached it, their resampled models
    ``P_r(t)`` (progress exactly ``t``, docs/method.md §5.2), the geodesic point ``γ(t)`` (§3.1) and
    the runs' normalised geometric mean ``M(t)`` (§5.3, :func:`~deepmanifold.analysis.averaging.mean_model`):

    .. math::

        \mathrm{dep}(t) = \operatorname{mean}_r d_B(P_r(t), \gamma(t)), \quad
        \mathrm{priv}(t) = \tfrac{m}{m - 1} \operatorname{mean}_r d_B(P_r(t), M(t)), \quad
        \varphi_t = 1 - \mathrm{priv}(t) / \mathrm{dep}(t),

    clipped to ``[0, 1]``, and over the grid ``Φ = 1 - Σ_t priv(t) / Σ_t dep(t)`` (clipped).

    Why: ``d_B`` plays the role of a squared distance (§2.1, §4), and for nearby models it is
    ``≈ (1/2n) Σ_i α_i²`` (``α_i`` the angle between the ``sqrt p`` of sample ``i``). Writing each run
    as ``γ(t) + s + e_r``, ``s`` the part common to all runs and ``e_r`` a private part independent
    between runs, ``dep ≈ |s|² + E|e|²`` and ``mean_r |e_r - ē|² ≈ (m-1)/m E|e|²``, so
    ``φ ≈ |s|² / (|s|² + E|e|²)``, an intraclass correlation of the departure: about 0 for runs that
    leave the geodesic independently, 1 for runs that follow one path off it. ``Φ`` weights each
    ``t`` by its departure, so grid points where runs hardly leave the geodesic (near ignorance and
    truth, where ``φ_t`` is a ratio of two small numbers) weigh little.

    Limits: the decomposition is exact only where ``d_B`` is close to a squared Euclidean distance
    (small angles); the geometric mean is not the Bhattacharyya centroid (§5.7), so ``priv`` is a
    little above its minimum and ``φ`` errs low; runs that share in groups (seeds of one
    configuration, one architecture) share part of their departure within the group only, and
    ``φ`` falls between 0 and 1 (:func:`shared_dimension` says whether the structure between runs is
    low-dimensional); runs on the geodesic have no departure and ``φ_t`` is NaN there. Part of any
    sharing is made by what every run has anyway — its endpoints and its pace — which is why ``Φ`` is
    read against the null below.

    The null: ``n_null`` draws, on which ``φ`` and ``Φ`` are recomputed;
    ``p = (1 + #{null Φ >= Φ}) / (1 + n_null)``.

    - ``"sample_permutation"``: the per-run sample-permutation surrogate (:func:`permutation_surrogate`,
      module docstring) of each run's resampled trajectory, whose endpoints are the first and last
      grid points the run reached. What the endpoints share (e.g. the final models' common errors)
      stays in the null. Its samples move on great circles, so a run's private excursions off them
      are dropped: the surrogates' private part, hence their departure, is smaller than the data's,
      which raises the null's ``Φ`` (conservative).
    - ``"within_label"``: in each run, sample ``i`` takes the whole resampled trajectory of another
      sample of the same class (one permutation per run, independent between runs). Each run keeps
      its multiset of per-sample predictions at every ``t``, hence exactly its progress and its
      departure from the geodesic, excursions included; only which samples of a class depart
      together across runs is scrambled. What all runs share at the level of classes (common
      confusions between two classes) stays in the null.

    Parameters
    ----------
    ts : TrajectorySet
    runs, grid_mask, null, n_null, max_points, random_state
        As in :func:`manifold_evidence`: the grid points used are at most ``max_points`` of the grid
        selected, spread evenly, each reached by at least 2 runs.

    Returns
    -------
    Sharing

    Notes
    -----
    Cost per grid point: one geometric mean and ``2m`` distances of ``(n, C)`` models, ``O(m n C)``,
    times ``1 + n_null``; memory ``O(m G n)`` for the runs' per-sample fractions.
    """
    idx, gsel, _ = _selection(ts, runs, grid_mask)
    points = _spread_out(gsel, np.asarray(ts.reached, dtype=bool)[idx], _count(max_points, "max_points"), 2)
    return _sharing(ts, idx, points, _check_sharing_null(null), _count(n_null, "n_null"),
                    np.random.default_rng(random_state))


def _check_sharing_null(null) -> str:
    if null not in SHARING_NULLS:
        raise ValueError(f"null must be one of {tuple(SHARING_NULLS)}, got {null!r}")
    return null


def _sharing(ts, idx: np.ndarray, gsel: np.ndarray, null: str, n_null: int, rng) -> Sharing:
    _, _, n, C = ts.sqrt_p.shape
    reached = np.asarray(ts.reached, dtype=bool)[np.ix_(idx, gsel)]
    gamma = geometry.geodesic(ts.sample_labels, C, ts.grid[gsel]) if gsel.size else np.empty((0, n, C))
    dep, priv, counts = _departures(lambda j, who: _models(ts, idx[who], gsel[j]), reached, gamma)
    phi, summary = _phi(dep, priv)
    null_phi = np.empty((n_null, gsel.size))
    null_summary = np.empty(n_null)
    draw = _surrogate_draws(ts, idx, gsel, null, rng)
    for d in range(n_null):
        null_phi[d], null_summary[d] = _phi(*_departures(draw(), reached, gamma)[:2])
    p = float((1 + np.count_nonzero(null_summary >= summary - 1e-12)) / (1 + n_null)) if math.isfinite(
        summary) else float("nan")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN φ: median NaN
        median = float(np.nanmedian(phi)) if phi.size else float("nan")
    return Sharing(grid=ts.grid[gsel].copy(), n_runs=counts, departure=dep, private=priv, phi=phi,
                   phi_summary=summary, phi_median=median, null_phi=null_phi, null_summary=null_summary,
                   p_value=p, null=null)


def _departures(models_at, reached: np.ndarray, gamma: np.ndarray):
    """Per grid point ``j``: ``dep``, ``priv`` (see :func:`sharing`) and the number of runs, from
    ``models_at(j, who)`` (probabilities of the runs ``who`` that reached it)."""
    G = reached.shape[1]
    dep, priv = np.full(G, np.nan), np.full(G, np.nan)
    counts = reached.sum(axis=0).astype(np.int64)
    for j in range(G):
        who = np.flatnonzero(reached[:, j])
        if who.size < 2:
            continue
        X = models_at(j, who)
        dep[j] = float(np.mean(geometry.bhattacharyya(X, gamma[j])))
        mean = mean_model(X, "geometric")
        priv[j] = who.size / (who.size - 1) * float(np.mean(geometry.bhattacharyya(X, mean)))
    return dep, priv, counts


def _phi(dep: np.ndarray, priv: np.ndarray):
    """``(φ_t, Φ)`` from the departures (NaN where undefined)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        phi = np.where(dep > 1e-12, np.clip(1.0 - priv / dep, 0.0, 1.0), np.nan)
    ok = np.isfinite(dep) & np.isfinite(priv)
    total = float(dep[ok].sum())
    summary = float(np.clip(1.0 - priv[ok].sum() / total, 0.0, 1.0)) if total > 1e-12 else float("nan")
    return phi, summary


def _run_circles(ts, idx: np.ndarray, gsel: np.ndarray):
    """Each run's endpoints ``U, W (m, n, C)`` (unit roots at its first and last reached grid point),
    the angles ``A (m, n)`` between them, and the per-sample fractions ``S (m, G, n)`` of its models at
    ``gsel`` along the great circles between them (:func:`_circle_fractions`; 0 where not reached)."""
    _, _, n, C = ts.sqrt_p.shape
    reached = np.asarray(ts.reached, dtype=bool)
    U, W = np.zeros((idx.size, n, C)), np.zeros((idx.size, n, C))
    S = np.zeros((idx.size, gsel.size, n))
    for k, r in enumerate(idx):
        gs = np.flatnonzero(reached[r])
        if gs.size == 0:
            continue
        U[k], W[k] = np.sqrt(probabilities_from_roots(ts.sqrt_p[r, gs[[0, -1]]]))
        at = np.flatnonzero(reached[r, gsel])
        if at.size:
            S[k, at] = _circle_fractions(U[k], W[k], np.sqrt(probabilities_from_roots(ts.sqrt_p[r, gsel[at]])))
    return U, W, _angle(np.einsum("mnc,mnc->mn", U, W)), S


def _surrogate_draws(ts, idx: np.ndarray, gsel: np.ndarray, null: str, rng):
    """A function that draws one surrogate of the runs ``idx``: it returns ``models_at(j, who)``
    (as :func:`_departures` reads them) for one fresh permutation of the samples per run."""
    n = ts.sqrt_p.shape[2]
    if null == "within_label":
        labels = np.asarray(ts.sample_labels)
        classes = [np.flatnonzero(labels == c) for c in np.unique(labels)]

        def draw():
            perms = np.empty((idx.size, n), dtype=np.int64)
            for k in range(idx.size):
                for members in classes:
                    perms[k, members] = rng.permutation(members)
            return lambda j, who: _models(ts, idx[who], gsel[j])[np.arange(who.size)[:, None], perms[who]]
        return draw
    U, W, A, S = _run_circles(ts, idx, gsel)

    def draw():
        perms = np.argsort(rng.random((idx.size, n)), axis=1)  # one permutation of the samples per run
        return lambda j, who: _surrogate_models(U, W, A, S[:, j], perms, who)
    return draw


def _surrogate_models(U, W, A, s, perms, who) -> np.ndarray:
    """Probabilities of the surrogate models of runs ``who``: sample ``i`` of run ``k`` at fraction
    ``s[k, perms[k, i]]`` of its circle. Slerps of unit vectors are unit vectors, so squaring suffices."""
    if who.size < U.shape[0]:
        U, W, A, s, perms = U[who], W[who], A[who], s[who], perms[who]
    return np.square(_on_circles(U, W, np.take_along_axis(s, perms, axis=1), A))


# ---------------------------------------------------------------------------- shared dimension
def shared_dimension(ts, *, runs=None, grid_mask=None, n_shuffle: int = N_NULL, max_sections: int = 21,
                     max_axes: int = 10, random_state=0) -> SharedDimension:
    """Dimension of the structure the runs share, by parallel analysis of cross-sections at equal progress.

    At each cross-section (up to ``max_sections`` grid points spread evenly over the grid used, each
    reached by at least 3 runs), the runs' models are embedded by InPCA (docs/method.md §4) and their
    eigenvalues ``|μ_k|`` compared with ``n_shuffle`` draws of a per-sample shuffle of run identities:
    each sample's predictions are permuted among the runs, independently per sample. The shuffle keeps
    every sample's set of predictions across the runs, hence the total spread ``Σ_{r<s} D_rs`` exactly
    (``d_B`` is a mean of per-sample terms), and destroys only the agreement across samples about which
    runs are alike. The count of a cross-section is the number of leading ranks whose ``|μ_k|`` exceeds
    the 95th percentile of the shuffles' ``|μ_k|`` at the same rank (parallel analysis, Horn 1965);
    ``d_eff = 1 + median`` of the counts: the progress direction plus the median dimension of the
    coherent differences between runs at equal progress. Runs with private noise only give counts near
    0; ``k`` groups of runs on distinct paths give ``k - 1``.

    Parameters
    ----------
    ts : TrajectorySet
    runs, grid_mask, n_shuffle, max_sections, max_axes, random_state
        As in :func:`manifold_evidence`.

    Returns
    -------
    SharedDimension

    Notes
    -----
    Cost per cross-section of ``m`` runs: ``1 + n_shuffle`` distance matrices,
    ``(1 + n_shuffle) m^2 n C / 2`` multiply-adds, and as many InPCAs of ``m x m`` matrices.

    References: J. L. Horn, "A rationale and test for the number of factors in factor analysis",
    Psychometrika 30, 179-185, 1965.
    """
    idx, gsel, _ = _selection(ts, runs, grid_mask)
    sections = _spread_out(gsel, np.asarray(ts.reached, dtype=bool)[idx], _count(max_sections, "max_sections"), 3)
    return _shared_dimension(ts, idx, sections, _count(n_shuffle, "n_shuffle"), _count(max_axes, "max_axes"),
                             np.random.default_rng(random_state))


def _shared_dimension(ts, idx: np.ndarray, sections: np.ndarray, n_shuffle: int, max_axes: int,
                      rng) -> SharedDimension:
    reached = np.asarray(ts.reached, dtype=bool)
    S = sections.size
    mu = np.zeros((S, max_axes))
    q95 = np.zeros((S, max_axes))
    count = np.zeros(S, dtype=np.int64)
    n_runs = np.zeros(S, dtype=np.int64)
    for j, g in enumerate(sections):
        who = idx[reached[idx, g]]
        X = _models(ts, who, g)
        k = min(max_axes, who.size - 1)  # m models span at most m - 1 axes
        n_runs[j] = who.size
        mu[j, :k] = _spectrum(X, k)
        null = np.abs([_spectrum(_shuffle_runs(X, rng), k) for _ in range(n_shuffle)])
        q95[j, :k] = np.quantile(null, 0.95, axis=0)
        size = np.abs(mu[j, :k])
        above = (size > q95[j, :k]) & (size > 1e-12 * max(size.max(), 1e-300))
        count[j] = k if above.all() else int(np.argmin(above))
    d_eff = 1.0 + float(np.median(count)) if S else float("nan")
    return SharedDimension(grid=ts.grid[sections].copy(), n_runs=n_runs, eigenvalues=mu, null_q95=q95,
                           count=count, d_eff=d_eff, n_shuffle=n_shuffle)


def _spectrum(X: np.ndarray, k: int) -> np.ndarray:
    """Signed InPCA eigenvalues (sorted by ``|μ|``) of the models ``X``, ``k`` of them.

    One thread: a cross-section has tens of models, where starting threads costs more than the tiles."""
    D = geometry.pairwise_distances(X, n_jobs=1)
    return np.asarray(geometry.inpca(D, n_components=k).eigenvalues, dtype=np.float64)


def _shuffle_runs(X: np.ndarray, rng) -> np.ndarray:
    """``X (m, n, C)`` with each sample's ``m`` predictions permuted among the runs, independently per sample."""
    m, n, _ = X.shape
    perm = np.argsort(rng.random((m, n)), axis=0)
    return X[perm, np.arange(n)]


# ---------------------------------------------------------------------------- description
def stress_description(ts, *, runs=None, grid_mask=None, max_sections: int = 11,
                       max_axes: int = 10) -> StressDescription:
    """Explained stress of the runs' models at up to ``max_sections`` progress values, beside a Brownian path.

    The models of every run at the chosen grid points (spread evenly over the grid used) are embedded
    together by InPCA; their explained stress for ``1..max_axes`` axes is a description of the picture
    with no verdict: the ignorance-to-truth axis carries most of the stress of any sweep (docs/method.md
    §4.2), and a single random walk already needs only 3 axes for 90 % (:func:`brownian_stress`).

    Cost: one distance matrix of ``T = Σ_sections m`` models, ``T^2 n C / 2`` multiply-adds.
    """
    idx, gsel, _ = _selection(ts, runs, grid_mask)
    k = _count(max_axes, "max_axes")
    reached = np.asarray(ts.reached, dtype=bool)
    sections = _spread_out(gsel, reached[idx], _count(max_sections, "max_sections"), 1)
    X = [_models(ts, idx[reached[idx, g]], g) for g in sections]
    stress = np.full(k, np.nan)
    T = int(sum(x.shape[0] for x in X))
    if T >= 2:
        res = geometry.inpca(geometry.pairwise_distances(np.concatenate(X)), n_components=min(k, T))
        stress[:min(k, T)] = res.explained_stress
    return StressDescription(grid=ts.grid[sections].copy(), n_models=T, explained_stress=stress,
                             brownian=brownian_stress(k))


def brownian_stress(max_axes: int = 10) -> np.ndarray:
    r"""Explained stress of the top ``1..max_axes`` InPCA axes of a Brownian path (continuum limit).

    A random walk in many dimensions has ``E|B_s - B_t|² ∝ |s - t|``; InPCA of ``D_st = |s - t|`` on
    ``[0, 1]`` double-centres it to the covariance of the centred path, whose eigenvalues are
    ``1 / (k π)²`` (eigenfunctions ``cos kπt``). So the explained fraction of ``k`` axes is
    ``Σ_{l<=k} l^-4 / ζ(4)`` with ``ζ(4) = π⁴/90``, and the stress ``1 - sqrt(1 - fraction)``:
    0.724, 0.865, 0.917, ... — 3 axes reach 90 %. A path sampled at ``T`` points approaches these
    values as ``T`` grows (the tests check ``T = 1001`` against them).

    Examples
    --------
    >>> brownian_stress(3).round(3).tolist()
    [0.724, 0.865, 0.917]
    """
    k = np.arange(1, _count(max_axes, "max_axes") + 1, dtype=np.float64)
    fraction = np.cumsum(k ** -4.0) * 90.0 / math.pi ** 4
    return 1.0 - np.sqrt(np.clip(1.0 - fraction, 0.0, None))
