"""The ``deepmanifold`` command line: parse, call, print."""

from __future__ import annotations

import os

# One BLAS/torch thread per process, set before numpy/torch load their thread pools.
for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import shlex  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Optional  # noqa: E402

import typer  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.markup import escape  # noqa: E402
from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,  # noqa: E402
                           TimeElapsedColumn, TimeRemainingColumn)
from rich.table import Table  # noqa: E402

# Plain help text (no rich markup): option help may quote TOML sections like "[sweep]".
app = typer.Typer(add_completion=False, no_args_is_help=True, rich_markup_mode=None,
                  help="Watch how deep networks learn: training trajectories in prediction space.")


class _Command(typer.core.TyperCommand):
    """A command whose usage line names its arguments plainly (``SPEC``, not ``{SPEC}``)."""

    def collect_usage_pieces(self, ctx):
        return [p[1:-1] if p.startswith("{") and p.endswith("}") else p for p in super().collect_usage_pieces(ctx)]
console = Console(stderr=False, highlight=False, soft_wrap=True)
# soft_wrap: an error stays one line however narrow the terminal; messages are escaped
# because spec errors quote TOML sections like "[arch.mlp]", which rich reads as markup.
err = Console(stderr=True, highlight=False, soft_wrap=True)

_STATUS_STYLE = {"complete": "green", "diverged": "yellow", "pruned": "cyan", "failed": "red", "skipped": "dim"}


def _fail(message: str) -> None:
    err.print(f"[bold red]error:[/] {escape(message)}")
    raise typer.Exit(code=2)


def _write_failed(exc: OSError, path: Path, hint: str = "") -> None:
    """A clear error for a write that failed: a full disk, a read-only store, ..."""
    import errno

    where = exc.filename or path
    if exc.errno == errno.ENOSPC:
        _fail(f"the disk is full: could not write {where}; everything committed before is kept")
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        _fail(f"cannot write {where} ({exc.strerror}): the store is read-only{hint}")
    _fail(f"could not write {where}: {exc.strerror or exc}")


def _open_store(path: Path):
    """The store at ``path`` (never created here), or a clean error."""
    from deepmanifold.store import Store, StoreError

    try:
        return Store(path, create=False)
    except StoreError as exc:
        _fail(str(exc))


def _pictures(store, given: dict | None = None) -> dict:
    """The InPCA picture of each probe set (test, train): ``given`` ones as they are, the others built."""
    from deepmanifold.analysis import build_picture

    pictures, said = {}, set()
    for probe in ("test", "train"):
        if given and probe in given:
            pictures[probe] = given[probe]
            continue
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                pictures[probe] = build_picture(store, probe)
            except ValueError as exc:
                err.print(f"[yellow]warning:[/] no {probe}-probe picture: {escape(str(exc))}")
        _warn_once([str(w.message) for w in caught], said)
    return pictures


def _load_spec(path: Path):
    """The sweep spec at ``path``, or a clean error naming what is wrong with it."""
    from deepmanifold.sweeps import SpecError, load_spec

    try:
        return load_spec(path)
    except SpecError as exc:
        _fail(str(exc))


def _warn_once(messages, said: set) -> None:
    """Print each warning once (both probe sets' pictures leave the same runs out)."""
    for message in messages:
        if message not in said:
            said.add(message)
            err.print(f"[yellow]warning:[/] {escape(message)}")


def _stored_findings(store_path: Path) -> dict | None:
    """Findings of an earlier `deepmanifold analyze`, so they stay in the report."""
    path = store_path / "findings.json"
    if not path.exists():
        return None
    import json

    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        err.print("[yellow]warning:[/] findings.json is unreadable; report written without findings")
        return None


