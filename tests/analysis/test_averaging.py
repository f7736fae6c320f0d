"""Averaging models in prediction space."""

import json

import numpy as np
import pytest

from deepmanifold import geometry
from deepmanifold.analysis.averaging import METHODS, average_models, bhattacharyya_centroid, mean_model

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
    res = average_models(P, labels)
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
    res = average_models(P, labels, methods=("arithmetic", "bhattacharyya_centroid"))
    out = res.to_dict()
    assert list(out) == ["individual", "arithmetic", "bhattacharyya_centroid"]
    assert list(out["individual"]) == ["n_models", "progress_mean", "progress_sd", "accuracy_mean", "accuracy_sd",
                                       "progress", "accuracy"]
    assert list(out["arithmetic"]) == ["progress", "accuracy", "mean_distance"]
    ind = res.individual
    np.testing.assert_allclose(ind.progress, [0.2, 0.4, 0.6], atol=1e-9)
    assert ind.progress_mean == pytest.approx(0.4) and ind.n_models == 3 and out["individual"]["n_models"] == 3
    assert ind.progress_sd == pytest.approx(0.2)
    # the centroid of three geodesic points is on the geodesic, near the middle one
    assert res.means["bhattacharyya_centroid"].progress == pytest.approx(0.4, abs=0.02)
    with np.errstate(divide="ignore"):
        out_log = average_models(np.log(P), labels, log=True, methods=("geometric",))
    assert out_log.means["geometric"].progress == pytest.approx(
        average_models(P, labels, methods=("geometric",)).means["geometric"].progress)
    json.dumps(out, allow_nan=False)
    with pytest.raises(ValueError, match="unknown methods"):
        average_models(P, labels, methods=("median",))
    with pytest.raises(ValueError, match="labels has length 39 but there are 40 samples"):
        average_models(P, labels[1:])
    with pytest.raises(ValueError, match="floor must lie in"):
        mean_model(P, floor=0.0)
