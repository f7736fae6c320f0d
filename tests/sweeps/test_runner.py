"""Sweeps that survive what users do: damaged runs retrained, stores shared, Ctrl-C, a killed parent."""

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from deepmanifold.store import Store
from deepmanifold.sweeps import load_spec, parse_spec, run_sweep

pytestmark = pytest.mark.slow

FAST = {
    "data": {"name": "digits", "probe_train": 60, "probe_test": 50},
    "train": {"epochs": 1, "batch_size": 64, "checkpoints": 4},
    "grid": {"arch": ["mlp"], "optimizer": ["sgd", "adam"], "seed": [0, 1]},
    "arch": {"mlp": {"width": 16}},
    "optimizer": {"sgd": {"lr": 0.1, "momentum": 0.9}, "adam": {"lr": 1e-3}},
}

# Runs of a few seconds each, so that a signal can land while some are in flight.
SLOW_SPEC = """
[sweep]
name = "slow"
workers = 2
[data]
name = "digits"
probe_train = 60
probe_test = 50
[train]
epochs = 15
checkpoints = 4
[grid]
arch = ["cnn"]
optimizer = ["sgd"]
seed = [0, 1, 2, 3, 4, 5]
[arch.cnn]
width = 16
[optimizer.sgd]
lr = 0.05
momentum = 0.9
"""


def test_damaged_runs_and_probe_files_are_repaired_by_the_next_sweep(tmp_path):
    spec = parse_spec(FAST)
    root = tmp_path / "s"
    assert run_sweep(spec, store=root, workers=1).count("complete") == 4
    store = Store(root)
    ids = store.run_ids()
    kept = {run_id: store.logp(run_id, "test").copy() for run_id in ids}
    (store.run_dir(ids[0]) / "logp_test.npy").write_bytes(b"\x93NUMPY garbage")
    (store.run_dir(ids[1]) / "run.json").unlink()  # a commit could never rename onto this folder
    for probe_file in (root / "probes").iterdir():
        probe_file.unlink()
    notes = []
    result = run_sweep(spec, store=root, workers=1, on_note=notes.append)
    assert sorted(o.run_id for o in result.outcomes if o.status == "complete") == sorted(ids[:2])
    assert sorted(o.run_id for o in result.outcomes if o.status == "skipped") == sorted(ids[2:])
    assert len(notes) == 2 and all("moved aside to" in n and "trained again" in n for n in notes)
    assert sorted(p.name.split(".")[0] for p in (root / "damaged").iterdir() if p.is_dir()) == sorted(ids[:2])
    assert store.run_ids() == ids and len(store.catalog(on_error="raise")) == 4
    for run_id in ids:  # retrained runs are the same runs again; the others untouched
        np.testing.assert_array_equal(store.logp(run_id, "test"), kept[run_id])
    assert all(store.probe(fp) for fp in store.record(ids[3]).probes.values())


def test_the_stale_lease_of_a_committed_run_is_removed_by_the_next_sweep(tmp_path):
    import json
    import socket

    spec = parse_spec(FAST)
    root = tmp_path / "s"
    run_sweep(spec, store=root, workers=1)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    committed = Store(root).run_ids()[0]  # as if its worker died between the commit and the release
    (root / ".leases" / committed).write_text(json.dumps({"host": socket.gethostname(), "pid": int(dead.stdout),
                                                          "token": "x"}))
    assert run_sweep(spec, store=root, workers=1).count("skipped") == 4
    assert _leases(root) == []


def _sweep_in_process(spec_raw, root, queue):
    from deepmanifold.sweeps import parse_spec as parse, run_sweep as sweep

    result = sweep(parse(spec_raw), store=root, workers=1)
    queue.put([(o.run_id, o.status, o.message) for o in result.outcomes])


def test_two_sweeps_on_one_store_split_the_work(tmp_path):
    import multiprocessing

    raw = {**FAST, "train": {**FAST["train"], "epochs": 3}, "grid": {**FAST["grid"], "seed": [0, 1, 2, 3]}}
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    Store(tmp_path / "s")
    procs = [ctx.Process(target=_sweep_in_process, args=(raw, str(tmp_path / "s"), queue)) for _ in range(2)]
    for p in procs:
        p.start()
    outcomes = [queue.get(timeout=300) for _ in procs]
    for p in procs:
        p.join(60)
    trained = [[run_id for run_id, status, _ in o if status == "complete"] for o in outcomes]
    all_ids = sorted(r.run_id for r in parse_spec(raw).runs)
    assert not set(trained[0]) & set(trained[1]), "a run was trained by both sweeps"
    assert sorted(trained[0] + trained[1]) == all_ids  # every run trained exactly once
    assert Store(tmp_path / "s").run_ids() == all_ids


