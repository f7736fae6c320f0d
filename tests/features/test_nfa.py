"""The Neural Feature Ansatz: planted cases where it holds and fails, and a trained MLP."""

from __future__ import annotations

import copy
import json
import math
import warnings

import numpy as np
import pytest
import torch
from torch import nn

from deepmanifold.features._nfa import LayerNFA, NFAResult, cosine, nfa, pearson
from deepmanifold.models import build_model


def _linear(W: np.ndarray) -> nn.Linear:
    layer = nn.Linear(W.shape[1], W.shape[0], bias=False).double()
    layer.weight.data.copy_(torch.as_tensor(W))
    return layer


def test_pearson_and_cosine_against_numpy():
    rng = np.random.default_rng(0)
    A, B = rng.standard_normal((2, 6, 6))
    assert pearson(A, B) == pytest.approx(np.corrcoef(A.ravel(), B.ravel())[0, 1], abs=1e-12)
    assert cosine(A, B) == pytest.approx(np.sum(A * B) / np.linalg.norm(A) / np.linalg.norm(B), abs=1e-12)
    assert pearson(A, 3 * A + 1) == pytest.approx(1, abs=1e-12)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert math.isnan(pearson(np.full((3, 3), 0.1), A[:3, :3]))
        assert math.isnan(pearson(np.ones((1, 1)), np.ones((1, 1))))
        assert math.isnan(cosine(np.zeros((2, 2)), A[:2, :2]))


def test_nfa_holds_exactly_where_wtw_is_the_agop():
    # f(x) = W x: the AGOP is W^T W, so alpha = 1 correlates perfectly
    rng = np.random.default_rng(1)
    model = nn.Sequential(_linear(rng.standard_normal((5, 8))))
    X = torch.randn(4, 8, dtype=torch.float64)
    result = nfa(model, X, alpha=1)
    assert result.pearson == pytest.approx([1.0], abs=1e-12)
    assert result.cosine == pytest.approx([1.0], abs=1e-12)
    # with orthonormal rows scaled by s, W^T W = s^2 P and AGOP^(1/2) = s P: alpha = 1/2 holds too
    Q, _ = np.linalg.qr(rng.standard_normal((8, 3)))
    model = nn.Sequential(_linear(2.5 * Q.T))
    result = nfa(model, X)
    assert result.alpha == 0.5
    assert result.pearson == pytest.approx([1.0], abs=1e-10)
    assert result.cosine == pytest.approx([1.0], abs=1e-10)


def test_nfa_fails_for_an_agop_unrelated_to_the_weight():
    # f(x) = u^T W x: the first layer's AGOP is (W^T u)(W^T u)^T, a random rank-one matrix,
    # against W^T W ~ m I + noise: their correlation is of order 1/sqrt(d)
    rng = np.random.default_rng(2)
    d = m = 300
    model = nn.Sequential(_linear(rng.standard_normal((m, d))), _linear(rng.standard_normal((1, m))))
    result = nfa(model, torch.randn(2, d, dtype=torch.float64), alpha=1)
    first, last = result.layers
    assert abs(first.pearson) < 0.2
    assert abs(first.cosine) < 0.2
    # the output layer of a one-output network: AGOP = u u^T = W^T W exactly
    assert last.pearson == pytest.approx(1, abs=1e-12)


def test_fields_json_and_the_initial_model():
    rng = np.random.default_rng(3)
    d, m = 12, 6

    def network(W1: np.ndarray) -> nn.Sequential:
        return nn.Sequential(_linear(W1), nn.Tanh(), _linear(rng.standard_normal((1, m))),
                             nn.Unflatten(1, (1, 1, 1)), nn.Conv2d(1, 2, 1).double(),
                             nn.Flatten(), _linear(rng.standard_normal((3, 2))))

    trained = network(rng.standard_normal((m, d)))
    # a rank-one first layer a b^T: its Gram b b^T and its AGOP (∝ b b^T) agree for any alpha
    initial = network(np.outer(rng.standard_normal(m), rng.standard_normal(d)))
    X = torch.randn(10, d, dtype=torch.float64)
    result = nfa(trained, X, initial=initial, alpha=0.5)
    assert isinstance(result, NFAResult) and all(isinstance(layer, LayerNFA) for layer in result.layers)
    assert [layer.name for layer in result.layers] == ["0", "2", "4", "6"]
    assert [layer.kind for layer in result.layers] == ["linear", "linear", "conv", "linear"]
    assert [layer.shape for layer in result.layers] == [(d, d), (m, m), (1, 1), (2, 2)]
    assert (result.alpha, result.outputs, result.n_samples) == (0.5, "logits", 10)
    first = result.layers[0]
    assert first.pearson_initial == pytest.approx(1, abs=1e-9)
    assert first.pearson < 0.99
    alone = nfa(initial, X)
    assert [layer.pearson_initial for layer in result.layers] == pytest.approx(
        list(alone.pearson), abs=1e-12, nan_ok=True)
    assert [layer.cosine_initial for layer in result.layers] == pytest.approx(
        list(alone.cosine), abs=1e-12, nan_ok=True)
    # the 1x1 Gram of a conv with one input value per patch has no correlation
    assert math.isnan(result.layers[2].pearson) and result.layers[2].cosine == pytest.approx(1)
    np.testing.assert_array_equal(result.pearson, [layer.pearson for layer in result.layers])
    as_dict = result.to_dict()
    assert as_dict == json.loads(json.dumps(as_dict, allow_nan=False))
    assert as_dict["layers"][2]["pearson"] is None and as_dict["layers"][0]["shape"] == [d, d]
    assert nfa(trained, X).layers[0].pearson_initial is None


