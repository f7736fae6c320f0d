"""The Ray Tune scheduler: its decisions replayed by hand, a real Tuner run, and the forecast rule on stored runs."""

from __future__ import annotations

import math
import random
from types import SimpleNamespace

import numpy as np
import pytest

pytest.importorskip("ray.tune")

from deepmanifold.live.pruning import Pruning  # noqa: E402
from deepmanifold.live.tune import ProgressScheduler  # noqa: E402
from ray.tune.schedulers import FIFOScheduler, TrialScheduler  # noqa: E402


def trial(trial_id: str) -> SimpleNamespace:
    """All the scheduler reads of a Tune ``Trial`` (and it never reads the controller, passed as None)."""
    return SimpleNamespace(trial_id=trial_id)


def replay(events, rungs, eta):
    """The decisions of ASHA's rule over ``events`` (trial, fraction, score), computed here from scratch.

    A trial is judged at the first of its results at or past each rung; it goes on iff its
    score is at least the (1 − 1/η) quantile (linear interpolation) of the scores recorded at
    the rung so far, its own included; a stopped trial reports nothing more.
    """
    recorded = [{} for _ in rungs]
    last, stopped, out = {}, set(), []
    for trial_id, fraction, score in events:
        if trial_id in stopped:
            continue
        for i, rung in enumerate(rungs):
            if last.get(trial_id, 0.0) < rung <= fraction:
                recorded[i][trial_id] = score
                values = sorted(recorded[i].values())
                pos = (len(values) - 1) * (1 - 1 / eta)  # numpy's default "linear" quantile, by hand
                lo = math.floor(pos)
                cutoff = values[lo] + (pos - lo) * (values[min(lo + 1, len(values) - 1)] - values[lo])
                go_on = score >= cutoff
                out.append((trial_id, i, score, "continue" if go_on else "stop"))
                if not go_on:
                    stopped.add(trial_id)
                    break
        last[trial_id] = fraction
    return out


def test_decisions_match_a_replay_of_asha_and_plant_a_stop_and_a_continue():
    pruning = Pruning(eta=3, rungs=(0.25, 0.5))
    finals = {f"t{i}": a for i, a in enumerate([0.6, 0.95, 0.3, 0.7, 0.45, 0.8, 0.5, 0.65, 0.05])}
    best, worst = "t1", "t8"
    steps = [k / 8 for k in range(1, 9)]  # rung 0.25 is judged at 2/8, rung 0.5 at 4/8
    # Eight trials advance in a shuffled interleaving; the worst starts once they are all past the rungs.
    rng = random.Random(0)
    pending = {t: list(steps) for t in finals if t != worst}
    order = []
    while pending:
        t = rng.choice(sorted(pending))
        order.append(t)
        pending[t].pop(0)
        if not pending[t]:
            del pending[t]
    order += [worst] * len(steps)
    scheduler = ProgressScheduler(pruning)
    assert isinstance(scheduler, FIFOScheduler) and scheduler.metric == "test_acc"
    position, events, returned = {t: 0 for t in finals}, [], {}
    for t in order:
        if returned.get(t) == TrialScheduler.STOP:
            continue  # Tune sends nothing more from a stopped trial
        f = steps[position[t]]
        position[t] += 1
        events.append((t, f, finals[t] * math.sqrt(f)))
        returned[t] = scheduler.on_trial_result(None, trial(t), {"fraction": f, "test_acc": finals[t] * math.sqrt(f)})
        assert returned[t] in (TrialScheduler.CONTINUE, TrialScheduler.STOP)
    expected = replay(events, pruning.rungs, pruning.eta)
    assert [d[:2] + d[3:] for d in scheduler.decisions] == [d[:2] + d[3:] for d in expected]
    np.testing.assert_allclose([d[2] for d in scheduler.decisions], [d[2] for d in expected], rtol=0, atol=1e-15)
    stopped = {d[0] for d in expected if d[3] == "stop"}
    assert {t for t, r in returned.items() if r == TrialScheduler.STOP} == stopped
    # The worst, judged after eight others at the first rung, is stopped there; the best never is.
    assert [d for d in scheduler.decisions if d[0] == worst] == [(worst, 0, pytest.approx(0.05 * 0.5), "stop")]
    assert [(d[1], d[3]) for d in scheduler.decisions if d[0] == best] == [(0, "continue"), (1, "continue")]
    assert position[best] == len(steps) and best not in stopped and worst in stopped
    n0 = sum(d[1] == 0 for d in expected)
    n1 = sum(d[1] == 1 for d in expected)
    s0 = sum(d[1] == 0 and d[3] == "stop" for d in expected)
    s1 = sum(d[1] == 1 and d[3] == "stop" for d in expected)
    assert (f"rung 1 (25% of training): {s0} of {n0} stopped, rung 2 (50% of training): {s1} of {n1} stopped"
            in scheduler.debug_string())
    # Their progress is forgotten when they end; the scores recorded at the rungs stay.
    for t in finals:
        scheduler.on_trial_complete(None, trial(t), {})
    assert scheduler._trials == {}
    late = scheduler.on_trial_result(None, trial("late"), {"fraction": 0.25, "test_acc": 0.01})
    assert late == TrialScheduler.STOP and scheduler.decisions[-1][3] == "stop"


