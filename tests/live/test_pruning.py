"""Successive halving: its schedule and compute by hand, a score that knows the answer, and the replay example."""

import math
import runpy
import sys
from pathlib import Path

import pytest

from deepmanifold.live.pruning import successive_halving

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "pruning_replay.py"


def test_schedule_and_compute_by_hand():
    runs = [f"r{i}" for i in range(9)]
    final = {r: i for i, r in enumerate(runs)}  # r8 is the best
    result = successive_halving(runs, [1 / 9, 1 / 3, 1.0], 3, lambda r, f: final[r])
    assert result.survivors == [runs, ["r8", "r7", "r6"], ["r8"]]
    assert result.chosen == "r8"
    assert result.compute == pytest.approx((6 / 9 + 2 / 3 + 1.0) / 9)  # 6 runs to 1/9, 2 to 1/3, 1 to the end
    # A score that misleads early (the best starts last) loses the best run at the first rung.
    late = successive_halving(runs, [1 / 9, 1 / 3, 1.0], 3, lambda r, f: final[r] if f == 1 else -final[r])
    assert late.chosen != "r8" and "r8" not in late.survivors[1]
    assert math.isclose(late.compute, result.compute)
    with pytest.raises(ValueError, match="eta must be a number > 1"):
        successive_halving(runs, [0.5, 1.0], 1, lambda r, f: 0.0)
    with pytest.raises(ValueError, match="rungs must increase"):
        successive_halving(runs, [0.5, 0.2], 2, lambda r, f: 0.0)


def test_the_replay_example_compares_the_two_rules(reference_store, monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["pruning_replay.py", str(reference_store), "--rungs", "0.5", "1", "--eta", "2",
                                      "--hold-out", "run"])
    runpy.run_path(str(EXAMPLE), run_name="__main__")
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if line.startswith("| 2 |"))
    assert row.split("|")[2].strip() == "0.750"  # both runs to half, one to the end


def test_asha_keeps_the_top_third_of_the_runs_recorded_at_a_rung():
    from deepmanifold.live.pruning import asha_continues

    recorded = [float(v) for v in range(1, 10)]  # the (1 − 1/3) quantile of 1..9 is 1 + 8·2/3 = 6.33
    assert [v for v in recorded if asha_continues(v, recorded, 3)] == [7.0, 8.0, 9.0]
    assert asha_continues(0.1, [0.1], 3)  # the first run at a rung goes on
    assert not asha_continues(math.nan, [0.5, math.nan], 2) and asha_continues(0.5, [0.5, math.nan], 2)
    assert [asha_continues(v, [1.0, 2.0, 3.0, 4.0], 2) for v in (2.0, 3.0)] == [False, True]  # median 2.5
    from deepmanifold.live.pruning import asha_cutoff

    assert asha_cutoff([1.0, 2.0, 3.0, 4.0, math.nan], 2) == 2.5 and math.isnan(asha_cutoff([math.inf], 2))


def test_pruning_settings_default_their_rungs_and_refuse_bad_values():
    from deepmanifold.live.pruning import Pruning

    assert Pruning(eta=3).rungs == pytest.approx((1 / 9, 1 / 3))
    assert Pruning(eta=2).key != Pruning(eta=3).key and Pruning(eta=2).key == Pruning(eta=2.0).key
    for table, message in (({"rule": "loss"}, "rule must be one of"), ({"eta": 1}, "eta must be a number > 1"),
                           ({"rungs": [0.3, 1.0]}, "rungs must increase within"),
                           ({"rungs": [0.5, 0.2]}, "rungs must increase within"),
                           ({"rule": "forecast"}, "needs a reference store"),
                           ({"reference": "x"}, "takes no reference"), ({"k": 0}, "k must be an integer"),
                           ({"speed": 2}, r"unknown key\(s\) in \[prune\]: \['speed'\]")):
        with pytest.raises(ValueError, match=message):
            Pruning.from_mapping(table)


def _report_many(root, worker, queue):
    from deepmanifold.store.rungs import RungLedger

    ledger = RungLedger(root, "k")
    for i in range(25):
        ledger.report(f"w{worker}-r{i}", i % 2, float(i))
    queue.put(worker)


def test_the_rung_ledger_keeps_every_report_of_concurrent_processes(tmp_path):
    import multiprocessing

    from deepmanifold.store.rungs import RungLedger

    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    procs = [ctx.Process(target=_report_many, args=(str(tmp_path), w, queue)) for w in range(4)]
    for p in procs:
        p.start()
    assert sorted(queue.get(timeout=120) for _ in procs) == [0, 1, 2, 3]
    for p in procs:
        p.join(30)
    ledger = RungLedger(tmp_path, "k")
    assert len(ledger.scores(0)) == 4 * 13 and len(ledger.scores(1)) == 4 * 12  # nothing lost to a race
    assert ledger.scores(1)["w2-r3"] == 3.0
    assert ledger.report("w2-r3", 1, 7.5)["w2-r3"] == 7.5 and len(ledger.scores(1)) == 48  # a run again replaces
    assert math.isnan(ledger.report("bad", 0, math.inf)["bad"])
    ledger.path.write_text("{half")
    with pytest.raises(ValueError, match="is not JSON"):
        ledger.scores(0)
    with pytest.raises(ValueError, match="a ledger key is"):
        RungLedger(tmp_path, "../up")


def test_asynchronous_halving_by_hand():
    from deepmanifold.live.pruning import asynchronous_halving

    final = {"a": 3.0, "b": 1.0, "c": 2.0, "d": 4.0}
    result = asynchronous_halving(["a", "b", "c", "d"], [0.5], 2, lambda r, f: final[r])
    # a: alone, goes on; b: median of (3, 1) is 2 > 1, stops; c: median of (3, 1, 2) is 2, goes on; d goes on.
    assert result.survivors == [["a", "b", "c", "d"], ["a", "c", "d"]]
    assert result.reached == {"a": 1.0, "b": 0.5, "c": 1.0, "d": 1.0}
    assert result.compute == pytest.approx(3.5 / 4) and result.chosen == "d"
    worst_first = asynchronous_halving(["b", "c", "a", "d"], [0.5], 2, lambda r, f: final[r])
    assert worst_first.reached == {"b": 1.0, "c": 1.0, "a": 1.0, "d": 1.0}  # each beats the median before it
    with pytest.raises(ValueError, match=r"rungs must increase within \(0, 1\)"):
        asynchronous_halving(["a"], [0.5, 1.0], 2, lambda r, f: 0.0)
