"""Claim 3 (wider = same path, faster) on planted runs whose milestones are known in closed form."""

import json
import math

import numpy as np
import pytest
import scipy.stats

from deepmanifold.analysis.speed import (Milestone, RunProgress, Spearman, progress_milestones, same_path, spearman,
                                         speed_by_width)

STEPS_PER_EPOCH = 100
EPOCHS = np.linspace(0.0, 120.0, 4801)  # dense: 0.025 epoch between checkpoints
TAU = {1: 30.0, 2: 16.0, 4: 9.0, 8: 5.0}  # wider trains faster


def _run(run_id, arch, width, tau, epochs=EPOCHS):
    return RunProgress(run_id=run_id, arch=arch, width=width, progress=1.0 - np.exp(-epochs / tau),
                       epochs=epochs, steps=epochs * STEPS_PER_EPOCH)


def test_milestones_match_closed_form():
    tau = 7.0
    r = _run("a", "mlp", 1, tau)
    ms = progress_milestones(r.progress, r.epochs, r.steps)
    assert ms.levels == (0.5, 0.9) and set(ms.to_dict()) == {"0.5", "0.9"}
    for level in (0.5, 0.9):
        exact = -tau * math.log(1.0 - level)
        assert ms[level].epoch == pytest.approx(exact, abs=1e-4)
        assert ms[f"{level:g}"].step == pytest.approx(exact * STEPS_PER_EPOCH, abs=1e-2)
    with pytest.raises(KeyError):
        ms[0.7]


def test_milestones_first_crossing_unreached_and_order():
    progress = np.array([0.0, 0.4, 0.6, 0.3, 0.95, np.nan])
    epochs = np.array([0.0, 1.0, 2.0, 3.0, 4.0, 5.0])
    steps = epochs * 10
    ms = progress_milestones(progress, epochs, steps, levels=(0.5, 0.9, 0.99))
    assert ms[0.5].epoch == pytest.approx(1.5)  # first crossing, the later dip ignored
    assert ms[0.5].step == pytest.approx(15.0)
    assert ms[0.9].epoch == pytest.approx(3.0 + 0.6 / 0.65)
    assert ms[0.99] == Milestone(None, None)
    assert ms.to_dict()["0.99"] == {"epoch": None, "step": None}
    # checkpoints given out of order are sorted by step
    perm = np.array([4, 0, 2, 1, 3, 5])
    assert progress_milestones(progress[perm], epochs[perm], steps[perm], (0.5, 0.9, 0.99)) == ms
    # a level already reached at the first checkpoint
    assert progress_milestones([0.7, 0.8], [0, 1], [0, 5], (0.5,))[0.5] == Milestone(0.0, 0.0)
    with pytest.raises(ValueError):
        progress_milestones([0.1, 0.2], [0, 1], [0, 1, 2])
    with pytest.raises(ValueError):
        progress_milestones([0.1, 0.2], [0, 1], [0, 1], levels=(0.0,))


def test_speed_by_width_planted_trend():
    runs = [_run(f"mlp-w{w}-s{s}", "mlp", w, tau) for w, tau in TAU.items() for s in range(2)]
    runs += [_run(f"cnn-w{w}-s{s}", "cnn", w, 1.5 * tau) for w, tau in TAU.items() for s in range(2)]
    runs.append(_run("vit-s0", "vit", 3, 10.0))
    out = speed_by_width(runs)
    as_json = json.loads(json.dumps(out.to_dict(), allow_nan=False))
    assert as_json["architectures"]["mlp"]["trend"]["epochs"]["rho"] == pytest.approx(-1.0)
    assert out.levels == [0.5, 0.9] and out.trend_level == 0.9
    assert set(out.architectures) == {"mlp", "cnn"}
    assert "vit" in out.skipped and "single width" in out.skipped["vit"]
    mlp = out.architectures["mlp"]
    assert [e.width for e in mlp.widths] == [1, 2, 4, 8]
    for e in mlp.widths:
        tau = TAU[e.width]
        assert e.n_runs == 2 and len(e.epochs["0.9"].values) == 2
        assert e.epochs["0.9"].mean == pytest.approx(-tau * math.log(0.1), abs=1e-3)
        assert e.epochs["0.5"].mean == pytest.approx(tau * math.log(2.0), abs=1e-3)
        assert e.steps["0.9"].mean == pytest.approx(-tau * math.log(0.1) * STEPS_PER_EPOCH, abs=0.1)
    for arch in ("mlp", "cnn"):
        for unit in ("epochs", "steps"):
            t = out.architectures[arch].trend[unit]
            assert t.rho == pytest.approx(-1.0) and t.n == 8
            assert t.rho_width_means == pytest.approx(-1.0) and t.n_widths == 4
            assert t.n_not_reached == 0


