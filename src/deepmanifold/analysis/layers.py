"""Inside the layers: per-layer summaries of the runs that recorded the layer measurements.

For every run with ``capacity``, ``infoplane`` or ``collapse`` arrays
(:mod:`deepmanifold.probes.measurement`), per layer: the first, last and extreme values of
each quantity; the capacity gain (last checkpoint minus first); the compression of I(X;T)
(its peak minus its final value); and, for the last hidden layer, the progress along the
geodesic at which neural collapse begins. Across runs, one rule with a verdict:

**Where does learning happen?** Cohen, Chung, Lee & Sompolinsky (Nat. Commun. 11, 746,
2020) saw manifold capacity grow most in a network's final layers. Per run, the mean
capacity gain of the later half of its layers is compared with the earlier half's; across
``n`` runs an exact one-sided sign test decides: *supported* when the later half gains more
in so many runs that chance (p = 1/2 each) would give as many with probability below
:data:`SIGN_TEST_ALPHA`; *not supported* when the earlier half gains more that often;
*inconclusive* otherwise (docs/method.md §10.4).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import stats

from deepmanifold.analysis.verdicts import Judgement, decide
from deepmanifold.utils import jsonable

__all__ = ["LAYER_MEASUREMENTS", "LAYER_RULE", "LayerFindings", "RunLayers", "SIGN_TEST_ALPHA",
           "collapse_onset", "judge_where_learning", "layer_findings", "run_layers"]

#: The recorder's layer measurements and the keys of their (K, L) arrays.
LAYER_MEASUREMENTS = {
    "capacity": ("alpha", "radius", "dimension", "center_correlation"),
    "infoplane": ("ixt_binning", "ity_binning", "ixt_kde", "ity_kde"),
    "collapse": ("nc1", "nc2_equinorm", "nc2_equiangle", "nc3", "nc4", "effective_rank"),
}
#: One-sided level of the sign test of :func:`judge_where_learning`.
SIGN_TEST_ALPHA = 0.05
#: NC1 as a fraction of its initial value that marks the onset of collapse.
COLLAPSE_FRACTION = 0.5
LAYER_RULE = (f"capacity gain (last checkpoint minus first) averaged over the later half of each run's layers "
              f"against the earlier half; exact one-sided sign test over runs at level {SIGN_TEST_ALPHA}: "
              "supported when the later half gains more significantly often, not supported when the "
              "earlier half does")


@dataclass
class RunLayers:
    """One run's layer measurements.

    Attributes
    ----------
    run_id, label : str
    layers : list of str
        Names of the probed layers (from the run's info), else ``layer 1`` ...
    epochs, progress : ndarray, shape (K,)
        Epoch and progress along the geodesic of each checkpoint (progress NaN when not given).
    values : dict of str to ndarray, each shape (K, L)
        ``<measurement>_<key>`` arrays.
    train_acc : ndarray, shape (K,)
    """

    run_id: str
    label: str
    layers: list[str]
    epochs: np.ndarray
    progress: np.ndarray
    values: dict[str, np.ndarray]
    train_acc: np.ndarray

    def summary(self) -> dict:
        """Per quantity and layer: first, last, min and max; the capacity gain; the compression."""
        out: dict = {"label": self.label, "layers": self.layers, "quantities": {}}
        for name, v in self.values.items():
            v = np.asarray(v, dtype=float)
            finite = np.isfinite(v)
            out["quantities"][name] = {
                "first": _edge(v, first=True), "last": _edge(v, first=False),
                "min": np.where(finite.any(0), np.nanmin(np.where(finite, v, np.inf), axis=0), np.nan),
                "max": np.where(finite.any(0), np.nanmax(np.where(finite, v, -np.inf), axis=0), np.nan),
            }
        if "capacity_alpha" in self.values:
            out["capacity_gain"] = capacity_gain(self.values["capacity_alpha"])
        for method in ("binning", "kde"):
            key = f"infoplane_ixt_{method}"
            if key in self.values:
                v = np.asarray(self.values[key], dtype=float)
                out[f"compression_{method}"] = np.nanmax(v, axis=0) - _edge(v, first=False)
        if "collapse_nc1" in self.values:
            out["collapse_onset"] = collapse_onset(self)
        return jsonable(out)


def _edge(values: np.ndarray, *, first: bool) -> np.ndarray:
    """Per column of a (K, L) array, its first (or last) finite value; NaN for a column without one.

    A measurement evaluated at every k-th checkpoint only (``every``) leaves NaN rows between."""
    values = np.asarray(values, dtype=float)
    finite = np.isfinite(values)
    rows = finite.argmax(axis=0) if first else values.shape[0] - 1 - finite[::-1].argmax(axis=0)
    picked = values[rows, np.arange(values.shape[1])]
    return np.where(finite.any(axis=0), picked, np.nan)


def capacity_gain(alpha: np.ndarray) -> np.ndarray:
    """Per layer, the capacity at the last measured checkpoint minus the first, shape (L,)."""
    return _edge(alpha, first=False) - _edge(alpha, first=True)


def collapse_onset(run: RunLayers, layer: int | None = None, fraction: float = COLLAPSE_FRACTION) -> dict:
    """When NC1 at the last hidden layer first falls below ``fraction`` of its initial value.

    Returns the layer, the epoch and progress of that checkpoint (None if it never does),
    and the epoch and progress at which the train probe is first classified without error
    (the "terminal phase" of Papyan, Han & Donoho 2020; None if never).
    """
    nc1 = np.asarray(run.values["collapse_nc1"], dtype=float)
    L = nc1.shape[1]
    layer = (L - 2 if L >= 2 else 0) if layer is None else layer
    series = nc1[:, layer]
    out = {"layer": run.layers[layer] if layer < len(run.layers) else layer, "nc1_first": series[0],
           "nc1_last": float(_edge(series[:, None], first=False)[0]), "epoch": None, "progress": None, "terminal_epoch": None,
           "terminal_progress": None}
    if np.isfinite(series[0]) and series[0] > 0:
        below = np.flatnonzero(series <= fraction * series[0])
        if below.size:
            out["epoch"], out["progress"] = float(run.epochs[below[0]]), float(run.progress[below[0]])
    perfect = np.flatnonzero(np.asarray(run.train_acc) >= 1.0)
    if perfect.size:
        out["terminal_epoch"], out["terminal_progress"] = float(run.epochs[perfect[0]]), float(
            run.progress[perfect[0]])
    return out


def judge_where_learning(gains: list[np.ndarray], alpha: float = SIGN_TEST_ALPHA) -> Judgement:
    """Does capacity grow most in the later layers? (module docstring)

    Parameters
    ----------
    gains : list of ndarray, each shape (L_run,)
        Per run, the capacity gain of each layer in depth order; runs with fewer than 2
        layers with a finite gain do not count.

    Returns
    -------
    Judgement
        Numbers: runs counted, runs whose later half gained more, the two one-sided
        p-values, and the mean gain per half.
    """
    later = earlier = 0
    late_means, early_means = [], []
    for g in gains:
        g = np.asarray(g, dtype=float)
        g = g[np.isfinite(g)]
        if g.size < 2:
            continue
        half = g.size // 2
        early, late = g[:half].mean(), g[g.size - half:].mean()  # an odd middle layer is in neither half
        early_means.append(early)
        late_means.append(late)
        later += late > early
        earlier += early > late
    n = later + earlier  # ties count for neither side
    if n == 0:
        return Judgement("skipped", reason="no run recorded the capacity at 2 or more layers")
    p_later = float(stats.binomtest(later, n, 0.5, alternative="greater").pvalue)
    p_earlier = float(stats.binomtest(earlier, n, 0.5, alternative="greater").pvalue)
    numbers = {"runs": n, "later_gains_more": int(later), "earlier_gains_more": int(earlier),
               "p_later": p_later, "p_earlier": p_earlier,
               "mean_gain_earlier_half": float(np.mean(early_means)),
               "mean_gain_later_half": float(np.mean(late_means))}
    verdict = decide(supported=p_later < alpha, refuted=p_earlier < alpha)
    reason = "" if verdict != "inconclusive" else f"{later} of {n} runs gain more in their later half: too few for a sign test at {alpha}"
    return Judgement(verdict, numbers, reason)


@dataclass
class LayerFindings:
    """Per-run layer summaries and the where-learning-happens judgement."""

    runs: dict[str, dict] = field(default_factory=dict)
    where_learning: Judgement | None = None

    def to_dict(self) -> dict:
        out: dict = {"runs": self.runs, "rule": LAYER_RULE}
        if self.where_learning is not None:
            out["where_learning"] = {"verdict": self.where_learning.verdict, "numbers": self.where_learning.numbers,
                                     "reason": self.where_learning.reason}
        return jsonable(out)


def run_layers(store, run_id: str, progress: np.ndarray | None = None) -> RunLayers | None:
    """A run's layer measurements from the store, or None when it recorded none."""
    record = store.record(run_id)
    names = {name for name, measurement in record.arrays.items() if measurement in LAYER_MEASUREMENTS}
    if not names:
        return None
    values = {name: np.asarray(store.array(run_id, name), dtype=float) for name in sorted(names)}
    metrics = store.metrics(run_id)
    K = len(metrics["epoch"])
    L = next(iter(values.values())).shape[1]
    info = (record.info or {}).get("measurement_info", {})
    layers = next((facts["layers"] for facts in info.values() if isinstance(facts, dict) and facts.get("layers")),
                  None) or [f"layer {i + 1}" for i in range(L)]
    progress = np.full(K, np.nan) if progress is None else np.asarray(progress, dtype=float)
    return RunLayers(run_id=run_id, label=str(record.config.get("label", run_id)), layers=list(layers),
                     epochs=np.asarray(metrics["epoch"], dtype=float), progress=progress, values=values,
                     train_acc=np.asarray(metrics.get("train_acc", np.full(K, np.nan)), dtype=float))


def layer_findings(store, run_ids: list[str], progress: dict[str, np.ndarray] | None = None) -> LayerFindings | None:
    """Summaries of every run of ``run_ids`` that recorded layer measurements; None if none did.

    ``progress`` maps a run id to its progress at every checkpoint (for the collapse onset).
    """
    progress = progress or {}
    found = {}
    gains = []
    for run_id in run_ids:
        run = run_layers(store, run_id, progress.get(run_id))
        if run is None:
            continue
        found[run_id] = run.summary()
        if "capacity_alpha" in run.values:
            gains.append(capacity_gain(run.values["capacity_alpha"]))
    if not found:
        return None
    where = judge_where_learning(gains) if gains else Judgement(
        "skipped", reason="no run recorded the capacity measurement")
    return LayerFindings(runs=found, where_learning=where)

