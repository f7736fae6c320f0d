"""What a rule gives: a verdict, the numbers it was computed from, and a reason.

Every analysis module that judges a claim of the study defines, beside its measurement,
the rule's text (a constant built from the thresholds it uses) and a pure ``judge``
function returning a :class:`Judgement`; :mod:`deepmanifold.analysis.claims` collects
them into the claims of ``findings.json``. A module importing this one imports nothing
else of the analysis.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["VERDICTS", "Judgement", "decide"]

#: The verdicts a rule can give.
VERDICTS = ("supported", "not supported", "inconclusive", "skipped")


@dataclass(frozen=True)
class Judgement:
    """A rule applied to one measurement.

    Attributes
    ----------
    verdict : str
        One of :data:`VERDICTS`.
    numbers : dict
        The numbers the verdict was computed from, by name (shown in the report).
    reason : str
        Why, when the numbers alone do not say (always for ``"skipped"``).
    """

    verdict: str
    numbers: dict = field(default_factory=dict)
    reason: str = ""

    def __post_init__(self) -> None:
        if self.verdict not in VERDICTS:
            raise ValueError(f"verdict must be one of {VERDICTS}, got {self.verdict!r}")
        if self.verdict == "skipped" and not self.reason:
            raise ValueError("a skipped claim needs a reason")


def decide(*, supported: bool, refuted: bool) -> str:
    """``"not supported"`` when the numbers refute the claim, else ``"supported"`` when they meet it,
    else ``"inconclusive"``."""
    return "not supported" if refuted else "supported" if supported else "inconclusive"
