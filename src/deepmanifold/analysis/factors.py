"""Which training factors change the trajectory (docs/method.md §5 "factor effects", §6 claim 2).

The reference study found that the architecture produces distinguishable
trajectories while the optimiser, batch size, learning rate, weight decay,
augmentation and seed matter much less. This module measures that on a sweep
from two plain inputs, so it depends on nothing else in the package:

``D``
    ``(R, R)`` symmetric matrix of trajectory distances between ``R`` runs (mean
    d_B at equal progress, docs/method.md §5). ``NaN`` marks a pair without common progress:
    such pairs are skipped and counted.
``configs``
    the ``R`` run configurations (dicts). Nested dicts are flattened to dotted keys
    (``{"arch_options": {"width": 32}}`` -> ``"arch_options.width"``); lists become
    tuples. When ``"arch_alias"`` is present it is the architecture's name for factor
    purposes: it replaces ``"arch"``, and the underlying model name is kept under
    ``"arch_model"`` (a key tied to the alias).

Two views
---------
:func:`factor_effects`
    for each factor, the mean trajectory distance over the pairs of runs that differ
    in that factor *only*, with a seed-cluster bootstrap interval.
:func:`factor_predictability`
    how well a run's trajectory predicts its value of the factor (leave-one-out
    nearest neighbour with ``D`` as the distance, seed-twins excluded), with a
    permutation p-value.

What "differ in that factor only" means
---------------------------------------
Two runs are a pair for factor ``f`` when their values of ``f`` differ and every
other configuration key is equal, except

* bookkeeping keys, :data:`IGNORED_KEYS` (``label``, ``probes``, ``data``,
  ``checkpoints``, ``run_id``, ``id``, ``name``, ``store``, ``notes``, ``status``;
  a top-level key also covers its dotted sub-keys), which never count;
* keys *tied* to ``f``. Some settings go with a factor by construction: a sweep spec
  gives each optimiser its own ``lr``/``momentum`` (and drops ``momentum`` for Adam),
  each architecture its own ``arch_options``, a ``[zip]`` table moves ``lr`` and
  ``batch_size`` together. Without this rule no pair would ever differ "in the
  optimiser only". The candidates are :data:`COMPANIONS` (``optimizer``: ``lr``,
  ``momentum``, ``weight_decay``, ``warmup_epochs``, ``nesterov``, ``betas``,
  ``eps``; ``arch``: ``arch_model`` and every ``arch_options.*``; ``lr`` <->
  ``batch_size``; ``init``: ``init_epochs``, ``init_subset``). A candidate ``k`` is
  tied to ``f`` *in this sweep* only when its value is a function of the other keys
  (``f`` included, seed and the candidates excluded): i.e. the sweep never varies
  ``k`` on its own. A candidate that the sweep varies independently (e.g. ``lr`` as
  a ``[grid]`` axis next to ``optimizer``) must be equal within a pair, as any other
  key. Tied keys are listed in :attr:`FactorEffect.tied_with`: when ``lr`` and
  ``batch_size`` only move together, both factors measure the same pairs and say so.

A missing key is a value of its own (different from every present value).

Bootstrap interval (docs/method.md §5.4: resample seeds)
-----------------------------------------
For every factor but ``seed``, a pair shares its seed (the seed is one of the keys
that must be equal), so the pairs fall into seed clusters. Each bootstrap replicate
draws the sweep's seed values with replacement and recomputes the mean over the
pairs of the drawn seeds (a seed drawn twice counts twice). For the factor ``seed``
itself the clusters are the configuration groups (runs equal in everything but
seed): the replicate draws groups with replacement. With fewer than two clusters the
pairs themselves are resampled and :attr:`FactorEffect.interval` says so. The
interval is the 2.5 / 97.5 percentile of ``n_boot`` replicates.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Iterable, Sequence

import numpy as np

from deepmanifold.utils import flatten, jsonable

__all__ = ["COMPANIONS", "DEFAULT_FACTORS", "IGNORED_KEYS", "FactorEffect", "FactorPredictability", "FactorReport",
           "factor_effects", "factor_predictability"]

#: Factors analysed by default (those with a single value in the sweep are reported
#: as "not a factor in this sweep").
DEFAULT_FACTORS: tuple[str, ...] = (
    "arch", "optimizer", "lr", "batch_size", "weight_decay", "augmentation", "init",
    "arch_options.width", "seed",
)

#: Bookkeeping keys that never make two runs "different" (dotted sub-keys included).
IGNORED_KEYS: tuple[str, ...] = (
    "label", "probes", "data", "checkpoints", "run_id", "id", "name", "store", "notes", "status",
)

#: Keys allowed to change together with a factor, when the sweep never varies them on
#: their own (see the module docstring). An entry ending in ``.*`` is a prefix.
COMPANIONS: dict[str, tuple[str, ...]] = {
    "arch": ("arch_model", "arch_options.*"),
    "optimizer": ("lr", "momentum", "weight_decay", "warmup_epochs", "nesterov", "betas", "eps"),
    "lr": ("batch_size",),
    "batch_size": ("lr",),
    "init": ("init_epochs", "init_subset"),
}

NOT_A_FACTOR = "not a factor in this sweep"
NO_PAIRS = "no comparable pairs"
MEASURED = "measured"

_SEED = "seed"


class _Missing:
    """A key a run does not set: equal only to itself, shown as ``None``."""

    _instance = None

    def __new__(cls):
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "<missing>"


MISSING = _Missing()


# --------------------------------------------------------------------------- configs

def _freeze(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return tuple(_freeze(v) for v in value)
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return tuple(_freeze(v) for v in value.tolist())
    if isinstance(value, set):
        return tuple(sorted((_freeze(v) for v in value), key=repr))
    return value


def _empty_as_value(config: Mapping) -> dict:
    """``config`` with every empty nested mapping replaced by ``()``: a key of its own when flattened."""
    return {k: (() if not v else _empty_as_value(v)) if isinstance(v, Mapping) else v for k, v in config.items()}


def _flatten(config: dict) -> dict[str, Any]:
    """Dotted keys (an empty nested dict becomes the value ``()``), values made hashable."""
    return {k: _freeze(v) for k, v in flatten(_empty_as_value(config)).items()}


def _is_ignored(key: str, ignored: Sequence[str]) -> bool:
    return any(key == k or key.startswith(k + ".") for k in ignored)


def _prepare(configs: Sequence[dict], ignored: Sequence[str]) -> list[dict[str, Any]]:
    flat = []
    for config in configs:
        if not isinstance(config, dict):
            raise TypeError(f"each config must be a dict, got {type(config).__name__}")
        c = _flatten(config)
        if "arch_alias" in c:
            if "arch" in c:
                c["arch_model"] = c["arch"]
            c["arch"] = c.pop("arch_alias")
        flat.append({k: v for k, v in c.items() if not _is_ignored(k, ignored)})
    return flat


def _check_inputs(D, configs) -> np.ndarray:
    D = np.asarray(D, dtype=float)
    if D.ndim != 2 or D.shape[0] != D.shape[1]:
        raise ValueError(f"D must be a square (R, R) matrix, got shape {D.shape}")
    if D.shape[0] != len(configs):
        raise ValueError(f"D is {D.shape[0]} x {D.shape[0]} but there are {len(configs)} configs")
    # Symmetrise; a pair is NaN only when both entries are.
    Dt = D.T
    both = np.isfinite(D) & np.isfinite(Dt)
    return np.where(both, 0.5 * (D + Dt), np.where(np.isfinite(D), D, Dt))


def _values_of(flat: list[dict], key: str) -> list[Any]:
    return [c.get(key, MISSING) for c in flat]


def _sorted_values(values: Iterable[Any]) -> list[Any]:
    uniq = list(dict.fromkeys(values))
    try:
        return sorted(uniq, key=lambda v: (v is MISSING, v))
    except TypeError:
        return sorted(uniq, key=lambda v: (v is MISSING, type(v).__name__, repr(v)))


def _value_json(value: Any) -> Any:
    """A factor's value in JSON (a key a run does not set is ``None``)."""
    return None if value is MISSING else jsonable(value)


