"""The whole flow through the command line: spec -> training -> store -> picture -> report."""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from deepmanifold.analysis import build_picture
from deepmanifold.geometry import progress
from deepmanifold.store import Store

pytestmark = pytest.mark.slow

SPEC = """
[sweep]
name = "tiny"
workers = 2

[data]
name = "digits"
probe_train = 120
probe_test = 100

[train]
epochs = 2
batch_size = 64
checkpoints = 8
measurements = ["capacity", "collapse"]

[train.measurement_options.capacity]
n_t = 40

[grid]
arch = ["mlp", "cnn"]
optimizer = ["sgd", "adam"]
seed = [0]

[arch.mlp]
width = 32

[optimizer.sgd]
lr = {sgd_lr}
momentum = 0.9

[optimizer.adam]
lr = 0.003
"""


def _cli(*args, cwd):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "deepmanifold.cli", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def swept(tmp_path_factory):
    """One real sweep in which SGD's learning rate is absurd, so those runs diverge."""
    root = tmp_path_factory.mktemp("e2e")
    (root / "spec.toml").write_text(textwrap.dedent(SPEC.format(sgd_lr="1.0e12")))
    first = _cli("run", "spec.toml", "--store", "store", cwd=root)
    return root, first


@pytest.fixture(scope="module")
def analyzed(swept):
    """``deepmanifold analyze`` run once on the sweep: its output and its findings.json."""
    root, _ = swept
    out = _cli("analyze", "store", "--train-error-limit", "1", cwd=root)  # short runs: keep every run
    findings = json.loads((root / "store" / "findings.json").read_text()) if out.returncode == 0 else None
    return root, out, findings


def test_sweep_trains_stores_and_reports(swept):
    root, first = swept
    assert first.returncode == 0, first.stdout + first.stderr
    store = Store(root / "store", create=False)
    records, damaged = store.records()
    assert not damaged and len(records) == 4
    status = {(r.config["arch"], r.config["optimizer"]): r.status for r in records}
    assert status[("mlp", "adam")] == status[("cnn", "adam")] == "complete"
    assert status[("mlp", "sgd")] == status[("cnn", "sgd")] == "diverged"
    report = root / "store" / "report.html"
    assert report.exists() and report.stat().st_size > 100_000
    assert "report:" in first.stdout
    assert "left out of the picture" in first.stderr  # the diverged runs are announced


def test_stored_predictions_and_metrics_agree(swept):
    root, _ = swept
    store = Store(root / "store", create=False)
    for rec in store.records()[0]:
        m = store.metrics(rec.run_id)
        assert m["step"][0] == 0 and np.all(np.diff(m["step"]) > 0)
        if rec.status != "complete":
            continue
        labels = store.probe(rec.probes["test"]).labels
        logp = store.logp(rec.run_id, "test")
        assert logp.shape == (len(m["step"]), 100, 10)
        np.testing.assert_allclose(np.exp(logp).sum(-1), 1.0, atol=1e-4)
        acc = (logp.argmax(-1) == labels).mean(axis=1)  # recomputed independently of the recorder
        np.testing.assert_allclose(m["test_acc"], acc, atol=1e-12)


def test_picture_leaves_diverged_runs_out_and_starts_at_ignorance(swept):
    root, _ = swept
    store = Store(root / "store", create=False)
    with pytest.warns(UserWarning, match="diverged"):
        pic = build_picture(store, "test")
    assert {r.group for r in pic.runs} == {"mlp", "cnn"} and len(pic.runs) == 2
    assert len(pic.excluded) == 2
    labels = store.probe(store.records()[0][0].probes["test"]).labels
    for run in pic.runs:
        # An untrained network predicts nearly uniformly; training moves it towards truth.
        assert run.progress[0] < 0.05 and run.progress[-1] > 0.2
        # The picture's progress is that of the stored predictions, recomputed here.
        recomputed = progress(store.logp(run.run_id, "test"), labels, log=True)
        np.testing.assert_allclose(run.progress, recomputed, atol=1e-9)
    assert pic.explained_stress[-1] <= 1.0 + 1e-12
    assert np.all(np.diff(pic.explained_stress) >= -1e-12)


def test_rerun_skips_committed_runs(swept):
    root, _ = swept
    before = {p: os.stat(p).st_mtime_ns for p in (root / "store" / "runs").glob("*/run.json")}
    again = _cli("run", "spec.toml", "--store", "store", "--no-report", cwd=root)
    assert again.returncode == 0, again.stderr
    assert "4 of 4 runs already in the store" in again.stdout
    after = {p: os.stat(p).st_mtime_ns for p in (root / "store" / "runs").glob("*/run.json")}
    assert before == after


