"""The offline HTML report and its figures, checked without a browser."""

from __future__ import annotations

import errno
import json
import os
import re
from html.parser import HTMLParser

import numpy as np
import plotly.graph_objects as go
import pytest
from plotly.offline import get_plotlyjs

from deepmanifold.report import (
    accuracy_figure,
    axis_title,
    group_colours,
    inpca_figure,
    main_probe,
    progress_figure,
    stress_figure,
    write_report,
)
from deepmanifold.report import page
from deepmanifold.report.figures import rounded

TIME_LIKE = "time-like, μ<0"


class _Page(HTMLParser):
    """Collects resource attributes, element ids and the embedded figure JSON."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.resources: list[tuple[str, str, str]] = []
        self.ids: dict[str, dict] = {}
        self._in_figures = False
        self.figures_json = ""

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        for name in ("src", "href", "data", "action", "poster"):
            if attrs.get(name):
                self.resources.append((tag, name, attrs[name]))
        if "id" in attrs:
            self.ids[attrs["id"]] = attrs
        self._in_figures = attrs.get("id") == "dm-figures"

    def handle_endtag(self, tag):
        self._in_figures = False

    def handle_data(self, data):
        if self._in_figures:
            self.figures_json += data


def _parse(path) -> tuple[str, _Page, dict[str, dict]]:
    text = path.read_text(encoding="utf-8")
    page = _Page()
    page.feed(text)
    figures = {f["id"]: f for f in json.loads(page.figures_json)}
    return text, page, figures


@pytest.fixture(scope="module")
def report(tmp_path_factory, make_picture):
    """A report of a test and a train picture, with one excluded run and a note."""
    pictures = {
        "train": make_picture(probe="train", seed=1),
        "test": make_picture(excluded=[("run-099", "diverged: loss became NaN")],
                             notes=["2 samples clamped at BC = 1e-12"]),
    }
    path = tmp_path_factory.mktemp("report") / "sub" / "report.html"
    written = write_report(path, pictures, title="digits <sweep>",
                           summary={"runs": 7, "wall_time_s": 12.3456, "store": "runs/digits",
                                    "command": ["deepmanifold", "run", "digits.toml"]})
    return written, pictures


def test_writes_one_file_atomically(report):
    path, _ = report
    assert path.is_absolute() and path.is_file()
    assert [p.name for p in path.parent.iterdir()] == ["report.html"]  # no temp file left
    assert path.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")


def test_page_is_offline_with_plotly_inline(report):
    text, page, _ = _parse(report[0])
    remote = [r for r in page.resources if re.match(r"(https?:)?//", r[2].strip(), re.I)]
    assert remote == []
    assert "<link" not in text.lower()
    assert get_plotlyjs() in text
    assert text.count("plotly.js v") == 1  # the library, once


def test_figures_are_valid_plotly(report):
    _, _, figures = _parse(report[0])
    assert list(figures) == ["dm-inpca-test", "dm-inpca-train", "dm-stress", "dm-progress",
                             "dm-accuracy"]
    for spec in figures.values():
        go.Figure(spec["figure"])  # raises on an unknown property
    assert [f["kind"] for f in figures.values()].count("3d") == 2


def test_time_like_axis_labelled(report):
    _, _, figures = _parse(report[0])
    scene = figures["dm-inpca-test"]["figure"]["layout"]["scene"]
    titles = [scene[f"{a}axis"]["title"]["text"] for a in "xyz"]
    assert titles == ["InPCA 1 (space-like)", f"InPCA 2 ({TIME_LIKE})", "InPCA 3 (space-like)"]


def test_no_time_like_label_without_negative_eigenvalue(tmp_path, make_picture):
    path = write_report(tmp_path / "r.html", {"test": make_picture(eigenvalues=[3, 1, 0.5])},
                        title="all space-like")
    text, _, figures = _parse(path)
    assert TIME_LIKE not in text
    scene = figures["dm-inpca-test"]["figure"]["layout"]["scene"]
    assert all("(space-like)" in scene[f"{a}axis"]["title"]["text"] for a in "xyz")


def test_every_run_label_and_reference_present(report):
    _, _, figures = _parse(report[0])
    for probe, picture in report[1].items():
        fig = figures[f"dm-inpca-{probe}"]["figure"]
        hover = " ".join(t for trace in fig["data"] for t in trace.get("text") or [] if t)
        for run in picture.runs:
            assert run.run_label in hover
        names = {trace["name"] for trace in fig["data"]}
        assert {"ignorance P₀", "truth P*", "geodesic (ignorance → truth)"} <= names
        labels = {a["text"] for a in fig["layout"]["scene"]["annotations"]}
        assert labels == {"<b>ignorance P₀</b>", "<b>truth P*</b>"}


def test_hover_names_epoch_step_progress_accuracy(report):
    _, _, figures = _parse(report[0])
    trace = figures["dm-inpca-test"]["figure"]["data"][0]
    first = trace["text"][0]
    for word in ("epoch", "step", "progress", "test acc"):
        assert word in first


def test_excluded_runs_notes_and_summary_listed(report):
    text, _, _ = _parse(report[0])
    assert "run-099" in text and "diverged: loss became NaN" in text
    assert "2 samples clamped at BC = 1e-12" in text
    assert "digits &lt;sweep&gt;" in text and "digits <sweep>" not in text
    assert "<code>deepmanifold run digits.toml</code>" in text
    assert "12.35" in text  # floats rounded for reading


def test_status_marker_and_warnings_present(report):
    _, page, _ = _parse(report[0])
    assert page.ids["dm-status"]["data-state"] == "pending"
    assert page.ids["dm-status"]["data-expected"] == "5"
    assert {"dm-webgl-warning", "dm-error-warning"} <= set(page.ids)


def test_groups_toggle_together_with_one_colour(report):
    pictures = report[1]
    colours = group_colours(pictures.values())
    fig = inpca_figure(pictures["test"], colours)
    runs = [t for t in fig["data"] if t.get("legendgroup")]
    assert sorted(t["name"] for t in runs) == sorted(colours)  # one trace per group
    for trace in runs:
        assert trace["line"]["color"] == trace["marker"]["color"] == colours[trace["name"]]
    progress = progress_figure(pictures, colours)
    shown = [t["name"] for t in progress["data"] if t["showlegend"]]
    assert sorted(shown) == sorted(colours)  # the second panel reuses the legend entries


def test_runs_joined_in_step_order_and_split_by_gaps(make_picture):
    picture = make_picture(n_runs=4, n_checkpoints=6, eigenvalues=[2.0, -1.0, 0.5])
    first = picture.runs[0]
    in_order = rounded(first.coords[:, 0])
    reverse = slice(None, None, -1)  # hand the checkpoints over last first
    for name in ("steps", "epochs", "coords", "progress"):
        setattr(first, name, getattr(first, name)[reverse])
    first.metrics = {key: value[reverse] for key, value in first.metrics.items()}
    trace = inpca_figure(picture)["data"][0]  # group "cnn": runs 0 and 3
    n = len(first.steps)
    assert trace["name"] == "cnn"
    assert trace["x"][:n] == in_order
    assert trace["x"][n] is None  # a gap, then the group's next run
    assert trace["x"][n + 1:] == rounded(picture.runs[3].coords[:, 0])


@pytest.mark.parametrize("k, kind", [(2, "scatter"), (1, "scatter")])
def test_falls_back_to_2d(tmp_path, k, kind, make_picture):
    picture = make_picture(eigenvalues=[2.0, -0.5][:k])
    fig = inpca_figure(picture)
    assert {t["type"] for t in fig["data"]} == {kind}
    go.Figure(fig)
    titles = fig["layout"]["xaxis"]["title"]["text"], fig["layout"]["yaxis"]["title"]["text"]
    assert titles == (("InPCA 1 (space-like)", f"InPCA 2 ({TIME_LIKE})") if k == 2
                      else ("InPCA 1 (space-like)", "progress λ"))
    path = write_report(tmp_path / "r.html", {"train": picture}, title="flat")
    _, _, figures = _parse(path)
    assert figures["dm-inpca-train"]["kind"] == "2d"


def test_picture_without_components_still_writes(tmp_path, make_picture):
    picture = make_picture(eigenvalues=[1.0])
    picture.eigenvalues = picture.eigenvalues[:0]
    picture.explained_stress = picture.explained_fraction = np.zeros(0)
    for run in picture.runs:
        run.coords = run.coords[:, :0]
    assert inpca_figure(picture)["data"] == []
    _, _, figures = _parse(write_report(tmp_path / "r.html", {"test": picture}, title="empty"))
    assert figures["dm-inpca-test"]["kind"] == "2d"


def test_stress_and_fraction_are_distinct_series(make_picture):
    picture = make_picture()
    fig = stress_figure({"test": picture})
    names = [t["name"] for t in fig["data"]]
    assert names == ["explained stress (test)", "plain fraction Σμ²/‖W‖² (test)",
                     "eigenvalues (test)"]
    assert fig["data"][0]["y"] == rounded(picture.explained_stress)
    assert fig["data"][1]["y"] == rounded(picture.explained_fraction)
    bars = fig["data"][2]
    assert bars["y"] == rounded(picture.eigenvalues)
    assert [c == "#d62728" for c in bars["marker"]["color"]] == list(picture.eigenvalues < 0)


def test_accuracy_has_train_and_test_panels(make_picture):
    picture = make_picture()
    fig = accuracy_figure(picture, group_colours([picture]))
    panels = {t["xaxis"] for t in fig["data"]}
    assert panels == {"x", "x2"}
    go.Figure(fig)


def test_rounding_and_axis_titles():
    assert rounded([1.23456789, np.nan, np.inf, -2e-7, 12345678.0]) == [
        1.2346, None, None, -2e-7, 12346000.0]
    assert axis_title(0, 2.0) == "InPCA 1 (space-like)"
    assert axis_title(2, -0.1) == f"InPCA 3 ({TIME_LIKE})"


def test_main_probe_is_test_when_present():
    assert main_probe({"train": 1, "test": 2}) == "test"
    assert main_probe({"train": 1}) == "train"
    with pytest.raises(ValueError, match="empty"):
        main_probe({})


def test_rejects_bad_input(tmp_path, make_picture):
    with pytest.raises(ValueError, match="empty"):
        write_report(tmp_path / "r.html", {}, title="x")
    picture = make_picture()
    picture.runs[0].progress = picture.runs[0].progress[:-1]
    with pytest.raises(ValueError, match="run-000.*progress"):
        write_report(tmp_path / "r.html", {"test": picture}, title="x")
    assert not (tmp_path / "r.html").exists()


def test_script_breaking_label_is_escaped(tmp_path, make_picture):
    picture = make_picture(n_runs=1)
    picture.runs[0].run_label = "evil </script><script>alert(1)</script>"
    text = write_report(tmp_path / "r.html", {"test": picture}, title="x").read_text()
    assert "</script><script>alert(1)" not in text
    _, _, figures = _parse(tmp_path / "r.html")
    hover = figures["dm-inpca-test"]["figure"]["data"][0]["text"][0]
    assert "evil &lt;/script&gt;" in hover


# ----------------------------------------------------------------------------- findings
@pytest.fixture(scope="module")
def findings_report(tmp_path_factory, make_picture, make_findings):
    """A report after `analyze`: two pictures and the findings."""
    pictures = {"test": make_picture(), "train": make_picture(probe="train", seed=1)}
    path = write_report(tmp_path_factory.mktemp("findings") / "report.html", pictures,
                        title="after analyze", findings=make_findings())
    return path


def test_rules_show_as_plain_text(findings_report):
    from deepmanifold.analysis.claims import RULES

    assert not [key for key, rule in RULES.items() if "``" in rule]
    text, _, _ = _parse(findings_report)
    body = text.split("</head>")[1].split('id="dm-figures"')[0]  # what the reader sees
    assert "``" not in body
    assert "Architecture is the model family; corner-initialised runs are left out" in text
    assert "Progress is the reference study's: the summed Bhattacharyya angle to the geodesic" in text


# ----------------------------------------------------------------------------- writing
def test_full_disk_names_the_path_and_keeps_the_previous_report(tmp_path, monkeypatch,
                                                                 make_picture):
    """A write that hits a full disk (/dev/full answers every write with ENOSPC)."""
    if not os.path.exists("/dev/full"):
        pytest.skip("needs /dev/full")
    path = tmp_path / "report.html"
    pictures = {"test": make_picture()}
    write_report(path, pictures, title="before")
    before = path.read_bytes()

    def full_disk(prefix, suffix, dir):
        return os.open("/dev/full", os.O_WRONLY), os.path.join(dir, f"{prefix}full{suffix}")

    monkeypatch.setattr(page.tempfile, "mkstemp", full_disk)
    with pytest.raises(OSError, match="disk is full") as caught:
        write_report(path, pictures, title="after")
    assert caught.value.errno == errno.ENOSPC
    assert str(path) in str(caught.value)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["report.html"]


def test_eigenvalues_are_mu_and_progress_is_lambda(report, make_picture):
    """λ is progress (docs/method.md §3) everywhere on the page; eigenvalues are μ."""
    text, _, figures = _parse(report[0])
    body = text.split("</head>")[1]
    for eigen_lambda in ("λ<0", "λ&lt;0", "|λ|", "Σλ", "sign(λ", "λ<sub>", "λ =", "eigenvalues λ"):
        assert eigen_lambda not in body, eigen_lambda
    assert "progress λ" in body and "Progress</b> λ" in body
    stress = figures["dm-stress"]["figure"]["layout"]
    assert stress["yaxis2"]["title"]["text"] == "eigenvalue μ"
    assert stress["annotations"][1]["text"] == "<b>signed eigenvalues μ</b>"
    assert figures["dm-progress"]["figure"]["layout"]["yaxis"]["title"]["text"] == "progress λ"
    flat = inpca_figure(make_picture(eigenvalues=[2.0]))
    assert flat["layout"]["yaxis"]["title"]["text"] == "progress λ"


def test_how_to_read_calls_the_signed_sum_a_squared_distance(report):
    text, _, _ = _parse(report[0])
    guide = text.split('id="dm-guide"')[1]
    assert re.search(r"<b>squared</b> distance Σ<sub>k</sub> sign\(μ<sub>k</sub>\)\s*"
                     r"\(Δx<sub>k</sub>\)²", guide)


@pytest.mark.parametrize("eigenvalues", [[3.0, -1.2, 0.6], [3.0, -1.2]])
def test_geodesic_drawn_on_top_of_the_runs(eigenvalues, make_picture):
    fig = inpca_figure(make_picture(eigenvalues=eigenvalues))
    names = [t["name"] for t in fig["data"]]
    assert names == ["cnn", "mlp", "resnet", "geodesic (ignorance → truth)", "ignorance P₀",
                     "truth P*"]  # drawn in this order: the references last
    runs, geodesic = fig["data"][:3], fig["data"][3]
    assert geodesic.get("opacity", 1) == 1 and "dash" not in geodesic["line"]
    assert all(geodesic["line"]["width"] > t["line"]["width"] for t in runs)
    if len(eigenvalues) == 3:  # WebGL blends translucent runs over the opaque geodesic
        assert all(t["opacity"] < 1 for t in runs)


def test_3d_camera_leaves_room_for_axis_titles(make_picture):
    eye = inpca_figure(make_picture())["layout"]["scene"]["camera"]["eye"]
    assert np.linalg.norm([eye["x"], eye["y"], eye["z"]]) > 1.25 * np.sqrt(3)  # plotly's default


def test_picture_comes_first_and_the_findings_right_after(findings_report):
    """Page order: the main picture under the header, then the findings and their figures."""
    text, page, figures = _parse(findings_report)
    sections = re.findall(r'<section id="([^"]+)"', text)
    assert sections[:3] == ["dm-inpca-test-section", "dm-findings", "dm-findings-figure-section"]
    assert sections.index("dm-inpca-train-section") > sections.index("dm-analysis-averaging-section")
    assert sections[-4:] == ["dm-stress-section", "dm-progress-section", "dm-accuracy-section",
                             "dm-guide"]
    assert list(figures)[0] == "dm-inpca-test"  # drawn first, as it is seen first
    nav = re.search(r"<nav>(.*?)</nav>", text).group(1)
    links = re.findall(r'href="#([^"]+)"', nav)
    assert links == [s for s in sections if s in links]  # the bar follows the page
    assert links[:3] == ["dm-inpca-test-section", "dm-findings", "dm-findings-figure-section"]


def test_header_links_each_verdict_to_its_claim(findings_report, make_findings):
    text, page, _ = _parse(findings_report)
    header = re.search(r"<header>(.*?)</header>", text).group(1)
    for claim in make_findings()["claims"]:
        anchor = f"dm-claim-{claim['key'].replace('_', '-')}"
        link = re.search(rf'<a class="verdict" href="#{anchor}"[^>]*>([^<]*)<b>([^<]*)</b>', header)
        assert link and link.group(2) == claim["verdict"], claim["key"]
        assert page.ids[anchor]  # the claim's row in the findings table
    assert header.index('class="verdicts"') < header.index('class="facts"')


# ----------------------------------------------------------------------------- colouring
def _varied(make_picture, **kwargs):
    """A picture whose runs differ in optimiser, width and seed (lr is the same for all)."""
    picture = make_picture(**kwargs)
    for i, run in enumerate(picture.runs):
        run.config = {**run.config, "optimizer": ("sgd", "adam")[i % 2], "lr": 0.1,
                      "arch_options": {"width": (16, 128, 32)[i % 3]}, "label": run.run_label}
    picture.runs[0].config.pop("optimizer")
    return picture


def _colouring(text: str) -> dict:
    found = re.search(r'<script type="application/json" id="dm-colouring">(.*?)</script>', text)
    return json.loads(found.group(1))


def test_colour_menu_offers_the_keys_that_vary(tmp_path, make_picture):
    pictures = {"test": _varied(make_picture), "train": _varied(make_picture, probe="train")}
    text = write_report(tmp_path / "r.html", pictures, title="x").read_text()
    menu = re.search(r'<select id="dm-colour">(.*?)</select>', text).group(1)
    options = re.findall(r'<option value="([^"]+)"( selected)?>', menu)
    # architecture first and chosen; then the varying keys: not lr (one value), not arch
    # (the architecture itself), not label (one per run)
    assert options == [("architecture", " selected"), ("arch_options.width", ""),
                       ("optimizer", ""), ("seed", "")]
    colouring = _colouring(text)
    assert colouring["default"] == "architecture"
    by_key = {o["key"]: o for o in colouring["options"]}
    runs = {run.run_id for run in pictures["test"].runs}
    for option in by_key.values():
        assert set(option["runs"]) == runs
        assert len(option["colours"]) == len(option["values"]) == len(set(option["colours"]))
    assert by_key["arch_options.width"]["values"] == ["16", "32", "128"]  # numbers by size
    assert by_key["optimizer"]["values"] == ["adam", "sgd", "not set"]
    assert by_key["optimizer"]["runs"]["run-000"] == 2 and by_key["optimizer"]["runs"]["run-001"] == 0
    assert by_key["architecture"]["values"] == ["cnn", "mlp", "resnet"]
    assert by_key["architecture"]["colours"] == list(group_colours(pictures.values()).values())


def test_run_traces_say_which_runs_they_join(make_picture):
    """The page splits the joined arrays back into runs from `meta` to regroup them."""
    picture = make_picture(n_runs=5)
    figures = [inpca_figure(picture), progress_figure({"test": picture}, group_colours([picture])),
               accuracy_figure(picture, group_colours([picture]))]
    for fig in figures:
        runs = [t for t in fig["data"] if t.get("legendgroup")]
        assert runs and all("meta" in t for t in runs)
        for trace in runs:
            lengths = trace["meta"]["lengths"]
            assert len(trace["x"]) == sum(lengths) + len(lengths) - 1  # one gap between runs
            starts = np.cumsum([0] + [n + 1 for n in lengths[:-1]])
            assert all(trace["x"][s - 1] is None for s in starts[1:])
            by_id = {run.run_id: run for run in picture.runs}
            assert lengths == [len(by_id[r].steps) for r in trace["meta"]["runs"]]
            assert all(by_id[r].group == trace["name"] for r in trace["meta"]["runs"])
        panels: dict[str, list] = {}
        for trace in (t for t in fig["data"] if "meta" in t):
            panels.setdefault(trace.get("xaxis", "x"), []).extend(trace["meta"]["runs"])
        assert all(sorted(ids) == sorted(by_id) for ids in panels.values())  # each run once a panel


def test_colour_by_opens_the_page_with_that_key(tmp_path, make_picture):
    pictures = {"test": _varied(make_picture)}
    text = write_report(tmp_path / "r.html", pictures, title="x", colour_by="seed").read_text()
    assert _colouring(text)["default"] == "seed"
    assert '<option value="seed" selected>' in text
    with pytest.raises(ValueError, match=r"colour_by='lr'.*'architecture', 'arch_options.width'"):
        write_report(tmp_path / "r2.html", pictures, title="x", colour_by="lr")


def test_one_architecture_and_nothing_varying_leaves_one_choice(tmp_path, make_picture):
    picture = make_picture(n_runs=1)
    text = write_report(tmp_path / "r.html", {"test": picture}, title="x").read_text()
    assert re.search(r'<select id="dm-colour" disabled><option value="architecture" selected>', text)


# ----------------------------------------------------------------------------- claims on two probes
def _claims_table(text: str) -> tuple[list[str], dict[str, list[str]]]:
    """Header cells and, per claim row id, its cells (tags stripped) of the findings table."""
    section = text.split('<section id="dm-findings">')[1].split("</section>")[0]
    header = [re.sub(r"<[^>]+>", "", h) for h in re.findall(r"<th[^>]*>(.*?)</th>", section)]
    rows = {}
    for row_id, body in re.findall(r'<tr id="([^"]+)">(.*?)</tr>', section):
        rows[row_id] = [re.sub(r"<[^>]+>", " ", c).split() for c in re.findall(r"<td[^>]*>(.*?)</td>", body)]
    return header, rows


def test_every_claim_shows_its_verdict_on_both_probes(findings_report, make_findings):
    text, _, _ = _parse(findings_report)
    header, rows = _claims_table(text)
    assert header == ["claim", "verdict (test)", "verdict (train)", "numbers", "rule"]
    findings = make_findings()
    other = {c["key"]: c for c in findings["claims_other_probe"]}
    for claim in findings["claims"]:
        cells = rows[f"dm-claim-{claim['key'].replace('_', '-')}"]
        assert " ".join(cells[1]).startswith(claim["verdict"])
        if claim["key"] in other:
            assert " ".join(cells[2]).startswith(other[claim["key"]]["verdict"])
            assert "mean: 0.25" in " ".join(cells[2])  # its own numbers, folded under it
        else:
            assert cells[2] == ["–"]  # not judged on the train probe
        assert "mean: 0.1235" in " ".join(cells[3])
    assert "judged on the test probe and, beside it, on the train probe" in text


def test_claims_on_one_probe_keep_one_verdict_column(tmp_path, make_picture, make_findings):
    path = write_report(tmp_path / "r.html", {"test": make_picture()}, title="x",
                        findings=make_findings(other_probe=False))
    header, rows = _claims_table(path.read_text())
    assert header == ["claim", "verdict", "numbers", "rule"]
    assert all(len(cells) == 4 for cells in rows.values())
