"""Landmark (Nystrom) InPCA: exactness with all landmarks, and the error against exact InPCA."""

import numpy as np
import pytest

from deepmanifold.geometry import inpca, pairwise_distances
from deepmanifold.geometry.landmark import landmark_error, landmark_inpca


def trajectories(rng, T, n, C, runs=3):
    """Checkpoints moving from uniform toward (partly wrong) final predictions, on sqrt-p geodesics."""
    y = rng.integers(0, C, size=n)
    s0 = np.full(C, np.sqrt(1.0 / C))
    out = np.empty((T, n, C))
    for idx in np.array_split(np.arange(T), runs):
        q = np.exp(4.0 * (np.eye(C)[y] + 0.6 * rng.normal(size=(n, C))))
        s1 = np.sqrt(q / q.sum(axis=1, keepdims=True))
        omega = np.arccos(np.clip(s1 @ s0, -1, 1))[:, None]
        speed = rng.uniform(0.3, 3.0, size=(n, 1))
        for t, m in zip(np.linspace(0, 1, len(idx)), idx):
            tau = t**speed
            s = (np.sin((1 - tau) * omega) * s0 + np.sin(tau * omega) * s1) / np.sin(omega)
            p = s**2 * np.exp(0.05 * rng.normal(size=(n, C)))
            out[m] = p / p.sum(axis=1, keepdims=True)
    return out


def test_all_points_as_landmarks_is_exact(rng, models):
    X = models(rng, 60, 12, 4, concentration=0.4)
    res = landmark_inpca(X, 60, 4, batch_size=17)
    ref = inpca(pairwise_distances(X), 4)
    np.testing.assert_array_equal(res.landmark_indices, np.arange(60))
    np.testing.assert_allclose(res.eigenvalues, ref.eigenvalues, rtol=1e-12)
    np.testing.assert_allclose(res.coords, ref.coords, atol=1e-10)
    err = landmark_error(res, X=X)
    assert err.coord_rel_rmse < 1e-10 and err.sq_dist_rel_error < 1e-10


def test_landmarks_project_to_their_own_coordinates(rng, models):
    X = models(rng, 80, 12, 4)
    res = landmark_inpca(X, 30, 3, random_state=0, landmarks="maxmin")
    assert len(set(res.landmark_indices.tolist())) == 30
    DL = pairwise_distances(X[res.landmark_indices])
    np.testing.assert_allclose(res.transform(DL), res.landmark_result.coords, atol=1e-10)
    assert res.transform(DL[:0]).shape == (0, 3)  # no new models
    np.testing.assert_allclose(res.coords[res.landmark_indices], res.landmark_result.coords, atol=1e-10)
    idx = np.array([3, 1, 40, 7, 22])
    assert np.array_equal(landmark_inpca(X, n_components=2, landmarks=idx).landmark_indices, np.sort(idx))
    assert np.array_equal(landmark_inpca(X, 5, 2, landmarks=idx).landmark_indices, np.sort(idx))
    with pytest.raises(ValueError, match="distinct"):
        landmark_inpca(X, n_components=2, landmarks=np.array([1, 1, 2]))
    with pytest.raises(ValueError, match="n_landmarks = 4 but 5 landmark indices"):
        landmark_inpca(X, 4, 2, landmarks=idx)
    with pytest.raises(ValueError, match="n_landmarks is required with landmarks='maxmin'"):
        landmark_inpca(X, n_components=2, landmarks="maxmin")
    with pytest.raises(ValueError, match=r"n_landmarks must be an integer in \[1, 80\]"):
        landmark_inpca(X, 81)
    with pytest.raises(ValueError, match="landmarks must be 'random', 'maxmin'"):
        landmark_inpca(X, 5, landmarks="grid")


def test_landmark_error_falls_with_m(rng):
    X = trajectories(rng, 600, 40, 5)
    D = pairwise_distances(X)
    ref = inpca(D, 3)
    errs = [landmark_error(landmark_inpca(X, m, 3, random_state=1), D, reference=ref) for m in (30, 120, 600)]
    assert errs[0].coord_rel_rmse_procrustes < 0.5
    assert errs[1].coord_rel_rmse_procrustes < errs[0].coord_rel_rmse_procrustes
    assert errs[1].sq_dist_rel_error < errs[0].sq_dist_rel_error
    assert errs[1].coord_rel_rmse_procrustes <= errs[1].coord_rel_rmse
    assert errs[2].coord_rel_rmse < 1e-9 and errs[2].sq_dist_rel_error < 1e-9
    # the landmark embedding reproduces D almost as well as the exact k-axis one
    assert errs[1].sq_dist_rel_error_vs_D < 1.5 * errs[1].reference_sq_dist_rel_error_vs_D
