"""Leases: a process claims a run before training it, so that sweeps sharing a store split the work.

A lease is the file ``.leases/<run_id>``, created with ``O_CREAT | O_EXCL`` (atomic on
local and NFSv3+ file systems), holding the owner's host, pid and a random token. Its
owner refreshes its modification time every :data:`HEARTBEAT` seconds while it trains
(:class:`Heartbeat`) and removes it after the commit. A lease is *stale*, and may be taken
over, when its process is gone (same host) or it has not been refreshed for
:data:`STALE_AFTER` seconds (any host): the run of a sweep that was killed is trained
again by the next one. Two sweeps started on one store, on one machine or on several
sharing the file system, thus train every run once between them.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from .files import locked, pid_alive

__all__ = ["HEARTBEAT", "LEASES", "STALE_AFTER", "Heartbeat", "Lease", "acquire", "discard_stale", "leased"]

#: Folder of a store that holds the leases.
LEASES = ".leases"
#: Seconds between two refreshes of a held lease.
HEARTBEAT = 10.0
#: Seconds without a refresh after which a lease of another host is stale.
STALE_AFTER = 120.0


@dataclass(frozen=True)
class Lease:
    """A run claimed by this process.

    Attributes
    ----------
    path : Path
        The lease file.
    run_id : str
    token : str
        Random token written into the file: :meth:`release` removes only our own lease.
    """

    path: Path
    run_id: str
    token: str

    def refresh(self) -> None:
        """Mark the lease as alive now."""
        try:
            os.utime(self.path)
        except OSError:
            pass  # taken over or removed: the commit itself stays safe (the second rename fails)

    def release(self) -> None:
        """Remove the lease if it is still ours."""
        if _read(self.path).get("token") == self.token:
            self.path.unlink(missing_ok=True)


def acquire(root: str | os.PathLike, run_id: str, *, stale_after: float = STALE_AFTER) -> Lease | dict:
    """Claim ``run_id`` in the store at ``root``.

    Returns
    -------
    Lease or dict
        The lease, or, when another live process holds the run, what its lease says
        (``host``, ``pid``, ``started``).
    """
    folder = Path(root) / LEASES
    folder.mkdir(exist_ok=True)
    path = folder / run_id
    token = uuid.uuid4().hex
    for _ in range(2):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            with locked(folder / ".lock"):  # one process at a time judges and removes a stale lease
                owner = _read(path)
                if not _stale(path, owner, stale_after):
                    return owner
                _take_over(path)
            continue
        with os.fdopen(fd, "w") as fh:
            json.dump({"host": socket.gethostname(), "pid": os.getpid(), "token": token, "started": time.time()}, fh)
        return Lease(path, run_id, token)
    return _read(path)


def leased(root: str | os.PathLike) -> set[str]:
    """The run ids that have a lease file in the store at ``root`` (held or stale)."""
    try:
        names = os.listdir(Path(root) / LEASES)
    except FileNotFoundError:
        return set()
    return {name for name in names if not name.startswith(".") and ".stale." not in name}


def discard_stale(root: str | os.PathLike, run_id: str, *, stale_after: float = STALE_AFTER) -> bool:
    """Remove the lease of ``run_id`` if it is stale; return whether one was removed.

    A process killed between its commit and its release leaves the lease of a committed
    run, which no later sweep would claim again: the sweep that skips the run removes it.
    """
    folder = Path(root) / LEASES
    path = folder / run_id
    if not path.exists():
        return False
    with locked(folder / ".lock"):
        if not path.exists() or not _stale(path, _read(path), stale_after):
            return False
        _take_over(path)
    return True


def _read(path: Path) -> dict:
    try:
        value = json.loads(path.read_text())
        return value if isinstance(value, dict) else {}
    except (OSError, ValueError):
        return {}


def _stale(path: Path, owner: dict, stale_after: float) -> bool:
    try:
        age = time.time() - path.stat().st_mtime
    except FileNotFoundError:
        return True
    if owner.get("host") == socket.gethostname() and isinstance(owner.get("pid"), int):
        return not pid_alive(owner["pid"]) or age > stale_after
    return age > stale_after  # another host, or a lease cut short while being written


def _take_over(path: Path) -> None:
    """Remove a stale lease (under the lock of the leases folder)."""
    aside = path.with_name(f"{path.name}.stale.{uuid.uuid4().hex[:8]}")
    try:
        os.rename(path, aside)
    except FileNotFoundError:
        return
    aside.unlink(missing_ok=True)


class Heartbeat:
    """Refresh leases every :data:`HEARTBEAT` seconds from a daemon thread, while in a ``with`` block."""

    def __init__(self, leases: list[Lease], interval: float = HEARTBEAT):
        self.leases, self.interval = list(leases), interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="deepmanifold-lease-heartbeat", daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            for lease in self.leases:
                lease.refresh()

    def __enter__(self) -> "Heartbeat":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
