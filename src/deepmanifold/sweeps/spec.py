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
before anything is trained; ``whiten = true`` whitens any dataset's inputs and
``label_noise = 0.05`` flips that fraction of its training labels (recorded).
``[train] loss`` is ``"cross_entropy"`` (default) or ``"squared"``.

Every key is checked before anything is trained; a mistake gives one line that
names the key, the value, what is allowed, and the line of the spec file where the
value is written. The parser checks what the spec alone decides: the keys and their
types, and every resolved run's config through training's own
:func:`~deepmanifold.training.config.validate_config` (``lr = -1``, ``momentum = 1.5``,
``nan``, ...), whichever of ``[train]``, ``[optimizer.X]``, ``[zip]``,
``[optimizer.X.zip]`` or ``[grid]`` the value comes from. What needs the data or
the models (a batch larger than the training set, probe sets larger than their
split, a model too large for memory) is checked by
:func:`~deepmanifold.sweeps.preflight.preflight`.

A spec file is UTF-8 TOML that sets at least one key: an empty file, or one of only
comments and empty sections, is refused rather than run as a default sweep. A
``store`` starting with ``~`` is in the user's home folder.
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

from deepmanifold.live.pruning import Pruning
from deepmanifold.training import AUGMENTATION_MODES, INITS, OPTIMIZERS, SCHEDULES, available_models
from deepmanifold.training.config import CONFIG_KEYS, MOMENTUM_OPTIMIZERS, OPTIONAL_KEYS, validate_config

__all__ = ["SpecError", "SweepSpec", "RunSpec", "load_spec", "offending_key", "parse_spec"]


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
    "whiten": (bool, "true or false (ZCA-whiten the inputs with the training statistics)"),
    "label_noise": ((int, float), "a fraction in [0, 1) of training labels to flip"),
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
    "loss": (str, "one of cross_entropy, squared"),
    "measurements": (list, "a list of measurement names, e.g. [\"nfa\"]"),
    "measurement_options": (dict, "a table of options per measurement, e.g. "
                                  "[train.measurement_options.capacity] n_t = 100"),
}
_OPTIMIZER_KEYS = {k: _TRAIN_KEYS[k] for k in ("lr", "momentum", "weight_decay", "warmup_epochs")}
_ZIP_KEYS = {k: _TRAIN_KEYS[k] for k in ("lr", "batch_size", "weight_decay", "epochs", "warmup_epochs", "schedule")}
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
    "schedule": (str, f"schedules ({', '.join(SCHEDULES)})"),
    "width": (int, "positive integers (architecture knob)"),
    "depth": (int, "positive integers (architecture knob)"),
}
_KNOB_AXES = ("width", "depth")  # grid axes that are architecture knobs
_DEFAULT_AXES = {"arch": ["mlp"], "optimizer": ["sgd"], "seed": [0]}  # one run unless [grid] says more
_SECTIONS = ("sweep", "data", "train", "grid", "zip", "arch", "optimizer", "prune")
_TRAIN_DEFAULTS = {"epochs": 10, "batch_size": 64, "checkpoints": 50, "schedule": "cosine",
                   "lr": 0.01, "momentum": 0.9, "weight_decay": 0.0}
_DATA_DEFAULTS = {"name": "digits", "seed": 0, "probe_train": 500, "probe_test": 500, "probe_seed": 0}
# [data] keys that make the probe sets -> their place in a run's config; the others go to the loader.
_PROBE_PATHS = {"probe_train": "probes.train", "probe_test": "probes.test", "probe_seed": "probes.seed"}


