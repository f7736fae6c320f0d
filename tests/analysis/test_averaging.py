"""Averaging models in prediction space: closed forms, the centroid's optimality, the sharpening control
and the bootstrap over models."""

import json

import numpy as np
import pytest

from deepmanifold import geometry
from deepmanifold.analysis.averaging import (METHODS, SHARPENED, average_final_models, average_models,
                                             bhattacharyya_centroid, mean_entropy, mean_model,
                                             temperature_for_entropy, tempered)

C = 10
RNG = np.random.default_rng(0)


def _summed_db(P, q):
    """Per sample Σ_m d_B(p_m, q)."""
    return -np.log(np.einsum("mnc,nc->mn", np.sqrt(P), np.sqrt(q))).sum(axis=0)


def _kkt(P, Q):
    R, S = np.sqrt(P), np.sqrt(Q)
    G = np.einsum("mnc,mn->nc", R, 1.0 / np.einsum("mnc,nc->mn", R, S))
    return np.abs(G / P.shape[0] - S).max()


def test_identical_models_average_to_the_model():
    p = RNG.dirichlet(np.ones(C), size=25)
    P = np.stack([p] * 4)
    for m in METHODS:
        np.testing.assert_allclose(mean_model(P, m), p, atol=1e-9, err_msg=m)


def test_closed_forms_on_two_models():
    P = np.array([[[0.5, 0.5]], [[0.9, 0.1]]])
    g = np.array([np.sqrt(0.45), np.sqrt(0.05)])
    np.testing.assert_allclose(mean_model(P, "geometric")[0], g / g.sum(), atol=1e-14)
    h = np.array([2 / (1 / 0.5 + 1 / 0.9), 2 / (1 / 0.5 + 1 / 0.1)])
    np.testing.assert_allclose(mean_model(P, "harmonic")[0], h / h.sum(), atol=1e-14)
    s = ((np.sqrt([0.5, 0.5]) + np.sqrt([0.9, 0.1])) / 2) ** 2
    np.testing.assert_allclose(mean_model(P, "sqrt_arithmetic")[0], s / s.sum(), atol=1e-14)
    np.testing.assert_allclose(mean_model(P, "arithmetic")[0], [0.7, 0.3], atol=1e-14)
    # two models: by symmetry the centroid is the great-circle midpoint = sqrt-arithmetic mean
    P2 = RNG.dirichlet(np.ones(C), size=(2, 30))
    np.testing.assert_allclose(bhattacharyya_centroid(P2), mean_model(P2, "sqrt_arithmetic"), atol=1e-9)


def test_geometric_mean_floors_zeros():
    P = np.array([[[1.0, 0.0]], [[0.5, 0.5]]])
    q = mean_model(P, "geometric")[0]
    assert np.all(np.isfinite(q)) and q[1] == pytest.approx(np.sqrt(0.5e-12) / (np.sqrt(0.5) + np.sqrt(0.5e-12)), rel=1e-9)
    assert np.all(np.isfinite(mean_model(P, "harmonic")))


@pytest.mark.parametrize("alpha", [1.0, 0.1])
def test_centroid_is_stationary_and_never_farther(alpha):
    P = RNG.dirichlet(np.full(C, alpha), size=(7, 50))
    P = np.clip(P, 1e-9, None)
    P /= P.sum(-1, keepdims=True)
    Q, info = bhattacharyya_centroid(P, return_info=True)
    assert info["kkt_residual"] <= 1e-10
    assert _kkt(P, Q) < 1e-8
    np.testing.assert_allclose(Q.sum(-1), 1.0, atol=1e-12)
    best = _summed_db(P, Q)
    for m in METHODS:
        assert np.all(best <= _summed_db(P, mean_model(P, m)) + 1e-10), m
    # and no random nearby distribution does better
    for _ in range(5):
        Qp = Q * np.exp(0.01 * RNG.normal(size=Q.shape))
        Qp /= Qp.sum(-1, keepdims=True)
        assert np.all(best <= _summed_db(P, Qp) + 1e-12)


