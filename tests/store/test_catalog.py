"""The store catalog (DataFrame + cached index), its safe query language, and damaged stores."""

import json
import math
import multiprocessing
import os
import shutil

import numpy as np
import pandas as pd
import pytest

from deepmanifold.store import Store, StoreError
from deepmanifold.store.catalog import INDEX_NAME, read_index

K, N, C = 4, 6, 3


def _run(store, run_id, *, arch="mlp", width=16, lr=0.1, seed=0, acc=(0.1, 0.5, 0.9, 0.8), status="complete",
         optimizer="sgd", extra=None):
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(K, N, C))
    logp = (logits - np.log(np.exp(logits).sum(-1, keepdims=True))).astype(np.float32)
    metrics = {"step": np.arange(K) * 5, "epoch": np.arange(K) / 2, "test_acc": np.array(acc, dtype=float),
               "test_loss": np.linspace(2.0, 0.5, K)}
    config = {"arch": arch, "optimizer": optimizer, "lr": lr, "seed": seed, "label": f"{arch} / {optimizer} / seed {seed}",
              "arch_options": {"width": width} if width is not None else {}, "data": {"name": "digits", "seed": 0},
              "milestones": [1, 2], **(extra or {})}
    if optimizer == "sgd":
        config["momentum"] = 0.9
    assert store.write_run(run_id, config=config, status=status, metrics=metrics, logp={"test": logp},
                           probes={"test": "fp"}, info={"wall_time": 1.25, "n_parameters": 100 + width if width else 7})


@pytest.fixture
def store(tmp_path):
    st = Store(tmp_path / "s")
    _run(st, "a", arch="mlp", width=16, lr=0.1, seed=0, acc=(0.1, 0.5, 0.95, 0.93))
    _run(st, "b", arch="mlp", width=128, lr=0.01, seed=1, acc=(0.1, 0.3, 0.6, 0.7), optimizer="adam")
    _run(st, "c", arch="wrn", width=None, lr=0.5, seed=2, acc=(0.1, float("nan"), float("nan"), float("nan")),
         status="diverged")
    _run(st, "d", arch="wrn", width=64, lr=0.05, seed=3, acc=(0.2, 0.8, 0.91, 0.92), optimizer="adam")
    return st


def test_catalog_rows_and_columns(store):
    cat = store.catalog()
    assert list(cat["run_id"]) == ["a", "b", "c", "d"]
    assert list(cat.columns[:5]) == ["run_id", "status", "label", "n_checkpoints", "message"]
    for col in ("arch", "lr", "arch_options.width", "data.name", "data.seed", "milestones", "momentum",
                "final_test_acc", "final_test_loss", "final_step", "final_epoch", "best_test_acc",
                "wall_time", "n_parameters"):
        assert col in cat.columns, col
    cols = list(cat.columns)
    assert cols.index("momentum") < cols.index("final_step") < cols.index("best_test_acc") < cols.index("wall_time")
    a = cat.set_index("run_id").loc["a"]
    assert a["label"] == "mlp / sgd / seed 0" and a["status"] == "complete" and a["n_checkpoints"] == K
    assert a["arch_options.width"] == 16 and a["data.name"] == "digits" and a["milestones"] == (1, 2)
    assert a["final_test_acc"] == 0.93 and a["best_test_acc"] == 0.95 and a["final_step"] == 15
    assert a["wall_time"] == 1.25 and a["n_parameters"] == 116
    c = cat.set_index("run_id").loc["c"]
    assert c["status"] == "diverged" and math.isnan(c["final_test_acc"]) and c["best_test_acc"] == 0.1
    assert math.isnan(c["arch_options.width"])  # no such knob: missing, not an error
    assert math.isnan(cat.set_index("run_id").loc["b", "momentum"])
    assert cat.attrs["damaged"] == []


def test_index_is_written_on_commit_and_used(store, monkeypatch):
    store.catalog()  # builds the index
    entries, clean = read_index(store.root)
    assert clean and sorted(entries) == ["a", "b", "c", "d"]
    _run(store, "e", seed=5)
    entries, _ = read_index(store.root)
    assert "e" in entries and entries["e"]["row"]["seed"] == 5  # appended by the commit itself
    # A fresh index is used as is: nothing is re-read from the run folders.
    import deepmanifold.store.catalog as catalog_mod

    def no_reads(*a, **k):
        raise AssertionError("row rebuilt although the index is fresh")

    monkeypatch.setattr(catalog_mod, "build_row", no_reads)
    assert list(store.catalog()["run_id"]) == ["a", "b", "c", "d", "e"]


def test_runs_added_behind_the_index_appear_and_removed_ones_go(store):
    store.catalog()
    # A run that arrives without an index line (copied in, or committed while the index was away).
    index = store.root / INDEX_NAME
    index.rename(index.with_suffix(".away"))
    _run(store, "a2", seed=5)
    index.with_suffix(".away").rename(index)
    shutil.rmtree(store.run_dir("b"))
    assert list(store.catalog()["run_id"]) == ["a", "a2", "c", "d"]
    entries, clean = read_index(store.root)
    assert clean and sorted(entries) == ["a", "a2", "c", "d"]


