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
    ("[grid]\noptimizer = ['rmsprop']\n", r"unknown optimizer 'rmsprop'; allowed: adam, adamw, nesterov, sgd"),
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


def test_zip_rows_and_per_optimiser_pairs_multiply_the_grid():
    raw = {
        "grid": {"arch": ["mlp", "cnn"], "optimizer": ["sgd", "adam"], "seed": [0, 1]},
        "zip": {"weight_decay": [0.0, 1e-3]},
        "optimizer": {"sgd": {"momentum": 0.9, "zip": {"batch_size": [32, 128], "lr": [0.05, 0.2]}},
                      "adam": {"lr": 1e-3}},
    }
    runs = parse_spec(raw).runs
    # sgd: 2 archs x 2 seeds x 2 wd x 2 pairs; adam: 2 x 2 x 2 x 1
    assert len(runs) == 16 + 8
    sgd_pairs = {(r.config["batch_size"], r.config["lr"]) for r in runs if r.config["optimizer"] == "sgd"}
    assert sgd_pairs == {(32, 0.05), (128, 0.2)}  # zipped, never crossed
    assert {r.config["lr"] for r in runs if r.config["optimizer"] == "adam"} == {1e-3}
    assert len({r.run_id for r in runs}) == len(runs)
    assert all("batch_size 32" in r.label or "batch_size 128" in r.label for r in runs
               if r.config["optimizer"] == "sgd")


def test_arch_aliases_width_axis_and_new_factors():
    raw = {
        "grid": {"arch": ["mlp", "wide"], "width": [16, 64], "augmentation": ["none", "simple"]},
        "arch": {"wide": {"model": "mlp", "depth": 3}},
        "train": {"init": "shuffled_labels", "init_epochs": 2, "warmup_epochs": 0.5},
    }
    runs = parse_spec(raw).runs
    assert len(runs) == 2 * 2 * 2
    wide = [r for r in runs if r.config.get("arch_alias") == "wide"]
    assert len(wide) == 4 and all(r.config["arch"] == "mlp" and r.config["arch_options"]["depth"] == 3
                                  for r in wide)
    assert {r.config["arch_options"]["width"] for r in runs} == {16, 64}
    assert all(r.config["init"] == "shuffled_labels" and r.config["warmup_epochs"] == 0.5 for r in runs)


@pytest.mark.parametrize("body, match", [
    ("[zip]\nlr = [0.1, 0.2]\nbatch_size = [32]\n", r"\[zip\] lists must have equal lengths"),
    ("[zip]\nmomentum = [0.9]\n", r"\[zip\] unknown key 'momentum'"),
    ("[train]\naugmentation = 'mixup'\n", r"unknown augmentation 'mixup'; allowed: none, simple"),
    ("[grid]\ninit = ['pretrained']\n", r"unknown init 'pretrained'"),
    ("[arch.big]\nmodel = 'transformer9'\n", r"spec.toml:2: \[arch.big\] model: unknown architecture 'transformer9'"),
    ("[grid]\nseed = [1, 1]\n", r"same configuration"),
    ("[data]\nprobe_seed = 'x'\n", r"\[data\] probe_seed must be an integer"),
    ("[data]\nextra = [1, 2]\n", r"\[data\] extra must be a string or a number"),
])
def test_bad_new_keys_give_one_line(tmp_path, body, match):
    with pytest.raises(SpecError, match=match) as info:
        load_spec(_spec(tmp_path, body))
    assert "\n" not in str(info.value)


def test_shipped_specs_parse_to_their_documented_sizes():
    assert len(load_spec(EXAMPLES / "fashion_mnist.toml").runs) == 5 * 3 * 3
    ref = load_spec(EXAMPLES / "cifar10_reference.toml")
    assert len(ref.runs) == 6 * (2 + 2 + 2) * 3 * 2 * 10
    wrn = {(r.config["arch_alias"], r.config["arch_options"]["depth"]) for r in ref.runs
           if r.config["arch"] == "wrn"}
    assert wrn == {("wrn10", 10), ("wrn16", 16)}
    adam_pairs = {(r.config["batch_size"], r.config["lr"]) for r in ref.runs if r.config["optimizer"] == "adam"}
    assert adam_pairs == {(200, 0.001), (500, 0.0025)}
