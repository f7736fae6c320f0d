"""Runs placed on the manifold while they train.

- :class:`ReferencePicture`, :class:`Placement` -- a reference sweep's picture, and where a
  new checkpoint sits in it (out-of-sample projection, docs/method.md §4.3); a
  :class:`~deepmanifold.training.Recorder` given ``reference=`` places every checkpoint.
- :func:`forecast_run` -- a run's final accuracy and progress, and when it reaches a given
  progress, from the reference runs nearest at equal progress (:class:`Forecast`);
  :func:`power_law_forecast`, the learning-curve baseline.
- :func:`serve_watch` and :class:`Watcher` -- ``deepmanifold watch``: the live runs of a
  store over the reference picture, in the browser, updated as checkpoints arrive.
- :class:`CheckpointSchedule` (any loop) and :class:`LightningRecorder` (PyTorch
  Lightning) -- record a training run from the loop users already have.
- :class:`Pruning`, :func:`asha_continues` -- a sweep's ``[prune]`` settings and ASHA's
  asynchronous rule; :class:`ProgressScheduler` applies it to Ray Tune trials.

Names are imported on first use, so ``import deepmanifold.live`` stays light.
"""

from __future__ import annotations

from deepmanifold.utils import lazy_exports

_WHERE = {
    "ReferencePicture": "reference", "Placement": "reference", "PreparedModels": "reference",
    "Watcher": "watch", "serve_watch": "watch",
    "Forecast": "forecast", "forecast_run": "forecast", "power_law_forecast": "forecast",
    "CheckpointSchedule": "callbacks", "LightningRecorder": "lightning",
    "Pruning": "pruning", "asha_continues": "pruning", "ProgressScheduler": "tune",
}

__all__ = sorted(_WHERE)

__getattr__, __dir__ = lazy_exports(__name__, _WHERE)
