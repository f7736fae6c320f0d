"""The tangent experiment, on runs built around the geodesic so the answer is known."""

import json

import numpy as np
import pytest

from deepmanifold import geometry
from deepmanifold.analysis.tangent import REFERENCE_LEVELS, embedding_score, mean_models, tangent_picture
from deepmanifold.analysis.trajectories import TrajectorySet

C, N = 5, 60
LABELS = np.random.default_rng(0).integers(0, C, size=N)
GRID = np.linspace(0.0, 1.0, 11)


def _wrong(seed):
    """A random wrong class for about half of the samples (-1 for the others)."""
    rng = np.random.default_rng(seed)
    return np.where(rng.random(N) < 0.5, (LABELS + rng.integers(1, C, size=N)) % C, -1)


def _path(t, wrong, amplitude):
    """Geodesic models at ``t`` whose ``sqrt p`` is pushed by ``amplitude sin(pi t)`` towards each
    sample's wrong class: a detour that starts at ignorance and ends at truth."""
    t = np.atleast_1d(np.asarray(t, dtype=float))
    root = np.sqrt(geometry.geodesic(LABELS, C, t))
    i = np.flatnonzero(wrong >= 0)
    root[:, i, wrong[i]] += amplitude * np.sin(np.pi * t)[:, None]
    root /= np.linalg.norm(root, axis=-1, keepdims=True)
    return root**2


def _sweep(amplitudes, wrongs, seed=0):
    """Runs at random checkpoint schedules; their checkpoints, run index and trajectory set."""
    rng = np.random.default_rng(seed)
    runs = []
    for a, w in zip(amplitudes, wrongs):
        schedule = np.sort(np.concatenate([[0.0, 1.0], rng.uniform(0, 1, 10)]))
        runs.append(_path(schedule, w, a))
    models = np.concatenate(runs)
    run_index = np.repeat(np.arange(len(runs)), [len(r) for r in runs])
    return models, run_index, TrajectorySet.from_runs(runs, LABELS, GRID)


def _tangent(models, run_index, ts, **kwargs):
    means, levels = mean_models(ts)
    return tangent_picture(models, LABELS, means, geometry.pairwise_distances(models), levels=levels,
                           run_index=run_index, **kwargs)


# ----------------------------------------------------------------------------- score
def test_embedding_score_identities():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(12, 3))
    s = np.array([1.0, -1.0, 1.0])
    D = np.abs(geometry.embedded_sq_distances(x, s))  # a matrix that is not exactly embeddable
    full = geometry.inpca(D, n_components=12)
    assert embedding_score(D, full.coords, full.signature) == pytest.approx(1.0, abs=1e-10)
    assert embedding_score(D, np.zeros((12, 2)), [1, 1]) == 0.0  # nothing reproduced
    # more axes never reproduce less (the top-k InPCA of a Euclidean matrix)
    Deuc = geometry.embedded_sq_distances(x, np.ones(3))
    scores = [embedding_score(Deuc, *(lambda e: (e.coords, e.signature))(geometry.inpca(Deuc, n_components=k)))
              for k in (1, 2, 3)]
    assert scores[0] < scores[1] < scores[2] == pytest.approx(1.0, abs=1e-10)
    # by hand: points at 0, 1, 3 drawn at 0, 1, 2 get pairs (0, 2) and (1, 2) wrong, both ways
    u = np.array([0.0, 1.0, 3.0])
    D = (u[:, None] - u) ** 2
    x = np.array([[0.0], [1.0], [2.0]])
    expected = 1 - np.sqrt(2 * ((9 - 4) ** 2 + (4 - 1) ** 2) / (2 * (1 + 9**2 + 4**2)))
    assert embedding_score(D, x, [1]) == pytest.approx(expected, rel=1e-12)


def test_embedding_score_refuses_bad_input():
    D = np.array([[0.0, 1.0], [1.0, 0.0]])
    with pytest.raises(ValueError, match="coords"):
        embedding_score(D, np.zeros((3, 1)), [1])
    with pytest.raises(ValueError, match="signature"):
        embedding_score(D, np.zeros((2, 2)), [1])
    with pytest.raises(ValueError, match="D"):
        embedding_score([[0.0, -1.0], [-1.0, 0.0]], np.zeros((2, 1)), [1])


# ----------------------------------------------------------------------------- mean models
def test_mean_models_are_geodesic_points_for_runs_on_the_geodesic():
    _, _, ts = _sweep([0.0] * 3, [_wrong(1)] * 3)
    means, levels = mean_models(ts)
    np.testing.assert_allclose(levels, REFERENCE_LEVELS, atol=1e-12)
    np.testing.assert_allclose(means, geometry.geodesic(LABELS, C, np.array(REFERENCE_LEVELS)), atol=2e-6)


def test_mean_model_is_the_normalised_geometric_mean():
    _, _, ts = _sweep([0.6, 0.6], [_wrong(1), _wrong(2)])
    g = int(np.argmin(np.abs(GRID - 0.3)))
    P = ts.sqrt_p[:, g].astype(np.float64) ** 2
    P /= P.sum(-1, keepdims=True)
    hand = np.sqrt(P[0] * P[1])
    hand /= hand.sum(-1, keepdims=True)
    means, _ = mean_models(ts, levels=[0.3])
    np.testing.assert_allclose(means[0], hand, atol=1e-6)
    one, _ = mean_models(ts, levels=[0.3], members=np.array([False, True]))
    np.testing.assert_allclose(one[0], P[1], atol=1e-6)


