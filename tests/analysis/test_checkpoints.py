"""One reader for the picture and the claims: which checkpoints, read how, compared once."""

import numpy as np
import pytest

from deepmanifold import geometry
from deepmanifold.analysis.checkpoints import (CheckpointDistances, checkpoint_distances, checkpoint_selection,
                                               stacked_predictions, usable_runs)
from deepmanifold.geometry import geodesic
from deepmanifold.store import Store

C, N = 10, 40
SAMPLE_LABELS = np.random.default_rng(1).integers(0, C, size=N)


def _commit(store, run_id, t):
    probs = geodesic(SAMPLE_LABELS, C, np.asarray(t, dtype=float))
    with np.errstate(divide="ignore"):
        logp = np.log(probs).astype(np.float32)
    k = len(t)
    store.put_probe(fingerprint="fp", name="test", split="test", dataset="synthetic", indices=np.arange(N),
                    labels=SAMPLE_LABELS)
    store.write_run(run_id, config={"arch": "mlp", "label": run_id}, status="complete",
                    metrics={"step": np.arange(k) * 3, "epoch": np.arange(k) / 2.0}, logp={"test": logp},
                    probes={"test": "fp"})


@pytest.fixture
def store(tmp_path):
    st = Store(tmp_path / "s")
    _commit(st, "a", np.linspace(0.0, 1.0, 7))
    _commit(st, "b", np.linspace(0.1, 0.8, 4))
    return st


def test_selection_keeps_everything_within_budget_and_both_ends_past_it():
    assert [k.tolist() for k in checkpoint_selection([3, 2], budget=5)] == [[0, 1, 2], [0, 1]]
    keep = checkpoint_selection([100, 50, 3], budget=30)
    assert [k[0] for k in keep] == [0, 0, 0] and [k[-1] for k in keep] == [99, 49, 2]
    assert [len(k) for k in keep] == [20, 10, 2]  # round(K * 30 / 153), at least 2
    assert all(np.all(np.diff(k) > 0) for k in keep)
    with pytest.raises(ValueError, match="at least one checkpoint"):
        checkpoint_selection([3, 0])
    with pytest.raises(ValueError, match="budget"):
        checkpoint_selection([3], budget=0)


def test_stack_reads_the_stored_predictions_of_the_selected_checkpoints(store):
    keep = [np.array([0, 3, 6]), np.arange(4)]
    stack = stacked_predictions(store, "test", ["a", "b"], keep)
    assert isinstance(stack, geometry.ModelStack) and stack.shape == (7, N, C) and stack.dtype == np.float32
    expected = np.concatenate([store.logp("a", "test")[[0, 3, 6]], store.logp("b", "test")])
    np.testing.assert_array_equal(stack[:], expected)
    np.testing.assert_array_equal(stack[2:5], expected[2:5])  # a slice across the two runs
    with pytest.raises(ValueError, match="one index array per run"):
        stacked_predictions(store, "test", ["a", "b"], keep[:1])


def test_distances_equal_those_of_the_concatenated_predictions(store):
    records, _ = usable_runs(store, "test")
    d = checkpoint_distances(store, "test", records)
    assert isinstance(d, CheckpointDistances) and d.run_ids == ["a", "b"]
    X = np.concatenate([store.logp(r, "test") for r in ("a", "b")]).astype(np.float64)
    np.testing.assert_array_equal(d.matrix, geometry.pairwise_distances(X, log=True))
    np.testing.assert_array_equal(d.run_index, [0] * 7 + [1] * 4)
    # on the geodesic the distance is known in closed form: -ln cos(|s - t| theta)
    theta = np.arccos(1 / np.sqrt(C))
    t = np.linspace(0.0, 1.0, 7)
    np.testing.assert_allclose(d.matrix[:7, :7], -np.log(np.cos(np.abs(t[:, None] - t[None]) * theta)),
                               atol=1e-6)
    small = checkpoint_distances(store, "test", records, budget=5)
    assert [k.tolist() for k in small.checkpoints] == [[0, 3, 6], [0, 3]]  # round(7 * 5 / 11), round(4 * 5 / 11)
    rows = np.array([0, 3, 6, 7 + 0, 7 + 3])
    np.testing.assert_allclose(small.matrix, d.matrix[np.ix_(rows, rows)], rtol=0, atol=1e-15)
