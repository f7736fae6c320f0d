"""How well a run's end is forecast from part of it: leave-one-run-out over a store, against two baselines.

For every run of the store and each fraction of its training observed (by epoch), the run's
checkpoints so far are forecast (:func:`deepmanifold.live.forecast_run`) from the other runs
(``--hold-out run``), or from the runs of other configurations only (``--hold-out config``:
every seed of the run's configuration left out, so that no neighbour is the same network
with another seed). The forecasts of the final test accuracy and the final progress are set
beside the power law fitted to the curve so far (:func:`~deepmanifold.live.power_law_forecast`),
the last value seen, and the mean over the reference runs (no matching at all); the epoch at
which the run reaches progress 0.5 and 0.8 beside the power law solved for it. Errors are
mean absolute errors over the runs; "in range" is how often the truth lies in the
neighbours' range.

    python examples/forecast_eval.py runs/fashion_mnist [--fractions 0.1 0.2 0.4] [--k 5]
"""

from __future__ import annotations

import argparse
import math
import warnings

import numpy as np

from deepmanifold.analysis.speed import progress_milestones
from deepmanifold.live import ReferencePicture, forecast_run, power_law_forecast
from deepmanifold.live.forecast import power_law_fit
from deepmanifold.store import Store
from deepmanifold.training import ensemble_key

TARGETS = (0.5, 0.8)


def config_key(config: dict) -> str:
    """A run's configuration without its seed and label: equal for the seeds of one configuration."""
    return ensemble_key({k: v for k, v in config.items() if k != "label"})


def power_law_epoch(t, progress, target: float) -> float:
    """The epoch at which :func:`~deepmanifold.live.forecast.power_law_fit` of the progress so far reaches ``target``."""
    fit = power_law_fit(t, progress)
    if fit is None or not target < 1:
        return math.nan
    a, b = fit
    return float((a / (1.0 - target)) ** (1.0 / b))


def evaluate(store_path: str, fractions, k: int, hold_out: str) -> dict:
    """Absolute errors per fraction and quantity: ``{fraction: {quantity: {method: [errors]}}}``."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reference = ReferencePicture(store_path)
    store = Store(store_path, read_only=True)
    configs = {r.run_id: store.record(r.run_id, verify=False).config for r in reference.picture.runs}
    ref_acc = {r.run_id: float(r.metrics["test_acc"][-1]) for r in reference.picture.runs}
    ref_prog = {r.run_id: float(r.progress[-1]) for r in reference.picture.runs}
    out = {f: {} for f in fractions}
    for run in reference.picture.runs:
        logp = np.asarray(store.logp(run.run_id, reference.probe))
        epochs, acc, progress = run.epochs, np.asarray(run.metrics["test_acc"]), run.progress
        total = float(configs[run.run_id]["epochs"])
        exclude = ([r for r in configs if config_key(configs[r]) == config_key(configs[run.run_id])]
                   if hold_out == "config" else [run.run_id])
        others = [r for r in configs if r not in exclude]
        for f in fractions:
            seen = epochs <= f * total + 1e-9
            fc = forecast_run(reference, logp[seen], epochs[seen], k=k, targets=TARGETS, exclude=exclude)
            rows = out[f]

            def add(quantity, method, error):
                rows.setdefault(quantity, {}).setdefault(method, []).append(float(error))

            for quantity, truth, mine, span, curve, pool in (
                    ("final test accuracy", acc[-1], fc.final_test_acc, fc.final_test_acc_range, acc, ref_acc),
                    ("final progress", progress[-1], fc.final_progress, fc.final_progress_range, progress, ref_prog)):
                add(quantity, "forecast", abs(mine - truth))
                add(quantity, "power law", abs(power_law_forecast(epochs[seen], curve[seen], epochs[-1]) - truth))
                add(quantity, "last value", abs(curve[seen][-1] - truth))
                add(quantity, "reference mean", abs(np.mean([pool[r] for r in others]) - truth))
                add(quantity, "in range", float(span[0] <= truth <= span[1]))
            for target in TARGETS:
                truth = progress_milestones(progress, epochs, epochs, [target]).reached[0].epoch
                truth = math.nan if truth is None else truth
                if not math.isfinite(truth) or progress[seen][-1] >= target:
                    continue  # never reached, or reached already: nothing to forecast
                predicted, low, high = fc.epoch_to_progress[target]
                name = f"epoch at progress {target}"
                if math.isfinite(predicted):
                    add(name, "forecast", abs(predicted - truth))
                    add(name, "in range", float(low <= truth <= high))
                baseline = power_law_epoch(epochs[seen], progress[seen], target)
                add(name, "power law", abs(baseline - truth) if math.isfinite(baseline) else math.inf)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("store")
    parser.add_argument("--fractions", type=float, nargs="+", default=[0.1, 0.2, 0.4])
    parser.add_argument("--k", type=int, default=5)
    parser.add_argument("--hold-out", choices=("run", "config"), default="run")
    args = parser.parse_args()
    results = evaluate(args.store, args.fractions, args.k, args.hold_out)
    methods = ("forecast", "power law", "last value", "reference mean", "in range")
    print(f"held out: the {args.hold_out}; k = {args.k}; mean absolute error (\"in range\": fraction of runs)")
    print("| observed | quantity | runs | " + " | ".join(methods) + " |")
    print("|---" * (3 + len(methods)) + "|")
    for f, rows in results.items():
        for quantity, by_method in rows.items():
            n = len(by_method.get("power law", by_method["forecast"]))
            cells = []
            for m in methods:
                values = by_method.get(m)
                cells.append("–" if not values else (f"{np.mean(values):.2f}" if m == "in range"
                                                     else f"{np.mean(values):.4f}" if "epoch" not in quantity
                                                     else f"{np.mean(values):.2f}"))
            print(f"| {f:.0%} | {quantity} | {n} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
