"""Figures of the analyses of `deepmanifold analyze` (one per analysis), from findings.json.

Each function takes ``Findings.to_dict()`` (what ``findings.json`` holds) and returns a
Plotly figure dictionary, or None when that analysis was skipped or has nothing to draw.
:func:`analysis_figures` lists the ones that exist, with a title and a one-line lead for
the report.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .figures import REFERENCE_COLOUR, axis_layout, base_layout, panel_axes, panels_layout

__all__ = [
    "analysis_figures",
    "averaging_figure",
    "corners_figure",
    "dendrogram_figure",
    "dimensionality_figure",
    "speed_figure",
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
    """Progress and accuracy of each average of the final models, beside the individual models."""
    avg = (findings.get("analyses") or {}).get("averaging")
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


_FIGURES = (
    ("dimensionality", "Dimensionality", dimensionality_figure,
     "Explained stress of the first InPCA axes for all checkpoints, against the null that keeps each "
     "run's endpoints and destroys shared structure (grey band: its mean ± 2 sd; dashed lines: the "
     "thresholds of the finding)."),
    ("dendrogram", "Configurations clustered", dendrogram_figure,
     "Complete-linkage dendrogram of the configurations (seeds averaged), from the mean Bhattacharyya "
     "distance of their trajectories at equal progress: configurations that travel the same path join low."),
    ("speed", "Speed against width", speed_figure,
     "Epochs each run needs to reach progress 0.5 and 0.9, against the network's width (lines: means "
     "over seeds; dots: runs). The same path travelled faster shows as falling lines."),
    ("corners", "Corners", corners_figure,
     "Distance of each corner-initialised run to the nearest ordinary run at equal progress (log scale), "
     "with the spread of the ordinary runs among themselves: a corner that joins the manifold falls into "
     "the grey band."),
    ("averaging", "Averaging final models", averaging_figure,
     "Progress (0 = ignorance, 1 = truth) and accuracy of five averages of the final models; the dashed "
     "line is the mean of the individual models."),
)


def analysis_figures(findings: Mapping[str, Any]) -> list[tuple[str, str, str, dict]]:
    """``(id, title, lead, figure)`` for every analysis of ``findings`` that has something to draw."""
    out = []
    for key, title, make, lead in _FIGURES:
        fig = make(findings)
        if fig is not None:
            out.append((f"dm-analysis-{key}", title, lead, fig))
    return out
