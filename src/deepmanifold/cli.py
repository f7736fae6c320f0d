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

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Watch how deep networks learn: training trajectories in prediction space.")
console = Console(stderr=False, highlight=False)
# soft_wrap: an error stays one line however narrow the terminal; messages are escaped
# because spec errors quote TOML sections like "[arch.mlp]", which rich reads as markup.
err = Console(stderr=True, highlight=False, soft_wrap=True)

_STATUS_STYLE = {"complete": "green", "diverged": "yellow", "failed": "red", "skipped": "dim"}


def _fail(message: str) -> None:
    err.print(f"[bold red]error:[/] {escape(message)}")
    raise typer.Exit(code=2)


def _pictures(store, given: dict | None = None) -> dict:
    """The InPCA picture of each probe set (test, train): ``given`` ones as they are, the others built."""
    from deepmanifold.analysis import build_picture

    pictures = {}
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
        for w in caught:
            err.print(f"[yellow]warning:[/] {escape(str(w.message))}")
    return pictures


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


def _write_store_report(store_path: Path, out: Path | None, summary: dict, findings: dict | None = None,
                        pictures: dict | None = None) -> Path:
    """Write the HTML report of a store, from the given InPCA pictures (the missing ones are built)."""
    from deepmanifold.report import write_report
    from deepmanifold.store import Store, StoreError

    try:
        store = Store(store_path, create=False)
    except StoreError as exc:
        _fail(str(exc))
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
    path = write_report(out or store_path / "report.html", pictures, title=f"deepmanifold — {store_path.name}",
                        summary=facts, findings=findings)
    return Path(path)


@app.command()
def run(
    spec: Path = typer.Argument(..., help="TOML sweep spec, e.g. examples/digits.toml"),
    store: Optional[Path] = typer.Option(None, help="Store folder (default: the spec's [sweep] store)."),
    workers: Optional[int] = typer.Option(None, min=1, help="Worker processes, one thread each (default: the spec's, else cores)."),
    report: bool = typer.Option(True, help="Write the HTML report when the sweep ends."),
    runner: str = typer.Option("local", help="local (process pool) or ray (one Ray task per run)."),
    ray_address: Optional[str] = typer.Option(None, help="Existing Ray cluster (default: start a local one)."),
    device: str = typer.Option("auto", help="auto (CUDA when a worker sees a GPU), cpu, cuda or cuda:N."),
    ensemble: int = typer.Option(1, min=1, help="Train up to N seeds of one configuration at once (vmap)."),
) -> None:
    """Train every run of SPEC not yet in the store, then write the report.

    Interrupt at any time: finished runs are committed, and the same command resumes.
    """
    from deepmanifold.sweeps import SpecError, load_spec, run_sweep

    started = time.perf_counter()
    try:
        sweep = load_spec(spec)
    except SpecError as exc:
        _fail(str(exc))
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

    try:
        with progress:
            result = run_sweep(sweep, store=store_path, workers=workers, on_start=on_start, on_outcome=on_outcome,
                               runner=runner, ray_address=ray_address, device=device, ensemble=ensemble)
    except SpecError as exc:
        _fail(str(exc))
    except KeyboardInterrupt:
        err.print("[yellow]interrupted:[/] committed runs are kept; run the same command to resume.")
        raise typer.Exit(code=130)

    counts = ", ".join(f"{result.count(s)} {s}" for s in ("complete", "diverged", "failed", "skipped")
                       if result.count(s))
    console.print(f"sweep done in {result.wall_time:.1f}s: {counts}")
    if report:
        command = "deepmanifold " + " ".join(shlex.quote(a) for a in sys.argv[1:])
        path = _write_store_report(store_path, None, {"command": command, "spec": str(spec)})
        console.print(f"report: [bold cyan]{path.resolve()}[/]  (total {time.perf_counter() - started:.1f}s)")
    if result.count("failed"):
        raise typer.Exit(code=1)


@app.command("report")
def report_cmd(
    store: Path = typer.Argument(..., help="Store folder written by `deepmanifold run`."),
    out: Optional[Path] = typer.Option(None, help="HTML file to write (default: STORE/report.html)."),
) -> None:
    """Write the self-contained HTML report of a store (InPCA picture, stress, progress, accuracy)."""
    path = _write_store_report(store, out, {})
    console.print(f"report: [bold cyan]{path.resolve()}[/]")


@app.command()
def analyze(
    store: Path = typer.Argument(..., help="Store folder written by `deepmanifold run`."),
    probe: str = typer.Option("test", help="Probe set the claims are judged on."),
    report: bool = typer.Option(True, help="Rewrite the HTML report with a Findings section."),
) -> None:
    """Test the study's claims on a store: writes STORE/findings.json (and the report)."""
    from deepmanifold.analysis import analyze_store
    from deepmanifold.store import Store, StoreError

    try:
        st = Store(store, create=False)
    except StoreError as exc:
        _fail(str(exc))
    with Progress(TextColumn("[progress.description]{task.description}"), TimeElapsedColumn(),
                  console=console, transient=True) as progress:
        task = progress.add_task("analysing", total=None)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                findings = analyze_store(st, probe=probe, pictures=report,
                                         on_step=lambda name: progress.update(task, description=name))
            except ValueError as exc:
                _fail(str(exc))
    for w in caught:
        err.print(f"[yellow]warning:[/] {escape(str(w.message))}")
    path = findings.write_json(store / "findings.json")
    table = Table("claim", "verdict", "reason")
    for claim in findings.claims:
        style = {"supported": "green", "not supported": "red", "inconclusive": "yellow"}.get(claim.verdict, "dim")
        table.add_row(escape(claim.statement), f"[{style}]{claim.verdict}", escape(claim.reason))
    console.print(table)
    console.print(f"findings: [bold cyan]{path.resolve()}[/]  ({findings.wall_time:.1f}s)")
    if report:
        out = _write_store_report(store, None, {}, findings=findings.to_dict(), pictures=findings.pictures)
        console.print(f"report: [bold cyan]{out.resolve()}[/]")


@app.command()
def runs(
    store: Path = typer.Argument(..., help="Store folder."),
    where: Optional[str] = typer.Option(None, help='Filter, e.g. \'arch == "cnn" and final_test_acc > 0.9\'.'),
    columns: Optional[str] = typer.Option(None, help="Comma-separated catalog columns to show."),
) -> None:
    """List the runs of a store (status, final accuracy), optionally filtered with --where."""
    from deepmanifold.store import Store, StoreError

    try:
        st = Store(store, create=False)
        table_df = st.query(where, on_error="skip") if where else st.catalog(on_error="skip")
    except (StoreError, ValueError) as exc:
        _fail(str(exc))
    shown = [c.strip() for c in columns.split(",")] if columns else [
        c for c in ("run_id", "label", "status", "n_checkpoints", "final_test_acc") if c in table_df.columns]
    unknown = [c for c in shown if c not in table_df.columns]
    if unknown:
        _fail(f"unknown column(s) {unknown}; available: {', '.join(map(str, table_df.columns))}")
    table = Table(*shown)
    for _, row in table_df[shown].iterrows():
        cells = []
        for c in shown:
            v = row[c]
            text = f"{v:.4f}" if isinstance(v, float) else str(v)
            cells.append(f"[{_STATUS_STYLE.get(v, '')}]{escape(text)}" if c == "status" else escape(text))
        table.add_row(*cells)
    console.print(table)
    console.print(f"{len(table_df)} run(s)")
    for run_id, why in table_df.attrs.get("damaged", []):
        err.print(f"[red]damaged:[/] {run_id}: {escape(str(why))}")


@app.command()
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