def _sample_maps(store):
    """Every sample's dynamics on the train probe, with the samples' images when the data can be loaded."""
    import numpy as np

    from deepmanifold.analysis.samples import store_sample_maps
    from deepmanifold.store import StoreError

    try:
        maps = store_sample_maps(store, "train")
    except (ValueError, OSError, StoreError) as exc:
        warnings.warn(f"no data map: {exc}", stacklevel=2)
        return None
    if maps is None:
        return None
    try:  # the images come from the data the runs name; a dataset not on this machine just has none
        from deepmanifold.sweeps.execute import dataset_and_probes

        config = store.record(maps.runs[0][0], verify=False).config
        dataset, probes = dataset_and_probes(config)
        x = probes["train"].inputs(dataset).numpy()
        if len(x) == len(maps.labels) and x.shape[1] in (1, 3):
            x = np.moveaxis(x, 1, -1)
            lo = x.min(axis=(1, 2, 3), keepdims=True)
            span = np.maximum(x.max(axis=(1, 2, 3), keepdims=True) - lo, 1e-12)
            x = np.round(255 * (x - lo) / span).astype(np.uint8)
            maps.images = x[..., 0] if x.shape[-1] == 1 else x
    except Exception:  # noqa: BLE001 - no images is a lesser report, not a failed one
        maps.images = None
    return maps


def _write_store_report(store_path: Path, out: Path | None, summary: dict, findings: dict | None = None,
                        pictures: dict | None = None, colour_by: str = "architecture") -> Path:
    """Write the HTML report of a store, from the given InPCA pictures (the missing ones are built)."""
    from deepmanifold.report import write_report

    store = _open_store(store_path)
    pictures = _pictures(store, pictures)
    if not pictures:
        _fail(f"nothing to draw: no usable run in {store_path}")
    main = pictures.get("test") or next(iter(pictures.values()))
    facts = {
        "store": str(store_path),
        "runs in picture": len(main.runs),
        "checkpoints in picture": sum(len(r.steps) for r in main.runs),
        "probe samples × classes": f"{main.n_samples} × {main.n_classes}",
        **summary,
    }
    if findings is None:
        findings = _stored_findings(store_path)
    target = out or store_path / "report.html"
    try:
        path = write_report(target, pictures, title=f"deepmanifold — {store_path.name}", summary=facts,
                            findings=findings, colour_by=colour_by, samples=_sample_maps(store))
    except ValueError as exc:
        _fail(str(exc))
    except OSError as exc:
        _write_failed(exc, target, "; write the report elsewhere with --out FILE")
    return Path(path)


@app.command(cls=_Command)
def run(
    spec: Path = typer.Argument(..., metavar="SPEC", help="TOML sweep spec, e.g. examples/digits.toml"),
    store: Optional[Path] = typer.Option(None, help="Store folder (default: the spec's [sweep] store)."),
    workers: Optional[int] = typer.Option(None, min=1, help="Worker processes, one thread each (default: the spec's, else cores)."),
    report: bool = typer.Option(True, help="Write the HTML report when the sweep ends."),
    runner: str = typer.Option("local", help="local (process pool) or ray (one Ray task per run)."),
    ray_address: Optional[str] = typer.Option(None, help="Existing Ray cluster (default: start a local one)."),
    device: str = typer.Option("auto", help="auto (CUDA when a worker sees a GPU), cpu, cuda or cuda:N."),
    ensemble: int = typer.Option(1, min=1, help="Train up to N seeds of one configuration at once (vmap)."),
    force: bool = typer.Option(False, "--force", help="Make a store of a non-empty folder that is not one."),
) -> None:
    """Train every run of SPEC not yet in the store, then write the report.

    Interrupt at any time: Ctrl-C finishes the runs in flight and stops (a second Ctrl-C
    abandons them); committed runs are kept, and the same command resumes. Damaged runs
    are moved aside to STORE/damaged and trained again. Several `run`s on one store
    (e.g. from several machines sharing the folder) split the runs between them.
    """
    from deepmanifold.store import StoreError
    from deepmanifold.sweeps import SpecError, run_sweep

    started = time.perf_counter()
    sweep = _load_spec(spec)
    store_path = store or sweep.store
    console.print(f"[bold]{sweep.name}[/]: {len(sweep.runs)} runs → store [cyan]{store_path}[/]")

    progress = Progress(TextColumn("[progress.description]{task.description}"), BarColumn(), MofNCompleteColumn(),
                        TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(), console=console)
    task = None

    def on_start(n_todo: int, n_total: int) -> None:
        nonlocal task
        if n_todo < n_total:
            console.print(f"resuming: {n_total - n_todo} of {n_total} runs already in the store")
        task = progress.add_task("training", total=n_todo)

    def on_outcome(o) -> None:
        style = _STATUS_STYLE.get(o.status, "")
        acc = f"test acc {o.final_test_acc:.3f}" if o.final_test_acc is not None else ""
        msg = f" — {escape(o.message)}" if o.message and o.status != "complete" else ""
        progress.console.print(f"  [{style}]{o.status:9s}[/] {escape(o.label):32s} {acc} {o.wall_time:6.1f}s{msg}")
        progress.advance(task)

    def on_note(message: str) -> None:
        progress.console.print(f"[yellow]{escape(message)}[/]")

    try:
        with progress:
            result = run_sweep(sweep, store=store_path, workers=workers, on_start=on_start, on_outcome=on_outcome,
                               on_note=on_note, runner=runner, ray_address=ray_address, device=device,
                               ensemble=ensemble, force=force)
    except (SpecError, StoreError) as exc:
        _fail(str(exc))
    except OSError as exc:
        _write_failed(exc, Path(store_path))
    except KeyboardInterrupt:
        err.print("[yellow]interrupted:[/] the runs in flight were abandoned; committed runs are kept; "
                  "run the same command to resume.")
        raise typer.Exit(code=130)

    counts = ", ".join(f"{result.count(s)} {s}" for s in ("complete", "diverged", "pruned", "failed", "skipped")
                       if result.count(s))
    if result.interrupted:
        left = len(sweep.runs) - len(result.outcomes)
        err.print(f"[yellow]interrupted[/] after {result.wall_time:.1f}s ({counts}); {left} run(s) not started: "
                  "run the same command to resume.")
        raise typer.Exit(code=130)
    console.print(f"sweep done in {result.wall_time:.1f}s: {counts}")
    if report:
        command = "deepmanifold " + " ".join(shlex.quote(a) for a in sys.argv[1:])
        path = _write_store_report(store_path, None, {"command": command, "spec": str(spec)})
        console.print(f"report: [bold cyan]{path.resolve()}[/]  (total {time.perf_counter() - started:.1f}s)")
    if result.count("failed"):
        raise typer.Exit(code=1)