def _varying_keys(flat: list[dict]) -> list[str]:
    keys = list(dict.fromkeys(k for c in flat for k in c))
    return [k for k in keys if len(set(_values_of(flat, k))) > 1]


def _companion_candidates(factor: str, varying: Sequence[str]) -> list[str]:
    out = []
    for pattern in COMPANIONS.get(factor, ()):
        if pattern.endswith(".*"):
            # "arch_options.*" also covers "arch_options" itself: an empty dict of knobs
            # flattens to that key, and it changes with the architecture like the knobs do.
            out += [k for k in varying if (k.startswith(pattern[:-1]) or k == pattern[:-2]) and k != factor]
        elif pattern in varying and pattern != factor:
            out.append(pattern)
    return list(dict.fromkeys(out))


def _tied_keys(flat: list[dict], factor: str, varying: Sequence[str]) -> list[str]:
    """Companions of ``factor`` that the sweep never varies on their own."""
    candidates = _companion_candidates(factor, varying)
    if not candidates:
        return []
    if factor == "arch":
        # Knobs belong to their architecture: "width 64" of an MLP and "width 8" of a CNN
        # are not the same setting, so architecture pairs may always differ in them.
        return candidates
    rest = [k for k in varying if k not in candidates and k != _SEED]
    groups: dict[tuple, dict[str, set]] = {}
    for c in flat:
        sig = tuple(c.get(k, MISSING) for k in rest)
        seen = groups.setdefault(sig, {k: set() for k in candidates})
        for k in candidates:
            seen[k].add(c.get(k, MISSING))
    return [k for k in candidates if all(len(g[k]) == 1 for g in groups.values())]


