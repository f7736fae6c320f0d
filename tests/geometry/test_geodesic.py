"""Reference models, the geodesic, and progress against identities and brute force."""

import re
import warnings

import numpy as np
import pytest
from scipy.optimize import minimize_scalar

from deepmanifold.geometry import (
    ClampWarning,
    bhattacharyya,
    distance_to_geodesic,
    distance_to_geodesic_point,
    geodesic,
    geodesic_between,
    ignorance,
    pairwise_distances,
    progress,
    progress_and_distance,
    truth,
)
from deepmanifold.geometry import geodesics
from deepmanifold.geometry.geodesics import geodesic_coefficients, progress_from_coefficients


def theta(C):
    return np.arccos(1 / np.sqrt(C))


METHODS = ["angle", "bhattacharyya"]


def brute_force_objective(P, labels, ts, floor=1e-12, method="bhattacharyya"):
    """The objective of ``method`` for a (n, C) model on a grid of t, building sqrt(gamma(t)) explicitly.

    "bhattacharyya": d_B(P, γ(t)); "angle": Σ_i of the angle between sqrt(p_i) and
    sqrt(γ_i(t)), as 2 arcsin(chord / 2), accurate also for small angles.
    """
    n, C = P.shape
    th = theta(C)
    root_p0 = np.full((n, C), 1 / np.sqrt(C))
    root_pstar = np.eye(C)[labels]
    root_gamma = (
        np.sin((1 - ts) * th)[:, None, None] * root_p0 + np.sin(ts * th)[:, None, None] * root_pstar
    ) / np.sin(th)
    root_p = np.sqrt(P) / np.linalg.norm(np.sqrt(P), axis=-1, keepdims=True)
    if method == "angle":
        chord = np.linalg.norm(root_p[None] - root_gamma, axis=-1)
        return np.sum(2 * np.arcsin(np.minimum(chord / 2, 1.0)), axis=1)
    inner = np.einsum("ic,kic->ki", root_p, root_gamma)
    return -np.mean(np.log(np.maximum(inner, floor)), axis=1)


def brute_force_argmin(P, labels, method="bhattacharyya"):
    """``(t, objective)`` minimising the objective on a grid of 2001 points, then on 2001 points
    around the best one: resolution 5e-7 (ties: the first grid point)."""
    coarse = np.linspace(0, 1, 2001)
    g = int(np.argmin(brute_force_objective(P, labels, coarse, method=method)))
    fine = np.linspace(coarse[max(g - 1, 0)], coarse[min(g + 1, 2000)], 2001)
    f = brute_force_objective(P, labels, fine, method=method)
    return fine[np.argmin(f)], f.min()


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


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("C", [2, 3, 10, 37, 100])
def test_progress_of_geodesic_points_and_endpoints(rng, C, method):
    labels = rng.integers(0, C, size=20)
    ts = np.concatenate([np.linspace(0, 1, 21), rng.random(40), [1e-9, 1e-6, 1 - 1e-6, 1 - 1e-9]])
    lam, dist = progress_and_distance(geodesic(labels, C, ts), labels, method=method)
    np.testing.assert_allclose(lam, ts, atol=1e-11)
    np.testing.assert_allclose(dist, 0.0, atol=1e-14)
    with np.errstate(divide="ignore"):
        np.testing.assert_allclose(progress(np.log(geodesic(labels, C, ts)), labels, log=True, method=method),
                                   ts, atol=1e-11)
    assert progress(geodesic(labels, C, 0.3), labels, method=method) == pytest.approx(0.3, abs=1e-12)
    assert progress(ignorance(labels, C), labels, method=method) == pytest.approx(0.0, abs=1e-12)
    assert progress(truth(labels, C), labels, method=method) == pytest.approx(1.0, abs=1e-12)
    assert distance_to_geodesic(ignorance(labels, C), labels, method=method) == pytest.approx(0.0, abs=1e-14)
    assert distance_to_geodesic(truth(labels, C), labels, method=method) == pytest.approx(0.0, abs=1e-14)


