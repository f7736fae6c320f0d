"""Speed of pairwise Bhattacharyya distances: NumPy loop, reference method, ours.

    python benchmarks/bench_distances.py [--quick]
    python benchmarks/bench_distances.py --against REV [--repeat 5] [--trajectories]

Prints pair-samples/s (one (model pair, sample) BC term; T^2/2 * n for a
symmetric matrix) for (a) a plain NumPy loop over pairs, (b) the reference
study's method (per chunk of samples: batched float32 matmul of sqrt p over all
model pairs, np.log, accumulate), (c) ``pairwise_distances`` on 1 and 2 cores,
then a large symmetric run (projected to T = 20,000 if smaller) with peak RSS.

``--against REV`` instead times ``pairwise_distances`` of this checkout against
the one of git revision REV (its ``deepmanifold/geometry`` imported from a
temporary copy) on T = 1000, n = 2000, C = 10, one core, exact and fast
precision, the two alternating so that both see the same machine load; it
prints the best and median of ``--repeat`` runs, their ratio and the largest
difference between the two matrices. With ``--trajectories`` the models are those of
``bench_peak.py --distances`` instead (T = 1,500: 15 runs of 100 checkpoints, n = 1,500,
C = 10; ``trajectories`` of ``bench_inpca.py``).
"""

from __future__ import annotations

import argparse
import importlib
import os
import resource
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import numpy as np  # noqa: E402

from deepmanifold.geometry.distances import pairwise_distances  # noqa: E402


def models(T, n, C, seed=0, dtype=np.float32):
    rng = np.random.default_rng(seed)
    base = rng.dirichlet(np.ones(C), size=n)
    X = np.empty((T, n, C), dtype=dtype)
    for t in range(T):  # correlated models, like checkpoints of runs
        X[t] = 0.7 * base + 0.3 * rng.dirichlet(np.ones(C), size=n)
    return X


def plain_loop(X):
    T = len(X)
    R = np.sqrt(X.astype(np.float64))
    D = np.zeros((T, T))
    for s in range(T):
        for t in range(s + 1, T):
            D[s, t] = D[t, s] = -np.mean(np.log(np.maximum(np.sum(R[s] * R[t], axis=1), 1e-12)))
    return D


def reference_method(X, chunk=64):
    T, n, _ = X.shape
    R = np.sqrt(X.astype(np.float32)).transpose(1, 0, 2)  # (n, T, C)
    acc = np.zeros((T, T))
    for s in range(0, n, chunk):
        bc = np.matmul(R[s:s + chunk], R[s:s + chunk].transpose(0, 2, 1))
        acc += np.log(np.maximum(bc, 1e-12)).sum(axis=0)
    return -acc / n


def timed(f, *args, repeat=1, **kw):
    best = np.inf
    for _ in range(repeat):
        t = time.perf_counter()
        r = f(*args, **kw)
        best = min(best, time.perf_counter() - t)
    return best, r


def geometry_at(rev: str, folder: str):
    """``deepmanifold.geometry`` as of git revision ``rev``, imported from a copy in ``folder``."""
    root = subprocess.run(["git", "rev-parse", "--show-toplevel"], capture_output=True, text=True,
                          check=True, cwd=os.path.dirname(os.path.abspath(__file__))).stdout.strip()
    where = "src/deepmanifold/geometry"
    names = subprocess.run(["git", "ls-tree", "--name-only", f"{rev}:{where}"], capture_output=True, text=True,
                           check=True, cwd=root).stdout.split()
    package = os.path.join(folder, "geometry_at_rev")
    os.makedirs(package)
    for name in names:
        if name.endswith(".py"):
            text = subprocess.run(["git", "show", f"{rev}:{where}/{name}"], capture_output=True, text=True,
                                  check=True, cwd=root).stdout
            with open(os.path.join(package, name), "w") as fh:
                fh.write(text)
    sys.path.insert(0, folder)
    return importlib.import_module("geometry_at_rev")


