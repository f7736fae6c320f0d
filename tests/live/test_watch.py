"""deepmanifold watch: its JSON, its command (Ctrl-C), and its page in a real headless Chromium."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import urllib.request
from html.parser import HTMLParser

import numpy as np
import pytest
import torch

from deepmanifold.live import ReferencePicture, Watcher, forecast_run
from deepmanifold.live.watch import make_server
from deepmanifold.models import build_model
from deepmanifold.store import Store, StoreError
from deepmanifold.training import Recorder

from .conftest import sgd_steps, tree_hashes


def test_live_payload_places_live_and_committed_runs(reference_store, digits, tmp_path):
    ds, probes = digits
    before = tree_hashes(reference_store)
    Store(tmp_path / "mine")
    watcher = Watcher(tmp_path / "mine", reference=reference_store)
    assert watcher.live_payload()["runs"] == []
    ref = ReferencePicture(reference_store)
    torch.manual_seed(1)
    model = build_model("mlp", ds.input_shape, ds.n_classes, width=16)
    gen = torch.Generator().manual_seed(1)
    rec = Recorder(tmp_path / "mine", probes, {"arch": "mlp", "label": "mine"}, "mine", dataset=ds, reference=ref)
    seen = []
    for k in range(3):
        if k:
            sgd_steps(model, ds, 5, gen, lr=0.2)
        rec.checkpoint(model, 5 * k)
        seen.append(rec.latest()["test"])
        mine = watcher.live_payload()["runs"][0]
        assert mine["live"] and mine["status"] == "running" and mine["steps"] == [0, 5, 10][:k + 1]
        # The watcher places what the recorder placed, from the published files alone.
        np.testing.assert_allclose(mine["coords"][-1], rec.placements[-1].coords[:3], atol=1e-9)
        assert mine["progress"][-1] == pytest.approx(rec.placements[-1].progress)
        assert mine["test_acc"][-1] == pytest.approx(rec.placements[-1].accuracy)
        # Where it is heading: the forecast from the reference, on what was published so far.
        expected = forecast_run(ref, np.stack(seen), np.array(mine["steps"], dtype=float))  # no epochs: steps
        assert mine["forecast"]["final_test_acc"] == pytest.approx(expected.final_test_acc)
        assert mine["forecast"]["low"] <= mine["forecast"]["final_test_acc"] <= mine["forecast"]["high"]
    rec.close()
    (done,) = watcher.live_payload()["runs"]
    assert not done["live"] and done["status"] == "complete" and done["steps"] == [0, 5, 10]
    np.testing.assert_allclose(done["coords"], [p.coords[:3] for p in rec.placements], atol=1e-9)
    reference = watcher.reference_payload()
    assert reference["available"] and len(reference["runs"]) == 2 and len(reference["geodesic"]) == 41
    assert tree_hashes(reference_store) == before


def test_without_reference_the_picture_comes_with_the_first_committed_run(digits, tmp_path):
    ds, probes = digits
    Store(tmp_path / "s")
    before = tree_hashes(tmp_path / "s")
    watcher = Watcher(tmp_path / "s")
    assert watcher.reference is None and not watcher.reference_payload()["available"]
    assert tree_hashes(tmp_path / "s") == before  # watching writes nothing
    model = build_model("mlp", ds.input_shape, ds.n_classes, width=16)
    rec = Recorder(tmp_path / "s", probes, {"arch": "mlp"}, "first", dataset=ds)
    rec.checkpoint(model, 0)
    (run,) = watcher.live_payload()["runs"]
    assert run["coords"] is None and run["progress"][0] == pytest.approx(0.0, abs=0.05)  # no picture yet
    rec.checkpoint(model, 1)
    rec.close()
    payload = watcher.live_payload()
    assert watcher.reference is not None and payload["version"] == 1
    assert payload["runs"] == []  # the committed run is the picture itself now
    assert [r["run_id"] for r in watcher.reference_payload()["runs"]] == ["first"]


@pytest.mark.filterwarnings("ignore:left out of the picture")
def test_watch_refuses_what_is_not_a_store(tmp_path, reference_store):
    with pytest.raises(StoreError, match="not a deepmanifold store"):
        Watcher(tmp_path / "none")
    assert not (tmp_path / "none").exists()
    Store(tmp_path / "s")
    with pytest.raises(ValueError, match="no complete run with predictions on probe set 'valid'"):
        Watcher(tmp_path / "s", reference=reference_store, probe="valid")


def test_the_command_serves_and_stops_cleanly_on_ctrl_c(reference_store, tmp_path):
    before = tree_hashes(reference_store)
    proc = subprocess.Popen([sys.executable, "-m", "deepmanifold.cli", "watch", str(reference_store), "--port", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "COLUMNS": "300"})
    try:
        line = proc.stdout.readline()
        url = re.search(r"http://[\d.]+:\d+/", line).group(0)
        assert "over the picture of" in line and "(2 runs)" in line
        page = urllib.request.urlopen(url, timeout=30).read().decode()
        assert "Plotly" in page and "dm-watch-status" in page and "https://" not in page.split("<script>")[0]
        live = json.loads(urllib.request.urlopen(url + "live.json", timeout=30).read())
        assert live["runs"] == [] and live["polls"] == 1
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert "watch stopped after 1 updates" in out and "Traceback" not in err
    assert tree_hashes(reference_store) == before


# ----------------------------------------------------------------------------- in the browser
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--no-first-run", "--disable-quic", "--disable-component-update", "--disable-sync",
                  "--use-angle=swiftshader", "--enable-unsafe-swiftshader", "--virtual-time-budget=8000")


class _Status(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.status: dict = {}
        self.rows: list[dict] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if attrs.get("id") == "dm-watch-status":
            self.status = attrs
        if tag == "tr" and "data-run-id" in attrs:
            self.rows.append(attrs)


class _Stepped(Watcher):
    """Poll n of the page is answered once the training loop has published n checkpoints, and the loop
    publishes checkpoint n + 1 only after poll n is answered: one page load sees the run grow one
    checkpoint per poll."""

    def __init__(self, *args, total: int, **kwargs):
        super().__init__(*args, **kwargs)
        self.total = total
        self.published = 0
        self.cond = threading.Condition()
        self.served: list[int] = []  # live checkpoints in each answer

    def live_payload(self):
        with self.cond:
            wanted = min(len(self.served) + 1, self.total)
            self.cond.wait_for(lambda: self.published >= wanted, timeout=30)
        payload = super().live_payload()
        with self.cond:
            self.served.append(payload["checkpoints"])
            self.cond.notify_all()
        return payload


@pytest.mark.browser
def test_the_page_shows_checkpoints_as_they_arrive_without_a_reload(reference_store, digits, tmp_path):
    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.skip("chromium not found: apt-get install chromium")
    ds, probes = digits
    total = 6
    Store(tmp_path / "mine")
    watcher = _Stepped(tmp_path / "mine", reference=reference_store, total=total)
    server = make_server(watcher, port=0, interval=0.2)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/"

    def train() -> None:  # a real run: one checkpoint each time the page asks
        torch.manual_seed(2)
        model = build_model("mlp", ds.input_shape, ds.n_classes, width=16)
        gen = torch.Generator().manual_seed(2)
        rec = Recorder(tmp_path / "mine", probes, {"arch": "mlp", "label": "live mlp"}, "live", dataset=ds)
        for k in range(total):
            with watcher.cond:
                watcher.cond.wait_for(lambda: len(watcher.served) >= k, timeout=30)
            if k:
                sgd_steps(model, ds, 10, gen, lr=0.2)
            rec.checkpoint(model, 10 * k)
            with watcher.cond:
                watcher.published = k + 1
                watcher.cond.notify_all()
        # Left in flight (not closed): the page shows it running.

    trainer = threading.Thread(target=train, daemon=True)
    trainer.start()
    try:
        proc = subprocess.run([chromium, *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}",
                               "--window-size=1400,1000", "--dump-dom", url],
                              capture_output=True, text=True, timeout=120)
    finally:
        server.shutdown()
        server.server_close()
    trainer.join(timeout=60)
    assert proc.returncode == 0, proc.stderr[-3000:]
    parsed = _Status()
    parsed.feed(proc.stdout)
    status = parsed.status
    assert status.get("data-state") == "live", proc.stdout[:2000]
    assert int(status["data-polls"]) >= total
    # One page load saw the run grow checkpoint by checkpoint.
    assert watcher.served[:total] == list(range(1, total + 1))
    assert status["data-checkpoints"] == str(total)
    assert status["data-placed"] == "1" and status["data-reference"] == "2"  # drawn over the reference
    (row,) = parsed.rows
    assert row["data-run-id"] == "live" and row["data-checkpoints"] == str(total)


def test_watching_a_store_while_a_sweep_writes_it(reference_store, tmp_path):
    """Every answer is consistent (each run's columns the same length, only complete checkpoints), and
    the sweep's runs end up shown as committed, placed in the reference."""
    from deepmanifold.sweeps import load_spec, run_sweep

    spec = tmp_path / "spec.toml"
    spec.write_text((reference_store.parent / "spec.toml").read_text().replace("seed = [0, 1]", "seed = [2, 3]")
                    .replace("epochs = 2", "epochs = 4"))
    Store(tmp_path / "s")
    watcher = Watcher(tmp_path / "s", reference=reference_store)
    sweep = threading.Thread(target=run_sweep, args=(load_spec(spec),),
                             kwargs=dict(store=tmp_path / "s", workers=1, device="cpu"))
    sweep.start()
    while sweep.is_alive():
        for run in watcher.live_payload()["runs"]:
            k = len(run["steps"])
            assert len(run["progress"]) == len(run["test_acc"]) == len(run["epochs"]) == k
            assert run["coords"] is None or len(run["coords"]) == k
    sweep.join()
    runs = watcher.live_payload()["runs"]
    assert sorted(r["status"] for r in runs) == ["complete", "complete"] and not any(r["live"] for r in runs)
    assert all(len(r["coords"]) == 6 for r in runs)
    assert watcher.polls > 1
