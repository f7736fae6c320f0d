"""Runs on disk: atomic commit, catalog (DataFrame + safe queries), lazy readers. Knows nothing about models.

:mod:`.store` (the :class:`Store`), :mod:`.catalog` (one row per run, cached),
:mod:`.query` (the ``--where`` language), :mod:`.repair` (damage found and moved aside),
:mod:`.leases` (runs claimed while they train), :mod:`.files` (durable writes, checksums).
"""

from .files import StoreError
from .store import FORMAT_VERSION, PREDICTIONS, STATUSES, RunRecord, Store, StoredProbe, check_run_id

__all__ = ["FORMAT_VERSION", "PREDICTIONS", "STATUSES", "RunRecord", "Store", "StoredProbe", "StoreError", "check_run_id"]
