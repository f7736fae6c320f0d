"""Datasets as tensors plus labels, behind one small registry.

Every dataset is held fully in memory as float32 tensors of shape ``(N, C_in, H, W)``
with int64 labels of shape ``(N,)``. Only datasets that need no download are bundled.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import torch

__all__ = ["Dataset", "load_dataset", "load_digits", "available_datasets"]


@dataclass(frozen=True)
class Dataset:
    """An in-memory labelled image dataset with a fixed train/test split.

    Attributes
    ----------
    name : str
        Registry name of the dataset (e.g. ``"digits"``).
    x_train : torch.Tensor, shape (N_train, C_in, H, W), float32
        Training inputs (already normalised).
    y_train : torch.Tensor, shape (N_train,), int64
        Training labels in ``[0, n_classes)``.
    x_test : torch.Tensor, shape (N_test, C_in, H, W), float32
        Test inputs, normalised with the *training* statistics.
    y_test : torch.Tensor, shape (N_test,), int64
        Test labels.
    n_classes : int
        Number of classes ``C``.
    """

    name: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    n_classes: int

    def __post_init__(self) -> None:
        for split in ("train", "test"):
            x = getattr(self, f"x_{split}")
            y = getattr(self, f"y_{split}")
            if not isinstance(x, torch.Tensor) or x.ndim != 4 or x.dtype != torch.float32:
                raise ValueError(
                    f"x_{split} must be a float32 tensor of shape (N, C_in, H, W), "
                    f"got {type(x).__name__} {getattr(x, 'dtype', None)} "
                    f"{tuple(getattr(x, 'shape', ()))}"
                )
            if not isinstance(y, torch.Tensor) or y.ndim != 1 or y.dtype != torch.int64:
                raise ValueError(f"y_{split} must be an int64 tensor of shape (N,)")
            if y.shape[0] != x.shape[0]:
                raise ValueError(
                    f"x_{split} has {x.shape[0]} samples but y_{split} has {y.shape[0]}"
                )
            if y.numel() and (int(y.min()) < 0 or int(y.max()) >= self.n_classes):
                raise ValueError(f"y_{split} labels must lie in [0, {self.n_classes})")
        if self.x_train.shape[1:] != self.x_test.shape[1:]:
            raise ValueError(
                f"train inputs {tuple(self.x_train.shape[1:])} and test inputs "
                f"{tuple(self.x_test.shape[1:])} differ in shape"
            )

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """``(C_in, H, W)`` of one input."""
        return tuple(int(s) for s in self.x_train.shape[1:])  # type: ignore[return-value]

    def __repr__(self) -> str:
        return (
            f"Dataset(name={self.name!r}, input_shape={self.input_shape}, "
            f"n_train={len(self.y_train)}, n_test={len(self.y_test)}, "
            f"n_classes={self.n_classes})"
        )


def _stratified_split(
    y: np.ndarray, test_fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Sorted train/test indices with each class split in the same proportion.

    Parameters
    ----------
    y : np.ndarray, shape (N,)
        Integer labels.
    test_fraction : float
        Fraction of the samples (over all classes) that goes to the test split.
    seed : int
        Seed of the permutation.

    Returns
    -------
    train_idx, test_idx : np.ndarray, int64
        Disjoint, sorted, covering ``range(N)``.
    """
    rng = np.random.default_rng(seed)
    classes, counts = np.unique(y, return_counts=True)
    # Same convention as scikit-learn's train_test_split: ceil(fraction * N) test samples.
    n_test_total = min(len(y) - 1, int(np.ceil(test_fraction * len(y))))
    # Largest-remainder allocation so the total is exact and each class is proportional.
    exact = counts * (n_test_total / len(y))
    n_test = np.floor(exact).astype(np.int64)
    remainder = n_test_total - int(n_test.sum())
    order = np.argsort(-(exact - n_test), kind="stable")
    n_test[order[:remainder]] += 1
    test_parts = []
    for c, k in zip(classes, n_test):
        members = np.flatnonzero(y == c)
        test_parts.append(rng.permutation(members)[:k])
    test_idx = np.sort(np.concatenate(test_parts)).astype(np.int64)
    mask = np.ones(len(y), dtype=bool)
    mask[test_idx] = False
    train_idx = np.flatnonzero(mask).astype(np.int64)
    return train_idx, test_idx


def load_digits(seed: int = 0, test_fraction: float = 0.25) -> Dataset:
    """scikit-learn's bundled 8x8 handwritten digits (1,797 images, 10 classes).

    No download is needed. Pixels (0..16) are divided by 16, then standardised with
    the mean and standard deviation of the *training* pixels (one scalar each), so
    train and test are transformed identically.

    Parameters
    ----------
    seed : int, default 0
        Seed of the stratified train/test split.
    test_fraction : float, default 0.25
        Fraction of samples in the test split (0.25 gives 1,347 train / 450 test, i.e.
        ``ceil(test_fraction * N)`` test samples as in scikit-learn;
        each class is split in the same proportion).

    Returns
    -------
    Dataset
        ``x_*`` of shape ``(N, 1, 8, 8)``, float32; ``n_classes = 10``.
    """
    if not 0.0 < float(test_fraction) < 1.0:
        raise ValueError(f"test_fraction must lie in (0, 1), got {test_fraction!r}")
    from sklearn.datasets import load_digits as _sk_load_digits

    bunch = _sk_load_digits()
    x = np.asarray(bunch.images, dtype=np.float64) / 16.0  # (1797, 8, 8)
    y = np.asarray(bunch.target, dtype=np.int64)
    train_idx, test_idx = _stratified_split(y, float(test_fraction), int(seed))
    mean = x[train_idx].mean()
    std = x[train_idx].std()
    x = (x - mean) / std
    x = x[:, None, :, :].astype(np.float32)
    return Dataset(
        name="digits",
        x_train=torch.from_numpy(np.ascontiguousarray(x[train_idx])),
        y_train=torch.from_numpy(y[train_idx]),
        x_test=torch.from_numpy(np.ascontiguousarray(x[test_idx])),
        y_test=torch.from_numpy(y[test_idx]),
        n_classes=10,
    )


_REGISTRY: dict[str, Callable[..., Dataset]] = {"digits": load_digits}


def available_datasets() -> list[str]:
    """Names accepted by :func:`load_dataset`, sorted."""
    return sorted(_REGISTRY)


def load_dataset(name: str, **options: Any) -> Dataset:
    """Load a dataset by registry name.

    Parameters
    ----------
    name : str
        One of :func:`available_datasets` (currently ``"digits"``).
    **options
        Passed to the loader (for ``"digits"``: ``seed``, ``test_fraction``).

    Returns
    -------
    Dataset

    Raises
    ------
    ValueError
        If ``name`` is unknown or an option is not accepted by the loader.
    """
    if name not in _REGISTRY:
        raise ValueError(
            f"unknown dataset {name!r}; available: {', '.join(available_datasets())}"
        )
    loader = _REGISTRY[name]
    import inspect

    allowed = set(inspect.signature(loader).parameters)
    unknown = sorted(set(options) - allowed)
    if unknown:
        raise ValueError(
            f"unknown option(s) {unknown} for dataset {name!r}; allowed: {sorted(allowed)}"
        )
    return loader(**options)
