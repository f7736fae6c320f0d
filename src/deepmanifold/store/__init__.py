"""Runs on disk: atomic commit, catalog (DataFrame + safe queries), lazy readers. Knows nothing about models."""

from .files import StoreError
from .store import FORMAT_VERSION, PREDICTIONS, STATUSES, RunRecord, Store, StoredProbe, check_run_id

__all__ = ["FORMAT_VERSION", "PREDICTIONS", "STATUSES", "RunRecord", "Store", "StoredProbe", "StoreError", "check_run_id"]