def random_models_around_the_path(rng, T, n, C, labels):
    """Dirichlet models, some pulled towards truth, some towards wrong classes."""
    X = rng.dirichlet(np.full(C, 0.5), size=(T, n))
    pull = rng.random((T, 1, 1))
    target = np.where(rng.random((T, 1, 1)) < 0.7, np.eye(C)[labels][None], np.eye(C)[(labels + 1) % C][None])
    return (1 - pull) * X + pull * target


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("C", [3, 10])
def test_progress_matches_dense_grid_search(rng, C, method):
    n, T = 40, 25
    labels = rng.integers(0, C, size=n)
    X = random_models_around_the_path(rng, T, n, C, labels)
    X[0] = truth(labels, C)
    X[1] = ignorance(labels, C)
    X[2] = np.eye(C)[(labels + 1) % C]  # always wrong: b_i = 0, objective -> +inf at t = 1
    lam, dist = progress_and_distance(X, labels, method=method)
    assert lam.shape == dist.shape == (T,)
    for t in range(T):
        t_best, f_best = brute_force_argmin(X[t], labels, method)
        assert abs(lam[t] - t_best) <= 1e-5
        # never worse than the best grid point
        assert brute_force_objective(X[t], labels, lam[t:t + 1], method=method)[0] <= f_best + 1e-12
        # the distance is d_B at the chosen progress
        assert dist[t] == pytest.approx(brute_force_objective(X[t], labels, np.array([lam[t]]))[0], rel=1e-12)
    # Both kinds of optimum are exercised: on the boundary t = 0 and inside (0, 1).
    assert np.sum(lam == 0) >= 1 and np.sum((lam > 1e-6) & (lam < 1 - 1e-6)) >= 10


@pytest.mark.parametrize("method", METHODS)
def test_distance_to_geodesic_is_bhattacharyya_to_the_projected_point(rng, method):
    C, n = 10, 30
    labels = rng.integers(0, C, size=n)
    X = random_models_around_the_path(rng, 5, n, C, labels)
    lam, dist = progress_and_distance(X, labels, method=method)
    for t in range(5):
        assert dist[t] == pytest.approx(bhattacharyya(X[t], geodesic(labels, C, lam[t])), rel=1e-10)


@pytest.mark.parametrize("method", METHODS)
def test_log_input_and_shapes(rng, method):
    C, n = 5, 20
    labels = rng.integers(0, C, size=n)
    X = random_models_around_the_path(rng, 4, n, C, labels)
    X[1] = np.eye(C)[(labels + 2) % C]
    with np.errstate(divide="ignore"):
        logX = np.log(X)
    np.testing.assert_allclose(progress(logX, labels, log=True, method=method), progress(X, labels, method=method),
                               atol=1e-12)
    np.testing.assert_allclose(distance_to_geodesic(logX, labels, log=True, method=method),
                               distance_to_geodesic(X, labels, method=method), rtol=1e-12)
    assert isinstance(progress(X[0], labels, method=method), float)
    assert isinstance(distance_to_geodesic(X[0], labels, method=method), float)
    assert progress(X[0], labels, method=method) == pytest.approx(progress(X, labels, method=method)[0], abs=1e-15)


@pytest.mark.parametrize("method", METHODS)
def test_progress_is_monotone_along_interpolation_to_truth(rng, method):
    C, n = 10, 50
    labels = rng.integers(0, C, size=n)
    start = ignorance(labels, C)
    ws = np.linspace(0, 1, 30)
    X = (1 - ws)[:, None, None] * start + ws[:, None, None] * truth(labels, C)
    lam = progress(X, labels, method=method)
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


@pytest.mark.parametrize("function", [distance_to_geodesic, progress_and_distance])
def test_clamp_warning_points_at_the_caller(rng, function):
    C, n = 10, 6
    labels = rng.integers(0, C, size=n)
    wrong = np.eye(C)[(labels + 1) % C]  # inner products with the geodesic <= 1/sqrt(C) < 0.5
    with pytest.warns(ClampWarning, match="inner products with the geodesic") as record:
        result = function(wrong, labels, floor=0.5)
    assert len(record) == 1 and record[0].filename == __file__
    assert np.all(np.isfinite(result))
    with warnings.catch_warnings():  # progress alone computes no distance, so clamps nothing
        warnings.simplefilter("error", ClampWarning)
        assert progress(wrong, labels, floor=0.5) == 0.0


# --------------------------------------------------------------------------- the vectorised solver


