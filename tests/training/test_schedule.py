"""Tests of the checkpoint schedule (docs/method.md §5: dense early, geometric in steps, step 0 kept)."""

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from deepmanifold.training import checkpoint_steps


def test_docstring_example():
    assert checkpoint_steps(1000, 10).tolist() == [0, 1, 2, 5, 12, 29, 70, 170, 412, 1000]


def test_small_cases():
    assert checkpoint_steps(0, 1).tolist() == [0]
    assert checkpoint_steps(0, 50).tolist() == [0]
    assert checkpoint_steps(1, 2).tolist() == [0, 1]
    assert checkpoint_steps(7, 2).tolist() == [0, 7]
    assert checkpoint_steps(5, 6).tolist() == [0, 1, 2, 3, 4, 5]
    assert checkpoint_steps(5, 100).tolist() == [0, 1, 2, 3, 4, 5]
    assert checkpoint_steps(2, 3).tolist() == [0, 1, 2]
    # One short of every step: all but one step recorded.
    assert checkpoint_steps(6, 6).tolist() in ([0, 1, 2, 3, 4, 6], [0, 1, 2, 3, 5, 6],
                                               [0, 1, 2, 4, 5, 6], [0, 1, 3, 4, 5, 6],
                                               [0, 2, 3, 4, 5, 6])


def test_returns_int64_and_accepts_integral_numbers():
    out = checkpoint_steps(np.int64(1000), np.int32(10))
    assert out.dtype == np.int64
    assert out.tolist() == checkpoint_steps(1000.0, 10).tolist() == checkpoint_steps(1000, 10).tolist()


@pytest.mark.parametrize(
    "total, n, match",
    [
        (-1, 5, "total_steps"),
        (10.5, 5, "total_steps"),
        (True, 5, "total_steps"),
        (10, 0, "n_checkpoints"),
        (10, -2, "n_checkpoints"),
        (10, 2.5, "n_checkpoints"),
        (10, True, "n_checkpoints"),
        (10, 1, "n_checkpoints"),  # a run with steps needs step 0 and the last step
    ],
)
def test_bad_inputs(total, n, match):
    with pytest.raises(ValueError, match=match):
        checkpoint_steps(total, n)


@settings(max_examples=300, deadline=None)
@given(total=st.integers(0, 10**7), n=st.integers(2, 400))
def test_structure(total, n):
    s = checkpoint_steps(total, n)
    assert s.dtype == np.int64 and s.ndim == 1
    assert len(s) == min(n, total + 1)  # exact count, or every step
    assert s[0] == 0 and s[-1] == total
    assert np.all(np.diff(s) > 0)
    if total + 1 <= n:
        assert s.tolist() == list(range(total + 1))


@settings(max_examples=300, deadline=None)
@given(total=st.integers(2, 10**7), n=st.integers(3, 400))
def test_dense_early_sparse_late(total, n):
    s = checkpoint_steps(total, n)
    gaps = np.diff(s)
    # Starts with every step (0, 1, ...): spacing is finest at the start.
    assert s[1] == 1
    # Gaps never shrink by more than one step (rounding) as training goes on.
    assert np.all(np.diff(gaps) >= -1)
    # More checkpoints in the first half of the run than in the second.
    if len(s) < total + 1:
        assert np.sum(s <= total / 2) >= np.sum(s > total / 2)


@settings(max_examples=300, deadline=None)
@given(total=st.integers(100, 10**8), n=st.integers(3, 300))
def test_geometric_once_steps_are_large(total, n):
    """Once steps are large enough that rounding does not matter, consecutive ratios
    s[j+1]/s[j] are (almost) constant: the schedule is geometric in steps."""
    s = checkpoint_steps(total, n).astype(np.float64)
    for a, b, c in zip(s[1:], s[2:], s[3:]):
        if a >= 100:
            assert abs(math.log(c / b) - math.log(b / a)) <= 2.0 / a, (a, b, c)


@pytest.mark.parametrize("total, n", [(10**6, 70), (30_000, 65), (5000, 75)])
def test_late_ratio_is_geometric_mean(total, n):
    """The steps beyond 1000 follow the geometric progression to total_steps."""
    s = checkpoint_steps(total, n).astype(np.float64)
    late = s[s >= 1000]
    if len(late) < 3:
        pytest.skip("too few large steps")
    ratio = (total / late[0]) ** (1.0 / (len(late) - 1))
    np.testing.assert_allclose(late[1:] / late[:-1], ratio, rtol=2e-3)


