r"""Which training factors change the trajectory (docs/method.md §5.4 "factor effects", §6 claim 2).

The reference study found that the architecture produces distinguishable trajectories
while the optimiser, batch size, learning rate, weight decay, augmentation and seed
matter much less. This module measures that on a sweep from two plain inputs:

``D``
    ``(R, R)`` symmetric matrix of trajectory distances between ``R`` runs (mean d_B at
    equal progress over one grid, docs/method.md §5.3; the caller says which grid in
    ``grid``). ``NaN`` marks a pair that cannot be compared: skipped and counted.
``configs``
    the ``R`` run configurations (dicts). Nested dicts are flattened to dotted keys
    (``{"arch_options": {"width": 32}}`` -> ``"arch_options.width"``); lists become
    tuples. When ``"arch_alias"`` is present it is the architecture's name for factor
    purposes: it replaces ``"arch"``, and the model name is kept under ``"arch_model"``
    (a key tied to the alias).

Corner-initialised runs (``init`` other than ``"default"``, :func:`ordinary_runs`) are
left out of everything here: they start elsewhere on purpose (claim 4) and would count
as an effect of ``init``.

The effect of a factor, with crossed seeds (:func:`factor_effects`)
-------------------------------------------------------------------
A *configuration group* is the set of runs equal in every key but the seed. Two groups
form a pair for factor ``f`` when their values of ``f`` differ and every other key is
equal (bookkeeping and tied keys aside, below). For such a pair ``(g, h)``

.. math::

    \Delta_{gh} = \operatorname{mean}_{i \in g,\, j \in h,\, s_i \ne s_j} D_{ij}
                  - \tfrac12 (b_g + b_h), \qquad
    b_g = \operatorname{mean}_{i, j \in g,\, s_i \ne s_j} D_{ij},

and :math:`\Delta_f` is the mean of :math:`\Delta_{gh}` over the factor's pairs (a group
without a seed-only pair lends the pair its partner's baseline alone). Both terms
compare runs of *different seeds*: runs that share a seed share their initial weights
(when the architecture is the same) and their minibatch order, so pairs differing in
the optimiser "only" would otherwise be closer than architecture pairs, which can never
share initial weights. The seed-only baseline is taken within the same groups, so what
the seed alone does is subtracted, not compared. d_B is close to a squared distance for
nearby models, so effects add: a factor moving trajectories by ``δ`` and seed noise
``σ`` give ``Δ ≈ δ²`` whatever ``σ``. The seed's own entry is its seed-only distance,
``d(seed differs) - d(nothing differs) = mean_g b_g``, so it is ranked on the same scale.

Keys that never count
    bookkeeping keys, :data:`IGNORED_KEYS` (a top-level key also covers its dotted
    sub-keys).
Tied keys
    some settings go with a factor by construction: a sweep spec gives each optimiser
    its own ``lr``/``momentum``, each architecture its own ``arch_options``, a ``[zip]``
    table moves ``lr`` and ``batch_size`` together. Without this rule no pair would ever
    differ "in the optimiser only". The candidates are :data:`COMPANIONS`. A candidate
    ``k`` is tied to ``f`` *in this sweep* only when its value is a function of the
    other keys (``f`` included; seed and the candidates excluded): the sweep never varies
    ``k`` on its own. An architecture's knobs are always tied to it ("width 64" of an MLP
    and "width 8" of a CNN are not the same setting). A candidate the sweep varies
    independently (``lr`` as a ``[grid]`` axis next to ``optimizer``) must be equal
    within a pair like any other key. The tied keys that change within the used pairs
    are listed in :attr:`FactorEffect.tied_with`.

A key a run does not set is a value of its own.

Interval: configuration groups resampled
    Each bootstrap replicate draws the configuration groups that enter the factor's
    pairs with replacement and recomputes :math:`\Delta_f` as the mean of
    :math:`\Delta_{gh}` weighted by the product of the two groups' draw counts
    (replicates that draw no pair are dropped). Groups, not seeds, are the independent
    units: each :math:`\Delta_{gh}` already averages its seeds, and the seeds' noise
    shows as variation between groups. The interval is the 2.5 / 97.5 percentile; it
    needs at least :data:`MIN_GROUPS` groups (with fewer it is NaN and says so).
p-value: levels permuted within strata
    The runs are split into blocks equal in every key but ``f`` and its tied keys, *and
    in the seed*; within each block the runs' configurations are permuted (a run takes
    another's value of ``f`` with its tied keys), and :math:`\Delta_f` is recomputed.
    Under "``f`` does nothing" the runs of a block are exchangeable, so the observed
    :math:`\Delta_f` is one draw of that distribution; keeping the seed fixed keeps what
    the seed shares between configurations. ``p = #{Δ_perm ≥ Δ} / N`` over every
    arrangement when there are at most ``n_permutations`` of them (exact), else
    ``(1 + #{Δ_perm ≥ Δ}) / (1 + n_permutations)`` over random ones (one-sided: the
    alternative is that ``f`` moves trajectories apart). A PERMANOVA partial R² would
    test the same null on squared distances; the permutation of :math:`\Delta_f` itself
    keeps the statistic and its test one number.

Predictability (:func:`factor_predictability`)
----------------------------------------------
How well a run's trajectory predicts its value of a factor: leave-one-out nearest
neighbour with ``D`` as the distance. The candidates exclude the run itself, its *seed
twins* (same configuration but the seed; they share every factor and would make every
factor trivially predictable) and, by default, every run of the *same seed* (crossed,
for the reason above: a run's same-seed neighbour with another optimiser shares its
initial weights and would make the architecture look predictable for free). The margin
over chance is ``(accuracy - chance) / (1 - chance)``: 0 at chance, 1 when always right,
comparable between factors with different numbers of values.

The rule (:data:`RULE`, :func:`judge` on :func:`factor_analysis`)
----------------------------------------------------------------
"Much less" is a factor of :data:`MUCH_LESS`: every other factor's upper bound at most
half of architecture's effect. See :data:`RULE` for the whole rule.
"""

from __future__ import annotations

import itertools
import math
from collections import Counter
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Iterable, Sequence

import numpy as np

from deepmanifold.analysis.verdicts import Judgement, decide
from deepmanifold.utils import flatten, jsonable

