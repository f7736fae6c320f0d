"""Claim 4 (corners converge onto the manifold), on runs built from the geodesic of docs/method.md §3."""

import json
import math

import numpy as np
import pytest

from deepmanifold.analysis.corners import corner_convergence
from deepmanifold.geometry import ClampWarning, geodesic, pairwise_distances

C, N = 10, 300
RNG = np.random.default_rng(0)
LABELS = RNG.integers(0, C, size=N)
GRID = np.linspace(0.0, 1.0, 21)
THETA = math.acos(1.0 / math.sqrt(C))
GAMMA = geodesic(LABELS, C, GRID)  # (G, n, C) probabilities on the geodesic
RANDOM = RNG.dirichlet(np.full(C, 0.3), size=N)  # a distribution far from everything


def _sqrt(p):
    return np.sqrt(p).astype(np.float32)


def _mixed(weight):
    """A run whose model at progress t is (1 - w(t)) gamma(t) + w(t) RANDOM."""
    w = np.asarray(weight, dtype=float)[:, None, None]
    return _sqrt((1.0 - w) * GAMMA + w * RANDOM)


def _dumps(out):
    return json.loads(json.dumps(out.to_dict(), allow_nan=False))  # NaN must have become None


def test_corner_on_shifted_geodesic_matches_closed_form():
    # corner at gamma(t + 0.3 (1 - t)) while the ordinary runs sit at gamma(t):
    # d_B = -ln cos(0.3 (1 - t) theta), falling to exactly 0 at t = 1.
    shifted = _sqrt(geodesic(LABELS, C, GRID + 0.3 * (1.0 - GRID)))
    sq = np.stack([_sqrt(GAMMA)] * 3 + [shifted])
    out = _dumps(corner_convergence(sq, np.ones((4, GRID.size), bool), GRID, np.array([False] * 3 + [True])))
    expected = -np.log(np.cos(0.3 * (1.0 - GRID) * THETA))
    np.testing.assert_allclose(out["corner"]["distance"][0], expected, atol=2e-6)
    s = out["corner"]["summary"][0]
    assert s["spearman"] == pytest.approx(-1.0) and s["decreases"] is True
    assert s["t_first"] == 0.0 and s["t_last"] == 1.0 and s["t_mid"] == 0.5
    assert s["d_mid"] == pytest.approx(-math.log(math.cos(0.15 * THETA)), abs=2e-6)
    assert s["ratio_last_first"] < 1e-4
    # identical ordinary runs: the manifold has no spread
    assert max(out["ordinary"]["spread"]["max"]) < 1e-6
    assert out["ordinary"]["spread"]["n"] == [3] * GRID.size
    assert all(abs(s["d_last"]) < 1e-6 for s in out["ordinary"]["summary"])
    assert out["corner"]["runs"] == [3] and out["ordinary"]["runs"] == [0, 1, 2]


def test_converging_corner_vs_corner_that_stays_away():
    sq = np.stack([_sqrt(GAMMA)] * 3 + [_mixed(1.0 - GRID), _mixed(np.full(GRID.size, 0.7))])
    res = corner_convergence(sq, np.ones(sq.shape[:2], bool), GRID, [3, 4],
                             run_labels=["o1", "o2", "o3", "converges", "stays"])
    out = _dumps(res)
    conv, stay = out["corner"]["summary"]
    assert conv["run"] == "converges" and stay["run"] == "stays"
    assert conv["d_first"] > 0.1 and conv["d_last"] < 1e-5
    assert conv["decreases"] is True and conv["spearman"] < -0.9
    assert conv["excess_at_last"] < 1e-5  # ends within the ordinary spread
    assert stay["decreases"] is False and stay["spearman"] > 0
    assert stay["d_last"] > 0.3 and stay["excess_at_last"] > 0.3
    assert out["corner"]["nearest"][0][0] in {"o1", "o2", "o3"}
    # the typed result carries the same numbers
    assert res.corner.summary[0].run == "converges" and res.corner.summary[0].decreases is True
    assert res.corner.summary[1].excess_at_last == pytest.approx(stay["excess_at_last"])
    np.testing.assert_array_equal(res.corner.distance[1], out["corner"]["distance"][1])
    assert set(res.corner.nearest[0].tolist()) <= {0, 1, 2}
    assert [res.run_labels[k] for k in res.corner.nearest[0]] == out["corner"]["nearest"][0]


