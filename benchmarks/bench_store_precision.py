"""How precisely must the store keep predictions? float16 vs float32 log-probabilities.

    OMP_NUM_THREADS=1 python benchmarks/bench_store_precision.py [--quick] [--store DIR]

Two sets of models, each stored both ways, and the Bhattacharyya distance matrix
``d_B`` (the input of InPCA) computed from each:

* **real**: softmax outputs of a small digits sweep that the script trains with the
  CLI into a temporary store (``deepmanifold run``; MLP and CNN, SGD and Adam,
  two seeds, many checkpoints) and reads back as stored (float32);
* **synthetic**: trajectories from uniform towards per-run final predictions
  (as in ``bench_inpca.py``), generated in float64, so that the float32 error
  itself is measured against the truth.

"float16" means: the float32 log-probabilities rounded to float16 on disk, read
back as float32 and renormalised (``logp - logsumexp(logp)``), which a reader
would have to do since the rounded ``exp`` no longer sums to 1. Reported: the
relative error of ``d_B`` over all pairs (median, 99th percentile, max), over the
closest pairs (consecutive checkpoints of one run, which set the progress and the
local shape of the picture), and the relative Frobenius error; then bytes per
checkpoint (``n x C x itemsize`` for the train and test probe sets, plus one
``metrics.csv`` row).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import numpy as np
from scipy.special import logsumexp

from deepmanifold.geometry import pairwise_distances

SPEC = """
[sweep]
name = "precision"
workers = 2

[data]
name = "digits"
probe_train = {n}
probe_test = {n}

[train]
epochs = {epochs}
batch_size = 64
checkpoints = {k}

[grid]
arch = ["mlp", "cnn"]
optimizer = ["sgd", "adam"]
seed = [0, 1]

[arch.mlp]
width = 64

[arch.cnn]
width = 16

[optimizer.sgd]
lr = 0.05
momentum = 0.9

[optimizer.adam]
lr = 0.003
"""


def real_models(store_dir: Path, *, n: int, epochs: int, k: int):
    """Train the sweep with the CLI (once per store folder); (T, n, C) float32 log-probs and run lengths."""
    from deepmanifold.store import Store

    store_dir.mkdir(parents=True, exist_ok=True)
    spec = store_dir.parent / f"{store_dir.name}.toml"
    spec.write_text(textwrap.dedent(SPEC.format(n=n, epochs=epochs, k=k)))
    start = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "deepmanifold.cli", "run", str(spec), "--store", str(store_dir),
                          "--no-report"], capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    if out.returncode != 0:
        raise SystemExit(f"sweep failed:\n{out.stdout}\n{out.stderr}")
    print(f"  sweep trained in {time.perf_counter() - start:.1f} s ({store_dir})")
    store = Store(store_dir, create=False)
    records, _ = store.records()
    records = [r for r in records if r.status == "complete"]
    logp = np.concatenate([store.logp(r.run_id, "test") for r in records])
    lengths = [r.n_checkpoints for r in records]
    rows = []
    for r in records:
        text = (store.run_dir(r.run_id) / "metrics.csv").read_bytes()
        header, *body = text.splitlines(keepends=True)
        rows.append(sum(map(len, body)) / len(body))
    return logp, lengths, float(np.mean(rows))


def synthetic_models(T: int, n: int, C: int, runs: int, seed: int = 0):
    """float64 trajectories (as bench_inpca.trajectories), returned as log-probabilities."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, C, size=n)
    onehot = np.eye(C)[y]
    out = np.empty((T, n, C))
    s0 = np.full(C, np.sqrt(1.0 / C))
    lengths = []
    for idx in np.array_split(np.arange(T), runs):
        lengths.append(len(idx))
        q = np.exp(6.0 * (onehot + 0.6 * rng.standard_normal((n, C))))  # confident final predictions
        s1 = np.sqrt(q / q.sum(axis=1, keepdims=True))
        omega = np.arccos(np.clip(s1 @ s0, -1, 1))[:, None]
        speed = rng.uniform(0.3, 3.0, size=(n, 1))
        for t_i, m in zip(np.linspace(0, 1, len(idx)), idx):
            tau = t_i**speed
            s = (np.sin((1 - tau) * omega) * s0 + np.sin(tau * omega) * s1) / np.sin(omega)
            p = s**2 * np.exp(0.05 * rng.standard_normal((n, C)))
            out[m] = p / p.sum(axis=1, keepdims=True)
    return np.log(out), lengths


