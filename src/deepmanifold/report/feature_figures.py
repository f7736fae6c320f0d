"""Figures of feature learning, from the runs that recorded the ``"nfa"`` measurement.

- :func:`nfa_figure` -- the Neural Feature Ansatz correlation against epoch, one panel per
  weight layer, one line per run.
- :func:`agop_figure` -- the input AGOP of one run per group at its last checkpoint, drawn
  as images: its diagonal (which pixels the outputs are sensitive to) and its leading
  eigenvectors.

Both read :attr:`deepmanifold.analysis.picture.RunTrace.features` (the arrays of
:mod:`deepmanifold.features.measurement`) and return ``None`` when no run has them.
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping, Sequence

import numpy as np

from deepmanifold.analysis.picture import Picture, RunTrace
from deepmanifold.report.figures import (ARCHITECTURE, _group_traces, _runs_by_group, base_layout, panel_axes,
                                         panels_layout)

__all__ = ["MAX_LAYER_PANELS", "agop_figure", "image_shape", "nfa_figure"]

#: Layers drawn by :func:`nfa_figure` (the first ones, then the last): deeper networks
#: would make panels too narrow to read.
MAX_LAYER_PANELS = 6


def _with(runs: Sequence[RunTrace], key: str) -> list[RunTrace]:
    return [run for run in runs if key in (run.features or {})]


def _layers_drawn(n_layers: int) -> list[int]:
    """Indices of the layers given a panel: all, or the first ones and the last."""
    if n_layers <= MAX_LAYER_PANELS:
        return list(range(n_layers))
    return list(range(MAX_LAYER_PANELS - 1)) + [n_layers - 1]


def nfa_figure(picture: Picture, colours: Mapping[str, str]) -> dict | None:
    """Pearson correlation of ``WᵀW`` with ``AGOP^α`` against epoch, one panel per layer.

    Parameters
    ----------
    picture : Picture
        Runs with ``features["nfa_pearson"]`` of shape (K, L) are drawn.
    colours : mapping of str to str
        Group colours (:func:`deepmanifold.report.figures.group_colours`).

    Returns
    -------
    dict or None
        Plotly figure dictionary; None when no run recorded the measurement. A run with
        fewer layers than the panel leaves it empty.
    """
    runs = _with(picture.runs, "nfa_pearson")
    if not runs:
        return None
    n_layers = max(np.asarray(run.features["nfa_pearson"]).shape[1] for run in runs)
    drawn = _layers_drawn(n_layers)
    layout = panels_layout([f"layer {i + 1}" for i in drawn], "epoch", "NFA correlation", range=[-0.05, 1.02])
    data = []
    for panel, layer in enumerate(drawn):
        def column(run: RunTrace, layer: int = layer) -> np.ndarray:
            values = np.asarray(run.features["nfa_pearson"], dtype=float)
            return values[:, layer] if layer < values.shape[1] else np.full(len(run.steps), np.nan)

        data += _group_traces(
            runs, colours, {"x": lambda r: np.asarray(r.epochs, dtype=float), "y": column},
            trace_type="scatter", axes=panel_axes(panel), showlegend=panel == 0, marker_size=3,
            hovertemplate=f"<b>%{{text}}</b><br>epoch %{{x:.4g}} · layer {layer + 1} correlation %{{y:.3f}}"
                          "<extra></extra>")
    layout["legend"]["title"] = {"text": ARCHITECTURE}
    return {"data": data, "layout": layout}


def image_shape(d: int) -> tuple[int, int, int] | None:
    """``(channels, height, width)`` of a flattened square image of ``d`` values (1 or 3
    channels), or None when ``d`` is neither ``s²`` nor ``3 s²``."""
    for channels in (1, 3):
        side = math.isqrt(d // channels) if d % channels == 0 else 0
        if side and channels * side * side == d:
            return channels, side, side
    return None


def _as_image(values: np.ndarray, shape: tuple[int, int, int], signed: bool) -> np.ndarray:
    """A flattened (C·H·W) vector as an (H, W) image: the channel itself, or, for colour
    images, the channels' mean (for the diagonal) or root-mean-square magnitude (for
    signed eigenvectors, whose channels' signs would cancel in a mean)."""
    img = np.asarray(values, dtype=float).reshape(shape)
    if shape[0] == 1:
        return img[0]
    return np.sqrt(np.mean(img ** 2, axis=0)) if signed else img.mean(axis=0)


