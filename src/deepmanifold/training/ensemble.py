"""Several seeds of one configuration trained at once, vectorised with ``torch.func.vmap``.

Small networks leave a CPU core or a GPU mostly idle: each optimiser step is a
handful of tiny kernels plus Python overhead. Stacking the K members' parameters
(``torch.func.stack_module_state``) and running one ``vmap``-ed forward/backward
per step pays that overhead once for all K. Every member keeps what makes it that
run: its own initial weights (built exactly as :func:`train_run` builds them), its
own minibatch order and augmentations (its own generators), its own BatchNorm
statistics (stacked buffers, updated per member), and its own optimiser state
(SGD/Adam/AdamW act elementwise, so one optimiser over stacked tensors is K
optimisers). The loss is the sum of the members' mean losses, so each member's
gradient is that of its own run. Results agree with :func:`train_run` up to
floating-point rounding (batched kernels sum in another order), not bitwise.

Both trainers share one plan (:func:`~deepmanifold.training.plan.plan_run`) and record
through one :class:`~deepmanifold.training.Recorder` per run: the ensemble evaluates
every member's predictions in one batched pass and hands each member's to its recorder.
"""

from __future__ import annotations

import copy
import json
import os
import time
import warnings
from typing import Any, Mapping, Sequence

import torch

from ..data import Dataset, ProbeSet
from ..models import count_parameters
from ..store import PREDICTIONS, Store
from .augment import augment_batch
from .loss import per_sample_loss
from .measurements import Predictions
from .plan import (TrainingPlan, augment_seed, completion_message, data_info, initial_model,
                   loss_diverged_message, make_optimizer, plan_run, set_lr, shuffle_seed)
from .recorder import Recorder, RunResult

__all__ = ["ensemble_key", "train_ensemble"]


def ensemble_key(config: Mapping[str, Any]) -> str:
    """What a run shares with the runs it can be trained with: its config without the seed."""
    return json.dumps({k: v for k, v in config.items() if k != "seed"}, sort_keys=True, default=str)


def train_ensemble(
    configs: Sequence[Mapping[str, Any]],
    dataset: Dataset,
    probes: Mapping[str, ProbeSet],
    *,
    device: str | torch.device | None = "cpu",
    store: Store | str | os.PathLike | None = None,
    run_ids: Sequence[str] | None = None,
    stored_configs: Sequence[Mapping[str, Any]] | None = None,
) -> list[RunResult]:
    """Train runs that differ only in ``seed`` together; one :class:`RunResult` each.

    Parameters
    ----------
    configs : sequence of dict
        Run configurations as for :func:`~deepmanifold.training.train_run`, equal in
        every key but ``seed`` (seeds distinct), with ``init == "default"`` and no
        measurements besides the predictions.
    dataset, probes
        As for :func:`~deepmanifold.training.train_run`.
    device : str or torch.device, default "cpu"
        ``"cpu"``, ``"cuda[:N]"`` or ``"auto"``.
    store, run_ids, stored_configs : optional
        As ``store``, ``run_id``, ``stored_config`` of :func:`train_run`, one per
        member: each run is committed on its own when the ensemble ends.

    Returns
    -------
    list of RunResult
        In the order of ``configs``. Each member's ``wall_time`` is the ensemble's wall
        time divided by the number of members. A member whose loss or predictions become
        non-finite is ``"diverged"`` with the checkpoints recorded before; the others go on.

    Raises
    ------
    ValueError
        Invalid configs (as :func:`train_run`), configs that differ in anything but
        ``seed``, repeated seeds, a corner initialisation, measurements, or missing probes.
    """
    with warnings.catch_warnings():
        # ViT's attention has no vmap batching rule yet: torch loops over the members
        # (correct, slower) and says so at every step.
        warnings.filterwarnings("ignore", message="There is a performance drop because we have not yet "
                                "implemented the batching rule")
        t0 = time.perf_counter()
        plan, seeds = _plan_ensemble(configs, dataset, probes, device)
        K = len(seeds)
        ids = list(run_ids) if run_ids is not None else [None] * K
        kept = list(stored_configs) if stored_configs is not None else list(configs)
        if len(ids) != K or len(kept) != K:
            raise ValueError(f"{K} configs but {len(ids)} run ids and {len(kept)} stored configs")
        recorders = [Recorder(store, probes, kept[k], ids[k], dataset=dataset,
                              steps_per_epoch=plan.steps_per_epoch) for k in range(K)]
        try:
            messages, n_params = _train_members(plan, seeds, dataset, recorders)
        except BaseException as exc:  # a crash or an interrupt: nothing committed, watchers told
            for rec in recorders:
                rec.abandon(f"{type(exc).__name__}: {exc}")
            raise
        wall = (time.perf_counter() - t0) / K
        info = {"init": {"init": "default", "steps": 0}, "device": str(plan.device), "n_parameters": n_params,
                **data_info(dataset)}
        results = []
        for rec, loss_message in zip(recorders, messages):
            if loss_message is not None:
                results.append(rec.close("diverged", loss_message, info=info, wall_time=wall))
            elif rec.diverged is not None:
                results.append(rec.close(info=info, wall_time=wall))
            else:
                message = completion_message(plan, rec) + f"; trained in an ensemble of {K}"
                results.append(rec.close("complete", message, info=info, wall_time=wall))
        return results


