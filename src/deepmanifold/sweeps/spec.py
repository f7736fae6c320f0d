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

from deepmanifold.training import OPTIMIZERS, SCHEDULES, available_models

__all__ = ["SpecError", "SweepSpec", "RunSpec", "load_spec", "parse_spec"]


class SpecError(ValueError):
    """A sweep spec that cannot be run; the message names the key and what is allowed."""


# key -> (type(s), description of allowed values)
_SWEEP_KEYS = {"name": (str, "a name"), "store": (str, "a folder path"), "workers": (int, "a positive integer")}
_DATA_KEYS = {
    "name": (str, "a dataset name"),
    "seed": (int, "an integer"),
    "test_fraction": ((int, float), "a number in (0, 1)"),
    "probe_train": (int, "a positive integer (samples of the train split to record)"),
    "probe_test": (int, "a positive integer (samples of the test split to record)"),
    "probe_seed": (int, "an integer"),
}
_TRAIN_KEYS = {
    "epochs": (int, "a positive integer"),
    "batch_size": (int, "a positive integer"),
    "checkpoints": (int, "an integer >= 2"),
    "schedule": (str, f"one of {', '.join(SCHEDULES)}"),
    "lr": ((int, float), "a positive number"),
    "momentum": ((int, float), "a number in [0, 1)"),
    "weight_decay": ((int, float), "a non-negative number"),
}
_OPTIMIZER_KEYS = {k: _TRAIN_KEYS[k] for k in ("lr", "momentum", "weight_decay")}
_GRID_KEYS = {
    "arch": (str, "architecture names"),
    "optimizer": (str, "optimiser names"),
    "seed": (int, "integers"),
    "lr": ((int, float), "positive numbers"),
    "batch_size": (int, "positive integers"),
    "epochs": (int, "positive integers"),
    "weight_decay": ((int, float), "non-negative numbers"),
}
_SECTIONS = ("sweep", "data", "train", "grid", "arch", "optimizer")
_TRAIN_DEFAULTS = {"epochs": 10, "batch_size": 64, "checkpoints": 50, "schedule": "cosine",
                   "lr": 0.01, "momentum": 0.9, "weight_decay": 0.0}
_DATA_DEFAULTS = {"name": "digits", "seed": 0, "probe_train": 500, "probe_test": 500, "probe_seed": 0}
_DATA_OPTION_KEYS = ("seed", "test_fraction")  # passed on to the dataset loader


@dataclass(frozen=True)
class RunSpec:
    """One run of a sweep: a stable id, a readable label and its resolved config."""

    run_id: str
    label: str
    config: dict


@dataclass
class SweepSpec:
    """A parsed, validated sweep spec."""

    name: str
    store: Path
    workers: int
    data: dict
    runs: list[RunSpec]
    source: str = "<string>"
    grid: dict = field(default_factory=dict)


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


class _Checker:
    def __init__(self, source: str, text: str):
        self.source, self.text = source, text

    def fail(self, section: str | None, key: str, message: str):
        line = _line_of(self.text, section, key) if self.text else None
        where = f"{self.source}:{line}" if line else self.source
        raise SpecError(f"{where}: {message}")

    def table(self, section: str, value: Any) -> dict:
        if not isinstance(value, dict):
            self.fail(None, section, f"[{section}] must be a table, got {type(value).__name__}")
        return value

    def keys(self, section: str, table: dict, allowed: dict) -> None:
        for key, value in table.items():
            if key not in allowed:
                self.fail(section, key, f"[{section}] unknown key {key!r}; allowed: {', '.join(sorted(allowed))}")
            types, what = allowed[key]
            values = value if section == "grid" else [value]
            if section == "grid" and (not isinstance(value, list) or not value):
                self.fail(section, key, f"[grid] {key} must be a non-empty list of {what}, got {value!r}")
            for v in values:
                # bool is an int in Python; a spec saying `epochs = true` is a mistake.
                if isinstance(v, bool) or not isinstance(v, types):
                    self.fail(section, key, f"[{section}] {key} must be {what}, got {v!r}")

    def choice(self, section: str, key: str, value: str, allowed, what: str) -> None:
        if value not in allowed:
            self.fail(section, key, f"[{section}] {key}: unknown {what} {value!r}; allowed: {', '.join(sorted(allowed))}")


