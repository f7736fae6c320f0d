"""Runs per hour of a sweep spec (the digits demo grid by default) for several worker counts, side by side.

    OMP_NUM_THREADS=1 python benchmarks/bench_sweep.py [--spec examples/digits.toml] [--workers 1 2]
        [--device cpu|cuda|auto] [--ensemble 1 3] [--against REV --repeat N]

Each case trains the whole spec into a fresh temporary store (report off) through the
same `run_sweep` the CLI uses, and prints wall time, runs/hour and the speed-up over
the first case. On a GPU machine, ``--device cuda --workers 1 4 8`` compares small
networks trained one at a time on the GPU with 4 and 8 trained at once (one process
each, sharing the GPU). ``--ensemble 1 3`` also crosses every worker count with seeds
trained one at a time and in vmap ensembles of 3 (``run_sweep(ensemble=...)``).

``--against REV`` times this checkout's package against git revision ``REV``'s (exported
to a temporary folder), each case alternating between the two for ``--repeat`` rounds,
every sweep in a fresh subprocess: the check that a change to training, the recorder or
the store costs nothing.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def one_sweep(spec_path: str, workers: int, device: str, ensemble: int) -> float:
    """Wall time of one sweep of the spec into a fresh temporary store (every run must complete)."""
    from deepmanifold.sweeps import load_spec, run_sweep

    spec = load_spec(spec_path)
    tmp = tempfile.mkdtemp(prefix="bench_sweep_")
    try:
        t0 = time.perf_counter()
        result = run_sweep(spec, store=Path(tmp) / "store", workers=workers, device=device, ensemble=ensemble)
        wall = time.perf_counter() - t0
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    assert result.count("complete") == len(spec.runs), [o.message for o in result.outcomes]
    return wall


def sweep_in_subprocess(src: Path, spec_path: str, workers: int, device: str, ensemble: int) -> float:
    """:func:`one_sweep` in a fresh interpreter importing ``deepmanifold`` from ``src``."""
    env = {**os.environ, "PYTHONPATH": str(src), "OMP_NUM_THREADS": "1"}
    code = (f"import sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); from bench_sweep import one_sweep; "
            f"print(one_sweep({spec_path!r}, {workers}, {device!r}, {ensemble}))")
    out = subprocess.run([sys.executable, "-c", code], env=env, cwd=tempfile.gettempdir(), capture_output=True,
                         text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def export_revision(rev: str, folder: Path) -> Path:
    """The ``src`` folder of git revision ``rev``, written under ``folder``."""
    archive = subprocess.run(["git", "archive", rev, "src"], cwd=ROOT, capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive, check=True)
    return folder / "src"


def against(a, n_runs: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        contenders = {"this checkout": ROOT / "src", a.against: export_revision(a.against, Path(tmp))}
        print(f"{a.spec}: {n_runs} runs on {a.device}; {a.repeat} alternating rounds (seconds)")
        for e in a.ensemble:
            for w in a.workers:
                times = {name: [] for name in contenders}
                for r in range(a.repeat):
                    for name in (list(contenders) if r % 2 == 0 else list(contenders)[::-1]):
                        times[name].append(sweep_in_subprocess(contenders[name], a.spec, w, a.device, e))
                best = {name: min(ts) for name, ts in times.items()}
                for name, ts in times.items():
                    print(f"  ensemble={e} workers={w} {name:>14s}: best {best[name]:6.1f}  "
                          f"({', '.join(f'{t:.1f}' for t in ts)})", flush=True)
                print(f"  ensemble={e} workers={w} this checkout / {a.against}: "
                      f"{best['this checkout'] / best[a.against]:.3f} (best)", flush=True)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--spec", default=str(ROOT / "examples" / "digits.toml"))
    p.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    p.add_argument("--device", default="cpu", help="cpu (default), cuda or auto")
    p.add_argument("--ensemble", type=int, nargs="+", default=[1])
    p.add_argument("--against", metavar="REV", help="time this checkout against git revision REV")
    p.add_argument("--repeat", type=int, default=2, help="alternating rounds with --against")
    a = p.parse_args()
    a.spec = str(Path(a.spec).resolve())
    from deepmanifold.sweeps import load_spec

    n_runs = len(load_spec(a.spec).runs)
    if a.against:
        return against(a, n_runs)
    base = None
    print(f"{a.spec}: {n_runs} runs on {a.device}")
    for e in a.ensemble:
        for w in a.workers:
            wall = one_sweep(a.spec, w, a.device, e)
            base = base or wall
            print(f"  ensemble={e} workers={w}: {wall:6.1f} s  {n_runs * 3600 / wall:7.0f} runs/hour  "
                  f"x{base / wall:.2f} vs the first case", flush=True)


if __name__ == "__main__":
    main()
