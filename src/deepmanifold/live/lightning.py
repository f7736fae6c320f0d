"""Record a PyTorch Lightning training run: a ``Trainer`` callback around a Recorder.

Needs PyTorch Lightning (``pip install 'deepmanifold[lightning]'``; the ``lightning``
package's ``lightning.pytorch`` is used when it is installed, ``pytorch_lightning``
otherwise). The ``LightningModule``'s ``forward`` must map a batch of probe inputs to
class logits, as for any recorded model.
"""

from __future__ import annotations

import math

from deepmanifold.training import Recorder

from .callbacks import CheckpointSchedule

try:
    from lightning.pytorch.callbacks import Callback
except ImportError:
    try:
        from pytorch_lightning.callbacks import Callback
    except ImportError as exc:  # pragma: no cover - the optional extra is not installed
        raise ImportError("LightningRecorder needs PyTorch Lightning: pip install 'deepmanifold[lightning]' "
                          "(or pytorch-lightning)") from exc

__all__ = ["LightningRecorder"]


class LightningRecorder(Callback):
    """Record a ``Trainer.fit`` run through ``recorder`` at the checkpoint steps.

    The run's length is the trainer's ``estimated_stepping_batches``; step 0 is recorded
    when fitting starts, then each checkpoint step after the optimiser step that reaches
    it (``trainer.global_step``), with its epoch. When fitting ends the recorder is closed
    (the run committed, if it has a store); when it raises, nothing is committed and the
    run's published state says so.

    Parameters
    ----------
    recorder : Recorder
    checkpoints : int, default 50
    close : bool, default True
        Close the recorder when fitting ends (False: the caller closes it, e.g. after a
        test phase).

    Attributes
    ----------
    schedule : CheckpointSchedule or None
        Made when fitting starts.
    """

    def __init__(self, recorder: Recorder, *, checkpoints: int = 50, close: bool = True):
        super().__init__()
        if not isinstance(recorder, Recorder):
            raise ValueError(f"recorder must be a deepmanifold Recorder, got {type(recorder).__name__}")
        self.recorder = recorder
        self.checkpoints = checkpoints
        self.close = close
        self.schedule: CheckpointSchedule | None = None

    def on_fit_start(self, trainer, pl_module) -> None:
        total = trainer.estimated_stepping_batches
        if not isinstance(total, int) and not (isinstance(total, float) and math.isfinite(total)):
            raise ValueError("LightningRecorder needs a run of known length: set max_epochs or max_steps")
        self.schedule = CheckpointSchedule(self.recorder, int(total), checkpoints=self.checkpoints)
        self.schedule(pl_module, int(trainer.global_step), epoch=float(trainer.current_epoch))

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        step = int(trainer.global_step)
        if self.schedule is None or step > self.schedule.total_steps or not self.schedule.due(step):
            return
        batches = trainer.num_training_batches
        fraction = (batch_idx + 1) / batches if isinstance(batches, int) and batches > 0 else 0.0
        self.schedule(pl_module, step, epoch=trainer.current_epoch + fraction)

    def on_fit_end(self, trainer, pl_module) -> None:
        if self.close and not self.recorder.closed:
            self.recorder.close()

    def on_exception(self, trainer, pl_module, exception: BaseException) -> None:
        if not self.recorder.closed:
            self.recorder.abandon(f"{type(exception).__name__}: {exception}")
