"""The layer figures draw exactly the recorded arrays, and appear only when recorded."""

import dataclasses
import json

import numpy as np

from deepmanifold.report import write_report
from deepmanifold.report.figures import group_colours
from deepmanifold.report.layer_figures import (CAPACITY_ROWS, COLLAPSE_ROWS, capacity_gain_figure,
                                               information_plane_figure, layer_grid_figure)


def _with_layers(picture, n_layers=3):
    """Runs given capacity rising by 0.1·(layer+1)·(run+1) over training, an information plane
    path and NC1 falling from 1 to 0.01."""
    runs = []
    for r, run in enumerate(picture.runs):
        K = len(run.steps)
        t = np.linspace(0.0, 1.0, K)[:, None]
        gain = 0.1 * (np.arange(n_layers) + 1)[None, :] * (r + 1)
        features = {
            "capacity_alpha": 0.2 + gain * t, "capacity_radius": 1.0 - 0.5 * t + 0 * gain,
            "capacity_dimension": 10 - 5 * t + 0 * gain, "capacity_center_correlation": 0.3 + 0 * t * gain,
            "infoplane_ixt_binning": 8 - t + 0 * gain, "infoplane_ity_binning": 2 + t + 0 * gain,
            "infoplane_ixt_kde": 6 - t + 0 * gain, "infoplane_ity_kde": 1 + t + 0 * gain,
            "collapse_nc1": 10 ** (-2 * t) + 0 * gain,
        }
        runs.append(dataclasses.replace(run, features=features))
    return dataclasses.replace(picture, runs=runs)


def _points(fig, axis, key="y"):
    out = []
    for trace in fig["data"]:
        if trace.get("xaxis", "x") == axis:
            out.extend(v for v in trace[key] if v is not None)
    return out


def _in_group_order(picture):
    return [run for group in sorted({r.group for r in picture.runs}) for run in picture.runs if run.group == group]


def test_capacity_gain_is_last_minus_first_per_layer(make_picture):
    picture = _with_layers(make_picture(n_runs=4))
    fig = capacity_gain_figure(picture, group_colours([picture]))
    expected = np.concatenate([0.1 * np.arange(1, 4) * (picture.runs.index(run) + 1)
                               for run in _in_group_order(picture)])
    np.testing.assert_allclose(_points(fig, "x"), expected, rtol=1e-4)
    assert _points(fig, "x", "x") == [1, 2, 3] * 4
    json.dumps(fig)


def test_grid_rows_are_the_recorded_quantities_and_columns_the_layers(make_picture):
    picture = _with_layers(make_picture(n_runs=2))
    fig = layer_grid_figure(picture, group_colours([picture]), CAPACITY_ROWS)
    titles = [a["text"] for a in fig["layout"]["annotations"]]
    assert titles == ["<b>layer 1</b>", "<b>layer 2</b>", "<b>layer 3</b>"]
    assert fig["layout"]["yaxis"]["title"]["text"] == "capacity α_M"
    assert fig["layout"]["yaxis4"]["title"]["text"] == "radius R_M"  # row 2, column 1
    order = _in_group_order(picture)
    expected = np.concatenate([run.features["capacity_alpha"][np.argsort(run.steps), 2] for run in order])
    np.testing.assert_allclose(_points(fig, "x3"), expected, rtol=1e-4)
    collapse = layer_grid_figure(picture, group_colours([picture]), COLLAPSE_ROWS)
    assert collapse["layout"]["yaxis"]["type"] == "log"  # only NC1 was recorded: one row
    assert "yaxis4" not in collapse["layout"]


def test_information_plane_puts_ixt_across_and_ity_up(make_picture):
    picture = _with_layers(make_picture(n_runs=2))
    fig = information_plane_figure(picture, group_colours([picture]))
    order = _in_group_order(picture)
    np.testing.assert_allclose(_points(fig, "x4", "x"),
                               np.concatenate([r.features["infoplane_ixt_kde"][:, 0] for r in order]), rtol=1e-4)
    np.testing.assert_allclose(_points(fig, "x4", "y"),
                               np.concatenate([r.features["infoplane_ity_kde"][:, 0] for r in order]), rtol=1e-4)


def test_report_has_the_layer_sections_only_when_recorded(tmp_path, make_picture):
    plain = write_report(tmp_path / "plain.html", {"test": make_picture()}, title="t").read_text()
    assert 'id="dm-capacity-gain"' not in plain and 'id="dm-infoplane"' not in plain
    assert capacity_gain_figure(make_picture(), {}) is None
    rich = write_report(tmp_path / "rich.html", {"test": _with_layers(make_picture())}, title="t").read_text()
    for div in ("dm-capacity-gain", "dm-capacity", "dm-infoplane", "dm-collapse"):
        assert f'id="{div}"' in rich


def test_rows_a_sparse_measurement_left_nan_are_not_drawn(make_picture):
    picture = _with_layers(make_picture(n_runs=2))
    run = picture.runs[0]
    alpha = np.array(run.features["capacity_alpha"], dtype=float)
    alpha[1::2] = np.nan  # measured at every other checkpoint
    picture.runs[0] = dataclasses.replace(run, features={**run.features, "capacity_alpha": alpha})
    fig = layer_grid_figure(picture, group_colours([picture]), {"capacity_alpha": "capacity α_M"})
    drawn = [t for t in fig["data"] if t.get("xaxis", "x") == "x" and run.run_id in t["meta"]["runs"]][0]
    j = drawn["meta"]["runs"].index(run.run_id)
    assert drawn["meta"]["lengths"][j] == len(alpha[::2])  # only the measured checkpoints, joined by a line
    start = sum(drawn["meta"]["lengths"][:j]) + j  # runs are joined by one gap each
    assert all(v is not None for v in drawn["y"][start:start + len(alpha[::2])])
