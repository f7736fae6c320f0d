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
import time
from dataclasses import dataclass, field
from typing import Callable

from deepmanifold.store import Store
from deepmanifold.sweeps.execute import RunOutcome, execute_group_in_worker, group_runs, set_single_thread
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
    """

    outcomes: list[RunOutcome] = field(default_factory=list)
    wall_time: float = 0.0

    def count(self, status: str) -> int:
        """Number of runs that ended with ``status``."""
        return sum(o.status == status for o in self.outcomes)


def run_sweep(spec: SweepSpec, *, store: str | os.PathLike | None = None, workers: int | None = None,
              on_start: Callable[[int, int], None] | None = None,
              on_outcome: Callable[[RunOutcome], None] | None = None,
              runner: str = "local", ray_address: str | None = None, device: str = "auto",
              ensemble: int = 1) -> SweepResult:
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
        Train up to this many runs that differ only in ``seed`` (default
        initialisation, predictions only) together, vectorised
        (:func:`deepmanifold.training.train_ensemble`):
        fewer, larger steps for small networks. Each run is still committed on its
        own, but a kill loses the whole group in flight. Local runner only.

    Returns
    -------
    SweepResult
    """
    if runner not in RUNNERS:
        raise SpecError(f"unknown runner {runner!r}; allowed: {', '.join(RUNNERS)}")
    if isinstance(ensemble, bool) or not isinstance(ensemble, int) or ensemble < 1:
        raise SpecError(f"ensemble must be an integer >= 1, got {ensemble!r}")
    if ensemble > 1 and runner != "local":
        raise SpecError("ensemble > 1 is for the local runner; the Ray runner trains one run per task")
    start = time.perf_counter()
    root = str(store if store is not None else spec.store)
    if runner == "local":
        from deepmanifold.training import resolve_device

        try:
            resolve_device(device)  # a bad or missing device fails before anything is trained
        except ValueError as exc:
            raise SpecError(str(exc)) from exc
    preflight(spec)  # before the store is created: a bad spec leaves nothing behind
    st = Store(root)
    st.clean_staging()
    done = set(st.run_ids())
    todo = [r for r in spec.runs if r.run_id not in done]
    result = SweepResult([RunOutcome(r.run_id, r.label, "skipped", "already in the store")
                          for r in spec.runs if r.run_id in done])
    if on_start:
        on_start(len(todo), len(spec.runs))
    n_workers = max(1, min(workers or spec.workers, len(todo) or 1))

    def record(outcome: RunOutcome) -> None:
        result.outcomes.append(outcome)
        if on_outcome:
            on_outcome(outcome)

    if runner == "ray":
        from deepmanifold.sweeps.ray_runner import run_with_ray  # Ray is optional

        run_with_ray(todo, root, address=ray_address, num_cpus=workers or spec.workers, on_outcome=record,
                     device=device)
    elif n_workers == 1:
        set_single_thread()
        for group in group_runs(todo, ensemble):
            for outcome in execute_group_in_worker(group, root, device):
                record(outcome)
    else:
        ctx = multiprocessing.get_context("spawn")  # fork + torch threads is unsafe
        with cf.ProcessPoolExecutor(n_workers, mp_context=ctx, initializer=set_single_thread) as pool:
            futures = {pool.submit(execute_group_in_worker, group, root, device): group
                       for group in group_runs(todo, ensemble)}
            try:
                for fut in cf.as_completed(futures):
                    group = futures[fut]
                    try:
                        for outcome in fut.result():
                            record(outcome)
                    except Exception as exc:  # noqa: BLE001 - e.g. a worker killed by the OOM killer
                        for run in group:
                            record(RunOutcome(run.run_id, run.label, "failed", f"{type(exc).__name__}: {exc}"))
            except KeyboardInterrupt:
                pool.shutdown(wait=False, cancel_futures=True)
                raise
    result.wall_time = time.perf_counter() - start
    return result
