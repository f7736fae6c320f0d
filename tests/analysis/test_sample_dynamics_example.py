"""examples/sample_dynamics.py on a store trained with flipped labels."""

import runpy
import sys
import textwrap
from pathlib import Path

from deepmanifold.sweeps import load_spec, run_sweep

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "sample_dynamics.py"


def test_the_example_ranks_flips_and_compares_orders(tmp_path, monkeypatch, capsys):
    spec = tmp_path / "spec.toml"
    spec.write_text(textwrap.dedent("""
        [data]
        name = "digits"
        label_noise = 0.1
        probe_train = 400
        probe_test = 100
        [train]
        epochs = 3
        checkpoints = 8
        [grid]
        arch = ["mlp"]
        seed = [0, 1]
        [arch.mlp]
        width = 32
    """))
    run_sweep(load_spec(spec), store=tmp_path / "store", workers=1, device="cpu")
    monkeypatch.setattr(sys, "argv", ["sample_dynamics.py", str(tmp_path / "store")])
    runpy.run_path(str(EXAMPLE), run_name="__main__")
    out = capsys.readouterr().out
    assert "finding the flipped labels: 2 runs" in out
    row = next(line for line in out.splitlines() if line.startswith("| low confidence"))
    assert float(row.split("|")[2].split()[0]) > 0.8
    assert "| seed | 1 |" in out
