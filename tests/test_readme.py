"""The README's Python example must run as printed and do what it says."""

import re
from pathlib import Path

import numpy as np
import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


def _block(marker: str) -> str:
    """The README's python example that contains ``marker``."""
    blocks = [b for b in re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S) if marker in b]
    assert len(blocks) == 1, f"README has {len(blocks)} python examples with {marker!r}"
    return blocks[0]


def test_readme_geometry_example_runs():
    block = _block("from deepmanifold.geometry import")
    assert len(block.strip().splitlines()) <= 12, "the example stays short"
    ns: dict = {}
    exec(compile(block, "README.md", "exec"), ns)  # noqa: S102 - our own documentation
    P, y, D, emb = ns["P"], ns["y"], ns["D"], ns["emb"]
    # D holds the intensive Bhattacharyya distances, recomputed here for one pair.
    assert D.shape == (30, 30)
    assert D[0, -1] == pytest.approx(-np.log(np.sqrt(P[0] * P[-1]).sum(-1)).mean(), rel=1e-9)
    # Three axes whose cumulative explained stress grows and stays at most 1.
    assert emb.coords.shape == (30, 3)
    assert np.all(np.diff(emb.explained_stress) >= 0) and emb.explained_stress[-1] <= 1
    # The example's models move from uniform towards the labels: progress grows with them.
    lam = ns["progress"](P, y)
    assert lam[0] < 0.05 and lam[-1] > 0.4
    assert np.corrcoef(lam, np.arange(30))[0, 1] > 0.95


def test_readme_recorder_example_records_a_run(tmp_path, monkeypatch):
    import torch

    from deepmanifold.store import Store

    monkeypatch.chdir(tmp_path)
    torch.manual_seed(0)
    x_train, y_train = torch.randn(600, 4), torch.randint(0, 3, (600,))
    ns = {"x_train": x_train, "y_train": y_train, "x_test": torch.randn(50, 4), "y_test": torch.randint(0, 3, (50,)),
          "model": torch.nn.Linear(4, 3), "steps_per_epoch": 10, "total_steps": 20, "schedule": {1, 5, 20}}
    exec(compile(_block("deepmanifold.Recorder"), "README.md", "exec"), ns)  # noqa: S102
    store = Store("runs/mine")
    record = store.record("mlp-sgd-0")
    assert record.status == "complete" and record.n_checkpoints == 4
    np.testing.assert_array_equal(store.metrics("mlp-sgd-0")["step"], [0, 1, 5, 20])
    np.testing.assert_allclose(store.metrics("mlp-sgd-0")["epoch"], [0, 0.1, 0.5, 2.0])
    assert store.logp("mlp-sgd-0", "train").shape == (4, 500, 3)


def test_readme_feature_learning_example_runs():
    from deepmanifold.features import agop as agop_fn

    block = _block("from deepmanifold.features import")
    ns: dict = {}
    exec(compile(block, "README.md", "exec"), ns)  # noqa: S102 - our own documentation
    G, model, images = ns["G"], ns["model"], ns["images"]
    assert G.shape == (64, 64)
    np.testing.assert_allclose(G, G.T, atol=1e-12)
    assert np.linalg.eigvalsh(G).min() > -1e-9 * np.trace(G)  # an AGOP is positive semi-definite
    np.testing.assert_allclose(np.trace(G), np.trace(agop_fn(model, images, batch_size=7)), rtol=1e-9)
    assert len(ns["layers"]) == 3 and np.all(np.abs(ns["layers"]) <= 1)
    assert ns["accuracy"] > 0.9  # an RFM fitted on 1,000 digits classifies the other 797


def test_readme_layer_probes_example_runs():
    from deepmanifold.probes import information_plane

    block = _block("from deepmanifold.probes import")
    ns: dict = {}
    exec(compile(block, "README.md", "exec"), ns)  # noqa: S102 - our own documentation
    reps, y, hidden = ns["reps"], ns["y"], ns["hidden"]
    assert list(reps) == ["net.1", "net.4", "net.7", "net.10"] and hidden.shape == (500, 128)
    assert (hidden >= 0).all()  # taken after the ReLU
    cap = ns["capacity"]
    assert 0 < cap.capacity < 2 and cap.radius > 0 and cap.dimension > 0
    assert cap.capacity == pytest.approx((1 + cap.radius**-2) / cap.dimension, rel=0.5)  # roughly a ball
    plane = ns["plane"]
    assert plane.i_xt.shape == (4,) and (plane.i_ty <= plane.i_xt + 1e-9).all()
    single = information_plane(reps["net.4"], y[:500], method="kde")
    assert single.i_xt[0] == pytest.approx(plane.i_xt[1])
    assert 0 <= ns["collapse"].nc4 <= 1 and 1 <= ns["rank"] <= 128


def test_readme_theory_example_runs():
    block = _block("from deepmanifold.theory import")
    ns: dict = {}
    exec(compile(block, "README.md", "exec"), ns)  # noqa: S102 - our own documentation
    y = ns["y"]
    assert np.mean(ns["predicted"] == y[1000:]) > 0.9  # the NTK's kernel regression classifies digits
    assert ns["critical"] == pytest.approx(1.761, abs=1e-3)
    assert ns["scales"].chi_1 < 1 and np.isfinite(ns["scales"].xi_c)  # below the edge: ordered
    assert ns["alpha"] ** (-2 * 391) == pytest.approx(1.4812, abs=1e-3)
