"""InPCA against classical MDS/PCA identities, explicit centring, and Gower projection."""

import numpy as np
import pytest

from deepmanifold.geometry import embedded_sq_distances, geodesic, inpca, pairwise_distances


def explicit_W(D):
    """-1/2 J D J with J formed explicitly (the textbook definition)."""
    T = D.shape[0]
    J = np.eye(T) - np.ones((T, T)) / T
    return -0.5 * J @ D @ J


def align_signs(A, B):
    """Flip columns of A to best match B (eigenvector signs are arbitrary)."""
    return A * np.sign(np.sum(A * B, axis=0))


def gaussian_means_problem(rng, T=12, sigma=0.7):
    means = rng.normal(size=(T, 3)) * np.array([3.0, 1.5, 0.5])
    diff = means[:, None, :] - means[None, :, :]
    D = np.sum(diff**2, axis=-1) / (8 * sigma**2)  # d_B of isotropic Gaussians, equal variance
    scaled = means / np.sqrt(8 * sigma**2)
    return D, scaled


def pca_scores(Y):
    Yc = Y - Y.mean(axis=0)
    U, S, Vt = np.linalg.svd(Yc, full_matrices=False)
    return U * S, S, Vt


def test_equal_variance_gaussians_reduce_to_pca_of_means(rng):
    D, scaled = gaussian_means_problem(rng)
    res = inpca(D, n_components=3)
    scores, S, _ = pca_scores(scaled)
    np.testing.assert_allclose(res.eigenvalues, S**2, rtol=1e-10)
    np.testing.assert_allclose(align_signs(res.coords, scores), scores, atol=1e-10)
    np.testing.assert_array_equal(res.signature, [1, 1, 1])
    assert res.explained_fraction[-1] == pytest.approx(1.0, abs=1e-12)
    assert res.explained_stress[-1] == pytest.approx(1.0, abs=1e-6)


def test_gower_projection_of_new_gaussian_is_its_pca_projection(rng):
    D, scaled = gaussian_means_problem(rng)
    res = inpca(D, n_components=3)
    scores, _, Vt = pca_scores(scaled)
    new = rng.normal(size=(4, 3)) / np.sqrt(8 * 0.7**2)
    d_new = np.sum((new[:, None, :] - scaled[None, :, :]) ** 2, axis=-1)
    expected = (new - scaled.mean(axis=0)) @ Vt.T
    signs = np.sign(np.sum(res.coords * scores, axis=0))
    np.testing.assert_allclose(res.transform(d_new) * signs, expected, atol=1e-10)
    np.testing.assert_allclose(res.transform(d_new[0]), res.transform(d_new)[0])


@pytest.mark.parametrize("solver", ["dense", "lanczos", "randomized"])
def test_transform_of_no_new_models_is_an_empty_array(rng, solver):
    """Zero new models (``d_new`` of shape ``(0, T)``, e.g. a selection that matched
    nothing) are placed as zero rows of coordinates, on every solver's result."""
    D = gaussian_means_problem(rng, T=40)[0]
    res = inpca(D, n_components=3, solver=solver, random_state=0)
    assert res.info["solver"] == solver
    for empty in (np.empty((0, 40)), np.empty((0, 40), dtype=np.float32), np.zeros((0, 40), dtype=int)):
        placed = res.transform(empty)
        assert placed.shape == (0, 3) and placed.dtype == np.float64
    np.testing.assert_array_equal(res.transform(D[:0]), res.transform(D)[:0])
    with pytest.raises(ValueError, match=r"expected shape \(m, 40\) or \(40,\), got shape \(0,\)"):
        res.transform([])  # one model with no distances, not zero models


def test_discretised_gaussians_end_to_end():
    sigma = 1.0
    means = np.linspace(-2, 2, 9) ** 3 / 4  # uneven spacing on a line
    x = np.linspace(-12, 12, 2401)
    dens = np.exp(-((x[None, :] - means[:, None]) ** 2) / (2 * sigma**2))
    X = (dens / dens.sum(axis=1, keepdims=True))[:, None, :]
    res = inpca(pairwise_distances(X), n_components=3)
    expected = (means - means.mean()) / np.sqrt(8 * sigma**2)
    np.testing.assert_allclose(align_signs(res.coords[:, :1], expected[:, None])[:, 0], expected, atol=1e-6)
    assert abs(res.eigenvalues[1]) < 1e-6 * res.eigenvalues[0]
    assert res.explained_fraction[0] == pytest.approx(1.0, abs=1e-9)


