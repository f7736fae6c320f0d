"""Figures of the analyses of `deepmanifold analyze` (one per analysis), from findings.json.

Each function takes ``Findings.to_dict()`` (what ``findings.json`` holds) and returns a
Plotly figure dictionary, or None when that analysis was skipped or has nothing to draw.
:func:`analysis_figures` lists the ones that exist, with a title and a one-line lead for
the report.

The figures of the reference study's path analyses (:mod:`deepmanifold.analysis.tangent`,
:mod:`deepmanifold.analysis.paths`) read these entries of ``findings["analyses"]``, each
the ``to_dict()`` of its result:

``tangent``
    ``{"levels", "score", "full_score", "relative_score", "n_components", "eigenvalues",
    "signature", "references": {"names", "coords"}, "geodesic": {"t", "coords"},
    "runs": [{"run_id", "label", "coords", "progress"}]}``
``trajectory_inpca``
    ``{"runs": [{"run_id", "label", "coords", "distance_to_geodesic"}],
    "geodesic": {"coords"}, "eigenvalues", "signature", "explained_stress", "grid"}``
``geodesic_distance_by_group``
    ``{"grid", "groups": {key: [{"value", "runs", "mean", "sd", "n"}]}}``
``joint_embedding``
    ``{"probes", "n_samples", "eigenvalues", "signature", "explained_stress",
    "geodesic": {"t", "coords"}, "runs": [{"run_id", "label", "coords"}]}``
``trajectory_heatmap``
    ``{"run_ids", "run_labels", "matrix", "order", "grid"}``

where ``grid`` is ``{"name", "points", "low", "high"}``. Their runs are coloured by the
groups the page gives (``run_groups``: run id to group name and colour, the
architecture colouring of the pictures) and carry ``meta`` like the pictures' run traces,
so the page's colour menu regroups them too.
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from .figures import (GEODESIC_COLOUR, REFERENCE_COLOUR, _group_traces, axis_layout, axis_title, base_layout,
                      panel_axes, panels_layout, rounded)

__all__ = [
    "analysis_figures",
    "averaging_figure",
    "corners_figure",
    "dendrogram_figure",
    "dimensionality_figure",
    "geodesic_by_group_figure",
    "joint_embedding_figure",
    "speed_figure",
    "tangent_figure",
    "trajectory_heatmap_figure",
    "trajectory_inpca_figure",
]

_PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
            "#bcbd22", "#17becf")


def _floats(values) -> list:
    return [None if v is None else float(v) for v in values]


def dimensionality_figure(findings: Mapping[str, Any]) -> dict | None:
    """Explained stress against the number of InPCA axes, with the null's mean ± 2 sd."""
    dim = (findings.get("analyses") or {}).get("dimensionality")
    if not dim or not dim.get("explained_stress"):
        return None
    stress = _floats(dim["explained_stress"])
    axes = list(range(1, len(stress) + 1))
    data = []
    mean, sd = dim.get("null_stress_mean") or [], dim.get("null_stress_sd") or []
    if mean:
        m = _floats(mean)[:len(axes)]
        s = _floats(sd)[:len(m)] if sd else [0.0] * len(m)
        xs = axes[:len(m)]
        data.append({"type": "scatter", "mode": "lines", "x": xs + xs[::-1],
                     "y": [a + 2 * b for a, b in zip(m, s)] + [a - 2 * b for a, b in zip(m, s)][::-1],
                     "fill": "toself", "fillcolor": "rgba(127,127,127,0.2)", "line": {"width": 0},
                     "name": f"null ± 2 sd ({dim.get('null', '')}, {dim.get('n_null', 0)} draws)",
                     "hoverinfo": "skip"})
        data.append({"type": "scatter", "mode": "lines", "x": xs, "y": m, "name": "null mean",
                     "line": {"dash": "dot", "color": "#7f7f7f"}})
    data.append({"type": "scatter", "mode": "lines+markers", "x": axes, "y": stress,
                 "name": "explained stress (data)", "line": {"color": _PALETTE[0]}})
    shapes = [{"type": "line", "xref": "paper", "x0": 0, "x1": 1, "yref": "y", "y0": float(t), "y1": float(t),
               "line": {"color": "#bbb", "width": 1, "dash": "dash"}} for t in dim.get("thresholds") or []]
    layout = base_layout(height=380, shapes=shapes,
                          xaxis=axis_layout("number of InPCA axes", dtick=1),
                          yaxis=axis_layout("explained stress", range=[0, 1.02]))
    return {"data": data, "layout": layout}