def mixed_models(rng, T, n, C, labels):
    """Dirichlet models (some with exact zeros), near one-hot ones, and ones near either end."""
    X = random_models_around_the_path(rng, T, n, C, labels)
    k = T // 6
    sharp = rng.dirichlet(np.full(C, 0.05), size=(k, n))  # near one-hot, often on a wrong class
    X[:k] = sharp
    zeros = rng.random((k, n, C)) < 0.4
    zeros[..., 0] = False
    Z = np.where(zeros, 0.0, rng.dirichlet(np.ones(C), size=(k, n)))
    X[k:2 * k] = Z / Z.sum(axis=-1, keepdims=True)  # zeros, also on true labels (b_i = 0)
    w = 10.0 ** rng.uniform(-9, -1, size=(k, 1, 1))
    X[2 * k:3 * k] = (1 - w) * ignorance(labels, C) + w * X[2 * k:3 * k]  # progress near 0
    X[3 * k:4 * k] = (1 - w) * truth(labels, C) + w * X[3 * k:4 * k]  # progress near 1
    X[-1] = truth(labels, C)  # the only model with progress 1 (a_i / b_i > cos θ otherwise)
    X[-2] = ignorance(labels, C)
    return X


def closed_form(P, labels, t):
    """f(t) from the closed form of docs/method.md §3, with a_i, b_i computed directly (P: (n, C))."""
    C = P.shape[1]
    th = theta(C)
    a = np.sqrt(P / C).sum(axis=1)
    b = np.sqrt(P[np.arange(len(labels)), labels])
    t = np.atleast_1d(t)[:, None]
    g = (a * np.sin((1 - t) * th) + b * np.sin(t * th)) / np.sin(th)
    dg = th * (b * np.cos(t * th) - a * np.cos((1 - t) * th)) / np.sin(th)
    with np.errstate(divide="ignore"):
        return -np.log(g).mean(axis=1), -(dg / g).mean(axis=1), th**2 + ((dg / g) ** 2).mean(axis=1)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("C", [2, 10, 50])
def test_solver_against_grid_and_minimize_scalar(rng, C, method):
    n, T = 30, 36
    labels = rng.integers(0, C, size=n)
    X = mixed_models(rng, T, n, C, labels)
    lam, dist = progress_and_distance(X, labels, method=method)
    grid = np.linspace(0, 1, 4001)
    for k in range(T):
        f_grid = brute_force_objective(X[k], labels, grid, method=method)
        g = int(np.argmin(f_grid))
        bounds = (grid[max(g - 1, 0)], grid[min(g + 1, grid.size - 1)])
        res = minimize_scalar(lambda t: brute_force_objective(X[k], labels, np.array([t]), method=method)[0],
                              bounds=bounds, method="bounded", options={"xatol": 1e-12})
        f_ref = min(res.fun, f_grid[g])
        t_ref = res.x if res.fun <= f_grid[g] else grid[g]
        # Never worse than the reference, up to what 1e-12 in t can change: the angle
        # objective changes by at most n θ |dt| (each term's slope is at most θ).
        slack = 1e-12 if method == "bhattacharyya" else 2e-12 * n * theta(C)
        if method == "angle" and dist[k] < 1e-8:  # located to ~1e-8 (see the test below)
            slack = 1e-8 * n * theta(C)
        assert brute_force_objective(X[k], labels, lam[k:k + 1], method=method)[0] <= f_ref + slack
        if method == "bhattacharyya":  # strong convexity (f'' >= θ²) pins t
            assert abs(lam[k] - t_ref) <= 1e-6
        assert dist[k] == pytest.approx(brute_force_objective(X[k], labels, np.array([lam[k]]))[0],
                                        rel=1e-12, abs=1e-15)
    assert np.sum(lam == 0) >= 1 and np.sum(lam == 1) >= 1
    assert np.sum((lam > 1e-6) & (lam < 1 - 1e-6)) >= T // 3


@pytest.mark.parametrize("C", [2, 10, 100])
def test_solver_optimality_to_1e_12(rng, C):
    """Interior optima are roots of f' to |f'/f''| <= 1e-12; end points have the right slope."""
    n, T = 60, 300
    labels = rng.integers(0, C, size=n)
    X = mixed_models(rng, T, n, C, labels)
    lam = progress(X, labels, method="bhattacharyya")
    for k in range(T):
        _, d1, d2 = closed_form(X[k], labels, lam[k])
        if lam[k] == 0:
            assert d1[0] >= -1e-12
        elif lam[k] == 1:
            assert d1[0] <= 1e-12
        else:
            assert abs(d1[0] / d2[0]) <= 2e-12, (k, lam[k], d1, d2)


