"""The command line with bad stores and bad places: one clear line, exit 2, nothing lost, no traceback."""

import errno
import json

import numpy as np
import pytest
from typer.testing import CliRunner

from deepmanifold import cli
from deepmanifold.store import Store

runner = CliRunner()

SPEC = """
[sweep]
workers = 1
[data]
name = "digits"
probe_train = 60
probe_test = 50
[train]
epochs = 1
checkpoints = 3
[grid]
arch = ["mlp"]
optimizer = ["sgd"]
seed = [0, 1]
[arch.mlp]
width = 16
[optimizer.sgd]
lr = 0.1
momentum = 0.9
"""


def _invoke(*args):
    result = runner.invoke(cli.app, [str(a) for a in args])
    assert "Traceback" not in result.output, result.output
    return result


@pytest.fixture(scope="module")
def swept(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    (root / "spec.toml").write_text(SPEC)
    result = _invoke("run", root / "spec.toml", "--store", root / "store", "--no-report")
    assert result.exit_code == 0, result.output
    return root


@pytest.mark.parametrize("make, match", [
    (lambda p: p.write_text("x"), "is a file, not a store folder"),
    (lambda p: (p.mkdir(), (p / "store.json").write_text("garbage")), "store.json is damaged"),
    (lambda p: (p.mkdir(), (p / "store.json").write_text(json.dumps({"format": "other"}))), "has format 'other'"),
    (lambda p: (p.mkdir(), (p / "mine.txt").write_text("x")), "not empty .* --force"),
])
def test_run_report_analyze_and_runs_refuse_what_is_not_a_store_alike(swept, tmp_path, make, match):
    target = tmp_path / "target"
    make(target)
    for args in (("run", swept / "spec.toml", "--store", target, "--no-report"), ("report", target),
                 ("analyze", target), ("runs", target)):
        if args[0] != "run" and "not empty" in match:
            match_here = "not a deepmanifold store"
        else:
            match_here = match
        result = _invoke(*args)
        assert result.exit_code == 2, (args, result.output)
        assert __import__("re").search(match_here, " ".join(result.output.split())), (args, result.output)
    if target.is_dir():
        assert not (target / "runs").exists()  # nothing turned into a store


def test_force_makes_a_store_of_a_non_empty_folder(swept, tmp_path):
    (tmp_path / "target").mkdir()
    (tmp_path / "target" / "notes.txt").write_text("kept")
    result = _invoke("run", swept / "spec.toml", "--store", tmp_path / "target", "--no-report", "--force")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "target" / "notes.txt").read_text() == "kept" and len(Store(tmp_path / "target").run_ids()) == 2


def test_report_names_a_damaged_run_once_and_draws_the_rest(swept, tmp_path):
    import shutil

    root = tmp_path / "store"
    shutil.copytree(swept / "store", root)
    run_id = Store(root).run_ids()[0]
    (root / "runs" / run_id / "metrics.csv").write_text("step,epoch\nnot,numbers\n")
    result = _invoke("report", root)
    assert result.exit_code == 0, result.output
    assert result.output.count(run_id) == 1 and "metrics.csv unreadable" in result.output
    assert (root / "report.html").exists()


def test_a_read_only_store_gets_a_clean_error_that_suggests_out(swept, tmp_path, monkeypatch):
    from deepmanifold import report

    def refuse(path, *a, **k):
        raise PermissionError(errno.EROFS, "Read-only file system", str(path))

    monkeypatch.setattr(report, "write_report", refuse)
    result = _invoke("report", swept / "store")
    assert result.exit_code == 2 and "read-only" in result.output and "--out FILE" in result.output


def test_analyze_writes_into_out_and_explains_every_verdict(swept, tmp_path):
    out = tmp_path / "elsewhere"
    result = _invoke("analyze", swept / "store", "--out", out)
    assert result.exit_code == 0, result.output
    findings = json.loads((out / "findings.json").read_text())
    assert (out / "report.html").exists() and not (swept / "store" / "findings.json").exists()
    assert findings["n_runs"] == 2
    rows = [line for line in result.output.splitlines() if line.startswith("│")]
    for claim in findings["claims"]:  # every verdict's row says why: its reason or its numbers
        why = claim["reason"] or next(iter(claim["numbers"]), "")
        assert why and any(why[:20] in " ".join(rows[i:i + 6]) for i in range(len(rows))), claim


def test_a_full_disk_is_named_as_such(swept, tmp_path, monkeypatch):
    from deepmanifold.analysis import findings as findings_module

    def full(self, path):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(findings_module.Findings, "write_json", full)
    result = _invoke("analyze", swept / "store", "--out", tmp_path / "o", "--no-report")
    assert result.exit_code == 2 and "the disk is full" in result.output and "findings.json" in result.output


def test_runs_piped_lists_whole_run_ids_and_help_shows_the_options_as_written(swept):
    result = _invoke("runs", swept / "store")
    ids = Store(swept / "store").run_ids()
    lines = result.stdout.splitlines()  # the count goes to stderr: stdout is pure TSV
    assert lines[0].split("\t")[0] == "run_id" and [line.split("\t")[0] for line in lines[1:3]] == ids
    help_text = _invoke("run", "--help").output
    assert "the spec's [sweep] store" in " ".join(help_text.split())
    assert help_text.splitlines()[0].endswith("run [OPTIONS] SPEC")  # the program name is the runner's
    assert "{" not in help_text.splitlines()[0] and "<bool>" not in help_text


def test_the_store_of_a_failed_commit_is_unchanged(swept):
    store = Store(swept / "store")
    before = {r: store.logp(r, "test").copy() for r in store.run_ids()}
    result = _invoke("run", swept / "spec.toml", "--store", swept / "store", "--no-report")
    assert result.exit_code == 0 and "2 of 2 runs already in the store" in result.output
    for run_id, logp in before.items():
        np.testing.assert_array_equal(store.logp(run_id, "test"), logp)


def test_analyze_progress_definition_is_chosen_and_checked(swept, tmp_path):
    from deepmanifold import geometry

    out = tmp_path / "by_db"
    result = _invoke("analyze", swept / "store", "--out", out, "--no-report", "--progress", "bhattacharyya",
                     "--train-error-limit", "1")
    assert result.exit_code == 0, result.output
    findings = json.loads((out / "findings.json").read_text())
    assert findings["progress_method"] == "bhattacharyya"
    store = Store(swept / "store", create=False)
    individual = findings["analyses"]["averaging"]["pooled"]["individual"]
    finals = np.stack([np.exp(np.asarray(store.logp(r, "test")[-1], dtype=np.float64)) for r in store.run_ids()])
    labels = store.probe(store.record(store.run_ids()[0]).probes["test"]).labels
    expected = geometry.progress(finals / finals.sum(-1, keepdims=True), labels, method="bhattacharyya")
    np.testing.assert_allclose(sorted(individual["progress"]), sorted(expected), atol=1e-9)
    bad = _invoke("analyze", swept / "store", "--out", tmp_path / "bad", "--progress", "euclid")
    assert bad.exit_code == 2 and "--progress must be one of angle, bhattacharyya" in bad.output
    assert not (tmp_path / "bad").exists()
