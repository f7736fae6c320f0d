"""Infinite-width kernels against finite networks, quadrature and plain linear algebra.

The closed-form NNGP and NTK are checked against Monte Carlo over random networks of width
4096 in the NTK parameterisation, against a per-entry recursion through the quadrature
reference, and at depth 1 against the linear kernel; kernel regression against
``np.linalg.solve``; the linearised trajectory against its limits and an explicit Euler
integration; the empirical NTK against per-sample autograd and a linear model.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.special import softmax

from deepmanifold.theory import _kernels
from deepmanifold.theory._empirical import empirical_ntk, kernel_distance
from deepmanifold.theory._kernels import (
    gaussian_expectations,
    kernel_regression,
    nngp,
    nngp_and_ntk,
    ntk,
)
from deepmanifold.theory._linearized import (
    fit_temperature,
    linearized_trajectory,
    probabilities_from_outputs,
)

ACTS = ["relu", "erf"]
SIGMAS = {"relu": (2.0, 0.1), "erf": (1.5, 0.05)}  # (σ_w², σ_b²)
WIDTH = 4096


def probe_inputs(k: int = 4, d: int = 16) -> np.ndarray:
    """``k`` inputs of different norms, two of them strongly correlated."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(k, d))
    X[1] = X[0] + 0.5 * rng.normal(size=d)
    norms = np.linspace(0.7, 1.5, k) * math.sqrt(d)
    return X * (norms / np.linalg.norm(X, axis=1))[:, None]


def kernel_args(act, depth):
    sw2, sb2 = SIGMAS[act]
    return dict(depth=depth, activation=act, sigma_w2=sw2, sigma_b2=sb2)


# ---------------------------------------------------------------------------- finite networks
class NTKLinear(torch.nn.Module):
    """``x ↦ (σ_w / sqrt(fan_in)) W x + σ_b b`` with ``W, b ~ N(0, 1)``: the NTK parameterisation."""

    def __init__(self, fan_in, fan_out, sigma_w2, sigma_b2, generator, dtype=torch.float32):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.randn(fan_out, fan_in, generator=generator, dtype=dtype))
        self.bias = torch.nn.Parameter(torch.randn(fan_out, generator=generator, dtype=dtype))
        self.scale_w = math.sqrt(sigma_w2 / fan_in)
        self.scale_b = math.sqrt(sigma_b2)

    def forward(self, x):
        return self.scale_w * (x @ self.weight.T) + self.scale_b * self.bias


class Erf(torch.nn.Module):
    def forward(self, x):
        return torch.erf(x)


def network(act, depth, width, d, generator, n_out=1, dtype=torch.float32):
    sw2, sb2 = SIGMAS[act]
    sizes = [d] + [width] * (depth - 1) + [n_out]
    layers = []
    for l in range(depth):
        layers.append(NTKLinear(sizes[l], sizes[l + 1], sw2, sb2, generator, dtype))
        if l < depth - 1:
            layers.append(torch.nn.ReLU() if act == "relu" else Erf())
    return torch.nn.Sequential(*layers)


def hand_ntk(net, X):
    """The NTK of a scalar-output :func:`network` by backpropagation written out:
    ``Θ = Σ_l (σ_w² a^{l-1}·a^{l-1}' / fan_in + σ_b²) δ^l·δ^l'`` with ``δ^l = ∂f/∂h^l``."""
    linears = [m for m in net if isinstance(m, NTKLinear)]
    act = net[1]
    a, hs = [X], []
    with torch.no_grad():
        for i, lin in enumerate(linears):
            hs.append(lin(a[-1]))
            if i < len(linears) - 1:
                a.append(act(hs[-1]))
    h_req = [h.clone().requires_grad_(True) for h in hs[:-1]]
    K = torch.zeros(X.shape[0], X.shape[0], dtype=torch.float64)
    delta = torch.ones(X.shape[0], 1, dtype=X.dtype)
    for l in range(len(linears) - 1, -1, -1):
        lin = linears[l]
        K += ((lin.scale_w**2) * (a[l] @ a[l].T) + lin.scale_b**2).double() * (delta @ delta.T).double()
        if l == 0:
            break
        back = lin.scale_w * (delta @ lin.weight.detach())  # (k, fan_in) = ∂f/∂a^{l-1}
        h = h_req[l - 1]
        (grad,) = torch.autograd.grad(act(h), h, back)
        delta = grad
    return K.numpy()


