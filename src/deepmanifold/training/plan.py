"""The plan of a training run, shared by the single-run and the ensemble trainer.

Everything decided before the first update lives here: the validated config, the
steps of the run and of its checkpoints, the warm-up, the augmentations, the device,
the initial model, the optimiser, the learning rate of each update and the seeds of
the run's independent random streams. :func:`~deepmanifold.training.train_run` and
:func:`~deepmanifold.training.train_ensemble` both start from :func:`plan_run`, so
that a run trained alone and the same run trained in an ensemble follow one plan.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np
import torch
from torch import nn

from ..data import Dataset
from ..models import build_model
from .augment import dataset_augmentations
from .config import MOMENTUM_OPTIMIZERS, validate_config
from .schedule import checkpoint_steps, exp_lr_factor

__all__ = [
    "TrainingPlan",
    "augment_seed",
    "completion_message",
    "init_seed",
    "initial_model",
    "loss_diverged_message",
    "lr_at",
    "make_optimizer",
    "plan_run",
    "resolve_device",
    "set_lr",
    "shuffle_seed",
    "steps_per_epoch",
    "warmup_steps",
]


@dataclass(frozen=True)
class TrainingPlan:
    """What a run will do, decided before its first update.

    Attributes
    ----------
    config : dict
        The validated config, optional keys filled in.
    steps_per_epoch : int
        ``N_train // batch_size`` (:func:`steps_per_epoch`).
    total_steps : int
        ``epochs * steps_per_epoch``.
    warmup_steps : int
        Linear warm-up updates (:func:`warmup_steps`).
    checkpoints : np.ndarray, shape (K,), int64
        Steps at which the probes are evaluated (:func:`checkpoint_steps`), 0 first.
    augmentations : tuple of str
        Operations applied to each training minibatch (``()`` for none).
    device : torch.device
    """

    config: dict
    steps_per_epoch: int
    total_steps: int
    warmup_steps: int
    checkpoints: np.ndarray
    augmentations: tuple[str, ...]
    device: torch.device

    def lr(self, step: int) -> float:
        """Learning rate of the update from ``step`` to ``step + 1`` (:func:`lr_at`)."""
        return lr_at(self.config, step, self.total_steps, self.warmup_steps)


def plan_run(config: Mapping[str, Any], dataset: Dataset, device: str | torch.device | None = "cpu") -> TrainingPlan:
    """Validate ``config`` against ``dataset`` and ``device`` and plan the run.

    Raises
    ------
    ValueError
        An invalid config (:func:`~deepmanifold.training.config.validate_config`), a
        batch larger than the training set, ``augmentation = "simple"`` on data that
        allows none, or a device torch does not see.
    """
    cfg = validate_config(config)
    dev = resolve_device(device)
    spe = steps_per_epoch(dataset.x_train.shape[0], int(cfg["batch_size"]))
    total = int(cfg["epochs"]) * spe
    return TrainingPlan(config=cfg, steps_per_epoch=spe, total_steps=total,
                        warmup_steps=warmup_steps(cfg["warmup_epochs"], spe),
                        checkpoints=checkpoint_steps(total, int(cfg["checkpoints"])),
                        augmentations=_augmentation_ops(cfg, dataset), device=dev)


def initial_model(config: Mapping[str, Any], dataset: Dataset) -> nn.Module:
    """The run's fresh model, built on the CPU right after ``torch.manual_seed(seed)``.

    Built inside :func:`torch.random.fork_rng`, so the caller's global RNG is untouched
    and a run's initial weights depend on its seed alone (on every device).
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(config["seed"]))
        return build_model(config["arch"], dataset.input_shape, dataset.n_classes, **dict(config["arch_options"]))


def data_info(dataset: Dataset) -> dict[str, Any]:
    """What a run records about its data beyond its config: the training samples whose label was flipped."""
    flipped = getattr(dataset, "flipped", None)
    return {} if flipped is None else {"flipped_train": [int(i) for i in flipped]}


def steps_per_epoch(n_train: int, batch_size: int) -> int:
    """Optimiser steps per epoch: ``n_train // batch_size``.

    Every epoch reshuffles the training set and drops the incomplete last batch, so
    each step sees a full batch (BatchNorm statistics of equal quality); over the
    epochs every sample is still seen.
    """
    if batch_size > n_train:
        raise ValueError(f"batch_size {batch_size} exceeds the {n_train} training samples")
    return n_train // batch_size


def warmup_steps(warmup_epochs: float, steps_per_epoch: int) -> int:
    """Number ``W`` of warm-up updates: ``floor(warmup_epochs * steps_per_epoch + 1/2)``."""
    return int(math.floor(float(warmup_epochs) * int(steps_per_epoch) + 0.5))


