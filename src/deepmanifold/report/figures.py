"""The report's figures, as plain plotly figure dictionaries.

Every function here returns a ``{"data": [...], "layout": {...}}`` dictionary of
JSON-ready Python values (floats rounded to a few significant digits, non-finite
numbers as ``None``). They carry no JavaScript and no plotly objects, so they can be
embedded in the offline report as they are, or looked at in a notebook with
``plotly.graph_objects.Figure(fig).show()``.

Runs are drawn one trace per *group* (architecture), the runs of a group joined by
``None`` gaps: one legend entry per group that toggles all its runs together, and a
figure that stays light for thousands of runs. Each such trace's ``meta`` names its runs
and their lengths, and :func:`run_colourings` lists the other ways to group them (by
any configuration key that varies), so the report's page can recolour the runs in the
browser.
"""

from __future__ import annotations

import html
import math
import textwrap
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # the report only reads results; keep its import light
    from deepmanifold.analysis.picture import Picture, RunTrace

__all__ = [
    "ARCHITECTURE",
    "RunColouring",
    "run_colourings",
    "group_colours",
    "axis_title",
    "inpca_figure",
    "stress_figure",
    "progress_figure",
    "accuracy_figure",
    "axis_layout",
    "base_layout",
    "panel_axes",
    "panels_layout",
]

#: Group colours: D3's category10 without its grey (grey is kept for the references),
#: then plotly's Dark24 for stores with many architectures.
PALETTE: tuple[str, ...] = (
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
    "#bcbd22", "#17becf", "#2E91E5", "#E15F99", "#1CA71C", "#DA16FF", "#B68100",
    "#750D86", "#EB663B", "#511CFB", "#00A08B", "#FB00D1", "#6C7C32", "#862A16",
)
SPACE_LIKE_COLOUR = "#1f77b4"
TIME_LIKE_COLOUR = "#d62728"
REFERENCE_COLOUR = "#333333"
GEODESIC_COLOUR = "#000000"
#: Opacity of the runs in the 3-D picture. WebGL draws translucent traces after the opaque
#: ones, blended over them, so the opaque geodesic stays visible where runs cross in front
#: of it (trace order alone decides nothing in 3-D: the depth test does).
RUN_OPACITY_3D = 0.55
#: Camera of the 3-D picture: farther out than plotly's default (1.25, 1.25, 1.25), so
#: the axis titles at the corners of the box stay inside the figure.
CAMERA_EYE = {"x": 1.55, "y": 1.55, "z": 1.15}
SIG_DIGITS = 5

_FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, Helvetica, Arial, sans-serif"
_PROBE_DASH = ("solid", "dot", "dash", "dashdot")
_CUMULATIVE = (("explained_stress", "explained stress", "#1f77b4"),
               ("explained_fraction", "plain fraction Σμ²/‖W‖²", "#ff7f0e"))
_ACCURACY_PANELS = (("train_acc", "train accuracy"), ("test_acc", "test accuracy"))
#: Status of a factor that does not vary in the sweep (analysis.factors.FactorEffect).
_NOT_A_FACTOR = "not a factor in this sweep"


# ----------------------------------------------------------------------------- numbers
def rounded(values: Any, digits: int = SIG_DIGITS) -> list:
    """Flatten `values` to a JSON-ready list of floats with `digits` significant digits.

    Parameters
    ----------
    values : array_like
        Numbers of any shape (flattened).
    digits : int
        Significant digits kept.

    Returns
    -------
    list of float or None
        ``None`` where a value is NaN or infinite (plotly draws a gap there).
    """
    out: list = []
    for v in np.asarray(values, dtype=float).ravel().tolist():
        out.append(float(f"{v:.{digits}g}") if math.isfinite(v) else None)
    return out


def _fmt(value: float, spec: str) -> str:
    """Format one number for hover text; ``"–"`` when it is not finite (not recorded)."""
    return format(float(value), spec) if math.isfinite(float(value)) else "–"