def _signature(c: dict, keys: Sequence[str]) -> tuple:
    return tuple(c.get(k, MISSING) for k in keys)


# --------------------------------------------------------------------------- effects

@dataclass
class FactorEffect:
    """The effect of one factor on the trajectory.

    Attributes
    ----------
    factor : str
        Configuration key (dotted for nested keys).
    status : str
        ``"measured"``, ``"not a factor in this sweep"`` (one value only, or no run
        sets it) or ``"no comparable pairs"`` (no two runs differ in it only).
    reason : str
        One sentence on how the entry was obtained or why it is missing.
    mean : float
        Mean trajectory distance over the pairs differing in this factor only
        (``nan`` when not measured).
    low, high : float
        Bootstrap 95 % interval of ``mean`` (see the module docstring).
    n_pairs : int
        Pairs used (NaN distances excluded).
    values : list
        The factor's values in the sweep (``None`` for runs that do not set it).
    n_nan_pairs : int
        Comparable pairs skipped because their distance is NaN (no common progress).
    n_clusters : int
        Number of bootstrap clusters (seeds, or configuration groups for ``seed``).
    interval : str
        What the bootstrap resampled.
    tied_with : list of str
        Keys tied to the factor in this sweep that do change within the used pairs
        (before measuring: every key tied to it).
    """

    factor: str
    status: str
    reason: str
    mean: float = float("nan")
    low: float = float("nan")
    high: float = float("nan")
    n_pairs: int = 0
    values: list = field(default_factory=list)
    n_nan_pairs: int = 0
    n_clusters: int = 0
    interval: str = ""
    tied_with: list = field(default_factory=list)

    @property
    def measured(self) -> bool:
        return self.status == MEASURED

    def to_dict(self) -> dict:
        """Plain, JSON-serialisable dict (``NaN`` becomes ``None``)."""
        d = asdict(self)
        d["values"] = [_value_json(v) for v in self.values]
        return jsonable(d)


