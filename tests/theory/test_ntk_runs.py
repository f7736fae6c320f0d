"""The kernel limit recorded as a run: from ignorance to kernel regression, readable like any run."""

from pathlib import Path

import numpy as np
import pytest

from deepmanifold.analysis import build_picture
from deepmanifold.store import Store
from deepmanifold.sweeps.execute import dataset_and_probes
from deepmanifold.sweeps.spec import load_spec
from deepmanifold.theory import kernel_regression, ntk
from deepmanifold.theory.ntk_runs import record_ntk_run

SPEC = str(Path(__file__).resolve().parents[2] / "examples" / "digits.toml")


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    root = tmp_path_factory.mktemp("ntk")
    result = record_ntk_run(root / "store", SPEC, depth=2, checkpoints=8, horizon=1e6, train_size=300, seed=1)
    return root / "store", result


def test_the_run_starts_at_ignorance_and_ends_at_kernel_regression(recorded):
    path, result = recorded
    store = Store(path)
    assert result.status == "complete" and result.temperature > 0
    logp = store.logp(result.run_id, "test")
    np.testing.assert_allclose(logp[0], np.log(0.1), atol=1e-6)  # outputs 0: every class equally likely
    # At the horizon the flow has (nearly) reached the interpolating kernel regression.
    spec = load_spec(SPEC)
    dataset, probes = dataset_and_probes(spec.runs[0].config)
    from deepmanifold.data.datasets import stratified_subsample

    y = dataset.y_train.numpy()
    rows = stratified_subsample(y, 300, 1)
    X = dataset.x_train[rows].reshape(300, -1).double().numpy()
    Xt = dataset.x_test[np.array(probes["test"].indices)].reshape(len(probes["test"]), -1).double().numpy()
    kw = dict(depth=2, activation="relu", sigma_w2=2.0, sigma_b2=0.0)
    pred = kernel_regression(ntk(X, **kw), np.eye(10)[y[rows]] - 0.1, ntk(Xt, X, **kw))
    agree = np.mean(logp[-1].argmax(1) == pred.argmax(1))
    assert agree > 0.97
    assert result.test_accuracy[-1] == pytest.approx(np.mean(pred.argmax(1) == probes["test"].labels), abs=0.03)


def test_the_run_is_read_like_any_other_and_skipped_the_second_time(recorded):
    path, result = recorded
    picture = build_picture(Store(path), "test")
    assert [run.run_id for run in picture.runs] == [result.run_id]
    assert picture.runs[0].progress[0] == pytest.approx(0.0, abs=1e-6)
    assert picture.runs[0].progress[-1] > 0.5
    again = record_ntk_run(path, SPEC, depth=2, checkpoints=8, horizon=1e6, train_size=300, seed=1)
    assert again.status == "skipped" and again.run_id == result.run_id


def test_bad_parameters_store_nothing(tmp_path):
    with pytest.raises(ValueError, match="activation"):
        record_ntk_run(tmp_path / "s", SPEC, activation="tanh", train_size=100)
    with pytest.raises(ValueError, match="horizon"):
        record_ntk_run(tmp_path / "s", SPEC, horizon=0.5)
    assert not (tmp_path / "s").exists() or not Store(tmp_path / "s").records()[0]


def test_the_command_line(tmp_path):
    from typer.testing import CliRunner

    from deepmanifold import cli

    runner = CliRunner()
    result = runner.invoke(cli.app, ["ntk", SPEC, "--store", str(tmp_path / "s"), "--depth", "2",
                                     "--checkpoints", "5", "--train-size", "200", "--no-report"])
    assert result.exit_code == 0, result.output
    assert "committed" in result.output and "temperature" in result.output
    [run_id] = Store(tmp_path / "s").run_ids()
    assert Store(tmp_path / "s").record(run_id).config["arch_options"]["depth"] == 2
    bad = runner.invoke(cli.app, ["ntk", SPEC, "--store", str(tmp_path / "s"), "--activation", "tanh",
                                  "--no-report"])
    assert bad.exit_code == 2 and "activation" in bad.output and "Traceback" not in bad.output
