"""Trajectories by progress, on runs built from the geodesic so every answer is known."""

import json
import re
import warnings

import numpy as np
import pytest
from scipy.cluster.hierarchy import fcluster
from scipy.optimize import brentq

from deepmanifold.analysis.trajectories import (
    TrajectorySet,
    config_dendrogram,
    discrete_frechet,
    distance_to_geodesic_by_progress,
    distance_to_run,
    frechet_distance,
    frechet_distance_matrix,
    mean_trajectory,
    probabilities_from_roots,
    resample_by_progress,
    trajectory_distance_matrix,
    tube_width,
)
from deepmanifold.geometry import bhattacharyya, geodesic, geodesic_between, pairwise_distances, progress
from deepmanifold.store import Store

C, N = 5, 40
LABELS = np.random.default_rng(0).integers(0, C, size=N)
GRID = np.linspace(0.0, 1.0, 21)


def _wrong(fraction, seed=1):
    """A wrong label for the first ``fraction`` of the samples (chosen by ``seed``), -1 elsewhere."""
    rng = np.random.default_rng(seed)
    wrong = np.full(N, -1)
    chosen = rng.permutation(N)[: int(round(fraction * N))]
    wrong[chosen] = (LABELS[chosen] + 1 + rng.integers(0, C - 1, size=chosen.size)) % C
    return wrong


def _path(t, wrong=None):
    """Models at parameters ``t`` of the geodesic, rotated per sample by swapping the
    true and the wrong class where ``wrong >= 0`` (a great circle of the sphere too,
    run at the same angular speed, so slerp between checkpoints stays on the path)."""
    P = geodesic(LABELS, C, np.atleast_1d(np.asarray(t, dtype=float)))
    if wrong is not None:
        i = np.flatnonzero(wrong >= 0)
        y, w = LABELS[i], wrong[i]
        P[:, i, y], P[:, i, w] = P[:, i, w].copy(), P[:, i, y].copy()
    return P


def _progress_of_path(s, wrong):
    return float(progress(_path(s, wrong)[0], LABELS))


def _expected_on_path(t, wrong):
    """Model of the rotated path whose progress is ``t`` (brentq on the parameter)."""
    s = brentq(lambda s: _progress_of_path(s, wrong) - t, 0.0, 0.999, xtol=1e-14)
    return _path(s, wrong)[0]


def test_geodesic_checkpoints_resample_to_the_geodesic():
    t_k = [0.0, 0.05, 0.2, 0.5, 0.9]
    P = _path(t_k)
    lam = progress(P, LABELS)
    res = resample_by_progress(P, lam, GRID, labels=LABELS)
    assert res.monotone and res.n_backtracks == 0
    np.testing.assert_array_equal(res.reached, GRID <= 0.9 + 1e-12)
    want = np.sqrt(geodesic(LABELS, C, GRID[res.reached]))
    np.testing.assert_allclose(res.sqrt_p[res.reached], want, atol=1e-6)
    # Above the highest progress the last checkpoint is held.
    np.testing.assert_array_equal(res.held, GRID > 0.9 + 1e-12)
    np.testing.assert_allclose(res.sqrt_p[res.held], np.sqrt(P[-1])[None].repeat(2, axis=0), atol=1e-7)
    assert np.all(res.checkpoint[res.held] == len(t_k) - 1)
    assert res.sqrt_p.dtype == np.float32 and res.residual.max() < 1e-8
    # Without labels: the linear fraction is exact on the geodesic; residual unknown.
    res2 = resample_by_progress(np.log(np.maximum(P, 1e-300)), lam, GRID, log=True)
    np.testing.assert_allclose(res2.sqrt_p, res.sqrt_p, atol=1e-6)
    assert np.all(np.isnan(res2.residual[res2.reached])) and np.all(res2.residual[~res2.reached] == 0)
    for method in ("angle", "bhattacharyya"):  # on the geodesic the two definitions agree
        res3 = resample_by_progress(P, lam, GRID, labels=LABELS, method=method)
        np.testing.assert_allclose(res3.sqrt_p, res.sqrt_p, atol=1e-6)

    ts = TrajectorySet.from_runs([P], LABELS, GRID)
    d = distance_to_geodesic_by_progress(ts, LABELS)
    assert np.all(np.isnan(d[0, ~ts.reached[0]]))
    np.testing.assert_allclose(d[0, ts.reached[0]], 0.0, atol=1e-7)


