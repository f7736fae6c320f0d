"""Tests of the extended model zoo: wide ResNet, ViT, deep linear network, describe_models.

Parameter counts are checked against closed forms written out here from the
architecture definitions (not from the modules); the ViT and the deep linear network
against exact identities of their maps.
"""

import numpy as np
import pytest
import torch
from torch import nn

from deepmanifold.models import (
    DeepLinear,
    ViT,
    WideResNet,
    available_models,
    build_model,
    count_parameters,
    describe_models,
    model_knobs,
)

SMALL = {
    "mlp": dict(width=8, depth=2),
    "cnn": dict(width=4, depth=2),
    "convmixer": dict(width=8, depth=2, kernel_size=3, patch_size=2),
    "wrn": dict(width=1, depth=10, base=4),
    "vit": dict(width=8, depth=2, heads=2, patch_size=4, mlp_ratio=2.0),
    "linear": dict(width=8, depth=3),
}
NEW = ["wrn", "vit", "linear"]
# digits, MNIST-like, CIFAR-10, the synthetic vector dataset stored as (N, 1, 1, 200)
DATASET_SHAPES = [(1, 8, 8), (1, 28, 28), (3, 32, 32), (1, 1, 200)]


def test_registry_has_the_new_architectures():
    assert {"mlp", "cnn", "convmixer", "wrn", "vit", "linear"} == set(available_models())
    assert available_models() == sorted(available_models())
    assert model_knobs("wrn") == {"width": 4, "depth": 10, "base": 16}
    assert model_knobs("vit") == {
        "width": 64, "depth": 4, "heads": 4, "patch_size": 4, "mlp_ratio": 2.0
    }
    assert model_knobs("linear") == {"width": 128, "depth": 2}
    assert isinstance(build_model("wrn", (1, 8, 8), 10, **SMALL["wrn"]), WideResNet)
    assert isinstance(build_model("vit", (1, 8, 8), 10, **SMALL["vit"]), ViT)
    assert isinstance(build_model("linear", (1, 8, 8), 10), DeepLinear)


# --------------------------------------------------------------------------- shapes