@dataclass
class FactorReport:
    """Factor effects of one sweep.

    Attributes
    ----------
    effects : list of FactorEffect
        One entry per requested factor, in the requested order.
    ranking : list of str
        Measured factors by mean distance, largest first.
    n_runs : int
        Number of runs (rows of ``D``).
    n_nan_pairs : int
        Comparable pairs skipped over all factors because their distance is NaN.
    ignored_keys : list of str
        Bookkeeping keys that never made runs different.
    """

    effects: list[FactorEffect]
    ranking: list[str]
    n_runs: int
    n_nan_pairs: int = 0
    ignored_keys: list[str] = field(default_factory=list)

    def __getitem__(self, factor: str) -> FactorEffect:
        for e in self.effects:
            if e.factor == factor:
                return e
        raise KeyError(f"no factor {factor!r} in this report (factors: {[e.factor for e in self.effects]})")

    def to_dict(self) -> dict:
        """Plain, JSON-serialisable dict (``NaN`` becomes ``None``)."""
        return {
            "n_runs": int(self.n_runs),
            "n_nan_pairs": int(self.n_nan_pairs),
            "ignored_keys": list(self.ignored_keys),
            "ranking": list(self.ranking),
            "effects": [e.to_dict() for e in self.effects],
        }

    def to_frame(self):
        """One row per factor (pandas DataFrame), measured factors first by mean."""
        import pandas as pd

        rows = []
        for e in self.effects:
            d = e.to_dict()
            d["values"] = ", ".join("None" if v is None else str(v) for v in d["values"])
            d["tied_with"] = ", ".join(d["tied_with"])
            for key in ("mean", "low", "high"):
                d[key] = np.nan if d[key] is None else d[key]
            rows.append(d)
        cols = ["factor", "status", "mean", "low", "high", "n_pairs", "n_nan_pairs", "n_clusters",
                "values", "tied_with", "interval", "reason"]
        frame = pd.DataFrame(rows, columns=cols)
        order = {f: i for i, f in enumerate(self.ranking)}
        frame["_rank"] = [order.get(f, len(order) + i) for i, f in enumerate(frame["factor"])]
        return frame.sort_values("_rank").drop(columns="_rank").reset_index(drop=True)


def _fmt(values: Sequence[Any], limit: int = 6) -> str:
    shown = ["None" if v is MISSING else str(v) for v in values[:limit]]
    return ", ".join(shown) + (", ..." if len(values) > limit else "")


def _why_no_pairs(flat: list[dict], factor: str, keys: Sequence[str]) -> str:
    """The smallest set of other keys that always changes along with ``factor``."""
    codes = np.empty((len(flat), len(keys) + 1), dtype=np.int64)
    for j, k in enumerate([factor, *keys]):
        index: dict[Any, int] = {}
        codes[:, j] = [index.setdefault(c.get(k, MISSING), len(index)) for c in flat]
    best: Counter = Counter()
    best_size = None
    for i in range(len(flat) - 1):
        other = codes[i + 1:]
        diff = other != codes[i]
        diff = diff[diff[:, 0]]
        if not len(diff):
            continue
        sizes = diff[:, 1:].sum(axis=1)
        m = int(sizes.min())
        if best_size is None or m < best_size:
            best_size, best = m, Counter()
        if m == best_size:
            for row in diff[sizes == m][:, 1:]:
                best[tuple(k for k, d in zip(keys, row) if d)] += 1
    if not best:
        return f"no two runs have different values of {factor}"
    combo, count = best.most_common(1)[0]
    return (f"no two runs differ in {factor} only: the closest pairs also differ in "
            f"{', '.join(combo)} ({count} such pair{'s' if count != 1 else ''})")


def _bootstrap(d: np.ndarray, clusters: np.ndarray, n_boot: int, rng) -> tuple[float, float]:
    """Percentile interval of the weighted mean when clusters are drawn with replacement."""
    uniq, idx = np.unique(clusters, return_inverse=True)
    k = len(uniq)
    sums = np.bincount(idx, weights=d, minlength=k)
    counts = np.bincount(idx, minlength=k).astype(float)
    draws = rng.integers(0, k, size=(n_boot, k))
    mult = np.zeros((n_boot, k))
    np.add.at(mult, (np.repeat(np.arange(n_boot), k), draws.ravel()), 1.0)
    means = (mult @ sums) / (mult @ counts)
    lo, hi = np.percentile(means, [2.5, 97.5])
    return float(lo), float(hi)


