"""Dimensionality of checkpoint sets against the sample-permutation null."""

import json

import numpy as np
import pytest

from deepmanifold import geometry
from deepmanifold.analysis.dimensionality import dimensionality, permutation_surrogate

C, N = 10, 120
RNG = np.random.default_rng(0)
LABELS = RNG.integers(0, C, size=N)
DIFFICULTY = RNG.uniform(0, 1, size=N)
GRID = np.linspace(0, 1, 401)
GEO = geometry.geodesic(LABELS, C, GRID)  # (401, N, C)


def _shared_path(tau):
    """The planted 1-D manifold: a point per training 'time' tau in [0, 1].

    Sample i sits on its own ignorance-to-truth great circle at fraction
    s_i(tau), a ramp that starts later for harder samples. Every run visits
    points of this one curve, so runs share which samples are learned when.
    """
    s = np.clip((tau - 0.6 * DIFFICULTY) / 0.4, 0.0, 1.0)
    return GEO[np.rint(s * (GRID.size - 1)).astype(int), np.arange(N)]


def _planted(n_runs=6, k=10, seed=1):
    rng = np.random.default_rng(seed)
    P, run = [], []
    for r in range(n_runs):
        speed = rng.uniform(0.5, 2.0)  # each run its own pace along the same curve
        for j in range(k):
            P.append(_shared_path((j / (k - 1)) ** speed))
            run.append(f"run{r}")
    return np.array(P), np.array(run)


@pytest.fixture(scope="module")
def planted():
    P, run = _planted()
    return P, run, geometry.pairwise_distances(P)


def test_shared_curve_needs_few_axes_and_fewer_than_the_null(planted):
    P, run, D = planted
    rep = dimensionality(D, run, P=P, n_null=3, random_state=0)
    assert rep.axes_needed[0.8] is not None and rep.axes_needed[0.8] <= 2
    assert rep.axes_needed[0.9] is not None and rep.axes_needed[0.9] <= 2
    assert rep.null_axes_needed.shape == (3, 3)
    # at 90 % and 95 % every surrogate needs more axes than the data
    for j, thr in enumerate(rep.thresholds):
        if thr >= 0.9:
            assert np.all(rep.null_axes_needed[:, j] > rep.axes_needed[thr])
    summ = rep.null_summary()
    assert summ["0.95"]["data_fewer_than_null_mean"]
    assert summ["0.95"]["fraction_at_most_data"] == 0.0
    # stress curve is cumulative and bounded
    assert np.all(np.diff(rep.explained_stress) >= -1e-12)
    assert 0 < rep.explained_stress[-1] <= 1 + 1e-12
    d = rep.to_dict()
    json.dumps(d)
    assert d["n_runs"] == 6 and d["n_models"] == 60 and d["n_null"] == 3
    assert len(d["null_stress_mean"]) == 10


def test_surrogate_keeps_endpoints_and_scrambles_the_middle(planted):
    P, run, _ = planted
    S = permutation_surrogate(P, run, random_state=3)
    assert S.shape == P.shape
    np.testing.assert_allclose(S.sum(-1), 1.0, atol=1e-12)
    for r in np.unique(run):
        rows = np.nonzero(run == r)[0]
        np.testing.assert_allclose(S[rows[0]], P[rows[0]], atol=1e-12)
        np.testing.assert_allclose(S[rows[-1]], P[rows[-1]], atol=1e-12)
    # every sample's circle here has the same length (ignorance -> truth), so
    # the per-sample angles are exactly permuted and each checkpoint keeps its
    # distance from the run's start (the run's own progress profile)
    d_real = np.array([geometry.bhattacharyya(P[i], P[np.nonzero(run == run[i])[0][0]]) for i in range(len(P))])
    d_sur = np.array([geometry.bhattacharyya(S[i], S[np.nonzero(run == run[i])[0][0]]) for i in range(len(P))])
    np.testing.assert_allclose(d_sur, d_real, atol=1e-9)
    # but the middle checkpoints themselves moved
    mid = np.nonzero(run == "run0")[0][1:-1]
    assert np.abs(S[mid] - P[mid]).max() > 0.1


