"""The offline HTML report: one self-contained file, plotly.js inlined."""

from __future__ import annotations

import datetime as _dt
import errno
import html
import json
import os
import pathlib
import re
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from deepmanifold import __version__
from deepmanifold.report import _assets
from deepmanifold.report.analysis_figures import analysis_figures
from deepmanifold.report.feature_figures import agop_figure, nfa_figure
from deepmanifold.report.layer_figures import (CAPACITY_ROWS, COLLAPSE_ROWS, capacity_gain_figure,
                                               information_plane_figure, layer_grid_figure)
from deepmanifold.report.theory_figures import phase_diagram_figure
from deepmanifold.report.figures import (
    ARCHITECTURE,
    RunColouring,
    accuracy_figure,
    axis_title,
    findings_figure,
    group_colours,
    inpca_figure,
    progress_figure,
    run_colourings,
    stress_figure,
)

if TYPE_CHECKING:
    from deepmanifold.analysis.picture import Picture

__all__ = ["write_report", "main_probe"]

_MAIN_PROBE = "test"
_CODE_KEYS = ("command", "path", "store", "dir", "file")
#: errno values of a write refused for want of space.
_DISK_FULL = {errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)}


def main_probe(pictures: Mapping[str, Picture]) -> str:
    """The probe whose picture leads the report: ``"test"`` if present, else the first."""
    if not pictures:
        raise ValueError("pictures is empty: expected at least one probe name -> Picture")
    return _MAIN_PROBE if _MAIN_PROBE in pictures else next(iter(pictures))


def write_report(path: str | os.PathLike, pictures: Mapping[str, Picture], *, title: str,
                 summary: Mapping[str, Any] | None = None,
                 findings: Mapping[str, Any] | None = None,
                 colour_by: str = ARCHITECTURE, samples: "SampleMaps | None" = None) -> pathlib.Path:
    """Write the InPCA report as one self-contained HTML file that opens offline.

    The page holds plotly.js (from the installed plotly package) and every figure's
    data, so it needs no network. Sections: the 3-D InPCA picture of the main probe,
    the findings (when given), the other probes' pictures, explained stress and signed
    eigenvalues, progress against epoch, train and test accuracy, and how to read it
    with the excluded runs and notes.

    A menu in the page's navigation bar recolours the runs of every figure by
    architecture or by any configuration key that varies across the runs (see
    :func:`~deepmanifold.report.figures.run_colourings`); opening the page with
    ``#colour=KEY`` after its address starts with that key.

    Parameters
    ----------
    path : str or path-like
        Where to write the file; missing parent folders are created. The file is
        written to a temporary name and moved into place, so a reader never sees
        half a report.
    pictures : mapping of str to Picture
        Probe name (``"test"``, ``"train"``) to its picture. The ``"test"`` picture,
        or the first one when there is none, leads the report.
    title : str
        Page title.
    summary : mapping, optional
        Key facts shown in the header table, e.g. ``{"runs": 12, "wall time": "3 min",
        "store": "runs/digits"}``. Values are shown as text; numbers are formatted.
    findings : mapping, optional
        ``Findings.to_dict()`` of :func:`deepmanifold.analysis.analyze_store`: shown
        as a "Findings" section (each claim, its verdict, its numbers and its rule; when
        ``claims_other_probe`` holds the same claims judged on the probe named by
        ``other_probe``, a second verdict column), then the figures of its analyses
        (:mod:`deepmanifold.report.analysis_figures` lists the entries they read).
    colour_by : str
        The colouring the page opens with: ``"architecture"`` or a configuration key
        that varies across the runs (dotted when nested, e.g. ``"arch_options.width"``).
    samples : SampleMaps, optional
        Every sample's dynamics (:func:`deepmanifold.analysis.samples.store_sample_maps`):
        drawn as the data map, with the image of the sample under the pointer when
        ``samples.images`` holds them.

    Returns
    -------
    pathlib.Path
        The absolute path of the written file.

    Raises
    ------
    ValueError
        If `pictures` is empty, a run's arrays disagree in length, or `colour_by` is
        not one of the colourings the runs offer.
    OSError
        If the file cannot be written; on a full disk with errno ``ENOSPC`` and a
        message naming the path. A report already at `path` is left unchanged.
    """
    pictures = _ordered(pictures)
    for probe, picture in pictures.items():
        _check_picture(probe, picture)
    colourings = run_colourings(pictures.values())
    offered = [c.key for c in colourings]
    if colour_by not in offered:
        raise ValueError(f"colour_by={colour_by!r}: the runs can be coloured by {offered} "
                         "(architecture, or a configuration key whose value varies across runs)")
    document = _page(pictures, title=title, summary=dict(summary or {}), findings=findings,
                     colourings=colourings, colour_by=colour_by, samples=samples)
    return _write_atomic(pathlib.Path(path), document)


