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
    ("[train]\nepochs = 0\n", r"spec.toml:2: \[train\] epochs must be an integer >= 1, got 0"),
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
    ("[data]\nwhiten = 1\n", r"\[data\] whiten must be true or false"),
    ("[train]\nloss = 'mse'\n", r"spec.toml:2: \[train\] loss must be one of \('cross_entropy', 'squared'\)"),
])
def test_bad_new_keys_give_one_line(tmp_path, body, match):
    with pytest.raises(SpecError, match=match) as info:
        load_spec(_spec(tmp_path, body))
    assert "\n" not in str(info.value)


def test_whiten_and_loss_reach_the_run_config():
    runs = parse_spec({"data": {"whiten": True}, "train": {"loss": "squared"}, "grid": {"arch": ["linear"]}}).runs
    assert runs[0].config["data"]["whiten"] is True and runs[0].config["loss"] == "squared"
    plain = parse_spec({"grid": {"arch": ["linear"]}}).runs[0]
    assert "whiten" not in plain.config["data"] and "loss" not in plain.config  # ids of existing specs unchanged
    assert plain.run_id != runs[0].run_id


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.toml")), ids=lambda p: p.name)
def test_every_shipped_spec_parses(path):
    spec = load_spec(path)
    assert spec.runs and len({r.run_id for r in spec.runs}) == len(spec.runs)


def test_shipped_specs_parse_to_their_documented_sizes():
    assert len(load_spec(EXAMPLES / "fashion_mnist.toml").runs) == 5 * 3 * 3
    ref = load_spec(EXAMPLES / "cifar10_reference.toml")
    assert len(ref.runs) == 6 * (2 + 2 + 2) * 3 * 2 * 10
    wrn = {(r.config["arch_alias"], r.config["arch_options"]["depth"]) for r in ref.runs
           if r.config["arch"] == "wrn"}
    assert wrn == {("wrn10", 10), ("wrn16", 16)}
    adam_pairs = {(r.config["batch_size"], r.config["lr"]) for r in ref.runs if r.config["optimizer"] == "adam"}
    assert adam_pairs == {(200, 0.001), (500, 0.0025)}


# --------------------------------------------------------------------------- every run's config

@pytest.mark.parametrize("body, match", [
    # The value is reported where it is written, whichever table it comes from.
    ("[train]\nepochs = 3\nlr = -1\n", r"spec.toml:3: \[train\] lr must be a finite number > 0, got -1$"),
    ("[optimizer.sgd]\nlr = nan\nmomentum = 0.9\n", r"spec.toml:2: \[optimizer.sgd\] lr must be a finite number > 0, got nan$"),
    ("[grid]\noptimizer = ['adam', 'sgd']\n\n[optimizer.sgd]\nlr = 0.1\nmomentum = 1.5\n",
     r"spec.toml:6: \[optimizer.sgd\] momentum must be a number in \[0, 1\), got 1.5$"),
    ("[train]\nmomentum = 1.5\n", r"spec.toml:2: \[train\] momentum must be a number in \[0, 1\), got 1.5$"),
    ("[grid]\nseed = [0, 1]\nlr = [0.1, -1]\n", r"spec.toml:3: \[grid\] lr must be a finite number > 0, got -1$"),
    ("[zip]\nbatch_size = [32, 64]\nlr = [0.1, -0.5]\n", r"spec.toml:3: \[zip\] lr must be a finite number > 0, got -0.5$"),
    ("[grid]\noptimizer = ['adam']\n[optimizer.adam.zip]\nbatch_size = [32, 64]\nlr = [0.001, inf]\n",
     r"spec.toml:5: \[optimizer.adam.zip\] lr must be a finite number > 0, got inf$"),
    ("[grid]\nseed = [-1]\n", r"spec.toml:2: \[grid\] seed must be an integer >= 0, got -1$"),
    ("[grid]\nepochs = [2, 0]\n", r"spec.toml:2: \[grid\] epochs must be an integer >= 1, got 0$"),
    ("[train]\ncheckpoints = 1\n", r"spec.toml:2: \[train\] checkpoints must be an integer >= 2, got 1$"),
    ("[train]\nepochs = 2\nwarmup_epochs = 3\n", r"spec.toml:3: \[train\] warmup_epochs \(3\) exceeds epochs \(2\)$"),
    ("[grid]\noptimizer = ['nesterov']\n[optimizer.nesterov]\nmomentum = 0.0\n",
     r"spec.toml:4: \[optimizer.nesterov\] momentum must be a number in \(0, 1\) for optimizer 'nesterov'"),
])
def test_every_run_config_is_checked_by_training_rules_at_its_line(tmp_path, body, match):
    with pytest.raises(SpecError, match=match) as info:
        load_spec(_spec(tmp_path, body))
    assert "\n" not in str(info.value)