def test_mean_models_average_the_runs_that_reached_each_level():
    _, _, ts = _sweep([0.0], [_wrong(1)])
    with pytest.raises(ValueError, match="not values of the progress grid"):
        mean_models(ts, levels=[0.33])
    full, short = _path(np.linspace(0, 1, 5), _wrong(1), 0.0), _path([0.0, 0.2, 0.5], _wrong(2), 0.6)
    with pytest.raises(ValueError, match="no run reached progress 0.7"):
        mean_models(TrajectorySet.from_runs([short], LABELS, GRID))
    with pytest.raises(ValueError, match="members"):
        mean_models(ts, members=[0])
    # a run that stopped before 0.7 does not enter the mean there, only at 0.3
    ts = TrajectorySet.from_runs([full, short], LABELS, GRID)
    means, _ = mean_models(ts)
    np.testing.assert_allclose(means[1], geometry.geodesic(LABELS, C, 0.7), atol=2e-6)
    assert np.abs(means[0] - geometry.geodesic(LABELS, C, 0.3)).max() > 1e-3


# ----------------------------------------------------------------------------- the picture
def test_the_references_themselves_are_reproduced_exactly():
    _, _, ts = _sweep([0.5] * 2, [_wrong(1), _wrong(2)])
    means, levels = mean_models(ts)
    refs = np.concatenate([geometry.ignorance(LABELS, C)[None], means, geometry.truth(LABELS, C)[None]])
    models = np.concatenate([refs, refs[::-1]])  # each reference twice
    tp = tangent_picture(models, LABELS, means, geometry.pairwise_distances(models), levels=levels)
    assert tp.score == pytest.approx(1.0, abs=1e-9)
    np.testing.assert_allclose(tp.coords[:4], tp.reference_coords, atol=1e-9)
    np.testing.assert_allclose(tp.coords[4:], tp.reference_coords[::-1], atol=1e-9)
    np.testing.assert_allclose(tp.geodesic_coords[[0, -1]], tp.reference_coords[[0, 3]], atol=1e-9)
    assert tp.reference_names == ["ignorance", "mean at progress 0.3", "mean at progress 0.7", "truth"]


@pytest.mark.parametrize("amplitude", [0.0, 0.8])
def test_runs_on_one_surface_through_the_references_score_about_one(amplitude):
    """Every run on the geodesic, or every run on the same detour (which the mean models then
    follow): the four models span the checkpoints."""
    models, run_index, ts = _sweep([amplitude] * 6, [_wrong(1)] * 6)
    tp = _tangent(models, run_index, ts)
    assert tp.score > 0.995 and tp.full_score > 0.995
    assert tp.relative_score > 0.995


def test_an_orthogonal_detour_lowers_the_score():
    """Half the runs detour one way, half another: the mean models keep to the middle, so the
    four-model picture misses the spread that the InPCA of all checkpoints shows."""
    models, run_index, ts = _sweep([0.8] * 6, [_wrong(1), _wrong(2)] * 3)
    tp = _tangent(models, run_index, ts)
    assert tp.full_score > 0.95
    assert tp.score < 0.9 and tp.relative_score < 0.9
    on_plane = _tangent(*_sweep([0.8] * 6, [_wrong(1)] * 6))
    assert tp.relative_score < on_plane.relative_score - 0.1


def test_log_input_and_a_given_full_embedding_give_the_same_picture():
    models, run_index, ts = _sweep([0.8] * 4, [_wrong(1), _wrong(2)] * 2)
    means, levels = mean_models(ts)
    D = geometry.pairwise_distances(models)
    base = tangent_picture(models, LABELS, means, D, levels=levels, run_index=run_index)
    with np.errstate(divide="ignore"):
        logged = tangent_picture(np.log(models), LABELS, means, D, log=True, levels=levels, run_index=run_index)
    np.testing.assert_allclose(logged.coords, base.coords, atol=1e-9)
    given = tangent_picture(models, LABELS, means, D, levels=levels, run_index=run_index,
                            full=geometry.inpca(D, n_components=10))
    assert given.full_score == pytest.approx(base.full_score, abs=1e-9)
    two = tangent_picture(models, LABELS, means, D, levels=levels, run_index=run_index, n_components=2)
    assert two.coords.shape == (len(models), 2) and two.score <= base.score + 1e-12


def test_to_dict_splits_the_checkpoints_by_run():
    models, run_index, ts = _sweep([0.8] * 3, [_wrong(1)] * 3)
    lam = geometry.progress(models, LABELS)
    tp = _tangent(models, run_index, ts, run_ids=["a", "b", "c"], run_labels=["A", "B", "C"], progress=lam)
    out = json.loads(json.dumps(tp.to_dict()))
    assert [r["run_id"] for r in out["runs"]] == ["a", "b", "c"]
    assert [r["label"] for r in out["runs"]] == ["A", "B", "C"]
    for r, run in enumerate(out["runs"]):
        np.testing.assert_allclose(run["coords"], tp.coords[run_index == r])
        np.testing.assert_allclose(run["progress"], lam[run_index == r])
    assert out["score"] == tp.score and out["n_components"] == 3
    assert len(out["references"]["coords"]) == 4 and len(out["geodesic"]["t"]) == 41


def test_tangent_picture_refuses_bad_input():
    models, run_index, ts = _sweep([0.0] * 2, [_wrong(1)] * 2)
    means, _ = mean_models(ts)
    D = geometry.pairwise_distances(models)
    with pytest.raises(ValueError, match="n_components"):
        tangent_picture(models, LABELS, means, D, n_components=4)
    with pytest.raises(ValueError, match="means"):
        tangent_picture(models, LABELS, means[:1], D)
    with pytest.raises(ValueError, match="D has shape"):
        tangent_picture(models, LABELS, means, D[:-1, :-1])
    with pytest.raises(ValueError, match="run_index"):
        tangent_picture(models, LABELS, means, D, run_index=run_index[:-1])
    with pytest.raises(ValueError, match="labels"):
        tangent_picture(models, LABELS[:-1], means, D)