def factor_effects(D, configs: Sequence[dict], *, factors: Sequence[str] | None = None,
                   n_boot: int = 1000, random_state: int | None = 0,
                   ignore: Sequence[str] = IGNORED_KEYS) -> FactorReport:
    """Mean trajectory distance between runs that differ in one factor only.

    Parameters
    ----------
    D : array_like, shape (R, R)
        Symmetric trajectory distances; ``NaN`` for pairs without common progress
        (skipped and counted in ``n_nan_pairs``).
    configs : sequence of R dicts
        Run configurations (see the module docstring for flattening, ``arch_alias``,
        tied keys and ignored keys).
    factors : sequence of str, optional
        Keys to analyse; default :data:`DEFAULT_FACTORS`. Each gets an entry; those
        with a single value in the sweep are reported as "not a factor in this sweep".
    n_boot : int
        Bootstrap replicates of the seed-cluster interval.
    random_state : int, optional
        Seed of the bootstrap.
    ignore : sequence of str
        Bookkeeping keys (default :data:`IGNORED_KEYS`).

    Returns
    -------
    FactorReport
    """
    Dm = _check_inputs(D, configs)
    flat = _prepare(configs, ignore)
    factors = list(DEFAULT_FACTORS if factors is None else factors)
    rng = np.random.default_rng(random_state)
    varying = _varying_keys(flat)
    effects = [_factor_effect(Dm, flat, factor, varying, n_boot, rng) for factor in factors]
    measured = [e for e in effects if e.measured]
    ranking = [e.factor for e in sorted(measured, key=lambda e: -e.mean)]
    return FactorReport(effects=effects, ranking=ranking, n_runs=len(flat),
                        n_nan_pairs=sum(e.n_nan_pairs for e in effects), ignored_keys=list(ignore))


def _factor_effect(Dm: np.ndarray, flat: list[dict], factor: str, varying: list[str], n_boot: int,
                   rng) -> FactorEffect:
    """One factor's entry of :func:`factor_effects`: its pairs, their mean and interval, or why not."""
    col = _values_of(flat, factor)
    values = _sorted_values(col)
    if all(v is MISSING for v in col):
        return FactorEffect(factor, NOT_A_FACTOR, f"no run sets {factor}", values=[])
    if len(values) < 2:
        return FactorEffect(factor, NOT_A_FACTOR, f"every run has {factor} = {_fmt(values)}", values=values)
    tied = _tied_keys(flat, factor, varying)
    fixed = [k for k in varying if k != factor and k not in tied]
    pi, pj, pg = _pairs_differing_only_in(flat, col, fixed)
    effect = FactorEffect(factor, NO_PAIRS, "", values=values, tied_with=tied)
    if not pi.size:
        effect.reason = _why_no_pairs(flat, factor, fixed)
        return effect
    d = Dm[pi, pj]
    ok = np.isfinite(d)
    effect.n_nan_pairs = n_nan = int((~ok).sum())
    if not ok.any():
        effect.reason = f"all {n_nan} pairs that differ in {factor} only have no common progress (NaN distance)"
        return effect
    d, pi, pj, pg = d[ok], pi[ok], pj[ok], pg[ok]
    # Report only the tied keys that actually change within a used pair.
    effect.tied_with = [k for k in tied if any(flat[i].get(k, MISSING) != flat[j].get(k, MISSING)
                                               for i, j in zip(pi.tolist(), pj.tolist()))]
    _measure(effect, d, pi, pg, flat, n_boot, rng)
    return effect


def _pairs_differing_only_in(flat: list[dict], col: list, fixed: list[str]):
    """Pairs ``(i, j)`` of runs equal in every ``fixed`` key with different values in ``col``.

    Returns
    -------
    pi, pj : int ndarray
        The two runs of each pair.
    pg : int ndarray
        The group of runs (equal in the ``fixed`` keys) each pair comes from.
    """
    groups: dict[tuple, list[int]] = {}
    for i, c in enumerate(flat):
        groups.setdefault(_signature(c, fixed), []).append(i)
    pairs = [(members[a], members[b], g) for g, members in enumerate(groups.values())
             for a in range(len(members)) for b in range(a + 1, len(members)) if col[members[a]] != col[members[b]]]
    pi, pj, pg = (np.asarray([p[k] for p in pairs], dtype=int) for k in range(3))
    return pi, pj, pg


