"""A TOML sweep spec -> the list of runs it asks for.

A spec names the data, training defaults, per-architecture knobs, per-optimiser
settings and a grid whose product is the list of runs::

    [sweep]
    name = "digits"
    store = "runs/digits"        # relative to the current directory
    workers = 2                  # default: number of cores

    [data]
    name = "digits"
    seed = 0                     # train/test split
    test_fraction = 0.25
    probe_train = 500            # fixed probe subsets (never augmented)
    probe_test = 450
    probe_seed = 0

    [train]
    epochs = 12
    batch_size = 64
    checkpoints = 50             # dense early, step 0 included
    schedule = "cosine"
    weight_decay = 0.0

    [grid]                       # the product of these lists
    arch = ["mlp", "cnn", "convmixer"]
    optimizer = ["sgd", "adam"]
    seed = [0, 1]

    [arch.mlp]                   # knobs of each architecture
    width = 128

    [optimizer.sgd]              # settings that go with each optimiser
    lr = 0.05
    momentum = 0.9

    [zip]                        # lists of equal length, taken together (not a product)
    batch_size = [128, 512]
    lr = [0.05, 0.2]

    [optimizer.adam.zip]         # pairs that belong to one optimiser only
    batch_size = [128, 512]
    lr = [0.001, 0.002]

The runs are the product of the ``[grid]`` lists, times the ``[zip]`` rows, times
each optimiser's own ``zip`` rows. ``[grid]`` also takes ``width`` and ``depth``
(architecture knobs, e.g. for "bigger networks travel faster"), ``augmentation``,
``init`` and ``weight_decay``. Keys of ``[data]`` beyond the probe settings go to
the dataset loader (``train_size``, ``path``, ``dim``, ...) and are checked by it
before anything is trained.

Every key is checked before anything is trained; a mistake gives one line that
names the key, what is allowed, and the line of the spec file.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from deepmanifold.training import AUGMENTATION_MODES, INITS, OPTIMIZERS, SCHEDULES, available_models

__all__ = ["SpecError", "SweepSpec", "RunSpec", "load_spec", "parse_spec"]


class SpecError(ValueError):
    """A sweep spec that cannot be run; the message names the key and what is allowed."""


# key -> (type(s), description of allowed values)
_SWEEP_KEYS = {"name": (str, "a name"), "store": (str, "a folder path"), "workers": (int, "a positive integer")}
_DATA_KEYS = {
    "name": (str, "a dataset name"),
    "seed": (int, "an integer"),
    "test_fraction": ((int, float), "a number in (0, 1)"),
    "train_size": (int, "a positive integer (training samples kept, stratified)"),
    "path": (str, "a folder holding the dataset's files"),
    "probe_train": (int, "a positive integer (samples of the train split to record)"),
    "probe_test": (int, "a positive integer (samples of the test split to record)"),
    "probe_seed": (int, "an integer"),
}
# Other [data] keys are loader options (e.g. dim, n_train for gaussian_teacher): any
# scalar, checked against the loader's signature in the preflight.
_DATA_OPTION_TYPES = (str, int, float)
_TRAIN_KEYS = {
    "epochs": (int, "a positive integer"),
    "batch_size": (int, "a positive integer"),
    "checkpoints": (int, "an integer >= 2"),
    "schedule": (str, f"one of {', '.join(SCHEDULES)}"),
    "lr": ((int, float), "a positive number"),
    "momentum": ((int, float), "a number in [0, 1)"),
    "weight_decay": ((int, float), "a non-negative number"),
    "warmup_epochs": ((int, float), "a non-negative number of epochs"),
    "augmentation": (str, f"one of {', '.join(AUGMENTATION_MODES)}"),
    "init": (str, f"one of {', '.join(INITS)}"),
    "init_epochs": (int, "a positive integer"),
    "init_subset": (int, "a positive integer"),
}
_OPTIMIZER_KEYS = {k: _TRAIN_KEYS[k] for k in ("lr", "momentum", "weight_decay", "warmup_epochs")}
_ZIP_KEYS = {k: _TRAIN_KEYS[k] for k in ("lr", "batch_size", "weight_decay", "epochs", "warmup_epochs")}
_GRID_KEYS = {
    "arch": (str, "architecture names"),
    "optimizer": (str, "optimiser names"),
    "seed": (int, "integers"),
    "lr": ((int, float), "positive numbers"),
    "batch_size": (int, "positive integers"),
    "epochs": (int, "positive integers"),
    "weight_decay": ((int, float), "non-negative numbers"),
    "augmentation": (str, f"augmentations ({', '.join(AUGMENTATION_MODES)})"),
    "init": (str, f"initialisations ({', '.join(INITS)})"),
    "width": (int, "positive integers (architecture knob)"),
    "depth": (int, "positive integers (architecture knob)"),
}
_KNOB_AXES = ("width", "depth")  # grid axes that are architecture knobs
_SECTIONS = ("sweep", "data", "train", "grid", "zip", "arch", "optimizer")
_TRAIN_DEFAULTS = {"epochs": 10, "batch_size": 64, "checkpoints": 50, "schedule": "cosine",
                   "lr": 0.01, "momentum": 0.9, "weight_decay": 0.0}
_MOMENTUM_OPTIMIZERS = ("sgd", "nesterov")
_DATA_DEFAULTS = {"name": "digits", "seed": 0, "probe_train": 500, "probe_test": 500, "probe_seed": 0}
_PROBE_KEYS = ("probe_train", "probe_test", "probe_seed")  # everything else in [data] goes to the loader


@dataclass(frozen=True)
class RunSpec:
    """One run of a sweep: a stable id, a readable label and its resolved config."""

    run_id: str
    label: str
    config: dict


@dataclass
class SweepSpec:
    """A parsed, validated sweep spec.

    Attributes
    ----------
    name : str
    store : Path
        The store folder its runs go to.
    workers : int
    data : dict
        The ``[data]`` table with its defaults.
    runs : list of RunSpec
    source : str
        Where the spec came from (a path, or ``"<string>"``).
    grid : dict
        The grid axes and their values.
    text : str
        The spec's TOML text (for errors that name a line).
    """

    name: str
    store: Path
    workers: int
    data: dict
    runs: list[RunSpec]
    source: str = "<string>"
    grid: dict = field(default_factory=dict)
    text: str = ""

    def error(self, section: str | None, key: str, message: str) -> SpecError:
        """A :class:`SpecError` for ``message`` naming the spec line of ``key`` in ``[section]``."""
        return _located(self.source, self.text, section, key, message)


def _line_of(text: str, section: str | None, key: str) -> int | None:
    """1-based line of ``key = ...`` (inside ``[section]`` if given) in TOML text, if found."""
    current = None
    for lineno, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        header = re.match(r"^\[\s*([^\]]+?)\s*\]", stripped)
        if header:
            current = header.group(1)
            if section is not None and key == "" and current == section:
                return lineno
            continue
        if re.match(rf"^\"?{re.escape(key)}\"?\s*=", stripped) and (section is None or current == section):
            return lineno
    return None


def _located(source: str, text: str, section: str | None, key: str, message: str) -> SpecError:
    """``message`` prefixed with ``source:line`` of ``key`` in ``[section]`` (just ``source`` if not found)."""
    line = _line_of(text, section, key) if text else None
    return SpecError(f"{source}:{line}: {message}" if line else f"{source}: {message}")


class _Checker:
    def __init__(self, source: str, text: str):
        self.source, self.text = source, text

    def fail(self, section: str | None, key: str, message: str):
        raise _located(self.source, self.text, section, key, message)

    def table(self, section: str, value: Any) -> dict:
        if not isinstance(value, dict):
            self.fail(None, section, f"[{section}] must be a table, got {type(value).__name__}")
        return value

    def keys(self, section: str, table: dict, allowed: dict, *, extra=None) -> None:
        for key, value in table.items():
            if key not in allowed and extra is not None:
                if isinstance(value, bool) or not isinstance(value, extra):
                    self.fail(section, key, f"[{section}] {key} must be a string or a number, got {value!r}")
                continue
            if key not in allowed:
                self.fail(section, key, f"[{section}] unknown key {key!r}; allowed: {', '.join(sorted(allowed))}")
            types, what = allowed[key]
            listed = section == "grid" or section.endswith("zip")
            values = value if listed else [value]
            if listed and (not isinstance(value, list) or not value):
                self.fail(section, key, f"[{section}] {key} must be a non-empty list of {what}, got {value!r}")
            for v in values:
                # bool is an int in Python; a spec saying `epochs = true` is a mistake.
                if isinstance(v, bool) or not isinstance(v, types):
                    self.fail(section, key, f"[{section}] {key} must be {what}, got {v!r}")

    def choice(self, section: str, key: str, value: str, allowed, what: str) -> None:
        if value not in allowed:
            where = f"[{section}] {key}:" if key else f"[{section}]"
            self.fail(section, key, f"{where} unknown {what} {value!r}; allowed: {', '.join(sorted(allowed))}")


def _run_id(config: dict) -> str:
    digest = hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()[:10]
    return f"{config['arch']}-{config['optimizer']}-s{config['seed']}-{digest}"


def _zip_rows(chk: _Checker, section: str, table: dict) -> list[dict]:
    """The rows of a zip table: lists of equal length taken together."""
    chk.keys(section, table, _ZIP_KEYS)
    lengths = {k: len(v) for k, v in table.items()}
    if len(set(lengths.values())) > 1:
        key = next(iter(table))
        chk.fail(section, key, f"[{section}] lists must have equal lengths to be zipped, got {lengths}")
    n = next(iter(lengths.values()), 0)
    return [{k: v[i] for k, v in table.items()} for i in range(n)] or [{}]


def parse_spec(raw: dict, *, source: str = "<string>", text: str = "") -> SweepSpec:
    """Validate a spec given as a dict (parsed TOML) and expand it into runs.

    Raises
    ------
    SpecError
        On any unknown section or key, wrong type, unknown architecture, optimiser,
        schedule, augmentation or initialisation, or zipped lists of unequal length.
    """
    chk = _Checker(source, text)
    for section in raw:
        if section not in _SECTIONS:
            chk.fail(None, "", f"unknown section [{section}]; allowed: {', '.join(_SECTIONS)}")
    sweep = chk.table("sweep", raw.get("sweep", {}))
    data = chk.table("data", raw.get("data", {}))
    train = chk.table("train", raw.get("train", {}))
    grid = chk.table("grid", raw.get("grid", {}))
    zipped = chk.table("zip", raw.get("zip", {}))
    arch_opts = chk.table("arch", raw.get("arch", {}))
    opt_opts = chk.table("optimizer", raw.get("optimizer", {}))
    chk.keys("sweep", sweep, _SWEEP_KEYS)
    chk.keys("data", data, _DATA_KEYS, extra=_DATA_OPTION_TYPES)
    chk.keys("train", train, _TRAIN_KEYS)
    chk.keys("grid", grid, _GRID_KEYS)
    zip_rows = _zip_rows(chk, "zip", zipped)

    models = available_models()
    # [arch.<alias>] with `model = "<registry name>"` names a variant (e.g. wrn10, wrn16).
    aliases = {}
    for arch, knobs in arch_opts.items():
        knobs = dict(chk.table(f"arch.{arch}", knobs))
        model = knobs.pop("model", arch)
        if not isinstance(model, str):
            chk.fail(f"arch.{arch}", "model", f"[arch.{arch}] model must be an architecture name, got {model!r}")
        chk.choice(f"arch.{arch}", "model" if model != arch else "", model, models, "architecture")
        aliases[arch] = model
        arch_opts[arch] = knobs
    for arch in grid.get("arch", []):
        chk.choice("grid", "arch", arch, sorted(set(models) | set(aliases)), "architecture")
    for opt in grid.get("optimizer", []):
        chk.choice("grid", "optimizer", opt, OPTIMIZERS, "optimizer")
    for key, allowed in (("augmentation", AUGMENTATION_MODES), ("init", INITS), ("schedule", SCHEDULES)):
        if key in train:
            chk.choice("train", key, train[key], allowed, key)
        for value in grid.get(key, []):
            chk.choice("grid", key, value, allowed, key)
    opt_zip_rows = {}
    for opt, settings in opt_opts.items():
        chk.choice("optimizer", opt, opt, OPTIMIZERS, "optimizer")
        settings = dict(chk.table(f"optimizer.{opt}", settings))
        opt_zip = chk.table(f"optimizer.{opt}.zip", settings.pop("zip", {}))
        chk.keys(f"optimizer.{opt}", settings, _OPTIMIZER_KEYS)
        opt_zip_rows[opt] = _zip_rows(chk, f"optimizer.{opt}.zip", opt_zip)
        opt_opts[opt] = settings
    for key in ("epochs", "batch_size", "probe_train", "probe_test", "workers", "train_size",
                "init_epochs", "init_subset"):
        for section, table in (("train", train), ("data", data), ("sweep", sweep)):
            if key in table and table[key] < 1:
                chk.fail(section, key, f"[{section}] {key} must be >= 1, got {table[key]}")
    if train.get("checkpoints", 2) < 2:
        chk.fail("train", "checkpoints", f"[train] checkpoints must be >= 2, got {train['checkpoints']}")
    if "test_fraction" in data and not 0 < data["test_fraction"] < 1:
        chk.fail("data", "test_fraction", f"[data] test_fraction must be in (0, 1), got {data['test_fraction']}")
    for key in ("weight_decay", "warmup_epochs"):
        if train.get(key, 0) < 0:
            chk.fail("train", key, f"[train] {key} must be >= 0, got {train[key]}")

    data = {**_DATA_DEFAULTS, **data}
    axes = {"arch": ["mlp"], "optimizer": ["sgd"], "seed": [0], **grid}
    varied = [k for k, v in axes.items() if len(v) > 1] + sorted({k for row in zip_rows for k in row})
    runs = []
    for values in itertools.product(*axes.values()):
        point = dict(zip(axes, values))
        opt = point["optimizer"]
        for row in zip_rows:
            for opt_row in opt_zip_rows.get(opt, [{}]):
                knobs = {k: point.pop(k) for k in _KNOB_AXES if k in point}
                config = {**_TRAIN_DEFAULTS, **train, **opt_opts.get(opt, {}), **row, **opt_row, **point}
                if config["optimizer"] not in _MOMENTUM_OPTIMIZERS:
                    config.pop("momentum")  # meaningless for Adam; kept out so ids do not depend on it
                config["arch_options"] = {**arch_opts.get(point["arch"], {}), **knobs}
                model = aliases.get(point["arch"], point["arch"])
                if model != point["arch"]:
                    config["arch"], config["arch_alias"] = model, point["arch"]
                point.update(knobs)
                config["data"] = {k: v for k, v in data.items() if k not in _PROBE_KEYS}
                config["probes"] = {"train": data["probe_train"], "test": data["probe_test"],
                                    "seed": data["probe_seed"]}
                shown = {**point, **row, **opt_row}
                label = " / ".join(
                    str(shown[k]) if k in ("arch", "optimizer") else f"{k} {shown[k]}"
                    for k in dict.fromkeys([*axes, *row, *opt_row])
                    if k in varied or k in ("arch", "optimizer", "seed") or k in opt_row
                )
                runs.append(RunSpec(run_id=_run_id(config), label=label, config=config))

    ids = [r.run_id for r in runs]
    if len(set(ids)) != len(ids):
        dup = next(r for r in runs if ids.count(r.run_id) > 1)
        chk.fail(None, "", f"two runs of the spec have the same configuration ({dup.label}): a list repeats a value")
    name = sweep.get("name", Path(source).stem if source != "<string>" else "sweep")
    return SweepSpec(
        name=name,
        store=Path(sweep.get("store", os.path.join("runs", name))),
        workers=int(sweep.get("workers", os.cpu_count() or 1)),
        data=data,
        runs=runs,
        source=source,
        grid=axes,
        text=text,
    )


def load_spec(path: str | os.PathLike) -> SweepSpec:
    """Read, validate and expand a TOML sweep spec file."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise SpecError(f"cannot read spec {path}: {exc.strerror or exc}") from exc
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SpecError(f"{path}: not valid TOML: {exc}") from exc
    return parse_spec(raw, source=str(path), text=text)