def test_bad_spec_trains_nothing(tmp_path):
    (tmp_path / "spec.toml").write_text(textwrap.dedent(SPEC.format(sgd_lr="0.1")).replace(
        'arch = ["mlp", "cnn"]', 'arch = ["mlp", "transformer9"]'))
    out = _cli("run", "spec.toml", "--store", "store", cwd=tmp_path)
    assert out.returncode == 2
    assert "unknown architecture 'transformer9'" in out.stderr
    assert not (tmp_path / "store").exists()


def test_unknown_architecture_knob_fails_before_training(tmp_path):
    (tmp_path / "spec.toml").write_text(textwrap.dedent(SPEC.format(sgd_lr="0.1")).replace(
        "width = 32", "width = 32\nheight = 3"))
    out = _cli("run", "spec.toml", "--store", "store", cwd=tmp_path)
    assert out.returncode == 2
    assert "height" in out.stderr and "[arch.mlp]" in out.stderr
    assert not (tmp_path / "store").exists()


def test_runs_where_filters_the_catalog(swept):
    root, _ = swept
    out = _cli("runs", "store", "--where", 'optimizer == "adam" and final_test_acc >= 0',
               "--columns", "run_id,status", cwd=root)
    assert out.returncode == 0, out.stderr
    # Piped, the listing is tab-separated with whole run ids; the count goes to stderr.
    rows = [line.split("\t") for line in out.stdout.splitlines()]
    assert rows[0] == ["run_id", "status"] and len(rows) == 3 and "2 run(s)" in out.stderr
    assert all(status == "complete" and "-adam-" in run_id for run_id, status in rows[1:])
    bad = _cli("runs", "store", "--where", "__import__('os')", cwd=root)
    assert bad.returncode == 2 and "not allowed" in bad.stderr


def test_models_lists_the_zoo_with_parameter_counts(tmp_path):
    out = _cli("models", "--dataset", "digits", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    for name in ("mlp", "cnn", "convmixer", "wrn", "vit", "linear"):
        assert name in out.stdout
    assert "26,378" in out.stdout  # the default MLP on 8x8 digits, counted in tests/models


def test_analyze_judges_every_claim_and_skips_with_reasons(analyzed):
    root, out, findings = analyzed
    assert out.returncode == 0, out.stdout + out.stderr
    claims = {c["key"]: c for c in findings["claims"]}
    assert set(claims) == {"manifold", "architecture", "speed", "corners", "train_test"}
    assert all(c["verdict"] in ("supported", "not supported", "inconclusive", "skipped") for c in claims.values())
    assert all(c["rule"] for c in claims.values())  # every verdict carries its written rule
    # Two usable runs (the SGD runs diverged), one seed each: no spread, no widths, no corners.
    assert claims["speed"]["verdict"] == claims["corners"]["verdict"] == "skipped"
    assert "tube_width" in findings["skipped"]
    assert findings["n_runs"] == 2
    html = (root / "store" / "report.html").read_text()
    assert 'id="dm-findings"' in html and "Training and test predictions give the same picture." in html


def test_train_test_needs_three_runs_and_says_so(analyzed):
    root, out, findings = analyzed
    assert out.returncode == 0, out.stdout + out.stderr
    # Two usable runs: a run x run picture has a single distance, nothing to correlate.
    claim = next(c for c in findings["claims"] if c["key"] == "train_test")
    assert claim["verdict"] == "skipped" and "need at least 3" in claim["reason"]
    assert "train_test_agreement" not in findings["analyses"]
    assert 'id="dm-findings-figure"' in (root / "store" / "report.html").read_text()


def test_layer_measurements_are_stored_summarised_and_drawn(analyzed):
    root, out, findings = analyzed
    assert out.returncode == 0, out.stdout + out.stderr
    store = Store(root / "store")
    records, _ = store.records()
    complete = [r for r in records if r.status == "complete"]
    for rec in complete:
        alpha = store.array(rec.run_id, "capacity_alpha")
        layers = rec.info["measurement_info"]["capacity"]["layers"]
        assert alpha.shape == (len(store.metrics(rec.run_id)["step"]), len(layers))
        assert np.isfinite(alpha).all() and (alpha > 0).all()
        assert rec.config["measurement_options"] == {"capacity": {"n_t": 40}}
    layers = findings["analyses"]["layers"]
    assert set(layers["runs"]) == {r.run_id for r in complete}
    for summary in layers["runs"].values():
        first = summary["quantities"]["capacity_alpha"]["first"]
        last = summary["quantities"]["capacity_alpha"]["last"]
        np.testing.assert_allclose(summary["capacity_gain"], np.subtract(last, first), rtol=1e-6)
    assert layers["where_learning"]["verdict"] in ("supported", "not supported", "inconclusive")
    html = (root / "store" / "report.html").read_text()
    assert 'id="dm-capacity-gain"' in html and 'id="dm-collapse"' in html and "Inside the layers" in html
