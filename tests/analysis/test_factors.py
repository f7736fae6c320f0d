"""Factor effects on planted structure: every answer is known in advance."""

import json
import math

import numpy as np
import pytest

from deepmanifold.analysis.factors import (
    DEFAULT_FACTORS,
    FactorReport,
    factor_effects,
    factor_predictability,
)

A, B, BASE, NOISE = 1.0, 0.1, 0.05, 0.02
ARCHS = ("mlp", "cnn", "convmixer")
OPTS = ("sgd", "adam")
SEEDS = tuple(range(6))


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


def _planted(archs=ARCHS, opts=OPTS, seeds=SEEDS, noise=NOISE, iid=0.0, rng=0):
    """D = A [arch differs] + B [optimizer differs] + BASE + seed noise (+ i.i.d. noise).

    The seed noise is sigma * (z[s_i] + z[s_j]) / 2 with z of mean exactly 0 over the
    seeds, so the mean over any factor's pairs is exactly the planted value while the
    seed-cluster bootstrap sees a real spread.
    """
    configs = [_config(a, o, s) for a in archs for o in opts for s in seeds]
    R = len(configs)
    arch = np.array([c["arch"] for c in configs])
    opt = np.array([c["optimizer"] for c in configs])
    gen = np.random.default_rng(rng)
    z = gen.normal(size=len(seeds))
    z = (z - z.mean()) / (z.std() if len(seeds) > 1 else 1.0)
    zs = z[np.array([seeds.index(c["seed"]) for c in configs])]
    e = gen.normal(0.0, iid, size=(R, R)) if iid else np.zeros((R, R))
    D = (A * (arch[:, None] != arch[None, :]) + B * (opt[:, None] != opt[None, :]) + BASE
         + noise * (zs[:, None] + zs[None, :]) / 2 + (e + e.T) / 2)
    np.fill_diagonal(D, 0.0)
    return D, configs


def test_planted_ranking_means_and_intervals():
    D, configs = _planted()
    report = factor_effects(D, configs)
    assert isinstance(report, FactorReport)
    assert [e.factor for e in report.effects] == list(DEFAULT_FACTORS)
    assert report.ranking[0] == "arch"
    assert report.ranking == ["arch", "optimizer", "seed"]
    arch, opt, seed = report["arch"], report["optimizer"], report["seed"]
    # Means and intervals cover the planted values (BASE is part of every distance).
    assert arch.low <= A + BASE <= arch.high
    assert opt.low <= B + BASE <= opt.high
    # Seed noise is the same in every configuration group: a zero-width interval at BASE.
    assert seed.low - 1e-12 <= BASE <= seed.high + 1e-12
    assert arch.mean == pytest.approx(A + BASE, abs=0.01)
    assert opt.mean == pytest.approx(B + BASE, abs=0.01)
    assert arch.low < arch.mean < arch.high and arch.high - arch.low < 0.05
    # Pair counts: arch pairs share optimizer and seed; optimizer pairs share arch and seed.
    assert arch.n_pairs == 3 * len(OPTS) * len(SEEDS)
    assert opt.n_pairs == len(ARCHS) * len(SEEDS)
    assert seed.n_pairs == len(ARCHS) * len(OPTS) * math.comb(len(SEEDS), 2)
    assert arch.n_clusters == len(SEEDS) and "seeds" in arch.interval
    assert seed.n_clusters == len(ARCHS) * len(OPTS) and "configuration groups" in seed.interval
    # lr and momentum go with the optimiser, arch_options.depth with the architecture.
    assert set(opt.tied_with) == {"lr", "momentum"}
    assert opt.tied_with and "arch_options.depth" in arch.tied_with
    # lr never varies on its own: no pairs, and the reason names the optimiser.
    assert report["lr"].status == "no comparable pairs"
    assert "optimizer" in report["lr"].reason
    for name in ("batch_size", "weight_decay", "augmentation", "arch_options.width"):
        assert report[name].status == "not a factor in this sweep"
    assert report["init"].status == "not a factor in this sweep" and "no run sets" in report["init"].reason
    assert arch.values == sorted(ARCHS)


