"""Tests of the synthetic ``gaussian_teacher`` dataset: its spectrum and its teacher."""

import numpy as np
import pytest
import torch

from deepmanifold.data import load_dataset, load_gaussian_teacher
from deepmanifold.data.synthetic import make_gaussian_teacher


@pytest.fixture(scope="module")
def ds():
    return load_dataset("gaussian_teacher", n_train=6000, n_test=1000, seed=0)


@pytest.fixture(scope="module")
def teacher():
    return make_gaussian_teacher(dim=200, n_classes=5, seed=0)


def test_shapes_and_defaults():
    d = load_dataset("gaussian_teacher", n_train=300, n_test=50)
    assert d.name == "gaussian_teacher" and d.n_classes == 5
    assert d.x_train.shape == (300, 1, 1, 200) and d.x_test.shape == (50, 1, 1, 200)
    assert d.x_train.dtype == torch.float32 and d.y_train.dtype == torch.int64
    assert d.input_shape == (1, 1, 200) and d.augmentations == ()
    small = load_gaussian_teacher(n_train=40, n_test=10, dim=12, n_classes=3)
    assert small.x_train.shape == (40, 1, 1, 12) and small.n_classes == 3
    assert set(small.y_train.tolist()) == {0, 1, 2}  # the calibrated teacher uses every class


def test_seeded_determinism_and_independent_streams():
    a = load_gaussian_teacher(n_train=500, n_test=100, seed=4)
    b = load_gaussian_teacher(n_train=500, n_test=100, seed=4)
    for attr in ("x_train", "y_train", "x_test", "y_test"):
        assert torch.equal(getattr(a, attr), getattr(b, attr))
    c = load_gaussian_teacher(n_train=500, n_test=100, seed=5)
    assert not torch.equal(a.x_train, c.x_train)
    # More training samples change neither the test set nor the first training samples.
    d = load_gaussian_teacher(n_train=800, n_test=100, seed=4)
    assert torch.equal(a.x_test, d.x_test) and torch.equal(a.y_test, d.y_test)
    assert torch.equal(d.x_train[:500], a.x_train)


def test_design_spectrum(teacher):
    lam = teacher.eigenvalues
    k = np.arange(200)
    assert lam.sum() == pytest.approx(200.0)
    np.testing.assert_allclose(lam / lam[0], np.exp(-k / 20.0), rtol=1e-12)
    q = teacher.rotation
    np.testing.assert_allclose(q.T @ q, np.eye(200), atol=1e-10)


def test_sample_covariance_matches_design(ds, teacher):
    x = ds.x_train[:, 0, 0, :].double().numpy()
    assert np.abs(x.mean(axis=0)).max() < 0.15  # mean zero (std of a mean <= 0.04)
    cov = np.cov(x, rowvar=False)
    # In the design's eigenbasis the sample covariance is diagonal with entries λ_k
    # (relative error ~ sqrt(2/n) = 1.8% each for n = 6000).
    proj = teacher.rotation.T @ cov @ teacher.rotation
    diag = np.diag(proj)
    np.testing.assert_allclose(diag[:60], teacher.eigenvalues[:60], rtol=0.08)
    off = proj - np.diag(diag)
    scale = np.sqrt(np.outer(diag, diag))
    assert np.abs(off / scale).max() < 0.08  # correlations ~ 1/sqrt(n) = 0.013
    # Measured from the samples alone: top eigenvalues and their exponential decay rate.
    ev = np.sort(np.linalg.eigvalsh(cov))[::-1]
    np.testing.assert_allclose(ev[:10], teacher.eigenvalues[:10], rtol=0.1)
    slope = np.polyfit(np.arange(60), np.log(ev[:60]), 1)[0]
    assert slope == pytest.approx(-1 / 20.0, rel=0.1)
    # The tau option changes the decay.
    fast = load_gaussian_teacher(n_train=3000, n_test=10, dim=50, tau=5.0, seed=1)
    ev_fast = np.sort(np.linalg.eigvalsh(np.cov(fast.x_train[:, 0, 0].double().numpy(), rowvar=False)))[::-1]
    slope_fast = np.polyfit(np.arange(20), np.log(ev_fast[:20]), 1)[0]
    assert slope_fast == pytest.approx(-1 / 5.0, rel=0.12)