def angle_slope(P, labels, t):
    """Derivative of Σ_i angle(sqrt p_i, sqrt γ_i(t)) in t, from explicit vectors (P: (n, C)).

    d/dt of the angle between a unit vector v and sqrt γ(t) = cos(tθ) e1 + sin(tθ) e2 is
    -θ <v, e⊥(t)> / |v - <v, sqrt γ> sqrt γ|, with e⊥(t) = -sin(tθ) e1 + cos(tθ) e2.
    """
    n, C = P.shape
    th = theta(C)
    e1 = np.full((n, C), 1 / np.sqrt(C))
    e2 = (np.eye(C)[labels] - np.cos(th) * e1) / np.sin(th)
    v = np.sqrt(P) / np.linalg.norm(np.sqrt(P), axis=-1, keepdims=True)
    g = np.cos(t * th) * e1 + np.sin(t * th) * e2
    perp = -np.sin(t * th) * e1 + np.cos(t * th) * e2
    c = np.sum(v * g, axis=-1)
    return -th * np.sum(np.sum(v * perp, axis=-1) / np.linalg.norm(v - c[:, None] * g, axis=-1))


@pytest.mark.parametrize("C", [3, 10, 100])
def test_angle_solver_optimality_to_1e_12(rng, C):
    """The angle objective's one-sided slopes change sign within 1e-11 of the returned progress.

    Except for models within ~1e-4 of the geodesic on every sample: their squared distances
    h_i from the plane of the great circle, 1 - x_i² - y_i² from the coefficients, carry an
    absolute rounding error of ~1e-16, so they are located less precisely (to ~1e-8 when
    they are within 1e-8 of the geodesic; docs/method.md §3.3).
    """
    n, T = 60, 200
    labels = rng.integers(0, C, size=n)
    X = mixed_models(rng, T, n, C, labels)
    lam, dist = progress_and_distance(X, labels)
    assert np.sum((lam > 0) & (lam < 1)) >= T // 3
    close = dist < 1e-8  # d_B ~ angle² / 2: within ~1e-4 rad of the geodesic
    assert 0 < close.sum() < T // 4
    for k in range(T):
        tol = 1e-7 if close[k] else 1e-11
        if lam[k] > tol:
            assert angle_slope(X[k], labels, lam[k] - tol) < 0, (k, lam[k])
        if lam[k] < 1 - tol:
            assert angle_slope(X[k], labels, lam[k] + tol) > 0, (k, lam[k])


def test_angle_on_the_plane_of_the_geodesic_is_the_median(rng):
    """Each sample on its own geodesic, at its own position s_i: the angle objective is
    Σ_i θ |t - s_i|, so progress is the median of the s_i; d_B gives another answer."""
    C, n = 10, 41
    labels = rng.integers(0, C, size=n)
    s = rng.random(n) ** 4  # skewed: the median is far from the d_B minimiser (near the mean)
    P = geodesic(labels, C, s)[np.arange(n), np.arange(n)]
    assert progress(P, labels) == pytest.approx(np.median(s), abs=1e-11)
    lam_b = progress(P, labels, method="bhattacharyya")
    ts = np.linspace(0, 1, 10001)
    f_b = -np.log(np.cos((ts[:, None] - s[None, :]) * theta(C))).mean(axis=1)  # d_B along the geodesic
    assert lam_b == pytest.approx(ts[np.argmin(f_b)], abs=1e-4)
    assert abs(lam_b - np.median(s)) > 0.05
    # Two samples: the objective is flat between them; any point of the flat part is a minimiser.
    two = geodesic(labels[:2], C, np.array([0.2, 0.7]))[[0, 1], [0, 1]]
    assert 0.2 - 1e-12 <= progress(two, labels[:2]) <= 0.7 + 1e-12