def dendrogram_figure(findings: Mapping[str, Any]) -> dict | None:
    """Complete-linkage dendrogram of configurations (mean trajectory distance, seeds averaged)."""
    dn = (findings.get("analyses") or {}).get("dendrogram")
    if not dn or not dn.get("icoord"):
        return None
    data = [{"type": "scatter", "mode": "lines", "x": _floats(xs), "y": _floats(ys), "showlegend": False,
             "line": {"color": REFERENCE_COLOUR, "width": 1.5}, "hoverinfo": "y"}
            for xs, ys in zip(dn["icoord"], dn["dcoord"])]
    leaves = dn.get("leaf_names") or []
    longest = max((len(s) for s in leaves), default=0)
    # Leaves sit at 5, 15, 25, ... (scipy's dendrogram coordinates): the range [0, 10 n]
    # keeps every leaf strictly inside the axis, so plotly draws the first and last label.
    xaxis = axis_layout("", tickvals=[5 + 10 * i for i in range(len(leaves))], ticktext=leaves,
                        tickangle=-45, showgrid=False, range=[0, 10 * len(leaves)])
    layout = base_layout(height=max(380, 160 + 6 * longest), xaxis=xaxis,
                         yaxis=axis_layout("mean trajectory distance, d<sub>B</sub>"))
    layout["margin"] = {"l": 60, "r": 20, "t": 20, "b": 40}  # automargin adds the labels' room
    return {"data": data, "layout": layout}


def speed_figure(findings: Mapping[str, Any]) -> dict | None:
    """Epochs to reach each progress level against width, per architecture (mean and runs)."""
    by_width = ((findings.get("analyses") or {}).get("speed") or {}).get("by_width") or {}
    archs = by_width.get("architectures") or {}
    if not archs:
        return None
    levels = [str(lv) for lv in by_width.get("levels") or []]
    data = []
    for a, (arch, info) in enumerate(sorted(archs.items())):
        colour = _PALETTE[a % len(_PALETTE)]
        for k, level in enumerate(levels):
            widths, means, run_x, run_y = [], [], [], []
            for entry in info.get("widths") or []:
                cell = (entry.get("epochs") or {}).get(level) or {}
                widths.append(entry["width"])
                means.append(cell.get("mean"))
                for v in cell.get("values") or []:
                    if v is not None:
                        run_x.append(entry["width"])
                        run_y.append(float(v))
            dash = ("solid", "dash", "dot", "dashdot")[k % 4]
            data.append({"type": "scatter", "mode": "lines+markers", "x": widths, "y": _floats(means),
                         "name": f"{arch}: progress {level}", "line": {"color": colour, "dash": dash},
                         "legendgroup": arch})
            data.append({"type": "scatter", "mode": "markers", "x": run_x, "y": run_y, "showlegend": False,
                         "marker": {"color": colour, "size": 5, "opacity": 0.5}, "legendgroup": arch,
                         "hovertemplate": f"{arch}, width %{{x}}: %{{y:.3g}} epochs to {level}<extra></extra>"})
    layout = base_layout(height=400, xaxis=axis_layout("width", type="log"),
                          yaxis=axis_layout("epochs to reach the progress level"))
    return {"data": data, "layout": layout}


def corners_figure(findings: Mapping[str, Any]) -> dict | None:
    """Distance of each corner run to the nearest ordinary run at equal progress, against
    progress, over the spread of the ordinary runs among themselves (median and max)."""
    cor = (findings.get("analyses") or {}).get("corners")
    if not cor:
        return None
    grid = _floats(cor.get("grid") or [])
    data = []
    spread = (cor.get("ordinary") or {}).get("spread") or {}
    for key, dash, name in (("max", "dot", "ordinary runs: max distance to the nearest other"),
                            ("median", "dash", "ordinary runs: median distance to the nearest other")):
        if spread.get(key):
            data.append({"type": "scatter", "mode": "lines", "x": grid, "y": _floats(spread[key]), "name": name,
                         "line": {"color": "#7f7f7f", "dash": dash}})
    corner = cor.get("corner") or {}
    for i, (run, curve) in enumerate(zip(corner.get("runs") or [], corner.get("distance") or [])):
        data.append({"type": "scatter", "mode": "lines", "x": grid, "y": _floats(curve), "name": str(run),
                     "line": {"color": _PALETTE[i % len(_PALETTE)]}})
    if not data:
        return None
    layout = base_layout(height=420, xaxis=axis_layout("progress"),
                          yaxis=axis_layout("d<sub>B</sub> to the nearest ordinary run (log)", type="log"))
    return {"data": data, "layout": layout}


