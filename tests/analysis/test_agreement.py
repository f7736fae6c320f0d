"""Train/test agreement: run × run pictures at equal progress calibrated by split-half reliability (the
rule, with planted sweeps where it must say yes and no), and the checkpoint-level Mantel test and Procrustes fit."""

import dataclasses
import json

import numpy as np
import pytest
from scipy.stats import ortho_group

from deepmanifold import geometry
from deepmanifold.analysis.agreement import (RULE, TRAIN_TEST_ARCH_CLUSTERS, TRAIN_TEST_ARI, TRAIN_TEST_CALIBRATED, TRAIN_TEST_MIN_RELIABILITY,
                                             TRAIN_TEST_P_VALUE, TRAIN_TEST_REFUTED, TRAIN_TEST_SPLITS,
                                             distance_matrix_on_samples, equal_progress_agreement, judge, mantel,
                                             procrustes_fit, procrustes_residual, split_half_reliability,
                                             train_test_agreement)
from deepmanifold.analysis.trajectories import TrajectorySet, trajectory_distance_matrix

RNG = np.random.default_rng(0)
C = 10


def _models(T, n, seed):
    return np.random.default_rng(seed).dirichlet(np.ones(C), size=(T, n))


@pytest.fixture(scope="module")
def mats():
    return geometry.pairwise_distances(_models(30, 40, 1)), geometry.pairwise_distances(_models(30, 40, 2))


def test_matrix_agrees_with_itself(mats):
    A, _ = mats
    out = train_test_agreement(A, A, n_permutations=199)
    assert json.loads(json.dumps(out.to_dict()))["procrustes"]["n_components"] == 3
    m = out.mantel
    assert m.pearson == pytest.approx(1.0) and m.spearman == pytest.approx(1.0)
    assert m.p_pearson == pytest.approx(1 / 200) and m.p_spearman == pytest.approx(1 / 200)
    assert m.n_pairs == 30 * 29 // 2 and m.n_permutations == 199
    assert out.procrustes.residual == pytest.approx(0.0, abs=1e-10)
    assert out.procrustes.scale_test_over_train == pytest.approx(1.0)


def test_scaled_and_monotone_transforms(mats):
    A, _ = mats
    out = train_test_agreement(A, 2.0 * A, n_permutations=99)
    assert out.mantel.pearson == pytest.approx(1.0)
    assert out.procrustes.residual == pytest.approx(0.0, abs=1e-10)
    assert out.procrustes.scale_test_over_train == pytest.approx(np.sqrt(2.0))
    m = mantel(A, A**3, n_permutations=99)
    assert m.spearman == pytest.approx(1.0) and m.pearson < 1.0


def test_unrelated_matrices_do_not_agree(mats):
    A, B = mats
    out = train_test_agreement(A, B, n_permutations=499, random_state=3)
    m = out.mantel
    assert abs(m.pearson) < 0.2 and abs(m.spearman) < 0.2
    assert m.p_pearson > 0.02 and m.p_spearman > 0.02
    assert out.procrustes.residual > 0.5


def test_planted_shared_structure_is_detected():
    # same models seen through two noisy sample sets: distances share structure
    T, n = 25, 200
    base = RNG.normal(size=(T, 1, C)) * 2.0
    logits_tr = base + 0.5 * RNG.normal(size=(T, n, C))
    logits_te = base + 0.5 * RNG.normal(size=(T, n, C))
    softmax = lambda z: np.exp(z) / np.exp(z).sum(-1, keepdims=True)  # noqa: E731
    A = geometry.pairwise_distances(softmax(logits_tr))
    B = geometry.pairwise_distances(softmax(logits_te))
    out = train_test_agreement(A, B, n_permutations=199)
    assert out.mantel.pearson > 0.9 and out.mantel.p_pearson <= 0.01
    assert out.procrustes.residual < 0.1


