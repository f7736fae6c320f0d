"""A Recursive Feature Machine's iterations recorded as a run, beside a sweep's networks.

:func:`record_rfm_run` fits an :class:`~deepmanifold.features.RFMClassifier` on the training
split of a sweep spec's data, one AGOP update at a time, and records the predictions of
every iteration on the spec's probe sets through the :class:`~deepmanifold.training.Recorder`
(step ``t`` = the predictor with ``t`` AGOP updates, ``M_0 = I`` at step 0). The probe sets
are the sweep's own (same data, sizes and seed, hence the same fingerprints), so the run
(architecture ``"rfm"``) sits in the same store as the networks, and ``deepmanifold report``
and ``analyze`` treat its path like theirs: a feature-learning kernel machine's trajectory
in the same picture. Its probabilities are the estimator's ``predict_proba`` (a softmax of
the kernel scores at a temperature fitted by leave-one-out likelihood).

``deepmanifold rfm SPEC`` is the command-line form.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from deepmanifold.features.rfm import RFMClassifier
from deepmanifold.utils import check_int

__all__ = ["RFMRunResult", "record_rfm_run", "rfm_run_config"]


@dataclass(frozen=True)
class RFMRunResult:
    """What :func:`record_rfm_run` did.

    Attributes
    ----------
    run_id : str
        The run's id in the store.
    status : {"complete", "skipped"}
        Skipped: a run of the same configuration was already in the store.
    train_accuracy, test_accuracy : list of float
        Probe-set accuracy of each recorded iteration (empty when skipped).
    """

    run_id: str
    status: str
    train_accuracy: list
    test_accuracy: list


def rfm_run_config(data: dict, probes: dict, *, kernel: str = "laplace", bandwidth: float = 10.0,
                   reg: float = 1e-3, n_iter: int = 5, power: float = 1.0, diag: bool = False,
                   centering: bool = False, train_size: int | None = None, seed: int = 0) -> dict:
    """The stored configuration of an RFM run (what its id is a digest of)."""
    return {"arch": "rfm", "kernel": kernel, "bandwidth": float(bandwidth), "reg": float(reg),
            "n_iter": int(n_iter), "power": float(power), "diag": bool(diag), "centering": bool(centering),
            "train_size": train_size, "seed": int(seed), "data": dict(data), "probes": dict(probes)}


def _run_id(config: dict) -> str:
    digest = hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()[:10]
    return f"rfm-{config['kernel']}-s{config['seed']}-{digest}"


def _training_rows(y: np.ndarray, train_size: int | None, seed: int) -> np.ndarray:
    """All rows, or a stratified seeded subset of ``train_size`` of them (sorted)."""
    if train_size is None or train_size >= y.size:
        return np.arange(y.size)
    n_classes = np.unique(y).size
    if train_size < n_classes:
        raise ValueError(f"train_size {train_size} is below the {n_classes} classes: raise train_size")
    from sklearn.model_selection import train_test_split

    keep, _ = train_test_split(np.arange(y.size), train_size=train_size, stratify=y, random_state=seed)
    return np.sort(keep)


def record_rfm_run(store, spec, *, kernel: str = "laplace", bandwidth: float = 10.0, reg: float = 1e-3,
                   n_iter: int = 5, power: float = 1.0, diag: bool = False, centering: bool = False,
                   train_size: int | None = None, seed: int = 0,
                   on_iteration: Callable[[int, float, float], None] | None = None) -> RFMRunResult:
    """Fit an RFM classifier on a spec's data and record each iteration's predictions as a run.

    Parameters
    ----------
    store : Store, str or path-like
        Where the run goes (created if needed, as by ``deepmanifold run``).
    spec : SweepSpec, str or path-like
        A sweep spec (or its file): its data and probe sets are used (those of its first run).
    kernel, bandwidth, reg, power, diag, centering
        As :class:`~deepmanifold.features.RFMClassifier`.
    n_iter : int, default 5
        AGOP updates; ``n_iter + 1`` checkpoints are recorded (step 0: ``M = I``).
    train_size : int, optional
        Fit on a stratified subset of this many training samples (kernel solves cost
        ``O(n^3)`` time and ``O(n^2)`` memory); all of them by default.
    seed : int, default 0
        Seed of the subset and of the estimator's random draws.
    on_iteration : callable(t, train_accuracy, test_accuracy), optional
        Called after each recorded iteration (progress display).

    Returns
    -------
    RFMRunResult

    Raises
    ------
    ValueError
        Bad parameters (as the estimator's), a spec without runs, or a training subset
        missing a class.
    KernelRidgeError
        A kernel matrix that cannot be factorised at ``reg``: raise it. Nothing is stored.

    Notes
    -----
    The same configuration recorded twice is skipped the second time (its id is a digest
    of the configuration). A run killed before its last iteration leaves nothing in the
    store. Each iteration refits with the previous ``M`` (``warm_start``) and one AGOP
    update, so ``n_iter`` iterations cost ``2 n_iter + 1`` kernel solves.
    """
    from deepmanifold.store import Store
    from deepmanifold.sweeps.execute import dataset_and_probes
    from deepmanifold.sweeps.spec import SweepSpec, load_spec
    from deepmanifold.training import Recorder

    n_iter = check_int(n_iter, "n_iter", low=0)
    seed = check_int(seed, "seed", low=0)
    if train_size is not None:
        train_size = check_int(train_size, "train_size")
    if not isinstance(spec, SweepSpec):
        spec = load_spec(os.fspath(spec))
    if not spec.runs:
        raise ValueError("the spec has no runs, hence no data or probe sets")
    template = spec.runs[0].config
    dataset, probes = dataset_and_probes(template)
    used = {name: len(probe) for name, probe in probes.items()}
    config = rfm_run_config(template["data"], {**template["probes"], **used}, kernel=kernel, bandwidth=bandwidth,
                            reg=reg, n_iter=n_iter, power=power, diag=diag, centering=centering,
                            train_size=train_size, seed=seed)
    run_id = _run_id(config)
    store = store if isinstance(store, Store) else Store(store)
    if store.has_run(run_id):
        return RFMRunResult(run_id, "skipped", [], [])

    y_all = dataset.y_train.numpy()
    rows = _training_rows(y_all, train_size, seed)
    X = dataset.x_train[torch.as_tensor(rows)].reshape(rows.size, -1).to(torch.float64).numpy()
    y = y_all[rows]
    if np.unique(y).size != dataset.n_classes:
        raise ValueError(f"the training subset of {rows.size} samples holds {np.unique(y).size} of the "
                         f"{dataset.n_classes} classes: raise train_size")
    estimator = RFMClassifier(kernel=kernel, bandwidth=bandwidth, reg=reg, n_iter=0, power=power, diag=diag,
                              centering=centering, random_state=seed)
    label = f"rfm / {kernel}{' diag' if diag else ''} / seed {seed}"
    inputs = {}
    for name, probe in probes.items():
        source = dataset.x_train if probe.split == "train" else dataset.x_test
        inputs[name] = source[torch.as_tensor(np.array(probe.indices))].reshape(len(probe), -1).to(torch.float64).numpy()
    accuracy: dict[str, list] = {name: [] for name in ("train", "test")}
    with Recorder(store, probes, {**config, "label": label}, run_id=run_id, dataset=dataset,
                  steps_per_epoch=1) as rec:
        for t in range(n_iter + 1):
            estimator.fit(X, y)
            logp = {name: estimator.predict_log_proba(x).astype(np.float32) for name, x in inputs.items()}
            rec.add(t, {"logp": logp}, epoch=float(t))
            for name in accuracy:
                if name in logp:
                    accuracy[name].append(float(np.mean(logp[name].argmax(axis=1) == probes[name].labels)))
            if on_iteration is not None:
                on_iteration(t, *(accuracy[name][-1] if accuracy[name] else float("nan") for name in accuracy))
            estimator.set_params(n_iter=1, warm_start=True)
    return RFMRunResult(run_id, "complete", accuracy["train"], accuracy["test"])