def test_predictability_arch_and_seed():
    D, configs = _planted(iid=0.02)
    arch = factor_predictability(D, configs, "arch")
    assert arch.status == "ok"
    assert arch.accuracy == pytest.approx(1.0)
    assert arch.chance == pytest.approx(1 / 3)
    assert arch.n == len(configs) and arch.n_unclassified == 0 and arch.n_classes == 3
    assert arch.p_value < 0.01
    seed = factor_predictability(D, configs, "seed", n_neighbors=3)
    assert seed.status == "ok"
    assert seed.chance == pytest.approx(1 / len(SEEDS))
    assert abs(seed.accuracy - seed.chance) < 0.2
    assert seed.p_value > 0.05
    # Seed-twins excluded: the optimiser is NOT predictable (the nearest non-twin is the
    # same architecture with the other optimiser).
    opt = factor_predictability(D, configs, "optimizer")
    assert opt.accuracy < 0.2
    back = json.loads(json.dumps([p.to_dict() for p in (arch, seed, opt)], allow_nan=False))
    assert back[0]["values"] == sorted(ARCHS) and back[0]["accuracy"] == arch.accuracy


def test_predictability_skips_with_reason():
    D, configs = _planted(archs=("mlp",))
    out = factor_predictability(D, configs, "arch")
    assert out.status == "skipped" and "one value" in out.reason and out.n_classes == 1
    out = factor_predictability(D[:3, :3], configs[:3], "seed")
    assert out.status == "skipped" and "too few" in out.reason
    missing = factor_predictability(D, configs, "init")
    assert missing.status == "skipped" and missing.n_classes == 0 and missing.to_dict()["values"] == [None]


def test_single_architecture_is_not_a_factor():
    D, configs = _planted(archs=("mlp",))
    report = factor_effects(D, configs, n_boot=200)
    assert report["arch"].status == "not a factor in this sweep"
    assert "mlp" in report["arch"].reason
    assert math.isnan(report["arch"].mean) and report["arch"].n_pairs == 0
    assert report.ranking == ["optimizer", "seed"]
    frame = report.to_frame()
    assert list(frame["factor"][:2]) == ["optimizer", "seed"]
    assert len(frame) == len(DEFAULT_FACTORS)


def test_nan_pairs_skipped_and_counted():
    D, configs = _planted(seeds=(0, 1, 2))
    arch = np.array([c["arch"] for c in configs])
    # Hide every mlp-vs-cnn distance (no common progress).
    hide = ((arch[:, None] == "mlp") & (arch[None, :] == "cnn"))
    D[hide | hide.T] = np.nan
    report = factor_effects(D, configs, n_boot=200)
    e = report["arch"]
    assert e.status == "measured"
    assert e.n_nan_pairs == len(OPTS) * 3  # one mlp-cnn pair per (optimizer, seed)
    assert e.n_pairs == 2 * len(OPTS) * 3
    assert "without common progress" in e.reason
    assert report.n_nan_pairs == e.n_nan_pairs
    # All pairs NaN: no crash, a reason.
    D2 = np.full_like(D, np.nan)
    r2 = factor_effects(D2, configs, n_boot=50)
    assert r2["arch"].status == "no comparable pairs" and "NaN" in r2["arch"].reason
    assert r2.ranking == []


def test_json_serialisable_and_frame():
    D, configs = _planted(seeds=(0, 1))
    report = factor_effects(D, configs, n_boot=100)
    text = json.dumps(report.to_dict(), allow_nan=False)
    back = json.loads(text)
    assert back["ranking"] == report.ranking
    assert {e["factor"] for e in back["effects"]} == set(DEFAULT_FACTORS)
    frame = report.to_frame()
    assert frame.loc[0, "factor"] == "arch"
    assert {"mean", "low", "high", "n_pairs", "status", "reason"} <= set(frame.columns)


