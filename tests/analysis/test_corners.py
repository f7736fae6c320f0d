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
