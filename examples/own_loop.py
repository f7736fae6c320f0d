"""Record your own PyTorch training loop into a deepmanifold store.

Nothing here uses deepmanifold's trainers: the data, the model, the optimiser and the
loop are plain PyTorch. The loop hands its model to a ``deepmanifold.Recorder`` at a
few checkpoints (dense early, as training changes fastest at the start); the recorder
evaluates the fixed probe sets in eval mode, restores the model's mode, and commits
the run when the ``with`` block ends. The runs then stand in the store like any
sweep's::

    python examples/own_loop.py runs/own_loop      # two seeds, ~10 s on a CPU
    deepmanifold report runs/own_loop
    deepmanifold analyze runs/own_loop
"""

from __future__ import annotations

import sys

import numpy as np
import torch
from sklearn.datasets import load_digits
from torch import nn

import deepmanifold
from deepmanifold.training import checkpoint_steps


def digits_tensors(seed: int = 0):
    """Standardised 8x8 digits as flat float32 tensors: (x_train, y_train, x_test, y_test)."""
    x, y = load_digits(return_X_y=True)
    order = np.random.default_rng(seed).permutation(len(y))
    x, y = x[order].astype(np.float32), y[order].astype(np.int64)
    split = int(0.75 * len(y))
    mean, std = x[:split].mean(0), x[:split].std(0) + 1e-6
    x = (x - mean) / std
    return (torch.from_numpy(x[:split]), torch.from_numpy(y[:split]),
            torch.from_numpy(x[split:]), torch.from_numpy(y[split:]))


def train(store, *, seed: int = 0, width: int = 64, epochs: int = 8, lr: float = 0.05,
          batch_size: int = 64, n_checkpoints: int = 20):
    """Train one MLP on digits with plain SGD, recording it into ``store``; returns the RunResult."""
    x_train, y_train, x_test, y_test = digits_tensors()
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(64, width), nn.ReLU(), nn.Linear(width, width), nn.ReLU(), nn.Linear(width, 10))
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    loss_fn = nn.CrossEntropyLoss()
    steps_per_epoch = len(y_train) // batch_size
    schedule = set(checkpoint_steps(epochs * steps_per_epoch, n_checkpoints).tolist())
    probes = {"train": (x_train[:500], y_train[:500]), "test": (x_test, y_test)}  # fixed, never augmented
    config = {"arch": "mlp", "arch_options": {"width": width}, "optimizer": "sgd", "lr": lr,
              "batch_size": batch_size, "epochs": epochs, "seed": seed, "label": f"own mlp / seed {seed}"}
    generator = torch.Generator().manual_seed(seed)
    with deepmanifold.Recorder(store, probes, config, run_id=f"own-mlp-s{seed}",
                               steps_per_epoch=steps_per_epoch) as recorder:
        recorder.checkpoint(model, step=0)
        step = 0
        for _ in range(epochs):
            order = torch.randperm(len(y_train), generator=generator)
            for b in range(steps_per_epoch):
                idx = order[b * batch_size:(b + 1) * batch_size]
                loss = loss_fn(model(x_train[idx]), y_train[idx])
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                step += 1
                if step in schedule:
                    recorder.checkpoint(model, step)  # epoch = step / steps_per_epoch
    return recorder.result


def main(argv: list[str]) -> None:
    store = argv[1] if len(argv) > 1 else "runs/own_loop"
    for seed in (0, 1):
        result = train(store, seed=seed)
        print(f"seed {seed}: {result.n_checkpoints} checkpoints, final test acc "
              f"{result.metrics['test_acc'][-1]:.3f}, committed to {store}: {result.committed}")
    print(f"now: deepmanifold report {store}   or   deepmanifold analyze {store}")


if __name__ == "__main__":
    main(sys.argv)
