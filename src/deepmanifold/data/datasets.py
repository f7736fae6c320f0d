"""Datasets as tensors plus labels, behind one small registry.

Every dataset is held fully in memory as float32 tensors of shape ``(N, C_in, H, W)``
with int64 labels of shape ``(N,)``. Nothing is ever downloaded: ``digits`` is bundled
with scikit-learn, ``gaussian_teacher`` is synthetic, ``fashion_mnist`` comes from the
Debian package ``dataset-fashion-mnist`` (or a folder), ``mnist`` and ``cifar10`` from
files the user already has.

Registered loaders (options in brackets; every loader also takes ``train_size``):

- ``digits`` [seed, test_fraction]: 8x8 digits, stratified 75/25 split.
- ``fashion_mnist`` [path, seed]: official 60k/10k split, 28x28, from IDX files.
- ``mnist`` [path (required), seed]: official 60k/10k split, 28x28, from IDX files.
- ``cifar10`` [path (required), seed]: official 50k/10k split, 3x32x32, binary version.
- ``gaussian_teacher`` [dim, n_classes, n_train, n_test, seed, tau, width, power]: Gaussian
  inputs with an exponentially decaying spectrum labelled by a random teacher MLP.

Pixel datasets are divided by their maximum value (16 or 255) to lie in [0, 1], then
standardised per channel with the mean and standard deviation of the **full training
split** (before any ``train_size`` subsampling, so the test inputs are identical for every
``train_size``), the same map for train and test.

``train_size`` (int or None): a seeded, stratified subsample of that many training
samples (each class in proportion, largest remainders; original order kept), never
fewer than the number of classes (a smaller sample cannot hold one of each); the test
split is unchanged. Probe sets made from the dataset are then drawn from the subsample.

``label_noise`` (float in [0, 1), default 0; :func:`load_dataset` only, for every
dataset): that fraction of the training labels replaced by another class, drawn from a
stream seeded by the loader's ``seed`` (:func:`flip_labels`); which ones is recorded in
``Dataset.flipped``.

``whiten`` (bool, default False; :func:`load_dataset` only, for every dataset): ZCA
whitening of the inputs by :func:`whiten_inputs` after the above, so that the training
inputs satisfy ``XᵀX/n = I`` on their span, as deep linear theory's closed forms
assume (docs/method.md §11).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from ._common import check_int

__all__ = [
    "AUGMENTATION_OPS",
    "Dataset",
    "available_datasets",
    "load_cifar10",
    "load_dataset",
    "load_digits",
    "load_fashion_mnist",
    "load_gaussian_teacher",
    "load_mnist",
    "flip_labels",
    "whiten_inputs",
]

#: The label-preserving augmentations a dataset may name (``Dataset.augmentations``):
#: ``"crop"`` = random crop after padding, ``"hflip"`` = random horizontal flip.
AUGMENTATION_OPS = ("crop", "hflip")

#: Where the Debian package ``dataset-fashion-mnist`` installs the IDX files.
FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")


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
    augmentations : tuple[str, ...], default ()
        The label-preserving augmentations that make sense for this data, a subset of
        :data:`AUGMENTATION_OPS` (``"crop"``, ``"hflip"``); training code may apply them
        to training batches, never to probe samples (docs/method.md §1).
    flipped : ndarray of int64 or None, default None
        Indices (into the training split, ascending) of the samples whose label
        :func:`flip_labels` replaced by another class; None when no label was flipped.
    """

    name: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    n_classes: int
    augmentations: tuple[str, ...] = ()
    flipped: np.ndarray | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if isinstance(self.augmentations, str):
            raise ValueError(
                f"augmentations must be a sequence of names, got the string {self.augmentations!r}"
            )
        augs = tuple(self.augmentations)
        unknown = [a for a in augs if a not in AUGMENTATION_OPS]
        if unknown:
            raise ValueError(
                f"unknown augmentation(s) {unknown}; known: {', '.join(AUGMENTATION_OPS)}"
            )
        if len(set(augs)) != len(augs):
            raise ValueError(f"augmentations repeat a name: {augs}")
        object.__setattr__(self, "augmentations", augs)
        if self.flipped is not None:
            flipped = np.asarray(self.flipped, dtype=np.int64)
            if flipped.ndim != 1 or (flipped.size and (flipped.min() < 0 or flipped.max() >= len(self.y_train))):
                raise ValueError("flipped must list indices of training samples")
            object.__setattr__(self, "flipped", flipped)
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