@pytest.mark.parametrize("name", sorted(SMALL))
@pytest.mark.parametrize("shape", DATASET_SHAPES)
def test_forward_backward_on_every_dataset_shape(name, shape):
    n_classes = 10 if shape != (1, 1, 200) else 4
    torch.manual_seed(0)
    model = build_model(name, shape, n_classes, **SMALL[name])
    x = torch.randn(3, *shape)
    model.train()
    out = model(x)
    assert out.shape == (3, n_classes) and out.dtype == torch.float32
    assert torch.isfinite(out).all()
    out.square().sum().backward()
    for p in model.parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all()
    model.eval()
    with torch.no_grad():
        single, batch = model(x[:1]), model(x)
    assert single.shape == (1, n_classes)
    torch.testing.assert_close(single[0], batch[0], rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name", NEW)
@pytest.mark.parametrize("shape", [(2, 5, 11), (1, 1, 1), (1, 3, 2)])
def test_odd_shapes_and_class_counts(name, shape):
    torch.manual_seed(0)
    model = build_model(name, shape, 2, **SMALL[name]).eval()
    with torch.no_grad():
        assert model(torch.randn(2, *shape)).shape == (2, 2)


# --------------------------------------------------------------------------- sizes

def _linear_count(d_in, width, depth, C):
    # depth bias-free hidden layers, then a bias-free head
    return d_in * width + (depth - 1) * width * width + width * C


@pytest.mark.parametrize("width, depth", [(1, 1), (16, 1), (16, 4), (128, 2)])
@pytest.mark.parametrize("shape", [(1, 8, 8), (3, 32, 32), (1, 1, 200)])
def test_linear_parameter_count(width, depth, shape):
    model = build_model("linear", shape, 10, width=width, depth=depth)
    assert count_parameters(model) == _linear_count(int(np.prod(shape)), width, depth, 10)
    assert not [m for m in model.modules() if isinstance(m, nn.Linear) and m.bias is not None]


def _wrn_count(c_in, depth, k, base, C):
    n = (depth - 4) // 6
    total = 9 * c_in * base  # stem 3x3 conv, no bias
    c = base
    for group in range(3):
        c_out = base * k * 2**group
        for _ in range(n):
            total += 2 * c  # BN before conv1 (gamma, beta)
            total += 9 * c * c_out  # conv1 3x3
            total += 2 * c_out  # BN before conv2
            total += 9 * c_out * c_out  # conv2 3x3
            if c != c_out:
                total += c * c_out  # 1x1 projection shortcut
            c = c_out
    return total + 2 * c + c * C + C  # final BN, linear head with bias


def test_wrn_10_4_parameter_count_on_cifar():
    model = build_model("wrn", (3, 32, 32), 10, depth=10, width=4)
    # By hand, WRN-10-4, base 16, CIFAR-10 (groups 64, 128, 256 channels, one block each):
    stem = 9 * 3 * 16
    g1 = 2 * 16 + 9 * 16 * 64 + 2 * 64 + 9 * 64 * 64 + 16 * 64
    g2 = 2 * 64 + 9 * 64 * 128 + 2 * 128 + 9 * 128 * 128 + 64 * 128
    g3 = 2 * 128 + 9 * 128 * 256 + 2 * 256 + 9 * 256 * 256 + 128 * 256
    head = 2 * 256 + 256 * 10 + 10
    assert stem + g1 + g2 + g3 + head == 1_198_810
    assert count_parameters(model) == 1_198_810 == _wrn_count(3, 10, 4, 16, 10)


@pytest.mark.parametrize(
    "shape, depth, k, base",
    [((3, 32, 32), 16, 4, 16), ((1, 8, 8), 10, 4, 16), ((1, 1, 200), 16, 1, 4), ((1, 8, 8), 22, 2, 3)],
)
def test_wrn_parameter_count_closed_form(shape, depth, k, base):
    model = build_model("wrn", shape, 10, depth=depth, width=k, base=base)
    assert count_parameters(model) == _wrn_count(shape[0], depth, k, base, 10)
    n = (depth - 4) // 6
    n3x3 = sum(1 for m in model.modules() if isinstance(m, nn.Conv2d) and m.kernel_size == (3, 3))
    assert n3x3 == 1 + 6 * n
    if (shape, depth, k) == ((3, 32, 32), 16, 4):  # WRN-16-4: "2.7M" in the paper's table
        assert count_parameters(model) == 2_748_890


@pytest.mark.parametrize(
    "shape, expected_hw",
    [
        ((3, 32, 32), (8, 8)),  # 32 -> 16 -> 8
        ((1, 8, 8), (2, 2)),
        ((1, 28, 28), (7, 7)),
        ((1, 1, 200), (1, 50)),  # only the long axis is strided
        ((1, 2, 3), (1, 1)),  # 2 -> 1 -> 1 (stride 1 once below 2)
        ((1, 1, 1), (1, 1)),
    ],
)
def test_wrn_downsampling(shape, expected_hw):
    model = build_model("wrn", shape, 10, **SMALL["wrn"]).eval()
    seen = {}
    model.blocks.register_forward_hook(lambda m, i, o: seen.update(hw=tuple(o.shape[2:])))
    with torch.no_grad():
        model(torch.zeros(1, *shape))
    assert seen["hw"] == expected_hw


# --------------------------------------------------------------------------- identities

def _permute_patches(x, p, perm):
    b, c, h, w = x.shape
    gh, gw = h // p, w // p
    patches = x.reshape(b, c, gh, p, gw, p).permute(0, 2, 4, 1, 3, 5).reshape(b, gh * gw, c, p, p)
    patches = patches[:, perm]
    return patches.reshape(b, gh, gw, c, p, p).permute(0, 3, 1, 4, 2, 5).reshape(b, c, h, w)


def test_vit_patch_permutation_acts_only_through_positional_embeddings():
    torch.manual_seed(1)
    model = build_model("vit", (2, 8, 8), 5, width=8, depth=2, heads=2, patch_size=2).eval()
    assert model.n_tokens == 16
    x = torch.randn(4, 2, 8, 8)
    perm = torch.randperm(16)
    xp = _permute_patches(x, 2, perm)
    assert not torch.allclose(x, xp)
    with torch.no_grad():
        # learned positional embeddings break the symmetry ...
        model.pos_embed.normal_(0, 1.0)
        assert not torch.allclose(model(x), model(xp), atol=1e-4)
        # ... without them (and mean pooling) the model is a function of the set of patches
        model.pos_embed.zero_()
        torch.testing.assert_close(model(xp), model(x), rtol=1e-5, atol=1e-5)
        # and a permutation of the positional embeddings themselves undoes the permutation
        model.pos_embed.normal_(0, 1.0)
        out = model(x)
        model.pos_embed.copy_(model.pos_embed[:, perm])
        torch.testing.assert_close(model(xp), out, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    "shape, patch_size, n_tokens",
    [((1, 28, 28), 8, 16), ((1, 1, 200), 4, 50), ((1, 8, 8), 16, 1), ((3, 6, 7), 4, 4)],
)
def test_vit_patches_are_clipped_and_padded(shape, patch_size, n_tokens):
    torch.manual_seed(2)
    model = build_model("vit", shape, 3, width=8, depth=1, heads=1, patch_size=patch_size).eval()
    assert model.n_tokens == n_tokens
    # Padding is with zeros: the same weights on the explicitly zero-padded input agree.
    c, h, w = shape
    ph, pw = min(patch_size, h), min(patch_size, w)
    H, W = -(-h // ph) * ph, -(-w // pw) * pw
    padded = build_model("vit", (c, H, W), 3, width=8, depth=1, heads=1, patch_size=patch_size)
    padded.load_state_dict(model.state_dict())
    padded.eval()
    x = torch.randn(2, *shape)
    xpad = torch.zeros(2, c, H, W)
    xpad[:, :, :h, :w] = x
    with torch.no_grad():
        torch.testing.assert_close(padded(xpad), model(x), rtol=1e-5, atol=1e-5)


def test_deep_linear_network_is_linear():
    torch.manual_seed(3)
    model = build_model("linear", (1, 8, 8), 10, width=16, depth=4).eval()
    x, y = torch.randn(5, 1, 8, 8, dtype=torch.float64), torch.randn(5, 1, 8, 8, dtype=torch.float64)
    model = model.double()
    a, b = 1.7, -0.4
    with torch.no_grad():
        torch.testing.assert_close(model(a * x + b * y), a * model(x) + b * model(y))
        # the end-to-end map is the product of the weight matrices
        W = torch.eye(64, dtype=torch.float64)
        for m in model.modules():
            if isinstance(m, nn.Linear):
                W = m.weight @ W
        torch.testing.assert_close(model(x), x.reshape(5, 64) @ W.T)


# --------------------------------------------------------------------------- seeds, errors

@pytest.mark.parametrize("name", NEW)
def test_same_seed_same_weights(name):
    def weights(seed):
        torch.manual_seed(seed)
        return build_model(name, (1, 8, 8), 10, **SMALL[name]).state_dict()

    a, b, c = weights(5), weights(5), weights(6)
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert any(not torch.equal(a[k], c[k]) for k in a)


@pytest.mark.parametrize("name", NEW)
def test_unknown_knob_names_the_allowed_ones(name):
    with pytest.raises(ValueError, match="dropout") as err:
        build_model(name, (1, 8, 8), 10, dropout=0.1)
    for knob in model_knobs(name):
        assert knob in str(err.value)


@pytest.mark.parametrize("depth", [4, 8, 11, 12, 15, 101])
def test_wrn_bad_depth(depth):
    with pytest.raises(ValueError, match=r"6n\+4"):
        build_model("wrn", (1, 8, 8), 10, depth=depth)


@pytest.mark.parametrize("name", NEW)
@pytest.mark.parametrize("knob", ["width", "depth"])
@pytest.mark.parametrize("value", [0, -3, 2.5, True, "8", None])
def test_bad_width_depth(name, knob, value):
    with pytest.raises(ValueError, match=knob):
        build_model(name, (1, 8, 8), 10, **{knob: value})


@pytest.mark.parametrize(
    "name, knobs, match",
    [
        ("wrn", dict(base=0), "base"),
        ("vit", dict(heads=0), "heads"),
        ("vit", dict(width=10, heads=4), "divisible"),
        ("vit", dict(patch_size=0), "patch_size"),
        ("vit", dict(mlp_ratio=0), "mlp_ratio"),
        ("vit", dict(mlp_ratio=float("nan")), "mlp_ratio"),
        ("vit", dict(mlp_ratio="2"), "mlp_ratio"),
    ],
)
def test_bad_other_knobs(name, knobs, match):
    with pytest.raises(ValueError, match=match):
        build_model(name, (1, 8, 8), 10, **knobs)


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
    by_name = {r["name"]: r["parameters"] for r in rows}
    assert by_name["mlp"] == 26378
    assert by_name["linear"] == _linear_count(64, 128, 2, 10)
    assert by_name["wrn"] == _wrn_count(1, 10, 4, 16, 10)
    with pytest.raises(ValueError, match="n_classes"):
        describe_models((1, 8, 8), 1)
