"""Figures of what the layers do, from the runs that recorded the layer measurements.

- :func:`layer_grid_figure` -- one measurement's quantities (rows) per layer (columns)
  against epoch, one line per run: capacity α_M, R_M, D_M and centre correlation; NC1 to
  NC4 and the effective rank.
- :func:`information_plane_figure` -- each layer's path in the information plane
  (I(X;T) across, I(T;Y) up), by binning and by the pairwise-distance bound.
- :func:`capacity_gain_figure` -- "where does learning happen": the capacity gained from
  the first checkpoint to the last at each layer, one line per run.

They read :attr:`deepmanifold.analysis.picture.RunTrace.features` (the arrays of
:mod:`deepmanifold.probes.measurement`) and return ``None`` when no run has them.
"""

from __future__ import annotations

import dataclasses
import html
from collections.abc import Mapping, Sequence

import numpy as np

from deepmanifold.analysis.picture import Picture, RunTrace
from deepmanifold.report.feature_figures import _layers_drawn
from deepmanifold.report.figures import (ARCHITECTURE, _group_traces, _runs_by_group, axis_layout, base_layout,
                                         rounded)

__all__ = ["CAPACITY_ROWS", "COLLAPSE_ROWS", "capacity_gain_figure", "grid_layout", "information_plane_figure",
           "layer_grid_figure"]

#: Rows of the capacity figure: array name -> axis title.
CAPACITY_ROWS = {"capacity_alpha": "capacity α_M", "capacity_radius": "radius R_M",
                 "capacity_dimension": "dimension D_M", "capacity_center_correlation": "centre correlation"}
#: Rows of the neural-collapse figure (NC1 on a log scale: it falls by orders of magnitude).
COLLAPSE_ROWS = {"collapse_nc1": "NC1", "collapse_nc2_equinorm": "NC2 equinorm",
                 "collapse_nc2_equiangle": "NC2 equiangle", "collapse_nc3": "NC3", "collapse_nc4": "NC4",
                 "collapse_effective_rank": "effective rank"}
_LOG_ROWS = {"collapse_nc1"}


def _with(runs: Sequence[RunTrace], key: str) -> list[RunTrace]:
    """The runs that recorded ``key``, each cut to the checkpoints where it was measured (a
    measurement evaluated at every k-th checkpoint leaves NaN rows, which would break its lines)."""
    out = []
    for run in runs:
        if key not in (run.features or {}):
            continue
        values = np.asarray(run.features[key], dtype=float)
        rows = np.isfinite(values.reshape(len(values), -1)).any(axis=1)
        if rows.all():
            out.append(run)
        elif rows.any():
            out.append(dataclasses.replace(
                run, steps=np.asarray(run.steps)[rows], epochs=np.asarray(run.epochs)[rows],
                features={k: np.asarray(v)[rows] for k, v in run.features.items() if len(v) == len(rows)}))
    return out


def _column(key: str, layer: int):
    def column(run: RunTrace) -> np.ndarray:
        values = np.asarray(run.features[key], dtype=float)
        return values[:, layer] if layer < values.shape[1] else np.full(len(run.steps), np.nan)
    return column


def grid_layout(rows: Sequence[str], columns: Sequence[str], x_title: str, *, log_rows: Sequence[int] = (),
                row_height: int = 210) -> dict:
    """Layout of a grid of panels, ``rows`` (y-axis titles, one per row) by ``columns`` (panel
    titles on the top row); panel ``(r, c)`` uses axes number ``r·len(columns) + c + 1``; every
    panel has its own y scale (log for the rows in ``log_rows``)."""
    n_rows, n_cols = len(rows), len(columns)
    gap_x, gap_y = (0.08 if n_cols > 1 else 0.0), 0.35 / max(n_rows, 1) if n_rows > 1 else 0.0
    width = (1.0 - gap_x * (n_cols - 1)) / n_cols
    height = (1.0 - gap_y * (n_rows - 1)) / n_rows
    layout = base_layout(annotations=[], height=120 + row_height * n_rows)
    for r, y_title in enumerate(rows):
        top = 1.0 - r * (height + gap_y)
        for c, title in enumerate(columns):
            i = r * n_cols + c
            suffix = "" if i == 0 else str(i + 1)
            left = c * (width + gap_x)
            layout[f"xaxis{suffix}"] = axis_layout(x_title if r == n_rows - 1 else "", domain=[left, left + width],
                                                   anchor=f"y{suffix}")
            layout[f"yaxis{suffix}"] = axis_layout(y_title if c == 0 else "", domain=[top - height, top],
                                                   anchor=f"x{suffix}", **({"type": "log"} if r in log_rows else {}))
            if r == 0:
                layout["annotations"].append({
                    "text": f"<b>{html.escape(title)}</b>", "showarrow": False, "xref": "paper", "yref": "paper",
                    "x": left + width / 2, "y": 1.0, "xanchor": "center", "yanchor": "bottom", "font": {"size": 14}})
    return layout


def _axes(i: int) -> dict:
    suffix = "" if i == 0 else str(i + 1)
    return {"xaxis": f"x{suffix}", "yaxis": f"y{suffix}"}


def _layer_names(runs: Sequence[RunTrace], key: str) -> list[int]:
    return _layers_drawn(max(np.asarray(run.features[key]).shape[1] for run in runs))


