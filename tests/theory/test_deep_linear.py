"""The deep linear closed forms against gradient descent on a linear network, and against identities."""

import numpy as np
import pytest
import torch

from deepmanifold.theory import half_times, io_modes, linear_learning_curve, mode_projections, mode_strengths


def whitened_task(rng, n=400, d=8, C=5, s=(3.0, 2.0, 1.0)):
    """Inputs with XᵀX/n = I and targets whose correlation with them has singular values s."""
    X = np.linalg.qr(rng.standard_normal((n, d)))[0] * np.sqrt(n)
    U = np.linalg.qr(rng.standard_normal((C, len(s))))[0]
    V = np.linalg.qr(rng.standard_normal((d, len(s))))[0]
    Y = X @ V @ np.diag(s) @ U.T  # Σ_yx = Yᵀ X / n = U S Vᵀ
    return X, Y, U, V


def test_io_modes_recover_the_planted_correlation():
    X, Y, U, V = whitened_task(np.random.default_rng(0))
    modes = io_modes(X, Y)
    np.testing.assert_allclose(modes.s[:3], [3.0, 2.0, 1.0], rtol=1e-10)
    np.testing.assert_allclose(np.abs(modes.U[:, :3].T @ U), np.eye(3), atol=1e-10)
    # A linear map projected on the modes gives its strengths exactly.
    np.testing.assert_allclose(mode_projections(Y, X, modes)[:3], [3.0, 2.0, 1.0], rtol=1e-10)


def test_gradient_descent_on_a_two_layer_linear_network_follows_the_closed_form():
    rng = np.random.default_rng(1)
    X, Y, U, V = whitened_task(rng)
    s = np.array([3.0, 2.0, 1.0])
    lr, a0, hidden = 2e-3, 0.05, 6
    R = np.linalg.qr(rng.standard_normal((hidden, 3)))[0]  # balanced start along the modes: W2 W1 = a0² U Vᵀ
    W1 = torch.tensor(a0 * R @ V.T, requires_grad=True)
    W2 = torch.tensor(a0 * U @ R.T, requires_grad=True)
    Xt, Yt = torch.tensor(X), torch.tensor(Y)
    opt = torch.optim.SGD([W1, W2], lr=lr)
    modes = io_modes(X, Y, k=3)
    checkpoints = [0, 300, 600, 1000, 1500, 2500]
    measured = []
    for step in range(checkpoints[-1] + 1):
        if step in checkpoints:
            measured.append(mode_projections((Xt @ (W2 @ W1).T).detach().numpy(), X, modes))
        loss = 0.5 * ((Yt - Xt @ (W2 @ W1).T) ** 2).sum(1).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    predicted = mode_strengths(s, checkpoints, u0=a0**2, tau=1 / lr)
    np.testing.assert_allclose(np.array(measured), predicted, rtol=0.03, atol=1e-3)
    # Half-times: the strongest mode first, each within 5 % of the closed form.
    t_half = half_times(s, u0=a0**2, tau=1 / lr)
    assert np.all(np.diff(t_half) > 0)
    grid = np.arange(checkpoints[-1] + 1)
    fine = mode_strengths(s, grid, u0=a0**2, tau=1 / lr)
    crossing = [grid[np.argmax(fine[:, j] >= s[j] / 2)] for j in range(3)]
    np.testing.assert_allclose(crossing, t_half, rtol=0.01, atol=1)


def test_closed_form_identities():
    s = np.array([4.0, 1.5])
    u = mode_strengths(s, [0.0, 1e9], u0=0.01, tau=2.0)
    np.testing.assert_allclose(u[0], [0.01, 0.01])
    np.testing.assert_allclose(u[1], s)
    t = half_times(s, u0=0.01, tau=2.0)
    np.testing.assert_allclose(np.diag(mode_strengths(s, t, u0=0.01, tau=2.0)), s / 2)
    curve = linear_learning_curve(s, [0.0, 1e9], u0=0.01)
    assert curve[0] == pytest.approx(0.5 * ((s - 0.01) ** 2).sum()) and curve[1] == pytest.approx(0.0)


def test_bad_input():
    with pytest.raises(ValueError, match="below half"):
        half_times([1.0], u0=0.6)
    with pytest.raises(ValueError, match="u0"):
        mode_strengths([1.0], [0.0], u0=0.0)
    with pytest.raises(ValueError, match="same n"):
        io_modes(np.ones((3, 2)), np.ones((4, 2)))
