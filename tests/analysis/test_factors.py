"""Factor effects with crossed seeds: Δ, its interval and p-value checked against direct computations."""

import itertools
import json
import math

import numpy as np
import pytest

from deepmanifold.analysis.factors import (
    DEFAULT_FACTORS,
    MIN_GROUPS,
    FactorReport,
    crossed_pairs,
    factor_effects,
    factor_predictability,
    ordinary_runs,
    resample_groups,
)

ARCHS = ("mlp", "cnn", "convmixer")
OPTS = ("sgd", "adam")


def _config(arch, opt, seed, **extra):
    config = {
        "arch": arch, "optimizer": opt, "seed": seed, "batch_size": 64, "weight_decay": 0.0,
        "lr": 0.05 if opt == "sgd" else 0.001, "epochs": 10, "augmentation": "none",
        "arch_options": {"width": 32, "depth": 2 if arch == "mlp" else 3},
        "label": f"{arch} / {opt} / seed {seed}", "data": {"name": "digits", "seed": 0},
        "probes": {"train": 500, "test": 450, "seed": 0}, "checkpoints": 50,
    }
    if opt == "sgd":
        config["momentum"] = 0.9
    config.update(extra)
    return config


def _additive(configs, effects, seed_effect, rng=0, noise=0.0):
    """D = Σ_f effects[f] [f differs] + seed_effect [seed differs] (+ symmetric noise), 0 on the diagonal."""
    R = len(configs)
    D = np.zeros((R, R))
    for key, size in {**effects, "seed": seed_effect}.items():
        col = np.array([str(c.get(key)) for c in configs])
        D += size * (col[:, None] != col[None, :])
    e = np.random.default_rng(rng).uniform(0.0, noise, size=(R, R))
    D += e + e.T
    np.fill_diagonal(D, 0.0)
    return D


def _direct_delta(D, configs, factor, others):
    """Δ_factor by plain loops: per pair of configurations equal in ``others`` and different in ``factor``,
    mean D over their runs of different seeds minus the mean of the two seed-only baselines."""
    groups = {}
    for i, c in enumerate(configs):
        groups.setdefault(tuple(c.get(k) for k in (factor, *others)), []).append(i)

    def mean(pairs):
        vals = [D[i, j] for i, j in pairs if configs[i]["seed"] != configs[j]["seed"] and np.isfinite(D[i, j])]
        return np.mean(vals) if vals else np.nan

    base = {key: mean(itertools.combinations(m, 2)) for key, m in groups.items()}
    deltas = []
    for (ka, ma), (kb, mb) in itertools.combinations(groups.items(), 2):
        if ka[1:] != kb[1:] or ka[0] == kb[0]:
            continue
        cross, b = mean(itertools.product(ma, mb)), [base[ka], base[kb]]
        if np.isfinite(cross) and np.isfinite(b).any():
            deltas.append(cross - np.nanmean(b))
    return np.mean(deltas)


def test_additive_effects_are_recovered_exactly():
    """With D additive in the factors, Δ_f is the factor's own size whatever the seed adds."""
    configs = [_config(a, o, s) for a in ARCHS for o in OPTS for s in range(4)]
    D = _additive(configs, {"arch": 1.0, "optimizer": 0.1}, seed_effect=0.3)
    report = factor_effects(D, configs, n_boot=200, n_permutations=99)
    assert isinstance(report, FactorReport)
    assert [e.factor for e in report.effects] == list(DEFAULT_FACTORS)
    assert report.ranking == ["arch", "seed", "optimizer"]
    arch, opt, seed = report["arch"], report["optimizer"], report["seed"]
    assert arch.delta == pytest.approx(1.0) and opt.delta == pytest.approx(0.1)
    assert arch.cross_mean == pytest.approx(1.3) and arch.seed_mean == pytest.approx(0.3)
    assert seed.delta == pytest.approx(0.3) and seed.seed_mean == 0.0 and seed.p_value is None
    # Every Δ_gh is the same number: the group bootstrap has nothing to vary.
    assert arch.low == pytest.approx(1.0) and arch.high == pytest.approx(1.0)
    # Pair counts: arch pairs are 3 per optimiser, each with 4 x 3 runs of different seeds.
    assert arch.n_group_pairs == 3 * len(OPTS) and arch.n_run_pairs == 3 * len(OPTS) * 4 * 3
    assert arch.n_groups == len(ARCHS) * len(OPTS) and "6 groups" in arch.interval
    assert opt.n_group_pairs == len(ARCHS) and set(opt.tied_with) == {"lr", "momentum"}
    assert "arch_options.depth" in arch.tied_with
    assert report["lr"].status == "no comparable pairs" and "optimizer" in report["lr"].reason
    for name in ("batch_size", "weight_decay", "augmentation", "arch_options.width"):
        assert report[name].status == "not a factor in this sweep"
    assert report["init"].status == "not a factor in this sweep" and "no run sets" in report["init"].reason
    assert arch.values == sorted(ARCHS)
    assert arch.p_value < 0.05 and opt.p_value < 0.05