@pytest.mark.parametrize("C", [10])
def test_worked_example_of_the_two_definitions(C):
    """docs/method.md §3.3: a model 85 % right and 15 % wrong, at confidence 0.99, on C = 10
    classes: progress ≈ 0.92 by the angle, ≈ 0.67 by d_B (the issue quotes 0.64)."""
    n = 100
    labels = np.zeros(n, dtype=int)
    P = np.full((n, C), 0.01 / (C - 1))
    P[:85, 0] = 0.99
    P[85:, 1] = 0.99
    lam_angle, lam_b = progress(P, labels), progress(P, labels, method="bhattacharyya")
    assert lam_angle == pytest.approx(brute_force_argmin(P, labels, "angle")[0], abs=1e-6)
    assert lam_b == pytest.approx(brute_force_argmin(P, labels)[0], abs=1e-6)
    assert lam_angle == pytest.approx(0.92, abs=0.01)
    assert lam_b == pytest.approx(0.65, abs=0.03)
    assert lam_angle > lam_b + 0.2


def test_unknown_method_is_refused(rng):
    labels = np.array([0, 1])
    for function in (progress, distance_to_geodesic, progress_and_distance):
        with pytest.raises(ValueError, match="method must be one of"):
            function(np.full((2, 2), 0.5), labels, method="cosine")
    with pytest.raises(ValueError, match="method must be one of"):
        progress_from_coefficients(np.ones(2), np.ones(2), 2, method="d_B")


def test_objective_is_strictly_convex(rng):
    """f'' = θ² + mean((g'/g)²) >= θ², so there are no non-monotone slopes to worry about."""
    C, n = 10, 40
    labels = rng.integers(0, C, size=n)
    X = mixed_models(rng, 24, n, C, labels)
    ts = np.linspace(0, 1, 201)[:-1]  # f(1) is +inf when some b_i = 0
    for P in X:
        f, d1, d2 = closed_form(P, labels, ts)
        assert np.all(d2 >= theta(C) ** 2)
        assert np.all(np.diff(d1) > 0)
        assert np.all(f[:-2] + f[2:] - 2 * f[1:-1] > 0)


def test_angle_objective_is_convex(rng):
    """Σ_i arccos g_i(t) is convex on [0, 1] (docs/method.md §3.3): second differences >= 0."""
    C, n = 10, 40
    labels = rng.integers(0, C, size=n)
    X = mixed_models(rng, 24, n, C, labels)
    ts = np.linspace(0, 1, 201)
    for P in X:
        F = brute_force_objective(P, labels, ts, method="angle")
        assert np.all(F[:-2] + F[2:] - 2 * F[1:-1] >= -1e-12)


def test_zero_mass_on_the_true_label(rng):
    """b_i = 0 sends f(1) to +inf: progress stays below 1, nothing is clamped at the default floor."""
    C, n = 10, 50
    labels = rng.integers(0, C, size=n)
    wrong = np.eye(C)[(labels + 1) % C]
    almost = truth(labels, C)
    almost[0] = wrong[0]  # one sample with all its mass on a wrong class
    uniform_wrong = np.full((n, C), 1 / (C - 1))
    uniform_wrong[np.arange(n), labels] = 0.0
    with warnings.catch_warnings():
        warnings.simplefilter("error", ClampWarning)
        lam, dist = progress_and_distance(np.stack([wrong, almost, uniform_wrong]), labels, method="bhattacharyya")
        lam_angle = progress(np.stack([wrong, almost, uniform_wrong]), labels)
    # Entirely wrong models are at the start by either definition. By the angle, one wrong
    # sample among 49 right ones leaves the model at truth (each sample's slope is at most θ).
    assert lam_angle[0] == 0.0 and lam_angle[2] == 0.0 and lam_angle[1] == 1.0
    # There d_B to the geodesic point is infinite: that sample clamps, with a warning.
    with pytest.warns(ClampWarning, match="1 \\(model, sample\\) inner products"):
        assert distance_to_geodesic(almost, labels) == pytest.approx(-np.log(1e-12) / n, rel=1e-12)
    # Entirely wrong: f'(0) = θ cos θ / sin θ > 0, so λ = 0 and d = -mean log a_i = log(sqrt(C)).
    assert lam[0] == 0.0 and dist[0] == pytest.approx(0.5 * np.log(C), rel=1e-12)
    assert lam[2] == 0.0
    # One wrong sample out of n: strictly inside, where the brute force puts it.
    assert 0.5 < lam[1] < 1
    grid = np.linspace(0.5, 1, 20001)[:-1]
    f = brute_force_objective(almost, labels, grid)
    assert abs(lam[1] - grid[np.argmin(f)]) <= 1e-4
    assert dist[1] <= f.min() + 1e-14
    # A floor above the smallest inner product clamps it in the distance only (the argmin
    # is that of the unclamped objective), with one warning.
    with pytest.warns(ClampWarning, match="1 \\(model, sample\\) inner products"):
        lam_f, dist_f = progress_and_distance(almost, labels, floor=0.05, method="bhattacharyya")
    assert lam_f == lam[1]
    assert dist_f == pytest.approx(brute_force_objective(almost, labels, np.array([lam_f]), floor=0.05)[0],
                                   rel=1e-12)
    assert dist_f < dist[1]


