"""Figures of the analyses: each draws exactly the numbers of findings.json, or nothing."""

import json
import re

import numpy as np
import pytest

from deepmanifold.analysis.trajectories import config_dendrogram
from deepmanifold.report.analysis_figures import (
    analysis_figures,
    averaging_figure,
    corners_figure,
    dendrogram_figure,
    dimensionality_figure,
    speed_figure,
)
from deepmanifold.report.figures import findings_figure


def _findings():
    D = np.array([[0.0, 0.1, 0.9], [0.1, 0.0, 0.8], [0.9, 0.8, 0.0]])
    return {"analyses": {
        "dimensionality": {"explained_stress": [0.6, 0.85, 0.95], "thresholds": [0.8, 0.9],
                           "null": "sample permutation", "n_null": 4,
                           "null_stress_mean": [0.3, 0.5, 0.6], "null_stress_sd": [0.05, 0.05, 0.05]},
        "dendrogram": config_dendrogram(D, ["mlp sgd", "mlp adam", "cnn sgd"]).to_dict(),
        "speed": {"by_width": {"levels": [0.5, 0.9], "architectures": {"cnn": {"widths": [
            {"width": 16, "epochs": {"0.5": {"mean": 2.0, "values": [1.5, 2.5]},
                                     "0.9": {"mean": 6.0, "values": [6.0, None]}}},
            {"width": 32, "epochs": {"0.5": {"mean": 1.0, "values": [1.0, 1.0]},
                                     "0.9": {"mean": 4.0, "values": [4.0, 4.0]}}}]}}}},
        "corners": {"grid": [0.0, 0.5, 1.0],
                    "corner": {"runs": ["mlp shuffled"], "distance": [[0.5, 0.05, 0.01]]},
                    "ordinary": {"spread": {"median": [0.02, 0.01, 0.005], "max": [0.04, 0.03, 0.02]}}},
        "averaging": {"individual": {"progress_mean": 0.8, "accuracy_mean": 0.95},
                      "arithmetic": {"progress": 0.82, "accuracy": 0.96, "mean_distance": 0.1},
                      "geometric": {"progress": 0.85, "accuracy": 0.97, "mean_distance": 0.09}},
    }}


def test_each_figure_draws_the_findings_numbers():
    f = _findings()
    dim = dimensionality_figure(f)
    data = dim["data"][-1]
    assert data["x"] == [1, 2, 3] and data["y"] == [0.6, 0.85, 0.95]
    band = dim["data"][0]["y"]
    assert band[:3] == pytest.approx([0.4, 0.6, 0.7]) and band[3:] == pytest.approx([0.5, 0.4, 0.2])
    assert [s["y0"] for s in dim["layout"]["shapes"]] == [0.8, 0.9]

    den = dendrogram_figure(f)
    assert len(den["data"]) == 2  # 3 leaves: 2 merges
    # the two close configurations merge at their distance, the third at the complete linkage 0.9
    assert sorted(max(t["y"]) for t in den["data"]) == pytest.approx([0.1, 0.9])
    assert den["layout"]["xaxis"]["ticktext"] == f["analyses"]["dendrogram"]["leaf_names"]

    sp = speed_figure(f)
    means = {t["name"]: t["y"] for t in sp["data"] if t.get("name")}
    assert means == {"cnn: progress 0.5": [2.0, 1.0], "cnn: progress 0.9": [6.0, 4.0]}
    runs_09 = [t for t in sp["data"] if not t.get("name")][1]
    assert runs_09["x"] == [16, 32, 32] and runs_09["y"] == [6.0, 4.0, 4.0]  # the run that never got there is left out

    cor = corners_figure(f)
    assert [t["y"] for t in cor["data"]][-1] == [0.5, 0.05, 0.01]
    assert cor["layout"]["yaxis"]["type"] == "log"

    avg = averaging_figure(f)
    bars = [t for t in avg["data"] if t["type"] == "bar"]
    assert bars[0]["x"] == ["arithmetic", "geometric"] and bars[0]["y"] == [0.82, 0.85]
    assert bars[1]["y"] == [0.96, 0.97]
    json.dumps([fig for *_, fig in analysis_figures(f)])  # plain JSON for the page


def test_skipped_analyses_draw_nothing():
    assert analysis_figures({"analyses": {}}) == []
    assert analysis_figures({}) == []
    one_leaf = {"analyses": {"dendrogram": config_dendrogram(np.zeros((1, 1)), ["a"]).to_dict()}}
    assert dendrogram_figure(one_leaf) is None


# ----------------------------------------------------------------------------- layout
def _axes(layout):
    return {k: v for k, v in layout.items() if re.fullmatch(r"[xy]axis\d*", k)}


def test_dendrogram_keeps_every_leaf_label_inside(make_findings):
    fig = dendrogram_figure(make_findings())
    xaxis = fig["layout"]["xaxis"]
    n = len(xaxis["ticktext"])
    assert xaxis["range"] == [0, 10 * n]
    assert all(0 < v < 10 * n for v in xaxis["tickvals"])  # none on the edge, where plotly drops it
    assert xaxis["automargin"] and fig["layout"]["yaxis"]["automargin"]


def test_every_2d_axis_makes_room_for_its_labels(make_findings):
    findings = make_findings()
    figures = [fig for *_, fig in analysis_figures(findings)] + [findings_figure(findings)]
    for fig in figures:
        axes = _axes(fig["layout"])
        assert axes and all(axis.get("automargin") for axis in axes.values()), axes


@pytest.mark.parametrize("make", [findings_figure, averaging_figure])
def test_panels_with_their_own_y_axis_stand_apart(make, make_findings):
    layout = make(make_findings())["layout"]
    assert "matches" not in layout["yaxis2"]
    assert layout["xaxis2"]["domain"][0] - layout["xaxis"]["domain"][1] >= 0.1


def test_empty_factor_panel_says_why(make_findings):
    fig = findings_figure(make_findings(measured_effects=False))
    assert not [t for t in fig["data"] if t["type"] == "bar"]
    assert fig["layout"]["xaxis"]["visible"] is False and fig["layout"]["yaxis"]["visible"] is False
    note = fig["layout"]["annotations"][-1]
    text = note["text"].replace("<br>  ", " ").replace("<br>", "\n")
    assert text.splitlines()[0] == "<b>no pairs differ in one factor</b>"
    assert "arch: no two runs differ in arch only: the closest pairs also differ in seed, init" in text
    assert "seed: no two runs differ in seed only" in text
    assert "one value in this sweep: optimizer, lr" in text
    assert note["xref"] == "paper" and note["x"] < fig["layout"]["xaxis2"]["domain"][0]


def test_skipped_factor_analysis_gives_its_reason(make_findings):
    findings = make_findings()
    del findings["analyses"]["factor_effects"]
    findings["skipped"] = {"factor_effects": "one run only"}
    text = findings_figure(findings)["layout"]["annotations"][-1]["text"]
    assert text == "<b>no pairs differ in one factor</b><br>one run only"