def make_optimizer(cfg: Mapping[str, Any], params) -> torch.optim.Optimizer:
    """The configured optimiser over ``params`` at the config's ``lr``."""
    name = cfg["optimizer"]
    lr, wd = float(cfg["lr"]), float(cfg["weight_decay"])
    if cfg["schedule"] == "exp":
        wd = 0.0  # the exponential schedule carries the weight decay's effect (exp_lr_factor)
    if name in MOMENTUM_OPTIMIZERS:
        return torch.optim.SGD(params, lr=lr, momentum=float(cfg["momentum"]), weight_decay=wd,
                               nesterov=name == "nesterov")
    if name == "adamw":
        return torch.optim.AdamW(params, lr=lr, weight_decay=wd)
    return torch.optim.Adam(params, lr=lr, weight_decay=wd)


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    """Set the learning rate of every parameter group."""
    for group in optimizer.param_groups:
        group["lr"] = lr


def lr_at(cfg: Mapping[str, Any], step: int, total: int, warmup: int = 0) -> float:
    """Learning rate of the update that takes the model from ``step`` to ``step + 1``.

    ``lr * (step + 1) / warmup`` while ``step < warmup``; afterwards the schedule over
    the remaining ``total - warmup`` updates: ``lr`` (constant) or
    ``lr * (1 + cos(pi * (step - warmup) / (total - warmup))) / 2`` (cosine), or
    ``lr * α^(−2 step − 1)`` (exp, no warm-up; α from :func:`exp_lr_factor`: the
    equivalent of constant-``lr`` SGD with the config's weight decay, which the optimiser
    then leaves out).
    """
    lr = float(cfg["lr"])
    if step < warmup:
        return lr * (step + 1) / warmup
    if cfg["schedule"] == "constant":
        return lr
    if cfg["schedule"] == "exp":
        return lr * exp_lr_factor(lr, cfg["weight_decay"], cfg["momentum"]) ** (-2 * step - 1)
    return lr * 0.5 * (1.0 + math.cos(math.pi * (step - warmup) / (total - warmup)))


def resolve_device(device: str | torch.device | None = None) -> torch.device:
    """The torch device to train on: ``None``/``"auto"`` = CUDA when available, else CPU.

    Raises ``ValueError`` for a CUDA device when torch sees no GPU (or not that one).
    """
    if device is None or device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(f"device must be 'auto', 'cpu' or 'cuda[:N]', got {device!r}") from exc
    if dev.type not in ("cpu", "cuda"):
        raise ValueError(f"device must be 'auto', 'cpu' or 'cuda[:N]', got {device!r}")
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device {device!r} requested, but torch sees no CUDA GPU "
                             "(torch.cuda.is_available() is False)")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ValueError(f"device {device!r} requested, but torch sees only "
                             f"{torch.cuda.device_count()} GPU(s)")
    return dev


def _augmentation_ops(cfg: Mapping[str, Any], dataset: Dataset) -> tuple[str, ...]:
    """The augmentations a run applies (``()`` for ``"none"``); an error if the data allows none."""
    if cfg["augmentation"] != "simple":
        return ()
    ops = dataset_augmentations(dataset)
    if not ops:
        raise ValueError(
            f"augmentation 'simple' requested but dataset {dataset.name!r} allows no "
            f"augmentations (dataset.augmentations is empty)"
        )
    return ops


def loss_diverged_message(step: int, plan: TrainingPlan, recorded: list[int] | np.ndarray) -> str:
    """Why a run stopped at a non-finite minibatch loss, and what it kept."""
    during = ", during warm-up" if step < plan.warmup_steps else ""
    kept = f"kept {len(recorded)} checkpoints" + (f" up to step {recorded[-1]}" if len(recorded) else "")
    return f"non-finite minibatch loss at step {step} (epoch {step / plan.steps_per_epoch:.2f}{during}); {kept}"


def completion_message(plan: TrainingPlan, recorder, init_info: Mapping[str, Any] | None = None) -> str:
    """What a finished run did, with its final test accuracy (from ``recorder``'s last checkpoint)."""
    cfg = plan.config
    test = recorder.probes["test"]
    acc = float((recorder.latest()["test"].argmax(axis=1) == test.labels).mean()) if len(test) else float("nan")
    message = (f"{plan.total_steps} steps ({cfg['epochs']} epochs), {recorder.n_checkpoints} checkpoints; "
               f"final test acc {acc:.4f}")
    if init_info and cfg["init"] != "default":
        message += (f"; started from the {cfg['init']!r} corner ({init_info['steps']} "
                    f"pre-training updates, corner train acc {init_info['train_acc']:.4f})")
    return message


def _stream_seed(seed: int, tag: int) -> int:
    """Seed of the random stream ``tag`` derived from the run seed (independent streams)."""
    return int(np.random.SeedSequence([int(seed), int(tag)]).generate_state(1, dtype=np.uint64)[0] >> 1)


def shuffle_seed(seed: int) -> int:
    """Seed of the minibatch-order generator, a stream independent of the init seed."""
    return _stream_seed(seed, 0x5EED)


def augment_seed(seed: int) -> int:
    """Seed of the augmentation generator (crop offsets, flips)."""
    return _stream_seed(seed, 0xA06)


def init_seed(seed: int) -> int:
    """Seed of the corner-initialisation generator (label permutation or subset, and
    the pre-training minibatch order)."""
    return _stream_seed(seed, 0xC0C0)