def test_bad_arguments_are_refused():
    model = nn.Sequential(nn.Linear(4, 3))
    X = torch.randn(5, 4)
    for alpha in (0, -0.5, float("nan"), True):
        with pytest.raises(ValueError, match="alpha"):
            nfa(model, X, alpha=alpha)
    with pytest.raises(ValueError, match="architecture of model: layer '0'"):
        nfa(model, X, initial=nn.Sequential(nn.Linear(4, 2)))
    with pytest.raises(ValueError, match="unknown layer"):
        nfa(model, X, layers=["fc"])


def test_batchnorm_gain_is_folded_into_the_weight():
    """Rescaling a layer's rows and its BatchNorm's running variance together leaves the
    function, hence the AGOP, unchanged; the folded comparison is unchanged too, the raw
    one is not."""
    torch.manual_seed(1)
    d, m = 6, 5
    net = nn.Sequential(nn.Linear(d, m, bias=False), nn.BatchNorm1d(m, eps=1e-12), nn.ReLU(),
                        nn.Linear(m, 3)).double().eval()
    with torch.no_grad():
        net[1].running_mean.normal_()
        net[1].weight.uniform_(0.5, 2.0)
    X = torch.randn(40, d, dtype=torch.float64)
    before = nfa(net, X)
    raw_before = nfa(net, X, fold_batchnorm=False)
    c = torch.linspace(0.2, 5.0, m, dtype=torch.float64)
    with torch.no_grad():
        out = net(X)
        net[0].weight.mul_(c[:, None])
        net[1].running_mean.mul_(c)
        net[1].running_var.mul_(c ** 2)
        np.testing.assert_allclose(net(X).numpy(), out.numpy(), atol=1e-9, rtol=0)  # the same function
    after = nfa(net, X)
    assert before.layers[0].batchnorm == "1" and before.layers[1].batchnorm is None
    assert after.layers[0].pearson == pytest.approx(before.layers[0].pearson, abs=1e-6)
    assert abs(nfa(net, X, fold_batchnorm=False).layers[0].pearson - raw_before.layers[0].pearson) > 0.01
    # the folded Gram is the Gram of diag(γ / sqrt(var + eps)) W
    bn = net[1]
    W = (bn.weight / torch.sqrt(bn.running_var + bn.eps))[:, None] * net[0].weight
    from deepmanifold.features._agop import agop, matrix_power_psd

    G = matrix_power_psd(agop(net, X, layer="0"), 0.5)
    assert after.layers[0].pearson == pytest.approx(pearson((W.T @ W).detach().numpy(), G), abs=1e-12)


def _digits():
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    return (torch.tensor(X / 16.0, dtype=torch.float32).reshape(-1, 1, 8, 8),
            torch.tensor(y, dtype=torch.int64))


def test_training_an_mlp_on_digits_raises_its_first_layer_correlation():
    """The paper's finding at small scale: after training, the first layer's W^T W
    follows AGOP^(1/2) more closely than at initialisation.

    SGD with momentum, whose BatchNorm-invariant row norms drift: the comparison folds
    the BatchNorm's gain into W (``fold_batchnorm``).
    """
    X, y = _digits()
    torch.manual_seed(0)
    model = build_model("mlp", input_shape=(1, 8, 8), n_classes=10, width=64, depth=1)
    initial = copy.deepcopy(model).eval()
    optimiser = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    order = torch.Generator().manual_seed(0)
    for _ in range(5):
        model.train()
        perm = torch.randperm(len(X), generator=order)
        for start in range(0, len(X), 64):
            batch = perm[start:start + 64]
            loss = nn.functional.cross_entropy(model(X[batch]), y[batch])
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
    model.eval()
    with torch.no_grad():
        assert (model(X).argmax(dim=1) == y).float().mean() > 0.95
    result = nfa(model, X[:500], initial=initial)
    first, head = result.layers
    assert first.name == "net.1" and head.name == "net.4"
    assert first.pearson > 0.85
    assert first.pearson > first.pearson_initial + 0.08
    # the output layer's AGOP is V^T V for logits: the ansatz holds exactly with alpha = 1
    assert nfa(model, X[:500], alpha=1, layers="net.4").pearson == pytest.approx([1], abs=1e-6)


def test_given_agops_are_used_as_computed():
    from deepmanifold.features._agop import layer_agops

    torch.manual_seed(2)
    model = build_model("cnn", input_shape=(1, 8, 8), n_classes=10, width=4).eval()
    X = torch.rand(30, 1, 8, 8)
    given = nfa(model, X, agops=layer_agops(model, X, include_input=True))
    np.testing.assert_allclose(given.pearson, nfa(model, X).pearson, atol=1e-12)
    assert [layer.name for layer in given.layers] == [layer.name for layer in nfa(model, X).layers]
