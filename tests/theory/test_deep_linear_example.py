"""examples/deep_linear_half_times.py reads a store and holds its linear runs against the closed form."""

import runpy
import sys
import textwrap
from pathlib import Path

from deepmanifold.sweeps import load_spec, run_sweep

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def test_the_example_compares_linear_runs_and_skips_the_others(tmp_path, monkeypatch, capsys):
    spec = tmp_path / "spec.toml"
    spec.write_text(textwrap.dedent("""
        [data]
        name = "digits"
        whiten = true
        probe_train = 300
        probe_test = 100
        [train]
        epochs = 220
        batch_size = 1347
        checkpoints = 40
        schedule = "constant"
        loss = "squared"
        [grid]
        arch = ["linear", "mlp"]
        [arch.linear]
        width = 256
        depth = 1
        init_scale = 0.01
        [arch.mlp]
        width = 16
        depth = 1
        [optimizer.sgd]
        lr = 0.1
        momentum = 0.0
    """))
    run_sweep(load_spec(spec), store=tmp_path / "store", workers=1, device="cpu")
    monkeypatch.setattr(sys, "argv", ["deep_linear_half_times.py", str(tmp_path / "store")])
    runpy.run_path(str(EXAMPLES / "deep_linear_half_times.py"), run_name="__main__")
    out = capsys.readouterr().out
    assert "skipped (architecture 'mlp', not 'linear')" in out
    # lr = 0.1 is a coarse step (η s ≈ 0.03): the half-times still agree within a few per cent.
    worst = float(out.split("every mode's half-time within ")[1].split("%")[0])
    assert 0 < worst < 3.0
    assert "| 9 |" in out  # nine modes: ten classes less the one centring removes


def test_the_shipped_spec_is_the_closed_form_setting():
    run = {r.config["arch"]: r for r in load_spec(EXAMPLES / "digits_deep_linear.toml").runs}["linear"]
    cfg = run.config
    assert cfg["data"]["whiten"] and cfg["loss"] == "squared" and cfg["momentum"] == 0.0
    assert cfg["batch_size"] == 1347 and cfg["schedule"] == "constant"  # full batch: 1,347 digits train
    assert cfg["arch_options"] == {"width": 512, "depth": 1, "init_scale": 0.01}
