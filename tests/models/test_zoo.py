"""Tests of the model zoo and its registry.

Parameter counts are checked against closed forms read off the architecture
descriptions in the docstrings; the MLP forward pass against a hand-written one.
"""

import numpy as np
import pytest
import torch
from torch import nn

from deepmanifold.models import (
    MLP,
    AllCNN,
    ConvMixer,
    available_models,
    build_model,
    count_parameters,
    model_knobs,
)

SMALL = {
    "mlp": dict(width=12, depth=2),
    "cnn": dict(width=4, depth=2),
    "convmixer": dict(width=8, depth=2, kernel_size=3, patch_size=2),
}
SHAPES = [(1, 8, 8), (1, 28, 28), (3, 32, 32), (2, 5, 11), (1, 1, 1)]


def test_registry_names():
    assert available_models() == ["cnn", "convmixer", "linear", "mlp", "vit", "wrn"]


def test_model_knobs_defaults():
    assert model_knobs("mlp") == {"width": 128, "depth": 2}
    assert model_knobs("cnn") == {"width": 32, "depth": 2}
    assert set(model_knobs("convmixer")) == {"width", "depth", "kernel_size", "patch_size"}


# --------------------------------------------------------------------------- shapes

@pytest.mark.parametrize("name", ["mlp", "cnn", "convmixer"])
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("n_classes", [10, 3])
def test_maps_inputs_to_logits(name, shape, n_classes):
    torch.manual_seed(0)
    model = build_model(name, shape, n_classes, **SMALL[name])
    x = torch.randn(3, *shape)
    model.train()
    out = model(x)
    assert out.shape == (3, n_classes) and out.dtype == torch.float32
    assert torch.isfinite(out).all()
    out.sum().backward()  # differentiable end to end
    assert all(p.grad is not None for p in model.parameters())
    model.eval()
    with torch.no_grad():
        single = model(x[:1])
        batch = model(x)
    assert single.shape == (1, n_classes)
    # Eval mode: each sample's logits do not depend on the rest of the batch.
    torch.testing.assert_close(single[0], batch[0], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", ["mlp", "cnn", "convmixer"])
def test_default_knobs_on_cifar_shape(name):
    torch.manual_seed(0)
    model = build_model(name, (3, 32, 32), 10)
    with torch.no_grad():
        assert model(torch.randn(2, 3, 32, 32)).shape == (2, 10)


# --------------------------------------------------------------------------- sizes

def _mlp_count(d_in, width, depth, C):
    # Linear(no bias) + BatchNorm1d(gamma, beta) per hidden layer, then Linear head with bias.
    return d_in * width + 2 * width + (depth - 1) * (width * width + 2 * width) + width * C + C


def _cnn_count(c, width, depth, C):
    total, c_in = 0, c
    for stage in range(depth):
        c_out = width * 2**stage
        total += 9 * c_in * c_out + 2 * c_out  # 3x3 conv (no bias) + BN
        total += 9 * c_out * c_out + 2 * c_out  # 3x3 conv (stride 2 or 1) + BN
        c_in = c_out
    return total + c_in * C + C  # 1x1 conv with bias


def _convmixer_count(c, p, width, depth, k, C):
    embed = c * width * p * p + width + 2 * width  # conv with bias + BN
    block = (width * k * k + width + 2 * width) + (width * width + width + 2 * width)
    return embed + depth * block + width * C + C


@pytest.mark.parametrize("width, depth", [(1, 1), (16, 1), (16, 3), (128, 2)])
@pytest.mark.parametrize("shape", [(1, 8, 8), (3, 32, 32)])
def test_mlp_parameter_count(width, depth, shape):
    model = build_model("mlp", shape, 10, width=width, depth=depth)
    expected = _mlp_count(int(np.prod(shape)), width, depth, 10)
    assert count_parameters(model) == expected
    assert count_parameters(model, trainable_only=False) == expected
    # Spot value: digits, defaults: 64*128 + 256 + 128*128 + 256 + 1290.
    if shape == (1, 8, 8) and (width, depth) == (128, 2):
        assert expected == 26378


@pytest.mark.parametrize("width, depth", [(4, 1), (8, 3)])
def test_cnn_parameter_count(width, depth):
    for shape in [(1, 8, 8), (3, 32, 32)]:
        model = build_model("cnn", shape, 7, width=width, depth=depth)
        assert count_parameters(model) == _cnn_count(shape[0], width, depth, 7)


@pytest.mark.parametrize(
    "shape, knobs, p",
    [
        ((1, 8, 8), dict(width=8, depth=2, kernel_size=3, patch_size=1), 1),
        ((3, 32, 32), dict(width=16, depth=1, kernel_size=5, patch_size=4), 4),
        ((1, 3, 6), dict(width=8, depth=1, kernel_size=3, patch_size=5), 3),  # clipped to min(H, W)
    ],
)
def test_convmixer_parameter_count(shape, knobs, p):
    model = build_model("convmixer", shape, 10, **knobs)
    expected = _convmixer_count(shape[0], p, knobs["width"], knobs["depth"], knobs["kernel_size"], 10)
    assert count_parameters(model) == expected


def test_count_parameters_trainable_only():
    model = build_model("mlp", (1, 8, 8), 10, width=16, depth=1)
    head = model.net[-1]
    for p in head.parameters():
        p.requires_grad_(False)
    assert count_parameters(model) == _mlp_count(64, 16, 1, 10) - (16 * 10 + 10)
    assert count_parameters(model, trainable_only=False) == _mlp_count(64, 16, 1, 10)


@pytest.mark.parametrize(
    "shape, depth, expected_hw",
    [
        ((1, 8, 8), 2, (2, 2)),  # 8 -> 4 -> 2
        ((1, 8, 8), 3, (2, 2)),  # 8 -> 4 -> 2 -> 2 (2 < 4: stride 1)
        ((3, 32, 32), 2, (8, 8)),
        ((1, 28, 28), 3, (4, 4)),  # 28 -> 14 -> 7 -> 4
        ((1, 8, 20), 2, (2, 5)),  # the smaller side decides the stride
        ((1, 3, 3), 2, (3, 3)),  # already below 4: never strided
    ],
)
def test_cnn_downsampling(shape, depth, expected_hw):
    model = build_model("cnn", shape, 10, width=2, depth=depth)
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    seen = {}

    def hook(module, inputs, output):
        seen["hw"] = tuple(output.shape[2:])

    convs[-1].register_forward_hook(hook)
    model.eval()
    with torch.no_grad():
        model(torch.zeros(1, *shape))
    assert seen["hw"] == expected_hw
    assert len(convs) == 2 * depth + 1


# --------------------------------------------------------------------------- numbers

def test_mlp_forward_matches_hand_computation():
    torch.manual_seed(3)
    model = build_model("mlp", (1, 4, 4), 5, width=6, depth=2)
    # Give the BatchNorm layers non-trivial statistics and affine parameters.
    with torch.no_grad():
        for bn in (m for m in model.modules() if isinstance(m, nn.BatchNorm1d)):
            bn.running_mean.uniform_(-1, 1)
            bn.running_var.uniform_(0.5, 2)
            bn.weight.uniform_(0.5, 1.5)
            bn.bias.uniform_(-0.5, 0.5)
    model.eval()
    x = torch.randn(7, 1, 4, 4)
    lin1, bn1, _, lin2, bn2, _, head = list(model.net)[1:]
    h = x.reshape(7, 16).double().numpy()
    for lin, bn in ((lin1, bn1), (lin2, bn2)):
        assert lin.bias is None
        W = lin.weight.detach().double().numpy()
        z = h @ W.T
        z = (z - bn.running_mean.double().numpy()) / np.sqrt(bn.running_var.double().numpy() + bn.eps)
        z = z * bn.weight.detach().double().numpy() + bn.bias.detach().double().numpy()
        h = np.maximum(z, 0.0)
    logits = h @ head.weight.detach().double().numpy().T + head.bias.detach().double().numpy()
    with torch.no_grad():
        out = model(x).double().numpy()
    np.testing.assert_allclose(out, logits, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", ["mlp", "cnn", "convmixer"])
def test_same_seed_same_weights(name):
    def weights(seed):
        torch.manual_seed(seed)
        return build_model(name, (1, 8, 8), 10, **SMALL[name]).state_dict()

    a, b, c = weights(11), weights(11), weights(12)
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert any(not torch.equal(a[k], c[k]) for k in a)


def test_registry_builds_the_documented_classes():
    assert isinstance(build_model("mlp", (1, 8, 8), 10), MLP)
    assert isinstance(build_model("cnn", (1, 8, 8), 10), AllCNN)
    assert isinstance(build_model("convmixer", (1, 8, 8), 10), ConvMixer)


# --------------------------------------------------------------------------- errors

def test_unknown_architecture():
    with pytest.raises(ValueError, match="resnet") as err:
        build_model("resnet", (1, 8, 8), 10)
    for allowed in ("mlp", "cnn", "convmixer"):
        assert allowed in str(err.value)
    with pytest.raises(ValueError, match="resnet"):
        model_knobs("resnet")


def test_unknown_knob():
    with pytest.raises(ValueError, match="kernel_size") as err:
        build_model("mlp", (1, 8, 8), 10, kernel_size=3)
    assert "width" in str(err.value) and "depth" in str(err.value)
    for name in available_models():  # input_shape and n_classes are not knobs
        assert not {"self", "input_shape", "n_classes"} & set(model_knobs(name))


@pytest.mark.parametrize("name", ["mlp", "cnn", "convmixer"])
@pytest.mark.parametrize("knob", ["width", "depth"])
@pytest.mark.parametrize("value", [0, -3, 2.5, True, "8", None])
def test_bad_width_depth(name, knob, value):
    with pytest.raises(ValueError, match=knob):
        build_model(name, (1, 8, 8), 10, **{knob: value})


@pytest.mark.parametrize("knob", ["kernel_size", "patch_size"])
@pytest.mark.parametrize("value", [0, -1, 1.0, False])
def test_bad_convmixer_knobs(knob, value):
    with pytest.raises(ValueError, match=knob):
        build_model("convmixer", (1, 8, 8), 10, **{knob: value})


@pytest.mark.parametrize("shape", [(8, 8), (1, 0, 8), (1, 8.0, 8), (1, 8, 8, 1), (-1, 8, 8)])
def test_bad_input_shape(shape):
    with pytest.raises(ValueError, match="input_shape"):
        build_model("mlp", shape, 10)


@pytest.mark.parametrize("n_classes", [1, 0, True, 2.0, "10"])
def test_bad_n_classes(n_classes):
    with pytest.raises(ValueError, match="n_classes"):
        build_model("cnn", (1, 8, 8), n_classes)
