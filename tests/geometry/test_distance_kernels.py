"""Kernels, precision, streaming and backends of pairwise_distances (Bhattacharyya)."""

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from deepmanifold.geometry import ClampWarning, bhattacharyya
from deepmanifold.geometry import _kernels
from deepmanifold.geometry.distances import pairwise_distances
from deepmanifold.geometry.sources import ModelStack

torch = pytest.importorskip("torch")


def reference(X, Y):
    """Independent float64 reference: one pair at a time, Gram form, float64."""
    X = np.asarray(X, dtype=np.float64)
    Y = np.asarray(Y, dtype=np.float64)
    D = np.empty((len(X), len(Y)))
    for s in range(len(X)):
        bc = np.einsum("ic,tic->ti", np.sqrt(X[s]), np.sqrt(Y))
        D[s] = -np.mean(np.log(np.maximum(bc, 1e-12)), axis=1)
    return D


def close_models(rng, T, n, C, scales=(1e-6, 1e-5, 1e-4, 1e-3)):
    """Models whose pairwise d_B spans ~1e-7 .. 1e-3 (perturbations of one base)."""
    base = rng.dirichlet(np.full(C, 2.0), size=n)
    X = []
    for t in range(T):
        eps = scales[t % len(scales)] ** 0.5
        p = base * np.exp(eps * rng.standard_normal(base.shape))
        X.append(p / p.sum(axis=1, keepdims=True))
    return np.array(X)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("backend", ["numba", "numpy", "torch"])
def test_exact_precision_on_close_pairs(rng, dtype, backend):
    X = close_models(rng, 12, 300, 10).astype(dtype)
    if dtype == np.float32:  # renormalise in float32 as a softmax would
        X = (X / X.sum(axis=-1, keepdims=True, dtype=np.float64)).astype(np.float32)
    D = pairwise_distances(X, backend=backend, device="cpu")
    ref = reference(X, X)
    off = ~np.eye(len(X), dtype=bool)
    assert ref[off].min() < 1e-5 and ref[off].max() < 1e-2
    rel = np.abs(D - ref)[off] / ref[off]
    assert rel.max() <= 1e-6


def test_fast_precision_is_close_for_distant_models(rng, models):
    X = models(rng, 20, 200, 10).astype(np.float32)
    D = pairwise_distances(X, precision="fast")
    ref = reference(X, X)
    np.testing.assert_allclose(D, ref, rtol=1e-4, atol=1e-7)


def test_ignorance_to_truth_is_half_log_C():
    C, n = 10, 7
    X = np.stack([np.full((n, C), 1 / C), np.eye(C)[np.arange(n) % C]])
    for backend in ("numba", "numpy", "torch"):
        D = pairwise_distances(X, backend=backend, device="cpu")
        np.testing.assert_allclose(D[0, 1], 0.5 * np.log(C), rtol=1e-12)