def _psd_sqrt(G):
    lam, V = torch.linalg.eigh(G)
    return (V * lam.clamp_min(0).sqrt().unsqueeze(-2)) @ V.transpose(-1, -2)


_PHI = {"relu": (torch.relu, lambda h: (h > 0).to(h.dtype)),
        "erf": (torch.erf, lambda h: (2 / math.sqrt(math.pi)) * torch.exp(-h * h))}


def sampled_network_kernels(X, act, depth, width, n_networks, generator):
    """``(Σ̂, Θ̂)`` of ``n_networks`` random networks (each ``(k, k)``) on the ``k`` rows of ``X``,
    drawn exactly from the finite networks' distribution in ``O(width k²)`` per layer.

    A layer ``h = (σ_w/sqrt(n)) W a + σ_b b`` sees its ``(n_out x n)`` weights only through
    ``W a`` on the forward pass, and ``Wᵀ δ`` on the backward pass. Given the layer's input
    ``a`` (``(n, k)``, independent of ``W``), the rows of ``W a`` are i.i.d.
    ``N(0, aᵀa)``; writing ``P = a (aᵀa)⁻¹ aᵀ``, ``W P = (W a)(aᵀa)⁻¹ aᵀ`` is fixed by them
    and ``W (I - P)`` is independent of them and of ``δ`` (which depends on ``W`` only
    through ``W a``), distributed as ``Z (I - P)`` with ``Z`` i.i.d. ``N(0, 1)``; the rows of
    ``Zᵀ δ`` are i.i.d. ``N(0, δᵀδ)``. So

        Wᵀ δ = a (aᵀa)⁻¹ (W a)ᵀ δ + (I - P) R (δᵀδ)^{1/2},   R ~ N(0, 1)^{n x k},

    which is a draw of ``Wᵀ δ`` from its exact conditional law, without the ``n x n``
    matrix. Σ̂ is ``E[f(x) f(x')]`` over the last layer's weights given the hidden layers,
    ``σ_w² a·a' / n + σ_b²`` (exact: the output is linear in the last layer), which removes
    the last layer's own sampling noise.
    """
    phi, dphi = _PHI[act]
    sw2, sb2 = SIGMAS[act]
    sw, sb = math.sqrt(sw2), math.sqrt(sb2)
    B, k = n_networks, X.shape[0]

    def randn(*shape):
        return torch.randn(*shape, generator=generator)

    def gram(u):
        return u.transpose(1, 2) @ u

    a = [torch.as_tensor(X.T, dtype=torch.float32).expand(B, -1, -1)]  # (B, d, k)
    h, Wa = [], []
    for _ in range(depth - 1):
        fan = a[-1].shape[1]
        Wa.append(randn(B, width, k) @ _psd_sqrt(gram(a[-1])))
        h.append(sw / math.sqrt(fan) * Wa[-1] + sb * randn(B, width, 1))
        a.append(phi(h[-1]))
    S = sw2 / width * gram(a[-1]) + sb2
    T = S.clone()
    v = randn(B, width, 1)  # the last layer's weights
    delta = dphi(h[-1]) * (sw / math.sqrt(width) * v)  # ∂f/∂h^{depth-1}, (B, width, k)
    for l in range(depth - 2, -1, -1):
        al = a[l]
        fan = al.shape[1]
        T += (sw2 / fan * gram(al) + sb2) * gram(delta)
        if l == 0:
            break
        G_inv = torch.linalg.inv(gram(al))
        fixed = al @ (G_inv @ (Wa[l].transpose(1, 2) @ delta))
        free = randn(B, fan, k) @ _psd_sqrt(gram(delta))
        free = free - al @ (G_inv @ (al.transpose(1, 2) @ free))
        delta = dphi(h[l - 1]) * (sw / math.sqrt(fan) * (fixed + free))
    return S.double().numpy(), T.double().numpy()


