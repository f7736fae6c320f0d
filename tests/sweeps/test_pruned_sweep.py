"""Pruned sweeps: the runs stopped are those ASHA's rule stops, replayed from the same runs trained to the end."""

import math

import numpy as np
import pytest

from deepmanifold.live.pruning import Pruning, asha_continues
from deepmanifold.store import Store
from deepmanifold.store.rungs import RungLedger
from deepmanifold.sweeps import SpecError, parse_spec, run_sweep

pytestmark = pytest.mark.slow

# The best rate first: ASHA lets the first run at a rung through, so the order decides what is planted.
RATES = [0.1, 0.03, 0.01, 0.003, 0.001, 0.0003]
RAW = {
    "data": {"name": "digits", "probe_train": 60, "probe_test": 120},
    "train": {"epochs": 3, "batch_size": 64, "checkpoints": 10, "schedule": "constant"},
    "grid": {"arch": ["mlp"], "optimizer": ["sgd"], "lr": RATES, "seed": [0]},
    "arch": {"mlp": {"width": 16}},
    "optimizer": {"sgd": {"momentum": 0.9}},
}
PRUNE = {"eta": 2, "rungs": [0.2, 0.5], "order": "spec"}  # judged at steps 28 and 48 of 84


@pytest.fixture(scope="module")
def full(tmp_path_factory):
    """The same runs, every one trained to the end: what each would have scored at each rung."""
    root = tmp_path_factory.mktemp("full") / "store"
    assert run_sweep(parse_spec(RAW), store=root, workers=1, device="cpu").count("complete") == len(RATES)
    return root


def _replay(spec, full_root, score):
    """Each run's expected fate: the rungs it is judged at in training order and ASHA's decisions there."""
    from deepmanifold.live.pruning import training_order

    store = Store(full_root, read_only=True)
    recorded = [dict() for _ in spec.prune.rungs]
    fate = {}
    for run in training_order(spec.runs, spec.prune):
        steps = np.asarray(store.metrics(run.run_id)["step"])
        total = steps[-1]
        fate[run.run_id] = ("complete", len(steps))
        for i, rung in enumerate(spec.prune.rungs):
            k = int(np.argmax(steps >= rung * total))  # the first checkpoint at or past the rung
            if k == len(steps) - 1:
                break  # a run at its last checkpoint has finished: nothing left to save
            value = score(run.run_id, k)
            recorded[i][run.run_id] = value
            if not asha_continues(value, list(recorded[i].values()), spec.prune.eta):
                fate[run.run_id] = ("pruned", k + 1)
                break
    return fate, recorded


def _fates(root):
    store = Store(root, read_only=True)
    return {r: (store.record(r).status, len(store.metrics(r)["step"])) for r in store.run_ids()}


def test_the_runs_stopped_are_those_asha_stops_and_a_resume_trains_none_again(tmp_path, full):
    spec = parse_spec({**RAW, "prune": PRUNE})
    full_store = Store(full, read_only=True)
    expected, recorded = _replay(spec, full, lambda r, k: float(full_store.metrics(r)["test_acc"][k]))
    result = run_sweep(spec, store=tmp_path / "s", workers=1, device="cpu")
    assert _fates(tmp_path / "s") == expected
    by_rate = {run.config["lr"]: expected[run.run_id][0] for run in spec.runs}
    assert by_rate[0.1] == "complete" and by_rate[0.0003] == "pruned"  # planted: the best goes on, the worst stops
    assert result.count("pruned") == sum(s == "pruned" for s, _ in expected.values()) >= 2
    store = Store(tmp_path / "s")
    for run_id, (status, k) in expected.items():  # a pruned run keeps exactly what it recorded up to its rung
        np.testing.assert_array_equal(np.asarray(store.logp(run_id, "test")),
                                      np.asarray(full_store.logp(run_id, "test"))[:k])
        if status == "pruned":
            assert store.record(run_id).message.startswith("pruned at rung")
    ledger = RungLedger(tmp_path / "s", spec.prune.key)
    assert [ledger.scores(i) for i in range(2)] == recorded
    again = run_sweep(spec, store=tmp_path / "s", workers=1, device="cpu")
    assert again.count("skipped") == len(RATES)  # pruned runs are committed: not trained again
    from deepmanifold.analysis import build_picture

    n_pruned = sum(s == "pruned" for s, _ in expected.values())
    with pytest.warns(UserWarning, match=rf"left out of the picture: {n_pruned} run\(s\) stopped early") as caught:
        picture = build_picture(Store(tmp_path / "s", read_only=True))  # a forecast's reference: finished runs only
    assert sum("left out" in str(w.message) for w in caught) == 1
    assert sorted(r.run_id for r in picture.runs) == sorted(r for r, (s, _) in expected.items() if s == "complete")