def test_eigenvalues_match_explicit_double_centring(rng, models):
    D = pairwise_distances(models(rng, 15, 30, 4, concentration=0.3))
    res = inpca(D, n_components=15)
    W = explicit_W(D)
    lam = np.linalg.eigvalsh(W)
    np.testing.assert_allclose(res.eigenvalues, lam[np.argsort(-np.abs(lam))], atol=1e-12)
    assert res.total_sq_norm == pytest.approx(np.sum(W**2), rel=1e-12)
    assert np.all(np.diff(np.abs(res.eigenvalues)) <= 1e-15)


def test_explained_stress_on_hand_made_configuration():
    # Points +-a e1, +-b e2 (centred): W = X X^T has eigenvalues 2a^2, 2b^2, 0, 0.
    a, b = 2.0, 1.0
    pts = np.array([[a, 0], [-a, 0], [0, b], [0, -b]])
    D = np.sum((pts[:, None] - pts[None]) ** 2, axis=-1)
    res = inpca(D, n_components=2)
    np.testing.assert_allclose(res.eigenvalues, [8.0, 2.0], atol=1e-12)
    assert res.total_sq_norm == pytest.approx(68.0)
    np.testing.assert_allclose(res.explained_fraction, [64 / 68, 1.0], atol=1e-12)
    np.testing.assert_allclose(res.explained_stress, [1 - np.sqrt(4 / 68), 1.0], atol=1e-7)


def test_explained_stress_is_relative_residual_norm(rng, models):
    D = pairwise_distances(models(rng, 12, 20, 3, concentration=0.2))
    W = explicit_W(D)
    res = inpca(D, n_components=12)
    lam, vecs = np.linalg.eigh(W)
    order = np.argsort(-np.abs(lam))
    for k in (1, 2, 5):
        Wk = (vecs[:, order[:k]] * lam[order[:k]]) @ vecs[:, order[:k]].T
        residual = np.linalg.norm(W - Wk) / np.linalg.norm(W)
        assert res.explained_stress[k - 1] == pytest.approx(1 - residual, abs=1e-7)
        assert res.explained_fraction[k - 1] == pytest.approx(np.sum(lam[order[:k]] ** 2) / np.sum(W**2), rel=1e-12)
    assert np.all(np.diff(res.explained_stress) >= -1e-15)
    assert res.explained_stress[2] < res.explained_fraction[2]  # the two measures are different numbers


def test_negative_eigenvalues_are_kept_as_time_like_axes():
    # sqrt(d13) = sqrt(5) > sqrt(d12) + sqrt(d23) = 2: not a squared Euclidean distance.
    D = np.array([[0.0, 1.0, 5.0], [1.0, 0.0, 1.0], [5.0, 1.0, 0.0]])
    res = inpca(D, n_components=3)
    assert np.any(res.eigenvalues < -1e-9)
    np.testing.assert_array_equal(res.signature, np.where(res.eigenvalues < 0, -1, 1))
    np.testing.assert_allclose(embedded_sq_distances(res.coords, res.signature), D, atol=1e-12)
    # Dropping the sign would not reproduce D.
    assert not np.allclose(embedded_sq_distances(res.coords, np.ones(3)), D)


def test_full_rank_reconstruction_of_bhattacharyya_matrix(rng, models):
    D = pairwise_distances(models(rng, 20, 15, 5, concentration=0.3))
    res = inpca(D, n_components=20)
    assert np.any(res.signature == -1)  # d_B is not a squared Euclidean distance
    np.testing.assert_allclose(embedded_sq_distances(res.coords, res.signature), D, atol=1e-12)


def test_transform_of_embedded_rows_returns_their_coordinates(rng, models):
    D = pairwise_distances(models(rng, 10, 25, 4))
    res = inpca(D, n_components=9)  # the 10th eigenvalue is the centring zero
    assert np.min(np.abs(res.eigenvalues)) > 1e-8
    np.testing.assert_allclose(res.transform(D), res.coords, atol=1e-10)


