"""What a recorder measures at each checkpoint: the protocol, the predictions, the registry.

A *measurement* is anything evaluated on a model at a checkpoint that returns arrays
of a fixed shape per checkpoint. The :class:`~deepmanifold.training.Recorder` calls
each of a run's measurements in turn, stacks what each returns over the checkpoints,
and the store keeps every array under ``<name>_<key>`` (``<name>`` for the key ``""``),
listed in the run's record and in the catalog, read back with
:meth:`deepmanifold.store.Store.array`.

Adding a measurement is one new module: a class with

``name`` : str
    Lower-case letters, digits and ``_``; the prefix of its arrays in the store.
``needs_grad`` : bool
    True if :meth:`measure` differentiates through the model (e.g. an average
    gradient outer product); otherwise it runs under :func:`torch.no_grad`.
``measure(model, probes)`` -> mapping of str to ndarray
    Evaluate ``model`` (in eval mode, on the probe sets' device) on the probe sets
    (:class:`Probe`, by name) and return this checkpoint's arrays by key. Every
    checkpoint must return the same keys with the same shapes. The recorder restores
    the model's train/eval mode afterwards.

Optionally, ``info`` : a JSON-ready mapping the measurement fills while it measures (e.g.
the names of the layers its columns stand for, why a value is NaN); the recorder stores
it in the run's info under ``measurement_info[<name>]``.

Optionally, ``check(model)``: raise ``ValueError`` when the measurement cannot measure
``model`` (e.g. a layer its options name is not there); a sweep's preflight calls it on
every distinct model, built without storage, before anything trains.

A measurement is one entry in :data:`MEASUREMENTS` (name -> ``"module:attribute"``, imported only
when a run asks for it), so that a run config's ``measurements = [...]`` can name it.
Nothing in the training loop, the recorder or the store changes.

:class:`Predictions` (``"logp"``) is the measurement every run records: eval-mode
log-probabilities on each probe set, from which the per-checkpoint losses and
accuracies are computed (:func:`metrics_from_logp`).
"""

from __future__ import annotations

import importlib
import re
from dataclasses import dataclass
from typing import Mapping, Protocol, runtime_checkable

import numpy as np
import torch
from torch import nn

__all__ = [
    "MEASUREMENTS",
    "Measurement",
    "Predictions",
    "Probe",
    "check_measurement_name",
    "get_measurement",
    "metrics_from_logp",
]

#: Measurement name -> ``"module:attribute"`` of a class whose instances (built with no
#: arguments) implement :class:`Measurement`.
MEASUREMENTS: dict[str, str] = {
    "logp": "deepmanifold.training.measurements:Predictions",
    "nfa": "deepmanifold.features.measurement:NFAMeasurement",
    "capacity": "deepmanifold.probes.measurement:CapacityMeasurement",
    "infoplane": "deepmanifold.probes.measurement:InformationPlaneMeasurement",
    "collapse": "deepmanifold.probes.measurement:CollapseMeasurement",
    "ntk": "deepmanifold.theory.measurement:NTKMeasurement",
}

_NAME = re.compile(r"[a-z][a-z0-9_]*")


@dataclass(frozen=True, eq=False)
class Probe:
    """A probe set ready to evaluate: fixed samples, never augmented.

    Attributes
    ----------
    name : str
        ``"train"``, ``"test"``, ...
    inputs : torch.Tensor, shape (n, ...)
        The samples, on the device the model is evaluated on.
    labels : np.ndarray, shape (n,), int64
        Their true classes.
    fingerprint : str
        Identifies samples, order and labels; runs are compared only on equal
        fingerprints (see :func:`deepmanifold.data.probe_fingerprint`).
    """

    name: str
    inputs: torch.Tensor
    labels: np.ndarray
    fingerprint: str

    def __len__(self) -> int:
        return int(self.labels.shape[0])


@runtime_checkable
class Measurement(Protocol):
    """What the recorder needs of a measurement (see the module docstring)."""

    name: str
    needs_grad: bool

    def measure(self, model: nn.Module, probes: Mapping[str, Probe]) -> Mapping[str, np.ndarray]:
        """This checkpoint's arrays, by key."""
        ...


