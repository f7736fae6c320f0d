"""The phase diagram draws the theory's numbers: ξ_c in the cells, χ₁ = 1 on the line."""

import json
import math

import numpy as np
import plotly.graph_objects as go
import pytest

from deepmanifold.report.theory_figures import XI_RANGE, phase_diagram_figure
from deepmanifold.theory._signal import chi_1, depth_scales


@pytest.mark.parametrize("activation", ["tanh", "relu", "erf"])
def test_the_boundary_line_is_where_chi_1_is_one(activation):
    fig = phase_diagram_figure(activation, resolution=6)
    line = fig["data"][1]
    assert line["meta"] == {"activation": activation}
    assert line["y"][0] == 0.0 and line["y"][-1] == 0.5
    for sw, sb in zip(line["x"], line["y"]):
        assert chi_1(activation, sw, sb) == pytest.approx(1.0, abs=1e-8)


def test_cells_are_log10_xi_c_clipped_to_the_range():
    fig = phase_diagram_figure("tanh", sigma_w2_max=3.0, sigma_b2_max=0.2, resolution=5)
    heatmap = fig["data"][0]
    assert heatmap["x"] == pytest.approx([0.3, 0.9, 1.5, 2.1, 2.7])
    assert heatmap["y"] == pytest.approx([0.02, 0.06, 0.1, 0.14, 0.18])
    lo, hi = (math.log10(v) for v in XI_RANGE)
    for row, sb in zip(heatmap["z"], heatmap["y"]):
        for z, sw in zip(row, heatmap["x"]):
            xi = depth_scales("tanh", sw, sb).xi_c
            assert z == pytest.approx(min(max(math.log10(xi), lo), hi), abs=1e-4)
    assert heatmap["zmin"] == lo and heatmap["zmax"] == hi
    ticks = heatmap["colorbar"]["ticktext"]
    assert ticks[0] == "1" and ticks[-1] == "1000"


def test_marginal_cells_are_drawn_at_the_top_of_the_scale():
    # ReLU beyond σ_w² = 2: q* = inf and the correlations follow the marginal arc-cosine map.
    relu = phase_diagram_figure("relu", sigma_w2_max=4.0, resolution=4)["data"][0]
    assert all(row[2:] == [3.0, 3.0] for row in relu["z"])
    assert all(text.startswith("∞") for row in relu["customdata"] for text in row[2:])


def test_runs_are_drawn_where_they_were_initialised():
    runs = [(1.5, 0.1, "mlp <a>", 0.91), (3.0, 0.2, "deep", None), (2.0, 0.05, "ok", True)]
    fig = phase_diagram_figure("tanh", resolution=4, runs=runs, value_title="test accuracy")
    coloured, grey = fig["data"][2], fig["data"][3]
    assert coloured["x"] == [1.5, 2.0] and coloured["y"] == [0.1, 0.05]
    assert coloured["marker"]["color"] == [0.91, 1.0]
    assert coloured["text"] == ["mlp &lt;a&gt;", "ok"]
    assert coloured["marker"]["colorbar"]["title"]["text"] == "test accuracy"
    assert grey["x"] == [3.0] and grey["customdata"] == ["–"]
    assert fig["layout"]["margin"]["r"] > 100  # room for the second colour bar


def test_figure_is_plain_json_and_valid_plotly():
    fig = phase_diagram_figure("erf", resolution=4, runs=[(1.0, 0.1, "a", 0.5), (2.0, 0.0, "b", None)])
    json.dumps(fig, allow_nan=False)
    go.Figure(fig)  # raises on an unknown property


@pytest.mark.parametrize("kwargs, match", [
    ({"activation": "sigmoid"}, "activation must be one of"),
    ({"sigma_w2_max": 0.0}, "sigma_w2_max must be a finite number > 0"),
    ({"sigma_b2_max": math.nan}, "sigma_b2_max must be a finite number > 0"),
    ({"resolution": 1}, "resolution must be an integer >= 2"),
    ({"xi_range": (10.0, 1.0)}, "xi_range must be two finite numbers 0 < low < high"),
    ({"runs": [(1.0, 0.1, "a")]}, r"runs\[0\] must be a \(sigma_w2, sigma_b2, label, value\) tuple"),
    ({"runs": [(1.0, -0.1, "a", 1.0)]}, r"runs\[0\] sigma_b2 must be a finite number >= 0"),
    ({"runs": [(1.0, 0.1, "a", 1.0), (0.0, 0.1, "b", 1.0)]}, r"runs\[1\] sigma_w2 must be a finite number > 0"),
    ({"runs": [(1.0, 0.1, "a", "high")]}, r"runs\[0\] value must be a number, a bool or None"),
])
def test_bad_arguments_say_what_was_wrong(kwargs, match):
    with pytest.raises(ValueError, match=match):
        phase_diagram_figure(**{"resolution": 3, **kwargs})


def test_default_figure_is_quick_enough_for_a_report():
    fig = phase_diagram_figure()
    assert np.array(fig["data"][0]["z"], dtype=float).shape == (40, 40)


def test_the_report_draws_its_mean_field_mlps_on_the_phase_diagram(tmp_path, make_picture):
    import dataclasses
    import re

    from deepmanifold.report import write_report

    plain = make_picture(n_runs=3)
    assert 'id="dm-phase"' not in write_report(tmp_path / "a.html", {"test": plain}, title="t").read_text()
    runs = [dataclasses.replace(run, config={"arch": "mf_mlp", "seed": i,
                                             "arch_options": {"sigma_w2": 1.0 + i, "depth": 10}})
            for i, run in enumerate(plain.runs)]
    page = write_report(tmp_path / "b.html", {"test": dataclasses.replace(plain, runs=runs)}, title="t").read_text()
    assert 'id="dm-phase"' in page
    # The markers sit at each run's sigma_w^2 (sigma_b^2 at the model's default 0.05), coloured by
    # its final train accuracy.
    from deepmanifold.report.page import _theory_parts

    [part] = _theory_parts(dataclasses.replace(plain, runs=runs))
    values = [t for t in part.figure["figure"]["data"] if t.get("mode") == "markers" and "marker" in t
              and "color" in t["marker"] and isinstance(t["marker"]["color"], list)][0]
    assert list(values["x"]) == [1.0, 2.0, 3.0] and list(values["y"]) == [0.05] * 3
    np.testing.assert_allclose(values["marker"]["color"], [run.metrics["train_acc"][-1] for run in runs], rtol=1e-4)
