"""Train your own network and watch it travel among a reference sweep's trajectories as it learns.

The reference is any store (the demo's: ``make demo`` writes ``runs/digits``). This script
takes the data and probe sets the reference was recorded on (from one of its runs'
configurations, so the new run is comparable), trains a plain PyTorch MLP with its own
loop, and records it through a :class:`deepmanifold.Recorder` given the reference
picture: each checkpoint is placed in the picture as it is recorded, and printed with its
progress and the nearest reference run. Meanwhile, in another terminal::

    deepmanifold watch runs/mine --reference runs/digits     # then open http://127.0.0.1:8765/

shows the run on the reference picture, updated at each checkpoint.

    python examples/live_run.py runs/mine --reference runs/digits [--epochs 15] [--delay 0.5]
"""

from __future__ import annotations

import argparse
import time

import torch
from torch import nn

from deepmanifold.live import CheckpointSchedule, ReferencePicture
from deepmanifold.sweeps.execute import dataset_and_probes
from deepmanifold.training import Recorder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("store", help="store to record the new run into")
    parser.add_argument("--reference", required=True, help="store whose picture the run is placed in")
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--width", type=int, default=96)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--delay", type=float, default=0.0, help="seconds to wait after each checkpoint "
                        "(to follow a small run in the browser)")
    args = parser.parse_args()

    reference = ReferencePicture(args.reference)
    first = reference.store.record(reference.picture.runs[0].run_id, verify=False)
    dataset, probes = dataset_and_probes(first.config)  # the reference's data and probe sets
    torch.manual_seed(args.seed)
    d = dataset.x_train[0].numel()
    model = nn.Sequential(nn.Flatten(), nn.Linear(d, args.width), nn.Tanh(), nn.Linear(args.width, args.width),
                          nn.Tanh(), nn.Linear(args.width, dataset.n_classes))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    batch = 64
    per_epoch = len(dataset.y_train) // batch
    config = {"arch": "tanh_mlp", "arch_options": {"width": args.width}, "optimizer": "sgd", "lr": 0.05,
              "seed": args.seed, "epochs": args.epochs, "label": f"my tanh mlp / seed {args.seed}"}
    run_id = f"tanh-mlp-s{args.seed}-{int(time.time())}"
    with Recorder(args.store, probes, config, run_id, dataset=dataset, reference=reference,
                  steps_per_epoch=per_epoch) as recorder:
        schedule = CheckpointSchedule(recorder, args.epochs * per_epoch, checkpoints=30, steps_per_epoch=per_epoch)

        def record(step: int) -> None:
            if schedule(model, step):
                p = recorder.placements[-1]
                print(f"step {step:5d}: progress {p.progress:.3f}, accuracy {p.accuracy:.3f}, nearest reference "
                      f"run {p.nearest_run} (checkpoint {p.nearest_index})", flush=True)
                time.sleep(args.delay)

        record(0)
        generator = torch.Generator().manual_seed(args.seed)
        step = 0
        for _ in range(args.epochs):
            order = torch.randperm(len(dataset.y_train), generator=generator)
            for b in range(per_epoch):
                idx = order[b * batch:(b + 1) * batch]
                loss = nn.functional.cross_entropy(model(dataset.x_train[idx]), dataset.y_train[idx])
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                step += 1
                record(step)
    print(f"committed {run_id} to {args.store}")


if __name__ == "__main__":
    main()
