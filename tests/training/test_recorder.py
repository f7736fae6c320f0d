"""The public recorder: any loop's checkpoints into a store, with pluggable measurements."""

from __future__ import annotations

import copy
import importlib.util
import json
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest
import torch
from torch import nn

import deepmanifold
from deepmanifold.data import load_digits, make_probes
from deepmanifold.store import Store
from deepmanifold.training import Recorder, train_run
from deepmanifold.training.measurements import MEASUREMENTS, get_measurement

ROOT = pathlib.Path(__file__).resolve().parents[2]
CONFIG = {"arch": "mlp", "optimizer": "sgd", "seed": 0}


def _probes(n_train=30, n_test=20, d=5, C=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    return {"train": (torch.randn(n_train, d, generator=g), torch.randint(0, C, (n_train,), generator=g)),
            "test": (torch.randn(n_test, d, generator=g), torch.randint(0, C, (n_test,), generator=g))}


def _model(d=5, C=3, seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(d, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Dropout(0.5), nn.Linear(16, C))


def _eval_logp(model, x):
    """Independent reference: a deep copy in eval mode, plain log_softmax."""
    ref = copy.deepcopy(model).eval()
    with torch.no_grad():
        return torch.log_softmax(ref(x), dim=1).numpy()


def _sgd_steps(model, probes, n):
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    x, y = probes["train"]
    model.train()
    for _ in range(n):
        loss = nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()


def test_a_plain_loop_commits_what_the_model_predicted_in_eval_mode(tmp_path):
    probes = _probes()
    model = _model()
    expected, steps = [], [0, 3, 7]
    with Recorder(tmp_path / "s", probes, CONFIG, run_id="r", steps_per_epoch=4) as rec:
        done = 0
        for step in steps:
            _sgd_steps(model, probes, step - done)
            done = step
            expected.append({name: _eval_logp(model, x) for name, (x, _) in probes.items()})
            assert rec.checkpoint(model, step)
            assert model.training  # train mode given back
    store = Store(tmp_path / "s")
    record = store.record("r")
    assert record.status == "complete" and record.n_checkpoints == 3 and record.config == CONFIG
    for name in ("train", "test"):
        np.testing.assert_allclose(store.logp("r", name), np.stack([e[name] for e in expected]), rtol=0, atol=1e-6)
        labels = store.probe(record.probes[name]).labels
        np.testing.assert_array_equal(labels, probes[name][1].numpy())
    metrics = store.metrics("r")
    np.testing.assert_array_equal(metrics["step"], steps)
    np.testing.assert_allclose(metrics["epoch"], np.array(steps) / 4)
    y = probes["test"][1].numpy()
    acc = [(e["test"].argmax(1) == y).mean() for e in expected]
    np.testing.assert_allclose(metrics["test_acc"], acc)
    assert rec.result.committed and rec.result.n_parameters == sum(p.numel() for p in model.parameters())


def test_each_module_gets_its_own_mode_back(tmp_path):
    model = _model()
    model.train()
    model[1].eval()  # e.g. frozen BatchNorm statistics
    before = [m.training for m in model.modules()]
    rec = Recorder(None, _probes(), CONFIG)
    rec.checkpoint(model, 0)
    assert [m.training for m in model.modules()] == before
    np.testing.assert_allclose(rec.latest()["test"], _eval_logp(model, _probes()["test"][0]), atol=1e-6)


def test_a_failure_inside_the_block_commits_nothing(tmp_path):
    probes, model = _probes(), _model()
    with pytest.raises(RuntimeError, match="the loop broke"):
        with Recorder(tmp_path / "s", probes, CONFIG, run_id="r") as rec:
            rec.checkpoint(model, 0)
            raise RuntimeError("the loop broke")
    store = Store(tmp_path / "s")
    assert store.run_ids() == [] and not store.has_run("r")
    with Recorder(store, probes, CONFIG, run_id="r") as rec:  # the same run records again
        rec.checkpoint(model, 0)
    assert store.run_ids() == ["r"]


def test_non_finite_predictions_end_the_run_as_diverged(tmp_path):
    probes, model = _probes(), _model()
    rec = Recorder(tmp_path / "s", probes, CONFIG, run_id="r")
    assert rec.checkpoint(model, 0)
    with torch.no_grad():
        model[0].weight.fill_(float("nan"))
    assert not rec.checkpoint(model, 5)
    assert not rec.checkpoint(model, 9)  # nothing more is kept
    result = rec.close()
    assert result.status == "diverged" and result.n_checkpoints == 1
    assert "non-finite predictions at step 5" in result.message and "kept 1 checkpoints up to step 0" in result.message
    record = Store(tmp_path / "s").record("r")
    assert record.status == "diverged" and record.n_checkpoints == 1


class WeightNorms:
    """A toy measurement: the Frobenius norm of each linear layer's weight."""

    name = "weightnorm"
    needs_grad = False

    def measure(self, model, probes):
        norms = [float(m.weight.detach().norm()) for m in model.modules() if isinstance(m, nn.Linear)]
        return {"l2": np.array(norms), "n_test": np.array(len(probes["test"]))}


class InputGradient:
    """Needs gradients: mean over test samples of |d sum(logits) / d x|."""

    name = "input_grad"
    needs_grad = True

    def measure(self, model, probes):
        x = probes["test"].inputs.clone().requires_grad_(True)
        (g,) = torch.autograd.grad(model(x).sum(), x)
        return {"": g.abs().mean(dim=0)}


class Breaks:
    name = "breaks"
    needs_grad = False

    def __init__(self):
        self.calls = 0

    def measure(self, model, probes):
        self.calls += 1
        if self.calls == 2:
            raise ArithmeticError("bad luck")
        return {"x": np.zeros(2)}


def test_measurements_plug_in_and_read_back_by_name(tmp_path):
    probes, model = _probes(), _model()
    norms, grads = [], []
    with Recorder(tmp_path / "s", probes, CONFIG, run_id="r",
                  measurements=[WeightNorms(), InputGradient(), Breaks()]) as rec:
        for step in (0, 2, 4):
            _sgd_steps(model, probes, 2 if step else 0)
            norms.append([float(m.weight.detach().norm()) for m in model.modules() if isinstance(m, nn.Linear)])
            x = probes["test"][0].clone().requires_grad_(True)
            ref = copy.deepcopy(model).eval()
            grads.append(torch.autograd.grad(ref(x).sum(), x)[0].abs().mean(dim=0).numpy())
            with torch.no_grad():  # the recorder turns gradients on for the measurement that needs them
                rec.checkpoint(model, step)
    store = Store(tmp_path / "s")
    record = store.record("r")
    assert record.arrays == {"logp_train": "logp", "logp_test": "logp", "weightnorm_l2": "weightnorm",
                             "weightnorm_n_test": "weightnorm", "input_grad": "input_grad"}
    np.testing.assert_allclose(store.array("r", "weightnorm_l2"), norms, rtol=1e-6)
    np.testing.assert_array_equal(store.array("r", "weightnorm_n_test"), [20, 20, 20])
    np.testing.assert_allclose(store.array("r", "input_grad"), grads, rtol=1e-5, atol=1e-7)
    # The failing measurement is dropped, named, and the run goes on.
    assert record.status == "complete" and record.n_checkpoints == 3
    assert "breaks" in record.info["measurement_errors"]
    assert "step 2: ArithmeticError: bad luck" in record.info["measurement_errors"]["breaks"]
    assert "weightnorm_l2" in store.catalog().iloc[0]["arrays"]


def test_a_measurement_whose_shape_changes_is_dropped(tmp_path):
    class Grows:
        name, needs_grad, calls = "grows", False, 0

        def measure(self, model, probes):
            self.calls += 1
            return {"v": np.zeros(self.calls)}

    rec = Recorder(None, _probes(), CONFIG, measurements=[Grows()])
    model = _model()
    rec.checkpoint(model, 0)
    rec.checkpoint(model, 1)
    result = rec.close()
    assert result.arrays == {} and "differ in keys or shapes" in result.info["measurement_errors"]["grows"]


def test_train_run_records_through_the_recorder_into_a_store(tmp_path):
    ds = load_digits()
    probes = make_probes(ds, n_train=40, n_test=30, seed=0)
    cfg = dict(arch="mlp", arch_options={"width": 16}, optimizer="adam", lr=3e-3, weight_decay=0.0,
               batch_size=64, epochs=1, seed=0, checkpoints=4, schedule="cosine")
    result = train_run(cfg, ds, probes, store=tmp_path / "s", run_id="mine", stored_config={**cfg, "label": "x"})
    assert result.committed
    store = Store(tmp_path / "s")
    np.testing.assert_array_equal(store.logp("mine", "test"), result.logp["test"])
    assert store.record("mine").config["label"] == "x"
    assert store.record("mine").info["n_parameters"] == result.n_parameters > 0


@pytest.mark.parametrize("make, match", [
    (lambda tmp: Recorder(tmp / "s", _probes(), CONFIG), "needs a run_id"),
    (lambda tmp: Recorder(tmp / "s", _probes(), CONFIG, run_id="../x"), "run id"),
    (lambda tmp: Recorder(None, {}, CONFIG), "probes is empty"),
    (lambda tmp: Recorder(None, {"test": (torch.zeros(3, 2), torch.zeros(4, dtype=torch.long))}, CONFIG),
     "3 inputs but 4 labels"),
    (lambda tmp: Recorder(None, {"test": (torch.zeros(3, 2), torch.zeros(3))}, CONFIG), "integer classes"),
    (lambda tmp: Recorder(None, make_probes(load_digits(), n_train=5, n_test=5), CONFIG), "pass dataset="),
    (lambda tmp: Recorder(None, _probes(), CONFIG, measurements=["nope"]), "unknown measurement 'nope'"),
    (lambda tmp: Recorder(None, _probes(), CONFIG, measurements=[object()]), "is not a measurement"),
])
def test_bad_recorders_are_refused(tmp_path, make, match):
    with pytest.raises(ValueError, match=match):
        make(tmp_path)
    assert not (tmp_path / "s" / "runs").exists() or not any((tmp_path / "s" / "runs").iterdir())


def test_bad_checkpoints_are_refused_and_nothing_is_lost(tmp_path):
    rec = Recorder(tmp_path / "s", _probes(), CONFIG, run_id="r")
    model = _model()
    rec.checkpoint(model, 3)
    for step in (3, 2, -1, 1.5, True):
        with pytest.raises(ValueError, match="step"):
            rec.checkpoint(model, step)
    assert rec.n_checkpoints == 1
    rec.close()
    with pytest.raises(ValueError, match="closed"):
        rec.checkpoint(model, 4)
    with pytest.raises(ValueError, match="already in"):
        Recorder(tmp_path / "s", _probes(), CONFIG, run_id="r")
    assert Store(tmp_path / "s").record("r").n_checkpoints == 1


def test_the_registry_resolves_every_name():
    for name in MEASUREMENTS:
        assert get_measurement(name).name == name
    assert deepmanifold.Recorder is Recorder


def _load_example():
    spec = importlib.util.spec_from_file_location("own_loop", ROOT / "examples" / "own_loop.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_own_loop_example_is_reported_and_analyzed_like_any_run(tmp_path):
    example = _load_example()
    store = tmp_path / "own"
    results = [example.train(store, seed=s, epochs=3, n_checkpoints=8) for s in (0, 1)]
    assert all(r.committed and r.status == "complete" for r in results)
    assert results[0].metrics["test_acc"][-1] > 0.8  # it learned
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    for command in (["report", str(store)], ["analyze", str(store)]):
        done = subprocess.run([sys.executable, "-m", "deepmanifold.cli", *command], capture_output=True, text=True,
                              env=env, timeout=300)
        assert done.returncode == 0, done.stdout + done.stderr
    findings = json.loads((store / "findings.json").read_text())
    assert findings["n_runs"] == 2
    html = (store / "report.html").read_text()
    assert "own mlp / seed 0" in html and "own mlp / seed 1" in html