def test_geodesic_points_embed_on_one_curve(rng):
    C, K = 10, 41
    labels = rng.integers(0, C, size=30)
    ts = np.linspace(0, 1, K)
    D = pairwise_distances(geodesic(labels, C, ts))
    res = inpca(D, n_components=K)
    np.testing.assert_allclose(embedded_sq_distances(res.coords, res.signature), D, atol=1e-12)
    # One curve: the first axis orders the points by t, and the top three axes
    # carry almost all of the stress, varying smoothly along t.
    first = res.coords[:, 0]
    assert np.all(np.diff(first) > 0) or np.all(np.diff(first) < 0)
    assert res.explained_stress[2] > 0.99
    top = res.coords[:, :3]
    steps = np.linalg.norm(np.diff(top, axis=0), axis=1)
    assert np.all(np.abs(np.diff(np.log(steps))) < 0.2)  # step lengths change slowly: no jumps or folds
    # D depends on |s - t| only, so the step profile is symmetric under t -> 1 - t.
    np.testing.assert_allclose(steps, steps[::-1], rtol=1e-6)


def test_sign_convention_is_deterministic(rng, models):
    D = pairwise_distances(models(rng, 8, 10, 3))
    res = inpca(D, n_components=4)
    vectors = res.coords / np.sqrt(np.abs(res.eigenvalues))
    pivots = vectors[np.argmax(np.abs(vectors), axis=0), np.arange(4)]
    assert np.all(pivots > 0)
    perm = rng.permutation(8)  # relabelling the models permutes the rows only
    res_perm = inpca(D[np.ix_(perm, perm)], n_components=4)
    np.testing.assert_allclose(res_perm.coords, res.coords[perm], atol=1e-10)


def test_zero_matrix_is_handled():
    res = inpca(np.zeros((4, 4)), n_components=2)
    np.testing.assert_array_equal(res.coords, 0.0)
    np.testing.assert_array_equal(res.explained_stress, 1.0)
    assert np.all(np.isfinite(res.transform(np.zeros(4))))


# --------------------------------------------------------------------------- explained distance


def brute_explained_distance(D, res, weights=None):
    """1 - ||D - D_k|| / ||D|| for every k, forming D_k; entries weighted by m_i m_j."""
    m = np.ones(D.shape[0]) if weights is None else np.asarray(weights, dtype=float)
    mm = m[:, None] * m[None, :]
    out = []
    for k in range(1, res.n_components + 1):
        Dk = embedded_sq_distances(res.coords[:, :k], res.signature[:k])
        out.append(1 - np.sqrt(np.sum(mm * (D - Dk) ** 2) / np.sum(mm * D**2)))
    return np.array(out)


def bhattacharyya_D(rng, T=40, n=25, C=4):
    X = rng.dirichlet(np.full(C, 0.3), size=(T, n))
    return pairwise_distances(X)


def test_explained_distance_is_the_closed_form_of_the_embedded_distances(rng):
    """||D - D_k||_F from the eigenpairs (docs/method.md §4.2) equals the one of the formed D_k,
    time-like axes included; all T axes reproduce D."""
    D = bhattacharyya_D(rng)
    res = inpca(D, 40)
    assert np.any(res.signature < 0)
    np.testing.assert_allclose(res.explained_distance, brute_explained_distance(D, res), atol=1e-8)
    assert res.explained_distance[-1] == pytest.approx(1.0, abs=1e-7)
    # For a Euclidean D (Gaussians of equal variance) 3 axes reproduce every distance.
    G = gaussian_means_problem(rng)[0]
    assert inpca(G, 3).explained_distance[-1] == pytest.approx(1.0, abs=1e-7)
    assert inpca(G, 1).explained_distance[0] < 0.99


@pytest.mark.parametrize("solver", ["lanczos", "randomized"])
def test_explained_distance_of_the_iterative_solvers(rng, solver):
    D = bhattacharyya_D(rng, T=120)
    ref = inpca(D, 5, solver="dense")
    res = inpca(D, 5, solver=solver, random_state=0)
    np.testing.assert_allclose(res.explained_distance, ref.explained_distance, atol=1e-8)
    np.testing.assert_allclose(res.explained_distance, brute_explained_distance(D, res), atol=1e-8)


# --------------------------------------------------------------------------- weighted InPCA


