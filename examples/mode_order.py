"""Do networks learn the data's singular modes in the order deep linear theory predicts?

Saxe, McClelland & Ganguli (2014, 2019): a deep linear network learns the modes of the
input-output correlation ``Σ_yx = U S Vᵀ`` (whitened inputs) one after another, the strongest
first (:func:`deepmanifold.theory.half_times`). For every run of a store this script takes the
train probe's inputs (PCA-whitened), their one-hot labels and the modes; at each checkpoint it
projects the run's recorded predictions (probabilities minus ``1/C``) on the modes
(:func:`deepmanifold.theory.mode_projections`), finds each mode's half-time (the first epoch
at which its strength reaches half its final value), and prints the Spearman correlation
between the modes' strengths and their half-times: -1 when the strongest modes are learned
first, as the theory says of linear networks.

    python examples/mode_order.py runs/digits_layers [--modes 9]
"""

from __future__ import annotations

import argparse
import collections

import numpy as np
import torch
from scipy import stats

from deepmanifold.store import Store
from deepmanifold.sweeps.execute import dataset_and_probes
from deepmanifold.theory import io_modes, mode_projections


def whiten(X: np.ndarray) -> np.ndarray:
    """PCA whitening (``XᵀX/n = I`` on the directions the data spans)."""
    X = X - X.mean(axis=0)
    w, V = np.linalg.eigh(X.T @ X / X.shape[0])
    keep = w > w.max() * 1e-6
    return X @ V[:, keep] / np.sqrt(w[keep])


def mode_half_times(epochs: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Per mode, the first epoch at which its strength reaches half its final value, shape (k,)."""
    final = u[-1]
    reached = u >= 0.5 * final[None, :]
    return np.array([epochs[np.argmax(reached[:, j])] if reached[:, j].any() else np.nan for j in range(u.shape[1])])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("store")
    parser.add_argument("--modes", type=int, default=9, help="strongest modes compared (C - 1 at most carry signal)")
    args = parser.parse_args()
    store = Store(args.store)
    records, _ = store.records()
    rows = collections.defaultdict(list)
    for rec in records:
        if rec.status != "complete" or "data" not in rec.config:
            continue
        dataset, probes = dataset_and_probes(rec.config)
        probe = probes["train"]
        X = whiten(dataset.x_train[torch.as_tensor(np.array(probe.indices))].reshape(len(probe), -1).double().numpy())
        C = dataset.n_classes
        Y = np.eye(C)[probe.labels] - 1.0 / C
        modes = io_modes(X, Y, k=args.modes)
        P = np.exp(np.asarray(store.logp(rec.run_id, "train"), dtype=np.float64)) - 1.0 / C
        u = np.array([mode_projections(P[k], X, modes) for k in range(P.shape[0])])
        halves = mode_half_times(np.asarray(store.metrics(rec.run_id)["epoch"]), u)
        ok = np.isfinite(halves)
        tied = ok.sum() < 3 or np.ptp(halves[ok]) == 0  # no order to compare
        rho = np.nan if tied else stats.spearmanr(modes.s[ok], halves[ok]).statistic
        rows[str(rec.config.get("arch_alias", rec.config.get("arch")))].append((rho, halves, modes.s))
    strengths = next(iter(rows.values()))[0][2]
    print("mode strengths s:", np.round(strengths, 3))
    print("| architecture | runs | Spearman(strength, half-time), mean (range) | half-times of the 3 strongest modes (epochs) |")
    print("|---|---|---|---|")
    for arch, values in sorted(rows.items()):
        rhos = np.array([v[0] for v in values])
        rhos = rhos[np.isfinite(rhos)]
        order = f"{rhos.mean():+.2f} ({rhos.min():+.2f} to {rhos.max():+.2f})" if rhos.size else "– (half-times tied)"
        first = np.mean(np.array([v[1][:3] for v in values]), axis=0)
        print(f"| {arch} | {len(values)} | {order} | " + ", ".join(f"{t:.2f}" for t in first) + " |")


if __name__ == "__main__":
    main()
