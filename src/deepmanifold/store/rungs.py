"""Rungs of a pruned sweep: the score each run reported at each rung, shared by every process on the store.

Asynchronous successive halving decides at a rung from the scores the runs that reached it
before reported there; the runs train in separate processes (a local pool, Ray workers, a
second sweep on the same store), so the scores live in the store: ``.rungs/<key>.json``
(``{rung: {run_id: score}}``), read and rewritten under a lock, replaced by a rename so a
reader never sees half a file. ``key`` names the pruning settings, so sweeps pruning with
other settings keep their own ledgers.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

from .files import locked, write_bytes

__all__ = ["RUNGS", "RungLedger"]

#: Folder of a store that holds the ledgers.
RUNGS = ".rungs"


class RungLedger:
    """The scores reported at the rungs of one pruning setup in the store at ``root``.

    Parameters
    ----------
    root : path-like
        The store.
    key : str
        Names the pruning settings (letters, digits, ``-``, ``_`` and ``.``).
    """

    def __init__(self, root: str | os.PathLike, key: str):
        if not key or not all(c.isalnum() or c in "-_." for c in key) or key.startswith("."):
            raise ValueError(f"a ledger key is letters, digits, '-', '_' and '.', not starting with '.'; got {key!r}")
        self.folder = Path(root) / RUNGS
        self.path = self.folder / f"{key}.json"

    def report(self, run_id: str, rung: int, score: float) -> dict[str, float]:
        """Record ``run_id``'s ``score`` at ``rung`` and return every score recorded there.

        A run reporting again at a rung (trained again after a crash) replaces its score.
        A non-finite score is kept as NaN.
        """
        self.folder.mkdir(exist_ok=True)
        with locked(self.folder / ".lock"):
            data = self._read()
            data.setdefault(str(int(rung)), {})[str(run_id)] = float(score) if math.isfinite(score) else None
            tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
            write_bytes(tmp, json.dumps(data, sort_keys=True).encode())
            os.replace(tmp, self.path)
            return _scores(data, rung)

    def scores(self, rung: int) -> dict[str, float]:
        """Every score recorded at ``rung`` so far (run id -> score; NaN for a non-finite one)."""
        return _scores(self._read(), rung)

    def _read(self) -> dict:
        try:
            data = json.loads(self.path.read_text())
        except FileNotFoundError:
            return {}
        except ValueError as exc:
            raise ValueError(f"the rung ledger {self.path} is not JSON ({exc}); remove it to start the "
                             "pruning decisions afresh") from exc
        return data if isinstance(data, dict) else {}


def _scores(data: dict, rung: int) -> dict[str, float]:
    return {run: (math.nan if s is None else float(s)) for run, s in data.get(str(int(rung)), {}).items()}
