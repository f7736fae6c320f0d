"""The recorder: what any training loop hands its model to at checkpoints.

A :class:`Recorder` evaluates a run's measurements (the predictions on the probe sets
first, then any other :mod:`~deepmanifold.training.measurements`) each time it is
given the model, keeps what they return, and on :meth:`~Recorder.close` commits the
whole run to a store atomically, exactly as a sweep's runs are committed, so that
``deepmanifold report`` and ``analyze`` treat it like any other run. Our own trainers
(:func:`~deepmanifold.training.train_run`, :func:`~deepmanifold.training.train_ensemble`)
record through it; so can a plain PyTorch loop::

    with Recorder("runs/mine", probes, config={"arch": "mlp", "optimizer": "sgd", "seed": 0},
                  run_id="mlp-sgd-0", dataset=dataset) as rec:
        rec.checkpoint(model, step=0, epoch=0.0)
        for step, (x, y) in enumerate(batches, start=1):
            ...  # one optimiser update
            if step in schedule:
                rec.checkpoint(model, step, epoch=step / steps_per_epoch)

See ``examples/own_loop.py`` for a complete one.
"""

from __future__ import annotations

import math
import os
import time
import warnings
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np
import torch
from torch import nn

from ..data import Dataset, ProbeSet, probe_fingerprint
from ..models import count_parameters
from ..store import PREDICTIONS, STATUSES, Store, check_run_id
from ..store.live import LivePublisher
from ..utils import jsonable
from .measurements import Measurement, Predictions, Probe, get_measurement, metrics_from_logp

__all__ = ["Recorder", "RunResult"]


