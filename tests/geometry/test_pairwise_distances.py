"""pairwise_distances against plain-numpy definitions, tiling and invariances."""

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from deepmanifold.geometry import METRICS, ClampWarning, bhattacharyya, pairwise_distances

FLOOR = 1e-12


# Plain-numpy definitions, one pair of (n, C) models at a time.
def ref_bhattacharyya(p, q):
    return -np.mean(np.log(np.maximum(np.sum(np.sqrt(p * q), axis=1), FLOOR)))


def ref_hellinger(p, q):
    return 1.0 - np.mean(np.sum(np.sqrt(p * q), axis=1))


def ref_jensen_shannon(p, q):
    m = (p + q) / 2
    with np.errstate(divide="ignore", invalid="ignore"):
        kl_pm = np.sum(np.where(p > 0, p * np.log(p / m), 0.0), axis=1)  # 0 log 0 = 0; m > 0 where p > 0
        kl_qm = np.sum(np.where(q > 0, q * np.log(q / m), 0.0), axis=1)
    return np.mean(0.5 * kl_pm + 0.5 * kl_qm)


def ref_symmetric_kl(p, q):
    diff_log = np.log(np.maximum(p, FLOOR)) - np.log(np.maximum(q, FLOOR))
    return np.mean(np.sum((p - q) * diff_log, axis=1))


REFERENCES = {
    "bhattacharyya": ref_bhattacharyya,
    "hellinger": ref_hellinger,
    "jensen_shannon": ref_jensen_shannon,
    "symmetric_kl": ref_symmetric_kl,
}


def naive_matrix(X, Y, ref):
    return np.array([[ref(x, y) for y in Y] for x in X])


def test_metric_names():
    assert set(METRICS) == set(REFERENCES)


@pytest.mark.parametrize("metric", METRICS)
def test_matches_plain_definition(rng, models, metric):
    X = models(rng, 9, 30, 5, concentration=0.5)
    Y = models(rng, 4, 30, 5, concentration=2.0)
    ref = REFERENCES[metric]
    np.testing.assert_allclose(pairwise_distances(X, metric=metric), naive_matrix(X, X, ref), rtol=1e-10, atol=1e-13)
    np.testing.assert_allclose(
        pairwise_distances(X, Y, metric=metric), naive_matrix(X, Y, ref), rtol=1e-10, atol=1e-13
    )


def test_bhattacharyya_equals_double_loop(rng, models):
    X = models(rng, 6, 25, 4)
    loop = np.array([[bhattacharyya(x, y) for y in X] for x in X])
    np.testing.assert_allclose(pairwise_distances(X), loop, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("metric", METRICS)
def test_log_input_equals_probability_input(rng, models, metric):
    X = models(rng, 5, 20, 4, zeros=True)
    with np.errstate(divide="ignore"):
        logX = np.log(X)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ClampWarning)
        np.testing.assert_allclose(
            pairwise_distances(logX, log=True, metric=metric),
            pairwise_distances(X, metric=metric),
            rtol=1e-10,
            atol=1e-13,
        )


