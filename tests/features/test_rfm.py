"""Recursive Feature Machines: kernels and gradients against autograd, solvers against each
other and against explicit refits, planted features recovered, grokking, the scikit-learn
API and the input checks. The estimator checks themselves are in test_rfm_checks.py."""

import numpy as np
import pandas as pd
import pytest
import scipy.linalg
import torch
from sklearn.base import clone
from sklearn.metrics import r2_score
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from deepmanifold.features._kernels import (KERNELS, agop, feature_map, kernel_matrix, predictor_jacobian,
                                            sq_distances, to_features)
from deepmanifold.features._solvers import KernelRidgeError, solve_cg, solve_cholesky
from deepmanifold.features.rfm import RFMClassifier, RFMIteration, RFMRegressor

KERNEL_NAMES = sorted(KERNELS)


@pytest.fixture
def rng():
    return np.random.default_rng(20240613)


def _t(a):
    return torch.as_tensor(np.asarray(a, dtype=np.float64))


def _random_metric(rng, d, diag):
    """A PSD Mahalanobis matrix with eigenvalues in [0.2, 1.2] (full) or a positive diagonal."""
    if diag:
        return rng.uniform(0.2, 1.2, size=d)
    Q, _ = np.linalg.qr(rng.standard_normal((d, d)))
    return (Q * rng.uniform(0.2, 1.2, size=d)) @ Q.T


def _reference_kernel(name, x, Z, M, L):
    """K(x, z_j) for one point ``x`` straight from the definition, pair by pair (torch, differentiable)."""
    Mm = torch.diag(M) if M.ndim == 1 else M
    if name == "quadratic":
        return (Z @ (Mm @ x)) ** 2
    diff = x[None, :] - Z
    sq = ((diff @ Mm) * diff).sum(dim=1)
    if name == "laplace":
        return torch.exp(-torch.sqrt(sq) / L)
    return torch.exp(-sq / (2 * L**2))


def _autograd_jacobians(name, X, Z, alpha, M, L):
    """(s, c, d) Jacobians of f(x) = sum_j alpha_j K(x, z_j) by torch autograd."""
    f = lambda x: _reference_kernel(name, x, Z, M, L) @ alpha  # noqa: E731
    return torch.stack([torch.autograd.functional.jacobian(f, x) for x in X])


