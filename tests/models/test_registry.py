"""Tests of the model registry: names, knobs, building, counting and describing models."""

import pytest
import torch

from deepmanifold.models import (
    MLP,
    AllCNN,
    ConvMixer,
    DeepLinear,
    ViT,
    WideResNet,
    available_models,
    build_model,
    count_parameters,
    describe_models,
    model_knobs,
)

CLASSES = {
    "mlp": MLP,
    "cnn": AllCNN,
    "convmixer": ConvMixer,
    "wrn": WideResNet,
    "vit": ViT,
    "linear": DeepLinear,
}
SMALL = {
    "mlp": dict(width=8, depth=2),
    "cnn": dict(width=4, depth=2),
    "convmixer": dict(width=8, depth=2, kernel_size=3, patch_size=2),
    "wrn": dict(width=1, depth=10, base=4),
    "vit": dict(width=8, depth=2, heads=2, patch_size=4, mlp_ratio=2.0),
    "linear": dict(width=8, depth=3),
}


def test_available_models_sorted():
    assert available_models() == ["cnn", "convmixer", "linear", "mf_cnn", "mf_mlp", "mlp", "vit", "wrn"]


def test_model_knobs_are_the_constructor_defaults():
    assert model_knobs("mlp") == {"width": 128, "depth": 2, "activation": "relu"}
    assert model_knobs("cnn") == {"width": 32, "depth": 2}
    assert model_knobs("convmixer") == {"width": 64, "depth": 4, "kernel_size": 5, "patch_size": 1}
    assert model_knobs("wrn") == {"width": 4, "depth": 10, "base": 16}
    assert model_knobs("vit") == {
        "width": 64, "depth": 4, "heads": 4, "patch_size": 4, "mlp_ratio": 2.0
    }
    assert model_knobs("linear") == {"width": 128, "depth": 2, "init_scale": 1.0}
    for name in available_models():  # input_shape and n_classes are not knobs
        assert not {"self", "input_shape", "n_classes"} & set(model_knobs(name))


@pytest.mark.parametrize("name", sorted(CLASSES))
def test_build_model_builds_the_documented_class_with_the_knobs(name):
    model = build_model(name, (1, 8, 8), 10, **SMALL[name])
    assert type(model) is CLASSES[name]
    direct = CLASSES[name]((1, 8, 8), 10, **SMALL[name])
    assert count_parameters(model) == count_parameters(direct)


@pytest.mark.parametrize("name", sorted(CLASSES))
def test_same_seed_same_weights(name):
    def weights(seed):
        torch.manual_seed(seed)
        return build_model(name, (1, 8, 8), 10, **SMALL[name]).state_dict()

    a, b, c = weights(5), weights(5), weights(6)
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert any(not torch.equal(a[k], c[k]) for k in a)


def test_count_parameters_trainable_only():
    model = build_model("mlp", (1, 8, 8), 10, width=16, depth=1)
    total = count_parameters(model, trainable_only=False)
    head = model.net[-1]
    for p in head.parameters():
        p.requires_grad_(False)
    assert count_parameters(model) == total - (16 * 10 + 10)
    assert count_parameters(model, trainable_only=False) == total


# --------------------------------------------------------------------------- describe

def test_describe_models():
    state = torch.random.get_rng_state()
    rows = describe_models((1, 8, 8), 10)
    assert torch.equal(torch.random.get_rng_state(), state)  # global RNG untouched
    assert [r["name"] for r in rows] == available_models()
    for row in rows:
        assert set(row) == {"name", "knobs", "parameters"}
        assert row["knobs"] == model_knobs(row["name"])
        assert row["parameters"] == count_parameters(build_model(row["name"], (1, 8, 8), 10))
    # The default MLP on 8x8 digits: 64*128 + 2*128 (BN) + 128*128 + 2*128 + 128*10 + 10.
    assert {r["name"]: r["parameters"] for r in rows}["mlp"] == 26_378
    with pytest.raises(ValueError, match="n_classes"):
        describe_models((1, 8, 8), 1)


# --------------------------------------------------------------------------- errors

def test_unknown_architecture():
    with pytest.raises(ValueError, match="resnet") as err:
        build_model("resnet", (1, 8, 8), 10)
    for allowed in available_models():
        assert allowed in str(err.value)
    with pytest.raises(ValueError, match="resnet"):
        model_knobs("resnet")


@pytest.mark.parametrize("name", sorted(CLASSES))
def test_unknown_knob_names_the_allowed_ones(name):
    with pytest.raises(ValueError, match="dropout") as err:
        build_model(name, (1, 8, 8), 10, dropout=0.1)
    for knob in model_knobs(name):
        assert knob in str(err.value)


@pytest.mark.parametrize("shape", [(8, 8), (1, 0, 8), (1, 8.0, 8), (1, 8, 8, 1), (-1, 8, 8)])
def test_bad_input_shape(shape):
    with pytest.raises(ValueError, match="input_shape"):
        build_model("mlp", shape, 10)


@pytest.mark.parametrize("n_classes", [1, 0, True, 2.0, "10"])
def test_bad_n_classes(n_classes):
    with pytest.raises(ValueError, match="n_classes"):
        build_model("cnn", (1, 8, 8), n_classes)


def test_linear_init_scale_scales_every_layer():
    torch.manual_seed(0)
    base = DeepLinear((1, 8, 8), 10, width=32, depth=2)
    torch.manual_seed(0)
    small = DeepLinear((1, 8, 8), 10, width=32, depth=2, init_scale=0.01)
    for a, b in zip(base.parameters(), small.parameters()):
        torch.testing.assert_close(b, 0.01 * a)
    with pytest.raises(ValueError, match="init_scale must be a finite number > 0, got 0"):
        DeepLinear((1, 8, 8), 10, init_scale=0)
