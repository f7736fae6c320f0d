"""Tests of ``Dataset``, the bundled digits, ``train_size`` and the dataset registry.

References are computed independently from scikit-learn's raw ``load_digits`` images
(integers 0..16), never from the package's own intermediate values.
"""

import math
from collections import defaultdict

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits as sk_load_digits

from deepmanifold.data import Dataset, available_datasets, load_dataset, load_digits, whiten_inputs

N_DIGITS = 1797


@pytest.fixture(scope="module")
def raw():
    bunch = sk_load_digits()
    return np.asarray(bunch.images, dtype=np.float64), np.asarray(bunch.target, dtype=np.int64)


@pytest.fixture(scope="module")
def ds0():
    return load_digits(seed=0)


def _recover_split(ds, raw_images, raw_labels):
    """Indices into sklearn's arrays of the train and test samples of ``ds``.

    The inputs are an affine image of the raw pixels (0..16), and both splits contain
    pixels 0 and 16, so the affine map is recovered from the extreme values; each
    sample is then matched by (pixels, label) to an unused sklearn sample.
    """
    x_all = torch.cat([ds.x_train, ds.x_test]).double().numpy()
    lo, hi = x_all.min(), x_all.max()
    pix = 16.0 * (x_all - lo) / (hi - lo)
    rounded = np.rint(pix)
    assert np.abs(pix - rounded).max() < 1e-3, "inputs are not an affine image of the raw pixels"
    pool = defaultdict(list)
    for i, (img, lab) in enumerate(zip(raw_images.astype(np.int64), raw_labels)):
        pool[(img.tobytes(), int(lab))].append(i)
    y_all = torch.cat([ds.y_train, ds.y_test]).numpy()
    matched = []
    for img, lab in zip(rounded[:, 0].astype(np.int64), y_all):
        bucket = pool[(img.tobytes(), int(lab))]
        assert bucket, "a dataset sample does not occur in sklearn's digits (or occurs too often)"
        matched.append(bucket.pop())
    n_train = len(ds.y_train)
    return np.array(matched[:n_train]), np.array(matched[n_train:])


# --------------------------------------------------------------------------- shapes

def test_digits_split_sizes_shapes_dtypes(ds0):
    assert ds0.name == "digits"
    assert ds0.n_classes == 10
    assert ds0.x_train.shape == (1347, 1, 8, 8)
    assert ds0.x_test.shape == (450, 1, 8, 8)
    assert ds0.y_train.shape == (1347,) and ds0.y_test.shape == (450,)
    assert ds0.x_train.dtype == ds0.x_test.dtype == torch.float32
    assert ds0.y_train.dtype == ds0.y_test.dtype == torch.int64
    assert ds0.input_shape == (1, 8, 8)
    assert all(type(s) is int for s in ds0.input_shape)
    assert "n_train=1347" in repr(ds0) and "n_test=450" in repr(ds0)


@pytest.mark.parametrize("fraction", [0.1, 0.3, 0.5, 0.77])
def test_test_size_is_ceil_of_fraction(fraction):
    ds = load_digits(seed=1, test_fraction=fraction)
    n_test = math.ceil(fraction * N_DIGITS)
    assert len(ds.y_test) == n_test
    assert len(ds.y_train) == N_DIGITS - n_test


@pytest.mark.parametrize("fraction", [0.0, 1.0, -0.1, 1.5, float("nan")])
def test_bad_test_fraction(fraction):
    with pytest.raises(ValueError, match="test_fraction"):
        load_digits(test_fraction=fraction)


# --------------------------------------------------------------------------- split

@pytest.mark.parametrize("seed", [0, 7])
def test_split_is_disjoint_covering_and_stratified(seed, raw):
    images, labels = raw
    ds = load_digits(seed=seed)
    train_idx, test_idx = _recover_split(ds, images, labels)
    # Every sklearn sample used exactly once over the two splits.
    assert sorted(np.concatenate([train_idx, test_idx]).tolist()) == list(range(N_DIGITS))
    # Stratified: each class's test count within 1 of its exact proportional share.
    counts = np.bincount(labels, minlength=10)
    test_counts = np.bincount(ds.y_test.numpy(), minlength=10)
    exact = counts * 450 / N_DIGITS
    assert np.all(np.abs(test_counts - exact) < 1.0), (test_counts, exact)
    assert np.array_equal(test_counts + np.bincount(ds.y_train.numpy(), minlength=10), counts)


