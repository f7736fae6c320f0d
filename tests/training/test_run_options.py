"""Tests of the training factors of the reference study (docs/method.md §5, §6): optimisers
(SGD-Nesterov, AdamW), linear warm-up, simple augmentation, corner initialisations.

References are independent: update rules written out from the PyTorch docs / papers
(Nesterov momentum as in Sutskever et al. 2013 in PyTorch's form; AdamW from
Loshchilov & Hutter 2019), augmentation re-implemented in numpy, learning rates from
their closed form, corner pre-training re-done by hand.
"""

import dataclasses
import math

import numpy as np
import pytest
import torch

from deepmanifold.data import Dataset, ProbeSet, load_digits, make_probes
from deepmanifold.data.probes import probe_fingerprint
from deepmanifold.models import build_model
from deepmanifold.training import (
    AUGMENTATION_MODES,
    CONFIG_KEYS,
    INITS,
    OPTIMIZERS,
    OPTIONAL_DEFAULTS,
    OPTIONAL_KEYS,
    SCHEDULES,
    augment_batch,
    checkpoint_steps,
    crop_padding,
    train_run,
    warmup_steps,
)
from deepmanifold.training import run as run_mod
from deepmanifold.training.plan import augment_seed, init_seed, shuffle_seed

BASE = dict(
    arch="mlp",
    arch_options=dict(width=16, depth=2),
    optimizer="sgd",
    lr=0.1,
    momentum=0.9,
    weight_decay=1e-4,
    batch_size=64,
    epochs=2,
    seed=0,
    checkpoints=6,
    schedule="cosine",
)
SPE = 1347 // 64  # 21


def _with_augmentations(ds, ops):
    """``ds`` allowing augmentation ``ops`` (works whether or not ``Dataset`` has the field)."""
    if any(f.name == "augmentations" for f in dataclasses.fields(Dataset)):
        return dataclasses.replace(ds, augmentations=tuple(ops))
    out = dataclasses.replace(ds)
    object.__setattr__(out, "augmentations", tuple(ops))
    return out


def _subset_dataset(ds, n):
    return Dataset(ds.name, ds.x_train[:n].clone(), ds.y_train[:n].clone(), ds.x_test, ds.y_test, 10)


@pytest.fixture(scope="module")
def ds():
    return load_digits(seed=0)


@pytest.fixture(scope="module")
def probes(ds):
    return make_probes(ds, n_train=120, n_test=90, seed=0)


@pytest.fixture(scope="module")
def small():
    """320 training samples: 5 steps per epoch at batch size 64."""
    d = _subset_dataset(load_digits(seed=0), 320)
    return d, make_probes(d, n_train=60, n_test=60, seed=1)


@pytest.fixture(scope="module")
def default_run(ds, probes):
    return train_run(BASE, ds, probes)


def _same(a, b):
    assert np.array_equal(a.steps, b.steps)
    for name in a.logp:
        assert np.array_equal(a.logp[name], b.logp[name])


# --------------------------------------------------------------------------- exports, keys

def test_optional_keys_are_not_required_keys():
    assert not set(CONFIG_KEYS) & set(OPTIONAL_KEYS)
    assert set(OPTIONAL_DEFAULTS) <= set(OPTIONAL_KEYS)


def test_explicit_defaults_are_bitwise_the_plain_run(default_run, ds, probes):
    r = train_run(dict(BASE, **OPTIONAL_DEFAULTS, data="digits"), ds, probes)
    _same(r, default_run)
    assert r.message == default_run.message
    assert r.init_info == default_run.init_info == {"init": "default", "steps": 0}


def test_unknown_key_lists_new_keys(ds, probes):
    with pytest.raises(ValueError, match="warmup_epochs") as e:
        train_run(dict(BASE, warmup=1), ds, probes)
    for key in ("augmentation", "init", "init_epochs", "init_subset", "'warmup'"):
        assert key in str(e.value)


# --------------------------------------------------------------------------- independent loop