@pytest.mark.parametrize("c", [0.0, 0.5])
def test_power_law_spectrum(c):
    """The reference study's synthetic inputs: λ_k ∝ (k + 1)^(−c); c = 0 is isotropic."""
    teacher = make_gaussian_teacher(dim=50, power=c, seed=2)
    k = np.arange(50)
    assert teacher.eigenvalues.sum() == pytest.approx(50.0) and teacher.power == c and np.isnan(teacher.tau)
    np.testing.assert_allclose(teacher.eigenvalues / teacher.eigenvalues[0], (k + 1.0) ** (-c), rtol=1e-12)
    ds = load_gaussian_teacher(n_train=4000, n_test=10, dim=50, power=c, seed=2)
    cov = np.cov(ds.x_train[:, 0, 0].double().numpy(), rowvar=False)
    proj = np.diag(teacher.rotation.T @ cov @ teacher.rotation)  # the design's eigenbasis
    np.testing.assert_allclose(proj, teacher.eigenvalues, rtol=0.12)


def test_labels_use_all_classes_roughly_balanced(ds):
    for y in (ds.y_train, ds.y_test):
        counts = np.bincount(y.numpy(), minlength=5)
        assert np.all(counts > 0)
        assert counts.min() / counts.max() > 0.7, counts


def test_labels_are_the_teacher_function_of_the_inputs(ds, teacher):
    for x, y in ((ds.x_train, ds.y_train), (ds.x_test, ds.y_test)):
        assert np.array_equal(teacher.labels(x.numpy()), y.numpy())
    # The teacher is a one-hidden-layer ReLU MLP; written out independently here.
    x = ds.x_test[:, 0, 0, :].double().numpy()
    h = np.maximum(x @ teacher.w1.T + teacher.b1, 0)
    assert teacher.w1.shape == (100, 200) and teacher.w2.shape == (5, 100)
    assert np.array_equal(np.argmax(h @ teacher.w2.T + teacher.b2, axis=1), ds.y_test.numpy())
    # A deterministic function: equal inputs, equal labels, whatever their order.
    perm = np.random.default_rng(0).permutation(len(x))
    assert np.array_equal(teacher.labels(x[perm]), ds.y_test.numpy()[perm])
    # The labels depend on the inputs (not a constant or a function of position).
    assert not np.array_equal(teacher.labels(-x), ds.y_test.numpy())


def test_train_size_stratified(ds):
    sub = load_dataset("gaussian_teacher", n_train=6000, n_test=1000, seed=0, train_size=600)
    full = np.bincount(ds.y_train.numpy(), minlength=5)
    got = np.bincount(sub.y_train.numpy(), minlength=5)
    assert got.sum() == 600 and np.all(np.abs(got - full * 600 / 6000) < 1.0)
    assert torch.equal(sub.x_test, ds.x_test)
    again = load_dataset("gaussian_teacher", n_train=6000, n_test=1000, seed=0, train_size=600)
    assert torch.equal(sub.x_train, again.x_train)


@pytest.mark.parametrize(
    "options, match",
    [
        (dict(dim=0), "dim"),
        (dict(n_classes=1), "n_classes"),
        (dict(tau=0.0), "tau"),
        (dict(width=0), "width"),
        (dict(n_train=0), "n_train"),
        (dict(n_test=-1), "n_test"),
        (dict(n_train=50, train_size=51), "train_size"),
        (dict(power=-0.5), "power"),
    ],
)
def test_invalid_options(options, match):
    with pytest.raises(ValueError, match=match):
        load_gaussian_teacher(**options)