# ----------------------------------------------------------------------------- groups
def group_colours(pictures: Iterable[Picture]) -> dict[str, str]:
    """Give every group (architecture) of the pictures one colour, the same everywhere.

    Parameters
    ----------
    pictures : iterable of Picture

    Returns
    -------
    dict of str to str
        Group name to a CSS colour, groups in sorted order.
    """
    groups = sorted({run.group for picture in pictures for run in picture.runs})
    return {g: PALETTE[i % len(PALETTE)] for i, g in enumerate(groups)}


#: Name of the default colouring: by `RunTrace.group`, the architecture.
ARCHITECTURE = "architecture"
#: Configuration keys never offered for colouring: the display name is unique per run.
_NOT_COLOUR_KEYS = ("label",)
_UNSET = "not set"
_UNSET_VALUE = object()  # a run without the key (its legend name is _UNSET)


@dataclass(frozen=True)
class RunColouring:
    """One way to colour the runs of the report: by architecture or by a configuration key.

    Attributes
    ----------
    key : str
        :data:`ARCHITECTURE`, or a configuration key, dotted when nested
        (``"optimizer"``, ``"arch_options.width"``).
    values : list of str
        The key's values as legend names (HTML-escaped), in legend order: numbers
        ascending, then text, then ``"not set"`` for runs without the key.
    colours : list of str
        CSS colour of each value.
    runs : dict of str to int
        Run id to the index of its value in `values`.
    """

    key: str
    values: list[str]
    colours: list[str]
    runs: dict[str, int]

    def to_dict(self) -> dict:
        """Plain JSON-ready dict, as the page's script reads it."""
        return {"key": self.key, "label": html.escape(self.key), "values": list(self.values),
                "colours": list(self.colours), "runs": dict(self.runs)}


def _value_text(value: Any) -> str:
    """A configuration value as a legend name: ``0.05``, ``true``, ``[1, 2]``."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_value_text(v) for v in value) + "]"
    return str(value)


def _value_order(value: Any) -> tuple:
    """Sort key of a value: finite numbers by size, then text, then "not set"."""
    if value is _UNSET_VALUE:
        return (2, 0.0, "")
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return (0, float(value), "")
    return (1, 0.0, _value_text(value))


def run_colourings(pictures: Iterable[Picture],
                   colours: Mapping[str, str] | None = None) -> list[RunColouring]:
    """The ways to colour the runs: architecture first, then each configuration key that varies.

    A key is offered when its values (a missing key counts as the value ``"not set"``)
    differ between the runs of the pictures, unless every run's value reads as its
    architecture (``arch`` itself) or the key is a run's display name (``label``).

    Parameters
    ----------
    pictures : iterable of Picture
        Runs are matched across pictures by `RunTrace.run_id`.
    colours : mapping of str to str, optional
        Architecture colours; `group_colours` of the pictures by default.

    Returns
    -------
    list of RunColouring
        The architecture colouring first, then the keys in sorted order.
    """
    from deepmanifold.utils import flatten

    pictures = list(pictures)
    colours = dict(colours) if colours is not None else group_colours(pictures)
    runs = {}
    for picture in pictures:
        for run in picture.runs:
            runs.setdefault(run.run_id, run)
    groups = sorted({run.group for run in runs.values()})
    out = [RunColouring(ARCHITECTURE, [html.escape(g) for g in groups], [colours[g] for g in groups],
                        {rid: groups.index(run.group) for rid, run in runs.items()})]
    configs = {rid: flatten(run.config or {}) for rid, run in runs.items()}
    keys = sorted({k for config in configs.values() for k in config} - {ARCHITECTURE, *_NOT_COLOUR_KEYS})
    for key in keys:
        values = {rid: config.get(key, _UNSET_VALUE) for rid, config in configs.items()}
        texts = {rid: _UNSET if v is _UNSET_VALUE else _value_text(v) for rid, v in values.items()}
        if len(set(texts.values())) < 2 or all(texts[rid] == runs[rid].group for rid in runs):
            continue
        order: dict[str, tuple] = {}
        for rid, text in texts.items():
            order.setdefault(text, _value_order(values[rid]))
        names = sorted(order, key=lambda text: (order[text], text))
        out.append(RunColouring(key, [html.escape(n) for n in names],
                                [PALETTE[i % len(PALETTE)] for i in range(len(names))],
                                {rid: names.index(text) for rid, text in texts.items()}))
    return out


def _runs_by_group(runs: Sequence[RunTrace]) -> dict[str, list[RunTrace]]:
    """Runs grouped by `RunTrace.group`, groups sorted by name, runs in input order."""
    grouped: dict[str, list[RunTrace]] = {}
    for run in runs:
        grouped.setdefault(run.group, []).append(run)
    return dict(sorted(grouped.items()))


def _joined(runs: Sequence[RunTrace], column: Callable[[RunTrace], Any]) -> list:
    """One column of several runs, checkpoints in step order, runs split by ``None``.

    `column` maps a run to a length-K sequence aligned with its checkpoints (numbers
    or strings); numbers are rounded, strings kept.
    """
    out: list = []
    for i, run in enumerate(runs):
        order = np.argsort(np.asarray(run.steps), kind="stable")
        values = column(run)
        if isinstance(values, np.ndarray) and values.dtype.kind in "biuf":
            part = rounded(values[order])
        else:
            part = [values[j] for j in order]
        if i:
            out.append(None)
        out.extend(part)
    return out


def _metric(run: RunTrace, key: str) -> np.ndarray:
    """A run's metric `key` as floats, NaN where the run did not record it."""
    value = run.metrics.get(key) if run.metrics else None
    if value is None:
        return np.full(len(run.steps), np.nan)
    return np.asarray(value, dtype=float)