@pytest.mark.parametrize("metric", METRICS)
def test_tiling_does_not_change_the_result(rng, models, metric):
    X = models(rng, 23, 40, 3)
    Y = models(rng, 11, 40, 3)
    full = pairwise_distances(X, metric=metric, block_size=1000)
    cross = pairwise_distances(X, Y, metric=metric, block_size=1000)
    for block in (1, 4, 7):
        np.testing.assert_allclose(pairwise_distances(X, metric=metric, block_size=block), full, rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(
            pairwise_distances(X, Y, metric=metric, block_size=block), cross, rtol=1e-12, atol=1e-15
        )


def test_many_sample_chunks(rng, models):
    # n larger than one tile's sample chunk (2**21 / 128**2 = 128 samples) and not a multiple of it.
    X = models(rng, 130, 301, 3)
    D = pairwise_distances(X[:3], X)
    np.testing.assert_allclose(D, naive_matrix(X[:3], X, ref_bhattacharyya), rtol=1e-11, atol=1e-14)
    np.testing.assert_allclose(pairwise_distances(X)[:3], D, rtol=1e-11, atol=1e-14)


@pytest.mark.parametrize("metric", METRICS)
def test_common_permutation_of_samples(rng, models, metric):
    X = models(rng, 6, 35, 4)
    perm = rng.permutation(35)
    np.testing.assert_allclose(
        pairwise_distances(X[:, perm], metric=metric), pairwise_distances(X, metric=metric), rtol=1e-12, atol=1e-15
    )


def test_cross_matrix_agrees_with_self_matrix(rng, models):
    X = models(rng, 8, 20, 5)
    D = pairwise_distances(X)
    np.testing.assert_allclose(pairwise_distances(X, X), D, rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(pairwise_distances(X[:3], X[3:]), D[:3, 3:], rtol=1e-12)


def test_float32_input_is_close_to_float64(rng, models):
    X = models(rng, 10, 200, 10)
    D64 = pairwise_distances(X)
    D32 = pairwise_distances(X.astype(np.float32))
    assert D32.dtype == np.float64
    np.testing.assert_allclose(D32, D64, rtol=1e-4, atol=1e-7)


def test_discretised_gaussians_match_closed_form():
    # d_B between N(mu1, s^2) and N(mu2, s^2) is (mu1 - mu2)^2 / (8 s^2).
    sigma = 0.8
    means = np.array([-2.0, -0.5, 0.0, 0.3, 1.7, 2.5])
    x = np.linspace(-15, 15, 3001)
    densities = np.exp(-((x[None, :] - means[:, None]) ** 2) / (2 * sigma**2))
    X = (densities / densities.sum(axis=1, keepdims=True))[:, None, :]  # T models, 1 sample, 3001 "classes"
    expected = (means[:, None] - means[None, :]) ** 2 / (8 * sigma**2)
    np.testing.assert_allclose(pairwise_distances(X), expected, rtol=1e-8, atol=1e-12)


def test_disjoint_supports_give_minus_log_floor_and_one_warning():
    X = np.eye(4)[:, None, :].repeat(3, axis=1)  # 4 one-hot models, pairwise disjoint on 3 samples
    with pytest.warns(ClampWarning, match=r"^18 \(pair, sample\)") as record:
        D = pairwise_distances(X, floor=1e-10)
    assert len(record) == 1 and record[0].filename == __file__
    expected = np.full((4, 4), -np.log(1e-10))
    np.fill_diagonal(expected, 0.0)
    np.testing.assert_allclose(D, expected)
    with pytest.warns(ClampWarning, match=r"^6 \(pair, sample\)"):
        pairwise_distances(X[:2], X[2:3], block_size=1)  # Y given: 2 (x, y) pairs x 3 samples
    with pytest.warns(ClampWarning, match="probability entries"):
        assert np.all(np.isfinite(pairwise_distances(X, metric="symmetric_kl")))


def test_partial_clamping_counts_only_clamped_samples(rng, models):
    X = models(rng, 3, 5, 3)
    X[0, 2], X[1, 2] = [1, 0, 0], [0, 0.5, 0.5]
    with pytest.warns(ClampWarning, match=r"^1 \(pair, sample\)"):
        D = pairwise_distances(X)
    np.testing.assert_allclose(D, naive_matrix(X, X, ref_bhattacharyya), rtol=1e-12, atol=1e-15)


def simplex_arrays(max_models=5, max_samples=6, max_classes=5):
    """Random (T, n, C) probability arrays, including exact zeros and one-hot rows."""

    @st.composite
    def build(draw):
        T = draw(st.integers(1, max_models))
        n = draw(st.integers(1, max_samples))
        C = draw(st.integers(2, max_classes))
        seed = draw(st.integers(0, 2**32 - 1))
        sparsity = draw(st.sampled_from([0.0, 0.3, 0.8]))
        r = np.random.default_rng(seed)
        X = r.exponential(size=(T, n, C)) ** draw(st.sampled_from([1.0, 4.0]))
        X[r.random(X.shape) < sparsity] = 0.0
        empty = X.sum(axis=-1) == 0
        X[empty, 0] = 1.0
        return X / X.sum(axis=-1, keepdims=True)

    return build()


@settings(max_examples=60, deadline=None)
@given(X=simplex_arrays(), metric=st.sampled_from(METRICS), block=st.sampled_from([None, 1, 2]))
def test_properties_on_random_simplex_inputs(X, metric, block):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ClampWarning)
        D = pairwise_distances(X, metric=metric, block_size=block)
    assert D.shape == (X.shape[0],) * 2
    assert np.all(np.isfinite(D))
    assert np.all(D >= 0)
    assert np.array_equal(D, D.T)
    assert np.all(np.diagonal(D) == 0)
    np.testing.assert_allclose(D, naive_matrix(X, X, REFERENCES[metric]) * (1 - np.eye(len(X))), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("metric", ["hellinger", "jensen_shannon", "symmetric_kl"])
def test_companions_stream_from_memmaps_in_panels(tmp_path, rng, models, metric):
    """Panels of 4 models read from a float32 memmap (and a ModelStack of them),
    written into a float32 ``out``, equal the plain definition; a bad model in a
    later panel is named by its index in the whole array."""
    from deepmanifold.geometry.sources import ModelStack

    X = models(rng, 11, 20, 4, concentration=0.5).astype(np.float32)
    X = (X / X.sum(axis=-1, keepdims=True, dtype=np.float64)).astype(np.float32)
    path = tmp_path / "x.f32"
    mm = np.memmap(path, dtype=np.float32, mode="w+", shape=X.shape)
    mm[:] = X
    mm.flush()
    ro = np.memmap(path, dtype=np.float32, mode="r", shape=X.shape)
    ref = naive_matrix(X.astype(np.float64), X.astype(np.float64), REFERENCES[metric])
    per_model = 20 * 4 * 8 * (2 if metric == "symmetric_kl" else 1)
    small = dict(metric=metric, block_size=2, max_memory=2 * per_model * 4)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ClampWarning)
        out = np.full(ref.shape, np.nan, dtype=np.float32)
        assert pairwise_distances(ro, out=out, **small) is out
        np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-7)
        cross = pairwise_distances(ModelStack([ro[:3], ro[3:]]), ro[2:9], **small)
        np.testing.assert_allclose(cross, ref[:, 2:9], rtol=1e-6, atol=1e-8)  # self-pairs: float32 sums off by ~1e-8
    bad = X.copy()
    bad[9, 3] = [0.5, 0.5, 0.5, 0.5]
    with pytest.raises(ValueError, match="X: model 9, sample 3"):
        pairwise_distances(bad, **small)
    with pytest.raises(ValueError, match="Y: model 9, sample 3"):
        pairwise_distances(X[:2], bad, **small)


def test_symmetric_kl_counts_each_clamped_entry_once_across_panels():
    X = np.full((6, 2, 3), 1 / 3)
    X[4, 1] = [0.5, 0.5, 0.0]  # one probability entry below the floor
    for max_memory in (None, 2 * 2 * 3 * 16 * 2):  # one panel, then panels of 2 models
        with pytest.warns(ClampWarning, match=r"^1 probability entries"):
            pairwise_distances(X, metric="symmetric_kl", block_size=1, max_memory=max_memory)
        with pytest.warns(ClampWarning, match=r"^2 probability entries"):  # once in X, once in Y
            pairwise_distances(X, X, metric="symmetric_kl", block_size=1, max_memory=max_memory)
