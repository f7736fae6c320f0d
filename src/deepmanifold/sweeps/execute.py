"""Training the runs of a sweep and committing each to the store, in whatever process runs them.

The part both runners share (the local process pool of :mod:`.runner` and the Ray tasks
of :mod:`.ray_runner`): one run, or one group of seeds trained as an ensemble, each run
recorded into the store by its own :class:`~deepmanifold.training.Recorder` (so every
run is committed atomically on its own), and the :class:`RunOutcome` that reports it.

A run is claimed with a lease (:mod:`deepmanifold.store.leases`) before it trains and
released after its commit: a run another live process is training is skipped, so
sweeps sharing a store split the work. Pool workers die with the sweep that started
them (:func:`init_worker`), so a killed sweep leaves no process behind.
"""

from __future__ import annotations

import json
import os
import signal
import sys
from dataclasses import dataclass

from deepmanifold.store import Store, leases
from deepmanifold.sweeps.spec import RunSpec

__all__ = ["RunOutcome", "dataset_and_probes", "execute_group", "execute_group_in_worker", "execute_run",
           "group_runs", "init_worker", "set_single_thread", "train_config"]

# Config keys that describe the sweep, not the training run: stored, not passed to train_run.
_SWEEP_ONLY_KEYS = ("probes", "arch_alias")


