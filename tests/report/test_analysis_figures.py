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
    geodesic_by_group_figure,
    joint_embedding_figure,
    speed_figure,
    tangent_figure,
    trajectory_heatmap_figure,
    trajectory_inpca_figure,
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


# ----------------------------------------------------------------------------- path analyses
ARCH_COLOURS = {"cnn": "#1f77b4", "mlp": "#ff7f0e", "resnet": "#2ca02c"}


def _run_groups():
    """Run id to (architecture, colour), as the page derives it from the pictures."""
    groups = ("cnn", "mlp", "resnet")
    return {f"run-{r:03d}": (groups[r % 3], ARCH_COLOURS[groups[r % 3]]) for r in range(6)}


def _runs_of(fig, panel="x"):
    return [t for t in fig["data"] if "meta" in t and t.get("xaxis", "x") == panel]


def test_tangent_figure_draws_the_projected_checkpoints_and_the_references(make_findings):
    findings = make_findings()
    tan = findings["analyses"]["tangent"]
    fig = tangent_figure(findings, _run_groups())
    by_run = {r["run_id"]: np.array(r["coords"]) for r in tan["runs"]}
    for panel, axis in (("x", 1), ("x2", 2)):
        traces = _runs_of(fig, panel)
        assert [t["name"] for t in traces] == ["cnn", "mlp", "resnet"]
        cnn = traces[0]
        assert cnn["meta"] == {"runs": ["run-000", "run-003"], "lengths": [3, 3]}
        assert cnn["line"]["color"] == ARCH_COLOURS["cnn"]
        want_x = [*by_run["run-000"][:, 0], None, *by_run["run-003"][:, 0]]
        want_y = [*by_run["run-000"][:, axis], None, *by_run["run-003"][:, axis]]
        assert cnn["x"] == pytest.approx(want_x) and cnn["y"] == pytest.approx(want_y)
        assert cnn["customdata"] == [0.0, 0.5, 1.0, None, 0.0, 0.5, 1.0]  # progress in the hover
    refs = [t for t in fig["data"] if t.get("legendgroup", "").startswith("reference") and t["xaxis"] == "x"]
    assert [t["name"] for t in refs] == tan["references"]["names"]
    assert [(t["x"][0], t["y"][0]) for t in refs] == [(c[0], c[1]) for c in tan["references"]["coords"]]
    geodesic = [t for t in fig["data"] if t["name"].startswith("geodesic")][0]
    assert geodesic["x"] == pytest.approx([c[0] for c in tan["geodesic"]["coords"]])
    assert fig["layout"]["xaxis"]["title"]["text"] == "InPCA 1 (space-like)"
    assert fig["layout"]["yaxis"]["title"]["text"] == "InPCA 2 (time-like, μ<0)"
    lead = dict((k, lead) for k, _, lead, _ in analysis_figures(findings))["dm-analysis-tangent"]
    assert "<b>80.0%</b>" in lead and "99.0%" in lead and "ratio <b>0.808</b>" in lead
    assert "0.3 and 0.7" in lead


def test_runs_the_page_does_not_know_are_one_grey_group_it_leaves_alone(make_findings):
    fig = tangent_figure(make_findings())
    runs = [t for t in fig["data"] if t.get("legendgroup") == "other runs"]
    assert len(runs) == 2 and all("meta" not in t for t in runs)  # one per panel
    assert runs[0]["line"]["color"] == "#7f7f7f" and runs[0]["x"].count(None) == 5


def test_trajectory_inpca_figure_marks_the_geodesic(make_findings):
    findings = make_findings()
    ti = findings["analyses"]["trajectory_inpca"]
    fig = trajectory_inpca_figure(findings, _run_groups())
    runs = _runs_of(fig)
    mlp = [t for t in runs if t["name"] == "mlp"][0]
    assert mlp["meta"]["runs"] == ["run-001", "run-004"]
    assert mlp["x"] == [ti["runs"][1]["coords"][0], None, ti["runs"][4]["coords"][0]]
    assert mlp["y"] == [ti["runs"][1]["coords"][1], None, ti["runs"][4]["coords"][1]]
    assert mlp["customdata"] == pytest.approx([ti["runs"][1]["distance_to_geodesic"], None,
                                               ti["runs"][4]["distance_to_geodesic"]])
    star = fig["data"][-1]
    assert star["name"] == "geodesic (reference trajectory)" and (star["x"], star["y"]) == ([-1.0], [0.0])
    assert star["marker"]["symbol"] == "star"
    leads = {k: lead for k, _, lead, _ in analysis_figures(findings)}
    assert "grid: all, 11 points from 0 to 1" in leads["dm-analysis-trajectory-inpca"]
    assert "grid: all, 11 points from 0 to 1" in leads["dm-analysis-trajectory-heatmap"]


