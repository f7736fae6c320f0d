"""Forecasting a run's end from the reference runs nearest at equal progress, and the power-law baseline."""

from __future__ import annotations

import math
import runpy
import sys
from pathlib import Path

import numpy as np
import pytest

from deepmanifold.live import ReferencePicture, forecast_run, power_law_forecast
from deepmanifold.analysis.speed import progress_milestones
from deepmanifold.store import Store

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "forecast_eval.py"


def first_crossing(t, values, level):
    """The epoch at which ``values`` first reaches ``level`` (NaN: never), as the forecast reads it."""
    epoch = progress_milestones(values, t, t, [level]).reached[0].epoch
    return math.nan if epoch is None else epoch


@pytest.fixture(scope="module")
def reference(reference_store):
    return ReferencePicture(reference_store)


def test_with_one_neighbour_the_forecast_is_that_run(reference, reference_store):
    a, b = reference.picture.runs
    logp = np.asarray(Store(reference_store).logp(a.run_id, "test"))
    seen = slice(0, 4)
    target = float(b.progress[-1]) * 0.9  # reached by b, not yet by a after 4 checkpoints
    assert a.progress[3] < target
    fc = forecast_run(reference, logp[seen], a.epochs[seen], k=3, targets=[target, float(a.progress[2])],
                      exclude=[a.run_id])
    assert fc.neighbours == [b.run_id] and len(fc.distances) == 1
    assert fc.final_test_acc == pytest.approx(b.metrics["test_acc"][-1])
    assert fc.final_progress == pytest.approx(b.progress[-1]) and fc.final_progress_range[0] == fc.final_progress_range[1]
    # b's epoch at the target, scaled by how fast a is relative to b at a's current progress.
    now = fc.progress_now
    scale = a.epochs[3] / first_crossing(b.epochs, b.progress, now)
    expected = max(a.epochs[3], scale * first_crossing(b.epochs, b.progress, target))
    assert fc.epoch_to_progress[target] == pytest.approx((expected,) * 3)
    # A progress the run has passed is answered with the epoch it was reached at.
    passed = float(a.progress[2])
    assert fc.epoch_to_progress[passed][0] == pytest.approx(first_crossing(a.epochs[seen], a.progress[seen], passed),
                                                            abs=1e-6)
    assert fc.progress_now == pytest.approx(a.progress[3], abs=1e-6) and fc.epoch_now == a.epochs[3]


def test_the_nearest_reference_run_is_the_run_itself(reference, reference_store):
    """Nothing excluded, a run is its own nearest reference (early checkpoints of almost equal progress may
    pair with a neighbouring checkpoint of the same run, so its distance is small, not 0)."""
    for run in reference.picture.runs:
        logp = np.asarray(Store(reference_store).logp(run.run_id, "test"))[:4]
        fc = forecast_run(reference, logp, run.epochs[:4], k=2)
        assert fc.neighbours[0] == run.run_id and fc.distances[0] < 0.1 * fc.distances[1]


def test_the_forecast_reads_the_same_pairs_from_a_full_distance_matrix(reference, reference_store):
    """Given a watcher's (K, T) distances, or computing only the pairs at equal progress: one forecast."""
    a, _ = reference.picture.runs
    logp = np.asarray(Store(reference_store).logp(a.run_id, "test"))[:5]
    own = forecast_run(reference, logp, a.epochs[:5], k=2)
    given = forecast_run(reference, logp, a.epochs[:5], k=2, distances=reference.distances(logp))
    assert own.neighbours == given.neighbours
    np.testing.assert_allclose(own.distances, given.distances, rtol=1e-9, atol=1e-15)  # float64 rounding


def test_forecast_refuses_bad_input(reference, reference_store):
    a, b = reference.picture.runs
    logp = np.asarray(Store(reference_store).logp(a.run_id, "test"))[:3]
    with pytest.raises(ValueError, match="epochs must be finite and increasing"):
        forecast_run(reference, logp, a.epochs[:3][::-1])
    with pytest.raises(ValueError, match=r"\(K, n, C\)"):
        forecast_run(reference, logp[0], a.epochs[:1])
    with pytest.raises(ValueError, match="targets must lie in"):
        forecast_run(reference, logp, a.epochs[:3], targets=[1.5])
    with pytest.raises(ValueError, match="no reference run is left"):
        forecast_run(reference, logp, a.epochs[:3], exclude=[a.run_id, b.run_id])
    with pytest.raises(ValueError, match="k must be"):
        forecast_run(reference, logp, a.epochs[:3], k=0)
    with pytest.raises(ValueError, match=r"needs \(K, 100, 10\)"):
        forecast_run(reference, logp[:, :50], a.epochs[:3])


def test_power_law_baseline_and_crossings():
    t = np.array([1.0, 2.0, 4.0, 8.0])
    y = 1.0 - 0.6 * t ** -0.5
    assert power_law_forecast(t, y, 100.0) == pytest.approx(1.0 - 0.06)  # extrapolated exactly
    assert power_law_forecast([0.0, 1.0], [0.1, 0.3], 10.0) == 0.3  # one usable point: the last value
    assert power_law_forecast([1.0, 2.0, 3.0], [0.5, 0.4, 0.3], 10.0) == 0.3  # getting worse: the last value
    assert first_crossing([0, 1, 2], [0.0, 0.2, 0.6], 0.4) == pytest.approx(1.5)
    assert first_crossing([0, 1, 2], [0.5, 0.6, 0.7], 0.4) == 0.0
    assert math.isnan(first_crossing([0, 1], [0.1, 0.2], 0.4))


def test_the_evaluation_example_runs_leave_one_out(reference_store, monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["forecast_eval.py", str(reference_store), "--fractions", "0.5", "--k", "1"])
    runpy.run_path(str(EXAMPLE), run_name="__main__")
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if "final test accuracy" in line)
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[:3] == ["50%", "final test accuracy", "2"]
    assert all(np.isfinite(float(c)) for c in cells[3:])
