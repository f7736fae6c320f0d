"""The AGOP against closed forms, brute-force Jacobians and the sketch's error formula."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from deepmanifold.features._agop import (
    agop,
    layer_agops,
    matrix_power_psd,
    resolve_layers,
    weight_gram,
)
from deepmanifold.models import build_model


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


@pytest.fixture
def linear_map():
    torch.manual_seed(0)
    lin = nn.Linear(6, 4, bias=False).double()
    return nn.Sequential(lin), torch.randn(9, 6, dtype=torch.float64)


# ------------------------------------------------------------ closed forms


def test_agop_of_a_linear_map_is_its_weight_gram(linear_map):
    model, X = linear_map
    W = model[0].weight.detach().numpy()
    np.testing.assert_allclose(agop(model, X), W.T @ W, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(agop(model, X, layer="0"), W.T @ W, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(agop(model, X.numpy(), layer=model[0]), W.T @ W, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(weight_gram(model[0]), W.T @ W, rtol=1e-12)


def test_agop_of_softmax_outputs_matches_the_softmax_jacobian(linear_map):
    model, X = linear_map
    W = model[0].weight.detach().numpy()
    P = _softmax(X.numpy() @ W.T)
    expected = np.zeros((6, 6))
    for p in P:
        J = (np.diag(p) - np.outer(p, p)) @ W
        expected += J.T @ J / len(P)
    np.testing.assert_allclose(agop(model, X, outputs="probs"), expected, rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(agop(model, X, layer="0", outputs="probs"), expected, rtol=1e-10, atol=1e-14)


def test_two_layer_relu_network_against_a_hand_computation():
    torch.manual_seed(1)
    model = nn.Sequential(nn.Linear(5, 7), nn.ReLU(), nn.Linear(7, 3, bias=False)).double()
    X = torch.randn(20, 5, dtype=torch.float64)
    U = model[0].weight.detach().numpy()
    b = model[0].bias.detach().numpy()
    V = model[2].weight.detach().numpy()
    expected = np.zeros((5, 5))
    for x in X.numpy():
        J = V @ np.diag((U @ x + b > 0).astype(float)) @ U
        expected += J.T @ J / len(X)
    np.testing.assert_allclose(agop(model, X), expected, rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(agop(model, X, layer="0"), expected, rtol=1e-10, atol=1e-14)
    # the output layer's input h enters only through V h: the AGOP is V^T V for any samples
    np.testing.assert_allclose(agop(model, X, layer="2"), V.T @ V, rtol=1e-10, atol=1e-14)


# ----------------------------------------------------- convolutions by unfold


def _conv_net(groups: int) -> nn.Sequential:
    torch.manual_seed(2)
    return nn.Sequential(
        nn.Conv2d(2, 4, 3, padding=1), nn.ReLU(inplace=True),
        nn.Conv2d(4, 6, 3, stride=2, padding=1, groups=groups, bias=True), nn.Tanh(),
        nn.Flatten(), nn.Linear(6 * 3 * 3, 3),
    ).double().eval()


def _patch_jacobians(net: nn.Sequential, X: torch.Tensor) -> list[torch.Tensor]:
    """Per sample, the Jacobian of the outputs with respect to the patches ``net[2]`` multiplies.

    The convolution is rebuilt as a linear map of the unfolded patches, and the
    patches are the variables: shape ``(C, groups, d_patch, L)`` per sample.
    """
    conv = net[2]
    groups = conv.groups
    W = conv.weight.detach().reshape(groups, conv.out_channels // groups, -1)
    jacobians = []
    for x in X:
        h = net[1](net[0](x[None])).detach()
        cols = F.unfold(h, 3, padding=1, stride=2)  # (1, c_in * 9, L)
        L = cols.shape[-1]
        patches = cols.reshape(groups, -1, L)  # channels of group g are contiguous in unfold's order

        def rest(p):
            z = torch.einsum("god,gdl->gol", W, p).reshape(1, conv.out_channels, 3, 3)
            return net[5](net[4](net[3](z + conv.bias.detach()[None, :, None, None])))[0]

        np.testing.assert_allclose(rest(patches).detach().numpy(), net(x[None])[0].detach().numpy(), rtol=1e-12)
        jacobians.append(torch.autograd.functional.jacobian(rest, patches))
    return jacobians


@pytest.mark.parametrize("groups", [1, 2])
def test_conv_patch_agop_matches_brute_force_on_unfolded_patches(groups):
    net = _conv_net(groups)
    X = torch.randn(4, 2, 6, 6, dtype=torch.float64)
    jacobians = _patch_jacobians(net, X)
    d = jacobians[0].shape[2]
    expected = np.zeros((d, d))
    for J in jacobians:  # (C, groups, d, L): average over samples, groups and locations
        rows = J.permute(0, 1, 3, 2).reshape(-1, d).numpy()
        expected += rows.T @ rows / (len(X) * J.shape[1] * J.shape[3])
    G = agop(net, X, layer="2", batch_size=3)
    assert G.shape == weight_gram(net[2]).shape == (4 // groups * 9,) * 2
    np.testing.assert_allclose(G, expected, rtol=1e-10, atol=1e-14)


def test_an_in_place_operation_after_a_layer_does_not_change_its_agop():
    in_place = _conv_net(1)
    copy = _conv_net(1)
    copy[1] = nn.ReLU()
    X = torch.randn(3, 2, 6, 6, dtype=torch.float64)
    expected = agop(copy, X, layer="0")
    np.testing.assert_allclose(agop(in_place, X, layer="0"), expected, rtol=1e-12)
    np.testing.assert_allclose(layer_agops(in_place, X)["0"], expected, rtol=1e-12)


def test_conv_with_one_output_location_equals_the_linear_layer():
    torch.manual_seed(3)
    conv = nn.Conv2d(2, 5, 4, bias=False).double()
    lin = nn.Linear(32, 5, bias=False).double()
    lin.weight.data.copy_(conv.weight.detach().reshape(5, -1))
    head = nn.Linear(5, 3).double()
    conv_net = nn.Sequential(conv, nn.Flatten(), nn.ReLU(), head)
    lin_net = nn.Sequential(nn.Flatten(), lin, nn.ReLU(), head)
    X = torch.randn(11, 2, 4, 4, dtype=torch.float64)
    expected = agop(lin_net, X)
    np.testing.assert_allclose(agop(lin_net, X, layer=lin), expected, rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(agop(conv_net, X, layer=conv), expected, rtol=1e-10, atol=1e-14)


def test_linear_on_tokens_averages_over_tokens():
    torch.manual_seed(4)
    lin = nn.Linear(3, 4, bias=False).double()
    model = nn.Sequential(lin, nn.Tanh(), nn.Flatten(), nn.Linear(5 * 4, 2)).double()
    X = torch.randn(6, 5, 3, dtype=torch.float64)
    expected = np.zeros((3, 3))
    for x in X:
        J = torch.autograd.functional.jacobian(lambda t: model(t[None])[0], x).numpy()  # (C, T, d)
        rows = J.reshape(-1, 3)  # one row per (output, token)
        expected += rows.T @ rows / (len(X) * 5)
    np.testing.assert_allclose(agop(model, X, layer=lin), expected, rtol=1e-10, atol=1e-14)


# ---------------------------------------------------------- several layers


@pytest.mark.parametrize("name", ["mlp", "cnn"])
def test_layer_agops_equals_one_agop_per_layer(name):
    torch.manual_seed(5)
    model = build_model(name, input_shape=(1, 8, 8), n_classes=10, width=8, depth=2).eval()
    X = torch.rand(40, 1, 8, 8)
    both = layer_agops(model, X, batch_size=16)
    assert list(both) == list(resolve_layers(model))
    for layer, G in both.items():
        single = agop(model, X, layer=layer, batch_size=16)
        np.testing.assert_allclose(G, single, rtol=1e-9, atol=1e-12 * np.abs(single).max())
        assert G.shape == weight_gram(dict(model.named_modules())[layer]).shape
        assert np.linalg.eigvalsh(G).min() > -1e-9 * np.abs(G).max()
    sub = layer_agops(model, X, layers=list(both)[::-1][:2], outputs="probs")
    assert list(sub) == list(both)[::-1][:2]
    # the input's AGOP from the same backward passes: the same as agop() of the input
    with_input = layer_agops(model, X, batch_size=16, include_input=True)
    assert list(with_input) == [None, *both]
    np.testing.assert_allclose(with_input[None], agop(model, X), rtol=1e-9, atol=1e-14)
    for layer, G in both.items():
        np.testing.assert_allclose(with_input[layer], G, rtol=1e-9, atol=1e-12 * np.abs(G).max())


class _Attention(nn.Module):
    def __init__(self):
        super().__init__()
        self.attn = nn.MultiheadAttention(4, 2, batch_first=True)
        self.head = nn.Linear(4, 3)

    def forward(self, x):
        return self.head(self.attn(x, x, x, need_weights=False)[0].mean(dim=1))


def test_default_layers_leave_out_layers_the_forward_pass_never_calls():
    model = _Attention().eval()
    X = torch.randn(5, 6, 4)
    assert "attn.out_proj" in resolve_layers(model)
    assert list(layer_agops(model, X)) == ["head"]
    with pytest.raises(ValueError, match="'attn.out_proj' was called 0 times"):
        layer_agops(model, X, layers=["attn.out_proj"])


def test_a_layer_called_twice_is_refused():
    lin = nn.Linear(3, 3)
    model = nn.Sequential(lin, nn.ReLU(), lin)
    with pytest.raises(ValueError, match="called 2 times"):
        agop(model, torch.randn(4, 3), layer=lin)


def test_the_model_is_left_as_it_was():
    torch.manual_seed(6)
    model = build_model("cnn", input_shape=(1, 8, 8), n_classes=10, width=4, depth=1)
    model.eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    marker = torch.full_like(model.net[0].weight, 7.0)
    model.net[0].weight.grad = marker.clone()
    X = torch.rand(10, 1, 8, 8)
    agop(model, X)
    layer_agops(model, X)
    agop(model, X, layer="net.0", sketch=3)
    assert not model.training
    assert torch.equal(model.net[0].weight.grad, marker)
    assert all(p.grad is None for n, p in model.named_parameters() if n != "net.0.weight")
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), k


def test_computed_under_no_grad_and_independent_of_the_batching():
    torch.manual_seed(7)
    model = nn.Sequential(nn.Linear(5, 6), nn.Tanh(), nn.Linear(6, 4)).double()
    X = torch.randn(13, 5, dtype=torch.float64)
    exact = agop(model, X, batch_size=13)
    sketched = agop(model, X, sketch=2, random_state=1, batch_size=13)
    with torch.no_grad():
        for batch_size in (1, 4):
            np.testing.assert_allclose(agop(model, X, batch_size=batch_size), exact, rtol=1e-12)
            np.testing.assert_allclose(agop(model, X, sketch=2, random_state=1, batch_size=batch_size),
                                       sketched, rtol=1e-12)


# ------------------------------------------------------------------ sketch


def _rademacher_variance(K: np.ndarray) -> float:
    """The documented per-sample variance σ² for the gradients ``K`` of shape ``(L, d, C)``."""
    L = K.shape[0]
    total = 0.0
    for l in range(L):
        for m in range(L):
            B = K[l].T @ K[m]
            total += np.trace(B) ** 2 + np.trace(B @ B) - 2 * np.sum(np.diag(B) ** 2)
    return total / L**2


def _sketches(model, X, k, repeats, **kwargs) -> np.ndarray:
    return np.stack([agop(model, X, sketch=k, random_state=r, **kwargs) for r in range(repeats)])


def _mean_squared_error(sketches: np.ndarray, G: np.ndarray) -> float:
    return float(np.mean(np.sum((sketches - G) ** 2, axis=(-2, -1))))


def test_sketch_is_unbiased_with_the_documented_error():
    torch.manual_seed(8)
    model = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 6)).double()
    X = torch.randn(3, 4, dtype=torch.float64)
    G = agop(model, X)
    jacobians = [torch.autograd.functional.jacobian(model, x).numpy() for x in X]  # (C, d) each
    # one location per sample: K = J^T
    expected = sum(_rademacher_variance(J.T[None]) for J in jacobians) / len(X) ** 2
    assert expected <= 2 * sum(np.trace(J.T @ J) ** 2 for J in jacobians) / len(X) ** 2
    # Seeded draws; the tolerances are ~3 standard errors of each mean of squared errors.
    single = _sketches(model, X, 1, 1600)
    assert _mean_squared_error(single, G) / expected == pytest.approx(1, abs=0.15)
    # an unbiased estimate averaged over 16 draws has 1/16 of the error, a biased one would not
    groups = single.reshape(100, 16, *G.shape).mean(axis=1)
    assert _mean_squared_error(groups, G) / (expected / 16) == pytest.approx(1, abs=0.4)
    assert _mean_squared_error(single.mean(axis=0), G) < 10 * expected / 1600
    # k directions per sample: 1/k of the error
    assert _mean_squared_error(_sketches(model, X, 8, 200), G) / (expected / 8) == pytest.approx(1, abs=0.2)


def test_sketch_of_a_conv_layer_has_the_documented_error():
    net = _conv_net(1)
    X = torch.randn(2, 2, 6, 6, dtype=torch.float64)
    G = agop(net, X, layer="2")
    # (C, 1, d, L) per sample -> the L gradient matrices K_l of shape (d, C)
    expected = sum(_rademacher_variance(J[:, 0].permute(2, 1, 0).numpy())
                   for J in _patch_jacobians(net, X)) / len(X) ** 2
    single = _sketches(net, X, 1, 400, layer="2")
    assert _mean_squared_error(single, G) / expected == pytest.approx(1, abs=0.2)
    assert _mean_squared_error(single.mean(axis=0), G) < 10 * expected / 400


def test_sketch_of_a_single_output_is_exact():
    torch.manual_seed(9)
    model = nn.Sequential(nn.Linear(5, 4), nn.ReLU(), nn.Linear(4, 1)).double()
    X = torch.randn(7, 5, dtype=torch.float64)
    np.testing.assert_allclose(agop(model, X, sketch=3, random_state=4), agop(model, X), rtol=1e-12)


# ------------------------------------------------------------ small matrices


def test_matrix_power_psd():
    rng = np.random.default_rng(0)
    Q, _ = np.linalg.qr(rng.standard_normal((5, 5)))
    A = (Q * np.array([4.0, 1.0, 0.25, 0.0, -1e-17])) @ Q.T
    root = matrix_power_psd(A, 0.5)
    np.testing.assert_allclose(root, (Q * np.array([2.0, 1.0, 0.5, 0.0, 0.0])) @ Q.T, atol=1e-12)
    np.testing.assert_allclose(matrix_power_psd(A, 1), A, atol=1e-14)
    for alpha in (0, -1, float("nan"), True):
        with pytest.raises(ValueError, match="alpha"):
            matrix_power_psd(A, alpha)
    with pytest.raises(ValueError, match="square"):
        matrix_power_psd(np.ones((2, 3)), 0.5)


def test_weight_gram_of_a_conv_sums_its_filters():
    conv = nn.Conv2d(3, 4, (2, 3), bias=False).double()
    expected = sum(np.outer(w, w) for w in conv.weight.detach().numpy().reshape(4, -1))
    np.testing.assert_allclose(weight_gram(conv), expected, rtol=1e-12)
    with pytest.raises(ValueError, match="ReLU"):
        weight_gram(nn.ReLU())


# ------------------------------------------------------------ bad arguments


def test_bad_arguments_are_refused(linear_map):
    model, X = linear_map
    net = nn.Sequential(nn.Linear(6, 5), nn.ReLU(), nn.Linear(5, 2))
    Xf = X.float()
    bad = X.clone()
    bad[2, 1] = float("nan")
    with pytest.raises(ValueError, match="sample 2"):
        agop(model, bad)
    with pytest.raises(ValueError, match="at least one sample"):
        agop(model, X[:0])
    with pytest.raises(ValueError, match="unknown layer 'fc'.*'0', '2'"):
        agop(net, Xf, layer="fc")
    with pytest.raises(ValueError, match="'1' is a ReLU"):
        agop(net, Xf, layer="1")
    with pytest.raises(ValueError, match="not a module of Sequential"):
        agop(net, Xf, layer=nn.Linear(6, 5))
    with pytest.raises(ValueError, match="outputs"):
        agop(net, Xf, outputs="softmax")
    for k in (0, -2, 1.5, True):
        with pytest.raises(ValueError, match="sketch"):
            agop(net, Xf, sketch=k)
    with pytest.raises(ValueError, match="batch_size"):
        layer_agops(net, Xf, batch_size=0)
    with pytest.raises(ValueError, match=r"shape \(n, C\)"):
        agop(nn.Sequential(nn.Linear(6, 4), nn.Unflatten(1, (2, 2))), Xf)
    with pytest.raises(ValueError, match="no nn.Linear or nn.Conv2d"):
        layer_agops(nn.Sequential(nn.ReLU()), Xf)
