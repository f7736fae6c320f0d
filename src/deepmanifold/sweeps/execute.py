"""Training the runs of a sweep and committing each to the store, in whatever process runs them.

The part both runners share (the local process pool of :mod:`.runner` and the Ray tasks
of :mod:`.ray_runner`): one run, or one group of seeds trained as an ensemble, each run
recorded into the store by its own :class:`~deepmanifold.training.Recorder` (so every
run is committed atomically on its own), and the :class:`RunOutcome` that reports it.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass

from deepmanifold.store import Store
from deepmanifold.sweeps.spec import RunSpec

__all__ = ["RunOutcome", "dataset_and_probes", "execute_group", "execute_group_in_worker", "execute_run",
           "group_runs", "set_single_thread", "train_config"]

# Config keys that describe the sweep, not the training run: stored, not passed to train_run.
_SWEEP_ONLY_KEYS = ("probes", "arch_alias")


@dataclass(frozen=True)
class RunOutcome:
    """What happened to one run of a sweep.

    Attributes
    ----------
    run_id, label : str
    status : {"complete", "diverged", "skipped", "failed"}
        ``"skipped"``: already in the store; ``"failed"``: an error, with its message.
    message : str
    final_test_acc : float or None
    wall_time : float
        Seconds spent training it.
    """

    run_id: str
    label: str
    status: str
    message: str = ""
    final_test_acc: float | None = None
    wall_time: float = 0.0


def set_single_thread() -> None:
    """One torch/BLAS thread in this process: tiny models on two cores run 30x slower when threads fight."""
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = "1"
    import torch

    torch.set_num_threads(1)


_DATA_CACHE: dict[str, tuple] = {}


def dataset_and_probes(config: dict):
    """The dataset and probe sets a run config names, loaded once per process."""
    from deepmanifold.data import load_dataset, make_probes

    key = json.dumps([config["data"], config["probes"]], sort_keys=True)
    if key not in _DATA_CACHE:
        data_opts = dict(config["data"])
        dataset = load_dataset(data_opts.pop("name"), **data_opts)
        p = config["probes"]
        probes = make_probes(dataset, n_train=p["train"], n_test=p["test"], seed=p["seed"])
        _DATA_CACHE[key] = (dataset, probes)
    return _DATA_CACHE[key]


def train_config(run: RunSpec) -> dict:
    """The run's config as :func:`~deepmanifold.training.train_run` takes it (sweep-only keys left out)."""
    return {k: v for k, v in run.config.items() if k not in _SWEEP_ONLY_KEYS}


def _stored_config(run: RunSpec) -> dict:
    return {**run.config, "label": run.label}


def _skipped(run: RunSpec) -> RunOutcome:
    return RunOutcome(run.run_id, run.label, "skipped", "already in the store")


def _outcome(run: RunSpec, result) -> RunOutcome:
    acc = result.metrics.get("test_acc")
    final = float(acc[-1]) if acc is not None and len(acc) else None
    return RunOutcome(run.run_id, run.label, result.status, result.message, final, result.wall_time)


def execute_run(run: RunSpec, store_root: str, device: str = "auto") -> RunOutcome:
    """Train one run on ``device`` and commit it to the store (in the calling process)."""
    from deepmanifold.training import train_run

    store = Store(store_root)
    if store.has_run(run.run_id):
        return _skipped(run)
    dataset, probes = dataset_and_probes(run.config)
    result = train_run(train_config(run), dataset, probes, device=device, store=store, run_id=run.run_id,
                       stored_config=_stored_config(run))
    return _outcome(run, result)


def execute_group(runs: list[RunSpec], store_root: str, device: str = "auto") -> list[RunOutcome]:
    """Train runs that differ only in seed as one ensemble; each is committed on its own.

    One run (or none left to train) goes through :func:`execute_run`.
    """
    from deepmanifold.training import train_ensemble

    store = Store(store_root)
    done = {r.run_id for r in runs if store.has_run(r.run_id)}
    outcomes = [_skipped(r) for r in runs if r.run_id in done]
    todo = [r for r in runs if r.run_id not in done]
    if len(todo) <= 1:
        return outcomes + [execute_run(r, store_root, device) for r in todo]
    dataset, probes = dataset_and_probes(todo[0].config)
    results = train_ensemble([train_config(r) for r in todo], dataset, probes, device=device, store=store,
                             run_ids=[r.run_id for r in todo], stored_configs=[_stored_config(r) for r in todo])
    return outcomes + [_outcome(r, res) for r, res in zip(todo, results)]


def group_runs(runs: list[RunSpec], size: int) -> list[list[RunSpec]]:
    """Runs in groups of at most ``size`` that may train as one ensemble (equal configs
    but for the seed, default initialisation, predictions only); every other run alone.
    Order is kept within and between groups as far as the grouping allows."""
    from deepmanifold.training import ensemble_key

    if size <= 1:
        return [[r] for r in runs]
    groups: dict[str, list[RunSpec]] = {}
    out: list[list[RunSpec]] = []
    for r in runs:
        if r.config.get("init", "default") != "default" or r.config.get("measurements"):
            out.append([r])
            continue
        key = ensemble_key({k: v for k, v in r.config.items() if k != "label"})
        group = groups.get(key)
        if group is None or len(group) >= size:
            group = groups[key] = []
            out.append(group)
        group.append(r)
    return out


def execute_group_in_worker(runs: list[RunSpec], store_root: str, device: str = "auto") -> list[RunOutcome]:
    """:func:`execute_group` (:func:`execute_run` for one run), every error turned into ``"failed"``
    outcomes: one broken run must not stop the sweep."""
    try:
        if len(runs) == 1:
            return [execute_run(runs[0], store_root, device)]
        return execute_group(runs, store_root, device)
    except Exception as exc:  # noqa: BLE001 - reported as the runs' outcome
        return [RunOutcome(r.run_id, r.label, "failed", f"{type(exc).__name__}: {exc}") for r in runs]
