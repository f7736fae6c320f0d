"""Datasets as tensors plus labels, and probe sets (fixed evaluation samples)."""

from .datasets import Dataset, available_datasets, load_dataset, load_digits
from .probes import ProbeSet, make_probes, probe_fingerprint

__all__ = [
    "Dataset",
    "ProbeSet",
    "available_datasets",
    "load_dataset",
    "load_digits",
    "make_probes",
    "probe_fingerprint",
]