# ----------------------------------------------------------------------------- checks
def _ordered(pictures: Mapping[str, Picture]) -> dict[str, Picture]:
    """The pictures with the main probe first, the others in their given order."""
    first = main_probe(pictures)
    return {first: pictures[first], **{k: v for k, v in pictures.items() if k != first}}


def _check_picture(probe: str, picture: Picture) -> None:
    """Raise `ValueError` if a run's per-checkpoint arrays disagree with its steps."""
    k = len(np.asarray(picture.eigenvalues))
    for run in picture.runs:
        n = len(run.steps)
        lengths = {"epochs": len(run.epochs), "progress": len(run.progress),
                   "coords": len(run.coords),
                   **{f"metrics[{key!r}]": len(v) for key, v in (run.metrics or {}).items()},
                   **{f"features[{key!r}]": len(v) for key, v in (run.features or {}).items()}}
        wrong = {name: m for name, m in lengths.items() if m != n}
        if wrong:
            raise ValueError(f"{probe} picture, run {run.run_id!r}: expected {n} checkpoints "
                             f"(len(steps)) in every array, got {wrong}")
        coords = np.asarray(run.coords)
        if n and (coords.ndim != 2 or coords.shape[1] < min(k, 3)):
            raise ValueError(f"{probe} picture, run {run.run_id!r}: coords has shape "
                             f"{coords.shape}, expected ({n}, {k}) for {k} eigenvalues")


# ----------------------------------------------------------------------------- writing
def _write_atomic(path: pathlib.Path, text: str) -> pathlib.Path:
    """Write `text` to `path` through a temporary file in the same folder.

    The file at `path` is replaced only once the whole text is on disk, so a failed
    write leaves the previous report as it was. A full disk (or quota) raises an
    `OSError` with errno ``ENOSPC``/``EDQUOT`` that names `path` and the size needed.
    """
    path = path.expanduser().resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    data = text.encode("utf-8")
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException as err:
        if tmp is not None:
            pathlib.Path(tmp).unlink(missing_ok=True)
        if isinstance(err, OSError) and err.errno in _DISK_FULL:
            raise OSError(err.errno, f"the disk is full: the report needs {len(data):,} bytes in "
                          f"{path.parent}; the previous report, if any, is unchanged",
                          str(path)) from err
        raise
    return path


def _plotly_js() -> str:
    """The plotly.js bundle shipped with the installed plotly package."""
    from plotly.offline import get_plotlyjs

    return get_plotlyjs()