__all__ = ["COMPANIONS", "DEFAULT_FACTORS", "IGNORED_KEYS", "MIN_GROUPS", "MUCH_LESS", "P_VALUE", "RULE",
           "CrossedPairs", "FactorAnalysis", "FactorEffect", "FactorPredictability", "FactorReport",
           "crossed_pairs", "factor_analysis", "factor_effects", "factor_predictability", "flat_configs", "judge",
           "ordinary_runs", "resample_groups"]

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

#: "Much less": another factor's upper bound may be at most this fraction of architecture's
#: effect. Half leaves architecture at least twice any other factor; since d_B adds like a
#: squared distance, that is a displacement at least √2 ≈ 1.4 times as large.
MUCH_LESS = 0.5
#: Permutation p-value below which architecture's effect and its predictability count.
P_VALUE = 0.05
#: Fewest configuration groups a bootstrap interval is drawn from (two groups give one
#: pair, which every replicate repeats: a zero-width interval that says nothing).
MIN_GROUPS = 3

#: The rule that judges claim 2 (shown next to the verdict).
RULE = (
    "Architecture matters, the rest much less. Each factor's effect Δ is the mean trajectory distance "
    "between runs that differ in the factor and in the seed (everything else equal) minus the mean distance "
    "between runs of the same configurations that differ in the seed only; the seed's own effect is that "
    "seed-only distance. Architecture is the model family; corner-initialised runs are left out. Supported "
    "when architecture's Δ has a 95 % interval (configuration groups resampled) above 0 and a permutation "
    f"p < {P_VALUE:g}, every other factor's upper bound lies below architecture's lower bound and at most "
    f"{MUCH_LESS:g} × architecture's Δ, AND architecture is predicted from trajectories (nearest neighbour "
    f"among runs of other seeds and configurations, p < {P_VALUE:g}) with a larger margin over chance, "
    "(accuracy − chance) / (1 − chance), than every other factor. Not supported when another factor's lower "
    f"bound exceeds both 0 and {MUCH_LESS:g} × architecture's upper bound (it surely has an effect, and more "
    "than that fraction of architecture's). Inconclusive otherwise. Skipped with one architecture, or without "
    "pairs of architectures crossed with the seed."
)

NOT_A_FACTOR = "not a factor in this sweep"
NO_PAIRS = "no comparable pairs"
MEASURED = "measured"

_SEED = "seed"
_ARCH = "arch"


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


def _flatten(config: Mapping) -> dict[str, Any]:
    """Dotted keys (an empty nested dict becomes the value ``()``), values made hashable."""
    return {k: _freeze(v) for k, v in flatten(_empty_as_value(config)).items()}


def _is_ignored(key: str, ignored: Sequence[str]) -> bool:
    return any(key == k or key.startswith(k + ".") for k in ignored)


def flat_configs(configs: Sequence[Mapping], ignore: Sequence[str] = IGNORED_KEYS) -> list[dict[str, Any]]:
    """Configurations as this module compares them: dotted keys, hashable values, no bookkeeping keys.

    An empty nested mapping becomes the value ``()``; ``arch_alias``, when present,
    replaces ``arch`` (the model name moves to ``arch_model``).

    Examples
    --------
    >>> flat_configs([{"arch": "cnn", "arch_alias": "cnn_wide", "arch_options": {"width": 32}, "label": "x"}])
    [{'arch': 'cnn_wide', 'arch_options.width': 32, 'arch_model': 'cnn'}]
    """
    _check_configs(configs)
    return _prepare(configs, ignore)


def _prepare(configs: Sequence[Mapping], ignored: Sequence[str]) -> list[dict[str, Any]]:
    flat = []
    for config in configs:
        c = _flatten(config)
        if "arch_alias" in c:
            if "arch" in c:
                c["arch_model"] = c["arch"]
            c["arch"] = c.pop("arch_alias")
        flat.append({k: v for k, v in c.items() if not _is_ignored(k, ignored)})
    return flat


def ordinary_runs(configs: Sequence[Mapping]) -> np.ndarray:
    """``(R,)`` bool: the runs not started from a corner (``init`` unset or ``"default"``).

    Raises
    ------
    ValueError
        A config that is not a mapping.
    """
    _check_configs(configs)
    return np.array([c.get("init", "default") == "default" for c in configs], dtype=bool)


def _check_configs(configs) -> None:
    for r, config in enumerate(configs):
        if not isinstance(config, Mapping):
            raise ValueError(f"configs[{r}] must be a mapping (a run's configuration), got {type(config).__name__}")


def _check_inputs(D, configs) -> np.ndarray:
    """``D`` as a float64 symmetric matrix (a pair is NaN only when both entries are)."""
    D = np.asarray(D, dtype=float)
    if D.ndim != 2 or D.shape[0] != D.shape[1]:
        raise ValueError(f"D must be a square (R, R) matrix, got shape {D.shape}")
    if D.shape[0] != len(configs):
        raise ValueError(f"D is {D.shape[0]} x {D.shape[0]} but there are {len(configs)} configs")
    _check_configs(configs)
    Dt = D.T
    both = np.isfinite(D) & np.isfinite(Dt)
    return np.where(both, 0.5 * (D + Dt), np.where(np.isfinite(D), D, Dt))


def _values_of(flat: list[dict], key: str) -> list[Any]:
    return [c.get(key, MISSING) for c in flat]


def _codes(values: Iterable[Any]) -> np.ndarray:
    """Integer code of each value, in order of first appearance."""
    index: dict[Any, int] = {}
    return np.asarray([index.setdefault(v, len(index)) for v in values], dtype=np.int64)


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
    if factor == _ARCH:
        # Knobs belong to their architecture: "width 64" of an MLP and "width 8" of a CNN
        # are not the same setting, so architecture pairs may always differ in them.
        return candidates
    rest = [k for k in varying if k not in candidates and k != _SEED]
    groups: dict[tuple, dict[str, set]] = {}
    for c in flat:
        seen = groups.setdefault(_signature(c, rest), {k: set() for k in candidates})
        for k in candidates:
            seen[k].add(c.get(k, MISSING))
    return [k for k in candidates if all(len(g[k]) == 1 for g in groups.values())]


def _signature(c: dict, keys: Sequence[str]) -> tuple:
    return tuple(c.get(k, MISSING) for k in keys)


def _fmt(values: Sequence[Any], limit: int = 6) -> str:
    shown = ["None" if v is MISSING else str(v) for v in values[:limit]]
    return ", ".join(shown) + (", ..." if len(values) > limit else "")


