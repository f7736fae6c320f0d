"""A spec file -> the list of runs -> executed by a runner (local process pool or Ray), resumable.

:mod:`.spec` parses and checks a TOML spec; :mod:`.preflight` checks the data and models
before anything trains; :mod:`.execute` trains a run (or a group of seeds) and commits
it; :mod:`.runner` runs a whole sweep in a process pool and :mod:`.ray_runner` as Ray tasks.
"""

from .execute import RunOutcome, execute_run
from .preflight import preflight
from .runner import SweepResult, run_sweep
from .spec import RunSpec, SpecError, SweepSpec, load_spec, parse_spec

__all__ = ["RunOutcome", "RunSpec", "SpecError", "SweepResult", "SweepSpec", "execute_run",
           "load_spec", "parse_spec", "preflight", "run_sweep"]