def test_standardised_with_training_statistics_only(raw, ds0):
    images, labels = raw
    train_idx, test_idx = _recover_split(ds0, images, labels)
    px_train = images[train_idx] / 16.0
    mean, std = px_train.mean(), px_train.std()
    # Training pixels are standardised: mean 0, std 1 (one scalar each).
    x_tr = ds0.x_train.double().numpy()
    assert abs(x_tr.mean()) < 1e-6
    assert abs(x_tr.std() - 1.0) < 1e-6
    # Both splits go through the same map, built from the training pixels.
    expected_train = (px_train - mean) / std
    expected_test = (images[test_idx] / 16.0 - mean) / std
    np.testing.assert_allclose(ds0.x_train[:, 0].numpy(), expected_train, atol=2e-6, rtol=0)
    np.testing.assert_allclose(ds0.x_test[:, 0].numpy(), expected_test, atol=2e-6, rtol=0)
    # The check discriminates: statistics of all 1797 images would give other test inputs.
    all_px = images / 16.0
    leaky = (images[test_idx] / 16.0 - all_px.mean()) / all_px.std()
    assert np.abs(leaky - ds0.x_test[:, 0].numpy()).max() > 1e-4


def test_deterministic_per_seed_and_different_across_seeds(ds0):
    again = load_digits(seed=0)
    for attr in ("x_train", "y_train", "x_test", "y_test"):
        assert torch.equal(getattr(ds0, attr), getattr(again, attr))
    other = load_digits(seed=1)
    assert not torch.equal(ds0.y_test, other.y_test)
    assert not torch.equal(ds0.x_test, other.x_test)


# --------------------------------------------------------------------------- train_size

def test_train_size_digits_stratified_seeded():
    full = load_digits(seed=0)
    a = load_dataset("digits", train_size=200)
    b = load_dataset("digits", train_size=200)
    c = load_dataset("digits", train_size=200, seed=0)
    assert len(a.y_train) == 200 and torch.equal(a.x_train, b.x_train) and torch.equal(a.x_train, c.x_train)
    counts = np.bincount(full.y_train.numpy(), minlength=10)
    sub = np.bincount(a.y_train.numpy(), minlength=10)
    assert sub.sum() == 200 and np.all(np.abs(sub - counts * 200 / counts.sum()) < 1.0)
    # Test split and normalisation unchanged.
    assert torch.equal(a.x_test, full.x_test) and torch.equal(a.y_test, full.y_test)
    # Each kept sample is a training sample of the full split, original order kept.
    rows = {tuple(r) for r in full.x_train.flatten(1).numpy().tolist()}
    keys = [tuple(r) for r in a.x_train.flatten(1).numpy().tolist()]
    assert all(k in rows for k in keys)
    pos = {tuple(r): i for i, r in enumerate(full.x_train.flatten(1).numpy().tolist())}
    assert all(np.diff([pos[k] for k in keys]) > 0)
    # Another seed: another subsample (and another split, digits' seed drives both).
    other = load_dataset("digits", train_size=200, seed=1)
    assert not torch.equal(other.x_train, a.x_train)
    # train_size = whole split is the full dataset.
    assert torch.equal(load_digits(train_size=len(full.y_train)).x_train, full.x_train)


@pytest.mark.parametrize("bad", [0, -5, 10**7, 2.5, "100", True])
def test_train_size_invalid(bad):
    with pytest.raises(ValueError, match="train_size"):
        load_dataset("digits", train_size=bad)


# --------------------------------------------------------------------------- registry

def test_registry_and_load_dataset():
    assert available_datasets() == ["cifar10", "digits", "fashion_mnist", "gaussian_teacher", "mnist"]
    a = load_dataset("digits", seed=3, test_fraction=0.5)
    b = load_digits(seed=3, test_fraction=0.5)
    assert torch.equal(a.x_test, b.x_test) and torch.equal(a.y_train, b.y_train)


def test_load_dataset_unknown_name():
    with pytest.raises(ValueError, match="cifar99") as err:
        load_dataset("cifar99")
    for name in available_datasets():  # lists what is available
        assert name in str(err.value)


@pytest.mark.parametrize(
    "name, options",
    [
        ("digits", dict(path="/tmp")),
        ("digits", dict(augment=True)),
        ("fashion_mnist", dict(test_fraction=0.2)),
        ("mnist", dict(augment=True)),
        ("cifar10", dict(n_train=5)),
        ("gaussian_teacher", dict(path="/tmp")),
    ],
)
def test_load_dataset_unknown_option(name, options):
    (bad,) = options
    with pytest.raises(ValueError, match=rf"unknown option.*{bad}.*{name}"):
        load_dataset(name, **options)


