"""Runs in flight: what a recorder publishes at each checkpoint, for ``deepmanifold watch`` to read.

A recorder that commits into a store also publishes the run while it trains, in
``.live/<run_id>/`` of that store: the predictions of each checkpoint as
``<probe>/<k>.npy`` (float32 log-probabilities, ``(n, C)``), then ``state.json`` (the
checkpoints so far: steps, epochs, accuracy and loss per probe set; the writer's host,
pid and the time). Every file is written to a temporary name and renamed, and
``state.json`` last, so a reader never sees a checkpoint whose predictions are not
complete. When the run is committed the folder is removed (the run now lives in
``runs/``); when the loop raises, ``state.json`` says ``"failed"``; when the process is
killed, the folder stays with ``"running"`` and a dead pid, which a reader reports as
``"stopped"``. A run started again under the same id replaces its old folder.

Nothing in ``.live/`` is part of the store's data: the catalog, the analyses and the
report read ``runs/`` only.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from .files import npy_bytes, pid_alive

__all__ = ["LIVE", "LivePublisher", "LiveRun", "live_runs"]

#: Folder of a store that holds the runs in flight.
LIVE = ".live"
#: Seconds without an update after which a run of another host is reported stopped.
STALE_AFTER = 3600.0


def _replace(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}")
    tmp.write_bytes(data)
    os.replace(tmp, path)


class LivePublisher:
    """Publish one run's checkpoints into ``<root>/.live/<run_id>/`` (module docstring).

    Parameters
    ----------
    root : path-like
        The store folder.
    run_id : str
    config : mapping
        The run's configuration (JSON-ready), shown by readers.
    labels : mapping of str to ndarray
        Each probe set's labels, for the accuracy and loss of each checkpoint.
    fingerprints : mapping of str to str
        Each probe set's fingerprint (readers match probe sets by it).
    """

    def __init__(self, root: str | os.PathLike, run_id: str, config: Mapping[str, Any],
                 labels: Mapping[str, np.ndarray], fingerprints: Mapping[str, str]):
        self.folder = Path(root) / LIVE / run_id
        self.run_id = run_id
        self.labels = {name: np.asarray(y, dtype=np.int64) for name, y in labels.items()}
        self.state: dict[str, Any] = {
            "run_id": run_id, "config": dict(config), "host": socket.gethostname(), "pid": os.getpid(),
            "started": time.time(), "updated": time.time(), "status": "running", "message": "",
            "probes": {name: str(fingerprints[name]) for name in sorted(self.labels)}, "steps": [], "epochs": [],
            "metrics": {f"{name}_{kind}": [] for name in sorted(self.labels) for kind in ("acc", "loss")},
        }
        if self.folder.exists():  # an earlier attempt at this run, killed or failed
            shutil.rmtree(self.folder, ignore_errors=True)
        for name in self.labels:
            (self.folder / name).mkdir(parents=True, exist_ok=True)
        self._write_state()

    def publish(self, step: int, epoch: float, logp: Mapping[str, np.ndarray]) -> None:
        """Add one checkpoint: its predictions on every probe set, then the state."""
        k = len(self.state["steps"])
        for name, lp in logp.items():
            lp = np.asarray(lp, dtype=np.float32)
            _replace(self.folder / name / f"{k}.npy", npy_bytes(lp))
            y = self.labels[name]
            self.state["metrics"][f"{name}_acc"].append(float(np.mean(lp.argmax(axis=1) == y)))
            self.state["metrics"][f"{name}_loss"].append(float(-np.mean(lp[np.arange(len(y)), y])))
        self.state["steps"].append(int(step))
        self.state["epochs"].append(float(epoch) if np.isfinite(epoch) else None)
        self._write_state()

    def finish(self, status: str, message: str = "") -> None:
        """Mark the run ended without a commit (``"failed"``, or ``"diverged"`` before its commit)."""
        self.state.update(status=status, message=message)
        self._write_state()

    def remove(self) -> None:
        """Remove the folder: the run is committed (or was never meant to be kept)."""
        shutil.rmtree(self.folder, ignore_errors=True)

    def _write_state(self) -> None:
        self.state["updated"] = time.time()
        _replace(self.folder / "state.json", json.dumps(self.state, allow_nan=False).encode())


@dataclass(frozen=True)
class LiveRun:
    """What a reader sees of one run in flight.

    Attributes
    ----------
    run_id : str
    status : str
        ``"running"``, ``"failed"``, ``"diverged"`` or ``"stopped"`` (its process is gone
        without a word: killed).
    state : dict
        The published state (module docstring): ``steps``, ``epochs``, ``metrics``,
        ``probes`` (name -> fingerprint), ``config``, ``message``, ``host``, ``pid``,
        ``updated``.
    folder : Path
    """

    run_id: str
    status: str
    state: dict
    folder: Path

    @property
    def n_checkpoints(self) -> int:
        return len(self.state.get("steps", []))

    def logp(self, probe: str, k: int) -> np.ndarray:
        """The published log-probabilities ``(n, C)`` of checkpoint ``k`` on ``probe``."""
        if not 0 <= k < self.n_checkpoints:
            raise IndexError(f"run {self.run_id!r} has published {self.n_checkpoints} checkpoints, not {k + 1}")
        return np.load(self.folder / probe / f"{k}.npy", allow_pickle=False)


def live_runs(root: str | os.PathLike) -> list[LiveRun]:
    """The runs in flight (or ended without a commit) in the store at ``root``, by run id.

    Reads only; a folder whose ``state.json`` is missing or unreadable (being created) is
    skipped.
    """
    folder = Path(root) / LIVE
    if not folder.is_dir():
        return []
    out = []
    for entry in sorted(folder.iterdir()):
        try:
            state = json.loads((entry / "state.json").read_text())
        except (OSError, ValueError):
            continue
        if not isinstance(state, dict) or "steps" not in state:
            continue
        status = str(state.get("status", "running"))
        if status == "running":
            same_host = state.get("host") == socket.gethostname() and isinstance(state.get("pid"), int)
            age = time.time() - float(state.get("updated", 0))
            if (same_host and not pid_alive(state["pid"])) or (not same_host and age > STALE_AFTER):
                status = "stopped"
        out.append(LiveRun(run_id=entry.name, status=status, state=state, folder=entry))
    return out