def _noisy_confident(M=15, n=300, eps=0.3, seed=0):
    """Documented example: every model gives the true class 1 - eps and spreads
    eps over the wrong classes with independent noise (Dirichlet(0.3) shares).

    The true-class entry is the same in all models, so before renormalisation
    every mean keeps it, while on each wrong class AM >= GM >= HM (AM-GM-HM):
    after renormalisation the true-class probability is ordered
    harmonic >= geometric >= arithmetic, sample by sample.
    """
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, C, n)
    wrong = rng.dirichlet(np.full(C - 1, 0.3), size=(M, n)) * eps
    P = np.empty((M, n, C))
    for i, y in enumerate(labels):
        P[:, i, y] = 1 - eps
        P[:, i, np.arange(C) != y] = wrong[:, i]
    return np.clip(P, 1e-300, None), labels


def test_geometric_and_harmonic_beat_arithmetic_on_documented_example():
    P, labels = _noisy_confident()
    idx = np.arange(len(labels))
    pt = {m: mean_model(P, m)[idx, labels] for m in ("arithmetic", "geometric", "harmonic")}
    assert np.all(pt["geometric"] >= pt["arithmetic"] - 1e-12)
    assert np.all(pt["harmonic"] >= pt["geometric"] - 1e-12)
    res = average_models(P, labels, n_boot=0)
    out = json.loads(json.dumps(res.to_dict(), allow_nan=False))
    # observed on this example (not claimed in general): progress ordered H >= G >= A
    assert out["harmonic"]["progress"] >= out["geometric"]["progress"] >= out["arithmetic"]["progress"]
    assert out["geometric"]["progress"] > out["individual"]["progress_mean"]
    assert out["arithmetic"]["accuracy"] == 1.0 and out["individual"]["accuracy_mean"] == 1.0
    c = out["bhattacharyya_centroid"]["mean_distance"]
    assert all(c <= out[m]["mean_distance"] + 1e-12 for m in METHODS)
    assert res.means["harmonic"].progress == out["harmonic"]["progress"]
    # mean_distance is the mean over models of d_B to the mean (plain per-pair definition)
    Q = mean_model(P, "geometric")
    bc = np.einsum("mnc,nc->mn", np.sqrt(P), np.sqrt(Q))
    assert res.means["geometric"].mean_distance == pytest.approx(-np.log(bc).mean(), rel=1e-12)


def test_average_models_report():
    labels = RNG.integers(0, C, 40)
    P = geometry.geodesic(labels, C, np.array([0.2, 0.4, 0.6]))
    res = average_models(P, labels, methods=("arithmetic", "bhattacharyya_centroid"), n_boot=5)
    out = res.to_dict()
    assert list(out) == ["n_boot", "individual", "arithmetic", "bhattacharyya_centroid", "contrasts"]
    assert list(out["individual"]) == ["n_models", "progress_mean", "progress_sd", "accuracy_mean", "accuracy_sd",
                                       "nll_mean", "nll_sd", "progress", "accuracy", "nll"]
    assert list(out["arithmetic"]) == ["progress", "accuracy", "nll", "entropy", "mean_distance", "intervals"]
    assert list(out["arithmetic"]["intervals"]) == ["progress", "accuracy", "nll", "entropy"]
    # no geometric mean asked for: no sharpening control; one contrast, centroid - arithmetic
    assert SHARPENED not in out and [(c["method"], c["reference"]) for c in out["contrasts"]] == [
        ("bhattacharyya_centroid", "arithmetic")]
    ind = res.individual
    np.testing.assert_allclose(ind.progress, [0.2, 0.4, 0.6], atol=1e-9)
    assert ind.progress_mean == pytest.approx(0.4) and ind.n_models == 3 and out["individual"]["n_models"] == 3
    assert ind.progress_sd == pytest.approx(0.2)
    # the centroid of three geodesic points is on the geodesic, near the middle one
    assert res.means["bhattacharyya_centroid"].progress == pytest.approx(0.4, abs=0.02)
    with np.errstate(divide="ignore"):
        out_log = average_models(np.log(P), labels, log=True, methods=("geometric",), n_boot=0)
    assert out_log.means["geometric"].progress == pytest.approx(
        average_models(P, labels, methods=("geometric",), n_boot=0).means["geometric"].progress)
    json.dumps(out, allow_nan=False)
    with pytest.raises(ValueError, match="unknown methods"):
        average_models(P, labels, methods=("median",))
    with pytest.raises(ValueError, match="labels has length 39 but there are 40 samples"):
        average_models(P, labels[1:])
    with pytest.raises(ValueError, match="floor must lie in"):
        mean_model(P, floor=0.0)
    with pytest.raises(ValueError, match="n_boot"):
        average_models(P, labels, n_boot=-1)
    with pytest.raises(ValueError, match="weights"):
        mean_model(P, weights=[1.0, -1.0, 1.0])