def _plan_ensemble(configs, dataset, probes, device) -> tuple[TrainingPlan, list[int]]:
    """The members' shared plan and their seeds, after checking they can train together."""
    if len(configs) == 0:
        raise ValueError("configs is empty")
    plans = [plan_run(c, dataset, device) for c in configs]
    if len({ensemble_key(p.config) for p in plans}) > 1:
        raise ValueError("ensemble members must differ only in 'seed'; got configs that differ in other keys")
    seeds = [int(p.config["seed"]) for p in plans]
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"ensemble members need distinct seeds, got {seeds}")
    plan = plans[0]
    if plan.config["init"] != "default":
        raise ValueError(f"ensembles train from the default initialisation only, got init={plan.config['init']!r}; "
                         "use train_run for corner initialisations")
    if plan.config["measurements"]:
        raise ValueError(f"ensembles record the predictions only, got measurements {list(plan.config['measurements'])}; "
                         "use train_run for runs with other measurements")
    for required in ("train", "test"):
        if required not in probes:
            raise ValueError(f"probes must contain {required!r}, got {sorted(probes)}")
    return plan, seeds


def _train_members(plan: TrainingPlan, seeds: list[int], dataset: Dataset,
                   recorders: list[Recorder]) -> tuple[list[str | None], int]:
    """The vmap-ed loop; returns, per member, why its loss diverged (None otherwise), and
    the number of parameters of one member."""
    cfg, dev, K = plan.config, plan.device, len(seeds)
    models = [initial_model({**cfg, "seed": seed}, dataset) for seed in seeds]  # each member's own init
    n_params = count_parameters(models[0])
    params, buffers = torch.func.stack_module_state([m.to(dev) for m in models])
    base = copy.deepcopy(models[0]).to("meta")

    def forward(p, b, x):
        return torch.func.functional_call(base, (p, b), (x,))

    batched = torch.func.vmap(forward)  # every member its own minibatch
    shared = torch.func.vmap(forward, in_dims=(0, 0, None))  # one probe set for all
    evaluate = Predictions()
    probe_x = {name: p.inputs.to(dev) for name, p in recorders[0].probes.items()}
    active = [True] * K
    loss_messages: list[str | None] = [None] * K

    def record(step: int) -> None:
        base.eval()
        with torch.no_grad():
            lps = {name: evaluate.log_probs(lambda chunk: shared(params, buffers, chunk).transpose(0, 1), x)
                   for name, x in probe_x.items()}  # (n, K, C) each
        base.train()
        for k in range(K):
            if active[k]:
                active[k] = recorders[k].add(step, {PREDICTIONS: {n: lp[:, k].cpu().numpy() for n, lp in lps.items()}})

    base.train()
    record(0)
    x_train, y_train = dataset.x_train.to(dev), dataset.y_train.to(dev)
    gens = [torch.Generator().manual_seed(shuffle_seed(s)) for s in seeds]
    aug_gens = [torch.Generator().manual_seed(augment_seed(s)) for s in seeds] if plan.augmentations else None
    crop, hflip = "crop" in plan.augmentations, "hflip" in plan.augmentations
    optimizer = make_optimizer(cfg, list(params.values()))
    bs, ckpt = int(cfg["batch_size"]), plan.checkpoints
    next_ckpt, step = 1, 0
    while step < plan.total_steps and any(active):
        perms = [torch.randperm(x_train.shape[0], generator=g) for g in gens]
        for b in range(plan.steps_per_epoch):
            idx = torch.stack([p[b * bs:(b + 1) * bs] for p in perms]).to(dev)  # (K, B)
            xb = x_train[idx]
            if aug_gens is not None:
                xb = torch.stack([augment_batch(xb[k], crop=crop, hflip=hflip, generator=aug_gens[k])
                                  for k in range(K)])
            logits = batched(params, buffers, xb)  # (K, B, C)
            losses = per_sample_loss(plan.config["loss"], logits.reshape(-1, logits.shape[-1]),
                                     y_train[idx].reshape(-1)).view(K, -1).mean(dim=1)
            for k, finite in enumerate(torch.isfinite(losses).tolist()):
                if active[k] and not finite:
                    active[k] = False
                    loss_messages[k] = loss_diverged_message(step, plan, recorders[k].steps)
            if not any(active):
                break
            set_lr(optimizer, plan.lr(step))
            # Members that stopped get no gradient: they can never feed NaN into the others.
            mask = torch.tensor(active, device=losses.device)
            loss = torch.where(mask, losses, torch.zeros_like(losses)).sum()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            step += 1
            if next_ckpt < len(ckpt) and step == ckpt[next_ckpt]:
                record(step)
                next_ckpt += 1
    return loss_messages, n_params