def test_same_path_at_different_speeds_has_zero_trajectory_distance():
    wrong = _wrong(0.2)
    runs = [_path([0.0, 0.1, 0.3, 0.6, 0.99]), _path([0.0, 0.02, 0.05, 0.4, 0.8, 0.99]),
            _path([0.0, 0.15, 0.35, 0.9, 0.99], wrong), _path([0.0, 0.01, 0.5, 0.7, 0.99], wrong)]
    ts = TrajectorySet.from_runs(runs, LABELS, GRID)
    D = trajectory_distance_matrix(ts)
    assert D.shape == (4, 4) and np.allclose(D, D.T)
    assert D[0, 1] < 1e-9 and D[2, 3] < 1e-9
    assert D[0, 2] > 1e-2
    assert np.all(ts.residual[ts.reached] < 1e-8)


def test_rotated_run_has_the_expected_distance():
    wrong = _wrong(0.25)
    rot = _path([0.0, 0.1, 0.25, 0.45, 0.7, 0.99], wrong)
    geo = _path([0.0, 0.3, 0.6, 0.99])
    ts = TrajectorySet.from_runs([geo, rot], LABELS, GRID)
    dgeo = distance_to_geodesic_by_progress(ts)
    common = ts.reached[0] & ts.reached[1]
    expected = np.full(GRID.shape, np.nan)
    for g in np.flatnonzero(ts.reached[1]):  # progress by the angle (the default)
        if GRID[g] == 0.0:
            expected[g] = 0.0
            continue
        Q = _expected_on_path(GRID[g], wrong)
        np.testing.assert_allclose(ts.sqrt_p[1, g], np.sqrt(Q), atol=2e-6)
        expected[g] = bhattacharyya(geodesic(LABELS, C, GRID[g]), Q)
    np.testing.assert_allclose(dgeo[1, ts.reached[1]], expected[ts.reached[1]], rtol=1e-5, atol=1e-7)
    assert expected[ts.reached[1]][1:].min() > 5e-4
    D = trajectory_distance_matrix(ts, include_held=False)
    np.testing.assert_allclose(D[0, 1], expected[common].mean(), rtol=1e-5)
    # Restricting the grid restricts the mean.
    mask = GRID <= 0.5
    np.testing.assert_allclose(trajectory_distance_matrix(ts, grid_mask=mask)[0, 1],
                               expected[common & mask].mean(), rtol=1e-5)


def test_non_monotone_progress_uses_the_first_crossing():
    wrong = _wrong(0.1, seed=2)  # progress along this path rises to ~0.71
    # geodesic up to 0.6, back (along the rotated path) below 0.5, then above again.
    s_back = brentq(lambda s: _progress_of_path(s, wrong) - 0.4, 0, 0.999)
    s_up = brentq(lambda s: _progress_of_path(s, wrong) - 0.68, 0, 0.999)
    P = np.concatenate([_path([0.0, 0.3, 0.6]), _path([s_back, s_up], wrong)])
    lam = progress(P, LABELS)
    np.testing.assert_allclose(lam, [0, 0.3, 0.6, 0.4, 0.68], atol=1e-8)
    res = resample_by_progress(P, lam, GRID, labels=LABELS)
    assert not res.monotone and res.n_backtracks == 1
    g5 = int(np.argmin(np.abs(GRID - 0.5)))
    # 0.5 is crossed first between checkpoints 1 and 2 (on the geodesic), later between 3 and 4.
    assert res.checkpoint[g5] == 1
    np.testing.assert_allclose(res.sqrt_p[g5], np.sqrt(geodesic(LABELS, C, 0.5)), atol=1e-6)
    g65 = int(np.argmin(np.abs(GRID - 0.65)))
    assert res.checkpoint[g65] == 3
    np.testing.assert_allclose(res.sqrt_p[g65], np.sqrt(_expected_on_path(0.65, wrong)), atol=2e-6)
    assert res.reached.sum() == np.sum(GRID <= 0.68)
    with pytest.warns(UserWarning, match="not monotone .*run-0 \\(1 backtracks\\)"):
        TrajectorySet.from_runs([P], LABELS, GRID)


