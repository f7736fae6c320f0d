"""Tests of one training run and its recorder (docs/method.md §1 and §5).

The run is tiny (MLP of width 16 on 8x8 digits, a few epochs); reference values are
recomputed independently: a fresh model, a hand-written training loop, accuracy and
NLL from the recorded log-probabilities.
"""

import math

import numpy as np
import pytest
import torch
from torch import nn

from deepmanifold.data import Dataset, ProbeSet, load_digits, make_probes
from deepmanifold.models import build_model
from deepmanifold.training import (
    CONFIG_KEYS,
    checkpoint_steps,
    steps_per_epoch,
    train_run,
)
from deepmanifold.training.plan import lr_at, shuffle_seed

BASE = dict(
    arch="mlp",
    arch_options=dict(width=16, depth=2),
    optimizer="sgd",
    lr=0.1,
    momentum=0.9,
    weight_decay=1e-4,
    batch_size=64,
    epochs=3,
    seed=0,
    checkpoints=8,
    schedule="cosine",
)
SPE = 1347 // 64  # 21
TOTAL = 3 * SPE


@pytest.fixture(scope="module")
def ds():
    return load_digits(seed=0)


@pytest.fixture(scope="module")
def probes(ds):
    return make_probes(ds, n_train=120, n_test=90, seed=0)


@pytest.fixture(scope="module")
def base_run(ds, probes):
    calls = []
    torch.manual_seed(12345)  # the caller's global seed must not matter
    state = torch.get_rng_state()
    result = train_run(BASE, ds, probes, callback=lambda *a: calls.append(a))
    return result, calls, state, torch.get_rng_state()


@pytest.fixture(scope="module")
def repeat_run(ds, probes):
    torch.manual_seed(999)
    return train_run(dict(BASE), ds, probes)


def _assert_same_run(a, b):
    assert np.array_equal(a.steps, b.steps)
    for name in a.logp:
        assert np.array_equal(a.logp[name], b.logp[name])  # bitwise


# --------------------------------------------------------------------------- structure

def test_checkpoints_and_epochs(base_run):
    r, _, _, _ = base_run
    assert r.status == "complete"
    assert r.steps_per_epoch == SPE == steps_per_epoch(1347, 64)
    expected = checkpoint_steps(TOTAL, 8)
    assert np.array_equal(r.steps, expected)
    assert r.n_checkpoints == len(expected) == 8
    assert r.steps.dtype == np.int64
    np.testing.assert_array_equal(r.epochs, expected / SPE)
    assert r.epochs[-1] == 3.0


def test_logp_shapes_and_normalisation(base_run, probes):
    r, _, _, _ = base_run
    assert set(r.logp) == {"train", "test"}
    for name, lp in r.logp.items():
        assert lp.shape == (8, len(probes[name]), 10) and lp.dtype == np.float32
        assert np.all(np.isfinite(lp)) and np.all(lp <= 0)
        lse = np.log(np.exp(lp.astype(np.float64)).sum(axis=2))
        np.testing.assert_allclose(lse, 0.0, atol=1e-5)


def test_metrics_recomputed_from_logp(base_run, probes):
    r, _, _, _ = base_run
    assert set(r.metrics) == {"train_loss", "train_acc", "test_loss", "test_acc"}
    for split in ("train", "test"):
        lp = r.logp[split].astype(np.float64)
        y = np.asarray(probes[split].labels)
        n = len(y)
        for k in range(r.n_checkpoints):
            nll = -sum(lp[k, i, y[i]] for i in range(n)) / n
            acc = sum(int(np.argmax(lp[k, i]) == y[i]) for i in range(n)) / n
            assert r.metrics[f"{split}_loss"][k] == pytest.approx(nll, rel=1e-9, abs=1e-9)
            assert r.metrics[f"{split}_acc"][k] == pytest.approx(acc, abs=1e-12)
    assert r.final() == {k: float(v[-1]) for k, v in r.metrics.items()}


def test_fingerprints_parameters_callback(base_run, probes):
    r, calls, _, _ = base_run
    assert r.fingerprints == {name: p.fingerprint for name, p in probes.items()}
    # Closed-form MLP size: 64*16 + 2*16 + 16*16 + 2*16 + 16*10 + 10.
    assert r.n_parameters == 1514
    assert calls == [(i, 8, int(s)) for i, s in enumerate(r.steps)]
    assert r.wall_time > 0
    assert "complete" == r.status and str(TOTAL) in r.message


def test_training_learns(base_run):
    r, _, _, _ = base_run
    m = r.metrics
    # At initialisation: about chance; after 3 epochs: clearly learnt.
    assert m["train_loss"][0] > 1.8
    assert m["train_loss"][-1] < 0.5 * m["train_loss"][0]
    assert m["train_acc"][-1] > 0.85 > m["train_acc"][0]
    assert m["test_acc"][-1] > 0.8


# --------------------------------------------------------------------------- reproducibility