def agop_figure(picture: Picture) -> dict | None:
    """The input AGOP of the first run of each group at its last checkpoint, as images.

    One row per group: the AGOP's diagonal (divided by its trace), then its leading
    eigenvectors (blue and red: opposite signs; for colour images their per-pixel
    magnitude). For inputs that are not square images the vectors are drawn as strips.

    Parameters
    ----------
    picture : Picture
        Runs with ``features["nfa_agop_diag"]`` (K, d) and ``features["nfa_agop_eigenvectors"]``
        (K, k, d).

    Returns
    -------
    dict or None
        Plotly figure dictionary of heatmaps; None when no run recorded the measurement.
    """
    runs = _with(picture.runs, "nfa_agop_diag")
    if not runs:
        return None
    chosen = [members[0] for members in _runs_by_group(runs).values()]
    last = [int(np.argmax(np.asarray(run.steps))) for run in chosen]
    vectors = [np.asarray(run.features.get("nfa_agop_eigenvectors", np.zeros((len(run.steps), 0, 1))))[k]
               for run, k in zip(chosen, last)]
    n_cols = 1 + max(v.shape[0] for v in vectors)
    n_rows = len(chosen)
    pixels = 80 + 220 * n_rows  # each row: a 190-pixel image under a 30-pixel title
    gap, row_gap = 0.02, 30 / pixels
    width, height = (1 - gap * (n_cols - 1)) / n_cols, (1 - row_gap * n_rows) / n_rows
    layout = base_layout(height=pixels, annotations=[], showlegend=False)
    data = []
    for row, (run, k, vecs) in enumerate(zip(chosen, last, vectors)):
        diag = np.asarray(run.features["nfa_agop_diag"], dtype=float)[k]
        shape = image_shape(diag.size)
        panels = [("diagonal", diag, False)] + [(f"eigenvector {j + 1}", vecs[j], True) for j in range(vecs.shape[0])]
        for col, (title, values, signed) in enumerate(panels):
            n = row * n_cols + col + 1
            suffix = "" if n == 1 else str(n)
            left, top = col * (width + gap), 1 - row_gap - row * (height + row_gap)
            z = _as_image(values, shape, signed) if shape else np.asarray(values, dtype=float)[None, :]
            signed_colours = signed and (shape is None or shape[0] == 1)
            bound = float(np.abs(z).max()) or 1.0
            data.append({
                "type": "heatmap", "z": np.round(z, 5).tolist(), "xaxis": f"x{suffix}", "yaxis": f"y{suffix}",
                "showscale": False, "colorscale": "RdBu" if signed_colours else "Viridis",
                **({"zmin": -bound, "zmax": bound} if signed_colours else {}),
                "hovertemplate": f"{html.escape(run.group)} · {title}<br>row %{{y}}, column %{{x}}: %{{z:.3g}}"
                                 "<extra></extra>"})
            layout[f"xaxis{suffix}"] = {"domain": [left, left + width], "anchor": f"y{suffix}", "visible": False}
            layout[f"yaxis{suffix}"] = {"domain": [top - height, top], "anchor": f"x{suffix}", "visible": False,
                                        "autorange": "reversed", "scaleanchor": f"x{suffix}"}
            label = f"<b>{html.escape(run.group)}</b> · {title}" if col == 0 else title
            layout["annotations"].append({"text": label, "showarrow": False, "xref": "paper", "yref": "paper",
                                          "x": left + width / 2, "y": top, "xanchor": "center",
                                          "yanchor": "bottom", "font": {"size": 12}})
    return {"data": data, "layout": layout}
