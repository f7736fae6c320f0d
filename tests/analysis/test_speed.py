"""Claim 3 (wider = same path, faster) on planted runs whose milestones are known in closed form."""

import itertools
import json
import math

import numpy as np
import pytest
import scipy.stats

from deepmanifold.analysis.speed import (SPEED_LEVELS, Milestone, RunProgress, Spearman, judge, progress_milestones,
                                         spearman, speed_analysis, speed_by_width)

STEPS_PER_EPOCH = 100
EPOCHS = np.linspace(0.0, 120.0, 4801)  # dense: 0.025 epoch between checkpoints
TAU = {1: 30.0, 2: 16.0, 4: 9.0, 8: 5.0}  # wider trains faster


def _run(run_id, arch, width, tau, epochs=EPOCHS):
    return RunProgress(run_id=run_id, arch=arch, width=width, progress=1.0 - np.exp(-epochs / tau),
                       epochs=epochs, steps=epochs * STEPS_PER_EPOCH)


def test_milestones_match_closed_form():
    tau = 7.0
    r = _run("a", "mlp", 1, tau)
    ms = progress_milestones(r.progress, r.epochs, r.steps)
    assert ms.levels == (0.5, 0.9) and set(ms.to_dict()) == {"0.5", "0.9"}
    for level in (0.5, 0.9):
        exact = -tau * math.log(1.0 - level)
        assert ms[level].epoch == pytest.approx(exact, abs=1e-4)
        assert ms[f"{level:g}"].step == pytest.approx(exact * STEPS_PER_EPOCH, abs=1e-2)
    with pytest.raises(KeyError):
        ms[0.7]


def test_milestones_first_crossing_unreached_and_order():
    progress = np.array([0.0, 0.4, 0.6, 0.3, 0.95, np.nan])
    epochs = np.array([0.0, 1.0, 2.0, 3.0, 4.0, 5.0])
    steps = epochs * 10
    ms = progress_milestones(progress, epochs, steps, levels=(0.5, 0.9, 0.99))
    assert ms[0.5].epoch == pytest.approx(1.5)  # first crossing, the later dip ignored
    assert ms[0.5].step == pytest.approx(15.0)
    assert ms[0.9].epoch == pytest.approx(3.0 + 0.6 / 0.65)
    assert ms[0.99] == Milestone(None, None)
    assert ms.to_dict()["0.99"] == {"epoch": None, "step": None}
    # checkpoints given out of order are sorted by step
    perm = np.array([4, 0, 2, 1, 3, 5])
    assert progress_milestones(progress[perm], epochs[perm], steps[perm], (0.5, 0.9, 0.99)) == ms
    # a level already reached at the first checkpoint
    assert progress_milestones([0.7, 0.8], [0, 1], [0, 5], (0.5,))[0.5] == Milestone(0.0, 0.0)
    with pytest.raises(ValueError):
        progress_milestones([0.1, 0.2], [0, 1], [0, 1, 2])
    with pytest.raises(ValueError):
        progress_milestones([0.1, 0.2], [0, 1], [0, 1], levels=(0.0,))


def test_speed_by_width_planted_trend():
    runs = [_run(f"mlp-w{w}-s{s}", "mlp", w, tau) for w, tau in TAU.items() for s in range(2)]
    runs += [_run(f"cnn-w{w}-s{s}", "cnn", w, 1.5 * tau) for w, tau in TAU.items() for s in range(2)]
    runs.append(_run("vit-s0", "vit", 3, 10.0))
    out = speed_by_width(runs)
    as_json = json.loads(json.dumps(out.to_dict(), allow_nan=False))
    assert as_json["architectures"]["mlp"]["trend"]["epochs"]["rho"] == pytest.approx(-1.0)
    assert out.levels == [0.5, 0.9] and out.trend_level == 0.9
    assert set(out.architectures) == {"mlp", "cnn"}
    assert "vit" in out.skipped and "single width" in out.skipped["vit"]
    mlp = out.architectures["mlp"]
    assert [e.width for e in mlp.widths] == [1, 2, 4, 8]
    for e in mlp.widths:
        tau = TAU[e.width]
        assert e.n_runs == 2 and len(e.epochs["0.9"].values) == 2
        assert e.epochs["0.9"].mean == pytest.approx(-tau * math.log(0.1), abs=1e-3)
        assert e.epochs["0.5"].mean == pytest.approx(tau * math.log(2.0), abs=1e-3)
        assert e.steps["0.9"].mean == pytest.approx(-tau * math.log(0.1) * STEPS_PER_EPOCH, abs=0.1)
    for arch in ("mlp", "cnn"):
        for unit in ("epochs", "steps"):
            t = out.architectures[arch].trend[unit]
            assert t.rho == pytest.approx(-1.0) and t.n == 8
            assert t.rho_width_means == pytest.approx(-1.0) and t.n_widths == 4
            assert t.n_not_reached == 0


