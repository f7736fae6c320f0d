"""What a sweep checks before anything trains: the data and the models its spec names."""

from __future__ import annotations

from deepmanifold.sweeps.execute import dataset_and_probes
from deepmanifold.sweeps.spec import SweepSpec

__all__ = ["preflight"]


def preflight(spec: SweepSpec) -> None:
    """Check what only the data and the model zoo can tell before training anything.

    Loads each dataset the spec names and builds each distinct (architecture,
    knobs) model once, so that an unknown knob fails in seconds, not after the
    runs before it trained.

    Raises
    ------
    SpecError
        Naming the spec's line, like the parser's errors.
    """
    from deepmanifold.training import build_model

    seen = set()
    for run in spec.runs:
        try:
            dataset, _ = dataset_and_probes(run.config)
        except (ValueError, OSError) as exc:
            raise spec.error("data", "", f"[data] {exc}") from exc
        key = (run.config["arch"], repr(sorted(run.config["arch_options"].items())), dataset.input_shape)
        if key in seen:
            continue
        seen.add(key)
        try:
            build_model(run.config["arch"], dataset.input_shape, dataset.n_classes, **run.config["arch_options"])
        except (ValueError, TypeError) as exc:
            section = f"arch.{run.config.get('arch_alias', run.config['arch'])}"
            raise spec.error(section, "", f"[{section}] {exc}") from exc