def test_delta_matches_a_direct_computation_on_an_irregular_sweep():
    """Unbalanced seeds, a group with one run, NaN distances: Δ as computed by plain loops."""
    rng = np.random.default_rng(3)
    configs = [_config(a, o, s) for a in ARCHS for o in OPTS for s in range(3)]
    configs = [c for k, c in enumerate(configs) if k not in (0, 1, 7)]  # mlp/sgd keeps one seed
    R = len(configs)
    D = rng.uniform(0.1, 1.0, size=(R, R))
    D = D + D.T
    np.fill_diagonal(D, 0.0)
    D[2, 5] = D[5, 2] = np.nan
    report = factor_effects(D, configs, n_boot=50, n_permutations=0)
    for factor, others in (("arch", ["optimizer"]), ("optimizer", ["arch"])):
        assert report[factor].delta == pytest.approx(_direct_delta(D, configs, factor, others), rel=1e-12)
    assert report["arch"].p_value is None and "no permutation" in report["arch"].permutation


def test_exact_permutation_p_matches_brute_force():
    """Every arrangement of the factor's values within (other keys, seed) blocks, recomputed by loops."""
    rng = np.random.default_rng(7)
    configs = [{"arch": a, "augmentation": aug, "seed": s} for aug in ("none", "flip") for a in ("mlp", "cnn", "vit")
               for s in (0, 1)]
    R = len(configs)
    D = rng.uniform(0.0, 1.0, size=(R, R))
    D = D + D.T
    arch = np.array([c["arch"] for c in configs])
    D += 0.3 * (arch[:, None] != arch[None, :])
    np.fill_diagonal(D, 0.0)
    observed = _direct_delta(D, configs, "arch", ["augmentation"])
    blocks = [[i for i, c in enumerate(configs) if (c["augmentation"], c["seed"]) == key]
              for key in itertools.product(("none", "flip"), (0, 1))]
    stats = []
    for combo in itertools.product(*(itertools.permutations(b) for b in blocks)):
        relabelled = [dict(c) for c in configs]
        for block, perm in zip(blocks, combo):
            for i, j in zip(block, perm):
                relabelled[i]["arch"] = configs[j]["arch"]
        stats.append(_direct_delta(D, relabelled, "arch", ["augmentation"]))
    brute = np.mean(np.asarray(stats) >= observed - 1e-12)
    assert len(stats) == 6 ** 4
    effect = factor_effects(D, configs, factors=["arch"], n_boot=50, n_permutations=6 ** 4)["arch"]
    assert effect.delta == pytest.approx(observed)
    assert effect.permutation.startswith("exact") and effect.n_permutations == 6 ** 4
    assert effect.p_value == pytest.approx(brute, abs=1e-12)
    # Fewer permutations allowed than arrangements: random ones, p of the (1 + k) / (1 + N) form.
    sampled = factor_effects(D, configs, factors=["arch"], n_boot=50, n_permutations=399)["arch"]
    assert "random" in sampled.permutation and abs(sampled.p_value - brute) < 0.08
    assert (sampled.p_value * 400) == pytest.approx(round(sampled.p_value * 400))