def _script_json(value: Any) -> str:
    """JSON that is safe inside ``<script type="application/json">``."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


# ----------------------------------------------------------------------------- page parts
def _esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "probe"


def _fact(key: str, value: Any) -> str:
    """One summary value as HTML: numbers formatted, paths and commands as code."""
    if isinstance(value, bool):
        text = "yes" if value else "no"
    elif isinstance(value, (int, np.integer)):
        text = f"{int(value):,}"
    elif isinstance(value, (float, np.floating)):
        text = f"{float(value):,.4g}"
    elif isinstance(value, (list, tuple)):
        text = " ".join(str(v) for v in value) if "command" in key.lower() else \
            ", ".join(str(v) for v in value)
    else:
        text = str(value)
    if any(word in key.lower() for word in _CODE_KEYS):
        return f"<code>{_esc(text)}</code>"
    return _esc(text)


def _table(header: list[str], rows: list[list[str]], numeric: set[int] = frozenset(),
           row_ids: list[str] | None = None) -> str:
    """An HTML table; cells are already HTML, columns in `numeric` right-aligned.

    `row_ids`, one per row, give the rows ids that links can point at.
    """
    def cls(i: int) -> str:
        return ' class="num"' if i in numeric else ""

    ids = [f' id="{_esc(r)}"' for r in row_ids] if row_ids else [""] * len(rows)
    head = "".join(f"<th{cls(i)}>{h}</th>" for i, h in enumerate(header))
    body = "".join(f"<tr{row_id}>" + "".join(f"<td{cls(i)}>{c}</td>" for i, c in enumerate(row))
                   + "</tr>" for row, row_id in zip(rows, ids))
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _at(values: Any, k: int) -> str:
    """Cumulative value at `k` axes as text; at the last axis, so marked, if fewer."""
    values = np.asarray(values, dtype=float)
    if values.size == 0:
        return "–"
    text = f"{values[min(k, values.size) - 1]:.3f}"
    return text if values.size >= k else f"{text} ({values.size} axes)"


def _time_like(picture: Picture) -> str:
    """The picture's time-like axes as HTML, e.g. ``"InPCA 2"``, or ``"none"``."""
    eig = np.asarray(picture.eigenvalues, dtype=float)
    axes = [f"InPCA {i + 1}" for i in np.flatnonzero(eig < 0)]
    return f'<span class="timelike">{", ".join(axes)}</span>' if axes else "none"


def _probe_table(pictures: Mapping[str, Picture]) -> str:
    """One row per probe: sizes, axes, time-like axes, stress at 3 axes."""
    rows = []
    for probe, p in pictures.items():
        checkpoints = sum(len(run.steps) for run in p.runs)
        rows.append([_esc(probe), f"{p.n_samples:,}", f"{p.n_classes:,}", f"{len(p.runs):,}",
                     f"{checkpoints:,}", f"{len(p.eigenvalues):,}", _time_like(p),
                     _at(p.explained_stress, 3), _at(p.explained_fraction, 3)])
    header = ["probe", "samples", "classes", "runs", "checkpoints", "axes", "time-like axes",
              "explained stress, 3 axes", "plain fraction, 3 axes"]
    return _table(header, rows, numeric={1, 2, 3, 4, 5, 7, 8})


def _header(title: str, summary: dict, pictures: Mapping[str, Picture], *,
            verdicts: str = "") -> str:
    """Title, the summary and probe tables, and the findings' verdicts when there are any."""
    stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    facts = ""
    if summary:
        rows = [[_esc(str(k).replace("_", " ")), _fact(str(k), v)] for k, v in summary.items()]
        facts = f"<div>{_table(['fact', 'value'], rows)}</div>"
    facts += f"<div>{_probe_table(pictures)}</div>"
    return (f'<header><div class="wrap"><h1>{_esc(title)}</h1>'
            f'<p class="sub">deepmanifold {_esc(__version__)} · written {stamp} · '
            f'probes: {_esc(", ".join(pictures))}</p>{verdicts}'
            f'<div class="facts">{facts}</div></div></header>')


def _section(anchor: str, heading: str, lead: str, body: str) -> str:
    return (f'<section id="{anchor}"><h2>{heading}</h2>'
            f'<p class="lead">{lead}</p>{body}</section>')


def _plot_div(div_id: str) -> str:
    return f'<div class="plot" id="{div_id}"></div>'


def _axes_sentence(picture: Picture) -> str:
    """The picture's plotted axes, naming each space-like or time-like."""
    eig = np.asarray(picture.eigenvalues, dtype=float)
    names = [axis_title(i, v) + f", eigenvalue μ = {v:.4g}" for i, v in enumerate(eig[:3])]
    return "; ".join(_esc(n) for n in names) or "no axes"


