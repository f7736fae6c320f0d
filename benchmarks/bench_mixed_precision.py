"""Can float32 distances be certified to 1e-6 by a per-pair bound and refined where not?

    OMP_NUM_THREADS=1 python benchmarks/bench_mixed_precision.py STORE [STORE ...] [--probe test]

For the complete runs of each store (all checkpoints, one probe set), the Bhattacharyya
matrix is computed on one core with ``precision="fast"`` (float32 products, float64
accumulation) and ``precision="exact"`` (float64), and reported:

- the fraction of pairs whose float32 value is off by more than 1e-6 relative to the exact
  one (what refinement would have to repair);
- the fraction of pairs a *rigorous* per-pair bound would send to float64. Per sample the
  float32 coefficient ``BC_i = sum_c sqrt(p_c) sqrt(q_c)`` carries a relative error of at
  most ``gamma_{C+2} = (C+2)u / (1 - (C+2)u)`` (``u = 2^-24``: the two roots' rounding and
  ``C`` multiply-adds of nonnegative terms), hence its log an absolute error of at most
  ``B = -log(1 - gamma_{C+2})``, and so does their mean ``d_B`` (the float64 sums add
  ~1e-16). A pair is certified to 1e-6 only when ``B <= 1e-6 (d_fast - B)``: that is
  ``d_B >= ~B / 1e-6``, whatever the pair;
- the time of each precision and of the mixed scheme (float32 everywhere, then float64 on
  the pairs the bound does not certify, estimated as the float32 time plus that fraction of
  the float64 time).
"""

from __future__ import annotations

import argparse
import math
import os
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np

from deepmanifold.geometry import pairwise_distances
from deepmanifold.store import Store

U32 = 2.0 ** -24
TARGET = 1e-6


def certified_bound(C: int) -> float:
    """``B``: the absolute error bound of a float32 ``d_B`` on ``C`` classes (module docstring)."""
    gamma = (C + 2) * U32 / (1 - (C + 2) * U32)
    return -math.log1p(-gamma) + 1e-15


def timed(fn, repeat: int = 3):
    best, value = math.inf, None
    for _ in range(repeat):
        t0 = time.perf_counter()
        value = fn()
        best = min(best, time.perf_counter() - t0)
    return best, value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("stores", nargs="+")
    parser.add_argument("--probe", default="test")
    args = parser.parse_args()
    print("| store | T models, n, C | float32 off by > 1e-6 | bound B | pairs the bound cannot certify "
          "| median d_B | exact s | fast s | mixed s (estimated) |")
    print("|---|---|---|---|---|---|---|---|---|")
    for path in args.stores:
        store = Store(path, read_only=True)
        runs = [r for r in store.run_ids() if store.record(r, verify=False).status == "complete"]
        X = np.concatenate([np.asarray(store.logp(r, args.probe)) for r in runs])
        T, n, C = X.shape
        pairwise_distances(X[:4], log=True, precision="fast", n_jobs=1)  # compile both kernels first
        pairwise_distances(X[:4], log=True, precision="exact", n_jobs=1)
        t_exact, exact = timed(lambda: pairwise_distances(X, log=True, precision="exact", n_jobs=1))
        t_fast, fast = timed(lambda: pairwise_distances(X, log=True, precision="fast", n_jobs=1))
        iu = np.triu_indices(T, 1)
        d_exact, d_fast = exact[iu], fast[iu]
        positive = d_exact > 0
        off = np.abs(d_fast - d_exact)[positive] / d_exact[positive]
        B = certified_bound(C)
        uncertified = B > TARGET * (d_fast - B)
        share = float(uncertified.mean())
        print(f"| {path} | {T}, {n}, {C} | {np.mean(off > TARGET):.2%} | {B:.2e} | {share:.1%} "
              f"| {np.median(d_exact):.3f} | {t_exact:.2f} | {t_fast:.2f} | {t_fast + share * t_exact:.2f} |")


if __name__ == "__main__":
    main()