def _why_no_pairs(flat: list[dict], factor: str, keys: Sequence[str]) -> str:
    """The smallest set of other keys that always changes along with ``factor``."""
    codes = np.empty((len(flat), len(keys) + 1), dtype=np.int64)
    for j, k in enumerate([factor, *keys]):
        codes[:, j] = _codes(c.get(k, MISSING) for c in flat)
    best: Counter = Counter()
    best_size = None
    for i in range(len(flat) - 1):
        diff = codes[i + 1:] != codes[i]
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


# --------------------------------------------------------------------------- the design

@dataclass
class _Design:
    """The ordinary runs of a sweep, coded once for every factor.

    ``D`` is the symmetrised matrix of all runs; ``runs`` the rows of the ordinary ones
    (their local index is their position in ``runs``); ``seed`` and ``group`` (the
    configuration group: every varying key but the seed) are local codes.
    """

    D: np.ndarray
    flat: list
    runs: np.ndarray
    corners: list
    varying: list
    seed: np.ndarray
    group: np.ndarray

    @property
    def n_groups(self) -> int:
        return int(self.group.max()) + 1 if self.group.size else 0

    def distances(self, pi: np.ndarray, pj: np.ndarray) -> np.ndarray:
        """``D`` between local runs ``pi`` and ``pj``."""
        return self.D[self.runs[pi], self.runs[pj]]


def _design(D, configs: Sequence[Mapping], ignore: Sequence[str]) -> _Design:
    Dm = _check_inputs(D, configs)
    ordinary = ordinary_runs(configs)
    runs = np.flatnonzero(ordinary)
    flat = _prepare([configs[i] for i in runs], ignore)
    varying = _varying_keys(flat)
    but_seed = [k for k in varying if k != _SEED]
    return _Design(D=Dm, flat=flat, runs=runs, corners=np.flatnonzero(~ordinary).tolist(), varying=varying,
                   seed=_codes(_values_of(flat, _SEED)), group=_codes(_signature(c, but_seed) for c in flat))


# --------------------------------------------------------------------------- crossed pairs

def _delta_table(pi: np.ndarray, pj: np.ndarray, d: np.ndarray, label: np.ndarray, level: np.ndarray,
                 n_labels: int) -> tuple["CrossedPairs", int]:
    """Δ of every pair of configuration groups of different levels, from run pairs of different seeds.

    ``pi, pj, d``: run pairs (same stratum, different seeds, finite distance); ``label``:
    configuration group of each run; ``level``: the factor's value code of each group.
    A run pair within one group is a seed-only pair (its group's baseline); between
    groups of different levels it is a crossed pair; other pairs do not count. Returns the
    pairs with a baseline (factor, reason and groups left blank) and how many had none.
    """
    gi, gj = label[pi], label[pj]
    same = gi == gj
    base_n = np.bincount(gi[same], minlength=n_labels)
    base_sum = np.bincount(gi[same], weights=d[same], minlength=n_labels)
    base = np.full(n_labels, np.nan)
    np.divide(base_sum, base_n, out=base, where=base_n > 0)
    cross = level[gi] != level[gj]
    lo, hi = np.minimum(gi, gj)[cross], np.maximum(gi, gj)[cross]
    keys, inv = np.unique(lo * n_labels + hi, return_inverse=True)
    n = np.bincount(inv, minlength=keys.size)
    cross_mean = np.bincount(inv, weights=d[cross], minlength=keys.size) / np.maximum(n, 1)
    g, h = keys // n_labels, keys % n_labels
    both = np.stack([base[g], base[h]])
    count = np.isfinite(both).sum(axis=0)
    ok = count > 0
    baseline = np.nansum(both, axis=0)[ok] / count[ok]
    pairs = CrossedPairs(factor="", status=MEASURED, reason="", g=g[ok], h=h[ok], delta=cross_mean[ok] - baseline,
                         cross=cross_mean[ok], baseline=baseline, n_run_pairs=n[ok], groups=[])
    return pairs, int((~ok).sum())


@dataclass
class _Crossing:
    """One factor's candidate run pairs and the codes its Δ and permutations need (local run indices)."""

    factor: str
    values: list
    tied: list
    pi: np.ndarray
    pj: np.ndarray
    d: np.ndarray
    level: np.ndarray
    block: np.ndarray
    n_nan: int
    table: CrossedPairs
    n_without_baseline: int

    def statistic(self, label: np.ndarray) -> float:
        return _delta_table(self.pi, self.pj, self.d, label, self.level, self.level.size)[0].mean


def _crossing(design: _Design, factor: str) -> _Crossing | tuple[str, str, list, list]:
    """The crossed pairs of ``factor``, or ``(status, reason, values, tied)`` when there are none."""
    flat = design.flat
    col = _values_of(flat, factor)
    values = _sorted_values(col)
    if all(v is MISSING for v in col):
        return NOT_A_FACTOR, f"no run sets {factor}", [], []
    if len(values) < 2:
        return NOT_A_FACTOR, f"every run has {factor} = {_fmt(values)}", values, []
    tied = _tied_keys(flat, factor, design.varying)
    fixed = [k for k in design.varying if k not in (factor, _SEED) and k not in tied]
    stratum = _codes(_signature(c, fixed) for c in flat)
    level_of_run = _codes(col)
    level = np.zeros(design.n_groups, dtype=np.int64)
    level[design.group] = level_of_run
    if not _any_config_pair(stratum, design.group, level):
        return NO_PAIRS, _why_no_pairs(flat, factor, fixed), values, tied
    pi, pj = _same_stratum_pairs(stratum, design.seed)
    d = design.distances(pi, pj)
    gi, gj = design.group[pi], design.group[pj]
    counts = (gi == gj) | (level[gi] != level[gj])
    finite = np.isfinite(d)
    n_nan = int((counts & ~finite).sum())
    pi, pj, d = pi[finite], pj[finite], d[finite]
    table, n_without = _delta_table(pi, pj, d, design.group, level, design.n_groups)
    if not table.delta.size:
        return NO_PAIRS, _why_not_crossed(factor, design, pi, pj, level, n_nan), values, tied
    block = _codes(zip(stratum.tolist(), design.seed.tolist()))
    return _Crossing(factor=factor, values=values, tied=tied, pi=pi, pj=pj, d=d, level=level, block=block,
                     n_nan=n_nan, table=replace(table, factor=factor), n_without_baseline=n_without)


