"""Every sample's dynamics against hand-counted cases, and the AUROC and agreement against references."""

import numpy as np
import pytest
from scipy import stats

from deepmanifold.analysis.samples import auroc, learning_order_agreement, sample_dynamics


def _logp(p_true, C=3):
    """(K, n, C) log-probabilities with probability p_true on class 0 and the rest split evenly."""
    p = np.asarray(p_true, dtype=np.float64)
    out = np.repeat(((1 - p) / (C - 1))[..., None], C, axis=2)
    out[..., 0] = p
    return np.log(out)


def test_hand_counted_sample_dynamics():
    # 4 samples (label 0) over 5 checkpoints, 3 classes: correct when p > (1 - p)/2, i.e. p > 1/3.
    p = np.array([[0.2, 0.1, 0.9, 0.2],
                  [0.6, 0.2, 0.8, 0.6],
                  [0.7, 0.2, 0.3, 0.2],
                  [0.8, 0.3, 0.9, 0.7],
                  [0.9, 0.3, 0.9, 0.8]])
    d = sample_dynamics(_logp(p), np.zeros(4, dtype=int), progress=[0.0, 0.1, 0.3, 0.6, 0.9])
    np.testing.assert_allclose(d.confidence, p.mean(axis=0))
    np.testing.assert_allclose(d.variability, p.std(axis=0))
    np.testing.assert_allclose(d.correctness, [0.8, 0.0, 0.8, 0.6])
    np.testing.assert_array_equal(d.forgetting, [0, 0, 1, 1])
    np.testing.assert_array_equal(d.learned_index, [1, -1, 3, 3])
    np.testing.assert_allclose(d.learned_at, [0.1, np.nan, 0.6, 0.6])
    # Without progress, the fraction of checkpoints.
    np.testing.assert_allclose(sample_dynamics(_logp(p), np.zeros(4, dtype=int)).learned_at, [0.25, np.nan, 0.75, 0.75])


def test_agreement_and_auroc_against_references():
    rng = np.random.default_rng(0)
    base = rng.random(200)
    times = np.stack([base, base + 0.01 * rng.standard_normal(200), rng.random(200)])
    times[1, :20] = np.nan
    rho = learning_order_agreement(times)
    assert rho[0, 1] == pytest.approx(stats.spearmanr(times[0, 20:], times[1, 20:]).statistic)
    assert rho[0, 1] > 0.99 and abs(rho[0, 2]) < 0.2 and np.allclose(np.diag(rho), 1)
    assert np.isnan(learning_order_agreement(np.array([[1.0, np.nan, 2.0], [1.0, 2.0, np.nan]]))[0, 1])
    # AUROC: the Mann–Whitney statistic, and the two planted extremes.
    scores, pos = rng.random(50), rng.random(50) < 0.3
    u = stats.mannwhitneyu(scores[pos], scores[~pos]).statistic
    assert auroc(scores, pos) == pytest.approx(u / (pos.sum() * (~pos).sum()))
    assert auroc([0.1, 0.2, 0.9, 0.8], [False, False, True, True]) == 1.0
    assert auroc([0.9, 0.8, 0.1, 0.2], [False, False, True, True]) == 0.0
    assert auroc([1.0, 1.0], [True, False]) == 0.5


def test_bad_input():
    with pytest.raises(ValueError, match=r"labels must be integers in \[0, 3\)"):
        sample_dynamics(_logp(np.full((2, 3), 0.5)), np.array([0, 3, 1]))
    with pytest.raises(ValueError, match="one value per checkpoint"):
        sample_dynamics(_logp(np.full((2, 3), 0.5)), np.zeros(3, dtype=int), progress=[0.0])


def test_flipped_labels_are_recorded_and_found_by_the_data_map(tmp_path):
    """Digits with 10 % of the training labels flipped: the flips are recorded with the run, and low
    confidence finds them (planted yes), while the same ranking scores a random set of unflipped
    samples at chance (planted no)."""
    from deepmanifold.data import load_dataset, load_digits, make_probes
    from deepmanifold.store import Store
    from deepmanifold.training import train_run

    clean = load_digits(seed=0)
    noisy = load_dataset("digits", seed=0, label_noise=0.1)
    changed = np.flatnonzero((clean.y_train != noisy.y_train).numpy())
    np.testing.assert_array_equal(changed, noisy.flipped)  # every recorded flip changed its label, no other did
    assert len(changed) == round(0.1 * len(clean.y_train))
    np.testing.assert_array_equal(load_dataset("digits", seed=0, label_noise=0.1).flipped, noisy.flipped)
    assert not np.array_equal(load_dataset("digits", seed=1, label_noise=0.1).flipped, noisy.flipped)
    probes = make_probes(noisy, n_train=None, n_test=100, seed=0)  # the whole training split
    cfg = dict(arch="mlp", arch_options=dict(width=32, depth=1), optimizer="sgd", lr=0.05, momentum=0.9,
               weight_decay=0.0, batch_size=64, epochs=4, seed=0, checkpoints=10, schedule="cosine")
    run = train_run(cfg, noisy, probes, store=tmp_path / "s", run_id="noisy")
    rec = Store(tmp_path / "s").record("noisy")
    assert rec.info["flipped_train"] == noisy.flipped.tolist()
    labels = probes["train"].labels
    d = sample_dynamics(run.logp["train"], labels)
    wrong = np.isin(probes["train"].indices, rec.info["flipped_train"])
    assert auroc(-d.confidence, wrong) > 0.9
    decoy = np.zeros_like(wrong)
    decoy[np.random.default_rng(0).choice(np.flatnonzero(~wrong), wrong.sum(), replace=False)] = True
    assert 0.3 < auroc(-d.confidence[~wrong], decoy[~wrong]) < 0.7
    with pytest.raises(ValueError, match=r"label_noise must be a fraction in \[0, 1\), got 1.5"):
        load_dataset("digits", label_noise=1.5)


def test_sample_images_are_packed_as_uint8_or_refused():
    import base64

    from deepmanifold.report.sample_figures import sample_images_json

    a = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    packed = sample_images_json(a)
    assert packed["shape"] == [2, 3, 4, 1] and base64.b64decode(packed["pixels"]) == a.tobytes()
    assert sample_images_json(None) is None
    with pytest.raises(ValueError, match=r"images must be uint8 of shape \(n, H, W\) or \(n, H, W, 3\)"):
        sample_images_json(a.astype(float))
