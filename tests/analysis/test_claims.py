"""Each judge on planted measurements: one where the claim must hold, one where it must not."""

import subprocess
import sys

import numpy as np
import pytest

from deepmanifold import geometry
from deepmanifold.analysis.agreement import train_test_agreement
from deepmanifold.analysis.claims import (CLAIMS, MAX_AXES_LOW_DIM, RULES, ArchitectureEvidence, SpeedEvidence,
                                          judge_architecture, judge_corners, judge_manifold, judge_speed,
                                          judge_train_test, skipped_claim)
from deepmanifold.analysis.corners import corner_convergence
from deepmanifold.analysis.dimensionality import dimensionality
from deepmanifold.analysis.factors import factor_effects, factor_predictability
from deepmanifold.analysis.speed import RunProgress, same_path, speed_by_width

C = 10


def test_every_claim_has_a_statement_and_a_rule_with_its_thresholds():
    assert list(RULES) == list(CLAIMS)
    assert f"top {MAX_AXES_LOW_DIM} InPCA axes reach 90 % explained stress" in RULES["manifold"]
    assert "2.0 × the ordinary runs' own spread" in RULES["corners"]
    claim = skipped_claim("speed", "one width")
    assert (claim.verdict, claim.rule, claim.statement) == ("skipped", RULES["speed"], CLAIMS["speed"])