@dataclass(frozen=True)
class RunSpec:
    """One run of a sweep: a stable id, a readable label and its resolved config.

    Attributes
    ----------
    run_id, label : str
    config : dict
    sources : dict
        Where each value the spec writes comes from: a path into ``config``
        (``"lr"``, ``"arch_options.width"``, ``"probes.test"``, ``"data.train_size"``)
        -> ``(section, key)`` of the spec (``("grid", "lr")``, ``("data", "probe_test")``).
        Values taken from the defaults are absent.
    """

    run_id: str
    label: str
    config: dict
    sources: dict = field(default_factory=dict, compare=False, repr=False)


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
    prune : Pruning or None
        The ``[prune]`` table: runs stopped at rungs by asynchronous successive halving
        (:mod:`deepmanifold.live.pruning`); None trains every run to the end.
    """

    name: str
    store: Path
    workers: int
    data: dict
    runs: list[RunSpec]
    source: str = "<string>"
    grid: dict = field(default_factory=dict)
    text: str = ""
    prune: Pruning | None = None

    def error(self, section: str | None, key: str, message: str) -> SpecError:
        """A :class:`SpecError` for ``message`` naming the spec line of ``key`` in ``[section]``."""
        return _located(self.source, self.text, section, key, message)

    def run_error(self, run: RunSpec, path: str | None, message: str) -> SpecError:
        """A :class:`SpecError` for a bad value of ``run``, at the line where the spec writes it.

        ``path`` is the value's place in ``run.config`` (see :attr:`RunSpec.sources`);
        ``message`` is prefixed with its ``[section]``, or says the value is a default.
        """
        return _run_error(self.source, self.text, run, path, message)


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


# How training's ValueErrors name a key: config['lr'].
_CONFIG_REF = re.compile(r"config\[['\"](\w+)['\"]\]")


def offending_key(message: str, keys) -> str | None:
    """The key of ``keys`` an error ``message`` is about, or ``None``.

    The first ``config['key']`` the message names (training's validation writes keys
    so), else the key of ``keys`` the message names first as a whole word
    (``"batch_size 200 exceeds the 150 training samples"``).
    """
    ref = _CONFIG_REF.search(message)
    if ref:
        return ref.group(1)
    hits = [(hit.start(), key) for key in keys
            if (hit := re.search(rf"(?<![\w.]){re.escape(key)}(?![\w.])", message))]
    return min(hits)[1] if hits else None


def _run_error(source: str, text: str, run: RunSpec, path: str | None, message: str) -> SpecError:
    """:meth:`SweepSpec.run_error` (also used by the parser, before the spec exists)."""
    message = _CONFIG_REF.sub(r"\1", message)
    if path is None:
        return SpecError(f"{source}: {message} (run {run.label})")
    where = run.sources.get(path)
    if where is None:
        return SpecError(f"{source}: {message} (a default value: set it in the spec)")
    section, key = where
    return _located(source, text, section, key, f"[{section}] {message}")


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
                if (isinstance(v, bool) and types is not bool) or not isinstance(v, types):
                    self.fail(section, key, f"[{section}] {key} must be {what}, got {v!r}")

    def choice(self, section: str, key: str, value: str, allowed, what: str) -> None:
        if value not in allowed:
            where = f"[{section}] {key}:" if key else f"[{section}]"
            self.fail(section, key, f"{where} unknown {what} {value!r}; allowed: {', '.join(sorted(allowed))}")


def _sets_a_value(table: dict) -> bool:
    """Whether a parsed TOML table holds a value anywhere, not only (nested) empty tables."""
    return any(_sets_a_value(v) if isinstance(v, dict) else True for v in table.values())


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


def _expand(grid: dict, train: dict, zip_rows: list[dict], opt_opts: dict, opt_zip_rows: dict,
            arch_opts: dict, aliases: dict, data: dict, data_sources: dict) -> list[RunSpec]:
    """The runs of a checked spec: the product of the ``[grid]`` lists (and the default
    axes it leaves out), times the zip rows, times each optimiser's zip rows; each run
    with the spec section of every value it takes (:attr:`RunSpec.sources`)."""
    axes = {**_DEFAULT_AXES, **grid}
    varied = [k for k, v in axes.items() if len(v) > 1] + sorted({k for row in zip_rows for k in row})
    runs = []
    for values in itertools.product(*axes.values()):
        point = dict(zip(axes, values))
        opt = point["optimizer"]
        for row in zip_rows:
            for opt_row in opt_zip_rows.get(opt, [{}]):
                knobs = {k: point.pop(k) for k in _KNOB_AXES if k in point}
                # Later tables win: [grid] over [optimizer.X.zip] over [zip] over [optimizer.X] over [train].
                layers = (("train", train), (f"optimizer.{opt}", opt_opts.get(opt, {})), ("zip", row),
                          (f"optimizer.{opt}.zip", opt_row), ("grid", point))
                config = dict(_TRAIN_DEFAULTS)
                sources = dict(data_sources)
                for section, table in layers:
                    config.update(table)
                    sources.update({k: (section, k) for k in table if section != "grid" or k in grid})
                if config["optimizer"] not in MOMENTUM_OPTIMIZERS:
                    config.pop("momentum")  # meaningless for Adam; kept out so ids do not depend on it
                arch_table = arch_opts.get(point["arch"], {})
                config["arch_options"] = {**arch_table, **knobs}
                sources.update({f"arch_options.{k}": (f"arch.{point['arch']}", k) for k in arch_table})
                sources.update({f"arch_options.{k}": ("grid", k) for k in knobs})
                model = aliases.get(point["arch"], point["arch"])
                if model != point["arch"]:
                    config["arch"], config["arch_alias"] = model, point["arch"]
                point.update(knobs)
                config["data"] = {k: v for k, v in data.items() if k not in _PROBE_PATHS}
                config["probes"] = {"train": data["probe_train"], "test": data["probe_test"],
                                    "seed": data["probe_seed"]}
                shown = {**point, **row, **opt_row}
                label = " / ".join(
                    str(shown[k]) if k in ("arch", "optimizer") else f"{k} {shown[k]}"
                    for k in dict.fromkeys([*axes, *row, *opt_row])
                    if k in varied or k in ("arch", "optimizer", "seed") or k in opt_row
                )
                runs.append(RunSpec(run_id=_run_id(config), label=label, config=config, sources=sources))
    return runs


def _check_runs(source: str, text: str, runs: list[RunSpec]) -> None:
    """Every run's training config through training's own :func:`validate_config`; its
    first error is raised at the spec line of the offending value."""
    training_keys = set(CONFIG_KEYS) | set(OPTIONAL_KEYS)
    for run in runs:
        config = {k: v for k, v in run.config.items() if k in training_keys}
        try:
            validate_config(config)
        except ValueError as exc:
            raise _run_error(source, text, run, offending_key(str(exc), config), str(exc)) from None


def parse_spec(raw: dict, *, source: str = "<string>", text: str = "") -> SweepSpec:
    """Validate a spec given as a dict (parsed TOML) and expand it into runs.

    Raises
    ------
    SpecError
        On a spec that sets no key; any unknown section or key, wrong type, unknown
        architecture, optimiser, schedule, augmentation or initialisation, zipped
        lists of unequal length; or a run whose training config
        :func:`~deepmanifold.training.config.validate_config` refuses (named at the
        line where the spec writes the offending value).
    """
    chk = _Checker(source, text)
    for section in raw:
        if section not in _SECTIONS:
            chk.fail(None, "", f"unknown section [{section}]; allowed: {', '.join(_SECTIONS)}")
    if not _sets_a_value(raw):
        # An empty file (or an unsaved one) is a mistake, not a request for the default sweep.
        raise SpecError(f"{source}: the spec sets no key (it is empty, or holds only comments and empty "
                        "sections); write at least what to train, e.g. [grid] arch = [\"mlp\"]")
    sweep = chk.table("sweep", raw.get("sweep", {}))
    data = chk.table("data", raw.get("data", {}))
    train = chk.table("train", raw.get("train", {}))
    grid = chk.table("grid", raw.get("grid", {}))
    zipped = chk.table("zip", raw.get("zip", {}))
    # Copies: the loops below replace their entries, and the caller's dict must stay as given.
    arch_opts = dict(chk.table("arch", raw.get("arch", {})))
    opt_opts = dict(chk.table("optimizer", raw.get("optimizer", {})))
    chk.keys("sweep", sweep, _SWEEP_KEYS)
    chk.keys("data", data, _DATA_KEYS, extra=_DATA_OPTION_TYPES)
    chk.keys("train", train, _TRAIN_KEYS)
    chk.keys("grid", grid, _GRID_KEYS)
    zip_rows = _zip_rows(chk, "zip", zipped)
    prune_table = chk.table("prune", raw.get("prune", {}))
    pruning = None
    if prune_table:
        try:
            pruning = Pruning.from_mapping(prune_table)
        except (TypeError, ValueError) as exc:
            bad = next((k for k in prune_table if k in str(exc)), "")
            chk.fail("prune", bad, f"[prune] {exc}")

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
    # The values of training keys are checked per resolved run (_check_runs), by training's rules.
    for key in ("probe_train", "probe_test", "workers", "train_size"):
        for section, table in (("data", data), ("sweep", sweep)):
            if key in table and table[key] < 1:
                chk.fail(section, key, f"[{section}] {key} must be >= 1, got {table[key]}")
    if "test_fraction" in data and not 0 < data["test_fraction"] < 1:
        chk.fail("data", "test_fraction", f"[data] test_fraction must be in (0, 1), got {data['test_fraction']}")

    data_sources = {(_PROBE_PATHS[k] if k in _PROBE_PATHS else f"data.{k}"): ("data", k) for k in data}
    data = {**_DATA_DEFAULTS, **data}
    runs = _expand(grid, train, zip_rows, opt_opts, opt_zip_rows, arch_opts, aliases, data, data_sources)
    _check_runs(source, text, runs)

    ids = [r.run_id for r in runs]
    if len(set(ids)) != len(ids):
        dup = next(r for r in runs if ids.count(r.run_id) > 1)
        chk.fail(None, "", f"two runs of the spec have the same configuration ({dup.label}): a list repeats a value")
    name = sweep.get("name", Path(source).stem if source != "<string>" else "sweep")
    return SweepSpec(
        name=name,
        store=Path(sweep.get("store", os.path.join("runs", name))).expanduser(),
        workers=int(sweep.get("workers", os.cpu_count() or 1)),
        data=data,
        runs=runs,
        source=source,
        grid={**_DEFAULT_AXES, **grid},
        text=text,
        prune=pruning,
    )


def _decode(path: Path, data: bytes) -> str:
    """The UTF-8 text of a spec file; a :class:`SpecError` naming the line of the first bad byte."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise SpecError(f"{path}:{line}: not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start}); "
                        "a spec is a TOML file saved as UTF-8") from None


def load_spec(path: str | os.PathLike) -> SweepSpec:
    """Read, validate and expand a TOML sweep spec file (UTF-8)."""
    path = Path(path)
    try:
        text = _decode(path, path.read_bytes())
    except OSError as exc:
        raise SpecError(f"cannot read spec {path}: {exc.strerror or exc}") from exc
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SpecError(f"{path}: not valid TOML: {exc}") from exc
    return parse_spec(raw, source=str(path), text=text)
