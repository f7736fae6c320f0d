"""The feature-learning figures draw exactly the recorded arrays, and appear only when recorded."""

import dataclasses
import json

import numpy as np
import pytest

from deepmanifold.report import write_report
from deepmanifold.report.feature_figures import MAX_LAYER_PANELS, agop_figure, image_shape, nfa_figure
from deepmanifold.report.figures import group_colours


def _with_features(picture, n_layers=3, d=64, k=2):
    """The picture's runs, each given NFA correlations rising from 0.1 + 0.1 l to 0.9 and an
    input AGOP whose diagonal and eigenvectors are known arrays."""
    runs = []
    for r, run in enumerate(picture.runs):
        K = len(run.steps)
        rise = np.linspace(0.0, 1.0, K)[:, None]
        pearson = (0.1 + 0.1 * np.arange(n_layers))[None, :] * (1 - rise) + 0.9 * rise
        diag = np.tile(np.arange(d, dtype=float) + r, (K, 1))
        vecs = np.tile(np.eye(k, d), (K, 1, 1)) * (r + 1)
        features = {"nfa_pearson": pearson, "nfa_cosine": pearson, "nfa_agop_diag": diag,
                    "nfa_agop_eigenvectors": vecs, "nfa_agop_eigenvalues": np.ones((K, k))}
        runs.append(dataclasses.replace(run, features=features))
    return dataclasses.replace(picture, runs=runs)


def _points(fig, axis):
    """Non-gap y values of every trace on ``axis``, in trace order."""
    out = []
    for trace in fig["data"]:
        if trace.get("xaxis", "x") == axis:
            out.extend(v for v in trace["y"] if v is not None)
    return out


def test_nfa_figure_draws_each_layer_of_each_run(make_picture):
    picture = _with_features(make_picture())
    fig = nfa_figure(picture, group_colours([picture]))
    titles = [a["text"] for a in fig["layout"]["annotations"]]
    assert titles == ["<b>layer 1</b>", "<b>layer 2</b>", "<b>layer 3</b>"]
    for layer, axis in enumerate(("x", "x2", "x3")):
        expected = np.concatenate([run.features["nfa_pearson"][np.argsort(run.steps), layer]
                                   for group in sorted({r.group for r in picture.runs})
                                   for run in picture.runs if run.group == group])
        np.testing.assert_allclose(_points(fig, axis), expected, rtol=1e-4)  # rounded to 5 digits
    json.dumps(fig)


def test_deep_networks_show_the_first_layers_and_the_last(make_picture):
    picture = _with_features(make_picture(n_runs=2), n_layers=9)
    fig = nfa_figure(picture, group_colours([picture]))
    titles = [a["text"] for a in fig["layout"]["annotations"]]
    assert len(titles) == MAX_LAYER_PANELS and titles[-1] == "<b>layer 9</b>" and titles[-2] == "<b>layer 5</b>"


def test_agop_images_are_the_last_checkpoints_arrays(make_picture):
    picture = _with_features(make_picture(n_runs=3), d=64, k=2)
    fig = agop_figure(picture)
    heatmaps = [t for t in fig["data"] if t["type"] == "heatmap"]
    assert len(heatmaps) == 3 * 3  # one row per group: diagonal + 2 eigenvectors
    first = picture.runs[0]  # groups are sorted; make_picture's first group holds run 0
    groups = sorted({r.group for r in picture.runs})
    row = groups.index(first.group)
    diag, ev1 = heatmaps[3 * row], heatmaps[3 * row + 1]
    np.testing.assert_allclose(diag["z"], first.features["nfa_agop_diag"][-1].reshape(8, 8))
    np.testing.assert_allclose(ev1["z"], first.features["nfa_agop_eigenvectors"][-1, 0].reshape(8, 8))
    assert ev1["colorscale"] == "RdBu" and ev1["zmin"] == -ev1["zmax"]
    json.dumps(fig)


@pytest.mark.parametrize("d, shape", [(64, (1, 8, 8)), (784, (1, 28, 28)), (3072, (3, 32, 32)), (10, None)])
def test_image_shape(d, shape):
    assert image_shape(d) == shape


def test_colour_images_show_the_eigenvectors_magnitude(make_picture):
    picture = _with_features(make_picture(n_runs=1), d=3 * 16, k=1)
    fig = agop_figure(picture)
    ev = fig["data"][1]
    run = picture.runs[0]
    v = run.features["nfa_agop_eigenvectors"][-1, 0].reshape(3, 4, 4)
    np.testing.assert_allclose(ev["z"], np.sqrt((v ** 2).mean(axis=0)), atol=1e-5)
    assert ev["colorscale"] == "Viridis"


def test_report_has_the_sections_only_when_recorded(tmp_path, make_picture):
    plain = write_report(tmp_path / "plain.html", {"test": make_picture()}, title="t").read_text()
    assert 'id="dm-nfa"' not in plain and 'id="dm-agop"' not in plain
    rich = write_report(tmp_path / "rich.html", {"test": _with_features(make_picture())}, title="t").read_text()
    assert 'id="dm-nfa"' in rich and 'id="dm-agop"' in rich and "Neural Feature Ansatz" in rich
    bad = _with_features(make_picture())
    bad.runs[0].features["nfa_pearson"] = bad.runs[0].features["nfa_pearson"][:-1]
    with pytest.raises(ValueError, match="features\\['nfa_pearson'\\]"):
        write_report(tmp_path / "bad.html", {"test": bad}, title="t")
