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


# ============================================================================ claim 1 at equal progress
import importlib  # noqa: E402
import math  # noqa: E402
import types  # noqa: E402
import warnings  # noqa: E402

from deepmanifold.analysis.averaging import mean_model  # noqa: E402
from deepmanifold.analysis.trajectories import (TrajectorySet, distance_to_geodesic_by_progress,  # noqa: E402
                                                probabilities_from_roots)
from deepmanifold.analysis.verdicts import VERDICTS  # noqa: E402

dm = importlib.import_module("deepmanifold.analysis.dimensionality")  # the package re-exports a function of that name

THETA = math.acos(1.0 / math.sqrt(C))
ROOT0 = np.full(C, 1.0 / math.sqrt(C))
ONEHOT = np.eye(C)[LABELS]
EQ_GRID = np.linspace(0.0, 1.0, 26)


def _circles(s):
    """Unit roots with sample i at fraction s[..., i] of its ignorance-to-truth great circle (docs/method.md §3.1)."""
    s = np.asarray(s, dtype=float)[..., None]
    return (np.sin((1.0 - s) * THETA) * ROOT0 + np.sin(s * THETA) * ONEHOT) / math.sin(THETA)


def _unit(roots):
    r = np.abs(roots)
    return r / np.linalg.norm(r, axis=-1, keepdims=True)


def _timing(tau, difficulty):
    """Per-sample fraction at path parameter tau: harder samples start later (a path off the geodesic)."""
    return np.clip((np.asarray(tau, dtype=float)[:, None] - 0.6 * difficulty) / 0.4, 0.0, 1.0)


def _resampled(roots, reached=None):
    """Runs given at the grid (R, G, n, C), as the analyses read a TrajectorySet.

    A planted run's model at grid value t is its path at parameter t: runs compared at equal
    parameter, which the analyses treat as equal progress (they never recompute progress).
    """
    roots = np.asarray(roots, dtype=np.float32)
    reached = np.ones(roots.shape[:2], bool) if reached is None else reached
    return types.SimpleNamespace(sqrt_p=np.where(reached[..., None, None], roots, 0).astype(np.float32),
                                 reached=reached, grid=EQ_GRID, sample_labels=LABELS,
                                 run_labels=[f"r{i}" for i in range(roots.shape[0])])


def _bump(noise, rng):
    """A smooth private perturbation, zero at both ends of the path."""
    return noise * np.sin(np.pi * EQ_GRID)[:, None, None] * rng.normal(size=(N, C))


def _shared_runs(n_runs=12, noise=0.03, seed=1):
    """One shared path (common per-sample timing) plus a small smooth private perturbation per run."""
    rng = np.random.default_rng(seed)
    return _resampled([_unit(_circles(_timing(EQ_GRID, DIFFICULTY)) + _bump(noise, rng)) for _ in range(n_runs)])


def _own_detours(n_runs=12, seed=2):
    """Every run learns the samples in its own order: its detour from the geodesic is private."""
    rng = np.random.default_rng(seed)
    return _resampled([_circles(_timing(EQ_GRID, rng.uniform(0, 1, N))) for _ in range(n_runs)])


def _brownian_runs(n_runs=12, sigma=0.15, seed=3):
    """Independent Brownian bridges (pinned at ignorance and truth) around the common drift along the geodesic."""
    rng = np.random.default_rng(seed)
    G = EQ_GRID.size
    runs = []
    for _ in range(n_runs):
        steps = rng.normal(size=(G - 1, N, C)) * np.sqrt(np.diff(EQ_GRID))[:, None, None]
        walk = np.concatenate([np.zeros((1, N, C)), np.cumsum(steps, axis=0)])
        bridge = walk - EQ_GRID[:, None, None] * walk[-1]
        runs.append(_unit(_circles(np.repeat(EQ_GRID[:, None], N, axis=1)) + sigma * bridge))
    return _resampled(runs)


def _seven_factor_runs(n_runs=20, factors=7, amp=0.08, seed=4):
    """One shared path, and each run's own mix of 7 fixed perturbation patterns on top of it."""
    rng = np.random.default_rng(seed)
    patterns = rng.normal(size=(factors, N, C))
    envelope = np.sin(np.pi * EQ_GRID)[:, None, None]
    return _resampled([_unit(_circles(_timing(EQ_GRID, DIFFICULTY)) + envelope * np.tensordot(
        amp * rng.normal(size=factors) / math.sqrt(factors), patterns, 1)) for _ in range(n_runs)])