def test_procrustes_residual_of_rotated_and_flipped_embedding():
    X = RNG.normal(size=(20, 4)) * [3.0, 2.0, 1.0, 0.5]
    Q = ortho_group.rvs(4, random_state=1)
    assert procrustes_residual(X, 5.0 * X @ Q + 7.0) == pytest.approx(0.0, abs=1e-12)
    flip = X * [1, -1, -1, 1]
    assert procrustes_residual(X, flip) == pytest.approx(0.0, abs=1e-12)
    # with signatures: rotations within the space-like block and sign flips are free ...
    sig = np.array([1, 1, 1, -1])
    R = np.eye(4)
    R[:3, :3] = ortho_group.rvs(3, random_state=2)
    R[3, 3] = -1.0
    assert procrustes_residual(X, X @ R, signature_x=sig, signature_y=sig) == pytest.approx(0.0, abs=1e-12)
    # ... but mixing a space-like with a time-like axis is not an isometry
    c, s = np.cos(0.7), np.sin(0.7)
    mix = np.eye(4)
    mix[np.ix_([2, 3], [2, 3])] = [[c, -s], [s, c]]
    assert procrustes_residual(X, X @ mix) == pytest.approx(0.0, abs=1e-12)
    assert procrustes_residual(X, X @ mix, signature_x=sig, signature_y=sig) > 1e-3
    # an unrelated configuration leaves a large residual; residual is within [0, 1]
    fit = procrustes_fit(X, RNG.normal(size=(20, 4)))
    assert 0.2 < fit.residual <= 1.0
    assert fit.aligned.shape == fit.target.shape == (20, 4)
    # the fit's own residual is the squared distance between what it aligned
    assert np.sum((fit.aligned - fit.target) ** 2) == pytest.approx(fit.residual, abs=1e-12)
    with pytest.raises(ValueError):
        procrustes_residual(X, X[:5])
    with pytest.raises(ValueError):
        procrustes_residual(X, X, signature_x=sig)
    with pytest.raises(ValueError):
        procrustes_residual(np.ones((5, 2)), X[:5, :2])


def test_mantel_constant_matrix_and_validation(mats):
    A, _ = mats
    Z = np.ones_like(A) - np.eye(A.shape[0])
    m = mantel(A, Z, n_permutations=9)
    assert m.pearson is None and m.p_pearson == 1.0
    assert json.loads(json.dumps(m.to_dict()))["pearson"] is None
    with pytest.raises(ValueError):
        mantel(A, A[:5, :5])
    with pytest.raises(ValueError):
        train_test_agreement(A, A, n_components=0)


# ----------------------------------------------------------------------------- at equal progress
# A planted sweep: sample i has features x_i and a label y_i; run r has weights W_r = W_arch + noise and,
# at parameter s in [0, 1], logits 6 s e_y + amp sin(πs) W_r x: from ignorance towards the labels, with a
# detour that is a property of the run (its weights), not of the samples. Two probes are two sample sets
# from one distribution, so they see the same runs; a second sweep with its own weights is unrelated.
NC, NF = 4, 6
S_CKPT = np.linspace(0.0, 1.0, 16) ** 1.5  # one checkpoint schedule for every run
TGRID = np.linspace(0.0, 1.0, 21)
ARCH = [r // 4 for r in range(12)]  # 3 architectures x 4 seeds
CONFIGS = [{"arch": f"a{a}", "seed": r % 4} for r, a in enumerate(ARCH)]
IDS = [f"r{r}" for r in range(12)]


def _probe(n, seed):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, NF)), rng.integers(0, NC, n)


def _weights(seed, arch_of, spread=0.5):
    rng = np.random.default_rng(seed)
    Wa = rng.normal(size=(max(arch_of) + 1, NC, NF))
    return [Wa[a] + spread * rng.normal(size=(NC, NF)) for a in arch_of]


def _runs(W, probe, amp=0.5):
    x, y = probe
    out = []
    for Wr in W:
        z = 6.0 * S_CKPT[:, None, None] * np.eye(NC)[y] + amp * np.sin(np.pi * S_CKPT)[:, None, None] * (x @ Wr.T)
        p = np.exp(z - z.max(-1, keepdims=True))
        out.append(p / p.sum(-1, keepdims=True))
    return out


