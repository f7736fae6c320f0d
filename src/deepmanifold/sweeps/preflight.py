"""What a sweep checks before anything trains: the data and the models its spec names.

The parser (:mod:`.spec`) checks what the spec alone decides; :func:`preflight` checks,
for every run and before the store is created, what needs the data or the model zoo:

- the dataset loads with the ``[data]`` options (a ``train_size`` of at least the
  number of classes, files that exist, ...);
- the probe sets fit in their splits: a ``probe_train`` or ``probe_test`` the spec sets
  larger than its split is refused, not shrunk; the default sizes are caps (the whole
  split when it is smaller), and each run's stored config records the sizes used;
- training's own plan accepts the run on that data
  (:func:`~deepmanifold.training.plan.plan_run`: a batch no larger than the training
  set, augmentations the data allows);
- each distinct model builds, and its training state fits in memory (see
  :func:`training_bytes`);
- each measurement the runs record can measure that model (e.g. the layers a layer
  measurement's options name exist in it).

Every error names the spec line where the offending value is written.
"""

from __future__ import annotations

import os

from deepmanifold.sweeps.execute import dataset_and_probes, train_config
from deepmanifold.sweeps.spec import RunSpec, SpecError, SweepSpec, offending_key

__all__ = ["BYTES_PER_PARAMETER", "available_memory", "preflight", "training_bytes"]

#: Bytes of training state per parameter: float32 weights, their gradients and Adam's
#: two moment estimates (the largest optimiser state of :data:`~deepmanifold.training.OPTIMIZERS`;
#: SGD with momentum keeps one).
BYTES_PER_PARAMETER = 4 * 4


def training_bytes(n_parameters: int) -> int:
    """A lower bound on the memory that training a model of ``n_parameters`` takes.

    ``n_parameters * BYTES_PER_PARAMETER``: weights, gradients and optimiser state.
    Activations, data and the recorder's buffers come on top, so a model whose bound
    exceeds :func:`available_memory` cannot train on this machine.
    """
    return int(n_parameters) * BYTES_PER_PARAMETER


def available_memory() -> int | None:
    """Bytes of memory a new process can use, or ``None`` if the system does not say.

    ``MemAvailable`` of ``/proc/meminfo`` (Linux: free memory plus reclaimable caches),
    else the physical memory from ``os.sysconf``.
    """
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024  # the file counts kB
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, OSError, ValueError):
        return None


def preflight(spec: SweepSpec) -> None:
    """Check what only the data and the model zoo can tell before training anything.

    Loads each dataset the spec names and builds each distinct (architecture, knobs)
    model once, on torch's ``meta`` device (shapes without storage, so even a model
    too large for memory is counted, not allocated), so that an unknown knob or an
    impossible size fails in seconds, not after the runs before it trained.

    Raises
    ------
    SpecError
        Naming the spec's line, like the parser's errors.
    """
    memory = available_memory()
    seen = set()
    for run in spec.runs:
        dataset = _load_data(spec, run)
        _check_probe_sizes(spec, run, dataset)
        _check_plan(spec, run, dataset)
        key = (run.config["arch"], repr(sorted(run.config["arch_options"].items())), dataset.input_shape,
               dataset.n_classes)
        if key not in seen:
            seen.add(key)
            _check_model(spec, run, dataset, memory)
    if spec.prune is not None:
        _check_prune(spec)


def _check_prune(spec: SweepSpec) -> None:
    """The probe set a pruned sweep scores exists; the forecast's reference store is on the same probe set."""
    from deepmanifold.store import Store, StoreError

    prune = spec.prune
    fingerprints = set()
    for run in spec.runs:
        _, probes = dataset_and_probes(run.config)
        if prune.probe not in probes:
            raise spec.error("prune", "probe", f"[prune] probe {prune.probe!r} is not a probe set of the runs "
                                               f"({', '.join(sorted(probes))})")
        fingerprints.add(probes[prune.probe].fingerprint)
    if prune.rule != "forecast":
        return
    try:
        reference = Store(prune.reference, read_only=True)
        ids = reference.run_ids()
    except (StoreError, OSError, ValueError) as exc:
        raise spec.error("prune", "reference", f"[prune] reference {prune.reference!r}: {exc}") from exc
    if not ids:
        raise spec.error("prune", "reference", f"[prune] reference {prune.reference!r} holds no run to forecast from")
    theirs = reference.record(ids[0], verify=False).probes.get(prune.probe)
    if theirs not in fingerprints:
        raise spec.error("prune", "reference",
                         f"[prune] reference {prune.reference!r} was recorded on another {prune.probe!r} probe set "
                         f"(fingerprint {str(theirs)[:12]}, the sweep's {sorted(fp[:12] for fp in fingerprints)}): "
                         "forecasts compare predictions on the same samples")


