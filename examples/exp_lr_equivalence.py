"""Do the exponential learning rate and weight decay travel the same path? (Li & Arora 2020)

Reads a store with runs that differ only in ``schedule`` and ``weight_decay`` ("constant"
with weight decay; its "exp" equivalent, whose optimiser leaves the weight decay out; and
"constant" without weight decay, the control) and ``seed`` (examples/digits_exp_lr.toml),
resamples every run at equal progress along the geodesic, and compares, per architecture,
trajectory distances (mean intensive Bhattacharyya distance at equal progress,
docs/method.md §5.3) of one seed's runs with the distance between two seeds of one
setting: the exponential schedule follows the same path as weight decay, as far as the
picture can tell, when its distance to it is far below the seeds' and the control's is not.

    python examples/exp_lr_equivalence.py runs/digits_exp_lr [--probe test]
"""

from __future__ import annotations

import argparse
import itertools
import warnings

import numpy as np

from deepmanifold.analysis.trajectories import TrajectorySet, trajectory_distance_matrix
from deepmanifold.store import Store


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("store")
    parser.add_argument("--probe", default="test")
    args = parser.parse_args()
    store = Store(args.store)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # backtracking progress is expected: the first crossing is used
        ts = TrajectorySet.from_store(store, probe=args.probe)
    D = trajectory_distance_matrix(ts, grid_mask=ts.common(0.9))
    configs = ts.configs
    print(f"{len(ts)} runs, {int(ts.common(0.9).sum())} common grid points (progress "
          f"{ts.grid[ts.common(0.9)].min():.2f}-{ts.grid[ts.common(0.9)].max():.2f})")
    print("| architecture | exp vs weight decay, same seed | no weight decay vs weight decay, same seed "
          "| two seeds, same setting | ratio exp / seeds | ratio control / seeds |")
    print("|---|---|---|---|---|---|")

    def key(c):
        return "exp" if c["schedule"] == "exp" else ("wd" if c["weight_decay"] > 0 else "none")

    for arch in sorted({c["arch"] for c in configs}):
        idx = [i for i, c in enumerate(configs) if c["arch"] == arch]
        by = {(key(configs[i]), configs[i]["seed"]): i for i in idx}
        seeds = sorted({s for _, s in by})

        def same_seed(a, b):
            return [D[by[a, s], by[b, s]] for s in seeds if (a, s) in by and (b, s) in by]

        exp, control = same_seed("exp", "wd"), same_seed("none", "wd")
        spread = [D[by[k, a], by[k, b]] for k in ("wd", "exp", "none") for a, b in itertools.combinations(seeds, 2)
                  if (k, a) in by and (k, b) in by]
        print(f"| {arch} | {np.mean(exp):.5f} | {np.mean(control):.5f} | {np.mean(spread):.5f} "
              f"({np.min(spread):.5f}-{np.max(spread):.5f}) | {np.mean(exp) / np.mean(spread):.3f} | "
              f"{np.mean(control) / np.mean(spread):.3f} |")
    final = {key(c): [] for c in configs}
    for i, c in enumerate(configs):
        final[key(c)].append(float(store.metrics(ts.run_ids[i])[f"{args.probe}_acc"][-1]))
    print("final accuracy:", {k: f"{np.mean(v):.3f} ({min(v):.3f}-{max(v):.3f})" for k, v in final.items()})


if __name__ == "__main__":
    main()
