"""The deep linear closed forms against gradient descent on a linear network, and against identities."""

import numpy as np
import pytest
import torch

from deepmanifold.data import load_dataset, make_probes
from deepmanifold.models import DeepLinear, build_model
from deepmanifold.theory import (crossing_times, effective_initial_strengths, half_times, hierarchical_data, io_modes,
                                 linear_learning_curve, mode_projections, mode_strengths, predict_mode_learning)
from deepmanifold.training import train_run
from deepmanifold.training.plan import initial_model


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


def test_effective_strength_of_a_balanced_start_is_its_strength():
    rng = np.random.default_rng(2)
    X, Y, U, V = whitened_task(rng)
    modes = io_modes(X, Y, k=3)
    R = np.linalg.qr(rng.standard_normal((6, 3)))[0]
    a0 = 0.05
    # W2 W1 = a0² U Vᵀ with both layers of norm a0 along each mode: the closed form's own start.
    u0 = effective_initial_strengths(a0 * R @ modes.V.T, a0 * modes.U @ R.T, modes)
    np.testing.assert_allclose(u0, a0**2, rtol=1e-12)


def _gradient_descent_half_times(model, X, Y, lr, steps):
    """Full-batch gradient descent on ½ mean |f(x) − y|²; the modes' strengths at every step, by hand."""
    first, second = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    modes = io_modes(X, Y)
    keep = modes.s > 1e-8 * modes.s[0]
    U, V = modes.U[:, keep], modes.V[:, keep]
    x = torch.tensor(X, dtype=torch.float32).reshape(len(X), 1, 1, -1)
    y = torch.tensor(Y, dtype=torch.float32)
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    u = []
    for _ in range(steps):
        W = (second.weight @ first.weight).detach().double().numpy()
        u.append(np.einsum("ck,cd,dk->k", U, W, V))
        opt.zero_grad()
        (0.5 * ((model(x) - y) ** 2).sum(dim=1).mean()).backward()
        opt.step()
    return crossing_times(np.arange(steps), np.array(u), modes.s[keep] / 2, ceilings=modes.s[keep])


def test_hierarchical_data_modes_are_learned_on_the_predicted_schedule():
    """Saxe et al. (2019)'s tree-structured items: half-times from random small weights within 1 %."""
    X, Y = hierarchical_data(levels=3, n_features=200, flip_probability=0.1, random_state=0)
    torch.manual_seed(0)
    model = DeepLinear((1, 1, X.shape[1]), Y.shape[1], width=512, depth=1, init_scale=0.01)
    s1 = io_modes(X, Y).s[0]
    lr = 0.005 / s1  # η s ≪ 1: gradient descent close to the flow
    prediction = predict_mode_learning(model, X, Y, lr=lr)
    assert len(prediction.half_times) == 8  # one mode per item: the tree's splits
    steps = int(1.15 * prediction.half_times.max())
    measured = _gradient_descent_half_times(model, X, Y, lr, steps)
    np.testing.assert_allclose(measured, prediction.half_times, rtol=0.01)
    # The root mode (every item) is strongest and is learned first.
    assert np.argmin(measured) == 0
    # Power: the naive start u_α(0) = u_αᵀ W₂W₁ v_α (random sign, no alignment) misses by far.
    torch.manual_seed(0)
    fresh = DeepLinear((1, 1, X.shape[1]), Y.shape[1], width=512, depth=1, init_scale=0.01)
    first, second = [m for m in fresh.modules() if isinstance(m, torch.nn.Linear)]
    W = (second.weight @ first.weight).detach().double().numpy()
    naive = np.abs(np.einsum("ck,cd,dk->k", prediction.modes.U, W, prediction.modes.V))
    naive_times = half_times(prediction.modes.s, u0=naive, tau=prediction.tau)
    assert np.abs(naive_times / measured - 1).max() > 0.05


