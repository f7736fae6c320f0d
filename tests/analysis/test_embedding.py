"""The picture of a store, on runs built from the geodesic so every answer is known."""

import numpy as np
import pytest

from deepmanifold.analysis import build_picture
from deepmanifold.analysis.checkpoints import checkpoint_distances, usable_runs
from deepmanifold.geometry import geodesic
from deepmanifold.geometry import progress as geodesic_progress
from deepmanifold.store import Store

C, N = 10, 60
LABELS = np.random.default_rng(0).integers(0, C, size=N)


def _commit(store, run_id, t, *, arch="mlp", status="complete", fingerprint="fp"):
    probs = geodesic(LABELS, C, np.asarray(t, dtype=float))
    with np.errstate(divide="ignore"):
        logp = np.log(probs).astype(np.float32)
    k = len(t)
    metrics = {"step": np.arange(k) * 5, "epoch": np.arange(k) / 4, "test_acc": np.linspace(0.1, 1, k)}
    store.put_probe(fingerprint=fingerprint, name="test", split="test", dataset="synthetic",
                    indices=np.arange(N), labels=LABELS)
    store.write_run(run_id, config={"arch": arch, "label": run_id}, status=status, metrics=metrics,
                    logp={"test": logp}, probes={"test": fingerprint})


@pytest.fixture
def store(tmp_path):
    st = Store(tmp_path / "s")
    _commit(st, "a", [0.0, 0.2, 0.5, 1.0], arch="mlp")
    _commit(st, "b", [0.1, 0.3, 0.7, 0.9], arch="cnn")
    return st


def test_progress_of_geodesic_checkpoints_is_their_parameter(store):
    pic = build_picture(store, "test")
    prog = {r.run_id: r.progress for r in pic.runs}
    np.testing.assert_allclose(prog["a"], [0.0, 0.2, 0.5, 1.0], atol=1e-6)
    np.testing.assert_allclose(prog["b"], [0.1, 0.3, 0.7, 0.9], atol=1e-6)
    assert {r.group for r in pic.runs} == {"mlp", "cnn"}


def test_reference_points_land_on_the_embedded_endpoints(store):
    pic = build_picture(store, "test")
    a = next(r for r in pic.runs if r.run_id == "a")
    # run "a" starts at ignorance and ends at truth; Gower projection of an embedded
    # model returns its own coordinates exactly, up to the float32 rounding of stored
    # predictions, which axes with eigenvalues near 0 amplify (~1e-6 of the scale here).
    scale = np.abs(a.coords).max()
    np.testing.assert_allclose(pic.ignorance, a.coords[0], atol=1e-5 * scale)
    np.testing.assert_allclose(pic.truth, a.coords[-1], atol=1e-5 * scale)
    np.testing.assert_allclose(pic.geodesic[0], pic.ignorance)
    assert pic.geodesic.shape == (len(pic.geodesic_t), pic.runs[0].coords.shape[1])


def test_diverged_runs_are_left_out_with_a_warning(store):
    _commit(store, "c", [0.0, 0.1], status="diverged")
    with pytest.warns(UserWarning, match="left out of the picture: c"):
        pic = build_picture(store, "test")
    assert [r.run_id for r in pic.runs] == ["a", "b"]
    assert pic.excluded[0][0] == "c"


def test_runs_on_different_probe_sets_are_never_compared(store):
    _commit(store, "d", [0.0, 0.4], fingerprint="other")
    with pytest.raises(ValueError, match=r"2 different 'test' probe sets.*other: d"):
        build_picture(store, "test")


def test_precomputed_distances_give_the_same_picture(store):
    runs, _ = usable_runs(store, "test")
    given = build_picture(store, "test", distances=checkpoint_distances(store, "test", runs))
    own = build_picture(store, "test")
    for a, b in zip(given.runs, own.runs):
        np.testing.assert_array_equal(a.coords, b.coords)
        np.testing.assert_array_equal(a.progress, b.progress)
    np.testing.assert_array_equal(given.geodesic, own.geodesic)
    assert [r.run_label for r in given.runs] == ["a", "b"]


def test_distances_of_other_runs_or_probe_are_refused(store):
    runs, _ = usable_runs(store, "test")
    only_a = checkpoint_distances(store, "test", runs[:1])
    with pytest.raises(ValueError, match="runs"):
        build_picture(store, "test", distances=only_a)
    d = checkpoint_distances(store, "test", runs)
    d.probe = "train"
    with pytest.raises(ValueError, match="probe 'train'"):
        build_picture(store, "test", distances=d)


def test_subsampled_checkpoints_keep_their_own_steps_and_progress(store):
    runs, _ = usable_runs(store, "test")
    d = checkpoint_distances(store, "test", runs, budget=6)  # 8 checkpoints in all: 3 + 3 kept
    pic = build_picture(store, "test", distances=d)
    a = next(r for r in pic.runs if r.run_id == "a")
    np.testing.assert_array_equal(a.steps, np.array([0, 2, 3]) * 5)
    np.testing.assert_allclose(a.progress, [0.0, 0.5, 1.0], atol=1e-6)
    assert a.coords.shape[0] == 3 and len(a.metrics["test_acc"]) == 3


def test_empty_store_says_so(tmp_path):
    with pytest.raises(ValueError, match="no complete run"):
        build_picture(Store(tmp_path / "empty"), "test")


def test_progress_method_reaches_the_picture(store):
    # a run of confident models, wrong on a third of the samples: the two definitions disagree on it
    P = np.full((3, N, C), 0.001 / (C - 1))
    wrong = np.arange(N) % 3 == 0
    for k, conf in enumerate((0.5, 0.9, 0.999)):
        picked = np.where(wrong, (LABELS + 1) % C, LABELS)
        P[k] = (1 - conf) / (C - 1)
        P[k, np.arange(N), picked] = conf
    store.write_run("c", config={"arch": "mlp", "label": "c"}, status="complete",
                    metrics={"step": np.arange(3), "epoch": np.arange(3.0), "test_acc": np.full(3, 2 / 3)},
                    logp={"test": np.log(P).astype(np.float32)}, probes={"test": "fp"})
    stored = np.exp(np.asarray(store.logp("c", "test"), dtype=np.float64))
    got = {}
    for method in ("angle", "bhattacharyya"):
        pic = build_picture(store, "test", progress_method=method)
        got[method] = next(r for r in pic.runs if r.run_id == "c").progress
        np.testing.assert_allclose(got[method], geodesic_progress(stored, LABELS, method=method), atol=1e-9)
    assert (got["angle"] - got["bhattacharyya"]).max() > 0.1
    with pytest.raises(ValueError, match="progress method"):
        build_picture(store, "test", progress_method="l2")