def test_points_below_the_start_and_above_the_end_are_unreached():
    late = _path([0.2, 0.5, 0.7])
    early = _path([0.0, 0.1, 0.15])
    ts = TrajectorySet.from_runs([late, early], LABELS, GRID)
    np.testing.assert_array_equal(ts.reached[0], (GRID >= 0.2 - 1e-12) & (GRID <= 0.7 + 1e-12))
    np.testing.assert_array_equal(ts.reached[1], GRID <= 0.15 + 1e-12)
    # Above the highest progress the last checkpoint is held; below the first nothing is.
    np.testing.assert_array_equal(ts.held[0], GRID > 0.7 + 1e-12)
    np.testing.assert_array_equal(ts.held[1], GRID > 0.15 + 1e-12)
    assert not np.any(ts.held & ts.reached)
    assert np.all(ts.sqrt_p[0][GRID < 0.2 - 1e-12] == 0) and not np.isnan(ts.sqrt_p).any()
    D = trajectory_distance_matrix(ts, include_held=False)
    assert np.isnan(D[0, 1]) and np.isnan(D[1, 0]) and D[0, 0] == 0 and D[1, 1] == 0
    with pytest.raises(ValueError, match="NaN for 1 pair"):
        config_dendrogram(D, ["late", "early"])
    # With held points the early run's last model (γ(0.15)) meets the late run from 0.2 on.
    late_at = np.minimum(GRID[GRID >= 0.2 - 1e-12], 0.7)  # γ(t), then γ(0.7) held
    expected = np.mean(-np.log(np.cos((late_at - 0.15) * np.arccos(C**-0.5))))
    np.testing.assert_allclose(trajectory_distance_matrix(ts)[0, 1], expected, rtol=1e-5)


def test_tube_width_is_zero_for_identical_members_and_grows_with_spread():
    t_sets = [[0.0, 0.1, 0.4, 0.99], [0.0, 0.3, 0.6, 0.99], [0.0, 0.05, 0.2, 0.8, 0.99]]
    same = [_path(t) for t in t_sets]
    narrow = [_path(t, _wrong(f, seed=s)) for t, f, s in zip(t_sets, [0.0, 0.1, 0.1], [0, 2, 3])]
    wide = [_path(t, _wrong(f, seed=s)) for t, f, s in zip(t_sets, [0.0, 0.3, 0.3], [0, 2, 3])]
    ts = TrajectorySet.from_runs(same + narrow + wide, LABELS, GRID)
    w_same, w_narrow, w_wide = (tube_width(ts, list(range(i, i + 3))) for i in (0, 3, 6))
    inside = (GRID > 0) & (GRID < 0.45)  # progress along the 30%-wrong paths stops at ~0.47
    np.testing.assert_allclose(w_same[GRID <= 0.95], 0.0, atol=1e-9)
    assert np.all(w_narrow[inside] > 1e-4)
    assert np.all(w_wide[inside] > 1.5 * w_narrow[inside])
    # The mean of identical members is the member itself.
    mean, reached = mean_trajectory(ts, ["run-0", "run-1", "run-2"])
    np.testing.assert_allclose(mean[reached], ts.sqrt_p[0][reached], atol=1e-6)
    # Fewer than 2 members reaching a point: NaN.
    assert np.all(np.isnan(tube_width(ts, [0])))


def test_dendrogram_separates_two_planted_families():
    fam_a, fam_b = _wrong(0.2, seed=10), _wrong(0.2, seed=11)
    t_sets = [[0.0, 0.1, 0.4, 0.99], [0.0, 0.3, 0.6, 0.99], [0.0, 0.05, 0.2, 0.8, 0.99]]
    runs = [_path(t, fam_a) for t in t_sets] + [_path(t, fam_b) for t in t_sets]
    names = ["a0", "a1", "a2", "b0", "b1", "b2"]
    order = [0, 3, 1, 4, 2, 5]  # interleave so the grouping is not given by position
    ts = TrajectorySet.from_runs([runs[i] for i in order], LABELS, GRID, run_labels=[names[i] for i in order])
    D = trajectory_distance_matrix(ts)
    tree = config_dendrogram(D, ts.run_labels)
    as_json = json.loads(json.dumps(tree.to_dict(), allow_nan=False))
    assert as_json["names"] == ts.run_labels and as_json["leaf_names"] == tree.leaf_names
    np.testing.assert_array_equal(np.asarray(as_json["linkage"]), tree.linkage)
    clusters = fcluster(tree.linkage, 2, criterion="maxclust")
    groups = {name[0]: set() for name in ts.run_labels}
    for name, c in zip(ts.run_labels, clusters):
        groups[name[0]].add(int(c))
    assert all(len(v) == 1 for v in groups.values()) and groups["a"] != groups["b"]
    leaf_families = [name[0] for name in tree.leaf_names]
    assert leaf_families in (["a"] * 3 + ["b"] * 3, ["b"] * 3 + ["a"] * 3)