def _lr_closed(lr, s, total, warm, schedule):
    if s < warm:
        return lr * (s + 1) / warm
    if schedule == "constant":
        return lr
    return lr / 2 * (1 + math.cos(math.pi * (s - warm) / (total - warm)))


def _np_augment(x, dy, dx, flip, ph, pw):
    """Zero-pad, take the H x W window at (dy, dx), mirror it if flip: plain numpy."""
    b, c, h, w = x.shape
    padded = np.zeros((b, c, h + 2 * ph, w + 2 * pw), dtype=x.dtype)
    padded[:, :, ph : ph + h, pw : pw + w] = x
    out = np.empty_like(x)
    for i in range(b):
        win = padded[i, :, dy[i] : dy[i] + h, dx[i] : dx[i] + w]
        out[i] = win[:, :, ::-1] if flip[i] else win
    return out


def _nesterov_update(mu, wd):
    # PyTorch SGD docs (dampening 0, nesterov): g += wd p; b = mu b + g (b = g at t=1);
    # g = g + mu b; p -= lr g.
    def update(params, grads, state, lr, t):
        for i, (p, g) in enumerate(zip(params, grads)):
            g = g + wd * p
            state[i] = g.clone() if t == 1 else mu * state[i] + g
            p -= lr * (g + mu * state[i])

    return update


def _adamw_update(wd, b1=0.9, b2=0.999, eps=1e-8):
    # Loshchilov & Hutter / PyTorch AdamW docs: p -= lr wd p; m, v moments;
    # p -= lr * m_hat / (sqrt(v_hat) + eps).
    def update(params, grads, state, lr, t):
        for i, (p, g) in enumerate(zip(params, grads)):
            m, v = state.get(i, (torch.zeros_like(p), torch.zeros_like(p)))
            p *= 1 - lr * wd
            m = b1 * m + (1 - b1) * g
            v = b2 * v + (1 - b2) * g * g
            state[i] = (m, v)
            m_hat = m / (1 - b1**t)
            v_hat = v / (1 - b2**t)
            p -= lr * m_hat / (v_hat.sqrt() + eps)

    return update


def _squared(logits, y):
    """½ |f(x) − onehot(y)|², averaged over the batch, written out by hand."""
    target = torch.zeros_like(logits)
    target[torch.arange(len(y)), y] = 1.0
    return 0.5 * ((logits - target) ** 2).sum(dim=1).mean()


def _independent_run(cfg, ds, probes, update, aug_ops=(), loss_fn=torch.nn.functional.cross_entropy):
    """Hand-written training loop recording every step (eval-mode log-probabilities)."""
    seed, bs, epochs = cfg["seed"], cfg["batch_size"], cfg["epochs"]
    torch.manual_seed(seed)
    model = build_model("mlp", (1, 8, 8), 10, width=16, depth=2)
    params = list(model.parameters())
    n = ds.x_train.shape[0]
    spe = n // bs
    total = spe * epochs
    warm = int(math.floor(cfg.get("warmup_epochs", 0) * spe + 0.5))
    gen = torch.Generator().manual_seed(shuffle_seed(seed))
    agen = torch.Generator().manual_seed(augment_seed(seed))
    ph, pw = crop_padding(8, 8)
    px = {name: p.inputs(ds) for name, p in probes.items()}
    rec = {name: [] for name in probes}

    def record():
        model.eval()
        with torch.no_grad():
            for name, x in px.items():
                rec[name].append(torch.log_softmax(model(x), dim=1).numpy())
        model.train()

    record()
    state, step = {}, 0
    for _ in range(epochs):
        perm = torch.randperm(n, generator=gen)
        for b in range(spe):
            idx = perm[b * bs : (b + 1) * bs]
            xb = ds.x_train[idx]
            if aug_ops:
                k = len(idx)
                zero = np.zeros(k, dtype=np.int64)
                dy = torch.randint(0, 2 * ph + 1, (k,), generator=agen).numpy() if "crop" in aug_ops else zero
                dx = torch.randint(0, 2 * pw + 1, (k,), generator=agen).numpy() if "crop" in aug_ops else zero
                fl = torch.randint(0, 2, (k,), generator=agen).numpy() if "hflip" in aug_ops else zero
                pad = (ph, pw) if "crop" in aug_ops else (0, 0)
                xb = torch.from_numpy(_np_augment(xb.numpy(), dy, dx, fl, *pad))
            model.train()
            loss = loss_fn(model(xb), ds.y_train[idx])
            grads = torch.autograd.grad(loss, params)
            with torch.no_grad():
                update(params, grads, state, _lr_closed(cfg["lr"], step, total, warm, cfg["schedule"]), step + 1)
            step += 1
            record()
    return {name: np.stack(v) for name, v in rec.items()}