@pytest.mark.parametrize("backend", ["numba", "numpy", "torch"])
def test_backends_agree_and_panels_do_not_matter(rng, models, backend):
    X = models(rng, 37, 50, 6, concentration=0.5)
    Y = models(rng, 9, 50, 6)
    D = pairwise_distances(X, backend="numba")
    per_model = 50 * 6 * 8
    small = dict(block_size=4, max_memory=2 * per_model * 8)  # panels of 8 models
    np.testing.assert_allclose(pairwise_distances(X, backend=backend, device="cpu", **small), D, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(pairwise_distances(X, Y, backend=backend, device="cpu", **small), reference(X, Y),
                               rtol=1e-10, atol=1e-14)


def test_memmap_and_model_stack_stream_like_in_memory(tmp_path, rng, models):
    X = models(rng, 30, 40, 5).astype(np.float32)
    path = tmp_path / "x.f32"
    mm = np.memmap(path, dtype=np.float32, mode="w+", shape=X.shape)
    mm[:] = X
    mm.flush()
    ro = np.memmap(path, dtype=np.float32, mode="r", shape=X.shape)
    D = pairwise_distances(X)
    small = dict(block_size=4, max_memory=2 * 40 * 5 * 8 * 8)
    np.testing.assert_array_equal(pairwise_distances(ro, **small), pairwise_distances(X, **small))
    np.testing.assert_allclose(pairwise_distances(ro), D, rtol=1e-13, atol=1e-15)
    stack = ModelStack([ro[:7], X[7:20], ro[20:]])
    np.testing.assert_allclose(pairwise_distances(stack, **small), D, rtol=1e-13, atol=1e-15)
    # identical models: BC_i = sum p ~ 1 +- 1e-7 in float32; d is clipped at 0 (the reference is not)
    cross, ref = pairwise_distances(X[:5], stack), reference(X[:5], X)
    np.testing.assert_allclose(cross, np.maximum(ref, 0.0), rtol=1e-10, atol=1e-15)


def test_out_parameter(rng, models):
    X = models(rng, 10, 20, 4)
    out = np.full((10, 10), np.nan, dtype=np.float32)
    assert pairwise_distances(X, out=out) is out
    np.testing.assert_allclose(out, pairwise_distances(X), rtol=1e-6)
    with pytest.raises(ValueError, match=r"out must be .* of shape \(10, 10\), got shape \(3, 3\)"):
        pairwise_distances(X, out=np.empty((3, 3)))


def test_error_names_model_in_a_later_panel(rng, models):
    X = models(rng, 20, 10, 3)
    X[17, 4] = [0.5, np.nan, 0.5]
    with pytest.raises(ValueError, match="X: model 17, sample 4 contains NaN"):
        pairwise_distances(X, block_size=2, max_memory=2 * 10 * 3 * 8 * 4)
    with pytest.raises(ValueError, match="Y: model 17, sample 4"):
        pairwise_distances(X[:3], ModelStack([X[:10], X[10:]]), block_size=2)


def test_clamp_count_across_backends_and_panels():
    X = np.eye(4)[:, None, :].repeat(3, axis=1)
    for backend in ("numba", "numpy", "torch"):
        for max_memory in (None, 2 * 3 * 4 * 8):
            with pytest.warns(ClampWarning, match=r"^18 \(pair, sample\)"):
                D = pairwise_distances(X, floor=1e-10, backend=backend, device="cpu", block_size=1,
                                       max_memory=max_memory)
            assert np.all(D[~np.eye(4, dtype=bool)] == pytest.approx(-np.log(1e-10)))


def test_threads_are_restored(rng, models):
    import numba

    before = numba.get_num_threads()
    pairwise_distances(models(rng, 5, 5, 3), n_jobs=1)
    assert numba.get_num_threads() == before


def test_renorm_interval_never_underflows():
    for floor in (1e-1, 1e-12, 1e-100, 1e-300):
        k = _kernels.renorm_interval(floor)
        assert k >= 1 and 2.0 * floor**k > 0 and floor**k * 1.0 >= 2.0**-1022 or k == 1


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), T=st.integers(1, 9), T2=st.integers(1, 5), n=st.integers(1, 12),
       C=st.integers(2, 6), block=st.sampled_from([1, 3, 256]))
def test_properties(seed, T, T2, n, C, block):
    r = np.random.default_rng(seed)
    X = r.dirichlet(np.ones(C), size=(T, n))
    Y = r.dirichlet(np.ones(C), size=(T2, n))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ClampWarning)
        D = pairwise_distances(X, block_size=block)
        perm = r.permutation(n)
        np.testing.assert_allclose(pairwise_distances(X[:, perm]), D, rtol=1e-12, atol=1e-15)
        XY = pairwise_distances(np.concatenate([X, Y]), block_size=block)
        np.testing.assert_allclose(pairwise_distances(X, Y, block_size=block), XY[:T, T:], rtol=1e-12, atol=1e-15)
    assert np.array_equal(D, D.T) and np.all(np.diagonal(D) == 0) and np.all(D >= 0)
    np.testing.assert_allclose(D, reference(X, X) * (1 - np.eye(T)), rtol=1e-10, atol=1e-14)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu(rng):
    X = close_models(rng, 40, 300, 10)
    np.testing.assert_allclose(pairwise_distances(X, device="cuda"), pairwise_distances(X, device="cpu"),
                               rtol=1e-9, atol=1e-15)


