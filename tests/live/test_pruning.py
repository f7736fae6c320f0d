"""Successive halving: its schedule and compute by hand, a score that knows the answer, and the replay example."""

import math
import runpy
import sys
from pathlib import Path

import pytest

from deepmanifold.live.pruning import successive_halving

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "pruning_replay.py"


def test_schedule_and_compute_by_hand():
    runs = [f"r{i}" for i in range(9)]
    final = {r: i for i, r in enumerate(runs)}  # r8 is the best
    result = successive_halving(runs, [1 / 9, 1 / 3, 1.0], 3, lambda r, f: final[r])
    assert result.survivors == [runs, ["r8", "r7", "r6"], ["r8"]]
    assert result.chosen == "r8"
    assert result.compute == pytest.approx((6 / 9 + 2 / 3 + 1.0) / 9)  # 6 runs to 1/9, 2 to 1/3, 1 to the end
    # A score that misleads early (the best starts last) loses the best run at the first rung.
    late = successive_halving(runs, [1 / 9, 1 / 3, 1.0], 3, lambda r, f: final[r] if f == 1 else -final[r])
    assert late.chosen != "r8" and "r8" not in late.survivors[1]
    assert math.isclose(late.compute, result.compute)
    with pytest.raises(ValueError, match="eta must be a number > 1"):
        successive_halving(runs, [0.5, 1.0], 1, lambda r, f: 0.0)
    with pytest.raises(ValueError, match="rungs must increase"):
        successive_halving(runs, [0.5, 0.2], 2, lambda r, f: 0.0)


def test_the_replay_example_compares_the_two_rules(reference_store, monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["pruning_replay.py", str(reference_store), "--rungs", "0.5", "1", "--eta", "2",
                                      "--hold-out", "run"])
    runpy.run_path(str(EXAMPLE), run_name="__main__")
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if line.startswith("| 2 |"))
    assert row.split("|")[2].strip() == "0.750"  # both runs to half, one to the end
