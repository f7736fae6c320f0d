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
from .augment import AUGMENTATION_MODES, augment_batch, dataset_augmentations
from .schedule import checkpoint_steps

__all__ = [
    "RunResult",
    "train_run",
    "CONFIG_KEYS",
    "OPTIONAL_KEYS",
    "OPTIONAL_DEFAULTS",
    "OPTIMIZERS",
    "SCHEDULES",
    "AUGMENTATION_MODES",
    "INITS",
    "steps_per_epoch",
    "warmup_steps",
]

#: Keys every config must contain (``momentum`` only when ``optimizer`` is
#: ``"sgd"`` or ``"nesterov"``).
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
#: Keys a config may contain; absent ones take :data:`OPTIONAL_DEFAULTS`
#: (``data`` is accepted and ignored by :func:`train_run`).
OPTIONAL_KEYS: tuple[str, ...] = (
    "data",
    "warmup_epochs",
    "augmentation",
    "init",
    "init_epochs",
    "init_subset",
)
#: Defaults of the optional training keys: a config without them trains exactly as
#: before they existed.
OPTIONAL_DEFAULTS: dict[str, Any] = {
    "warmup_epochs": 0,
    "augmentation": "none",
    "init": "default",
    "init_epochs": 5,
    "init_subset": 100,
}
_OPTIONAL_KEYS = OPTIONAL_KEYS  # backwards-compatible private name
OPTIMIZERS: tuple[str, ...] = ("sgd", "nesterov", "adam", "adamw")
SCHEDULES: tuple[str, ...] = ("cosine", "constant")
#: Initialisations: the default fresh model, or a "corner" of prediction space
#: reached by pre-training it (SPEC §6, claim 4).
INITS: tuple[str, ...] = ("default", "shuffled_labels", "tiny_subset")
_MOMENTUM_OPTIMIZERS = ("sgd", "nesterov")
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
    init_info : dict
        What was done before step 0 (not recorded). Always has ``"init"`` (the config's
        ``init``) and ``"steps"`` (pre-training updates, 0 for ``"default"``). For a
        corner initialisation also: ``"epochs"``, ``"n_samples"`` (samples trained on),
        ``"batch_size"``, ``"lr"`` (constant), ``"status"`` (``"complete"`` or
        ``"diverged"``), ``"fit_acc"`` (eval-mode accuracy of the corner model on the
        labels it was pre-trained on: the shuffled labels, or the subset's labels),
        ``"train_acc"`` (its accuracy on the whole training set with the true labels;
        NaN if its predictions are not finite) and, for ``"tiny_subset"``,
        ``"subset"`` (sorted list of the training indices used).
    device : str
        Where it was trained (``"cpu"``, ``"cuda"``, ``"cuda:1"``, ...).
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
    init_info: dict[str, Any] = field(default_factory=lambda: {"init": "default", "steps": 0})
    device: str = "cpu"

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


def warmup_steps(warmup_epochs: float, steps_per_epoch: int) -> int:
    """Number ``W`` of warm-up updates: ``floor(warmup_epochs * steps_per_epoch + 1/2)``."""
    return int(math.floor(float(warmup_epochs) * int(steps_per_epoch) + 0.5))


def _is_int(v: Any) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, bool)


def _is_real(v: Any) -> bool:
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool)


