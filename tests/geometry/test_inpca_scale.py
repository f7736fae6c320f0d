"""Iterative (matrix-free) InPCA solvers against dense eigh."""

import numpy as np
import pytest

from deepmanifold.geometry import inpca, pairwise_distances
from deepmanifold.geometry.embedding import DENSE_MAX_T


def pseudo_euclidean_D(rng, T=400, spectrum=(9.0, -6.0, 4.0, -3.0, 2.0, 1.0)):
    """Squared distances in a Minkowski-like space with strong time-like axes, plus noise.

    The time-like axes make some entries negative; a constant ``c`` added off the
    diagonal makes every entry a non-negative divergence, as InPCA requires. It adds
    ``(c/2) J`` to ``W = -J D J / 2``: the eigenvectors stay, the eigenvalues off the
    constant vector move by ``c/2`` (small next to the time-like ones, ~ -3 T).
    """
    spectrum = np.asarray(spectrum)
    x = rng.normal(size=(T, spectrum.size)) * np.sqrt(np.abs(spectrum))
    diff = x[:, None, :] - x[None, :, :]
    D = np.sum(np.sign(spectrum) * diff**2, axis=-1)
    noise = rng.normal(scale=0.05, size=(T, T))
    D += noise + noise.T
    D -= D.min()
    np.fill_diagonal(D, 0.0)
    return D


@pytest.mark.parametrize("solver", ["lanczos", "randomized"])
def test_iterative_equals_dense_with_negative_eigenvalues(rng, solver):
    D = pseudo_euclidean_D(rng)
    k = 6
    ref = inpca(D, k, solver="dense")
    assert np.sum(ref.signature < 0) >= 2  # time-like axes among the top k
    res = inpca(D, k, solver=solver, random_state=0)
    assert res.info["solver"] == solver
    np.testing.assert_allclose(res.eigenvalues, ref.eigenvalues, rtol=1e-8)
    np.testing.assert_array_equal(res.signature, ref.signature)
    # signs are fixed deterministically; allow a flip anyway (ties of the pivot)
    signs = np.sign(np.sum(res.coords * ref.coords, axis=0))
    np.testing.assert_allclose(res.coords * signs, ref.coords, atol=1e-7 * np.abs(ref.coords).max())
    # exact explained stress: ||W||_F^2 over the whole matrix, not the sum of the k eigenvalues
    assert res.total_sq_norm == pytest.approx(ref.total_sq_norm, rel=1e-12)
    np.testing.assert_allclose(res.explained_stress, ref.explained_stress, rtol=1e-9)
    np.testing.assert_allclose(res.explained_fraction, ref.explained_fraction, rtol=1e-9)
    assert res.explained_stress[-1] < 0.999  # the noise leaves stress unexplained
    np.testing.assert_allclose(res.transform(D[:5]), res.coords[:5], atol=1e-8)


def test_iterative_on_bhattacharyya_float32_and_asymmetric_input(rng, models):
    D = pairwise_distances(models(rng, 300, 20, 4, concentration=0.3))
    ref = inpca(D, 5, solver="dense")
    res32 = inpca(D.astype(np.float32), 5, solver="randomized", random_state=1)
    np.testing.assert_allclose(res32.eigenvalues, ref.eigenvalues, rtol=1e-5)
    # an asymmetric perturbation within the tolerance: the symmetric part is used
    E = rng.normal(scale=1e-9, size=D.shape)
    np.fill_diagonal(E, 0.0)
    ref_p = inpca(D + E, 5, solver="dense")
    res_p = inpca(D + E, 5, solver="lanczos", random_state=1)
    np.testing.assert_allclose(res_p.eigenvalues, ref_p.eigenvalues, rtol=1e-8)
    assert res_p.total_sq_norm == pytest.approx(ref_p.total_sq_norm, rel=1e-12)


def test_auto_solver_choice(rng, models):
    D = pairwise_distances(models(rng, 40, 10, 3))
    assert inpca(D, 3).info["solver"] == "dense"
    assert DENSE_MAX_T >= 1000


def test_iterative_validation_matches_dense_rules():
    D = np.array([[0.0, 1.0, 2.0], [1.0, 0.0, 1.0], [2.0, 1.5, 0.0]])
    big = np.zeros((40, 40))
    big[:3, :3] = D
    with pytest.raises(ValueError, match="not symmetric"):
        inpca(big, 2, solver="lanczos")
    big = np.zeros((40, 40))
    big[5, 7] = np.nan
    with pytest.raises(ValueError, match=r"D\[5, 7\]"):
        inpca(big, 2, solver="randomized")
    big = np.zeros((40, 40))
    big[3, 3] = 1.0
    with pytest.raises(ValueError, match="zero diagonal"):
        inpca(big, 2, solver="randomized")
    with pytest.raises(ValueError, match="solver"):
        inpca(np.zeros((3, 3)), 2, solver="arnoldi")


def test_iterative_zero_matrix():
    res = inpca(np.zeros((50, 50)), 3, solver="randomized")
    np.testing.assert_array_equal(res.coords, 0.0)
    np.testing.assert_array_equal(res.explained_stress, 1.0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("rows", [1, 4, 7])
def test_panel_kernels_match_numpy_in_float64(rng, dtype, rows):
    from deepmanifold.geometry import _panel_kernels

    P = rng.standard_normal((rows, 33)).astype(dtype)
    X = rng.standard_normal((33, 5))
    out = np.full((rows, 5), np.nan)
    _panel_kernels.panel_matmat(P, X, out)
    np.testing.assert_allclose(out, P.astype(np.float64) @ X, rtol=1e-12, atol=1e-12)
    shift, col = rng.standard_normal(rows), rng.standard_normal(33)
    expected = ((P.astype(np.float64) - shift[:, None] - col[None, :]) ** 2).sum()
    assert _panel_kernels.centred_sq_sum(P, shift, col) == pytest.approx(expected, rel=1e-12)


def test_callback_reports_every_pass(rng):
    x = rng.random(120)
    D = (x[:, None] - x[None, :]) ** 2
    calls = []
    res = inpca(D, 3, solver="randomized", random_state=0, callback=lambda *a: calls.append(a))
    assert calls and all(stage == "eigensolver" and total is None for stage, _, total in calls)
    assert [done for _, done, _ in calls] == list(range(1, res.info["passes"] + 1))