def test_linear_architecture_on_whitened_digits_follows_the_closed_form():
    """The zoo's `linear` network trained by train_run (squared loss, full batch, whitened digits),
    measured from its recorded log-probabilities on the train probe: every mode within 1 %."""
    ds = load_dataset("digits", whiten=True)
    probes = make_probes(ds, n_train=500, n_test=100, seed=0)
    lr = 0.02
    cfg = dict(arch="linear", arch_options=dict(width=512, depth=1, init_scale=0.01), optimizer="sgd", lr=lr,
               momentum=0.0, weight_decay=0.0, batch_size=len(ds.y_train), epochs=1000, seed=1, checkpoints=80,
               schedule="constant", loss="squared")
    run = train_run(cfg, ds, probes)
    assert run.status == "complete"
    X = ds.x_train.reshape(len(ds.y_train), -1).numpy()
    Y = np.eye(10)[ds.y_train.numpy()]
    prediction = predict_mode_learning(initial_model(cfg, ds), X, Y, lr=lr)
    assert len(prediction.modes.s) == 9  # centred inputs: the tenth (mean) mode carries nothing
    X_probe = X[probes["train"].indices]
    u = np.array([mode_projections(logp, X_probe, prediction.modes) for logp in run.logp["train"]])
    measured = crossing_times(run.steps, u, prediction.modes.s / 2, ceilings=prediction.modes.s)
    np.testing.assert_allclose(measured, prediction.half_times, rtol=0.01)
    # The strengths along the way follow the sigmoid too (checked where they are past 10 %).
    predicted = prediction.strengths(run.steps)
    late = predicted > 0.1 * prediction.modes.s
    np.testing.assert_allclose(u[late], predicted[late], rtol=0.05)


def test_crossing_times_interpolate_the_sigmoid_exactly():
    s, u0, tau = np.array([2.0, 1.0]), 1e-3, 3.0
    exact = half_times(s, u0=u0, tau=tau)
    t = np.linspace(0, 1.2 * exact.max(), 7)  # a few coarse samples
    u = mode_strengths(s, t, u0=u0, tau=tau)
    np.testing.assert_allclose(crossing_times(t, u, s / 2, ceilings=s), exact, rtol=1e-10)
    linear = crossing_times(t, u, s / 2)
    assert np.abs(linear / exact - 1).max() > 1e-3  # straight lines between samples are not exact
    assert np.isnan(crossing_times(t, u, [5.0, 0.5])[0])
    assert crossing_times(t, u, [1e-4, 1e-4])[0] == 0.0
    with pytest.raises(ValueError, match="strictly increasing"):
        crossing_times(t[::-1], u, s / 2)
    with pytest.raises(ValueError, match="ceilings"):
        crossing_times(t, u, s / 2, ceilings=s / 4)


def test_hierarchical_data():
    X, Y = hierarchical_data(levels=2, n_features=500, flip_probability=0.05, random_state=3)
    np.testing.assert_allclose(X.T @ X / 4, np.eye(4))
    assert Y.shape == (4, 500) and set(np.unique(Y)) == {-1.0, 1.0}
    again = hierarchical_data(levels=2, n_features=500, flip_probability=0.05, random_state=3)[1]
    np.testing.assert_array_equal(Y, again)
    # Siblings share more features than cousins; without flips every item is the same.
    same = (Y[:, None, :] == Y[None, :, :]).mean(axis=2)
    assert same[0, 1] > same[0, 2] and same[2, 3] > same[1, 3]
    flat = hierarchical_data(levels=2, n_features=50, flip_probability=0.0, random_state=0)[1]
    assert (flat == flat[0]).all()
    with pytest.raises(ValueError, match="flip_probability"):
        hierarchical_data(flip_probability=0.5)
    with pytest.raises(ValueError, match="levels"):
        hierarchical_data(levels=0)


def test_prediction_refuses_what_the_closed_form_does_not_describe():
    X, Y = hierarchical_data(levels=2, n_features=20, random_state=0)
    with pytest.raises(ValueError, match="'linear' architecture with depth = 1; got 3 Linear layers"):
        predict_mode_learning(DeepLinear((1, 1, 4), 20, width=8, depth=2), X, Y, lr=0.01)
    with pytest.raises(ValueError, match="ReLU"):
        predict_mode_learning(build_model("mlp", (1, 1, 4), 20, width=8, depth=1), X, Y, lr=0.01)
    with pytest.raises(ValueError, match="whitened inputs"):
        predict_mode_learning(DeepLinear((1, 1, 4), 20, width=8, depth=1), 3 * X, Y, lr=0.01)
    with pytest.raises(ValueError, match="below half"):  # LeCun-sized weights are not a small start
        predict_mode_learning(DeepLinear((1, 1, 4), 20, width=64, depth=1, init_scale=3.0), X, Y, lr=0.01)
    with pytest.raises(ValueError, match="u0 must be"):
        half_times([1.0, 2.0], u0=[0.1])


def test_bad_input():
    with pytest.raises(ValueError, match="below half"):
        half_times([1.0], u0=0.6)
    with pytest.raises(ValueError, match="u0"):
        mode_strengths([1.0], [0.0], u0=0.0)
    with pytest.raises(ValueError, match="same n"):
        io_modes(np.ones((3, 2)), np.ones((4, 2)))