def test_equal_weights_give_plain_inpca(rng):
    D = bhattacharyya_D(rng)
    ref = inpca(D, 4)
    for c in (1.0, 3.7):
        res = inpca(D, 4, weights=np.full(40, c))
        np.testing.assert_allclose(res.eigenvalues, c * ref.eigenvalues, rtol=1e-10)
        np.testing.assert_allclose(res.coords, ref.coords, atol=1e-10)
        for name in ("explained_stress", "explained_fraction", "explained_distance"):
            np.testing.assert_allclose(getattr(res, name), getattr(ref, name), atol=1e-10)
        np.testing.assert_allclose(res.transform(D[:3] + 0.01), ref.transform(D[:3] + 0.01), atol=1e-10)
    assert ref.weights is None and np.all(res.weights == 3.7)


@pytest.mark.parametrize("solver", ["dense", "lanczos", "randomized"])
def test_integer_weights_equal_repeating_models(rng, solver):
    """Weight m_i is model i repeated m_i times: the same eigenvalues, every copy at the
    model's coordinates, the same stress, distance and Gower projection."""
    D = bhattacharyya_D(rng, T=30)
    m = rng.integers(1, 4, size=30)
    rep = np.repeat(np.arange(30), m)
    ref = inpca(D[np.ix_(rep, rep)], 4, solver="dense")
    res = inpca(D, 4, weights=m, solver=solver, random_state=0)
    np.testing.assert_allclose(res.eigenvalues, ref.eigenvalues, rtol=1e-8)
    np.testing.assert_allclose(res.coords[rep], ref.coords, atol=1e-8 * np.abs(ref.coords).max())
    np.testing.assert_allclose(res.explained_stress, ref.explained_stress, atol=1e-9)
    np.testing.assert_allclose(res.explained_distance, ref.explained_distance, atol=1e-8)
    np.testing.assert_allclose(res.explained_distance, brute_explained_distance(D, res, m), atol=1e-8)
    new = D[:2] * 1.1 + 0.02  # rows of distances of two new models
    np.testing.assert_allclose(res.transform(new), ref.transform(new[:, rep]), atol=1e-8)
    np.testing.assert_allclose(res.transform(D[:5]), res.coords[:5], atol=1e-8)


def test_weights_balance_runs_of_different_lengths():
    """Two runs along one line, one with 10 times as many checkpoints: weighted by 1 / K the
    centre of the picture is midway between the runs' means, unweighted it sits on the long run."""
    long = np.linspace(0.0, 1.0, 50)
    short = np.linspace(2.0, 3.0, 5)
    u = np.concatenate([long, short])
    D = (u[:, None] - u[None, :]) ** 2
    w = np.concatenate([np.full(50, 1 / 50), np.full(5, 1 / 5)])
    plain, weighted = inpca(D, 1), inpca(D, 1, weights=w)
    # the coordinate is u minus the (weighted) mean, up to sign
    np.testing.assert_allclose(np.abs(plain.coords[:, 0]), np.abs(u - u.mean()), atol=1e-10)
    np.testing.assert_allclose(np.abs(weighted.coords[:, 0]), np.abs(u - 1.5), atol=1e-10)


def test_weights_on_disk_equal_in_memory(rng, tmp_path):
    from deepmanifold.geometry import compute_distance_matrix_on_disk

    X = rng.dirichlet(np.full(4, 0.4), size=(90, 12))
    M = compute_distance_matrix_on_disk(X, tmp_path / "d", block_size=32, dtype="float64")
    w = rng.random(90) + 0.1
    ref = inpca(pairwise_distances(X), 3, weights=w, solver="dense")
    res = inpca(M, 3, weights=w, random_state=0)
    np.testing.assert_allclose(res.eigenvalues, ref.eigenvalues, rtol=1e-8)
    np.testing.assert_allclose(res.coords, ref.coords, atol=1e-8 * np.abs(ref.coords).max())
    assert res.total_sq_norm == pytest.approx(ref.total_sq_norm, rel=1e-10)


def test_bad_weights_are_refused(rng):
    D = bhattacharyya_D(rng, T=6)
    for bad, match in (([1.0] * 5, r"weights must have shape \(6,\)"), ([1, 1, 1, 1, 1, 0], "positive"),
                       ([1, 1, 1, 1, 1, np.nan], "positive and finite")):
        with pytest.raises(ValueError, match=match):
            inpca(D, 2, weights=bad)