def test_identical_models_every_mean_and_the_control_is_the_model():
    labels = RNG.integers(0, C, 25)
    p = RNG.dirichlet(np.ones(C), size=25)
    res = average_models(np.stack([p] * 3), labels, n_boot=20)
    nll = -np.log(p[np.arange(25), labels]).mean()
    entropy = -(p * np.log(p)).sum(-1).mean()
    for name, m in res.means.items():
        assert m.nll == pytest.approx(nll, rel=1e-9) and m.entropy == pytest.approx(entropy, rel=1e-9), name
        assert m.mean_distance == pytest.approx(0.0, abs=1e-12)
        for key, (lo, hi) in m.intervals.items():  # every replicate is the same model
            assert lo == pytest.approx(getattr(m, key), abs=1e-9) and hi == pytest.approx(lo, abs=1e-9)
    assert res.means[SHARPENED].temperature == pytest.approx(1.0, abs=1e-6)
    for c in res.contrasts:
        assert all(abs(v) < 1e-9 for v in c.difference.values())
    assert res.individual.nll == pytest.approx([nll] * 3)


def test_two_disagreeing_one_hot_models():
    # models certain of class 0 and of class 1; labels 0 and 2. Every mean splits 0 and 1 evenly; what
    # class 2 gets, and so the NLL of the label-2 samples, follows from the floor f = 1e-12.
    f = 1e-12
    P = np.zeros((2, 4, 3))
    P[0, :, 0] = P[1, :, 1] = 1.0
    labels = np.array([0, 0, 2, 2])
    s = np.sqrt(f)  # geometric: exp((log 1 + log f) / 2) on classes 0 and 1, f on class 2
    h = 2 / (1 + 1 / f)  # harmonic: 1 / mean(1/1, 1/f) on classes 0 and 1, f on class 2
    expect = {"arithmetic": [0.5, 0.5, 0.0], "sqrt_arithmetic": [0.5, 0.5, 0.0],
              "bhattacharyya_centroid": [0.5, 0.5, 0.0],
              "geometric": np.array([s, s, f]) / (2 * s + f), "harmonic": np.array([h, h, f]) / (2 * h + f)}
    res = average_models(P, labels, n_boot=0)
    for m, q in expect.items():
        np.testing.assert_allclose(mean_model(P, m), np.tile(q, (4, 1)), rtol=1e-9, atol=1e-300, err_msg=m)
        got = res.means[m]
        # ties go to the lowest class: samples labelled 0 count as right, those labelled 2 as wrong
        assert got.accuracy == 0.5
        nll2 = -np.log(max(q[2], f))
        assert got.nll == pytest.approx((2 * -np.log(q[0]) + 2 * nll2) / 4, rel=1e-9), m
    assert res.means["arithmetic"].mean_distance == pytest.approx(np.log(2) / 2, rel=1e-12)
    assert res.individual.accuracy.tolist() == [0.5, 0.0]
    # the arithmetic mean is uniform on its support: tempering cannot change its entropy, T = 1
    assert res.means[SHARPENED].temperature == 1.0
    np.testing.assert_allclose(mean_model(P, "arithmetic", weights=[3, 1])[0], [0.75, 0.25, 0.0])
    np.testing.assert_allclose(mean_model(P, "geometric", weights=[3, 1])[0],
                               np.array([f**0.25, f**0.75, f]) / (f**0.25 + f**0.75 + f), rtol=1e-9)