def test_the_forecast_rule_scores_runs_by_the_reference_forecast(tmp_path, full):
    from deepmanifold.live import ReferencePicture, forecast_run

    spec = parse_spec({**RAW, "prune": {**PRUNE, "rule": "forecast", "reference": str(full), "k": 2}})
    reference = ReferencePicture(full)
    full_store = Store(full, read_only=True)

    def forecast(run_id, k):  # the run itself is in the reference (the same run id): left out
        logp = np.asarray(full_store.logp(run_id, "test"))[:k + 1]
        epochs = np.asarray(full_store.metrics(run_id)["epoch"])[:k + 1]
        return forecast_run(reference, logp, epochs, k=2, exclude=[run_id]).final_test_acc

    expected, recorded = _replay(spec, full, forecast)
    run_sweep(spec, store=tmp_path / "s", workers=1, device="cpu")
    assert _fates(tmp_path / "s") == expected
    ledger = RungLedger(tmp_path / "s", spec.prune.key)
    for i in range(2):
        got = ledger.scores(i)
        assert got.keys() == recorded[i].keys()
        assert all(math.isclose(got[r], recorded[i][r], abs_tol=1e-12) for r in got)


def test_a_reference_on_other_probes_is_refused_before_anything_trains(tmp_path, full):
    other = {**RAW, "data": {**RAW["data"], "probe_test": 100}}
    spec = parse_spec({**other, "prune": {**PRUNE, "rule": "forecast", "reference": str(full)}})
    with pytest.raises(SpecError, match=r"\[prune\] reference .* another 'test' probe set"):
        run_sweep(spec, store=tmp_path / "s", workers=1, device="cpu")
    assert not (tmp_path / "s").exists()
    missing = parse_spec({**RAW, "prune": {**PRUNE, "rule": "forecast", "reference": str(tmp_path / "none")}})
    with pytest.raises(SpecError, match=r"\[prune\] reference .*not a deepmanifold store"):
        run_sweep(missing, store=tmp_path / "s", workers=1, device="cpu")
    with pytest.raises(SpecError, match=r"\[prune\] probe 'val' is not a probe set of the runs"):
        run_sweep(parse_spec({**RAW, "prune": {**PRUNE, "probe": "val"}}), store=tmp_path / "s", workers=1)
    with pytest.raises(SpecError, match=r"\[prune\] eta must be a number > 1"):
        parse_spec({**RAW, "prune": {"eta": 0.5}})


def test_the_ray_runner_prunes_through_the_same_ledger(tmp_path):
    pytest.importorskip("ray")
    spec = parse_spec({**RAW, "prune": PRUNE})
    result = run_sweep(spec, store=tmp_path / "s", workers=2, runner="ray", device="cpu")
    assert result.count("complete") + result.count("pruned") == len(RATES) and result.count("pruned") >= 1
    ledger = RungLedger(tmp_path / "s", spec.prune.key)
    store = Store(tmp_path / "s", read_only=True)
    assert set(ledger.scores(0)) == set(store.run_ids())  # every run was judged at the first rung
    for run_id in store.run_ids():
        judged = [i for i in range(2) if run_id in ledger.scores(i)]
        if store.record(run_id).status == "pruned":  # stopped at the last rung it reported to
            assert f"rung {judged[-1] + 1} of 2" in store.record(run_id).message
        else:
            assert judged == [0, 1]


def test_pruning_is_part_of_the_spec_not_of_the_runs():
    plain, pruned = parse_spec(RAW), parse_spec({**RAW, "prune": PRUNE})
    assert [r.run_id for r in plain.runs] == [r.run_id for r in pruned.runs]  # the same runs, stopped or not
    assert plain.prune is None and pruned.prune == Pruning(eta=2, rungs=(0.2, 0.5), order="spec")


def test_a_shuffled_pruned_sweep_starts_its_runs_in_one_fixed_random_order(tmp_path, full):
    from deepmanifold.live.pruning import training_order

    spec = parse_spec({**RAW, "prune": {**PRUNE, "order": "shuffled"}})
    order = [r.run_id for r in training_order(spec.runs, spec.prune)]
    assert sorted(order) == sorted(r.run_id for r in spec.runs) and order != [r.run_id for r in spec.runs]
    assert order == [spec.runs[i].run_id for i in np.random.default_rng(0).permutation(len(RATES))]
    full_store = Store(full, read_only=True)
    expected, _ = _replay(spec, full, lambda r, k: float(full_store.metrics(r)["test_acc"][k]))
    started = []
    run_sweep(spec, store=tmp_path / "s", workers=1, device="cpu", on_outcome=lambda o: started.append(o.run_id))
    assert started == order and _fates(tmp_path / "s") == expected
    assert Pruning().order == "shuffled"  # the default
