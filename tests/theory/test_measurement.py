"""The recorder's "ntk" measurement stores what empirical_ntk and kernel_distance say of each checkpoint."""

import copy

import numpy as np
import pytest
import torch
from torch import nn

from deepmanifold.probes import class_balanced_sample
from deepmanifold.store import Store
from deepmanifold.theory import NTKMeasurement, empirical_ntk, kernel_distance
from deepmanifold.training import Recorder


def test_distance_alignment_and_spectrum_per_checkpoint(tmp_path):
    g = torch.Generator().manual_seed(0)
    x, y = torch.rand(60, 1, 4, 4, generator=g), torch.arange(60) % 3
    probes = {"train": (x, y), "test": (x[:30], y[:30])}
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 32), nn.Tanh(), nn.Linear(32, 3))
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    snapshots = []
    with Recorder(tmp_path / "s", probes, {"arch": "mlp", "seed": 0}, run_id="r",
                  measurements=[NTKMeasurement(samples_per_class=8, n_eigenvalues=4)]) as rec:
        for step in range(4):
            if step:
                for _ in range(20):
                    loss = nn.functional.cross_entropy(model(x), y)
                    opt.zero_grad()
                    loss.backward()
                    opt.step()
            snapshots.append(copy.deepcopy(model))
            rec.checkpoint(model, step)
    store = Store(tmp_path / "s")
    distance, alignment = store.array("r", "ntk_distance"), store.array("r", "ntk_alignment")
    eigenvalues = store.array("r", "ntk_eigenvalues")
    assert distance.shape == (4,) and eigenvalues.shape == (4, 4)
    idx = class_balanced_sample(y.numpy(), 8)
    K0 = empirical_ntk(snapshots[0], x[idx])
    labels = y.numpy()[idx]
    H = np.eye(len(idx)) - 1 / len(idx)
    T = H @ (labels[:, None] == labels[None, :]).astype(float) @ H
    for k, snap in enumerate(snapshots):
        K = empirical_ntk(snap, x[idx])
        assert distance[k] == pytest.approx(kernel_distance(K0, K), abs=1e-6)
        Kc = H @ K @ H
        assert alignment[k] == pytest.approx(np.sum(Kc * T) / np.linalg.norm(Kc) / np.linalg.norm(T), rel=1e-5)
        np.testing.assert_allclose(eigenvalues[k], np.linalg.eigvalsh(K)[::-1][:4] / np.trace(K), rtol=1e-5)
    assert distance[0] == pytest.approx(0, abs=1e-6)
    assert np.all(np.diff(distance) > 0) and distance[-1] > 1e-3  # the kernel moves further as it learns
    assert alignment[-1] > alignment[0]  # towards the labels