def test_a_restarted_trial_is_judged_again_and_a_repeated_result_is_not():
    scheduler = ProgressScheduler(Pruning(eta=2, rungs=(0.3, 0.6)))
    a, b = trial("a"), trial("b")
    for f in (0.2, 0.4, 0.7):
        assert scheduler.on_trial_result(None, a, {"fraction": f, "test_acc": 0.9}) == TrialScheduler.CONTINUE
    assert scheduler.on_trial_result(None, a, {"fraction": 0.7, "test_acc": 0.9}) == TrialScheduler.CONTINUE
    assert len(scheduler.decisions) == 2  # Tune repeats the last result when a trial ends: not judged twice
    assert scheduler.on_trial_result(None, b, {"fraction": 0.4, "test_acc": 0.5}) == TrialScheduler.STOP
    # "a" restarts from a checkpoint at 0.2 (after a failure): rung 1 is judged again, its score replaced.
    assert scheduler.on_trial_result(None, a, {"fraction": 0.2, "test_acc": 0.1}) == TrialScheduler.CONTINUE
    assert scheduler.on_trial_result(None, a, {"fraction": 0.4, "test_acc": 0.2}) == TrialScheduler.STOP
    assert scheduler.decisions[-1] == ("a", 0, 0.2, "stop")  # against b's 0.5 alone: a's replaced score is gone
    assert "rung 1 (30% of training): 2 of 2 stopped" in scheduler.debug_string()
    # A restart whose first result is already past a rung is judged there too.
    x = ProgressScheduler(Pruning(eta=2, rungs=(0.3, 0.6)))
    for f in (0.2, 0.4, 0.7, 0.4):
        x.on_trial_result(None, trial("x"), {"fraction": f, "test_acc": f})
    assert [d[:3] for d in x.decisions] == [("x", 0, 0.4), ("x", 1, 0.7), ("x", 0, 0.4)]
    # The forecast rule's history is rewound with it (its epochs increase again from the restart).
    y = ProgressScheduler(Pruning(rule="forecast", reference="/nowhere/store", rungs=(0.3, 0.6)))
    for f, epoch in ((0.1, 1.0), (0.2, 2.0), (0.1, 1.0), (0.15, 1.5)):
        assert y.on_trial_result(None, trial("y"), {"fraction": f, "epoch": epoch, "logp": np.full((4, 3), epoch)}) \
            == TrialScheduler.CONTINUE
    assert y._trials["y"].epochs == [1.0, 1.5] and [lp[0, 0] for lp in y._trials["y"].logp] == [1.0, 1.5]
    # A result past two rungs at once is judged at both with the same score.
    c = ProgressScheduler(Pruning(eta=2, rungs=(0.3, 0.6)))
    assert c.on_trial_result(None, trial("c"), {"fraction": 1.0, "test_acc": 0.4}) == TrialScheduler.CONTINUE
    assert c.decisions == [("c", 0, 0.4, "continue"), ("c", 1, 0.4, "continue")]


