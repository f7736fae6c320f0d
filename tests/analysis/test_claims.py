"""The claims collect each module's rule and judge: statements, rule texts, verdicts, -OO.

Each rule's power (a planted sweep where it must say yes, one where it must say no) is
tested beside its measurement: tests/analysis/test_dimensionality.py (manifold),
test_factors_power.py (architecture), test_speed_power.py (speed), test_corners.py
(corners), test_agreement.py (train/test).
"""

import subprocess
import sys

import pytest

from deepmanifold.analysis import agreement, corners, dimensionality, factors, speed
from deepmanifold.analysis.claims import CLAIMS, RULES, claim, skipped_claim
from deepmanifold.analysis.verdicts import Judgement, decide

MODULES = {"manifold": dimensionality, "architecture": factors, "speed": speed, "corners": corners,
           "train_test": agreement}


def test_every_claim_reads_its_rule_from_the_module_that_measures_it():
    assert list(RULES) == list(CLAIMS) == list(MODULES)
    for key, module in MODULES.items():
        assert RULES[key] == module.RULE and "``" not in RULES[key] and len(RULES[key]) > 80
    # Each rule names its thresholds, taken from the module's constants.
    assert f"{dimensionality.DIM_SMALL:g}" in RULES["manifold"]
    assert f"{factors.MUCH_LESS:g}" in RULES["architecture"]
    assert f"{corners.JOIN_BY * 100:g}" in RULES["corners"]


def test_a_judgement_becomes_the_claim_shown_to_the_reader():
    c = claim("speed", Judgement("inconclusive", {"ratio": 0.7}, "one family only"))
    assert (c.key, c.statement, c.verdict, c.rule, c.numbers, c.reason) == (
        "speed", CLAIMS["speed"], "inconclusive", RULES["speed"], {"ratio": 0.7}, "one family only")
    skipped = skipped_claim("corners", "no corner runs")
    assert (skipped.verdict, skipped.reason, skipped.rule) == ("skipped", "no corner runs", RULES["corners"])


@pytest.mark.parametrize("supported, refuted, verdict", [
    (True, False, "supported"), (False, True, "not supported"), (True, True, "not supported"),
    (False, False, "inconclusive")])
def test_refuted_wins_over_supported(supported, refuted, verdict):
    assert decide(supported=supported, refuted=refuted) == verdict


def test_judgements_refuse_unknown_verdicts_and_skips_without_a_reason():
    with pytest.raises(ValueError, match="verdict must be one of"):
        Judgement("probably")
    with pytest.raises(ValueError, match="needs a reason"):
        Judgement("skipped")


def test_rules_survive_python_without_docstrings():
    code = ("import deepmanifold.analysis as a; from deepmanifold.analysis.claims import RULES; "
            "assert a.analyze_store.__doc__ is None and all(len(r) > 80 for r in RULES.values())")
    out = subprocess.run([sys.executable, "-OO", "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