def test_speed_by_width_unreached_runs_are_counted_not_ranked():
    short = np.linspace(0.0, 20.0, 801)
    runs = [_run("w1", "mlp", 1, 30.0, short),  # never reaches 0.9 in 20 epochs
            _run("w2", "mlp", 2, 8.0, short), _run("w4", "mlp", 4, 4.0, short),
            _run("w8", "mlp", 8, 2.0, short), _run("nowidth", "mlp", None, 3.0, short)]
    out = speed_by_width(runs)
    t = out.architectures["mlp"].trend["epochs"]
    assert t.n == 3 and t.n_not_reached == 1 and t.rho == pytest.approx(-1.0)
    assert out.skipped_runs == [("nowidth", "no width")]
    assert out.to_dict()["skipped_runs"] == [{"run_id": "nowidth", "reason": "no width"}]


def test_spearman_edge_cases():
    assert spearman([1, 2, 3], [3, 2, 1]).rho == pytest.approx(-1.0)
    assert spearman([1, 2, 3], [5, 5, 5]).rho is None
    assert spearman([1.0], [2.0]) == Spearman(None, 1, "fewer than 2 finite pairs")
    assert spearman([1, 2, np.nan, 4], [1, 2, 3, 4]).n == 3
    # against SciPy on a case with ties
    x, y = [1, 2, 2, 3, 5, 4], [2, 1, 4, 3, 6, 6]
    assert spearman(x, y).rho == pytest.approx(scipy.stats.spearmanr(x, y).statistic)


def test_same_path_planted_distances():
    rng = np.random.default_rng(0)
    archs, widths = [], []
    for a in ("mlp", "cnn"):
        for w in (1, 2, 4):
            for _ in range(2):
                archs.append(a)
                widths.append(w)
    R = len(archs)
    D = np.empty((R, R))
    for i in range(R):
        for j in range(R):
            D[i, j] = (0.01 if archs[i] == archs[j] else 1.0) * (1 + 0.1 * rng.random())
    np.fill_diagonal(D, 0.0)
    D[0, 1] = np.nan  # a missing pair is skipped
    out = same_path(D, archs, widths)
    assert json.loads(json.dumps(out.to_dict()))["diff_arch"]["n_pairs"] == 36
    assert out.same_arch_diff_width.n_pairs == 2 * 12
    assert out.diff_arch.n_pairs == 36
    assert out.same_arch_same_width.n_pairs == 2 * 3 - 1
    assert out.n_missing == 1
    assert out.ratio == pytest.approx(out.same_arch_diff_width.mean / out.diff_arch.mean)
    assert out.ratio < 0.05 and out.reason == ""
    assert out.by_arch["mlp"].ratio < 0.05 and out.by_arch["cnn"].to_other_archs.n_pairs == 36


def test_same_path_without_pairs_gives_reason():
    D = np.array([[0.0, 0.3], [0.3, 0.0]])
    out = same_path(D, ["mlp", "mlp"], [1, 2])
    assert out.ratio is None and "different architectures" in out.reason
    assert "different architectures" in out.to_dict()["reason"]
    out = same_path(D, ["mlp", "cnn"], [1, 1])
    assert out.ratio is None and "different widths" in out.reason
    with pytest.raises(ValueError):
        same_path(np.zeros((2, 3)), ["a", "b"], [1, 1])
