"""bhattacharyya: identities and a plain-numpy reference."""

import warnings

import numpy as np
import pytest

from deepmanifold.geometry import ClampWarning, bhattacharyya, ignorance, truth


def reference_d_b(p, q, floor=1e-12):
    bc = np.sum(np.sqrt(p * q), axis=-1)
    return -np.mean(np.log(np.maximum(bc, floor)))


@pytest.mark.parametrize("C", [2, 3, 10, 100])
def test_ignorance_to_truth_is_half_log_C(rng, C):
    labels = rng.integers(0, C, size=37)
    d = bhattacharyya(ignorance(labels, C), truth(labels, C))
    assert d == pytest.approx(0.5 * np.log(C), rel=1e-13)


def test_ignorance_to_truth_C10_value():
    labels = np.arange(10)
    assert round(bhattacharyya(ignorance(labels, 10), truth(labels, 10)), 4) == 1.1513


def test_zero_self_distance_and_symmetry(rng, models):
    P, Q = models(rng, 2, 50, 7)
    assert bhattacharyya(P, P) == pytest.approx(0.0, abs=1e-15)
    assert bhattacharyya(P, Q) == pytest.approx(bhattacharyya(Q, P), rel=1e-14)
    assert bhattacharyya(P, Q) > 0


def test_matches_reference(rng, models):
    P, Q = models(rng, 2, 80, 5, concentration=0.3)
    assert bhattacharyya(P, Q) == pytest.approx(reference_d_b(P, Q), rel=1e-13)


def test_log_input_equals_probability_input(rng, models):
    P, Q = models(rng, 2, 40, 6, zeros=True)
    with np.errstate(divide="ignore"):
        lp, lq = np.log(P), np.log(Q)
    assert np.isneginf(lp).any()  # -inf log-probabilities are legal
    assert bhattacharyya(lp, lq, log=True) == pytest.approx(bhattacharyya(P, Q), rel=1e-13)


def test_float32_input(rng, models):
    P, Q = models(rng, 2, 40, 6)
    d32 = bhattacharyya(P.astype(np.float32), Q.astype(np.float32))
    assert d32 == pytest.approx(bhattacharyya(P, Q), rel=1e-5)


def test_disjoint_supports_are_clamped_with_one_warning():
    P = np.eye(3)[[0, 0, 1]]
    Q = np.eye(3)[[1, 2, 0]]
    with pytest.warns(ClampWarning, match="3 samples") as record:
        d = bhattacharyya(P, Q, floor=1e-12)
    assert len(record) == 1 and record[0].filename == __file__
    assert d == pytest.approx(-np.log(1e-12))
    assert np.isfinite(d)


def test_one_disjoint_sample_contributes_minus_log_floor_over_n(rng, models):
    P, Q = models(rng, 2, 9, 4)
    P[3], Q[3] = [1, 0, 0, 0], [0, 0.5, 0.5, 0]
    expected = (-np.log(1e-8) + 8 * reference_d_b(np.delete(P, 3, 0), np.delete(Q, 3, 0))) / 9
    with pytest.warns(ClampWarning, match="1 samples"):
        d = bhattacharyya(P, Q, floor=1e-8)
    assert d == pytest.approx(expected, rel=1e-12)


def test_no_warning_without_clamping(rng, models):
    P, Q = models(rng, 2, 10, 4)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        bhattacharyya(P, Q)


def test_stacks_are_paired_like_a_loop_over_pairs(rng, models):
    P = models(rng, 6, 30, 5, concentration=0.4)
    Q = models(rng, 6, 30, 5)
    loop = np.array([reference_d_b(p, q) for p, q in zip(P, Q)])
    np.testing.assert_allclose(bhattacharyya(P, Q), loop, rtol=1e-13)
    # one model against each model of a stack, either way round
    against_one = np.array([reference_d_b(p, Q[2]) for p in P])
    np.testing.assert_allclose(bhattacharyya(P, Q[2]), against_one, rtol=1e-13)
    np.testing.assert_allclose(bhattacharyya(Q[2], P), against_one, rtol=1e-13)
    assert bhattacharyya(P, Q).shape == (6,) and isinstance(bhattacharyya(P[0], Q[0]), float)


def test_stacks_in_chunks_of_models(rng, models, monkeypatch):
    from deepmanifold.geometry import divergences

    P, Q = models(rng, 7, 20, 4), models(rng, 7, 20, 4)
    whole = bhattacharyya(P, Q)
    monkeypatch.setattr(divergences, "_CHUNK_ELEMENTS", 3 * 20 * 4)  # chunks of 3 models
    np.testing.assert_array_equal(bhattacharyya(P, Q), whole)
    np.testing.assert_array_equal(bhattacharyya(P, Q[0]), np.array([bhattacharyya(p, Q[0]) for p in P]))


def test_stack_clamps_are_counted_per_pair_and_sample():
    P = np.eye(3)[[[0, 0], [1, 1], [2, 0]]]  # 3 one-hot models on 2 samples
    Q = np.eye(3)[[1, 2, 0]][:, None, :].repeat(2, axis=1)
    with pytest.warns(ClampWarning, match=r"^5 \(pair, sample\)"):
        d = bhattacharyya(P, Q, floor=1e-8)
    np.testing.assert_allclose(d, [-np.log(1e-8), -np.log(1e-8), -np.log(1e-8) / 2], rtol=1e-14)


def test_stacks_of_different_lengths_are_rejected(rng, models):
    P = models(rng, 3, 10, 4)
    with pytest.raises(ValueError, match="P holds 3 models and Q holds 2"):
        bhattacharyya(P, P[:2])


def test_coefficients_above_one_are_kept_and_the_distance_clipped_at_zero():
    p = np.array([[0.5, 0.5], [0.25, 0.75]])
    q = np.array([[0.5, 0.5 + 4e-6], [0.25, 0.75]])  # rows within tolerance of 1, BC_0 > 1
    bc = np.sum(np.sqrt(p * q), axis=1)
    assert bc[0] > 1.0
    assert bhattacharyya(p, q) == 0.0  # -mean(log bc) < 0, clipped
    r = np.array([[0.5, 0.5 + 4e-6], [0.9, 0.1]])  # the second sample moves: BC_0 > 1 is kept
    expected = -np.mean(np.log(np.sum(np.sqrt(p * r), axis=1)))
    assert expected > 0 and bhattacharyya(p, r) == pytest.approx(expected, rel=1e-14)
