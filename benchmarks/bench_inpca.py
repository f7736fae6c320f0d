"""InPCA at scale: wall time and peak RSS per case (each case in its own subprocess).

    python benchmarks/bench_inpca.py            # full sizes
    python benchmarks/bench_inpca.py --quick    # reduced n / T (minutes on 2 cores)
    python benchmarks/bench_inpca.py --case ooc --T 50000 --n 4

Cases: in-memory distances + top-10 InPCA (lanczos and randomized), out-of-core
(distance tiles written to Zarr, then streamed InPCA), landmark vs exact error.
Models are synthetic training trajectories (`trajectories`): a few runs moving
every sample from the uniform distribution toward a run-specific final
prediction along sqrt-p geodesics, with per-sample speeds and noise.
"""

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np


def trajectories(T, n, C, *, runs=5, rng=None, noise=0.05, dtype=np.float32, out=None):
    rng = np.random.default_rng(rng)
    y = rng.integers(0, C, size=n)
    onehot = np.eye(C)[y]
    out = np.empty((T, n, C), dtype=dtype) if out is None else out
    s0 = np.full(C, np.sqrt(1.0 / C))
    for idx in np.array_split(np.arange(T), runs):
        q = np.exp(4.0 * (onehot + 0.6 * rng.standard_normal((n, C))))
        s1 = np.sqrt(q / q.sum(axis=1, keepdims=True))
        omega = np.arccos(np.clip(s1 @ s0, -1, 1))[:, None]
        speed = rng.uniform(0.3, 3.0, size=(n, 1))
        for t_i, m in zip(np.linspace(0, 1, len(idx)), idx):
            tau = t_i**speed
            s = (np.sin((1 - tau) * omega) * s0 + np.sin(tau * omega) * s1) / np.sin(omega)
            p = s**2 * np.exp(noise * rng.standard_normal((n, C)))
            out[m] = p / p.sum(axis=1, keepdims=True)
    return out


def peak_rss_gb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2  # ru_maxrss is KiB on Linux


class _RowWriter:
    """Write (n, C) float32 models straight to a .npy file, so generating the input costs no RAM."""

    def __init__(self, path, shape):
        self.fh = open(path, "wb")
        np.lib.format.write_array_header_1_0(self.fh, {"descr": "<f4", "fortran_order": False, "shape": shape})

    def __setitem__(self, index, value):  # models arrive in order
        self.fh.write(np.ascontiguousarray(value, dtype="<f4").tobytes())


def case_inmem(T, n, C, solver, source="memory"):
    from deepmanifold.geometry import inpca, pairwise_distances
    tmp = None
    if source == "memmap":
        # As a user's store gives them: predictions on disk, mapped lazily; D kept in float32.
        tmp = tempfile.mkdtemp(prefix="inpca_inmem_")
        path = os.path.join(tmp, "X.npy")
        writer = _RowWriter(path, (T, n, C))
        trajectories(T, n, C, rng=0, out=writer)
        writer.fh.close()
        X = np.load(path, mmap_mode="r")
        out = np.empty((T, T), dtype=np.float32)
    else:
        X = trajectories(T, n, C, rng=0)
        out = None
    t0 = time.perf_counter()
    D = pairwise_distances(X, out=out)
    t_dist = time.perf_counter() - t0
    del X
    if tmp:
        shutil.rmtree(tmp, ignore_errors=True)
    rss_dist = peak_rss_gb()
    t0 = time.perf_counter()
    res = inpca(D, 10, solver=solver, random_state=0)
    t_eig = time.perf_counter() - t0
    return dict(case="inmem", source=source, T=T, n=n, C=C, solver=res.info["solver"], passes=res.info["passes"],
                distances_s=round(t_dist, 2), inpca_s=round(t_eig, 2),
                peak_rss_gb_after_distances=round(rss_dist, 2), peak_rss_gb=round(peak_rss_gb(), 2),
                stress10=round(float(res.explained_stress[-1]), 4))


def case_ooc(T, n, C, block):
    from deepmanifold.geometry import inpca
    from deepmanifold.geometry.outofcore import compute_distance_matrix_on_disk
    X = trajectories(T, n, C, rng=0)
    d = tempfile.mkdtemp(prefix="inpca_ooc_")
    try:
        t0 = time.perf_counter()
        M = compute_distance_matrix_on_disk(X, os.path.join(d, "D.zarr"), block_size=block)
        t_dist = time.perf_counter() - t0
        del X
        rss_dist = peak_rss_gb()
        t0 = time.perf_counter()
        res = inpca(M, 10, random_state=0)
        t_eig = time.perf_counter() - t0
        return dict(case="ooc", T=T, n=n, C=C, block=block, solver=res.info["solver"],
                    passes=res.info["passes"] + 2, distances_s=round(t_dist, 1), inpca_s=round(t_eig, 1),
                    disk_gb=round(M.nbytes_on_disk / 1e9, 2), peak_rss_gb_after_distances=round(rss_dist, 2),
                    peak_rss_gb=round(peak_rss_gb(), 2), stress10=round(float(res.explained_stress[-1]), 4))
    finally:
        shutil.rmtree(d, ignore_errors=True)