@pytest.mark.parametrize("C", [3, 10])
def test_real_tile_sizes_with_some_pairs_clamped(rng, C):
    """Default tiles (128 rows x 256 columns), odd T, panels, and a few models whose
    supports are disjoint from most others: only the tiles that meet them are clamped."""
    T, n, floor = 301, 6, 1e-9
    X = rng.dirichlet(np.ones(C), size=(T, n))
    onehot = np.eye(C)[rng.integers(0, C, size=n)]
    for t in (0, 130, 299):  # on the diagonal of the first and last row tiles, and between
        X[t] = onehot
    X[131] = np.roll(onehot, 1, axis=-1)  # disjoint from X[130] in every sample
    sq = np.sqrt(X)
    bc = np.einsum("sic,tic->sti", sq, sq)
    expected_count = int(np.triu((bc < floor).sum(axis=-1), 1).sum())
    ref = -np.mean(np.log(np.clip(bc, floor, 1.0)), axis=-1) * (1 - np.eye(T))
    assert expected_count >= n
    for max_memory in (None, 3 * n * C * 8 * 256):  # one panel, then panels of 256 models
        with pytest.warns(ClampWarning, match=rf"^{expected_count} \(pair, sample\)"):
            D = pairwise_distances(X, floor=floor, max_memory=max_memory)
        np.testing.assert_allclose(D, ref, rtol=1e-12, atol=1e-15)
        with pytest.warns(ClampWarning):
            cross = pairwise_distances(X[:140], X, floor=floor, max_memory=max_memory)
        np.testing.assert_allclose(cross, ref[:140], rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("precision, C", [("exact", 10), ("fast", 10), ("exact", 40)])  # 40: the BLAS tile
def test_a_clamp_in_one_sample_among_samples_the_bound_clears(rng, precision, C):
    """Every sample but one has all probabilities near 1/C, so the kernel's lower bound on
    the tile's coefficients clears the floor and it skips the comparison there; in sample 2,
    three models are one-hot on different classes. That sample alone must be compared and
    its pairs clamped (a skipped comparison would multiply a zero coefficient in: d = inf)."""
    T, n, floor = 301, 8, 1e-9
    X = rng.dirichlet(np.full(C, 50.0), size=(T, n))
    for t, c in ((0, 1), (130, 4), (299, 7)):
        X[t, 2] = np.eye(C)[c]
    sq = np.sqrt(X)
    bc = np.einsum("sic,tic->sti", sq, sq)
    expected_count = int(np.triu((bc < floor).sum(axis=-1), 1).sum())
    assert expected_count == 3 and (bc[:, :, [0, 1, 3, 4, 5, 6, 7]] > 0.5).all()
    ref = -np.mean(np.log(np.clip(bc, floor, 1.0)), axis=-1) * (1 - np.eye(T))
    with pytest.warns(ClampWarning, match=rf"^{expected_count} \(pair, sample\)"):
        D = pairwise_distances(X, floor=floor, precision=precision)
    tol = dict(rtol=1e-12, atol=1e-15) if precision == "exact" else dict(rtol=1e-5, atol=1e-6)  # float32 products
    np.testing.assert_allclose(D, ref, **tol)


def test_one_clamping_rule_whatever_the_tile_and_backend(rng):
    """A pair's d_B is the same alone, in a tile redone with the clamp, in another tile,
    on every backend, and from bhattacharyya(): coefficients above 1 (float32 rows summing
    to 1 +- 1e-7) are never clipped, only coefficients below floor are raised to it."""
    n, C = 200, 10
    base = rng.dirichlet(np.ones(C), size=n)
    base[:, 0] = 1e-30  # class 0 has no mass: a one-hot model on it is disjoint from these
    other = base.copy()
    other[:20] = rng.dirichlet(np.ones(C), size=20)  # the pair differs on 10 % of the samples
    other[:20, 0] = 1e-30
    onehot = np.zeros((n, C))
    onehot[:, 0] = 1.0
    fillers = rng.dirichlet(np.ones(C), size=(9, n))
    X = np.concatenate([[base, other, onehot], fillers]).astype(np.float64)
    X = (X / X.sum(axis=-1, keepdims=True)).astype(np.float32)  # as a float32 softmax would
    a, b = X[0].astype(np.float64), X[1].astype(np.float64)
    bc = np.sum(np.sqrt(a) * np.sqrt(b), axis=-1)
    assert np.count_nonzero(bc > 1.0) >= 20  # identical samples, rounded above 1
    expected = -np.mean(np.log(np.maximum(bc, 1e-12)))  # plain definition: nothing clipped above
    assert 1e-3 < expected < 1e-1
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ClampWarning)
        got = {
            "alone": pairwise_distances(X[:2])[0, 1],
            "bhattacharyya()": bhattacharyya(X[0], X[1]),
            # with the one-hot model in the same tile: that tile is redone with the clamp
            "tile with a clamped model": pairwise_distances(X)[0, 1],
            "cross, tile with a clamped model": pairwise_distances(X[:3], X)[0, 1],
            # the pair in a tile of its own, far from the clamped one
            "other tile": pairwise_distances(X[::-1], block_size=2)[-1, -2],
            "other tile, one-model panels": pairwise_distances(X, block_size=1, max_memory=2 * n * C * 8)[0, 1],
        }
        for backend in ("numba", "numpy", "torch"):
            got[f"{backend} backend"] = pairwise_distances(X, backend=backend, device="cpu")[0, 1]
            got[f"{backend} backend, blocks of 2"] = pairwise_distances(X, backend=backend, device="cpu",
                                                                         block_size=2)[1, 0]
        if torch.cuda.is_available():
            got["cuda"] = pairwise_distances(X, device="cuda")[0, 1]
        assert pairwise_distances(X[:3])[0, 2] == pytest.approx(-np.log(1e-12), rel=1e-3)  # clamped indeed
    for where, d in got.items():
        assert d == pytest.approx(expected, rel=1e-12), where