def test_interval_resamples_configuration_groups():
    """Δ_gh that differ by configuration: the interval is the percentile range of the group bootstrap,
    and too few groups give none."""
    configs = [_config(a, "sgd", s, augmentation=aug) for a in ARCHS for aug in ("none", "flip", "crop", "mix")
               for s in range(2)]
    R = len(configs)
    aug = np.array([c["augmentation"] for c in configs])
    arch = np.array([c["arch"] for c in configs])
    size = {"none": 0.2, "flip": 0.4, "crop": 0.6, "mix": 0.8}
    D = np.array([[0.0 if i == j else (size[aug[i]] if arch[i] != arch[j] else 0.0) + 0.1 for j in range(R)]
                  for i in range(R)])
    np.fill_diagonal(D, 0.0)
    pairs = crossed_pairs(D, configs, ["arch"])["arch"]
    assert sorted(set(np.round(pairs.delta, 12))) == [0.2, 0.4, 0.6, 0.8]
    reps = resample_groups([pairs], n_boot=2000, random_state=1)[:, 0]
    effect = factor_effects(D, configs, factors=["arch"], n_boot=2000, random_state=1, n_permutations=0)["arch"]
    assert effect.delta == pytest.approx(0.5) and effect.low < 0.4 and effect.high > 0.6
    reps = reps[np.isfinite(reps)]  # a replicate that draws no pair of groups has no mean
    assert reps.size > 1900 and 0.2 - 1e-12 <= reps.min() and reps.max() <= 0.8 + 1e-12
    # Two groups only: no interval, and it says why.
    two = [c for c in configs if c["augmentation"] == "none" and c["arch"] in ("mlp", "cnn")]
    idx = [configs.index(c) for c in two]
    small = factor_effects(D[np.ix_(idx, idx)], two, factors=["arch"], n_boot=50)["arch"]
    assert small.measured and math.isnan(small.low) and f"need {MIN_GROUPS}" in small.interval


def test_corner_runs_are_left_out():
    configs = [_config(a, o, s) for a in ARCHS for o in OPTS for s in range(2)]
    base = _additive(configs, {"arch": 1.0, "optimizer": 0.2}, seed_effect=0.1)
    corners = [_config(a, "sgd", s, init="shuffled_labels", init_epochs=20) for a in ARCHS for s in range(2)]
    everything = configs + corners
    R, Rc = len(configs), len(everything)
    D = np.full((Rc, Rc), 5.0)
    D[:R, :R] = base
    np.fill_diagonal(D, 0.0)
    with_corners = factor_effects(D, everything, n_boot=100, n_permutations=0)
    without = factor_effects(base, configs, n_boot=100, n_permutations=0)
    assert with_corners.corner_runs == list(range(R, Rc))
    for f in ("arch", "optimizer", "seed"):
        assert with_corners[f].delta == pytest.approx(without[f].delta)
    assert with_corners["init"].status == "not a factor in this sweep"
    assert ordinary_runs(everything).tolist() == [True] * R + [False] * (Rc - R)
    pred = factor_predictability(D, everything, "arch", n_permutations=20)
    assert pred.n_corner_runs == Rc - R and pred.n == R


def test_single_seed_has_no_crossed_pairs():
    configs = [_config(a, o, 0) for a in ARCHS for o in OPTS]
    D = _additive(configs, {"arch": 1.0}, seed_effect=0.0)
    report = factor_effects(D, configs, n_boot=50)
    assert report["arch"].status == "no comparable pairs" and "seed" in report["arch"].reason
    assert report["seed"].status == "not a factor in this sweep"
    # Two seeds but each configuration trained with one of them: crossed pairs, no baseline.
    half = [_config(a, o, k % 2) for k, a in enumerate(ARCHS) for o in OPTS]
    D2 = _additive(half, {"arch": 1.0}, seed_effect=0.1)
    rep2 = factor_effects(D2, half, n_boot=50)
    assert rep2["arch"].status == "no comparable pairs" and "baseline" in rep2["arch"].reason