@app.command(cls=_Command)
def rfm(
    spec: Path = typer.Argument(..., metavar="SPEC", help="TOML sweep spec whose data and probe sets the RFM uses."),
    store: Optional[Path] = typer.Option(None, help="Store folder (default: the spec's [sweep] store)."),
    kernel: str = typer.Option("laplace", help="laplace, gaussian or quadratic."),
    bandwidth: float = typer.Option(10.0, help="Kernel bandwidth L."),
    reg: float = typer.Option(1e-3, help="Ridge regularisation."),
    iterations: int = typer.Option(5, min=0, help="AGOP updates; one checkpoint per iterate, M = I first."),
    power: float = typer.Option(1.0, help="M <- AGOP^power (1 or 0.5)."),
    diag: bool = typer.Option(False, "--diag", help="Keep only M's diagonal."),
    train_size: Optional[int] = typer.Option(None, min=1, help="Fit on a stratified subset of this many "
                                             "training samples (kernel solves are O(n^3))."),
    seed: int = typer.Option(0, min=0, help="Seed of the subset and the estimator."),
    report: bool = typer.Option(True, help="Rewrite the store's HTML report afterwards."),
) -> None:
    """Record a Recursive Feature Machine's iterations as a run beside SPEC's networks.

    The RFM is fitted on SPEC's training data; each iteration's predictions on SPEC's
    probe sets become one checkpoint of a run with architecture "rfm", so the report and
    `analyze` draw its path in the same picture as the networks'. The same settings
    twice are skipped the second time.
    """
    from deepmanifold.features.rfm_runs import record_rfm_run
    from deepmanifold.store import StoreError

    started = time.perf_counter()
    sweep = _load_spec(spec)
    store_path = store or sweep.store

    def on_iteration(t: int, train_acc: float, test_acc: float) -> None:
        console.print(f"  iteration {t:3d}  train acc {train_acc:.3f}  test acc {test_acc:.3f}  "
                      f"{time.perf_counter() - started:6.1f}s")

    console.print(f"[bold]rfm[/] ({kernel}{', diagonal M' if diag else ''}) on {sweep.name}'s data → store "
                  f"[cyan]{store_path}[/]")
    try:
        result = record_rfm_run(store_path, sweep, kernel=kernel, bandwidth=bandwidth, reg=reg, n_iter=iterations,
                                power=power, diag=diag, train_size=train_size, seed=seed,
                                on_iteration=on_iteration)
    except (ValueError, StoreError) as exc:
        _fail(str(exc))
    except OSError as exc:
        _write_failed(exc, Path(store_path))
    if result.status == "skipped":
        console.print(f"run {result.run_id} is already in the store: skipped")
    else:
        console.print(f"run {result.run_id} committed in {time.perf_counter() - started:.1f}s")
    if report:
        path = _write_store_report(store_path, None, {"command": "deepmanifold " + " ".join(
            shlex.quote(a) for a in sys.argv[1:])})
        console.print(f"report: [bold cyan]{path.resolve()}[/]")