def test_nesterov_warmup_augmentation_match_hand_written_loop(small):
    d, pr = small
    d = _with_augmentations(d, ("crop", "hflip"))
    cfg = dict(BASE, optimizer="nesterov", momentum=0.8, weight_decay=1e-3, lr=0.05,
               epochs=2, checkpoints=11, warmup_epochs=0.6, augmentation="simple", seed=4)
    r = train_run(cfg, d, pr)
    assert r.status == "complete" and r.steps.tolist() == list(range(11))
    ref = _independent_run(cfg, d, pr, _nesterov_update(0.8, 1e-3), aug_ops=("crop", "hflip"))
    for name in pr:
        np.testing.assert_allclose(r.logp[name], ref[name], rtol=0, atol=2e-5)
    # Without augmentation the same run differs (the batches really were augmented).
    plain = _independent_run(cfg, d, pr, _nesterov_update(0.8, 1e-3))
    assert not np.allclose(r.logp["test"][-1], plain["test"][-1], atol=1e-3)


def test_squared_loss_matches_hand_written_loop(small):
    d, pr = small
    cfg = dict(BASE, optimizer="nesterov", momentum=0.8, weight_decay=1e-3, lr=0.05, epochs=2, checkpoints=11,
               schedule="constant", seed=3, loss="squared")
    r = train_run(cfg, d, pr)
    assert r.status == "complete" and r.steps.tolist() == list(range(11))
    ref = _independent_run(cfg, d, pr, _nesterov_update(0.8, 1e-3), loss_fn=_squared)
    for name in pr:
        np.testing.assert_allclose(r.logp[name], ref[name], rtol=0, atol=2e-5)
    # Cross-entropy from the same start takes another path: the option is used.
    other = _independent_run(cfg, d, pr, _nesterov_update(0.8, 1e-3))
    assert not np.allclose(r.logp["test"][-1], other["test"][-1], atol=1e-3)


def test_loss_is_checked(ds, probes):
    with pytest.raises(ValueError, match=r"config\['loss'\] must be one of \('cross_entropy', 'squared'\), got 'mse'"):
        train_run(dict(BASE, loss="mse"), ds, probes)


def test_adamw_matches_hand_written_update(small):
    d, pr = small
    # Digits have constant pixels whose gradients are rounding noise behind BatchNorm;
    # Adam normalises noise to lr-sized steps, so jitter the inputs to make every
    # gradient genuine (otherwise two float32 evaluation orders legitimately differ).
    noise = 0.1 * torch.randn(d.x_train.shape, generator=torch.Generator().manual_seed(0))
    d = Dataset(d.name, d.x_train + noise, d.y_train, d.x_test, d.y_test, 10)
    cfg = {k: v for k, v in BASE.items() if k != "momentum"}
    cfg.update(optimizer="adamw", lr=0.01, weight_decay=0.05, epochs=2, checkpoints=11,
               schedule="constant", warmup_epochs=1, seed=2)
    r = train_run(cfg, d, pr)
    assert r.status == "complete" and r.steps.tolist() == list(range(11))
    ref = _independent_run(cfg, d, pr, _adamw_update(0.05))
    for name in pr:
        np.testing.assert_allclose(r.logp[name], ref[name], rtol=0, atol=2e-5)
    # Decoupled decay is not Adam's L2: the Adam run with the same numbers differs.
    adam = train_run(dict(cfg, optimizer="adam"), d, pr)
    assert not np.allclose(adam.logp["test"][-1], r.logp["test"][-1], atol=1e-4)