def _commit(store, run_id, P, *, status="complete"):
    with np.errstate(divide="ignore"):
        logp = np.log(P).astype(np.float32)
    k = len(P)
    metrics = {"step": np.arange(k) * 7, "epoch": np.arange(k) / 2.0}
    store.put_probe(fingerprint="fp", name="test", split="test", dataset="synthetic",
                    indices=np.arange(N), labels=LABELS)
    store.write_run(run_id, config={"arch": "mlp", "label": f"L-{run_id}"}, status=status, metrics=metrics,
                    logp={"test": logp}, probes={"test": "fp"})


def test_from_store(tmp_path):
    store = Store(tmp_path / "s")
    wrong = _wrong(0.2)
    _commit(store, "fast", _path([0.0, 0.3, 0.7, 1.0]))
    _commit(store, "slow", _path([0.0, 0.05, 0.1, 0.2, 0.4, 0.9]))
    _commit(store, "back", _path([0.0, 0.5, 0.3, 0.8], wrong))
    _commit(store, "dead", _path([0.0, 0.1]), status="diverged")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ts = TrajectorySet.from_store(store, "test", grid=GRID)
    messages = [str(w.message) for w in caught]
    assert any("left out of the trajectories: L-dead" in m for m in messages)
    assert any("not monotone" in m and "L-back" in m for m in messages)
    assert ts.run_ids == ["back", "fast", "slow"] and ts.run_labels == ["L-back", "L-fast", "L-slow"]
    assert ts.sqrt_p.shape == (3, len(GRID), N, C) and ts.sqrt_p.dtype == np.float32
    np.testing.assert_array_equal(ts.monotone, [False, True, True])
    np.testing.assert_array_equal(ts.steps[1], [0, 7, 14, 21])
    np.testing.assert_allclose(ts.progress[1], [0.0, 0.3, 0.7, 1.0], atol=1e-6)
    assert ts.reached[1].all() and ts.reached[2].sum() == np.sum(GRID <= 0.9 + 1e-12)
    D = trajectory_distance_matrix(ts, include_held=False)
    assert D[1, 2] < 1e-6 and D[0, 1] > 1e-3
    # "slow" stops at 0.9 and holds γ(0.9) above it: d_B(γ(t), γ(0.9)) = -ln cos((t - 0.9) θ) there.
    above = np.maximum(GRID - 0.9, 0.0)
    np.testing.assert_allclose(trajectory_distance_matrix(ts)[1, 2],
                               np.mean(-np.log(np.cos(above * np.arccos(C**-0.5)))), rtol=1e-4, atol=1e-9)
    dgeo = distance_to_geodesic_by_progress(ts)
    assert np.nanmax(dgeo[1:]) < 1e-6
    only = TrajectorySet.from_store(store, "test", grid=GRID, runs=["slow", "fast"])
    assert only.run_ids == ["slow", "fast"]
    with pytest.raises(ValueError, match="not usable.*dead"):
        TrajectorySet.from_store(store, "test", grid=GRID, runs=["dead"])


def test_probabilities_from_roots_renormalise_and_round_trip():
    rng = np.random.default_rng(3)
    p = rng.dirichlet(np.ones(C), size=(4, N))
    roots = np.sqrt(p)
    unit = roots / np.linalg.norm(roots, axis=-1, keepdims=True)
    np.testing.assert_array_equal(np.sqrt(np.square(unit)), unit)  # squaring loses nothing
    np.testing.assert_allclose(np.sqrt(probabilities_from_roots(roots)), unit, rtol=1e-15, atol=0)
    off = (roots * (1 + 1e-7 * rng.standard_normal((4, N, 1)))).astype(np.float32)  # float32 norms ~1 +- 1e-7
    q = probabilities_from_roots(off)
    assert q.dtype == np.float64 and np.abs(q.sum(-1) - 1).max() < 1e-15
    assert bhattacharyya(q[0], q[0]) < 1e-15
    zero = probabilities_from_roots(np.zeros((2, C), np.float32))
    assert np.all(zero == 0)


