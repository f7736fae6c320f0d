"""The recorder's "nfa" measurement stores, per checkpoint, what nfa() and agop() say of the model then."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from torch import nn

from deepmanifold.features import NFAMeasurement, agop, nfa
from deepmanifold.store import Store
from deepmanifold.training import Recorder
from deepmanifold.training.measurements import get_measurement


def _probes(n=40, d=(1, 4, 4), C=3):
    g = torch.Generator().manual_seed(0)
    return {"train": (torch.rand(n, *d, generator=g), torch.randint(0, C, (n,), generator=g)),
            "test": (torch.rand(n // 2, *d, generator=g), torch.randint(0, C, (n // 2,), generator=g))}


def _model(C=3):
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(16, 12, bias=False), nn.BatchNorm1d(12), nn.ReLU(),
                         nn.Linear(12, C))


def test_each_checkpoint_holds_the_models_nfa_and_input_agop(tmp_path):
    probes, model = _probes(), _model()
    x, y = probes["train"]
    measurement = NFAMeasurement(max_samples=25, n_eigenvectors=3)
    snapshots = []
    opt = torch.optim.SGD(model.parameters(), lr=0.2, momentum=0.9)
    with Recorder(tmp_path / "s", probes, {"arch": "mlp", "seed": 0}, run_id="r",
                  measurements=[measurement]) as rec:
        for step in (0, 5, 10):
            if step:
                model.train()
                for _ in range(5):
                    loss = nn.functional.cross_entropy(model(x), y)
                    opt.zero_grad()
                    loss.backward()
                    opt.step()
            snapshots.append(copy.deepcopy(model).eval())
            rec.checkpoint(model, step)
    store = Store(tmp_path / "s")
    assert set(store.record("r").arrays) >= {"nfa_pearson", "nfa_cosine", "nfa_agop_diag",
                                             "nfa_agop_eigenvectors", "nfa_agop_eigenvalues"}
    pearson, cosine = store.array("r", "nfa_pearson"), store.array("r", "nfa_cosine")
    diag, vecs = store.array("r", "nfa_agop_diag"), store.array("r", "nfa_agop_eigenvectors")
    values = store.array("r", "nfa_agop_eigenvalues")
    assert pearson.shape == (3, 2) and diag.shape == (3, 16) and vecs.shape == (3, 3, 16) and values.shape == (3, 3)
    for k, snap in enumerate(snapshots):
        ref = nfa(snap, x[:25])
        np.testing.assert_allclose(pearson[k], ref.pearson, atol=1e-6)
        np.testing.assert_allclose(cosine[k], ref.cosine, atol=1e-6)
        G = agop(snap, x[:25])
        np.testing.assert_allclose(diag[k], np.diag(G) / np.trace(G), rtol=1e-5)
        assert diag[k].sum() == pytest.approx(1, abs=1e-5)
        w, V = np.linalg.eigh(G)
        np.testing.assert_allclose(values[k], w[::-1][:3] / np.trace(G), rtol=1e-5)
        for j in range(3):  # each stored vector is an eigenvector, its largest entry positive
            v = vecs[k, j].astype(np.float64)
            np.testing.assert_allclose(G @ v, w[::-1][j] * v, atol=1e-5 * w[-1])
            assert v[np.abs(v).argmax()] > 0


def test_it_is_registered_and_checks_its_settings():
    assert isinstance(get_measurement("nfa"), NFAMeasurement) and get_measurement("nfa").needs_grad
    for kwargs, match in (({"max_samples": 0}, "max_samples"), ({"alpha": 0}, "alpha"),
                          ({"n_eigenvectors": 1.5}, "n_eigenvectors"), ({"probe": 3}, "probe")):
        with pytest.raises(ValueError, match=match):
            NFAMeasurement(**kwargs)
    with pytest.raises(ValueError, match="needs a probe set"):
        NFAMeasurement().measure(_model(), {})