def _hover(run: RunTrace) -> list[str]:
    """Hover text of each checkpoint: run display name, epoch, step, progress, test accuracy."""
    run_label = html.escape(run.run_label)
    acc = _metric(run, "test_acc")
    return [
        f"<b>{run_label}</b><br>epoch {_fmt(e, '.4g')} · step {int(s)}"
        f"<br>progress {_fmt(p, '.3f')} · test acc {_fmt(a, '.3f')}"
        for e, s, p, a in zip(run.epochs, run.steps, run.progress, acc)
    ]


def _group_traces(
    runs: Sequence[RunTrace],
    colours: Mapping[str, str],
    columns: Mapping[str, Callable[[RunTrace], Any]],
    *,
    trace_type: str,
    axes: Mapping[str, str] | None = None,
    showlegend: bool = True,
    marker_size: float = 4,
    hovertemplate: str | None = None,
) -> list[dict]:
    """One trace per group, its runs joined by gaps, coloured and legend-grouped.

    Each trace's ``meta`` lists its runs (``runs``: run ids, ``lengths``: points per
    run), so a script can split the joined arrays back into runs.

    Without `hovertemplate` each point's hover text is the full `_hover` text;
    with one, the text is just the run label (``%{text}`` in the template), which
    keeps figures of many points small.
    """
    if hovertemplate is None:
        hover = {"hoverinfo": "text"}
        text: Callable[[RunTrace], list[str]] = _hover
    else:
        hover = {"hovertemplate": hovertemplate}
        text = lambda run: [html.escape(run.run_label)] * len(run.steps)  # noqa: E731
    traces = []
    for group, members in _runs_by_group(runs).items():
        colour = colours[group]
        trace = {
            "type": trace_type,
            "mode": "lines+markers",
            "name": html.escape(group),
            "legendgroup": group,
            "showlegend": showlegend,
            "line": {"color": colour, "width": 2},
            "marker": {"color": colour, "size": marker_size},
            "text": _joined(members, text),
            # which runs the joined arrays hold, and how many points each: the page's
            # colour selector regroups the runs by another key from these
            "meta": {"runs": [run.run_id for run in members],
                     "lengths": [len(run.steps) for run in members]},
            **hover,
            **(axes or {}),
        }
        trace.update({name: _joined(members, fn) for name, fn in columns.items()})
        traces.append(trace)
    return traces