def test_dendrogram_of_one_leaf_and_bad_input():
    tree = config_dendrogram(np.zeros((1, 1)), ["only"])
    assert tree.to_dict() == {"linkage": [], "leaves": [0], "names": ["only"], "leaf_names": ["only"],
                              "icoord": [], "dcoord": [], "method": "complete"}
    D = np.array([[0.0, 1.0, 2.0], [1.0, 0.0, 3.0], [2.0, 3.0, 0.0]])
    assert config_dendrogram(D + np.eye(3), list("abc")).leaf_names == config_dendrogram(D, list("abc")).leaf_names
    with pytest.raises(ValueError, match="2 names for a 3 x 3 matrix"):
        config_dendrogram(D, ["a", "b"])
    with pytest.raises(ValueError, match="non-negative"):
        config_dendrogram(-D, list("abc"))
    with pytest.raises(ValueError, match="not symmetric"):
        config_dendrogram(D + np.triu(D), list("abc"))
    with pytest.raises(ValueError, match="square"):
        config_dendrogram(D[:2], list("abc"))


def test_sample_labels_are_checked():
    P = _path([0.0, 0.5])
    with pytest.raises(ValueError, match=re.escape(f"labels[3] = {C} is outside [0, {C})")):
        bad = LABELS.copy()
        bad[3] = C
        resample_by_progress(P, [0.0, 0.5], GRID, labels=bad)
    ts = TrajectorySet.from_runs([P], LABELS, GRID)
    with pytest.raises(ValueError, match=re.escape(f"labels has length {N - 1} but there are {N} samples")):
        distance_to_geodesic_by_progress(ts, LABELS[1:])


# --------------------------------------------------------------------------- one common grid


def _wrong_on(samples):
    """A wrong label on the given samples (the next class), -1 elsewhere."""
    wrong = np.full(N, -1)
    wrong[samples] = (LABELS[samples] + 1) % C
    return wrong


def test_common_grid_removes_the_bias_of_each_pair_own_range():
    """Three paths, each rotating its own 8 samples: by symmetry every pair is equally far
    apart at equal progress. A slow run (stopping at 0.3) compared only on its own range
    looks close to everyone (distances grow with progress); on the grid where all runs got,
    ts.common(1.0), the symmetry is restored; with held points it is compared everywhere."""
    groups = np.random.default_rng(5).permutation(N)[:24].reshape(3, 8)
    fast = [0.0, 0.05, 0.2, 0.4, 0.7, 0.99]
    runs = [_path(fast, _wrong_on(groups[0])), _path(fast, _wrong_on(groups[1])),
            _path([0.0, 0.1, 0.3], _wrong_on(groups[2]))]
    ts = TrajectorySet.from_runs(runs, LABELS, GRID)
    assert ts.progress_method == "angle"
    top = [lam.max() for lam in ts.progress]
    assert top[0] == pytest.approx(top[1]) and top[2] < 0.5 * top[0]
    own = trajectory_distance_matrix(ts, include_held=False)
    assert own[0, 2] < 0.5 * own[0, 1]  # the biased comparison
    everyone = ts.common(1.0)
    np.testing.assert_array_equal(everyone, GRID <= top[2] + 1e-12)
    on_common = trajectory_distance_matrix(ts, grid_mask=everyone)
    np.testing.assert_allclose(on_common[0, 2], on_common[0, 1], rtol=1e-5)
    np.testing.assert_allclose(on_common[1, 2], on_common[0, 1], rtol=1e-5)
    held = trajectory_distance_matrix(ts)
    assert held[0, 2] > own[0, 2] and np.all(ts.has_model()[:, GRID <= top[0]])
    # common(fraction): points truly reached by at least that share of runs (held ones do not count)
    np.testing.assert_array_equal(ts.common(0.6), GRID <= top[0] + 1e-12)
    np.testing.assert_array_equal(ts.common(), ts.common(1.0))  # 0.9 of 3 runs is 3
    with pytest.raises(ValueError, match="fraction must lie in"):
        ts.common(0.0)


@pytest.mark.parametrize("method", ["angle", "bhattacharyya"])
def test_resampling_solves_the_chosen_progress(method):
    """Off the geodesic the two definitions differ; each resampling has its own progress exactly."""
    wrong = _wrong(0.25)
    run = _path([0.0, 0.1, 0.3, 0.6, 0.99], wrong)
    ts = TrajectorySet.from_runs([run], LABELS, GRID, method=method)
    assert ts.progress_method == method
    np.testing.assert_allclose(ts.progress[0], progress(run, LABELS, method=method), atol=1e-12)
    g = np.flatnonzero(ts.reached[0] & (GRID > 0))
    got = progress(probabilities_from_roots(ts.sqrt_p[0, g]), LABELS, method=method)
    np.testing.assert_allclose(got, GRID[g], atol=1e-6)  # float32 storage of the roots
    assert np.all(ts.residual[0, g] < 1e-9)
    other = "bhattacharyya" if method == "angle" else "angle"
    assert np.abs(progress(probabilities_from_roots(ts.sqrt_p[0, g]), LABELS, method=other) - GRID[g]).max() > 0.01
    with pytest.raises(ValueError, match="method must be one of"):
        TrajectorySet.from_runs([run], LABELS, GRID, method="cosine")