def layer_grid_figure(picture: Picture, colours: Mapping[str, str], rows: Mapping[str, str]) -> dict | None:
    """Quantities (rows) per layer (columns) against epoch, one line per run.

    Parameters
    ----------
    picture : Picture
        Runs whose ``features`` hold the arrays named by ``rows``, each (K, L), are drawn.
    colours : mapping of str to str
        Group colours.
    rows : mapping of str to str
        Array name -> its axis title (:data:`CAPACITY_ROWS`, :data:`COLLAPSE_ROWS`); rows
        no run recorded are left out.

    Returns
    -------
    dict or None
        Plotly figure; None when no run recorded any row. Up to
        :data:`~deepmanifold.report.feature_figures.MAX_LAYER_PANELS` layers are drawn
        (the first ones and the last).
    """
    present = [key for key in rows if _with(picture.runs, key)]
    if not present:
        return None
    drawn = _layer_names(_with(picture.runs, present[0]), present[0])
    layout = grid_layout([rows[k] for k in present], [f"layer {i + 1}" for i in drawn], "epoch",
                         log_rows=[r for r, k in enumerate(present) if k in _LOG_ROWS])
    data = []
    for r, key in enumerate(present):
        runs = _with(picture.runs, key)
        for c, layer in enumerate(drawn):
            data += _group_traces(
                runs, colours, {"x": lambda run: np.asarray(run.epochs, dtype=float), "y": _column(key, layer)},
                trace_type="scatter", axes=_axes(r * len(drawn) + c), showlegend=(r, c) == (0, 0), marker_size=3,
                hovertemplate=f"<b>%{{text}}</b><br>epoch %{{x:.4g}} · layer {layer + 1} {html.escape(rows[key])} "
                              "%{y:.4g}<extra></extra>")
    layout["legend"]["title"] = {"text": ARCHITECTURE}
    return {"data": data, "layout": layout}


def information_plane_figure(picture: Picture, colours: Mapping[str, str]) -> dict | None:
    """Each layer's path in the information plane, one line per run, from the first
    checkpoint to the last: binning on the top row, the pairwise-distance bound below."""
    methods = [m for m in ("binning", "kde") if _with(picture.runs, f"infoplane_ixt_{m}")]
    if not methods:
        return None
    key = f"infoplane_ixt_{methods[0]}"
    drawn = _layer_names(_with(picture.runs, key), key)
    titles = {"binning": "I(T;Y), binning (bits)", "kde": "I(T;Y), pairwise bound (bits)"}
    layout = grid_layout([titles[m] for m in methods], [f"layer {i + 1}" for i in drawn], "I(X;T) (bits)")
    data = []
    for r, method in enumerate(methods):
        runs = _with(picture.runs, f"infoplane_ixt_{method}")
        for c, layer in enumerate(drawn):
            data += _group_traces(
                runs, colours, {"x": _column(f"infoplane_ixt_{method}", layer),
                                "y": _column(f"infoplane_ity_{method}", layer)},
                trace_type="scatter", axes=_axes(r * len(drawn) + c), showlegend=(r, c) == (0, 0), marker_size=3,
                hovertemplate=f"<b>%{{text}}</b><br>layer {layer + 1} · I(X;T) %{{x:.3f}} · I(T;Y) %{{y:.3f}} bits"
                              "<extra></extra>")
    layout["legend"]["title"] = {"text": ARCHITECTURE}
    return {"data": data, "layout": layout}


def capacity_gain_figure(picture: Picture, colours: Mapping[str, str]) -> dict | None:
    """Where learning happens: per layer (across), the capacity at the last checkpoint minus
    the first (up), one line per run; None when no run recorded the capacity."""
    runs = _with(picture.runs, "capacity_alpha")
    if not runs:
        return None
    data = []
    for group, members in _runs_by_group(runs).items():
        xs: list = []
        ys: list = []
        text: list = []
        lengths = []
        for j, run in enumerate(members):
            alpha = np.asarray(run.features["capacity_alpha"], dtype=float)
            order = np.argsort(np.asarray(run.steps), kind="stable")
            gain = alpha[order[-1]] - alpha[order[0]]
            if j:
                xs.append(None), ys.append(None), text.append(None)
            xs += list(range(1, len(gain) + 1))
            ys += rounded(gain)
            text += [html.escape(run.run_label)] * len(gain)
            lengths.append(len(gain))
        colour = colours[group]
        data.append({"type": "scatter", "mode": "lines+markers", "name": html.escape(group), "legendgroup": group,
                     "line": {"color": colour, "width": 2}, "marker": {"color": colour, "size": 6},
                     "x": xs, "y": ys, "text": text, "meta": {"runs": [r.run_id for r in members],
                                                            "lengths": lengths},
                     "hovertemplate": "<b>%{text}</b><br>layer %{x} · capacity gain %{y:.4g}<extra></extra>"})
    layout = base_layout(height=420, xaxis=axis_layout("layer (input side → output)", dtick=1),
                         yaxis=axis_layout("capacity gain α_M(last) − α_M(first)"))
    layout["legend"]["title"] = {"text": ARCHITECTURE}
    return {"data": data, "layout": layout}