def _groups(n_groups=3, per_group=5, seed=5):
    """Runs in groups, each group on its own shared path (own sample order): 2 coherent dimensions for 3 groups."""
    rng = np.random.default_rng(seed)
    runs = []
    for _ in range(n_groups):
        difficulty = rng.uniform(0, 1, N)
        runs += [_unit(_circles(_timing(EQ_GRID, difficulty)) + _bump(0.02, rng)) for _ in range(per_group)]
    return _resampled(runs)


@pytest.fixture(scope="module")
def shared_ts():
    return _shared_runs()


@pytest.mark.parametrize("null", list(dm.SHARING_NULLS))
def test_power_one_shared_path_is_supported(shared_ts, null):
    ev = dm.manifold_evidence(shared_ts, null=null, random_state=0)
    sh = ev.sharing
    assert sh.null == null and ev.to_dict()["sharing"]["null"] == null
    assert sh.phi_summary > 0.9 and sh.null_mean < 0.2 and sh.p_value == pytest.approx(1 / 20)
    assert ev.dimension.d_eff == 1.0
    j = dm.judge(ev)
    assert j.verdict == "supported", j
    assert j.numbers["phi"] == sh.phi_summary and j.numbers["d_eff"] == 1.0
    assert ev.grid_rule == "grid points reached by at least 90 % of the 12 runs"
    out = json.loads(json.dumps(ev.to_dict(), allow_nan=False))
    assert out["sharing"]["n_null"] == 19 and len(out["sharing"]["phi"]) == EQ_GRID.size
    assert len(out["stress"]["brownian"]) == 10 and out["runs"] == shared_ts.run_labels


