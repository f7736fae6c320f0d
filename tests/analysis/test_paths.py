"""Trajectory-level analyses against planted truths: the geodesic as a run, group means by hand,
the joint probe as one product distribution, the heatmap's blocks."""

import json

import numpy as np
import pytest

from deepmanifold import geometry
from deepmanifold.analysis.paths import (GridUsed, geodesic_distance_by_group, joint_distances, joint_embedding,
                                         trajectory_heatmap, trajectory_inpca)
from deepmanifold.analysis.trajectories import (TrajectorySet, distance_to_geodesic_by_progress,
                                                probabilities_from_roots, trajectory_distance_matrix)

C, N = 4, 30
LABELS = np.random.default_rng(3).integers(0, C, size=N)
GRID = np.linspace(0.0, 1.0, 11)


def _bent(t, bend, shift=1):
    """Models at ``t`` whose ``sqrt p`` leaves the geodesic by ``bend sin(pi t)`` towards class
    ``label + shift`` on every sample (``bend = 0``: the geodesic itself)."""
    t = np.atleast_1d(np.asarray(t, dtype=float))
    root = np.sqrt(geometry.geodesic(LABELS, C, t))
    root[:, np.arange(N), (LABELS + shift) % C] += bend * np.sin(np.pi * t)[:, None]
    root /= np.linalg.norm(root, axis=-1, keepdims=True)
    return root**2


def _set(bends, configs=None, shifts=None):
    runs = [_bent(np.linspace(0.0, 1.0, 9) ** (1 + 0.5 * (r % 3)), b, 1 if shifts is None else shifts[r])
            for r, b in enumerate(bends)]
    return TrajectorySet.from_runs(runs, LABELS, GRID, configs=configs,
                                   run_labels=[f"run {r}" for r in range(len(runs))])


# ----------------------------------------------------------------------------- trajectory-level InPCA
def test_a_run_on_the_geodesic_embeds_at_the_geodesic():
    ts = _set([0.0, 0.0, 0.6, 0.9])
    emb = trajectory_inpca(ts)
    R = 4
    np.testing.assert_allclose(emb.distance_to_geodesic[:2], 0.0, atol=1e-9)
    np.testing.assert_allclose(emb.coords[:2], np.tile(emb.geodesic_coords, (2, 1)), atol=1e-6)
    np.testing.assert_allclose(emb.matrix[:R, :R], trajectory_distance_matrix(ts), atol=1e-12)
    # the bordering row: mean over the grid of d_B(P_r(t), γ(t)), by hand
    for r in (2, 3):
        hand = np.mean([geometry.bhattacharyya(probabilities_from_roots(ts.sqrt_p[r, g]),
                                               geometry.geodesic(LABELS, C, GRID[g])) for g in range(len(GRID))])
        assert emb.matrix[R, r] == pytest.approx(hand, rel=1e-9)
    assert emb.distance_to_geodesic[3] > emb.distance_to_geodesic[2] > 1e-3  # bent further
    assert emb.grid.to_dict() == {"name": "all", "points": 11, "low": 0.0, "high": 1.0}


def test_the_geodesic_is_compared_with_a_short_run_where_a_run_on_it_is():
    """A run that stops early meets the geodesic on the grid points where it meets a run that
    follows the geodesic to the end, whichever points those are."""
    short = _bent(np.array([0.0, 0.2, 0.4, 0.6]), 0.5)
    ts = TrajectorySet.from_runs([_bent(np.linspace(0, 1, 9), 0.0), short], LABELS, GRID)
    assert not ts.reached[1].all()
    emb = trajectory_inpca(ts, n_components=2)
    assert emb.matrix[2, 1] == pytest.approx(emb.matrix[0, 1], rel=1e-9)
    assert emb.matrix[2, 0] == pytest.approx(0.0, abs=1e-9)


