"""Figures of mean-field theory, to hold trained networks against.

- :func:`phase_diagram_figure` -- the correlation depth scale ``ξ_c`` over the plane of
  weight and bias variances ``(σ_w², σ_b²)``, the order-to-chaos boundary ``χ₁ = 1`` drawn
  as a line, and optionally runs placed at their initialisation with a value each (e.g.
  whether they trained).

Like the report's other figures it returns a plain plotly figure dictionary of JSON-ready
values. The theory itself lives in :mod:`deepmanifold.theory` and is imported on first use.
"""

from __future__ import annotations

import html
import math
import numbers
from collections.abc import Sequence
from typing import Any

import numpy as np

from deepmanifold.report.figures import axis_layout, base_layout, rounded

__all__ = ["XI_RANGE", "phase_diagram_figure"]

#: Depth scales drawn by default: below 1 layer the colour is the lowest, beyond 1000
#: layers (and at criticality, where ξ_c is infinite) the highest.
XI_RANGE = (1.0, 1000.0)
#: Significant digits of the boundary line: enough that χ₁ on its points is 1 to ~1e-7.
_BOUNDARY_DIGITS = 10
_TICKS = (0.1, 0.3, 1, 3, 10, 30, 100, 300, 1000, 3000, 10000, 30000, 100000)
_MISSING_COLOUR = "#9e9e9e"
_LABEL_BACKGROUND = "rgba(255, 255, 255, 0.75)"  # the phase labels stay legible on any cell colour


def _check_positive(value: Any, name: str, *, allow_zero: bool = False) -> float:
    ok = isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))
    if ok:
        value = float(value)
        ok = math.isfinite(value) and (value >= 0 if allow_zero else value > 0)
    if not ok:
        raise ValueError(f"{name} must be a finite number {'>= 0' if allow_zero else '> 0'}, got {value!r}")
    return value


def _check_runs(runs: Sequence) -> list[tuple[float, float, str, float]]:
    """``runs`` as ``(σ_w², σ_b², label, value)`` tuples, value NaN where it is None."""
    out = []
    for i, run in enumerate(runs):
        if isinstance(run, (str, bytes)) or not isinstance(run, Sequence) or len(run) != 4:
            raise ValueError(f"runs[{i}] must be a (sigma_w2, sigma_b2, label, value) tuple, got {run!r}")
        sw, sb, label, value = run
        sw = _check_positive(sw, f"runs[{i}] sigma_w2")
        sb = _check_positive(sb, f"runs[{i}] sigma_b2", allow_zero=True)
        if value is None:
            value = math.nan
        elif isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_)):
            value = float(value)
        elif isinstance(value, (bool, np.bool_)):
            value = float(bool(value))
        else:
            raise ValueError(f"runs[{i}] value must be a number, a bool or None, got {value!r}")
        out.append((sw, sb, str(label), value))
    return out


def _xi_text(xi: float) -> str:
    if math.isinf(xi):
        return "∞ (critical)"
    return f"{xi:.3g} layers" if math.isfinite(xi) else "undefined (no fixed point)"


def _run_traces(marks: list[tuple[float, float, str, float]], value_title: str) -> list[dict]:
    """Markers of the runs: those with a value coloured by it (with a colour bar), the rest grey."""
    title = html.escape(value_title)
    traces = []
    for has_value in (True, False):
        chosen = [m for m in marks if math.isfinite(m[3]) == has_value]
        if not chosen:
            continue
        marker = {"size": 11, "line": {"color": "#ffffff", "width": 1.5}}
        if has_value:
            marker.update(color=rounded([m[3] for m in chosen]), colorscale="RdBu", showscale=True,
                          colorbar={"title": {"text": title}, "x": 1.2})
        else:
            marker.update(color=_MISSING_COLOUR)
        traces.append({
            "type": "scatter", "mode": "markers", "name": "runs" if has_value else f"runs without {title}",
            "x": rounded([m[0] for m in chosen]), "y": rounded([m[1] for m in chosen]),
            "text": [html.escape(m[2]) for m in chosen],
            "customdata": [f"{m[3]:.4g}" if has_value else "–" for m in chosen], "marker": marker,
            "hovertemplate": "<b>%{text}</b><br>σ<sub>w</sub><sup>2</sup> %{x:.3g}, σ<sub>b</sub><sup>2</sup> "
                             f"%{{y:.3g}}<br>{title} %{{customdata}}<extra></extra>",
        })
    return traces