def _load_data(spec: SweepSpec, run: RunSpec):
    try:
        dataset, _ = dataset_and_probes(run.config)
    except (ValueError, OSError) as exc:
        key = offending_key(str(exc), run.config["data"])
        if key is None:
            raise spec.error("data", "", f"[data] {exc}") from exc
        raise spec.run_error(run, f"data.{key}", str(exc)) from exc
    return dataset


def _check_probe_sizes(spec: SweepSpec, run: RunSpec, dataset) -> None:
    for split, y in (("train", dataset.y_train), ("test", dataset.y_test)):
        asked = run.config["probes"][split]
        if asked > len(y) and f"probes.{split}" in run.sources:  # a default size is a cap: the whole split
            raise spec.run_error(run, f"probes.{split}", f"probe_{split} must be at most the {len(y)} samples "
                                 f"of the {split} split of {dataset.name}, got {asked}")


def _check_plan(spec: SweepSpec, run: RunSpec, dataset) -> None:
    """Training's own plan of the run on this data (the device is the runner's to check)."""
    from deepmanifold.training.plan import plan_run

    try:
        plan_run(train_config(run), dataset, "cpu")
    except ValueError as exc:
        raise spec.run_error(run, offending_key(str(exc), run.config), str(exc)) from exc


def _check_model(spec: SweepSpec, run: RunSpec, dataset, memory: int | None) -> None:
    """Build the run's model on the ``meta`` device; refuse it if its training state exceeds ``memory``."""
    import torch

    from deepmanifold.training import build_model

    arch, knobs = run.config["arch"], run.config["arch_options"]
    try:
        with torch.device("meta"):
            model = build_model(arch, dataset.input_shape, dataset.n_classes, **knobs)
    except (ValueError, TypeError) as exc:
        written = [k for k in knobs if f"arch_options.{k}" in run.sources]
        raise _model_error(spec, run, str(exc), offending_key(str(exc), written)) from exc
    _check_measurements(spec, run, model)
    n = sum(p.numel() for p in model.parameters())  # frozen ones too: they take memory as well
    if memory is not None and training_bytes(n) > memory:
        shown = ", ".join(f"{k}={v}" for k, v in knobs.items())
        # A [grid] knob is what makes this model differ from the others; else the [arch.X] table describes it.
        axis = next((k for k in knobs if run.sources.get(f"arch_options.{k}", ("",))[0] == "grid"), None)
        raise _model_error(spec, run, (
            f"{arch} ({shown or 'default knobs'}) has {n:,} parameters: training it takes at least "
            f"{_size(training_bytes(n))} ({BYTES_PER_PARAMETER} bytes a parameter for float32 weights, "
            f"gradients and Adam's two moments), more than the {_size(memory)} of memory available"), axis)


def _check_measurements(spec: SweepSpec, run: RunSpec, model) -> None:
    """Each measurement's own ``check(model)``, when it has one, on the run's (meta-device) model."""
    from deepmanifold.training.measurements import get_measurement

    options = run.config.get("measurement_options") or {}
    for name in run.config.get("measurements") or ():
        measurement = get_measurement(name, options.get(name))
        check = getattr(measurement, "check", None)
        if check is None:
            continue
        try:
            check(model)
        except ValueError as exc:
            section = f"train.measurement_options.{name}"
            where = (section, "layers" if "layers" in options.get(name, {}) else "") if name in options else (
                "train", "measurements")
            raise spec.error(*where, f"[{where[0]}] measurement {name!r}: {exc}") from exc


def _model_error(spec: SweepSpec, run: RunSpec, message: str, knob: str | None) -> SpecError:
    """``message`` at the line of ``knob`` (a key of the run's ``arch_options`` the spec writes),
    else at its ``[arch.X]`` section."""
    if knob is not None:
        return spec.run_error(run, f"arch_options.{knob}", message)
    section = f"arch.{run.config.get('arch_alias', run.config['arch'])}"
    return spec.error(section, "", f"[{section}] {message}")


def _size(n_bytes: float) -> str:
    """``n_bytes`` in binary units, e.g. ``"14.6 TiB"``."""
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n_bytes < 1024:
            return f"{n_bytes:.1f} {unit}"
        n_bytes /= 1024
    return f"{n_bytes:.1f} TiB"
