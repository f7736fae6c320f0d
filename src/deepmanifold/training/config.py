"""The keys of a run's configuration, their defaults, and their validation."""

from __future__ import annotations

import math
from typing import Any, Mapping

import numpy as np

from .augment import AUGMENTATION_MODES
from .loss import LOSSES
from .measurements import check_measurement_name, get_measurement
from .schedule import exp_lr_factor

__all__ = [
    "CONFIG_KEYS",
    "INITS",
    "MOMENTUM_OPTIMIZERS",
    "OPTIMIZERS",
    "OPTIONAL_DEFAULTS",
    "OPTIONAL_KEYS",
    "SCHEDULES",
    "is_int",
    "is_real",
    "validate_config",
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
    "loss",
    "measurements",
    "measurement_options",
)
#: Defaults of the optional training keys: the plain run (no warm-up, no augmentation,
#: the fresh model, predictions recorded and nothing else).
OPTIONAL_DEFAULTS: dict[str, Any] = {
    "warmup_epochs": 0,
    "augmentation": "none",
    "init": "default",
    "init_epochs": 5,
    "init_subset": 100,
    "loss": "cross_entropy",
    "measurements": (),
    "measurement_options": {},
}
OPTIMIZERS: tuple[str, ...] = ("sgd", "nesterov", "adam", "adamw")
SCHEDULES: tuple[str, ...] = ("cosine", "constant", "exp")
#: Initialisations: the default fresh model, or a "corner" of prediction space
#: reached by pre-training it (docs/method.md §6, claim 4).
INITS: tuple[str, ...] = ("default", "shuffled_labels", "tiny_subset")
#: Optimisers that take ``momentum``.
MOMENTUM_OPTIMIZERS: tuple[str, ...] = ("sgd", "nesterov")


def is_int(v: Any) -> bool:
    """An integer that is not a bool."""
    return isinstance(v, (int, np.integer)) and not isinstance(v, bool)


def is_real(v: Any) -> bool:
    """A real number that is not a bool."""
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool)


def validate_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """The config with its optional keys filled in, every value checked.

    See :func:`~deepmanifold.training.train_run` for the keys and what they mean.

    Raises
    ------
    ValueError
        Missing, unknown or invalid keys, naming the key, the value and what is allowed.
    """
    if not isinstance(config, Mapping):
        raise ValueError(f"config must be a mapping, got {type(config).__name__}")
    unknown = sorted(set(config) - set(CONFIG_KEYS) - set(OPTIONAL_KEYS))
    if unknown:
        raise ValueError(
            f"unknown config key(s) {unknown}; allowed: {sorted(CONFIG_KEYS + OPTIONAL_KEYS)}"
        )
    required = [k for k in CONFIG_KEYS if k != "momentum"]
    if config.get("optimizer") in MOMENTUM_OPTIMIZERS:
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
    if not is_real(cfg["lr"]) or not cfg["lr"] > 0 or not math.isfinite(cfg["lr"]):
        raise ValueError(f"config['lr'] must be a finite number > 0, got {cfg['lr']!r}")
    if not is_real(cfg["weight_decay"]) or not 0 <= cfg["weight_decay"] < math.inf:
        raise ValueError(f"config['weight_decay'] must be a number >= 0, got {cfg['weight_decay']!r}")
    if cfg["optimizer"] == "sgd" and (
        not is_real(cfg["momentum"]) or not 0 <= cfg["momentum"] < 1
    ):
        raise ValueError(f"config['momentum'] must be a number in [0, 1), got {cfg['momentum']!r}")
    if cfg["optimizer"] == "nesterov" and (
        not is_real(cfg["momentum"]) or not 0 < cfg["momentum"] < 1
    ):
        raise ValueError(
            f"config['momentum'] must be a number in (0, 1) for optimizer 'nesterov' "
            f"(Nesterov momentum needs momentum > 0), got {cfg['momentum']!r}"
        )
    for key, minimum in (("batch_size", 1), ("epochs", 1), ("checkpoints", 2)):
        if not is_int(cfg[key]) or cfg[key] < minimum:
            raise ValueError(f"config[{key!r}] must be an integer >= {minimum}, got {cfg[key]!r}")
    if not is_int(cfg["seed"]) or cfg["seed"] < 0:
        raise ValueError(f"config['seed'] must be an integer >= 0, got {cfg['seed']!r}")
    if cfg["schedule"] == "exp":
        if cfg["optimizer"] != "sgd":
            raise ValueError(f"config['schedule'] 'exp' is the equivalent of SGD with momentum and weight decay "
                             f"(Li & Arora 2020); it supports optimizer 'sgd', got {cfg['optimizer']!r}")
        if cfg.get("warmup_epochs", 0):
            raise ValueError("config['schedule'] 'exp' takes no warm-up: set warmup_epochs = 0")
        exp_lr_factor(cfg["lr"], cfg["weight_decay"], cfg["momentum"])  # its own range checks
    w = cfg["warmup_epochs"]
    if not is_real(w) or not 0 <= w < math.inf:
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
    if not isinstance(cfg["loss"], str) or cfg["loss"] not in LOSSES:
        raise ValueError(f"config['loss'] must be one of {LOSSES}, got {cfg['loss']!r}")
    for key in ("init_epochs", "init_subset"):
        if not is_int(cfg[key]) or cfg[key] < 1:
            raise ValueError(f"config[{key!r}] must be an integer >= 1, got {cfg[key]!r}")
    names = cfg["measurements"]
    if isinstance(names, str) or not isinstance(names, (list, tuple)):
        raise ValueError(f"config['measurements'] must be a list of measurement names, got {names!r}")
    for name in names:
        check_measurement_name(name)
    cfg["measurements"] = tuple(names)
    options = cfg["measurement_options"]
    if not isinstance(options, Mapping) or not all(isinstance(v, Mapping) for v in options.values()):
        raise ValueError("config['measurement_options'] must map measurement names to tables of options, "
                         f"got {options!r}")
    for name, kwargs in options.items():
        if name not in names:
            raise ValueError(f"config['measurement_options'] has options for {name!r}, which is not in "
                             f"config['measurements'] {list(names)}")
        get_measurement(name, kwargs)  # the measurement's own checks, before anything trains
    cfg["measurement_options"] = {name: dict(kwargs) for name, kwargs in options.items()}
    return cfg
