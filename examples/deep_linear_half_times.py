"""Deep linear theory's half-times against the `linear` networks of a store, mode by mode.

For every run of the zoo's ``linear`` architecture with one hidden layer, trained by full-batch
gradient descent without momentum on the squared loss of whitened inputs
(``examples/digits_deep_linear.toml``), this script predicts when each of the data's modes
reaches half its strength, from the run's own initial weights and learning rate
(:func:`deepmanifold.theory.predict_mode_learning`: no constant is fitted), and measures it from
the run's recorded log-probabilities on the train probe (:func:`~deepmanifold.theory.mode_projections`
at each checkpoint, :func:`~deepmanifold.theory.crossing_times`). Other runs are skipped with
the reason.

    python examples/deep_linear_half_times.py runs/digits_deep_linear
"""

from __future__ import annotations

import argparse

import numpy as np

from deepmanifold.store import Store
from deepmanifold.sweeps.execute import dataset_and_probes
from deepmanifold.theory import crossing_times, mode_projections, predict_mode_learning
from deepmanifold.training.plan import initial_model


def compare(store: Store, rec) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Strengths ``s``, predicted and measured half-times (steps) of one run's modes."""
    cfg = rec.config
    if cfg.get("arch") != "linear":
        raise ValueError(f"architecture {cfg.get('arch')!r}, not 'linear'")
    if cfg.get("optimizer") != "sgd" or cfg.get("momentum", 0) != 0 or cfg.get("schedule") != "constant":
        raise ValueError("the closed form is gradient descent at a constant lr without momentum")
    if cfg.get("loss") != "squared":
        raise ValueError("the closed form is for the squared loss (loss = \"squared\")")
    dataset, probes = dataset_and_probes(cfg)
    if cfg["batch_size"] != len(dataset.y_train):
        raise ValueError(f"the closed form is full-batch descent: batch_size {cfg['batch_size']} is not the "
                         f"{len(dataset.y_train)} training samples")
    X = dataset.x_train.reshape(len(dataset.y_train), -1).double().numpy()
    Y = np.eye(dataset.n_classes)[dataset.y_train.numpy()]
    prediction = predict_mode_learning(initial_model(cfg, dataset), X, Y, lr=cfg["lr"])
    X_probe = X[np.asarray(probes["train"].indices)]
    logp = np.asarray(store.logp(rec.run_id, "train"), dtype=np.float64)
    u = np.array([mode_projections(lp, X_probe, prediction.modes) for lp in logp])
    steps = np.asarray(store.metrics(rec.run_id)["step"], dtype=np.float64)
    s = prediction.modes.s
    return s, prediction.half_times, crossing_times(steps, u, s / 2, ceilings=s)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("store")
    args = parser.parse_args()
    store = Store(args.store)
    records, _ = store.records()
    errors, first = [], None
    for rec in sorted(records, key=lambda r: r.run_id):
        if rec.status != "complete":
            continue
        try:
            s, predicted, measured = compare(store, rec)
        except ValueError as exc:
            print(f"{rec.run_id}: skipped ({exc})")
            continue
        relative = measured / predicted - 1.0
        errors.append(relative)
        first = first or (rec.run_id, s, predicted, measured)
        print(f"{rec.run_id}: {len(s)} modes, half-times within {np.nanmax(np.abs(relative)):.2%} of the closed form "
              f"(mean {np.nanmean(relative):+.2%})")
    if first is None:
        print("no run of the closed form's kind (linear, depth 1, squared loss, full-batch constant-lr SGD)")
        return
    run_id, s, predicted, measured = first
    print(f"\n{run_id}, mode by mode:")
    print("| mode | strength s | predicted half-time (steps) | measured | difference |")
    print("|---|---|---|---|---|")
    for j in range(len(s)):
        print(f"| {j + 1} | {s[j]:.3f} | {predicted[j]:.1f} | {measured[j]:.1f} | {measured[j] / predicted[j] - 1:+.2%} |")
    worst = np.nanmax(np.abs(np.concatenate(errors)))
    print(f"\nall {len(errors)} runs: every mode's half-time within {worst:.2%} of the closed form")


if __name__ == "__main__":
    main()
