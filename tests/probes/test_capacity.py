"""Manifold capacity against published values, closed forms and independent solvers.

- the reference's random-manifold example (mftma README: N = 5000, P = 100, M = 50);
- points: Cover's and Gardner's closed forms for the mean-field formula, Cover's 2 for
  the linear programs;
- planted manifolds: the linear programs agree with the mean-field estimate;
- the anchor solver against ``scipy.optimize.nnls``, the KKT conditions and a primal QP,
  and the whole per-manifold step against a plain per-sample port of the reference.
"""

import math
import warnings

import numpy as np
import pytest
from scipy.optimize import nnls
from scipy.stats import norm

from deepmanifold.probes._capacity import (
    CapacityResult,
    SimulatedCapacity,
    _anchor_geometry,
    _cone_projection,
    _reduce,
    manifold_capacity,
    simulated_capacity,
)


def planted(rng, P, M, N, D, R):
    """P manifolds of M points: a random centre of norm ~1 plus a centred Gaussian cloud of
    radius ~R in a random D-dimensional subspace."""
    centres = rng.standard_normal((P, N)) / np.sqrt(N)
    out = []
    for c in centres:
        B = np.linalg.qr(rng.standard_normal((N, D)))[0]
        U = rng.standard_normal((M, D))
        out.append(c + R * ((U - U.mean(axis=0)) @ B.T) / np.sqrt(D))
    return np.stack(out)


def gardner(kappa):
    """E[(t + κ)₊²] and E[(t + κ)₊⁴] for t ~ N(0, 1): α(κ) of points is 1 / the first."""
    phi, Phi = norm.pdf(kappa), norm.cdf(kappa)
    m2 = (1 + kappa**2) * Phi + kappa * phi
    m4 = (kappa**4 + 6 * kappa**2 + 3) * Phi + (kappa**3 + 5 * kappa) * phi
    return m2, m4


# --------------------------------------------------------------------------------------
# The published example


@pytest.fixture(scope="module")
def random_manifolds():
    """The reference's example: P = 100 manifolds of M = 50 standard normal points in N = 5000."""
    X = np.random.default_rng(2018).standard_normal((100, 50, 5000))
    return manifold_capacity(X, random_state=0)


def test_published_random_manifold_values(random_manifolds):
    # README of the reference: avg_capacity = 0.04, avg_radius = 1.48, avg_dimension = 36.17
    # "up to small differences due to n_t = 200 samples". Over 12 draws of data and
    # samples we measured α = 0.03981 ± 0.00005, R = 1.4755 ± 0.0014, D = 36.150 ± 0.015.
    r = random_manifolds
    assert isinstance(r, CapacityResult)
    assert r.capacity == pytest.approx(0.040, abs=5e-4)
    assert r.radius == pytest.approx(1.48, abs=0.01)
    assert r.dimension == pytest.approx(36.17, abs=0.1)
    assert r.capacities.shape == r.radii.shape == r.dimensions.shape == (100,)
    assert r.capacity == pytest.approx(1 / np.mean(1 / r.capacities), rel=1e-12)
    assert (r.n_t, r.kappa) == (200, 0.0)
    # Independent centres: only the -1/(P-1) of centring and ~1/sqrt(N) chance overlaps.
    assert 0.005 < r.center_correlation < 0.03


def test_ball_approximation_holds_on_random_manifolds(random_manifolds):
    # Chung et al. 2018: for large D, α_M ≈ (1 + R_M⁻²) / D_M; measured 1.4 % apart here.
    r = random_manifolds
    assert (1 + r.radius**-2) / r.dimension == pytest.approx(r.capacity, rel=0.03)


# --------------------------------------------------------------------------------------
# Points


@pytest.mark.parametrize("kappa", [0.0, 0.5])
def test_points_have_gardner_capacity(kappa):
    # M = 1: the anchor is the point itself, α⁻¹ = E[(t + κ)₊²] (Cover: 2 at κ = 0).
    P, n_t = 20, 20_000
    X = np.random.default_rng(1).standard_normal((P, 1, 50))
    r = manifold_capacity(X, kappa=kappa, n_t=n_t, random_state=1)
    m2, m4 = gardner(kappa)
    sigma = math.sqrt((m4 - m2**2) / (P * n_t)) / m2**2  # sampling std of 1/mean
    assert r.capacity == pytest.approx(1 / m2, abs=4 * sigma)
    assert np.all(r.radii == 0) and np.all(r.dimensions == 0)


