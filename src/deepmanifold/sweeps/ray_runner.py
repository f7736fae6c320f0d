"""Run a sweep's runs as Ray tasks: on a local Ray instance or an existing cluster.

Each run is one task with ``num_cpus=1`` (one torch thread, as in the process pool);
when the cluster has GPUs each task also asks for ``gpu_fraction`` of one, so that
several small networks share a GPU. Every task commits its run to the store itself,
atomically, exactly as the local runner does: the store must be on a file system
that every Ray worker sees (a shared or local disk for a single-machine cluster).
"""

from __future__ import annotations

from typing import Callable, Sequence

from deepmanifold.sweeps.execute import RunOutcome, execute_group_in_worker, set_single_thread
from deepmanifold.sweeps.spec import RunSpec

__all__ = ["run_with_ray"]


def _task(run: RunSpec, store_root: str, device: str = "auto", prune=None):
    import ray

    set_single_thread(worker=True)  # one torch/BLAS/numba thread per task, as in the process pool
    if device == "auto":  # the GPU share Ray gave this task (Ray sets CUDA_VISIBLE_DEVICES)
        device = "cuda" if ray.get_gpu_ids() else "cpu"
    return execute_group_in_worker([run], store_root, device, prune)[0]


def run_with_ray(runs: Sequence[RunSpec], store_root: str, *, address: str | None = None,
                 num_cpus: int | None = None, gpu_fraction: float = 0.25,
                 on_outcome: Callable | None = None, device: str = "auto", prune=None) -> list:
    """Execute ``runs`` as Ray tasks and return their :class:`RunOutcome` in completion order.

    Parameters
    ----------
    runs : sequence of RunSpec
    store_root : str
        Store folder, visible to every worker.
    address : str, optional
        Address of an existing Ray cluster (``"auto"``, ``"ray://host:10001"``, ...).
        None starts a local Ray instance for this call and stops it afterwards.
    num_cpus : int, optional
        CPUs of the local instance (ignored with ``address``); default: all cores.
    gpu_fraction : float, default 0.25
        GPU share per run when the cluster has GPUs.
    on_outcome : callable(RunOutcome), optional
        Called as each run finishes.
    device : {"auto", "cpu", "cuda"}, default "auto"
        ``"auto"``/``"cuda"``: ask for ``gpu_fraction`` of a GPU per task when the
        cluster has GPUs, and train there; ``"cpu"``: ask for none, train on CPUs.
    prune : Pruning, optional
        Stop runs at rungs (:mod:`deepmanifold.live.pruning`); the tasks share the rung
        ledger through the store.

    Raises
    ------
    RuntimeError
        If Ray is not installed (``pip install 'deepmanifold[ray]'``).
    """
    try:
        import ray
    except ImportError as exc:  # pragma: no cover - ray is in the test extra
        raise RuntimeError("the Ray runner needs ray: pip install 'deepmanifold[ray]'") from exc
    started_here = not ray.is_initialized()
    if started_here:
        kwargs = dict(include_dashboard=False, log_to_driver=False, configure_logging=False)
        if address is None:
            ray.init(num_cpus=num_cpus, **kwargs)
        else:
            ray.init(address=address, **kwargs)
    try:
        has_gpu = ray.cluster_resources().get("GPU", 0) > 0 and device != "cpu"
        if device.startswith("cuda") and not has_gpu:
            raise ValueError(f"device {device!r} requested, but the Ray cluster has no GPU")
        remote = ray.remote(num_cpus=1, num_gpus=gpu_fraction if has_gpu else 0, max_retries=1)(_task)
        pending = {remote.remote(run, store_root, "cuda" if device.startswith("cuda") else device, prune): run
                   for run in runs}
        outcomes = []
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            for ref in done:
                run = pending.pop(ref)
                try:
                    outcome = ray.get(ref)
                except Exception as exc:  # noqa: BLE001 - a lost worker must not stop the sweep
                    outcome = RunOutcome(run.run_id, run.label, "failed", f"{type(exc).__name__}: {exc}")
                outcomes.append(outcome)
                if on_outcome:
                    on_outcome(outcome)
        return outcomes
    finally:
        if started_here:
            ray.shutdown()