@pytest.mark.parametrize("total, n", [(None, 5), (10, None), (float("inf"), 5), (10, float("nan")), ("10", 5)])
def test_non_numbers_raise_value_error(total, n):
    with pytest.raises(ValueError, match="must be an integer"):
        checkpoint_steps(total, n)


# --------------------------------------------------------------------------- the exponential learning rate

def _scale_invariant_run(schedule, momentum, weight_decay, steps=60):
    """Train-mode outputs along a run of a network whose loss is invariant to its trained weights' scale."""
    from torch import nn

    from deepmanifold.training.plan import lr_at, make_optimizer, set_lr

    torch.manual_seed(0)
    lin = nn.Linear(16, 12, bias=False)
    model = nn.Sequential(nn.Flatten(), lin, nn.BatchNorm1d(12, affine=False), nn.ReLU(), nn.Linear(12, 3))
    model[4].requires_grad_(False)
    cfg = {"optimizer": "sgd", "lr": 0.1, "momentum": momentum, "weight_decay": weight_decay, "schedule": schedule}
    opt = make_optimizer(cfg, [lin.weight])
    g = torch.Generator().manual_seed(1)
    x, y = torch.randn(64, 1, 4, 4, generator=g), torch.randint(0, 3, (64,), generator=g)
    outs = []
    for t in range(steps):
        set_lr(opt, lr_at(cfg, t, steps))
        loss = nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        outs.append(model(x).detach())
    return torch.stack(outs)


def test_exp_schedule_without_momentum_is_weight_decay_exactly():
    # Li & Arora (2020): for a scale-invariant loss, w̃_t = α^{-t} w_t, the same function.
    constant = _scale_invariant_run("constant", 0.0, 0.05)
    exp = _scale_invariant_run("exp", 0.0, 0.05)
    assert (constant - exp).abs().max() < 1e-4  # BatchNorm's eps breaks the invariance by ~1e-5
    other = _scale_invariant_run("constant", 0.0, 0.0)
    assert (constant - other).abs().max() > 1e-2  # the weight decay itself matters here


def test_exp_lr_factor_is_the_larger_root_and_the_schedule_grows_by_its_inverse_square():
    from deepmanifold.training.plan import lr_at
    from deepmanifold.training.schedule import exp_lr_factor

    a = exp_lr_factor(0.1, 5e-4, 0.9)
    assert a**2 - (1 + 0.9 - 0.1 * 5e-4) * a + 0.9 == pytest.approx(0, abs=1e-12)
    assert a > 0.9 ** 0.5  # the larger of the two roots (their product is the momentum)
    assert a ** (-2 * 391) == pytest.approx(1.4812, abs=5e-4)  # per epoch of 391 steps (Li & Arora)
    assert exp_lr_factor(0.2, 0.1, 0.0) == pytest.approx(1 - 0.02)  # no momentum: 1 - lr * wd
    cfg = {"lr": 0.1, "weight_decay": 5e-4, "momentum": 0.9, "schedule": "exp"}
    assert lr_at(cfg, 10, 100) / lr_at(cfg, 9, 100) == pytest.approx(a**-2)
    with pytest.raises(ValueError, match="too large for momentum"):
        exp_lr_factor(0.1, 0.05, 0.9)


def test_exp_schedule_config_checks():
    from deepmanifold.training.config import validate_config

    base = {"arch": "mlp", "arch_options": {}, "optimizer": "sgd", "lr": 0.1, "momentum": 0.9,
            "weight_decay": 5e-4, "batch_size": 8, "epochs": 1, "seed": 0, "checkpoints": 2, "schedule": "exp"}
    assert validate_config(base)["schedule"] == "exp"
    with pytest.raises(ValueError, match="supports optimizer 'sgd'"):
        validate_config({**base, "optimizer": "adam"})
    with pytest.raises(ValueError, match="no warm-up"):
        validate_config({**base, "warmup_epochs": 1})
    with pytest.raises(ValueError, match="too large"):
        validate_config({**base, "weight_decay": 0.5})


def test_the_training_schedules_factor_is_theorys():
    from deepmanifold.theory import exp_lr_alpha
    from deepmanifold.training.schedule import exp_lr_factor

    for lr, wd, m in ((0.1, 5e-4, 0.9), (0.05, 5e-3, 0.9), (0.2, 0.1, 0.0), (0.1, 0.0, 0.5)):
        assert exp_lr_factor(lr, wd, m) == pytest.approx(exp_lr_alpha(lr, wd, m), rel=1e-12)
