r"""Averaging models in prediction space (docs/method.md §5.7).

``M`` models on the same ``n`` samples, ``P`` of shape ``(M, n, C)``. For each
sample the ``M`` probability vectors are averaged and the result renormalised
(:func:`mean_model`; every mean takes per-model weights, which the bootstrap uses):

``"arithmetic"``
    ``mean_m p_m``.
``"geometric"``
    ``exp(mean_m log max(p_m, floor))`` normalised (floor
    :data:`deepmanifold.geometry.FLOOR` = 1e-12 by default).
``"harmonic"``
    ``1 / mean_m (1 / max(p_m, floor))`` normalised.
``"sqrt_arithmetic"``
    ``(mean_m sqrt p_m)²`` normalised: the normalised Euclidean mean on the
    sphere of ``sqrt p``.
``"bhattacharyya_centroid"``
    ``argmin_q Σ_m d_B(p_m, q)``. ``d_B`` is a mean over samples, so this
    separates per sample: maximise ``F(s) = Σ_m log <r_m, s>`` with
    ``r_m = sqrt p_m`` over unit vectors ``s = sqrt q >= 0``. ``F`` is concave
    and increasing along rays, so the maximiser over the unit ball is unique
    and lies on the sphere; it is characterised by the stationarity (KKT)
    condition ``g(s) = Σ_m r_m / <r_m, s> = M s`` (``s·g = M`` always, hence the
    multiplier is ``M``; equivalently ``Σ_m sqrt(p_mc / q_c) / BC_m = M`` for
    every class with ``q_c > 0``). See :func:`bhattacharyya_centroid` for the
    iteration.

What is reported (:func:`average_models`)
-----------------------------------------
For each mean: progress along the ignorance-to-truth geodesic
(:func:`deepmanifold.geometry.progress`), accuracy, mean negative log-likelihood of the
labels (cross-entropy, probabilities floored at ``floor``), mean entropy and mean
``d_B`` to the models, next to those of the individual models, with percentile
intervals from a bootstrap over the models (``M`` drawn with replacement per replicate,
as weights: no copy of ``P``). A replicate holds about 63 % distinct models, so where a
mean gains from more members its replicates fall short of the full ensemble and the
interval can lie below the point estimate: read the intervals as the spread over
ensembles of the runs, slightly smaller than the one measured.

**Sharpening control.** The normalised geometric mean is usually sharper (lower
entropy) than the arithmetic mean, and sharpening a correct-leaning prediction by itself
raises progress and can lower NLL. ``"arithmetic_sharpened"`` is the arithmetic mean
tempered, ``q ∝ a^{1/T}``, with ``T`` solved so that its mean entropy equals the
geometric mean's (:func:`temperature_for_entropy`; re-solved in every bootstrap
replicate). Tempering keeps each sample's most probable class, so its accuracy is the
arithmetic mean's. The contrasts geometric − arithmetic and geometric −
arithmetic_sharpened (:class:`Contrast`, paired within each replicate) separate
"geometric beats arithmetic" from "sharper beats flatter".

Per configuration group and pooled (:func:`average_final_models`): the final models of
the ordinary runs, pooled, and those of each configuration group with at least two of them.

In the reference study the geometric and harmonic means of 30 final models had
higher test progress than the arithmetic mean (0.760, 0.784 vs 0.715); that is an
empirical finding, not a theorem, and is not assumed here.
"""

from __future__ import annotations

import numbers
import warnings
from dataclasses import dataclass, field

import numpy as np
import scipy.optimize
from scipy.special import logsumexp

from deepmanifold import geometry
from deepmanifold.geometry.validation import check_floor, check_labels, check_probabilities
from deepmanifold.utils import jsonable

__all__ = ["METHODS", "SHARPENED", "AveragedModel", "Contrast", "FinalModelAverages", "IndividualModels",
           "ModelAverages", "average_final_models", "average_models", "bhattacharyya_centroid", "mean_entropy",
           "mean_model", "temperature_for_entropy", "tempered"]

