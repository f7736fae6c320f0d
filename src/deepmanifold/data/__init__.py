"""Datasets as tensors plus labels, and probe sets (fixed evaluation samples)."""

from .datasets import (
    AUGMENTATION_OPS,
    Dataset,
    available_datasets,
    load_cifar10,
    load_dataset,
    load_digits,
    load_fashion_mnist,
    load_gaussian_teacher,
    load_mnist,
)
from .probes import ProbeSet, make_probes, probe_fingerprint

__all__ = [
    "AUGMENTATION_OPS",
    "Dataset",
    "ProbeSet",
    "available_datasets",
    "load_cifar10",
    "load_dataset",
    "load_digits",
    "load_fashion_mnist",
    "load_gaussian_teacher",
    "load_mnist",
    "make_probes",
    "probe_fingerprint",
]