def case_landmark(T, n, C, ms, k=5):
    from deepmanifold.geometry import inpca, pairwise_distances
    from deepmanifold.geometry.landmark import landmark_error, landmark_inpca
    X = trajectories(T, n, C, rng=0)
    D = pairwise_distances(X)
    ref = inpca(D, k, random_state=0)
    rows = []
    for m in ms:
        for how in ("random", "maxmin"):
            t0 = time.perf_counter()
            res = landmark_inpca(X, n_landmarks=m, n_components=k, landmarks=how, random_state=0)
            t = time.perf_counter() - t0
            e = landmark_error(res, D, reference=ref)
            rows.append(dict(m=m, landmarks=how, time_s=round(t, 2), coord_rel_rmse=round(e.coord_rel_rmse, 4),
                             coord_rel_rmse_procrustes=round(e.coord_rel_rmse_procrustes, 4),
                             sq_dist_rel_error=round(e.sq_dist_rel_error, 4),
                             eig_rel_err_max=round(float(e.eigenvalue_rel_error.max()), 4),
                             landmark_vs_D=round(e.sq_dist_rel_error_vs_D, 4),
                             exact_vs_D=round(e.reference_sq_dist_rel_error_vs_D, 4)))
    return dict(case="landmark", T=T, n=n, C=C, k=k, rows=rows)


def run_sub(args):
    cmd = [sys.executable, __file__, "--_run"] + [json.dumps(args)]
    out = subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ))
    if out.returncode != 0:
        return dict(args, error=out.stderr[-2000:])
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--quick", action="store_true")
    p.add_argument("--case", choices=["inmem", "ooc", "landmark", "all"], default="all")
    p.add_argument("--T", type=int)
    p.add_argument("--n", type=int)
    p.add_argument("--solver", choices=["lanczos", "randomized"])
    p.add_argument("--source", choices=["memory", "memmap"])
    p.add_argument("--_run")
    a = p.parse_args()
    if a._run:
        kw = json.loads(a._run)
        fn = {"inmem": case_inmem, "ooc": case_ooc, "landmark": case_landmark}[kw.pop("case")]
        print(json.dumps(fn(**kw)))
        return
    C = 10
    cases = []
    if a.case in ("inmem", "all"):
        for T, n in ([(5000, 200), (20000, 50)] if a.quick else [(5000, 2000), (20000, 2000)]):
            T, n = a.T or T, a.n or n
            for solver in ("lanczos", "randomized"):
                cases.append(dict(case="inmem", T=T, n=n, C=C, solver=solver, source="memory"))
            cases.append(dict(case="inmem", T=T, n=n, C=C, solver="randomized", source="memmap"))
    if a.solver or a.source:
        cases = [c for c in cases if c["case"] != "inmem" or
                 ((a.solver in (None, c["solver"])) and (a.source in (None, c["source"])))]
    if a.case in ("ooc", "all"):
        T, n = (20000, 20) if a.quick else (50000, 4)
        cases.append(dict(case="ooc", T=a.T or T, n=a.n or n, C=C, block=1024))
    if a.case in ("landmark", "all"):
        T = a.T or (2000 if a.quick else 4000)
        ms = [125, 250, 500, 1000] if a.quick else [250, 500, 1000, 2000]
        cases.append(dict(case="landmark", T=T, n=a.n or 100, C=C, ms=[m for m in ms if m <= T] or [T]))
    unique = {json.dumps(c, sort_keys=True): c for c in cases}  # --T/--n may make two presets one case
    for c in unique.values():
        r = run_sub(c)
        if "error" in r:
            print(json.dumps(r), flush=True)
        elif r.get("case") == "landmark":
            print(f"# landmark vs exact InPCA: T={r['T']} n={r['n']} C={r['C']} k={r['k']}", flush=True)
            for row in r["rows"]:
                print("  " + json.dumps(row), flush=True)
        else:
            print(json.dumps(r), flush=True)


if __name__ == "__main__":
    main()