def test_trajectory_inpca_over_part_of_the_grid():
    ts = _set([0.0, 0.5, 0.9])
    mask = GRID <= 0.5 + 1e-12
    emb = trajectory_inpca(ts, grid_mask=mask, grid_name="first half")
    np.testing.assert_allclose(emb.matrix[:3, :3], trajectory_distance_matrix(ts, grid_mask=mask), atol=1e-12)
    d = distance_to_geodesic_by_progress(ts)
    np.testing.assert_allclose(emb.distance_to_geodesic, d[:, mask].mean(axis=1), rtol=1e-6, atol=1e-12)
    assert emb.grid == GridUsed("first half", 6, 0.0, 0.5)
    out = json.loads(json.dumps(emb.to_dict()))
    assert [r["label"] for r in out["runs"]] == ["run 0", "run 1", "run 2"]
    assert out["runs"][1]["coords"] == pytest.approx(emb.coords[1].tolist())
    assert out["geodesic"]["coords"] == pytest.approx(emb.geodesic_coords.tolist())


def test_trajectory_inpca_refuses_runs_it_cannot_compare():
    ts = _set([0.0, 0.5, 0.9])
    D = trajectory_distance_matrix(ts)
    D[0, 1] = D[1, 0] = np.nan
    with pytest.raises(ValueError, match="run 0/run 1"):
        trajectory_inpca(ts, distances=D)
    with pytest.raises(ValueError, match="distances has shape"):
        trajectory_inpca(ts, distances=D[:2, :2])
    with pytest.raises(ValueError, match="grid_mask"):
        trajectory_inpca(ts, grid_mask=np.ones(3, dtype=bool))


# ----------------------------------------------------------------------------- by group
def test_group_means_are_the_means_of_their_runs():
    configs = [{"arch": "mlp", "optimizer": "sgd"}, {"arch": "mlp", "optimizer": "adam"},
               {"arch": "cnn", "optimizer": "sgd", "arch_options": {"width": 8}}, {"arch": "cnn"}]
    ts = _set([0.1, 0.4, 0.7, 0.8], configs=configs)
    d = distance_to_geodesic_by_progress(ts)
    res = geodesic_distance_by_group(ts, keys=["arch", "optimizer", "arch_options.width"])
    by = {k: {c.value: c for c in curves} for k, curves in res.groups.items()}
    assert list(by["arch"]) == ["cnn", "mlp"] and list(by["optimizer"]) == ["adam", "not set", "sgd"]
    np.testing.assert_allclose(by["arch"]["mlp"].mean, (d[0] + d[1]) / 2, rtol=1e-12)
    np.testing.assert_allclose(by["arch"]["cnn"].sd, np.std(d[[2, 3]], axis=0, ddof=1), rtol=1e-9, atol=1e-15)
    np.testing.assert_allclose(by["optimizer"]["sgd"].mean, (d[0] + d[2]) / 2, rtol=1e-12)
    np.testing.assert_allclose(by["optimizer"]["adam"].mean, d[1], rtol=1e-12)
    assert np.all(np.isnan(by["optimizer"]["adam"].sd)) and np.all(by["optimizer"]["adam"].n == 1)
    assert by["arch_options.width"]["8"].runs == [ts.run_ids[2]]
    assert by["arch"]["mlp"].runs == ts.run_ids[:2]
    kept = geodesic_distance_by_group(ts, keys="arch", members=np.array([True, False, True, True]))
    np.testing.assert_allclose({c.value: c for c in kept.groups["arch"]}["mlp"].mean, d[0], rtol=1e-12)
    json.dumps(res.to_dict())


def test_group_means_count_only_the_runs_that_reached_each_point():
    short = _bent(np.array([0.0, 0.1, 0.3, 0.5]), 0.3)
    ts = TrajectorySet.from_runs([_bent(np.linspace(0, 1, 9), 0.3), short], LABELS, GRID,
                                 configs=[{"arch": "a"}, {"arch": "a"}])
    curve = geodesic_distance_by_group(ts, keys=["arch"]).groups["arch"][0]
    d = distance_to_geodesic_by_progress(ts)
    late = ~ts.reached[1]  # past the short run's highest progress
    assert ts.reached[0].all() and 3 <= late.sum() <= 8
    np.testing.assert_array_equal(curve.n, np.where(late, 1, 2))
    np.testing.assert_allclose(curve.mean[late], d[0, late], rtol=1e-12)
    np.testing.assert_allclose(curve.mean[~late], d[:, ~late].mean(axis=0), rtol=1e-12)