# ----------------------------------------------------------------------------- layout
def axis_title(index: int, eigenvalue: float) -> str:
    """Title of InPCA axis `index` (0-based), naming it space-like or time-like.

    Parameters
    ----------
    index : int
        Axis index, 0 for the axis of largest ``|μ|``.
    eigenvalue : float
        Its signed eigenvalue; a negative one makes the axis time-like (docs/method.md §4).
        The report writes eigenvalues μ, because λ is progress (docs/method.md §3).

    Returns
    -------
    str
        E.g. ``"InPCA 1 (space-like)"`` or ``"InPCA 2 (time-like, μ<0)"``.
    """
    kind = "time-like, μ<0" if eigenvalue < 0 else "space-like"
    return f"InPCA {index + 1} ({kind})"


def base_layout(**extra: Any) -> dict:
    """Layout keys shared by every figure of the report."""
    layout = {
        "font": {"family": _FONT, "size": 13, "color": "#222"},
        "paper_bgcolor": "#ffffff",
        "plot_bgcolor": "#ffffff",
        "margin": {"l": 60, "r": 20, "t": 40, "b": 50},
        "hovermode": "closest",
        "legend": {"itemclick": "toggle", "itemdoubleclick": "toggleothers"},
    }
    layout.update(extra)
    return layout


def axis_layout(title: str, **extra: Any) -> dict:
    """A 2-D axis with a title and a light grid.

    ``automargin`` lets plotly widen the figure's margins until the tick labels and the
    title fit (long or rotated labels would otherwise be cut at the figure's edge).
    """
    return {"title": {"text": title}, "gridcolor": "#e6e6e6", "zeroline": False,
            "automargin": True, **extra}


#: Horizontal gap between panels (fraction of the plot width): shared y axes need room
#: for nothing, independent ones for their tick labels and title.
PANEL_GAP_SHARED_Y = 0.06
PANEL_GAP_OWN_Y = 0.12


def panels_layout(titles: Sequence[str], x_title: str, y_title: str | Sequence[str],
                  **y_extra: Any) -> dict:
    """Layout of ``len(titles)`` side-by-side panels sharing the legend.

    Parameters
    ----------
    titles : sequence of str
        Panel titles, left to right.
    x_title : str
        Title of every panel's x axis.
    y_title : str or sequence of str
        One string: the panels share one y scale, titled on the first panel. One title
        per panel: each panel has its own y scale and title, and the panels stand
        further apart so a title never runs into the panel on its left.
    **y_extra
        Further keys of every y axis (e.g. ``range``).
    """
    n = len(titles)
    shared = isinstance(y_title, str)
    y_titles = [y_title] + [""] * (n - 1) if shared else list(y_title)
    if len(y_titles) != n:
        raise ValueError(f"expected {n} y titles (one per panel), got {len(y_titles)}")
    gap = (PANEL_GAP_SHARED_Y if shared else PANEL_GAP_OWN_Y) if n > 1 else 0.0
    width = (1.0 - gap * (n - 1)) / n
    layout = base_layout(annotations=[], height=420)
    for i, title in enumerate(titles):
        suffix = "" if i == 0 else str(i + 1)
        left = i * (width + gap)
        layout[f"xaxis{suffix}"] = axis_layout(x_title, domain=[left, left + width], anchor=f"y{suffix}")
        y_axis = axis_layout(y_titles[i], anchor=f"x{suffix}", **y_extra)
        if i and shared:
            y_axis["matches"] = "y"
        layout[f"yaxis{suffix}"] = y_axis
        layout["annotations"].append({
            "text": f"<b>{html.escape(title)}</b>", "showarrow": False,
            "xref": "paper", "yref": "paper", "x": left + width / 2, "y": 1.0,
            "xanchor": "center", "yanchor": "bottom", "font": {"size": 14},
        })
    return layout


