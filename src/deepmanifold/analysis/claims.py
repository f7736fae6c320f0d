"""The study's claims (docs/method.md §6): what each says, the rule that judges it, and the verdict.

Each rule lives beside the measurement it reads (docs/method.md §8.4):

=================  ===========================================  ==========================================
claim              rule and judge                               measurement
=================  ===========================================  ==========================================
``manifold``       :mod:`.dimensionality` (``RULE``, ``judge``)  sharing and shared dimension at equal progress
``architecture``   :mod:`.factors`                               factor effects with crossed seeds
``speed``          :mod:`.speed`                                 matched narrow/wide pairs per family
``corners``        :mod:`.corners`                               corner runs against the ordinary runs' band
``train_test``     :mod:`.agreement`                             run × run pictures of two probes at equal progress
=================  ===========================================  ==========================================

A judge returns a :class:`~deepmanifold.analysis.verdicts.Judgement`; :func:`claim` makes it
the :class:`Claim` of ``findings.json`` and the report, with the claim's statement and its
rule's text, so a reader can check the verdict against the numbers. Verdicts are
``"supported"``, ``"not supported"``, ``"inconclusive"`` (the numbers point both ways) or
``"skipped"`` with the reason. Thresholds are ours, written before looking at our data;
every rule has a planted case where it must say yes and one where it must say no in the tests.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from deepmanifold.analysis import agreement, corners, dimensionality, factors, speed
from deepmanifold.analysis.verdicts import VERDICTS, Judgement

__all__ = ["CLAIMS", "RULES", "VERDICTS", "Claim", "claim", "skipped_claim"]

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
    "manifold": dimensionality.RULE,
    "architecture": factors.RULE,
    "speed": speed.RULE,
    "corners": corners.RULE,
    "train_test": agreement.RULE,
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


def claim(key: str, judgement: Judgement) -> Claim:
    """The :class:`Claim` ``key`` with the verdict, numbers and reason of ``judgement``."""
    return Claim(key, CLAIMS[key], judgement.verdict, RULES[key], dict(judgement.numbers), judgement.reason)


def skipped_claim(key: str, reason: str) -> Claim:
    """A claim the store cannot speak to, and why."""
    return claim(key, Judgement("skipped", {}, reason))