def test_power_shared_path_through_a_trajectory_set():
    """End to end: runs at their own pace along one path, resampled at equal progress by TrajectorySet."""
    rng = np.random.default_rng(6)
    runs = []
    for _ in range(8):
        tau = np.linspace(0.0, 1.0, 15) ** rng.uniform(0.6, 1.6)
        roots = _unit(_circles(_timing(tau, DIFFICULTY)) + 0.03 * np.sin(np.pi * tau)[:, None, None]
                      * rng.normal(size=(N, C)))
        runs.append(roots ** 2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # a backtracking run is named; its first crossings are used
        ts = TrajectorySet.from_runs(runs, LABELS, np.linspace(0.0, 1.0, 11))
    ev = dm.manifold_evidence(ts, n_null=9, n_shuffle=9, stress_sections=None, random_state=0)
    assert ev.sharing.phi_summary > 0.9 and ev.sharing.null_mean < 0.3 and ev.dimension.d_eff == 1.0


@pytest.mark.parametrize("null", list(dm.SHARING_NULLS))
@pytest.mark.parametrize("build", [_brownian_runs, _own_detours], ids=["brownian-bridges", "own-detours"])
def test_power_private_paths_are_not_supported(build, null):
    ev = dm.manifold_evidence(build(), null=null, stress_sections=None, random_state=0)
    assert ev.sharing.phi_summary < ev.sharing.null_mean + dm.SHARING_NEAR
    assert ev.stress is None
    assert dm.judge(ev).verdict == "not supported"


def test_power_many_coherent_dimensions_are_not_supported():
    """Φ alone would pass: the departure is mostly shared, but the runs differ along 7 coherent directions."""
    ev = dm.manifold_evidence(_seven_factor_runs(), stress_sections=None, random_state=0)
    assert ev.sharing.phi_summary >= dm.SHARING_HIGH and ev.sharing.p_value <= dm.P_VALUE
    assert ev.dimension.d_eff > dm.DIM_LARGE
    assert dm.judge(ev).verdict == "not supported"


def test_groups_on_distinct_paths_count_one_dimension_fewer_than_groups():
    dim = dm.shared_dimension(_groups(), random_state=0)
    assert np.median(dim.count) == 2 and dim.d_eff == 3.0
    assert np.all(dim.n_runs == 15) and dim.grid.size == 21
    # counted eigenvalues stand above the shuffle, the next one does not
    j = int(np.argmax(dim.count == 2))
    assert np.all(np.abs(dim.eigenvalues[j, :2]) > dim.null_q95[j, :2])
    assert abs(dim.eigenvalues[j, 2]) <= dim.null_q95[j, 2]


def test_departure_and_private_parts_against_independent_references():
    ts = _shared_runs(5)
    ts.reached[0, 20:] = False  # a run that stops early leaves the later grid points
    sh = dm.sharing(ts, grid_mask=np.ones(EQ_GRID.size, bool), n_null=1, random_state=0)
    geo = distance_to_geodesic_by_progress(ts)  # the geodesic coefficients' route (docs/method.md §3.2)
    for g in range(EQ_GRID.size):
        who = np.flatnonzero(ts.reached[:, g])
        assert sh.n_runs[g] == who.size
        np.testing.assert_allclose(sh.departure[g], geo[who, g].mean(), rtol=1e-9, atol=1e-12)
        X = probabilities_from_roots(ts.sqrt_p[who, g])
        logm = np.log(np.maximum(X, 1e-12)).mean(axis=0)
        M = np.exp(logm) / np.exp(logm).sum(axis=-1, keepdims=True)
        brute = -np.log(np.sqrt(X * M).sum(axis=-1)).mean(axis=-1)  # d_B by its definition (docs/method.md §2.1)
        np.testing.assert_allclose(mean_model(X), M, atol=1e-12)
        np.testing.assert_allclose(sh.private[g], who.size / (who.size - 1) * brute.mean(), rtol=1e-9, atol=1e-14)
    ok = np.isfinite(sh.departure)
    assert sh.phi_summary == pytest.approx(np.clip(1 - sh.private[ok].sum() / sh.departure[ok].sum(), 0, 1))
    assert np.all((sh.phi[np.isfinite(sh.phi)] >= 0) & (sh.phi[np.isfinite(sh.phi)] <= 1))
    assert sh.n_runs.tolist() == [5] * 20 + [4] * 6


def test_identical_runs_share_everything_and_geodesic_runs_have_nothing_to_share():
    same = _resampled([_circles(_timing(EQ_GRID, DIFFICULTY))] * 4)
    sh = dm.sharing(same, n_null=3, random_state=0)
    defined = np.isfinite(sh.phi)
    assert defined.sum() > 10
    np.testing.assert_allclose(sh.phi[defined], 1.0, atol=1e-9)
    assert sh.phi_summary == pytest.approx(1.0, abs=1e-9)
    assert np.all(sh.null_summary < 0.9)  # independent permutations make the surrogates differ
    on_geodesic = _resampled([np.sqrt(geometry.geodesic(LABELS, C, EQ_GRID))] * 3)
    ev = dm.manifold_evidence(on_geodesic, n_null=2, n_shuffle=2, stress_sections=None)
    assert np.nanmax(ev.sharing.departure) < 1e-9 and np.isnan(ev.sharing.phi_summary)
    j = dm.judge(ev)
    assert j.verdict == "skipped" and j.reason


def test_within_label_null_keeps_each_run_s_departure_and_progress():
    ts = _own_detours(4)
    idx, g = np.arange(4), np.arange(EQ_GRID.size)
    draw = dm._surrogate_draws(ts, idx, g, "within_label", np.random.default_rng(0))
    models_at = draw()
    for j in (5, 12, 20):
        X, Y = probabilities_from_roots(ts.sqrt_p[:, j]), models_at(j, idx)
        assert not np.allclose(X, Y)
        np.testing.assert_allclose(geometry.progress(Y, LABELS), geometry.progress(X, LABELS), atol=1e-5)
        gamma = geometry.geodesic(LABELS, C, [EQ_GRID[j]])[0]
        np.testing.assert_allclose(geometry.bhattacharyya(Y, gamma), geometry.bhattacharyya(X, gamma), rtol=1e-12)
        for c in range(C):  # samples trade places only within their class
            members = LABELS == c
            np.testing.assert_allclose(np.sort(Y[:, members, c], axis=1), np.sort(X[:, members, c], axis=1))
    with pytest.raises(ValueError, match="null must be one of"):
        dm.sharing(ts, null="shuffle")


def test_shuffle_of_run_identities_keeps_the_total_spread():
    X = probabilities_from_roots(_own_detours(6).sqrt_p[:, 12])
    Y = dm._shuffle_runs(X, np.random.default_rng(0))
    assert not np.allclose(X, Y)
    np.testing.assert_allclose(np.sort(Y, axis=0), np.sort(X, axis=0))  # each sample's predictions, permuted
    assert geometry.pairwise_distances(Y).sum() == pytest.approx(geometry.pairwise_distances(X).sum(), rel=1e-10)


def test_brownian_reference_is_the_continuum_limit_of_a_sampled_random_walk():
    t = np.linspace(0.0, 1.0, 1001)
    res = geometry.inpca(np.abs(t[:, None] - t[None, :]), n_components=10)
    np.testing.assert_allclose(res.explained_stress, dm.brownian_stress(10), atol=2e-3)
    assert res.eigenvalues[0] == pytest.approx(len(t) / math.pi ** 2, rel=1e-2)  # 1/π² per unit of the mean
    assert int(np.argmax(dm.brownian_stress(10) >= 0.9)) + 1 == 3


def test_stress_description_embeds_the_chosen_sections(shared_ts):
    st = dm.stress_description(shared_ts, max_sections=5, max_axes=4)
    assert st.grid.size == 5 and st.n_models == 5 * 12
    assert np.all(np.diff(st.explained_stress) >= -1e-12) and st.explained_stress[-1] <= 1 + 1e-12
    np.testing.assert_array_equal(st.brownian, dm.brownian_stress(4))


def _evidence(phi, null, p, d_eff):
    sh = dm.Sharing(grid=EQ_GRID, n_runs=np.full(26, 12), departure=np.ones(26), private=np.ones(26),
                    phi=np.full(26, phi), phi_summary=phi, phi_median=phi, null_phi=np.zeros((19, 26)),
                    null_summary=np.full(19, null), p_value=p)
    dim = dm.SharedDimension(grid=EQ_GRID[:3], n_runs=np.full(3, 12), eigenvalues=np.zeros((3, 10)),
                             null_q95=np.zeros((3, 10)), count=np.full(3, int(d_eff) - 1), d_eff=d_eff, n_shuffle=19)
    return dm.ManifoldEvidence(run_labels=list("abc"), grid_rule="all", sharing=sh, dimension=dim)


@pytest.mark.parametrize("phi, null, p, d_eff, verdict", [
    (0.8, 0.1, 0.05, 2.0, "supported"),
    (0.8, 0.1, 0.05, 4.0, "inconclusive"),  # d_eff between small and large
    (0.8, 0.1, 0.05, 6.0, "not supported"),  # d_eff large
    (0.4, 0.0, 0.05, 1.0, "inconclusive"),  # clearly above the null but below half
    (0.8, 0.65, 0.05, 1.0, "inconclusive"),  # high, above the null, not clearly
    (0.8, 0.75, 0.3, 1.0, "not supported"),  # near the null
    (0.8, 0.1, 0.1, 1.0, "inconclusive"),  # a null draw reached it
])
def test_rule_thresholds(phi, null, p, d_eff, verdict):
    j = dm.judge(_evidence(phi, null, p, d_eff))
    assert j.verdict == verdict and j.verdict in VERDICTS
    assert set(j.numbers) >= {"phi", "phi_null_mean", "p_value", "d_eff", "grid"}
    for value in (dm.SHARING_HIGH, dm.SHARING_MARGIN, dm.SHARING_NEAR, dm.DIM_SMALL, dm.DIM_LARGE):
        assert f"{value:g}" in dm.RULE


def test_equal_progress_validation(shared_ts):
    with pytest.raises(ValueError, match="runs: at least 2"):
        dm.manifold_evidence(shared_ts, runs=[0])
    with pytest.raises(ValueError, match="runs: indices"):
        dm.sharing(shared_ts, runs=[0, 99])
    with pytest.raises(ValueError, match="grid_mask must have shape"):
        dm.sharing(shared_ts, grid_mask=np.ones(3, bool))
    with pytest.raises(ValueError, match="n_null"):
        dm.sharing(shared_ts, n_null=0)
    with pytest.raises(ValueError, match="max_sections"):
        dm.shared_dimension(shared_ts, max_sections=0)
    with pytest.raises(ValueError, match="sample_labels"):
        dm.sharing(types.SimpleNamespace(**{**vars(shared_ts), "sample_labels": None}))
    mask = np.zeros(12, bool)
    mask[:4] = True
    sh = dm.sharing(shared_ts, runs=mask, grid_mask=EQ_GRID <= 0.5, n_null=2)
    assert sh.grid.max() <= 0.5 and sh.n_runs.max() == 4
    thin = dm.sharing(shared_ts, n_null=2, max_points=6)
    np.testing.assert_allclose(thin.grid, EQ_GRID[::5])  # spread evenly over the grid, both ends kept
