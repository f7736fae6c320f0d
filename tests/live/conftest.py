"""A small reference store (two digits MLPs) shared by the live tests, and a store's file hashes."""

from __future__ import annotations

import hashlib
import textwrap
from pathlib import Path

import pytest
import torch

from deepmanifold.data import load_digits, make_probes
from deepmanifold.sweeps import load_spec, run_sweep

SPEC = """
[data]
name = "digits"
probe_train = 100
probe_test = 100
[train]
epochs = 2
checkpoints = 6
[grid]
arch = ["mlp"]
seed = [0, 1]
[arch.mlp]
width = 16
"""


@pytest.fixture(scope="session")
def reference_store(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("reference")
    (folder / "spec.toml").write_text(textwrap.dedent(SPEC))
    run_sweep(load_spec(folder / "spec.toml"), store=folder / "store", workers=1, device="cpu")
    return folder / "store"


@pytest.fixture(scope="session")
def digits():
    """The dataset and probe sets the reference was recorded on (the spec's defaults)."""
    ds = load_digits(seed=0)
    return ds, make_probes(ds, n_train=100, n_test=100, seed=0)


def tree_hashes(root: Path) -> dict[str, str]:
    """Every file under ``root`` with the hash of its bytes: equal before and after = untouched."""
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def sgd_steps(model, ds, steps: int, generator, lr: float = 0.1, batch: int = 64) -> None:
    """``steps`` plain SGD updates of ``model`` on random digits minibatches."""
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    for _ in range(steps):
        idx = torch.randint(0, len(ds.y_train), (batch,), generator=generator)
        loss = torch.nn.functional.cross_entropy(model(ds.x_train[idx]), ds.y_train[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
