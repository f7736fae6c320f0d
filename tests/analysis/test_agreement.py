"""Train/test agreement: Mantel test and Procrustes fit of InPCA embeddings."""

import json

import numpy as np
import pytest
from scipy.stats import ortho_group

from deepmanifold import geometry
from deepmanifold.analysis.agreement import mantel, procrustes_fit, procrustes_residual, train_test_agreement

RNG = np.random.default_rng(0)
C = 10


def _models(T, n, seed):
    return np.random.default_rng(seed).dirichlet(np.ones(C), size=(T, n))


@pytest.fixture(scope="module")
def mats():
    return geometry.pairwise_distances(_models(30, 40, 1)), geometry.pairwise_distances(_models(30, 40, 2))


def test_matrix_agrees_with_itself(mats):
    A, _ = mats
    out = train_test_agreement(A, A, n_permutations=199)
    assert json.loads(json.dumps(out.to_dict()))["procrustes"]["n_components"] == 3
    m = out.mantel
    assert m.pearson == pytest.approx(1.0) and m.spearman == pytest.approx(1.0)
    assert m.p_pearson == pytest.approx(1 / 200) and m.p_spearman == pytest.approx(1 / 200)
    assert m.n_pairs == 30 * 29 // 2 and m.n_permutations == 199
    assert out.procrustes.residual == pytest.approx(0.0, abs=1e-10)
    assert out.procrustes.scale_test_over_train == pytest.approx(1.0)


def test_scaled_and_monotone_transforms(mats):
    A, _ = mats
    out = train_test_agreement(A, 2.0 * A, n_permutations=99)
    assert out.mantel.pearson == pytest.approx(1.0)
    assert out.procrustes.residual == pytest.approx(0.0, abs=1e-10)
    assert out.procrustes.scale_test_over_train == pytest.approx(np.sqrt(2.0))
    m = mantel(A, A**3, n_permutations=99)
    assert m.spearman == pytest.approx(1.0) and m.pearson < 1.0


def test_unrelated_matrices_do_not_agree(mats):
    A, B = mats
    out = train_test_agreement(A, B, n_permutations=499, random_state=3)
    m = out.mantel
    assert abs(m.pearson) < 0.2 and abs(m.spearman) < 0.2
    assert m.p_pearson > 0.02 and m.p_spearman > 0.02
    assert out.procrustes.residual > 0.5


def test_planted_shared_structure_is_detected():
    # same models seen through two noisy sample sets: distances share structure
    T, n = 25, 200
    base = RNG.normal(size=(T, 1, C)) * 2.0
    logits_tr = base + 0.5 * RNG.normal(size=(T, n, C))
    logits_te = base + 0.5 * RNG.normal(size=(T, n, C))
    softmax = lambda z: np.exp(z) / np.exp(z).sum(-1, keepdims=True)  # noqa: E731
    A = geometry.pairwise_distances(softmax(logits_tr))
    B = geometry.pairwise_distances(softmax(logits_te))
    out = train_test_agreement(A, B, n_permutations=199)
    assert out.mantel.pearson > 0.9 and out.mantel.p_pearson <= 0.01
    assert out.procrustes.residual < 0.1


def test_procrustes_residual_of_rotated_and_flipped_embedding():
    X = RNG.normal(size=(20, 4)) * [3.0, 2.0, 1.0, 0.5]
    Q = ortho_group.rvs(4, random_state=1)
    assert procrustes_residual(X, 5.0 * X @ Q + 7.0) == pytest.approx(0.0, abs=1e-12)
    flip = X * [1, -1, -1, 1]
    assert procrustes_residual(X, flip) == pytest.approx(0.0, abs=1e-12)
    # with signatures: rotations within the space-like block and sign flips are free ...
    sig = np.array([1, 1, 1, -1])
    R = np.eye(4)
    R[:3, :3] = ortho_group.rvs(3, random_state=2)
    R[3, 3] = -1.0
    assert procrustes_residual(X, X @ R, signature_x=sig, signature_y=sig) == pytest.approx(0.0, abs=1e-12)
    # ... but mixing a space-like with a time-like axis is not an isometry
    c, s = np.cos(0.7), np.sin(0.7)
    mix = np.eye(4)
    mix[np.ix_([2, 3], [2, 3])] = [[c, -s], [s, c]]
    assert procrustes_residual(X, X @ mix) == pytest.approx(0.0, abs=1e-12)
    assert procrustes_residual(X, X @ mix, signature_x=sig, signature_y=sig) > 1e-3
    # an unrelated configuration leaves a large residual; residual is within [0, 1]
    fit = procrustes_fit(X, RNG.normal(size=(20, 4)))
    assert 0.2 < fit.residual <= 1.0
    assert fit.aligned.shape == fit.target.shape == (20, 4)
    # the fit's own residual is the squared distance between what it aligned
    assert np.sum((fit.aligned - fit.target) ** 2) == pytest.approx(fit.residual, abs=1e-12)
    with pytest.raises(ValueError):
        procrustes_residual(X, X[:5])
    with pytest.raises(ValueError):
        procrustes_residual(X, X, signature_x=sig)
    with pytest.raises(ValueError):
        procrustes_residual(np.ones((5, 2)), X[:5, :2])


def test_mantel_constant_matrix_and_validation(mats):
    A, _ = mats
    Z = np.ones_like(A) - np.eye(A.shape[0])
    m = mantel(A, Z, n_permutations=9)
    assert m.pearson is None and m.p_pearson == 1.0
    assert json.loads(json.dumps(m.to_dict()))["pearson"] is None
    with pytest.raises(ValueError):
        mantel(A, A[:5, :5])
    with pytest.raises(ValueError):
        train_test_agreement(A, A, n_components=0)