def assert_monte_carlo(samples, exact, *, tol=0.01, max_se=0.0025):
    """Mean of ``samples (N, k, k)`` within ``tol`` of ``exact``, relative to each entry's scale
    ``sqrt(K(x,x) K(x',x'))``; and the Monte Carlo standard error at most ``max_se`` of it, so
    that ``tol`` is at least 4 standard errors. The finite-width bias at width 4096 is
    ``O(depth / 4096)`` of the scale, below 1e-3."""
    scale = np.sqrt(np.outer(np.diag(exact), np.diag(exact)))
    mean = samples.mean(axis=0)
    se = samples.std(axis=0, ddof=1) / math.sqrt(samples.shape[0])
    assert np.max(se / scale) <= max_se, np.max(se / scale)
    err = np.abs(mean - exact) / scale
    assert np.max(err) <= tol, (np.max(err), np.max(se / scale))


@pytest.mark.parametrize("act", ACTS)
def test_depth_two_kernels_match_explicit_networks(act):
    """300 explicit networks (16 -> 4096 -> 1), their NTK by :func:`empirical_ntk`."""
    X = probe_inputs()
    g = torch.Generator().manual_seed(0)
    Xt = torch.as_tensor(X, dtype=torch.float32)
    sw2, sb2 = SIGMAS[act]
    S, T = [], []
    for _ in range(300):
        net = network(act, 2, WIDTH, X.shape[1], g)
        T.append(empirical_ntk(net, Xt))
        with torch.no_grad():
            A = net[:2](Xt).double()
        S.append((sw2 / WIDTH * (A @ A.T) + sb2).numpy())
    exact = nngp_and_ntk(X, **kernel_args(act, 2))
    assert_monte_carlo(np.array(S), exact.nngp)
    assert_monte_carlo(np.array(T), exact.ntk)


@pytest.mark.parametrize("act", ACTS)
def test_deep_kernels_match_sampled_networks(act):
    """1000 networks of depth 4 (three hidden layers of width 4096), drawn exactly."""
    X = probe_inputs()
    g = torch.Generator().manual_seed(1)
    S, T = zip(*(sampled_network_kernels(X, act, 4, WIDTH, 100, g) for _ in range(10)))
    exact = nngp_and_ntk(X, **kernel_args(act, 4))
    assert_monte_carlo(np.concatenate(S), exact.nngp)
    assert_monte_carlo(np.concatenate(T), exact.ntk)


@pytest.mark.parametrize("act", ACTS)
def test_hand_ntk_is_empirical_ntk(act):
    """Backpropagation written out (what the sampler above reproduces) equals the Jacobian
    contraction of :func:`empirical_ntk` on one explicit network."""
    X = torch.as_tensor(probe_inputs(5, 6))
    net = network(act, 4, 32, 6, torch.Generator().manual_seed(3), dtype=torch.float64)
    np.testing.assert_allclose(hand_ntk(net, X), empirical_ntk(net, X), rtol=1e-12, atol=1e-12)


# ---------------------------------------------------------------------------- closed forms
def covariances(n=60, seed=0):
    """Variances and covariances over the whole range: ρ = ±1, 0, a zero variance, random."""
    rng = np.random.default_rng(seed)
    s11 = rng.uniform(0.05, 4.0, n)
    s22 = rng.uniform(0.05, 4.0, n)
    rho = rng.uniform(-1, 1, n)
    rho[:3] = [1.0, -1.0, 0.0]
    s11[3] = 0.0
    return s11, s22, rho * np.sqrt(s11 * s22)


@pytest.mark.parametrize("act", ACTS)
def test_closed_forms_match_quadrature(act):
    s11, s22, s12 = covariances()
    e, ed = gaussian_expectations(s11, s22, s12, act)
    eq, edq = gaussian_expectations(s11, s22, s12, act, method="quadrature")
    np.testing.assert_allclose(e, eq, rtol=0, atol=1e-10)
    # arccos is ill-conditioned at ρ = ±1: the rounding of ρ costs up to sqrt(eps) in θ.
    np.testing.assert_allclose(ed, edq, rtol=0, atol=1e-8)


