"""Shared helpers for the geometry tests: random models and plain-numpy references."""

import numpy as np
import pytest


@pytest.fixture
def rng():
    return np.random.default_rng(20240312)


def random_models(rng, T, n, C, *, concentration=1.0, zeros=False):
    """(T, n, C) float64 probabilities; with ``zeros`` some entries are exactly 0."""
    X = rng.dirichlet(np.full(C, concentration), size=(T, n))
    if zeros:
        mask = rng.random(X.shape) < 0.3
        mask[..., 0] = False  # keep every row non-empty
        X = np.where(mask, 0.0, X)
        X /= X.sum(axis=-1, keepdims=True)
    return X


@pytest.fixture
def models():
    """The ``random_models`` factory (fixtures cannot be imported from conftest)."""
    return random_models
