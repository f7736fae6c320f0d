"""The README's Python example must run as printed and do what it says."""

import re
from pathlib import Path

import numpy as np

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_geometry_example_runs():
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    assert blocks, "README has no python example"
    ns: dict = {}
    exec(compile(blocks[0], "README.md", "exec"), ns)  # noqa: S102 - our own documentation
    assert len(blocks[0].strip().splitlines()) <= 12
    assert ns["D"].shape == (30, 30) and ns["emb"].coords.shape == (30, 3)
    lam = ns["progress"](ns["P"], ns["y"])
    # the example's models move from near-uniform towards the labels
    assert lam[-1] > lam[0] and np.all((lam >= 0) & (lam <= 1))
