"""Neural collapse and effective rank against closed forms and brute-force references."""

import math

import numpy as np
import pytest

from deepmanifold.probes import effective_rank, neural_collapse


def simplex_etf(C: int, d: int, rng) -> np.ndarray:
    """C unit vectors in d >= C dimensions with pairwise cosine -1/(C-1), randomly rotated."""
    E = np.sqrt(C / (C - 1)) * (np.eye(C) - 1.0 / C)  # rows: the simplex, centred, unit norm
    Q, _ = np.linalg.qr(rng.standard_normal((d, C)))
    return E @ Q.T


def test_simplex_etf_with_self_dual_classifier_has_every_metric_zero():
    rng = np.random.default_rng(0)
    C, d = 6, 20
    means = 3.0 * simplex_etf(C, d, rng) + rng.standard_normal(d)  # an offset μ_G does not matter
    labels = np.repeat(np.arange(C), 5)
    features = means[labels]  # every sample at its class mean
    W = means - means.mean(axis=0)
    r = neural_collapse(features, labels, (W, -W @ means.mean(axis=0)))  # the bias removes the offset
    assert r.nc1 == pytest.approx(0, abs=1e-12)
    assert r.nc2_equinorm == pytest.approx(0, abs=1e-12)
    assert r.nc2_equiangle == pytest.approx(0, abs=1e-12)
    assert r.nc3 == pytest.approx(0, abs=1e-12)
    assert r.nc4 == 0
    assert r.notes == ()


def test_nc1_matches_brute_force_trace_with_pseudoinverse():
    rng = np.random.default_rng(1)
    C, d, n_c = 4, 7, 30
    means = rng.standard_normal((C, d)) * 2
    labels = np.repeat(np.arange(C), n_c)
    H = means[labels] + rng.standard_normal((C * n_c, d)) * 0.7
    mu = np.stack([H[labels == c].mean(0) for c in range(C)])
    mu_g = mu.mean(0)
    sw = sum(np.outer(h - mu[y], h - mu[y]) for h, y in zip(H, labels)) / len(H)
    sb = sum(np.outer(m - mu_g, m - mu_g) for m in mu) / C
    expected = np.trace(sw @ np.linalg.pinv(sb)) / C
    assert neural_collapse(H, labels).nc1 == pytest.approx(expected, rel=1e-9)


def test_nc2_and_nc3_on_a_planted_frame():
    # Means with norms 1 and 3 (equinorm = std/mean = 0.5) at right angles (cos 0; C = 2 would
    # force -1, so C = 3 in 3-D with orthogonal centred means is impossible): use the closed
    # form on C = 2, where centred means are antipodal: cos = -1 = -1/(C-1), so equiangle is 0.
    labels = np.array([0, 0, 1, 1])
    H = np.array([[1.0, 0], [1.0, 0], [-1.0, 0], [-1.0, 0]])
    r = neural_collapse(H, labels, np.array([[0.0, 1.0], [0.0, -1.0]]))
    assert r.nc2_equinorm == 0 and r.nc2_equiangle == pytest.approx(0)
    # W rows orthogonal to the means: ‖W/‖W‖ − M/‖M‖‖² = 1 + 1 = 2.
    assert r.nc3 == pytest.approx(2.0)
    # The classifier decides by the second coordinate (0 for every sample -> class 0 wins ties);
    # the nearest centre gets both classes right: half the samples disagree.
    assert r.nc4 == pytest.approx(0.5)


def test_nc4_with_predictions_counts_disagreements():
    labels = np.array([0, 0, 1, 1, 2, 2])
    H = np.eye(3)[labels] * 5.0
    predictions = np.array([0, 1, 1, 1, 2, 0])  # two of six disagree with the nearest centre
    r = neural_collapse(H, labels, predictions=predictions)
    assert r.nc4 == pytest.approx(2 / 6)
    assert math.isnan(r.nc3)


def test_coinciding_class_means_give_nan_with_a_reason():
    labels = np.array([0, 1, 0, 1])
    H = np.ones((4, 3))
    r = neural_collapse(H, labels)
    assert math.isnan(r.nc1) and math.isnan(r.nc2_equinorm)
    assert any("class means coincide" in note for note in r.notes)


@pytest.mark.parametrize("features, labels, match", [
    (np.ones((3, 2)), np.array([0, 0, 0]), "at least 2 classes"),
    (np.ones((3, 2)), np.array([0, 1]), "labels must be 3 integers"),
    (np.ones((3, 2)), np.array([0.0, 1.0, 1.0]), "integers"),
    (np.array([[0.0, np.nan], [1, 1]]), np.array([0, 1]), "non-finite"),
    (np.ones(3), np.array([0, 1, 1]), "2-D"),
])
def test_bad_input_is_refused(features, labels, match):
    with pytest.raises(ValueError, match=match):
        neural_collapse(features, labels)


def test_classifier_of_the_wrong_shape_is_refused():
    with pytest.raises(ValueError, match="classifier weights"):
        neural_collapse(np.eye(2), np.array([0, 1]), np.ones((2, 3)))
    with pytest.raises(ValueError, match="not rows of the classifier"):
        neural_collapse(np.eye(3), np.array([0, 1, 5]), np.ones((3, 3)))


def test_effective_rank_of_k_equal_singular_values_is_k():
    rng = np.random.default_rng(2)
    for k in (1, 3, 7):
        U, _ = np.linalg.qr(rng.standard_normal((50, k)))
        V, _ = np.linalg.qr(rng.standard_normal((30, k)))
        assert effective_rank(U @ V.T * 4.0, center=False) == pytest.approx(k, rel=1e-9)


def test_effective_rank_closed_form_for_unequal_singular_values():
    s = np.array([3.0, 1.0])
    p = s / s.sum()
    X = np.zeros((5, 4))
    X[0, 0], X[1, 1] = s
    assert effective_rank(X, center=False) == pytest.approx(math.exp(-(p * np.log(p)).sum()))


def test_effective_rank_ignores_a_common_offset_when_centring():
    rng = np.random.default_rng(3)
    X = rng.standard_normal((40, 1)) @ rng.standard_normal((1, 6)) + 10.0  # rank one plus an offset
    assert effective_rank(X) == pytest.approx(1.0, abs=1e-6)
    assert effective_rank(X, center=False) > 1.0


def test_effective_rank_of_constant_features_is_refused():
    with pytest.raises(ValueError, match="do not vary"):
        effective_rank(np.full((5, 3), 2.0))