@dataclass
class RunResult:
    """What one run recorded.

    Attributes
    ----------
    steps : np.ndarray, shape (K,), int64
        Optimiser steps of the recorded checkpoints, increasing (``steps[0] == 0`` for
        our trainers: the initial model, before any update).
    epochs : np.ndarray, shape (K,), float64
        Epoch of each checkpoint (NaN where the loop gave none).
    metrics : dict[str, np.ndarray]
        ``<probe>_loss`` and ``<probe>_acc`` for each probe set, each (K,) float64:
        mean cross-entropy / accuracy computed from ``logp``.
    logp : dict[str, np.ndarray]
        Probe name -> (K, n_probe, C) float32 log-probabilities (eval mode, no
        augmentation, probe order).
    status : {"complete", "diverged", "pruned"}
    message : str
        Human-readable summary (for ``"diverged"``: the step where it happened).
    wall_time : float
        Seconds from the start of recording (our trainers: of training) to the end.
    n_parameters : int
        Trainable parameters of the model.
    fingerprints : dict[str, str]
        Probe name -> fingerprint of the probes evaluated.
    steps_per_epoch : int
        Optimiser steps per epoch (0 when unknown).
    info : dict
        Everything else recorded with the run: ``device`` (where it trained) and, for
        our trainers, ``init`` (see :attr:`init_info`); ``measurement_info`` holds what
        measurements report of themselves (layer names, reasons for NaN values);
        ``measurement_errors`` names a
        measurement that failed and was dropped, with the step and error.
    arrays : dict[str, dict[str, np.ndarray]]
        The other measurements: name -> key -> (K, ...) array.
    run_id : str or None
        Its id in the store, when recorded into one.
    committed : bool
        True if this run was committed to a store by this recording.
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
    info: dict[str, Any] = field(default_factory=dict)
    arrays: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)
    run_id: str | None = None
    committed: bool = False

    @property
    def n_checkpoints(self) -> int:
        """Number ``K`` of recorded checkpoints."""
        return int(self.steps.shape[0])

    @property
    def device(self) -> str:
        """Where the run was trained (``"cpu"``, ``"cuda"``, ``"cuda:1"``, ...)."""
        return str(self.info.get("device", "cpu"))

    @property
    def init_info(self) -> dict[str, Any]:
        """What was done before step 0 (see :func:`~deepmanifold.training.train_run`)."""
        return self.info.get("init", {"init": "default", "steps": 0})

    def final(self) -> dict[str, float]:
        """Metrics at the last recorded checkpoint (empty if none was recorded)."""
        if self.n_checkpoints == 0:
            return {}
        return {k: float(v[-1]) for k, v in self.metrics.items()}


class Recorder:
    """Record a run's measurements at checkpoints and commit the run.

    Parameters
    ----------
    store : Store, path-like or None
        Where :meth:`close` commits the run (a folder is opened as a store, created if
        missing). None records in memory only: :meth:`close` returns the result.
    probes : mapping of str to ProbeSet or to (inputs, labels)
        The fixed samples evaluated at every checkpoint, by name (``"train"`` and
        ``"test"`` are the ones the analyses read). A :class:`~deepmanifold.data.ProbeSet`
        takes its inputs from ``dataset``; a pair ``(inputs, labels)`` of tensors or
        arrays (inputs ``(n, ...)``, integer labels ``(n,)``) is used as it is, and is
        fingerprinted by its values.
    config : mapping
        The run's configuration, stored with it (JSON-serialisable; NumPy values are
        converted). The analyses read ``arch``, ``optimizer``, ``seed``, ``label``, ...
    run_id : str, optional
        The run's folder name in the store (letters, digits, ``-``, ``_``, ``.``);
        required with a store.
    dataset : Dataset, optional
        Source of the inputs of ``ProbeSet`` probes.
    measurements : sequence of str or Measurement, optional
        Recorded after the predictions (registered names or instances, see
        :mod:`deepmanifold.training.measurements`).
    steps_per_epoch : int, optional
        Gives each checkpoint's epoch as ``step / steps_per_epoch`` when
        :meth:`checkpoint` is not told it.
    n_classes : int, optional
        Number of classes (default ``dataset.n_classes``); only needed to shape the
        empty predictions of a run that records no checkpoint.
    last_step : int, optional
        The step of the run's last planned checkpoint, which every measurement evaluates
        (see Notes).
    publish : bool, default True
        With a store, publish each checkpoint while the run trains, in the store's
        ``.live/<run_id>/`` (:mod:`deepmanifold.store.live`), for ``deepmanifold watch``;
        removed when the run is committed.
    reference : ReferencePicture, optional
        A reference picture (:class:`deepmanifold.live.ReferencePicture`): each kept
        checkpoint is placed in it (:attr:`placements`), without recomputing it.

    Raises
    ------
    ValueError
        Bad probes (a ``ProbeSet`` without ``dataset``, inputs and labels of different
        lengths, non-integer labels), an unknown measurement, a bad run id, a store
        without run id, or a run id the store already holds.

    Notes
    -----
    At each checkpoint every module of the model is put in eval mode and each
    measurement runs on the probe inputs (under ``torch.no_grad`` unless it needs
    gradients); afterwards every module gets back the mode it had. Predictions that are
    not finite mark the run ``"diverged"``: that checkpoint and any later one are not
    kept (:meth:`checkpoint` returns False). Another measurement that raises is dropped
    from the run (its arrays are not stored) and named in ``info["measurement_errors"]``;
    the predictions go on.

    A measurement with an attribute ``every = k > 1`` (an expensive one) is evaluated at
    the first checkpoint, every ``k``-th after it and the one at ``last_step``; at the
    others its arrays hold NaN, so that every array still has one row per checkpoint.

    Used as a context manager the recorder closes (commits) the run when the block
    ends normally (its :class:`RunResult` is then ``recorder.result``). When the block
    raises, nothing is committed (:meth:`abandon`) and the exception propagates: a run
    that failed leaves no trace in the store's runs (its published state says
    ``"failed"``) and is trained again by the next sweep that asks for it.
    """

    def __init__(self, store: Store | str | os.PathLike | None, probes: Mapping[str, Any],
                 config: Mapping[str, Any], run_id: str | None = None, *, dataset: Dataset | None = None,
                 measurements: Sequence[str | Measurement] = (), steps_per_epoch: int | None = None,
                 n_classes: int | None = None, last_step: int | None = None, publish: bool = True,
                 reference=None):
        self._started = time.perf_counter()
        self.store = store if store is None or isinstance(store, Store) else Store(store)
        if self.store is not None:
            if run_id is None:
                raise ValueError("a run recorded into a store needs a run_id")
            check_run_id(run_id)
            if self.store.has_run(run_id):
                raise ValueError(f"run {run_id!r} is already in {self.store.root}")
        self.run_id = run_id
        self.config = jsonable(dict(config))
        if not probes:
            raise ValueError("probes is empty: give at least one probe set")
        self.probes = {str(name): _probe(str(name), p, dataset) for name, p in probes.items()}
        self.measurements: list[Measurement] = [Predictions()] + [get_measurement(m) for m in measurements]
        names = [m.name for m in self.measurements]
        if len(set(names)) != len(names):
            raise ValueError(f"measurements repeat a name: {names}")
        self.steps_per_epoch = steps_per_epoch
        self.last_step = last_step
        self.n_classes = n_classes if n_classes is not None else getattr(dataset, "n_classes", 0)
        self.diverged: str | None = None  # why, once predictions went non-finite
        self.errors: dict[str, str] = {}
        self.closed = False
        self.result: RunResult | None = None  # what close() returned
        self._steps: list[int] = []
        self._epochs: list[float] = []
        self._arrays: dict[str, dict[str, list[np.ndarray]]] = {m.name: {} for m in self.measurements}
        self._n_parameters = 0
        self._on_device: dict[torch.device, dict[str, Probe]] = {}
        self.reference = reference
        self.placements: list = []  # one Placement per kept checkpoint, with a reference
        self._reference_probe = None if reference is None else reference.matching_probe(
            {name: p.fingerprint for name, p in self.probes.items()})
        if self.store is not None:
            for name, probe in self.probes.items():
                source = probes[name]
                split = source.split if isinstance(source, ProbeSet) else name
                self.store.put_probe(fingerprint=probe.fingerprint, name=name, split=split,
                                     dataset=getattr(dataset, "name", "user"),
                                     indices=getattr(source, "indices", np.arange(len(probe))), labels=probe.labels)
        self._live = None
        if self.store is not None and publish:
            self._live = LivePublisher(self.store.root, run_id, self.config,
                                       {name: p.labels for name, p in self.probes.items()},
                                       {name: p.fingerprint for name, p in self.probes.items()})

    def __repr__(self) -> str:
        where = f" -> {self.store.root}/runs/{self.run_id}" if self.store is not None else ""
        return f"Recorder({len(self._steps)} checkpoints, probes {sorted(self.probes)}{where})"

    def __enter__(self) -> "Recorder":
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        if exc_type is not None:
            if not self.closed:
                self.abandon(f"{exc_type.__name__}: {exc}")  # a failed run commits nothing
        elif not self.closed:
            self.close()
        return False

    def abandon(self, message: str = "") -> None:
        """End the run without committing it; its published state says ``"failed"`` with ``message``."""
        self.closed = True
        if self._live is not None:
            self._publish(lambda live: live.finish("failed", message))

    @property
    def n_checkpoints(self) -> int:
        """Checkpoints kept so far."""
        return len(self._steps)

    @property
    def steps(self) -> list[int]:
        """Steps of the checkpoints kept so far."""
        return list(self._steps)

    def latest(self, measurement: str = PREDICTIONS) -> dict[str, np.ndarray]:
        """The arrays of ``measurement`` at the last kept checkpoint, by key.

        Raises
        ------
        ValueError
            No checkpoint kept yet, or no such measurement (or it was dropped).
        """
        if not self._steps:
            raise ValueError("no checkpoint recorded yet")
        if measurement not in self._arrays or measurement in self.errors:
            raise ValueError(f"no measurement {measurement!r} recorded; have {sorted(self._arrays)}")
        return {key: values[-1] for key, values in self._arrays[measurement].items()}

    def history(self, probe: str) -> tuple[np.ndarray, np.ndarray]:
        """The predictions on ``probe`` at every kept checkpoint and their epochs: ``(K, n, C)`` log-probabilities, ``(K,)``.

        Raises
        ------
        ValueError
            No such probe set.
        """
        if probe not in self.probes:
            raise ValueError(f"no probe set {probe!r}; have {sorted(self.probes)}")
        rows = self._arrays[PREDICTIONS].get(probe, [])
        logp = np.stack(rows) if rows else np.zeros((0, len(self.probes[probe]), self.n_classes), dtype=np.float32)
        return logp, np.asarray(self._epochs, dtype=np.float64)

    # ------------------------------------------------------------------ recording
    def checkpoint(self, model: nn.Module, step: int, epoch: float | None = None) -> bool:
        """Evaluate every measurement on ``model`` and keep the results as checkpoint ``step``.

        Parameters
        ----------
        model : nn.Module
            Maps a batch of probe inputs to class logits ``(batch, C)``. Its train/eval
            mode is restored module by module afterwards.
        step : int
            Optimiser updates so far (>= 0, increasing from one checkpoint to the next).
        epoch : float, optional
            Default ``step / steps_per_epoch`` if the recorder was given that, else NaN.

        Returns
        -------
        bool
            True if the checkpoint was kept; False if the predictions were not finite
            (the run is then diverged and records nothing more).
        """
        self._check_open(step)
        if self.diverged is not None:
            return False
        probes = self._probes_on(_device_of(model))
        modes = [(m, m.training) for m in model.modules()]
        model.eval()
        try:
            values: dict[str, dict[str, np.ndarray]] = {}
            for measurement in self.measurements:
                if measurement.name in self.errors or not self._due(measurement, step):
                    continue
                try:
                    values[measurement.name] = self._measure(measurement, model, probes)
                except Exception as exc:  # noqa: BLE001 - any failure drops that measurement only
                    if measurement.name == PREDICTIONS:
                        raise
                    self._drop(measurement.name, f"step {step}: {type(exc).__name__}: {exc}")
        finally:
            for module, training in modes:
                module.training = training
        if not self._n_parameters:
            self._n_parameters = count_parameters(model)
        return self._keep(step, epoch, values)

    def add(self, step: int, arrays: Mapping[str, Mapping[str, np.ndarray]], *, epoch: float | None = None) -> bool:
        """Keep arrays computed elsewhere as checkpoint ``step``.

        For trainers that evaluate several models at once (an ensemble computes every
        member's predictions in one batched pass). ``arrays`` maps each of the
        recorder's measurements to its arrays by key, as its ``measure`` would return
        them; the predictions (``"logp"``) are required, with every probe set.

        Returns
        -------
        bool
            As :meth:`checkpoint`.
        """
        self._check_open(step)
        if self.diverged is not None:
            return False
        missing = [m.name for m in self.measurements if m.name not in arrays and m.name not in self.errors]
        if missing:
            raise ValueError(f"arrays lack the measurement(s) {missing} of this recorder")
        values = {name: {key: np.asarray(v) for key, v in arrays[name].items()} for name in self._arrays
                  if name not in self.errors}
        self._check_predictions(values[PREDICTIONS])
        return self._keep(step, epoch, values)

    def close(self, status: str | None = None, message: str | None = None, *,
              info: Mapping[str, Any] | None = None, wall_time: float | None = None) -> RunResult:
        """Finish the run: stack what was recorded and commit it to the store (if any).

        Parameters
        ----------
        status : {"complete", "diverged", "pruned"}, optional
            Default: ``"diverged"`` if the predictions went non-finite, else
            ``"complete"``. A loop that stopped on a non-finite loss says ``"diverged"``;
            one stopped by a pruned sweep, ``"pruned"``.
        message : str, optional
            Summary stored with the run (default: what was recorded, or why it diverged).
        info : mapping, optional
            Extra facts stored with the run (JSON-serialisable); ``n_parameters``
            here overrides the count taken from the model.
        wall_time : float, optional
            Seconds the run took (default: since the recorder was made).

        Returns
        -------
        RunResult
            ``committed`` tells whether this call wrote the run (False without a store,
            or when a concurrent writer committed the same run id first).
        """
        if self.closed:
            raise ValueError("the recorder is closed")
        status = status or ("diverged" if self.diverged is not None else "complete")
        if status not in STATUSES:
            raise ValueError(f"status must be one of {STATUSES}, got {status!r}")
        self.closed = True
        result = self._result(status, message, dict(info or {}), wall_time)
        if self.store is not None:
            result.committed = self.store.write_run(
                self.run_id, config=self.config, status=status, message=result.message,
                metrics={"step": result.steps, "epoch": result.epochs, **result.metrics}, logp=result.logp,
                probes=result.fingerprints, arrays=result.arrays,
                info=jsonable({"wall_time": result.wall_time, "n_parameters": result.n_parameters, **result.info}))
            if self._live is not None:
                self._publish(lambda live: live.remove())
        self.result = result
        return result

    # ------------------------------------------------------------------ internals
    def _check_open(self, step) -> None:
        if self.closed:
            raise ValueError("the recorder is closed")
        if isinstance(step, bool) or not isinstance(step, (int, np.integer)) or step < 0:
            raise ValueError(f"step must be an integer >= 0, got {step!r}")
        if self._steps and step <= self._steps[-1]:
            raise ValueError(f"step {step} does not come after the last checkpoint's step {self._steps[-1]}")

    def _probes_on(self, device: torch.device) -> dict[str, Probe]:
        if device not in self._on_device:
            self._on_device[device] = {name: Probe(name, p.inputs.to(device), p.labels, p.fingerprint)
                                       for name, p in self.probes.items()}
        return self._on_device[device]

    def _measure(self, measurement: Measurement, model: nn.Module, probes: Mapping[str, Probe]) -> dict:
        with torch.set_grad_enabled(bool(measurement.needs_grad)):
            out = measurement.measure(model, probes)
        values = {str(key): np.asarray(value.detach().cpu() if torch.is_tensor(value) else value)
                  for key, value in dict(out).items()}
        if measurement.name == PREDICTIONS:
            self._check_predictions(values)
        return values

    def _due(self, measurement: Measurement, step: int) -> bool:
        """Whether ``measurement`` runs at this checkpoint (its ``every``, see the class Notes)."""
        every = getattr(measurement, "every", 1)
        index = len(self._steps)
        return every <= 1 or index % every == 0 or (self.last_step is not None and step == self.last_step)

    def _check_predictions(self, values: Mapping[str, np.ndarray]) -> None:
        if set(values) != set(self.probes):
            raise ValueError(f"predictions for probe sets {sorted(values)}; expected {sorted(self.probes)}")
        for name, lp in values.items():
            if lp.shape[:1] != (len(self.probes[name]),) or lp.ndim != 2:
                raise ValueError(f"predictions on probe set {name!r} have shape {lp.shape}; expected "
                                 f"({len(self.probes[name])}, C)")

    def _keep(self, step: int, epoch: float | None, values: dict[str, dict[str, np.ndarray]]) -> bool:
        if epoch is None:
            epoch = step / self.steps_per_epoch if self.steps_per_epoch else math.nan
        if not all(np.isfinite(lp).all() for lp in values[PREDICTIONS].values()):
            kept = (f"kept {len(self._steps)} checkpoints" + (f" up to step {self._steps[-1]}" if self._steps
                                                                else ""))
            when = f"step {step}" + (f" (epoch {epoch:.2f})" if math.isfinite(epoch) else "")
            self.diverged = f"non-finite predictions at {when}; {kept}"
            return False
        for name, stored in self._arrays.items():
            if name in self.errors or name in values or not stored:
                continue
            for key, rows in stored.items():  # a measurement not due here: NaN rows of its shapes
                rows.append(np.full(rows[0].shape, np.nan, dtype=np.result_type(rows[0].dtype, np.float32)))
        for name, arrays in values.items():
            if name in self.errors:
                continue
            stored = self._arrays[name]
            if stored and {k: v.shape for k, v in arrays.items()} != {k: v[0].shape for k, v in stored.items()}:
                self._drop(name, f"step {step}: arrays {sorted(arrays)} differ in keys or shapes from the "
                                 "first checkpoint's")
                continue
            for key, value in arrays.items():
                stored.setdefault(key, []).append(value)
        self._steps.append(int(step))
        self._epochs.append(float(epoch))
        if self.reference is not None:
            self.placements.append(self.reference.place(values[PREDICTIONS][self._reference_probe]))
        if self._live is not None:
            self._publish(lambda live: live.publish(step, epoch, values[PREDICTIONS]))
        return True

    def _publish(self, action) -> None:
        """Publish for watchers; a failure to (disk full, folder removed) stops publishing, never the run."""
        try:
            action(self._live)
        except OSError as exc:
            warnings.warn(f"publishing run {self.run_id!r} for watchers stopped: {exc}", stacklevel=3)
            self._live = None

    def _drop(self, name: str, why: str) -> None:
        self.errors[name] = why
        self._arrays[name] = {}

    def _result(self, status: str, message: str | None, info: dict, wall_time: float | None) -> RunResult:
        steps = np.asarray(self._steps, dtype=np.int64)
        logp = {name: (np.stack(self._arrays[PREDICTIONS][name]).astype(np.float32, copy=False) if len(steps)
                       else np.zeros((0, len(p), self.n_classes), dtype=np.float32))
                for name, p in self.probes.items()}
        metrics = metrics_from_logp(logp, {name: p.labels for name, p in self.probes.items()})
        arrays = {name: {key: np.stack(v) for key, v in parts.items()}
                  for name, parts in self._arrays.items() if name != PREDICTIONS and parts and len(steps)}
        if message is None:
            message = self.diverged if status == "diverged" and self.diverged else (
                f"{len(steps)} checkpoints" + (f" up to step {steps[-1]}" if len(steps) else ""))
        if self.errors:
            info["measurement_errors"] = dict(self.errors)
        facts = {m.name: dict(m.info) for m in self.measurements
                 if isinstance(getattr(m, "info", None), Mapping) and m.info and m.name not in self.errors}
        if facts:
            info["measurement_info"] = facts
        n_parameters = int(info.pop("n_parameters", self._n_parameters))
        return RunResult(steps=steps, epochs=np.asarray(self._epochs, dtype=np.float64), metrics=metrics,
                         logp=logp, status=status, message=message,
                         wall_time=time.perf_counter() - self._started if wall_time is None else float(wall_time),
                         n_parameters=n_parameters,
                         fingerprints={name: p.fingerprint for name, p in self.probes.items()},
                         steps_per_epoch=int(self.steps_per_epoch or 0), info=info, arrays=arrays,
                         run_id=self.run_id)


def _device_of(model: nn.Module) -> torch.device:
    for tensor in model.parameters():
        return tensor.device
    for tensor in model.buffers():
        return tensor.device
    return torch.device("cpu")


def _probe(name: str, source: Any, dataset: Dataset | None) -> Probe:
    """A :class:`Probe` from a ProbeSet (inputs from ``dataset``) or an (inputs, labels) pair."""
    if isinstance(source, ProbeSet):
        if dataset is None:
            raise ValueError(f"probe {name!r} is a ProbeSet: pass dataset= to read its inputs")
        return Probe(name, source.inputs(dataset), np.asarray(source.labels, dtype=np.int64), source.fingerprint)
    if not isinstance(source, (tuple, list)) or len(source) != 2:
        raise ValueError(f"probe {name!r} must be a ProbeSet or an (inputs, labels) pair, got {type(source).__name__}")
    inputs = source[0] if torch.is_tensor(source[0]) else torch.as_tensor(np.asarray(source[0]))
    if inputs.is_floating_point() and not torch.is_tensor(source[0]):
        inputs = inputs.to(torch.get_default_dtype())  # NumPy's float64 -> torch's float32
    labels = np.asarray(source[1].cpu() if torch.is_tensor(source[1]) else source[1])
    if labels.ndim != 1 or labels.dtype.kind not in "iu":
        raise ValueError(f"probe {name!r}: labels must be integer classes of shape (n,), got dtype {labels.dtype}, "
                         f"shape {labels.shape}")
    if inputs.shape[0] != labels.shape[0]:
        raise ValueError(f"probe {name!r} has {inputs.shape[0]} inputs but {labels.shape[0]} labels")
    labels = labels.astype(np.int64)
    fingerprint = probe_fingerprint("user", name, np.arange(len(labels)), labels, inputs=inputs.cpu().numpy())
    return Probe(name, inputs, labels, fingerprint)
