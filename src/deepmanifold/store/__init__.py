"""Runs on disk: atomic commit, catalog (DataFrame + safe queries), lazy readers. Knows nothing about models."""

from .store import FORMAT_VERSION, RunRecord, Store, StoredProbe, StoreError

__all__ = ["FORMAT_VERSION", "RunRecord", "Store", "StoredProbe", "StoreError"]
