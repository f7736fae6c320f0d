"""Placing a live checkpoint in a reference picture against embedding the picture again, side by side.

    OMP_NUM_THREADS=1 python benchmarks/bench_live.py --T 600 2000 --repeat 3

A reference of ``T`` checkpoints (``n = 450`` probe samples, ``C = 10`` classes: the digits
test probe) is made of synthetic trajectories: per run, predictions that sharpen from uniform
towards random targets. For each ``T``: the time to place one new checkpoint the way
:meth:`deepmanifold.live.ReferencePicture.place` does (its ``T`` distances from the prepared
reference, :class:`deepmanifold.live.PreparedModels`; the Gower projection, its progress, the
nearest checkpoint); the same with the distances from
:func:`~deepmanifold.geometry.pairwise_distances`, which prepares both sides at every call;
and the time to embed the ``T + 1`` checkpoints again instead (all pairwise distances, then
InPCA), which is what a picture that followed every checkpoint would cost. One BLAS/torch
thread; min / median over ``--repeat``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import numpy as np  # noqa: E402

from deepmanifold import geometry  # noqa: E402
from deepmanifold.live import PreparedModels  # noqa: E402

N, C, PER_RUN = 450, 10, 50


def reference(T: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``T`` checkpoints' log-probabilities ``(T, n, C)`` in runs of 50, and the labels."""
    labels = rng.integers(0, C, N)
    rows = []
    for _ in range(int(np.ceil(T / PER_RUN))):
        target = rng.standard_normal((N, C)) + 4.0 * np.eye(C)[labels]
        for s in np.linspace(0.0, 1.0, PER_RUN):
            logits = s * target
            rows.append(logits - np.log(np.exp(logits).sum(axis=1, keepdims=True)))
    return np.asarray(rows[:T], dtype=np.float32), labels


def timed(fn, repeat: int) -> tuple[float, float]:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times), statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--T", type=int, nargs="+", default=[600, 2000])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    print("| T | place one checkpoint, prepared reference (s) | with pairwise_distances (s) "
          "| embed T + 1 again (s) | ratio, embed / prepared |")
    print("|---|---|---|---|---|")
    for T in args.T:
        models, labels = reference(T, rng)
        emb = geometry.inpca(geometry.pairwise_distances(models, log=True), n_components=10)
        new = models[T // 2] + 0.01 * rng.standard_normal(models.shape[1:]).astype(np.float32)
        new -= np.log(np.exp(new).sum(axis=1, keepdims=True))

        prepared = PreparedModels(models)

        def placed(distances):
            def place():
                d = distances()
                emb.transform(d)
                geometry.progress(new, labels, log=True)
                int(np.argmin(d))
            return place

        fast = placed(lambda: prepared.distances(new[None])[0])
        plain = placed(lambda: geometry.pairwise_distances(new[None], models, log=True)[0])

        def embed_again():
            both = np.concatenate([models, new[None]])
            geometry.inpca(geometry.pairwise_distances(both, log=True), n_components=10)

        p = timed(fast, args.repeat)
        q = timed(plain, args.repeat)
        e = timed(embed_again, args.repeat)
        print(f"| {T:,} | {p[0]:.4f} / {p[1]:.4f} | {q[0]:.4f} / {q[1]:.4f} | {e[0]:.2f} / {e[1]:.2f} "
              f"| {e[1] / p[1]:,.0f}x |", flush=True)


if __name__ == "__main__":
    main()