def _excluded_and_notes(pictures: Mapping[str, Picture]) -> str:
    """Excluded runs (merged over probes) and each probe's notes."""
    excluded: dict[tuple[str, str], list[str]] = {}
    for probe, p in pictures.items():
        for run_id, reason in p.excluded:
            excluded.setdefault((str(run_id), str(reason)), []).append(probe)
    if excluded:
        rows = [[f"<code>{_esc(r)}</code>", _esc(why), _esc(", ".join(probes))]
                for (r, why), probes in excluded.items()]
        parts = [_table(["run", "reason", "probes"], rows)]
    else:
        parts = ['<p class="empty">No run was excluded.</p>']
    parts.append("<h3>Notes</h3>")
    notes = [f"<li><b>{_esc(probe)}:</b> {_esc(n)}</li>"
             for probe, p in pictures.items() for n in p.notes]
    parts.append(f"<ul>{''.join(notes)}</ul>" if notes else '<p class="empty">No notes.</p>')
    return "".join(parts)


def _inpca_id(probe: str) -> str:
    return f"dm-inpca-{_slug(probe)}"


@dataclass
class _Part:
    """One section of the page, with its figure and its link in the navigation bar.

    Attributes
    ----------
    html : str
        The section.
    figure : dict or None
        ``{"id", "kind", "figure"}`` of the figure drawn in the section, if any.
    anchor : str
        Id of the section.
    link : str or None
        Label of the section's link in the navigation bar; None for no link.
    """

    html: str
    figure: dict | None = None
    anchor: str = ""
    link: str | None = None


def _figure_part(div: str, heading: str, lead: str, fig: dict, link: str | None = None) -> _Part:
    """A section holding one figure; 3-D if the figure has a 3-D scatter."""
    kind = "3d" if any(t.get("type") == "scatter3d" for t in fig["data"]) else "2d"
    anchor = f"{div}-section"
    return _Part(_section(anchor, heading, lead, _plot_div(div)),
                 {"id": div, "kind": kind, "figure": fig}, anchor, link)


def _picture_parts(pictures: Mapping[str, Picture], colours: Mapping[str, str]) -> list[_Part]:
    """The InPCA picture of each probe, main probe first."""
    parts = []
    for i, (probe, picture) in enumerate(pictures.items()):
        lead = (f"{len(picture.runs)} runs on the {_esc(probe)} probe "
                f"({picture.n_samples:,} samples, {picture.n_classes} classes). "
                f"Axes: {_axes_sentence(picture)}.")
        if i:
            lead += (" The same runs seen on another probe set: the shape should match the"
                     " first picture (up to the arbitrary sign of each axis).")
        parts.append(_figure_part(_inpca_id(probe), f"InPCA picture — {_esc(probe)} probe", lead,
                                  inpca_figure(picture, colours, height=680 if i == 0 else 560),
                                  link=f"picture ({probe})"))
    return parts


def _figure_parts(pictures: Mapping[str, Picture], colours: Mapping[str, str]) -> list[_Part]:
    """The 2-D figures of the pictures: axes, progress, accuracy."""
    main = next(iter(pictures))
    shade = " Lighter bars: the second probe." if len(pictures) > 1 else ""
    return [
        _figure_part(
            "dm-stress", "How many axes does the picture need?",
            "Left: cumulative <b>explained stress</b> and cumulative <b>plain fraction</b> of "
            "‖W‖² against the number of InPCA axes (two different quantities; line style = "
            f"probe). Right: the signed eigenvalues μ; red bars are time-like (μ&lt;0).{shade}",
            stress_figure(pictures), link="axes"),
        _figure_part(
            "dm-progress", "Progress against epoch",
            "Progress λ along the ignorance–truth geodesic, one line per run, coloured as "
            "chosen at the top (architecture by default). Larger networks should follow the "
            "same path, faster.",
            progress_figure(pictures, colours), link="progress"),
        _figure_part(
            "dm-accuracy", "Accuracy",
            f"Train and test accuracy against epoch, one line per run (runs of the "
            f"{_esc(main)} picture).",
            accuracy_figure(pictures[main], colours), link="accuracy"),
        *_feature_parts(pictures[main], colours),
        *_layer_parts(pictures[main], colours),
        *_theory_parts(pictures[main]),
    ]