def _any_config_pair(stratum: np.ndarray, group: np.ndarray, level: np.ndarray) -> bool:
    """Do two configuration groups of one stratum have different levels?"""
    levels: dict[int, set] = {}
    for s, g in zip(stratum.tolist(), group.tolist()):
        levels.setdefault(s, set()).add(int(level[g]))
    return any(len(v) > 1 for v in levels.values())


def _same_stratum_pairs(stratum: np.ndarray, seed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """All local run pairs ``i < j`` in one stratum with different seeds."""
    pis, pjs = [], []
    for s in np.unique(stratum):
        members = np.flatnonzero(stratum == s)
        a, b = np.triu_indices(members.size, k=1)
        keep = seed[members[a]] != seed[members[b]]
        pis.append(members[a[keep]])
        pjs.append(members[b[keep]])
    return np.concatenate(pis), np.concatenate(pjs)


def _why_not_crossed(factor: str, design: _Design, pi, pj, level, n_nan: int) -> str:
    gi, gj = design.group[pi], design.group[pj]
    if not np.any(level[gi] != level[gj]):
        if n_nan:
            return f"all {n_nan} pairs that differ in {factor} and the seed have no common progress (NaN distance)"
        return (f"no two runs differ in {factor} and in the seed with everything else equal (each configuration "
                "of these pairs was trained with the same single seed)")
    return (f"no configuration group differing in {factor} has two seeds with a finite distance: the seed-only "
            "baseline is unknown")


# --------------------------------------------------------------------------- public pairs

@dataclass(frozen=True)
class CrossedPairs:
    """One factor's pairs of configuration groups and their crossed-seed effect (:func:`crossed_pairs`).

    Attributes
    ----------
    factor : str
    status : str
        ``"measured"``, ``"not a factor in this sweep"`` or ``"no comparable pairs"``.
    reason : str
        Why there are no pairs ("" when there are).
    g, h : ndarray of int, shape (P,)
        The two configuration groups of each pair (indices into ``groups``).
    delta : ndarray, shape (P,)
        ``Δ_gh = cross - baseline``.
    cross : ndarray, shape (P,)
        Mean distance over the run pairs of ``g × h`` with different seeds.
    baseline : ndarray, shape (P,)
        Mean of the two groups' seed-only distances (one of them when the other has one seed).
    n_run_pairs : ndarray of int, shape (P,)
        Crossed run pairs behind ``cross``.
    groups : list of ndarray of int
        Rows of ``D`` of each configuration group; one numbering for every factor of a call.
    """

    factor: str
    status: str
    reason: str
    g: np.ndarray
    h: np.ndarray
    delta: np.ndarray
    cross: np.ndarray
    baseline: np.ndarray
    n_run_pairs: np.ndarray
    groups: list

    @property
    def mean(self) -> float:
        """``Δ_f``: the mean of ``delta`` (NaN without pairs)."""
        return float(self.delta.mean()) if self.delta.size else float("nan")

    def involving(self, runs) -> "CrossedPairs":
        """The pairs with at least one group among ``runs`` (a bool mask over the rows of ``D``, or row indices)."""
        rows = np.asarray(runs)
        rows = np.flatnonzero(rows) if rows.dtype == bool else rows.astype(np.int64)
        inside = np.array([np.isin(members, rows).any() for members in self.groups], dtype=bool)
        keep = inside[self.g] | inside[self.h] if self.g.size else np.zeros(0, dtype=bool)
        return CrossedPairs(self.factor, self.status, self.reason, self.g[keep], self.h[keep], self.delta[keep],
                            self.cross[keep], self.baseline[keep], self.n_run_pairs[keep], self.groups)


def crossed_pairs(D, configs: Sequence[Mapping], factors: Sequence[str], *,
                  ignore: Sequence[str] = IGNORED_KEYS) -> dict[str, CrossedPairs]:
    """Each factor's pairs of configuration groups with their Δ (the module docstring's Δ_gh).

    Corner-initialised runs are left out. The configuration groups are numbered once for
    all ``factors``, so the pairs of two factors can be resampled together
    (:func:`resample_groups`).

    Parameters
    ----------
    D : array_like, shape (R, R)
        Trajectory distances (NaN: not comparable).
    configs : sequence of R mappings
    factors : sequence of str
        Configuration keys (dotted for nested keys); the seed is not one (it is the baseline).
    ignore : sequence of str
        Bookkeeping keys.

    Returns
    -------
    dict of str to CrossedPairs
    """
    if _SEED in factors:
        raise ValueError("factors: the seed is the baseline of every other factor, not a factor with pairs")
    design = _design(D, configs, ignore)
    groups = [design.runs[design.group == k] for k in range(design.n_groups)]
    out = {}
    for factor in factors:
        cr = _crossing(design, factor)
        if isinstance(cr, _Crossing):
            out[factor] = replace(cr.table, groups=groups)
        else:
            empty_i, empty_f = np.zeros(0, dtype=np.int64), np.zeros(0)
            out[factor] = CrossedPairs(factor, cr[0], cr[1], empty_i, empty_i, empty_f, empty_f, empty_f, empty_i,
                                       groups)
    return out


def _resample(items: Sequence[tuple[np.ndarray, np.ndarray, np.ndarray]], n_boot: int, rng) -> np.ndarray:
    """``(n_boot, k)`` means of each item's values when the groups are drawn with replacement.

    An item is ``(g, h, v)``: values ``v`` of pairs of groups ``(g, h)`` (``h = -1``: of the
    group ``g`` alone), weighted in a replicate by the product of their groups' draw
    counts. The groups drawn are the union over the items. NaN where a replicate draws
    no pair of an item.
    """
    used = np.unique(np.concatenate([np.concatenate([g, h[h >= 0]]) for g, h, _ in items]))
    out = np.full((n_boot, len(items)), np.nan)
    if not used.size:
        return out
    where = {int(u): k for k, u in enumerate(used)}
    draws = rng.integers(0, used.size, size=(n_boot, used.size))
    mult = np.zeros((n_boot, used.size))
    np.add.at(mult, (np.repeat(np.arange(n_boot), used.size), draws.ravel()), 1.0)
    for k, (g, h, v) in enumerate(items):
        if not v.size:
            continue
        wg = mult[:, [where[int(x)] for x in g]]
        wh = np.where(h >= 0, mult[:, [where[int(x)] if x >= 0 else 0 for x in h]], 1.0)
        w = wg * wh
        total = w.sum(axis=1)
        np.divide(w @ v, total, out=out[:, k], where=total > 0)
    return out


def resample_groups(pairs: Sequence[CrossedPairs], *, n_boot: int = 1000, random_state=0) -> np.ndarray:
    """Bootstrap replicates of several factors' ``Δ_f``, drawing configuration groups together.

    Each replicate draws the groups that enter any of ``pairs`` with replacement and
    takes each factor's mean ``Δ_gh`` weighted by the product of its two groups' draw
    counts (the interval of :func:`factor_effects`, shared so that ratios of two
    factors' effects keep their dependence).

    Returns
    -------
    ndarray, shape (n_boot, len(pairs))
        NaN where a replicate draws no pair of a factor.
    """
    if n_boot < 1:
        raise ValueError(f"n_boot must be >= 1, got {n_boot}")
    rng = np.random.default_rng(random_state)
    return _resample([(p.g, p.h, p.delta) for p in pairs], n_boot, rng)


def _percentiles(replicates: np.ndarray) -> tuple[float, float]:
    ok = replicates[np.isfinite(replicates)]
    if not ok.size:
        return float("nan"), float("nan")
    lo, hi = np.percentile(ok, [2.5, 97.5])
    return float(lo), float(hi)


# --------------------------------------------------------------------------- p-values

def _permutation_p(cr: _Crossing, label: np.ndarray, observed: float, n_permutations: int,
                   rng) -> tuple[float | None, int, str]:
    """One-sided p-value of ``observed`` Δ with configurations permuted within (stratum, seed) blocks.

    Returns ``(p, n, how)``: ``p`` None when ``n_permutations`` is 0 or no block holds two
    configurations; ``n`` the arrangements compared; ``how`` says exact or random.
    """
    blocks = [b for b in (np.flatnonzero(cr.block == k) for k in np.unique(cr.block))
              if len(set(label[b].tolist())) > 1]
    if n_permutations < 1 or not blocks:
        why = "no permutation asked" if n_permutations < 1 else "no block of runs holds two configurations"
        return None, 0, why
    total = 1
    for b in blocks:
        total *= math.factorial(b.size)
        if total > n_permutations:
            break
    tol = 1e-12 * max(1.0, abs(observed))
    if total <= n_permutations:
        stats = [cr.statistic(_arranged(label, blocks, combo))
                 for combo in itertools.product(*(itertools.permutations(b.tolist()) for b in blocks))]
        exceed = sum(not s < observed - tol for s in stats)  # a NaN counts against the factor
        return exceed / len(stats), len(stats), f"exact: every one of the {len(stats)} arrangements"
    moving = np.concatenate(blocks)
    block_of = cr.block[moving]
    sorted_runs = moving[np.argsort(block_of, kind="stable")]
    labels_sorted = label[sorted_runs]
    exceed = 0
    for _ in range(n_permutations):
        new = label.copy()
        new[moving[np.lexsort((rng.random(moving.size), block_of))]] = labels_sorted
        exceed += not cr.statistic(new) < observed - tol
    return (1 + exceed) / (1 + n_permutations), n_permutations, f"{n_permutations} random arrangements"


def _arranged(label: np.ndarray, blocks: list, combo: tuple) -> np.ndarray:
    """``label`` with each block's labels taken from the runs of ``combo`` (one permutation per block)."""
    new = label.copy()
    for b, perm in zip(blocks, combo):
        new[b] = label[list(perm)]
    return new


# --------------------------------------------------------------------------- effects

@dataclass
class FactorEffect:
    """The crossed-seed effect of one factor on the trajectory (see the module docstring).

    Attributes
    ----------
    factor : str
        Configuration key (dotted for nested keys).
    status : str
        ``"measured"``, ``"not a factor in this sweep"`` (one value only, or no run sets
        it) or ``"no comparable pairs"``.
    reason : str
        How the entry was obtained, or why it is missing.
    delta : float
        ``Δ_f``: mean over the factor's pairs of configuration groups of (crossed distance
        − seed-only baseline); for ``seed``, the mean seed-only distance. NaN when not measured.
    low, high : float
        95 % bootstrap interval of ``delta`` (configuration groups resampled; NaN with
        fewer than :data:`MIN_GROUPS` groups).
    cross_mean, seed_mean : float
        Means over the pairs of the crossed distance and of the baseline
        (``delta = cross_mean - seed_mean``; for ``seed``, ``seed_mean`` is 0).
    p_value : float or None
        Permutation p-value of ``delta`` (None for ``seed``, or when no permutation was asked).
    n_permutations : int
        Arrangements compared.
    permutation : str
        Exact or random, or why there is no p-value.
    n_group_pairs : int
        Pairs of configuration groups (for ``seed``: 0).
    n_groups : int
        Configuration groups that enter them.
    n_run_pairs : int
        Run pairs behind the crossed means (for ``seed``, the seed-only pairs).
    n_nan_pairs : int
        Run pairs skipped because their distance is NaN.
    values : list
        The factor's values among the ordinary runs (``None`` for runs that do not set it).
    interval : str
        What the bootstrap resampled, or why there is no interval.
    tied_with : list of str
        Keys tied to the factor that change within the used pairs (before measuring: every
        key tied to it).
    """

    factor: str
    status: str
    reason: str
    delta: float = float("nan")
    low: float = float("nan")
    high: float = float("nan")
    cross_mean: float = float("nan")
    seed_mean: float = float("nan")
    p_value: float | None = None
    n_permutations: int = 0
    permutation: str = ""
    n_group_pairs: int = 0
    n_groups: int = 0
    n_run_pairs: int = 0
    n_nan_pairs: int = 0
    values: list = field(default_factory=list)
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
    """Factor effects of one sweep (:func:`factor_effects`).

    Attributes
    ----------
    effects : list of FactorEffect
        One entry per requested factor, in the requested order.
    ranking : list of str
        Measured factors by ``delta``, largest first.
    n_runs : int
        Rows of ``D``.
    corner_runs : list of int
        Rows of ``D`` left out as corner-initialised.
    n_nan_pairs : int
        Run pairs skipped over all factors because their distance is NaN.
    ignored_keys : list of str
        Bookkeeping keys that never made runs different.
    grid : str
        The progress grid ``D`` was computed on (as the caller described it).
    """

    effects: list[FactorEffect]
    ranking: list[str]
    n_runs: int
    corner_runs: list[int] = field(default_factory=list)
    n_nan_pairs: int = 0
    ignored_keys: list[str] = field(default_factory=list)
    grid: str = ""

    def __getitem__(self, factor: str) -> FactorEffect:
        for e in self.effects:
            if e.factor == factor:
                return e
        raise KeyError(f"no factor {factor!r} in this report (factors: {[e.factor for e in self.effects]})")

    def get(self, factor: str) -> FactorEffect | None:
        """The entry of ``factor``, or None."""
        return next((e for e in self.effects if e.factor == factor), None)

    def to_dict(self) -> dict:
        """Plain, JSON-serialisable dict (``NaN`` becomes ``None``)."""
        return {
            "n_runs": int(self.n_runs),
            "corner_runs": [int(r) for r in self.corner_runs],
            "n_nan_pairs": int(self.n_nan_pairs),
            "ignored_keys": list(self.ignored_keys),
            "grid": self.grid,
            "ranking": list(self.ranking),
            "effects": [e.to_dict() for e in self.effects],
        }

    def to_frame(self):
        """One row per factor (pandas DataFrame), measured factors first by ``delta``."""
        import pandas as pd

        rows = []
        for e in self.effects:
            d = e.to_dict()
            d["values"] = ", ".join("None" if v is None else str(v) for v in d["values"])
            d["tied_with"] = ", ".join(d["tied_with"])
            for key in ("delta", "low", "high", "cross_mean", "seed_mean", "p_value"):
                d[key] = np.nan if d[key] is None else d[key]
            rows.append(d)
        cols = ["factor", "status", "delta", "low", "high", "p_value", "cross_mean", "seed_mean", "n_group_pairs",
                "n_groups", "n_run_pairs", "n_nan_pairs", "values", "tied_with", "interval", "permutation", "reason"]
        frame = pd.DataFrame(rows, columns=cols)
        order = {f: i for i, f in enumerate(self.ranking)}
        frame["_rank"] = [order.get(f, len(order) + i) for i, f in enumerate(frame["factor"])]
        return frame.sort_values("_rank").drop(columns="_rank").reset_index(drop=True)


def factor_effects(D, configs: Sequence[Mapping], *, factors: Sequence[str] | None = None, n_boot: int = 1000,
                   n_permutations: int = 999, random_state: int | None = 0, ignore: Sequence[str] = IGNORED_KEYS,
                   grid: str = "") -> FactorReport:
    """Each factor's crossed-seed effect ``Δ_f`` with a group-bootstrap interval and a permutation p-value.

    Parameters
    ----------
    D : array_like, shape (R, R)
        Symmetric trajectory distances; ``NaN`` for pairs that cannot be compared
        (skipped and counted in ``n_nan_pairs``).
    configs : sequence of R mappings
        Run configurations (see the module docstring for flattening, ``arch_alias``,
        tied and ignored keys). Corner-initialised runs are left out.
    factors : sequence of str, optional
        Keys to analyse; default :data:`DEFAULT_FACTORS`. Each gets an entry.
    n_boot : int
        Bootstrap replicates of the interval.
    n_permutations : int
        Most arrangements for the p-value (all of them when there are no more; 0: none).
    random_state : int, optional
        Seed of the bootstrap and the permutations.
    ignore : sequence of str
        Bookkeeping keys (default :data:`IGNORED_KEYS`).
    grid : str
        The progress grid ``D`` was computed on, in words (reported with the result).

    Returns
    -------
    FactorReport
    """
    if n_boot < 1:
        raise ValueError(f"n_boot must be >= 1, got {n_boot}")
    if n_permutations < 0:
        raise ValueError(f"n_permutations must be >= 0, got {n_permutations}")
    design = _design(D, configs, ignore)
    factors = list(DEFAULT_FACTORS if factors is None else factors)
    rng = np.random.default_rng(random_state)
    effects = [_seed_effect(design, n_boot, rng) if f == _SEED else
               _factor_effect(design, f, n_boot, n_permutations, rng) for f in factors]
    ranking = [e.factor for e in sorted((e for e in effects if e.measured), key=lambda e: -e.delta)]
    return FactorReport(effects=effects, ranking=ranking, n_runs=int(design.D.shape[0]), corner_runs=design.corners,
                        n_nan_pairs=sum(e.n_nan_pairs for e in effects), ignored_keys=list(ignore), grid=grid)


def _interval(effect: FactorEffect, items, n_groups: int, what: str, n_boot: int, rng) -> None:
    """Fill ``effect.low/high/interval`` from a group bootstrap of ``items`` (see :func:`_resample`)."""
    if n_groups < MIN_GROUPS:
        effect.interval = f"none: {n_groups} configuration group{'s' if n_groups != 1 else ''} (need {MIN_GROUPS})"
        return
    effect.low, effect.high = _percentiles(_resample(items, n_boot, rng)[:, 0])
    effect.interval = f"{what} resampled ({n_groups} groups, {n_boot} replicates)"


def _factor_effect(design: _Design, factor: str, n_boot: int, n_permutations: int, rng) -> FactorEffect:
    """One factor's entry of :func:`factor_effects`."""
    cr = _crossing(design, factor)
    if not isinstance(cr, _Crossing):
        status, reason, values, tied = cr
        return FactorEffect(factor, status, reason, values=values, tied_with=tied)
    t = cr.table
    effect = FactorEffect(factor, MEASURED, "", delta=t.mean, cross_mean=float(t.cross.mean()),
                          seed_mean=float(t.baseline.mean()), n_group_pairs=int(t.delta.size),
                          n_groups=int(np.unique(np.concatenate([t.g, t.h])).size),
                          n_run_pairs=int(t.n_run_pairs.sum()), n_nan_pairs=cr.n_nan, values=cr.values)
    reps = [design.flat[int(np.flatnonzero(design.group == k)[0])] for k in range(design.n_groups)]
    effect.tied_with = [k for k in cr.tied if any(reps[g].get(k, MISSING) != reps[h].get(k, MISSING)
                                                  for g, h in zip(t.g.tolist(), t.h.tolist()))]
    _interval(effect, [(t.g, t.h, t.delta)], effect.n_groups, "configuration groups", n_boot, rng)
    effect.p_value, effect.n_permutations, effect.permutation = _permutation_p(
        cr, design.group, effect.delta, n_permutations, rng)
    reason = (f"{effect.n_group_pairs} pairs of configurations that differ in {factor} only "
              f"({effect.n_run_pairs} run pairs of different seeds)")
    if effect.tied_with:
        reason += f", with the keys tied to it in this sweep: {', '.join(effect.tied_with)}"
    if cr.n_without_baseline:
        reason += f"; {cr.n_without_baseline} pairs without a seed-only baseline skipped"
    if cr.n_nan:
        reason += f"; {cr.n_nan} run pair{'s' if cr.n_nan != 1 else ''} without common progress skipped"
    effect.reason = reason
    return effect


def _seed_effect(design: _Design, n_boot: int, rng) -> FactorEffect:
    """The seed's entry: the seed-only distance of each configuration group, averaged over groups."""
    flat = design.flat
    col = _values_of(flat, _SEED)
    values = _sorted_values(col)
    if all(v is MISSING for v in col):
        return FactorEffect(_SEED, NOT_A_FACTOR, "no run sets seed")
    if len(values) < 2:
        return FactorEffect(_SEED, NOT_A_FACTOR, f"every run has seed = {_fmt(values)}", values=values)
    pi, pj = _same_stratum_pairs(design.group, design.seed)
    d = design.distances(pi, pj)
    finite = np.isfinite(d)
    n_nan = int((~finite).sum())
    gi, d = design.group[pi][finite], d[finite]
    n = np.bincount(gi, minlength=design.n_groups)
    has = np.flatnonzero(n > 0)
    if not has.size:
        why = (f"all {n_nan} seed-only pairs have no common progress (NaN distance)" if n_nan
               else "no configuration was trained with two seeds")
        return FactorEffect(_SEED, NO_PAIRS, why, values=values, n_nan_pairs=n_nan)
    base = np.bincount(gi, weights=d, minlength=design.n_groups)[has] / n[has]
    effect = FactorEffect(_SEED, MEASURED, "", delta=float(base.mean()), cross_mean=float(base.mean()),
                          seed_mean=0.0, n_groups=int(has.size), n_run_pairs=int(d.size), n_nan_pairs=n_nan,
                          values=values, permutation="none: the seed's effect is its seed-only distance itself")
    _interval(effect, [(has, np.full(has.size, -1), base)], int(has.size), "configuration groups", n_boot, rng)
    effect.reason = (f"seed-only distance of {has.size} configuration groups ({d.size} pairs of runs that differ "
                     "in the seed only)" + (f"; {n_nan} pairs without common progress skipped" if n_nan else ""))
    return effect


# --------------------------------------------------------------------------- predictability

SEED_TWINS_EXCLUDED = "the run itself and its seed twins (same configuration except seed)"
SAME_SEED_EXCLUDED = SEED_TWINS_EXCLUDED + ", and every run of the same seed"


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
    margin : float or None
        ``(accuracy - chance) / (1 - chance)``: 0 at chance, 1 when always right.
    n : int
        Classified runs.
    n_unclassified : int
        Ordinary runs without a candidate neighbour.
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
    n_corner_runs : int
        Corner-initialised runs left out.
    """

    factor: str
    status: str = "skipped"
    reason: str = ""
    accuracy: float | None = None
    chance: float | None = None
    margin: float | None = None
    n: int = 0
    n_unclassified: int = 0
    n_classes: int = 0
    values: list = field(default_factory=list)
    p_value: float | None = None
    n_permutations: int = 0
    n_neighbors: int = 1
    excluded: str = SAME_SEED_EXCLUDED
    n_corner_runs: int = 0

    def to_dict(self) -> dict:
        """Plain, JSON-serialisable dict."""
        d = asdict(self)
        d["values"] = [_value_json(v) for v in self.values]
        return jsonable(d)


def factor_predictability(D, configs: Sequence[Mapping], factor: str, *, n_neighbors: int = 1,
                          n_permutations: int = 200, random_state: int | None = 0, crossed: bool = True,
                          ignore: Sequence[str] = IGNORED_KEYS) -> FactorPredictability:
    """How well trajectories predict a factor's value (leave-one-out k-NN on ``D``).

    Each ordinary run (corner-initialised runs are left out) is classified by the
    majority value of ``factor`` among its ``n_neighbors`` nearest candidate runs (ties:
    the value with the nearest member). The candidates exclude the run itself, its seed
    twins and, with ``crossed`` (default), every run of the same seed (see the module
    docstring). ``NaN`` distances are not candidates; a run without candidates is left
    out (``n_unclassified``).

    Returns
    -------
    FactorPredictability
        Status ``"skipped"`` with a reason when the factor has fewer than two values,
        there are fewer than 4 runs, fewer than 4 runs have a candidate neighbour, or the
        factor is the seed with ``crossed`` (no candidate shares it).
    """
    if n_neighbors < 1:
        raise ValueError(f"n_neighbors must be >= 1, got {n_neighbors}")
    if n_permutations < 0:
        raise ValueError(f"n_permutations must be >= 0, got {n_permutations}")
    design = _design(D, configs, ignore)
    flat = design.flat
    col = _values_of(flat, factor)
    values = _sorted_values(col)
    out = FactorPredictability(factor=factor, n_classes=len(values), values=values, n_neighbors=int(n_neighbors),
                               n_permutations=int(n_permutations), n_corner_runs=len(design.corners),
                               excluded=SAME_SEED_EXCLUDED if crossed else SEED_TWINS_EXCLUDED)
    R = len(flat)
    if all(v is MISSING for v in col):
        out.reason, out.n_classes = f"no run sets {factor}", 0
        return out
    if len(values) < 2:
        out.reason, out.n_classes = f"{factor} has one value only ({_fmt(values)}): not a factor in this sweep", 1
        return out
    if factor == _SEED and crossed:
        out.reason = "candidates of another seed cannot share the seed: not predictable by construction"
        return out
    if R < 4:
        out.reason = f"too few runs ({R}; need at least 4)"
        return out
    order, candidate = _candidate_neighbours(design, n_neighbors, crossed)
    used = candidate[:, 0]
    n_used = int(used.sum())
    out.n_unclassified = int(R - n_used)
    y = _codes(col)
    if n_used < 4 or len(set(y[used].tolist())) < 2:
        out.n = n_used
        out.reason = f"too few runs with a candidate neighbour ({n_used} of {R}) or only one value among them"
        return out
    accuracy = _knn_accuracy(order[used], candidate[used], used, int(y.max()) + 1)
    acc = accuracy(y)
    rng = np.random.default_rng(random_state)
    exceed = sum(accuracy(rng.permutation(y)) >= acc - 1e-12 for _ in range(n_permutations))
    chance = float(np.bincount(y[used]).max() / n_used)
    out.status, out.accuracy, out.n, out.chance = "ok", acc, n_used, chance
    out.margin = float((acc - chance) / (1.0 - chance))
    out.p_value = float((1 + exceed) / (1 + n_permutations)) if n_permutations else None
    out.reason = (f"leave-one-out {n_neighbors}-nearest-neighbour on {n_used} runs ({len(values)} values of "
                  f"{factor}); candidates exclude {out.excluded}")
    return out


def _candidate_neighbours(design: _Design, n_neighbors: int, crossed: bool):
    """Each ordinary run's ``n_neighbors`` nearest candidate runs (local indices).

    Returns
    -------
    order : int ndarray, shape (R, n_neighbors)
        Neighbour indices, nearest first.
    candidate : bool ndarray, shape (R, n_neighbors)
        False where that neighbour is no candidate (NaN distance, a twin, the same seed).
    """
    Dm = design.D[np.ix_(design.runs, design.runs)]
    dist = np.where(np.isfinite(Dm), Dm, np.inf)
    dist[design.group[:, None] == design.group[None, :]] = np.inf  # self and seed twins
    if crossed:
        dist[design.seed[:, None] == design.seed[None, :]] = np.inf
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


# --------------------------------------------------------------------------- claim 2

@dataclass
class FactorAnalysis:
    """What claim 2 is judged on (:func:`factor_analysis`, :func:`judge`).

    Attributes
    ----------
    effects : FactorReport
        Every factor's crossed-seed effect with its interval and p-value.
    predictability : dict of str to FactorPredictability
        Nearest-neighbour predictability of every factor of ``effects`` (the seed's is
        skipped: crossed candidates never share it).
    grid : str
        The progress grid the trajectory distances were computed on.
    """

    effects: FactorReport
    predictability: dict
    grid: str = ""

    def to_dict(self) -> dict:
        """``{"grid", "effects", "predictability"}`` (JSON-ready)."""
        return {"grid": self.grid, "effects": self.effects.to_dict(),
                "predictability": {f: p.to_dict() for f, p in self.predictability.items()}}


def factor_analysis(D, configs: Sequence[Mapping], *, factors: Sequence[str] | None = None, grid: str = "",
                    n_boot: int = 1000, n_permutations: int = 999, n_permutations_knn: int = 200,
                    random_state: int | None = 0, ignore: Sequence[str] = IGNORED_KEYS) -> FactorAnalysis:
    """Claim 2's measurement: :func:`factor_effects` and :func:`factor_predictability` of every factor.

    Parameters
    ----------
    D : array_like, shape (R, R)
        Trajectory distances on one progress grid, described by ``grid``.
    configs : sequence of R mappings
        Run configurations. For claim 2 the architecture is the model family:
        ``arch_alias`` is dropped, so width variants of one family (``cnn`` and
        ``cnn_wide``) count as the factor ``arch_options.width``.
    factors, n_boot, n_permutations, random_state, ignore
        As in :func:`factor_effects`.
    n_permutations_knn : int
        Permutations of the predictability p-values.

    Returns
    -------
    FactorAnalysis
    """
    _check_configs(configs)
    configs = [{k: v for k, v in c.items() if k != "arch_alias"} for c in configs]
    effects = factor_effects(D, configs, factors=factors, n_boot=n_boot, n_permutations=n_permutations,
                             random_state=random_state, ignore=ignore, grid=grid)
    predictability = {e.factor: factor_predictability(D, configs, e.factor, n_permutations=n_permutations_knn,
                                                      random_state=random_state, ignore=ignore)
                      for e in effects.effects if e.status != NOT_A_FACTOR}
    return FactorAnalysis(effects=effects, predictability=predictability, grid=grid)


def judge(analysis: FactorAnalysis) -> Judgement:
    """Claim 2 by :data:`RULE` from :func:`factor_analysis`."""
    rep = analysis.effects
    arch = rep.get(_ARCH)
    if arch is None or arch.status == NOT_A_FACTOR:
        why = arch.reason if arch is not None else "architecture was not analysed"
        return Judgement("skipped", {"grid": analysis.grid}, f"one architecture among the ordinary runs ({why})")
    if not arch.measured:
        return Judgement("skipped", {"grid": analysis.grid}, f"architecture not measured: {arch.reason}")
    others = [e for e in rep.effects if e.measured and e.factor != _ARCH]
    pred = {f: p for f, p in analysis.predictability.items() if p.status == "ok"}
    arch_pred = pred.get(_ARCH)
    other_margins = {f: p.margin for f, p in pred.items() if f != _ARCH}
    bound = MUCH_LESS * arch.delta
    numbers = {"grid": analysis.grid, "arch_delta": arch.delta, "arch_interval": [arch.low, arch.high],
               "arch_p_value": arch.p_value, "much_less_bound": bound,
               "others": {e.factor: {"delta": e.delta, "low": e.low, "high": e.high} for e in others},
               "arch_margin": arch_pred.margin if arch_pred else None,
               "arch_predictability_p": arch_pred.p_value if arch_pred else None,
               "other_margins": other_margins, "ranking": list(rep.ranking), "corner_runs_left_out": len(rep.corner_runs)}
    failed = []
    if not (arch.low > 0 and arch.p_value is not None and arch.p_value < P_VALUE):
        failed.append(f"architecture's effect is not clearly above 0 (interval {_show(arch.low)}–{_show(arch.high)}, "
                      f"p = {_show(arch.p_value)})")
    close = [e.factor for e in others if not (e.high <= bound and e.high < arch.low)]
    if close:
        failed.append(f"not much less than architecture (upper bound above {MUCH_LESS:g} × Δ_arch or architecture's "
                      f"lower bound): {', '.join(close)}")
    if arch_pred is None or arch_pred.p_value is None or arch_pred.p_value >= P_VALUE:
        failed.append("architecture is not predicted from trajectories better than chance")
    elif any(m is not None and m >= arch_pred.margin for m in other_margins.values()):
        failed.append("another factor is predicted with at least architecture's margin over chance")
    larger = [e.factor for e in others if e.low > max(0.0, MUCH_LESS * arch.high)]
    if larger:
        failed.insert(0, f"{', '.join(larger)} surely matter{'s' if len(larger) == 1 else ''} more than "
                         f"{MUCH_LESS:g} × architecture (lower bound above 0 and above {MUCH_LESS:g} × architecture's "
                         "upper bound)")
    return Judgement(decide(supported=not failed, refuted=bool(larger)), numbers, "; ".join(failed))


def _show(x) -> str:
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.3g}"