def test_memmap_in_blocks_equals_in_memory(rng, tmp_path, monkeypatch):
    C, n, T = 7, 23, 50
    labels = rng.integers(0, C, size=n)
    X = mixed_models(rng, T, n, C, labels).astype(np.float32)
    X /= X.sum(axis=-1, keepdims=True)
    lam, dist = progress_and_distance(X, labels)
    np.save(tmp_path / "X.npy", X)
    with np.errstate(divide="ignore"):
        np.save(tmp_path / "logX.npy", np.log(X))
    monkeypatch.setattr(geodesics, "_INPUT_ELEMENTS", 3 * n * C)  # blocks of 3 models
    monkeypatch.setattr(geodesics, "_SOLVE_ELEMENTS", 4 * n)
    M = np.load(tmp_path / "X.npy", mmap_mode="r")
    lam_m, dist_m = progress_and_distance(M, labels)
    np.testing.assert_allclose(lam_m, lam, rtol=0, atol=1e-15)
    np.testing.assert_allclose(dist_m, dist, rtol=1e-15, atol=1e-16)
    lam_l = progress(np.load(tmp_path / "logX.npy", mmap_mode="r"), labels, log=True)
    np.testing.assert_allclose(lam_l, lam, atol=1e-6)  # float32 log p is another input than float32 p
    # float32 input is reduced in float64: same answer as the same numbers cast up.
    np.testing.assert_allclose(progress(X.astype(np.float64), labels), lam, atol=1e-12)
    # Block-wise validation still names the model of the whole array.
    bad = X.copy()
    bad[37, 5, 2] = np.nan
    with pytest.raises(ValueError, match=re.escape("P: model 37, sample 5 contains NaN")):
        progress(bad, labels)


def test_samples_chunked_within_one_model(rng, monkeypatch):
    C, n = 6, 200
    labels = rng.integers(0, C, size=n)
    X = mixed_models(rng, 6, n, C, labels)
    lam, dist = progress_and_distance(X, labels)
    a, b = geodesic_coefficients(X, labels)
    monkeypatch.setattr(geodesics, "_INPUT_ELEMENTS", 50 * C)  # 50 samples at a time
    np.testing.assert_allclose(progress_and_distance(X, labels), (lam, dist), rtol=1e-14, atol=1e-15)
    np.testing.assert_allclose(geodesic_coefficients(X, labels), (a, b), rtol=1e-15)
    np.testing.assert_allclose(progress_and_distance(X[2], labels), (lam[2], dist[2]), rtol=1e-14, atol=1e-15)