def test_arch_alias_and_zip_rows():
    """Aliases name the architecture; lr and batch_size moving together are measured together."""
    configs, arch_of = [], []
    for alias, width in (("narrow", 16), ("wide", 256)):
        for bs, lr in ((64, 0.05), (256, 0.2)):
            for seed in (0, 1, 2):
                configs.append(_config("mlp", "sgd", seed, arch_alias=alias, batch_size=bs, lr=lr,
                                       arch_options={"width": width}))
                arch_of.append(alias)
    arch = np.array(arch_of)
    bs = np.array([c["batch_size"] for c in configs])
    R = len(configs)
    D = 0.5 * (arch[:, None] != arch[None, :]) + 0.2 * (bs[:, None] != bs[None, :]) + 0.01
    np.fill_diagonal(D, 0.0)
    report = factor_effects(D, configs, n_boot=100)
    assert report["arch"].status == "measured" and report["arch"].values == ["narrow", "wide"]
    assert report["arch"].mean == pytest.approx(0.51)
    assert "arch_options.width" in report["arch"].tied_with
    assert report["lr"].status == report["batch_size"].status == "measured"
    assert report["lr"].tied_with == ["batch_size"] and report["batch_size"].tied_with == ["lr"]
    assert report["lr"].mean == pytest.approx(0.21)
    assert report.ranking[0] == "arch"
    assert R == 12


def test_independent_companion_must_match():
    """lr as its own grid axis next to optimizer: optimizer pairs must share lr."""
    configs = [_config("mlp", o, s, lr=lr) for o in OPTS for lr in (0.01, 0.1) for s in (0, 1)]
    D = np.ones((len(configs), len(configs)))
    np.fill_diagonal(D, 0.0)
    report = factor_effects(D, configs, n_boot=50)
    assert report["optimizer"].tied_with == ["momentum"]
    assert report["optimizer"].n_pairs == 2 * 2  # per (lr, seed)
    assert report["lr"].n_pairs == 2 * 2  # per (optimizer, seed)


def test_bad_inputs():
    D, configs = _planted(seeds=(0,))
    with pytest.raises(ValueError):
        factor_effects(D[:-1], configs)
    with pytest.raises(ValueError):
        factor_effects(D, configs[:-1])


def test_architectures_with_and_without_knobs_are_compared():
    """An architecture with default knobs (empty arch_options) against one with knobs:
    the knobs change with the architecture, so the pair differs in arch only."""
    configs, truth = [], []
    for arch, opts in (("mlp", {}), ("cnn", {}), ("convmixer", {"width": 48, "depth": 3})):
        for seed in (0, 1):
            configs.append({"arch": arch, "arch_options": opts, "optimizer": "sgd", "seed": seed})
            truth.append(arch)
    R = len(configs)
    D = np.array([[0.0 if i == j else (1.0 if truth[i] != truth[j] else 0.1) for j in range(R)]
                  for i in range(R)])
    rep = factor_effects(D, configs, n_boot=50)
    arch = rep["arch"]
    assert arch.status == "measured" and arch.n_pairs == 3 * 2  # 3 architecture pairs x 2 seeds
    assert arch.mean == pytest.approx(1.0)


def test_architecture_pairs_may_differ_in_knobs_that_also_vary_within_a_family():
    """Two widths per family, no width shared across families (as in
    examples/fashion_mnist_quick.toml): architecture is still measured, and width is a
    factor of its own within each family."""
    configs, fam = [], []
    for arch, widths in (("mlp", (64, 512)), ("cnn", (8, 32))):
        for w in widths:
            for seed in (0, 1):
                configs.append({"arch": arch, "arch_options": {"width": w}, "seed": seed})
                fam.append((arch, w))
    R = len(configs)
    D = np.zeros((R, R))
    for i in range(R):
        for j in range(R):
            if i != j:
                D[i, j] = 1.0 if fam[i][0] != fam[j][0] else (0.2 if fam[i][1] != fam[j][1] else 0.05)
    rep = factor_effects(D, configs, n_boot=50)
    assert rep["arch"].status == "measured" and rep["arch"].mean == pytest.approx(1.0)
    assert rep["arch_options.width"].status == "measured"
    assert rep["arch_options.width"].mean == pytest.approx(0.2)
    assert rep.ranking[0] == "arch"