def panel_axes(i: int) -> dict:
    """Trace keys placing a 2-D trace in panel `i` of a `panels_layout` layout."""
    suffix = "" if i == 0 else str(i + 1)
    return {"xaxis": f"x{suffix}", "yaxis": f"y{suffix}"}


# ----------------------------------------------------------------------------- figures
def _coord(i: int) -> Callable[[RunTrace], np.ndarray]:
    """Column `i` of a run's InPCA coordinates."""
    return lambda run: np.asarray(run.coords, dtype=float)[:, i]


def _reference_traces(picture: Picture, names: Sequence[str], trace_type: str,
                      shown: Callable[[np.ndarray, np.ndarray], tuple]) -> tuple[list, list]:
    """The geodesic curve and the ignorance/truth markers, with labels pointing at them.

    They go after the runs in the figure's data, so plotly draws them on top in 2-D.
    `shown(points, t)` gives the coordinates drawn on the plot axes from the points'
    InPCA coordinates ``(G, k)`` and their geodesic parameters ``(G,)``.

    Returns
    -------
    traces : list of dict
    annotations : list of dict
        Arrowed labels of the two reference models (in data coordinates ``names``).
    """
    geodesic = np.atleast_2d(np.asarray(picture.geodesic, dtype=float))
    t = np.asarray(picture.geodesic_t, dtype=float)
    traces, annotations = [], []
    if geodesic.size:
        cols = shown(geodesic, t)
        traces.append({
            "type": trace_type, "mode": "lines", "name": "geodesic (ignorance → truth)",
            "line": {"color": GEODESIC_COLOUR, "width": 6 if trace_type == "scatter3d" else 3},
            "text": [f"geodesic t = {v:.3f}" for v in t], "hoverinfo": "text",
            **{name: rounded(c) for name, c in zip(names, cols)},
        })
    references = (("ignorance P₀", picture.ignorance, 0.0, "x", -40),
                  ("truth P*", picture.truth, 1.0, "diamond", 40))
    for label, point, t_ref, symbol, ax in references:
        cols = shown(np.asarray(point, dtype=float).reshape(1, -1), np.array([t_ref]))
        position = {name: rounded(c)[0] for name, c in zip(names, cols)}
        traces.append({
            "type": trace_type, "mode": "markers", "name": label, "hoverinfo": "name",
            "marker": {"color": REFERENCE_COLOUR, "size": 9, "symbol": symbol,
                       "line": {"color": "#000", "width": 1}},
            **{name: [v] for name, v in position.items()},
        })
        annotations.append({
            "text": f"<b>{label}</b>", "showarrow": True, "arrowhead": 2, "arrowcolor": "#000",
            "ax": ax, "ay": -45, "bgcolor": "rgba(255,255,255,0.85)", "bordercolor": "#000",
            "borderpad": 3, "font": {"size": 13, "color": "#000"}, **position,
        })
    return traces, annotations


