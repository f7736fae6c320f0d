"""Reference models, the geodesic, and progress against identities and brute force."""

import warnings

import numpy as np
import pytest

from deepmanifold.geometry import (
    ClampWarning,
    bhattacharyya,
    distance_to_geodesic,
    geodesic,
    ignorance,
    pairwise_distances,
    progress,
    progress_and_distance,
    truth,
)


def theta(C):
    return np.arccos(1 / np.sqrt(C))


def brute_force_objective(P, labels, ts, floor=1e-12):
    """f(t) for a (n, C) model on a grid of t, building sqrt(gamma(t)) explicitly."""
    n, C = P.shape
    th = theta(C)
    root_p0 = np.full((n, C), 1 / np.sqrt(C))
    root_pstar = np.eye(C)[labels]
    root_gamma = (
        np.sin((1 - ts) * th)[:, None, None] * root_p0 + np.sin(ts * th)[:, None, None] * root_pstar
    ) / np.sin(th)
    inner = np.einsum("ic,kic->ki", np.sqrt(P), root_gamma)
    return -np.mean(np.log(np.maximum(inner, floor)), axis=1)


def test_reference_models():
    labels = np.array([2, 0, 1, 2])
    np.testing.assert_array_equal(ignorance(labels, 3), np.full((4, 3), 1 / 3))
    np.testing.assert_array_equal(truth(labels, 3), np.eye(3)[labels])


@pytest.mark.parametrize("C", [2, 10, 100])
def test_geodesic_endpoints_and_normalisation(rng, C):
    labels = rng.integers(0, C, size=15)
    np.testing.assert_allclose(geodesic(labels, C, 0.0), ignorance(labels, C), atol=1e-15)
    np.testing.assert_allclose(geodesic(labels, C, 1.0), truth(labels, C), atol=1e-15)
    path = geodesic(labels, C, np.linspace(0, 1, 7))
    assert path.shape == (7, 15, C)
    np.testing.assert_allclose(path.sum(axis=-1), 1.0, rtol=1e-14)
    assert np.all(path >= 0)


@pytest.mark.parametrize("C", [2, 10, 100])
def test_distance_along_geodesic(rng, C):
    labels = rng.integers(0, C, size=12)
    ts = np.linspace(0, 1, 9)
    expected = -np.log(np.cos(np.abs(ts[:, None] - ts[None, :]) * theta(C)))
    np.testing.assert_allclose(pairwise_distances(geodesic(labels, C, ts)), expected, rtol=1e-12, atol=1e-14)
    assert bhattacharyya(geodesic(labels, C, 0.2), geodesic(labels, C, 0.7)) == pytest.approx(
        -np.log(np.cos(0.5 * theta(C))), rel=1e-12
    )


@pytest.mark.parametrize("C", [2, 10, 100])
def test_progress_of_geodesic_points_and_endpoints(rng, C):
    labels = rng.integers(0, C, size=20)
    ts = np.linspace(0, 1, 21)
    lam, dist = progress_and_distance(geodesic(labels, C, ts), labels)
    np.testing.assert_allclose(lam, ts, atol=1e-10)
    np.testing.assert_allclose(dist, 0.0, atol=1e-14)
    assert progress(ignorance(labels, C), labels) == pytest.approx(0.0, abs=1e-10)
    assert progress(truth(labels, C), labels) == pytest.approx(1.0, abs=1e-10)
    assert distance_to_geodesic(truth(labels, C), labels) == pytest.approx(0.0, abs=1e-14)


def random_models_around_the_path(rng, T, n, C, labels):
    """Dirichlet models, some pulled towards truth, some towards wrong classes."""
    X = rng.dirichlet(np.full(C, 0.5), size=(T, n))
    pull = rng.random((T, 1, 1))
    target = np.where(rng.random((T, 1, 1)) < 0.7, np.eye(C)[labels][None], np.eye(C)[(labels + 1) % C][None])
    return (1 - pull) * X + pull * target


