"""examples/trainability.py reads a store of mean-field MLPs and sets each run against 6 xi_c."""

import runpy
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from deepmanifold.sweeps import load_spec, run_sweep
from deepmanifold.theory import depth_scales

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "trainability.py"


def test_the_example_tabulates_runs_against_the_depth_scale(tmp_path, monkeypatch, capsys):
    spec = tmp_path / "spec.toml"
    spec.write_text(textwrap.dedent("""
        [data]
        name = "digits"
        probe_train = 100
        probe_test = 100
        [train]
        epochs = 1
        checkpoints = 3
        [grid]
        arch = ["ordered", "critical"]
        depth = [2]
        [arch.ordered]
        model = "mf_mlp"
        width = 32
        sigma_w2 = 1.0
        [arch.critical]
        model = "mf_mlp"
        width = 32
        sigma_w2 = 1.76
    """))
    run_sweep(load_spec(spec), store=tmp_path / "store", workers=1, device="cpu")
    monkeypatch.setattr(sys, "argv", ["trainability.py", str(tmp_path / "store"), "--out", str(tmp_path / "p.html")])
    runpy.run_path(str(EXAMPLE), run_name="__main__")
    out = capsys.readouterr().out
    xi = depth_scales("tanh", 1.0, 0.05).xi_c
    assert f"| 1 | 2 | {xi:.3g} | {6 * xi:.3g} | trains |" in out
    assert "agree on" in out and "of 2 runs" in out
    assert "Plotly.newPlot" in (tmp_path / "p.html").read_text()


def test_the_mode_order_example_reads_a_store(tmp_path, monkeypatch, capsys):
    spec = tmp_path / "spec.toml"
    spec.write_text(textwrap.dedent("""
        [data]
        name = "digits"
        probe_train = 200
        probe_test = 100
        [train]
        epochs = 2
        checkpoints = 6
        [grid]
        arch = ["mlp"]
        [arch.mlp]
        width = 16
    """))
    run_sweep(load_spec(spec), store=tmp_path / "store", workers=1, device="cpu")
    example = EXAMPLE.parent / "mode_order.py"
    monkeypatch.setattr(sys, "argv", ["mode_order.py", str(tmp_path / "store"), "--modes", "5"])
    namespace = runpy.run_path(str(example), run_name="__main__")
    out = capsys.readouterr().out
    assert "| mlp | 1 |" in out
    # The whitening makes the inputs' covariance the identity, as the closed forms assume.
    X = namespace["whiten"](np.random.default_rng(0).standard_normal((300, 6)) @ np.diag([1, 2, 3, 4, 5, 6.0]))
    np.testing.assert_allclose(X.T @ X / 300, np.eye(6), atol=1e-10)
    u = np.array([[0.0, 0.0], [0.3, 0.1], [0.6, 0.3], [1.0, 1.0]])
    np.testing.assert_array_equal(namespace["mode_half_times"](np.arange(4.0), u), [2.0, 3.0])