def test_step_zero_is_the_fresh_model(base_run, ds, probes):
    r, _, _, _ = base_run
    torch.manual_seed(BASE["seed"])
    model = build_model("mlp", (1, 8, 8), 10, width=16, depth=2)
    model.eval()
    with torch.no_grad():
        for name, p in probes.items():
            ref = torch.log_softmax(model(p.inputs(ds)), dim=1).numpy()
            np.testing.assert_allclose(r.logp[name][0], ref, rtol=0, atol=1e-6)


def test_deterministic_and_independent_of_global_rng(base_run, repeat_run):
    r, _, before, after = base_run
    _assert_same_run(r, repeat_run)  # run under different global seeds
    for key in r.metrics:
        assert np.array_equal(r.metrics[key], repeat_run.metrics[key])
    assert torch.equal(before, after)  # the caller's global RNG is untouched


def test_other_seed_differs(base_run, ds, probes):
    r, _, _, _ = base_run
    other = train_run(dict(BASE, seed=1), ds, probes)
    assert other.status == "complete"
    assert np.array_equal(other.steps, r.steps)
    for name in r.logp:
        assert not np.allclose(other.logp[name][0], r.logp[name][0])  # init differs
        assert not np.allclose(other.logp[name][-1], r.logp[name][-1])


def test_matches_an_independent_training_loop(ds, probes):
    """Checkpoint s = the model after s minibatch updates with the documented
    cosine learning rate, evaluated in eval mode; minibatches from a generator
    seeded by the run seed's derived stream, incomplete last batch dropped."""
    cfg = dict(BASE, epochs=2, checkpoints=6, weight_decay=1e-3, momentum=0.5, seed=3)
    result = train_run(cfg, ds, probes)

    torch.manual_seed(3)
    model = build_model("mlp", (1, 8, 8), 10, width=16, depth=2)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.5, weight_decay=1e-3)
    gen = torch.Generator().manual_seed(shuffle_seed(3))
    total = 2 * SPE
    wanted = set(checkpoint_steps(total, 6).tolist())
    px = {name: p.inputs(ds) for name, p in probes.items()}
    recorded = {name: [] for name in probes}

    def record():
        model.eval()
        with torch.no_grad():
            for name, x in px.items():
                recorded[name].append(torch.log_softmax(model(x), dim=1).numpy())
        model.train()

    record()
    step = 0
    model.train()
    for _ in range(2):
        perm = torch.randperm(1347, generator=gen)
        for b in range(SPE):
            idx = perm[b * 64 : (b + 1) * 64]
            for g in opt.param_groups:
                g["lr"] = 0.1 * 0.5 * (1 + math.cos(math.pi * step / total))
            loss = nn.functional.cross_entropy(model(ds.x_train[idx]), ds.y_train[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            step += 1
            if step in wanted:
                record()
    assert result.steps.tolist() == sorted(wanted)
    for name in probes:
        np.testing.assert_allclose(result.logp[name], np.stack(recorded[name]), rtol=0, atol=1e-5)


def test_lr_schedule_closed_form():
    cos = {"lr": 0.2, "schedule": "cosine"}
    assert lr_at(cos, 0, 100) == pytest.approx(0.2, rel=1e-15)
    assert lr_at(cos, 50, 100) == pytest.approx(0.1, rel=1e-12)
    assert lr_at(cos, 25, 100) == pytest.approx(0.1 * (1 + math.sqrt(0.5)), rel=1e-12)
    assert lr_at(cos, 100, 100) == pytest.approx(0.0, abs=1e-15)
    assert lr_at(cos, 99, 100) > 0  # the last update still moves the model
    const = {"lr": 0.2, "schedule": "constant"}
    assert all(lr_at(const, s, 100) == 0.2 for s in (0, 50, 99))


def test_constant_schedule_and_adam_without_momentum(ds, probes):
    cfg = {k: v for k, v in BASE.items() if k != "momentum"}
    cfg.update(optimizer="adam", lr=1e-2, schedule="constant", epochs=1, checkpoints=4, data="digits")
    r = train_run(cfg, ds, probes)
    assert r.status == "complete"
    assert np.array_equal(r.steps, checkpoint_steps(SPE, 4))
    assert r.metrics["train_loss"][-1] < r.metrics["train_loss"][0]


def test_extra_probes_are_recorded(ds, probes):
    test = probes["test"]
    extra = ProbeSet("extra", "test", test.indices, test.labels, test.fingerprint)
    r = train_run(dict(BASE, epochs=1, checkpoints=3), ds, {**probes, "extra": extra})
    assert set(r.logp) == {"train", "test", "extra"}
    assert np.array_equal(r.logp["extra"], r.logp["test"])
    assert set(r.metrics) == {f"{p}_{m}" for p in ("train", "test", "extra") for m in ("loss", "acc")}
    np.testing.assert_array_equal(r.metrics["extra_acc"], r.metrics["test_acc"])
    np.testing.assert_array_equal(r.metrics["extra_loss"], r.metrics["test_loss"])


# --------------------------------------------------------------------------- divergence

def test_huge_learning_rate_diverges_without_raising(ds, probes):
    r = train_run(dict(BASE, lr=1e12, momentum=0.0), ds, probes)
    assert r.status == "diverged"
    assert r.steps.tolist() == [0]
    assert "step 1" in r.message
    for name, lp in r.logp.items():
        assert lp.shape == (1, len(probes[name]), 10) and np.all(np.isfinite(lp))
    assert all(v.shape == (1,) for v in r.metrics.values())
    assert r.epochs.tolist() == [0.0]


def _with_nan_train_sample(ds, k):
    x = ds.x_train.clone()
    x[k] = float("nan")
    return Dataset("digits", x, ds.y_train, ds.x_test, ds.y_test, 10)


def test_non_finite_minibatch_loss_keeps_earlier_checkpoints(ds, probes):
    k = int(np.setdiff1d(np.arange(1347), probes["train"].indices)[0])  # not probed
    bad = _with_nan_train_sample(ds, k)
    r = train_run(BASE, bad, probes)
    assert r.status == "diverged" and "minibatch loss" in r.message
    full = checkpoint_steps(TOTAL, 8)
    assert 1 <= r.n_checkpoints < len(full)
    assert np.array_equal(r.steps, full[: r.n_checkpoints])
    assert all(np.all(np.isfinite(lp)) for lp in r.logp.values())
    assert all(len(v) == r.n_checkpoints for v in r.metrics.values())


def test_non_finite_initial_predictions_keep_nothing(ds, probes):
    bad = _with_nan_train_sample(ds, int(probes["train"].indices[0]))  # probed
    r = train_run(BASE, bad, probes)
    assert r.status == "diverged" and "step 0" in r.message
    assert r.n_checkpoints == 0 and r.steps.shape == (0,) and r.epochs.shape == (0,)
    assert r.logp["train"].shape == (0, len(probes["train"]), 10)
    assert r.logp["test"].shape == (0, len(probes["test"]), 10)
    assert all(v.shape == (0,) for v in r.metrics.values())
    assert r.final() == {}


# --------------------------------------------------------------------------- config errors

def test_config_keys_documented():
    assert set(CONFIG_KEYS) == set(BASE)


def test_unknown_config_key(ds, probes):
    with pytest.raises(ValueError, match="lrr"):
        train_run(dict(BASE, lrr=0.1), ds, probes)


@pytest.mark.parametrize("key", [k for k in BASE])
def test_missing_config_key(key, ds, probes):
    cfg = {k: v for k, v in BASE.items() if k != key}
    with pytest.raises(ValueError, match=key):
        train_run(cfg, ds, probes)


@pytest.mark.parametrize(
    "key, value",
    [
        ("arch", 3),
        ("arch", "resnet"),
        ("arch_options", [("width", 16)]),
        ("arch_options", {"height": 3}),
        ("arch_options", {"width": 0}),
        ("optimizer", "rmsprop"),
        ("schedule", "step"),
        ("lr", 0),
        ("lr", -0.1),
        ("lr", float("inf")),
        ("lr", float("nan")),
        ("lr", "0.1"),
        ("lr", True),
        ("weight_decay", -1e-4),
        ("weight_decay", float("nan")),
        ("weight_decay", float("inf")),
        ("momentum", 1.0),
        ("momentum", -0.1),
        ("momentum", None),
        ("batch_size", 0),
        ("batch_size", 1.5),
        ("batch_size", True),
        ("batch_size", 2000),  # more than the 1347 training samples
        ("epochs", 0),
        ("epochs", 2.0),
        ("seed", -1),
        ("seed", 0.5),
        ("checkpoints", 1),
        ("checkpoints", "8"),
    ],
)
def test_invalid_config_value(key, value, ds, probes):
    with pytest.raises(ValueError):
        train_run(dict(BASE, **{key: value}), ds, probes)


def test_config_not_a_mapping(ds, probes):
    with pytest.raises(ValueError, match="mapping"):
        train_run([("arch", "mlp")], ds, probes)


def test_probes_required_and_checked(ds, probes):
    with pytest.raises(ValueError, match="test"):
        train_run(BASE, ds, {"train": probes["train"]})
    other = load_digits(seed=1)
    with pytest.raises(ValueError, match="labels do not match"):
        train_run(BASE, other, make_probes(ds, n_train=None, n_test=None))


def test_steps_per_epoch():
    assert steps_per_epoch(1347, 64) == 21
    assert steps_per_epoch(128, 64) == 2
    assert steps_per_epoch(5, 5) == 1
    with pytest.raises(ValueError, match="exceeds"):
        steps_per_epoch(5, 6)


def test_empty_probe_keeps_documented_logp_shape(ds):
    probes = make_probes(ds, n_train=0, n_test=20, seed=0)
    r = train_run(dict(BASE, epochs=1, checkpoints=3), ds, probes)
    assert r.status == "complete"
    assert r.logp["test"].shape == (3, 20, 10)
    assert r.logp["train"].shape == (3, 0, 10)