def _run_id(config: dict) -> str:
    digest = hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()[:10]
    return f"{config['arch']}-{config['optimizer']}-s{config['seed']}-{digest}"


def parse_spec(raw: dict, *, source: str = "<string>", text: str = "") -> SweepSpec:
    """Validate a spec given as a dict (parsed TOML) and expand its grid.

    Raises
    ------
    SpecError
        On any unknown section or key, wrong type, unknown architecture or optimiser.
    """
    chk = _Checker(source, text)
    for section in raw:
        if section not in _SECTIONS:
            chk.fail(None, "", f"unknown section [{section}]; allowed: {', '.join(_SECTIONS)}")
    sweep = chk.table("sweep", raw.get("sweep", {}))
    data = chk.table("data", raw.get("data", {}))
    train = chk.table("train", raw.get("train", {}))
    grid = chk.table("grid", raw.get("grid", {}))
    arch_opts = chk.table("arch", raw.get("arch", {}))
    opt_opts = chk.table("optimizer", raw.get("optimizer", {}))
    chk.keys("sweep", sweep, _SWEEP_KEYS)
    chk.keys("data", data, _DATA_KEYS)
    chk.keys("train", train, _TRAIN_KEYS)
    chk.keys("grid", grid, _GRID_KEYS)

    models = available_models()
    for arch in grid.get("arch", []):
        chk.choice("grid", "arch", arch, models, "architecture")
    for opt in grid.get("optimizer", []):
        chk.choice("grid", "optimizer", opt, OPTIMIZERS, "optimizer")
    for arch, knobs in arch_opts.items():
        chk.choice("arch", arch, arch, models, "architecture")
        chk.table(f"arch.{arch}", knobs)
    for opt, settings in opt_opts.items():
        chk.choice("optimizer", opt, opt, OPTIMIZERS, "optimizer")
        chk.keys(f"optimizer.{opt}", chk.table(f"optimizer.{opt}", settings), _OPTIMIZER_KEYS)
    if "schedule" in train:
        chk.choice("train", "schedule", train["schedule"], SCHEDULES, "schedule")
    for key in ("epochs", "batch_size", "probe_train", "probe_test", "workers"):
        for section, table in (("train", train), ("data", data), ("sweep", sweep)):
            if key in table and table[key] < 1:
                chk.fail(section, key, f"[{section}] {key} must be >= 1, got {table[key]}")
    if train.get("checkpoints", 2) < 2:
        chk.fail("train", "checkpoints", f"[train] checkpoints must be >= 2, got {train['checkpoints']}")
    if "test_fraction" in data and not 0 < data["test_fraction"] < 1:
        chk.fail("data", "test_fraction", f"[data] test_fraction must be in (0, 1), got {data['test_fraction']}")

    data = {**_DATA_DEFAULTS, **data}
    axes = {"arch": ["mlp"], "optimizer": ["sgd"], "seed": [0], **grid}
    varied = [k for k, v in axes.items() if len(v) > 1]
    runs = []
    for values in itertools.product(*axes.values()):
        point = dict(zip(axes, values))
        config = {**_TRAIN_DEFAULTS, **train, **opt_opts.get(point["optimizer"], {}), **point}
        if config["optimizer"] != "sgd":
            config.pop("momentum")  # meaningless for Adam; kept out so ids do not depend on it
        config["arch_options"] = dict(arch_opts.get(point["arch"], {}))
        config["data"] = {k: data[k] for k in ("name", *_DATA_OPTION_KEYS) if k in data}
        config["probes"] = {"train": data["probe_train"], "test": data["probe_test"], "seed": data["probe_seed"]}
        label = " / ".join(
            str(point[k]) if k in ("arch", "optimizer") else f"{k} {point[k]}"
            for k in axes if k in varied or k in ("arch", "optimizer", "seed")
        )
        runs.append(RunSpec(run_id=_run_id(config), label=label, config=config))

    name = sweep.get("name", Path(source).stem if source != "<string>" else "sweep")
    return SweepSpec(
        name=name,
        store=Path(sweep.get("store", os.path.join("runs", name))),
        workers=int(sweep.get("workers", os.cpu_count() or 1)),
        data=data,
        runs=runs,
        source=source,
        grid=axes,
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
