"""Execute a sweep: every run of a spec, in parallel worker processes, resumable.

Each worker process uses one torch/BLAS thread (tiny models on two cores run
30x slower when threads fight) and commits each finished run to the store
atomically; a sweep that is interrupted or killed loses at most the runs in
flight, and running it again skips every committed run.
"""

from __future__ import annotations

import concurrent.futures as cf
import math
import multiprocessing
import os
import time
from dataclasses import dataclass, field
from typing import Callable

from deepmanifold.store import Store
from deepmanifold.sweeps.spec import RunSpec, SpecError, SweepSpec, _Checker

__all__ = ["RUNNERS", "RunOutcome", "SweepResult", "execute_group", "execute_run", "group_runs", "preflight",
           "run_sweep"]

RUNNERS = ("local", "ray")
# Config keys that describe the sweep, not the training run: stored, not passed to train_run.
_SWEEP_ONLY_KEYS = ("probes", "arch_alias")


@dataclass(frozen=True)
class RunOutcome:
    """What happened to one run of a sweep."""

    run_id: str
    label: str
    status: str  # "complete" | "diverged" | "skipped" | "failed"
    message: str = ""
    final_test_acc: float | None = None
    wall_time: float = 0.0


@dataclass
class SweepResult:
    outcomes: list[RunOutcome] = field(default_factory=list)
    wall_time: float = 0.0

    def count(self, status: str) -> int:
        return sum(o.status == status for o in self.outcomes)


def _set_single_thread() -> None:
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = "1"
    import torch

    torch.set_num_threads(1)


_DATA_CACHE: dict[str, tuple] = {}


def _dataset_and_probes(config: dict):
    """Load (once per process) the dataset and probe sets a run config names."""
    import json

    from deepmanifold.data import load_dataset, make_probes

    key = json.dumps([config["data"], config["probes"]], sort_keys=True)
    if key not in _DATA_CACHE:
        data_opts = dict(config["data"])
        dataset = load_dataset(data_opts.pop("name"), **data_opts)
        p = config["probes"]
        probes = make_probes(dataset, n_train=p["train"], n_test=p["test"], seed=p["seed"])
        _DATA_CACHE[key] = (dataset, probes)
    return _DATA_CACHE[key]


def preflight(spec: SweepSpec) -> None:
    """Check what only the data and the model zoo can tell before training anything.

    Loads each dataset the spec names and builds each distinct (architecture,
    knobs) model once, so that an unknown knob fails in seconds, not after the
    runs before it trained.

    Raises
    ------
    SpecError
    """
    from deepmanifold.training import build_model

    text = ""
    try:
        with open(spec.source) as fh:
            text = fh.read()
    except OSError:
        pass
    checker = _Checker(spec.source, text)  # errors name the spec line, like the parser's
    seen = set()
    for run in spec.runs:
        try:
            dataset, _ = _dataset_and_probes(run.config)
        except (ValueError, OSError) as exc:
            checker.fail("data", "", f"[data] {exc}")
        key = (run.config["arch"], repr(sorted(run.config["arch_options"].items())), dataset.input_shape)
        if key in seen:
            continue
        seen.add(key)
        try:
            build_model(run.config["arch"], dataset.input_shape, dataset.n_classes, **run.config["arch_options"])
        except (ValueError, TypeError) as exc:
            section = f"arch.{run.config.get('arch_alias', run.config['arch'])}"
            checker.fail(section, "", f"[{section}] {exc}")


def execute_run(run: RunSpec, store_root: str, device: str = "auto") -> RunOutcome:
    """Train one run on ``device`` and commit it to the store (in the calling process)."""
    from deepmanifold.training import train_run

    store = Store(store_root)
    if store.has_run(run.run_id):
        return RunOutcome(run.run_id, run.label, "skipped", "already in the store")
    dataset, probes = _prepared_data(store, run.config)
    result = train_run(_train_config(run), dataset, probes, device=device)
    return _commit(store, run, result, probes)


def _prepared_data(store: Store, config: dict):
    """The run's dataset and probe sets, the probes recorded in the store."""
    dataset, probes = _dataset_and_probes(config)
    for probe in probes.values():
        store.put_probe(fingerprint=probe.fingerprint, name=probe.name, split=probe.split,
                        dataset=dataset.name, indices=probe.indices, labels=probe.labels)
    return dataset, probes