def _measure(effect: FactorEffect, d: np.ndarray, pi: np.ndarray, pg: np.ndarray, flat: list[dict],
             n_boot: int, rng) -> None:
    """Fill ``effect`` with the mean of the pair distances ``d`` and their cluster-bootstrap interval."""
    factor = effect.factor
    if factor == _SEED:
        clusters, what = pg, "configuration groups"
    else:
        seeds = _values_of(flat, _SEED)
        index: dict[Any, int] = {}
        clusters = np.asarray([index.setdefault(seeds[i], len(index)) for i in pi])
        what = "seeds"
    n_clusters = len(np.unique(clusters))
    if n_clusters >= 2:
        effect.interval = f"{what} resampled ({n_clusters} clusters, {n_boot} replicates)"
    else:
        clusters = np.arange(len(d))
        effect.interval = (f"pairs resampled: only one {'configuration group' if factor == _SEED else 'seed'}"
                           f" ({n_boot} replicates)")
    effect.low, effect.high = _bootstrap(d, clusters, n_boot, rng)
    effect.status = MEASURED
    effect.mean = float(d.mean())
    effect.n_pairs = int(len(d))
    effect.n_clusters = int(n_clusters)
    reason = f"{len(d)} pairs of runs that differ in {factor} only"
    if effect.tied_with:
        reason += f" (with the keys tied to it in this sweep: {', '.join(effect.tied_with)})"
    if effect.n_nan_pairs:
        n_nan = effect.n_nan_pairs
        reason += f"; {n_nan} pair{'s' if n_nan != 1 else ''} without common progress skipped"
    effect.reason = reason


# --------------------------------------------------------------------------- predictability

SEED_TWINS_EXCLUDED = "the run itself and its seed-twins (same configuration except seed)"


@dataclass
class FactorPredictability:
    """How well trajectories predict one factor's value (:func:`factor_predictability`).

    Attributes
    ----------
    factor : str
    status : str
        ``"ok"`` or ``"skipped"``.
    reason : str
        How the numbers were obtained, or why they are missing.
    accuracy : float or None
        Leave-one-out nearest-neighbour accuracy over the classified runs.
    chance : float or None
        Share of the most frequent value among the classified runs.
    n : int
        Classified runs.
    n_unclassified : int
        Runs without a candidate neighbour.
    n_classes : int
        Distinct values of the factor.
    values : list
        Those values (``None`` for runs that do not set the factor).
    p_value : float or None
        Permutation test: values shuffled over runs ``n_permutations`` times,
        ``(1 + #{acc_perm >= acc}) / (1 + n_permutations)``.
    n_permutations, n_neighbors : int
    excluded : str
        Which runs are never candidate neighbours.
    """

    factor: str
    status: str = "skipped"
    reason: str = ""
    accuracy: float | None = None
    chance: float | None = None
    n: int = 0
    n_unclassified: int = 0
    n_classes: int = 0
    values: list = field(default_factory=list)
    p_value: float | None = None
    n_permutations: int = 0
    n_neighbors: int = 1
    excluded: str = SEED_TWINS_EXCLUDED

    def to_dict(self) -> dict:
        """Plain, JSON-serialisable dict."""
        d = asdict(self)
        d["values"] = [_value_json(v) for v in self.values]
        return jsonable(d)


