"""A spec file -> the list of runs -> executed by a runner (local process pool), resumable."""

from .runner import RunOutcome, SweepResult, execute_run, preflight, run_sweep
from .spec import RunSpec, SpecError, SweepSpec, load_spec, parse_spec

__all__ = ["RunOutcome", "RunSpec", "SpecError", "SweepResult", "SweepSpec", "execute_run",
           "load_spec", "parse_spec", "preflight", "run_sweep"]
