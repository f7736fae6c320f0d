"""Wall time of progress along the ignorance-to-truth geodesic: both definitions, and a plain baseline.

    OMP_NUM_THREADS=1 python benchmarks/bench_progress.py            # both sizes, p and log p
    OMP_NUM_THREADS=1 python benchmarks/bench_progress.py --quick    # 10x fewer models
    OMP_NUM_THREADS=1 python benchmarks/bench_progress.py --memmap /tmp/bench  # also from a .npy memmap

Sizes (C = 10, float32 input, as saved softmax outputs): T = 100,000 models x
n = 500 samples (2 GB) and T = 10,000 x n = 2,000 (800 MB). Each row times, in
the same process, ``progress_and_distance`` (validation included) with
``method="angle"`` (the reference study's definition, the default) and with
``method="bhattacharyya"``, and ``baseline_progress_and_distance`` below for
the latter, the straightforward way: validate the whole array first, then per
chunk of models a float64 copy, sqrt, ``sum(-1)``, and Newton steps
safeguarded by bisection on ``(a, b)``, started from ``t = 0.5`` and run until
the step, not the bracket, is below 1e-12. The baseline and ours must agree to
~1e-12 in progress; the last columns say how far the two definitions are apart
on these models.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import numpy as np

from deepmanifold.geometry import progress_and_distance
from deepmanifold.geometry.validation import check_floor, check_labels, check_n_classes, check_probabilities
from deepmanifold.geometry.divergences import clamp_coefficients, sqrt_probabilities, warn_clamped

# --------------------------------------------------------------------------- baseline

_BASELINE_CHUNK_ELEMENTS = 1 << 20
_BASELINE_T_TOL = 1e-12
_BASELINE_MAX_ITER = 200


def baseline_progress_and_distance(P, labels, *, log=False, floor=1e-12):
    floor = check_floor(floor)
    P = check_probabilities(P, "P", log=log, ndim=(2, 3))
    n_classes = check_n_classes(P.shape[-1])
    labels = check_labels(labels, P.shape[-2], n_classes)
    models = P if P.ndim == 3 else P[None]
    T, n, _ = models.shape
    theta = float(np.arccos(1.0 / np.sqrt(n_classes)))
    t_star, value = np.empty(T), np.empty(T)
    clamped = 0
    step = max(1, _BASELINE_CHUNK_ELEMENTS // n)
    for t0 in range(0, T, step):
        root = sqrt_probabilities(models[t0:t0 + step], log=log, dtype=np.float64)
        root /= np.linalg.norm(root, axis=-1, keepdims=True)
        a = root.sum(axis=-1) / np.sqrt(n_classes)
        b = np.take_along_axis(root, labels[None, :, None], axis=-1)[..., 0]
        t_star[t0:t0 + step] = _baseline_minimise(a, b, theta, floor)
        value[t0:t0 + step], chunk_clamped = _baseline_objective(a, b, t_star[t0:t0 + step], theta, floor)
        clamped += chunk_clamped
    warn_clamped(clamped, "(model, sample) inner products with the geodesic", floor, stacklevel=3)
    if P.ndim == 2:
        return float(t_star[0]), float(value[0])
    return t_star, value


def _baseline_inner(a, b, t, theta):
    t = t[:, None]
    g = a * np.sin((1.0 - t) * theta) + b * np.sin(t * theta)
    dg = theta * (b * np.cos(t * theta) - a * np.cos((1.0 - t) * theta))
    return g, dg


def _baseline_derivatives(a, b, t, theta, floor):
    g, dg = _baseline_inner(a, b, t, theta)
    ratio = dg / np.maximum(g, floor * np.sin(theta))
    return -ratio.mean(axis=1), theta**2 + np.square(ratio).mean(axis=1)


def _baseline_minimise(a, b, theta, floor):
    m = a.shape[0]
    slope0 = _baseline_derivatives(a, b, np.zeros(m), theta, floor)[0]
    slope1 = _baseline_derivatives(a, b, np.ones(m), theta, floor)[0]
    t = np.where(slope0 >= 0, 0.0, 1.0)
    active = np.flatnonzero((slope0 < 0) & (slope1 > 0))
    lo, hi = np.zeros(active.size), np.ones(active.size)
    x = np.full(active.size, 0.5)
    for _ in range(_BASELINE_MAX_ITER):
        if active.size == 0:
            break
        d1, d2 = _baseline_derivatives(a[active], b[active], x, theta, floor)
        lo = np.where(d1 < 0, x, lo)
        hi = np.where(d1 > 0, x, hi)
        new = x - d1 / d2
        outside = ~((new > lo) & (new < hi))
        new[outside] = 0.5 * (lo[outside] + hi[outside])
        done = (np.abs(new - x) <= _BASELINE_T_TOL) | (hi - lo <= _BASELINE_T_TOL) | (d1 == 0)
        t[active[done]] = np.where(d1[done] == 0, x[done], new[done])
        keep = ~done
        active, lo, hi, x = active[keep], lo[keep], hi[keep], new[keep]
    t[active] = x
    return t


def _baseline_objective(a, b, t, theta, floor):
    inner = _baseline_inner(a, b, t, theta)[0] / np.sin(theta)
    counts = clamp_coefficients(inner, floor)
    value = -np.log(inner).mean(axis=1) + 0.0
    return value, 0 if counts is None else int(counts.sum())


# --------------------------------------------------------------------------- data


def make_models(T, n, C, seed=0):
    """float32 softmax outputs, each model pulled towards the labels by its own amount."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, C, size=n)
    X = np.empty((T, n, C), dtype=np.float32)
    step = max(1, (1 << 22) // (n * C))
    for s in range(0, T, step):
        z = 2.0 * rng.standard_normal(X[s:s + step].shape, dtype=np.float32)
        z[:, np.arange(n), labels] += 8.0 * rng.random((z.shape[0], 1), dtype=np.float32) - 2.0
        z -= z.max(axis=-1, keepdims=True)
        np.exp(z, out=z)
        z /= z.sum(axis=-1, keepdims=True)
        X[s:s + step] = z
    return X, labels


def to_log_in_place(X):
    step = max(1, (1 << 22) // X[0].size)
    with np.errstate(divide="ignore"):
        for s in range(0, X.shape[0], step):
            np.log(X[s:s + step], out=X[s:s + step])


def best_of(fn, repeat):
    times, out = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return min(times), out


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="10x fewer models")
    parser.add_argument("--repeat", type=int, default=1, help="best of this many runs (default 1)")
    parser.add_argument("--memmap", metavar="DIR", help="also time ours on a .npy memmap written to DIR")
    args = parser.parse_args()
    sizes = [(100_000, 500, 10), (10_000, 2_000, 10)]
    if args.quick:
        sizes = [(T // 10, n, C) for T, n, C in sizes]
    print(f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}, numpy {np.__version__}")
    print(f"{'T x n x C':>20} {'input':>7} {'base s':>8} {'d_B s':>8} {'ratio':>6} {'max|dλ|':>9} "
          f"{'angle s':>8} {'angle/d_B':>9} {'models/s (angle)':>16} {'mean|λ-λ_B|':>12} {'max|λ-λ_B|':>11}")
    progress_and_distance(X_warm := make_models(8, 5, 3)[0], np.zeros(5, dtype=int))  # numba compiles once
    del X_warm
    for T, n, C in sizes:
        X, labels = make_models(T, n, C)
        for kind in ("p", "log p"):
            log = kind == "log p"
            if log:
                to_log_in_place(X)
            t_base, (lam_base, _) = best_of(lambda: baseline_progress_and_distance(X, labels, log=log),
                                            args.repeat)
            t_b, (lam_b, _) = best_of(lambda: progress_and_distance(X, labels, log=log, method="bhattacharyya"),
                                      args.repeat)
            t_a, (lam_a, _) = best_of(lambda: progress_and_distance(X, labels, log=log), args.repeat)
            gap = np.abs(lam_a - lam_b)
            print(f"{f'{T:,} x {n:,} x {C}':>20} {kind:>7} {t_base:8.2f} {t_b:8.2f} {t_base / t_b:5.1f}x "
                  f"{np.abs(lam_b - lam_base).max():9.1e} {t_a:8.2f} {t_a / t_b:8.2f}x {T / t_a:16,.0f} "
                  f"{gap.mean():12.3f} {gap.max():11.3f}", flush=True)
        if args.memmap:
            with tempfile.TemporaryDirectory(dir=args.memmap) as tmp:
                path = os.path.join(tmp, "models.npy")
                np.save(path, X)  # log-probabilities by now
                M = np.load(path, mmap_mode="r")
                t_map, (lam_map, _) = best_of(lambda: progress_and_distance(M, labels, log=True), args.repeat)
                print(f"{f'{T:,} x {n:,} x {C}':>20} {'memmap':>7} {'':>8} {'':>8} {'':>6} "
                      f"{np.abs(lam_map - lam_a).max():9.1e} {t_map:8.2f}   (angle, log p, page cache warm)",
                      flush=True)
                del M
        del X


if __name__ == "__main__":
    main()
