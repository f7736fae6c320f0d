"""One training run: the loop of updates, with the recorder at the planned checkpoints."""

from __future__ import annotations

import os
import time
from typing import Any, Callable, Mapping

import torch
from torch import nn

from ..data import Dataset, ProbeSet
from ..models import count_parameters
from ..store import Store
from .augment import augment_batch
from .loss import TrainingLoss
from .measurements import Predictions, get_measurement
from .plan import (TrainingPlan, augment_seed, completion_message, data_info, initial_model, init_seed,
                   loss_diverged_message, make_optimizer, plan_run, set_lr, shuffle_seed)
from .recorder import Recorder, RunResult

__all__ = ["train_run"]


def _accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """Eval-mode accuracy of ``model`` on ``(x, y)``; NaN if its predictions are not finite."""
    if x.shape[0] == 0:
        return float("nan")
    model.eval()
    lp = Predictions().log_probs(model, x)
    if not torch.isfinite(lp).all():
        return float("nan")
    return float((lp.argmax(dim=1) == y).double().mean())


def _corner_init(
    cfg: dict[str, Any], model: nn.Module, dataset: Dataset, loss_fn: nn.Module
) -> dict[str, Any]:
    """Pre-train ``model`` in place to a corner of prediction space; return ``init_info``.

    ``"shuffled_labels"``: the whole training set, each sample given the label of
    another (``y_train[randperm(N)]``). ``"tiny_subset"``: ``init_subset`` training
    samples drawn without replacement, true labels. Both: ``init_epochs`` epochs of
    ``n // b`` updates with ``b = min(batch_size, n)`` (reshuffled each epoch,
    incomplete batch dropped), the configured optimiser at the constant ``lr``, no
    augmentation; all randomness from one generator seeded by :func:`~deepmanifold.training.plan.init_seed`
    (permutation or subset first, then the minibatch orders). Stops at the first
    non-finite minibatch loss (``status == "diverged"``).
    """
    kind = cfg["init"]
    gen = torch.Generator().manual_seed(init_seed(cfg["seed"]))
    dev = next(model.parameters()).device
    x_all, y_all = dataset.x_train.to(dev), dataset.y_train.to(dev)
    n_all = x_all.shape[0]
    info: dict[str, Any] = {"init": kind}
    if kind == "shuffled_labels":
        x, y = x_all, y_all[torch.randperm(n_all, generator=gen).to(dev)]
    else:
        k = int(cfg["init_subset"])
        if k > n_all:
            raise ValueError(
                f"config['init_subset'] ({k}) exceeds the {n_all} training samples"
            )
        subset = torch.randperm(n_all, generator=gen)[:k].sort().values
        x, y = x_all[subset.to(dev)], y_all[subset.to(dev)]
        info["subset"] = subset.tolist()
    n = x.shape[0]
    bs = min(int(cfg["batch_size"]), n)
    spe = n // bs
    epochs = int(cfg["init_epochs"])
    optimizer = make_optimizer(cfg, model.parameters())
    lr = float(cfg["lr"])
    status, step = "complete", 0
    model.train()
    for _ in range(epochs):
        perm = torch.randperm(n, generator=gen).to(dev)
        for b in range(spe):
            idx = perm[b * bs : (b + 1) * bs]
            set_lr(optimizer, lr)
            loss = loss_fn(model(x[idx]), y[idx])
            if not torch.isfinite(loss):
                status = "diverged"
                break
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            step += 1
        if status != "complete":
            break
    info.update(
        epochs=epochs,
        steps=step,
        n_samples=n,
        batch_size=bs,
        lr=lr,
        status=status,
        fit_acc=_accuracy(model, x, y),
        train_acc=_accuracy(model, x_all, y_all),
    )
    model.train()
    return info