def expectation_by_rule(rule, s11, s22, s12, f, order):
    """``E[f(u) f(v)]`` with the nodes and weights of one of the module's quadrature rules."""
    rho = s12 / np.sqrt(s11 * s22)
    z1, z2, w = rule(rho, order)
    u = np.sqrt(s11)[:, None] * z1
    v = np.sqrt(s22)[:, None] * (rho[:, None] * z1 + np.sqrt(1 - rho**2)[:, None] * z2)
    return np.sum(w * f(u) * f(v), axis=-1)


def test_quadrature_rule_families():
    """The tensor Gauss–Hermite rule cannot resolve relu''s jump (why ReLU gets the polar rule);
    the polar rule resolves it, and on erf both rules agree with the closed form."""
    s11, s22, s12 = (a[4:] for a in covariances(30, seed=1))
    step = _kernels.ACTIVATIONS["relu"].dphi
    exact_step = gaussian_expectations(s11, s22, s12, "relu")[1]
    hermite = expectation_by_rule(_kernels._hermite_rule, s11, s22, s12, step, 128)
    assert np.max(np.abs(hermite - exact_step)) > 1e-3
    polar = expectation_by_rule(_kernels._polar_rule, s11, s22, s12, step, 8)
    np.testing.assert_allclose(polar, exact_step, atol=1e-13)
    exact_erf = gaussian_expectations(s11, s22, s12, "erf")[0]
    for rule, tol in ((_kernels._hermite_rule, 1e-12), (_kernels._polar_rule, 1e-5)):
        np.testing.assert_allclose(expectation_by_rule(rule, s11, s22, s12, _kernels._erf, 128), exact_erf,
                                   atol=tol)


def test_known_values():
    # ReLU with σ_w² = 2 (He) keeps the variance: Σ(x, x) = 2|x|²/d at any depth.
    X = np.array([[1.0, 0.0], [0.0, 1.0], [3.0, 4.0]])
    for depth in (1, 2, 5):
        K = nngp(X, depth=depth, activation="relu", sigma_w2=2.0, sigma_b2=0.0)
        np.testing.assert_allclose(np.diag(K), [1.0, 1.0, 25.0], rtol=1e-14)
    # Orthogonal inputs after one ReLU layer: 2 E[relu(u) relu(v)] = 2 sqrt(s s') / 2π for
    # independent u, v.
    K = nngp(X[:2], depth=2, activation="relu", sigma_w2=2.0, sigma_b2=0.0)
    np.testing.assert_allclose(K[0, 1], 1 / math.pi, rtol=1e-14)
    # The NTK diagonal of ReLU without bias: Θ^l(x, x) = l Σ(x, x) (σ_w² E[relu'²] = 1).
    T = ntk(X, depth=4, activation="relu", sigma_w2=2.0, sigma_b2=0.0)
    np.testing.assert_allclose(np.diag(T), 4 * np.array([1.0, 1.0, 25.0]), rtol=1e-14)
    # erf on the diagonal: (2/π) arcsin(2s / (1 + 2s)).
    s = 0.7
    e, ed = gaussian_expectations(s, s, s, "erf")
    np.testing.assert_allclose(e, 2 / math.pi * math.asin(2 * s / (1 + 2 * s)), rtol=1e-14)
    np.testing.assert_allclose(ed, 4 / math.pi / math.sqrt(1 + 4 * s), rtol=1e-14)


def reference_kernels(X, Y, *, depth, activation, sigma_w2, sigma_b2):
    """The recursion entry by entry through the quadrature reference: a plain, slow NNGP/NTK."""
    S = np.empty((len(X), len(Y)))
    T = np.empty_like(S)
    for i, x in enumerate(X):
        for j, y in enumerate(Y):
            pts = np.stack([x, y])
            k = sigma_w2 * pts @ pts.T / len(x) + sigma_b2  # the 2x2 Σ^1 of (x, y)
            t = k.copy()
            for _ in range(depth - 1):
                e, ed = gaussian_expectations(np.diag(k)[:, None], np.diag(k)[None, :], k, activation,
                                              method="quadrature")
                k = sigma_w2 * e + sigma_b2
                t = k + sigma_w2 * ed * t
            S[i, j], T[i, j] = k[0, 1], t[0, 1]
    return S, T