def as_stored(logp: np.ndarray, dtype) -> np.ndarray:
    """Round-trip through ``dtype`` on disk, read back as float32, renormalised."""
    back = logp.astype(dtype).astype(np.float64)
    return (back - logsumexp(back, axis=-1, keepdims=True)).astype(np.float32)


def errors(D: np.ndarray, ref: np.ndarray, lengths) -> dict:
    iu = np.triu_indices_from(ref, k=1)
    keep = ref[iu] > 0  # identical models (e.g. equal initialisations) have no relative error
    diff = np.abs(D[iu] - ref[iu])
    rel = diff[keep] / ref[iu][keep]
    starts = np.cumsum([0, *lengths[:-1]])
    consecutive = np.concatenate([np.arange(s, s + L - 1) for s, L in zip(starts, lengths)])
    close = np.abs(D[consecutive, consecutive + 1] - ref[consecutive, consecutive + 1]) / ref[consecutive, consecutive + 1]
    return {"median": np.median(rel), "p99": np.quantile(rel, 0.99), "max": rel.max(),
            "close_median": np.median(close), "close_max": close.max(),
            "close_d": np.median(ref[consecutive, consecutive + 1]),
            "frob": np.linalg.norm(D - ref) / np.linalg.norm(ref), "abs_max": diff.max(),
            "d_at_max": ref[iu][keep][np.argmax(rel)]}


def report(name: str, D: dict, ref: str, lengths) -> None:
    print(f"\n{name}: relative error of d_B against {ref} (T = {D[ref].shape[0]})")
    print("| stored as | median | 99th pct | max | consecutive checkpoints: median / max "
          "(median d_B {:.2g}) | Frobenius | max abs error | d_B where the relative error is max |".format(
              errors(D[ref], D[ref], lengths)["close_d"]))
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for key, Dk in D.items():
        if key == ref:
            continue
        e = errors(Dk, D[ref], lengths)
        print(f"| {key} | {e['median']:.2e} | {e['p99']:.2e} | {e['max']:.2e} | "
              f"{e['close_median']:.2e} / {e['close_max']:.2e} | {e['frob']:.2e} | {e['abs_max']:.1e} | "
              f"{e['d_at_max']:.1e} |")


def distances(logp: np.ndarray) -> np.ndarray:
    return pairwise_distances(logp, log=True, precision="exact")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="smaller sweep and synthetic set")
    ap.add_argument("--store", type=Path, help="store folder for the real sweep (kept; reused if complete)")
    args = ap.parse_args()
    n, epochs, k = (200, 4, 12) if args.quick else (500, 10, 25)

    print("real digits checkpoints")
    with tempfile.TemporaryDirectory() as tmp:
        store_dir = args.store or Path(tmp) / "store"
        logp, lengths, metrics_row = real_models(store_dir, n=n, epochs=epochs, k=k)
    C = logp.shape[-1]
    D = {"float32 (as stored)": distances(logp), "float16": distances(as_stored(logp, np.float16))}
    report(f"real: {len(lengths)} runs x {lengths[0]} checkpoints, n = {logp.shape[1]}, C = {C}", D,
           "float32 (as stored)", lengths)
    print(f"\nlog p range: min {logp.min():.1f}, fraction of entries below -8: {(logp < -8).mean():.2f}")

    T_syn, n_syn = (200, 300) if args.quick else (400, 1000)
    syn, syn_lengths = synthetic_models(T_syn, n_syn, 10, runs=8)
    Ds = {"float64 (truth)": distances(syn), "float32": distances(as_stored(syn, np.float32)),
          "float16": distances(as_stored(syn, np.float16))}
    report(f"synthetic: 8 runs, n = {n_syn}, C = 10", Ds, "float64 (truth)", syn_lengths)

    print("\nbytes per checkpoint (train + test probes of n samples each, C classes, + one metrics.csv row "
          f"of {metrics_row:.0f} B measured)")
    print("| n per probe set | C | float32 | float16 |")
    print("| --- | --- | --- | --- |")
    for n_p, c in dict.fromkeys(((logp.shape[1], C), (500, 10), (2000, 10), (2000, 100))):
        b32, b16 = 2 * n_p * c * 4 + metrics_row, 2 * n_p * c * 2 + metrics_row
        print(f"| {n_p} | {c} | {b32:,.0f} B | {b16:,.0f} B |")


if __name__ == "__main__":
    main()
