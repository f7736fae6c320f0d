"""Bad input is rejected at the public boundary with a message that says where."""

import re

import numpy as np
import pytest

from deepmanifold.geometry import (
    bhattacharyya,
    embedded_sq_distances,
    geodesic,
    ignorance,
    inpca,
    pairwise_distances,
    progress,
    truth,
)


@pytest.fixture
def X(rng, models):
    return models(rng, 5, 20, 4)


def corrupt(X, model, sample, value, cls=1):
    X = X.copy()
    X[model, sample, cls] = value
    return X


@pytest.mark.parametrize(
    "value, message",
    [
        (np.nan, "X: model 3, sample 17 contains NaN"),
        (np.inf, "X: model 3, sample 17 contains inf"),
        (-0.01, "X: model 3, sample 17 contains the negative probability -0.01 in class 1"),
        (0.9, "X: model 3, sample 17 probabilities sum to"),
    ],
)
def test_bad_probabilities_are_located(X, value, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        pairwise_distances(corrupt(X, 3, 17, value))


def test_bad_second_argument_is_named(X):
    with pytest.raises(ValueError, match=re.escape("Y: model 2, sample 5 contains NaN")):
        pairwise_distances(X, corrupt(X, 2, 5, np.nan))


def test_two_dimensional_messages_name_the_sample(X):
    with pytest.raises(ValueError, match=re.escape("Q: sample 7 contains NaN")):
        bhattacharyya(X[0], corrupt(X, 0, 7, np.nan)[0])
    with pytest.raises(ValueError, match=re.escape("P: sample 4 probabilities sum to")):
        progress(corrupt(X, 0, 4, 2.0)[0], np.zeros(20, dtype=int))


def test_sum_tolerance_depends_on_dtype(X):
    off = X.copy()
    off[..., 0] += 5e-5  # rows sum to 1 + 5e-5
    pairwise_distances(off.astype(np.float32))  # within the float32 tolerance 1e-4
    half = pairwise_distances(X.astype(np.float16))  # float16 rounding: tolerance 1e-2
    np.testing.assert_allclose(half, pairwise_distances(X), rtol=0.05, atol=1e-3)
    with pytest.raises(ValueError, match=r"tolerance 1e-05\)"):
        pairwise_distances(off)


@pytest.mark.parametrize(
    "value, message",
    [
        (np.nan, "X: model 3, sample 17 contains NaN"),
        (np.inf, "X: model 3, sample 17 contains +inf"),
        (0.5, "X: model 3, sample 17 contains the positive log-probability 0.5 in class 1"),
        (-5.0, "X: model 3, sample 17 exp(log-probabilities) sums to"),
    ],
)
def test_bad_log_probabilities_are_located(X, value, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        pairwise_distances(corrupt(np.log(X), 3, 17, value), log=True)


def test_minus_inf_log_probability_is_legal():
    logX = np.log([[[0.5, 0.5, 1.0]], [[0.25, 0.25, 0.5]]])
    logX[0, 0, 2] = -np.inf  # p = 0
    D = pairwise_distances(logX, log=True)
    assert np.all(np.isfinite(D)) and D[0, 1] > 0


def test_probabilities_given_as_logs_are_caught(X):
    with pytest.raises(ValueError, match="negative probability"):
        pairwise_distances(np.log(X))  # forgot log=True
    with pytest.raises(ValueError, match="positive log-probability|exp"):
        pairwise_distances(X, log=True)  # said log=True for probabilities


def test_shapes(X):
    with pytest.raises(ValueError, match=re.escape("X: expected shape (T, n, C), got shape (20, 4)")):
        pairwise_distances(X[0])
    with pytest.raises(ValueError, match=re.escape("X has shape (5, 20, 4) and Y has shape (5, 19, 4)")):
        pairwise_distances(X, X[:, 1:])
    with pytest.raises(ValueError, match=re.escape("P has shape (20, 4) and Q has shape (20, 3)")):
        bhattacharyya(X[0], X[0, :, 1:] / X[0, :, 1:].sum(-1, keepdims=True))
    with pytest.raises(ValueError, match="non-empty"):
        pairwise_distances(np.empty((0, 3, 2)))
    with pytest.raises(ValueError, match="dtype"):
        pairwise_distances(X.astype(complex))


def test_options(X):
    with pytest.raises(ValueError, match="metric must be one of"):
        pairwise_distances(X, metric="euclidean")
    for floor in (0.0, 1.0, -1e-3):
        with pytest.raises(ValueError, match="floor must lie in"):
            pairwise_distances(X, floor=floor)
    for block in (0, -3, 2.5, True):
        with pytest.raises(ValueError, match="block_size"):
            pairwise_distances(X, block_size=block)


@pytest.mark.parametrize("kw", [{}, {"backend": "numpy"}, {"metric": "hellinger"}])
def test_out_must_be_a_float_array_of_the_right_shape(tmp_path, X, kw):
    """An integer or bool ``out`` would hold truncated distances (all 0, or True off the
    diagonal): it is refused, on the numba, numpy and companion paths alike."""
    import zarr

    expected = re.escape("out must be a float32 or float64 array of shape (5, 5)")
    for dtype in (int, np.int32, np.uint8, bool, np.float16, complex):
        with pytest.raises(ValueError, match=expected + re.escape(f", got dtype {np.dtype(dtype)}")):
            pairwise_distances(X, out=np.empty((5, 5), dtype=dtype), **kw)
    with pytest.raises(ValueError, match=expected + re.escape(", got dtype int32")):
        pairwise_distances(X, out=zarr.create_array(str(tmp_path / "z"), shape=(5, 5), dtype="int32"), **kw)
    with pytest.raises(ValueError, match=expected + re.escape(", got dtype int64")):
        pairwise_distances(X, out=np.memmap(tmp_path / "m", dtype=np.int64, mode="w+", shape=(5, 5)), **kw)
    with pytest.raises(ValueError, match=expected + re.escape(", got shape (5, 4)")):
        pairwise_distances(X, out=np.empty((5, 4)), **kw)
    with pytest.raises(ValueError, match=re.escape("out must be a float32 or float64 array of shape (5, 3), "
                                                   "got shape (3, 5)")):
        pairwise_distances(X, X[:3], out=np.empty((3, 5)), **kw)
    with pytest.raises(ValueError, match=expected + " .*got list"):
        pairwise_distances(X, out=[[0.0] * 5] * 5, **kw)
    frozen = np.zeros((5, 5))
    frozen.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        pairwise_distances(X, out=frozen, **kw)
    # Every float target receives the distances of the plain definition (float32 to its rounding).
    bc = np.sqrt(X[:, None] * X[None, :]).sum(axis=-1)  # (5, 5, n) Bhattacharyya coefficients
    ref = 1.0 - bc.mean(axis=-1) if kw.get("metric") == "hellinger" else -np.log(bc).mean(axis=-1)
    np.fill_diagonal(ref, 0.0)
    assert np.all(ref[~np.eye(5, dtype=bool)] > 1e-3)
    z = zarr.create_array(str(tmp_path / "ok"), shape=(5, 5), dtype="float32")
    for out in (np.empty((5, 5)), np.empty((5, 5), dtype=np.float32),
                np.memmap(tmp_path / "f", dtype=np.float32, mode="w+", shape=(5, 5)), z):
        assert pairwise_distances(X, out=out, **kw) is out
        np.testing.assert_allclose(np.asarray(out[:, :]), ref, rtol=1e-6)


def test_labels(X):
    good = np.zeros(20, dtype=int)
    with pytest.raises(ValueError, match=re.escape("labels has length 19 but there are 20 samples")):
        progress(X, good[1:])
    bad = good.copy()
    bad[6] = 4
    with pytest.raises(ValueError, match=re.escape("labels[6] = 4 is outside [0, 4)")):
        progress(X, bad)
    bad[6] = -1
    with pytest.raises(ValueError, match=re.escape("labels[6] = -1 is outside [0, 4)")):
        progress(X, bad)
    with pytest.raises(ValueError, match="integer class labels"):
        progress(X, good.astype(float))
    with pytest.raises(ValueError, match=re.escape("expected shape (n,)")):
        truth(good[None], 4)
    with pytest.raises(ValueError, match="outside"):
        geodesic(np.array([0, 5]), 5, 0.5)
    for n_classes in (1, 2.0, "3"):
        with pytest.raises(ValueError, match="n_classes must be an integer >= 2"):
            ignorance(good, n_classes)


def test_distance_matrix_checks():
    D = np.array([[0.0, 1.0, 2.0], [1.0, 0.0, 3.0], [2.0, 3.0, 0.0]])
    with pytest.raises(ValueError, match=re.escape("expected a square (T, T) matrix, got shape (3, 2)")):
        inpca(D[:, :2])
    bad = D.copy()
    bad[0, 2] = np.nan
    with pytest.raises(ValueError, match=re.escape("D[0, 2] = nan is not finite")):
        inpca(bad)
    bad = D.copy()
    bad[0, 2] = 2.1
    with pytest.raises(ValueError, match=re.escape("D is not symmetric: D[0, 2] = 2.1 but D[2, 0] = 2")):
        inpca(bad)
    bad = D.copy()
    bad[1, 1] = 0.5
    with pytest.raises(ValueError, match=re.escape("zero diagonal: D[1, 1] = 0.5")):
        inpca(bad)
    inpca(D + 1e-9 * np.triu(np.ones((3, 3)), 1))  # asymmetry within tolerance is accepted
    for solver in ("dense", "lanczos"):
        bad = D.copy()
        bad[0, 2] = bad[2, 0] = -0.5
        with pytest.raises(ValueError, match=re.escape("D must be non-negative (distances are divergences): "
                                                       "D[0, 2] = -0.5")):
            inpca(bad, 1, solver=solver)
    # Rounding below zero, relative to max|D| = 3: 1e-12 for float64, 10 eps = 1.2e-6 for float32.
    for dtype, accepted, refused, message in (
        (np.float64, -2.9e-12, -3.1e-12, "D[0, 1] = -3.1e-12 (entries down to -3e-12 are accepted as rounding)"),
        (np.float32, -3.5e-6, -3.7e-6, "D[0, 1] = -3.7e-06 (entries down to -3.58e-06 are accepted as rounding)"),
    ):
        near = D.astype(dtype)
        near[0, 1] = near[1, 0] = accepted
        assert inpca(near, 2).eigenvalues.shape == (2,)
        near[0, 1] = near[1, 0] = refused
        with pytest.raises(ValueError, match=re.escape(message)):
            inpca(near, 2)
    for k in (0, 4, 1.5):
        with pytest.raises(ValueError, match=re.escape("n_components must be an integer in [1, 3]")):
            inpca(D, n_components=k)


def test_transform_and_embedding_shapes():
    D = np.array([[0.0, 1.0, 2.0], [1.0, 0.0, 3.0], [2.0, 3.0, 0.0]])
    res = inpca(D, n_components=2)
    with pytest.raises(ValueError, match=re.escape("d_new: expected shape (m, 3) or (3,), got shape (2, 4)")):
        res.transform(np.zeros((2, 4)))
    with pytest.raises(ValueError, match="NaN or inf"):
        res.transform([0.0, np.nan, 1.0])
    with pytest.raises(ValueError, match="signature"):
        embedded_sq_distances(res.coords, [1, 1, 1])


def test_tiled_distance_matrix_check_reads_in_place(tmp_path, rng):
    from deepmanifold.geometry.validation import check_distance_matrix, check_distance_matrix_tiled

    x = rng.random(300)
    D = ((x[:, None] - x[None, :]) ** 2).astype(np.float32)
    mm = np.memmap(tmp_path / "d.f32", dtype=np.float32, mode="w+", shape=D.shape)
    mm[:] = D
    out, exact = check_distance_matrix_tiled(mm, tile=64)
    assert out is mm and exact
    near = D.astype(np.float64)
    near[5, 290] += 1e-9  # within tolerance, across tiles
    out, exact = check_distance_matrix_tiled(near, tile=64)
    assert out is near and not exact
    np.testing.assert_allclose(check_distance_matrix(near), (near + near.T) / 2)
    assert check_distance_matrix_tiled(np.zeros((3, 3), dtype=int))[0].dtype == np.float64
    # every rule, also across tiles, with the message naming the entry
    bad = near.copy()
    bad[70, 200] = np.inf
    with pytest.raises(ValueError, match=re.escape("D[70, 200] = inf is not finite")):
        check_distance_matrix_tiled(bad, tile=64)
    bad = near.copy()
    bad[250, 3] += 0.5
    with pytest.raises(ValueError, match=re.escape("D is not symmetric: D[3, 250] =")):
        check_distance_matrix_tiled(bad, tile=64)
    bad = near.copy()
    bad[250, 3] = bad[3, 250] = -0.5
    with pytest.raises(ValueError, match=re.escape("D must be non-negative (distances are divergences): "
                                                   "D[3, 250] = -0.5")):
        check_distance_matrix_tiled(bad, tile=64)
    bad = near.copy()
    bad[130, 130] = 0.25
    with pytest.raises(ValueError, match=re.escape("M must have a zero diagonal: M[130, 130] = 0.25")):
        check_distance_matrix_tiled(bad, "M", tile=64)
    with pytest.raises(ValueError, match="expected a real array"):
        check_distance_matrix(near.astype(complex))
    with pytest.raises(ValueError, match="empty"):
        check_distance_matrix(np.zeros((0, 0)))


def test_model_stack_shape_is_checked_without_reading():
    from deepmanifold.geometry import ModelStack
    from deepmanifold.geometry.validation import check_model_stack

    stack = ModelStack([np.zeros((2, 3, 4)), np.zeros((1, 3, 4))])
    assert check_model_stack(stack) == (stack, (3, 3, 4))
    X, shape = check_model_stack([[[0.5, 0.5]]], "Y")
    assert isinstance(X, np.ndarray) and shape == (1, 1, 2)
    with pytest.raises(ValueError, match=re.escape("Y: expected shape (T, n, C), got shape (3, 4)")):
        check_model_stack(np.zeros((3, 4)), "Y")
    with pytest.raises(ValueError, match=re.escape("X: every axis must be non-empty, got shape (2, 0, 4)")):
        check_model_stack(np.zeros((2, 0, 4)))