def _feature_parts(picture: Picture, colours: Mapping[str, str]) -> list[_Part]:
    """The feature-learning figures, for runs that recorded the ``"nfa"`` measurement."""
    parts = []
    nfa = nfa_figure(picture, colours)
    if nfa is not None:
        parts.append(_figure_part(
            "dm-nfa", "Feature learning: the Neural Feature Ansatz",
            "Per weight layer, the Pearson correlation between WᵀW and the AGOP of the network "
            "with respect to that layer's input, raised to the power α (docs/method.md §9), "
            "against epoch. The ansatz holds where it is near 1 after training; epoch 0, the "
            "initialisation, is the baseline to compare with.", nfa, link="features"))
    images = agop_figure(picture)
    if images is not None:
        parts.append(_figure_part(
            "dm-agop", "Which inputs the networks use",
            "The average gradient outer product with respect to the input, at the last "
            "checkpoint of the first run of each group: its diagonal (bright: pixels the "
            "outputs are sensitive to) and its leading eigenvectors (red and blue: opposite "
            "signs; magnitude for colour images).", images))
    return parts


def _theory_parts(picture: Picture) -> list[_Part]:
    """The order/chaos phase diagram with the mean-field MLPs (``mf_mlp``) of the picture on it."""
    from deepmanifold.models import model_knobs

    runs = [run for run in picture.runs if run.config.get("arch") == "mf_mlp"]
    if not runs:
        return []
    knobs = [{**model_knobs("mf_mlp"), **(run.config.get("arch_options") or {})} for run in runs]
    activations = [k["activation"] for k in knobs]
    activation = max(set(activations), key=activations.count)
    points = []
    for run, k in zip(runs, knobs):
        if k["activation"] != activation:
            continue
        acc = np.asarray(run.metrics.get("train_acc", [np.nan]), dtype=float)
        value = float(acc[np.argmax(np.asarray(run.steps))]) if acc.size else None
        points.append((float(k["sigma_w2"]), float(k["sigma_b2"]),
                       f"{run.run_label} (depth {k['depth']})", None if value is None or np.isnan(value) else value))
    fig = phase_diagram_figure(activation, runs=points, value_title="final train accuracy",
                               sigma_w2_max=max(4.0, 1.1 * max(p[0] for p in points)),
                               sigma_b2_max=max(0.5, 1.1 * max(p[1] for p in points)))
    return [_figure_part(
        "dm-phase", f"Signal propagation: the {_esc(activation)} networks on the phase diagram",
        "Colour: the number of layers ξ_c over which two inputs' correlation relaxes in a random "
        "network of these weight and bias variances (docs/method.md §11.3); black: the order/chaos "
        "boundary, where ξ_c diverges. Markers: the sweep's mean-field MLPs, coloured by their final "
        "train accuracy; networks much deeper than 6 ξ_c should not train.", fig, link="phase diagram")]


def _layer_parts(picture: Picture, colours: Mapping[str, str]) -> list[_Part]:
    """The figures of what the layers do, for runs that recorded the layer measurements."""
    parts = []
    gain = capacity_gain_figure(picture, colours)
    if gain is not None:
        parts.append(_figure_part(
            "dm-capacity-gain", "Where does learning happen?",
            "Per layer, from the input side to the output, the manifold capacity of the class "
            "manifolds at the last checkpoint minus at the first (docs/method.md §10.1): the layers "
            "where the classes became more separable. Cohen et al. (2020) saw most of the gain in "
            "the final layers.", gain, link="layers"))
    capacity = layer_grid_figure(picture, colours, CAPACITY_ROWS)
    if capacity is not None:
        parts.append(_figure_part(
            "dm-capacity", "Manifold capacity per layer",
            "The mean-field capacity α_M of the class manifolds (the most classes per dimension "
            "a linear readout can separate), their radius R_M and dimension D_M, and the "
            "correlation of their centres, per layer against epoch.", capacity))
    plane = information_plane_figure(picture, colours)
    if plane is not None:
        parts.append(_figure_part(
            "dm-infoplane", "The information plane",
            "Each layer's path from the first checkpoint to the last: I(X;T), how much the layer "
            "keeps of which sample it sees, across; I(T;Y), how much of the label, up "
            "(docs/method.md §10.2). A path that turns left late in training is compression.", plane))
    collapse = layer_grid_figure(picture, colours, COLLAPSE_ROWS)
    if collapse is not None:
        parts.append(_figure_part(
            "dm-collapse", "Neural collapse per layer",
            "NC1 (within-class over between-class variability, log scale), NC2 (class means "
            "from a simplex), NC3 (classifier against the means, at the layer it reads), NC4 "
            "(nearest class centre against the network's decisions) and the effective rank of "
            "the representation, per layer against epoch; each NC quantity is 0 at full "
            "collapse (docs/method.md §10.3).", collapse))
    return parts


