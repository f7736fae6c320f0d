"""The infinitely wide network's training path, recorded as a run beside real networks.

:func:`record_ntk_run` computes the NTK of a fully connected network (:func:`ntk`) on a
spec's training data, follows gradient flow of the linearised, infinitely wide network on
the squared loss (:func:`linearized_trajectory`) from its mean initial output (0:
ignorance) toward the one-hot targets, turns the outputs on the spec's probe sets into
class probabilities by a softmax at one temperature, and stores them at geometric times as
a run with architecture ``"ntk"``, so that ``report`` and ``analyze`` draw the kernel
limit's path in the same picture as the networks'. docs/method.md §11.1 has the details.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from dataclasses import dataclass

import numpy as np
import torch

from deepmanifold.utils import check_int

__all__ = ["NTKRunResult", "ntk_run_config", "record_ntk_run"]


@dataclass(frozen=True)
class NTKRunResult:
    """What :func:`record_ntk_run` did.

    Attributes
    ----------
    run_id : str
    status : {"complete", "skipped"}
        Skipped: a run of the same configuration was already in the store.
    temperature : float
        The softmax temperature used (NaN when skipped).
    train_accuracy, test_accuracy : list of float
        Probe-set accuracy at each recorded time (empty when skipped).
    """

    run_id: str
    status: str
    temperature: float
    train_accuracy: list
    test_accuracy: list


def ntk_run_config(data: dict, probes: dict, *, depth: int, activation: str, sigma_w2: float, sigma_b2: float,
                   checkpoints: int, horizon: float, temperature: float | None, train_size: int | None,
                   seed: int) -> dict:
    """The stored configuration of a kernel-limit run (what its id is a digest of)."""
    return {"arch": "ntk", "arch_options": {"depth": int(depth), "activation": activation,
                                            "sigma_w2": float(sigma_w2), "sigma_b2": float(sigma_b2)},
            "checkpoints": int(checkpoints), "horizon": float(horizon), "temperature": temperature,
            "train_size": train_size, "seed": int(seed), "data": dict(data), "probes": dict(probes)}


def _inputs(dataset, probe) -> np.ndarray:
    source = dataset.x_train if probe.split == "train" else dataset.x_test
    x = source[torch.as_tensor(np.array(probe.indices))]
    return x.reshape(len(probe), -1).to(torch.float64).numpy()


def record_ntk_run(store, spec, *, depth: int = 3, activation: str = "relu", sigma_w2: float = 2.0,
                   sigma_b2: float = 0.0, checkpoints: int = 50, horizon: float = 1e4,
                   temperature: float | None = None, train_size: int | None = None, seed: int = 0) -> NTKRunResult:
    """Record the kernel limit's training path on a spec's data as a run ``"ntk"``.

    Parameters
    ----------
    store : Store, str or path-like
    spec : SweepSpec, str or path-like
        Its first run's data and probe sets are used.
    depth, activation, sigma_w2, sigma_b2
        The network whose infinite-width NTK is used (:func:`ntk`; ``sigma_w2 = 2`` is the
        He initialisation of ReLU networks).
    checkpoints : int, default 50
        Recorded times: 0, then geometric from ``10⁻² / (η λ_max)`` to
        ``horizon / (η λ_max)`` (``λ_max`` the NTK's largest eigenvalue on the training set,
        ``η = 1/n``: the mean squared loss), so that the fastest mode is learned early and
        slower ones ``horizon`` times later. A checkpoint's "epoch" is ``η λ_max t``.
    horizon : float, default 1e4
    temperature : float, optional
        The softmax temperature turning outputs into probabilities. Default: fitted to the
        test probe's labels at the last time (least cross-entropy: temperature scaling of
        the final model, Guo et al. 2017), then used at every time.
    train_size : int, optional
        A stratified seeded subset of the training data (the NTK costs ``O(n²)`` memory and
        its eigendecomposition ``O(n³)`` time: 1,347 digits in ~1 s, 10,000 images in minutes).
    seed : int, default 0

    Returns
    -------
    NTKRunResult

    Raises
    ------
    ValueError
        Bad parameters (as :func:`ntk`'s), a spec without runs, or a subset missing a class.
    """
    from deepmanifold.data.datasets import stratified_subsample
    from deepmanifold.store import Store
    from deepmanifold.sweeps.execute import dataset_and_probes
    from deepmanifold.sweeps.spec import SweepSpec, load_spec
    from deepmanifold.theory._kernels import ntk
    import scipy.linalg
    from scipy.special import logsumexp

    from deepmanifold.theory._linearized import fit_temperature, linearized_trajectory
    from deepmanifold.training import Recorder

    checkpoints = check_int(checkpoints, "checkpoints", low=2)
    seed = check_int(seed, "seed", low=0)
    if not (isinstance(horizon, (int, float)) and not isinstance(horizon, bool) and 1 < horizon < math.inf):
        raise ValueError(f"horizon must be a number > 1, got {horizon!r}")
    if temperature is not None and not (isinstance(temperature, (int, float)) and 0 < temperature < math.inf):
        raise ValueError(f"temperature must be a positive number, got {temperature!r}")
    if not isinstance(spec, SweepSpec):
        spec = load_spec(os.fspath(spec))
    if not spec.runs:
        raise ValueError("the spec has no runs, hence no data or probe sets")
    template = spec.runs[0].config
    dataset, probes = dataset_and_probes(template)
    used = {name: len(probe) for name, probe in probes.items()}
    config = ntk_run_config(template["data"], {**template["probes"], **used}, depth=depth, activation=activation,
                            sigma_w2=sigma_w2, sigma_b2=sigma_b2, checkpoints=checkpoints, horizon=horizon,
                            temperature=temperature, train_size=train_size, seed=seed)
    digest = hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()[:10]
    run_id = f"ntk-{activation}-d{depth}-{digest}"
    store = store if isinstance(store, Store) else Store(store)
    if store.has_run(run_id):
        return NTKRunResult(run_id, "skipped", math.nan, [], [])

    y_all = dataset.y_train.numpy()
    rows = np.arange(y_all.size) if train_size is None else stratified_subsample(
        y_all, min(check_int(train_size, "train_size"), y_all.size), seed)
    X = dataset.x_train[torch.as_tensor(rows)].reshape(rows.size, -1).to(torch.float64).numpy()
    C = dataset.n_classes
    if np.unique(y_all[rows]).size != C:
        raise ValueError(f"the training subset of {rows.size} samples misses a class: raise train_size")
    targets = np.eye(C)[y_all[rows]] - 1.0 / C  # centred one-hot: the mean output 0 is ignorance
    kernel = dict(depth=depth, activation=activation, sigma_w2=sigma_w2, sigma_b2=sigma_b2)
    K = ntk(X, **kernel)
    # Only the largest eigenvalue, for the time scale; the trajectory decomposes K once in full.
    lam_max = float(scipy.linalg.eigh(K, eigvals_only=True, subset_by_index=[len(K) - 1, len(K) - 1])[0])
    lr = 1.0 / rows.size
    times = np.concatenate([[0.0], np.geomspace(1e-2, horizon, checkpoints - 1) / (lr * lam_max)])
    # Every probe set in one test block: one eigendecomposition of the training NTK serves all.
    names = list(probes)
    inputs = [_inputs(dataset, probes[name]) for name in names]
    traj = linearized_trajectory(K, targets, times, K_test=ntk(np.concatenate(inputs), X, **kernel), lr=lr)
    bounds = np.cumsum([0] + [len(x) for x in inputs])
    outputs = {name: traj.test[:, bounds[i]:bounds[i + 1]] for i, name in enumerate(names)}
    if temperature is None:
        last = "test" if "test" in outputs else next(iter(outputs))
        temperature = fit_temperature(outputs[last][-1], probes[last].labels).temperature
    label = f"ntk / {activation} depth {depth}"
    accuracy: dict[str, list] = {"train": [], "test": []}
    with Recorder(store, probes, {**config, "temperature": float(temperature), "label": label}, run_id=run_id,
                  dataset=dataset, steps_per_epoch=1) as rec:
        for k, t in enumerate(times):
            logp = {name: (f[k] / temperature - logsumexp(f[k] / temperature, axis=1, keepdims=True)).astype(
                np.float32) for name, f in outputs.items()}  # log softmax(f / T), the probabilities' logs
            rec.add(k, {"logp": logp}, epoch=float(lr * lam_max * t))
            for name in accuracy:
                if name in logp:
                    accuracy[name].append(float(np.mean(logp[name].argmax(axis=1) == probes[name].labels)))
    return NTKRunResult(run_id, "complete", float(temperature), accuracy["train"], accuracy["test"])
