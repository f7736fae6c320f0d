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
"""

from __future__ import annotations

import copy
import time
import warnings
from typing import Any, Mapping, Sequence

import numpy as np
import torch
from torch.nn import functional as F

from ..data import Dataset, ProbeSet
from ..models import build_model, count_parameters
from .augment import augment_batch
from .run import (
    _EVAL_CHUNK,
    RunResult,
    _augment_seed,
    _augmentation_ops,
    _lr_at,
    _make_optimizer,
    _metrics_from_logp,
    _shuffle_seed,
    _validate,
    resolve_device,
    steps_per_epoch,
    warmup_steps,
)
from .schedule import checkpoint_steps

__all__ = ["ensemble_key", "train_ensemble"]


def ensemble_key(config: Mapping[str, Any]) -> str:
    """What a run shares with the runs it can be trained with: its config without the seed."""
    import json

    return json.dumps({k: v for k, v in config.items() if k != "seed"}, sort_keys=True, default=str)


def train_ensemble(
    configs: Sequence[Mapping[str, Any]],
    dataset: Dataset,
    probes: Mapping[str, ProbeSet],
    *,
    device: str | torch.device | None = "cpu",
) -> list[RunResult]:
    """Train runs that differ only in ``seed`` together; one :class:`RunResult` each.

    Parameters
    ----------
    configs : sequence of dict
        Run configurations as for :func:`~deepmanifold.training.train_run`, equal in
        every key but ``seed`` (seeds distinct), with ``init == "default"``.
    dataset, probes
        As for :func:`~deepmanifold.training.train_run`.
    device : str or torch.device, default "cpu"
        ``"cpu"``, ``"cuda[:N]"`` or ``"auto"``.

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
        ``seed``, repeated seeds, a corner initialisation, or missing probes.
    """
    with warnings.catch_warnings():
        # ViT's attention has no vmap batching rule yet: torch loops over the members
        # (correct, slower) and says so at every step.
        warnings.filterwarnings("ignore", message="There is a performance drop because we have not yet "
                                "implemented the batching rule")
        return _train_ensemble(configs, dataset, probes, device)


def _train_ensemble(configs, dataset, probes, device) -> list[RunResult]:
    t0 = time.perf_counter()
    if len(configs) == 0:
        raise ValueError("configs is empty")
    cfgs = [_validate(c) for c in configs]
    keys = {ensemble_key(c) for c in cfgs}
    if len(keys) > 1:
        raise ValueError("ensemble members must differ only in 'seed'; got configs that differ in other keys")
    seeds = [int(c["seed"]) for c in cfgs]
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"ensemble members need distinct seeds, got {seeds}")
    cfg = cfgs[0]
    if cfg["init"] != "default":
        raise ValueError(f"ensembles train from the default initialisation only, got init={cfg['init']!r}; "
                         "use train_run for corner initialisations")
    for required in ("train", "test"):
        if required not in probes:
            raise ValueError(f"probes must contain {required!r}, got {sorted(probes)}")
    dev = resolve_device(device)
    K = len(cfgs)

    models = []
    for seed in seeds:  # exactly the initial weights train_run would build
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            models.append(build_model(cfg["arch"], dataset.input_shape, dataset.n_classes,
                                      **dict(cfg["arch_options"])))
    n_params = count_parameters(models[0])
    params, buffers = torch.func.stack_module_state([m.to(dev) for m in models])
    base = copy.deepcopy(models[0]).to("meta")

    def forward(p, b, x):
        return torch.func.functional_call(base, (p, b), (x,))

    batched = torch.func.vmap(forward)  # every member its own minibatch
    shared = torch.func.vmap(forward, in_dims=(0, 0, None))  # one probe set for all

    x_train, y_train = dataset.x_train.to(dev), dataset.y_train.to(dev)
    probe_x = {name: p.inputs(dataset).to(dev) for name, p in probes.items()}
    probe_y = {name: torch.from_numpy(np.array(p.labels, dtype=np.int64)) for name, p in probes.items()}
    n_train = x_train.shape[0]
    bs = int(cfg["batch_size"])
    spe = steps_per_epoch(n_train, bs)
    total = int(cfg["epochs"]) * spe
    warmup = warmup_steps(cfg["warmup_epochs"], spe)
    ckpt = checkpoint_steps(total, int(cfg["checkpoints"]))
    aug_ops = _augmentation_ops(cfg, dataset)
    aug_gens = [torch.Generator().manual_seed(_augment_seed(s)) for s in seeds] if aug_ops else None
    gens = [torch.Generator().manual_seed(_shuffle_seed(s)) for s in seeds]
    optimizer = _make_optimizer(cfg, list(params.values()))

    active = [True] * K
    messages = [""] * K
    rec_steps: list[list[int]] = [[] for _ in range(K)]
    rec_logp: list[dict[str, list[torch.Tensor]]] = [{name: [] for name in probes} for _ in range(K)]

    def record(step: int) -> None:
        base.eval()
        with torch.no_grad():
            lps = {name: torch.cat([torch.log_softmax(shared(params, buffers, x[i:i + _EVAL_CHUNK]).float(), dim=-1)
                                    for i in range(0, x.shape[0], _EVAL_CHUNK)], dim=1).cpu()
                   for name, x in probe_x.items()}  # (K, n, C) each
        base.train()
        for k in range(K):
            if not active[k]:
                continue
            if not all(bool(torch.isfinite(lp[k]).all()) for lp in lps.values()):
                active[k] = False
                messages[k] = (f"non-finite predictions at step {step} (epoch {step / spe:.2f}); "
                               f"kept {len(rec_steps[k])} checkpoints"
                               + (f" up to step {rec_steps[k][-1]}" if rec_steps[k] else ""))
                continue
            rec_steps[k].append(step)
            for name, lp in lps.items():
                rec_logp[k][name].append(lp[k])

    base.train()
    record(0)
    next_ckpt, step = 1, 0
    while step < total and any(active):
        perms = [torch.randperm(n_train, generator=g) for g in gens]
        for b in range(spe):
            idx = torch.stack([p[b * bs:(b + 1) * bs] for p in perms]).to(dev)  # (K, B)
            xb = x_train[idx]
            if aug_gens is not None:
                xb = torch.stack([augment_batch(xb[k], crop="crop" in aug_ops, hflip="hflip" in aug_ops,
                                                generator=aug_gens[k]) for k in range(K)])
            logits = batched(params, buffers, xb)  # (K, B, C)
            losses = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y_train[idx].reshape(-1),
                                     reduction="none").view(K, -1).mean(dim=1)
            finite = torch.isfinite(losses).tolist()
            for k in range(K):
                if active[k] and not finite[k]:
                    active[k] = False
                    messages[k] = (f"non-finite minibatch loss at step {step} (epoch {step / spe:.2f}"
                                   f"{', during warm-up' if step < warmup else ''}); kept {len(rec_steps[k])} "
                                   f"checkpoints up to step {rec_steps[k][-1]}")
            if not any(active):
                break
            lr = _lr_at(cfg, step, total, warmup)
            for group in optimizer.param_groups:
                group["lr"] = lr
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
    wall = (time.perf_counter() - t0) / K

    results = []
    for k in range(K):
        steps_arr = np.asarray(rec_steps[k], dtype=np.int64)
        logp = {name: (torch.stack(lps).numpy().astype(np.float32, copy=False) if lps
                       else np.zeros((0, len(probes[name]), dataset.n_classes), dtype=np.float32))
                for name, lps in rec_logp[k].items()}
        metrics = _metrics_from_logp(logp, probe_y)
        if active[k]:
            status = "complete"
            message = (f"{total} steps ({cfg['epochs']} epochs), {len(rec_steps[k])} checkpoints; "
                       f"final test acc {metrics['test_acc'][-1]:.4f}; trained in an ensemble of {K}")
        else:
            status, message = "diverged", messages[k]
        results.append(RunResult(
            steps=steps_arr, epochs=steps_arr.astype(np.float64) / spe, metrics=metrics, logp=logp,
            status=status, message=message, wall_time=wall, n_parameters=n_params,
            fingerprints={name: p.fingerprint for name, p in probes.items()}, steps_per_epoch=spe,
            device=str(dev)))
    return results
