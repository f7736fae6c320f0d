"""examples/live_run.py: an own loop placed in a reference picture as it trains."""

import runpy
import sys
from pathlib import Path

from deepmanifold.store import Store

from .conftest import tree_hashes

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "live_run.py"


def test_the_example_places_each_checkpoint_and_commits(reference_store, tmp_path, monkeypatch, capsys):
    before = tree_hashes(reference_store)
    monkeypatch.setattr(sys, "argv", ["live_run.py", str(tmp_path / "mine"), "--reference", str(reference_store),
                                      "--epochs", "1"])
    runpy.run_path(str(EXAMPLE), run_name="__main__")
    lines = capsys.readouterr().out.splitlines()
    placed = [line for line in lines if line.startswith("step ")]
    assert len(placed) == 22 and "nearest reference run mlp-sgd-s" in placed[-1]  # steps 0..21: every one
    first, last = (float(line.split("progress ")[1].split(",")[0]) for line in (placed[0], placed[-1]))
    assert first < 0.05 < last
    (run_id,) = Store(tmp_path / "mine").run_ids()
    assert lines[-1] == f"committed {run_id} to {tmp_path / 'mine'}"
    assert tree_hashes(reference_store) == before