def factor_predictability(D, configs: Sequence[dict], factor: str, *, n_neighbors: int = 1,
                          n_permutations: int = 200, random_state: int | None = 0,
                          ignore: Sequence[str] = IGNORED_KEYS) -> FactorPredictability:
    """How well trajectories predict a factor's value (leave-one-out k-NN on ``D``).

    Each run is classified by the majority value of ``factor`` among its
    ``n_neighbors`` nearest runs (ties: the value with the nearest member). The
    candidates exclude the run itself and its *seed-twins* — the runs with the same
    configuration except the seed — which share every factor and would make every
    factor trivially "predictable". ``NaN`` distances are not candidates; a run
    without candidates is left out (``n_unclassified``).

    Returns
    -------
    FactorPredictability
        Status ``"skipped"`` with a reason when the factor has fewer than two values,
        there are fewer than 4 runs, or fewer than 4 runs have a candidate neighbour.
    """
    if n_neighbors < 1:
        raise ValueError(f"n_neighbors must be >= 1, got {n_neighbors}")
    Dm = _check_inputs(D, configs)
    flat = _prepare(configs, ignore)
    col = _values_of(flat, factor)
    values = _sorted_values(col)
    out = FactorPredictability(factor=factor, n_classes=len(values), values=values,
                               n_permutations=int(n_permutations), n_neighbors=int(n_neighbors))
    R = len(flat)
    if all(v is MISSING for v in col):
        out.reason, out.n_classes = f"no run sets {factor}", 0
        return out
    if len(values) < 2:
        out.reason, out.n_classes = f"{factor} has one value only ({_fmt(values)}): not a factor in this sweep", 1
        return out
    if R < 4:
        out.reason = f"too few runs ({R}; need at least 4)"
        return out

    order, candidate = _candidate_neighbours(Dm, flat, n_neighbors)
    used = candidate[:, 0]
    n_used = int(used.sum())
    out.n_unclassified = int(R - n_used)
    label_index = {v: i for i, v in enumerate(values)}
    y = np.asarray([label_index[v] for v in col])
    if n_used < 4 or len(set(y[used].tolist())) < 2:
        out.n = n_used
        out.reason = (f"too few runs with a candidate neighbour ({n_used} of {R}) or only one "
                      f"value among them")
        return out

    accuracy = _knn_accuracy(order[used], candidate[used], used, len(values))
    acc = accuracy(y)
    rng = np.random.default_rng(random_state)
    exceed = sum(accuracy(rng.permutation(y)) >= acc - 1e-12 for _ in range(n_permutations))
    counts = np.bincount(y[used], minlength=len(values))
    out.status, out.accuracy, out.n = "ok", acc, n_used
    out.chance = float(counts.max() / n_used)
    out.p_value = float((1 + exceed) / (1 + n_permutations))
    out.reason = (f"leave-one-out {n_neighbors}-nearest-neighbour on {n_used} runs "
                  f"({len(values)} values of {factor}), seed-twins excluded")
    return out


def _candidate_neighbours(Dm: np.ndarray, flat: list[dict], n_neighbors: int):
    """Each run's ``n_neighbors`` nearest runs other than itself and its seed-twins.

    Returns
    -------
    order : int ndarray, shape (R, n_neighbors)
        Neighbour indices, nearest first.
    candidate : bool ndarray, shape (R, n_neighbors)
        False where that neighbour is no candidate (infinite or NaN distance, or a twin).
    """
    varying = [k for k in _varying_keys(flat) if k != _SEED]
    sig = [_signature(c, varying) for c in flat]
    sig_index: dict[tuple, int] = {}
    sig_code = np.asarray([sig_index.setdefault(s, len(sig_index)) for s in sig])
    dist = np.where(np.isfinite(Dm), Dm, np.inf)
    dist[sig_code[:, None] == sig_code[None, :]] = np.inf  # self and seed-twins
    order = np.argsort(dist, axis=1, kind="stable")[:, :n_neighbors]
    return order, np.isfinite(np.take_along_axis(dist, order, axis=1))


def _knn_accuracy(nbrs: np.ndarray, ok: np.ndarray, used: np.ndarray, n_values: int):
    """``accuracy(y)``: share of the ``used`` runs whose candidate neighbours' vote gives their value ``y``.

    ``nbrs`` and ``ok`` are the neighbours and candidate flags of the used runs only.
    """
    n_used, n_neighbors = nbrs.shape
    # Vote weights: 1 per neighbour plus a tie-break bonus < 1 favouring the nearest.
    weights = ok * (1.0 + 0.5 * 0.5 ** np.arange(n_neighbors))[None, :]
    rows = np.repeat(np.arange(n_used), n_neighbors)

    def accuracy(y: np.ndarray) -> float:
        scores = np.zeros((n_used, n_values))
        np.add.at(scores, (rows, y[nbrs].ravel()), weights.ravel())
        return float(np.mean(scores.argmax(axis=1) == y[used]))

    return accuracy