def inpca_figure(picture: Picture, colours: Mapping[str, str] | None = None, *,
                 height: int = 640) -> dict:
    """The InPCA picture: every checkpoint of every run, the geodesic and its ends.

    Three axes give a 3-D scatter; a picture with two components falls back to a
    2-D scatter and one with a single component plots it against progress.

    Parameters
    ----------
    picture : Picture
    colours : mapping of str to str, optional
        Group colours; `group_colours` of this picture by default.
    height : int
        Figure height in pixels.

    Returns
    -------
    dict
        Plotly figure dictionary. ``None`` is never returned; a picture without
        components gives an empty figure whose title says so.
    """
    colours = dict(colours) if colours is not None else group_colours([picture])
    eig = np.asarray(picture.eigenvalues, dtype=float)
    dims = min(eig.size, 3)
    titles = [axis_title(i, eig[i]) for i in range(dims)]
    if dims == 0:
        empty = base_layout(height=200, title={"text": "no InPCA components"})
        return {"data": [], "layout": empty}
    if dims == 1:
        names, trace_type = ("x", "y"), "scatter"
        columns = {"x": _coord(0), "y": lambda run: np.asarray(run.progress, dtype=float)}
        shown = lambda pts, t: (pts[:, 0], t)  # noqa: E731 - a geodesic point's progress is t
        titles.append("progress λ")
    else:
        names = ("x", "y", "z")[:dims]
        trace_type = "scatter3d" if dims == 3 else "scatter"
        columns = {name: _coord(i) for i, name in enumerate(names)}
        shown = lambda pts, t: tuple(pts[:, i] for i in range(dims))  # noqa: E731
    data = _group_traces(picture.runs, colours, columns, trace_type=trace_type,
                         marker_size=3 if dims == 3 else 5)
    if dims == 3:
        for trace in data:
            trace["opacity"] = RUN_OPACITY_3D
    references, annotations = _reference_traces(picture, names, trace_type, shown)
    data += references  # last: on top of the runs
    legend = {"title": {"text": ARCHITECTURE}, "itemsizing": "constant", "y": 0.9,
              "itemclick": "toggle", "itemdoubleclick": "toggleothers"}
    if dims == 3:
        scene = {f"{n}axis": {"title": {"text": t}, "backgroundcolor": "#fafafa",
                              "gridcolor": "#dddddd", "showbackground": True}
                 for n, t in zip(names, titles)}
        scene.update(aspectmode="cube", annotations=annotations, camera={"eye": dict(CAMERA_EYE)})
        layout = base_layout(height=height, scene=scene, legend=legend,
                              margin={"l": 0, "r": 0, "t": 10, "b": 0})
    else:
        layout = base_layout(height=height, legend=legend, xaxis=axis_layout(titles[0]),
                              yaxis=axis_layout(titles[1]),
                              annotations=[{"xref": "x", "yref": "y", **a} for a in annotations])
    return {"data": data, "layout": layout}


def stress_figure(pictures: Mapping[str, Picture]) -> dict:
    """How many axes the picture needs: explained stress, plain fraction, eigenvalues.

    Left panel: cumulative explained stress ``1 - ||W - W_k||_F / ||W||_F`` and the
    cumulative plain fraction ``sum mu^2 / ||W||_F^2`` against the number of axes,
    one line style per probe. Right panel: the signed eigenvalues ``mu`` (written mu,
    not lambda, because lambda is progress), negative (time-like) ones in red.

    Parameters
    ----------
    pictures : mapping of str to Picture
        Probe name to picture; all probes are drawn in the same panels.

    Returns
    -------
    dict
        Plotly figure dictionary.
    """
    layout = panels_layout(["cumulative, against number of axes", "signed eigenvalues μ"],
                           "number of axes k", ["explained (cumulative)", "eigenvalue μ"],
                           range=[0, 1.02])
    layout["yaxis2"] = axis_layout("eigenvalue μ", anchor="x2", zeroline=True, zerolinecolor="#888")
    layout["barmode"] = "group"
    data = []
    for p, (probe, picture) in enumerate(pictures.items()):
        k = np.arange(1, len(picture.eigenvalues) + 1)
        dash = _PROBE_DASH[p % len(_PROBE_DASH)]
        for key, name, colour in _CUMULATIVE:
            values = np.asarray(getattr(picture, key), dtype=float)
            data.append({
                "type": "scatter", "mode": "lines+markers", "name": f"{name} ({probe})",
                "x": k.tolist(), "y": rounded(values),
                "line": {"color": colour, "dash": dash}, "marker": {"size": 6},
                "hovertemplate": f"{name} ({probe})<br>k = %{{x}}: %{{y:.3f}}<extra></extra>",
            })
        eig = np.asarray(picture.eigenvalues, dtype=float)
        data.append({
            "type": "bar", "name": f"eigenvalues ({probe})", "x": k.tolist(), "y": rounded(eig),
            "marker": {"color": [TIME_LIKE_COLOUR if v < 0 else SPACE_LIKE_COLOUR for v in eig],
                       "opacity": 1.0 if p == 0 else 0.5},
            "hovertemplate": f"{probe}: μ<sub>%{{x}}</sub> = %{{y:.4g}}<extra></extra>",
            **panel_axes(1),
        })
    return {"data": data, "layout": layout}


