"""The machine's fused multiply-add peak per core, and the distance kernel as a fraction of it.

    OMP_NUM_THREADS=1 python benchmarks/bench_peak.py
    OMP_NUM_THREADS=1 python benchmarks/bench_peak.py --distances
    OMP_NUM_THREADS=1 python benchmarks/bench_peak.py --distances --without-avx512

Prints a markdown table of the machine as numba sees it: the CPU's name, LLVM's name of
the CPU numba compiles for, the widest SIMD registers its features allow, the register
width of the FMAs LLVM actually emitted in the peak kernels (read from their assembly),
and the float32 and float64 peak in GFLOP/s of one core (2 flops per FMA; best of
``--repeat`` runs of a loop of independent vector FMAs kept in registers, see
:func:`deepmanifold.geometry._machine.fma_peak`); then the CPU key that names the
compiled-code caches.

With ``--distances`` it also times ``pairwise_distances(X, precision=..., n_jobs=1)`` on
trajectory-shaped models (15 runs x 100 checkpoints: T = 1,500 models, n = 1,500
samples, C = 10; ``trajectories`` of ``bench_inpca.py``), exact and fast, best of
``--repeat``, and reports each in unique pair-samples/s (``T(T-1)/2 * n``) and as a
fraction of the peak: one pair-sample is the C products ``sqrt(p_c) sqrt(q_c)`` of one
sample of one pair, C multiply-adds = 2C flops, compared with the peak of the dtype the
products are taken in (exact: float64, fast: float32; both fold the sum into a float64
running product, one float64 multiply and one comparison per pair-sample more, not
counted). It reads the FMA register width of the tile kernel from the assembly of an
uncached copy of it (numba cannot show the assembly of code loaded from its cache),
which costs a few seconds of compilation. About 3 s without ``--distances``, 15 s with
(35 s the first time, when numba compiles the distance kernel for this CPU).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import types
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numba  # noqa: E402
import numpy as np  # noqa: E402

from deepmanifold.geometry import _kernels, _machine  # noqa: E402
from deepmanifold.geometry.distances import pairwise_distances  # noqa: E402

RUNS, CHECKPOINTS = 15, 100
# The dtype each precision's tile kernel multiplies sqrt(p) sqrt(q) in (distances.py:
# exact prepares float64 roots, fast float32 roots; the sum over classes stays in that
# dtype, the running product over samples is float64 in both).
PRODUCTS = {"exact": np.float64, "fast": np.float32}


def tile_kernel_fma_bits(C: int, dtype) -> int:
    """FMA register width of the tile kernel for ``C`` classes and ``dtype`` roots.

    Compiles an uncached copy of the generated source (the cached kernel's assembly is
    not available) for the no-clamp specialisation the hot loop runs in.
    """
    source = _kernels._kernel_source(C).replace("cache=True", "cache=False")
    module = types.ModuleType("_bench_peak_tiles")
    exec(compile(source, "<bench_peak tiles>", "exec"), module.__dict__)
    n, R, W = 4, 2, 16
    A = np.full((n, R, C), np.sqrt(1.0 / C), dtype)
    B = np.full((n, C, W), np.sqrt(1.0 / C), dtype)
    prod, expo = np.ones((R, W)), np.zeros((R, W), np.int64)
    lo = np.full((n, C), np.sqrt(1.0 / C), dtype)
    module._tile(A, B, 0, R, 0, 0, True, dtype(1e-30), 16, prod, expo, False, W, lo, lo)
    element_bits = 8 * np.dtype(dtype).itemsize  # the products' FMAs, not the float64 bound's
    return max(_machine.fma_register_bits(module._tile.inspect_asm(sig), element_bits)
               for sig in module._tile.signatures)


def best_time(f, repeat):
    best = np.inf
    for _ in range(repeat):
        t = time.perf_counter()
        f()
        best = min(best, time.perf_counter() - t)
    return best


def machine_table(seconds: float, repeat: int) -> dict:
    info = _machine.cpu_info()
    peak = {d: _machine.fma_peak(d, seconds=seconds, repeats=repeat) for d in (np.float32, np.float64)}
    width = {d: _machine.fma_width(d) for d in (np.float32, np.float64)}
    print("| CPU | LLVM CPU | widest SIMD | FMA | FMA register, float32 kernel | FMA register, float64 kernel "
          "| FP32 peak, GFLOP/s per core | FP64 peak, GFLOP/s per core |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    print(f"| {info.model} | {info.llvm_cpu} | {info.simd_bits} bits | {'yes' if info.fma else 'no'} "
          f"| {width[np.float32]} bits | {width[np.float64]} bits | {peak[np.float32]:.1f} | {peak[np.float64]:.1f} |")
    print()
    print(f"CPU key {info.key} ({info.triple}; numba {numba.__version__}); best of {repeat} runs, "
          f"{seconds:.2f} s per dtype")
    return peak


def distances_table(peak: dict, T: int, n: int, C: int, repeat: int) -> None:
    from bench_inpca import trajectories

    X = trajectories(T, n, C, runs=RUNS, rng=0)
    pairs = T * (T - 1) / 2 * n
    print()
    print(f"pairwise_distances, one core (n_jobs=1): T = {T:,} models ({RUNS} runs of {T // RUNS} checkpoints), "
          f"n = {n:,}, C = {C}, float32 probabilities in; best of {repeat}; "
          f"a pair-sample = {C} multiply-adds = {2 * C} flops")
    print()
    print("| precision | products in | FMA register, tile kernel | seconds | G pair-samples/s | GFLOP/s "
          "| fraction of the peak (same dtype) |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for precision, dtype in PRODUCTS.items():
        pairwise_distances(X[:8, :16], precision=precision, n_jobs=1)  # compile / load the numba cache
        seconds = best_time(lambda: pairwise_distances(X, precision=precision, n_jobs=1), repeat)
        rate = pairs / seconds
        gflops = rate * 2 * C / 1e9
        bits = tile_kernel_fma_bits(C, dtype)
        print(f"| {precision} | {np.dtype(dtype).name} | {bits} bits | {seconds:.3f} | {rate / 1e9:.3f} "
              f"| {gflops:.1f} | {gflops / peak[dtype]:.1%} of {peak[dtype]:.1f} |")


def _restart_without_avx512() -> None:
    """Run this script again with numba compiling for the host's features minus AVX-512.

    The code an AVX2-only machine of the same family would get (``NUMBA_CPU_FEATURES``),
    run on this one: the rates show what the 512-bit instructions bring. Compiled code is
    cached under its own CPU key, so the two builds never mix.
    """
    from llvmlite import binding as llvm

    llvm.initialize_native_target()
    features = llvm.get_host_cpu_features()
    flags = ",".join(("-" if name.startswith(("avx512", "evex512")) else "+" if on else "-") + name
                     for name, on in sorted(features.items()))
    env = {**os.environ, "NUMBA_CPU_FEATURES": flags}
    argv = [a for a in sys.argv if a != "--without-avx512"]
    os.execve(sys.executable, [sys.executable, *argv], env)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--distances", action="store_true", help="also time the distance kernel against the peak")
    ap.add_argument("--seconds", type=float, default=0.5, help="time per dtype of the peak measurement")
    ap.add_argument("--repeat", type=int, default=5, help="runs of each measurement; the best counts")
    ap.add_argument("--T", type=int, default=RUNS * CHECKPOINTS, help="models (in 15 runs)")
    ap.add_argument("--n", type=int, default=1500, help="samples")
    ap.add_argument("--C", type=int, default=10, help="classes")
    ap.add_argument("--without-avx512", action="store_true",
                    help="compile for this CPU's features minus AVX-512 (what an AVX2 machine runs)")
    args = ap.parse_args()
    if args.without_avx512:
        _restart_without_avx512()
    peak = machine_table(args.seconds, args.repeat)
    if args.distances:
        distances_table(peak, args.T, args.n, args.C, max(1, min(args.repeat, 3)))


if __name__ == "__main__":
    sys.exit(main())
