"""Tests of the architectures of the zoo: shapes, sizes and exact identities of their maps.

Parameter counts are checked against closed forms written out here from the
architecture definitions (not from the modules); the MLP forward pass against a
hand-written one; the ViT and the deep linear network against exact identities.
"""

import numpy as np
import pytest
import torch
from torch import nn

from deepmanifold.models import build_model, count_parameters

SMALL = {
    "mlp": dict(width=8, depth=2),
    "cnn": dict(width=4, depth=2),
    "convmixer": dict(width=8, depth=2, kernel_size=3, patch_size=2),
    "wrn": dict(width=1, depth=10, base=4),
    "vit": dict(width=8, depth=2, heads=2, patch_size=4, mlp_ratio=2.0),
    "linear": dict(width=8, depth=3),
}
# digits, MNIST-like, CIFAR-10, the synthetic vectors stored as (N, 1, 1, 200), odd sizes
SHAPES = [(1, 8, 8), (1, 28, 28), (3, 32, 32), (1, 1, 200), (2, 5, 11), (1, 3, 2), (1, 1, 1)]


# --------------------------------------------------------------------------- shapes

@pytest.mark.parametrize("name", sorted(SMALL))
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("n_classes", [10, 2])
def test_maps_inputs_to_logits_differentiably(name, shape, n_classes):
    torch.manual_seed(0)
    model = build_model(name, shape, n_classes, **SMALL[name])
    x = torch.randn(3, *shape)
    model.train()
    out = model(x)
    assert out.shape == (3, n_classes) and out.dtype == torch.float32
    assert torch.isfinite(out).all()
    out.square().sum().backward()  # differentiable end to end
    for p in model.parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all()
    model.eval()
    with torch.no_grad():
        single, batch = model(x[:1]), model(x)
    assert single.shape == (1, n_classes)
    # Eval mode: each sample's logits do not depend on the rest of the batch.
    torch.testing.assert_close(single[0], batch[0], rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name", sorted(SMALL))
def test_default_knobs_on_cifar_shape(name):
    torch.manual_seed(0)
    model = build_model(name, (3, 32, 32), 10).eval()
    with torch.no_grad():
        assert model(torch.randn(2, 3, 32, 32)).shape == (2, 10)


def _last_feature_map(model, module, shape):
    seen = {}
    module.register_forward_hook(lambda m, i, o: seen.update(hw=tuple(o.shape[2:])))
    model.eval()
    with torch.no_grad():
        model(torch.zeros(1, *shape))
    return seen["hw"]


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
    assert len(convs) == 2 * depth + 1
    assert _last_feature_map(model, convs[-1], shape) == expected_hw


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
    model = build_model("wrn", shape, 10, **SMALL["wrn"])
    assert _last_feature_map(model, model.blocks, shape) == expected_hw


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


def _linear_count(d_in, width, depth, C):
    # depth bias-free hidden layers, then a bias-free head
    return d_in * width + (depth - 1) * width * width + width * C


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


@pytest.mark.parametrize("width, depth", [(1, 1), (16, 1), (16, 3), (128, 2)])
@pytest.mark.parametrize("shape", [(1, 8, 8), (3, 32, 32)])
def test_mlp_parameter_count(width, depth, shape):
    model = build_model("mlp", shape, 10, width=width, depth=depth)
    expected = _mlp_count(int(np.prod(shape)), width, depth, 10)
    assert count_parameters(model) == expected
    assert count_parameters(model, trainable_only=False) == expected


@pytest.mark.parametrize("width, depth", [(4, 1), (8, 3)])
@pytest.mark.parametrize("shape", [(1, 8, 8), (3, 32, 32)])
def test_cnn_parameter_count(width, depth, shape):
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


@pytest.mark.parametrize("width, depth", [(1, 1), (16, 1), (16, 4), (128, 2)])
@pytest.mark.parametrize("shape", [(1, 8, 8), (3, 32, 32), (1, 1, 200)])
def test_linear_parameter_count(width, depth, shape):
    model = build_model("linear", shape, 10, width=width, depth=depth)
    assert count_parameters(model) == _linear_count(int(np.prod(shape)), width, depth, 10)
    assert not [m for m in model.modules() if isinstance(m, nn.Linear) and m.bias is not None]


def test_wrn_10_4_parameter_count_on_cifar():
    model = build_model("wrn", (3, 32, 32), 10, depth=10, width=4)
    # By hand, WRN-10-4, base 16, CIFAR-10 (groups 64, 128, 256 channels, one block each):
    # 1,198,810 parameters.
    stem = 9 * 3 * 16
    g1 = 2 * 16 + 9 * 16 * 64 + 2 * 64 + 9 * 64 * 64 + 16 * 64
    g2 = 2 * 64 + 9 * 64 * 128 + 2 * 128 + 9 * 128 * 128 + 64 * 128
    g3 = 2 * 128 + 9 * 128 * 256 + 2 * 256 + 9 * 256 * 256 + 128 * 256
    head = 2 * 256 + 256 * 10 + 10
    assert count_parameters(model) == stem + g1 + g2 + g3 + head == _wrn_count(3, 10, 4, 16, 10)


def test_wrn_16_4_matches_the_papers_size():
    # Zagoruyko & Komodakis (2016), table of CIFAR-10 widths: WRN-16-4 has 2.7M parameters.
    model = build_model("wrn", (3, 32, 32), 10, depth=16, width=4)
    assert round(count_parameters(model) / 1e6, 1) == 2.7


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


# --------------------------------------------------------------------------- identities

@pytest.mark.parametrize("activation, fn", [("relu", lambda z: np.maximum(z, 0.0)), ("tanh", np.tanh)])
def test_mlp_forward_matches_hand_computation(activation, fn):
    torch.manual_seed(3)
    model = build_model("mlp", (1, 4, 4), 5, width=6, depth=2, activation=activation)
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
        h = fn(z)
    logits = h @ head.weight.detach().double().numpy().T + head.bias.detach().double().numpy()
    with torch.no_grad():
        out = model(x).double().numpy()
    np.testing.assert_allclose(out, logits, rtol=1e-5, atol=1e-5)


def test_mlp_refuses_an_unknown_activation():
    with pytest.raises(ValueError, match="activation must be one of"):
        build_model("mlp", (1, 4, 4), 5, activation="sigmoid")


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


def test_deep_linear_init_keeps_the_signal_scale_at_any_depth():
    # LeCun normal init (std 1/sqrt(fan_in)): E|W x|^2 = |x|^2 per layer, so the output
    # scale does not grow or shrink with depth.
    x = torch.randn(2000, 1, 8, 8)
    scales = []
    for depth in (1, 8):
        torch.manual_seed(0)
        model = build_model("linear", (1, 8, 8), 10, width=256, depth=depth).eval()
        with torch.no_grad():
            scales.append(float(model(x).square().mean() / x.square().mean()))
    assert scales == pytest.approx([1.0, 1.0], rel=0.3)


# --------------------------------------------------------------------------- knob checks

@pytest.mark.parametrize("name", sorted(SMALL))
@pytest.mark.parametrize("knob", ["width", "depth"])
@pytest.mark.parametrize("value", [0, -3, 2.5, True, "8", None])
def test_bad_width_depth(name, knob, value):
    with pytest.raises(ValueError, match=knob):
        build_model(name, (1, 8, 8), 10, **{knob: value})


@pytest.mark.parametrize("depth", [4, 8, 11, 12, 15, 101])
def test_wrn_depth_must_be_6n_plus_4(depth):
    with pytest.raises(ValueError, match=r"6n\+4"):
        build_model("wrn", (1, 8, 8), 10, depth=depth)


@pytest.mark.parametrize(
    "name, knobs, match",
    [
        ("convmixer", dict(kernel_size=0), "kernel_size"),
        ("convmixer", dict(kernel_size=1.0), "kernel_size"),
        ("convmixer", dict(patch_size=-1), "patch_size"),
        ("convmixer", dict(patch_size=False), "patch_size"),
        ("wrn", dict(base=0), "base"),
        ("vit", dict(heads=0), "heads"),
        ("vit", dict(width=10, heads=4), "divisible"),
        ("vit", dict(patch_size=0), "patch_size"),
        ("vit", dict(mlp_ratio=0), "mlp_ratio"),
        ("vit", dict(mlp_ratio=float("nan")), "mlp_ratio"),
        ("vit", dict(mlp_ratio="2"), "mlp_ratio"),
        ("vit", dict(mlp_ratio=True), "mlp_ratio"),
    ],
)
def test_bad_other_knobs(name, knobs, match):
    with pytest.raises(ValueError, match=match):
        build_model(name, (1, 8, 8), 10, **knobs)


def test_mean_field_mlp_propagates_signals_as_the_theory_says():
    from deepmanifold.theory import q_star

    torch.manual_seed(0)
    model = build_model("mf_mlp", (1, 8, 8), 10, width=1000, depth=20, activation="tanh", sigma_w2=1.5,
                        sigma_b2=0.05)
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    W = linears[5].weight.detach()
    assert W.var().item() == pytest.approx(1.5 / 1000, rel=0.02)
    assert linears[5].bias.detach().var().item() == pytest.approx(0.05, rel=0.15)
    pre = []
    hooks = [m.register_forward_hook(lambda _m, _i, out: pre.append(out.detach())) for m in linears[:-1]]
    with torch.no_grad():
        model(torch.randn(64, 1, 8, 8))
    for h in hooks:
        h.remove()
    q_deep = torch.stack([p.pow(2).mean() for p in pre[10:]]).mean().item()  # the length has converged
    assert q_deep == pytest.approx(q_star("tanh", 1.5, 0.05), rel=0.05)


def test_mean_field_mlp_refuses_bad_knobs():
    with pytest.raises(ValueError, match="activation must be one of"):
        build_model("mf_mlp", (1, 4, 4), 3, activation="gelu")
    with pytest.raises(ValueError, match="sigma_b2"):
        build_model("mf_mlp", (1, 4, 4), 3, sigma_b2=-1.0)
    with pytest.raises(ValueError, match="sigma_w2"):
        build_model("mf_mlp", (1, 4, 4), 3, sigma_w2=0.0)


def test_delta_orthogonal_convolutions_preserve_the_norm_of_every_pixel():
    torch.manual_seed(0)
    model = build_model("mf_cnn", (3, 8, 8), 10, width=16, depth=30, activation="tanh", sigma_w2=1.0,
                        sigma_b2=0.0, init="delta_orthogonal")
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    for conv in convs[1:]:
        W = conv.weight.detach().clone()
        centre = W[:, :, 1, 1].clone()
        torch.testing.assert_close(centre.T @ centre, torch.eye(16), atol=1e-5, rtol=0)  # orthogonal
        W[:, :, 1, 1] = 0
        assert W.abs().max() == 0  # every other tap is zero
    # With sigma_w^2 = 1, no bias and a linear stand-in for tanh, each pixel's channel vector keeps its norm.
    x = torch.randn(4, 16, 8, 8)
    with torch.no_grad():
        y = x
        for conv in convs[1:]:
            y = conv(y)
    torch.testing.assert_close(y.norm(dim=1), x.norm(dim=1), atol=1e-4, rtol=1e-4)


def test_gaussian_convolutions_have_the_mean_field_variance():
    torch.manual_seed(0)
    model = build_model("mf_cnn", (1, 8, 8), 10, width=64, depth=3, sigma_w2=2.0, init="gaussian")
    W = [m for m in model.modules() if isinstance(m, nn.Conv2d)][1].weight.detach()
    assert W.var().item() == pytest.approx(2.0 / (64 * 9), rel=0.05)
    with pytest.raises(ValueError, match="init must be one of"):
        build_model("mf_cnn", (1, 8, 8), 10, init="xavier")