def test_points_simulated_capacity_is_cover():
    # With a bias, P points in N' dimensions are separable with probability 1/2 at
    # P = 2 (N' + 1). Over 6 seeds P / (N_c + 1) was 1.94 to 2.07.
    P = 60
    X = np.random.default_rng(0).standard_normal((P, 1, 100))
    s = simulated_capacity(X, n_rep=40, random_state=0)
    assert isinstance(s, SimulatedCapacity)
    assert P / (s.n_critical + 1) == pytest.approx(2.0, abs=0.15)
    assert s.capacity == pytest.approx(P / s.n_critical)
    assert np.all(np.diff(s.n_values) > 0) and s.n_values[0] == 2 and s.n_values[-1] == 100
    assert s.p_separable[0] == 0 and s.p_separable[-1] == 1


# --------------------------------------------------------------------------------------
# Planted manifolds


def test_tiny_manifolds_behave_like_points():
    rng = np.random.default_rng(3)
    X = rng.standard_normal((20, 1, 50)) + 1e-3 * rng.standard_normal((20, 10, 50)) / np.sqrt(50)
    r = manifold_capacity(X, n_t=20_000, random_state=3)
    m2, m4 = gardner(0.0)
    assert r.capacity == pytest.approx(2.0, abs=4 * math.sqrt((m4 - m2**2) / 400_000) / m2**2)
    assert r.radius < 1e-3


def test_planted_manifolds_simulated_capacity_matches_mean_field():
    # Cohen et al. 2020 (Fig. 2): the simulated capacity follows the mean-field value.
    # Finite size here (P = 30, N_c ~ 30, 30 dichotomies): over 6 seeds the ratio of
    # P / (N_c + 1) (the bias counted as a dimension) to α_M was 0.97 to 1.10.
    X = planted(np.random.default_rng(0), P=30, M=8, N=150, D=3, R=0.5)
    mf = manifold_capacity(X, n_t=2000, random_state=0)
    sim = simulated_capacity(X, n_rep=30, random_state=0)
    assert 0.5 < mf.capacity < 1.5  # between points (2) and the ambient P/N
    assert 30 / (sim.n_critical + 1) == pytest.approx(mf.capacity, rel=0.15)


def test_simulated_capacity_without_a_bracket_is_nan_and_warns():
    rng = np.random.default_rng(0)
    # Ten clouds around one centre: no dichotomy is separable, even in all N dimensions.
    with pytest.warns(RuntimeWarning, match="below P/N"):
        s = simulated_capacity(rng.standard_normal((10, 30, 5)), n_rep=5, random_state=0)
    assert math.isnan(s.capacity) and math.isnan(s.n_critical)
    # Two far-apart tight clouds: separable already in 2 dimensions.
    X = np.stack([rng.standard_normal((5, 20)) * 0.01 + 10, rng.standard_normal((5, 20)) * 0.01 - 10])
    with pytest.warns(RuntimeWarning, match="above P/2"):
        s = simulated_capacity(X, n_rep=5, random_state=0)
    assert math.isnan(s.capacity)


def test_simplex_centres_have_the_closed_form_correlation():
    # Equal-norm orthogonal centres: after centring every pair has cosine -1/(P - 1).
    P, N = 6, 40
    rng = np.random.default_rng(0)
    X = 5 * np.eye(P, N)[:, None, :] + 0.1 * rng.standard_normal((P, 20, N))
    X -= X.mean(axis=1, keepdims=True) - 5 * np.eye(P, N)[:, None, :]  # exact centres
    r = manifold_capacity(X, random_state=0)
    assert r.center_correlation == pytest.approx(1 / (P - 1), rel=1e-12)
    assert 1 <= r.center_rank <= P - 2


def test_shared_structure_of_the_centres_is_projected_out():
    # Centres = independent part + a large common direction: removing it is what the
    # correlated-centres step is for, and it makes the capacity that of the independent
    # centres rather than of centres squeezed onto one axis.
    rng = np.random.default_rng(4)
    P, M, N = 12, 20, 200
    base = planted(rng, P, M, N, D=3, R=0.5)
    u = rng.standard_normal(N)
    shared = base + (4 * rng.standard_normal(P) / np.linalg.norm(u))[:, None, None] * u
    r_base = manifold_capacity(base, n_t=2000, random_state=0)
    r_shared = manifold_capacity(shared, n_t=2000, random_state=0)
    assert r_shared.center_correlation > 2 * r_base.center_correlation
    assert r_shared.center_rank >= 1
    assert r_shared.capacity == pytest.approx(r_base.capacity, rel=0.15)
    # A shared direction is found from a single random start as well.
    one = manifold_capacity(shared, n_t=2000, random_state=0, center_restarts=1)
    assert one.center_rank == r_shared.center_rank
    assert one.capacity == pytest.approx(r_shared.capacity, rel=0.02)


# --------------------------------------------------------------------------------------
# The anchor solver