def test_coefficients_and_progress_from_them(rng):
    C, n = 10, 40
    labels = rng.integers(0, C, size=n)
    X = mixed_models(rng, 12, n, C, labels)
    a, b = geodesic_coefficients(X, labels)
    assert a.shape == b.shape == (12, n) and a.dtype == b.dtype == np.float64
    np.testing.assert_allclose(a, np.sqrt(X / C).sum(axis=-1), rtol=1e-14)
    np.testing.assert_allclose(b, np.sqrt(X[:, np.arange(n), labels]), rtol=1e-15)
    with np.errstate(divide="ignore"):
        a_log, b_log = geodesic_coefficients(np.log(X), labels, log=True)
    np.testing.assert_allclose(a_log, a, rtol=1e-14)
    np.testing.assert_allclose(b_log, b, rtol=1e-14, atol=1e-300)
    for method in METHODS:
        lam, dist = progress_and_distance(X, labels, method=method)
        np.testing.assert_array_equal(progress_from_coefficients(a, b, C, method=method), lam)
        lam2, dist2 = progress_from_coefficients(a, b, C, method=method, return_distance=True)
        np.testing.assert_array_equal(lam2, lam)
        np.testing.assert_array_equal(dist2, dist)
    a0, b0 = geodesic_coefficients(X[3], labels)
    assert a0.shape == (n,)
    lam0 = progress_from_coefficients(a0, b0, C)
    assert isinstance(lam0, float) and lam0 == lam[3]
    # Inner products with the geodesic from the coefficients, as in docs/method.md §3.
    t = 0.37
    inner = (a * np.sin((1 - t) * theta(C)) + b * np.sin(t * theta(C))) / np.sin(theta(C))
    expected = np.sqrt(X * geodesic(labels, C, t)[None]).sum(axis=-1)
    np.testing.assert_allclose(inner, expected, rtol=1e-13)


def test_progress_from_coefficients_rejects_bad_input():
    a, b = np.full((2, 3), 0.5), np.full((2, 3), 0.5)
    with pytest.raises(ValueError, match="same shape"):
        progress_from_coefficients(a, b[:, :2], 4)
    with pytest.raises(ValueError, match="finite"):
        progress_from_coefficients(np.where(a == a, np.nan, a), b, 4)
    with pytest.raises(ValueError, match="a must be positive"):
        progress_from_coefficients(a * 0, b, 4)
    with pytest.raises(ValueError, match="b must be non-negative"):
        progress_from_coefficients(a, -b, 4)
    with pytest.raises(ValueError, match="n_classes"):
        progress_from_coefficients(a, b, 1)
    with pytest.raises(ValueError, match="floor"):
        progress_from_coefficients(a, b, 4, floor=0)


def test_progress_from_coefficients_warns_at_the_caller(rng):
    C, n = 10, 6
    labels = rng.integers(0, C, size=n)
    a, b = geodesic_coefficients(np.eye(C)[(labels + 1) % C], labels)
    with pytest.warns(ClampWarning) as record:
        progress_from_coefficients(a, b, C, floor=0.5, return_distance=True)
    assert len(record) == 1 and record[0].filename == __file__


@pytest.mark.parametrize("C", [2, 10, 37])
def test_distance_to_a_geodesic_point_is_bhattacharyya_to_it(rng, C):
    n = 25
    labels = rng.integers(0, C, size=n)
    X = random_models_around_the_path(rng, 4, n, C, labels)
    a, b = geodesic_coefficients(X, labels)
    ts = np.array([0.0, 0.3, 0.77, 1.0])
    got = distance_to_geodesic_point(a, b, C, ts)  # one t per model
    for k, t in enumerate(ts):
        assert got[k] == pytest.approx(bhattacharyya(X[k], geodesic(labels, C, t)), rel=1e-12, abs=1e-15)
        assert distance_to_geodesic_point(a[k], b[k], C, t) == pytest.approx(got[k], rel=1e-15)
    # one t for all models; at t = λ_B(P) it is the least distance to the geodesic, elsewhere larger
    lam, dist = progress_and_distance(X, labels, method="bhattacharyya")
    np.testing.assert_allclose(distance_to_geodesic_point(a, b, C, lam), dist, rtol=1e-13, atol=1e-15)
    assert np.all(distance_to_geodesic_point(a, b, C, 0.5) >= dist - 1e-15)
    # at the angle's progress it is the angle's distance to the geodesic, no less than the least one
    lam_a, dist_a = progress_and_distance(X, labels)
    np.testing.assert_allclose(distance_to_geodesic_point(a, b, C, lam_a), dist_a, rtol=1e-13, atol=1e-15)
    assert np.all(dist_a >= dist - 1e-15)
    # along the geodesic: d_B(γ(s), γ(t)) = -ln cos(|s - t| θ)
    s = np.array([0.1, 0.6])
    ga, gb = geodesic_coefficients(geodesic(labels, C, s), labels)
    np.testing.assert_allclose(distance_to_geodesic_point(ga, gb, C, 0.35),
                               -np.log(np.cos(np.abs(s - 0.35) * theta(C))), rtol=1e-12)