def _validate(config: Mapping[str, Any]) -> dict[str, Any]:
    if not isinstance(config, Mapping):
        raise ValueError(f"config must be a mapping, got {type(config).__name__}")
    unknown = sorted(set(config) - set(CONFIG_KEYS) - set(OPTIONAL_KEYS))
    if unknown:
        raise ValueError(
            f"unknown config key(s) {unknown}; allowed: {sorted(CONFIG_KEYS + OPTIONAL_KEYS)}"
        )
    required = [k for k in CONFIG_KEYS if k != "momentum"]
    if config.get("optimizer") in _MOMENTUM_OPTIMIZERS:
        required.append("momentum")
    missing = [k for k in required if k not in config]
    if missing:
        raise ValueError(f"config is missing key(s) {missing}")
    cfg = {**OPTIONAL_DEFAULTS, **dict(config)}
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
    if cfg["optimizer"] == "nesterov" and (
        not _is_real(cfg["momentum"]) or not 0 < cfg["momentum"] < 1
    ):
        raise ValueError(
            f"config['momentum'] must be a number in (0, 1) for optimizer 'nesterov' "
            f"(Nesterov momentum needs momentum > 0), got {cfg['momentum']!r}"
        )
    for key, minimum in (("batch_size", 1), ("epochs", 1), ("checkpoints", 2)):
        if not _is_int(cfg[key]) or cfg[key] < minimum:
            raise ValueError(f"config[{key!r}] must be an integer >= {minimum}, got {cfg[key]!r}")
    if not _is_int(cfg["seed"]) or cfg["seed"] < 0:
        raise ValueError(f"config['seed'] must be an integer >= 0, got {cfg['seed']!r}")
    w = cfg["warmup_epochs"]
    if not _is_real(w) or not 0 <= w < math.inf:
        raise ValueError(f"config['warmup_epochs'] must be a number >= 0, got {w!r}")
    if w > cfg["epochs"]:
        raise ValueError(
            f"config['warmup_epochs'] ({w!r}) exceeds config['epochs'] ({cfg['epochs']!r})"
        )
    if not isinstance(cfg["augmentation"], str) or cfg["augmentation"] not in AUGMENTATION_MODES:
        raise ValueError(
            f"config['augmentation'] must be one of {AUGMENTATION_MODES}, got {cfg['augmentation']!r}"
        )
    if not isinstance(cfg["init"], str) or cfg["init"] not in INITS:
        raise ValueError(f"config['init'] must be one of {INITS}, got {cfg['init']!r}")
    for key in ("init_epochs", "init_subset"):
        if not _is_int(cfg[key]) or cfg[key] < 1:
            raise ValueError(f"config[{key!r}] must be an integer >= 1, got {cfg[key]!r}")
    return cfg


def _make_optimizer(cfg: dict[str, Any], params) -> torch.optim.Optimizer:
    name = cfg["optimizer"]
    if name in _MOMENTUM_OPTIMIZERS:
        kwargs = dict(nesterov=True) if name == "nesterov" else {}
        return torch.optim.SGD(
            params,
            lr=float(cfg["lr"]),
            momentum=float(cfg["momentum"]),
            weight_decay=float(cfg["weight_decay"]),
            **kwargs,
        )
    if name == "adamw":
        return torch.optim.AdamW(
            params, lr=float(cfg["lr"]), weight_decay=float(cfg["weight_decay"])
        )
    return torch.optim.Adam(params, lr=float(cfg["lr"]), weight_decay=float(cfg["weight_decay"]))


def _lr_at(cfg: Mapping[str, Any], step: int, total: int, warmup: int = 0) -> float:
    """Learning rate of the update that takes the model from ``step`` to ``step + 1``.

    ``lr * (step + 1) / warmup`` while ``step < warmup``; afterwards the schedule over
    the remaining ``total - warmup`` updates: ``lr`` (constant) or
    ``lr * (1 + cos(pi * (step - warmup) / (total - warmup))) / 2`` (cosine).
    """
    lr = float(cfg["lr"])
    if step < warmup:
        return lr * (step + 1) / warmup
    if cfg["schedule"] == "constant":
        return lr
    return lr * 0.5 * (1.0 + math.cos(math.pi * (step - warmup) / (total - warmup)))


@torch.no_grad()
def _log_probs(model: nn.Module, x: torch.Tensor, n_classes: int) -> torch.Tensor:
    """Eval-mode log-probabilities (n, C) float32, the model left in eval mode."""
    model.eval()
    out = [
        torch.log_softmax(model(x[i : i + _EVAL_CHUNK]).float(), dim=1)
        for i in range(0, x.shape[0], _EVAL_CHUNK)
    ]
    return torch.cat(out) if out else torch.empty(0, n_classes)


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


def _metrics_from_logp(logp: Mapping[str, np.ndarray], probe_y: Mapping[str, torch.Tensor]) -> dict:
    """``train_loss``, ``train_acc``, ``test_loss``, ``test_acc`` per checkpoint, from (K, n, C) log-probs."""
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
    return metrics


def _stream_seed(seed: int, tag: int) -> int:
    """Seed of the random stream ``tag`` derived from the run seed (independent streams)."""
    return int(np.random.SeedSequence([int(seed), int(tag)]).generate_state(1, dtype=np.uint64)[0] >> 1)


def _shuffle_seed(seed: int) -> int:
    """Seed of the minibatch-order generator, a stream independent of the init seed."""
    return _stream_seed(seed, 0x5EED)


def _augment_seed(seed: int) -> int:
    """Seed of the augmentation generator (crop offsets, flips)."""
    return _stream_seed(seed, 0xA06)


def _init_seed(seed: int) -> int:
    """Seed of the corner-initialisation generator (label permutation or subset, and
    the pre-training minibatch order)."""
    return _stream_seed(seed, 0xC0C0)


