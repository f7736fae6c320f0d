"""Every sample's dynamics in a store: which labels are wrong, and do networks learn samples in one order?

For each run, on the train probe (the labels the run trained on): the data map (confidence,
variability, correctness), forgetting events and learning times
(:mod:`deepmanifold.analysis.samples`).

- When the runs were trained with flipped labels (``[data] label_noise``; the flipped samples
  are recorded with each run), how well each ranking finds them (AUROC; 0.5 is chance):
  low confidence, low correctness and many forgetting events, against the baseline of the
  final model's loss on the sample.
- Whether runs learn the samples in the same order: the Spearman correlation of learning
  times (progress at which a sample is learned for good) between every two runs, by how the
  runs differ (only the seed, the optimiser, the architecture).

    python examples/sample_dynamics.py runs/fashion_mnist_label_noise
    python examples/sample_dynamics.py runs/fashion_mnist                 # agreement over the 45-run grid
"""

from __future__ import annotations

import argparse
import collections

import numpy as np

from deepmanifold import geometry
from deepmanifold.analysis.samples import auroc, learning_order_agreement, sample_dynamics
from deepmanifold.store import Store


OPTIMISER_KEYS = {"optimizer", "lr", "momentum", "batch_size"}
ARCHITECTURE_KEYS = {"arch", "arch_alias", "arch_options"}


def difference(a: dict, b: dict) -> str:
    """How two runs' configurations differ beyond the seed (see the table's rows)."""
    keys = {k for k in set(a) | set(b) if a.get(k) != b.get(k)} - {"label", "seed"}
    if not keys:
        return "seed"
    if keys <= OPTIMISER_KEYS:
        return "optimizer"
    if keys <= ARCHITECTURE_KEYS:
        return "architecture"
    if keys <= OPTIMISER_KEYS | ARCHITECTURE_KEYS:
        return "architecture and optimizer"
    return "other"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("store")
    parser.add_argument("--probe", default="train")
    args = parser.parse_args()
    store = Store(args.store, read_only=True)
    records, _ = store.records(on_error="skip")
    records = [r for r in records if r.status == "complete" and args.probe in r.probes]
    names, times, configs, scores = [], [], [], collections.defaultdict(list)
    for rec in records:
        probe = store.probe(rec.probes[args.probe])
        logp = np.asarray(store.logp(rec.run_id, args.probe))
        progress = geometry.progress(logp, probe.labels, log=True)
        d = sample_dynamics(logp, probe.labels, progress)
        names.append(rec.config.get("label", rec.run_id))
        times.append(d.learned_at)
        configs.append(rec.config)
        flipped = rec.info.get("flipped_train")
        if flipped is not None and probe.split == "train":
            wrong = np.isin(probe.indices, np.asarray(flipped))
            final_loss = -np.take_along_axis(logp[-1], probe.labels[:, None], axis=1)[:, 0]
            for what, score in (("low confidence (data map)", -d.confidence),
                                ("low correctness (data map)", -d.correctness),
                                ("forgetting events", d.forgetting),
                                ("final model's loss (baseline)", final_loss)):
                scores[what].append(auroc(score, wrong))
            scores["flipped samples in the probe"].append(int(wrong.sum()))
    if scores:
        counts = scores.pop("flipped samples in the probe")
        print(f"finding the flipped labels: {len(counts)} runs, {counts[0]} flipped of "
              f"{len(probe.labels)} train-probe samples in each")
        print("| ranking | AUROC, mean (range over runs) |")
        print("|---|---|")
        for what, values in scores.items():
            print(f"| {what} | {np.mean(values):.3f} ({min(values):.3f}–{max(values):.3f}) |")
        print()
    rho = learning_order_agreement(np.array(times))
    by = collections.defaultdict(list)
    for a in range(len(names)):
        for b in range(a + 1, len(names)):
            if np.isfinite(rho[a, b]):
                by[difference(configs[a], configs[b])].append(rho[a, b])
    print(f"learning order: Spearman of learning times (progress at which a sample is learned for good) "
          f"between two runs, {len(names)} runs")
    print("| runs that differ in | pairs | Spearman, mean (range) |")
    print("|---|---|---|")
    for kind in ("seed", "optimizer", "architecture", "architecture and optimizer", "other"):
        if by[kind]:
            v = np.array(by[kind])
            print(f"| {kind} | {len(v)} | {v.mean():.2f} ({v.min():.2f} to {v.max():.2f}) |")
    learned = np.isfinite(np.array(times)).mean(axis=1)
    print(f"samples learned for good by the end: {learned.min():.1%} to {learned.max():.1%} per run")


if __name__ == "__main__":
    main()