def train_run(
    config: Mapping[str, Any],
    dataset: Dataset,
    probes: Mapping[str, ProbeSet],
    *,
    device: str | torch.device | None = "cpu",
    store: Store | str | os.PathLike | None = None,
    run_id: str | None = None,
    stored_config: Mapping[str, Any] | None = None,
    callback: Callable[[int, int, int], None] | None = None,
    pruner: Callable[[Recorder, int], str | None] | None = None,
) -> RunResult:
    """Train one model and record its probe-set predictions at checkpoints.

    Parameters
    ----------
    config : dict
        Fully resolved run configuration with keys:

        - ``arch`` (str) and ``arch_options`` (dict of knobs) for
          :func:`deepmanifold.models.build_model`;
        - ``optimizer``, one of :data:`~deepmanifold.training.OPTIMIZERS`: ``"sgd"`` (``torch.optim.SGD`` with
          ``momentum``, a number in [0, 1)), ``"nesterov"`` (``torch.optim.SGD`` with
          ``nesterov=True``; ``momentum`` in (0, 1)), ``"adam"`` (``torch.optim.Adam``)
          or ``"adamw"`` (``torch.optim.AdamW``); ``momentum`` is required for
          ``"sgd"``/``"nesterov"`` and ignored (may be absent) for the Adam variants;
        - ``lr`` (> 0), ``weight_decay`` (>= 0): L2 added to the gradient by
          ``"sgd"``, ``"nesterov"`` and ``"adam"``; decoupled (``p -= lr_s * wd * p``
          at the scheduled ``lr_s``) for ``"adamw"``;
        - ``batch_size``, ``epochs`` (ints >= 1), ``seed`` (int >= 0);
        - ``checkpoints``: target number of checkpoints (see :func:`checkpoint_steps`);
        - ``schedule``: ``"cosine"``, ``"constant"`` (see ``warmup_epochs``) or ``"exp"``
          (SGD only, no warm-up): ``lr * α^(−2s−1)`` at step ``s`` and no weight decay in
          the optimiser, the equivalent of constant-``lr`` SGD with the configured weight
          decay for normalised networks (Li & Arora 2020;
          :func:`~deepmanifold.training.schedule.exp_lr_factor`);
        - ``warmup_epochs`` (optional, number in [0, epochs], default 0): with
          ``W = floor(warmup_epochs * steps_per_epoch + 1/2)`` (:func:`warmup_steps`)
          and ``S = epochs * steps_per_epoch``, the update at step ``s`` (model
          ``s -> s + 1``) uses ``lr * (s + 1) / W`` for ``s < W`` (linear warm-up,
          reaching ``lr`` at ``s = W - 1``), then ``lr`` (constant) or
          ``lr * (1 + cos(pi (s - W) / (S - W))) / 2`` (cosine over the remaining
          ``S - W`` updates). ``W = 0`` is the plain schedule;
        - ``augmentation`` (optional, :data:`~deepmanifold.training.AUGMENTATION_MODES`, default ``"none"``):
          ``"simple"`` = random crop with zero padding ``floor(H/8 + 1/2)`` /
          ``floor(W/8 + 1/2)`` px and/or random horizontal flip, each only if listed in
          ``dataset.augmentations`` (``("crop",)`` when the dataset has no such
          attribute); see :func:`~deepmanifold.training.augment.augment_batch`. Applied
          to each training minibatch, on the fly, from a generator seeded by a stream
          derived from ``seed``; probe sets are never augmented (docs/method.md §1);
        - ``init`` (optional, :data:`~deepmanifold.training.INITS`, default ``"default"``): ``"default"`` =
          the fresh model; ``"shuffled_labels"`` = first train it for ``init_epochs``
          epochs on the training set with its labels randomly permuted;
          ``"tiny_subset"`` = first train it for ``init_epochs`` epochs on
          ``init_subset`` random training samples with their true labels. That phase
          uses the configured optimiser at the constant ``lr`` (no warm-up, no
          augmentation, its own seeded generator), is not recorded, and is reported in
          :attr:`RunResult.init_info`; the optimiser state is then reset and step 0 is
          the corner model (BatchNorm running statistics carried over);
        - ``loss`` (optional, :data:`~deepmanifold.training.loss.LOSSES`, default
          ``"cross_entropy"``): the minibatch loss, or ``"squared"`` = ``½ |f(x) − onehot(y)|²``
          (:mod:`~deepmanifold.training.loss`); also used by the ``init`` phase;
        - ``init_epochs`` (optional, int >= 1, default 5), ``init_subset`` (optional,
          int >= 1 and <= the training samples, default 100): ignored unless ``init``
          uses them;
        - ``measurements`` (optional, list of names from
          :data:`~deepmanifold.training.measurements.MEASUREMENTS`, default none):
          recorded at every checkpoint after the predictions;
        - ``measurement_options`` (optional, dict name -> dict): keyword arguments of
          those measurements, e.g. ``{"capacity": {"layers": ["net.3"], "n_t": 100}}``;
        - ``data`` (optional): accepted and ignored (the caller builds ``dataset``).
    dataset : Dataset
        Training data; ``x_train`` of shape (N, C_in, H, W).
    probes : dict[str, ProbeSet]
        Must contain ``"train"`` and ``"test"`` (used for the metrics); any other probe
        sets are recorded too. Inputs come from ``dataset`` at the probe's indices.
    store : Store or path-like, optional
        Commit the run there (atomically, through a :class:`~deepmanifold.training.Recorder`)
        under ``run_id``, with ``stored_config`` (default ``config``) as its config.
    run_id : str, optional
        Required with ``store``.
    stored_config : mapping, optional
        What the store keeps as the run's config (a sweep adds its label, data and
        probe settings to the training config).
    callback : callable(index, total, step), optional
        Called after each recorded checkpoint (``index`` in ``0..total-1``).
    pruner : callable(recorder, step) -> str or None, optional
        Called after each recorded checkpoint past step 0 (e.g. a
        :class:`~deepmanifold.live.pruning.RungPruner`); a message stops the run there, and
        it is committed with ``status == "pruned"`` and that message.
    device : str or torch.device, default "cpu"
        Where to train: ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or ``"auto"``/None (CUDA
        when available). The model is built and initialised on the CPU (the same
        initial weights everywhere) and moved; minibatch orders, augmentations and
        corner draws come from the same CPU generators, so a GPU run sees the same
        data in the same order. GPU arithmetic is not bitwise equal to the CPU's.

    Returns
    -------
    RunResult
        ``logp[name]`` has shape (K, n_probe, C), float32. ``K`` is the length of
        ``checkpoint_steps(epochs * steps_per_epoch, checkpoints)``, or fewer if the
        run diverged.

    Notes
    -----
    Deterministic on CPU: the model is built right after ``torch.manual_seed(seed)``
    (inside :func:`torch.random.fork_rng`, so the caller's global RNG is untouched)
    and minibatches, augmentations and the corner-initialisation phase each draw from
    their own generator derived from ``seed`` (so e.g. a corner run sees the same
    minibatch order as the default run with the same seed).
    Checkpoint ``s`` is the model after ``s`` updates, evaluated in eval mode (BatchNorm
    running statistics) under ``torch.no_grad``. The caller chooses the number of torch
    threads (one per worker process is best for small models).

    A non-finite minibatch loss or non-finite recorded predictions stop the run with
    ``status == "diverged"``; the checkpoints recorded before it are kept (also during
    warm-up and after a corner initialisation). A non-finite loss in the corner
    pre-training phase gives ``"diverged"`` with no checkpoint. Divergence never raises.

    Raises
    ------
    ValueError
        Missing, unknown or invalid config keys, or missing ``"train"``/``"test"``
        probes, or probes that do not belong to ``dataset``, or ``augmentation``
        ``"simple"`` on a dataset that allows no augmentation, or ``init_subset``
        larger than the training set.
    """
    t0 = time.perf_counter()
    plan = plan_run(config, dataset, device)
    cfg = plan.config
    for required in ("train", "test"):
        if required not in probes:
            raise ValueError(f"probes must contain {required!r}, got {sorted(probes)}")
    recorder = Recorder(store, probes, config if stored_config is None else stored_config, run_id,
                        dataset=dataset, measurements=run_measurements(cfg), steps_per_epoch=plan.steps_per_epoch,
                        last_step=int(plan.checkpoints[-1]))
    try:
        model = initial_model(cfg, dataset)
        n_params = count_parameters(model)
        model.to(plan.device)
        loss_fn = TrainingLoss(cfg["loss"])
        init_info: dict[str, Any] = {"init": "default", "steps": 0}
        if cfg["init"] != "default":
            init_info = _corner_init(cfg, model, dataset, loss_fn)
        status, message = _train(plan, model, dataset, recorder, loss_fn, init_info, callback, pruner)
    except BaseException as exc:  # a crash or an interrupt: nothing committed, watchers told
        recorder.abandon(f"{type(exc).__name__}: {exc}")
        raise
    model.eval()
    info = {"init": init_info, "device": str(plan.device), "n_parameters": n_params, **data_info(dataset)}
    if status == "complete":
        message = completion_message(plan, recorder, init_info)
    return recorder.close(status, message, info=info, wall_time=time.perf_counter() - t0)