def augmented(rng, D, m, spread=1.0):
    """S (D + 1, m): m random points in D dimensions with the constant coordinate 1."""
    return np.vstack([spread * rng.standard_normal((D, m)), np.ones((1, m))])


@pytest.mark.parametrize("D, m, spread", [(50, 50, 1.0), (10, 30, 1.0), (60, 40, 1.0), (3, 25, 1.0),
                                          (20, 15, 1e-3)])
def test_cone_projection_is_nnls(D, m, spread):
    rng = np.random.default_rng(D * m)
    S = augmented(rng, D, m, spread)
    T = rng.standard_normal((D + 1, 60))
    lam = _cone_projection(S, T)
    assert lam.shape == (60, m) and (lam >= 0).all()
    for j in range(T.shape[1]):
        x, _ = nnls(S, T[:, j])
        np.testing.assert_allclose(S @ lam[j], S @ x, atol=1e-10)
        if m <= D + 1:  # full column rank: λ itself is unique
            np.testing.assert_allclose(lam[j], x, atol=1e-8)


def test_cone_projection_with_repeated_points():
    # A singular Gram matrix (each point twice): Sλ is still the unique projection.
    rng = np.random.default_rng(5)
    S = augmented(rng, 6, 10)
    S = np.hstack([S, S[:, :4]])
    T = rng.standard_normal((7, 40))
    lam = _cone_projection(S, T)
    for j in range(T.shape[1]):
        np.testing.assert_allclose(S @ lam[j], S @ nnls(S, T[:, j])[0], atol=1e-10)


@pytest.mark.parametrize("kappa", [0.0, 0.3, 2.0])
def test_cone_projection_solves_the_margin_qp(kappa):
    # min ‖V − t‖² s.t. Sᵀ V <= −κ: V = t − Sλ must satisfy the KKT conditions, which
    # certify the optimum, and agree with a general-purpose solve of the primal.
    rng = np.random.default_rng(7)
    S = augmented(rng, 8, 12)
    T = rng.standard_normal((9, 25))
    lam = _cone_projection(S, T, kappa)
    V = T - S @ lam.T
    slack = S.T @ V + kappa  # <= 0, = 0 where λ > 0
    assert (lam >= 0).all()
    assert slack.max() <= 1e-10
    assert np.abs(lam.T * slack).max() <= 1e-10
    # An independent solver of the dual: scipy's NNLS on the shifted target t + κe (Sᵀe = 1).
    e = np.zeros(S.shape[0])
    e[-1] = 1.0
    for j in range(T.shape[1]):
        x, _ = nnls(S, T[:, j] + kappa * e)
        np.testing.assert_allclose(S @ lam[j], S @ x, atol=1e-9)


def reference_each_manifold(sD1, kappa, t_vec, eps=1e-8):
    """A per-sample port of the reference's ``each_manifold_analysis_D1``: a Python loop,
    ``maxproj`` by argmax, and ``scipy.optimize.nnls`` on the target ``t + κe`` in place of
    the cvxopt QP (its dual)."""
    D1, n_t = t_vec.shape
    D = D1 - 1
    e = np.zeros(D1)
    e[-1] = 1.0
    s_all = np.empty((D1, n_t))
    for i in range(n_t):
        t = t_vec[:, i]
        top = np.argmax(t[:D] @ sD1[:D])
        s0 = np.append(sD1[:D, top], 1.0)
        if t @ s0 + kappa < 0:
            s_all[:, i] = s0
            continue
        lam, _ = nnls(sD1, t + kappa * e)
        v = t - sD1 @ lam
        s_all[:, i] = s0 if np.linalg.norm(v - t) < eps else (t - v) / lam.sum()
    h = np.maximum((t_vec * s_all).sum(axis=0) + kappa, 0)
    s2 = (s_all**2).sum(axis=0)
    alpha = 1 / np.mean([hi**2 / si if si > 0 else 0 for hi, si in zip(h, s2)])
    ds = (s_all - s_all.mean(axis=1, keepdims=True))[:-1] / s_all[-1]
    radius = np.sqrt(np.mean((ds**2).sum(axis=0)))
    t_hat = t_vec[:D] / np.linalg.norm(t_vec[:D], axis=0)
    s_hat = s_all[:D] / np.sqrt((s_all[:D] ** 2).sum(axis=0) + 1e-12)
    return alpha, radius, D * np.mean((t_hat * s_hat).sum(axis=0)) ** 2


@pytest.mark.parametrize("kappa", [0.0, 0.5])
@pytest.mark.parametrize("M, N", [(30, 400), (20, 10), (1, 30)])
def test_anchor_geometry_matches_the_reference_loop(kappa, M, N):
    rng = np.random.default_rng(M + N)
    Z = rng.standard_normal((M, N))
    S = _reduce((Z - Z.mean(axis=0)) / np.sqrt(N / M))
    T = rng.standard_normal((S.shape[0], 150))
    ours = _anchor_geometry(S, T, kappa)
    ref = reference_each_manifold(S, kappa, T)
    np.testing.assert_allclose(ours, ref, rtol=1e-9, atol=1e-12)


