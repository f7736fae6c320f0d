import json
import multiprocessing
import os

import numpy as np
import pytest

from deepmanifold.store import Store, StoreError


def _fake_run(rng, k=5, n=7, c=3):
    logits = rng.normal(size=(k, n, c))
    logp = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    metrics = {"step": np.arange(k) * 10, "epoch": np.arange(k) / 2.0, "test_acc": rng.uniform(size=k)}
    return metrics, {"test": logp.astype(np.float32), "train": logp[:, :4].astype(np.float32)}


def _write(store, run_id, rng, status="complete"):
    metrics, logp = _fake_run(rng)
    return store.write_run(run_id, config={"arch": "mlp", "seed": 1}, status=status, metrics=metrics,
                           logp=logp, probes={"test": "fp-test", "train": "fp-train"},
                           info={"wall_time": 1.5}), metrics, logp


def test_roundtrip_and_lazy_slices(tmp_path):
    rng = np.random.default_rng(0)
    store = Store(tmp_path / "s")
    committed, metrics, logp = _write(store, "run-a", rng)
    assert committed
    assert store.run_ids() == ["run-a"]
    rec = store.record("run-a")
    assert rec.status == "complete" and rec.config == {"arch": "mlp", "seed": 1}
    assert rec.n_checkpoints == 5 and rec.probes["test"] == "fp-test"
    m = store.metrics("run-a")
    np.testing.assert_array_equal(m["step"], metrics["step"])
    np.testing.assert_allclose(m["test_acc"], metrics["test_acc"], rtol=0, atol=0)  # repr round-trips exactly
    np.testing.assert_array_equal(store.logp("run-a", "test"), logp["test"])
    np.testing.assert_array_equal(store.logp("run-a", "test", checkpoints=[0, 3], samples=slice(2, 5)),
                                  logp["test"][[0, 3]][:, 2:5])


def test_reads_are_memory_maps_of_only_what_is_sliced(tmp_path):
    store = Store(tmp_path / "s")
    _, _, logp = _write(store, "run-a", np.random.default_rng(0))
    whole = store.logp("run-a", "test")
    part = store.logp("run-a", "test", checkpoints=slice(1, 3), samples=slice(0, 4))
    assert isinstance(whole, np.memmap) and isinstance(part, np.memmap) and not whole.flags.writeable
    np.testing.assert_array_equal(part, logp["test"][1:3, :4])
    picked = store.logp("run-a", "test", checkpoints=[4, 0])  # index lists copy only the selection
    assert not isinstance(picked, np.memmap) and picked.shape == (2, 7, 3)
    np.testing.assert_array_equal(picked, logp["test"][[4, 0]])


def test_measurement_arrays_roundtrip_listed_in_record_and_catalog(tmp_path):
    rng = np.random.default_rng(5)
    store = Store(tmp_path / "s")
    metrics, logp = _fake_run(rng)
    corr = rng.normal(size=(5, 3))
    diag = rng.uniform(size=(5, 64)).astype(np.float32)
    steps = np.arange(5, dtype=np.int64)
    assert store.write_run("r", config={"arch": "mlp"}, status="complete", metrics=metrics, logp=logp,
                           probes={"test": "fp-test", "train": "fp-train"},
                           arrays={"nfa": {"corr": corr, "agop_diag": diag}, "rank": {"": steps}})
    rec = store.record("r")
    assert rec.arrays == {"logp_test": "logp", "logp_train": "logp", "nfa_corr": "nfa",
                          "nfa_agop_diag": "nfa", "rank": "rank"}
    assert set(rec.measurements) == {"logp", "nfa", "rank"}
    np.testing.assert_array_equal(store.array("r", "nfa_corr"), corr)  # dtype kept: float64
    assert store.array("r", "nfa_agop_diag").dtype == np.float32
    np.testing.assert_array_equal(store.array("r", "rank", checkpoints=[1, 2]), steps[[1, 2]])
    np.testing.assert_array_equal(store.array("r", "logp_test"), logp["test"])
    row = store.catalog(on_error="raise").iloc[0]
    assert row["arrays"] == ("logp_test", "logp_train", "nfa_agop_diag", "nfa_corr", "rank")
    with pytest.raises(StoreError, match="no array 'nfa_x'"):
        store.array("r", "nfa_x")


def test_a_damaged_measurement_array_marks_the_run_damaged(tmp_path):
    rng = np.random.default_rng(6)
    store = Store(tmp_path / "s")
    metrics, logp = _fake_run(rng)
    store.write_run("r", config={}, status="complete", metrics=metrics, logp=logp,
                    probes={"test": "a", "train": "b"}, arrays={"nfa": {"corr": np.zeros((5, 2))}})
    path = tmp_path / "s" / "runs" / "r" / "nfa_corr.npy"
    path.write_bytes(path.read_bytes()[:-8])
    with pytest.raises(StoreError, match="run r .*damaged: nfa_corr.npy has shape"):
        store.record("r")
    path.unlink()
    with pytest.raises(StoreError, match="nfa_corr.npy is missing"):
        store.record("r")


