"""Placing checkpoints in a reference picture, and what a recorder publishes while it trains."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

from deepmanifold.data import make_probes
from deepmanifold.live import ReferencePicture
from deepmanifold.models import build_model
from deepmanifold.store import Store, StoreError
from deepmanifold.store.live import live_runs
from deepmanifold.training import Recorder

from .conftest import sgd_steps, tree_hashes


def test_an_embedded_checkpoint_is_placed_where_it_is(reference_store):
    ref = ReferencePicture(reference_store)
    store = Store(reference_store)
    for run in ref.picture.runs:
        placed = ref.place_run(store.logp(run.run_id, "test"))
        np.testing.assert_allclose([p.coords for p in placed], run.coords, atol=1e-5)
        np.testing.assert_allclose([p.progress for p in placed], run.progress, atol=1e-6)
        assert [p.nearest_run for p in placed] == [run.run_id] * len(placed)
        assert [p.nearest_index for p in placed] == list(range(len(placed)))
        assert max(p.distance for p in placed) < 1e-6
    # Ignorance is placed at the picture's ignorance point, and is 0 along the geodesic.
    uniform = np.full((len(ref.labels), 10), -np.log(10.0), dtype=np.float32)
    at = ref.place(uniform)
    np.testing.assert_allclose(at.coords, ref.picture.ignorance, atol=1e-6)
    assert at.progress == pytest.approx(0.0, abs=1e-6) and at.accuracy == pytest.approx(0.1, abs=0.1)


def test_a_recorder_places_every_checkpoint_and_leaves_the_reference_untouched(reference_store, digits, tmp_path):
    ds, probes = digits
    before = tree_hashes(reference_store)
    ref = ReferencePicture(reference_store)
    torch.manual_seed(3)
    model = build_model("mlp", ds.input_shape, ds.n_classes, width=16)
    gen = torch.Generator().manual_seed(0)
    with Recorder(tmp_path / "mine", probes, {"arch": "mlp", "optimizer": "sgd", "seed": 3}, "mine",
                  dataset=ds, reference=ref) as rec:
        for step in range(0, 50, 10):
            if step:
                sgd_steps(model, ds, 10, gen)
            rec.checkpoint(model, step, step / 21)
    assert len(rec.placements) == 5
    progress = [p.progress for p in rec.placements]
    assert progress[0] < 0.01 < progress[-1] and np.all(np.diff(progress) > 0)  # learning moves it on
    # The placement of the stored run is what the reference picture gives it afterwards.
    again = ref.place_run(Store(tmp_path / "mine").logp("mine", "test"))
    np.testing.assert_allclose([p.coords for p in again], [p.coords for p in rec.placements], atol=1e-9)
    assert tree_hashes(reference_store) == before


def test_a_run_on_other_probes_is_refused_naming_the_mismatch(reference_store, digits, tmp_path):
    ds, _ = digits
    other = make_probes(ds, n_train=100, n_test=100, seed=5)  # other samples
    ref = ReferencePicture(reference_store)
    with pytest.raises(ValueError, match=r"no probe set of the run is the reference's 'test' probe set "
                                         r"\(fingerprint [0-9a-f]{12}, 100 samples\).*the run's probe sets: train"):
        Recorder(tmp_path / "mine", other, {"arch": "mlp"}, "mine", dataset=ds, reference=ref)
    assert not (tmp_path / "mine" / "runs").exists() or not any((tmp_path / "mine" / "runs").iterdir())
    with pytest.raises(ValueError, match=r"shape \(5, 10\).*\(100, 10\)"):
        ref.place(np.zeros((5, 10)))
    with pytest.raises(StoreError, match="not a deepmanifold store"):
        ReferencePicture(tmp_path / "nothing")
    assert not (tmp_path / "nothing").exists()  # read-only: not even created


def test_published_checkpoints_are_complete_and_removed_at_the_commit(digits, tmp_path):
    ds, probes = digits
    torch.manual_seed(0)
    model = build_model("mlp", ds.input_shape, ds.n_classes, width=16)
    rec = Recorder(tmp_path / "s", probes, {"arch": "mlp", "label": "mine"}, "r1", dataset=ds)
    for step in (0, 5, 9):
        rec.checkpoint(model, step)
        (run,) = live_runs(tmp_path / "s")
        assert run.status == "running" and run.state["steps"][-1] == step
        latest = rec.latest()
        np.testing.assert_array_equal(run.logp("test", run.n_checkpoints - 1), latest["test"])
        acc = float(np.mean(latest["test"].argmax(1) == probes["test"].labels))
        assert run.state["metrics"]["test_acc"][-1] == pytest.approx(acc)
        assert run.state["probes"] == {name: p.fingerprint for name, p in probes.items()}
    assert "label" in run.state["config"] and not Store(tmp_path / "s").has_run("r1")
    rec.close()
    assert live_runs(tmp_path / "s") == [] and Store(tmp_path / "s").has_run("r1")


def test_a_loop_that_raises_is_marked_failed_and_commits_nothing(digits, tmp_path):
    ds, probes = digits
    model = build_model("mlp", ds.input_shape, ds.n_classes, width=16)
    with pytest.raises(RuntimeError, match="boom"):
        with Recorder(tmp_path / "s", probes, {"arch": "mlp"}, "r1", dataset=ds) as rec:
            rec.checkpoint(model, 0)
            raise RuntimeError("boom")
    (run,) = live_runs(tmp_path / "s")
    assert run.status == "failed" and run.state["message"] == "RuntimeError: boom" and run.n_checkpoints == 1
    assert not Store(tmp_path / "s").has_run("r1")
    # Started again under the same id, the run replaces what its failed attempt published.
    rec = Recorder(tmp_path / "s", probes, {"arch": "mlp"}, "r1", dataset=ds)
    (run,) = live_runs(tmp_path / "s")
    assert run.status == "running" and run.n_checkpoints == 0
    rec.close()


def test_a_killed_run_is_reported_stopped(digits, tmp_path):
    """A process killed mid-run: its folder stays, with a dead pid; nothing is committed."""
    code = textwrap.dedent(f"""
        import os, signal, torch
        from deepmanifold.data import load_digits, make_probes
        from deepmanifold.models import build_model
        from deepmanifold.training import Recorder
        ds = load_digits(seed=0)
        probes = make_probes(ds, n_train=100, n_test=100, seed=0)
        rec = Recorder({str(tmp_path / 's')!r}, probes, {{"arch": "mlp"}}, "r1", dataset=ds)
        rec.checkpoint(build_model("mlp", ds.input_shape, 10, width=8), 0)
        os.kill(os.getpid(), signal.SIGKILL)
    """)
    proc = subprocess.run([sys.executable, "-c", code], env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert proc.returncode == -9
    (run,) = live_runs(tmp_path / "s")
    assert run.status == "stopped" and run.n_checkpoints == 1
    assert not Store(tmp_path / "s").has_run("r1")
    assert json.loads((run.folder / "state.json").read_text())["status"] == "running"  # as it was left


def test_read_only_store_refuses_writes(tmp_path):
    store = Store(tmp_path / "s")
    ro = Store(tmp_path / "s", read_only=True)
    with pytest.raises(StoreError, match="read-only: cannot commit run 'x'"):
        ro.write_run("x", config={}, status="complete", metrics={"step": [], "epoch": []}, logp={}, probes={})
    with pytest.raises(StoreError, match="read-only"):
        ro.clean_staging()
    assert store.run_ids() == []


def test_prepared_models_give_the_exact_pairwise_distances():
    from deepmanifold.geometry import ClampWarning, pairwise_distances
    from deepmanifold.live import PreparedModels

    rng = np.random.default_rng(0)
    n, C = 120, 10
    base = rng.dirichlet(np.full(C, 0.5), size=n)
    fixed = [base * np.exp(s * rng.standard_normal((n, C))) for s in (0.0, 1e-3, 0.3, 1.0, 3.0)]
    fixed = np.log(np.stack([p / p.sum(axis=1, keepdims=True) for p in fixed])).astype(np.float32)
    new = fixed[[1, 3]] + 1e-4 * rng.standard_normal((2, n, C)).astype(np.float32)
    new -= np.log(np.exp(new.astype(np.float64)).sum(axis=2, keepdims=True)).astype(np.float32)
    got = PreparedModels(fixed).distances(new)
    want = pairwise_distances(new, fixed, log=True)
    assert got.shape == (2, 5) and got.min() < 1e-6 < 0.4 < got.max()  # close pairs and far ones
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-15)
    hot = np.full((1, n, C), -60.0, dtype=np.float32)  # near-disjoint: coefficients below the floor
    hot[0, :, 0] = 0.0
    cold = hot[:, :, ::-1].copy()
    with pytest.warns(ClampWarning, match=f"{n} \\(pair, sample\\) Bhattacharyya coefficients"):
        clamped = PreparedModels(hot).distances(cold)
    with pytest.warns(ClampWarning):
        np.testing.assert_allclose(clamped, pairwise_distances(cold, hot, log=True), rtol=1e-12)
    with pytest.raises(ValueError, match="positive log-probability"):
        PreparedModels(fixed).distances(new + 1.0)
    with pytest.raises(ValueError, match=r"the fixed models need \(K, 120, 10\)"):
        PreparedModels(fixed).distances(new[:, :60])
    # Only chosen pairs: the same values as the full matrix, read at the index.
    index = np.array([[4, 0, 1, 1], [3, 2, 0, 4]])
    paired = PreparedModels(fixed).paired_distances(new, index)
    np.testing.assert_allclose(paired, want[np.arange(2)[:, None], index], rtol=1e-9, atol=1e-15)
    with pytest.warns(ClampWarning, match=f"{n} \\(pair, sample\\)"):
        np.testing.assert_allclose(PreparedModels(hot).paired_distances(cold, np.zeros((1, 1), int)), clamped,
                                   rtol=1e-12)
    with pytest.raises(ValueError, match=r"index holds 1\.\.5; the fixed models are 0\.\.4"):
        PreparedModels(fixed).paired_distances(new, index + 1)
    with pytest.raises(ValueError, match=r"index must be an integer array of shape \(K, J\) = \(2, J\)"):
        PreparedModels(fixed).paired_distances(new, index[:1])