@pytest.mark.parametrize("act", ACTS)
def test_kernels_match_reference_recursion(act):
    rng = np.random.default_rng(2)
    X, Y = rng.normal(size=(4, 5)), rng.normal(size=(3, 5))
    args = kernel_args(act, 3)
    S, T = reference_kernels(X, Y, **args)
    np.testing.assert_allclose(nngp(X, Y, **args), S, rtol=1e-8)
    np.testing.assert_allclose(ntk(X, Y, **args), T, rtol=1e-8)


@pytest.mark.parametrize("act", ACTS)
def test_depth_one_is_the_linear_kernel(act):
    rng = np.random.default_rng(3)
    X, Y = rng.normal(size=(6, 7)), rng.normal(size=(4, 7))
    linear = 1.3 * X @ Y.T / 7 + 0.2
    for kernel in (nngp, ntk):
        np.testing.assert_allclose(kernel(X, Y, depth=1, activation=act, sigma_w2=1.3, sigma_b2=0.2),
                                   linear, rtol=1e-13)


def test_shapes_symmetry_and_blocks(monkeypatch):
    rng = np.random.default_rng(4)
    X = rng.normal(size=(23, 2, 3))
    args = kernel_args("relu", 3)
    K = ntk(X, **args)
    assert K.shape == (23, 23) and K.dtype == np.float64
    np.testing.assert_array_equal(K, K.T)
    # Y = X computes Σ(x, x) by a matrix product, not the diagonal recursion: its rounding
    # enters arccos near 1 through a square root, about 1e-8 relative in the NTK.
    np.testing.assert_allclose(K, ntk(X.reshape(23, 6), X.reshape(23, 6), **args), rtol=1e-7)
    both = nngp_and_ntk(X, X[:5], **args)
    assert both.nngp.shape == (23, 5)
    np.testing.assert_allclose(both.ntk, K[:, :5], rtol=1e-7)
    np.testing.assert_allclose(both.nngp, nngp(X, X[:5], **args), rtol=0, atol=0)
    monkeypatch.setattr(_kernels, "_BLOCK_ELEMENTS", 40)  # blocks of 1-2 rows
    np.testing.assert_allclose(ntk(X, **args), K, rtol=1e-13)
    np.testing.assert_allclose(ntk(X, X[:5], **args), K[:, :5], rtol=1e-7)


def test_zero_input_without_bias():
    """A zero input makes every unit 0: both kernels are 0 beyond the first layer (relu'(0) = 0)."""
    X = np.array([[0.0, 0.0], [1.0, 2.0]])
    for act in ACTS:
        K = nngp_and_ntk(X, depth=3, activation=act, sigma_w2=2.0, sigma_b2=0.0)
        assert np.all(np.isfinite(K.ntk))
        np.testing.assert_array_equal(K.nngp[0], 0.0)
        np.testing.assert_array_equal(K.ntk[0], 0.0)


@pytest.mark.parametrize("kernel", [nngp, ntk, nngp_and_ntk])
def test_kernel_arguments_are_validated(kernel):
    X = np.ones((3, 2))
    good = dict(depth=2, activation="relu", sigma_w2=2.0, sigma_b2=0.0)
    with pytest.raises(ValueError, match=r"activation must be one of 'erf', 'relu', got 'tanh'"):
        kernel(X, **{**good, "activation": "tanh"})
    for depth in (0, 1.5, True):
        with pytest.raises(ValueError, match="depth"):
            kernel(X, **{**good, "depth": depth})
    for bad in (0.0, -1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="sigma_w2"):
            kernel(X, **{**good, "sigma_w2": bad})
    with pytest.raises(ValueError, match="sigma_b2"):
        kernel(X, **{**good, "sigma_b2": -0.1})
    with pytest.raises(ValueError, match="Y has 3 features per sample but X has 2"):
        kernel(X, np.ones((2, 3)), **good)
    with pytest.raises(ValueError, match="X contains NaN"):
        kernel(np.array([[np.nan, 1.0]]), **good)