def averaging_figure(findings: Mapping[str, Any]) -> dict | None:
    """Progress and accuracy of each average of the ordinary runs' final models (pooled), beside
    the individual models."""
    avg = (findings.get("analyses") or {}).get("averaging")
    avg = (avg or {}).get("pooled") or avg  # pooled over the ordinary runs, when given per group too
    if not avg:
        return None
    methods = [m for m, v in avg.items() if isinstance(v, Mapping) and "progress" in v and m != "individual"]
    if not methods:
        return None
    ind = avg.get("individual") or {}
    layout = panels_layout(["progress", "accuracy"], "", ["", ""])
    data = []
    for panel, key in enumerate(("progress", "accuracy")):
        data.append({"type": "bar", "x": methods, "y": [avg[m].get(key) for m in methods], "showlegend": False,
                     "marker": {"color": _PALETTE[panel]}, "hovertemplate": "%{x}: %{y:.4g}<extra></extra>",
                     **panel_axes(panel)})
        mean = ind.get(f"{key}_mean")
        if mean is not None:
            data.append({"type": "scatter", "mode": "lines", "x": [methods[0], methods[-1]],
                         "y": [mean, mean], "name": f"individual models: mean {key}",
                         "line": {"color": REFERENCE_COLOUR, "dash": "dash"},
                         **panel_axes(panel)})
    return {"data": data, "layout": layout}


# ----------------------------------------------------------------------------- path analyses
#: Group of the runs the page's colouring does not know; their traces carry no ``meta``, so the
#: colour menu leaves them as they are.
_OTHER_RUNS = ("other runs", "#7f7f7f")
#: Symbols of the four reference models of the tangent picture, in their order.
_REFERENCE_SYMBOLS = ("x", "circle-open", "square-open", "diamond")
#: Runs beyond which the heatmap drops its tick labels (then its hover text).
_HEATMAP_TICKS, _HEATMAP_HOVER = 60, 150