def test_rules_survive_python_without_docstrings():
    code = ("import deepmanifold.analysis as a; from deepmanifold.analysis.claims import RULES; "
            "assert a.analyze_store.__doc__ is None and all(len(r) > 80 for r in RULES.values())")
    out = subprocess.run([sys.executable, "-OO", "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr


# ----------------------------------------------------------------------------- 1. manifold

def _path_runs(n_runs=10, k=10, n=100, ramp=0.2, seed=0):
    """Runs along one shared curve: sample i is learned over its own stretch of training
    (a ramp of length ``ramp`` starting at a random time), the same in every run; runs
    differ only in their pace along the curve."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, C, size=n)
    start = rng.uniform(0, 1 - ramp, size=n)
    grid = np.linspace(0, 1, 401)
    geo = geometry.geodesic(labels, C, grid)
    P, run = [], []
    for r in range(n_runs):
        pace = rng.uniform(0.5, 2.0)
        for j in range(k):
            s = np.clip(((j / (k - 1)) ** pace - start) / ramp, 0, 1)
            P.append(geo[np.rint(s * 400).astype(int), np.arange(n)])
            run.append(r)
    return np.array(P), np.array(run)


def test_manifold_supported_on_runs_sharing_one_curve():
    P, run = _path_runs()
    claim = judge_manifold(dimensionality(geometry.pairwise_distances(P), run, P=P, n_null=3))
    assert claim.verdict == "supported", claim.numbers
    assert claim.numbers["axes_for_90%"] < claim.numbers["null_axes_for_90% (mean)"]


def test_manifold_not_supported_on_unrelated_checkpoints():
    rng = np.random.default_rng(1)
    P = rng.dirichlet(np.ones(C), size=(40, 60))  # every checkpoint its own random model
    run = np.repeat(np.arange(8), 5)
    claim = judge_manifold(dimensionality(geometry.pairwise_distances(P), run, P=P, n_null=2))
    assert claim.verdict == "not supported"
    # i.i.d. models: every axis explains about as much as the next, 10 axes reach ~27 %
    assert claim.numbers["axes_for_90%"] is None and claim.numbers["explained_stress_top3"] < 0.15


# ----------------------------------------------------------------------------- 2. architecture

def _sweep(arch_effect, opt_effect, archs=("mlp", "cnn", "convmixer"), seeds=range(4), seed=0):
    configs = [{"arch": a, "optimizer": o, "seed": s} for a in archs for o in ("sgd", "adam") for s in seeds]
    arch = np.array([c["arch"] for c in configs])
    opt = np.array([c["optimizer"] for c in configs])
    noise = np.random.default_rng(seed).uniform(0, 0.02, size=(len(configs),) * 2)
    D = (arch_effect * (arch[:, None] != arch[None]) + opt_effect * (opt[:, None] != opt[None]) + 0.05
         + noise + noise.T)
    np.fill_diagonal(D, 0.0)
    return D, configs


def _architecture(D, configs):
    return ArchitectureEvidence(factor_effects(D, configs, n_boot=200), factor_predictability(D, configs, "arch"))


def test_architecture_supported_when_it_dominates():
    claim = judge_architecture(_architecture(*_sweep(1.0, 0.1)))
    assert claim.verdict == "supported", claim.numbers
    assert claim.numbers["ranking"][0] == "arch" and claim.numbers["p_value"] < 0.05


def test_architecture_not_supported_when_the_optimiser_dominates():
    claim = judge_architecture(_architecture(*_sweep(0.1, 1.0)))
    assert claim.verdict == "not supported"
    assert claim.numbers["ranking"][0] == "optimizer"


def test_architecture_skipped_with_one_architecture():
    claim = judge_architecture(_architecture(*_sweep(1.0, 0.1, archs=("mlp",))))
    assert claim.verdict == "skipped" and "mlp" in claim.reason


# ----------------------------------------------------------------------------- 3. speed

def _speed(taus, within, between):
    """Two architectures at widths 1, 2, 4 (two seeds); progress 1 - exp(-epoch / tau[width])."""
    epochs = np.linspace(0, 60, 601)
    runs, archs, widths = [], [], []
    for arch in ("mlp", "cnn"):
        for width, tau in taus.items():
            for s in range(2):
                runs.append(RunProgress(f"{arch}-{width}-{s}", arch, width, 1 - np.exp(-epochs / tau), epochs,
                                        100 * epochs))
                archs.append(arch)
                widths.append(width)
    a = np.array(archs)
    D = np.where(a[:, None] == a[None], within, between)
    np.fill_diagonal(D, 0.0)
    return SpeedEvidence(milestones={r.run_id: r.milestones() for r in runs}, by_width=speed_by_width(runs),
                         same_path=same_path(D, archs, widths))


def test_speed_supported_when_wider_is_faster_on_the_same_path():
    claim = judge_speed(_speed({1: 12.0, 2: 8.0, 4: 5.0}, within=0.01, between=0.5))
    assert claim.verdict == "supported"
    assert claim.numbers["spearman_width_vs_epochs"] == {"cnn": pytest.approx(-1.0), "mlp": pytest.approx(-1.0)}
    assert claim.numbers["same_path_ratio"] == pytest.approx(0.02)


def test_speed_not_supported_when_wider_is_slower_on_another_path():
    claim = judge_speed(_speed({1: 5.0, 2: 8.0, 4: 12.0}, within=0.5, between=0.1))
    assert claim.verdict == "not supported"
    assert claim.numbers["same_path_ratio"] == pytest.approx(5.0)


def test_speed_inconclusive_when_faster_on_another_path():
    assert judge_speed(_speed({1: 12.0, 2: 8.0, 4: 5.0}, within=0.5, between=0.1)).verdict == "inconclusive"


def test_speed_skipped_without_two_widths():
    evidence = _speed({1: 12.0}, within=0.01, between=0.5)
    claim = judge_speed(evidence)
    assert claim.verdict == "skipped" and "a single width (1)" in claim.reason
    evidence.by_width = None
    assert judge_speed(evidence).verdict == "skipped"


# ----------------------------------------------------------------------------- 4. corners

def _corners(*weights, n=120, seed=0):
    """Four ordinary runs, each the geodesic gamma(t) with 5 % of its own noise, and corner
    runs that are one more such run mixed with a far model: ``(1 - w(t)) run(t) + w(t) far``
    at progress t, for each ``w`` given."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, C, size=n)
    grid = np.linspace(0.0, 1.0, 11)
    gamma = geometry.geodesic(labels, C, grid)

    def run():
        return 0.95 * gamma + 0.05 * rng.dirichlet(np.ones(C), size=n)

    far = rng.dirichlet(np.full(C, 0.3), size=n)
    corners = [(1 - w(grid))[:, None, None] * run() + w(grid)[:, None, None] * far for w in weights]
    sqrt_p = np.sqrt(np.stack([run() for _ in range(4)] + corners))
    is_corner = np.arange(len(sqrt_p)) >= 4
    return corner_convergence(sqrt_p, np.ones(sqrt_p.shape[:2], bool), grid, is_corner)


def test_corners_supported_when_every_corner_run_joins_the_ordinary_runs():
    claim = judge_corners(_corners(lambda t: 0.6 * (1 - t), lambda t: 0.6 * (1 - t) ** 2))
    assert claim.verdict == "supported", claim.numbers
    assert claim.numbers["corner_runs"] == 2 and max(claim.numbers["last_over_first"]) < 0.5


def test_corners_not_supported_when_one_stays_away():
    claim = judge_corners(_corners(lambda t: 0.6 * (1 - t), lambda t: np.full(t.size, 0.6)))
    assert claim.verdict == "not supported"
    assert claim.numbers["last_over_first"][1] > 0.5


# ----------------------------------------------------------------------------- 5. train vs test

def _models_seen_twice(noise, T=20, n=150, seed=0):
    rng = np.random.default_rng(seed)
    base = 2.0 * rng.normal(size=(T, 1, C))

    def softmax(z):
        e = np.exp(z - z.max(-1, keepdims=True))
        return e / e.sum(-1, keepdims=True)

    seen = [geometry.pairwise_distances(softmax(base + noise * rng.normal(size=(T, n, C)))) for _ in range(2)]
    return seen


def test_train_test_supported_for_the_same_models_on_two_sample_sets():
    A, B = _models_seen_twice(0.5)
    claim = judge_train_test(train_test_agreement(A, B, n_permutations=199))
    assert claim.verdict == "supported", claim.numbers


def test_train_test_not_supported_for_unrelated_pictures():
    rng = np.random.default_rng(3)
    A, B = (geometry.pairwise_distances(rng.dirichlet(np.ones(C), size=(20, 40))) for _ in range(2))
    claim = judge_train_test(train_test_agreement(A, B, n_permutations=199))
    assert claim.verdict == "not supported" and claim.numbers["mantel_r"] < 0.9
