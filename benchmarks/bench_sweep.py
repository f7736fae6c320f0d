"""Runs per hour of the digits demo grid with 1 and 2 worker processes, side by side.

    OMP_NUM_THREADS=1 python benchmarks/bench_sweep.py [--spec examples/digits.toml] [--workers 1 2]
        [--device cpu|cuda|auto] [--ensemble 1 3]

Each case trains the whole spec into a fresh temporary store (report off) through the
same `run_sweep` the CLI uses, and prints wall time, runs/hour and the speed-up over
the first case. On a GPU machine, ``--device cuda --workers 1 4 8`` compares small
networks trained one at a time on the GPU with 4 and 8 trained at once (one process
each, sharing the GPU). ``--ensemble 1 3`` also crosses every worker count with seeds
trained one at a time and in vmap ensembles of 3 (``run_sweep(ensemble=...)``).
"""

import argparse
import shutil
import tempfile
import time
from pathlib import Path

from deepmanifold.sweeps import load_spec, run_sweep


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--spec", default=str(Path(__file__).resolve().parents[1] / "examples" / "digits.toml"))
    p.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    p.add_argument("--device", default="cpu", help="cpu (default), cuda or auto")
    p.add_argument("--ensemble", type=int, nargs="+", default=[1])
    a = p.parse_args()
    spec = load_spec(a.spec)
    base = None
    print(f"{a.spec}: {len(spec.runs)} runs on {a.device}")
    for e in a.ensemble:
        for w in a.workers:
            tmp = tempfile.mkdtemp(prefix="bench_sweep_")
            try:
                t0 = time.perf_counter()
                result = run_sweep(spec, store=Path(tmp) / "store", workers=w, device=a.device, ensemble=e)
                wall = time.perf_counter() - t0
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
            assert result.count("complete") == len(spec.runs), [o.message for o in result.outcomes]
            base = base or wall
            print(f"  ensemble={e} workers={w}: {wall:6.1f} s  {len(spec.runs) * 3600 / wall:7.0f} runs/hour  "
                  f"x{base / wall:.2f} vs the first case", flush=True)

if __name__ == "__main__":
    main()
