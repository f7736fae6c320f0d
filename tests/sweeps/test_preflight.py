"""Tests of the pre-training checks: what the data and the models decide, at the spec's line."""

import importlib
import textwrap
from pathlib import Path

import pytest

from deepmanifold.data import load_dataset
from deepmanifold.models import build_model, count_parameters
from deepmanifold.sweeps import SpecError, load_spec, preflight, run_sweep
from deepmanifold.sweeps.preflight import BYTES_PER_PARAMETER, available_memory, training_bytes

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
# The module (the package exports the function under the same name).
preflight_module = importlib.import_module("deepmanifold.sweeps.preflight")

# Small probes, so that only the key under test is wrong.
DATA = "[data]\nname = 'digits'\nprobe_train = 100\nprobe_test = 100\n"


def _spec(tmp_path, body):
    path = tmp_path / "spec.toml"
    path.write_text(textwrap.dedent(body))
    return load_spec(path)


def _refused(tmp_path, body, match):
    """The spec passes the parser, and preflight refuses it in one line matching ``match``."""
    spec = _spec(tmp_path, body)
    with pytest.raises(SpecError, match=match) as info:
        preflight(spec)
    assert "\n" not in str(info.value)
    return str(info.value)


def test_shipped_digits_spec_passes():
    preflight(load_spec(EXAMPLES / "digits.toml"))


# --------------------------------------------------------------------------- batches and data

def test_batch_larger_than_the_training_set_is_refused_before_the_store_exists(tmp_path):
    spec = _spec(tmp_path, DATA + "train_size = 100\n[train]\nepochs = 1\nbatch_size = 128\n")
    store = tmp_path / "store"
    with pytest.raises(SpecError, match=r"spec.toml:8: \[train\] batch_size 128 exceeds the 100 training samples"):
        run_sweep(spec, store=store, workers=1, device="cpu")
    assert not store.exists()


def test_batch_size_of_the_grid_is_named_at_its_grid_line(tmp_path):
    _refused(tmp_path, DATA + "[grid]\nseed = [0]\nbatch_size = [32, 2000]\n",
             r"spec.toml:7: \[grid\] batch_size 2000 exceeds the 1347 training samples")


def test_batch_size_of_an_optimizer_zip_is_named_at_its_line(tmp_path):
    _refused(tmp_path, DATA + "[grid]\noptimizer = ['adam']\n[optimizer.adam.zip]\nlr = [0.001, 0.002]\n"
             "batch_size = [64, 4096]\n",
             r"spec.toml:9: \[optimizer.adam.zip\] batch_size 4096 exceeds the 1347 training samples")


def test_train_size_smaller_than_the_number_of_classes(tmp_path):
    _refused(tmp_path, "[data]\ntrain_size = 5\nprobe_train = 5\nprobe_test = 100\n[train]\nbatch_size = 5\n",
             r"spec.toml:2: \[data\] train_size must be at least the 10 classes of digits .*got 5$")
    # The smallest stratified sample that holds every class is accepted.
    assert len(load_dataset("digits", train_size=10).y_train.unique()) == 10
    with pytest.raises(ValueError, match="at least the 5 classes of gaussian_teacher"):
        load_dataset("gaussian_teacher", n_train=50, n_test=10, dim=4, train_size=4)


def test_augmentation_the_data_does_not_allow(tmp_path):
    _refused(tmp_path, "[data]\nname = 'gaussian_teacher'\nn_train = 200\nn_test = 100\ndim = 8\n"
             "probe_train = 50\nprobe_test = 50\n[grid]\naugmentation = ['none', 'simple']\n",
             r"spec.toml:9: \[grid\] augmentation 'simple' requested but dataset 'gaussian_teacher' allows no")


def test_unknown_loader_option_is_named_at_its_line(tmp_path):
    _refused(tmp_path, DATA + "colour = 'red'\n",
             r"spec.toml:5: \[data\] unknown option\(s\) \['colour'\] for dataset 'digits'")


# --------------------------------------------------------------------------- probe sets

def test_probe_larger_than_its_split_is_refused_not_shrunk(tmp_path):
    _refused(tmp_path, "[data]\nprobe_train = 100\nprobe_test = 451\n",
             r"spec.toml:3: \[data\] probe_test must be at most the 450 samples of the test split of digits, "
             r"got 451$")
    _refused(tmp_path, "[data]\ntrain_size = 200\nprobe_train = 201\nprobe_test = 100\n",
             r"spec.toml:3: \[data\] probe_train must be at most the 200 samples of the train split")
    # The whole split is allowed.
    preflight(_spec(tmp_path, "[data]\ntrain_size = 200\nprobe_train = 200\nprobe_test = 450\n"))


