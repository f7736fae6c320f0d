"""Damage in a store: found, named, and moved aside so that it is trained again, never trusted.

A run is *damaged* when its folder under ``runs/`` has no ``run.json`` (a commit cannot
rename a new copy onto it), or when :meth:`~deepmanifold.store.Store.verify` fails: an
unreadable ``run.json`` or ``metrics.csv``, an array truncated, deleted or changed after
the commit (every file's checksum is in ``run.json``). Readers (``runs``, ``report``,
``analyze``) leave damaged runs out and name them; a sweep moves them aside before it
trains (:func:`move_damaged_runs`), so they count as not done and are trained again.
Nothing is deleted: a damaged run or probe file goes to ``damaged/`` with a ``.why``
file beside it that says what was wrong.
"""

from __future__ import annotations

import os
import time
import uuid
from pathlib import Path

from . import catalog
from .files import StoreError

__all__ = ["DAMAGED", "damaged_runs", "move_aside", "move_damaged_runs"]

#: Folder of a store that holds what was moved aside.
DAMAGED = "damaged"


def damaged_runs(store) -> list[tuple[str, str]]:
    """``(run_id, reason)`` of every damaged run folder of ``store`` (a :class:`~deepmanifold.store.Store`), sorted."""
    out = []
    for entry in os.scandir(store.root / "runs"):
        if entry.is_dir() and not entry.name.startswith(".") and not os.path.exists(os.path.join(entry.path, "run.json")):
            out.append((entry.name, f"run {entry.name} in {store.root} is damaged: run.json is missing"))
    out += [(run_id, e["damaged"]) for run_id, e in catalog.current_entries(store).items() if "damaged" in e]
    return sorted(out)


def move_aside(store, path: Path, reason: str) -> Path:
    """Move a run folder or a file of ``store`` to ``damaged/``, with ``reason`` in a ``.why`` file.

    Returns
    -------
    Path
        Where it went: ``damaged/<name>.<UTC time>.<random>``.
    """
    target_dir = store.root / DAMAGED
    target_dir.mkdir(exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    target = target_dir / f"{Path(path).name}.{stamp}.{uuid.uuid4().hex[:6]}"
    try:
        os.rename(path, target)
    except OSError as exc:
        raise StoreError(f"cannot move the damaged {path} aside to {target_dir}: {exc.strerror or exc}") from exc
    target.with_name(target.name + ".why").write_text(reason + "\n")
    return target


def move_damaged_runs(store) -> list[tuple[str, str, Path]]:
    """Move every damaged run of ``store`` aside; returns ``(run_id, reason, where)`` for each.

    A run another process moved or repaired in the meantime is skipped.
    """
    moved = []
    for run_id, reason in damaged_runs(store):
        folder = store.run_dir(run_id)
        if folder.exists():
            try:
                moved.append((run_id, reason, move_aside(store, folder, reason)))
            except StoreError:
                if folder.exists():
                    raise
    return moved
