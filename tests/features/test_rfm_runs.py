"""An RFM's iterations recorded as a run: each checkpoint is the predictor with t AGOP updates,
on the sweep's own probe sets, beside the networks in the picture."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from deepmanifold import cli
from deepmanifold.analysis import build_picture
from deepmanifold.features import RFMClassifier, record_rfm_run
from deepmanifold.store import Store
from deepmanifold.sweeps import load_spec, run_sweep
from deepmanifold.sweeps.execute import dataset_and_probes

SPEC = """
[sweep]
workers = 1
[data]
name = "digits"
probe_train = 80
probe_test = 60
[train]
epochs = 1
checkpoints = 3
[grid]
arch = ["mlp"]
optimizer = ["sgd"]
seed = [0]
[arch.mlp]
width = 16
[optimizer.sgd]
lr = 0.1
momentum = 0.9
"""


@pytest.fixture(scope="module")
def swept(tmp_path_factory):
    root = tmp_path_factory.mktemp("rfm_runs")
    (root / "spec.toml").write_text(SPEC)
    spec = load_spec(root / "spec.toml")
    run_sweep(spec, store=root / "store", workers=1)
    return root, spec


def _inputs(dataset, probe):
    source = dataset.x_train if probe.split == "train" else dataset.x_test
    return source[torch.as_tensor(np.array(probe.indices))].reshape(len(probe), -1).double().numpy()


def test_each_checkpoint_is_the_predictor_after_t_updates(swept):
    root, spec = swept
    result = record_rfm_run(root / "store", spec, n_iter=2, train_size=300, bandwidth=5.0, seed=1)
    assert result.status == "complete" and len(result.test_accuracy) == 3
    store = Store(root / "store")
    record = store.record(result.run_id)
    assert record.config["arch"] == "rfm" and record.n_checkpoints == 3 and record.status == "complete"
    np.testing.assert_array_equal(store.metrics(result.run_id)["step"], [0, 1, 2])
    # the networks' probe sets, hence the same fingerprints
    network = next(r for r in store.run_ids() if r != result.run_id)
    assert record.probes == store.record(network).probes
    dataset, probes = dataset_and_probes(spec.runs[0].config)
    y_all = dataset.y_train.numpy()
    from sklearn.model_selection import train_test_split

    rows = np.sort(train_test_split(np.arange(y_all.size), train_size=300, stratify=y_all, random_state=1)[0])
    X = dataset.x_train[torch.as_tensor(rows)].reshape(rows.size, -1).double().numpy()
    for t in range(3):  # an independent fit from M = I with t updates gives the same predictions
        ref = RFMClassifier(bandwidth=5.0, n_iter=t, random_state=1).fit(X, y_all[rows])
        for name, probe in probes.items():
            np.testing.assert_allclose(store.logp(result.run_id, name)[t], ref.predict_log_proba(_inputs(dataset, probe)),
                                       atol=2e-4, rtol=1e-4)
        acc = np.mean(ref.predict(_inputs(dataset, probes["test"])) == probes["test"].labels)
        assert result.test_accuracy[t] == pytest.approx(acc)
    again = record_rfm_run(root / "store", spec, n_iter=2, train_size=300, bandwidth=5.0, seed=1)
    assert again.status == "skipped" and again.run_id == result.run_id
    picture = build_picture(store, "test")
    assert {run.group for run in picture.runs} == {"mlp", "rfm"}


def test_bad_settings_store_nothing(swept):
    root, spec = swept
    before = set(Store(root / "store").run_ids())
    with pytest.raises(ValueError, match="kernel"):
        record_rfm_run(root / "store", spec, kernel="cubic", n_iter=1, train_size=100)
    with pytest.raises(ValueError, match="n_iter"):
        record_rfm_run(root / "store", spec, n_iter=-1)
    with pytest.raises(ValueError, match="classes: raise train_size"):  # not every class can be drawn
        record_rfm_run(root / "store", spec, n_iter=0, train_size=5)
    assert set(Store(root / "store").run_ids()) == before


def test_the_command_line(swept, tmp_path):
    root, _ = swept
    runner = CliRunner()
    result = runner.invoke(cli.app, ["rfm", str(root / "spec.toml"), "--store", str(tmp_path / "s"),
                                     "--iterations", "1", "--train-size", "200", "--diag", "--no-report"])
    assert result.exit_code == 0, result.output
    assert "iteration   1" in result.output and "committed" in result.output
    [run_id] = Store(tmp_path / "s").run_ids()
    assert Store(tmp_path / "s").record(run_id).config["diag"] is True
    bad = runner.invoke(cli.app, ["rfm", str(root / "spec.toml"), "--store", str(tmp_path / "s"),
                                  "--kernel", "cubic", "--no-report"])
    assert bad.exit_code == 2 and "kernel" in bad.output and "Traceback" not in bad.output