def test_a_default_probe_size_is_a_cap_and_the_size_used_is_recorded(tmp_path):
    # digits' test split has 450 samples; probe_test defaults to 500: the whole split is used.
    spec = _spec(tmp_path, "[data]\nprobe_train = 100\n[train]\nepochs = 1\ncheckpoints = 2\n")
    preflight(spec)
    from deepmanifold.store import Store
    from deepmanifold.sweeps import run_sweep

    result = run_sweep(spec, store=tmp_path / "store", workers=1)
    assert result.count("complete") == 1
    run_id = spec.runs[0].run_id
    store = Store(tmp_path / "store")
    assert store.record(run_id).config["probes"] == {"train": 100, "test": 450, "seed": 0}
    assert store.logp(run_id, "test").shape[1] == 450 and store.logp(run_id, "train").shape[1] == 100


# --------------------------------------------------------------------------- models

def test_unknown_knob_is_named_at_its_line(tmp_path):
    _refused(tmp_path, DATA + "[arch.mlp]\nwidth = 8\nheight = 3\n",
             r"spec.toml:7: \[arch.mlp\] unknown knob\(s\) 'height' for architecture 'mlp'")


def test_a_model_too_large_for_memory_is_refused_with_its_parameter_count(tmp_path):
    # 64 * 10**6 + 10**12 + 10**7 weights (and biases): about 16 TB of training state,
    # counted on the meta device, never allocated.
    spec = _spec(tmp_path, DATA + "[arch.mlp]\ndepth = 2\nwidth = 1000000\n")
    store = tmp_path / "store"
    with pytest.raises(SpecError) as info:
        run_sweep(spec, store=store, workers=1, device="cpu")
    message = str(info.value)
    assert message.startswith(f"{tmp_path / 'spec.toml'}:5: [arch.mlp] mlp (depth=2, width=1000000) has "
                              "1,000,078,000,010 parameters")
    assert "more than the" in message and "of memory available" in message
    assert not store.exists()


def test_the_memory_rule_says_yes_at_the_bound_and_no_below_it(tmp_path, monkeypatch):
    spec = _spec(tmp_path, DATA + "[grid]\nwidth = [16, 64]\n")
    ds = load_dataset("digits")
    n = count_parameters(build_model("mlp", ds.input_shape, ds.n_classes, width=64), trainable_only=False)
    assert training_bytes(n) == n * BYTES_PER_PARAMETER == n * 16
    monkeypatch.setattr(preflight_module, "available_memory", lambda: training_bytes(n))
    preflight(spec)
    monkeypatch.setattr(preflight_module, "available_memory", lambda: training_bytes(n) - 1)
    with pytest.raises(SpecError, match=rf"spec.toml:6: \[grid\] mlp \(width=64\) has {n:,} parameters"):
        preflight(spec)
    # A system that does not say how much memory it has: no refusal.
    monkeypatch.setattr(preflight_module, "available_memory", lambda: None)
    preflight(spec)


def test_available_memory_is_at_most_the_physical_memory():
    import os

    physical = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    assert 0 < available_memory() <= physical


# --------------------------------------------------------------------------- measurements

def test_a_layer_the_model_lacks_is_named_at_its_line_before_the_store_exists(tmp_path):
    spec = _spec(tmp_path, DATA + "[train]\nepochs = 1\nmeasurements = ['collapse']\n"
                 "[train.measurement_options.collapse]\nsamples_per_class = 5\nlayers = ['net.1', 'net.99']\n")
    store = tmp_path / "store"
    with pytest.raises(SpecError, match=r"spec.toml:10: \[train.measurement_options.collapse\] measurement "
                                        r"'collapse': unknown layer 'net.99'; the default layers of MLP are: 'net.1'"):
        run_sweep(spec, store=store, workers=1, device="cpu")
    assert not store.exists()


def test_named_layers_the_model_has_pass(tmp_path):
    preflight(_spec(tmp_path, DATA + "[train]\nepochs = 1\nmeasurements = ['capacity']\n"
                    "[train.measurement_options.capacity]\nlayers = ['net.3', 'net.7']\n"))
