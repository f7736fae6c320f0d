"""Replaying a stored sweep under successive halving: forecast-based pruning against ASHA's rule.

Every run of the store is replayed as if the sweep had been pruned: successive halving
(:func:`deepmanifold.live.pruning.successive_halving`) over rungs at the given fractions of
training, keeping ``ceil(n/η)`` runs at each, ranked either by the test accuracy at the rung
(ASHA's rule) or by the forecast final test accuracy (:func:`deepmanifold.live.forecast_run`
from the runs of the *other* configurations, standing for an earlier reference sweep: no run
is forecast from its own configuration's seeds; ``--hold-out run`` leaves out only the run;
``--score optimistic`` ranks by the best neighbour's final accuracy instead of their mean). For each η: the compute spent (epochs
trained, as a fraction of training every run to the end) and the true rank, by final test
accuracy among all runs, of the run each rule keeps as the best (1 = the best run).

``--orders N`` replays instead what a pruned sweep (``[prune]``, one worker) does: the runs
in N random orders, each stopped at a rung unless ASHA's asynchronous rule lets it on
(:func:`deepmanifold.live.pruning.asynchronous_halving`); the compute and the rank of the
run kept are then averaged over the orders, and "best configuration" is the fraction of
orders that kept a run of the configuration with the highest mean final test accuracy over
its seeds.

    python examples/pruning_replay.py runs/fashion_mnist [--rungs 0.1 0.3 1] [--eta 2 3 4 6 9]
    python examples/pruning_replay.py runs/fashion_mnist --orders 50
"""

from __future__ import annotations

import argparse
import warnings

import numpy as np

from deepmanifold.live import ReferencePicture, forecast_run
from deepmanifold.live.pruning import asynchronous_halving, successive_halving
from deepmanifold.store import Store
from deepmanifold.training import ensemble_key


def config_key(config: dict) -> str:
    """A run's configuration without its seed and label: equal for the seeds of one configuration."""
    return ensemble_key({k: v for k, v in config.items() if k != "label"})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("store")
    parser.add_argument("--rungs", type=float, nargs="+", default=[0.1, 0.3, 1.0])
    parser.add_argument("--eta", type=float, nargs="+", default=[2, 3, 4, 6, 9])
    parser.add_argument("--hold-out", choices=("config", "run"), default="config")
    parser.add_argument("--k", type=int, default=5, help="neighbours of the forecast")
    parser.add_argument("--score", choices=("mean", "optimistic"), default="mean",
                        help="rank by the neighbours' mean final accuracy, or by the best of them")
    parser.add_argument("--orders", type=int, default=0,
                        help="replay the asynchronous rule of a pruned sweep over this many random run orders")
    args = parser.parse_args()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reference = ReferencePicture(args.store)
    store = Store(args.store, read_only=True)
    runs = {r.run_id: r for r in reference.picture.runs}
    configs = {r: store.record(r, verify=False).config for r in runs}
    final = {r: float(run.metrics["test_acc"][-1]) for r, run in runs.items()}
    rank = {r: 1 + sum(v > final[r] for v in final.values()) for r in runs}
    logp = {r: np.asarray(store.logp(r, reference.probe)) for r in runs}

    def seen(run_id: str, fraction: float) -> np.ndarray:
        run = runs[run_id]
        return run.epochs <= fraction * float(configs[run_id]["epochs"]) + 1e-9

    def accuracy_at(run_id: str, fraction: float) -> float:  # ASHA: the test accuracy at the rung
        return float(np.asarray(runs[run_id].metrics["test_acc"])[seen(run_id, fraction)][-1])

    cache: dict = {}

    def forecast_at(run_id: str, fraction: float) -> float:  # ours: the forecast final accuracy
        if fraction >= 1:
            return final[run_id]
        if (run_id, fraction) not in cache:
            own = ([r for r in runs if config_key(configs[r]) == config_key(configs[run_id])]
                   if args.hold_out == "config" else [run_id])
            mask = seen(run_id, fraction)
            fc = forecast_run(reference, logp[run_id][mask], runs[run_id].epochs[mask], exclude=own, k=args.k)
            cache[run_id, fraction] = fc.final_test_acc if args.score == "mean" else fc.final_test_acc_range[1]
        return cache[run_id, fraction]

    best = min(runs, key=lambda r: rank[r])
    if args.orders:
        by_config: dict = {}
        for r in runs:
            by_config.setdefault(config_key(configs[r]), []).append(final[r])
        top = max(by_config, key=lambda c: np.mean(by_config[c]))
        best_config = {r for r in runs if config_key(configs[r]) == top}
        asynchronous(runs, rank, best_config, args, accuracy_at, forecast_at)
        return
    print(f"{len(runs)} runs; rungs at {args.rungs} of training; the best run: {runs[best].run_label} "
          f"(final test accuracy {final[best]:.4f})")
    print("| η | compute (fraction of the full sweep) | ASHA (accuracy at the rung): rank of the run kept "
          "| forecast final accuracy: rank of the run kept |")
    print("|---|---|---|---|")
    for eta in args.eta:
        asha = successive_halving(list(runs), args.rungs, eta, accuracy_at)
        ours = successive_halving(list(runs), args.rungs, eta, forecast_at)
        assert abs(asha.compute - ours.compute) < 1e-12  # same schedule, same budget
        print(f"| {eta:g} | {asha.compute:.3f} | {rank[asha.chosen]} ({runs[asha.chosen].run_label}) "
              f"| {rank[ours.chosen]} ({runs[ours.chosen].run_label}) |")


def asynchronous(runs, rank, best_config, args, accuracy_at, forecast_at) -> None:
    """The table of ``--orders``: each rule's mean compute, mean rank kept and best-configuration rate."""
    rungs = [r for r in args.rungs if r < 1]
    rng = np.random.default_rng(0)
    orders = [list(rng.permutation(sorted(runs))) for _ in range(args.orders)]
    label = runs[next(iter(best_config))].run_label.rsplit(" / seed", 1)[0]
    print(f"{len(runs)} runs in {args.orders} random orders; rungs at {rungs} of training; the best configuration "
          f"(mean final test accuracy over its seeds): {label}")
    print("| η | ASHA: compute | rank kept (mean) | best configuration | forecast: compute | rank kept (mean) "
          "| best configuration |")
    print("|---|---|---|---|---|---|---|")
    for eta in args.eta:
        row = [f"{eta:g}"]
        for score in (accuracy_at, forecast_at):
            results = [asynchronous_halving(order, rungs, eta, score) for order in orders]
            ranks = [rank[r.chosen] for r in results]
            row += [f"{np.mean([r.compute for r in results]):.3f}", f"{np.mean(ranks):.1f}",
                    f"{np.mean([r.chosen in best_config for r in results]):.0%}"]
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