# --------------------------------------------------------------------------- warm-up

class _Recorder:
    def __init__(self):
        self.lrs = []


@pytest.fixture
def lr_log(monkeypatch):
    """Learning rates of the updates train_run makes (read at each optimiser step)."""
    log = _Recorder()
    original = run_mod.make_optimizer

    def make(cfg, params):
        opt = original(cfg, params)
        step = opt.step

        def logged_step(*a, **k):
            log.lrs.append(opt.param_groups[0]["lr"])
            return step(*a, **k)

        opt.step = logged_step
        return opt

    monkeypatch.setattr(run_mod, "make_optimizer", make)
    return log


@pytest.mark.parametrize(
    "warmup_epochs, schedule, epochs",
    [(0.5, "cosine", 3), (1, "constant", 2), (2, "cosine", 2), (0.01, "cosine", 2), (0, "cosine", 2)],
)
def test_warmup_lr_sequence_closed_form(lr_log, ds, probes, warmup_epochs, schedule, epochs):
    cfg = dict(BASE, warmup_epochs=warmup_epochs, schedule=schedule, epochs=epochs, checkpoints=3, lr=0.2)
    train_run(cfg, ds, probes)
    total = epochs * SPE
    w = int(math.floor(warmup_epochs * SPE + 0.5))
    assert warmup_steps(warmup_epochs, SPE) == w
    assert len(lr_log.lrs) == total
    expected = [_lr_closed(0.2, s, total, w, schedule) for s in range(total)]
    np.testing.assert_allclose(lr_log.lrs, expected, rtol=1e-13, atol=0)
    lrs = np.asarray(lr_log.lrs)
    if w:
        assert lrs[0] == pytest.approx(0.2 / w, rel=1e-14)
        assert lrs[w - 1] == pytest.approx(0.2, rel=1e-14)  # the peak is reached
        assert np.all(np.diff(lrs[:w]) > 0)
    if w < total:
        assert lrs[w] == pytest.approx(0.2, rel=1e-14)
        assert np.all(lrs[w:] > 0)
        if schedule == "cosine":
            assert np.all(np.diff(lrs[w:]) < 0)


def test_warmup_steps_rounding():
    assert warmup_steps(0.5, 21) == 11  # 10.5 rounds half up
    assert warmup_steps(0, 21) == 0
    assert warmup_steps(1, 21) == 21
    assert warmup_steps(0.02, 21) == 0  # 0.42 -> no warm-up
    assert warmup_steps(2.5, 4) == 10


def test_divergence_during_warmup_keeps_checkpoints(ds, probes):
    k = int(np.setdiff1d(np.arange(1347), probes["train"].indices)[0])  # not probed
    x = ds.x_train.clone()
    x[k] = float("nan")
    bad = Dataset("digits", x, ds.y_train, ds.x_test, ds.y_test, 10)
    cfg = dict(BASE, warmup_epochs=2, checkpoints=12)
    r = train_run(cfg, bad, probes)
    assert r.status == "diverged" and "warm-up" in r.message and "minibatch loss" in r.message
    full = checkpoint_steps(2 * SPE, 12)
    assert 1 <= r.n_checkpoints < len(full)
    assert np.array_equal(r.steps, full[: r.n_checkpoints])
    assert all(np.all(np.isfinite(lp)) for lp in r.logp.values())
    assert all(len(v) == r.n_checkpoints for v in r.metrics.values())


# --------------------------------------------------------------------------- augmentation

