"""Damage is found, named and moved aside, never trusted; probe files are restored; stores open or refuse cleanly."""

import errno
import json
import os

import numpy as np
import pytest

from deepmanifold.store import Store, StoreError
from deepmanifold.store.repair import DAMAGED, damaged_runs, move_damaged_runs


def _write(store, run_id, rng, k=4, n=6, c=3):
    logits = rng.normal(size=(k, n, c))
    logp = (logits - np.log(np.exp(logits).sum(-1, keepdims=True))).astype(np.float32)
    metrics = {"step": np.arange(k), "epoch": np.arange(k) / 2.0, "test_acc": rng.uniform(size=k)}
    assert store.write_run(run_id, config={"arch": "mlp", "label": run_id}, status="complete", metrics=metrics,
                           logp={"test": logp}, probes={"test": "fp"}, arrays={"extra": {"v": rng.normal(size=(k, 2))}})
    return logp


def _nan_into(path):
    arr = np.load(path, mmap_mode="r+")
    arr.flat[arr.size // 2] = np.nan
    arr.flush()


DAMAGE = {
    "truncated array": lambda d: (d / "logp_test.npy").write_bytes((d / "logp_test.npy").read_bytes()[:-10]),
    "deleted array": lambda d: (d / "extra_v.npy").unlink(),
    "NaN written into the predictions": lambda d: _nan_into(d / "logp_test.npy"),
    "garbage run.json": lambda d: (d / "run.json").write_text("{not json"),
    "garbage metrics.csv": lambda d: (d / "metrics.csv").write_text("step,epoch\nx,y\n"),
    "metrics.csv without its columns": lambda d: (d / "metrics.csv").write_text("garbage\n1\n"),
    "deleted run.json": lambda d: (d / "run.json").unlink(),
}


@pytest.mark.parametrize("kind", sorted(DAMAGE))
def test_each_kind_of_damage_is_named_and_moved_aside(tmp_path, kind):
    store = Store(tmp_path / "s")
    rng = np.random.default_rng(0)
    good = _write(store, "good", rng)
    _write(store, "bad", rng)
    assert damaged_runs(store) == []
    DAMAGE[kind](store.run_dir("bad"))
    found = damaged_runs(store)
    assert [run_id for run_id, _ in found] == ["bad"] and "bad" in found[0][1] and "damaged" in found[0][1]
    assert list(store.catalog(on_error="skip")["run_id"]) == ["good"]
    moved = move_damaged_runs(store)
    assert [(run_id, where.parent.name) for run_id, _, where in moved] == [("bad", DAMAGED)]
    where = moved[0][2]
    assert where.is_dir() and (where.parent / (where.name + ".why")).read_text().startswith(found[0][1])
    assert not store.run_dir("bad").exists() and damaged_runs(store) == []
    np.testing.assert_array_equal(store.logp("good", "test"), good)  # the rest untouched
    _write(store, "bad", rng)  # the run can be committed again
    assert store.run_ids() == ["bad", "good"]


def test_a_checksum_mismatch_is_found_although_sizes_and_headers_agree(tmp_path):
    store = Store(tmp_path / "s")
    _write(store, "r", np.random.default_rng(1))
    store.catalog()  # indexed while healthy
    arr = np.load(store.run_dir("r") / "logp_test.npy", mmap_mode="r+")
    arr[1, 2, 0] -= 0.25  # a finite, plausible change
    arr.flush()
    store.record("r")  # the cheap checks see nothing wrong
    with pytest.raises(StoreError, match="logp_test.npy does not match its checksum"):
        store.verify("r")
    assert [r for r, _ in damaged_runs(store)] == ["r"]


def test_predictions_that_are_not_finite_are_refused_at_the_commit(tmp_path):
    store = Store(tmp_path / "s")
    logp = np.log(np.full((3, 4, 2), 0.5, dtype=np.float32))
    logp[1, 0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN or \\+inf at checkpoint 1"):
        store.write_run("r", config={}, status="complete", metrics={"step": np.arange(3), "epoch": np.arange(3.0)},
                        logp={"test": logp}, probes={"test": "fp"})
    logp[1, 0, 0] = -np.inf  # log(0) is a probability
    assert store.write_run("r", config={}, status="complete", metrics={"step": np.arange(3), "epoch": np.arange(3.0)},
                           logp={"test": logp}, probes={"test": "fp"})


def test_a_garbage_probe_file_is_named_never_unpickled_and_rewritten(tmp_path):
    store = Store(tmp_path / "s")
    args = dict(fingerprint="abc", name="test", split="test", dataset="digits", indices=np.array([3, 1]),
                labels=np.array([0, 9]))
    store.put_probe(**args)
    path = tmp_path / "s" / "probes" / "abc.npz"
    path.write_bytes(b"\x80\x04garbage that looks like a pickle")
    with pytest.raises(StoreError) as info:
        store.probe("abc")
    assert str(path) in str(info.value) and "pickle" not in str(info.value)
    store.put_probe(**args)  # repaired: the garbage moved aside
    np.testing.assert_array_equal(store.probe("abc").labels, [0, 9])
    assert any(p.name.startswith("abc.npz.") for p in (tmp_path / "s" / DAMAGED).iterdir())


@pytest.mark.parametrize("make, match", [
    (lambda root: root.write_text("a file"), "is a file, not a store folder"),
    (lambda root: (root.mkdir(), (root / "store.json").write_text("garbage")), "store.json is damaged"),
    (lambda root: (root.mkdir(), (root / "store.json").write_text(json.dumps({"format": "other"}))),
     "has format 'other'"),
    (lambda root: (root.mkdir(), (root / "notes.txt").write_text("mine")), "is not empty \\(notes.txt\\)"),
])
def test_what_is_not_a_store_is_refused_and_left_as_it_was(tmp_path, make, match):
    root = tmp_path / "x"
    make(root)
    before = sorted(os.listdir(root)) if root.is_dir() else root.read_text()
    with pytest.raises(StoreError, match=match):
        Store(root)
    assert (sorted(os.listdir(root)) if root.is_dir() else root.read_text()) == before


def test_force_makes_a_store_of_a_non_empty_folder_and_an_empty_one_needs_no_force(tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("kept")
    Store(tmp_path / "mine", force=True)
    assert (tmp_path / "mine" / "notes.txt").read_text() == "kept"
    (tmp_path / "empty").mkdir()
    assert Store(tmp_path / "empty").run_ids() == []
    assert Store(tmp_path / "mine").run_ids() == []  # a store now: no force needed


def test_an_unwritable_store_is_found_before_anything_trains(tmp_path, monkeypatch):
    store = Store(tmp_path / "s")
    store.check_writable()
    real = type(tmp_path).write_bytes

    def read_only(self, data):
        if self.parent.name == ".staging":
            raise OSError(errno.EROFS, "Read-only file system", str(self))
        return real(self, data)

    monkeypatch.setattr(type(tmp_path), "write_bytes", read_only)
    with pytest.raises(StoreError, match="is not writable \\(Read-only file system\\)"):
        store.check_writable()


def test_a_full_disk_is_named_and_nothing_committed_is_lost(tmp_path, monkeypatch):
    from pathlib import Path

    from deepmanifold.store import files
    from deepmanifold.store import store as store_module

    store = Store(tmp_path / "s")
    rng = np.random.default_rng(3)
    kept = _write(store, "kept", rng)

    def disk_fills_at_the_metrics(path, data):  # the disk is full when the commit reaches metrics.csv
        files.write_bytes(Path("/dev/full") if path.name == "metrics.csv" else path, data)

    monkeypatch.setattr(store_module, "write_bytes", disk_fills_at_the_metrics)
    with pytest.raises(OSError) as info:
        _write(store, "lost", rng)
    assert info.value.errno == errno.ENOSPC and "the disk is full" in str(info.value)
    assert "/dev/full" in str(info.value)  # the path it could not write
    assert store.run_ids() == ["kept"] and os.listdir(tmp_path / "s" / ".staging") == []
    np.testing.assert_array_equal(store.logp("kept", "test"), kept)