def phase_diagram_figure(activation: str = "tanh", *, sigma_w2_max: float = 4.0, sigma_b2_max: float = 0.5,
                         resolution: int = 40, runs: Sequence | None = None,
                         xi_range: tuple[float, float] = XI_RANGE, value_title: str = "value") -> dict:
    r"""The order-to-chaos phase diagram: ``ξ_c`` over ``(σ_w², σ_b²)`` and the boundary ``χ₁ = 1``.

    Each cell is coloured by ``log₁₀ ξ_c`` (:func:`deepmanifold.theory.depth_scales`),
    the number of layers over which the correlation of two inputs relaxes by ``e``:

    .. math::

        ξ_c^{-1} = -\log\Big(σ_w^2 \int Dz_1 Dz_2\, φ'(u_1) φ'(u_2)\Big|_{c = c^*}\Big),

    clipped to `xi_range`. It diverges on the boundary (black), where
    ``χ₁ = σ_w² ∫Dz φ'(√q* z)² = 1`` (:func:`deepmanifold.theory.order_chaos_boundary`):
    networks deeper than a few ``ξ_c`` train only near it (Schoenholz et al. 2017).

    Parameters
    ----------
    activation : {"tanh", "relu", "erf"}
        The nonlinearity φ.
    sigma_w2_max, sigma_b2_max : float
        Extent of the axes: ``σ_w² ∈ (0, sigma_w2_max]``, ``σ_b² ∈ [0, sigma_b2_max]``.
    resolution : int
        Cells per axis (``>= 2``); the cells' centres are evaluated, so ``σ_b² = 0``
        (where ``q* = 0`` in the ordered phase) is not. Cost: ``resolution²`` calls of
        ``depth_scales``, under 1 ms each for tanh.
    runs : sequence of (float, float, str, float or bool or None), optional
        ``(σ_w², σ_b², label, value)`` of runs to overlay as markers coloured by `value`
        (grey where it is None), e.g. the test accuracy reached.
    xi_range : (float, float)
        ``ξ_c`` at the bottom and top of the colour scale (``0 < low < high``).
    value_title : str
        Title of the runs' colour bar.

    Returns
    -------
    dict
        Plotly figure dictionary: the heatmap (``z`` is ``log₁₀ ξ_c``, ``None`` where
        ``ξ_c`` is undefined, ``customdata`` the ``ξ_c`` as text), the boundary line
        (``σ_w²`` across, ``σ_b²`` up; its ``meta`` names the activation), then, when
        runs are given, a trace of those with a value and one of those without.

    Raises
    ------
    ValueError
        For an unknown activation, non-positive extents, ``resolution < 2``, a bad
        `xi_range` or a malformed run.

    References
    ----------
    .. [1] S. S. Schoenholz, J. Gilmer, S. Ganguli and J. Sohl-Dickstein, "Deep information
       propagation", *ICLR* 2017, Fig. 1.
    """
    from deepmanifold.theory._signal import ACTIVATIONS, depth_scales, order_chaos_boundary
    from deepmanifold.utils import check_int

    if not isinstance(activation, str) or activation not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {', '.join(map(repr, ACTIVATIONS))}, got {activation!r}")
    w_max = _check_positive(sigma_w2_max, "sigma_w2_max")
    b_max = _check_positive(sigma_b2_max, "sigma_b2_max")
    n = check_int(resolution, "resolution", low=2)
    if (not isinstance(xi_range, Sequence) or len(xi_range) != 2
            or not all(isinstance(v, numbers.Real) and math.isfinite(v) for v in xi_range)
            or not 0 < xi_range[0] < xi_range[1]):
        raise ValueError(f"xi_range must be two finite numbers 0 < low < high, got {xi_range!r}")
    marks = _check_runs(runs or [])

    w_grid = (np.arange(n) + 0.5) * w_max / n
    b_grid = (np.arange(n) + 0.5) * b_max / n
    xi = np.array([[depth_scales(activation, float(w), float(b)).xi_c for w in w_grid] for b in b_grid])
    lo, hi = math.log10(xi_range[0]), math.log10(xi_range[1])
    with np.errstate(divide="ignore"):
        z = np.clip(np.log10(xi), lo, hi)  # inf (critical) to the top, nan stays a gap
    ticks = [t for t in _TICKS if xi_range[0] <= t <= xi_range[1]]
    heatmap = {
        "type": "heatmap", "name": "ξ<sub>c</sub>", "x": rounded(w_grid), "y": rounded(b_grid),
        "z": [rounded(row) for row in z], "zmin": lo, "zmax": hi, "colorscale": "Viridis",
        "customdata": [[_xi_text(v) for v in row] for row in xi],
        "colorbar": {"title": {"text": "ξ<sub>c</sub> (layers)"}, "tickvals": rounded(np.log10(ticks)),
                     "ticktext": [f"{t:g}" for t in ticks]},
        "hovertemplate": "σ<sub>w</sub><sup>2</sup> %{x:.3g}, σ<sub>b</sub><sup>2</sup> %{y:.3g}"
                         "<br>ξ<sub>c</sub> %{customdata}<extra></extra>",
    }
    b_line = np.linspace(0.0, b_max, 2 * n + 1)
    w_line = order_chaos_boundary(activation, b_line)
    boundary = {
        "type": "scatter", "mode": "lines", "name": "order–chaos boundary (χ<sub>1</sub> = 1)",
        "x": rounded(w_line, _BOUNDARY_DIGITS), "y": rounded(b_line, _BOUNDARY_DIGITS),
        "line": {"color": "#000000", "width": 2.5}, "meta": {"activation": activation},
        "hovertemplate": "critical σ<sub>w</sub><sup>2</sup> %{x:.4g} at σ<sub>b</sub><sup>2</sup> %{y:.3g}"
                         "<extra></extra>",
    }
    data = [heatmap, boundary, *_run_traces(marks, value_title)]
    layout = base_layout(
        height=480,
        xaxis=axis_layout("weight variance σ<sub>w</sub><sup>2</sup>", range=[0.0, w_max]),
        yaxis=axis_layout("bias variance σ<sub>b</sub><sup>2</sup>", range=[0.0, b_max]),
        annotations=[
            {"text": "ordered", "x": 0.02, "y": 0.97, "xref": "paper", "yref": "paper", "showarrow": False,
             "xanchor": "left", "bgcolor": _LABEL_BACKGROUND},
            {"text": "chaotic", "x": 0.98, "y": 0.03, "xref": "paper", "yref": "paper", "showarrow": False,
             "xanchor": "right", "bgcolor": _LABEL_BACKGROUND},
        ],
    )
    layout["legend"].update(orientation="h", x=0.0, y=1.02, yanchor="bottom")
    if any(math.isfinite(m[3]) for m in marks):  # room for the runs' colour bar
        layout["margin"] = {**layout["margin"], "r": 120}
    return {"data": data, "layout": layout}
