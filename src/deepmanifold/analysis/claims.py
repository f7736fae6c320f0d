"""The study's claims (docs/method.md §6), the rule that judges each, and the judges.

Each claim gets the numbers that bear on it and a verdict computed from them by a
rule written here, once: :data:`RULES` holds the rule texts (built from the same
threshold constants the judges use) that are copied next to every verdict in
``findings.json`` and the report, so a reader can check it. Verdicts are
``"supported"``, ``"not supported"``, ``"inconclusive"`` (the numbers point both
ways), or ``"skipped"`` with the reason (e.g. a sweep with one width says nothing
about speed against width). Nothing is hard-coded: a sweep where a claim fails says
so. The thresholds are ours, chosen before looking at our data.

A judge is a pure function of one claim's measurement (see
:mod:`deepmanifold.analysis.findings` for how each is measured):

=================  =============================  ===========================================
claim              judge                          measurement
=================  =============================  ===========================================
``manifold``       :func:`judge_manifold`         :class:`~.dimensionality.DimensionalityReport`
``architecture``   :func:`judge_architecture`     :class:`ArchitectureEvidence`
``speed``          :func:`judge_speed`            :class:`SpeedEvidence`
``corners``        :func:`judge_corners`          :class:`~.corners.CornerConvergence`
``train_test``     :func:`judge_train_test`       :class:`~.agreement.TrainTestAgreement`
=================  =============================  ===========================================
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from deepmanifold.analysis.agreement import TrainTestAgreement
from deepmanifold.analysis.corners import CornerConvergence
from deepmanifold.analysis.dimensionality import DimensionalityReport
from deepmanifold.analysis.factors import FactorPredictability, FactorReport
from deepmanifold.analysis.speed import Milestones, SamePath, SpeedByWidth

__all__ = ["CLAIMS", "RULES", "VERDICTS", "ArchitectureEvidence", "Claim", "SpeedEvidence", "judge_architecture",
           "judge_corners", "judge_manifold", "judge_speed", "judge_train_test", "skipped_claim"]

VERDICTS = ("supported", "not supported", "inconclusive", "skipped")

# Claim 1: the explained stress to reach, and the most InPCA axes that still count as "low".
MANIFOLD_STRESS = 0.9
MAX_AXES_LOW_DIM = 5
# Claim 2: permutation p-value below which architecture counts as predictable.
ARCHITECTURE_P_VALUE = 0.05
# Claim 3: the progress level whose epochs are correlated with width.
SPEED_LEVEL = 0.9
# Claim 4: a corner run's distance must fall below this fraction of its first value, and
# end within this many times the ordinary runs' own spread.
CORNER_FALL = 0.5
CORNER_SPREAD_FACTOR = 2.0
# Claim 5: Mantel correlation, its p-value, the Procrustes residual and the axes compared.
TRAIN_TEST_MANTEL = 0.9
TRAIN_TEST_P_VALUE = 0.05
TRAIN_TEST_RESIDUAL = 0.1
TRAIN_TEST_AXES = 3

#: What each claim says (docs/method.md §6).
CLAIMS = {
    "manifold": "All trajectories lie on one effectively low-dimensional manifold.",
    "architecture": "Architecture produces distinguishable trajectories; the other factors matter much less.",
    "speed": "Larger networks train along the same manifold, just faster.",
    "corners": "Networks started far away (corners) converge to the solution along a similar manifold.",
    "train_test": "Training and test predictions give the same picture.",
}

#: The rule that turns each claim's numbers into its verdict, as shown to the reader.
RULES = {
    "manifold": (
        f"One low-dimensional manifold. Supported when the top {MAX_AXES_LOW_DIM} InPCA axes reach "
        f"{MANIFOLD_STRESS * 100:g} % explained stress on the test probe AND fewer axes are needed than for the "
        f"null model (mean of the null draws); not supported when more than {MAX_AXES_LOW_DIM} axes are needed; "
        "inconclusive otherwise."),
    "architecture": (
        "Architecture matters, the rest much less. Architecture is the model family (width variants count as "
        "the factor arch_options.width). Supported when architecture is the top-ranked factor by mean "
        "trajectory distance over pairs differing only in it, with its bootstrap interval above every other "
        "measured factor's mean, AND architecture is predictable from trajectories (leave-one-out nearest "
        f"neighbour above chance, permutation p < {ARCHITECTURE_P_VALUE}). Not supported when another factor "
        "ranks first. Skipped with one architecture."),
    "speed": (
        "Larger networks, same path, faster. For each architecture with ≥ 2 widths: Spearman correlation of "
        f"width with epochs to progress {SPEED_LEVEL} < 0 (wider is faster) AND the mean trajectory distance "
        "between widths of one architecture is below the mean distance between architectures (ratio < 1). "
        "Supported when both hold for every such architecture; skipped when no architecture has two widths."),
    "corners": (
        "Corners converge along the manifold. Supported when every corner run's distance to the nearest "
        f"ordinary run falls along training (last/first < {CORNER_FALL}) and ends within {CORNER_SPREAD_FACTOR} × "
        "the ordinary runs' own spread; skipped without corner runs."),
    "train_test": (
        "Train and test give the same picture. Supported when the Mantel correlation of the train and test "
        f"distance matrices is ≥ {TRAIN_TEST_MANTEL} (permutation p < {TRAIN_TEST_P_VALUE}) and the Procrustes "
        f"residual of their {TRAIN_TEST_AXES}-axis embeddings is ≤ {TRAIN_TEST_RESIDUAL}."),
}


@dataclass
class Claim:
    """One claim of the study as measured on a store.

    Attributes
    ----------
    key : str
        One of :data:`CLAIMS`.
    statement : str
        The claim, in words.
    verdict : str
        One of :data:`VERDICTS`.
    rule : str
        The rule that gave the verdict (:data:`RULES`).
    numbers : dict
        The numbers the verdict was computed from, by name (as shown in the report).
    reason : str
        Why the claim was skipped or is inconclusive, when the numbers alone do not say.
    """

    key: str
    statement: str
    verdict: str
    rule: str
    numbers: dict = field(default_factory=dict)
    reason: str = ""


def _claim(key: str, verdict: str, numbers: dict, reason: str = "") -> Claim:
    return Claim(key, CLAIMS[key], verdict, RULES[key], numbers, reason)


def _verdict(*, supported: bool, refuted: bool) -> str:
    """"not supported" when the numbers refute the claim, else "supported" when they meet it, else "inconclusive"."""
    return "not supported" if refuted else "supported" if supported else "inconclusive"


def skipped_claim(key: str, reason: str) -> Claim:
    """A claim the store cannot speak to, and why."""
    return _claim(key, "skipped", {}, reason)


# ----------------------------------------------------------------------------- 1. manifold

def judge_manifold(dim: DimensionalityReport) -> Claim:
    """Claim 1 from the dimensionality of all checkpoints against its null (rule: ``RULES["manifold"]``)."""
    need = dim.axes_needed.get(MANIFOLD_STRESS)
    null_need = dim.null_summary().get(f"{MANIFOLD_STRESS:g}", {}).get("mean")
    stress = dim.explained_stress
    numbers = {"axes_for_80%": dim.axes_needed.get(0.8), "axes_for_90%": need,
               "axes_for_95%": dim.axes_needed.get(0.95), "null": dim.null, "null_axes_for_90% (mean)": null_need,
               "explained_stress_top3": float(stress[2]) if len(stress) >= 3 else None,
               "checkpoints": dim.n_models, "runs": dim.n_runs}
    refuted = need is None or need > MAX_AXES_LOW_DIM
    supported = not refuted and null_need is not None and need < null_need
    return _claim("manifold", _verdict(supported=supported, refuted=refuted), numbers)


# ----------------------------------------------------------------------------- 2. architecture

@dataclass
class ArchitectureEvidence:
    """What claim 2 is judged on.

    Attributes
    ----------
    effects : FactorReport
        Mean trajectory distance over pairs of runs differing in one factor only, per
        factor, with bootstrap intervals (architecture = the model family).
    predictability : FactorPredictability
        How well trajectories predict the architecture.
    """

    effects: FactorReport
    predictability: FactorPredictability


def judge_architecture(evidence: ArchitectureEvidence) -> Claim:
    """Claim 2 from factor effects and architecture predictability (rule: ``RULES["architecture"]``)."""
    rep, pred = evidence.effects, evidence.predictability
    effects = {e.factor: e for e in rep.effects}
    arch = effects.get("arch")
    if arch is None or not arch.measured:
        return skipped_claim("architecture", arch.reason if arch is not None else "architecture does not vary")
    others = [e for f, e in effects.items() if f != "arch" and e.measured]
    numbers = {"arch_mean": arch.mean, "arch_interval": [arch.low, arch.high],
               "others": {e.factor: e.mean for e in others}, "ranking": list(rep.ranking),
               "arch_predictability": pred.accuracy, "chance": pred.chance, "p_value": pred.p_value}
    top = rep.ranking[0] if rep.ranking else None
    separated = all(arch.low is not None and e.mean is not None and arch.low > e.mean for e in others)
    predictable = (pred.accuracy is not None and pred.chance is not None and pred.accuracy > pred.chance
                   and (pred.p_value or 1.0) < ARCHITECTURE_P_VALUE)
    verdict = _verdict(supported=top == "arch" and separated and predictable, refuted=top is not None and top != "arch")
    return _claim("architecture", verdict, numbers)


# ----------------------------------------------------------------------------- 3. speed

@dataclass
class SpeedEvidence:
    """What claim 3 is judged on.

    Attributes
    ----------
    milestones : dict of str to Milestones
        Per run id, when its progress first reached 0.5 and 0.9.
    by_width : SpeedByWidth or None
        Times to the progress level against width, per architecture (None when no run
        has a width).
    same_path : SamePath
        Trajectory distances between widths of one architecture against those between
        architectures.
    """

    milestones: dict[str, Milestones]
    by_width: SpeedByWidth | None
    same_path: SamePath

    def to_dict(self) -> dict:
        """``{"by_width", "same_path"}`` as in ``findings.json`` (milestones are stored apart)."""
        return {"by_width": self.by_width.to_dict() if self.by_width is not None else {},
                "same_path": self.same_path.to_dict()}


def judge_speed(evidence: SpeedEvidence) -> Claim:
    """Claim 3 from the width trends and the same-path ratio (rule: ``RULES["speed"]``).

    An architecture's trend is the Spearman rho over its runs, or over its width means
    when too few runs reached the level.
    """
    by_width = evidence.by_width
    rhos = {}
    for arch, v in (by_width.architectures if by_width is not None else {}).items():
        trend = v.trend["epochs"]
        rho = trend.rho if trend.rho is not None else trend.rho_width_means
        if rho is not None:
            rhos[arch] = rho
    if not rhos:
        reasons = by_width.skipped if by_width is not None else {}
        why = "; ".join(f"{a}: {r}" for a, r in reasons.items())
        return skipped_claim("speed", "no architecture was trained at two or more widths that reached the progress "
                             f"level{': ' + why if why else ''}")
    ratio = evidence.same_path.ratio
    numbers = {"trend_level": by_width.trend_level, "spearman_width_vs_epochs": rhos, "same_path_ratio": ratio}
    faster = all(r < 0 for r in rhos.values())
    same = ratio is not None and ratio < 1
    return _claim("speed", _verdict(supported=faster and same, refuted=not faster and not same), numbers)


# ----------------------------------------------------------------------------- 4. corners

def judge_corners(convergence: CornerConvergence) -> Claim:
    """Claim 4 from each corner run's distance to the nearest ordinary run (rule: ``RULES["corners"]``).

    Reads each corner run's summary: how far its distance fell (last/first), where it
    ended, and the ordinary runs' own spread there. Runs where one of those is
    undefined (NaN: too little of the progress grid reached) do not count.
    """
    runs = convergence.corner.summary
    numbers = {"corner_runs": len(runs),
               "last_over_first": [r.ratio_last_first for r in runs],
               "final_distance": [r.d_last for r in runs],
               "ordinary_spread_at_end": [r.spread_at_last for r in runs]}
    usable = [r for r in runs if all(math.isfinite(v) for v in (r.ratio_last_first, r.d_last, r.spread_at_last))]
    if not usable:
        return _claim("corners", "inconclusive", numbers, "no corner run reached enough of the progress grid")
    ok = all(r.ratio_last_first < CORNER_FALL
             and r.d_last <= CORNER_SPREAD_FACTOR * max(r.spread_at_last, 1e-12) for r in usable)
    return _claim("corners", "supported" if ok else "not supported", numbers)


# ----------------------------------------------------------------------------- 5. train vs test

def judge_train_test(agreement: TrainTestAgreement) -> Claim:
    """Claim 5 from the Mantel test and the Procrustes residual (rule: ``RULES["train_test"]``)."""
    r, p = agreement.mantel.pearson, agreement.mantel.p_pearson
    residual = agreement.procrustes.residual
    numbers = {"mantel_r": r, "p_value": p, "procrustes_residual": residual}
    if r is None or residual is None:
        return _claim("train_test", "inconclusive", numbers)
    ok = (r >= TRAIN_TEST_MANTEL and p is not None and p < TRAIN_TEST_P_VALUE
          and residual <= TRAIN_TEST_RESIDUAL)
    return _claim("train_test", "supported" if ok else "not supported", numbers)