def _train_config(run: RunSpec) -> dict:
    return {k: v for k, v in run.config.items() if k not in _SWEEP_ONLY_KEYS}


def execute_group(runs: list[RunSpec], store_root: str, device: str = "auto") -> list[RunOutcome]:
    """Train runs that differ only in seed as one ensemble, then commit each one atomically.

    One run (or none left to train) goes through :func:`execute_run`.
    """
    from deepmanifold.training import train_ensemble

    store = Store(store_root)
    done = {r.run_id for r in runs if store.has_run(r.run_id)}
    outcomes = [RunOutcome(r.run_id, r.label, "skipped", "already in the store") for r in runs if r.run_id in done]
    todo = [r for r in runs if r.run_id not in done]
    if len(todo) <= 1:
        return outcomes + [execute_run(r, store_root, device) for r in todo]
    dataset, probes = _prepared_data(store, todo[0].config)
    results = train_ensemble([_train_config(r) for r in todo], dataset, probes, device=device)
    return outcomes + [_commit(store, r, res, probes) for r, res in zip(todo, results)]


def group_runs(runs: list[RunSpec], size: int) -> list[list[RunSpec]]:
    """Runs in groups of at most ``size`` that may train as one ensemble (equal configs
    but for the seed, default initialisation); every other run alone. Order is kept
    within and between groups as far as the grouping allows."""
    from deepmanifold.training import ensemble_key

    if size <= 1:
        return [[r] for r in runs]
    groups: dict[str, list[RunSpec]] = {}
    out: list[list[RunSpec]] = []
    for r in runs:
        if r.config.get("init", "default") != "default":
            out.append([r])
            continue
        key = ensemble_key({k: v for k, v in r.config.items() if k != "label"})
        group = groups.get(key)
        if group is None or len(group) >= size:
            group = groups[key] = []
            out.append(group)
        group.append(r)
    return out


def _commit(store: Store, run: RunSpec, result, probes) -> RunOutcome:
    """Write one trained run to the store (atomically) and say what happened."""
    metrics = {"step": result.steps, "epoch": result.epochs, **result.metrics}
    store.write_run(
        run.run_id,
        config={**run.config, "label": run.label},
        status=result.status,
        message=result.message,
        metrics=metrics,
        logp=result.logp,
        probes={name: p.fingerprint for name, p in probes.items()},
        info={"wall_time": result.wall_time, "n_parameters": result.n_parameters,
              "init": _json_safe(getattr(result, "init_info", {})), "device": result.device},
    )
    acc = result.metrics.get("test_acc")
    final = float(acc[-1]) if acc is not None and len(acc) else None
    return RunOutcome(run.run_id, run.label, result.status, result.message, final, result.wall_time)


def _json_safe(value):
    """NaN/inf -> None (strict JSON), recursively."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return value


def _execute_in_worker(run: RunSpec, store_root: str, device: str = "auto") -> RunOutcome:
    try:
        return execute_run(run, store_root, device)
    except Exception as exc:  # noqa: BLE001 - one broken run must not stop the sweep
        return RunOutcome(run.run_id, run.label, "failed", f"{type(exc).__name__}: {exc}")


def _execute_group_in_worker(runs: list[RunSpec], store_root: str, device: str = "auto") -> list[RunOutcome]:
    if len(runs) == 1:
        return [_execute_in_worker(runs[0], store_root, device)]
    try:
        return execute_group(runs, store_root, device)
    except Exception as exc:  # noqa: BLE001 - one broken group must not stop the sweep
        return [RunOutcome(r.run_id, r.label, "failed", f"{type(exc).__name__}: {exc}") for r in runs]


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
        initialisation) together, vectorised (:func:`deepmanifold.training.train_ensemble`):
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
        from deepmanifold.sweeps.ray_runner import run_with_ray

        run_with_ray(todo, root, address=ray_address, num_cpus=workers or spec.workers, on_outcome=record,
                     device=device)
    elif n_workers == 1:
        _set_single_thread()
        for group in group_runs(todo, ensemble):
            for outcome in _execute_group_in_worker(group, root, device):
                record(outcome)
    else:
        ctx = multiprocessing.get_context("spawn")  # fork + torch threads is unsafe
        with cf.ProcessPoolExecutor(n_workers, mp_context=ctx, initializer=_set_single_thread) as pool:
            futures = {pool.submit(_execute_group_in_worker, group, root, device): group
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
