"""Execute a sweep: every run of a spec, in parallel worker processes, resumable.

Each worker process uses one torch/BLAS thread (tiny models on two cores run
30x slower when threads fight) and commits each finished run to the store
atomically; a sweep that is interrupted or killed loses at most the runs in
flight, and running it again skips every committed run.
"""

from __future__ import annotations

import concurrent.futures as cf
import multiprocessing
import os
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from deepmanifold.store import Store, leases
from deepmanifold.store.repair import move_damaged_runs
from deepmanifold.sweeps.execute import (RunOutcome, dataset_and_probes, execute_group_in_worker, group_runs,
                                         init_worker, set_single_thread)
from deepmanifold.sweeps.preflight import preflight
from deepmanifold.sweeps.spec import SpecError, SweepSpec

__all__ = ["RUNNERS", "SweepResult", "run_sweep"]

RUNNERS = ("local", "ray")


@dataclass
class SweepResult:
    """What a sweep did: one :class:`~deepmanifold.sweeps.execute.RunOutcome` per run of the spec.

    Attributes
    ----------
    outcomes : list of RunOutcome
        In the order the runs finished (skipped runs first).
    wall_time : float
        Seconds the sweep took.
    interrupted : bool
        Ctrl-C stopped it before every run was started (the runs in flight finished).
    """

    outcomes: list[RunOutcome] = field(default_factory=list)
    wall_time: float = 0.0
    interrupted: bool = False

    def count(self, status: str) -> int:
        """Number of runs that ended with ``status``."""
        return sum(o.status == status for o in self.outcomes)


def run_sweep(spec: SweepSpec, *, store: str | os.PathLike | None = None, workers: int | None = None,
              on_start: Callable[[int, int], None] | None = None,
              on_outcome: Callable[[RunOutcome], None] | None = None,
              on_note: Callable[[str], None] | None = None,
              runner: str = "local", ray_address: str | None = None, device: str = "auto",
              ensemble: int = 1, force: bool = False) -> SweepResult:
    """Run every run of ``spec`` that is not yet committed in the store.

    Parameters
    ----------
    spec : SweepSpec
    store : path-like, optional
        Overrides the spec's store folder.
    workers : int, optional
        Worker processes (one thread each); overrides the spec. 1 runs in this process.
    on_start : callable(n_todo, n_total), optional
        Called once with the number of runs left to train.
    on_outcome : callable(RunOutcome), optional
        Called as each run finishes (for progress display).
    on_note : callable(str), optional
        Called with what the user should know at once: damaged runs moved aside, the
        first Ctrl-C (runs in flight are finished; a second one abandons them).
    runner : {"local", "ray"}, default "local"
        ``"local"``: a pool of ``workers`` processes on this machine. ``"ray"``: one
        Ray task per run (see :mod:`deepmanifold.sweeps.ray_runner`).
    ray_address : str, optional
        Existing Ray cluster to use; None starts a local one with ``workers`` CPUs.
    device : {"auto", "cpu", "cuda", "cuda:N"}, default "auto"
        Where each run trains (see :func:`deepmanifold.training.train_run`). ``"auto"``:
        CUDA when the worker sees a GPU (with Ray: when the task was given a GPU share),
        else CPU. Recorded in each run's info. Not part of a run's identity: a run
        trained on a GPU is the same run (and is skipped on resume) as on the CPU.
    ensemble : int, default 1
        (Ignored when the spec prunes: a pruned run trains alone.)
        Train up to this many runs that differ only in ``seed`` (default
        initialisation, predictions only) together, vectorised
        (:func:`deepmanifold.training.train_ensemble`):
        fewer, larger steps for small networks. Each run is still committed on its
        own, but a kill loses the whole group in flight. Local runner only.
    force : bool, default False
        Make a store of a non-empty folder that is not one.

    Returns
    -------
    SweepResult

    Raises
    ------
    SpecError
        A bad runner, ensemble size, device or spec (checked before anything trains).
    StoreError
        The store cannot be opened or is not writable (before anything trains).
    KeyboardInterrupt
        On a second Ctrl-C: the runs in flight are abandoned (nothing of them is committed).

    Notes
    -----
    Before training, the spec's probe sets are written to the store again where missing
    or damaged, and damaged runs are moved aside (:mod:`deepmanifold.store.repair`) so
    that they are trained again. Each run is claimed before it trains
    (:mod:`deepmanifold.store.leases`): several sweeps on one store split the work.
    """
    if runner not in RUNNERS:
        raise SpecError(f"unknown runner {runner!r}; allowed: {', '.join(RUNNERS)}")
    if isinstance(ensemble, bool) or not isinstance(ensemble, int) or ensemble < 1:
        raise SpecError(f"ensemble must be an integer >= 1, got {ensemble!r}")
    if ensemble > 1 and runner != "local":
        raise SpecError("ensemble > 1 is for the local runner; the Ray runner trains one run per task")
    start = time.perf_counter()
    note = on_note or (lambda message: None)
    root = str(Path(store if store is not None else spec.store).expanduser())
    if runner == "local":
        from deepmanifold.training import resolve_device

        try:
            resolve_device(device)  # a bad or missing device fails before anything is trained
        except ValueError as exc:
            raise SpecError(str(exc)) from exc
    preflight(spec)  # before the store is created: a bad spec leaves nothing behind
    st = _prepared_store(spec, root, force, note)
    done = set(st.run_ids())
    for run_id in done & leases.leased(root):  # left by a worker killed between its commit and its release
        leases.discard_stale(root, run_id)
    runs = spec.runs
    if spec.prune is not None:  # ASHA favours the first runs at a rung: spread that at random
        from deepmanifold.live.pruning import training_order

        runs = training_order(spec.runs, spec.prune)  # one order on resume too
    todo = [r for r in runs if r.run_id not in done]
    result = SweepResult([RunOutcome(r.run_id, r.label, "skipped", "already in the store")
                          for r in spec.runs if r.run_id in done])
    if on_start:
        on_start(len(todo), len(spec.runs))

    def record(outcome: RunOutcome) -> None:
        result.outcomes.append(outcome)
        if on_outcome:
            on_outcome(outcome)

    groups = group_runs(todo, ensemble if spec.prune is None else 1)  # a pruned run trains alone
    n_workers = max(1, min(workers or spec.workers, len(groups) or 1))
    if runner == "ray":
        from deepmanifold.sweeps.ray_runner import run_with_ray  # Ray is optional

        run_with_ray(todo, root, address=ray_address, num_cpus=workers or spec.workers, on_outcome=record,
                     device=device, prune=spec.prune)
    elif n_workers == 1:
        result.interrupted = _run_here(groups, root, device, record, note, spec.prune)
    else:
        result.interrupted = _run_in_pool(groups, n_workers, root, device, record, note, spec.prune)
    result.wall_time = time.perf_counter() - start
    return result