def _accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, n_classes: int) -> float:
    """Eval-mode accuracy of ``model`` on ``(x, y)``; NaN if its predictions are not finite."""
    if x.shape[0] == 0:
        return float("nan")
    lp = _log_probs(model, x, n_classes)
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
    augmentation; all randomness from one generator seeded by :func:`_init_seed`
    (permutation or subset first, then the minibatch orders). Stops at the first
    non-finite minibatch loss (``status == "diverged"``).
    """
    kind = cfg["init"]
    gen = torch.Generator().manual_seed(_init_seed(cfg["seed"]))
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
    optimizer = _make_optimizer(cfg, model.parameters())
    lr = float(cfg["lr"])
    status, step = "complete", 0
    model.train()
    for _ in range(epochs):
        perm = torch.randperm(n, generator=gen).to(dev)
        for b in range(spe):
            idx = perm[b * bs : (b + 1) * bs]
            for group in optimizer.param_groups:
                group["lr"] = lr
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
        fit_acc=_accuracy(model, x, y, dataset.n_classes),
        train_acc=_accuracy(model, x_all, y_all, dataset.n_classes),
    )
    model.train()
    return info


def train_run(
    config: Mapping[str, Any],
    dataset: Dataset,
    probes: Mapping[str, ProbeSet],
    *,
    on_checkpoint: Callable[[int, int, int], None] | None = None,
    device: str | torch.device | None = "cpu",
) -> RunResult:
    """Train one model and record its probe-set predictions at checkpoints.

    Parameters
    ----------
    config : dict
        Fully resolved run configuration with keys:

        - ``arch`` (str) and ``arch_options`` (dict of knobs) for
          :func:`deepmanifold.models.build_model`;
        - ``optimizer``, one of :data:`OPTIMIZERS`: ``"sgd"`` (``torch.optim.SGD`` with
          ``momentum``, a number in [0, 1)), ``"nesterov"`` (``torch.optim.SGD`` with
          ``nesterov=True``; ``momentum`` in (0, 1)), ``"adam"`` (``torch.optim.Adam``)
          or ``"adamw"`` (``torch.optim.AdamW``); ``momentum`` is required for
          ``"sgd"``/``"nesterov"`` and ignored (may be absent) for the Adam variants;
        - ``lr`` (> 0), ``weight_decay`` (>= 0): L2 added to the gradient by
          ``"sgd"``, ``"nesterov"`` and ``"adam"``; decoupled (``p -= lr_s * wd * p``
          at the scheduled ``lr_s``) for ``"adamw"``;
        - ``batch_size``, ``epochs`` (ints >= 1), ``seed`` (int >= 0);
        - ``checkpoints``: target number of checkpoints (see :func:`checkpoint_steps`);
        - ``schedule``: ``"cosine"`` or ``"constant"`` (see ``warmup_epochs``);
        - ``warmup_epochs`` (optional, number in [0, epochs], default 0): with
          ``W = floor(warmup_epochs * steps_per_epoch + 1/2)`` (:func:`warmup_steps`)
          and ``S = epochs * steps_per_epoch``, the update at step ``s`` (model
          ``s -> s + 1``) uses ``lr * (s + 1) / W`` for ``s < W`` (linear warm-up,
          reaching ``lr`` at ``s = W - 1``), then ``lr`` (constant) or
          ``lr * (1 + cos(pi (s - W) / (S - W))) / 2`` (cosine over the remaining
          ``S - W`` updates). ``W = 0`` is the plain schedule;
        - ``augmentation`` (optional, :data:`AUGMENTATION_MODES`, default ``"none"``):
          ``"simple"`` = random crop with zero padding ``floor(H/8 + 1/2)`` /
          ``floor(W/8 + 1/2)`` px and/or random horizontal flip, each only if listed in
          ``dataset.augmentations`` (``("crop",)`` when the dataset has no such
          attribute); see :func:`~deepmanifold.training.augment.augment_batch`. Applied
          to each training minibatch, on the fly, from a generator seeded by a stream
          derived from ``seed``; probe sets are never augmented (SPEC §1);
        - ``init`` (optional, :data:`INITS`, default ``"default"``): ``"default"`` =
          the fresh model; ``"shuffled_labels"`` = first train it for ``init_epochs``
          epochs on the training set with its labels randomly permuted;
          ``"tiny_subset"`` = first train it for ``init_epochs`` epochs on
          ``init_subset`` random training samples with their true labels. That phase
          uses the configured optimiser at the constant ``lr`` (no warm-up, no
          augmentation, its own seeded generator), is not recorded, and is reported in
          :attr:`RunResult.init_info`; the optimiser state is then reset and step 0 is
          the corner model (BatchNorm running statistics carried over);
        - ``init_epochs`` (optional, int >= 1, default 5), ``init_subset`` (optional,
          int >= 1 and <= the training samples, default 100): ignored unless ``init``
          uses them;
        - ``data`` (optional): accepted and ignored (the caller builds ``dataset``).

        A config without the optional keys trains exactly (bitwise) as before they
        existed.
    dataset : Dataset
        Training data; ``x_train`` of shape (N, C_in, H, W).
    probes : dict[str, ProbeSet]
        Must contain ``"train"`` and ``"test"`` (used for the metrics); any other probe
        sets are recorded too. Inputs come from ``dataset`` at the probe's indices.
    on_checkpoint : callable(index, total, step), optional
        Called after each recorded checkpoint (``index`` in ``0..total-1``).
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
    cfg = _validate(config)
    for required in ("train", "test"):
        if required not in probes:
            raise ValueError(f"probes must contain {required!r}, got {sorted(probes)}")
    dev = resolve_device(device)
    probe_x = {name: p.inputs(dataset).to(dev) for name, p in probes.items()}
    probe_y = {name: torch.from_numpy(np.array(p.labels, dtype=np.int64)) for name, p in probes.items()}

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(cfg["seed"]))
        model = build_model(
            cfg["arch"], dataset.input_shape, dataset.n_classes, **dict(cfg["arch_options"])
        )
    n_params = count_parameters(model)
    model.to(dev)

    x_train, y_train = dataset.x_train.to(dev), dataset.y_train.to(dev)
    n_train = x_train.shape[0]
    bs = int(cfg["batch_size"])
    spe = steps_per_epoch(n_train, bs)
    total = int(cfg["epochs"]) * spe
    warmup = warmup_steps(cfg["warmup_epochs"], spe)
    ckpt = checkpoint_steps(total, int(cfg["checkpoints"]))
    n_ckpt = len(ckpt)
    aug_ops = _augmentation_ops(cfg, dataset)
    aug_crop, aug_flip = "crop" in aug_ops, "hflip" in aug_ops
    aug_gen = torch.Generator().manual_seed(_augment_seed(cfg["seed"])) if aug_ops else None

    loss_fn = nn.CrossEntropyLoss()
    init_info: dict[str, Any] = {"init": "default", "steps": 0}
    if cfg["init"] != "default":
        init_info = _corner_init(cfg, model, dataset, loss_fn)
    # A fresh optimiser: the recorded run starts with no state (momentum, Adam moments).
    optimizer = _make_optimizer(cfg, model.parameters())
    gen = torch.Generator().manual_seed(_shuffle_seed(cfg["seed"]))

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
            rec_logp[name].append(lp.cpu())
        if on_checkpoint is not None:
            on_checkpoint(len(rec_steps) - 1, n_ckpt, step)
        return True

    next_ckpt = 0  # index into ckpt
    step = 0
    model.train()
    if init_info.get("status", "complete") != "complete":
        status = "diverged"
        message = (
            f"non-finite minibatch loss during the {cfg['init']!r} initialisation phase "
            f"(after {init_info['steps']} pre-training updates); no checkpoints recorded"
        )
    elif record(0):
        next_ckpt = 1
    else:
        status = "diverged"
        message = (
            "non-finite predictions at step 0 (initial model)"
            if cfg["init"] == "default"
            else f"non-finite predictions at step 0 (the {cfg['init']!r} corner model)"
        )
    while status == "complete" and step < total:
        perm = torch.randperm(n_train, generator=gen).to(dev)
        for b in range(spe):
            idx = perm[b * bs : (b + 1) * bs]
            lr = _lr_at(cfg, step, total, warmup)
            for group in optimizer.param_groups:
                group["lr"] = lr
            xb = x_train[idx]
            if aug_gen is not None:
                xb = augment_batch(xb, crop=aug_crop, hflip=aug_flip, generator=aug_gen)
            loss = loss_fn(model(xb), y_train[idx])
            if not torch.isfinite(loss):
                status = "diverged"
                message = (
                    f"non-finite minibatch loss at step {step} (epoch {step / spe:.2f}"
                    f"{', during warm-up' if step < warmup else ''}); "
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
    metrics = _metrics_from_logp(logp, probe_y)
    if status == "complete":
        message = (
            f"{total} steps ({cfg['epochs']} epochs), {len(rec_steps)} checkpoints; "
            f"final test acc {metrics['test_acc'][-1]:.4f}"
        )
        if cfg["init"] != "default":
            message += (
                f"; started from the {cfg['init']!r} corner ({init_info['steps']} "
                f"pre-training updates, corner train acc {init_info['train_acc']:.4f})"
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
        init_info=init_info,
        device=str(dev),
    )