def _augment_reference(x, crop, hflip, seed):
    g = torch.Generator().manual_seed(seed)
    b, _, h, w = x.shape
    ph, pw = crop_padding(h, w) if crop else (0, 0)
    zero = np.zeros(b, dtype=np.int64)
    dy = torch.randint(0, 2 * ph + 1, (b,), generator=g).numpy() if crop else zero
    dx = torch.randint(0, 2 * pw + 1, (b,), generator=g).numpy() if crop else zero
    fl = torch.randint(0, 2, (b,), generator=g).numpy() if hflip else zero
    return _np_augment(x.numpy(), dy, dx, fl, ph, pw), dy, dx, fl


@pytest.mark.parametrize("shape", [(64, 3, 32, 32), (50, 1, 8, 8), (40, 2, 12, 20), (20, 1, 3, 5)])
@pytest.mark.parametrize("crop, hflip", [(True, True), (True, False), (False, True)])
def test_augment_batch_matches_numpy(shape, crop, hflip):
    x = torch.randn(shape, generator=torch.Generator().manual_seed(1))
    x0 = x.clone()
    out = augment_batch(x, crop=crop, hflip=hflip, generator=torch.Generator().manual_seed(7))
    ref, dy, dx, fl = _augment_reference(x, crop, hflip, 7)
    assert out.shape == x.shape and out.dtype == x.dtype
    assert np.array_equal(out.numpy(), ref)
    assert torch.equal(x, x0)  # input untouched
    if hflip:
        assert 0 < fl.sum() < len(fl)
    if crop and shape[2] >= 8:
        ph, pw = crop_padding(*shape[2:])
        assert dy.min() == 0 and dy.max() == 2 * ph and dx.min() == 0 and dx.max() == 2 * pw


def test_crop_padding():
    assert crop_padding(32, 32) == (4, 4)
    assert crop_padding(8, 8) == (1, 1)
    assert crop_padding(28, 12) == (4, 2)
    assert crop_padding(3, 4) == (0, 1)


def _windows(img, ph, pw, flips):
    c, h, w = img.shape
    padded = np.zeros((c, h + 2 * ph, w + 2 * pw), dtype=img.dtype)
    padded[:, ph : ph + h, pw : pw + w] = img
    out = []
    for dy in range(2 * ph + 1):
        for dx in range(2 * pw + 1):
            win = padded[:, dy : dy + h, dx : dx + w]
            out += [win[:, :, ::-1] if f else win for f in flips]
    return out


@pytest.mark.parametrize("crop, hflip", [(True, True), (True, False), (False, True)])
def test_augmented_images_are_windows_of_the_padded_original(crop, hflip):
    x = torch.randn(60, 2, 8, 8, generator=torch.Generator().manual_seed(3))
    out = augment_batch(x, crop=crop, hflip=hflip, generator=torch.Generator().manual_seed(5)).numpy()
    ph, pw = crop_padding(8, 8) if crop else (0, 0)
    n_flipped = n_shifted = 0
    for img, aug in zip(x.numpy(), out):
        allowed = _windows(img, ph, pw, (False, True) if hflip else (False,))
        assert any(np.array_equal(aug, w) for w in allowed)
        # Random data: the window is never also a mirrored one unless flips are allowed.
        if not hflip:
            mirrored = _windows(img, ph, pw, (True,))
            assert not any(np.array_equal(aug, w) for w in mirrored)
        n_flipped += any(np.array_equal(aug, w) for w in _windows(img, ph, pw, (True,)))
        n_shifted += not np.array_equal(aug, img) and not np.array_equal(aug, img[:, :, ::-1])
    assert (n_flipped > 0) == hflip
    assert (n_shifted > 0) == crop


def test_augmentation_never_touches_probes(default_run, ds, probes):
    d = _with_augmentations(ds, ("crop", "hflip"))
    r = train_run(dict(BASE, augmentation="simple"), d, probes)
    assert r.status == "complete"
    for name in probes:
        # Step 0: the same model on the same un-augmented probes.
        assert np.array_equal(r.logp[name][0], default_run.logp[name][0])
        assert not np.allclose(r.logp[name][-1], default_run.logp[name][-1], atol=1e-4)
    assert r.metrics["test_acc"][-1] > 0.5