def _prepared_store(spec: SweepSpec, root: str, force: bool, note: Callable[[str], None]) -> Store:
    """The sweep's store, writable, with the spec's probe sets in place and damaged runs moved aside."""
    st = Store(root, force=force)
    st.check_writable()
    st.clean_staging()
    seen = set()
    for run in spec.runs:  # restore probe files that were deleted or damaged
        dataset, probes = dataset_and_probes(run.config)
        for probe in probes.values():
            if probe.fingerprint not in seen:
                seen.add(probe.fingerprint)
                st.put_probe(fingerprint=probe.fingerprint, name=probe.name, split=probe.split,
                             dataset=dataset.name, indices=probe.indices, labels=probe.labels)
    for run_id, reason, where in move_damaged_runs(st):
        note(f"{reason}; moved aside to {where} and trained again")
    return st


class _Interrupts:
    """Ctrl-C during a sweep: the first calls ``on_first`` and sets ``stopping``; the second raises.

    Installed only in the main thread (where Python delivers signals); elsewhere a no-op.
    """

    def __init__(self, on_first: Callable[[], None]):
        self.on_first, self.stopping, self._previous = on_first, False, None

    def _handle(self, signum, frame) -> None:
        if self.stopping:
            raise KeyboardInterrupt
        self.stopping = True
        self.on_first()

    def __enter__(self) -> "_Interrupts":
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)


def _stopping_note(n_in_flight: int) -> str:
    runs = "1 run" if n_in_flight == 1 else f"{n_in_flight} runs"
    return f"interrupted: finishing {runs} in flight, starting no other; Ctrl-C again to abandon them"


def _run_here(groups, root, device, record, note, prune=None) -> bool:
    """Every group in this process; True if Ctrl-C stopped the sweep early."""
    set_single_thread()
    current: list = []
    with _Interrupts(lambda: note(_stopping_note(len(current)))) as interrupts:
        for group in groups:
            if interrupts.stopping:
                return True
            current[:] = group
            for outcome in execute_group_in_worker(group, root, device, prune):
                record(outcome)
        return interrupts.stopping


def _run_in_pool(groups, n_workers, root, device, record, note, prune=None) -> bool:
    """Every group in a pool of ``n_workers`` processes; True if Ctrl-C stopped the sweep early.

    At most ``n_workers`` groups are handed to the pool at a time, so that every group
    handed over is one a worker is training: Ctrl-C then finishes exactly those.
    """
    ctx = multiprocessing.get_context("spawn")  # fork + torch threads is unsafe
    waiting = list(groups)
    with cf.ProcessPoolExecutor(n_workers, mp_context=ctx, initializer=init_worker,
                                initargs=(os.getpid(),)) as pool:
        running: dict[cf.Future, list] = {}

        def stop() -> None:
            note(_stopping_note(sum(len(group) for group in running.values())))

        try:
            with _Interrupts(stop) as interrupts:
                while waiting or running:
                    while waiting and len(running) < n_workers and not interrupts.stopping:
                        group = waiting.pop(0)
                        running[pool.submit(execute_group_in_worker, group, root, device, prune)] = group
                    if not running:
                        break
                    finished, _ = cf.wait(list(running), timeout=0.5, return_when=cf.FIRST_COMPLETED)
                    for fut in finished:
                        _record_group(fut, running.pop(fut), record)
                return interrupts.stopping
        except KeyboardInterrupt:
            # The second Ctrl-C: the runs in flight die uncommitted (a staged copy is cleaned
            # up, a lease taken over, by the next sweep).
            for process in list(pool._processes.values()):
                process.kill()
            pool.shutdown(wait=False, cancel_futures=True)
            raise


def _record_group(fut: cf.Future, group, record) -> None:
    try:
        outcomes = fut.result()
    except Exception as exc:  # noqa: BLE001 - e.g. a worker killed by the OOM killer
        outcomes = [RunOutcome(run.run_id, run.label, "failed", f"{type(exc).__name__}: {exc}") for run in group]
    for outcome in outcomes:
        record(outcome)