def test_missing_keys_bad_values_and_search_properties_are_refused():
    scheduler = ProgressScheduler(Pruning(eta=3))
    with pytest.raises(ValueError, match=r"trial t7 .*without 'test_acc'"):
        scheduler.on_trial_result(None, trial("t7"), {"fraction": 0.5})
    with pytest.raises(ValueError, match=r"trial t7 .*without 'fraction'"):
        scheduler.on_trial_result(None, trial("t7"), {"test_acc": 0.5})
    for bad in (0.0, 1.5, math.nan, "half", True):
        with pytest.raises(ValueError, match=r"'fraction' must be the fraction of its training done"):
            scheduler.on_trial_result(None, trial("t7"), {"fraction": bad, "test_acc": 0.5})
    with pytest.raises(ValueError, match="'test_acc' must be a number"):
        scheduler.on_trial_result(None, trial("t7"), {"fraction": 0.5, "test_acc": None})
    assert scheduler.decisions == [] and scheduler._trials == {}  # a refused result changes nothing
    assert scheduler.on_trial_result(None, trial("t8"), {"done": True}) == TrialScheduler.CONTINUE  # nothing to judge
    # The forecast rule needs logp and epoch in every result (the reference is read only to score).
    forecast = ProgressScheduler(Pruning(rule="forecast", reference="/nowhere/store"), time_attr="progress")
    assert forecast.metric is None  # it reads no accuracy, so Tune is not told to check for one
    with pytest.raises(ValueError, match=r"trial f1 .*without 'logp'"):
        forecast.on_trial_result(None, trial("f1"), {"progress": 0.05, "epoch": 0.1})
    with pytest.raises(ValueError, match=r"trial f1 .*without 'epoch'"):
        forecast.on_trial_result(None, trial("f1"), {"progress": 0.05, "logp": np.zeros((4, 3))})
    with pytest.raises(ValueError, match=r"'logp' must be \(n, C\)"):
        forecast.on_trial_result(None, trial("f1"), {"progress": 0.05, "epoch": 0.1, "logp": np.zeros(4)})
    assert forecast.on_trial_result(None, trial("f1"), {"progress": 0.05, "epoch": 0.1, "logp": np.zeros((4, 3))}) \
        == TrialScheduler.CONTINUE
    with pytest.raises(ValueError, match="'epoch' must increase"):
        forecast.on_trial_result(None, trial("f1"), {"progress": 0.06, "epoch": 0.1, "logp": np.zeros((4, 3))})
    assert forecast.decisions == [] and forecast._trials["f1"].epochs == [0.1]
    # Tune's metric and mode.
    assert scheduler.set_search_properties(None, None) and scheduler.set_search_properties("test_acc", "max")
    with pytest.raises(ValueError, match="mode 'max'.*got mode 'min'"):
        scheduler.set_search_properties("test_acc", "min")
    with pytest.raises(ValueError, match="prunes on 'test_acc'.*metric 'loss'"):
        scheduler.set_search_properties("loss", "max")
    assert forecast.set_search_properties("final_acc", "max")
    with pytest.raises(ValueError, match="must be a Pruning"):
        ProgressScheduler({"rule": "accuracy"})