METHODS = ("arithmetic", "geometric", "harmonic", "sqrt_arithmetic", "bhattacharyya_centroid")
#: The sharpening control: the arithmetic mean tempered to the geometric mean's mean entropy.
SHARPENED = "arithmetic_sharpened"
#: What each mean is scored by (``mean_distance`` is reported without an interval).
METRICS = ("progress", "accuracy", "nll", "entropy")
_LOG_BETA = 30.0  # tempering exponents 1/T searched in [e^-30, e^30]


def _load(P, log: bool) -> np.ndarray:
    P = check_probabilities(P, "P", log=log, ndim=3)
    P = np.asarray(P, dtype=np.float64)
    return np.exp(P) if log else P


def _normalise(Q: np.ndarray) -> np.ndarray:
    return Q / Q.sum(axis=-1, keepdims=True)


def _weights(weights, M: int) -> np.ndarray:
    """Non-negative model weights summing to 1 (equal weights by default)."""
    if weights is None:
        return np.full(M, 1.0 / M)
    w = np.asarray(weights, dtype=np.float64)
    if w.shape != (M,) or not np.all(np.isfinite(w)) or np.any(w < 0) or w.sum() <= 0:
        raise ValueError(f"weights must be {M} finite non-negative numbers, not all zero")
    return w / w.sum()