@pytest.mark.parametrize("C", [3, 10])
def test_progress_matches_dense_grid_search(rng, C):
    n, T = 40, 25
    labels = rng.integers(0, C, size=n)
    X = random_models_around_the_path(rng, T, n, C, labels)
    X[0] = truth(labels, C)
    X[1] = ignorance(labels, C)
    X[2] = np.eye(C)[(labels + 1) % C]  # always wrong: b_i = 0, objective -> +inf at t = 1
    grid = np.linspace(0, 1, 20001)
    lam, dist = progress_and_distance(X, labels)
    assert lam.shape == dist.shape == (T,)
    for t in range(T):
        f = brute_force_objective(X[t], labels, grid)
        best = np.argmin(f)
        assert abs(lam[t] - grid[best]) <= 1e-4
        assert dist[t] <= f[best] + 1e-12  # never worse than the best grid point
        assert dist[t] == pytest.approx(brute_force_objective(X[t], labels, np.array([lam[t]]))[0], rel=1e-12)
    # Both kinds of optimum are exercised: on the boundary t = 0 and inside (0, 1).
    assert np.sum(lam == 0) >= 1 and np.sum((lam > 1e-6) & (lam < 1 - 1e-6)) >= 10


def test_distance_to_geodesic_is_bhattacharyya_to_the_projected_point(rng):
    C, n = 10, 30
    labels = rng.integers(0, C, size=n)
    X = random_models_around_the_path(rng, 5, n, C, labels)
    lam, dist = progress_and_distance(X, labels)
    for t in range(5):
        assert dist[t] == pytest.approx(bhattacharyya(X[t], geodesic(labels, C, lam[t])), rel=1e-10)


def test_log_input_and_shapes(rng):
    C, n = 5, 20
    labels = rng.integers(0, C, size=n)
    X = random_models_around_the_path(rng, 4, n, C, labels)
    X[1] = np.eye(C)[(labels + 2) % C]
    with np.errstate(divide="ignore"):
        logX = np.log(X)
    np.testing.assert_allclose(progress(logX, labels, log=True), progress(X, labels), atol=1e-12)
    np.testing.assert_allclose(
        distance_to_geodesic(logX, labels, log=True), distance_to_geodesic(X, labels), rtol=1e-12
    )
    assert isinstance(progress(X[0], labels), float)
    assert isinstance(distance_to_geodesic(X[0], labels), float)
    assert progress(X[0], labels) == pytest.approx(progress(X, labels)[0], abs=1e-15)


def test_progress_is_monotone_along_interpolation_to_truth(rng):
    C, n = 10, 50
    labels = rng.integers(0, C, size=n)
    start = ignorance(labels, C)
    ws = np.linspace(0, 1, 30)
    X = (1 - ws)[:, None, None] * start + ws[:, None, None] * truth(labels, C)
    lam = progress(X, labels)
    assert lam[0] == pytest.approx(0, abs=1e-10) and lam[-1] == pytest.approx(1, abs=1e-10)
    assert np.all(np.diff(lam) > 0)


def test_no_warning_for_ordinary_models(rng):
    C, n = 4, 10
    labels = rng.integers(0, C, size=n)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ClampWarning)
        progress_and_distance(np.eye(C)[(labels + 1) % C], labels)


def test_geodesic_rejects_bad_t():
    labels = np.array([0, 1])
    for bad in (-0.1, 1.5, np.nan, [[0.5]]):
        with pytest.raises(ValueError, match="t must"):
            geodesic(labels, 2, bad)


@pytest.mark.parametrize("function", [progress, distance_to_geodesic, progress_and_distance])
def test_clamp_warning_points_at_the_caller(rng, function):
    C, n = 10, 6
    labels = rng.integers(0, C, size=n)
    wrong = np.eye(C)[(labels + 1) % C]  # inner products with the geodesic <= 1/sqrt(C) < 0.5
    with pytest.warns(ClampWarning, match="inner products with the geodesic") as record:
        result = function(wrong, labels, floor=0.5)
    assert len(record) == 1 and record[0].filename == __file__
    assert np.all(np.isfinite(result))
