"""One training run: optimiser, schedule, checkpoint schedule, and the recorder."""

from ..models import available_models, build_model
from .run import CONFIG_KEYS, OPTIMIZERS, SCHEDULES, RunResult, steps_per_epoch, train_run
from .schedule import checkpoint_steps

__all__ = [
    "CONFIG_KEYS",
    "OPTIMIZERS",
    "SCHEDULES",
    "RunResult",
    "available_models",
    "build_model",
    "checkpoint_steps",
    "steps_per_epoch",
    "train_run",
]
