"""Power of claim 3's rule on synthetic runs whose speed and path are planted.

Speed: each run's progress is ``1 - exp(-epoch / tau)`` with ``tau`` set by its width (times
a small seed jitter). Path: each run's model at progress ``t`` is the geodesic point ``γ(t)``
tilted in log-probability by ``sin(π t) V``, ``V`` a sum of random (n, C) fields — one per
family, one per (family, width) scaled by how much width moves the path, one per optimiser,
and the seed's (initial weights per family, width and seed; minibatch order per seed).
Trajectory distances are mean d_B at equal progress (:func:`deepmanifold.geometry.pairwise_distances`).
"""

import math

import numpy as np

from deepmanifold.analysis.speed import judge, speed_analysis
from deepmanifold.geometry import geodesic, pairwise_distances

C, N = 4, 40
LABELS = np.random.default_rng(2).integers(0, C, size=N)
T = np.linspace(0.0, 1.0, 9)
EPOCHS = np.linspace(0.0, 40.0, 161)
SWEEP = [{"arch": f, "arch_options": {"width": w}, "optimizer": o, "seed": s}
         for f, widths in (("mlp", (64, 256)), ("cnn", (8, 32)), ("vit", (48,)))
         for w in widths for o in ("sgd", "adam") for s in range(3)]
WIDE = {256, 32}


def _sweep(width_path: float, speedup: float):
    """Distances, progress, epochs and steps of :data:`SWEEP`: wide runs need ``1 - speedup`` of the epochs,
    and a width moves the path by ``width_path`` (a family by 1)."""
    gen = np.random.default_rng(4)
    fields: dict = {}

    def z(*key):
        return fields.setdefault(key, gen.normal(size=(N, C)))

    tilt = np.stack([z(c["arch"]) + width_path * z(c["arch"], c["arch_options"]["width"]) + 0.2 * z(c["optimizer"])
                     + 0.2 * z(c["arch"], c["arch_options"]["width"], c["seed"]) + 0.1 * z("order", c["seed"])
                     for c in SWEEP])
    base = np.log(np.maximum(geodesic(LABELS, C, T), 1e-300))
    D = 0.0
    for t, log_gamma in zip(T, base):
        q = np.exp(log_gamma[None] + math.sin(math.pi * t) * tilt)
        D = D + pairwise_distances(q / q.sum(axis=-1, keepdims=True)) / T.size
    taus = [8.0 * (1.0 - speedup if c["arch_options"]["width"] in WIDE else 1.0) * math.exp(0.03 * gen.normal())
            for c in SWEEP]
    progress = [1.0 - np.exp(-EPOCHS / tau) for tau in taus]
    return speed_analysis(D, SWEEP, progress, [EPOCHS] * len(SWEEP), [100 * EPOCHS] * len(SWEEP), n_boot=500,
                          grid="9 points on [0, 1]")


def test_supported_when_wider_is_faster_on_the_same_path():
    out = _sweep(width_path=0.15, speedup=0.4)
    verdict = judge(out)
    assert verdict.verdict == "supported", verdict
    for f in ("mlp", "cnn"):
        fam = out.families[f]
        assert abs(fam.time_ratio - 0.6) < 0.03 and fam.p_faster == 1 / 64 and fam.path_high < 0.5
    assert "vit" in out.skipped


def test_not_supported_when_width_changes_the_path():
    # Architecture pairs differ in their width fields too, so Δ_arch > Δ_width here: 2.0 gives a ratio ~0.75.
    out = _sweep(width_path=2.0, speedup=0.4)
    verdict = judge(out)
    assert verdict.verdict == "not supported", verdict
    assert all(out.families[f].path_low > 0.5 for f in ("mlp", "cnn")) and "changes the path" in verdict.reason


def test_not_supported_when_wider_is_not_faster():
    out = _sweep(width_path=0.15, speedup=0.0)
    verdict = judge(out)
    assert verdict.verdict == "not supported", verdict
    assert all(out.families[f].p_not_faster < 0.05 for f in ("mlp", "cnn")) and "not 10 % faster" in verdict.reason
