"""One training run, with the recorder that evaluates the probe sets at checkpoints."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

import numpy as np
import torch
from torch import nn

from ..data import Dataset, ProbeSet
from ..models import build_model, count_parameters
from .schedule import checkpoint_steps

__all__ = ["RunResult", "train_run", "CONFIG_KEYS", "OPTIMIZERS", "SCHEDULES", "steps_per_epoch"]

#: Keys every config must contain (``momentum`` only when ``optimizer == "sgd"``).
CONFIG_KEYS: tuple[str, ...] = (
    "arch",
    "arch_options",
    "optimizer",
    "lr",
    "momentum",
    "weight_decay",
    "batch_size",
    "epochs",
    "seed",
    "checkpoints",
    "schedule",
)
_OPTIONAL_KEYS = ("data",)  # accepted and ignored by train_run
OPTIMIZERS: tuple[str, ...] = ("sgd", "adam")
SCHEDULES: tuple[str, ...] = ("cosine", "constant")
_METRICS = ("train_loss", "train_acc", "test_loss", "test_acc")
_EVAL_CHUNK = 512  # samples per forward pass when recording


@dataclass
class RunResult:
    """What one training run recorded.

    Attributes
    ----------
    steps : np.ndarray, shape (K,), int64
        Optimiser steps at which the probes were evaluated (``steps[0] == 0``:
        the initial model, before any update).
    epochs : np.ndarray, shape (K,), float64
        ``steps / steps_per_epoch``.
    metrics : dict[str, np.ndarray]
        ``train_loss``, ``train_acc``, ``test_loss``, ``test_acc``, each (K,) float64:
        mean cross-entropy / accuracy on the ``"train"`` and ``"test"`` probe sets,
        computed from ``logp``.
    logp : dict[str, np.ndarray]
        Probe name -> (K, n_probe, C) float32 log-probabilities (eval mode, no
        augmentation, probe order).
    status : {"complete", "diverged"}
    message : str
        Human-readable summary (for ``"diverged"``: the step where it happened).
    wall_time : float
        Seconds spent in :func:`train_run` (training plus recording).
    n_parameters : int
        Trainable parameters of the model.
    fingerprints : dict[str, str]
        Probe name -> :attr:`ProbeSet.fingerprint` of the probes evaluated.
    steps_per_epoch : int
        Optimiser steps per epoch.
    """

    steps: np.ndarray
    epochs: np.ndarray
    metrics: dict[str, np.ndarray]
    logp: dict[str, np.ndarray]
    status: str
    message: str
    wall_time: float
    n_parameters: int
    fingerprints: dict[str, str] = field(default_factory=dict)
    steps_per_epoch: int = 0

    @property
    def n_checkpoints(self) -> int:
        """Number ``K`` of recorded checkpoints."""
        return int(self.steps.shape[0])

    def final(self) -> dict[str, float]:
        """Metrics at the last recorded checkpoint (empty if none was recorded)."""
        if self.n_checkpoints == 0:
            return {}
        return {k: float(v[-1]) for k, v in self.metrics.items()}


def steps_per_epoch(n_train: int, batch_size: int) -> int:
    """Optimiser steps per epoch: ``n_train // batch_size``.

    Every epoch reshuffles the training set and drops the incomplete last batch, so
    each step sees a full batch (BatchNorm statistics of equal quality); over the
    epochs every sample is still seen.
    """
    if batch_size > n_train:
        raise ValueError(f"batch_size {batch_size} exceeds the {n_train} training samples")
    return n_train // batch_size


def _is_int(v: Any) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, bool)


def _is_real(v: Any) -> bool:
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool)


def _validate(config: Mapping[str, Any]) -> dict[str, Any]:
    if not isinstance(config, Mapping):
        raise ValueError(f"config must be a mapping, got {type(config).__name__}")
    unknown = sorted(set(config) - set(CONFIG_KEYS) - set(_OPTIONAL_KEYS))
    if unknown:
        raise ValueError(
            f"unknown config key(s) {unknown}; allowed: {sorted(CONFIG_KEYS + _OPTIONAL_KEYS)}"
        )
    required = [k for k in CONFIG_KEYS if k != "momentum"]
    if config.get("optimizer") == "sgd":
        required.append("momentum")
    missing = [k for k in required if k not in config]
    if missing:
        raise ValueError(f"config is missing key(s) {missing}")
    cfg = dict(config)
    if not isinstance(cfg["arch"], str):
        raise ValueError(f"config['arch'] must be a string, got {cfg['arch']!r}")
    if not isinstance(cfg["arch_options"], Mapping):
        raise ValueError(f"config['arch_options'] must be a dict, got {cfg['arch_options']!r}")
    if cfg["optimizer"] not in OPTIMIZERS:
        raise ValueError(f"config['optimizer'] must be one of {OPTIMIZERS}, got {cfg['optimizer']!r}")
    if cfg["schedule"] not in SCHEDULES:
        raise ValueError(f"config['schedule'] must be one of {SCHEDULES}, got {cfg['schedule']!r}")
    if not _is_real(cfg["lr"]) or not cfg["lr"] > 0 or not math.isfinite(cfg["lr"]):
        raise ValueError(f"config['lr'] must be a finite number > 0, got {cfg['lr']!r}")
    if not _is_real(cfg["weight_decay"]) or not 0 <= cfg["weight_decay"] < math.inf:
        raise ValueError(f"config['weight_decay'] must be a number >= 0, got {cfg['weight_decay']!r}")
    if cfg["optimizer"] == "sgd" and (
        not _is_real(cfg["momentum"]) or not 0 <= cfg["momentum"] < 1
    ):
        raise ValueError(f"config['momentum'] must be a number in [0, 1), got {cfg['momentum']!r}")
    for key, minimum in (("batch_size", 1), ("epochs", 1), ("checkpoints", 2)):
        if not _is_int(cfg[key]) or cfg[key] < minimum:
            raise ValueError(f"config[{key!r}] must be an integer >= {minimum}, got {cfg[key]!r}")
    if not _is_int(cfg["seed"]) or cfg["seed"] < 0:
        raise ValueError(f"config['seed'] must be an integer >= 0, got {cfg['seed']!r}")
    return cfg


def _make_optimizer(cfg: dict[str, Any], params) -> torch.optim.Optimizer:
    if cfg["optimizer"] == "sgd":
        return torch.optim.SGD(
            params,
            lr=float(cfg["lr"]),
            momentum=float(cfg["momentum"]),
            weight_decay=float(cfg["weight_decay"]),
        )
    return torch.optim.Adam(params, lr=float(cfg["lr"]), weight_decay=float(cfg["weight_decay"]))


def _lr_at(cfg: dict[str, Any], step: int, total: int) -> float:
    """Learning rate of the update that takes the model from ``step`` to ``step + 1``."""
    lr = float(cfg["lr"])
    if cfg["schedule"] == "constant":
        return lr
    return lr * 0.5 * (1.0 + math.cos(math.pi * step / total))


@torch.no_grad()
def _log_probs(model: nn.Module, x: torch.Tensor, n_classes: int) -> torch.Tensor:
    """Eval-mode log-probabilities (n, C) float32, the model left in eval mode."""
    model.eval()
    out = [
        torch.log_softmax(model(x[i : i + _EVAL_CHUNK]).float(), dim=1)
        for i in range(0, x.shape[0], _EVAL_CHUNK)
    ]
    return torch.cat(out) if out else torch.empty(0, n_classes)


def _shuffle_seed(seed: int) -> int:
    """Seed of the minibatch-order generator, a stream independent of the init seed."""
    return int(np.random.SeedSequence([int(seed), 0x5EED]).generate_state(1, dtype=np.uint64)[0] >> 1)


def train_run(
    config: Mapping[str, Any],
    dataset: Dataset,
    probes: Mapping[str, ProbeSet],
    *,
    on_checkpoint: Callable[[int, int, int], None] | None = None,
) -> RunResult:
    """Train one model and record its probe-set predictions at checkpoints.

    Parameters
    ----------
    config : dict
        Fully resolved run configuration with keys:

        - ``arch`` (str) and ``arch_options`` (dict of knobs) for
          :func:`deepmanifold.models.build_model`;
        - ``optimizer``: ``"sgd"`` (SGD with ``momentum``, a number in [0, 1)) or
          ``"adam"`` (``torch.optim.Adam``; ``momentum`` is ignored and may be absent);
        - ``lr`` (> 0), ``weight_decay`` (>= 0, L2 added to the gradient by the optimiser);
        - ``batch_size``, ``epochs`` (ints >= 1), ``seed`` (int >= 0);
        - ``checkpoints``: target number of checkpoints (see :func:`checkpoint_steps`);
        - ``schedule``: ``"cosine"`` (per-step decay ``lr * (1 + cos(pi s / S)) / 2``
          for the update at step ``s`` of ``S``) or ``"constant"``;
        - ``data`` (optional): accepted and ignored (the caller builds ``dataset``).
    dataset : Dataset
        Training data; ``x_train`` of shape (N, C_in, H, W).
    probes : dict[str, ProbeSet]
        Must contain ``"train"`` and ``"test"`` (used for the metrics); any other probe
        sets are recorded too. Inputs come from ``dataset`` at the probe's indices.
    on_checkpoint : callable(index, total, step), optional
        Called after each recorded checkpoint (``index`` in ``0..total-1``).

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
    and minibatches are drawn from a separate generator derived from ``seed``.
    Checkpoint ``s`` is the model after ``s`` updates, evaluated in eval mode (BatchNorm
    running statistics) under ``torch.no_grad``. The caller chooses the number of torch
    threads (one per worker process is best for small models).

    A non-finite minibatch loss or non-finite recorded predictions stop the run with
    ``status == "diverged"``; the checkpoints recorded before it are kept. Divergence
    never raises.

    Raises
    ------
    ValueError
        Missing, unknown or invalid config keys, or missing ``"train"``/``"test"``
        probes, or probes that do not belong to ``dataset``.
    """
    t0 = time.perf_counter()
    cfg = _validate(config)
    for required in ("train", "test"):
        if required not in probes:
            raise ValueError(f"probes must contain {required!r}, got {sorted(probes)}")
    probe_x = {name: p.inputs(dataset) for name, p in probes.items()}
    probe_y = {name: torch.from_numpy(np.array(p.labels, dtype=np.int64)) for name, p in probes.items()}

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(cfg["seed"]))
        model = build_model(
            cfg["arch"], dataset.input_shape, dataset.n_classes, **dict(cfg["arch_options"])
        )
    n_params = count_parameters(model)
    optimizer = _make_optimizer(cfg, model.parameters())
    gen = torch.Generator().manual_seed(_shuffle_seed(cfg["seed"]))

    x_train, y_train = dataset.x_train, dataset.y_train
    n_train = x_train.shape[0]
    bs = int(cfg["batch_size"])
    spe = steps_per_epoch(n_train, bs)
    total = int(cfg["epochs"]) * spe
    ckpt = checkpoint_steps(total, int(cfg["checkpoints"]))
    n_ckpt = len(ckpt)

    rec_steps: list[int] = []
    rec_logp: dict[str, list[torch.Tensor]] = {name: [] for name in probes}
    status, message = "complete", ""

    def record(step: int) -> bool:
        lps = {name: _log_probs(model, x, dataset.n_classes) for name, x in probe_x.items()}
        model.train()
        bad = [name for name, lp in lps.items() if not torch.isfinite(lp).all()]
        if bad:
            return False
        rec_steps.append(step)
        for name, lp in lps.items():
            rec_logp[name].append(lp)
        if on_checkpoint is not None:
            on_checkpoint(len(rec_steps) - 1, n_ckpt, step)
        return True

    loss_fn = nn.CrossEntropyLoss()
    next_ckpt = 0  # index into ckpt
    step = 0
    model.train()
    if record(0):
        next_ckpt = 1
    else:
        status, message = "diverged", "non-finite predictions at step 0 (initial model)"
    while status == "complete" and step < total:
        perm = torch.randperm(n_train, generator=gen)
        for b in range(spe):
            idx = perm[b * bs : (b + 1) * bs]
            lr = _lr_at(cfg, step, total)
            for group in optimizer.param_groups:
                group["lr"] = lr
            loss = loss_fn(model(x_train[idx]), y_train[idx])
            if not torch.isfinite(loss):
                status = "diverged"
                message = (
                    f"non-finite minibatch loss at step {step} (epoch {step / spe:.2f}); "
                    f"kept {len(rec_steps)} checkpoints up to step {rec_steps[-1]}"
                )
                break
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            step += 1
            if next_ckpt < n_ckpt and step == ckpt[next_ckpt]:
                if not record(step):
                    status = "diverged"
                    message = (
                        f"non-finite predictions at step {step} (epoch {step / spe:.2f}); "
                        f"kept {len(rec_steps)} checkpoints up to step {rec_steps[-1]}"
                    )
                    break
                next_ckpt += 1
    model.eval()

    steps_arr = np.asarray(rec_steps, dtype=np.int64)
    logp = {
        name: (
            torch.stack(lps).numpy().astype(np.float32, copy=False)
            if lps
            else np.zeros((0, len(probes[name]), dataset.n_classes), dtype=np.float32)
        )
        for name, lps in rec_logp.items()
    }
    metrics = {}
    for split in ("train", "test"):
        lp = logp[split]  # (K, n, C)
        y = probe_y[split].numpy()
        if lp.shape[1] == 0:
            nll = np.full(lp.shape[0], np.nan)
            acc = np.full(lp.shape[0], np.nan)
        else:
            picked = np.take_along_axis(lp, y[None, :, None], axis=2)[..., 0]
            nll = -picked.astype(np.float64).mean(axis=1)
            acc = (lp.argmax(axis=2) == y[None, :]).mean(axis=1).astype(np.float64)
        metrics[f"{split}_loss"] = nll
        metrics[f"{split}_acc"] = acc
    if status == "complete":
        message = (
            f"{total} steps ({cfg['epochs']} epochs), {len(rec_steps)} checkpoints; "
            f"final test acc {metrics['test_acc'][-1]:.4f}"
        )
    return RunResult(
        steps=steps_arr,
        epochs=steps_arr.astype(np.float64) / spe,
        metrics=metrics,
        logp=logp,
        status=status,
        message=message,
        wall_time=time.perf_counter() - t0,
        n_parameters=n_params,
        fingerprints={name: p.fingerprint for name, p in probes.items()},
        steps_per_epoch=spe,
    )