# ---------------------------------------------------------------------------- regression
def digits_like(n=40, m=15, d=8, C=3, seed=5):
    rng = np.random.default_rng(seed)
    X, Xs = rng.normal(size=(n, d)), rng.normal(size=(m, d))
    labels = rng.integers(0, C, n)
    y = np.eye(C)[labels] - 1.0 / C
    args = kernel_args("relu", 3)
    return ntk(X, **args), ntk(Xs, X, **args), y, labels


def test_kernel_regression_matches_solve():
    K, Ks, y, _ = digits_like()
    for reg in (0.0, 0.3):
        alpha = np.linalg.solve(K + reg * np.eye(len(K)), y)
        np.testing.assert_allclose(kernel_regression(K, y, Ks, reg=reg), Ks @ alpha, rtol=1e-8, atol=1e-10)
        np.testing.assert_allclose(kernel_regression(K, y[:, 0], reg=reg), K @ alpha[:, 0], rtol=1e-8, atol=1e-10)
    assert kernel_regression(K, y[:, 0], Ks).shape == (15,)


def test_kernel_regression_rejects_a_kernel_that_is_not_positive_definite():
    rng = np.random.default_rng(6)
    V = np.linalg.qr(rng.normal(size=(6, 6)))[0]
    K = V @ np.diag([-0.5, 0.1, 1, 2, 3, 4]) @ V.T
    K = (K + K.T) / 2
    y = rng.normal(size=6)
    with pytest.raises(ValueError, match=r"not positive definite: its smallest eigenvalue is -0\.5.*larger reg"):
        kernel_regression(K, y)
    with pytest.raises(ValueError, match="not positive definite"):
        kernel_regression(K, y, reg=0.4)
    np.testing.assert_allclose(kernel_regression(K, y, reg=0.6), K @ np.linalg.solve(K + 0.6 * np.eye(6), y))


def test_kernel_regression_validates():
    K, Ks, y, _ = digits_like()
    with pytest.raises(ValueError, match="K_train is not symmetric"):
        kernel_regression(K + np.triu(np.ones_like(K), 1), y)
    with pytest.raises(ValueError, match=r"K_test: expected shape \(\*, 40\)"):
        kernel_regression(K, y, Ks[:, :30])
    with pytest.raises(ValueError, match=r"y: expected shape \(40,\) or \(40, C\)"):
        kernel_regression(K, y[:30])
    with pytest.raises(ValueError, match="reg"):
        kernel_regression(K, y, reg=-1.0)


# ---------------------------------------------------------------------------- trajectory
def test_trajectory_limits():
    K, Ks, y, _ = digits_like()
    rng = np.random.default_rng(7)
    f0, g0 = 0.1 * rng.normal(size=y.shape), 0.1 * rng.normal(size=(15, 3))
    traj = linearized_trajectory(K, y, [0.0, 1.0, np.inf], K_test=Ks, f0_train=f0, f0_test=g0, lr=0.5)
    assert traj.train.shape == (3, 40, 3) and traj.test.shape == (3, 15, 3)
    np.testing.assert_allclose(traj.train[0], f0, atol=1e-12)
    np.testing.assert_allclose(traj.test[0], g0, atol=1e-12)
    np.testing.assert_allclose(traj.train[-1], y, atol=1e-8)
    # t = ∞ on test points is kernel regression on the residual targets.
    np.testing.assert_allclose(traj.test[-1], g0 + kernel_regression(K, y - f0, Ks), atol=1e-8)
    # The mean prediction (f_0 = 0) with 1-D targets.
    one = linearized_trajectory(K, y[:, 1], [0.0, np.inf], K_test=Ks)
    assert one.train.shape == (2, 40) and one.test.shape == (2, 15)
    np.testing.assert_allclose(one.test[1], kernel_regression(K, y[:, 1], Ks), atol=1e-8)