# --------------------------------------------------------------------------- without resampling


def _brute_frechet(cost):
    """Min over all monotone couplings of the max cost on it, by enumerating the paths."""
    K, L = cost.shape
    best = np.inf

    def walk(i, j, worst):
        nonlocal best
        worst = max(worst, cost[i, j])
        if worst >= best:
            return
        if (i, j) == (K - 1, L - 1):
            best = worst
            return
        for di, dj in ((1, 0), (0, 1), (1, 1)):
            if i + di < K and j + dj < L:
                walk(i + di, j + dj, worst)

    walk(0, 0, -np.inf)
    return best


def test_discrete_frechet_against_enumeration_of_couplings():
    rng = np.random.default_rng(8)
    for K, L in [(1, 1), (1, 4), (3, 1), (2, 5), (4, 4), (5, 3), (6, 6)]:
        for _ in range(5):
            cost = rng.random((K, L))
            assert discrete_frechet(cost) == _brute_frechet(cost)
    with pytest.raises(ValueError, match="cost must be a non-empty 2-D"):
        discrete_frechet(np.zeros((0, 3)))
    with pytest.raises(ValueError, match="finite"):
        discrete_frechet([[np.nan]])


def test_frechet_distance_between_runs():
    wrong = _wrong(0.2)
    a = _path([0.0, 0.1, 0.3, 0.6, 0.99])
    b = _path([0.0, 0.1, 0.3, 0.6, 0.99], wrong)
    assert frechet_distance(a, a) < 1e-15  # d_B of a model with itself, up to rounding
    # Reparametrisation: repeating checkpoints (a run that pauses) changes nothing.
    a_paused = a[[0, 0, 1, 2, 2, 2, 3, 4, 4]]
    assert frechet_distance(a, a_paused) < 1e-15
    assert frechet_distance(b, a_paused) == pytest.approx(frechet_distance(b, a), rel=1e-12)
    # A leash at least the distance of the two starts and of the two ends.
    d = frechet_distance(a, b)
    assert d >= max(bhattacharyya(a[0], b[0]), bhattacharyya(a[-1], b[-1])) - 1e-15 and d > 1e-3
    assert d == discrete_frechet(pairwise_distances(a, b))
    with np.errstate(divide="ignore"):
        assert frechet_distance(np.log(a), np.log(b), log=True) == pytest.approx(d, rel=1e-9)
    M = frechet_distance_matrix([a, b, a_paused])
    np.testing.assert_allclose(M, [[0, d, 0], [d, 0, d], [0, d, 0]], rtol=1e-12, atol=1e-15)


def test_distance_to_a_run_along_its_great_circles():
    run = _path([0.0, 0.2, 0.5, 0.9])
    # A model on the run's path: distance 0 at the right arc and fraction.
    on = geodesic(LABELS, C, 0.35)  # 0.35 is half-way from 0.2 to 0.5 along the geodesic arc
    res = distance_to_run(on, run)
    assert res.distance[0] < 1e-12 and res.checkpoint[0] == 1 and res.fraction[0] == pytest.approx(0.5, abs=1e-9)
    assert distance_to_run(on, run, path="checkpoints").distance[0] > 1e-3  # no checkpoint is there
    # Off the path: the brute-force minimum over fine slerps of every arc.
    wrong = _wrong(0.3, seed=4)
    off = _path([0.4], wrong)[0]
    res = distance_to_run(np.stack([off, run[2]]), run)
    us = np.linspace(0, 1, 2001)
    brute = min(bhattacharyya(off, geodesic_between(run[k], run[k + 1], us)).min() for k in range(3))
    assert res.distance[0] <= brute + 1e-12 and res.distance[0] == pytest.approx(brute, abs=1e-7)
    assert res.distance[1] < 1e-12  # a checkpoint itself
    ck = distance_to_run(off, run, path="checkpoints")
    assert ck.distance[0] >= res.distance[0]
    assert ck.distance[0] == pytest.approx(bhattacharyya(off, run).min(), rel=1e-12)
    assert res.to_dict()["path"] == "great_circles"
    with pytest.raises(ValueError, match="path must be one of"):
        distance_to_run(off, run, path="linear")