_VERDICT_COLOUR = {"supported": "#1a7f37", "not supported": "#cf222e", "inconclusive": "#9a6700",
                   "skipped": "#6e7781"}


def _number(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, dict):
        return ", ".join(f"{k}: {_number(v)}" for k, v in value.items())
    if isinstance(value, list):
        return "[" + ", ".join(_number(v) for v in value) + "]"
    return "–" if value is None else str(value)


def _claim_anchor(claim: Mapping[str, Any], i: int) -> str:
    """Id of a claim's row in the findings table."""
    return f"dm-claim-{_slug(str(claim.get('key') or i))}"


def _other_claims(findings: Mapping[str, Any]) -> tuple[str, dict[str, Mapping[str, Any]]]:
    """The second probe's name and its claims by key (``findings["other_probe"]``,
    ``findings["claims_other_probe"]``), or ``("", {})`` when the claims were judged on one probe."""
    other = findings.get("claims_other_probe") or []
    return (str(findings.get("other_probe") or "other probe") if other else "",
            {str(c.get("key")): c for c in other if c.get("key") is not None})


def _verdict_text(claim: Mapping[str, Any] | None) -> str:
    """A claim's verdict in its colour, with its reason below (``–`` when there is no claim)."""
    if claim is None:
        return "–"
    verdict = str(claim.get("verdict", ""))
    reason = f"<br><em>{_esc(claim['reason'])}</em>" if claim.get("reason") else ""
    return f'<strong style="color:{_VERDICT_COLOUR.get(verdict, "#000")}">{_esc(verdict)}</strong>{reason}'


def _numbers_text(claim: Mapping[str, Any]) -> str:
    return "<br>".join(f"{_esc(k)}: {_esc(_number(v))}" for k, v in (claim.get("numbers") or {}).items())


def _verdict_links(findings: Mapping[str, Any]) -> str:
    """One link per claim to its row in the findings table, showing its verdict (for the header);
    the link's tooltip adds the verdict on the second probe when there is one."""
    other_probe, others = _other_claims(findings)
    links = []
    for i, claim in enumerate(findings.get("claims", [])):
        verdict = str(claim.get("verdict", ""))
        name = str(claim.get("key") or i).replace("_", " ")
        tip = str(claim.get("statement", ""))
        if str(claim.get("key")) in others:
            tip += f" (on the {other_probe} probe: {others[str(claim.get('key'))].get('verdict', '')})"
        links.append(f'<a class="verdict" href="#{_claim_anchor(claim, i)}" '
                     f'title="{_esc(tip)}" '
                     f'style="color:{_VERDICT_COLOUR.get(verdict, "#000")}">'
                     f"{_esc(name)}: <b>{_esc(verdict)}</b></a>")
    if not links:
        return ""
    return f'<p class="verdicts">Findings: {"".join(links)}</p>'


#: How the findings' lead names each definition of progress.
_PROGRESS_WORDS = {"angle": "the reference study's: the summed Bhattacharyya angle to the geodesic",
                   "bhattacharyya": "the intensive Bhattacharyya distance to the geodesic"}


