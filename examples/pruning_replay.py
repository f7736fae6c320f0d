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

    python examples/pruning_replay.py runs/fashion_mnist [--rungs 0.1 0.3 1] [--eta 2 3 4 6 9]
"""

from __future__ import annotations

import argparse
import warnings

import numpy as np

from deepmanifold.live import ReferencePicture, forecast_run
from deepmanifold.live.pruning import successive_halving
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


if __name__ == "__main__":
    main()
