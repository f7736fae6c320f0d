"""``deepmanifold watch``: a store's runs, live, over a reference picture, in the browser.

:class:`Watcher` reads a store (read-only: it never writes to it) and answers two
questions as JSON: what the reference picture is (:meth:`Watcher.reference_payload`,
computed once) and where every run stands now (:meth:`Watcher.live_payload`): the runs
in flight, as their recorders publish them (:mod:`deepmanifold.store.live`: only
checkpoints whose predictions are completely written), and the committed runs. Each
checkpoint is placed in the reference picture once (:class:`ReferencePicture`) and
kept, and each live run's end is forecast from the reference runs nearest to it at equal
progress (:func:`~deepmanifold.live.forecast_run`) whenever it has a new checkpoint. :func:`serve_watch` serves a page that draws the reference and polls the live
JSON, redrawing as checkpoints arrive, from a local HTTP server (Python's standard
library; the page holds plotly.js itself, so nothing is fetched from elsewhere).

The reference is another store's picture (``--reference``), or, without one, the
watched store's own committed runs when watching starts (runs committed later are
placed in it, so the picture stays still while it is watched). Without any committed
run there is no picture yet: progress and accuracy are still shown, and the picture
is built as soon as a run is committed.
"""

from __future__ import annotations

import json
import math
import os
import threading
import time
import warnings
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np

from deepmanifold import geometry
from deepmanifold.store import Store, StoreError
from deepmanifold.store.live import live_runs

from .forecast import forecast_run
from .reference import ReferencePicture

__all__ = ["Watcher", "serve_watch"]

_AXES = 3  # coordinates sent to the page


def _finite(values) -> list:
    """A JSON-ready list with NaN and infinities as null."""
    out = []
    for v in np.asarray(values, dtype=np.float64).tolist():
        out.append(v if isinstance(v, float) and math.isfinite(v) else None)
    return out