# ----------------------------------------------------------------------------- joint embedding
def _models(T, n, seed):
    return np.random.default_rng(seed).dirichlet(np.full(C, 0.7), size=(T, n))


def test_joint_distance_is_the_distance_on_the_joined_samples():
    a, b = _models(7, 20, 1), _models(7, 5, 2)
    Da, Db = geometry.pairwise_distances(a), geometry.pairwise_distances(b)
    joined = geometry.pairwise_distances(np.concatenate([a, b], axis=1))
    np.testing.assert_allclose(joint_distances(Da, Db, 20, 5), joined, rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(joint_distances(Da, Db, 1, 1), (Da + Db) / 2)
    with pytest.raises(ValueError, match="n_b"):
        joint_distances(Da, Db, 20, 0)
    with pytest.raises(ValueError, match="same models"):
        joint_distances(Da, Db[:3, :3], 20, 5)


def test_joint_embedding_is_the_inpca_of_the_joined_probe():
    la, lb = LABELS[:20], LABELS[20:25]
    a, b = _models(7, 20, 1), _models(7, 5, 2)
    both, labels = np.concatenate([a, b], axis=1), np.concatenate([la, lb])
    Da, Db = geometry.pairwise_distances(a), geometry.pairwise_distances(b)
    run_index = np.array([0, 0, 0, 1, 1, 1, 1])
    emb = joint_embedding(Da, Db, 20, 5, run_index=run_index, run_ids=["x", "y"], models=(a, b),
                          labels=(la, lb), n_geodesic=5)
    direct = geometry.inpca(geometry.pairwise_distances(both), n_components=3)
    np.testing.assert_allclose(emb.coords, direct.coords, atol=1e-8)
    t = np.linspace(0, 1, 5)
    want = direct.transform(geometry.pairwise_distances(geometry.geodesic(labels, C, t), both))
    np.testing.assert_allclose(emb.geodesic_coords, want, atol=1e-8)
    with np.errstate(divide="ignore"):
        logged = joint_embedding(Da, Db, 20, 5, models=(np.log(a), np.log(b)), labels=(la, lb), log=True,
                                 n_geodesic=5)
    np.testing.assert_allclose(logged.geodesic_coords, want, atol=1e-8)
    out = json.loads(json.dumps(emb.to_dict()))
    assert [len(r["coords"]) for r in out["runs"]] == [3, 4]
    assert out["probes"] == ["train", "test"] and out["n_samples"] == [20, 5]
    assert joint_embedding(Da, Db, 20, 5).geodesic_coords.shape == (0, 3)


# ----------------------------------------------------------------------------- heatmap
def test_heatmap_puts_runs_of_one_path_side_by_side():
    ts = _set([0.6, 0.0, 0.6, 0.0, 0.6], shifts=[1, 1, 2, 1, 1])
    D = trajectory_distance_matrix(ts)
    grid = GridUsed.of(GRID, np.ones(len(GRID), dtype=bool), "all")
    hm = trajectory_heatmap(D, ts.run_ids, ts.run_labels, grid=grid)
    pos = {label: i for i, label in enumerate(hm.run_labels)}
    # runs 0 and 4 share one path, 1 and 3 another: each pair sits side by side
    assert abs(pos["run 0"] - pos["run 4"]) == 1 and abs(pos["run 1"] - pos["run 3"]) == 1
    np.testing.assert_allclose(hm.matrix, D[np.ix_(hm.order, hm.order)])
    assert hm.run_ids == [ts.run_ids[i] for i in hm.order]
    out = json.loads(json.dumps(hm.to_dict()))
    assert out["grid"]["points"] == 11 and len(out["matrix"]) == 5
    D[0, 2] = D[2, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        trajectory_heatmap(D, ts.run_ids, grid=grid)