def _findings_section(findings: Mapping[str, Any]) -> str:
    """Each claim of the study: verdict, the numbers behind it, and the rule that decided.

    With claims judged on a second probe too (``claims_other_probe``), a second verdict
    column shows them, matched by claim key, their numbers folded under the verdict.
    """
    probe = str(findings.get("probe") or "")
    other_probe, others = _other_claims(findings)
    rows, ids = [], []
    for i, claim in enumerate(findings.get("claims", [])):
        row = [_esc(claim.get("statement", "")), _verdict_text(claim)]
        if other_probe:
            second = others.get(str(claim.get("key")))
            cell = _verdict_text(second)
            if second is not None and second.get("numbers"):
                cell += f"<details><summary>numbers</summary>{_numbers_text(second)}</details>"
            row.append(cell)
        row += [_numbers_text(claim) or "–", f'<small>{_esc(claim.get("rule", ""))}</small>']
        rows.append(row)
        ids.append(_claim_anchor(claim, i))
    header = ["claim", f"verdict ({_esc(probe)})" if other_probe else "verdict"]
    if other_probe:
        header.append(f"verdict ({_esc(other_probe)})")
    header += ["numbers", "rule"]
    skipped = findings.get("skipped") or {}
    extra = _layer_verdict(findings)
    if skipped:
        extra += "<h3>Analyses skipped</h3><ul>" + "".join(
            f"<li>{_esc(k)}: {_esc(v)}</li>" for k, v in skipped.items()) + "</ul>"
    both = (f" Each claim is judged on the {_esc(probe)} probe and, beside it, on the "
            f"{_esc(other_probe)} probe by the same rule." if other_probe else "")
    method = findings.get("progress_method")
    progress = (f" Progress is {_PROGRESS_WORDS.get(str(method), _esc(method))} (docs/method.md §3.3)."
                if method else "")
    lead = (f"The study's claims measured on {findings.get('n_runs', '?')} runs "
            f"({_esc(probe)} probe). Verdicts follow the written rule beside each; "
            f"all numbers are in findings.json.{both}{progress}")
    return _section("dm-findings", "Findings", lead, _table(header, rows, row_ids=ids) + extra)


def _layer_verdict(findings: Mapping[str, Any]) -> str:
    """The where-learning-happens verdict of the layer measurements, when runs recorded them."""
    layers = (findings.get("analyses") or {}).get("layers") or {}
    judged = layers.get("where_learning")
    if not judged:
        return ""
    return ("<h3>Inside the layers</h3>" + _table(
        ["question", "verdict", "numbers", "rule"],
        [["Does manifold capacity grow most in the final layers (Cohen et al. 2020)?", _verdict_text(judged),
          _numbers_text(judged) or "–", f'<small>{_esc(layers.get("rule", ""))}</small>']]))


def _findings_parts(findings: Mapping[str, Any],
                    run_groups: Mapping[str, tuple[str, str]] | None = None) -> list[_Part]:
    """The findings table, then the figures of the analyses behind it (runs coloured by
    ``run_groups``: run id to group name and colour)."""
    parts = [_Part(_findings_section(findings), anchor="dm-findings", link="findings")]
    fig = findings_figure(findings)
    if fig is not None:
        parts.append(_figure_part(
            "dm-findings-figure", "Findings in figures",
            "Left: mean trajectory distance between runs that differ in one factor only, with "
            "95 % bootstrap intervals. Right: distance of the runs to the ignorance–truth "
            "geodesic, and the spread of seeds around each configuration (tube width), "
            "against progress.", fig))
    parts += [_figure_part(div, heading, lead, fig)
              for div, heading, lead, fig in analysis_figures(findings, run_groups)]
    if len(parts) > 1:
        parts[1].link = "analyses"
    return parts


def _colour_menu(colourings: list[RunColouring], colour_by: str) -> str:
    """The menu that recolours the runs of every figure (the page's script does it)."""
    options = "".join(
        f'<option value="{_esc(c.key)}"{" selected" if c.key == colour_by else ""}>'
        f"{_esc(c.key)} ({len(c.values)})</option>" for c in colourings)
    disabled = " disabled" if len(colourings) < 2 else ""
    return (f'<label class="colour" for="dm-colour">colour runs by '
            f'<select id="dm-colour"{disabled}>{options}</select></label>')