def test_a_value_overridden_for_every_run_is_not_an_error():
    # [optimizer.sgd] lr overrides [train] lr for the only optimiser; momentum goes with SGD only.
    raw = {"train": {"lr": -1, "momentum": 1.5}, "optimizer": {"sgd": {"lr": 0.1, "momentum": 0.9}},
           "grid": {"optimizer": ["sgd", "adam"]}, "zip": {"lr": [0.01, 0.02]}}
    runs = parse_spec(raw).runs
    assert {(r.config["optimizer"], r.config["lr"]) for r in runs} == {
        ("sgd", 0.01), ("sgd", 0.02), ("adam", 0.01), ("adam", 0.02)}


def test_sources_name_where_each_value_is_written():
    raw = {"train": {"lr": 0.1, "epochs": 2}, "grid": {"width": [8]}, "arch": {"mlp": {"depth": 3}},
           "data": {"probe_test": 40, "train_size": 300}, "optimizer": {"sgd": {"zip": {"lr": [0.2]}}}}
    (run,) = parse_spec(raw).runs
    assert run.sources["lr"] == ("optimizer.sgd.zip", "lr")
    assert run.sources["epochs"] == ("train", "epochs")
    assert run.sources["arch_options.width"] == ("grid", "width")
    assert run.sources["arch_options.depth"] == ("arch.mlp", "depth")
    assert run.sources["probes.test"] == ("data", "probe_test")
    assert run.sources["data.train_size"] == ("data", "train_size")
    assert "batch_size" not in run.sources and "arch" not in run.sources  # defaults


def test_parse_leaves_the_callers_dict_as_given():
    raw = {"grid": {"arch": ["wide"]}, "arch": {"wide": {"model": "mlp", "width": 8}}}
    first = parse_spec(raw).runs
    assert raw["arch"]["wide"] == {"model": "mlp", "width": 8}
    assert [r.run_id for r in parse_spec(raw).runs] == [r.run_id for r in first]


# --------------------------------------------------------------------------- the file itself

def test_a_spec_that_is_not_utf8_names_the_line_of_the_bad_byte(tmp_path):
    path = tmp_path / "spec.toml"
    path.write_bytes(b"[train]\nepochs = 3  # caf\xe9\n")  # Latin-1, not UTF-8
    with pytest.raises(SpecError, match=r"spec.toml:2: not UTF-8 text \(byte 0xe9 at offset 25\)") as info:
        load_spec(path)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("body", ["", "\n\n", "# a sweep, one day\n", "[grid]\n\n[train]\n# later\n",
                                  "[arch.mlp]\n"])
def test_a_spec_that_sets_nothing_is_refused(tmp_path, body):
    with pytest.raises(SpecError, match=r"spec.toml: the spec sets no key"):
        load_spec(_spec(tmp_path, body))


def test_one_key_is_enough_the_rest_are_defaults(tmp_path):
    spec = load_spec(_spec(tmp_path, "[sweep]\nname = 'one'\n"))
    assert len(spec.runs) == 1 and spec.store == Path("runs") / "one"


def test_store_in_the_home_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    spec = load_spec(_spec(tmp_path, "[sweep]\nstore = '~/sweeps/a'\n"))
    assert spec.store == tmp_path / "home" / "sweeps" / "a"