class Predictions:
    """Eval-mode log-probabilities of the model on every probe set.

    ``measure`` returns ``{probe name: (n, C) float32 log-softmax}``, computed in
    chunks of ``chunk_size`` samples under ``torch.no_grad``; stored as
    ``logp_<probe>`` (K, n, C).
    """

    name = "logp"
    needs_grad = False

    def __init__(self, chunk_size: int = 512):
        if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1:
            raise ValueError(f"chunk_size must be a positive integer, got {chunk_size!r}")
        self.chunk_size = chunk_size

    def measure(self, model: nn.Module, probes: Mapping[str, Probe]) -> dict[str, np.ndarray]:
        return {name: self.log_probs(model, probe.inputs).cpu().numpy() for name, probe in probes.items()}

    @torch.no_grad()
    def log_probs(self, model: nn.Module, x: torch.Tensor) -> torch.Tensor:
        """``log_softmax(model(x))`` over the last axis as float32, shape (n, ..., C), in chunks
        of samples along the first axis (the model's mode as it is)."""
        starts = range(0, x.shape[0], self.chunk_size) if x.shape[0] else [0]  # an empty probe: (0, C)
        return torch.cat([torch.log_softmax(model(x[i:i + self.chunk_size]).float(), dim=-1) for i in starts])


def check_measurement_name(name) -> str:
    """``name`` if it names a registered measurement; a ``ValueError`` listing them otherwise."""
    if not isinstance(name, str) or name not in MEASUREMENTS:
        raise ValueError(f"unknown measurement {name!r}; available: {', '.join(sorted(MEASUREMENTS))}")
    return name


def get_measurement(measurement: str | Measurement, options: Mapping[str, object] | None = None) -> Measurement:
    """A measurement instance from its registered name (or the instance itself, checked).

    Parameters
    ----------
    measurement : str or Measurement
    options : mapping, optional
        Keyword arguments of the registered class (e.g. ``{"layers": ["net.2"]}``);
        only with a name.

    Raises
    ------
    ValueError
        An unknown name, options the class does not take or rejects (the message names
        the measurement), an object without ``name``, ``needs_grad`` and ``measure``,
        or a name that is not lower-case letters, digits and ``_``.
    """
    if isinstance(measurement, str):
        module, attribute = MEASUREMENTS[check_measurement_name(measurement)].split(":")
        cls = getattr(importlib.import_module(module), attribute)
        try:
            measurement = cls(**dict(options or {}))
        except (TypeError, ValueError) as exc:
            raise ValueError(f"measurement {measurement!r}: bad options {dict(options or {})}: {exc}") from None
    elif options:
        raise ValueError("options are given with a measurement's registered name, not with an instance")
    if not isinstance(measurement, Measurement):
        raise ValueError(f"{measurement!r} is not a measurement: it needs a name, needs_grad and measure(model, "
                         "probes)")
    if not isinstance(measurement.name, str) or not _NAME.fullmatch(measurement.name):
        raise ValueError(f"measurement name {measurement.name!r} must be lower-case letters, digits and '_'")
    return measurement


def metrics_from_logp(logp: Mapping[str, np.ndarray], labels: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Mean cross-entropy and accuracy per checkpoint on each probe set.

    Parameters
    ----------
    logp : mapping of str to ndarray, each (K, n, C)
        Log-probabilities per probe set.
    labels : mapping of str to ndarray, each (n,)
        True classes of each probe set's samples.

    Returns
    -------
    dict of str to ndarray, each (K,) float64
        ``<probe>_loss`` (``-mean_i log p_{i, y_i}``) and ``<probe>_acc`` (fraction
        of samples whose most probable class is ``y_i``), in the order of ``logp``;
        NaN for an empty probe set.
    """
    metrics = {}
    for name, lp in logp.items():
        y = np.asarray(labels[name], dtype=np.int64)
        if lp.shape[1] == 0:
            nll = acc = np.full(lp.shape[0], np.nan)
        else:
            picked = np.take_along_axis(lp, y[None, :, None], axis=2)[..., 0]
            nll = -picked.astype(np.float64).mean(axis=1)
            acc = (lp.argmax(axis=2) == y[None, :]).mean(axis=1).astype(np.float64)
        metrics[f"{name}_loss"] = nll
        metrics[f"{name}_acc"] = acc
    return metrics