# --------------------------------------------------------------------------------------
# Inputs


def test_input_forms_and_reproducibility():
    rng = np.random.default_rng(9)
    X = planted(rng, 5, 12, 30, D=3, R=0.5)
    a = manifold_capacity(X, random_state=3)
    b = manifold_capacity(list(X), random_state=3)
    c = manifold_capacity(X, random_state=np.random.default_rng(3))
    np.testing.assert_array_equal(a.capacities, b.capacities)
    np.testing.assert_array_equal(a.capacities, c.capacities)
    assert manifold_capacity(X, random_state=4).capacity != a.capacity
    # Classes of different sizes, as sampled data gives.
    r = manifold_capacity([X[0], X[1, :5], X[2, :1], X[3], X[4, :7]], random_state=0)
    assert r.capacities.shape == (5,) and np.isfinite(r.capacities).all()
    assert r.capacities[2] > 1.0  # a single point: close to Cover's 2


def test_more_manifolds_than_dimensions():
    rng = np.random.default_rng(2)
    X = rng.standard_normal((10, 20, 2)) + 3 * rng.standard_normal((10, 1, 2))
    r = manifold_capacity(X, random_state=0)
    assert np.isfinite(r.capacities).all() and (r.dimensions <= 2).all()


@pytest.mark.parametrize("func", [manifold_capacity, simulated_capacity])
def test_bad_manifolds_are_named(func):
    rng = np.random.default_rng(0)
    good = rng.standard_normal((3, 4, 5))
    with pytest.raises(ValueError, match="at least 2 manifolds, got 1"):
        func(good[:1])
    with pytest.raises(ValueError, match="shape"):
        func(good[0])
    with pytest.raises(ValueError, match="manifold 1 is empty"):
        func([good[0], np.zeros((0, 5)), good[2]])
    with pytest.raises(ValueError, match="manifold 2 has points of dimension N = 4, manifold 0 of N = 5"):
        func([good[0], good[1], good[2, :, :4]])
    bad = good.copy()
    bad[1, 2, 3] = np.nan
    with pytest.raises(ValueError, match=r"manifold 1 has 1 non-finite values \(first at point 2, dimension 3\)"):
        func(bad)
    bad[1, 2, 3] = np.inf
    with pytest.raises(ValueError, match="manifold 1 has 1 non-finite"):
        func(bad)


def test_zero_centre_norm_is_named():
    # Manifold 1's centre is the mean of the centres.
    X = [np.array([[1.0, 0.0], [1.0, 0.1]]), np.array([[0.0, 0.0], [0.0, 0.1]]), np.array([[-1.0, 0.0], [-1.0, 0.1]])]
    with pytest.raises(ValueError, match="manifold 1: its centre coincides with the mean of the centres"):
        manifold_capacity(X, random_state=0)
    # Manifold 0's centre is the mean of all points (the classes' sizes differ), though not
    # the mean of the centres.
    rng = np.random.default_rng(1)
    c1, c2 = rng.standard_normal(10), rng.standard_normal(10)
    X = [0.01 * rng.standard_normal((5, 10)), c1 + 0.01 * np.array([[1.0] * 10, [-1.0] * 10]), c2[None], -(2 * c1 + c2)[None]]
    X[0] -= X[0].mean(axis=0)
    with pytest.raises(ValueError, match="manifold 0: its centre coincides with the global mean"):
        manifold_capacity(X, random_state=0)


def test_bad_parameters():
    X = np.random.default_rng(0).standard_normal((3, 4, 5))
    for kappa in (-0.1, np.inf, np.nan, "1", True):
        with pytest.raises(ValueError, match="kappa"):
            manifold_capacity(X, kappa=kappa)
    for n_t in (0, 2.5, True):
        with pytest.raises(ValueError, match="n_t"):
            manifold_capacity(X, n_t=n_t)
    with pytest.raises(ValueError, match="center_restarts"):
        manifold_capacity(X, center_restarts=0)
    with pytest.raises(ValueError, match="n_rep"):
        simulated_capacity(X, n_rep=0)
    with pytest.raises(ValueError, match="p_tol"):
        simulated_capacity(X, p_tol=0.5)


def test_results_are_frozen():
    r = manifold_capacity(np.random.default_rng(0).standard_normal((3, 4, 5)), random_state=0)
    with pytest.raises(AttributeError):
        r.capacity = 1.0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert np.isfinite(r.capacity)