def _analysis(findings: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    """``findings["analyses"][key]``, or an empty mapping when that analysis is absent."""
    return (findings.get("analyses") or {}).get(key) or {}


def _column(rows, i: int) -> np.ndarray:
    """Column ``i`` of a list of coordinate rows (None -> NaN); NaN when the rows have no such column."""
    arr = np.array(rows if len(rows) else np.zeros((0, i + 1)), dtype=float, ndmin=2)
    return arr[:, i] if arr.shape[1] > i else np.full(arr.shape[0], np.nan)


@dataclass
class _Run:
    """A run of findings.json as :func:`figures._group_traces` reads it: id, display name,
    group, and its points' columns (``steps`` only orders the points: they are in order)."""

    run_id: str
    run_label: str
    group: str
    columns: dict
    steps: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        self.steps = np.arange(len(next(iter(self.columns.values()))))


def _run_traces(runs, run_groups: Mapping[str, tuple[str, str]] | None,
                columns: Mapping[str, Callable[[Mapping], Any]], *, hovertemplate: str,
                axes: Mapping[str, str] | None = None, showlegend: bool = True, marker_size: float = 5) -> list[dict]:
    """One trace per group of the runs of a findings entry, as the pictures draw theirs.

    ``run_groups`` maps a run id to its group name and colour; runs it does not name are
    drawn grey as :data:`_OTHER_RUNS`, without ``meta`` (the page could not regroup them).
    """
    known = run_groups or {}
    colours, unknown, objs = {}, set(), []
    for run in runs:
        rid = str(run.get("run_id"))
        group, colour = known.get(rid, _OTHER_RUNS)
        if rid not in known:
            unknown.add(rid)
        colours[group] = colour
        objs.append(_Run(rid, str(run.get("label", rid)),
                         group, {name: np.asarray(fn(run), dtype=float) for name, fn in columns.items()}))
    traces = _group_traces(objs, colours, {name: (lambda r, name=name: r.columns[name]) for name in columns},
                           trace_type="scatter", axes=axes, showlegend=showlegend, marker_size=marker_size,
                           hovertemplate=hovertemplate)
    for trace in traces:
        if unknown & set(trace["meta"]["runs"]):
            del trace["meta"]
    return traces


def _grid_text(grid: Mapping[str, Any] | None) -> str:
    """``"all, 101 points from 0 to 1"`` for a findings ``grid`` entry (HTML-escaped)."""
    if not grid:
        return "grid not recorded"
    span = (f" from {grid['low']:g} to {grid['high']:g}" if grid.get("low") is not None
            and grid.get("high") is not None else "")
    return html.escape(f"{grid.get('name', '')}, {grid.get('points', '?')} points{span}")


def _legend(run_groups) -> dict:
    """Legend of a figure whose runs are coloured like the pictures' (by architecture first)."""
    return {"title": {"text": "architecture"}} if run_groups else {}


def _tangent_references(tan: Mapping[str, Any], a: int, b: int, panel: int) -> list[dict]:
    """The geodesic and the four reference models in panel ``panel`` (axes ``a``, ``b``)."""
    axes, shown = panel_axes(panel), panel == 0
    geo = tan.get("geodesic") or {}
    out = []
    if geo.get("coords"):
        out.append({"type": "scatter", "mode": "lines", "name": "geodesic (ignorance → truth)",
                    "x": rounded(_column(geo["coords"], a)), "y": rounded(_column(geo["coords"], b)),
                    "line": {"color": GEODESIC_COLOUR, "width": 3}, "showlegend": shown,
                    "legendgroup": "geodesic", "hoverinfo": "skip", **axes})
    refs = tan.get("references") or {}
    for i, (name, point) in enumerate(zip(refs.get("names") or [], refs.get("coords") or [])):
        out.append({"type": "scatter", "mode": "markers", "name": html.escape(str(name)),
                    "x": rounded(_column([point], a)), "y": rounded(_column([point], b)),
                    "marker": {"color": REFERENCE_COLOUR, "size": 11, "symbol": _REFERENCE_SYMBOLS[i % 4],
                               "line": {"color": "#000", "width": 2}},
                    "showlegend": shown, "legendgroup": f"reference {i}", "hoverinfo": "name", **axes})
    return out


def tangent_figure(findings: Mapping[str, Any], run_groups: Mapping[str, tuple[str, str]] | None = None
                   ) -> dict | None:
    """The tangent picture: every checkpoint placed in the InPCA of ignorance, truth and two
    mean models (axes 1-2 and 1-3), with those four models and the geodesic."""
    tan = _analysis(findings, "tangent")
    eig = _floats(tan.get("eigenvalues") or [])
    if not tan.get("runs") or len(eig) < 2:
        return None
    pairs = [(0, 1)] + ([(0, 2)] if len(eig) >= 3 else [])
    layout = panels_layout([f"InPCA {a + 1} and {b + 1}" for a, b in pairs], axis_title(0, eig[0]),
                           [axis_title(b, eig[b]) for _, b in pairs])
    layout["legend"].update(_legend(run_groups))
    data = []
    for p, (a, b) in enumerate(pairs):
        data += _run_traces(
            tan["runs"], run_groups,
            {"x": lambda r, a=a: _column(r.get("coords") or [], a),
             "y": lambda r, b=b: _column(r.get("coords") or [], b),
             "customdata": lambda r: _floats(r.get("progress") or [None] * len(r.get("coords") or []))},
            axes=panel_axes(p), showlegend=p == 0,
            hovertemplate="<b>%{text}</b><br>progress %{customdata:.3f}<extra></extra>")
    for p, (a, b) in enumerate(pairs):
        data += _tangent_references(tan, a, b, p)
    return {"data": data, "layout": layout}


def _tangent_lead(findings: Mapping[str, Any]) -> str:
    tan = _analysis(findings, "tangent")
    levels = " and ".join(f"{v:g}" for v in _floats(tan.get("levels") or []) if v is not None) or "?"
    lead = ("Every checkpoint placed (Gower projection) in the InPCA of four models only: ignorance, "
            f"truth, and the runs' mean models at progress {levels}.")
    score, full, ratio = (tan.get(k) for k in ("score", "full_score", "relative_score"))
    if score is not None and full is not None:
        k = tan.get("n_components", "k")
        lead += (f" It reproduces <b>{score:.1%}</b> of the checkpoints' distances "
                 f"(score 1 − ‖D − D̂‖<sub>F</sub>/‖D‖<sub>F</sub> = {score:.3f}); the InPCA of all "
                 f"checkpoints on the same {k} axes reproduces {full:.1%} ({full:.3f})")
        lead += f", ratio <b>{ratio:.3f}</b>." if ratio is not None else "."
        lead += " A ratio near 1: the runs' mean path spans what the runs explore."
    return lead


def trajectory_inpca_figure(findings: Mapping[str, Any],
                            run_groups: Mapping[str, tuple[str, str]] | None = None) -> dict | None:
    """InPCA of whole runs, one point each, with the geodesic as a reference trajectory."""
    ti = _analysis(findings, "trajectory_inpca")
    eig = _floats(ti.get("eigenvalues") or [])
    if not ti.get("runs") or not eig:
        return None
    second = 1 if len(eig) > 1 else None
    y_of = (lambda r: _column([r.get("coords") or []], second)) if second else \
        (lambda r: [r.get("distance_to_geodesic")])
    data = _run_traces(
        ti["runs"], run_groups,
        {"x": lambda r: _column([r.get("coords") or []], 0), "y": y_of,
         "customdata": lambda r: _floats([r.get("distance_to_geodesic")])},
        marker_size=10, hovertemplate="<b>%{text}</b><br>d<sub>B</sub> to the geodesic %{customdata:.3g}"
                                      "<extra></extra>")
    geo = (ti.get("geodesic") or {}).get("coords") or []
    if geo:
        data.append({"type": "scatter", "mode": "markers", "name": "geodesic (reference trajectory)",
                     "x": rounded(_column([geo], 0)),
                     "y": rounded(_column([geo], 1)) if second else [0.0],
                     "marker": {"color": GEODESIC_COLOUR, "size": 16, "symbol": "star",
                                "line": {"color": "#fff", "width": 1}}, "hoverinfo": "name"})
    y_title = axis_title(1, eig[1]) if second else "d<sub>B</sub> to the geodesic"
    layout = base_layout(height=480, xaxis=axis_layout(axis_title(0, eig[0])), yaxis=axis_layout(y_title),
                         legend={**base_layout()["legend"], **_legend(run_groups)})
    return {"data": data, "layout": layout}


def _trajectory_inpca_lead(findings: Mapping[str, Any]) -> str:
    grid = _grid_text(_analysis(findings, "trajectory_inpca").get("grid"))
    return ("Each run is one point: InPCA of the trajectory distances (mean d<sub>B</sub> at equal "
            f"progress; grid: {grid}), with the ignorance–truth geodesic added as a reference "
            "trajectory (black star). Runs near the star follow the geodesic; runs close together "
            "travel the same path.")


def geodesic_by_group_figure(findings: Mapping[str, Any]) -> dict | None:
    """Distance to the geodesic against progress, one panel per configuration key (architecture,
    optimiser), one line per value with a band of ± 1 sd across its runs."""
    gb = _analysis(findings, "geodesic_distance_by_group")
    grid = _floats(gb.get("grid") or [])
    groups = {k: v for k, v in (gb.get("groups") or {}).items() if v}
    if not grid or not groups:
        return None
    layout = panels_layout([f"by {key}" for key in groups], "progress", "d<sub>B</sub> to the geodesic")
    data = []
    for p, (key, curves) in enumerate(groups.items()):
        for i, curve in enumerate(curves):
            colour, name = _PALETTE[i % len(_PALETTE)], html.escape(f"{key}: {curve.get('value')}")
            mean, sd = _floats(curve.get("mean") or []), _floats(curve.get("sd") or [])
            band = [(t, m, s) for t, m, s in zip(grid, mean, sd) if m is not None and s is not None]
            if band:
                xs = [t for t, _, _ in band]
                data.append({"type": "scatter", "mode": "lines", "x": xs + xs[::-1],
                             "y": [m + s for _, m, s in band] + [m - s for _, m, s in band][::-1],
                             "fill": "toself", "fillcolor": _translucent(colour), "line": {"width": 0},
                             "showlegend": False, "legendgroup": name, "hoverinfo": "skip", **panel_axes(p)})
            data.append({"type": "scatter", "mode": "lines", "x": grid, "y": mean, "name": name,
                         "legendgroup": name, "line": {"color": colour, "width": 2},
                         "customdata": [int(n) for n in curve.get("n") or []],
                         "hovertemplate": f"{name}<br>progress %{{x:.2f}}: %{{y:.4g}} "
                                          "(%{customdata} runs)<extra></extra>", **panel_axes(p)})
    return {"data": data, "layout": layout}


def _translucent(colour: str, alpha: float = 0.15) -> str:
    """``rgba`` of a ``#rrggbb`` colour at opacity ``alpha``."""
    r, g, b = (int(colour[i:i + 2], 16) for i in (1, 3, 5))
    return f"rgba({r},{g},{b},{alpha})"


def joint_embedding_figure(findings: Mapping[str, Any],
                           run_groups: Mapping[str, tuple[str, str]] | None = None) -> dict | None:
    """All checkpoints embedded on the two probe sets joined (axes 1 and 2), with the geodesic."""
    je = _analysis(findings, "joint_embedding")
    eig = _floats(je.get("eigenvalues") or [])
    if not je.get("runs") or len(eig) < 2:
        return None
    data = _run_traces(je["runs"], run_groups,
                       {"x": lambda r: _column(r.get("coords") or [], 0),
                        "y": lambda r: _column(r.get("coords") or [], 1)},
                       hovertemplate="<b>%{text}</b><extra></extra>")
    geo = (je.get("geodesic") or {}).get("coords") or []
    if geo:
        data.append({"type": "scatter", "mode": "lines", "name": "geodesic (ignorance → truth)",
                     "x": rounded(_column(geo, 0)), "y": rounded(_column(geo, 1)),
                     "line": {"color": GEODESIC_COLOUR, "width": 3}, "hoverinfo": "skip"})
        for name, row, symbol in (("ignorance P₀", geo[0], "x"), ("truth P*", geo[-1], "diamond")):
            data.append({"type": "scatter", "mode": "markers", "name": name, "hoverinfo": "name",
                         "x": rounded(_column([row], 0)), "y": rounded(_column([row], 1)),
                         "marker": {"color": REFERENCE_COLOUR, "size": 10, "symbol": symbol,
                                    "line": {"color": "#000", "width": 1}}})
    layout = base_layout(height=480, xaxis=axis_layout(axis_title(0, eig[0])), yaxis=axis_layout(axis_title(1, eig[1])),
                         legend={**base_layout()["legend"], **_legend(run_groups)})
    return {"data": data, "layout": layout}


def _joint_lead(findings: Mapping[str, Any]) -> str:
    je = _analysis(findings, "joint_embedding")
    parts = " + ".join(f"{html.escape(str(p))} ({n:,} samples)" for p, n in
                       zip(je.get("probes") or [], je.get("n_samples") or []))
    return (f"Every checkpoint embedded on the probe sets joined: {parts or 'two probes'}. On the joined "
            "samples a checkpoint is one product distribution, so its d<sub>B</sub> is the sample-weighted "
            "mean of the two probes' d<sub>B</sub>. Black: the geodesic on the joined samples.")


def trajectory_heatmap_figure(findings: Mapping[str, Any]) -> dict | None:
    """The trajectory distance matrix, runs in dendrogram order."""
    hm = _analysis(findings, "trajectory_heatmap")
    matrix, labels = hm.get("matrix") or [], [str(s) for s in hm.get("run_labels") or []]
    if len(matrix) < 2 or len(labels) != len(matrix):
        return None
    R = len(labels)
    idx = list(range(R))
    trace = {"type": "heatmap", "z": [_floats(row) for row in matrix], "x": idx, "y": idx,
             "colorscale": "Viridis", "colorbar": {"title": {"text": "d<sub>B</sub>"}},
             "hovertemplate": "%{z:.4g}<extra></extra>"}
    if R <= _HEATMAP_HOVER:
        names = [html.escape(s) for s in labels]
        trace["text"] = [[f"{names[i]}<br>{names[j]}" for j in idx] for i in idx]
        trace["hovertemplate"] = "%{text}<br>d<sub>B</sub> %{z:.4g}<extra></extra>"
    ticks = {"tickvals": idx, "ticktext": [html.escape(s) for s in labels]} if R <= _HEATMAP_TICKS \
        else {"showticklabels": False}
    size = min(900, max(420, 220 + 14 * R))
    layout = base_layout(height=size, xaxis=axis_layout("", tickangle=-45, showgrid=False, **ticks),
                         yaxis=axis_layout("", autorange="reversed", showgrid=False, **ticks))
    return {"data": [trace], "layout": layout}


def _heatmap_lead(findings: Mapping[str, Any]) -> str:
    grid = _grid_text(_analysis(findings, "trajectory_heatmap").get("grid"))
    return ("Trajectory distance between every two runs (mean d<sub>B</sub> at equal progress; grid: "
            f"{grid}), in the order of the leaves of their complete-linkage dendrogram: blocks of low "
            "distance are runs that travel the same path.")


#: ``(key, title, figure, lead, coloured)`` of each analysis figure, in page order: ``lead`` is
#: HTML text or a function of the findings giving it; ``coloured`` figures draw runs and take
#: the page's ``run_groups``.
_FIGURES = (
    ("dimensionality", "Dimensionality", dimensionality_figure,
     "Explained stress of the first InPCA axes for all checkpoints, against the null that keeps each "
     "run's endpoints and destroys shared structure (grey band: its mean ± 2 sd; dashed lines: the "
     "thresholds of the finding).", False),
    ("tangent", "Tangent picture: four models", tangent_figure, _tangent_lead, True),
    ("dendrogram", "Configurations clustered", dendrogram_figure,
     "Complete-linkage dendrogram of the configurations (seeds averaged), from the mean Bhattacharyya "
     "distance of their trajectories at equal progress: configurations that travel the same path join low.",
     False),
    ("trajectory-heatmap", "Trajectory distances", trajectory_heatmap_figure, _heatmap_lead, False),
    ("trajectory-inpca", "Runs as points", trajectory_inpca_figure, _trajectory_inpca_lead, True),
    ("geodesic-by-group", "Distance to the geodesic by architecture and optimiser", geodesic_by_group_figure,
     "Distance of the runs to the ignorance–truth geodesic at each progress, averaged over the runs of "
     "each architecture and of each optimiser that reached it (bands: ± 1 sd across those runs).", False),
    ("speed", "Speed against width", speed_figure,
     "Epochs each run needs to reach progress 0.5 and 0.9, against the network's width (lines: means "
     "over seeds; dots: runs). The same path travelled faster shows as falling lines.", False),
    ("corners", "Corners", corners_figure,
     "Distance of each corner-initialised run to the nearest ordinary run at equal progress (log scale), "
     "with the spread of the ordinary runs among themselves: a corner that joins the manifold falls into "
     "the grey band.", False),
    ("joint-embedding", "Train and test probes together", joint_embedding_figure, _joint_lead, True),
    ("averaging", "Averaging final models", averaging_figure,
     "Progress (0 = ignorance, 1 = truth) and accuracy of five averages of the final models; the dashed "
     "line is the mean of the individual models.", False),
)


def analysis_figures(findings: Mapping[str, Any], run_groups: Mapping[str, tuple[str, str]] | None = None
                     ) -> list[tuple[str, str, str, dict]]:
    """``(id, title, lead, figure)`` for every analysis of ``findings`` that has something to draw.

    Parameters
    ----------
    findings : mapping
        ``Findings.to_dict()``; an analysis whose entry is absent draws nothing.
    run_groups : mapping of str to (str, str), optional
        Run id to the group name and colour the pictures give it (architecture), for the
        figures that draw runs; without it their runs are one grey group.
    """
    out = []
    for key, title, make, lead, coloured in _FIGURES:
        fig = make(findings, run_groups) if coloured else make(findings)
        if fig is not None:
            out.append((f"dm-analysis-{key}", title, lead(findings) if callable(lead) else lead, fig))
    return out
