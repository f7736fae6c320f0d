"""The Ray runner on a local 2-CPU Ray instance: same store contents as the process pool."""

import numpy as np
import pytest

from deepmanifold.store import Store
from deepmanifold.sweeps import parse_spec, run_sweep

pytestmark = pytest.mark.slow

RAW = {
    "data": {"name": "digits", "probe_train": 60, "probe_test": 50},
    "train": {"epochs": 1, "batch_size": 64, "checkpoints": 4},
    "grid": {"arch": ["mlp"], "optimizer": ["sgd", "adam"], "seed": [0]},
    "arch": {"mlp": {"width": 16}},
    "optimizer": {"sgd": {"lr": 0.1, "momentum": 0.9}, "adam": {"lr": 1e-3}},
}


def test_ray_runner_commits_the_same_runs_as_the_process_pool(tmp_path):
    pytest.importorskip("ray")
    spec = parse_spec(RAW)
    seen = []
    result = run_sweep(spec, store=tmp_path / "ray", workers=2, runner="ray", on_outcome=seen.append)
    assert result.count("complete") == 2 and len(seen) == 2
    local = run_sweep(spec, store=tmp_path / "local", workers=1)
    assert local.count("complete") == 2
    a, b = Store(tmp_path / "ray", create=False), Store(tmp_path / "local", create=False)
    assert a.run_ids() == b.run_ids() == sorted(r.run_id for r in spec.runs)
    for run_id in a.run_ids():
        # Training is deterministic on CPU: a Ray worker records what a local process records.
        np.testing.assert_array_equal(np.asarray(a.logp(run_id, "test")), np.asarray(b.logp(run_id, "test")))
    again = run_sweep(spec, store=tmp_path / "ray", workers=2, runner="ray")
    assert again.count("skipped") == 2  # resumable: nothing is trained twice


def test_unknown_runner_is_refused(tmp_path):
    with pytest.raises(ValueError, match="unknown runner 'slurm'"):
        run_sweep(parse_spec(RAW), store=tmp_path / "s", runner="slurm")
    assert not (tmp_path / "s").exists()