def test_speed_by_width_unreached_runs_are_counted_not_ranked():
    short = np.linspace(0.0, 20.0, 801)
    runs = [_run("w1", "mlp", 1, 30.0, short),  # never reaches 0.9 in 20 epochs
            _run("w2", "mlp", 2, 8.0, short), _run("w4", "mlp", 4, 4.0, short),
            _run("w8", "mlp", 8, 2.0, short), _run("nowidth", "mlp", None, 3.0, short)]
    out = speed_by_width(runs)
    t = out.architectures["mlp"].trend["epochs"]
    assert t.n == 3 and t.n_not_reached == 1 and t.rho == pytest.approx(-1.0)
    assert out.skipped_runs == [("nowidth", "no width")]
    assert out.to_dict()["skipped_runs"] == [{"run_id": "nowidth", "reason": "no width"}]


def test_spearman_edge_cases():
    assert spearman([1, 2, 3], [3, 2, 1]).rho == pytest.approx(-1.0)
    assert spearman([1, 2, 3], [5, 5, 5]).rho is None
    assert spearman([1.0], [2.0]) == Spearman(None, 1, "fewer than 2 finite pairs")
    assert spearman([1, 2, np.nan, 4], [1, 2, 3, 4]).n == 3
    # against SciPy on a case with ties
    x, y = [1, 2, 2, 3, 5, 4], [2, 1, 4, 3, 6, 6]
    assert spearman(x, y).rho == pytest.approx(scipy.stats.spearmanr(x, y).statistic)


def _grid_sweep(families=(("mlp", (64, 256)), ("cnn", (8, 32))), seeds=(0, 1, 2), opts=("sgd", "adam")):
    return [{"arch": f, "arch_options": {"width": w}, "optimizer": o, "seed": s, "label": f"{f}{w}/{o}/{s}"}
            for f, widths in families for w in widths for o in opts for s in seeds]


def _curves(configs, tau_of):
    """Exponential progress curves, ``1 - exp(-epoch / tau)``, on a dense epoch grid (steps = 100 per epoch)."""
    taus = [tau_of(c) for c in configs]
    return ([1.0 - np.exp(-EPOCHS / t) for t in taus], [EPOCHS] * len(configs),
            [EPOCHS * STEPS_PER_EPOCH] * len(configs))


def test_pairs_match_seeds_and_log_ratios_are_closed_form():
    """Wide runs twice as fast: every pair's log ratio is log(1/2) at every level, exactly."""
    configs = _grid_sweep()
    progress, epochs, steps = _curves(configs, lambda c: 10.0 if c["arch_options"]["width"] in (64, 8) else 5.0)
    D = np.ones((len(configs), len(configs)))
    out = speed_analysis(D, configs, progress, epochs, steps, n_boot=50)
    assert set(out.families) == {"mlp", "cnn"} and out.skipped == {}
    mlp = out.families["mlp"]
    assert mlp.widths == [64, 256] and mlp.levels == list(SPEED_LEVELS)
    assert mlp.n_pairs == 6 and mlp.n_seed_matched == 6
    for p in mlp.pairs:
        assert configs[p.narrow]["seed"] == configs[p.wide]["seed"]
        assert configs[p.narrow]["optimizer"] == configs[p.wide]["optimizer"]
        assert (configs[p.narrow]["arch_options"]["width"], configs[p.wide]["arch_options"]["width"]) == (64, 256)
        assert p.log_ratio == pytest.approx(math.log(0.5), abs=1e-3)
    assert mlp.time_ratio == pytest.approx(0.5, abs=1e-3)
    assert mlp.p_faster == pytest.approx(1 / 64) and mlp.p_not_faster == pytest.approx(1.0)
    assert "exact" in mlp.test and mlp.by_level["0.5"].n == 6
    json.loads(json.dumps(out.to_dict(), allow_nan=False))


def test_levels_reached_by_too_few_runs_are_left_out_and_unmatched_seeds_are_paired_in_order():
    configs = _grid_sweep(families=(("mlp", (64, 256)),), opts=("sgd",), seeds=(0, 1, 2, 3, 4))
    configs = [c for c in configs if not (c["arch_options"]["width"] == 256 and c["seed"] == 4)]
    configs.append({"arch": "mlp", "arch_options": {"width": 256}, "optimizer": "sgd", "seed": 7})
    short = np.linspace(0.0, 12.0, 481)
    taus = {0: 4.0, 1: 4.0, 2: 4.0, 3: 12.0, 4: 12.0, 7: 2.0}  # tau 12 reaches 1 - 1/e = 0.63 in 12 epochs
    progress = [1.0 - np.exp(-short / taus[c["seed"]]) for c in configs]
    out = speed_analysis(np.ones((10, 10)), configs, progress, [short] * 10, [short] * 10, n_boot=20)
    fam = out.families["mlp"]
    assert fam.levels == [0.1, 0.2, 0.3, 0.4, 0.5, 0.6]  # 0.7 and above: 7 of 10 runs
    unmatched = [p for p in fam.pairs if not p.seed_matched]
    assert len(unmatched) == 1 and (configs[unmatched[0].narrow]["seed"], configs[unmatched[0].wide]["seed"]) == (4, 7)
    assert unmatched[0].log_ratio == pytest.approx(math.log(2.0 / 12.0), abs=1e-3)


