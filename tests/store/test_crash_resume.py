"""A real sweep killed with SIGKILL at random moments, restarted, and finished: nothing lost, nothing doubled."""

import os
import random
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from deepmanifold.store import Store

pytestmark = pytest.mark.slow

SPEC = """
[sweep]
name = "crash"
workers = 2

[data]
name = "digits"
probe_train = 60
probe_test = 50

[train]
epochs = 2
batch_size = 64
checkpoints = 6

[grid]
arch = ["mlp", "cnn"]
optimizer = ["sgd", "adam"]
seed = [0, 1, 2, 3]

[arch.mlp]
width = 16

[arch.cnn]
width = 8

[optimizer.sgd]
lr = 0.1
momentum = 0.9

[optimizer.adam]
lr = 0.003
"""

N_RUNS, K, N_TEST, N_TRAIN, C = 16, 6, 50, 60, 10
# A sweep process spends several seconds importing torch, preflighting and spawning its
# workers before its first commit, then commits its runs in a burst (each run ~0.05-1 s).
# The first kill lands at a random moment of that start-up (store, probes being created);
# the others at a random moment after the attempt's first commit, i.e. while runs are
# being trained, staged and renamed.
STARTUP_KILL = (0.5, 3.0)
COMMIT_KILL = (0.0, 0.6)
N_KILLS = 3


def _n_runs(store_path):
    try:
        return len(os.listdir(store_path / "runs"))
    except FileNotFoundError:
        return 0


def _wait_first_commit(proc, store_path, timeout=90):
    before = _n_runs(store_path)
    deadline = time.monotonic() + timeout
    while proc.poll() is None and time.monotonic() < deadline:
        if _n_runs(store_path) > before:
            return
        time.sleep(0.005)


def _start(root):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-m", "deepmanifold.cli", "run", "spec.toml", "--store", "store",
                             "--workers", "2", "--no-report"], cwd=root, env=env, start_new_session=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _kill_group(proc):
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.communicate(timeout=30)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:  # the spawned workers die with the group
        try:
            os.killpg(proc.pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)
    raise AssertionError("processes of the killed sweep survived SIGKILL of their group")


def _check_visible_runs(store, spec_ids):
    """Whatever is visible as a run is whole: never a staging leftover, never a half-written run."""
    ids = store.run_ids()
    assert set(ids) <= spec_ids, set(ids) - spec_ids
    for run_id in ids:
        rec = store.record(run_id)
        assert rec.status == "complete" and rec.n_checkpoints == K
    return ids


def test_sweep_killed_repeatedly_finishes_each_run_exactly_once(tmp_path):
    from deepmanifold.sweeps.spec import load_spec

    (tmp_path / "spec.toml").write_text(textwrap.dedent(SPEC))
    spec_ids = {r.run_id for r in load_spec(tmp_path / "spec.toml").runs}
    assert len(spec_ids) == N_RUNS
    rng = random.Random(20261127)
    store_path = tmp_path / "store"
    history = []
    for attempt in range(N_KILLS):
        proc = _start(tmp_path)
        if attempt == 0:
            delay = rng.uniform(*STARTUP_KILL)
        else:
            _wait_first_commit(proc, store_path)
            delay = rng.uniform(*COMMIT_KILL)
        try:
            proc.wait(timeout=delay)
        except subprocess.TimeoutExpired:
            pass
        finished = proc.poll() is not None
        _kill_group(proc)
        assert not finished or proc.returncode == 0
        leftovers = sorted(os.listdir(store_path / ".staging")) if (store_path / ".staging").exists() else []
        ids = _check_visible_runs(Store(store_path), spec_ids) if (store_path / "store.json").exists() else []
        history.append((round(delay, 2), len(ids), len(leftovers)))
    final = subprocess.run([sys.executable, "-m", "deepmanifold.cli", "run", "spec.toml", "--store", "store",
                            "--workers", "2", "--no-report"], cwd=tmp_path, capture_output=True, text=True,
                           timeout=120, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert final.returncode == 0, final.stdout + final.stderr
    print("kills (delay s, runs visible after the kill, staging leftovers):", history)
    assert any(0 < n < N_RUNS for _, n, _ in history[1:]), history  # some kills did land mid-sweep

    store = Store(store_path, create=False)
    # Every run of the spec, exactly once (one folder per id, no other folder), each complete.
    assert sorted(os.listdir(store_path / "runs")) == sorted(spec_ids)
    assert _check_visible_runs(store, spec_ids) == sorted(spec_ids)
    # The restart cleaned what the killed writers left; nothing of it is visible as a run.
    assert os.listdir(store_path / ".staging") == []
    records, damaged = store.records(on_error="skip")
    assert damaged == [] and len(records) == N_RUNS
    for rec in records:
        m = store.metrics(rec.run_id)
        assert len(m["step"]) == K and np.all(np.diff(m["step"]) > 0)
        for probe, n in (("test", N_TEST), ("train", N_TRAIN)):
            logp = store.logp(rec.run_id, probe)
            assert logp.shape == (K, n, C) and np.isfinite(logp).all()
            np.testing.assert_allclose(np.exp(logp).sum(-1), 1.0, atol=1e-4)
        labels = store.probe(rec.probes["test"]).labels
        acc = (store.logp(rec.run_id, "test").argmax(-1) == labels).mean(axis=1)
        np.testing.assert_allclose(m["test_acc"], acc, atol=1e-12)
    # The catalog sees every run, whichever (killed) process committed it.
    cat = store.catalog(on_error="raise")
    assert sorted(cat["run_id"]) == sorted(spec_ids)
    assert set(cat["status"]) == {"complete"} and set(cat["n_checkpoints"]) == {K}
    assert cat.equals(store.catalog(refresh=True))


WRITER = """
import sys, time
import numpy as np
import deepmanifold.store.store as store_mod
from deepmanifold.store import Store

real_write_bytes = store_mod.write_bytes

def slow_write_bytes(path, data):  # stall inside the commit: arrays staged, run.json not yet
    if path.name == "run.json":
        print("staged", flush=True)
        time.sleep(60)
    real_write_bytes(path, data)

store_mod.write_bytes = slow_write_bytes
st = Store(sys.argv[1])
logp = np.log(np.full((3, 4, 2), 0.5, dtype=np.float32))
st.write_run("victim", config={"arch": "mlp"}, status="complete",
             metrics={"step": np.arange(3), "epoch": np.arange(3.0)}, logp={"test": logp}, probes={"test": "fp"})
"""


@pytest.mark.slow
def test_writer_killed_in_the_middle_of_a_commit(tmp_path):
    """Deterministic counterpart of the random kills: SIGKILL while a run sits half-written in staging."""
    root = tmp_path / "s"
    Store(root).catalog()
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(root)], stdout=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        assert proc.stdout.readline().strip() == "staged"
    finally:
        _kill_group(proc)
    store = Store(root)
    leftovers = os.listdir(root / ".staging")
    assert len(leftovers) == 1 and leftovers[0].startswith("victim.")
    assert store.run_ids() == [] and not store.has_run("victim") and len(store.catalog()) == 0
    assert store.clean_staging() == 1 and os.listdir(root / ".staging") == []
    logp = np.log(np.full((3, 4, 2), 0.5, dtype=np.float32))
    assert store.write_run("victim", config={"arch": "mlp"}, status="complete",
                           metrics={"step": np.arange(3), "epoch": np.arange(3.0)}, logp={"test": logp},
                           probes={"test": "fp"})
    assert list(store.catalog(on_error="raise")["run_id"]) == ["victim"]