def test_trajectory_matches_euler_integration():
    K, Ks, y, _ = digits_like()
    lr, dt, t_end = 0.7, 1e-4, 0.5
    lam_max = np.linalg.eigvalsh(K)[-1]
    assert lr * lam_max * dt < 0.01  # a small step: Euler's error is O(dt)
    f, g = np.zeros_like(y), np.zeros((15, 3))
    for _ in range(int(round(t_end / dt))):
        residual = f - y
        f = f - dt * lr * K @ residual
        g = g - dt * lr * Ks @ residual
    traj = linearized_trajectory(K, y, [t_end], K_test=Ks, lr=lr)
    scale = np.abs(y).max()
    assert np.max(np.abs(traj.train[0] - f)) < 1e-3 * scale
    assert np.max(np.abs(traj.test[0] - g)) < 1e-3 * scale


def test_trajectory_with_a_singular_kernel():
    """Duplicated inputs: Θ is singular; the flow still interpolates consistent targets and the
    null modes neither move nor produce NaN at t = ∞."""
    rng = np.random.default_rng(8)
    X = rng.normal(size=(10, 4))
    X = np.vstack([X, X[:3]])
    y = rng.normal(size=(10, 2))
    y = np.vstack([y, y[:3]])
    args = kernel_args("erf", 2)
    traj = linearized_trajectory(ntk(X, **args), y, [0.0, 3.0, np.inf], K_test=ntk(X[:4] + 0.1, X, **args))
    assert np.isfinite(traj.train).all() and np.isfinite(traj.test).all()
    assert np.sum(traj.eigenvalues == 0) == 3
    np.testing.assert_allclose(traj.train[-1], y, atol=1e-6)


def test_trajectory_validates():
    K, Ks, y, _ = digits_like()
    with pytest.raises(ValueError, match="f0_test needs K_test"):
        linearized_trajectory(K, y, [1.0], f0_test=np.zeros((15, 3)))
    with pytest.raises(ValueError, match="times must be >= 0"):
        linearized_trajectory(K, y, [-1.0])
    with pytest.raises(ValueError, match="lr"):
        linearized_trajectory(K, y, [1.0], lr=0.0)
    with pytest.raises(ValueError, match=r"f0_train: expected shape \(40, 3\)"):
        linearized_trajectory(K, y, [1.0], f0_train=np.zeros(40))
    with pytest.raises(ValueError, match="not positive semi-definite"):
        linearized_trajectory(K - 2 * np.linalg.eigvalsh(K)[-1] * np.eye(40), y, [1.0])


# ---------------------------------------------------------------------------- probabilities
def test_probabilities_and_temperature():
    rng = np.random.default_rng(9)
    f = rng.normal(size=(2, 50, 4))
    P = probabilities_from_outputs(f, temperature=0.5)
    np.testing.assert_allclose(P, softmax(f / 0.5, axis=-1), rtol=1e-12)
    np.testing.assert_allclose(P.sum(-1), 1.0)
    with pytest.raises(ValueError, match="temperature"):
        probabilities_from_outputs(f, temperature=0.0)
    with pytest.raises(ValueError, match="C >= 2"):
        probabilities_from_outputs(np.ones((3, 1)))

    # Planted: labels drawn from softmax(z), outputs f = 3 z; the fitted temperature is ≈ 3.
    z = 2.0 * rng.normal(size=(20000, 5))
    p = softmax(z, axis=1)
    labels = (rng.random(len(z))[:, None] > np.cumsum(p, axis=1)).sum(axis=1)
    fit = fit_temperature(3.0 * z, labels)
    assert abs(fit.temperature - 3.0) < 0.1 and not fit.at_bound
    grid = np.exp(np.linspace(np.log(1.0), np.log(10.0), 2001))
    ce = [-np.mean(np.log(softmax(3.0 * z / t, axis=1)[np.arange(len(z)), labels])) for t in grid[::40]]
    assert fit.cross_entropy <= min(ce) + 1e-9
    # A target cross-entropy is matched.
    matched = fit_temperature(3.0 * z, labels, target=fit.cross_entropy + 0.2)
    assert abs(matched.cross_entropy - (fit.cross_entropy + 0.2)) < 1e-5
    # Every sample's top output is its label: the optimum is T -> 0, reported at the bound.
    separable = fit_temperature(np.eye(5)[labels], labels)
    assert separable.at_bound and separable.temperature < 2e-3
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 5\)"):
        fit_temperature(3.0 * z, labels + 1)


