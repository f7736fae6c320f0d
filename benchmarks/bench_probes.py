"""What the layer measurements cost: per checkpoint, and added to a run's wall time, side by side.

    OMP_NUM_THREADS=1 NUMBA_NUM_THREADS=1 python benchmarks/bench_probes.py [--data digits fashion_mnist]
        [--checkpoints 50] [--every 1 5]

For each network (digits: the MLP of depth 4 and All-CNN of examples/digits_layers.toml;
Fashion-MNIST: the MLP of width 256 and All-CNN of width 16 of
examples/fashion_mnist_layers.toml), at the default budget (50 train-probe samples per
class, every Linear/Conv2d after its activation):

the run trained with ``--checkpoints`` checkpoints, once plain and then recording all
three measurements at every checkpoint and at every k-th (``--every``: the option of the
same name), one after the other in this process: the wall times, the overhead the
measurements add (target: under 25 %), and each measurement's mean time per evaluation
over the run (its work depends a little on the state of training).

One torch and BLAS thread (the sweep's setting); numba's kernels compiled before timing.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("NUMBA_NUM_THREADS", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

import torch  # noqa: E402

from deepmanifold.probes.measurement import (CapacityMeasurement, CollapseMeasurement,  # noqa: E402
                                             InformationPlaneMeasurement)
from deepmanifold.sweeps import load_spec  # noqa: E402
from deepmanifold.sweeps.execute import dataset_and_probes, train_config  # noqa: E402
from deepmanifold.training import train_run  # noqa: E402

SPECS = {"digits": ROOT / "examples" / "digits_layers.toml",
         "fashion_mnist": ROOT / "examples" / "fashion_mnist_layers.toml"}
MEASUREMENTS = ("capacity", "infoplane", "collapse")
CLASSES = (CapacityMeasurement, InformationPlaneMeasurement, CollapseMeasurement)


def networks(data: str):
    """(label, run config) of the first SGD seed-0 run of each architecture of the data's spec."""
    spec = load_spec(str(SPECS[data]))
    seen = {}
    for run in spec.runs:
        arch = run.config.get("arch_alias", run.config["arch"])
        if arch not in seen and run.config["seed"] == 0:
            seen[arch] = run
    return [(f"{data} {arch}", seen[arch]) for arch in seen]


def run_wall(run, checkpoints: int, measurements, every: int = 1) -> tuple[float, dict[str, float]]:
    """Wall time of the run with ``measurements`` (each at every ``every``-th checkpoint), and each
    measurement's mean seconds per evaluation."""
    dataset, probe_sets = dataset_and_probes(run.config)
    config = {**train_config(run), "checkpoints": checkpoints, "measurements": list(measurements),
              "measurement_options": {name: {"every": every} for name in measurements}}
    spent: dict[str, list[float]] = {}
    originals = {cls: cls.measure for cls in CLASSES}

    def timed(cls):
        def measure(self, model, probes):
            t0 = time.perf_counter()
            out = originals[cls](self, model, probes)
            spent.setdefault(self.name, []).append(time.perf_counter() - t0)
            return out
        return measure

    for cls in CLASSES:
        cls.measure = timed(cls)
    try:
        t0 = time.perf_counter()
        result = train_run(config, dataset, probe_sets)
        wall = time.perf_counter() - t0
    finally:
        for cls, fn in originals.items():
            cls.measure = fn
    assert result.status == "complete" and not result.info.get("measurement_errors"), result.info
    return wall, {name: statistics.mean(times) for name, times in spent.items()}


def warm_up() -> None:
    """Compile the capacity kernels before anything is timed."""
    import numpy as np

    from deepmanifold.probes import manifold_capacity

    manifold_capacity(np.random.default_rng(0).standard_normal((3, 5, 8)), n_t=5, random_state=0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", nargs="+", default=list(SPECS), choices=list(SPECS))
    parser.add_argument("--checkpoints", type=int, default=50)
    parser.add_argument("--every", type=int, nargs="+", default=[1, 5])
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(f"torch threads {torch.get_num_threads()}, OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']}")
    warm_up()
    print("| network | capacity | infoplane | collapse | all three, per evaluation | run plain | "
          + " | ".join(f"with all three, every {k} | overhead" for k in args.every) + " |")
    print("|---|---|---|---|---|---|" + "---|---|" * len(args.every))
    for data in args.data:
        for label, run in networks(data):
            plain, _ = run_wall(run, args.checkpoints, ())
            cells, t = [], {}
            for k in args.every:
                full, spent = run_wall(run, args.checkpoints, MEASUREMENTS, every=k)
                t = t or spent
                cells.append(f"{full:.1f} s | {100 * (full - plain) / plain:+.0f} %")
            total = sum(t[m] for m in MEASUREMENTS)
            print(f"| {label} | {t['capacity']:.3f} s | {t['infoplane']:.3f} s | {t['collapse']:.3f} s | "
                  f"{total:.3f} s | {plain:.1f} s | " + " | ".join(cells) + " |", flush=True)

if __name__ == "__main__":
    main()