def _trajectories(runs, probe, configs=CONFIGS):
    return TrajectorySet.from_runs(runs, probe[1], TGRID, run_ids=IDS, configs=configs)


@pytest.fixture(scope="module")
def sweeps():
    train, test = _probe(100, 1), _probe(200, 2)
    WA, WB = _weights(10, ARCH), _weights(11, [r % 3 for r in range(12)])
    raw = {"A_train": _runs(WA, train), "A_test": _runs(WA, test), "B_test": _runs(WB, test)}
    ts = {"A_train": _trajectories(raw["A_train"], train), "A_test": _trajectories(raw["A_test"], test),
          "B_test": _trajectories(raw["B_test"], test)}
    return raw, ts


def test_matrix_on_samples_is_the_mean_of_its_halves(sweeps):
    _, ts = sweeps
    t = ts["A_test"]
    full = trajectory_distance_matrix(t)
    np.testing.assert_array_equal(distance_matrix_on_samples(t), full)
    n = t.sqrt_p.shape[2]
    perm = np.random.default_rng(0).permutation(n)
    A = distance_matrix_on_samples(t, np.sort(perm[: n // 2]))
    B = distance_matrix_on_samples(t, perm[n // 2:])
    # d_B is a mean over samples: two halves of an even probe average to the whole
    np.testing.assert_allclose((A + B) / 2, full, rtol=1e-9, atol=1e-12)
    mask = np.zeros(n, dtype=bool)
    mask[perm[: n // 2]] = True
    np.testing.assert_array_equal(distance_matrix_on_samples(t, mask), A)
    for bad in ([], [n], np.zeros(3, dtype=bool), [[0, 1]]):
        with pytest.raises(ValueError, match="samples"):
            distance_matrix_on_samples(t, bad)


def test_split_half_reliability_is_spearman_brown_of_the_halves(sweeps):
    _, ts = sweeps
    rel = split_half_reliability(ts["A_test"], n_splits=5, random_state=3)
    r = rel.half_correlation
    np.testing.assert_allclose(rel.reliability, 2 * r / (1 + r), rtol=1e-12)
    assert rel.n_splits == 5 and rel.n_samples == 100
    assert rel.median == pytest.approx(np.median(rel.reliability)) and rel.low <= rel.median <= rel.high
    assert 0.9 < rel.median < 1.0  # 200 samples see the planted run structure clearly
    again = split_half_reliability(ts["A_test"], n_splits=5, random_state=3)
    np.testing.assert_array_equal(again.reliability, rel.reliability)
    json.dumps(rel.to_dict(), allow_nan=False)
    with pytest.raises(ValueError, match="n_splits"):
        split_half_reliability(ts["A_test"], n_splits=0)


def test_power_same_sweep_on_two_probes_is_supported(sweeps):
    _, ts = sweeps
    res = equal_progress_agreement(ts["A_train"], ts["A_test"], n_splits=10, n_permutations=199)
    j = judge(res)
    assert j.verdict == "supported", j
    assert res.r > 0.95 and res.mantel.p_pearson == pytest.approx(1 / 200)
    assert 0.9 < res.calibrated < 1.1 and res.calibrated_low <= res.calibrated <= res.calibrated_high
    assert res.clusters.ari == 1.0 and res.clusters.ari_train_architecture == 1.0 and res.clusters.n_clusters == 3
    assert res.top_factor_train == res.top_factor_test == "arch"
    assert res.D_train.shape == (12, 12) and "21 of 21 grid points" in res.grid and res.include_held
    out = json.loads(json.dumps(res.to_dict(), allow_nan=False))
    assert out["n_runs"] == 12 and out["clusters"]["ari"] == 1.0 and "D_train" not in out
    assert set(j.numbers) >= {"r", "p", "calibrated", "reliability_train", "reliability_test", "ari", "grid"}


def test_power_unrelated_sweeps_with_one_schedule_are_not_supported(sweeps):
    raw, ts = sweeps
    # at the checkpoint level the shared progress axis makes unrelated sweeps look alike ...
    ckpt = train_test_agreement(geometry.pairwise_distances(np.concatenate(raw["A_train"])),
                                geometry.pairwise_distances(np.concatenate(raw["B_test"])), n_permutations=99)
    assert ckpt.mantel.pearson > 0.9
    # ... at equal progress, run by run, they do not
    res = equal_progress_agreement(ts["A_train"], ts["B_test"], n_splits=10, n_permutations=199)
    j = judge(res)
    assert j.verdict == "not supported", j
    assert res.mantel.p_pearson >= TRAIN_TEST_P_VALUE and abs(res.calibrated) < 0.3
    assert min(res.reliability_train.median, res.reliability_test.median) > 0.9  # both pictures are sharp
    assert res.clusters.ari < 0.2
    assert "range of unrelated pictures" in j.reason


def test_small_train_probe_is_calibrated_by_its_reliability(sweeps):
    raw, ts = sweeps
    small = _probe(20, 5)
    WA = _weights(10, ARCH)
    res = equal_progress_agreement(_trajectories(_runs(WA, small), small), ts["A_test"], n_splits=10,
                                   n_permutations=99)
    # the small probe's noise lowers r below the test probe's own reliability; κ undoes the attenuation
    assert res.r < res.reliability_test.median - 0.03
    assert res.reliability_train.median < res.reliability_test.median
    assert res.calibrated > 0.9 and judge(res).verdict == "supported"


def test_judge_reads_each_condition(sweeps):
    _, ts = sweeps
    res = equal_progress_agreement(ts["A_train"], ts["A_test"], n_splits=4, n_permutations=99)
    assert judge(res).verdict == "supported"

    def rel(value):
        return dataclasses.replace(res.reliability_test, median=value)

    assert judge(dataclasses.replace(res, reliability_test=rel(0.3))).verdict == "inconclusive"
    j = judge(dataclasses.replace(res, reliability_test=rel(None)))
    assert j.verdict == "inconclusive" and "reliability" in j.reason
    assert judge(dataclasses.replace(res, calibrated=0.4)).verdict == "not supported"
    assert judge(dataclasses.replace(res, calibrated=0.7)).verdict == "inconclusive"
    assert judge(dataclasses.replace(res, calibrated=None)).verdict == "inconclusive"
    clusters = dataclasses.replace(res.clusters, ari=0.3)
    j = judge(dataclasses.replace(res, clusters=clusters))
    assert j.verdict == "inconclusive" and "ARI" in j.reason
    assert judge(dataclasses.replace(res, clusters=dataclasses.replace(res.clusters, ari=None))).verdict == "supported"
    # clusters that follow the architectures on neither probe are not compared
    loose = dataclasses.replace(res.clusters, ari=0.3, ari_train_architecture=0.1, ari_test_architecture=0.4)
    j = judge(dataclasses.replace(res, clusters=loose))
    assert j.verdict == "supported" and "not compared" in j.reason
    j = judge(dataclasses.replace(res, clusters=dataclasses.replace(loose, ari_test_architecture=0.5)))
    assert j.verdict == "inconclusive" and "ARI 0.3" in j.reason
    j = judge(dataclasses.replace(res, top_factor_test="optimizer"))
    assert j.verdict == "inconclusive" and "top factor" in j.reason
    assert judge(dataclasses.replace(res, top_factor_test=None)).verdict == "supported"
    for value in (TRAIN_TEST_CALIBRATED, TRAIN_TEST_REFUTED, TRAIN_TEST_P_VALUE, TRAIN_TEST_ARI, TRAIN_TEST_ARCH_CLUSTERS,
                  TRAIN_TEST_MIN_RELIABILITY, TRAIN_TEST_SPLITS):
        assert str(value) in RULE


def test_one_architecture_has_no_clustering_to_compare(sweeps):
    _, ts = sweeps
    one = [{"arch": "mlp", "seed": r} for r in range(12)]
    a, b = (dataclasses.replace(ts[k], configs=one) for k in ("A_train", "A_test"))
    res = equal_progress_agreement(a, b, n_splits=3, n_permutations=19, top_factor=lambda D, configs: None)
    assert res.clusters.n_clusters == 1 and res.clusters.ari is None
    assert res.top_factor_train is None
    explicit = equal_progress_agreement(a, b, n_splits=3, n_permutations=19, architectures=ARCH,
                                        top_factor=lambda D, configs: "seed")
    assert explicit.clusters.ari == 1.0 and explicit.top_factor_test == "seed"


def test_power_clusters_unrelated_to_architecture_are_not_compared(sweeps):
    _, ts = sweeps
    # the runs cluster by their planted weights (ARCH); labels that cut across those clusters give
    # partitions unrelated to the labels on both probes, which the rule does not compare
    labels = [r % 2 for r in range(12)]
    res = equal_progress_agreement(ts["A_train"], ts["A_test"], n_splits=4, n_permutations=99,
                                   architectures=labels, top_factor=lambda D, configs: "arch")
    assert res.clusters.n_clusters == 2
    assert max(res.clusters.ari_train_architecture, res.clusters.ari_test_architecture) < TRAIN_TEST_ARCH_CLUSTERS
    j = judge(res)
    assert j.verdict == "supported" and "not compared" in j.reason


def test_equal_progress_agreement_checks_its_inputs(sweeps):
    _, ts = sweeps
    a, b = ts["A_train"], ts["A_test"]
    with pytest.raises(ValueError, match="same runs"):
        equal_progress_agreement(a, dataclasses.replace(b, run_ids=IDS[::-1]))
    with pytest.raises(ValueError, match="same progress grid"):
        equal_progress_agreement(a, dataclasses.replace(b, grid=b.grid * 0.5))
    with pytest.raises(ValueError, match="grid_mask"):
        equal_progress_agreement(a, b, grid_mask=np.zeros(TGRID.size, dtype=bool))
    with pytest.raises(ValueError, match="architectures"):
        equal_progress_agreement(a, b, architectures=ARCH[:3], n_splits=1, n_permutations=9)


def test_a_run_without_progress_in_common_leaves_the_comparison_not_the_claim(sweeps):
    from deepmanifold.analysis.findings import _train_test

    raw, ts = sweeps
    train, test = _probe(100, 1), _probe(200, 2)
    late = S_CKPT >= 0.95  # a run recorded only at its end: at truth from its first checkpoint
    runs = {name: raw_runs + [raw_runs[0][late]] for name, raw_runs in (("train", raw["A_train"]),
                                                                          ("test", raw["A_test"]))}
    configs, ids = CONFIGS + [{"arch": "rfm", "seed": 0}], IDS + ["late"]
    ts_train = TrajectorySet.from_runs(runs["train"], train[1], TGRID, run_ids=ids, configs=configs)
    ts_test = TrajectorySet.from_runs(runs["test"], test[1], TGRID, run_ids=ids, configs=configs)
    mask = ts_test.common(0.9)
    keep = ts_train.overlapping(mask) & ts_test.overlapping(mask)
    np.testing.assert_array_equal(keep, [True] * 12 + [False])
    with pytest.raises(ValueError, match="no progress in common"):
        equal_progress_agreement(ts_train, ts_test, grid_mask=mask, n_splits=2, n_permutations=9)
    result, judged = _train_test(ts_train, ts_test, mask, 0)
    assert result.n_runs == 12 and judged.numbers["left_out"] == ["late"]
    assert "left out, no progress in common with the other runs: late" in judged.reason
    alone = equal_progress_agreement(ts_train.take(range(12)), ts_test.take(range(12)), grid_mask=mask)
    assert judged.verdict == judge(alone).verdict and result.r == pytest.approx(alone.r)
    # every pair of runs that overlap keeps them all
    assert ts["A_test"].overlapping().all() and ts["A_test"].take([2, 0]).run_ids == ["r2", "r0"]
