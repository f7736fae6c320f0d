"""Random damage to a real store: readers name it and go on, the next sweep repairs it, nothing else changes."""

import hashlib
import random

import numpy as np
import pytest
from typer.testing import CliRunner

from deepmanifold import cli
from deepmanifold.store import Store
from deepmanifold.sweeps import parse_spec, run_sweep

pytestmark = pytest.mark.slow

RAW = {
    "data": {"name": "digits", "probe_train": 60, "probe_test": 50},
    "train": {"epochs": 1, "batch_size": 64, "checkpoints": 4},
    "grid": {"arch": ["mlp"], "optimizer": ["sgd", "adam"], "seed": [0, 1, 2]},
    "arch": {"mlp": {"width": 16}},
    "optimizer": {"sgd": {"lr": 0.1, "momentum": 0.9}, "adam": {"lr": 1e-3}},
}


def _truncate(path, rng):
    data = path.read_bytes()
    path.write_bytes(data[:rng.randrange(len(data))])


def _random_bytes(path, rng):
    path.write_bytes(bytes(rng.randrange(256) for _ in range(rng.randrange(1, 300))))


def _flip_a_byte(path, rng):
    data = bytearray(path.read_bytes())
    i = rng.randrange(len(data) // 2, len(data))  # in the data, past any header
    data[i] ^= 1 << rng.randrange(8)
    path.write_bytes(bytes(data))


MODES = {"truncated": _truncate, "deleted": lambda path, rng: path.unlink(), "garbage": _random_bytes,
         "one bit flipped": _flip_a_byte}
RUN_FILES = ("run.json", "metrics.csv", "logp_test.npy", "logp_train.npy")


def _fingerprint(folder):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def _cli(*args):
    result = CliRunner().invoke(cli.app, [str(a) for a in args])
    assert "Traceback" not in result.output, result.output
    return result


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_random_damage_is_named_survived_and_repaired(tmp_path, seed):
    rng = random.Random(seed)
    spec = parse_spec(RAW)
    root = tmp_path / "store"
    assert run_sweep(spec, store=root, workers=1).count("complete") == 6
    store = Store(root)
    ids = store.run_ids()
    before = {run_id: _fingerprint(store.run_dir(run_id)) for run_id in ids}
    predictions = {run_id: store.logp(run_id, "test").copy() for run_id in ids}

    # Damage two or three runs, one file each, in a random way.
    damaged = {run_id: (rng.choice(RUN_FILES), rng.choice(sorted(MODES))) for run_id in rng.sample(ids, rng.randint(2, 3))}
    for run_id, (name, mode) in damaged.items():
        MODES[mode](store.run_dir(run_id) / name, rng)
    if rng.random() < 0.5:
        _random_bytes(root / "catalog.jsonl", rng)  # the index is a cache: rebuilt

    listing = _cli("runs", root)
    assert listing.exit_code == 0, listing.output
    for run_id in ids:
        named = f"damaged: {run_id}" in listing.output
        assert named == (run_id in damaged), (run_id, damaged.get(run_id), listing.output)
    for command in (("report", root), ("analyze", root)):
        result = _cli(*command)
        assert result.exit_code == 0, (command, damaged, result.output)
        for run_id in damaged:
            assert result.output.count(run_id) == 1  # named once
    # A probe file damaged too: no run can be drawn on that probe set, and the report says why.
    probe_file = rng.choice(sorted((root / "probes").iterdir()))
    MODES[rng.choice(["truncated", "deleted", "garbage"])](probe_file, rng)
    result = _cli("report", root)
    assert result.exit_code in (0, 2) and probe_file.stem in result.output  # 2: it was the main (test) probe

    notes = []
    result = run_sweep(spec, store=root, workers=1, on_note=notes.append)
    retrained = sorted(o.run_id for o in result.outcomes if o.status == "complete")
    assert retrained == sorted(damaged) and len(notes) == len(damaged)
    assert store.run_ids() == ids and len(store.catalog(on_error="raise")) == 6
    for run_id in ids:
        np.testing.assert_array_equal(store.logp(run_id, "test"), predictions[run_id])  # the same runs again
        if run_id not in damaged:
            assert _fingerprint(store.run_dir(run_id)) == before[run_id]  # untouched, byte for byte
    assert _cli("report", root).exit_code == 0 and _cli("analyze", root).exit_code == 0