def test_geodesic_by_group_figure_draws_each_group_mean(make_findings):
    findings = make_findings()
    gb = findings["analyses"]["geodesic_distance_by_group"]
    fig = geodesic_by_group_figure(findings)
    lines = {t["name"]: t for t in fig["data"] if t.get("name")}
    assert list(lines) == ["arch: cnn", "arch: mlp", "arch: resnet", "optimizer: adam"]
    for curve in gb["groups"]["arch"]:
        line = lines[f"arch: {curve['value']}"]
        assert line["x"] == gb["grid"] and line["y"] == curve["mean"] and line["customdata"] == curve["n"]
        assert line["xaxis"] == "x"
    assert lines["optimizer: adam"]["xaxis"] == "x2"
    bands = [t for t in fig["data"] if t.get("fill") == "toself"]
    adam = gb["groups"]["optimizer"][0]
    band = [t for t in bands if t["legendgroup"] == "optimizer: adam"][0]
    half = [i for i, s in enumerate(adam["sd"]) if s is not None]  # sd is known below progress 0.5 only
    assert band["x"] == [gb["grid"][i] for i in half] + [gb["grid"][i] for i in half][::-1]
    assert band["y"][:len(half)] == pytest.approx([adam["mean"][i] + adam["sd"][i] for i in half])
    assert [a["text"] for a in fig["layout"]["annotations"]] == ["<b>by arch</b>", "<b>by optimizer</b>"]


def test_joint_embedding_figure_draws_both_probes_checkpoints(make_findings):
    findings = make_findings()
    je = findings["analyses"]["joint_embedding"]
    fig = joint_embedding_figure(findings, _run_groups())
    resnet = [t for t in _runs_of(fig) if t["name"] == "resnet"][0]
    assert resnet["y"] == [c[1] for c in je["runs"][2]["coords"]] + [None] + [c[1] for c in je["runs"][5]["coords"]]
    names = [t["name"] for t in fig["data"] if "meta" not in t]
    assert names == ["geodesic (ignorance → truth)", "ignorance P₀", "truth P*"]
    truth = fig["data"][-1]
    assert (truth["x"], truth["y"]) == ([je["geodesic"]["coords"][-1][0]], [je["geodesic"]["coords"][-1][1]])
    lead = {k: lead for k, _, lead, _ in analysis_figures(findings)}["dm-analysis-joint-embedding"]
    assert "train (500 samples) + test (2,000 samples)" in lead


def test_heatmap_figure_draws_the_ordered_matrix(make_findings):
    findings = make_findings()
    hm = findings["analyses"]["trajectory_heatmap"]
    fig = trajectory_heatmap_figure(findings)
    (trace,) = fig["data"]
    assert trace["type"] == "heatmap" and trace["z"] == hm["matrix"]
    assert fig["layout"]["xaxis"]["ticktext"] == hm["run_labels"] == fig["layout"]["yaxis"]["ticktext"]
    assert fig["layout"]["yaxis"]["autorange"] == "reversed"  # the first leaf on top
    assert trace["text"][0][1] == f"{hm['run_labels'][0]}<br>{hm['run_labels'][1]}"


def test_path_figures_draw_nothing_without_their_analysis(make_findings):
    makers = (tangent_figure, trajectory_inpca_figure, geodesic_by_group_figure, joint_embedding_figure,
              trajectory_heatmap_figure)
    for make in makers:
        assert make({}) is None and make({"analyses": {}}) is None
    ids = [key for key, *_ in analysis_figures(make_findings(paths=False))]
    assert not [key for key in ids if key.split("dm-analysis-")[1] in
                ("tangent", "trajectory-inpca", "geodesic-by-group", "joint-embedding", "trajectory-heatmap")]
    ids = [key for key, *_ in analysis_figures(make_findings())]
    order = [ids.index(f"dm-analysis-{key}") for key in ("tangent", "dendrogram", "trajectory-heatmap")]
    assert order == sorted(order)
    one_run = make_findings()
    one_run["analyses"]["trajectory_heatmap"]["matrix"] = [[0.0]]
    one_run["analyses"]["trajectory_heatmap"]["run_labels"] = ["a"]
    assert trajectory_heatmap_figure(one_run) is None