def test_distance_to_a_geodesic_point_rejects_bad_input(rng):
    a, b = np.full((2, 5), 0.6), np.full((2, 5), 0.3)
    for t in (-0.1, 1.5, np.nan, [0.1, 0.2, 0.3], [[0.5]]):
        with pytest.raises(ValueError, match="t must be a value in \\[0, 1\\] or 2 such values"):
            geodesics.distance_to_geodesic_point(a, b, 4, t)
    with pytest.raises(ValueError, match="a must be positive"):
        geodesics.distance_to_geodesic_point(-a, b, 4, 0.5)
    with pytest.raises(ValueError, match="n_classes"):
        geodesics.distance_to_geodesic_point(a, b, 1, 0.5)
    with pytest.warns(ClampWarning, match="10 \\(model, sample\\) inner products"):
        assert np.all(geodesics.distance_to_geodesic_point(a, b, 4, 0.5, floor=0.9) > 0)


# --------------------------------------------------------------------------- between any two models


@pytest.mark.parametrize("C", [2, 10, 37])
def test_geodesic_between_two_models_has_the_closed_form_distances(rng, C):
    """On the great circle of each sample, <sqrt r_i(s), sqrt r_i(t)> = cos(|s - t| ω_i) with
    cos ω_i = BC_i(P, Q), so d_B(r(s), r(t)) = -mean_i log cos(|s - t| ω_i) (docs/method.md §3.5)."""
    n = 30
    P, Q = rng.dirichlet(np.full(C, 0.5), size=(2, n))
    Q[0] = P[0]  # a sample on which the two agree
    ts = np.array([0.0, 0.1, 0.35, 0.5, 0.9, 1.0])
    R = geodesic_between(P, Q, ts)
    assert R.shape == (6, n, C)
    np.testing.assert_allclose(R.sum(axis=-1), 1.0, rtol=1e-14)
    np.testing.assert_allclose(R[0], P, atol=1e-15)
    np.testing.assert_allclose(R[-1], Q, atol=1e-15)
    omega = np.arccos(np.minimum(np.sqrt(P * Q).sum(axis=-1), 1.0))
    expected = -np.log(np.cos(np.abs(ts[:, None, None] - ts[None, :, None]) * omega)).mean(axis=-1)
    np.testing.assert_allclose(pairwise_distances(R), expected, rtol=1e-9, atol=1e-14)
    assert bhattacharyya(P, Q) == pytest.approx(expected[0, -1], rel=1e-12)
    # Constant speed: equal steps in t are equal angles per sample.
    np.testing.assert_allclose(bhattacharyya(R[1], R[3]), -np.log(np.cos(0.4 * omega)).mean(), rtol=1e-10)
    np.testing.assert_allclose(geodesic_between(P, Q, 0.35), R[2], rtol=1e-15, atol=0)
    with np.errstate(divide="ignore"):
        np.testing.assert_allclose(geodesic_between(np.log(P), np.log(Q), ts, log=True), R, atol=1e-15)


def test_geodesic_between_ignorance_and_truth_is_the_geodesic(rng):
    C, n = 10, 12
    labels = rng.integers(0, C, size=n)
    ts = np.linspace(0, 1, 11)
    np.testing.assert_allclose(geodesic_between(ignorance(labels, C), truth(labels, C), ts),
                               geodesic(labels, C, ts), atol=1e-15)
    # A corner (a model sure of wrong classes) to truth: progress rises from 0 to 1.
    corner = np.eye(C)[(labels + 3) % C] * 0.9 + 0.1 / C
    path = geodesic_between(corner, truth(labels, C), ts)
    lam = progress(path, labels)
    assert lam[0] == 0.0 and lam[-1] == pytest.approx(1.0, abs=1e-12) and np.all(np.diff(lam) >= 0)


def test_geodesic_between_rejects_bad_input(rng):
    P = rng.dirichlet(np.ones(3), size=4)
    for bad in (-0.1, 1.5, np.nan, [[0.5]]):
        with pytest.raises(ValueError, match="t must be a value in"):
            geodesic_between(P, P, bad)
    with pytest.raises(ValueError, match="same shape"):
        geodesic_between(P, P[:3], 0.5)
    with pytest.raises(ValueError, match="Q"):
        geodesic_between(P, -P, 0.5)