def _train(plan: TrainingPlan, model: nn.Module, dataset: Dataset, recorder: Recorder, loss_fn: nn.Module,
           init_info: Mapping[str, Any], callback, pruner=None) -> tuple[str, str | None]:
    """The loop of updates, recording at ``plan.checkpoints``; returns ``(status, message)``."""
    cfg, dev = plan.config, plan.device
    ckpt, n_ckpt = plan.checkpoints, len(plan.checkpoints)

    def record(step: int) -> bool:
        kept = recorder.checkpoint(model, step)
        if kept and callback is not None:
            callback(recorder.n_checkpoints - 1, n_ckpt, step)
        return kept

    if init_info.get("status", "complete") != "complete":
        return "diverged", (f"non-finite minibatch loss during the {cfg['init']!r} initialisation phase "
                            f"(after {init_info['steps']} pre-training updates); no checkpoints recorded")
    model.train()
    if not record(0):
        return "diverged", ("non-finite predictions at step 0 (initial model)" if cfg["init"] == "default"
                            else f"non-finite predictions at step 0 (the {cfg['init']!r} corner model)")
    # A fresh optimiser: the recorded run starts with no state (momentum, Adam moments).
    optimizer = make_optimizer(cfg, model.parameters())
    gen = torch.Generator().manual_seed(shuffle_seed(cfg["seed"]))
    aug_gen = torch.Generator().manual_seed(augment_seed(cfg["seed"])) if plan.augmentations else None
    crop, hflip = "crop" in plan.augmentations, "hflip" in plan.augmentations
    x_train, y_train = dataset.x_train.to(dev), dataset.y_train.to(dev)
    bs, spe = int(cfg["batch_size"]), plan.steps_per_epoch
    next_ckpt, step = 1, 0
    while step < plan.total_steps:
        perm = torch.randperm(x_train.shape[0], generator=gen).to(dev)
        for b in range(spe):
            idx = perm[b * bs:(b + 1) * bs]
            set_lr(optimizer, plan.lr(step))
            xb = x_train[idx]
            if aug_gen is not None:
                xb = augment_batch(xb, crop=crop, hflip=hflip, generator=aug_gen)
            loss = loss_fn(model(xb), y_train[idx])
            if not torch.isfinite(loss):
                return "diverged", loss_diverged_message(step, plan, recorder.steps)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            step += 1
            if next_ckpt < n_ckpt and step == ckpt[next_ckpt]:
                if not record(step):
                    return "diverged", None  # the recorder says where and what it kept
                next_ckpt += 1
                if pruner is not None and next_ckpt < n_ckpt:
                    why = pruner(recorder, step)
                    if why:
                        return "pruned", why
    return "complete", None


def run_measurements(cfg: Mapping[str, Any]) -> list:
    """The measurements a validated config asks for, built with its ``measurement_options``."""
    options = cfg.get("measurement_options") or {}
    return [get_measurement(name, options.get(name)) for name in cfg["measurements"]]
