import textwrap
from pathlib import Path

import pytest

from deepmanifold.sweeps import SpecError, load_spec, parse_spec

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _spec(tmp_path, body):
    path = tmp_path / "spec.toml"
    path.write_text(textwrap.dedent(body))
    return path


def test_digits_example_expands_to_the_documented_grid():
    spec = load_spec(EXAMPLES / "digits.toml")
    assert len(spec.runs) == 3 * 2 * 2
    archs = {r.config["arch"] for r in spec.runs}
    assert archs == {"mlp", "cnn", "convmixer"}
    assert {r.config["optimizer"] for r in spec.runs} == {"sgd", "adam"}
    assert len({r.run_id for r in spec.runs}) == len(spec.runs)  # ids are distinct
    sgd = next(r for r in spec.runs if r.config["optimizer"] == "sgd")
    adam = next(r for r in spec.runs if r.config["optimizer"] == "adam")
    assert sgd.config["momentum"] == 0.9 and "momentum" not in adam.config
    assert sgd.config["lr"] != adam.config["lr"]  # per-optimiser settings reach the runs


def test_run_ids_are_stable_and_depend_on_the_config():
    raw = {"grid": {"arch": ["mlp"], "seed": [0, 1]}, "train": {"epochs": 3}}
    a = parse_spec(raw).runs
    b = parse_spec(raw).runs
    assert [r.run_id for r in a] == [r.run_id for r in b]
    c = parse_spec({**raw, "train": {"epochs": 4}}).runs
    assert {r.run_id for r in a}.isdisjoint(r.run_id for r in c)


@pytest.mark.parametrize("body, match", [
    ("[grid]\narch = ['mlp', 'resnet9000']\n", r"spec.toml:2: \[grid\] arch: unknown architecture 'resnet9000'; allowed: .*cnn.*mlp"),
    ("[grid]\noptimizer = ['rmsprop']\n", r"unknown optimizer 'rmsprop'; allowed: adam, sgd"),
    ("[train]\nepochs = 3\nlearning_rate = 0.1\n", r"spec.toml:3: \[train\] unknown key 'learning_rate'; allowed: .*lr"),
    ("[training]\nepochs = 3\n", r"unknown section \[training\]; allowed: sweep, data, train"),
    ("[train]\nepochs = 'ten'\n", r"\[train\] epochs must be a positive integer, got 'ten'"),
    ("[train]\nepochs = true\n", r"\[train\] epochs must be a positive integer"),
    ("[train]\nepochs = 0\n", r"epochs must be >= 1"),
    ("[grid]\nseed = 3\n", r"\[grid\] seed must be a non-empty list"),
    ("[train]\nschedule = 'step'\n", r"unknown schedule 'step'; allowed: constant, cosine"),
    ("[optimizer.adam]\nbeta = 0.9\n", r"\[optimizer.adam\] unknown key 'beta'"),
    ("[data]\ntest_fraction = 1.5\n", r"test_fraction must be in \(0, 1\)"),
    ("[grid\narch = 1\n", r"not valid TOML"),
])
def test_bad_specs_give_one_line_naming_the_key(tmp_path, body, match):
    with pytest.raises(SpecError, match=match) as info:
        load_spec(_spec(tmp_path, body))
    assert "\n" not in str(info.value)


def test_missing_spec_file(tmp_path):
    with pytest.raises(SpecError, match="cannot read spec"):
        load_spec(tmp_path / "nope.toml")