def test_nan_pairs_skipped_and_counted():
    configs = [_config(a, o, s) for a in ARCHS for o in OPTS for s in range(3)]
    D = _additive(configs, {"arch": 1.0, "optimizer": 0.1}, seed_effect=0.05)
    arch = np.array([c["arch"] for c in configs])
    hide = (arch[:, None] == "mlp") & (arch[None, :] == "cnn")
    D[hide | hide.T] = np.nan
    report = factor_effects(D, configs, n_boot=100, n_permutations=0)
    e = report["arch"]
    assert e.measured and e.delta == pytest.approx(1.0)
    assert e.n_nan_pairs == len(OPTS) * 3 * 2  # mlp-cnn run pairs of different seeds, per optimiser
    assert e.n_group_pairs == 2 * len(OPTS) and "without common progress" in e.reason
    assert report.n_nan_pairs == e.n_nan_pairs
    r2 = factor_effects(np.full_like(D, np.nan), configs, n_boot=50)
    assert r2["arch"].status == "no comparable pairs" and r2.ranking == []


def test_json_and_frame():
    configs = [_config(a, o, s) for a in ARCHS for o in OPTS for s in range(2)]
    report = factor_effects(_additive(configs, {"arch": 1.0}, 0.1), configs, n_boot=50, n_permutations=9,
                            grid="common grid: 80 of 101 points")
    back = json.loads(json.dumps(report.to_dict(), allow_nan=False))
    assert back["ranking"] == report.ranking and back["grid"] == "common grid: 80 of 101 points"
    assert {e["factor"] for e in back["effects"]} == set(DEFAULT_FACTORS)
    frame = report.to_frame()
    assert frame.loc[0, "factor"] == "arch"
    assert {"delta", "low", "high", "p_value", "n_group_pairs", "status", "reason"} <= set(frame.columns)


def test_arch_alias_and_zip_rows():
    """Aliases name the architecture; lr and batch_size moving together are measured together."""
    configs = [_config("mlp", "sgd", seed, arch_alias=alias, batch_size=bs, lr=lr, arch_options={"width": width})
               for alias, width in (("narrow", 16), ("wide", 256)) for bs, lr in ((64, 0.05), (256, 0.2))
               for seed in (0, 1, 2)]
    D = _additive(configs, {"arch_alias": 0.5, "batch_size": 0.2}, seed_effect=0.01)
    report = factor_effects(D, configs, n_boot=100, n_permutations=0)
    assert report["arch"].measured and report["arch"].values == ["narrow", "wide"]
    assert report["arch"].delta == pytest.approx(0.5)
    assert "arch_options.width" in report["arch"].tied_with
    assert report["lr"].tied_with == ["batch_size"] and report["batch_size"].tied_with == ["lr"]
    assert report["lr"].delta == pytest.approx(0.2) == report["batch_size"].delta
    assert report.ranking[0] == "arch"


def test_independent_companion_must_match():
    """lr as its own grid axis next to optimizer: optimizer pairs must share lr."""
    configs = [_config("mlp", o, s, lr=lr) for o in OPTS for lr in (0.01, 0.1) for s in (0, 1)]
    D = _additive(configs, {"optimizer": 1.0, "lr": 0.5}, seed_effect=0.1)
    report = factor_effects(D, configs, n_boot=50, n_permutations=0)
    assert report["optimizer"].tied_with == ["momentum"]
    assert report["optimizer"].n_group_pairs == 2 and report["optimizer"].delta == pytest.approx(1.0)
    assert report["lr"].n_group_pairs == 2 and report["lr"].delta == pytest.approx(0.5)


