"""Li & Arora's exponential learning rate: the root, the schedule, the published factor."""

import doctest
import math

import numpy as np
import pytest

from deepmanifold.theory import _exp_lr
from deepmanifold.theory._exp_lr import exp_lr_alpha, exp_lr_schedule

#: Steps per epoch of CIFAR-10 (50 000 images) at batch 128: ceil(50000 / 128).
CIFAR10_STEPS = 391


@pytest.mark.parametrize("lr, wd, momentum", [(0.1, 5e-4, 0.9), (0.05, 1e-4, 0.0), (1.0, 0.01, 0.5),
                                              (0.4, 5e-5, 0.99), (0.1, 0.0, 0.9)])
def test_alpha_is_the_larger_root_of_the_quadratic(lr, wd, momentum):
    alpha = exp_lr_alpha(lr, wd, momentum)
    b = 1 + momentum - lr * wd
    assert alpha * alpha - b * alpha + momentum == pytest.approx(0.0, abs=1e-15)
    other = momentum / alpha  # product of the roots is γ
    assert other <= alpha and math.sqrt(momentum) <= alpha <= 1.0
    if wd == 0:
        assert alpha == 1.0
    if momentum == 0:
        assert alpha == pytest.approx(1 - lr * wd, rel=1e-15)  # plain SGD


def test_the_published_growth_per_epoch():
    # Li & Arora 2020, CIFAR-10 at batch 128 (391 steps an epoch), η = 0.1, λ = 5e-4, γ = 0.9:
    # the equivalent learning rate grows by α^(-2·391) ≈ 1.4812 per epoch.
    alpha = exp_lr_alpha(0.1, 5e-4, 0.9)
    assert alpha == pytest.approx(0.99949772837, abs=1e-11)
    assert alpha ** (-2 * CIFAR10_STEPS) == pytest.approx(1.4812, abs=5e-5)
    assert round(alpha ** (-2 * CIFAR10_STEPS), 4) == 1.4812


def test_schedule_grows_by_alpha_to_the_minus_two_each_step():
    lr, wd, momentum = 0.1, 5e-4, 0.9
    alpha = exp_lr_alpha(lr, wd, momentum)
    rates = exp_lr_schedule(lr, wd, momentum, 2 * CIFAR10_STEPS + 1)
    assert rates.shape == (2 * CIFAR10_STEPS + 1,) and rates.dtype == np.float64
    assert rates[0] == pytest.approx(lr / alpha, rel=1e-15)  # η̃_0 = η α^(-1)
    assert rates[1:] / rates[:-1] == pytest.approx(np.full(2 * CIFAR10_STEPS, alpha ** -2), rel=1e-12)
    assert rates[CIFAR10_STEPS] / rates[0] == pytest.approx(1.4812, abs=5e-5)
    assert rates == pytest.approx(lr * alpha ** (-2.0 * np.arange(len(rates)) - 1), rel=1e-12)


def test_no_weight_decay_is_a_constant_schedule_and_overflow_is_inf():
    assert exp_lr_schedule(0.1, 0.0, 0.9, 5) == pytest.approx(np.full(5, 0.1))
    with np.errstate(all="raise"):  # no warning escapes
        rates = exp_lr_schedule(0.5, 0.5, 0.0, 2000)  # α = 0.75
    assert math.isfinite(rates[0]) and math.isinf(rates[-1])


def test_the_admissible_range_ends_at_one_minus_root_momentum_squared():
    momentum = 0.81
    edge = (1 - math.sqrt(momentum)) ** 2  # 0.01
    assert exp_lr_alpha(1.0, edge, momentum) == pytest.approx(math.sqrt(momentum), abs=1e-7)  # a double root
    with pytest.raises(ValueError, match=r"at most \(1 - sqrt\(momentum\)\)\*\*2"):
        exp_lr_alpha(1.0, edge * 1.001, momentum)
    with pytest.raises(ValueError, match="no root in"):
        exp_lr_alpha(1.0, 1.0, 0.0)  # α would be 0
    with pytest.raises(ValueError, match="must be at most"):
        exp_lr_alpha(0.4, 1e-3, 0.99)  # momentum 0.99 admits λη up to 2.5e-5 only


@pytest.mark.parametrize("args, match", [
    ((0.0, 5e-4, 0.9), "lr must be a finite number > 0"),
    ((-0.1, 5e-4, 0.9), "lr must be a finite number > 0"),
    ((math.inf, 5e-4, 0.9), "lr must be a finite number > 0"),
    ((True, 5e-4, 0.9), "lr must be a finite number > 0"),
    ((0.1, -1e-4, 0.9), "weight_decay must be a finite number >= 0"),
    ((0.1, math.nan, 0.9), "weight_decay must be a finite number >= 0"),
    ((0.1, 5e-4, 1.0), r"momentum must be a finite number in \[0, 1\)"),
    ((0.1, 5e-4, -0.1), r"momentum must be a finite number in \[0, 1\)"),
    ((0.1, "5e-4", 0.9), "weight_decay must be a finite number"),
])
def test_bad_inputs_say_what_was_wrong(args, match):
    with pytest.raises(ValueError, match=match):
        exp_lr_alpha(*args)


@pytest.mark.parametrize("steps", [0, -3, 2.5, True, "10"])
def test_steps_must_be_a_positive_integer(steps):
    with pytest.raises(ValueError, match="steps must be an integer >= 1"):
        exp_lr_schedule(0.1, 5e-4, 0.9, steps)


def test_docstring_examples():
    assert doctest.testmod(_exp_lr, raise_on_error=False).failed == 0