def test_nearest_ordinary_respects_reached_and_matches_pairwise_distances():
    rng = np.random.default_rng(1)
    R, G, n = 6, 4, 50
    p = rng.dirichlet(np.full(C, 0.5), size=(R, G, n))
    sq = np.sqrt(p)
    grid = np.linspace(0.0, 1.0, G)
    reached = np.ones((R, G), bool)
    reached[0, 3] = False  # corner 0 stops early
    reached[2, 1] = False  # ordinary run 2 misses grid point 1
    reached[3:, 2] = False  # only one ordinary run (2) reaches grid point 2
    is_corner = np.array([True, True, False, False, False, False])
    out = _dumps(corner_convergence(sq, reached, grid, is_corner))
    for g in range(G):
        ords = [k for k in range(2, R) if reached[k, g]]
        D = pairwise_distances(p[:, g], p[ords, g], backend="numpy")
        for c in (0, 1):
            got = out["corner"]["distance"][c][g]
            if not reached[c, g]:
                assert got is None and out["corner"]["nearest"][c][g] is None
                continue
            assert got == pytest.approx(D[c].min(), abs=1e-9)
            assert out["corner"]["nearest"][c][g] == ords[int(np.argmin(D[c]))]
    assert out["corner"]["summary"][0]["t_last"] == grid[2]
    # grid point 2: a single ordinary run, so no baseline spread there
    assert out["ordinary"]["spread"]["n"][2] == 0 and out["ordinary"]["spread"]["median"][2] is None
    assert out["ordinary"]["distance"][0][2] is None  # run 2 has no other ordinary run at g = 2
    assert out["ordinary"]["spread"]["n"][1] == 3
    for k, row in enumerate(out["ordinary"]["nearest"]):
        assert all(j is None or j != k + 2 for j in row)  # never its own neighbour


def test_explicit_ordinary_subset_and_edge_cases():
    sq = np.stack([_sqrt(GAMMA)] * 3 + [_mixed(1.0 - GRID)])
    reached = np.ones(sq.shape[:2], bool)
    out = _dumps(corner_convergence(sq, reached, GRID, [3], ordinary=[0]))
    assert out["ordinary"]["runs"] == [0] and "a single ordinary run" in " ".join(out["reasons"])
    assert out["ordinary"]["summary"][0]["n_points"] == 0
    assert out["ordinary"]["summary"][0]["reason"] == "no grid point reached"
    out = _dumps(corner_convergence(sq, reached, GRID, np.zeros(4, bool)))
    assert out["corner"]["distance"] == [] and "no corner runs" in out["reasons"]
    with pytest.raises(ValueError, match="both a corner"):
        corner_convergence(sq, reached, GRID, [3], ordinary=[0, 3])
    with pytest.raises(ValueError):
        corner_convergence(sq[0], reached, GRID, [3])
    with pytest.raises(ValueError):
        corner_convergence(sq, reached[:, :-1], GRID, [3])
    # disjoint supports are clamped, not infinite
    a = np.zeros((2, 1, 5, 2), np.float32)
    a[0, 0, :, 0] = 1.0
    a[1, 0, :, 1] = 1.0
    with pytest.warns(ClampWarning):
        out = corner_convergence(a, np.ones((2, 1), bool), [0.5], [1])
    assert out.corner.distance[0, 0] == pytest.approx(-math.log(1e-12))
    with pytest.raises(ValueError, match="run_labels must have length 4"):
        corner_convergence(sq, reached, GRID, [3], run_labels=["a"])
    with pytest.raises(ValueError, match="floor must lie in"):
        corner_convergence(sq, reached, GRID, [3], floor=0.0)


def test_json_form_keeps_the_keys_and_order_of_findings():
    sq = np.stack([_sqrt(GAMMA)] * 3 + [_mixed(1.0 - GRID)])
    reached = np.ones(sq.shape[:2], bool)
    reached[3, 15:] = False
    out = corner_convergence(sq, reached, GRID, [3]).to_dict()
    assert list(out) == ["grid", "floor", "mid_index", "corner", "ordinary", "reasons"]
    assert list(out["corner"]) == ["runs", "distance", "nearest", "summary"]
    assert list(out["ordinary"]) == ["runs", "distance", "nearest", "summary", "spread"]
    assert list(out["ordinary"]["spread"]) == ["median", "mean", "max", "n"]
    common = ["n_points", "t_first", "d_first", "t_mid", "d_mid", "t_last", "d_last", "spearman",
              "ratio_last_first", "decreases"]
    assert list(out["corner"]["summary"][0]) == common + ["spread_at_last", "spread_max_at_last",
                                                          "excess_at_last", "run"]
    assert list(out["ordinary"]["summary"][0]) == common + ["run"]
    assert out["corner"]["distance"][0][15:] == [None] * (GRID.size - 15)
    assert out["corner"]["summary"][0]["t_last"] == GRID[14] and out["floor"] == 1e-12