class Watcher:
    """What ``deepmanifold watch`` shows of a store (module docstring).

    Parameters
    ----------
    store : path-like
        The store to watch; opened read-only.
    reference : path-like or ReferencePicture, optional
        The reference picture, or its store; default: the watched store's own runs.
    probe : str, default "test"
        The probe set the picture compares.

    Raises
    ------
    StoreError
        ``store`` (or ``reference``) is not a deepmanifold store.
    ValueError
        The reference store has no run that can be embedded on ``probe``.
    """

    def __init__(self, store: str | os.PathLike, reference: str | os.PathLike | ReferencePicture | None = None,
                 *, probe: str = "test"):
        self.store = Store(store, read_only=True)
        self.probe = probe
        self._own_reference = reference is None
        self._lock = threading.Lock()
        self.version = 0  # bumped when the reference picture is (re)built
        self.polls = 0  # live payloads served
        self._placed: dict[tuple[str, int], dict] = {}  # (run id, checkpoint) -> placement, live runs
        self._committed: dict[str, dict] = {}  # run id -> placed run, committed runs
        self._labels: dict[str, np.ndarray] = {}
        self._forecasts: dict[tuple, dict | None] = {}  # (run id, start, checkpoints) -> forecast
        self.reference: ReferencePicture | None = None
        if isinstance(reference, ReferencePicture):
            self.reference = reference
        elif reference is not None:
            self.reference = ReferencePicture(Store(reference, read_only=True), probe)
        else:
            self._try_own_reference()
        if self.reference is not None:
            self.version = 1

    def __repr__(self) -> str:
        ref = self.reference.store.root if self.reference is not None else None
        return f"Watcher({str(self.store.root)!r}, reference={str(ref)!r})"

    # ------------------------------------------------------------------ reference
    def _try_own_reference(self) -> None:
        if not self.store.run_ids():
            return
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                self.reference = ReferencePicture(self.store, self.probe)
        except ValueError:
            self.reference = None  # no run usable on this probe yet

    def reference_payload(self) -> dict[str, Any]:
        """The reference picture as the page draws it (first three axes)."""
        with self._lock:
            ref = self.reference
            if ref is None:
                return {"version": self.version, "available": False, "store": str(self.store.root)}
            pic = ref.picture
            axes = min(_AXES, len(pic.eigenvalues))
            runs = [{"run_id": r.run_id, "label": r.run_label, "group": r.group,
                     "coords": [_finite(c) for c in r.coords[:, :axes]], "progress": _finite(r.progress),
                     "epochs": _finite(r.epochs), "test_acc": _finite(r.metrics.get("test_acc", []))}
                    for r in pic.runs]
            return {"version": self.version, "available": True, "store": str(ref.store.root), "probe": ref.probe,
                    "eigenvalues": _finite(pic.eigenvalues[:axes]), "runs": runs,
                    "geodesic": [_finite(c) for c in pic.geodesic[:, :axes]],
                    "ignorance": _finite(pic.ignorance[:axes]), "truth": _finite(pic.truth[:axes])}

    # ------------------------------------------------------------------ live
    def live_payload(self) -> dict[str, Any]:
        """Every run of the watched store now: in flight, ended without a commit, or committed."""
        with self._lock:
            self.polls += 1
            if self.reference is None and self._own_reference:
                self._try_own_reference()
                if self.reference is not None:
                    self.version += 1
            committed_ids = set(self.store.run_ids())
            runs = [self._live_run(run) for run in live_runs(self.store.root) if run.run_id not in committed_ids]
            shown = {r.run_id for r in self.reference.picture.runs} if (
                self.reference is not None and self._own_reference) else set()
            runs += [self._committed_run(run_id) for run_id in sorted(committed_ids - shown)]
            runs = [r for r in runs if r is not None]
            return {"version": self.version, "polls": self.polls, "time": time.time(), "runs": runs,
                    "checkpoints": sum(len(r["steps"]) for r in runs if r["live"])}

    def _labels_of(self, fingerprint: str) -> np.ndarray | None:
        if fingerprint not in self._labels:
            try:
                self._labels[fingerprint] = self.store.probe(fingerprint).labels
            except StoreError:
                return None
        return self._labels[fingerprint]

    def _place(self, logp: np.ndarray, fingerprint: str) -> dict:
        """Coordinates (when the probe set is the reference's) and progress of one checkpoint, with
        its distances to the reference's checkpoints (kept for the forecast)."""
        ref = self.reference
        if ref is not None and fingerprint == ref.fingerprint:
            d = ref.distances(np.asarray(logp)[None])[0]
            placement = ref.place(logp, distances=d)
            return {"coords": _finite(placement.coords[:_AXES]), "progress": placement.progress, "distances": d}
        labels = self._labels_of(fingerprint)
        progress = (float(geometry.progress(logp, labels, log=True)) if labels is not None
                    and len(labels) == len(logp) else math.nan)
        return {"coords": None, "progress": progress, "distances": None}

    def _live_run(self, run) -> dict | None:
        state = run.state
        probes = state.get("probes", {})
        name = self.probe if self.probe in probes else next(iter(probes), None)
        if name is None:
            return None
        placed = []
        for k in range(run.n_checkpoints):
            key = (run.run_id, k, state.get("started"))
            if key not in self._placed:
                try:
                    self._placed[key] = self._place(run.logp(name, k), probes[name])
                except (OSError, ValueError):  # removed (committed) or not finite: shown without it
                    self._placed[key] = {"coords": None, "progress": math.nan, "distances": None}
            placed.append(self._placed[key])
        metrics = state.get("metrics", {})
        epochs = [math.nan if e is None else e for e in state.get("epochs", [])]
        return {"run_id": run.run_id, "label": str(state.get("config", {}).get("label", run.run_id)),
                "live": True, "status": run.status, "message": state.get("message", ""), "steps": state.get("steps", []),
                "epochs": _finite(epochs), "test_acc": _finite(metrics.get(f"{name}_acc", [])),
                "progress": _finite([p["progress"] for p in placed]),
                "coords": [p["coords"] for p in placed] if all(p["coords"] is not None for p in placed) else None,
                "forecast": self._forecast(run, name, placed, epochs)}

    def _forecast(self, run, probe: str, placed: list, epochs: list) -> dict | None:
        """Where the run is heading (:func:`~deepmanifold.live.forecast_run`), once per new checkpoint,
        from the distances kept when its checkpoints were placed."""
        if self.reference is None or not placed or any(p["distances"] is None for p in placed):
            return None
        key = (run.run_id, run.state.get("started"), len(placed))
        if key not in self._forecasts:
            steps = np.asarray(run.state.get("steps", []), dtype=np.float64)
            t = np.asarray(epochs, dtype=np.float64)
            t = t if np.isfinite(t).all() else steps
            try:
                logp = np.stack([run.logp(probe, k) for k in range(len(placed))])
                fc = forecast_run(self.reference, logp, t, exclude=[run.run_id],
                                  distances=np.stack([p["distances"] for p in placed]))
                self._forecasts[key] = {"final_test_acc": fc.final_test_acc, "low": fc.final_test_acc_range[0],
                                        "high": fc.final_test_acc_range[1], "final_progress": fc.final_progress}
            except (OSError, ValueError):  # committed meanwhile: its files are gone
                self._forecasts[key] = None
        return self._forecasts[key]

    def _committed_run(self, run_id: str) -> dict | None:
        if run_id not in self._committed:
            try:
                rec = self.store.record(run_id, verify=False)
                if self.probe not in rec.probes:
                    return None
                logp = self.store.logp(run_id, self.probe)
                placed = [self._place(np.asarray(lp), rec.probes[self.probe]) for lp in logp]
                m = self.store.metrics(run_id)
            except (StoreError, OSError, ValueError):
                return None
            self._committed[run_id] = {
                "run_id": run_id, "label": str(rec.config.get("label", run_id)), "live": False, "status": rec.status,
                "message": rec.message, "steps": np.asarray(m["step"]).astype(int).tolist(),
                "epochs": _finite(m["epoch"]), "test_acc": _finite(m.get(f"{self.probe}_acc", [])),
                "progress": _finite([p["progress"] for p in placed]),
                "coords": [p["coords"] for p in placed] if placed and all(p["coords"] is not None
                                                                         for p in placed) else None,
                "forecast": None}
        return self._committed[run_id]