def test_second_commit_of_same_run_is_refused_and_changes_nothing(tmp_path):
    rng = np.random.default_rng(1)
    store = Store(tmp_path / "s")
    _, _, first = _write(store, "run-a", rng)
    committed, _, _ = _write(store, "run-a", rng)
    assert not committed
    np.testing.assert_array_equal(store.logp("run-a", "test"), first["test"])
    assert os.listdir(tmp_path / "s" / ".staging") == []


def test_half_written_run_is_invisible_and_cleaned(tmp_path):
    store = Store(tmp_path / "s")
    # What a writer killed mid-commit leaves behind: a staging folder of a dead process.
    dead = tmp_path / "s" / ".staging" / "run-x.999999999.abcd1234"
    dead.mkdir()
    (dead / "logp_test.npy").write_bytes(b"partial")
    assert store.run_ids() == []
    assert not store.has_run("run-x")
    assert store.clean_staging() == 1
    assert os.listdir(tmp_path / "s" / ".staging") == []


def test_damaged_run_is_named_and_the_rest_stays_readable(tmp_path):
    rng = np.random.default_rng(2)
    store = Store(tmp_path / "s")
    _write(store, "good", rng)
    _write(store, "bad", rng)
    (tmp_path / "s" / "runs" / "bad" / "run.json").write_text("{not json")
    with pytest.raises(StoreError, match="run bad .*damaged"):
        store.records()
    good, damaged = store.records(on_error="skip")
    assert [r.run_id for r in good] == ["good"]
    assert damaged[0][0] == "bad"


def test_store_of_another_version_is_refused(tmp_path):
    Store(tmp_path / "s")
    (tmp_path / "s" / "store.json").write_text(json.dumps({"format": "deepmanifold-store", "version": 99}))
    with pytest.raises(StoreError, match="another version"):
        Store(tmp_path / "s")
    with pytest.raises(StoreError, match="not a deepmanifold store"):
        Store(tmp_path / "missing", create=False)


@pytest.mark.parametrize("bad, match", [
    ({"run_id": "../escape"}, "run id"),
    ({"status": "running"}, "status"),
    ({"logp": {"test": np.zeros((2, 3, 4), np.float32)}}, "shape"),
    ({"arrays": {"logp": {"x": np.zeros(5)}}}, "not 'logp'"),
    ({"arrays": {"NFA": {"x": np.zeros(5)}}}, "measurement name 'NFA'"),
    ({"arrays": {"nfa": {"../x": np.zeros(5)}}}, "array key '../x'"),
    ({"arrays": {"nfa": {"x": np.zeros(4)}}}, r"'nfa_x' must be numeric with shape \(K=5"),
    ({"arrays": {"nfa": {"x": np.array(["a"] * 5)}}}, "must be numeric"),
])
def test_bad_writes_raise_and_store_nothing(tmp_path, bad, match):
    rng = np.random.default_rng(3)
    store = Store(tmp_path / "s")
    metrics, logp = _fake_run(rng)
    kwargs = dict(run_id="r", config={}, status="complete", metrics=metrics,
                  logp={"test": logp["test"]}, probes={"test": "fp"})
    kwargs.update(bad)
    with pytest.raises(ValueError, match=match):
        store.write_run(kwargs.pop("run_id"), **kwargs)
    assert store.run_ids() == []


def test_probe_roundtrip(tmp_path):
    store = Store(tmp_path / "s")
    store.put_probe(fingerprint="abc", name="test", split="test", dataset="digits",
                    indices=np.array([3, 1, 2]), labels=np.array([0, 9, 4]))
    p = store.probe("abc")
    assert (p.name, p.split, p.dataset) == ("test", "test", "digits")
    np.testing.assert_array_equal(p.labels, [0, 9, 4])
    with pytest.raises(StoreError, match="missing"):
        store.probe("nope")


def _writer(root, seed, run_ids):
    rng = np.random.default_rng(seed)
    store = Store(root)
    for run_id in run_ids:
        _write(store, run_id, rng)


def test_two_processes_write_one_store(tmp_path):
    root = str(tmp_path / "s")
    Store(root)
    ids = [f"run-{i}" for i in range(12)]
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(root, s, ids if s == 0 else ids[::-1])) for s in (0, 1)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    store = Store(root)
    assert store.run_ids() == sorted(ids)
    for run_id in ids:  # each run whole and readable, whichever writer won
        assert store.logp(run_id, "test").shape == (5, 7, 3)
    assert os.listdir(os.path.join(root, ".staging")) == []