@dataclass(frozen=True)
class RunOutcome:
    """What happened to one run of a sweep.

    Attributes
    ----------
    run_id, label : str
    status : {"complete", "diverged", "pruned", "skipped", "failed"}
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


def set_single_thread(*, worker: bool = False) -> None:
    """One torch/BLAS thread in this process: tiny models on two cores run 30x slower when threads fight.

    A worker process (``worker=True``: a pool worker or a Ray task) also gets one numba
    thread. numba's OpenMP threads, started by the first parallel kernel a worker runs (the
    reference picture of a forecast-pruned sweep, a layer measurement), keep spinning
    between kernels on the core another worker trains on: a forecast-pruned digits sweep on
    2 workers took 103 s with them and 28 s without. The sweep's own process keeps numba's
    threads for the report it writes afterwards.
    """
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = "1"
    if worker:
        os.environ["NUMBA_NUM_THREADS"] = "1"  # read when numba is first imported
        if "numba" in sys.modules:  # imported already (a reused Ray worker): one thread by default
            import numba

            numba.set_num_threads(1)
    import torch

    torch.set_num_threads(1)


_PARENT: int | None = None  # pid of the sweep that started this worker process


def init_worker(parent_pid: int) -> None:
    """Set up a pool worker: one thread, Ctrl-C left to the sweep, death with the sweep.

    The terminal's Ctrl-C reaches every process of the group: workers ignore it so that
    the sweep decides (finish the runs in flight, or abandon them). On Linux the kernel
    kills the worker when its parent dies (``PR_SET_PDEATHSIG``); everywhere, a worker
    whose parent is gone takes no new run (:func:`execute_group_in_worker`).
    """
    global _PARENT
    _PARENT = parent_pid
    set_single_thread(worker=True)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if sys.platform.startswith("linux"):
        import ctypes

        PR_SET_PDEATHSIG = 1
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent_pid:  # the parent died before the signal was armed
        os._exit(1)


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


def _stored_config(run: RunSpec, probes) -> dict:
    """What the store keeps as the run's config: the spec's, its label, and the probe sizes used."""
    used = {name: len(probe) for name, probe in probes.items()}
    return {**run.config, "label": run.label, "probes": {**run.config["probes"], **used}}


def _skipped(run: RunSpec, why: str = "already in the store") -> RunOutcome:
    return RunOutcome(run.run_id, run.label, "skipped", why)


def _claim(store: Store, runs: list[RunSpec]) -> tuple[list[tuple[RunSpec, leases.Lease]], list[RunOutcome]]:
    """Leases on the runs not yet committed nor trained elsewhere; outcomes for the others."""
    claimed, outcomes = [], []
    for run in runs:
        if store.has_run(run.run_id):
            leases.discard_stale(store.root, run.run_id)  # left by a process killed after its commit
            outcomes.append(_skipped(run))
            continue
        lease = leases.acquire(store.root, run.run_id)
        if not isinstance(lease, leases.Lease):
            outcomes.append(_skipped(run, f"being trained by pid {lease.get('pid', '?')} on "
                                          f"{lease.get('host', '?')}"))
        elif store.has_run(run.run_id):  # committed between the check and the lease
            lease.release()
            outcomes.append(_skipped(run))
        else:
            claimed.append((run, lease))
    return claimed, outcomes


def _outcome(run: RunSpec, result) -> RunOutcome:
    acc = result.metrics.get("test_acc")
    final = float(acc[-1]) if acc is not None and len(acc) else None
    return RunOutcome(run.run_id, run.label, result.status, result.message, final, result.wall_time)


def execute_run(run: RunSpec, store_root: str, device: str = "auto", prune=None) -> RunOutcome:
    """Train one run on ``device`` and commit it to the store (in the calling process)."""
    return execute_group([run], store_root, device, prune)[0]


def execute_group(runs: list[RunSpec], store_root: str, device: str = "auto", prune=None) -> list[RunOutcome]:
    """Train runs that differ only in seed as one ensemble (one run alone); each is committed on its own.

    Runs already committed, or claimed by another live process, are skipped; the others
    are claimed for as long as they train. With ``prune`` (a
    :class:`~deepmanifold.live.pruning.Pruning`; one run per group) a run is stopped at a
    rung where it falls out of the top ``1/η`` and committed as ``"pruned"``.
    """
    store = Store(store_root, create=False)
    claimed, outcomes = _claim(store, runs)
    try:
        with leases.Heartbeat([lease for _, lease in claimed]):
            outcomes += _train(store, [run for run, _ in claimed], device, prune)
    finally:
        for _, lease in claimed:
            lease.release()
    order = {r.run_id: i for i, r in enumerate(runs)}
    return sorted(outcomes, key=lambda o: order[o.run_id])


def _train(store: Store, runs: list[RunSpec], device: str, prune=None) -> list[RunOutcome]:
    from deepmanifold.training import train_ensemble, train_run

    if not runs:
        return []
    dataset, probes = dataset_and_probes(runs[0].config)
    if len(runs) == 1 or prune is not None:
        outcomes = []
        for run in runs:
            cfg, pruner = train_config(run), None
            if prune is not None:
                from deepmanifold.live.pruning import RungPruner
                from deepmanifold.training.plan import plan_run

                pruner = RungPruner(prune, store.root, run.run_id, plan_run(cfg, dataset, "cpu").total_steps)
            result = train_run(cfg, dataset, probes, device=device, store=store, run_id=run.run_id,
                               stored_config=_stored_config(run, probes), pruner=pruner)
            outcomes.append(_outcome(run, result))
        return outcomes
    results = train_ensemble([train_config(r) for r in runs], dataset, probes, device=device, store=store,
                             run_ids=[r.run_id for r in runs], stored_configs=[_stored_config(r, probes) for r in runs])
    return [_outcome(r, res) for r, res in zip(runs, results)]


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


def execute_group_in_worker(runs: list[RunSpec], store_root: str, device: str = "auto",
                            prune=None) -> list[RunOutcome]:
    """:func:`execute_group`, every error turned into ``"failed"`` outcomes: one broken run must
    not stop the sweep. A pool worker whose sweep is gone trains nothing more."""
    if _PARENT is not None and os.getppid() != _PARENT:
        os._exit(1)
    try:
        return execute_group(runs, store_root, device, prune)
    except Exception as exc:  # noqa: BLE001 - reported as the runs' outcome
        return [RunOutcome(r.run_id, r.label, "failed", f"{type(exc).__name__}: {exc}") for r in runs]