def test_damaged_or_garbage_index_is_rebuilt(store):
    store.catalog()
    path = store.root / INDEX_NAME
    path.write_bytes(path.read_bytes()[:-40] + b"\n{broken\n")
    assert list(store.catalog()["run_id"]) == ["a", "b", "c", "d"]
    path.write_text("not json at all")
    assert len(store.catalog()) == 4
    path.unlink()
    assert len(store.catalog()) == 4 and path.exists()
    path.write_text(json.dumps({"format": "deepmanifold-catalog", "version": 99}) + "\n")
    assert len(store.catalog()) == 4 and read_index(store.root)[1]


def _writer(root, seeds):
    st = Store(root)
    for s in seeds:
        _run(st, f"p{s}", seed=s)


def test_runs_committed_by_other_processes_appear(tmp_path):
    root = str(tmp_path / "s")
    st = Store(root)
    _run(st, "first")
    st.catalog()
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(root, range(i, 12, 2))) for i in (0, 1)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    cat = st.catalog()
    assert sorted(cat["run_id"]) == sorted(["first", *(f"p{s}" for s in range(12))])
    assert read_index(st.root)[1]


def test_hand_damaged_runs_are_reported_not_fatal(store):
    store.catalog()
    runs = store.root / "runs"
    (runs / "a" / "logp_test.npy").unlink()
    data = (runs / "b" / "logp_test.npy").read_bytes()
    (runs / "b" / "logp_test.npy").write_bytes(data[:-7])
    with pytest.warns(UserWarning, match=r"2 damaged run\(s\).*run a .*logp_test.npy is missing.*run b "):
        cat = store.catalog()
    assert list(cat["run_id"]) == ["c", "d"]
    assert [r for r, _ in cat.attrs["damaged"]] == ["a", "b"]
    assert list(store.catalog(on_error="skip")["run_id"]) == ["c", "d"]
    with pytest.raises(StoreError, match="run a .*damaged"):
        store.catalog(on_error="raise")
    (runs / "c" / "run.json").write_text("{bad json")
    (runs / "d" / "metrics.csv").write_text("step,epoch\n0,0\n")  # fewer rows than checkpoints
    cat = store.catalog(on_error="skip")
    assert len(cat) == 0 and [r for r, _ in cat.attrs["damaged"]] == ["a", "b", "c", "d"]
    assert "metrics.csv has 1 rows" in dict(cat.attrs["damaged"])["d"]
    assert list(cat.columns[:2]) == ["run_id", "status"]
    assert len(store.query('status == "complete"', on_error="skip")) == 0


def test_records_skip_names_each_kind_of_damage_and_the_rest_stays_readable(tmp_path):
    st = Store(tmp_path / "s")
    for i in range(6):
        _run(st, f"r{i}", seed=i)
    runs = st.root / "runs"
    (runs / "r0" / "logp_test.npy").unlink()                                   # missing array
    npy = runs / "r1" / "logp_test.npy"
    npy.write_bytes(npy.read_bytes()[:200])                                     # truncated array
    (runs / "r2" / "run.json").write_text('{"run_id": "r2", ')                  # bad JSON
    raw = json.loads((runs / "r3" / "run.json").read_text())
    raw["format_version"] = 2
    (runs / "r3" / "run.json").write_text(json.dumps(raw))                      # another format version
    (runs / "r4" / "run.json").write_text("[1, 2]")                             # JSON, but not a record
    good, bad = st.records(on_error="skip")
    assert [r.run_id for r in good] == ["r5"]
    reasons = dict(bad)
    assert sorted(reasons) == ["r0", "r1", "r2", "r3", "r4"]
    assert "logp_test.npy is missing" in reasons["r0"]
    assert "logp_test.npy has shape" in reasons["r1"]
    assert "run.json unreadable" in reasons["r2"]
    assert "found run format version 2" in reasons["r3"] and "supports version 1" in reasons["r3"]
    assert "run r4" in reasons["r4"]
    logp = st.logp("r5", "test")
    assert logp.shape == (K, N, C) and np.isfinite(logp).all()
    assert len(st.metrics("r5")["step"]) == K
    with pytest.raises(StoreError, match="run r0 .*damaged"):
        st.records()
    with pytest.raises(ValueError, match="on_error"):
        st.records(on_error="ignore")


@pytest.mark.parametrize("marker, match", [
    ({"format": "deepmanifold-store", "version": 2}, r"another version.*found store format version 2.*supports version 1"),
    ({"format": "something-else", "version": 1}, "not a deepmanifold store.*'something-else'"),
    ([1, 2], "not a deepmanifold store"),
])
def test_store_of_another_version_says_what_was_found(tmp_path, marker, match):
    Store(tmp_path / "s")
    (tmp_path / "s" / "store.json").write_text(json.dumps(marker))
    with pytest.raises(StoreError, match=match):
        Store(tmp_path / "s", create=False)
    with pytest.raises(StoreError, match=match):
        Store(tmp_path / "s")
    (tmp_path / "s" / "store.json").write_text("{trunc")
    with pytest.raises(StoreError, match="damaged"):
        Store(tmp_path / "s", create=False)