def test_the_forecast_rule_scores_the_history_by_forecast_run(reference_store, monkeypatch):
    from deepmanifold.live import forecast as forecast_module
    from deepmanifold.live import reference as reference_module
    from deepmanifold.live.forecast import forecast_run
    from deepmanifold.live.reference import ReferencePicture
    from deepmanifold.store import Store

    store = Store(reference_store, read_only=True)
    runs = store.run_ids()
    logp = {r: np.asarray(store.logp(r, "test")) for r in runs}
    epochs = {r: store.metrics(r)["epoch"] for r in runs}
    K = len(epochs[runs[0]])
    assert K >= 5 and all(len(epochs[r]) == K and len(logp[r]) == K for r in runs)
    # Spy on what the scheduler forecasts from, and count the reference pictures it builds.
    calls, built = [], []

    def spy(ref, lp, e, **kw):
        calls.append((np.array(lp), np.array(e), kw))
        return forecast_run(ref, lp, e, **kw)

    monkeypatch.setattr(forecast_module, "forecast_run", spy)
    monkeypatch.setattr(reference_module, "ReferencePicture",
                        lambda *a, **kw: built.append((a, kw)) or ReferencePicture(*a, **kw))
    pruning = Pruning(rule="forecast", reference=str(reference_store), eta=2, rungs=(0.3, 0.6), k=1)
    scheduler = ProgressScheduler(pruning)
    stopped = set()
    for j in range(K):  # both trials replay a stored run, checkpoint by checkpoint, until stopped
        for n, r in enumerate(runs):
            if r in stopped:
                continue
            lp = logp[r][j].tolist() if n else logp[r][j]  # a nested list is accepted as well as an array
            result = {"fraction": (j + 1) / K, "epoch": float(epochs[r][j]), "logp": lp}
            if scheduler.on_trial_result(None, trial(r), result) == TrialScheduler.STOP:
                stopped.add(r)
    assert built == [((str(reference_store),), {"probe": "test"})]  # built once, on first use
    judged = [(d[0], d[1]) for d in scheduler.decisions]
    assert {(r, i) for r in runs for i in (0, 1)} >= set(judged) and judged[:2] == [(runs[0], 0), (runs[1], 0)]
    reference = ReferencePicture(reference_store)
    for (trial_id, rung, score, _), (lp, e, kw) in zip(scheduler.decisions, calls):
        seen = math.ceil(pruning.rungs[rung] * K - 1e-9)  # results up to the first at or past the rung
        np.testing.assert_array_equal(lp, logp[trial_id][:seen])  # the whole history, not the last checkpoint
        np.testing.assert_array_equal(e, epochs[trial_id][:seen])
        assert kw == {"k": 1}
        direct = forecast_run(reference, logp[trial_id][:seen], epochs[trial_id][:seen], k=1).final_test_acc
        assert score == pytest.approx(direct, abs=1e-12, rel=0)
    assert len(calls) == len(scheduler.decisions) >= 3  # both rungs, both trials at the first
    for r in runs:
        scheduler.on_trial_complete(None, trial(r), {})
    assert scheduler._trials == {}


@pytest.mark.slow
def test_a_tuner_run_stops_trials_by_the_rule(tmp_path):
    import ray
    from ray import tune

    pruning = Pruning(eta=3, rungs=(0.15, 0.35))
    # Good and bad configs alternate, so that bad ones meet good scores recorded before them.
    finals = [0.8, 0.1, 0.7, 0.2, 0.6, 0.3, 0.5, 0.4]

    def train(config):
        for step in range(1, 11):
            f = step / 10
            tune.report({"fraction": f, "test_acc": config["a"] * f ** 0.5})

    scheduler = ProgressScheduler(pruning)
    started = not ray.is_initialized()
    if started:
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        tuner = tune.Tuner(train, param_space={"a": tune.grid_search(finals)},
                           tune_config=tune.TuneConfig(scheduler=scheduler, metric="test_acc", mode="max",
                                                       reuse_actors=True),
                           run_config=tune.RunConfig(storage_path=str(tmp_path), name="tune", verbose=0))
        grid = tuner.fit()
    finally:
        if started:
            ray.shutdown()
    assert not grid.errors and len(grid) == len(finals)
    by_id = {r.metrics["trial_id"]: r for r in grid}
    a = {t: r.config["a"] for t, r in by_id.items()}
    last = {t: r.metrics["fraction"] for t, r in by_id.items()}
    decisions = scheduler.decisions
    # The decisions are ASHA's rule over the scores in the order the scheduler saw them...
    events = [(t, pruning.rungs[i], s) for t, i, s, _ in decisions]
    assert [d[:2] + d[3:] for d in replay(events, pruning.rungs, pruning.eta)] == [d[:2] + d[3:] for d in decisions]
    # ...and each score is the trial's accuracy at its first result at or past the rung.
    first = {i: min(k / 10 for k in range(1, 11) if k / 10 >= rung) for i, rung in enumerate(pruning.rungs)}
    for t, i, s, _ in decisions:
        assert s == pytest.approx(a[t] * first[i] ** 0.5, abs=1e-12)
    stopped = {t for t, _, _, d in decisions if d == "stop"}
    assert stopped == {t for t, f in last.items() if f < 1} and len(stopped) >= 1
    for t in stopped:  # stopped at the first result at or past the rung that stopped it
        rung = next(i for u, i, _, d in decisions if u == t and d == "stop")
        assert last[t] == pytest.approx(first[rung])
    for t, f in last.items():
        if f == 1:  # every finisher passed every rung
            assert [(i, d) for u, i, _, d in decisions if u == t] == [(0, "continue"), (1, "continue")]
    best = max(a, key=a.get)
    assert best not in stopped and grid.get_best_result().config["a"] == max(finals)
    assert "ProgressScheduler" in scheduler.debug_string()
