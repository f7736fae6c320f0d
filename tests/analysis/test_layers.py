"""The per-layer summaries and the where-learning-happens rule, on planted cases with known answers."""

import math

import numpy as np
import pytest
from scipy import stats

from deepmanifold.analysis.layers import RunLayers, collapse_onset, judge_where_learning


def _gains(n_runs, L, slope, noise, seed):
    rng = np.random.default_rng(seed)
    depth = np.linspace(0, 1, L)
    return [0.01 + slope * depth + noise * rng.standard_normal(L) for _ in range(n_runs)]


def test_gains_growing_with_depth_are_supported():
    j = judge_where_learning(_gains(12, 4, slope=0.05, noise=0.005, seed=0))
    assert j.verdict == "supported"
    assert j.numbers["later_gains_more"] == 12
    assert j.numbers["p_later"] == pytest.approx(0.5**12)


def test_gains_falling_with_depth_are_not_supported():
    j = judge_where_learning(_gains(12, 5, slope=-0.05, noise=0.005, seed=1))
    assert j.verdict == "not supported"
    assert j.numbers["earlier_gains_more"] == 12


def test_gains_without_a_depth_trend_are_inconclusive():
    j = judge_where_learning(_gains(10, 4, slope=0.0, noise=0.01, seed=2))
    assert j.verdict == "inconclusive"
    later = j.numbers["later_gains_more"]
    assert j.numbers["p_later"] == pytest.approx(stats.binom.sf(later - 1, j.numbers["runs"], 0.5))


def test_halves_leave_out_the_middle_layer_and_count_ties_for_neither():
    # Layers 1-2 gain 0, layer 3 (middle, left out) gains 10, layers 4-5 gain 0: a tie.
    j = judge_where_learning([np.array([0.0, 0.0, 10.0, 0.0, 0.0]), np.array([0.0, 1.0]), np.array([np.nan, 3.0])])
    assert j.numbers["runs"] == 1 and j.numbers["later_gains_more"] == 1


def test_no_run_with_two_layers_is_skipped():
    assert judge_where_learning([np.array([1.0])]).verdict == "skipped"


def test_collapse_onset_is_the_first_checkpoint_below_half_the_initial_nc1():
    nc1 = np.array([[9.0, 4.0, 1.0], [8.0, 3.0, 1.0], [7.0, 1.9, 1.0], [6.0, 0.5, 1.0]])  # layer 2 is the last hidden
    run = RunLayers(run_id="r", label="r", layers=["a", "b", "head"], epochs=np.arange(4.0),
                    progress=np.array([0.0, 0.3, 0.6, 0.9]), values={"collapse_nc1": nc1},
                    train_acc=np.array([0.1, 0.9, 0.99, 1.0]))
    onset = collapse_onset(run)
    assert onset["layer"] == "b"
    assert onset["epoch"] == 2.0 and onset["progress"] == pytest.approx(0.6)
    assert onset["terminal_epoch"] == 3.0 and onset["terminal_progress"] == pytest.approx(0.9)
    never = collapse_onset(run, layer=2)
    assert never["epoch"] is None and never["progress"] is None


def test_summary_reports_gain_and_compression():
    alpha = np.array([[0.1, 0.2], [0.15, 0.5], [0.12, 0.6]])
    ixt = np.array([[3.0, 5.0], [4.0, 6.0], [3.5, 6.0]])
    run = RunLayers(run_id="r", label="r", layers=["a", "b"], epochs=np.arange(3.0), progress=np.full(3, math.nan),
                    values={"capacity_alpha": alpha, "infoplane_ixt_binning": ixt}, train_acc=np.zeros(3))
    s = run.summary()
    np.testing.assert_allclose(s["capacity_gain"], [0.02, 0.4])
    np.testing.assert_allclose(s["compression_binning"], [0.5, 0.0])
    assert s["quantities"]["capacity_alpha"]["max"] == [0.15, 0.6]


def test_summary_reads_around_the_rows_a_sparse_measurement_left_nan():
    nan = math.nan
    alpha = np.array([[0.1, 0.2], [nan, nan], [0.3, 0.5], [nan, nan]])  # measured at checkpoints 0 and 2
    run = RunLayers(run_id="r", label="r", layers=["a", "b"], epochs=np.arange(4.0), progress=np.full(4, nan),
                    values={"capacity_alpha": alpha}, train_acc=np.zeros(4))
    s = run.summary()
    np.testing.assert_allclose(s["capacity_gain"], [0.2, 0.3])
    assert s["quantities"]["capacity_alpha"]["last"] == [0.3, 0.5]
