"""The data map of a store's runs: every probe sample by its confidence and variability.

:func:`data_map_figure` draws, for one run at a time (a menu picks the run), each sample
of the probe set at its variability (x) and confidence (y) over the checkpoints, coloured by
its correctness (Swayamdipta et al. 2020; :mod:`deepmanifold.analysis.samples`); samples
whose training label was flipped are drawn as crosses. :func:`sample_images_json` packs the
samples' images for the page, which shows the image of the sample under the pointer.
"""

from __future__ import annotations

import base64

import numpy as np

from deepmanifold.analysis.samples import SampleMaps
from deepmanifold.report.figures import axis_layout, base_layout, rounded

__all__ = ["data_map_figure", "sample_images_json"]


def data_map_figure(maps: SampleMaps) -> dict:
    """A plotly figure dictionary of the data map, one trace per run (the first shown)."""
    n = len(maps.labels)
    flipped = maps.flipped if maps.flipped is not None else np.zeros(n, dtype=bool)
    symbols = ["x" if f else "circle" for f in flipped]
    index = list(range(n))
    traces, buttons = [], []
    for r, (run_id, label, d) in enumerate(maps.runs):
        text = [f"sample {i} · label {int(maps.labels[i])}" + (" (flipped)" if flipped[i] else "")
                + f"<br>confidence {d.confidence[i]:.3f} · variability {d.variability[i]:.3f}"
                + f"<br>correct at {d.correctness[i]:.0%} of checkpoints · forgotten {int(d.forgetting[i])}×"
                for i in range(n)]
        traces.append({
            "type": "scattergl", "mode": "markers", "name": label, "visible": r == 0,
            "x": rounded(d.variability), "y": rounded(d.confidence), "customdata": index,
            "text": text, "hoverinfo": "text",
            "marker": {"size": 6, "symbol": symbols, "color": rounded(d.correctness), "cmin": 0, "cmax": 1,
                       "colorscale": "Viridis", "opacity": 0.8,
                       "colorbar": {"title": {"text": "correctness"}, "thickness": 12}},
        })
        buttons.append({"label": label, "method": "update",
                        "args": [{"visible": [q == r for q in range(len(maps.runs))]}]})
    layout = base_layout(
        height=560, showlegend=False,
        xaxis=axis_layout("variability (std over checkpoints of the label's probability)", rangemode="tozero"),
        yaxis=axis_layout("confidence (mean probability of the label)", range=[0, 1.02]),
        updatemenus=[{"buttons": buttons, "direction": "down", "x": 0.0, "xanchor": "left", "y": 1.12,
                      "yanchor": "top", "showactive": True}] if len(buttons) > 1 else [],
        margin={"l": 70, "r": 20, "t": 60, "b": 60})
    return {"data": traces, "layout": layout}


def sample_images_json(images) -> dict | None:
    """The samples' images as ``{"shape": [n, H, W, channels], "pixels": base64 of uint8}``, or None."""
    if images is None:
        return None
    a = np.asarray(images)
    if a.ndim == 3:
        a = a[..., None]
    if a.ndim != 4 or a.shape[-1] not in (1, 3) or a.dtype != np.uint8:
        raise ValueError(f"images must be uint8 of shape (n, H, W) or (n, H, W, 3), got {a.dtype} {a.shape}")
    return {"shape": list(a.shape), "pixels": base64.b64encode(np.ascontiguousarray(a).tobytes()).decode()}