def test_identical_float32_models_are_at_zero_not_below(rng, models):
    X = models(rng, 3, 50, 10).astype(np.float32)
    X = np.concatenate([X, X])  # coefficients of the copies are 1 +- 1e-7, half of them above 1
    for backend in ("numba", "numpy", "torch"):
        D = pairwise_distances(X, backend=backend, device="cpu")
        assert np.all(D >= 0.0) and np.all(np.diagonal(D, offset=3) <= 1e-7), backend
    assert np.all(bhattacharyya(X[:3], X[3:]) >= 0.0)


def _softmax32(z):
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return (e / e.sum(axis=-1, keepdims=True)).astype(np.float32)


@pytest.mark.skipif(np.finfo(np.longdouble).eps > 1e-18, reason="long double is not wider than double here")
@pytest.mark.parametrize("backend", ["numba", "numpy", "torch"])
def test_exact_precision_against_long_double_on_adversarial_pairs(rng, backend):
    n, C = 400, 10
    logits = 2 * rng.standard_normal((n, C))
    models = [_softmax32(logits)]  # float32 rows: they sum to 1 within a few 1e-8, not exactly
    models += [_softmax32(logits + eps * rng.standard_normal((n, C))) for eps in (1e-2, 1e-3, 1e-4, 3e-5)]
    one = logits.copy()
    one[7] += 1e-2 * rng.standard_normal(C)  # differs from the first model in one sample only
    models.append(_softmax32(one))
    for hot in (0, 1):  # near-disjoint supports: each mass on its own class, 1e-6 elsewhere
        z = np.full((n, C), -14.0)
        z[:, hot] = 0.0
        models.append(_softmax32(z))
    X = np.stack(models)
    L = X.astype(np.longdouble)
    ref = np.array([[-np.mean(np.log(np.sqrt(a * b).sum(axis=1))) for b in L] for a in L], dtype=np.float64)
    use = ~np.eye(len(X), dtype=bool) & (ref >= 1e-9)
    assert ref[use].min() < 1e-8 and ref[use].max() > 5  # the cases span close to near-disjoint
    assert np.abs(X.astype(np.float64).sum(-1) - 1).max() > 1e-8  # and the rows are not exactly normalised
    D = pairwise_distances(X, backend=backend, device="cpu")
    assert (np.abs(D - ref)[use] / ref[use]).max() <= 1e-6


@pytest.mark.parametrize("precision", ["exact", "fast"])
def test_numba_results_do_not_depend_on_tiling_threads_or_the_call(precision):
    """Up to 32 classes every pair's products are taken in one order, whatever the tile,
    the thread or the call: bitwise equal results. Above, a BLAS product per sample sums in
    an order that follows the tile's shape: equal to the precision's own accuracy."""
    rng = np.random.default_rng(3)
    for C, tol in ((10, 0.0), (40, 1e-14 if precision == "exact" else 1e-6)):
        X = np.log(rng.dirichlet(np.full(C, 0.7), size=(37, 90))).astype(np.float32)
        ref = pairwise_distances(X, precision=precision, log=True, block_size=256, n_jobs=1)
        off = ~np.eye(len(X), dtype=bool)
        variants = [pairwise_distances(X, precision=precision, log=True, block_size=b, n_jobs=j)
                    for b in (1, 3, 8, 64) for j in (1, 2)]
        variants.append(pairwise_distances(X, X, precision=precision, log=True))  # the cross path
        for D in variants:
            if tol == 0.0:
                assert np.array_equal(D[off], ref[off])
            else:
                assert np.max(np.abs(D - ref)[off] / ref[off]) <= tol