def test_temperature_solves_for_the_entropy():
    # two classes: tempering [p, 1-p] to a known q* needs 1/T = logit(q*) / logit(p)
    p, q = 0.7, 0.9
    target = -(q * np.log(q) + (1 - q) * np.log(1 - q))
    Q = np.tile([p, 1 - p], (5, 1))
    T = temperature_for_entropy(Q, target)
    assert 1 / T == pytest.approx(np.log(q / (1 - q)) / np.log(p / (1 - p)), rel=1e-10)
    np.testing.assert_allclose(tempered(Q, T), np.tile([q, 1 - q], (5, 1)), rtol=1e-10)
    # many samples, flattening and sharpening: the mean entropy is hit
    Q = RNG.dirichlet(np.full(C, 0.5), size=200)
    H = mean_entropy(Q)
    for target in (0.3 * H, 0.9 * H, 1.2 * H):
        T = temperature_for_entropy(Q, target)
        assert mean_entropy(tempered(Q, T)) == pytest.approx(target, abs=1e-10)
        assert (T < 1) == (target < H)
    np.testing.assert_array_equal(tempered(Q, 0.3).argmax(-1), Q.argmax(-1))
    # out of reach: above log C the flattest end of the search range, below 0 an error
    assert temperature_for_entropy(Q, np.log(C) + 0.1) == pytest.approx(np.exp(30.0))
    with pytest.raises(ValueError, match="target"):
        temperature_for_entropy(Q, -0.1)
    with pytest.raises(ValueError, match="temperature"):
        tempered(Q, 0.0)


def test_sharpening_control_separates_sharper_from_geometric():
    # Each model is right with 1 - eps and spreads eps over the wrong classes with its own noise: the
    # geometric mean beats the arithmetic one (module docstring of the documented example) ...
    P, labels = _noisy_confident(M=8, n=200)
    res = average_models(P, labels, n_boot=30, random_state=1)
    by = {(c.method, c.reference): c for c in res.contrasts}
    geo_vs_arith = by[("geometric", "arithmetic")]
    assert geo_vs_arith.difference["progress"] > 0.1 and geo_vs_arith.intervals["progress"][0] > 0
    assert geo_vs_arith.difference["nll"] < 0
    # ... the arithmetic mean sharpened to the geometric mean's entropy gets most of the way there ...
    sharp = res.means[SHARPENED]
    assert sharp.entropy == pytest.approx(res.means["geometric"].entropy, abs=1e-9)
    assert sharp.temperature < 1 and sharp.accuracy == res.means["arithmetic"].accuracy
    geo_vs_sharp = by[("geometric", SHARPENED)]
    assert abs(geo_vs_sharp.difference["progress"]) < 0.2 * geo_vs_arith.difference["progress"]
    assert by[(SHARPENED, "arithmetic")].difference["progress"] > 0.1
    # ... and each replicate solved its own temperature: the entropy difference is 0 in every one
    assert geo_vs_sharp.intervals["entropy"] == pytest.approx((0.0, 0.0), abs=1e-9)
    out = json.loads(json.dumps(res.to_dict(), allow_nan=False))
    assert out[SHARPENED]["temperature"] == sharp.temperature and out["n_boot"] == 30
    assert len(out["contrasts"]) == 2 * 4 + 1


