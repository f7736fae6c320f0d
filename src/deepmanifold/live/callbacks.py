"""Record a run from any training loop: the recorder called at the right steps.

:class:`CheckpointSchedule` is the plain-loop callback: made once with the run's total
number of optimiser steps, called after every step (and once before the first, with
``step = 0``), it hands the model to its :class:`~deepmanifold.training.Recorder` at the
steps of :func:`~deepmanifold.training.checkpoint_steps` (dense early, as our own
trainers record). :class:`~deepmanifold.live.lightning.LightningRecorder` does the same
inside PyTorch Lightning's ``Trainer``.
"""

from __future__ import annotations

import numbers

import numpy as np
from torch import nn

from deepmanifold.training import Recorder, checkpoint_steps

__all__ = ["CheckpointSchedule"]


class CheckpointSchedule:
    """Call ``recorder.checkpoint`` at the checkpoint steps of a run of ``total_steps`` steps.

    Parameters
    ----------
    recorder : Recorder
    total_steps : int
        Optimiser steps the loop will take (>= 1).
    checkpoints : int, default 50
        Checkpoints to record, step 0 and the last step included
        (:func:`~deepmanifold.training.checkpoint_steps`).
    steps_per_epoch : int, optional
        Gives each checkpoint its epoch, ``step / steps_per_epoch``.

    Examples
    --------
    >>> schedule = CheckpointSchedule(recorder, total_steps=epochs * len(loader))  # doctest: +SKIP
    >>> schedule(model, 0)                                                         # doctest: +SKIP
    >>> for step, (x, y) in enumerate(batches, start=1):                           # doctest: +SKIP
    ...     ...  # one optimiser update
    ...     schedule(model, step)
    >>> recorder.close()                                                           # doctest: +SKIP
    """

    def __init__(self, recorder: Recorder, total_steps: int, *, checkpoints: int = 50,
                 steps_per_epoch: int | None = None):
        if not isinstance(recorder, Recorder):
            raise ValueError(f"recorder must be a deepmanifold Recorder, got {type(recorder).__name__}")
        for name, value, minimum in (("total_steps", total_steps, 1), ("checkpoints", checkpoints, 2)):
            if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
                raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
        if steps_per_epoch is not None and (isinstance(steps_per_epoch, bool)
                                            or not isinstance(steps_per_epoch, numbers.Integral)
                                            or steps_per_epoch < 1):
            raise ValueError(f"steps_per_epoch must be an integer >= 1 or None, got {steps_per_epoch!r}")
        self.recorder = recorder
        self.total_steps = int(total_steps)
        self.steps = checkpoint_steps(self.total_steps, int(checkpoints))
        self.steps_per_epoch = steps_per_epoch
        self._due = set(int(s) for s in self.steps)

    def __repr__(self) -> str:
        return (f"CheckpointSchedule({len(self.steps)} checkpoints over {self.total_steps} steps, "
                f"{self.recorder.n_checkpoints} recorded)")

    def due(self, step: int) -> bool:
        """Whether ``step`` is a checkpoint step not recorded yet."""
        done = self.recorder.steps
        return int(step) in self._due and (not done or int(step) > done[-1])

    def __call__(self, model: nn.Module, step: int, epoch: float | None = None) -> bool:
        """Record ``model`` as checkpoint ``step`` if the schedule says so; True if it was recorded.

        Steps past ``total_steps`` raise: the schedule was made for a shorter run.
        """
        if isinstance(step, bool) or not isinstance(step, (numbers.Integral, np.integer)) or step < 0:
            raise ValueError(f"step must be an integer >= 0, got {step!r}")
        if step > self.total_steps:
            raise ValueError(f"step {step} is past the {self.total_steps} steps this schedule was made for")
        if not self.due(step):
            return False
        if epoch is None and self.steps_per_epoch:
            epoch = step / self.steps_per_epoch
        return self.recorder.checkpoint(model, int(step), epoch)
