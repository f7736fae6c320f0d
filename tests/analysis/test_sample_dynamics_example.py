"""examples/sample_dynamics.py on a store trained with flipped labels."""

import runpy
import sys
import textwrap
from pathlib import Path

from deepmanifold.sweeps import load_spec, run_sweep

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "sample_dynamics.py"


def noisy_digits_store(tmp_path, *, probe_train: int, epochs: int, checkpoints: int, seeds: str, width: int):
    """A store of digits MLPs trained with 10 % of the labels flipped."""
    spec = tmp_path / "spec.toml"
    spec.write_text(textwrap.dedent(f"""
        [data]
        name = "digits"
        label_noise = 0.1
        probe_train = {probe_train}
        probe_test = 100
        [train]
        epochs = {epochs}
        checkpoints = {checkpoints}
        [grid]
        arch = ["mlp"]
        seed = {seeds}
        [arch.mlp]
        width = {width}
    """))
    run_sweep(load_spec(spec), store=tmp_path / "store", workers=1, device="cpu")
    return tmp_path / "store"


def test_the_example_ranks_flips_and_compares_orders(tmp_path, monkeypatch, capsys):
    noisy_digits_store(tmp_path, probe_train=400, epochs=3, checkpoints=8, seeds="[0, 1]", width=32)
    monkeypatch.setattr(sys, "argv", ["sample_dynamics.py", str(tmp_path / "store")])
    runpy.run_path(str(EXAMPLE), run_name="__main__")
    out = capsys.readouterr().out
    assert "finding the flipped labels: 2 runs" in out
    row = next(line for line in out.splitlines() if line.startswith("| low confidence"))
    assert float(row.split("|")[2].split()[0]) > 0.8
    assert "| seed | 1 |" in out


def test_the_report_draws_the_data_map_with_images(tmp_path):
    """`deepmanifold report` of a store trained with flipped labels: the data map, crosses for the flips,
    and the train probe's images packed for the page."""
    import base64
    import json
    import re

    from typer.testing import CliRunner

    from deepmanifold.cli import app

    noisy_digits_store(tmp_path, probe_train=200, epochs=1, checkpoints=4, seeds="[0]", width=16)
    result = CliRunner().invoke(app, ["report", str(tmp_path / "store")])
    assert result.exit_code == 0, result.output
    page = (tmp_path / "store" / "report.html").read_text()
    assert 'id="dm-datamap-section"' in page and "Crosses: the" in page
    figures = json.loads(re.search(r'id="dm-figures">(.*?)</script>', page, re.S).group(1))
    (datamap,) = [f for f in figures if f["id"] == "dm-datamap"]
    (trace,) = datamap["figure"]["data"]
    assert len(trace["x"]) == 200 and trace["marker"]["symbol"].count("x") > 5
    images = json.loads(re.search(r'id="dm-sample-images">(.*?)</script>', page, re.S).group(1))
    assert images["shape"] == [200, 8, 8, 1] and len(base64.b64decode(images["pixels"])) == 200 * 64