# ============================================================================ the band and the rule
from deepmanifold.analysis import corners as corners_module  # noqa: E402
from deepmanifold.analysis.corners import CornerBand, corner_band, judge  # noqa: E402
from deepmanifold.analysis.trajectories import probabilities_from_roots  # noqa: E402

BAND_GRID = np.linspace(0.0, 1.0, 41)
BAND_GAMMA = geodesic(LABELS, C, BAND_GRID)


def _ordinary(n_configs=3, n_seeds=3, seed=7):
    """Ordinary runs: per configuration its own mixture towards a random distribution, each seed a
    little of its own; ``(models (R, G, n, C), configuration keys)``."""
    rng = np.random.default_rng(seed)
    weight = (0.1 + 0.2 * np.sin(np.pi * BAND_GRID))[:, None, None]
    models, keys = [], []
    for k in range(n_configs):
        q_config = rng.dirichlet(np.ones(C), size=N)
        for s in range(n_seeds):
            q = 0.7 * q_config + 0.3 * rng.dirichlet(np.ones(C), size=N)
            models.append((1.0 - weight) * BAND_GAMMA + weight * q)
            keys.append({"arch": f"net{k}", "lr": 0.1})
    return np.stack(models), keys


def _corner(path, weight):
    """A corner that is ``RANDOM`` with weight w(t) and the ordinary ``path`` with 1 - w(t)."""
    w = np.asarray(weight, dtype=float)[:, None, None]
    return (1.0 - w) * path + w * RANDOM


def _band_of(corner_models, reached=None):
    """corner_band of the ordinary runs plus the given corners (models, not roots)."""
    ordinary, keys = _ordinary()
    models = np.concatenate([ordinary, np.stack(corner_models)])
    R = models.shape[0]
    reached = np.ones((R, BAND_GRID.size), bool) if reached is None else reached
    is_corner = np.arange(R) >= ordinary.shape[0]
    config = keys + ["corner"] * int(is_corner.sum())
    labels = [f"o{i}" for i in range(ordinary.shape[0])] + [f"c{i}" for i in range(int(is_corner.sum()))]
    return corner_band(_sqrt(models), reached, BAND_GRID, is_corner, config, run_labels=labels), models


def test_band_and_distances_against_brute_force():
    res, models = _band_of([_corner(_ordinary()[0][0], np.clip(1 - BAND_GRID / 0.3, 0, 1))])
    models = probabilities_from_roots(_sqrt(models))  # what the analysis reads: float32 roots, renormalised
    keys = [str(k) for k in _ordinary()[1]]
    for g in (0, 10, 25, 40):
        D = pairwise_distances(models[:9, g])
        for i in range(9):
            other = [j for j in range(9) if keys[j] != keys[i]]  # seed twins are never neighbours
            assert res.ordinary_distance[i, g] == pytest.approx(D[i, other].min(), rel=1e-9, abs=1e-12)
        assert res.band[g] == pytest.approx(res.ordinary_distance[:, g].max())
        dc = pairwise_distances(models[9:, g], models[:9, g])[0]
        assert res.corner_distance[0, g] == pytest.approx(dc.min(), rel=1e-9, abs=1e-12)
        assert res.corner_nearest[0][g] == f"o{int(np.argmin(dc))}"
    # the nearest run of a different configuration is farther than the nearest seed twin
    assert res.ordinary_distance[0, 20] > pairwise_distances(models[:3, 20])[0, 1:].min()
    assert res.band_runs.tolist() == [9] * BAND_GRID.size