class _Handler(BaseHTTPRequestHandler):
    watcher: Watcher
    page: bytes

    def do_GET(self) -> None:  # noqa: N802 - the standard library's name
        path = self.path.split("?", 1)[0]
        try:
            if path in ("/", "/index.html"):
                self._send(200, "text/html; charset=utf-8", self.page)
            elif path == "/reference.json":
                self._json(self.watcher.reference_payload())
            elif path == "/live.json":
                self._json(self.watcher.live_payload())
            else:
                self._send(404, "text/plain; charset=utf-8", b"not found\n")
        except (BrokenPipeError, ConnectionResetError):
            pass  # the browser went away

    def _json(self, payload: dict) -> None:
        self._send(200, "application/json", json.dumps(payload, allow_nan=False).encode())

    def _send(self, code: int, kind: str, body: bytes) -> None:
        self.send_response(code)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - the standard library's signature
        pass  # one line per poll would drown the terminal


def make_server(watcher: Watcher, *, host: str = "127.0.0.1", port: int = 8765,
                interval: float = 1.0) -> ThreadingHTTPServer:
    """An HTTP server for ``watcher`` (not started); ``port = 0`` picks a free port."""
    from ._page import watch_page

    if not interval > 0:
        raise ValueError(f"interval must be > 0 seconds, got {interval!r}")
    handler = type("WatchHandler", (_Handler,), {"watcher": watcher, "page": watch_page(
        title=f"deepmanifold watch: {Path(watcher.store.root).name}", interval_ms=int(interval * 1000)).encode()})
    server = ThreadingHTTPServer((host, port), handler)
    server.daemon_threads = True
    return server


def serve_watch(store: str | os.PathLike, reference: str | os.PathLike | None = None, *, probe: str = "test",
                host: str = "127.0.0.1", port: int = 8765, interval: float = 1.0, echo=print) -> None:
    """Serve the live page of ``store`` until Ctrl-C (``deepmanifold watch``).

    Parameters
    ----------
    store : path-like
        The store to watch (never written to).
    reference : path-like, optional
        A reference store whose picture the runs are placed in.
    probe : str, default "test"
    host, port : where to listen (``port = 0``: any free port); default ``127.0.0.1:8765``.
    interval : float, default 1
        Seconds between two polls of the page.
    echo : callable
        Where the address and the stop are reported.
    """
    watcher = Watcher(store, reference, probe=probe)
    server = make_server(watcher, host=host, port=port, interval=interval)
    where = f"http://{server.server_address[0]}:{server.server_address[1]}/"
    ref = watcher.reference
    echo(f"watching {watcher.store.root}"
         + (f" over the picture of {ref.store.root} ({len(ref.picture.runs)} runs)" if ref is not None else
            " (no committed run yet: the picture appears with the first)") + f" at {where}  (Ctrl-C stops)")
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    echo(f"watch stopped after {watcher.polls} updates")