def test_whitened_inputs_have_identity_covariance_on_their_span():
    plain = load_digits(seed=0)
    white = load_dataset("digits", seed=0, whiten=True)
    X = white.x_train.reshape(len(white.y_train), -1).double().numpy()
    np.testing.assert_allclose(X.mean(axis=0), 0, atol=1e-6)
    eig = np.linalg.eigvalsh(X.T @ X / len(X))
    live = eig > 1e-3
    np.testing.assert_allclose(eig[live], 1.0, atol=1e-4)  # the identity on the span...
    np.testing.assert_allclose(eig[~live], 0.0, atol=1e-6)  # ...and nothing along pixels that never change
    assert 55 <= live.sum() < 64
    # ZCA: the symmetric map, so the whitened images stay closest to the originals; the test
    # split takes the training map (its mean and covariance are not whitened).
    P = plain.x_train.reshape(len(plain.y_train), -1).double().numpy()
    mu = P.mean(axis=0)
    C = (P - mu).T @ (P - mu) / len(P)
    w, V = np.linalg.eigh(C)
    keep = w > 1e-6 * w.max()
    zca = V[:, keep] @ np.diag(w[keep] ** -0.5) @ V[:, keep].T
    T = plain.x_test.reshape(len(plain.y_test), -1).double().numpy()
    np.testing.assert_allclose(white.x_test.reshape(len(T), -1).numpy(), (T - mu) @ zca, atol=1e-4)
    assert white.x_train.shape == plain.x_train.shape and torch.equal(white.y_test, plain.y_test)
    assert white.augmentations == plain.augmentations


def test_whiten_errors():
    with pytest.raises(ValueError, match="whiten must be true or false, got 'yes'"):
        load_dataset("digits", whiten="yes")
    toy = Dataset("toy", torch.ones(5, 1, 2, 2), torch.zeros(5, dtype=torch.int64), torch.ones(2, 1, 2, 2),
                  torch.zeros(2, dtype=torch.int64), 1)
    with pytest.raises(ValueError, match="constant"):
        whiten_inputs(toy)


# --------------------------------------------------------------------------- Dataset

def _tensors(n_train=6, n_test=4, shape=(1, 2, 2), n_classes=3):
    g = torch.Generator().manual_seed(0)
    return dict(
        name="toy",
        x_train=torch.randn(n_train, *shape, generator=g),
        y_train=torch.arange(n_train) % n_classes,
        x_test=torch.randn(n_test, *shape, generator=g),
        y_test=torch.arange(n_test) % n_classes,
        n_classes=n_classes,
    )


def test_dataset_valid_construction():
    ds = Dataset(**_tensors())
    assert ds.input_shape == (1, 2, 2)
    assert ds.augmentations == ()  # by default a dataset allows no augmentation
    with pytest.raises(AttributeError):
        ds.name = "other"  # frozen


@pytest.mark.parametrize(
    "change, match",
    [
        (dict(x_train=torch.zeros(6, 4)), "x_train"),  # not 4-D
        (dict(x_test=torch.zeros(4, 1, 2, 2, dtype=torch.float64)), "x_test"),  # dtype
        (dict(x_train=np.zeros((6, 1, 2, 2), dtype=np.float32)), "x_train"),  # not a tensor
        (dict(y_train=torch.zeros(6, dtype=torch.int32)), "y_train"),  # dtype
        (dict(y_test=torch.zeros(4, 1, dtype=torch.int64)), "y_test"),  # not 1-D
        (dict(y_train=torch.zeros(5, dtype=torch.int64)), "y_train"),  # length
        (dict(y_test=torch.tensor([0, 1, 2, 3])), r"y_test.*\[0, 3\)"),  # label >= C
        (dict(y_train=torch.tensor([0, 1, -1, 0, 1, 2])), "y_train"),  # negative label
        (dict(x_test=torch.zeros(4, 1, 3, 2)), "differ in shape"),
    ],
)
def test_dataset_validation_errors(change, match):
    kwargs = _tensors()
    kwargs.update(change)
    with pytest.raises(ValueError, match=match):
        Dataset(**kwargs)


def test_dataset_augmentations_field():
    ds = Dataset(**_tensors(), augmentations=["hflip", "crop"])
    assert ds.augmentations == ("hflip", "crop") and isinstance(ds.augmentations, tuple)
    with pytest.raises(AttributeError):
        ds.augmentations = ()
    for bad, match in ((("rotate",), "rotate"), ("crop", "string"), (("crop", "crop"), "repeat")):
        with pytest.raises(ValueError, match=match):
            Dataset(**_tensors(), augmentations=bad)


def test_augmentations_each_dataset_allows():
    # A mirrored digit is not a digit: digits allow crops only; the synthetic vectors
    # have no spatial structure to crop or flip.
    assert load_digits().augmentations == ("crop",)
    assert load_dataset("gaussian_teacher", n_train=20, n_test=5, dim=8).augmentations == ()
