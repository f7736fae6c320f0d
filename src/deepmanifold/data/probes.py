"""Probe sets: fixed, ordered, never-augmented samples on which checkpoints are evaluated.

Two models are only compared on the same samples in the same order (docs/method.md §1); the
probe set's ``fingerprint`` identifies exactly that, so runs are compared only when
their fingerprints are equal.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
import torch

from .datasets import Dataset

__all__ = ["ProbeSet", "make_probes", "probe_fingerprint"]

_SPLITS = ("train", "test")


def probe_fingerprint(
    dataset_name: str, split: str, indices: np.ndarray, labels: np.ndarray, inputs=None
) -> str:
    """Hex SHA-256 of the dataset name, split, indices, labels and (optionally) inputs.

    Parameters
    ----------
    dataset_name : str
    split : {"train", "test"}
    indices : np.ndarray, shape (n,), int64
    labels : np.ndarray, shape (n,), int64
    inputs : array_like, shape (n, ...), optional
        The probe's input values; :func:`make_probes` passes them, so that probes
        drawn from differently split, subsampled or generated data (same name,
        same indices) never share a fingerprint.

    Returns
    -------
    str
        64 hex characters.
    """
    h = hashlib.sha256()
    h.update(b"deepmanifold-probe-v1\0")
    h.update(dataset_name.encode("utf-8") + b"\0")
    h.update(split.encode("utf-8") + b"\0")
    h.update(np.ascontiguousarray(indices, dtype="<i8").tobytes())
    h.update(b"\0")
    h.update(np.ascontiguousarray(labels, dtype="<i8").tobytes())
    if inputs is not None:
        h.update(b"\0")
        h.update(np.ascontiguousarray(np.asarray(inputs), dtype="<f4").tobytes())
    return h.hexdigest()


@dataclass(frozen=True, eq=False)
class ProbeSet:
    """A fixed, ordered subset of one split of a dataset.

    Attributes
    ----------
    name : str
        Probe name (``"train"`` or ``"test"``).
    split : {"train", "test"}
        Which split of the dataset ``indices`` point into.
    indices : np.ndarray, shape (n,), int64
        Sorted indices into that split.
    labels : np.ndarray, shape (n,), int64
        The labels of those samples, in the same order.
    fingerprint : str
        Hex SHA-256 of dataset name + split + indices + labels, and of the input values
        for probes made by :func:`make_probes` (see :func:`probe_fingerprint`).
    """

    name: str
    split: str
    indices: np.ndarray
    labels: np.ndarray
    fingerprint: str

    def __post_init__(self) -> None:
        if self.split not in _SPLITS:
            raise ValueError(f"split must be one of {_SPLITS}, got {self.split!r}")
        # Copies: the probe freezes its arrays and must not freeze the caller's.
        idx = np.array(self.indices)
        lab = np.array(self.labels)
        if idx.ndim != 1 or lab.shape != idx.shape:
            raise ValueError(
                f"indices and labels must be 1-D of equal length, got {idx.shape} and {lab.shape}"
            )
        if idx.size and (not np.issubdtype(idx.dtype, np.integer) or int(idx.min()) < 0):
            raise ValueError(f"indices must be non-negative integers, got dtype {idx.dtype}, min {idx.min()}")
        for arr in (idx, lab):
            arr.setflags(write=False)
        object.__setattr__(self, "indices", idx)
        object.__setattr__(self, "labels", lab)

    def __len__(self) -> int:
        return int(self.indices.shape[0])

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ProbeSet):
            return NotImplemented
        return self.name == other.name and self.fingerprint == other.fingerprint

    def __hash__(self) -> int:
        return hash((self.name, self.fingerprint))

    def inputs(self, dataset: Dataset) -> torch.Tensor:
        """The probe's inputs, shape ``(n, C_in, H, W)``, taken from ``dataset``.

        Raises
        ------
        ValueError
            If the dataset's labels at ``indices`` differ from ``labels`` (a different
            dataset or split than the one the probe was made from).
        """
        x = dataset.x_train if self.split == "train" else dataset.x_test
        y = dataset.y_train if self.split == "train" else dataset.y_test
        idx = torch.from_numpy(np.array(self.indices, dtype=np.int64))
        if len(idx) and int(idx.max()) >= len(y):
            raise ValueError(
                f"probe {self.name!r} indexes sample {int(idx.max())} but the "
                f"{self.split} split has {len(y)} samples"
            )
        if not np.array_equal(y[idx].numpy(), self.labels):
            raise ValueError(
                f"probe {self.name!r} labels do not match dataset {dataset.name!r} "
                f"({self.split} split): probe made from another dataset or split"
            )
        return x[idx]

    def __repr__(self) -> str:
        return (
            f"ProbeSet(name={self.name!r}, split={self.split!r}, n={len(self)}, "
            f"fingerprint={self.fingerprint[:12]}…)"
        )


def _subset(n_total: int, n: int | None, rng: np.random.Generator) -> np.ndarray:
    if n is None or n >= n_total:
        return np.arange(n_total, dtype=np.int64)
    if n < 0:
        raise ValueError(f"probe size must be >= 0 or None, got {n}")
    return np.sort(rng.choice(n_total, size=int(n), replace=False)).astype(np.int64)


def make_probes(
    dataset: Dataset,
    n_train: int | None = 500,
    n_test: int | None = None,
    seed: int = 0,
) -> dict[str, ProbeSet]:
    """Fixed, seeded probe subsets of the train and test splits.

    Parameters
    ----------
    dataset : Dataset
    n_train : int or None, default 500
        Number of training samples; clipped to the split size; ``None`` = whole split.
    n_test : int or None, default None
        Number of test samples; clipped; ``None`` = whole split.
    seed : int, default 0
        Seed of the subset choice (train and test use independent streams).

    Returns
    -------
    dict[str, ProbeSet]
        Keys ``"train"`` and ``"test"``; indices sorted ascending.
    """
    out: dict[str, ProbeSet] = {}
    for k, (split, n) in enumerate((("train", n_train), ("test", n_test))):
        y = (dataset.y_train if split == "train" else dataset.y_test).numpy()
        rng = np.random.default_rng([int(seed), k])
        idx = _subset(len(y), n, rng)
        labels = y[idx].astype(np.int64)
        out[split] = ProbeSet(
            name=split,
            split=split,
            indices=idx,
            labels=labels,
            fingerprint=probe_fingerprint(dataset.name, split, idx, labels,
                                          inputs=(dataset.x_train if split == "train" else dataset.x_test)[idx]),
        )
    return out