def progress_figure(pictures: Mapping[str, Picture], colours: Mapping[str, str]) -> dict:
    """Progress along the ignorance-truth geodesic against epoch, one panel per probe.

    Parameters
    ----------
    pictures : mapping of str to Picture
    colours : mapping of str to str
        Group colours (see `group_colours`).

    Returns
    -------
    dict
        Plotly figure dictionary; one line per run, coloured by group.
    """
    layout = panels_layout([f"{probe} probe" for probe in pictures], "epoch", "progress λ",
                     range=[-0.02, 1.02])
    data = []
    for i, picture in enumerate(pictures.values()):
        data += _group_traces(
            picture.runs, colours,
            {"x": lambda r: np.asarray(r.epochs, dtype=float),
             "y": lambda r: np.asarray(r.progress, dtype=float)},
            trace_type="scatter", axes=panel_axes(i), showlegend=i == 0, marker_size=4,
            hovertemplate="<b>%{text}</b><br>epoch %{x:.4g} · progress %{y:.3f}<extra></extra>")
    layout["legend"]["title"] = {"text": ARCHITECTURE}
    return {"data": data, "layout": layout}


def accuracy_figure(picture: Picture, colours: Mapping[str, str]) -> dict:
    """Train and test accuracy against epoch, one line per run, side by side.

    Parameters
    ----------
    picture : Picture
        Its runs' ``metrics["train_acc"]`` and ``metrics["test_acc"]`` are drawn;
        a missing metric leaves its panel empty.
    colours : mapping of str to str
        Group colours (see `group_colours`).

    Returns
    -------
    dict
        Plotly figure dictionary.
    """
    layout = panels_layout([title for _, title in _ACCURACY_PANELS], "epoch", "accuracy",
                     range=[0, 1.02])
    data = []
    for i, (key, title) in enumerate(_ACCURACY_PANELS):
        data += _group_traces(
            picture.runs, colours,
            {"x": lambda r: np.asarray(r.epochs, dtype=float),
             "y": lambda r, key=key: _metric(r, key)},
            trace_type="scatter", axes=panel_axes(i), showlegend=i == 0, marker_size=4,
            hovertemplate=f"<b>%{{text}}</b><br>epoch %{{x:.4g}} · {title} %{{y:.3f}}"
                          "<extra></extra>")
    layout["legend"]["title"] = {"text": ARCHITECTURE}
    return {"data": data, "layout": layout}


