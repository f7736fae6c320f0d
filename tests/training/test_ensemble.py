"""Seeds trained at once (vmap) against the same runs trained one by one."""

import numpy as np
import pytest

from deepmanifold.data import load_digits, make_probes
from deepmanifold.training import train_ensemble, train_run

BASE = dict(arch="mlp", arch_options=dict(width=16, depth=2), optimizer="sgd", lr=0.1, momentum=0.9,
            weight_decay=1e-4, batch_size=64, epochs=2, seed=0, checkpoints=6, schedule="cosine")


@pytest.fixture(scope="module")
def ds():
    return load_digits(seed=0)


@pytest.fixture(scope="module")
def probes(ds):
    return make_probes(ds, n_train=60, n_test=50, seed=0)


def _close(a, b, atol):
    assert a.status == b.status == "complete"
    np.testing.assert_array_equal(a.steps, b.steps)
    for name in a.logp:
        np.testing.assert_allclose(np.exp(a.logp[name]), np.exp(b.logp[name]), atol=atol)


@pytest.mark.parametrize("extra", [dict(optimizer="adam", lr=3e-3, warmup_epochs=0.5),
                                   dict(optimizer="nesterov"),
                                   dict(loss="squared", lr=0.05),
                                   dict(arch="cnn", arch_options=dict(width=8, depth=1), augmentation="simple")])
def test_members_follow_their_single_runs(ds, probes, extra):
    cfgs = [dict(BASE, **extra, seed=s) for s in (4, 0, 7)]
    together = train_ensemble(cfgs, ds, probes)
    for cfg, member in zip(cfgs, together):
        alone = train_run(cfg, ds, probes)
        # the same initial model exactly, then the same data: equal up to rounding
        for name in member.logp:
            np.testing.assert_allclose(member.logp[name][0], alone.logp[name][0], rtol=1e-5, atol=1e-6)
        _close(member, alone, atol=1e-3)
        for key in ("test_acc", "train_loss"):
            np.testing.assert_allclose(member.metrics[key], alone.metrics[key], atol=0.03)
    # members really differ (own seeds), and results come back in the order given
    assert not np.allclose(together[0].logp["test"], together[1].logp["test"])


def test_every_architecture_vectorises(ds, probes):
    from deepmanifold.models import available_models

    small = {"mlp": dict(width=8, depth=1), "cnn": dict(width=4, depth=1), "wrn": dict(depth=10, width=1, base=4),
             "convmixer": dict(width=8, depth=1, kernel_size=3), "vit": dict(width=8, depth=1, heads=2, patch_size=4),
             "linear": dict(width=8, depth=2)}
    for arch in available_models():
        cfgs = [dict(BASE, arch=arch, arch_options=small.get(arch, {}), epochs=1, checkpoints=2, seed=s)
                for s in (0, 1)]
        res = train_ensemble(cfgs, ds, probes)
        assert [r.status for r in res] == ["complete", "complete"], arch
        assert res[0].logp["test"].shape == (2, 50, 10)


def test_divergence_is_per_member_and_keeps_checkpoints(ds, probes):
    cfgs = [dict(BASE, lr=1e12, seed=s) for s in (0, 1)]
    res = train_ensemble(cfgs, ds, probes)
    assert all(r.status == "diverged" and r.n_checkpoints >= 1 for r in res)
    assert all("non-finite" in r.message for r in res)


def test_bad_ensembles_are_refused(ds, probes):
    with pytest.raises(ValueError, match="differ only in 'seed'"):
        train_ensemble([BASE, dict(BASE, seed=1, lr=0.2)], ds, probes)
    with pytest.raises(ValueError, match="distinct seeds"):
        train_ensemble([BASE, BASE], ds, probes)
    with pytest.raises(ValueError, match="default initialisation only"):
        train_ensemble([dict(BASE, init="shuffled_labels")], ds, probes)
    with pytest.raises(ValueError, match="empty"):
        train_ensemble([], ds, probes)


def test_sweep_with_ensembles_commits_each_run(tmp_path):
    """A sweep with --ensemble 2: seeds grouped, corner runs alone, every run committed
    once, and the stored predictions follow the runs trained one by one."""
    from deepmanifold.store import Store
    from deepmanifold.sweeps import load_spec, run_sweep
    from deepmanifold.sweeps.execute import group_runs

    spec_path = tmp_path / "s.toml"
    spec_path.write_text(
        '[sweep]\nname = "s"\nstore = "st"\n[data]\nprobe_train = 40\nprobe_test = 30\n'
        '[train]\nepochs = 1\ncheckpoints = 4\ninit_epochs = 1\n'
        '[grid]\narch = ["mlp"]\noptimizer = ["sgd"]\ninit = ["default", "tiny_subset"]\nseed = [0, 1, 2]\n'
        '[arch.mlp]\nwidth = 8\ndepth = 1\n[optimizer.sgd]\nlr = 0.1\nmomentum = 0.9\n')
    spec = load_spec(spec_path)
    groups = group_runs(list(spec.runs), 2)
    sizes = sorted(len(g) for g in groups)
    assert sizes == [1, 1, 1, 1, 2]  # seeds 0+1 together, seed 2 alone, 3 corner runs alone
    res = run_sweep(spec, store=tmp_path / "ens", workers=1, ensemble=2)
    assert res.count("complete") == 6
    single = run_sweep(spec, store=tmp_path / "one", workers=1)
    assert single.count("complete") == 6
    a, b = Store(tmp_path / "ens"), Store(tmp_path / "one")
    assert sorted(a.run_ids()) == sorted(b.run_ids())
    for rid in a.run_ids():
        np.testing.assert_allclose(np.exp(a.logp(rid, "test")), np.exp(b.logp(rid, "test")), atol=1e-3)
    again = run_sweep(spec, store=tmp_path / "ens", workers=1, ensemble=2)
    assert again.count("skipped") == 6