def test_dataset_without_attribute_allows_crop_only(small):
    """A dataset without an ``augmentations`` attribute gets ("crop",): no flips."""
    d, pr = small
    if hasattr(d, "augmentations"):  # Dataset grew the field: emulate the old default
        d = _with_augmentations(d, ("crop",))
    cfg = dict(BASE, optimizer="nesterov", momentum=0.5, augmentation="simple",
               epochs=1, checkpoints=6, seed=4)
    r = train_run(cfg, d, pr)
    ref = _independent_run(cfg, d, pr, _nesterov_update(0.5, 1e-4), aug_ops=("crop",))
    np.testing.assert_allclose(r.logp["test"], ref["test"], rtol=0, atol=2e-5)
    flip_only = train_run(cfg, _with_augmentations(d, ("hflip",)), pr)
    ref = _independent_run(cfg, d, pr, _nesterov_update(0.5, 1e-4), aug_ops=("hflip",))
    np.testing.assert_allclose(flip_only.logp["test"], ref["test"], rtol=0, atol=2e-5)
    assert not np.allclose(r.logp["test"][-1], flip_only.logp["test"][-1], atol=1e-4)


def test_augmentation_errors(ds, probes):
    with pytest.raises(ValueError, match="no augmentation"):
        train_run(dict(BASE, augmentation="simple"), _with_augmentations(ds, ()), probes)
    with pytest.raises(ValueError, match="rotate"):
        train_run(dict(BASE, augmentation="simple"), _with_augmentations(ds, ("rotate",)), probes)
    # "none" does not look at the dataset's augmentations at all.
    r = train_run(dict(BASE, epochs=1, checkpoints=2, augmentation="none"), _with_augmentations(ds, ()), probes)
    assert r.status == "complete"


# --------------------------------------------------------------------------- corner inits

@pytest.fixture(scope="module")
def shuffled_run(ds, probes):
    torch.manual_seed(321)
    state = torch.get_rng_state()
    r = train_run(dict(BASE, init="shuffled_labels"), ds, probes)
    return r, state, torch.get_rng_state()


def test_shuffled_labels_corner(shuffled_run, default_run):
    r, before, after = shuffled_run
    assert torch.equal(before, after)  # the caller's global RNG is untouched
    assert r.status == "complete" and "shuffled_labels" in r.message
    assert np.array_equal(r.steps, default_run.steps)
    info = r.init_info
    assert info["init"] == "shuffled_labels" and info["status"] == "complete"
    assert info["epochs"] == 5 and info["steps"] == 5 * SPE and info["n_samples"] == 1347
    assert info["batch_size"] == 64 and info["lr"] == 0.1
    # The corner differs from the fresh model and is near chance on the true labels.
    for name in r.logp:
        assert not np.allclose(r.logp[name][0], default_run.logp[name][0], atol=1e-3)
    assert abs(info["train_acc"] - 0.1) < 0.1
    assert r.metrics["train_acc"][0] < 0.25
    # Entropy of the corner's predictions differs from the fresh model's (it was trained).
    assert r.metrics["train_loss"][0] != pytest.approx(default_run.metrics["train_loss"][0], abs=1e-3)
    # Then it learns the true labels.
    assert r.metrics["train_acc"][-1] > 0.6