def test_sign_flip_p_values_match_enumeration():
    rng = np.random.default_rng(5)
    configs = _grid_sweep(families=(("cnn", (8, 32)),), seeds=(0, 1, 2, 3), opts=("sgd", "adam"))
    jitter = {id(c): math.exp(0.3 * rng.normal()) for c in configs}
    progress, epochs, steps = _curves(configs, lambda c: (6.0 if c["arch_options"]["width"] == 8 else 5.0) * jitter[id(c)])
    fam = speed_analysis(np.ones((16, 16)), configs, progress, epochs, steps, n_boot=20).families["cnn"]
    x = np.array([p.log_ratio for p in fam.pairs])
    signs = np.array(list(itertools.product((1, -1), repeat=x.size)))
    means = (signs * x).mean(axis=1)
    assert fam.p_faster == pytest.approx(np.mean(means <= x.mean() + 1e-12))
    shifted = x - math.log(0.9)
    assert fam.p_not_faster == pytest.approx(np.mean((signs * shifted).mean(axis=1) >= shifted.mean() - 1e-12))


def test_path_ratio_is_the_ratio_of_crossed_effects():
    """D additive in family, width and seed: Δ_width / Δ_arch is the planted ratio, family by family."""
    configs = _grid_sweep(families=(("mlp", (64, 256)), ("cnn", (8, 32)), ("vit", (48,))))
    fam = np.array([c["arch"] for c in configs])
    width = np.array([c["arch_options"]["width"] for c in configs])
    seed = np.array([c["seed"] for c in configs])
    D = (1.0 * (fam[:, None] != fam) + 0.1 * ((fam[:, None] == fam) & (width[:, None] != width))
         + 0.05 * (seed[:, None] != seed))
    np.fill_diagonal(D, 0.0)
    progress, epochs, steps = _curves(configs, lambda c: 5.0)
    out = speed_analysis(D, configs, progress, epochs, steps, n_boot=200)
    assert "vit" in out.skipped and "one width" in out.skipped["vit"]
    for name in ("mlp", "cnn"):
        f = out.families[name]
        assert f.width_effect == pytest.approx(0.1) and f.arch_effect == pytest.approx(1.0)
        assert f.path_ratio == pytest.approx(0.1) and f.path_low == pytest.approx(0.1)
        assert f.path_high == pytest.approx(0.1) and f.path_groups == 2 * 2 + 2 * 2 + 2


def test_corner_runs_and_aliases():
    """Corner runs never pair; an alias (cnn_wide) is the same family as its model."""
    configs = _grid_sweep(families=(("cnn", (8, 32)),))
    for c in configs:
        if c["arch_options"]["width"] == 32:
            c["arch_alias"] = "cnn_wide"
    corners = [dict(c, init="shuffled_labels") for c in configs]
    everything = configs + corners
    progress, epochs, steps = _curves(everything, lambda c: 5.0 if c.get("init") else 10.0)
    out = speed_analysis(np.ones((24, 24)), everything, progress, epochs, steps, n_boot=20)
    assert out.corner_runs == list(range(12, 24))
    fam = out.families["cnn"]
    assert all(p.narrow < 12 and p.wide < 12 for p in fam.pairs) and fam.n_pairs == 6
    assert fam.time_ratio == pytest.approx(1.0)
    assert "same path not measured" in fam.reason  # one family: no architecture pair


def test_speed_judge_skips_without_two_widths_and_rejects_bad_input():
    configs = _grid_sweep(families=(("mlp", (64,)), ("cnn", (8,))))
    progress, epochs, steps = _curves(configs, lambda c: 5.0)
    out = speed_analysis(np.ones((12, 12)), configs, progress, epochs, steps)
    verdict = judge(out)
    assert verdict.verdict == "skipped" and "one width" in verdict.reason
    with pytest.raises(ValueError, match="progress"):
        speed_analysis(np.ones((12, 12)), configs, progress[:-1], epochs, steps)
    with pytest.raises(ValueError, match="reach_fraction"):
        speed_analysis(np.ones((12, 12)), configs, progress, epochs, steps, reach_fraction=0.0)
    with pytest.raises(ValueError, match="levels"):
        speed_analysis(np.ones((12, 12)), configs, progress, epochs, steps, levels=(1.5,))
