"""One training run: optimiser, schedule, augmentation, corner initialisations,
checkpoint schedule, and the recorder."""

from ..models import available_models, build_model
from .augment import AUGMENTATION_MODES, augment_batch, crop_padding
from .run import (
    CONFIG_KEYS,
    INITS,
    OPTIMIZERS,
    OPTIONAL_DEFAULTS,
    OPTIONAL_KEYS,
    SCHEDULES,
    RunResult,
    steps_per_epoch,
    resolve_device,
    train_run,
    warmup_steps,
)
from .ensemble import ensemble_key, train_ensemble
from .schedule import checkpoint_steps

__all__ = [
    "AUGMENTATION_MODES",
    "CONFIG_KEYS",
    "INITS",
    "OPTIMIZERS",
    "OPTIONAL_DEFAULTS",
    "OPTIONAL_KEYS",
    "SCHEDULES",
    "RunResult",
    "augment_batch",
    "available_models",
    "build_model",
    "checkpoint_steps",
    "crop_padding",
    "ensemble_key",
    "resolve_device",
    "steps_per_epoch",
    "train_ensemble",
    "train_run",
    "warmup_steps",
]