def test_knobs_go_with_the_architecture_and_width_is_a_factor_within_a_family():
    """Two widths per family, no width shared across families: architecture pairs may differ in knobs,
    and width is measured within each family."""
    configs = [{"arch": a, "arch_options": {"width": w}, "optimizer": "sgd", "seed": s}
               for a, widths in (("mlp", (64, 512)), ("cnn", (8, 32)), ("vit", ())) for w in (widths or (None,))
               for s in (0, 1)]
    for c in configs:
        if c["arch"] == "vit":
            c["arch_options"] = {}
    D = _additive(configs, {"arch": 1.0, "arch_options": 0.2}, seed_effect=0.05)
    rep = factor_effects(D, configs, n_boot=50, n_permutations=0)
    assert rep["arch"].measured and rep["arch"].delta == pytest.approx(1.2)  # width differs too across families
    assert rep["arch_options.width"].measured and rep["arch_options.width"].delta == pytest.approx(0.2)
    assert rep["arch_options.width"].n_group_pairs == 2
    both = crossed_pairs(D, configs, ["arch", "arch_options.width"])
    mlp = np.array([c["arch"] == "mlp" for c in configs])
    assert both["arch"].involving(mlp).delta.size == 2 * 2 + 2  # mlp widths x cnn widths, and x vit
    assert both["arch_options.width"].involving(mlp).delta.size == 1
    with pytest.raises(ValueError, match="seed"):
        crossed_pairs(D, configs, ["seed"])


def test_predictability_crossed_candidates():
    configs = [_config(a, o, s) for a in ARCHS for o in OPTS for s in range(4)]
    D = _additive(configs, {"arch": 1.0, "optimizer": 0.2}, seed_effect=0.1, noise=0.02)
    arch = factor_predictability(D, configs, "arch")
    assert arch.status == "ok" and arch.accuracy == 1.0 and arch.chance == pytest.approx(1 / 3)
    assert arch.margin == pytest.approx(1.0) and arch.p_value < 0.01 and "same seed" in arch.excluded
    # The nearest run of another seed and configuration has the same architecture, the other optimiser.
    opt = factor_predictability(D, configs, "optimizer")
    assert opt.accuracy == 0.0 and opt.margin == pytest.approx(-1.0)
    seed = factor_predictability(D, configs, "seed")
    assert seed.status == "skipped" and "another seed" in seed.reason
    # A seed shared between configurations makes same-seed runs nearest; crossed candidates ignore it.
    shared = _additive(configs, {"arch": 1.0, "optimizer": 0.2}, seed_effect=2.0)
    assert factor_predictability(shared, configs, "arch", crossed=False).accuracy == 1.0
    twins_only = factor_predictability(shared, configs, "seed", crossed=False)
    assert twins_only.accuracy == 1.0 and "same seed" not in twins_only.excluded
    back = json.loads(json.dumps(arch.to_dict(), allow_nan=False))
    assert back["values"] == sorted(ARCHS) and back["margin"] == 1.0


def test_predictability_skips_with_reason():
    configs = [_config("mlp", o, s) for o in OPTS for s in range(3)]
    D = _additive(configs, {"optimizer": 1.0}, 0.1)
    out = factor_predictability(D, configs, "arch")
    assert out.status == "skipped" and "one value" in out.reason and out.n_classes == 1
    three = [0, 1, 3]
    out = factor_predictability(D[np.ix_(three, three)], [configs[i] for i in three], "optimizer")
    assert out.status == "skipped" and "too few" in out.reason
    missing = factor_predictability(D, configs, "init")
    assert missing.status == "skipped" and missing.n_classes == 0 and missing.to_dict()["values"] == [None]


def test_bad_inputs():
    configs = [_config(a, "sgd", 0) for a in ARCHS]
    D = np.ones((3, 3))
    with pytest.raises(ValueError, match="D"):
        factor_effects(D[:-1], configs)
    with pytest.raises(ValueError, match="configs"):
        factor_effects(D, configs[:-1])
    with pytest.raises(ValueError, match=r"configs\[1\]"):
        factor_effects(D, [configs[0], "mlp", configs[2]])
    with pytest.raises(ValueError, match="n_boot"):
        factor_effects(D, configs, n_boot=0)
    with pytest.raises(ValueError, match="n_permutations"):
        factor_effects(D, configs, n_permutations=-1)