def _start(tmp_path):
    (tmp_path / "spec.toml").write_text(textwrap.dedent(SLOW_SPEC))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-m", "deepmanifold.cli", "run", "spec.toml", "--store", "store",
                             "--no-report"], cwd=tmp_path, env=env, start_new_session=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _wait_for_commits(root: Path, n: int, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if (root / "runs").is_dir() and len(os.listdir(root / "runs")) >= n:
            return
        time.sleep(0.05)
    raise AssertionError(f"no {n} commits within {timeout} s")


def _leases(root: Path) -> list[str]:
    return [name for name in os.listdir(root / ".leases") if not name.startswith(".")]  # not the lock file


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def test_workers_die_with_a_killed_sweep_and_the_next_one_takes_their_runs(tmp_path):
    proc = _start(tmp_path)
    try:
        _wait_for_commits(tmp_path / "store", 1)
        os.kill(proc.pid, signal.SIGKILL)  # the parent only, as an OOM killer would
        proc.wait(10)
        deadline = time.monotonic() + 10
        while _group_alive(proc.pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _group_alive(proc.pid), "workers or the resource tracker outlived the sweep"
    finally:
        if _group_alive(proc.pid):
            os.killpg(proc.pid, signal.SIGKILL)
    root = tmp_path / "store"
    leftovers = _leases(root)
    assert leftovers  # the dead workers' leases, stale now
    spec = load_spec(tmp_path / "spec.toml")
    result = run_sweep(spec, store=root, workers=1)
    assert result.count("failed") == 0 and Store(root).run_ids() == sorted(r.run_id for r in spec.runs)
    assert _leases(root) == [] and os.listdir(root / ".staging") == []


def test_ctrl_c_finishes_the_runs_in_flight_and_a_second_abandons_them(tmp_path):
    proc = _start(tmp_path)
    root = tmp_path / "store"
    try:
        _wait_for_commits(root, 1)
        os.killpg(proc.pid, signal.SIGINT)  # what a terminal does: the whole group gets it
        t0 = time.monotonic()
        lines = []
        while not any("finishing" in line for line in lines):
            lines.append(proc.stdout.readline())
            assert time.monotonic() - t0 < 5, "the first Ctrl-C was not acknowledged at once"
        assert "Ctrl-C again to abandon them" in " ".join(lines[-2:])
        in_flight = set(_leases(root))  # read before the runs: a run in flight now is here or committed
        committed_then = set(os.listdir(root / "runs"))
        out, _ = proc.communicate(timeout=120)
    finally:
        if _group_alive(proc.pid):
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 130 and "run the same command to resume" in out
    runs = os.listdir(root / "runs")
    assert in_flight <= set(runs) and committed_then <= set(runs)  # the runs in flight were committed
    assert len(runs) <= len(committed_then) + 2 and len(runs) < 6  # at most the two workers' runs, no other
    assert _leases(root) == [] and os.listdir(root / ".staging") == []

    proc = _start(tmp_path)  # resume, and abandon at once
    try:
        _wait_for_commits(root, len(runs) + 1)
        os.killpg(proc.pid, signal.SIGINT)
        time.sleep(0.5)
        os.killpg(proc.pid, signal.SIGINT)
        out, _ = proc.communicate(timeout=20)
        deadline = time.monotonic() + 10
        while _group_alive(proc.pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _group_alive(proc.pid)
    finally:
        if _group_alive(proc.pid):
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 130 and "abandoned" in out
    store = Store(root)
    for run_id in store.run_ids():  # whatever was committed is whole
        assert store.verify(run_id).n_checkpoints == 4


def _threads_in_worker():
    import numba
    import torch

    return numba.config.NUMBA_NUM_THREADS, numba.get_num_threads(), torch.get_num_threads(), os.environ["OMP_NUM_THREADS"]


def test_pool_workers_run_one_torch_and_one_numba_thread():
    """A worker's idle numba threads would spin on the core another worker trains on."""
    import concurrent.futures as cf
    import multiprocessing

    from deepmanifold.sweeps.execute import init_worker

    with cf.ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"), initializer=init_worker,
                                initargs=(os.getpid(),)) as pool:
        assert pool.submit(_threads_in_worker).result() == (1, 1, 1, "1")


def test_a_worker_that_imported_numba_already_gets_one_numba_thread(monkeypatch):
    """A reused Ray worker has numba loaded with its default thread count: the kernels get one thread."""
    import numba

    from deepmanifold.sweeps.execute import set_single_thread

    for var in ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        monkeypatch.setenv(var, os.environ.get(var, "2"))
    import torch

    saved = numba.get_num_threads(), torch.get_num_threads()
    try:
        set_single_thread(worker=True)
        assert numba.get_num_threads() == 1 and os.environ["NUMBA_NUM_THREADS"] == "1"
    finally:
        numba.set_num_threads(saved[0])
        torch.set_num_threads(saved[1])