def test_final_models_pooled_and_per_group():
    labels = RNG.integers(0, C, 30)
    P = RNG.dirichlet(np.ones(C), size=(6, 30))
    groups = ["a", "a", "b", "b", "c", "d"]
    ordinary = [True, True, True, True, True, False]
    res = average_final_models(P, labels, groups, ordinary=ordinary, n_boot=4, methods=("arithmetic", "geometric"))
    assert res.n_runs == 5 and res.n_left_out == 1 and list(res.groups) == ["a", "b"] and res.single == ["c"]
    direct = average_models(P[:5], labels, methods=("arithmetic", "geometric"), n_boot=0)
    assert res.pooled.means["geometric"].progress == pytest.approx(direct.means["geometric"].progress)
    np.testing.assert_allclose(res.groups["b"].individual.progress, direct.individual.progress[2:4])
    out = json.loads(json.dumps(res.to_dict(), allow_nan=False))
    assert list(out) == ["n_runs", "n_left_out", "pooled", "groups", "single"]
    assert out["groups"]["a"]["individual"]["n_models"] == 2
    assert average_final_models(P, labels, n_boot=0, methods=("arithmetic",)).groups == {}
    with pytest.raises(ValueError, match="at least 2 ordinary runs"):
        average_final_models(P, labels, groups, ordinary=[True] + [False] * 5)
    with pytest.raises(ValueError, match="groups has 2 entries"):
        average_final_models(P, labels, ["a", "b"])
    with pytest.raises(ValueError, match="ordinary must have shape"):
        average_final_models(P, labels, ordinary=[True, False])


def test_weighted_centroid_is_stationary():
    P = RNG.dirichlet(np.ones(C), size=(4, 20))
    w = np.array([0.1, 0.2, 0.3, 0.4])
    Q = bhattacharyya_centroid(P, weights=w)
    R, S = np.sqrt(P), np.sqrt(Q)
    G = np.einsum("mnc,mn->nc", R, w[:, None] / np.einsum("mnc,nc->mn", R, S))
    assert np.abs(G - S).max() < 1e-8
    # integer weights are repeated models
    np.testing.assert_allclose(bhattacharyya_centroid(P, weights=[1, 2, 0, 1]),
                               bhattacharyya_centroid(P[[0, 1, 1, 3]]), atol=1e-9)


def _confident_partly_wrong(labels, wrong_fraction, confidence, rng):
    """Models that put ``confidence`` on one class: the label, or another class for a fraction of samples."""
    n = labels.size
    picked = labels.copy()
    wrong = rng.random(n) < wrong_fraction
    picked[wrong] = (labels[wrong] + rng.integers(1, C, wrong.sum())) % C
    P = np.full((n, C), (1 - confidence) / (C - 1))
    P[np.arange(n), picked] = confidence
    return P


def test_progress_method_is_the_definition_used_for_every_model():
    rng = np.random.default_rng(5)
    labels = rng.integers(0, C, 60)
    P = np.stack([_confident_partly_wrong(labels, f, 0.99, rng) for f in (0.1, 0.2, 0.3)])
    by = {m: average_models(P, labels, methods=("arithmetic", "geometric"), n_boot=3, progress_method=m)
          for m in geometry.PROGRESS_METHODS}
    for m, res in by.items():
        np.testing.assert_allclose(res.individual.progress, geometry.progress(P, labels, method=m), atol=1e-12)
        Q = res.means["geometric"]
        assert Q.progress == pytest.approx(float(geometry.progress(mean_model(P, "geometric"), labels, method=m)))
    # confident errors weigh little in the summed angle and much in d_B: the two differ here
    assert (by["angle"].individual.progress - by["bhattacharyya"].individual.progress).min() > 0.1
    assert by["angle"].means["arithmetic"].accuracy == by["bhattacharyya"].means["arithmetic"].accuracy
    pooled = average_final_models(P, labels, n_boot=0, progress_method="bhattacharyya").pooled
    np.testing.assert_allclose(pooled.individual.progress, by["bhattacharyya"].individual.progress)
    with pytest.raises(ValueError, match="progress method must be one of"):
        average_models(P, labels, progress_method="euclid")