def findings_figure(findings: Mapping[str, Any]) -> dict | None:
    """Factor effects (with bootstrap intervals) and distances along progress.

    Parameters
    ----------
    findings : mapping
        ``Findings.to_dict()`` of :func:`deepmanifold.analysis.analyze_store`.

    Returns
    -------
    dict or None
        Plotly figure dictionary with two panels, or None when there is nothing to draw.
        Left: each factor's effect Δ (mean trajectory distance over pairs differing in the
        factor and the seed, minus that of pairs differing in the seed only), with its
        bootstrap interval over configuration groups. Right: mean distance to the geodesic, and the
        tube width of each configuration, against progress.
    """
    analyses = findings.get("analyses") or {}
    effects = [e for e in (analyses.get("factor_effects") or {}).get("effects", [])
               if e.get("status") == "measured" and e.get("delta") is not None]
    geo = analyses.get("distance_to_geodesic") or {}
    tubes = (analyses.get("tube_width") or {}).get("by_configuration") or {}
    if not effects and not geo.get("mean"):
        return None
    layout = panels_layout(["factor effects (crossed seeds)", "along progress"], "",
                           ["Δ: d<sub>B</sub> beyond the seed's own", "d<sub>B</sub>"])
    layout["xaxis2"]["title"] = {"text": "progress"}
    data = []
    if effects:
        means = [float(e["delta"]) for e in effects]
        data.append({
            "type": "bar", "name": "factor effect", "x": [e["factor"] for e in effects], "y": means,
            "error_y": {"type": "data", "symmetric": False,
                        "array": [max(0.0, float(e["high"] or m) - m) for e, m in zip(effects, means)],
                        "arrayminus": [max(0.0, m - float(e["low"] or m)) for e, m in zip(effects, means)]},
            "marker": {"color": REFERENCE_COLOUR}, "showlegend": False,
            "hovertemplate": "%{x}: %{y:.4g}<extra></extra>", **panel_axes(0)})
    else:
        _empty_panel(layout, 0, no_effects_note(findings))
    grid = [float(t) for t in geo.get("grid") or []]

    def _line(name, values, dash):
        ys = [None if v is None else float(v) for v in values]
        return {"type": "scatter", "mode": "lines", "name": name, "x": grid, "y": ys,
                "line": {"dash": dash}, **panel_axes(1)}

    if grid and geo.get("mean"):
        data.append(_line("distance to the geodesic (mean over runs)", geo["mean"], "solid"))
    for name, values in tubes.items():
        data.append(_line(f"tube width: {name}", values, "dot"))
    return {"data": data, "layout": layout}


#: Characters per line of the text shown in an empty panel.
_NOTE_WIDTH = 58


def no_effects_note(findings: Mapping[str, Any]) -> str:
    """Why no factor effect was measured, from the factor analysis's own reasons.

    Returns
    -------
    str
        Plotly text (``<br>`` line breaks, escaped): a headline, then one line per
        factor without comparable pairs with its reason, then the factors that do not
        vary in the sweep, or the reason the factor analysis was skipped.
    """
    def wrapped(text: str) -> str:
        return "<br>".join(textwrap.wrap(html.escape(text), _NOTE_WIDTH, subsequent_indent="  "))

    lines = ["<b>no pairs differ in one factor</b>"]
    factor_effects = (findings.get("analyses") or {}).get("factor_effects")
    if not factor_effects:
        why = (findings.get("skipped") or {}).get("factor_effects") or "the factor analysis did not run"
        return "<br>".join(lines + [wrapped(str(why))])
    constant = []
    for effect in factor_effects.get("effects") or []:
        if effect.get("status") == _NOT_A_FACTOR:
            constant.append(str(effect.get("factor")))
        elif effect.get("status") != "measured" or effect.get("delta") is None:
            lines.append(wrapped(f"{effect.get('factor')}: {effect.get('reason') or effect.get('status')}"))
    if constant:
        lines.append(wrapped(f"one value in this sweep: {', '.join(constant)}"))
    return "<br>".join(lines)


def _empty_panel(layout: dict, i: int, text: str) -> None:
    """Hide the axes of panel `i` of a `panels_layout` layout and write `text` in it."""
    suffix = "" if i == 0 else str(i + 1)
    x_axis, y_axis = layout[f"xaxis{suffix}"], layout[f"yaxis{suffix}"]
    for axis in (x_axis, y_axis):
        axis.update(visible=False, showgrid=False)
    left, right = x_axis["domain"]
    layout["annotations"].append({
        "text": text, "showarrow": False, "xref": "paper", "yref": "paper",
        "x": (left + right) / 2, "y": 0.5, "xanchor": "center", "yanchor": "middle",
        "align": "left", "font": {"size": 12, "color": "#5f6b76"}})