def _stratified_draw(y: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """Sorted indices of ``n`` of the labels ``y``, each class in proportion.

    Class ``c`` gets ``n * count_c / N`` samples rounded by largest remainders (ties
    broken by class order), so the total is exactly ``n``; its members are drawn
    uniformly without replacement, one ``rng.permutation`` per class in class order.
    """
    classes, counts = np.unique(y, return_counts=True)
    exact = counts * (n / len(y)) if len(y) else counts * 0.0
    take = np.floor(exact).astype(np.int64)
    take[np.argsort(-(exact - take), kind="stable")[: n - int(take.sum())]] += 1
    parts = [rng.permutation(np.flatnonzero(y == c))[:k] for c, k in zip(classes, take)]
    if not parts:
        return np.zeros(0, dtype=np.int64)
    return np.sort(np.concatenate(parts)).astype(np.int64)


def _stratified_split(
    y: np.ndarray, test_fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Sorted train/test indices with each class split in the same proportion.

    Parameters
    ----------
    y : np.ndarray, shape (N,)
        Integer labels.
    test_fraction : float
        Fraction of the samples (over all classes) that goes to the test split:
        ``ceil(test_fraction * N)`` test samples, as scikit-learn's ``train_test_split``.
    seed : int
        Seed of the draw (``np.random.default_rng(seed)``).

    Returns
    -------
    train_idx, test_idx : np.ndarray, int64
        Disjoint, sorted, covering ``range(N)``.
    """
    n_test = min(len(y) - 1, int(np.ceil(test_fraction * len(y))))
    test_idx = _stratified_draw(y, n_test, np.random.default_rng(seed))
    mask = np.ones(len(y), dtype=bool)
    mask[test_idx] = False
    return np.flatnonzero(mask).astype(np.int64), test_idx


def _check_train_size(train_size: Any, n_available: int, name: str, n_classes: int) -> int | None:
    if train_size is None:
        return None
    train_size = check_int("train_size", train_size, 1)
    if train_size < n_classes:
        # A sample smaller than the number of classes cannot hold one of each: some class is never trained on.
        raise ValueError(
            f"train_size must be at least the {n_classes} classes of {name} (one training "
            f"sample of each class), got {train_size}"
        )
    if train_size > n_available:
        raise ValueError(
            f"train_size must lie in [{n_classes}, {n_available}] (the {name} training split has "
            f"{n_available} samples), got {train_size}"
        )
    return train_size


def stratified_subsample(y: np.ndarray, n: int, seed: int) -> np.ndarray:
    """Sorted indices of a seeded, stratified subsample of ``n`` of the labels ``y``.

    Each class gets ``n * count_c / N`` samples rounded by largest remainders (ties
    broken by class order), so the total is exactly ``n``; members of a class are chosen
    uniformly without replacement. The stream is ``np.random.default_rng([seed, 1])``,
    independent of the stream of the digits train/test split.

    Parameters
    ----------
    y : np.ndarray, shape (N,)
    n : int, 0 <= n <= N
    seed : int

    Returns
    -------
    np.ndarray, shape (n,), int64, ascending.
    """
    y = np.asarray(y)
    if not 0 <= n <= len(y):
        raise ValueError(f"cannot draw {n} of {len(y)} samples")
    return _stratified_draw(y, n, np.random.default_rng([int(seed), 1]))


def _subsample_train(
    x_train: np.ndarray, y_train: np.ndarray, train_size: int | None, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    if train_size is None or train_size == len(y_train):
        return x_train, y_train
    idx = stratified_subsample(y_train, train_size, seed)
    return x_train[idx], y_train[idx]


def _channel_stats(x_uint8: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Exact per-channel mean and std (float64) of uint8 images ``(N, C, H, W)``,
    from per-channel histograms (no float64 copy of the images)."""
    means, stds = [], []
    values = np.arange(256, dtype=np.float64)
    for c in range(x_uint8.shape[1]):
        flat = np.ascontiguousarray(x_uint8[:, c]).ravel()
        hist = np.zeros(256, dtype=np.float64)
        for start in range(0, flat.size, 1 << 22):  # chunks bound the intp temporary
            hist += np.bincount(flat[start : start + (1 << 22)], minlength=256)
        total = hist.sum()
        mean = float(hist @ values) / total
        var = float(hist @ (values - mean) ** 2) / total
        means.append(mean)
        stds.append(np.sqrt(var))
    return np.array(means), np.array(stds)


def _standardise_uint8(
    x: np.ndarray, mean: np.ndarray, std: np.ndarray
) -> torch.Tensor:
    """``(x/255 − m)/s`` per channel, float32, where ``m, s`` are the statistics of
    ``x/255``: computed as ``(x − 255m)/(255s)`` with ``mean, std`` in pixel units."""
    if np.any(std == 0):
        raise ValueError("a channel of the training images is constant (std 0)")
    out = x.astype(np.float32)
    shape = (1, -1, 1, 1)
    out -= mean.astype(np.float32).reshape(shape)
    out *= (1.0 / std).astype(np.float32).reshape(shape)
    return torch.from_numpy(out)


def _pixel_dataset(
    name: str,
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_test: np.ndarray,
    y_test: np.ndarray,
    n_classes: int,
    augmentations: tuple[str, ...],
    train_size: int | None,
    seed: int,
) -> Dataset:
    """A Dataset from uint8 images ``(N, C, H, W)``: stats of the full training split,
    then the stratified training subsample."""
    train_size = _check_train_size(train_size, len(y_train), name, n_classes)
    mean, std = _channel_stats(x_train)
    x_sub, y_sub = _subsample_train(x_train, y_train, train_size, seed)
    for split, y in (("train", y_train), ("test", y_test)):
        if y.size and int(y.max()) >= n_classes:
            raise ValueError(f"{name}: {split} label {int(y.max())} is not in [0, {n_classes})")
    return Dataset(
        name=name,
        x_train=_standardise_uint8(x_sub, mean, std),
        y_train=torch.from_numpy(np.asarray(y_sub, dtype=np.int64).copy()),
        x_test=_standardise_uint8(x_test, mean, std),
        y_test=torch.from_numpy(np.asarray(y_test, dtype=np.int64).copy()),
        n_classes=n_classes,
        augmentations=augmentations,
    )


def load_digits(
    seed: int = 0, test_fraction: float = 0.25, train_size: int | None = None
) -> Dataset:
    """scikit-learn's bundled 8x8 handwritten digits (1,797 images, 10 classes).

    No download is needed. Pixels (0..16) are divided by 16, then standardised with
    the mean and standard deviation of the *training* pixels (one scalar each), so
    train and test are transformed identically.

    Parameters
    ----------
    seed : int, default 0
        Seed of the stratified train/test split (and of the ``train_size`` subsample).
    test_fraction : float, default 0.25
        Fraction of samples in the test split (0.25 gives 1,347 train / 450 test, i.e.
        ``ceil(test_fraction * N)`` test samples as in scikit-learn;
        each class is split in the same proportion).
    train_size : int or None, default None
        Keep a seeded, stratified subsample of this many training samples
        (:func:`stratified_subsample`); the statistics of the standardisation and the
        test split are those of the full split, so they do not depend on it.

    Returns
    -------
    Dataset
        ``x_*`` of shape ``(N, 1, 8, 8)``, float32; ``n_classes = 10``;
        ``augmentations = ("crop",)``.
    """
    if not 0.0 < float(test_fraction) < 1.0:
        raise ValueError(f"test_fraction must lie in (0, 1), got {test_fraction!r}")
    from sklearn.datasets import load_digits as _sk_load_digits

    bunch = _sk_load_digits()
    x = np.asarray(bunch.images, dtype=np.float64) / 16.0  # (1797, 8, 8)
    y = np.asarray(bunch.target, dtype=np.int64)
    train_idx, test_idx = _stratified_split(y, float(test_fraction), int(seed))
    train_size = _check_train_size(train_size, len(train_idx), "digits", 10)
    mean = x[train_idx].mean()
    std = x[train_idx].std()
    x = (x - mean) / std
    x = x[:, None, :, :].astype(np.float32)
    if train_size is not None:
        train_idx = train_idx[stratified_subsample(y[train_idx], train_size, int(seed))]
    return Dataset(
        name="digits",
        x_train=torch.from_numpy(np.ascontiguousarray(x[train_idx])),
        y_train=torch.from_numpy(y[train_idx]),
        x_test=torch.from_numpy(np.ascontiguousarray(x[test_idx])),
        y_test=torch.from_numpy(y[test_idx]),
        n_classes=10,
        augmentations=("crop",),
    )


_IDX_FILES = (
    "train-images-idx3-ubyte[.gz], train-labels-idx1-ubyte[.gz], "
    "t10k-images-idx3-ubyte[.gz], t10k-labels-idx1-ubyte[.gz]"
)


def _read_idx_folder(folder: Path) -> tuple[np.ndarray, ...]:
    from .idx import load_idx_split

    x_train, y_train, x_test, y_test = load_idx_split(folder)
    return x_train[:, None], y_train, x_test[:, None], y_test  # grey: one channel


def _read_cifar10_folder(folder: Path) -> tuple[np.ndarray, ...]:
    from .cifar import load_cifar10_split

    return load_cifar10_split(folder)


@dataclass(frozen=True)
class _FileFormat:
    """A dataset read from files the user already has (nothing is downloaded)."""

    title: str  # the dataset's usual name, for messages
    contents: str  # the files its folder holds, for messages
    read: Callable[[Path], tuple[np.ndarray, ...]]  # folder -> uint8 (N, C, H, W) and labels
    augmentations: tuple[str, ...]
    install: str = ""  # the command that installs the files in the default folder


_FILE_FORMATS = {
    "fashion_mnist": _FileFormat(
        "Fashion-MNIST", _IDX_FILES, _read_idx_folder, ("crop", "hflip"),
        install="apt-get install dataset-fashion-mnist",
    ),
    # No flips: a mirrored digit is not a digit.
    "mnist": _FileFormat("MNIST", _IDX_FILES, _read_idx_folder, ("crop",)),
    "cifar10": _FileFormat(
        "CIFAR-10", "data_batch_1.bin .. data_batch_5.bin and test_batch.bin (the binary "
        "version)", _read_cifar10_folder, ("crop", "hflip"),
    ),
}


def _from_files(
    name: str, path: Any, train_size: int | None, seed: int, default: Path | None = None
) -> Dataset:
    """The 10-class dataset ``name`` from the folder ``path`` (or ``default``)."""
    fmt = _FILE_FORMATS[name]
    if path is None and default is None:
        raise ValueError(
            f"{name} needs path=<folder with {fmt.contents}>; deepmanifold downloads nothing"
        )
    folder = default if path is None else Path(path)
    if not folder.is_dir():
        how = f"install it with `{fmt.install}`, or " if path is None and fmt.install else ""
        raise FileNotFoundError(
            f"{fmt.title} folder not found: {folder}; {how}pass path=<folder with {fmt.contents}>"
        )
    x_train, y_train, x_test, y_test = fmt.read(folder)
    return _pixel_dataset(
        name, x_train, y_train, x_test, y_test, n_classes=10,
        augmentations=fmt.augmentations, train_size=train_size, seed=seed,
    )


def load_fashion_mnist(
    path: str | os.PathLike | None = None, train_size: int | None = None, seed: int = 0
) -> Dataset:
    """Fashion-MNIST (Zalando; 28x28 grey images of 10 kinds of clothing).

    Reads the four IDX files (gzip or plain) of the Debian package
    ``dataset-fashion-mnist`` in ``/usr/share/datasets/fashion-mnist/``, or of ``path``.
    Official split: 60,000 training and 10,000 test images. Pixels are divided by 255
    then standardised with the training mean and std (see the module docstring).
    The files are read once per process.

    Parameters
    ----------
    path : path-like, optional
        Folder holding ``train-images-idx3-ubyte[.gz]``, ``train-labels-idx1-ubyte[.gz]``,
        ``t10k-images-idx3-ubyte[.gz]``, ``t10k-labels-idx1-ubyte[.gz]``.
    train_size : int or None
        Seeded, stratified subsample of the training split.
    seed : int, default 0
        Seed of the ``train_size`` subsample (the split itself is the official one).

    Returns
    -------
    Dataset
        ``(N, 1, 28, 28)``; ``n_classes = 10``; ``augmentations = ("crop", "hflip")``.

    Raises
    ------
    FileNotFoundError
        If the folder or a file is missing (says how to install the package).
    """
    return _from_files("fashion_mnist", path, train_size, seed, default=FASHION_MNIST_DIR)


def load_mnist(
    path: str | os.PathLike | None = None, train_size: int | None = None, seed: int = 0
) -> Dataset:
    """MNIST handwritten digits from IDX files the user already has (no download).

    The four IDX files may be gzip-compressed or plain. Official split: 60,000 training
    and 10,000 test images. Pixels are divided by 255 then standardised with the
    training mean and std (see the module docstring). The files are read once per
    process.

    Parameters
    ----------
    path : path-like (required)
        Folder holding ``train-images-idx3-ubyte[.gz]``, ``train-labels-idx1-ubyte[.gz]``,
        ``t10k-images-idx3-ubyte[.gz]``, ``t10k-labels-idx1-ubyte[.gz]``.
    train_size : int or None
        Seeded, stratified subsample of the training split.
    seed : int, default 0
        Seed of the ``train_size`` subsample.

    Returns
    -------
    Dataset
        ``(N, 1, 28, 28)`` (official 60k/10k split); ``augmentations = ("crop",)``
        (no flips: a mirrored digit is not a digit).

    Raises
    ------
    ValueError
        Without ``path``.
    FileNotFoundError
        If the folder or one of the four files is missing.
    """
    return _from_files("mnist", path, train_size, seed)


def load_cifar10(
    path: str | os.PathLike | None = None, train_size: int | None = None, seed: int = 0
) -> Dataset:
    """CIFAR-10 from the files of its **binary** version (never unpickles anything).

    Each batch file is a sequence of 3,073-byte records (a label byte, then the red,
    green and blue planes); see :mod:`deepmanifold.data.cifar`. The files are read
    once per process.

    Parameters
    ----------
    path : path-like (required)
        Folder holding ``data_batch_1.bin`` … ``data_batch_5.bin`` and
        ``test_batch.bin`` (or the parent of ``cifar-10-batches-bin/``).
    train_size : int or None
        Seeded, stratified subsample of the training split.
    seed : int, default 0
        Seed of the ``train_size`` subsample.

    Returns
    -------
    Dataset
        ``(N, 3, 32, 32)``, channels R, G, B, each divided by 255 and standardised with
        its own training mean and std; official 50k/10k split;
        ``augmentations = ("crop", "hflip")``.

    Raises
    ------
    ValueError
        Without ``path``, or a batch file that is not a CIFAR-10 binary batch.
    FileNotFoundError
        If the folder or a batch file is missing.
    """
    return _from_files("cifar10", path, train_size, seed)


def load_gaussian_teacher(n_train: int = 10_000, n_test: int = 2_000, dim: int = 200,
                          n_classes: int = 5, seed: int = 0, tau: float = 20.0,
                          width: int = 100, train_size: int | None = None, power: float | None = None) -> Dataset:
    """Synthetic: Gaussian inputs with eigenvalues ∝ exp(−k/τ) (or (k + 1)^(−c)) in a random
    rotation, labelled by a random one-hidden-layer ReLU teacher (argmax of its logits).

    See :mod:`deepmanifold.data.synthetic` for the exact design. Inputs are not
    standardised (their coordinates already have mean 0 and average variance 1).

    Parameters
    ----------
    n_train, n_test : int, default 10,000 and 2,000
    dim : int, default 200
        Input dimension d.
    n_classes : int, default 5
    seed : int, default 0
        Seeds the rotation, the teacher, and (independently) the training and test
        inputs and the ``train_size`` subsample.
    tau : float, default 20
        Decay length of the spectrum: λ_k ∝ exp(−k/τ), k = 0..d−1, Σλ = d.
    width : int, default 100
        Hidden width of the teacher.
    train_size : int or None
        Seeded, stratified subsample of the ``n_train`` training samples.
    power : float or None
        c >= 0: the spectrum λ_k ∝ (k + 1)^(−c) instead (``tau`` ignored); the reference
        study's synthetic data uses c ∈ {0, 0.5}.

    Returns
    -------
    Dataset
        ``x_*`` of shape ``(N, 1, 1, dim)``; ``augmentations = ()``.
    """
    from .synthetic import make_gaussian_teacher, sample_gaussian_teacher

    n_train, n_test = check_int("n_train", n_train, 1), check_int("n_test", n_test, 0)
    train_size = _check_train_size(train_size, n_train, "gaussian_teacher", check_int("n_classes", n_classes, 2))
    teacher = make_gaussian_teacher(dim=dim, n_classes=n_classes, seed=seed, tau=tau, width=width, power=power)
    x_train, y_train, x_test, y_test = sample_gaussian_teacher(teacher, n_train, n_test, int(seed))
    x_train, y_train = _subsample_train(x_train, y_train, train_size, int(seed))
    return Dataset(
        name="gaussian_teacher",
        x_train=torch.from_numpy(np.ascontiguousarray(x_train)),
        y_train=torch.from_numpy(y_train),
        x_test=torch.from_numpy(np.ascontiguousarray(x_test)),
        y_test=torch.from_numpy(y_test),
        n_classes=int(n_classes),
        augmentations=(),
    )


# The registry name of each dataset is its loader's name without "load_".
_REGISTRY: dict[str, Callable[..., Dataset]] = {
    f.__name__.removeprefix("load_"): f
    for f in (load_digits, load_fashion_mnist, load_mnist, load_cifar10, load_gaussian_teacher)
}


def whiten_inputs(dataset: Dataset, *, tolerance: float = 1e-6) -> Dataset:
    """The dataset with ZCA-whitened inputs: ``x ↦ (x − μ) C^{-1/2}`` on the span of the data.

    ``μ`` and ``C = (X − μ)ᵀ(X − μ)/n`` are the mean and covariance of the flattened
    training inputs (the ``n`` samples trained on), so the training inputs satisfy
    ``XᵀX/n = I`` on the directions they span; directions with variance below
    ``tolerance`` times the largest (e.g. pixels that never change) map to 0. The test
    inputs take the same map. Shapes, labels and augmentations are unchanged.

    ZCA (``C^{-1/2} = V diag(w^{-1/2}) Vᵀ``, not a rotation to principal components)
    keeps every input dimension where it was, so images stay images.
    """
    n = dataset.x_train.shape[0]
    if n < 2:
        raise ValueError(f"whitening needs at least 2 training samples, got {n}")
    x = dataset.x_train.reshape(n, -1).double()
    mean = x.mean(dim=0)
    x = x - mean
    w, V = torch.linalg.eigh(x.T @ x / n)
    keep = w > tolerance * w.max()
    if not bool(keep.any()):
        raise ValueError("the training inputs are constant: there is nothing to whiten")
    Vk = V[:, keep]
    transform = (Vk / w[keep].sqrt()) @ Vk.T

    def apply(inputs: torch.Tensor) -> torch.Tensor:
        flat = inputs.reshape(inputs.shape[0], -1).double() - mean
        return (flat @ transform).float().reshape(inputs.shape).contiguous()

    return Dataset(name=dataset.name, x_train=apply(dataset.x_train), y_train=dataset.y_train,
                   x_test=apply(dataset.x_test), y_test=dataset.y_test, n_classes=dataset.n_classes,
                   augmentations=dataset.augmentations, flipped=dataset.flipped)


def flip_labels(dataset: Dataset, fraction: float, seed: int = 0) -> Dataset:
    """The dataset with ``round(fraction * N_train)`` training labels replaced by another class.

    The samples are drawn without replacement, and each gets a class drawn uniformly
    from the ``C − 1`` others, from one generator seeded by ``seed`` (so the same
    samples are flipped for every run of a sweep). The test split is unchanged;
    :attr:`Dataset.flipped` lists the flipped samples (the noisy labels are what the
    networks train on and what the train probe records as labels).

    Raises
    ------
    ValueError
        ``fraction`` outside ``[0, 1)``, or fewer than 2 classes.
    """
    if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not 0 <= fraction < 1:
        raise ValueError(f"label_noise must be a fraction in [0, 1), got {fraction!r}")
    if dataset.n_classes < 2:
        raise ValueError("flipping labels needs at least 2 classes")
    n = dataset.y_train.shape[0]
    rng = np.random.default_rng([int(seed), 0x1ABE1])
    chosen = np.sort(rng.choice(n, size=int(round(fraction * n)), replace=False)).astype(np.int64)
    y = dataset.y_train.clone()
    shift = torch.from_numpy(rng.integers(1, dataset.n_classes, size=chosen.size))  # never the same class
    y[chosen] = (y[chosen] + shift) % dataset.n_classes
    return Dataset(name=dataset.name, x_train=dataset.x_train, y_train=y, x_test=dataset.x_test,
                   y_test=dataset.y_test, n_classes=dataset.n_classes, augmentations=dataset.augmentations,
                   flipped=chosen)


def available_datasets() -> list[str]:
    """Names accepted by :func:`load_dataset`, sorted."""
    return sorted(_REGISTRY)


def load_dataset(name: str, **options: Any) -> Dataset:
    """Load a dataset by registry name.

    Parameters
    ----------
    name : str
        One of :func:`available_datasets`: ``"cifar10"``, ``"digits"``,
        ``"fashion_mnist"``, ``"gaussian_teacher"``, ``"mnist"``.
    **options
        Passed to the loader; see the loader's docstring (``load_<name>``) and the
        module docstring. Every loader accepts ``train_size``. ``label_noise=f`` (any
        dataset) flips that fraction of the training labels (:func:`flip_labels`), and
        ``whiten=True`` whitens the inputs afterwards (:func:`whiten_inputs`).

    Returns
    -------
    Dataset

    Raises
    ------
    ValueError
        If ``name`` is unknown or an option is not accepted by the loader.
    FileNotFoundError
        If the data files of a file-based dataset are missing.
    """
    if name not in _REGISTRY:
        raise ValueError(
            f"unknown dataset {name!r}; available: {', '.join(available_datasets())}"
        )
    loader = _REGISTRY[name]
    import inspect

    whiten = options.pop("whiten", False)
    if not isinstance(whiten, bool):
        raise ValueError(f"option whiten must be true or false, got {whiten!r}")
    label_noise = options.pop("label_noise", 0.0)
    if isinstance(label_noise, bool) or not isinstance(label_noise, (int, float)) or not 0 <= label_noise < 1:
        raise ValueError(f"option label_noise must be a fraction in [0, 1), got {label_noise!r}")
    allowed = set(inspect.signature(loader).parameters)
    unknown = sorted(set(options) - allowed)
    if unknown:
        raise ValueError(
            f"unknown option(s) {unknown} for dataset {name!r}; allowed: {sorted(allowed | {'label_noise', 'whiten'})}"
        )
    dataset = loader(**options)
    if label_noise:
        dataset = flip_labels(dataset, float(label_noise), int(options.get("seed", 0)))
    return whiten_inputs(dataset) if whiten else dataset