# ----------------------------------------------------------------------------- means
def _objective(R: np.ndarray, S: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-sample ``F(s) = Σ_m w_m log <r_m, s>`` and the coefficients ``<r_m, s>``."""
    bc = np.einsum("mnc,nc->mn", R, S)
    with np.errstate(divide="ignore"):
        return w @ np.log(bc), bc


def _centroid(R: np.ndarray, w: np.ndarray, *, tol: float, max_iter: int, start: np.ndarray | None = None):
    """Unit roots ``S`` (n, C) of the weighted centroid of the roots ``R`` (m, n, C), weights ``w > 0`` summing
    to 1 (KKT: ``Σ_m w_m r_m / <r_m, s> = s``), the iterations taken and the final KKT residual."""
    S = np.tensordot(w, R, axes=1) if start is None else start.copy()
    S /= np.linalg.norm(S, axis=-1, keepdims=True)
    f, bc = _objective(R, S, w)
    it, resid = 0, np.inf
    for it in range(1, max_iter + 1):
        G = np.einsum("mnc,mn->nc", R, w[:, None] / bc)
        resid = float(np.max(np.abs(G - S))) if S.size else 0.0
        if resid <= tol:
            it -= 1
            break
        S1 = G / np.linalg.norm(G, axis=-1, keepdims=True)
        S2 = np.sqrt(S * G)
        S2 /= np.linalg.norm(S2, axis=-1, keepdims=True)
        f1, bc1 = _objective(R, S1, w)
        f2, bc2 = _objective(R, S2, w)
        take1 = f1 >= f2
        S = np.where(take1[:, None], S1, S2)
        f = np.where(take1, f1, f2)
        bc = np.where(take1[None, :], bc1, bc2)
    if resid > tol:
        warnings.warn(f"Bhattacharyya centroid: KKT residual {resid:.3g} > tol={tol:g} after {max_iter} "
                      "iterations", RuntimeWarning, stacklevel=3)
    return S, int(it), resid


def bhattacharyya_centroid(P, *, weights=None, log: bool = False, tol: float = 1e-10, max_iter: int = 2000,
                           return_info: bool = False):
    r"""The Bhattacharyya centroid ``argmin_q Σ_m w_m d_B(p_m, q)`` of ``M`` models.

    Per sample, with ``r_m = sqrt p_m`` and ``s = sqrt q`` on the unit sphere,
    ``g(s) = Σ_m w_m r_m / <r_m, s>`` (weights summing to 1). Starting from the
    normalised sqrt-arithmetic mean, each iteration computes two candidates,

    * the fixed-point step ``s' = g / ||g||`` (fast when it converges: the
      fixed points are exactly the KKT points ``g = s``), and
    * the minorise-maximise (EM) step ``q'_c ∝ q_c g_c / sqrt(q_c)``, i.e.
      ``s'_c ∝ sqrt(s_c g_c)``, obtained from Jensen's inequality
      ``log Σ_c r_c s_c >= Σ_c v_c log(r_c s_c / v_c)`` with
      ``v_c ∝ r_c s_c``; it never decreases ``F``,

    and keeps, per sample, whichever has the larger objective, so ``F``
    increases monotonically. It stops when the KKT residual
    ``max_c |g_c - s_c| <= tol`` for every sample, or after ``max_iter``
    iterations (then a ``RuntimeWarning``). ``<r_m, s> > 0`` throughout (it is at least
    ``w_m ||r_m||² / ||Σ w r|| > 0`` at the start and ``F`` only increases).

    Parameters
    ----------
    P : array_like, shape (M, n, C)
    weights : array_like, shape (M,), optional
        Non-negative model weights (normalised to sum 1; default equal). Models of
        weight 0 are left out.
    log : bool
        ``P`` holds natural-log probabilities.
    tol : float
    max_iter : int
    return_info : bool
        Also return ``{"iterations", "kkt_residual"}``.

    Returns
    -------
    ndarray, shape (n, C) (and a dict with ``return_info``)
    """
    P = _load(P, log)
    w = _weights(weights, P.shape[0])
    keep = w > 0
    S, it, resid = _centroid(np.sqrt(P[keep]), w[keep], tol=tol, max_iter=max_iter)
    Q = _normalise(np.square(S))
    if return_info:
        return Q, {"iterations": it, "kkt_residual": resid}
    return Q


class _Stack:
    """Per-model transforms of ``P`` (log, inverse, root), each computed once when first needed, so that any
    weighted mean is one contraction over the models (the bootstrap draws weights, not copies of ``P``)."""

    def __init__(self, P: np.ndarray, floor: float, tol: float = 1e-10, max_iter: int = 2000):
        self.P, self.floor, self.tol, self.max_iter = P, floor, tol, max_iter
        self._cache: dict[str, np.ndarray] = {}
        self.centroid_root: np.ndarray | None = None  # the equal-weight centroid: the bootstrap's warm start

    def _transform(self, key: str) -> np.ndarray:
        if key not in self._cache:
            floored = np.maximum(self.P, self.floor) if key in ("log", "inverse") else None
            self._cache[key] = {"log": lambda: np.log(floored), "inverse": lambda: 1.0 / floored,
                                "root": lambda: np.sqrt(self.P)}[key]()
        return self._cache[key]

    def mean(self, method: str, w: np.ndarray) -> np.ndarray:
        """The ``method`` mean with weights ``w`` (non-negative, summing to 1), shape (n, C)."""
        if method == "arithmetic":
            return _normalise(np.tensordot(w, self.P, axes=1))
        if method == "geometric":
            L = np.tensordot(w, self._transform("log"), axes=1)
            return _normalise(np.exp(L - L.max(axis=-1, keepdims=True)))
        if method == "harmonic":
            return _normalise(1.0 / np.tensordot(w, self._transform("inverse"), axes=1))
        root = self._transform("root")
        if method == "sqrt_arithmetic":
            return _normalise(np.square(np.tensordot(w, root, axes=1)))
        keep = w > 0
        S, _, _ = _centroid(root[keep], w[keep], tol=self.tol, max_iter=self.max_iter, start=self.centroid_root)
        if self.centroid_root is None:
            self.centroid_root = S
        return _normalise(np.square(S))


def mean_model(P, method: str = "geometric", *, weights=None, log: bool = False,
               floor: float = geometry.FLOOR) -> np.ndarray:
    """The per-sample mean of ``M`` models by one of :data:`METHODS` (module docstring).

    Parameters
    ----------
    P : array_like, shape (M, n, C)
        Probabilities (or log-probabilities with ``log=True``).
    method : str
        One of ``"arithmetic"``, ``"geometric"``, ``"harmonic"``,
        ``"sqrt_arithmetic"``, ``"bhattacharyya_centroid"``.
    weights : array_like, shape (M,), optional
        Non-negative model weights (normalised to sum 1; default equal): each mean is
        taken with them (e.g. ``exp(Σ_m w_m log p_m)`` for the geometric one).
    floor : float, default :data:`deepmanifold.geometry.FLOOR` (1e-12)
        Probabilities are raised to ``floor`` inside the geometric and harmonic
        means (so one model's zero does not zero the mean).

    Returns
    -------
    ndarray, shape (n, C), rows summing to 1

    Raises
    ------
    ValueError
        Unknown ``method``, ``floor`` outside ``(0, 1)``, invalid probabilities or weights.
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    floor = check_floor(floor)
    P = _load(P, log)
    return _Stack(P, floor).mean(method, _weights(weights, P.shape[0]))


# ----------------------------------------------------------------------------- tempering
def _tempered_log(logQ: np.ndarray, beta: float) -> np.ndarray:
    """``log`` of ``Q^β`` normalised per sample (zeros stay zeros)."""
    Z = beta * logQ
    return Z - logsumexp(Z, axis=-1, keepdims=True)


def _mean_entropy_of_log(L: np.ndarray) -> float:
    """Mean over samples of ``-Σ_c q_c log q_c`` from ``L = log q`` (``0 log 0 = 0``)."""
    q = np.exp(L)
    return float(-(q * np.where(q > 0, L, 0.0)).sum(axis=-1).mean())


def _model(Q, name: str) -> np.ndarray:
    Q = check_probabilities(Q, name, log=False, ndim=2)
    return np.asarray(Q, dtype=np.float64)


def _log(Q: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore"):
        return np.log(Q)


def mean_entropy(Q) -> float:
    """Mean over samples of the entropy ``-Σ_c q_c log q_c`` (nats) of one model ``Q`` of shape (n, C)."""
    return _mean_entropy_of_log(_log(_model(Q, "Q")))


def tempered(Q, temperature: float) -> np.ndarray:
    """``Q`` tempered per sample: ``q_c ∝ Q_c^{1/T}`` (``T < 1`` sharpens, ``T > 1`` flattens).

    Tempering keeps each sample's most probable class and its zeros.

    Parameters
    ----------
    Q : array_like, shape (n, C)
    temperature : float
        ``T > 0``.

    Returns
    -------
    ndarray, shape (n, C)

    Examples
    --------
    >>> tempered(np.array([[0.8, 0.2]]), 0.5).round(6).tolist()
    [[0.941176, 0.058824]]
    """
    if not (isinstance(temperature, numbers.Real) and np.isfinite(temperature) and temperature > 0):
        raise ValueError(f"temperature must be a positive finite number, got {temperature!r}")
    return np.exp(_tempered_log(_log(_model(Q, "Q")), 1.0 / float(temperature)))


def _temperature(logQ: np.ndarray, target: float) -> float:
    """``T`` with mean entropy of ``Q^{1/T}`` (normalised) equal to ``target``: the end of the search range
    ``1/T ∈ [e^-30, e^30]`` nearest to it when out of reach, 1 when tempering does not change the entropy."""
    def excess(u):  # decreasing in u = log(1/T): the entropy of a tempered distribution falls as 1/T grows
        return _mean_entropy_of_log(_tempered_log(logQ, np.exp(u))) - target

    flattest, sharpest = excess(-_LOG_BETA), excess(_LOG_BETA)
    if flattest - sharpest <= 1e-12 * max(1.0, target):
        return 1.0
    if flattest <= 0.0:
        return float(np.exp(_LOG_BETA))
    if sharpest >= 0.0:
        return float(np.exp(-_LOG_BETA))
    return float(np.exp(-scipy.optimize.brentq(excess, -_LOG_BETA, _LOG_BETA, xtol=1e-13)))


def temperature_for_entropy(Q, target: float) -> float:
    r"""The temperature ``T`` at which ``Q`` tempered (:func:`tempered`) has mean entropy ``target``.

    Each sample's entropy of ``q ∝ Q^β`` falls as ``β = 1/T`` grows
    (:math:`\partial_\beta H = -\beta \operatorname{Var}_q(\log Q) \le 0`), so the mean
    entropy is monotone in ``β``: from the mean log-size of the supports (``β → 0``)
    down to the mean log-number of tied maxima (``β → ∞``). ``T`` is found by Brent's
    method in ``log β``. A ``target`` outside that range gives the nearest end of the
    searched range ``β ∈ [e^-30, e^30]``; a ``Q`` that is uniform on its support in
    every sample gives ``T = 1`` (tempering changes nothing).

    Parameters
    ----------
    Q : array_like, shape (n, C)
    target : float
        Mean entropy in nats.

    Returns
    -------
    float

    Examples
    --------
    >>> Q = np.array([[0.6, 0.4], [0.9, 0.1]])
    >>> T = temperature_for_entropy(Q, 0.3)
    >>> round(mean_entropy(tempered(Q, T)), 12)
    0.3
    """
    if not (isinstance(target, numbers.Real) and np.isfinite(target) and target >= 0):
        raise ValueError(f"target must be a finite non-negative entropy, got {target!r}")
    return _temperature(_log(_model(Q, "Q")), float(target))


# ----------------------------------------------------------------------------- what is reported
def _interval_json(intervals: dict) -> dict:
    return {k: [lo, hi] for k, (lo, hi) in intervals.items()}


@dataclass(frozen=True, eq=False)
class IndividualModels:
    """Progress, accuracy and NLL of the ``M`` averaged models themselves.

    Attributes
    ----------
    progress, accuracy, nll : ndarray, shape (M,)
        Per model (``nll``: mean over samples of ``-log max(p_y, floor)``).
    progress_mean, progress_sd, accuracy_mean, accuracy_sd, nll_mean, nll_sd : float
        Over the models (sample standard deviation; 0 for one model).
    """

    progress: np.ndarray
    accuracy: np.ndarray
    nll: np.ndarray
    progress_mean: float
    progress_sd: float
    accuracy_mean: float
    accuracy_sd: float
    nll_mean: float
    nll_sd: float

    @property
    def n_models(self) -> int:
        return int(self.progress.shape[0])

    def to_dict(self) -> dict:
        return jsonable({"n_models": self.n_models, "progress_mean": self.progress_mean,
                         "progress_sd": self.progress_sd, "accuracy_mean": self.accuracy_mean,
                         "accuracy_sd": self.accuracy_sd, "nll_mean": self.nll_mean, "nll_sd": self.nll_sd,
                         "progress": self.progress, "accuracy": self.accuracy, "nll": self.nll})


@dataclass(frozen=True)
class AveragedModel:
    """One mean of the models (:func:`mean_model`, or the sharpening control :data:`SHARPENED`).

    Attributes
    ----------
    progress : float
        Its progress along the ignorance-to-truth geodesic.
    accuracy : float
        Fraction of samples whose most probable class is the label (ties go to the
        lowest class index).
    nll : float
        Mean over samples of ``-log max(q_y, floor)`` (cross-entropy of the labels).
    entropy : float
        Mean over samples of ``-Σ_c q_c log q_c`` (nats).
    mean_distance : float
        ``mean_m d_B(p_m, mean)``, which the Bhattacharyya centroid minimises.
    intervals : dict of str to (float, float)
        2.5 / 97.5 percentiles of ``progress``, ``accuracy``, ``nll`` and ``entropy``
        over the bootstrap replicates (empty without a bootstrap).
    temperature : float or None
        For :data:`SHARPENED`: the temperature ``T`` applied to the arithmetic mean
        (``T < 1`` sharpens).
    """

    progress: float
    accuracy: float
    nll: float
    entropy: float
    mean_distance: float
    intervals: dict = field(default_factory=dict)
    temperature: float | None = None

    def to_dict(self) -> dict:
        out = {"progress": self.progress, "accuracy": self.accuracy, "nll": self.nll, "entropy": self.entropy,
               "mean_distance": self.mean_distance, "intervals": _interval_json(self.intervals)}
        if self.temperature is not None:
            out["temperature"] = self.temperature
        return jsonable(out)


@dataclass(frozen=True)
class Contrast:
    """One mean against another: ``method`` minus ``reference``, paired within each bootstrap replicate.

    Attributes
    ----------
    method, reference : str
    difference : dict of str to float
        Per metric (:data:`METRICS`): the value of ``method`` minus that of ``reference``.
    intervals : dict of str to (float, float)
        2.5 / 97.5 percentiles of the difference over the replicates.
    """

    method: str
    reference: str
    difference: dict
    intervals: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return jsonable({"method": self.method, "reference": self.reference, "difference": self.difference,
                         "intervals": _interval_json(self.intervals)})


@dataclass(frozen=True, eq=False)
class ModelAverages:
    """Result of :func:`average_models`.

    Attributes
    ----------
    individual : IndividualModels
    means : dict of str to AveragedModel
        One entry per method asked for, in that order, then :data:`SHARPENED` when
        computed.
    contrasts : list of Contrast
        Every mean but the arithmetic one against the arithmetic mean and against
        :data:`SHARPENED`, and :data:`SHARPENED` against the arithmetic mean.
    n_boot : int
        Bootstrap replicates behind the intervals.
    """

    individual: IndividualModels
    means: dict
    contrasts: list = field(default_factory=list)
    n_boot: int = 0

    def to_dict(self) -> dict:
        """JSON form (findings.json): ``{"n_boot", "individual", <method>: {...}, ..., "contrasts": [...]}``."""
        return {"n_boot": int(self.n_boot), "individual": self.individual.to_dict(),
                **{m: r.to_dict() for m, r in self.means.items()},
                "contrasts": [c.to_dict() for c in self.contrasts]}


def _accuracy(P: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Fraction of samples whose most probable class is the label, per model of ``(..., n, C)``."""
    return (P.argmax(axis=-1) == labels).mean(axis=-1)


def _nll(P: np.ndarray, labels: np.ndarray, floor: float) -> np.ndarray:
    """Mean ``-log max(p_y, floor)`` over samples, per model of ``(..., n, C)``."""
    picked = np.take_along_axis(P, np.broadcast_to(labels[:, None], P.shape[:-1] + (1,)), axis=-1)[..., 0]
    return -np.log(np.maximum(picked, floor)).mean(axis=-1)


def _scores(means: dict, labels: np.ndarray, floor: float, method: str) -> dict:
    """``{name: {metric: value}}``: :data:`METRICS` of each model ``(n, C)`` of ``means`` (progress in one call)."""
    names = list(means)
    Q = np.stack([means[m] for m in names])
    prog = np.atleast_1d(geometry.progress(Q, labels, method=method))
    acc, nll = _accuracy(Q, labels), _nll(Q, labels, floor)
    return {m: {"progress": float(prog[k]), "accuracy": float(acc[k]), "nll": float(nll[k]),
                "entropy": _mean_entropy_of_log(_log(Q[k]))} for k, m in enumerate(names)}


def _individual(P: np.ndarray, labels: np.ndarray, floor: float, method: str) -> IndividualModels:
    prog = np.atleast_1d(geometry.progress(P, labels, method=method))
    acc, nll = _accuracy(P, labels), _nll(P, labels, floor)
    sd = (lambda a: float(a.std(ddof=1)) if a.size > 1 else 0.0)
    return IndividualModels(progress=prog, accuracy=acc, nll=nll, progress_mean=float(prog.mean()),
                            progress_sd=sd(prog), accuracy_mean=float(acc.mean()), accuracy_sd=sd(acc),
                            nll_mean=float(nll.mean()), nll_sd=sd(nll))


def _all_means(stack: _Stack, methods: tuple, sharpen: bool, w: np.ndarray):
    """Every mean with weights ``w``: ``{name: Q}`` and the sharpening temperature (None when not sharpened)."""
    means = {m: stack.mean(m, w) for m in methods}
    if not sharpen:
        return means, None
    T = _temperature(_log(means["arithmetic"]), _mean_entropy_of_log(_log(means["geometric"])))
    means[SHARPENED] = np.exp(_tempered_log(_log(means["arithmetic"]), 1.0 / T))
    return means, T


def _bootstrap(stack: _Stack, methods: tuple, sharpen: bool, labels: np.ndarray, floor: float, n_boot: int,
               rng, progress_method: str) -> dict:
    """``{name: {metric: (n_boot,) array}}`` over replicates drawing the ``M`` models with replacement."""
    M = stack.P.shape[0]
    names = methods + ((SHARPENED,) if sharpen else ())
    out = {name: {k: np.empty(n_boot) for k in METRICS} for name in names}
    for b in range(n_boot):
        w = np.bincount(rng.integers(0, M, M), minlength=M) / M
        means, _ = _all_means(stack, methods, sharpen, w)
        for name, values in _scores(means, labels, floor, progress_method).items():
            for k, v in values.items():
                out[name][k][b] = v
    return out


def _percentile_interval(x: np.ndarray) -> tuple[float, float]:
    lo, hi = np.percentile(x, [2.5, 97.5])
    return float(lo), float(hi)


def _contrasts(points: dict, boot: dict, names: list) -> list:
    pairs = [(m, ref) for ref in ("arithmetic", SHARPENED) if ref in names
             for m in names if m not in ("arithmetic", SHARPENED)]
    if "arithmetic" in names and SHARPENED in names:
        pairs.append((SHARPENED, "arithmetic"))
    return [Contrast(method=m, reference=ref,
                     difference={k: points[m][k] - points[ref][k] for k in METRICS},
                     intervals={k: _percentile_interval(boot[m][k] - boot[ref][k]) for k in METRICS} if boot else {})
            for m, ref in pairs]


def _check_methods(methods) -> tuple:
    methods = tuple(methods)
    bad = [m for m in methods if m not in METHODS]
    if bad:
        raise ValueError(f"unknown methods {bad}; choose from {METHODS}")
    return methods


def average_models(P, labels, *, methods=METHODS, sharpen: bool = True, n_boot: int = 200, random_state=0,
                   log: bool = False, floor: float = geometry.FLOOR, progress_method: str = "angle") -> ModelAverages:
    """Progress, accuracy, NLL and entropy of averaged models, next to the individual models.

    Parameters
    ----------
    P : array_like, shape (M, n, C)
        Predictions of ``M`` (final) models on the same ``n`` samples.
    labels : array_like of int, shape (n,)
        True labels of the samples.
    methods : sequence of str
        Any of :data:`METHODS`.
    sharpen : bool, default True
        Add the sharpening control :data:`SHARPENED` (needs ``"arithmetic"`` and
        ``"geometric"`` among ``methods``; skipped otherwise).
    n_boot : int, default 200
        Bootstrap replicates over the models (0: no intervals).
    random_state : None, int or numpy.random.Generator
    log : bool
        ``P`` holds natural-log probabilities.
    floor : float, default :data:`deepmanifold.geometry.FLOOR` (1e-12)
        Floor of the geometric/harmonic means and of the NLL.
    progress_method : {"angle", "bhattacharyya"}, default "angle"
        The definition of progress (docs/method.md §3.3).

    Returns
    -------
    ModelAverages
        Its ``to_dict()`` is the JSON form.

    Raises
    ------
    ValueError
        Unknown methods or progress method, invalid probabilities or labels, a bad ``floor`` or
        ``n_boot``.

    Notes
    -----
    Cost: ``n_boot + 1`` evaluations of every mean (one contraction of ``M n C`` each;
    the centroid's iterations start from the full sample's centroid) and of its
    progress; the per-model logarithms, inverses and roots are computed once
    (``M n C`` float64 each).

    Examples
    --------
    >>> labels = np.array([0, 1, 1])
    >>> P = geometry.geodesic(labels, 2, np.array([0.2, 0.6]))
    >>> res = average_models(P, labels, methods=("sqrt_arithmetic",), n_boot=0)
    >>> res.individual.progress.round(6).tolist(), round(res.means["sqrt_arithmetic"].progress, 6)
    ([0.2, 0.6], 0.4)
    """
    methods = _check_methods(methods)
    progress_method = geometry.check_progress_method(progress_method)
    if not isinstance(n_boot, numbers.Integral) or n_boot < 0:
        raise ValueError(f"n_boot must be a non-negative integer, got {n_boot!r}")
    floor = check_floor(floor)
    P = _load(P, log)
    labels = check_labels(labels, P.shape[1], P.shape[2])
    sharpen = bool(sharpen) and "arithmetic" in methods and "geometric" in methods
    stack = _Stack(P, floor)
    M = P.shape[0]
    point, T = _all_means(stack, methods, sharpen, np.full(M, 1.0 / M))
    scores = _scores(point, labels, floor, progress_method)
    boot = _bootstrap(stack, methods, sharpen, labels, floor, int(n_boot), np.random.default_rng(random_state),
                      progress_method) if n_boot else {}
    means = {name: AveragedModel(**scores[name], mean_distance=float(geometry.bhattacharyya(P, Q).mean()),
                                 intervals={k: _percentile_interval(boot[name][k]) for k in METRICS} if boot else {},
                                 temperature=T if name == SHARPENED else None)
             for name, Q in point.items()}
    return ModelAverages(individual=_individual(P, labels, floor, progress_method), means=means,
                         contrasts=_contrasts(scores, boot, list(point)), n_boot=int(n_boot))


# ----------------------------------------------------------------------------- groups and pooled
@dataclass(frozen=True, eq=False)
class FinalModelAverages:
    """Averages of final models: pooled over the ordinary runs, and per configuration group.

    Attributes
    ----------
    pooled : ModelAverages
        Over every ordinary run.
    groups : dict of str to ModelAverages
        Per configuration group with at least two ordinary runs, in order of first appearance.
    single : list of str
        Groups with one ordinary run (nothing to average).
    n_runs : int
        Ordinary runs averaged.
    n_left_out : int
        Runs left out as not ordinary (e.g. corner-initialised runs, outliers).
    """

    pooled: ModelAverages
    groups: dict
    single: list
    n_runs: int
    n_left_out: int

    def to_dict(self) -> dict:
        """JSON form (findings.json): ``{"n_runs", "n_left_out", "pooled", "groups", "single"}``."""
        return {"n_runs": int(self.n_runs), "n_left_out": int(self.n_left_out), "pooled": self.pooled.to_dict(),
                "groups": {g: r.to_dict() for g, r in self.groups.items()}, "single": list(self.single)}


def average_final_models(P, labels, groups=None, *, ordinary=None, methods=METHODS, sharpen: bool = True,
                         n_boot: int = 200, random_state=0, log: bool = False,
                         floor: float = geometry.FLOOR, progress_method: str = "angle") -> FinalModelAverages:
    """:func:`average_models` of the final models, pooled over the ordinary runs and per configuration group.

    Parameters
    ----------
    P : array_like, shape (R, n, C)
        The final model of each run on one probe set.
    labels : array_like of int, shape (n,)
    groups : sequence of str, length R, optional
        Configuration group of each run (runs equal but for the seed); default: no groups.
    ordinary : array_like of bool, shape (R,), optional
        Runs to average (default all), e.g. not corner-initialised and not outliers.
    methods, sharpen, n_boot, random_state, log, floor, progress_method
        As for :func:`average_models`; one random stream serves every group in turn.

    Returns
    -------
    FinalModelAverages

    Raises
    ------
    ValueError
        Fewer than two ordinary runs, or ``groups``/``ordinary`` not of length ``R``.
    """
    P = _load(P, log)
    R = P.shape[0]
    keep = np.ones(R, dtype=bool) if ordinary is None else np.asarray(ordinary, dtype=bool)
    if keep.shape != (R,):
        raise ValueError(f"ordinary must have shape ({R},), got {keep.shape}")
    names = [None] * R if groups is None else [str(g) for g in groups]
    if len(names) != R:
        raise ValueError(f"groups has {len(names)} entries for {R} runs")
    if keep.sum() < 2:
        raise ValueError(f"averaging needs at least 2 ordinary runs, got {int(keep.sum())}")
    rng = np.random.default_rng(random_state)
    opts = dict(methods=methods, sharpen=sharpen, n_boot=n_boot, random_state=rng, floor=floor,
                progress_method=progress_method)
    pooled = average_models(P[keep], labels, **opts)
    members: dict[str, list[int]] = {}
    for r in np.flatnonzero(keep):
        if names[r] is not None:
            members.setdefault(names[r], []).append(int(r))
    per_group = {g: average_models(P[idx], labels, **opts) for g, idx in members.items() if len(idx) >= 2}
    return FinalModelAverages(pooled=pooled, groups=per_group, single=[g for g, idx in members.items() if len(idx) < 2],
                              n_runs=int(keep.sum()), n_left_out=int(R - keep.sum()))
