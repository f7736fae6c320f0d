"""Runs whose final training error exceeds 10 % are reported apart, read from a small store."""

import json

import numpy as np
import pytest

from deepmanifold.analysis.outliers import TRAIN_ERROR_LIMIT, train_error_outliers
from deepmanifold.geometry import geodesic
from deepmanifold.store import Store

C, N = 3, 12
LABELS = np.arange(N) % C


def _commit(store, run_id, train_acc, *, probes=("train", "test")):
    """A run of three checkpoints on the geodesic whose train accuracy ends at ``train_acc``."""
    with np.errstate(divide="ignore"):
        logp = np.log(geodesic(LABELS, C, np.array([0.0, 0.5, 0.9]))).astype(np.float32)
    metrics = {"step": np.arange(3), "epoch": np.arange(3) / 2.0, "test_acc": np.array([0.3, 0.6, 0.8])}
    if "train" in probes:
        metrics["train_acc"] = np.array([0.3, 0.2, train_acc])  # only the last checkpoint counts
    for name in probes:
        store.put_probe(fingerprint=f"fp-{name}", name=name, split=name, dataset="synthetic",
                        indices=np.arange(N), labels=LABELS)
    store.write_run(run_id, config={"arch": "mlp", "label": f"mlp / {run_id}"}, status="complete", metrics=metrics,
                    logp={name: logp for name in probes}, probes={name: f"fp-{name}" for name in probes})


@pytest.fixture
def store(tmp_path):
    st = Store(tmp_path / "s")
    for run_id, acc in (("good", 0.99), ("edge", 0.9), ("bad", 0.85), ("awful", 0.2)):
        _commit(st, run_id, acc)
    _commit(st, "noprobe", 0.0, probes=("test",))
    return st


def test_runs_past_ten_percent_train_error_are_set_apart(store):
    res = train_error_outliers(store)
    assert TRAIN_ERROR_LIMIT == 0.10 and res.threshold == 0.10
    # catalog order is by run id; exactly 10 % error does not exceed the limit
    assert res.kept == ["edge", "good", "noprobe"] and res.unmeasured == ["noprobe"]
    assert res.outlier_ids == ["awful", "bad"]
    errors = {o.run_id: o.train_error for o in res.outliers}
    assert errors == pytest.approx({"awful": 0.8, "bad": 0.15})
    assert {o.label for o in res.outliers} == {"mlp / awful", "mlp / bad"}
    out = json.loads(json.dumps(res.to_dict(), allow_nan=False))
    assert out["n_kept"] == 3 and out["column"] == "final_train_acc" and out["outliers"][1]["run_id"] == "bad"


def test_chosen_runs_in_their_order_and_another_threshold(store):
    records = [store.record(r) for r in ("bad", "good")]
    res = train_error_outliers(store, records)
    assert res.kept == ["good"] and res.outlier_ids == ["bad"]
    loose = train_error_outliers(store.catalog(), ["bad", "edge", "awful"], threshold=0.5)
    assert loose.kept == ["bad", "edge"] and loose.outlier_ids == ["awful"]
    assert train_error_outliers(store, threshold=0.0).kept == ["noprobe"]


def test_bad_input_is_named(store):
    with pytest.raises(ValueError, match="runs not in the catalog: nope"):
        train_error_outliers(store, ["good", "nope"])
    with pytest.raises(ValueError, match="threshold"):
        train_error_outliers(store, threshold=1.5)
    with pytest.raises(ValueError, match="source must be a Store"):
        train_error_outliers([1, 2, 3])