@app.command(cls=_Command)
def ntk(
    spec: Path = typer.Argument(..., metavar="SPEC", help="TOML sweep spec whose data and probe sets the kernel uses."),
    store: Optional[Path] = typer.Option(None, help="Store folder (default: the spec's [sweep] store)."),
    depth: int = typer.Option(3, min=1, help="Affine layers of the infinitely wide network."),
    activation: str = typer.Option("relu", help="relu or erf."),
    sigma_w2: float = typer.Option(2.0, help="Weight variance σ_w² (2: He initialisation for ReLU)."),
    sigma_b2: float = typer.Option(0.0, help="Bias variance σ_b²."),
    checkpoints: int = typer.Option(50, min=2, help="Recorded times along the gradient flow."),
    horizon: float = typer.Option(1e4, help="Last time, in units of the fastest mode's time 1/(ηλ_max)."),
    temperature: Optional[float] = typer.Option(None, help="Softmax temperature (default: fitted to the test "
                                                "probe at the last time)."),
    train_size: Optional[int] = typer.Option(None, min=1, help="Use a stratified subset of this many training "
                                             "samples (the NTK is O(n^2) memory, O(n^3) time)."),
    seed: int = typer.Option(0, min=0, help="Seed of the subset."),
    report: bool = typer.Option(True, help="Rewrite the store's HTML report afterwards."),
) -> None:
    """Record the infinitely wide network's training path (the NTK limit) as a run beside SPEC's networks.

    The NTK of a fully connected network is computed on SPEC's training data; the
    linearised network's gradient flow on the squared loss, from its mean initial output
    (ignorance) to the one-hot targets, is turned into class probabilities on SPEC's probe
    sets at geometric times and stored as a run with architecture "ntk", so the report and
    `analyze` draw the kernel limit's path in the same picture. The same settings twice
    are skipped the second time.
    """
    from deepmanifold.store import StoreError
    from deepmanifold.theory.ntk_runs import record_ntk_run

    started = time.perf_counter()
    sweep = _load_spec(spec)
    store_path = store or sweep.store
    console.print(f"[bold]ntk[/] ({activation}, depth {depth}) on {sweep.name}'s data → store [cyan]{store_path}[/]")
    try:
        result = record_ntk_run(store_path, sweep, depth=depth, activation=activation, sigma_w2=sigma_w2,
                                sigma_b2=sigma_b2, checkpoints=checkpoints, horizon=horizon, temperature=temperature,
                                train_size=train_size, seed=seed)
    except (ValueError, StoreError) as exc:
        _fail(str(exc))
    except OSError as exc:
        _write_failed(exc, Path(store_path))
    if result.status == "skipped":
        console.print(f"run {result.run_id} is already in the store: skipped")
    else:
        console.print(f"run {result.run_id} committed in {time.perf_counter() - started:.1f}s: temperature "
                      f"{result.temperature:.3g}, final test acc {result.test_accuracy[-1]:.3f}")
    if report:
        path = _write_store_report(store_path, None, {"command": "deepmanifold " + " ".join(
            shlex.quote(a) for a in sys.argv[1:])})
        console.print(f"report: [bold cyan]{path.resolve()}[/]")


