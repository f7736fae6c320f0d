"""examples/trainability.py reads a store of mean-field MLPs and sets each run against 6 xi_c."""

import runpy
import sys
import textwrap
from pathlib import Path

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