def test_lockstep_geodesic_runs_equal_their_null():
    """Documented caveat: if all samples move together the null is the data."""
    P = np.concatenate([geometry.geodesic(LABELS, C, np.linspace(0, 1, 6)),
                        geometry.geodesic(LABELS, C, np.linspace(0, 1, 6) ** 2)])
    run = np.repeat([0, 1], 6)
    S = permutation_surrogate(P, run, random_state=0)
    np.testing.assert_allclose(S, P, atol=1e-9)
    rep = dimensionality(geometry.pairwise_distances(P), run, P=P, n_null=2, max_axes=4)
    assert rep.axes_needed[0.95] <= 2  # the geodesic embeds as one (curved) line
    np.testing.assert_allclose(rep.null_stress, np.tile(rep.explained_stress, (2, 1)), atol=1e-6)
    assert np.all(rep.null_axes_needed == [rep.axes_needed[t] for t in rep.thresholds])


def test_log_input_and_no_null(planted):
    P, run, D = planted
    with np.errstate(divide="ignore"):
        L = np.log(P)
    a = permutation_surrogate(P, run, random_state=5)
    b = permutation_surrogate(L, run, random_state=5, log=True)
    np.testing.assert_allclose(a, b, atol=1e-12)
    rep = dimensionality(D, run, null="none", max_axes=3, thresholds=(0.5, 0.999999))
    assert rep.null_stress.shape == (0, 3)
    assert rep.axes_needed[0.999999] is None
    d = rep.to_dict()
    json.dumps(d)
    assert set(d["axes_needed"]) == {"0.5", "0.999999"}
    assert d["null_axes_needed"] == {}


def test_censored_null_counts_and_validation(planted):
    P, run, D = planted
    rep = dimensionality(D, run, P=P, n_null=2, max_axes=2, thresholds=(0.99,))
    assert rep.max_axes == 2
    assert np.all(rep.null_axes_needed == 3)  # not reached in 2 axes: censored at max_axes + 1
    assert rep.null_summary()["0.99"]["n_censored"] == 2
    with pytest.raises(ValueError, match="needs the predictions"):
        dimensionality(D, run)
    with pytest.raises(ValueError, match="run_index"):
        dimensionality(D, run[:-1], null="none")
    with pytest.raises(ValueError, match="null must be"):
        dimensionality(D, run, null="shuffle", P=P)
    with pytest.raises(ValueError, match="thresholds"):
        dimensionality(D, run, null="none", thresholds=(1.5,))


def test_surrogate_of_a_lazy_stack_equals_that_of_the_array(planted):
    """The null reads a ModelStack (one run at a time) exactly as it reads the whole array."""
    P, run, _ = planted
    with np.errstate(divide="ignore"):
        L = np.log(P).astype(np.float32)
    rows = [L[run == r] for r in np.unique(run)]
    stack = geometry.ModelStack(rows)
    order = np.concatenate([np.nonzero(run == r)[0] for r in np.unique(run)])
    from_array = permutation_surrogate(L[order], run[order], random_state=7, log=True)
    np.testing.assert_array_equal(permutation_surrogate(stack, run[order], random_state=7, log=True), from_array)
    # interleaved runs (rows of a run not contiguous) are read model by model
    mixed = np.argsort(np.tile(np.arange(10), 6), kind="stable")  # run0 row0, run1 row0, ...
    inter = geometry.ModelStack([L[order][mixed]])
    np.testing.assert_array_equal(permutation_surrogate(inter, run[order][mixed], random_state=7, log=True),
                                  permutation_surrogate(L[order][mixed], run[order][mixed], random_state=7,
                                                        log=True))
