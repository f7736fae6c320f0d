"""The store catalog: one flat row per committed run, cached in ``catalog.jsonl``.

A row holds ``run_id``, ``status``, ``label``, ``n_checkpoints``, ``message``,
``arrays`` (names of the run's arrays: ``logp_test``, ``logp_train``, those of any
other measurement), the
run's config flattened (nested dicts as dotted names such as
``arch_options.width`` or ``data.name``; lists as tuples), ``final_<column>`` for
every column of ``metrics.csv`` (its last row), ``best_test_acc`` (the maximum
of ``test_acc`` over checkpoints, NaN-ignoring) and the info fields
(``wall_time``, ``n_parameters``, ...). A config or info key that would collide
with an earlier column is prefixed (``config.`` / ``info.``).

The index is a cache, never the truth: the truth is ``runs/*/``. The file is
JSON lines; each line is ``{"run_id", "sig", "row"}`` (or ``"damaged"`` with the
reason instead of ``"row"``), and later lines win. ``sig`` is a digest of the
names, sizes and modification times of the files in the run folder, so a run
edited or damaged by hand after it was indexed is re-read. Writers append one
line per commit (a single ``write`` on an ``O_APPEND`` file, under an advisory
lock); a line cut short by ``kill -9`` is ignored. Readers compare the index with
``runs/`` (one ``scandir`` of the run folder per run), rebuild missing or stale
rows from ``run.json`` + ``metrics.csv`` (so runs committed by other processes
appear), and, if anything changed, rewrite the index compacted, atomically
(temporary file in ``.staging/`` + ``os.replace``).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import uuid
from pathlib import Path
from typing import Any

import numpy as np

from ..utils import flatten
from .files import StoreError, locked, write_bytes


INDEX_NAME = "catalog.jsonl"
LOCK_NAME = ".catalog.lock"
INDEX_FORMAT = "deepmanifold-catalog"
INDEX_VERSION = 2  # rows carry the arrays column
FIXED_COLUMNS = ("run_id", "status", "label", "n_checkpoints", "message", "arrays")


def run_signature(run_dir: Path) -> str | None:
    """Digest of (name, size, mtime) of every file of a run folder; None if it has no run.json."""
    try:
        entries = sorted((e.name, e.stat()) for e in os.scandir(run_dir))
    except OSError:
        return None
    if not any(name == "run.json" for name, _ in entries):
        return None
    text = ";".join(f"{name}:{st.st_size}:{st.st_mtime_ns}" for name, st in entries)
    return hashlib.blake2b(text.encode(), digest_size=12).hexdigest()


def build_row(store, run_id: str) -> dict[str, Any]:
    """The catalog row of one run of a :class:`~deepmanifold.store.Store`, read from its files.

    The run is verified in full (:meth:`~deepmanifold.store.Store.verify`): rows are
    rebuilt only for runs that are new or whose files changed, so a store pays that read
    once per change.

    Raises
    ------
    StoreError
        The run is damaged.
    """
    rec = store.verify(run_id)  # every file read once, when its row is (re)built
    metrics = store.metrics(run_id)
    k = rec.n_checkpoints
    row: dict[str, Any] = {"run_id": rec.run_id, "status": rec.status, "label": rec.config.get("label", ""),
                           "n_checkpoints": rec.n_checkpoints, "message": rec.message,
                           "arrays": sorted(rec.arrays)}

    def put(name, value, prefix):
        if name in row:
            name = f"{prefix}.{name}"
        row[name] = value

    for name, value in flatten({k: v for k, v in rec.config.items() if k != "label"}).items():
        put(name, value, "config")
    for name, col in metrics.items():
        value = col[-1].item() if k else math.nan
        row[f"final_{name}"] = value
    acc = metrics.get("test_acc")
    best = math.nan
    if acc is not None and k and not np.all(np.isnan(acc)):
        best = float(np.nanmax(acc))
    row["best_test_acc"] = best
    for name, value in flatten(rec.info).items():
        put(name, value, "info")
    return row


def _line(entry: dict) -> bytes:
    return (json.dumps(entry, allow_nan=True, separators=(",", ":")) + "\n").encode()


def read_index(root: Path) -> tuple[dict[str, dict], bool]:
    """Entries by run id (later lines win) and whether the file is clean (no garbage, no duplicates)."""
    path = root / INDEX_NAME
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return {}, False
    except OSError:
        return {}, False
    entries: dict[str, dict] = {}
    clean = True
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    else:
        clean = False  # last line cut short
    for i, raw in enumerate(lines):
        try:
            entry = json.loads(raw)
        except ValueError:
            clean = False
            continue
        if i == 0:
            if not (isinstance(entry, dict) and entry.get("format") == INDEX_FORMAT
                    and entry.get("version") == INDEX_VERSION):
                return {}, False  # another version: rebuild it all
            continue
        if not (isinstance(entry, dict) and isinstance(entry.get("run_id"), str) and "sig" in entry
                and (isinstance(entry.get("row"), dict) or isinstance(entry.get("damaged"), str))):
            clean = False
            continue
        if entry["run_id"] in entries:
            clean = False
        entries[entry["run_id"]] = entry
    if not lines:
        clean = False
    return entries, clean


def entry_for(store, run_id: str, sig: str | None = None) -> dict:
    """The index entry of one run: its row, or why it is damaged."""
    sig = sig if sig is not None else run_signature(store.run_dir(run_id))
    try:
        return {"run_id": run_id, "sig": sig, "row": build_row(store, run_id)}
    except StoreError as exc:
        return {"run_id": run_id, "sig": sig, "damaged": str(exc)}


def append_entry(store, entry: dict) -> None:
    """Append one entry (called after a commit); a missing index is left for the next reader to build."""
    path = store.root / INDEX_NAME
    with locked(store.root / LOCK_NAME):
        if not path.exists():
            return
        fd = os.open(path, os.O_WRONLY | os.O_APPEND)
        try:
            os.write(fd, _line(entry))
        finally:
            os.close(fd)


def _rewrite(store, entries: dict[str, dict]) -> None:
    body = [_line({"format": INDEX_FORMAT, "version": INDEX_VERSION})]
    body += [_line(entries[r]) for r in sorted(entries)]
    tmp = store.root / ".staging" / f"catalog.{os.getpid()}.{uuid.uuid4().hex[:8]}"
    try:
        write_bytes(tmp, b"".join(body))
        os.replace(tmp, store.root / INDEX_NAME)
    finally:
        tmp.unlink(missing_ok=True)


def current_entries(store, *, refresh: bool = False) -> dict[str, dict]:
    """Up-to-date index entries of every committed run, refreshing the index file if needed."""
    runs = store.root / "runs"
    sigs = {}
    for entry in os.scandir(runs):
        if entry.is_dir() and not entry.name.startswith("."):
            sig = run_signature(Path(entry.path))
            if sig is not None:
                sigs[entry.name] = sig
    cached, clean = ({}, False) if refresh else read_index(store.root)
    fresh = {}
    for run_id, sig in sigs.items():
        entry = cached.get(run_id)
        if entry is None or entry["sig"] != sig:
            fresh[run_id] = entry_for(store, run_id, sig)
    if (fresh or not clean or set(cached) != set(sigs)) and not getattr(store, "read_only", False):
        try:
            with locked(store.root / LOCK_NAME):
                # Lines appended by writers since we read are kept (re-read under the lock).
                latest, _ = ({}, False) if refresh else read_index(store.root)
                merged = {r: e for r, e in {**cached, **latest}.items() if r in sigs and e["sig"] == sigs[r]}
                merged.update(fresh)
                for run_id in set(latest) - set(sigs):  # committed after our scan
                    if (store.run_dir(run_id) / "run.json").exists():
                        merged[run_id] = latest[run_id]
                _rewrite(store, merged)
        except OSError:
            pass  # a read-only store: the catalog is still right, only not cached
    out = {}
    for run_id, sig in sigs.items():
        out[run_id] = fresh.get(run_id) or cached[run_id]
    return out
