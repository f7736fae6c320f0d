"""Leases: one process at a time holds a run; the leases of dead or silent processes are taken over."""

import json
import multiprocessing
import os
import socket
import time

from deepmanifold.store import leases


def test_a_held_lease_is_refused_to_others_and_released_by_its_owner_only(tmp_path):
    lease = leases.acquire(tmp_path, "run-a")
    assert isinstance(lease, leases.Lease)
    other = leases.acquire(tmp_path, "run-a")
    assert other["pid"] == os.getpid() and other["host"] == socket.gethostname()
    assert isinstance(leases.acquire(tmp_path, "run-b"), leases.Lease)  # other runs are free
    lease.release()
    again = leases.acquire(tmp_path, "run-a")
    assert isinstance(again, leases.Lease)
    lease.release()  # an old holder releasing does not remove the new holder's lease
    assert not isinstance(leases.acquire(tmp_path, "run-a"), leases.Lease)


def _dead_pid() -> int:
    proc = multiprocessing.get_context("spawn").Process(target=time.sleep, args=(0,))
    proc.start()
    proc.join()
    return proc.pid


def test_the_lease_of_a_dead_process_on_this_host_is_taken_over(tmp_path):
    (tmp_path / leases.LEASES).mkdir()
    path = tmp_path / leases.LEASES / "run-a"
    path.write_text(json.dumps({"host": socket.gethostname(), "pid": _dead_pid(), "token": "x"}))
    assert isinstance(leases.acquire(tmp_path, "run-a"), leases.Lease)


def test_only_a_stale_lease_is_discarded(tmp_path):
    live = leases.acquire(tmp_path, "run-live")
    assert not leases.discard_stale(tmp_path, "run-live") and live.path.exists()  # our own process: alive
    assert not leases.discard_stale(tmp_path, "run-never-leased")
    path = tmp_path / leases.LEASES / "run-dead"
    path.write_text(json.dumps({"host": socket.gethostname(), "pid": _dead_pid(), "token": "x"}))
    assert leases.discard_stale(tmp_path, "run-dead") and not path.exists()
    assert sorted(os.listdir(tmp_path / leases.LEASES)) == [".lock", "run-live"]
    assert leases.leased(tmp_path) == {"run-live"} and leases.leased(tmp_path / "no-store") == set()


def test_a_lease_of_another_host_is_stale_only_once_its_heartbeat_stops(tmp_path):
    (tmp_path / leases.LEASES).mkdir()
    path = tmp_path / leases.LEASES / "run-a"
    path.write_text(json.dumps({"host": "elsewhere", "pid": 1, "token": "x"}))
    assert leases.acquire(tmp_path, "run-a", stale_after=60)["host"] == "elsewhere"
    old = time.time() - 61
    os.utime(path, (old, old))
    assert isinstance(leases.acquire(tmp_path, "run-a", stale_after=60), leases.Lease)


def test_the_heartbeat_keeps_a_lease_fresh(tmp_path):
    lease = leases.acquire(tmp_path, "run-a")
    old = time.time() - 1000
    os.utime(lease.path, (old, old))
    with leases.Heartbeat([lease], interval=0.05):
        time.sleep(0.3)
    assert time.time() - lease.path.stat().st_mtime < 5


def _grab(root, run_ids, queue, done):
    got = [r for r in run_ids if isinstance(leases.acquire(root, r), leases.Lease)]
    queue.put(got)
    done.wait(60)  # alive until every process has tried: a dead holder's leases are fair game


def test_processes_racing_for_the_same_runs_get_each_run_once(tmp_path):
    ctx = multiprocessing.get_context("spawn")
    queue, done = ctx.Queue(), ctx.Event()
    run_ids = [f"run-{i}" for i in range(40)]
    procs = [ctx.Process(target=_grab, args=(str(tmp_path), run_ids if i % 2 else run_ids[::-1], queue, done))
             for i in range(4)]
    for p in procs:
        p.start()
    got = [queue.get(timeout=60) for _ in procs]
    done.set()
    for p in procs:
        p.join(60)
    claimed = [r for g in got for r in g]
    assert sorted(claimed) == sorted(run_ids)  # every run claimed, none twice