def test_power_corners_that_join_early_are_supported():
    early = [_corner(_ordinary()[0][i], np.clip(1 - BAND_GRID / b, 0, 1)) for i, b in ((0, 0.3), (4, 0.4))]
    res, _ = _band_of(early)
    assert [j.status for j in res.joins] == ["joins early", "joins early"]
    for j in res.joins:
        assert j.t_first == 0.0 and j.t_last == 1.0 and j.d_first > j.band_first
        assert j.t_join <= 0.4 + 1e-12 and j.join_fraction == pytest.approx(j.t_join)
        inside = res.corner_distance[res.joins.index(j)] <= res.band
        assert np.all(inside[BAND_GRID >= j.t_join]) and not inside[BAND_GRID < j.t_join][-1]
    verdict = judge(res)
    assert verdict.verdict == "supported" and verdict.numbers["joins_early"] == ["c0", "c1"]
    out = json.loads(json.dumps(res.to_dict(), allow_nan=False))
    assert out["corner"]["runs"] == ["c0", "c1"] and out["corner"]["joins"][0]["status"] == "joins early"
    assert len(out["band"]) == BAND_GRID.size and len(out["ordinary"]["runs"]) == 9


def test_power_negative_control_never_joins():
    """Runs that keep training on shuffled labels: paths that never approach the ordinary manifold."""
    control = _corner(BAND_GAMMA, np.full(BAND_GRID.size, 0.7))
    early = _corner(_ordinary()[0][0], np.clip(1 - BAND_GRID / 0.3, 0, 1))
    res, _ = _band_of([early, control])
    assert [j.status for j in res.joins] == ["joins early", "never joins"]
    assert np.all(res.corner_distance[1] > res.band)
    assert res.joins[1].t_join is None
    verdict = judge(res)
    assert verdict.verdict == "not supported" and "c1" in verdict.reason


def test_late_joiners_and_short_corners_are_inconclusive():
    late = _corner(_ordinary()[0][0], np.clip(1 - BAND_GRID / 0.85, 0, 1))
    res, _ = _band_of([late])
    assert res.joins[0].status == "joins late" and res.joins[0].join_fraction > 0.5
    assert judge(res).verdict == "inconclusive"
    early = _corner(_ordinary()[0][0], np.clip(1 - BAND_GRID / 0.3, 0, 1))
    reached = np.ones((11, BAND_GRID.size), bool)
    reached[10, 4:] = False  # the second corner is followed over 4 grid points only
    res, _ = _band_of([early, early], reached)
    assert [j.status for j in res.joins] == ["joins early", "too little grid"]
    assert res.joins[1].n_points == 4
    verdict = judge(res)
    assert verdict.verdict == "inconclusive" and "too little" in verdict.reason


def test_corners_starting_inside_the_band_are_left_out():
    """A 'corner' on an ordinary path from the start is not a corner in prediction space."""
    inside = _ordinary()[0][5]
    res, _ = _band_of([inside])
    assert res.joins[0].status == "starts inside"
    verdict = judge(res)
    assert verdict.verdict == "skipped" and "none is a corner" in verdict.reason
    early = _corner(_ordinary()[0][0], np.clip(1 - BAND_GRID / 0.3, 0, 1))
    res, _ = _band_of([inside, early])
    verdict = judge(res)
    assert verdict.verdict == "supported" and "starting inside the band: c0" in verdict.reason


def test_band_needs_two_configurations_and_validates():
    ordinary, _ = _ordinary()
    models = np.concatenate([ordinary[:3], RANDOM[None, None].repeat(BAND_GRID.size, 1)])
    res = corner_band(_sqrt(models), np.ones((4, BAND_GRID.size), bool), BAND_GRID, [3], ["a"] * 4)
    assert np.all(np.isnan(res.band)) and "fewer than two configurations" in res.reasons[0]
    assert judge(res).verdict == "skipped"
    sq, reached = _sqrt(models), np.ones((4, BAND_GRID.size), bool)
    with pytest.raises(ValueError, match="configuration must have length 4"):
        corner_band(sq, reached, BAND_GRID, [3], ["a"])
    with pytest.raises(ValueError, match="quantile"):
        corner_band(sq, reached, BAND_GRID, [3], list("aabb"), quantile=0.0)
    with pytest.raises(ValueError, match="both a corner"):
        corner_band(sq, reached, BAND_GRID, [3], list("aabb"), ordinary=[0, 3])
    res = corner_band(sq, reached, BAND_GRID, np.zeros(4, bool), list("aabb"))
    assert res.joins == [] and judge(res).verdict == "skipped" and "no corner runs" in res.reasons


def test_rule_names_its_thresholds():
    for value in (corners_module.MIN_POINTS, corners_module.MIN_SPAN, corners_module.JOIN_BY * 100):
        assert f"{value:g}" in corners_module.RULE
    assert isinstance(_band_of([RANDOM[None].repeat(BAND_GRID.size, 0)])[0], CornerBand)
