"""The README's Python example must run as printed and do what it says."""

import re
from pathlib import Path

import numpy as np
import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_geometry_example_runs():
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    assert blocks, "README has no python example"
    assert len(blocks[0].strip().splitlines()) <= 12, "the first example stays short"
    ns: dict = {}
    exec(compile(blocks[0], "README.md", "exec"), ns)  # noqa: S102 - our own documentation
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