# ---------------------------------------------------------------------------- empirical NTK
def test_empirical_ntk_of_a_linear_model():
    rng = np.random.default_rng(10)
    X = torch.as_tensor(rng.normal(size=(9, 5)))
    lin = torch.nn.Linear(5, 3, bias=False).double()
    np.testing.assert_allclose(empirical_ntk(lin, X), (X @ X.T).numpy(), rtol=1e-13, atol=1e-13)
    lin = torch.nn.Linear(5, 3).double()
    Y = X[:4] * 2
    np.testing.assert_allclose(empirical_ntk(lin, X, Y, batch_size=2), (X @ Y.T).numpy() + 1, rtol=1e-13)
    # In the NTK parameterisation the same layer's kernel is the depth-1 NTK.
    ntk_lin = NTKLinear(5, 1, 1.7, 0.3, torch.Generator().manual_seed(0), dtype=torch.float64)
    np.testing.assert_allclose(empirical_ntk(ntk_lin, X),
                               ntk(X.numpy(), depth=1, activation="relu", sigma_w2=1.7, sigma_b2=0.3),
                               rtol=1e-13)


def brute_force_ntk(model, X, Y):
    params = [p for p in model.parameters()]

    def grad(x, c):
        return torch.cat([g.flatten() for g in torch.autograd.grad(model(x[None])[0, c], params)])

    C = model(X[:1]).shape[1]
    return np.array([[np.mean([float(grad(x, c) @ grad(y, c)) for c in range(C)]) for y in Y] for x in X])


def test_empirical_ntk_matches_per_sample_autograd():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(5, 7), torch.nn.Tanh(), torch.nn.Dropout(0.5),
                                torch.nn.Linear(7, 3)).double()
    model.train()
    X, Y = torch.randn(7, 5, dtype=torch.float64), torch.randn(4, 5, dtype=torch.float64)
    model.eval()
    expected = brute_force_ntk(model, X, Y)
    expected_sym = brute_force_ntk(model, X, X)
    model.train()
    for batch_size in (None, 1, 3):
        np.testing.assert_allclose(empirical_ntk(model, X, Y, batch_size=batch_size), expected, rtol=1e-12)
        K = empirical_ntk(model, X, batch_size=batch_size)
        np.testing.assert_array_equal(K, K.T)
        np.testing.assert_allclose(K, expected_sym, rtol=1e-12)
    assert model.training and model[2].training  # the flags are restored
    with pytest.raises(ValueError, match="batch_size"):
        empirical_ntk(model, X, batch_size=0)
    with pytest.raises(ValueError, match="no parameters"):
        empirical_ntk(torch.nn.ReLU(), X)


def test_kernel_distance():
    rng = np.random.default_rng(11)
    A = rng.normal(size=(6, 6))
    K = A @ A.T
    assert kernel_distance(K, 3.0 * K) == pytest.approx(0.0, abs=1e-15)
    assert kernel_distance(np.diag([1.0, 0]), np.diag([0, 1.0])) == pytest.approx(1.0)
    assert kernel_distance(K, -K) == pytest.approx(2.0)
    B = K + 0.1 * np.eye(6)
    expected = 1 - np.sum(K * B) / (np.linalg.norm(K) * np.linalg.norm(B))
    assert kernel_distance(K, B) == pytest.approx(expected, rel=1e-12)
    with pytest.raises(ValueError, match="identically 0"):
        kernel_distance(K, np.zeros_like(K))
    with pytest.raises(ValueError, match="same shape"):
        kernel_distance(K, K[:3])
