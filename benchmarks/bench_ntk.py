"""Infinite-width kernels at digits scale: wall time and peak RSS per case, each in its own subprocess.

    OMP_NUM_THREADS=1 python benchmarks/bench_ntk.py --repeat 3       # every case
    OMP_NUM_THREADS=1 python benchmarks/bench_ntk.py --case ntk --n 10000

Cases:

- ``ntk`` / ``both``: :func:`ntk` (and :func:`nngp_and_ntk`) of a depth-10 ReLU network
  (``σ_w² = 2``, ``σ_b² = 0.1``) on ``--n`` samples of ``d = 64`` (digits images, resampled
  with replacement and jittered by ``N(0, 0.01²)`` so that no two rows coincide), ``Y = None``.
- ``trajectory``: the digits split (1,347 train / 450 test) and its probes (500 train-probe
  samples + the 450 test samples): the depth-4 ReLU NTK on train x train and probes x train,
  :func:`linearized_trajectory` at 50 checkpoints (``t = 0`` and 49 log-spaced times up to
  ``1e4``, ``η = 1``), the temperature of least test-probe cross-entropy at the last one and
  the probabilities at every checkpoint.
- ``empirical``: :func:`empirical_ntk` of the project's digits MLP (width 128, two hidden
  layers with BatchNorm, 10 outputs) on the 500 train-probe samples, and the kernel distance
  between two initialisations.

Each case reports its wall times and its process's peak RSS (``ru_maxrss``) beside the RSS
after imports and data (the baseline); with ``--repeat k`` every float is "min / median"
over k runs, each in a fresh process. One BLAS/torch thread.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

import numpy as np  # noqa: E402

CASES = ("ntk", "both", "trajectory", "empirical")


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def digits_rows(n: int) -> np.ndarray:
    from sklearn.datasets import load_digits

    x = load_digits().data / 16.0
    rng = np.random.default_rng(0)
    return x[rng.integers(0, len(x), n)] + 0.01 * rng.standard_normal((n, x.shape[1]))


def case_kernel(n: int, both: bool) -> dict:
    from deepmanifold.theory._kernels import nngp_and_ntk, ntk

    X = digits_rows(n)
    base = rss_mb()
    args = dict(depth=10, activation="relu", sigma_w2=2.0, sigma_b2=0.1)
    t0 = time.perf_counter()
    K = nngp_and_ntk(X, **args).ntk if both else ntk(X, **args)
    wall = time.perf_counter() - t0
    return {"n": n, "d": X.shape[1], "wall_s": wall,
            "baseline_mb": base, "peak_mb": rss_mb(), "result_mb": K.nbytes / 2**20 * (2 if both else 1)}


def case_trajectory() -> dict:
    import torch

    from deepmanifold.data.datasets import load_digits
    from deepmanifold.data.probes import make_probes
    from deepmanifold.theory._kernels import ntk
    from deepmanifold.theory._linearized import fit_temperature, linearized_trajectory, probabilities_from_outputs

    torch.set_num_threads(1)
    data = load_digits()
    probes = make_probes(data, n_train=500)
    X = data.x_train.reshape(len(data.x_train), -1).double().numpy()
    P = np.vstack([X[probes["train"].indices], data.x_test.reshape(len(data.x_test), -1).double().numpy()])
    y = np.eye(10)[data.y_train.numpy()] - 0.1
    base = rss_mb()
    args = dict(depth=4, activation="relu", sigma_w2=2.0, sigma_b2=0.1)
    t0 = time.perf_counter()
    K_train = ntk(X, **args)
    K_probe = ntk(P, X, **args)
    t_kernels = time.perf_counter() - t0
    times = np.concatenate([[0.0], np.geomspace(1e-2, 1e4, 49)])
    t0 = time.perf_counter()
    traj = linearized_trajectory(K_train, y, times, K_test=K_probe)
    t_traj = time.perf_counter() - t0
    t0 = time.perf_counter()
    linearized_trajectory(K_train, y, times[-1:], K_test=K_probe)
    t_one = time.perf_counter() - t0
    t0 = time.perf_counter()
    n_tr = len(probes["train"])
    labels = np.concatenate([probes["train"].labels, data.y_test.numpy()])
    # On the test probe: the train probe is interpolated at the last time (least CE at T -> 0).
    fit = fit_temperature(traj.test[-1, n_tr:], labels[n_tr:])
    probs = probabilities_from_outputs(traj.test, fit.temperature)
    t_prob = time.perf_counter() - t0
    acc = (probs[-1].argmax(1) == labels)
    return {"n_train": len(X), "n_probe": len(P), "checkpoints": len(times), "kernels_s": t_kernels,
            "trajectory_s": t_traj, "one_checkpoint_s": t_one,
            "per_extra_checkpoint_ms": 1e3 * (t_traj - t_one) / (len(times) - 1), "probabilities_s": t_prob, "temperature": fit.temperature,
            "train_probe_acc": float(acc[:n_tr].mean()), "test_acc": float(acc[n_tr:].mean()),
            "baseline_mb": base, "peak_mb": rss_mb()}


def case_empirical() -> dict:
    import torch

    from deepmanifold.data.datasets import load_digits
    from deepmanifold.data.probes import make_probes
    from deepmanifold.models import build_model
    from deepmanifold.theory._empirical import empirical_ntk, kernel_distance

    torch.set_num_threads(1)
    data = load_digits()
    x = data.x_train[make_probes(data, n_train=500)["train"].indices]
    torch.manual_seed(0)
    nets = [build_model("mlp", (1, 8, 8), 10, width=128, depth=2) for _ in range(2)]
    n_params = sum(p.numel() for p in nets[0].parameters())
    base = rss_mb()
    t0 = time.perf_counter()
    K0 = empirical_ntk(nets[0], x)
    wall = time.perf_counter() - t0
    K1 = empirical_ntk(nets[1], x)
    return {"n": len(x), "params": n_params, "outputs": 10, "wall_s": wall,
            "distance_between_inits": kernel_distance(K0, K1), "baseline_mb": base, "peak_mb": rss_mb()}


def run_case(case: str, n: int) -> dict:
    if case == "ntk":
        return case_kernel(n, both=False)
    if case == "both":
        return case_kernel(n, both=True)
    if case == "trajectory":
        return case_trajectory()
    return case_empirical()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--case", choices=CASES, nargs="+", default=list(CASES))
    parser.add_argument("--n", type=int, default=10_000, help="samples of the ntk/both cases")
    parser.add_argument("--repeat", type=int, default=1, help="runs per case (min / median reported)")
    parser.add_argument("--inner", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.inner:  # one case in this process: print its JSON
        print(json.dumps(run_case(args.case[0], args.n)))
        return
    for case in args.case:
        runs = []
        for _ in range(args.repeat):
            out = subprocess.run([sys.executable, __file__, "--inner", "--case", case, "--n", str(args.n)],
                                 capture_output=True, text=True, check=True,
                                 env={**os.environ, "OMP_NUM_THREADS": "1"})
            runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
        # Per field: least and median over the repeats, as "min / median".
        summary = {}
        for key, value in runs[0].items():
            if isinstance(value, float) and len(runs) > 1:
                values = sorted(r[key] for r in runs)
                summary[key] = f"{values[0]:.4g} / {statistics.median(values):.4g}"
            else:
                summary[key] = round(value, 4) if isinstance(value, float) else value
        print(case, json.dumps(summary), flush=True)


if __name__ == "__main__":
    main()