def _nav(parts: list[_Part], menu: str = "") -> str:
    """Links to the linked sections, in page order, and the colour menu."""
    items = "".join(f'<a href="#{part.anchor}">{_esc(part.link)}</a>'
                    for part in parts if part.link)
    return f'<nav><div class="wrap"><span class="links">{items}</span>{menu}</div></nav>'


def _sample_parts(samples) -> list[_Part]:
    """The data map of every sample, with the image under the pointer when the images are known."""
    from .sample_figures import data_map_figure, sample_images_json

    if samples is None or not samples.runs:
        return []
    flips = "" if samples.flipped is None else (
        f" Crosses: the {int(samples.flipped.sum())} samples whose training label was flipped.")
    lead = (f"Each of the {len(samples.labels):,} samples of the {_esc(samples.probe)} probe at its "
            "variability (x) and confidence (y): the mean and spread over the checkpoints of the "
            "probability given to its label, coloured by how often it was classified right. Low "
            "confidence and low variability: hard to learn (wrong labels end up here); high "
            f"variability: ambiguous. The menu picks the run.{flips}")
    images = sample_images_json(samples.images)
    body = _plot_div("dm-datamap")
    if images is not None:
        body += ('<figure class="dm-sample"><canvas id="dm-sample-image" width="112" height="112" '
                 'data-sample=""></canvas><figcaption>the sample under the pointer</figcaption></figure>'
                 f'<script type="application/json" id="dm-sample-images">{_script_json(images)}</script>'
                 f"<script>{_assets.SAMPLE_IMAGE_JS}</script>")
    fig = data_map_figure(samples)
    return [_Part(_section("dm-datamap-section", "Every sample: the data map", lead, body),
                  {"id": "dm-datamap", "kind": "2d", "figure": fig}, "dm-datamap-section", "samples")]


def _page(pictures: dict[str, Picture], *, title: str, summary: dict,
          findings: Mapping[str, Any] | None, colourings: list[RunColouring],
          colour_by: str, samples=None) -> str:
    """The whole HTML document.

    The main probe's picture comes first, right under the header: it is what the
    header's numbers describe and what every finding is about. The findings follow it
    (their verdicts are also linked from the header), then the other probes' pictures,
    the 2-D figures and the reading guide.
    """
    colours = group_colours(pictures.values())
    run_groups = {run.run_id: (run.group, colours[run.group]) for p in pictures.values() for run in p.runs}
    first, *others = _picture_parts(pictures, colours)
    parts = [first, *(_findings_parts(findings, run_groups) if findings else []), *others,
             *_figure_parts(pictures, colours), *_sample_parts(samples)]
    parts.append(_Part(_section("dm-guide", "How to read this", "", _assets.HOW_TO_READ
                                + "<h3>Excluded runs</h3>" + _excluded_and_notes(pictures)),
                       anchor="dm-guide", link="how to read"))
    figures = [part.figure for part in parts if part.figure]
    return "\n".join([
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_esc(title)}</title>",
        f"<script>{_assets.ERROR_CAPTURE_JS}</script>",
        f"<style>{_assets.CSS}</style>",
        f'<script type="text/javascript">{_plotly_js()}</script>',
        "</head><body>",
        _header(title, summary, pictures, verdicts=_verdict_links(findings) if findings else ""),
        _nav(parts, _colour_menu(colourings, colour_by)),
        '<main class="wrap">',
        '<div class="banner" id="dm-webgl-warning" role="alert"></div>',
        '<div class="banner" id="dm-error-warning" role="alert"></div>',
        *(part.html for part in parts),
        "</main>",
        '<footer class="wrap"><span id="dm-status" data-state="pending" '
        f'data-expected="{len(figures)}">Drawing figures…</span></footer>',
        f'<script type="application/json" id="dm-figures">{_script_json(figures)}</script>',
        '<script type="application/json" id="dm-colouring">'
        f'{_script_json({"default": colour_by, "options": [c.to_dict() for c in colourings]})}'
        "</script>",
        f"<script>{_assets.RENDER_JS}</script>",
        "</body></html>",
    ])
