"""Runs on disk: atomic commit, a catalog, and readers that load only what is asked.

Layout of a store folder::

    STORE/
      store.json                  format marker and version
      catalog.jsonl               cached catalog rows (see deepmanifold.store.catalog)
      probes/<fingerprint>.npz    probe sets: indices, labels (+ name, split, dataset)
      runs/<run_id>/              one committed run
          run.json                resolved config, status, message, probe fingerprints,
                                  the run's arrays and the measurement each belongs to, ...
          metrics.csv             one row per checkpoint: step, epoch, losses, accuracies
          logp_<probe>.npy        (K, n, C) float32 log-probabilities per probe set
          <measurement>_<key>.npy (K, ...) any other measurement recorded per checkpoint
      .staging/                   runs being written (never read as runs)

A run is written completely into ``.staging/`` and then renamed into ``runs/``
in one ``os.rename``, which is atomic on POSIX file systems: a reader (or a sweep
killed with ``kill -9``) sees either the whole run or nothing of it.  Several
processes may write to one store: each stages under a unique name, and when two
commit the same run id the second rename fails and its copy is discarded.
Staging leftovers of killed writers (named after the writer's pid) are removed
by :meth:`Store.clean_staging`, which every sweep calls before it starts
(``tests/store/test_crash_resume.py`` kills a real sweep at random moments).

Finding runs: :meth:`Store.catalog` gives one row per run as a DataFrame and
:meth:`Store.query` filters it with a safe expression language
(``'arch == "wrn" and final_test_acc > 0.9'``; :mod:`deepmanifold.store.query`).
A damaged run (missing or truncated array, bad JSON, another format version) is
named and left out; the rest of the store stays readable. Arrays are read through
memory maps (:meth:`Store.array`, :meth:`Store.logp`): only what is sliced is read.

Predictions are stored as float32 log-probabilities: float16 would halve the bytes but
moves the distance of close checkpoints by up to 28 % (benchmarks/README.md,
"Precision of stored predictions").
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import shutil
import uuid
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Mapping

import numpy as np

from . import catalog
from .files import StoreError, checksum, fsync_dir, npy_bytes, npy_header, pid_alive, tupled, write_bytes

if TYPE_CHECKING:
    import pandas as pd

FORMAT = "deepmanifold-store"
FORMAT_VERSION = 1
#: What a committed run can be: trained to the end, stopped by a non-finite loss or prediction,
#: or stopped at a rung of a pruned sweep (:mod:`deepmanifold.live.pruning`).
STATUSES = ("complete", "diverged", "pruned")
#: The measurement whose arrays are the predictions, ``logp_<probe>`` (K, n, C).
PREDICTIONS = "logp"


@dataclass(frozen=True)
class RunRecord:
    """Catalog entry of one committed run (everything but the arrays).

    Attributes
    ----------
    run_id : str
    config : dict
        The run's resolved configuration.
    status : {"complete", "diverged", "pruned"}
    message : str
    probes : dict of str to str
        Probe-set name -> fingerprint; runs are compared only on equal fingerprints.
    n_checkpoints : int
    info : dict
        Everything else recorded (wall time, parameter count, ...).
    arrays : dict of str to str
        Name of every array of the run (``logp_test``, ``nfa_corr``, ...) -> the
        measurement that recorded it (``"logp"`` for the predictions). Each is stored
        as ``<name>.npy`` with ``n_checkpoints`` rows; read it with :meth:`Store.array`.
    checksums : dict of str to int
        CRC-32 of each of the run's files but ``run.json`` (what :meth:`Store.verify`
        compares with the files).
    """

    run_id: str
    config: dict
    status: str
    message: str
    probes: dict[str, str]
    n_checkpoints: int
    info: dict
    arrays: dict[str, str]
    checksums: dict[str, int] = field(default_factory=dict)

    @property
    def measurements(self) -> tuple[str, ...]:
        """The measurements recorded at every checkpoint, in order of first array."""
        return tuple(dict.fromkeys(self.arrays.values()))


@dataclass(frozen=True)
class StoredProbe:
    """A probe set as stored: which samples, with which labels."""

    fingerprint: str
    name: str
    split: str
    dataset: str
    indices: np.ndarray
    labels: np.ndarray


def _metrics_csv(metrics: Mapping[str, np.ndarray]) -> bytes:
    names = list(metrics)
    columns = [np.asarray(metrics[name]) for name in names]
    lengths = {len(c) for c in columns}
    if len(lengths) > 1:
        raise ValueError(f"metrics columns have different lengths: { {n: len(c) for n, c in zip(names, columns)} }")
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(names)
    for row in zip(*columns):
        writer.writerow([repr(v.item()) if hasattr(v, "item") else repr(v) for v in row])
    return buf.getvalue().encode()


class Store:
    """A folder of training runs.

    Parameters
    ----------
    root : path-like
        The store folder; created (with its format marker) if it does not exist or is
        empty.
    create : bool, default True
        If False, a missing store is an error instead of being created.
    force : bool, default False
        Make a store of a folder that is not empty (its files are left as they are).
    read_only : bool, default False
        Open an existing store without ever writing to it: no folder is created, the
        catalog's cache file is not refreshed (the catalog is still read right, from
        the runs), and :meth:`write_run` and :meth:`put_probe` raise. For readers that
        must leave a store as they found it (``deepmanifold watch``, a reference
        picture).

    Raises
    ------
    StoreError
        ``root`` is a file, a non-empty folder that is not a store (without ``force``),
        a store whose ``store.json`` is damaged or of another format or version, or a
        folder that cannot be created; with ``read_only``, a folder that is not a store.
    """

    def __init__(self, root: str | os.PathLike, *, create: bool = True, force: bool = False,
                 read_only: bool = False):
        self.root = Path(root).expanduser()
        self.read_only = bool(read_only)
        create = create and not self.read_only
        marker = self.root / "store.json"
        if self.root.exists() and not self.root.is_dir():
            raise StoreError(f"{self.root} is a file, not a store folder")
        if not marker.exists():
            if not create:
                raise StoreError(f"{self.root} is not a deepmanifold store (no store.json)")
            self._create(marker, force)
        try:
            meta = json.loads(marker.read_text())
        except (OSError, ValueError) as exc:
            raise StoreError(f"{marker} is damaged ({exc}): it is not the marker of a deepmanifold store") from exc
        if not isinstance(meta, dict) or meta.get("format") != FORMAT:
            found = meta.get("format") if isinstance(meta, dict) else type(meta).__name__
            raise StoreError(f"{self.root} is not a deepmanifold store: {marker.name} has format {found!r}, "
                             f"expected {FORMAT!r}")
        if meta.get("version") != FORMAT_VERSION:
            raise StoreError(
                f"{self.root} was written by another version of deepmanifold: found store format "
                f"version {meta.get('version')!r}, this version of deepmanifold supports version {FORMAT_VERSION}"
            )
        if not (self.root / "runs").is_dir():
            if self.read_only:
                raise StoreError(f"{self.root} has no runs/ folder: there is nothing to read")
            self._make_folders()

    def _check_writable_mode(self, what: str) -> None:
        if self.read_only:
            raise StoreError(f"{self.root} was opened read-only: cannot {what}")

    def _create(self, marker: Path, force: bool) -> None:
        """Make ``root`` a store: only an empty (or staging-only) folder unless ``force``."""
        if self.root.is_dir() and not force:
            others = sorted(p.name for p in self.root.iterdir() if p.name != ".staging")
            if others:
                shown = ", ".join(others[:5]) + (", ..." if len(others) > 5 else "")
                raise StoreError(f"{self.root} is not empty ({shown}) and is not a deepmanifold store (no "
                                 "store.json): give a new or empty folder, or --force to make this one a store")
        try:
            (self.root / ".staging").mkdir(parents=True, exist_ok=True)
            self._write_marker(marker)
            self._make_folders()
        except OSError as exc:
            raise StoreError(f"cannot create the store {self.root}: {exc.strerror or exc}") from exc

    def _make_folders(self) -> None:
        try:
            for sub in ("runs", "probes", ".staging"):
                (self.root / sub).mkdir(exist_ok=True)
        except OSError as exc:
            raise StoreError(f"cannot create the folders of the store {self.root}: {exc.strerror or exc}") from exc

    def check_writable(self) -> None:
        """Raise :class:`StoreError` unless runs can be committed here (checked before training)."""
        probe = self.root / ".staging" / f"writable.{os.getpid()}.{uuid.uuid4().hex[:8]}"
        try:
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as exc:
            raise StoreError(f"the store {self.root} is not writable ({exc.strerror or exc}): runs could not be "
                             "committed") from exc

    def _write_marker(self, marker: Path) -> None:
        # Racing creators write identical content, so last-rename-wins is harmless. The
        # temporary file lives in .staging/ (named after this pid) so that clean_staging()
        # removes it if we are killed before the rename.
        tmp = self.root / ".staging" / f"store.json.{os.getpid()}.{uuid.uuid4().hex[:8]}"
        write_bytes(tmp, json.dumps({"format": FORMAT, "version": FORMAT_VERSION}).encode())
        os.replace(tmp, marker)

    def __repr__(self) -> str:
        return f"Store({str(self.root)!r})"

    # ------------------------------------------------------------------ probes
    def put_probe(self, *, fingerprint: str, name: str, split: str, dataset: str,
                  indices: np.ndarray, labels: np.ndarray) -> None:
        """Store a probe set once under its fingerprint (idempotent, atomic).

        A damaged file already there is moved aside (to ``damaged/``) and written again.
        """
        self._check_writable_mode(f"store probe set {fingerprint}")
        path = self.root / "probes" / f"{fingerprint}.npz"
        if path.exists():
            try:
                self.probe(fingerprint)
                return
            except StoreError as exc:
                from .repair import move_aside  # repair builds on this module

                move_aside(self, path, str(exc))
        # "<name>.<pid>.<random>": clean_staging() keeps files of live writers.
        tmp = self.root / ".staging" / f"probe-{fingerprint}.{os.getpid()}.{uuid.uuid4().hex[:8]}"
        with open(tmp, "wb") as fh:
            np.savez(fh, indices=np.asarray(indices, dtype=np.int64),
                     labels=np.asarray(labels, dtype=np.int64),
                     name=np.array(name), split=np.array(split), dataset=np.array(dataset))
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)

    def probe(self, fingerprint: str) -> StoredProbe:
        """Read a stored probe set by fingerprint.

        Raises
        ------
        StoreError
            The file is missing or is not a probe file (never unpickled).
        """
        path = self.root / "probes" / f"{fingerprint}.npz"
        if not path.exists():
            raise StoreError(f"probe set {fingerprint} is missing from {self.root / 'probes'}")
        try:
            with np.load(path, allow_pickle=False) as z:
                probe = StoredProbe(fingerprint=fingerprint, name=str(z["name"]), split=str(z["split"]),
                                    dataset=str(z["dataset"]), indices=z["indices"], labels=z["labels"])
        except Exception as exc:  # noqa: BLE001 - zip, npy, key and pickle refusals alike
            raise StoreError(f"probe file {path} is damaged: not a probe set written by deepmanifold "
                             f"({type(exc).__name__})") from None
        if probe.indices.shape != probe.labels.shape or probe.labels.ndim != 1:
            raise StoreError(f"probe file {path} is damaged: indices {probe.indices.shape} and labels "
                             f"{probe.labels.shape} do not match")
        return probe

    # -------------------------------------------------------------------- runs
    def run_dir(self, run_id: str) -> Path:
        return self.root / "runs" / run_id

    def has_run(self, run_id: str) -> bool:
        """True if the run is committed (complete or diverged)."""
        return (self.run_dir(run_id) / "run.json").exists()

    def write_run(self, run_id: str, *, config: dict, status: str, message: str = "",
                  metrics: Mapping[str, np.ndarray], logp: Mapping[str, np.ndarray],
                  probes: Mapping[str, str], info: Mapping[str, Any] | None = None,
                  arrays: Mapping[str, Mapping[str, np.ndarray]] | None = None) -> bool:
        """Commit one run atomically.

        Parameters
        ----------
        run_id : str
            Folder name of the run; letters, digits, ``-``, ``_``, ``.``.
        config : dict
            Resolved configuration (JSON-serialisable).
        status : {"complete", "diverged", "pruned"}
        metrics : mapping of str to ndarray, each (K,)
            Per-checkpoint columns; must include ``step`` and ``epoch``.
        logp : mapping of str to ndarray, each (K, n, C)
            Log-probabilities per probe set (the predictions), stored as float32 in
            ``logp_<probe>.npy``.
        probes : mapping of str to str
            Probe name -> fingerprint (stored beforehand with :meth:`put_probe`).
        info : mapping, optional
            Extra facts (wall time, parameter count, ...).
        arrays : mapping of str to mapping of str to ndarray, optional
            Other measurements: measurement name -> its arrays by key, each
            ``(K, ...)`` of a numeric dtype, stored as they are in
            ``<measurement>_<key>.npy`` (``<measurement>.npy`` for the key ``""``).
            Names are lower-case letters, digits and ``_``; ``"logp"`` is the
            predictions' own.

        Returns
        -------
        bool
            True if this call committed the run, False if it was already committed
            (by an earlier sweep or a concurrent writer); the store is unchanged then.

        Raises
        ------
        ValueError
            A bad run id, status or array name, missing ``step``/``epoch`` metrics, or
            arrays whose first axis is not the ``K`` checkpoints of ``metrics``.
        """
        check_run_id(run_id)
        self._check_writable_mode(f"commit run {run_id!r}")
        if status not in STATUSES:
            raise ValueError(f"status {status!r} is not one of {STATUSES}")
        for key in ("step", "epoch"):
            if key not in metrics:
                raise ValueError(f"metrics must include {key!r}; got {sorted(metrics)}")
        k = len(np.asarray(metrics["step"]))
        if set(logp) != set(probes):
            raise ValueError(f"logp probes {sorted(logp)} differ from fingerprints given for {sorted(probes)}")
        files = _array_files(k, logp, arrays or {})
        if self.has_run(run_id):
            return False

        staging = self.root / ".staging" / f"{run_id}.{os.getpid()}.{uuid.uuid4().hex[:8]}"
        staging.mkdir(parents=True)
        try:
            record = {
                "format_version": FORMAT_VERSION,
                "run_id": run_id,
                "config": config,
                "status": status,
                "message": message,
                "probes": dict(probes),
                "n_checkpoints": k,
                "info": dict(info or {}),
                "arrays": {name: measurement for name, (measurement, _) in files.items()},
                "checksums": {},
            }
            contents = {f"{name}.npy": npy_bytes(arr) for name, (_, arr) in files.items()}
            contents["metrics.csv"] = _metrics_csv(metrics)
            for file_name, data in contents.items():
                write_bytes(staging / file_name, data)
                record["checksums"][file_name] = checksum(data)
            record["digest"] = _digest(record)
            # run.json last: its presence is what marks a run as committed.
            write_bytes(staging / "run.json", json.dumps(record, indent=1, sort_keys=True).encode())
            fsync_dir(staging)
            try:
                os.rename(staging, self.run_dir(run_id))
            except OSError:
                if self.has_run(run_id):  # a concurrent writer committed it first
                    return False
                raise
            fsync_dir(self.root / "runs")
            try:  # the catalog index is a cache: failing to update it never fails a commit
                catalog.append_entry(self, catalog.entry_for(self, run_id))
            except (OSError, ValueError):
                pass
            return True
        finally:
            if staging.exists():
                shutil.rmtree(staging, ignore_errors=True)

    def clean_staging(self) -> int:
        """Remove staging leftovers of dead writers (e.g. after ``kill -9``); returns how many."""
        self._check_writable_mode("clean its staging folder")
        removed = 0
        for path in (self.root / ".staging").iterdir():
            parts = path.name.split(".")
            pid = int(parts[-2]) if len(parts) >= 3 and parts[-2].isdigit() else None
            if pid is not None and pid_alive(pid):
                continue
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
            removed += 1
        return removed

    def run_ids(self) -> list[str]:
        """Ids of committed runs, sorted."""
        return sorted(p.name for p in (self.root / "runs").iterdir() if (p / "run.json").exists())

    def verify(self, run_id: str) -> RunRecord:
        """The run's record after reading every one of its files in full.

        Beyond :meth:`record`'s cheap checks: ``metrics.csv`` parses with one row per
        checkpoint, and every file matches the checksum ``run.json`` holds for it.

        Raises
        ------
        StoreError
            Naming the run and what is wrong with it.
        """
        rec = self.record(run_id)
        k = len(self.metrics(run_id)["step"])
        if k != rec.n_checkpoints:
            raise StoreError(f"run {run_id} in {self.root} is damaged: metrics.csv has {k} rows, "
                             f"run.json says {rec.n_checkpoints} checkpoints")
        for name, expected in rec.checksums.items():
            try:
                data = (self.run_dir(run_id) / name).read_bytes()
            except OSError as exc:
                raise StoreError(f"run {run_id} in {self.root} is damaged: {name} unreadable ({exc})") from exc
            if checksum(data) != expected:
                raise StoreError(f"run {run_id} in {self.root} is damaged: {name} does not match its checksum "
                                 "(changed after the run was committed)")
        return rec

    def record(self, run_id: str, *, verify: bool = True) -> RunRecord:
        """Catalog entry of one run; :class:`StoreError` names the run if it is damaged.

        With ``verify`` (default) the run's files are checked too (cheaply: each
        ``logp_*.npy`` header against its size, ``metrics.csv`` present), so a
        missing or truncated array is reported here rather than on first read.
        """
        path = self.run_dir(run_id) / "run.json"
        try:
            raw = json.loads(path.read_text())
            if not isinstance(raw, dict):
                raise TypeError(f"expected a JSON object, got {type(raw).__name__}")
            if raw.get("format_version") != FORMAT_VERSION:
                raise StoreError(f"run {run_id} in {self.root} was written by another version of deepmanifold: "
                                 f"found run format version {raw.get('format_version')!r}, this version "
                                 f"supports version {FORMAT_VERSION}")
            unknown = sorted(set(raw) - _RECORD_KEYS)
            if unknown:
                raise ValueError(f"unknown keys {unknown}")
            if "checksums" in raw and raw.get("digest") != _digest({k: v for k, v in raw.items() if k != "digest"}):
                raise ValueError("its content does not match its digest (changed after the commit)")
            probes = dict(raw["probes"])
            # Runs with predictions only may omit "arrays": then they are logp_<probe>.
            arrays = raw.get("arrays", {f"{PREDICTIONS}_{p}": PREDICTIONS for p in probes})
            rec = RunRecord(run_id=raw["run_id"], config=dict(raw["config"]), status=raw["status"],
                            message=raw.get("message", ""), probes=probes,
                            n_checkpoints=int(raw["n_checkpoints"]), info=dict(raw.get("info", {})),
                            arrays={str(name): str(m) for name, m in dict(arrays).items()},
                            checksums={str(f): int(c) for f, c in dict(raw.get("checksums", {})).items()})
        except FileNotFoundError as exc:
            raise StoreError(f"run {run_id} is not in {self.root}") from exc
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise StoreError(f"run {run_id} in {self.root} is damaged: run.json unreadable ({exc})") from exc
        if rec.status not in STATUSES:
            raise StoreError(f"run {run_id} in {self.root} is damaged: unknown status {rec.status!r}")
        if verify:
            self._verify_files(rec)
        return rec

    def _verify_files(self, rec: RunRecord) -> None:
        """Cheap integrity check: metrics.csv present, each array's header and size consistent."""
        run_dir = self.run_dir(rec.run_id)
        if not (run_dir / "metrics.csv").is_file():
            raise StoreError(f"run {rec.run_id} in {self.root} is damaged: metrics.csv is missing")
        missing = [p for p in rec.probes if f"{PREDICTIONS}_{p}" not in rec.arrays]
        if missing:
            raise StoreError(f"run {rec.run_id} in {self.root} is damaged: run.json lists no predictions "
                             f"for probe set(s) {missing}")
        for name, measurement in rec.arrays.items():
            path = run_dir / f"{name}.npy"
            try:
                shape, dtype, offset, size = npy_header(path)
            except FileNotFoundError:
                raise StoreError(f"run {rec.run_id} in {self.root} is damaged: {path.name} is missing") from None
            except (OSError, ValueError) as exc:
                raise StoreError(f"run {rec.run_id} in {self.root} is damaged: {path.name} unreadable ({exc})") from exc
            expected = offset + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
            ndim_ok = len(shape) == 3 if measurement == PREDICTIONS else len(shape) >= 1
            if dtype.hasobject or not ndim_ok or shape[0] != rec.n_checkpoints or size != expected:
                what = "(K, n, C)" if measurement == PREDICTIONS else "(K, ...)"
                raise StoreError(f"run {rec.run_id} in {self.root} is damaged: {path.name} has shape {shape} "
                                 f"and {size} bytes; expected {what} with K = {rec.n_checkpoints} in "
                                 f"{expected} bytes")

    def records(self, *, on_error: str = "raise") -> tuple[list[RunRecord], list[tuple[str, str]]]:
        """All catalog entries.

        Parameters
        ----------
        on_error : {"raise", "skip"}
            With "skip", damaged runs are returned separately as ``(run_id, reason)``
            so the rest of the store stays readable.
        """
        if on_error not in ("raise", "skip"):
            raise ValueError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
        good, bad = [], []
        for run_id in self.run_ids():
            try:
                good.append(self.record(run_id))
            except StoreError as exc:
                if on_error == "raise":
                    raise
                bad.append((run_id, str(exc)))
        return good, bad

    def catalog(self, *, on_error: str = "warn", refresh: bool = False) -> "pd.DataFrame":
        """One row per committed run, as a :class:`pandas.DataFrame` sorted by run id.

        Columns: ``run_id``, ``status``, ``label``, ``n_checkpoints``, ``message``;
        the config flattened (``arch``, ``lr``, ``arch_options.width``,
        ``data.name``, ...; lists as tuples); ``final_<column>`` for each column of
        ``metrics.csv`` (last checkpoint: ``final_test_acc``, ``final_step``, ...);
        ``best_test_acc``; the info fields (``wall_time``, ``n_parameters``, ...).
        Fields a run lacks are missing (NaN/None). See :mod:`deepmanifold.store.catalog`
        for how the rows are cached in ``catalog.jsonl``.

        Parameters
        ----------
        on_error : {"warn", "skip", "raise"}
            Damaged runs are left out of the frame and listed, as ``(run_id,
            reason)``, in ``frame.attrs["damaged"]``; "warn" also issues a
            :class:`UserWarning` naming them, "raise" raises :class:`StoreError`.
        refresh : bool
            Ignore the cached index and re-read every run (the index is rewritten).
        """
        import pandas as pd

        if on_error not in ("warn", "skip", "raise"):
            raise ValueError(f"on_error must be 'warn', 'skip' or 'raise', got {on_error!r}")
        entries = catalog.current_entries(self, refresh=refresh)
        rows, damaged = [], []
        for run_id in sorted(entries):
            entry = entries[run_id]
            if "row" in entry:
                rows.append({k: tupled(v) for k, v in entry["row"].items()})
            else:
                damaged.append((run_id, entry["damaged"]))
        if damaged and on_error == "raise":
            raise StoreError(damaged[0][1] + (f" (and {len(damaged) - 1} more damaged runs)" if len(damaged) > 1 else ""))
        if damaged and on_error == "warn":
            warnings.warn(f"{len(damaged)} damaged run(s) left out of the catalog of {self.root}: "
                          + "; ".join(reason for _, reason in damaged), UserWarning, stacklevel=2)
        frame = pd.DataFrame.from_records(rows, columns=_column_order(rows)) if rows else \
            pd.DataFrame(columns=list(catalog.FIXED_COLUMNS))
        frame.attrs["damaged"] = damaged
        return frame

    def query(self, where: str | None = None, *, on_error: str = "warn") -> "pd.DataFrame":
        """Catalog rows for which ``where`` holds, e.g. ``'arch == "wrn" and final_test_acc > 0.9'``.

        ``where`` is a safe boolean expression over catalog columns (comparisons,
        ``in``/``not in``, ``and``/``or``/``not``, dotted or `backticked` column
        names, literals); see :mod:`deepmanifold.store.query`. An empty or None
        ``where`` returns the whole catalog.

        Raises
        ------
        ValueError
            If ``where`` uses anything outside the language (naming it) or an
            unknown column (listing the columns).
        """
        frame = self.catalog(on_error=on_error)
        if where is None or not where.strip():
            return frame
        from .query import filter_frame

        out = filter_frame(frame, where)
        out.attrs["damaged"] = frame.attrs.get("damaged", [])
        return out

    def metrics(self, run_id: str) -> dict[str, np.ndarray]:
        """Per-checkpoint metrics of one run, as float64 columns (``step`` as int64)."""
        path = self.run_dir(run_id) / "metrics.csv"
        try:
            with open(path, newline="") as fh:
                rows = list(csv.reader(fh))
            header, body = rows[0], rows[1:]
            cols = {name: np.array([float(r[j]) for r in body], dtype=np.float64)
                    for j, name in enumerate(header)}
            missing = [c for c in ("step", "epoch") if c not in cols]
            if missing or len(set(header)) != len(header):
                raise ValueError(f"columns {header[:8]} lack {missing} or repeat a name")
        except (OSError, IndexError, ValueError, UnicodeDecodeError) as exc:
            raise StoreError(f"run {run_id} in {self.root} is damaged: metrics.csv unreadable ({exc})") from exc
        cols["step"] = cols["step"].astype(np.int64)
        return cols

    def array(self, run_id: str, name: str, checkpoints: slice | Iterable[int] | None = None,
              index: slice | Iterable[int] | None = None) -> np.ndarray:
        """One array of one run (``logp_test``, ``nfa_corr``, ...), read lazily.

        Parameters
        ----------
        run_id : str
        name : str
            An array of the run: a key of :attr:`RunRecord.arrays`.
        checkpoints : slice or sequence of int, optional
            Rows (checkpoints) to read; default all.
        index : slice or sequence of int, optional
            Entries of the second axis to read (e.g. probe samples); default all.

        Returns
        -------
        ndarray, shape (K', ...)
            A read-only memory map of the file when only slices are asked for (nothing
            is read until used); a copy of just the selected entries for index lists.

        Raises
        ------
        StoreError
            The run has no such array, or its file is unreadable.
        """
        path = self.run_dir(run_id) / f"{name}.npy"
        if not path.exists():
            raise StoreError(f"run {run_id} in {self.root} has no array {name!r}")
        try:
            arr = np.load(path, mmap_mode="r", allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise StoreError(f"run {run_id} in {self.root} is damaged: {path.name} unreadable ({exc})") from exc
        if checkpoints is not None:
            arr = arr[checkpoints if isinstance(checkpoints, slice) else np.asarray(list(checkpoints), dtype=np.int64)]
        if index is not None:
            arr = arr[:, index if isinstance(index, slice) else np.asarray(list(index), dtype=np.int64)]
        return arr

    def logp(self, run_id: str, probe: str, checkpoints: slice | Iterable[int] | None = None,
             samples: slice | Iterable[int] | None = None) -> np.ndarray:
        """Log-probabilities of one run on one probe set, read lazily (see :meth:`array`).

        Returns
        -------
        ndarray, shape (K', n', C), float32
            A read-only memory map for slices, a copy of the selection for index lists.
        """
        name = f"{PREDICTIONS}_{probe}"
        if not (self.run_dir(run_id) / f"{name}.npy").exists():
            raise StoreError(f"run {run_id} has no predictions on probe set {probe!r}")
        return self.array(run_id, name, checkpoints, samples)


# The keys of a run.json. "arrays", "checksums" and "digest" are optional: without them a
# run holds its predictions only (logp_<probe> per probe) and its files are not checksummed.
_RECORD_KEYS = frozenset({"format_version", "run_id", "config", "status", "message", "probes", "n_checkpoints",
                          "info", "arrays", "checksums", "digest"})


def _digest(record: dict) -> int:
    """Checksum of a run record's canonical JSON: ``run.json`` checks itself with it."""
    return checksum(json.dumps(record, sort_keys=True).encode())


def check_run_id(run_id) -> str:
    """``run_id`` if it can name a run folder: letters, digits, ``-``, ``_``, ``.``, not starting with ``.``.

    Raises
    ------
    ValueError
        Anything else (a path separator, an empty or hidden name, a non-string).
    """
    if (not isinstance(run_id, str) or not run_id or run_id.startswith(".")
            or any(not (c.isalnum() or c in "-_.") for c in run_id)):
        raise ValueError(f"run id {run_id!r} must be letters, digits, '-', '_' or '.' only")
    return run_id


def _array_files(k: int, logp: Mapping[str, np.ndarray],
                 arrays: Mapping[str, Mapping[str, np.ndarray]]) -> dict[str, tuple[str, np.ndarray]]:
    """File name -> (measurement, array) of a run's arrays, checked: K rows each, safe names."""
    files = {f"{PREDICTIONS}_{probe}": (PREDICTIONS, np.asarray(arr, dtype=np.float32)) for probe, arr in logp.items()}
    for probe, (_, arr) in zip(logp, files.values()):
        if arr.ndim != 3 or len(arr) != k:
            raise ValueError(f"logp[{probe!r}] must have shape (K={k}, n, C); got {arr.shape}")
        bad = (np.isnan(arr) | np.isposinf(arr)).any(axis=(1, 2))  # -inf is log(0), a probability
        if bad.any():
            raise ValueError(f"logp[{probe!r}] holds NaN or +inf at checkpoint {int(np.argmax(bad))}: a run keeps "
                             "only the checkpoints whose predictions are finite")
    for measurement, parts in arrays.items():
        if measurement == PREDICTIONS or not _NAME.fullmatch(str(measurement)):
            raise ValueError(f"measurement name {measurement!r} must be lower-case letters, digits and '_' "
                             f"(starting with a letter), and not {PREDICTIONS!r}")
        for key, value in parts.items():
            if key and not _NAME.fullmatch(str(key)):
                raise ValueError(f"array key {key!r} of measurement {measurement!r} must be lower-case letters, "
                                 "digits and '_'")
            arr = np.asarray(value)
            name = f"{measurement}_{key}" if key else measurement
            if arr.dtype.kind not in "biuf" or arr.ndim < 1 or len(arr) != k:
                raise ValueError(f"array {name!r} must be numeric with shape (K={k}, ...); got dtype {arr.dtype}, "
                                 f"shape {arr.shape}")
            if name in files:
                raise ValueError(f"two arrays are named {name!r}")
            files[name] = (str(measurement), arr)
    return files


_NAME = re.compile(r"[a-z][a-z0-9_]*")


def _column_order(rows: list[dict]) -> list[str]:
    """Fixed columns, then config, then final_*/best_test_acc, then info, each in order of first appearance."""
    fixed = [c for c in catalog.FIXED_COLUMNS if any(c in row for row in rows)]
    config: dict[str, None] = {}
    results: dict[str, None] = {}
    info: dict[str, None] = {}
    for row in rows:
        keys = list(row)  # a row's keys are in that order (see catalog.build_row)
        cut = keys.index("best_test_acc") if "best_test_acc" in keys else len(keys)
        for i, key in enumerate(keys):
            if key in catalog.FIXED_COLUMNS:
                continue
            if key.startswith("final_") or key == "best_test_acc":
                results.setdefault(key, None)
            elif i < cut:
                config.setdefault(key, None)
            else:
                info.setdefault(key, None)
    seen = set(fixed)
    out = []
    for group in (fixed, config, results, info):
        for key in group:
            if key not in seen or key in fixed:
                out.append(key)
                seen.add(key)
    return out