@app.command("report", cls=_Command)
def report_cmd(
    store: Path = typer.Argument(..., help="Store folder written by `deepmanifold run`."),
    out: Optional[Path] = typer.Option(None, help="HTML file to write (default: STORE/report.html)."),
    colour_by: str = typer.Option("architecture", help="Config key the runs are coloured by when the page opens "
                                  "(e.g. optimizer, seed, arch_options.width; the page's menu changes it)."),
) -> None:
    """Write the self-contained HTML report of a store (InPCA picture, stress, progress, accuracy)."""
    path = _write_store_report(store, out, {}, colour_by=colour_by)
    console.print(f"report: [bold cyan]{path.resolve()}[/]")


@app.command(cls=_Command)
def analyze(
    store: Path = typer.Argument(..., help="Store folder written by `deepmanifold run`."),
    probe: str = typer.Option("test", help="Probe set the claims are judged on."),
    report: bool = typer.Option(True, help="Rewrite the HTML report with a Findings section."),
    out: Optional[Path] = typer.Option(None, help="Folder for findings.json and report.html (default: STORE)."),
    colour_by: str = typer.Option("architecture", help="Config key the report's runs are coloured by at first."),
    train_error_limit: float = typer.Option(0.10, min=0.0, max=1.0, help="Runs whose final train error exceeds "
                                            "this are reported apart and left out of the claims (1 keeps all)."),
    progress_method: str = typer.Option("angle", "--progress", metavar="[angle|bhattacharyya]",
                                        help="Definition of progress: the reference study's summed Bhattacharyya "
                                             "angle, or the Bhattacharyya distance, which places confident, partly "
                                             "wrong models further from truth (docs/method.md §3.3)."),
) -> None:
    """Test the study's claims on a store: writes findings.json (and the report) into STORE or --out."""
    from deepmanifold.analysis import analyze_store
    from deepmanifold.geometry.validation import PROGRESS_METHODS

    if progress_method not in PROGRESS_METHODS:
        _fail(f"--progress must be one of {', '.join(PROGRESS_METHODS)}, got {progress_method!r}")
    st = _open_store(store)
    target = out or store
    if out is not None:
        try:
            out.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            _write_failed(exc, out)
    with Progress(TextColumn("[progress.description]{task.description}"), TimeElapsedColumn(),
                  console=console, transient=True) as progress:
        task = progress.add_task("analysing", total=None)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                findings = analyze_store(st, probe=probe, pictures=report, train_error_limit=train_error_limit,
                                         progress_method=progress_method,
                                         on_step=lambda name: progress.update(task, description=name))
            except ValueError as exc:
                _fail(str(exc))
    _warn_once([str(w.message) for w in caught], set())
    try:
        path = findings.write_json(target / "findings.json")
    except OSError as exc:
        _write_failed(exc, target / "findings.json", "; write the findings elsewhere with --out DIR")
    table = Table("claim", "verdict", "why")
    for claim in findings.claims:
        style = {"supported": "green", "not supported": "red", "inconclusive": "yellow"}.get(claim.verdict, "dim")
        table.add_row(escape(claim.statement), f"[{style}]{claim.verdict}", escape(_why(claim)))
    console.print(table)
    console.print(f"findings: [bold cyan]{path.resolve()}[/]  ({findings.wall_time:.1f}s)")
    if report:
        html = _write_store_report(store, target / "report.html", {}, findings=findings.to_dict(),
                                   pictures=findings.pictures, colour_by=colour_by)
        console.print(f"report: [bold cyan]{html.resolve()}[/]")


def _why(claim) -> str:
    """A verdict's reason, or else the numbers it was computed from (a skipped claim has its reason)."""
    if claim.reason:
        return claim.reason
    shown = []
    for key, value in claim.numbers.items():
        if isinstance(value, float):
            value = f"{value:.3g}"
        elif isinstance(value, (list, tuple)):
            value = "[" + ", ".join(f"{v:.3g}" if isinstance(v, float) else str(v) for v in value) + "]"
        elif isinstance(value, dict):
            value = "{" + ", ".join(f"{k}: {v:.3g}" if isinstance(v, float) else f"{k}: {v}"
                                    for k, v in value.items()) + "}"
        shown.append(f"{key} = {value}")
    return "; ".join(shown)


