"""One training run: the plan, the loop, and the recorder any loop records through.

- :func:`train_run`, :func:`train_ensemble` -- our trainers (one run; several seeds at once).
- :class:`Recorder`, :class:`RunResult` -- what a loop (ours or yours) hands its model to at
  checkpoints, and what it recorded; :mod:`.measurements` -- what is measured there.
- :mod:`.config` (the keys of a run), :mod:`.plan` (what both trainers share),
  :mod:`.schedule` (checkpoint steps), :mod:`.augment` (minibatch augmentation),
  :mod:`.loss` (the training losses).
"""

from ..models import available_models, build_model
from .augment import AUGMENTATION_MODES, augment_batch, crop_padding
from .config import CONFIG_KEYS, INITS, OPTIMIZERS, OPTIONAL_DEFAULTS, OPTIONAL_KEYS, SCHEDULES
from .ensemble import ensemble_key, train_ensemble
from .loss import LOSSES
from .measurements import MEASUREMENTS, Measurement, Predictions, Probe
from .plan import resolve_device, steps_per_epoch, warmup_steps
from .recorder import Recorder, RunResult
from .run import train_run
from .schedule import checkpoint_steps

__all__ = [
    "AUGMENTATION_MODES",
    "CONFIG_KEYS",
    "INITS",
    "LOSSES",
    "MEASUREMENTS",
    "Measurement",
    "OPTIMIZERS",
    "OPTIONAL_DEFAULTS",
    "OPTIONAL_KEYS",
    "Predictions",
    "Probe",
    "Recorder",
    "RunResult",
    "SCHEDULES",
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