def test_shuffled_labels_matches_hand_written_pretraining(shuffled_run, ds, probes):
    """Step 0 = fresh model trained init_epochs epochs on y[randperm] with the same
    optimiser at constant lr, from the init generator; step 1 = one update of a *fresh*
    optimiser on the default run's first minibatch."""
    r, _, _ = shuffled_run
    torch.manual_seed(0)
    model = build_model("mlp", (1, 8, 8), 10, width=16, depth=2)
    gen = torch.Generator().manual_seed(init_seed(0))
    y = ds.y_train[torch.randperm(1347, generator=gen)]
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
    model.train()
    for _ in range(5):
        perm = torch.randperm(1347, generator=gen)
        for b in range(SPE):
            idx = perm[b * 64 : (b + 1) * 64]
            loss = torch.nn.functional.cross_entropy(model(ds.x_train[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    model.eval()
    with torch.no_grad():
        for name, p in probes.items():
            ref = torch.log_softmax(model(p.inputs(ds)), dim=1).numpy()
            np.testing.assert_allclose(r.logp[name][0], ref, rtol=0, atol=1e-5)
        acc = float((model(ds.x_train).argmax(1) == ds.y_train).double().mean())
        fit = float((model(ds.x_train).argmax(1) == y).double().mean())
    assert r.init_info["train_acc"] == pytest.approx(acc, abs=1e-12)
    assert r.init_info["fit_acc"] == pytest.approx(fit, abs=1e-12)
    # First recorded update: fresh optimiser state, cosine lr at step 0 = lr.
    model.train()
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
    gen = torch.Generator().manual_seed(shuffle_seed(0))
    idx = torch.randperm(1347, generator=gen)[:64]
    loss = torch.nn.functional.cross_entropy(model(ds.x_train[idx]), ds.y_train[idx])
    opt.zero_grad()
    loss.backward()
    opt.step()
    model.eval()
    assert r.steps[1] == 1
    with torch.no_grad():
        ref = torch.log_softmax(model(probes["test"].inputs(ds)), dim=1).numpy()
    np.testing.assert_allclose(r.logp["test"][1], ref, rtol=0, atol=1e-5)


def _subset_probe(ds, indices):
    idx = np.asarray(indices, dtype=np.int64)
    labels = ds.y_train.numpy()[idx]
    return ProbeSet("subset", "train", idx, labels, probe_fingerprint(ds.name, "train", idx, labels))


def test_tiny_subset_corner_fits_the_subset(default_run, ds, probes):
    cfg = dict(BASE, init="tiny_subset", init_subset=64, init_epochs=40)
    first = train_run(cfg, ds, probes)
    subset = first.init_info["subset"]
    assert len(subset) == 64 == len(set(subset)) and subset == sorted(subset)
    assert all(0 <= i < 1347 for i in subset)
    r = train_run(cfg, ds, {**probes, "subset": _subset_probe(ds, subset)})
    _same_common = all(np.array_equal(r.logp[n], first.logp[n]) for n in probes)
    assert _same_common  # deterministic, and the extra probe changes nothing
    info = r.init_info
    assert info["init"] == "tiny_subset" and info["status"] == "complete"
    assert info["steps"] == 40 and info["n_samples"] == 64 and info["batch_size"] == 64
    assert info["fit_acc"] == 1.0
    lp0 = r.logp["subset"][0]
    assert np.array_equal(lp0.argmax(axis=1), ds.y_train.numpy()[subset])  # fits it
    assert not np.allclose(r.logp["test"][0], default_run.logp["test"][0], atol=1e-3)
    assert info["train_acc"] < 1.0


def test_tiny_subset_defaults_and_small_subset(ds, probes):
    r = train_run(dict(BASE, init="tiny_subset", epochs=1, checkpoints=2), ds, probes)
    info = r.init_info
    assert info["n_samples"] == 100 and info["epochs"] == 5
    assert info["batch_size"] == 64 and info["steps"] == 5  # 100 // 64 = 1 step per epoch
    r = train_run(dict(BASE, init="tiny_subset", init_subset=10, init_epochs=3, epochs=1, checkpoints=2), ds, probes)
    assert r.init_info["batch_size"] == 10 and r.init_info["steps"] == 3
    other = train_run(dict(BASE, init="tiny_subset", init_subset=10, init_epochs=3, epochs=1, checkpoints=2, seed=1), ds, probes)
    assert other.init_info["subset"] != r.init_info["subset"]


def test_corner_runs_are_deterministic(ds, probes):
    d = _with_augmentations(ds, ("crop", "hflip"))
    cfg = dict(BASE, init="shuffled_labels", init_epochs=1, augmentation="simple",
               warmup_epochs=0.5, optimizer="nesterov", epochs=1)
    torch.manual_seed(1)
    a = train_run(cfg, d, probes)
    torch.manual_seed(2)
    b = train_run(dict(cfg), d, probes)
    _same(a, b)
    assert a.init_info == b.init_info
    c = train_run(dict(cfg, seed=1), d, probes)
    assert not np.allclose(a.logp["test"][0], c.logp["test"][0])


def _nan_at(ds, k):
    x = ds.x_train.clone()
    x[k] = float("nan")
    return Dataset("digits", x, ds.y_train, ds.x_test, ds.y_test, 10)


def test_divergence_after_corner_init_keeps_checkpoints(ds, probes):
    cfg = dict(BASE, init="tiny_subset", init_subset=50, init_epochs=2, checkpoints=12)
    subset = train_run(dict(cfg, epochs=1, checkpoints=2), ds, probes).init_info["subset"]
    k = int(np.setdiff1d(np.arange(1347), np.union1d(probes["train"].indices, subset))[0])
    r = train_run(cfg, _nan_at(ds, k), probes)
    assert r.init_info["status"] == "complete"
    assert r.status == "diverged" and "minibatch loss" in r.message
    full = checkpoint_steps(2 * SPE, 12)
    assert 1 <= r.n_checkpoints < len(full)
    assert np.array_equal(r.steps, full[: r.n_checkpoints])
    assert all(np.all(np.isfinite(lp)) for lp in r.logp.values())


def test_divergence_in_corner_phase_records_nothing(ds, probes):
    k = int(np.setdiff1d(np.arange(1347), probes["train"].indices)[0])
    r = train_run(dict(BASE, init="shuffled_labels"), _nan_at(ds, k), probes)
    assert r.status == "diverged" and "shuffled_labels" in r.message
    assert r.init_info["status"] == "diverged" and r.init_info["steps"] < 5 * SPE
    assert r.n_checkpoints == 0 and r.logp["test"].shape == (0, 90, 10)
    assert all(v.shape == (0,) for v in r.metrics.values())


# --------------------------------------------------------------------------- config errors

def test_momentum_rules(ds, probes):
    no_momentum = {k: v for k, v in BASE.items() if k != "momentum"}
    with pytest.raises(ValueError, match="momentum"):
        train_run(dict(no_momentum, optimizer="nesterov"), ds, probes)
    with pytest.raises(ValueError, match="momentum"):
        train_run(dict(BASE, optimizer="nesterov", momentum=0.0), ds, probes)
    r = train_run(dict(no_momentum, optimizer="adamw", lr=1e-2, epochs=1, checkpoints=2), ds, probes)
    assert r.status == "complete"


@pytest.mark.parametrize(
    "key, value",
    [
        ("optimizer", "Nesterov"),
        ("optimizer", "sgdw"),
        ("warmup_epochs", -0.5),
        ("warmup_epochs", float("nan")),
        ("warmup_epochs", float("inf")),
        ("warmup_epochs", "1"),
        ("warmup_epochs", True),
        ("warmup_epochs", None),
        ("warmup_epochs", 2.5),  # more than the 2 epochs
        ("augmentation", "crop"),
        ("augmentation", None),
        ("augmentation", True),
        ("init", "random"),
        ("init", None),
        ("init_epochs", 0),
        ("init_epochs", 1.5),
        ("init_epochs", True),
        ("init_subset", 0),
        ("init_subset", "100"),
        ("init_subset", 5000),  # more than the 1347 training samples
    ],
)
def test_invalid_factor_values(key, value, ds, probes):
    cfg = dict(BASE, **{key: value})
    if key == "init_subset":
        cfg["init"] = "tiny_subset"
    with pytest.raises(ValueError, match=key if key != "optimizer" else "optimizer"):
        train_run(cfg, ds, probes)