# ----------------------------------------------------------------------------- query
@pytest.mark.parametrize("where, expected", [
    ('arch == "wrn" and final_test_acc > 0.9', ["d"]),
    ("arch_options.width > 64", ["b"]),
    ("`arch_options.width` >= 64", ["b", "d"]),
    ('`data.name` == "digits" and seed in [1, 3]', ["b", "d"]),
    ('optimizer not in ("adam",)', ["a", "c"]),
    ("not (status == 'diverged')", ["a", "b", "d"]),
    ("0.01 < lr <= 0.1", ["a", "d"]),
    ("momentum == None", ["b", "d"]),
    ("momentum != None", ["a", "c"]),
    ("momentum != 0.9", ["b", "d"]),
    ("arch_options.width == None or best_test_acc < 0.75", ["b", "c"]),
    ("milestones == [1, 2]", ["a", "b", "c", "d"]),
    ("2 in milestones and 3 not in milestones", ["a", "b", "c", "d"]),
    ("lr > -1 and n_checkpoints == 4 and True", ["a", "b", "c", "d"]),
    ("final_test_acc >= 0", ["a", "b", "d"]),  # NaN (diverged) satisfies no ordering
    ("label == 'mlp / adam / seed 1'", ["b"]),
    ("", ["a", "b", "c", "d"]),
])
def test_query_examples(store, where, expected):
    assert list(store.query(where)["run_id"]) == expected


@pytest.mark.parametrize("where, match", [
    ("len(arch) > 2", "function call 'len\\(arch\\)' is not allowed"),
    ("arch.upper() == 'X'", "function call"),
    ("__import__('os').system('true')", "function call"),
    ("milestones[0] == 1", "subscript"),
    ("(lambda: 1)() == 1", "function call|lambda"),
    ("lr * 2 > 1", "arithmetic"),
    ("arch.__class__ == 1", "dunder"),
    ("__class__ == 1", "dunder"),
    ("'x'.upper == 1", "attribute of a non-column"),
    ("arch is None", "operator 'is'"),
    ("{'a': 1} == arch", "dict literal"),
    ("[x for x in arch] == 1", "comprehension"),
    ("arch == f'{lr}'", "f-string"),
    ("(a := 1) == 1", "assignment"),
    ("lr", "not boolean"),
    ("arch > 3", "cannot compare arch"),
    ("arch ==", "not a valid expression"),
    ("`unclosed > 1", "unclosed backtick"),
    ("lr + ", "not a valid expression"),
    ("(lr > 1) == True", "comparison used as a value"),
])
def test_query_rejects_anything_else(store, where, match):
    with pytest.raises(ValueError, match=match):
        store.query(where)


def test_query_unknown_column_lists_the_columns(store):
    with pytest.raises(ValueError, match=r"unknown column 'arch_options.depth'.*columns: run_id, status, label.*"
                                         r"arch_options.width"):
        store.query("arch_options.depth > 2")
    with pytest.raises(ValueError, match="unknown column 'arch.upper'"):
        store.query("arch.upper == 'X'")


def test_query_backticks_leave_string_literals_alone(tmp_path):
    st = Store(tmp_path / "s")
    _run(st, "x", extra={"note": "a `quoted` word", "odd key": 3})
    assert list(st.query("note == 'a `quoted` word'")["run_id"]) == ["x"]
    assert list(st.query("`odd key` == 3")["run_id"]) == ["x"]


def test_a_query_over_many_rows_matches_pandas(tmp_path):
    """10,000 rows with missing values: the language selects exactly what pandas does."""
    from deepmanifold.store.query import filter_frame

    n = 10_000
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"run_id": [f"r{i}" for i in range(n)], "arch": rng.choice(["mlp", "wrn"], n),
                          "final_test_acc": rng.uniform(size=n), "arch_options.width": rng.choice([16.0, np.nan], n)})
    out = filter_frame(frame, 'arch == "wrn" and final_test_acc > 0.9 and `arch_options.width` >= 16')
    expected = frame[(frame.arch == "wrn") & (frame.final_test_acc > 0.9) & (frame["arch_options.width"] >= 16)]
    assert list(out.run_id) == list(expected.run_id)


def test_empty_store_catalog(tmp_path):
    st = Store(tmp_path / "s")
    cat = st.catalog()
    assert len(cat) == 0 and "run_id" in cat.columns and cat.attrs["damaged"] == []
    assert len(st.query("")) == 0
    assert len(st.query('arch == "mlp" and `arch_options.width` > 3')) == 0  # no columns yet: no error
    with pytest.raises(ValueError, match="function call"):
        st.query("len(arch) > 1")
    assert not any(p.name.startswith("catalog.") for p in (st.root / ".staging").iterdir())
    assert os.path.exists(st.root / INDEX_NAME)
