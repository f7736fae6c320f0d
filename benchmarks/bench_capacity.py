"""Speed of the mean-field manifold capacity: the reference algorithm against ours.

    OMP_NUM_THREADS=1 NUMBA_NUM_THREADS=1 python benchmarks/bench_capacity.py [--repeat 3]

On the reference's example (P = 100 manifolds of M = 50 standard normal points in
N = 5000 dimensions, kappa = 0, n_t = 200, as in the mftma README) it times, alternately
so that both see the same machine load:

(a) the reference algorithm as published (``mftma.manifold_analysis_corr``): per manifold
    an economic QR, then a Python loop over the n_t samples with the max-projection
    point found per sample and one quadratic program per sample, here
    ``scipy.optimize.nnls`` (the QP's dual at kappa = 0; the reference calls cvxopt);
(b) :func:`deepmanifold.probes.manifold_capacity`.

Both run the centres' low-rank step with our solver (the reference's uses pymanopt, which
is not a dependency; its time within (a) is printed), and draw their Gaussian samples in
the same order from the same seed, so they must give the same values. It prints the best of ``--repeat`` wall times,
their ratio and the capacity, radius and dimension each gives, then the time of ours at a
layer-probe size (P = 10 classes, M = 50 points, N = 512).
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")
os.environ.setdefault("NUMBA_NUM_THREADS", "1")

import numpy as np  # noqa: E402
from scipy.linalg import qr  # noqa: E402
from scipy.optimize import nnls  # noqa: E402

from deepmanifold.probes import _capacity  # noqa: E402
from deepmanifold.probes._capacity import manifold_capacity  # noqa: E402


def reference_each_manifold(sD1, kappa, n_t, rng, eps=1e-8):
    """``each_manifold_analysis_D1`` of the reference, one ``nnls`` per sample."""
    D1 = sD1.shape[0]
    D = D1 - 1
    t_vec = rng.standard_normal((D1, n_t))
    # maxproj: a Python loop, as published
    ss = np.zeros((D1, n_t))
    gg = np.zeros(n_t)
    for i in range(n_t):
        t = t_vec[:, i]
        max_S = np.argmax(np.dot(t[0:D], sD1[0:D]))
        ss[:, i] = np.append(sD1[0:D, max_S], [1.0])
        gg[i] = np.dot(t, ss[:, i])
    e = np.zeros(D1)
    e[-1] = 1.0
    s_all = np.empty((D1, n_t))
    for i in range(n_t):
        t = t_vec[:, i]
        if gg[i] + kappa < 0:
            s_all[:, i] = ss[:, i]
            continue
        alpha, _ = nnls(sD1, t + kappa * e)  # minimize_vt_sq's dual
        v_f = t - sD1 @ alpha
        if np.linalg.norm(v_f - t) < eps:
            s_all[:, i] = ss[:, i]
        else:
            s_all[:, i] = (t - v_f) / np.sum(alpha)
    max_ts = np.maximum(np.sum(t_vec * s_all, axis=0) + kappa, np.zeros(n_t))
    s_sum = np.sum(np.square(s_all), axis=0)
    lamb = np.asarray([max_ts[i] / s_sum[i] if s_sum[i] > 0 else 0 for i in range(n_t)])
    a_Mfull = 1 / np.mean(np.square(lamb) * s_sum)
    ds0 = s_all - s_all.mean(axis=1, keepdims=True)
    ds = ds0[0:-1, :] / s_all[-1, :]
    R_M = np.sqrt(np.mean(np.sum(np.square(ds), axis=0)))
    t_hat = t_vec[0:D, :] / np.sqrt(np.sum(np.square(t_vec[0:D, :]), axis=0, keepdims=True))
    s_hat = s_all[0:D, :] / np.sqrt(np.sum(np.square(s_all[0:D, :]), axis=0, keepdims=True) + 1e-12)
    D_M = D * np.square(np.mean(np.sum(t_hat * s_hat, axis=0)))
    return a_Mfull, R_M, D_M


def reference_manifold_analysis(XtotT, kappa, n_t, seed):
    """``manifold_analysis_corr`` of the reference; ``XtotT`` is a list of (N, M_i) arrays.
    Returns (capacity, radius, dimension, seconds of the shared low-rank step)."""
    rng = np.random.default_rng(seed)
    P = len(XtotT)
    X_origin = np.mean(np.concatenate(XtotT, axis=1), axis=1, keepdims=True)
    Xtot0 = [XtotT[i] - X_origin for i in range(P)]
    centers = np.stack([np.mean(XtotT[i], axis=1) for i in range(P)], axis=1)
    t0 = time.perf_counter()
    V11, _, _ = _capacity._center_subspace((centers - X_origin).T, rng, _capacity._N_REPS)
    t_fa = time.perf_counter() - t0
    a, r, d = np.zeros(P), np.zeros(P), np.zeros(P)
    for i in range(P):
        Xr = Xtot0[i]
        Xr_ns = Xr - np.matmul(V11, np.matmul(V11.T, Xr))
        Xr0_ns = np.mean(Xr_ns, axis=1)
        Xrr_ns = (Xr_ns - Xr0_ns.reshape(-1, 1)) / np.linalg.norm(Xr0_ns)
        S_r = Xrr_ns
        D, m = S_r.shape
        if D > m:
            Q, _ = qr(S_r, mode="economic")
            S_r = np.matmul(Q.T, S_r)
        sD1 = np.concatenate([S_r, np.ones((1, m))], axis=0)
        a[i], r[i], d[i] = reference_each_manifold(sD1, kappa, n_t, rng)
    return 1 / np.mean(1 / a), np.mean(r), np.mean(d), t_fa


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    P, M, N, n_t, kappa = 100, 50, 5000, 200, 0.0
    X = np.random.default_rng(0).standard_normal((P, M, N))
    XtotT = [np.ascontiguousarray(x.T) for x in X]  # the reference's (N, M_i) layout
    manifold_capacity(X[:3, :5, :20], random_state=0)  # load / compile the kernels
    print(f"validation case P={P} M={M} N={N} n_t={n_t} kappa={kappa}, "
          f"OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']} NUMBA_NUM_THREADS={os.environ['NUMBA_NUM_THREADS']}")
    t_ref, t_ours = [], []
    for rep in range(args.repeat):
        t0 = time.perf_counter()
        v_ref = reference_manifold_analysis(XtotT, kappa, n_t, seed=rep)
        t_ref.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        r = manifold_capacity(X, kappa=kappa, n_t=n_t, random_state=rep)
        t_ours.append(time.perf_counter() - t0)
        v_ours = (r.capacity, r.radius, r.dimension)
        print(f"  rep {rep}: reference {t_ref[-1]:.2f} s  alpha={v_ref[0]:.5f} R={v_ref[1]:.4f} D={v_ref[2]:.3f}"
              f" (low-rank step {v_ref[3]:.2f} s) | ours {t_ours[-1]:.2f} s  alpha={v_ours[0]:.5f}"
              f" R={v_ours[1]:.4f} D={v_ours[2]:.3f}", flush=True)
    print(f"best: reference (nnls per sample) {min(t_ref):.2f} s, ours {min(t_ours):.2f} s, "
          f"ratio {min(t_ref) / min(t_ours):.1f}x")
    print("published (mftma README): alpha=0.04 R=1.48 D=36.17")

    Y = np.random.default_rng(1).standard_normal((10, 50, 512)) + np.random.default_rng(2).standard_normal((10, 1, 512))
    ts = []
    for rep in range(5 * args.repeat):
        t0 = time.perf_counter()
        r = manifold_capacity(Y, n_t=n_t, random_state=rep)
        ts.append(time.perf_counter() - t0)
    print(f"layer probe P=10 M=50 N=512 n_t={n_t}: ours best {min(ts) * 1e3:.0f} ms, "
          f"median {np.median(ts) * 1e3:.0f} ms (alpha={r.capacity:.4f}, centre rank {r.center_rank})")


if __name__ == "__main__":
    main()