@app.command(cls=_Command)
def runs(
    store: Path = typer.Argument(..., help="Store folder."),
    where: Optional[str] = typer.Option(None, help='Filter, e.g. \'arch == "cnn" and final_test_acc > 0.9\'.'),
    columns: Optional[str] = typer.Option(None, help="Comma-separated catalog columns to show."),
) -> None:
    """List the runs of a store (status, final accuracy), optionally filtered with --where."""
    from deepmanifold.store import StoreError
    from deepmanifold.store.repair import damaged_runs

    st = _open_store(store)
    try:
        table_df = st.query(where, on_error="skip") if where else st.catalog(on_error="skip")
        damaged = damaged_runs(st)
    except (StoreError, ValueError) as exc:
        _fail(str(exc))
    shown = [c.strip() for c in columns.split(",")] if columns else [
        c for c in ("run_id", "label", "status", "n_checkpoints", "final_test_acc") if c in table_df.columns]
    unknown = [c for c in shown if c not in table_df.columns]
    if unknown:
        _fail(f"unknown column(s) {unknown}; available: {', '.join(map(str, table_df.columns))}")
    texts = [[f"{v:.4f}" if isinstance(v, float) else str(v) for v in row] for row in table_df[shown].itertuples(
        index=False)]
    if not console.is_terminal:  # piped: tab-separated, nothing cut, for other programs to read
        print("\t".join(shown))
        for row in texts:
            print("\t".join(row))
    else:
        table = Table()
        for c in shown:  # run ids are what store.logp needs: never cut or folded
            whole = c == "run_id"
            table.add_column(c, no_wrap=whole, min_width=max([len(c)] + [len(r[shown.index(c)]) for r in texts])
                             if whole else None)
        for row in texts:
            table.add_row(*[f"[{_STATUS_STYLE.get(t, '')}]{escape(t)}" if c == "status" else escape(t)
                            for c, t in zip(shown, row)])
        console.print(table)
    (console if console.is_terminal else err).print(f"{len(table_df)} run(s)")  # keep piped output pure TSV
    for run_id, why in damaged:
        err.print(f"[red]damaged:[/] {run_id}: {escape(str(why))} (the next `deepmanifold run` of its spec "
                  "moves it aside and trains it again)")


@app.command(cls=_Command)
def watch(
    store: Path = typer.Argument(..., help="Store whose runs to watch (read only: nothing is written to it)."),
    reference: Optional[Path] = typer.Option(None, help="Store whose picture the runs are placed in "
                                             "(default: STORE's own runs committed when watching starts)."),
    probe: str = typer.Option("test", help="Probe set the picture compares."),
    host: str = typer.Option("127.0.0.1", help="Address to listen on."),
    port: int = typer.Option(8765, help="Port to listen on (0: any free port)."),
    interval: float = typer.Option(1.0, help="Seconds between two updates of the page."),
) -> None:
    """Serve a live page of a store's runs over a reference picture, updated as checkpoints arrive (Ctrl-C stops)."""
    from deepmanifold.live.watch import serve_watch
    from deepmanifold.store import StoreError

    try:
        serve_watch(store, reference, probe=probe, host=host, port=port, interval=interval,
                    echo=lambda text: console.print(escape(text)))
    except (StoreError, ValueError) as exc:
        _fail(str(exc))
    except OSError as exc:  # the port is taken, or the address cannot be bound
        _fail(f"cannot listen on {host}:{port}: {exc.strerror or exc}")


@app.command(cls=_Command)
def models(
    dataset: str = typer.Option("digits", help="Dataset whose input shape and classes size the models."),
) -> None:
    """List the model zoo with default knobs and parameter counts for a dataset."""
    from deepmanifold.data import load_dataset
    from deepmanifold.models import describe_models

    try:
        ds = load_dataset(dataset)
    except (ValueError, OSError) as exc:
        _fail(str(exc))
    table = Table("architecture", "default knobs", "parameters")
    for row in describe_models(ds.input_shape, ds.n_classes):
        knobs = ", ".join(f"{k}={v}" for k, v in row["knobs"].items())
        table.add_row(row["name"], escape(knobs), f"{row['parameters']:,}")
    console.print(f"models for {dataset}: input {ds.input_shape}, {ds.n_classes} classes")
    console.print(table)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