def against(rev: str, repeat: int, trajectories: bool = False) -> None:
    if trajectories:
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        from bench_inpca import trajectories as make

        T, n, C = 1500, 1500, 10
        X = make(T, n, C, runs=15, rng=0)
    else:
        T, n, C = 1000, 2000, 10
        X = models(T, n, C)
    with tempfile.TemporaryDirectory() as tmp:
        theirs = geometry_at(rev, tmp).pairwise_distances
        contenders = {"this checkout": pairwise_distances, rev: theirs}
        for f in contenders.values():  # compile / load the numba caches
            for precision in ("exact", "fast"):
                f(X[:8, :16], precision=precision)
        print(f"T={T}, n={n}, C={C}, one core, {repeat} alternating runs each (seconds)")
        for precision in ("exact", "fast"):
            times = {name: [] for name in contenders}
            result = {}
            for r in range(repeat):
                order = list(contenders) if r % 2 == 0 else list(contenders)[::-1]
                for name in order:
                    t, result[name] = timed(contenders[name], X, precision=precision, n_jobs=1)
                    times[name].append(t)
            best = {name: min(ts) for name, ts in times.items()}
            for name, ts in times.items():
                print(f"  {precision:5s} {name:>16s}: best {best[name]:.3f}, median {np.median(ts):.3f}  "
                      f"({', '.join(f'{t:.3f}' for t in ts)})")
            diff = np.abs(result["this checkout"] - result[rev]).max()
            print(f"  {precision:5s} this checkout / {rev}: {best['this checkout'] / best[rev]:.3f} (best), "
                  f"{np.median(times['this checkout']) / np.median(times[rev]):.3f} (median); max |dD| {diff:.1e}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--against", metavar="REV", help="time this checkout against git revision REV")
    ap.add_argument("--repeat", type=int, default=5, help="runs of each with --against")
    ap.add_argument("--trajectories", action="store_true", help="with --against: bench_peak.py's trajectory models")
    args = ap.parse_args()
    if args.against:
        return against(args.against, args.repeat, args.trajectories)
    C = 10
    n = 500 if args.quick else 2000
    T = 400 if args.quick else 1000
    X = models(T, n, C)
    pairs = T * (T - 1) / 2 * n
    pairwise_distances(X[:8, :16])  # compile / load the numba cache
    pairwise_distances(X[:8, :16], precision="fast")
    Ta = min(T, 150)
    ta, Da = timed(plain_loop, X[:Ta])
    rate_a = Ta * (Ta - 1) / 2 * n / ta
    tb, Db = timed(reference_method, X)
    rate_b = T * T * n / tb  # it computes the full matrix: count what it computes... and per useful pair:
    rate_b_useful = pairs / tb
    rows = [("(a) plain NumPy loop over pairs, 1 core", rate_a), ("(b) reference method (float32 batched matmul), 1 core", rate_b_useful)]
    D_ref = None
    for precision in ("exact", "fast"):
        for cores in (1, 2):
            tc, Dc = timed(pairwise_distances, X, precision=precision, n_jobs=cores, repeat=2)
            if D_ref is None:
                D_ref = Dc
            rows.append((f"(c) ours precision={precision!r}, {cores} core(s)", pairs / tc))
    print(f"T={T}, n={n}, C={C} (plain loop on T={Ta}); rates in useful pair-samples/s (T(T-1)/2 * n)")
    print(f"(b computes the full T^2 n matrix: {rate_b / 1e9:.3f} G raw pair-samples/s)")
    for name, rate in rows:
        print(f"  {name:58s} {rate / 1e9:8.3f} G/s   x{rate / rate_b_useful:6.2f} vs (b)   x{rate / rate_a:7.1f} vs (a)")
    off = ~np.eye(T, dtype=bool)
    print(f"  max |(b) - exact| / exact = {np.max(np.abs(Db - D_ref)[off] / D_ref[off]):.2e}")

    # Large run: symmetric T_big x T_big from an on-disk memmap, float32 output, 2 cores.
    T_big = 1000 if args.quick else 3000
    n_big = 2000
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "logp.f32")
        mm = np.memmap(path, dtype=np.float32, mode="w+", shape=(T_big, n_big, C))
        for t0 in range(0, T_big, 250):
            mm[t0:t0 + 250] = np.log(models(min(250, T_big - t0), n_big, C, seed=t0))
        mm.flush()
        del mm
        src = np.memmap(path, dtype=np.float32, mode="r", shape=(T_big, n_big, C))
        out = np.empty((T_big, T_big), dtype=np.float32)
        rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
        t, _ = timed(pairwise_distances, src, log=True, out=out, n_jobs=2, max_memory=1 << 30)
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    proj = t * (20000 / T_big) ** 2
    print(f"Large run: T={T_big}, n={n_big}, C={C}, log-prob float32 memmap input, float32 out, 2 cores, exact: "
          f"{t:.1f} s ({T_big**2 / 2 * n_big / t / 1e9:.3f} G/s); peak RSS {rss:.2f} GB (before: {rss0:.2f} GB)")
    print(f"  projected T=20000 x n=2000 x C=10 (x{(20000 / T_big) ** 2:.0f} work): {proj / 60:.1f} min; "
          f"RSS projected: out 1.6 GB float32 + roots <= 1 GiB + input chunk")


if __name__ == "__main__":
    sys.exit(main())