# ------------------------------------------------------------------ kernels, gradients
@pytest.mark.parametrize("diag", [False, True], ids=["full", "diag"])
@pytest.mark.parametrize("name", KERNEL_NAMES)
def test_kernel_matrix_matches_definition(rng, name, diag):
    d, L = 5, 1.7
    X, Z, M = _t(rng.standard_normal((6, d))), _t(rng.standard_normal((8, d))), _t(_random_metric(rng, d, diag))
    S = feature_map(M)
    K = kernel_matrix(KERNELS[name], to_features(X, S), to_features(Z, S), L)
    ref = torch.stack([_reference_kernel(name, x, Z, M, L) for x in X])
    torch.testing.assert_close(K, ref, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("diag", [False, True], ids=["full", "diag"])
@pytest.mark.parametrize("name", KERNEL_NAMES)
def test_predictor_jacobian_matches_autograd(rng, name, diag):
    d, L = 6, 2.3
    X, Z = _t(rng.standard_normal((5, d))), _t(rng.standard_normal((9, d)))
    alpha, M = _t(rng.standard_normal((9, 3))), _t(_random_metric(rng, d, diag))
    J = predictor_jacobian(KERNELS[name], X, Z, alpha, M, L)
    assert J.shape == (5, 3, d)
    torch.testing.assert_close(J, _autograd_jacobians(name, X, Z, alpha, M, L), rtol=1e-10, atol=1e-12)


def test_laplace_jacobian_drops_the_term_of_its_own_centre(rng):
    """At x = z_j the Laplace kernel has a cusp; the closed form takes that term's gradient as 0."""
    d, L = 4, 1.5
    Z, alpha, M = _t(rng.standard_normal((7, d))), _t(rng.standard_normal((7, 2))), _t(_random_metric(rng, d, False))
    X = Z[2:3].clone()
    J = predictor_jacobian(KERNELS["laplace"], X, Z, alpha, M, L)
    others = [0, 1, 3, 4, 5, 6]
    ref = _autograd_jacobians("laplace", X, Z[others], alpha[others], M, L)
    torch.testing.assert_close(J, ref, rtol=1e-10, atol=1e-12)


def test_sq_distances_exact_zero_on_duplicates_and_accurate_with_offset(rng):
    X = _t(rng.standard_normal((50, 30)) * 1e-3 + 1e3)  # a large shared offset
    D = sq_distances(X, X)
    assert torch.all(torch.diagonal(D) == 0)
    ref = ((X[:, None, :] - X[None, :, :]) ** 2).sum(-1)
    torch.testing.assert_close(D, ref, rtol=1e-6, atol=0)


@pytest.mark.parametrize("centering", [False, True])
@pytest.mark.parametrize("diag", [False, True], ids=["full", "diag"])
@pytest.mark.parametrize("name", KERNEL_NAMES)
def test_agop_matches_autograd_jacobians(rng, name, diag, centering):
    d, L = 5, 2.0
    X, Z = _t(rng.standard_normal((11, d))), _t(rng.standard_normal((13, d)))
    alpha, M = _t(rng.standard_normal((13, 4))), _t(_random_metric(rng, d, diag))
    J = _autograd_jacobians(name, X, Z, alpha, M, L)
    if centering:
        J = J - J.mean(dim=0)
    ref = torch.einsum("ikd,ike->de", J, J) / len(X)
    G = agop(KERNELS[name], X, Z, alpha, M, L, centering=centering)
    torch.testing.assert_close(G, torch.diagonal(ref) if diag else ref, rtol=1e-10, atol=1e-12)


# ------------------------------------------------------------------------------ solvers
def _problem(rng, n=400, d=6, c=2):
    X = _t(rng.standard_normal((n, d)))
    Y = torch.stack([X[:, 0] * X[:, 1], torch.sin(X[:, 2])], dim=1)[:, :c]
    return X, Y


def test_cholesky_leave_one_out_matches_refits(rng):
    X, Y = _problem(rng, n=40)
    kernel, L, reg = KERNELS["laplace"], 3.0, 1e-2
    sol = solve_cholesky(kernel_matrix(kernel, X, X, L), Y, reg, loo=True)
    K = kernel_matrix(kernel, X, X, L)
    for i in (0, 17, 39):
        keep = np.delete(np.arange(40), i)
        a = torch.linalg.solve(K[keep][:, keep] + reg * torch.eye(39, dtype=K.dtype), Y[keep])
        torch.testing.assert_close(sol.loo[i], K[i, keep] @ a, rtol=1e-8, atol=1e-10)
    torch.testing.assert_close(sol.fitted, K @ sol.alpha, rtol=1e-8, atol=1e-10)


@pytest.mark.parametrize("solver", ["cholesky", "cg"])
def test_results_do_not_depend_on_the_block_size(rng, monkeypatch, solver):
    """Tiny blocks run every blocked path (kernel rows, Jacobian and class chunks, the LOO sums)."""
    import deepmanifold.features._kernels as kernels
    import deepmanifold.features._solvers as solvers

    X = rng.standard_normal((60, 4))
    y = np.digitize(X[:, 0] * X[:, 1], [-0.5, 0.5])
    est = RFMClassifier(n_iter=2, solver=solver, random_state=0)
    ref = clone(est).fit(X, y)
    monkeypatch.setattr(kernels, "BLOCK_ELEMENTS", 150)
    monkeypatch.setattr(solvers, "BLOCK_ELEMENTS", 150)
    small = clone(est).fit(X, y)
    np.testing.assert_allclose(small.M_, ref.M_, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(small.predict_log_proba(X), ref.predict_log_proba(X), rtol=1e-8, atol=1e-10)
    assert small.temperature_ == pytest.approx(ref.temperature_, rel=1e-6)


@pytest.mark.parametrize("name", ["laplace", "gaussian"])
def test_cg_agrees_with_cholesky(rng, name):
    X, Y = _problem(rng, n=500)
    kernel, L, reg = KERNELS[name], 4.0, 1e-3
    direct = solve_cholesky(kernel_matrix(kernel, X, X, L), Y, reg)
    cg = solve_cg(kernel, X, Y, reg, L, rng=np.random.RandomState(0), n_landmarks=100)
    assert 0 < cg.n_iter < 200
    torch.testing.assert_close(cg.fitted, direct.fitted, rtol=0, atol=1e-5 * float(Y.abs().max()))
    assert float((cg.alpha - direct.alpha).norm() / direct.alpha.norm()) < 1e-4


def test_estimators_with_cg_match_cholesky(rng):
    X = rng.standard_normal((300, 5))
    y = X[:, 0] * X[:, 1]
    a = RFMRegressor(bandwidth=5.0, n_iter=2, solver="cholesky").fit(X, y)
    b = RFMRegressor(bandwidth=5.0, n_iter=2, solver="cg", random_state=0).fit(X, y)
    np.testing.assert_allclose(b.M_, a.M_, atol=1e-4)
    np.testing.assert_allclose(b.predict(X[:50]), a.predict(X[:50]), atol=1e-4)
    assert all(h.solver_iterations > 0 for h in b.history_)


def test_auto_solver_switches_to_cg_above_the_threshold(rng, monkeypatch):
    import deepmanifold.features._solvers as solvers

    X = rng.standard_normal((120, 3))
    monkeypatch.setattr(solvers, "CHOLESKY_MAX_SAMPLES", 100)
    rfm = RFMClassifier(n_iter=1, random_state=0).fit(X, X[:, 0] > 0)
    assert all(h.solver_iterations > 0 for h in rfm.history_)
    assert np.isfinite(rfm.temperature_)
    monkeypatch.setattr(solvers, "CHOLESKY_MAX_SAMPLES", 120)
    assert all(h.solver_iterations == 0 for h in RFMClassifier(n_iter=1).fit(X, X[:, 0] > 0).history_)


def test_unfactorisable_kernel_asks_to_raise_reg():
    with pytest.raises(KernelRidgeError, match="raise `reg`"):
        solve_cholesky(-torch.eye(3, dtype=torch.float64), torch.ones(3, 1, dtype=torch.float64), 0.0)
    X = np.array([[1.0, 2.0], [1.0, 2.0], [0.0, 1.0]])  # duplicate rows: K + 0 I is singular
    with pytest.raises(ValueError, match="raise `reg`"):
        RFMRegressor(reg=0.0, n_iter=0).fit(X, [0.0, 1.0, 2.0])
    with pytest.raises(ValueError, match="reg > 0"):
        RFMRegressor(reg=0.0, solver="cg").fit(X, [0.0, 1.0, 2.0])


# ------------------------------------------------------------------ planted features
def _planted(rng, n, d=12):
    X = rng.standard_normal((n, d))
    return X, X[:, 0] * X[:, 1] + np.sin(X[:, 1])


def test_rfm_recovers_planted_coordinates(rng):
    X, y = _planted(rng, 800)
    Xte, yte = _planted(rng, 1000)
    rfm = RFMRegressor(bandwidth=10.0, n_iter=4).fit(X, y)
    w, V = np.linalg.eigh(rfm.M_)
    planted = np.eye(X.shape[1])[:, :2]
    angles = scipy.linalg.subspace_angles(V[:, -2:], planted)
    assert angles.max() < 0.1, angles
    assert rfm.feature_importances_[:2].sum() > 0.95
    assert w[-3] < 0.05 * w[-1]  # rank 2 to within 5 %
    plain = RFMRegressor(bandwidth=10.0, n_iter=0).fit(X, y)
    assert plain.score(Xte, yte) < 0.9
    assert rfm.score(Xte, yte) > plain.score(Xte, yte) + 0.1
    assert [h.iteration for h in rfm.history_] == [0, 1, 2, 3, 4] and rfm.n_iter_ == 4


def test_diagonal_rfm_recovers_planted_coordinates(rng):
    X, y = _planted(rng, 600)
    rfm = RFMRegressor(bandwidth=10.0, n_iter=3, diag=True).fit(X, y)
    assert rfm.M_.shape == (12,)
    assert rfm.M_.max() == pytest.approx(1.0)
    assert rfm.feature_importances_[:2].sum() > 0.95
    np.testing.assert_allclose(rfm.feature_importances_.sum(), 1.0)


def test_agop_subsample_and_validation_selection(rng):
    X, y = _planted(rng, 500)
    rfm = RFMRegressor(n_iter=3, agop_samples=100, validation_fraction=0.25, random_state=0).fit(X, y)
    val = [h.validation_score for h in rfm.history_]
    assert len(val) == 4 and rfm.n_iter_ == int(np.argmax(val))
    assert rfm.dual_coef_.shape == (500, 1)  # refit on all rows
    again = RFMRegressor(n_iter=3, agop_samples=100, validation_fraction=0.25, random_state=0).fit(X, y)
    np.testing.assert_array_equal(again.M_, rfm.M_)


def test_warm_start_continues_the_iteration(rng):
    X, y = _planted(rng, 300)
    two = RFMRegressor(n_iter=2).fit(X, y)
    warm = RFMRegressor(n_iter=1, warm_start=True).fit(X, y)
    warm.fit(X, y)
    np.testing.assert_allclose(warm.M_, two.M_, atol=1e-10)
    assert warm.history_[0].train_score == pytest.approx(two.history_[1].train_score)
    with pytest.raises(ValueError, match="warm_start"):
        warm.fit(X[:, :5], y)


def test_transform_is_the_learned_metric(rng):
    X, y = _planted(rng, 200)
    rfm = RFMRegressor(n_iter=2).fit(X, y)
    T = rfm.transform(X[:5])
    u = X[0] - X[1]
    assert np.sum((T[0] - T[1]) ** 2) == pytest.approx(u @ rfm.M_ @ u, rel=1e-9)
    assert list(rfm.get_feature_names_out()[:2]) == ["rfmregressor0", "rfmregressor1"]


def test_constant_columns_get_zero_weight(rng):
    X, y = _planted(rng, 200, d=4)
    X[:, 2] = 5.0
    rfm = RFMRegressor(n_iter=2).fit(X, y)
    assert np.all(np.isfinite(rfm.M_)) and np.all(np.isfinite(rfm.predict(X)))
    assert rfm.feature_importances_[2] == pytest.approx(0.0, abs=1e-12)
    flat = RFMRegressor(n_iter=1).fit(np.ones((10, 3)), np.arange(10.0))
    np.testing.assert_array_equal(flat.M_, 0.0)
    np.testing.assert_array_equal(flat.feature_importances_, 0.0)


# ------------------------------------------------------------------------- grokking
def test_grokking_modular_addition():
    """Mallinar et al.: train accuracy is perfect throughout, test accuracy sits at ~0 and then jumps.

    p = 31 with 60 % of the pairs: with half of them a small modulus leaves too few pairs
    for the transition to complete within a few dozen iterations (p = 17 stalls near 15 %);
    the example runs the paper's p = 61 with half.
    """
    p = 31
    a, b = np.divmod(np.arange(p * p), p)
    X = np.hstack([np.eye(p)[a], np.eye(p)[b]])
    y = (a + b) % p
    perm = np.random.default_rng(0).permutation(p * p)
    tr, te = perm[: int(0.6 * p * p)], perm[int(0.6 * p * p):]
    clf = RFMClassifier(kernel="quadratic", power=0.5, n_iter=1, warm_start=True)
    train, test = [], []
    for _ in range(16):
        clf.fit(X[tr], y[tr])
        train.append(clf.history_[-1].train_score)
        test.append(clf.score(X[te], y[te]))
    assert min(train) == 1.0 and clf.history_[0].train_score == 1.0
    assert max(test[:6]) < 2.0 / p  # at or below chance for the first iterations
    assert test[-1] > 0.95
    assert max(np.diff(test)) > 0.2  # a jump, not a drift


# ------------------------------------------------------------------ scikit-learn API
def test_clone_gridsearch_and_pipeline(rng):
    X, y = _planted(rng, 200, d=5)
    est = RFMRegressor(n_iter=1, bandwidth=3.0)
    assert clone(est).get_params() == est.get_params()
    grid = GridSearchCV(est, {"bandwidth": [1.0, 10.0]}, cv=2).fit(X, y)
    assert grid.best_params_["bandwidth"] in (1.0, 10.0)
    pipe = make_pipeline(StandardScaler(), RFMClassifier(n_iter=1)).fit(X, y > 0)
    assert pipe.score(X, y > 0) > 0.9


@pytest.mark.parametrize("labels", [np.array(["cat", "dog", "eel"]), np.array([-7, 3, 100])])
def test_labels_round_trip(rng, labels):
    X = rng.standard_normal((90, 3)) + np.repeat(np.eye(3) * 4, 30, axis=0)
    y = labels[np.repeat(np.arange(3), 30)]
    clf = RFMClassifier(n_iter=1).fit(X, y)
    np.testing.assert_array_equal(clf.classes_, np.sort(labels))
    pred = clf.predict(X)
    assert pred.dtype == y.dtype and np.mean(pred == y) > 0.95
    P = clf.predict_proba(X)
    np.testing.assert_allclose(P.sum(axis=1), 1.0)
    np.testing.assert_array_equal(clf.classes_[P.argmax(axis=1)], pred)
    np.testing.assert_allclose(np.exp(clf.predict_log_proba(X)), P, rtol=1e-12)
    assert clf.decision_function(X).shape == (90, 3)


def test_binary_decision_function_and_temperature(rng):
    X = rng.standard_normal((120, 4))
    y = np.where(X[:, 0] + 0.5 * rng.standard_normal(120) > 0, "yes", "no")
    clf = RFMClassifier(n_iter=1).fit(X, y)
    dec = clf.decision_function(X)
    assert dec.shape == (120,)
    np.testing.assert_array_equal(clf.predict(X), np.where(dec > 0, "yes", "no"))
    np.testing.assert_allclose(clf.predict_proba(X)[:, 1], 1 / (1 + np.exp(-dec / clf.temperature_)), rtol=1e-10)
    # noisy labels: the leave-one-out scores are imperfect, so the fitted temperature is finite
    assert 1e-3 < clf.temperature_ < 1e3


def test_multi_output_regression(rng):
    X = rng.standard_normal((150, 4))
    Y = np.column_stack([X[:, 0], X[:, 1] ** 2, -X[:, 2]])
    rfm = RFMRegressor(n_iter=2).fit(X, Y)
    assert rfm.predict(X).shape == (150, 3) and rfm.dual_coef_.shape == (150, 3)
    assert r2_score(Y, rfm.predict(X)) > 0.99
    assert RFMRegressor(n_iter=0).fit(X, Y[:, :1]).predict(X).shape == (150, 1)


def test_dataframe_sets_feature_names(rng):
    df = pd.DataFrame(rng.standard_normal((60, 3)), columns=["a", "b", "c"])
    rfm = RFMRegressor(n_iter=1).fit(df, df["a"] * df["b"])
    np.testing.assert_array_equal(rfm.feature_names_in_, ["a", "b", "c"])
    assert rfm.predict(df).shape == (60,)


# ------------------------------------------------------------------------- bad input
@pytest.mark.parametrize("value, kind", [(np.nan, "NaN"), (np.inf, "infinity")])
def test_non_finite_features_name_the_column(rng, value, kind):
    X = rng.standard_normal((20, 4))
    X[3, 2] = value
    with pytest.raises(ValueError, match=f"contains {kind} in column 2"):
        RFMRegressor().fit(X, np.arange(20.0))
    df = pd.DataFrame(X, columns=["w", "x", "y", "z"])
    with pytest.raises(ValueError, match=f"{kind} in column 2 \\('y'\\)"):
        RFMRegressor().fit(df, np.arange(20.0))
    fitted = RFMRegressor(n_iter=0).fit(np.nan_to_num(X, posinf=0.0), np.arange(20.0))
    with pytest.raises(ValueError, match="column 2"):
        fitted.predict(X)


def test_non_numeric_columns_are_named(rng):
    df = pd.DataFrame({"x": rng.standard_normal(10), "colour": ["red"] * 10})
    with pytest.raises(ValueError, match="column 1 \\('colour'\\)"):
        RFMClassifier().fit(df, np.arange(10) % 2)
    A = np.array([[1.0, "a"], [2.0, "b"], [3.0, "c"]], dtype=object)
    with pytest.raises(ValueError, match="column 1 does not convert"):
        RFMRegressor().fit(A, [1.0, 2.0, 3.0])


def test_shape_and_label_problems(rng):
    X = rng.standard_normal((10, 3))
    with pytest.raises(ValueError, match="1 class"):
        RFMClassifier().fit(X, ["a"] * 10)
    with pytest.raises(ValueError, match="1 sample"):
        RFMRegressor().fit(X[:1], [1.0])
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        RFMRegressor().fit(X, np.arange(9.0))
    fitted = RFMRegressor(n_iter=0).fit(X, np.arange(10.0))
    with pytest.raises(ValueError, match="X has 2 features, but RFMRegressor is expecting 3"):
        fitted.predict(X[:, :2])
    with pytest.raises(ValueError, match="Unknown label type"):
        RFMClassifier().fit(X, np.linspace(0, 1, 10))


@pytest.mark.parametrize("params, match", [
    ({"kernel": "cosine"}, "kernel must be one of"),
    ({"bandwidth": 0.0}, "bandwidth must be > 0"),
    ({"reg": -1.0}, "reg must be >= 0"),
    ({"n_iter": 1.5}, "n_iter must be an integer"),
    ({"power": 0}, "power must be > 0"),
    ({"validation_fraction": 1.0}, "validation_fraction must be < 1"),
    ({"solver": "lu"}, "solver must be one of"),
    ({"diag": "yes"}, "diag must be a bool"),
    ({"device": "tpu:x"}, "device must name a torch device"),
])
def test_bad_parameters(rng, params, match):
    with pytest.raises(ValueError, match=match):
        RFMRegressor(**params).fit(rng.standard_normal((10, 2)), np.arange(10.0))


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message for a missing GPU")
def test_cuda_without_a_gpu_is_an_error(rng):
    with pytest.raises(ValueError, match="no CUDA device"):
        RFMRegressor(device="cuda").fit(rng.standard_normal((10, 2)), np.arange(10.0))


def test_history_entries_are_dataclasses(rng):
    X, y = _planted(rng, 100, d=3)
    rfm = RFMRegressor(n_iter=2).fit(X, y)
    assert all(isinstance(h, RFMIteration) and h.validation_score is None for h in rfm.history_)
