"""Open the report in a real headless Chromium and check that it draws.

The page records its own outcome in ``#dm-status`` once every figure is drawn:
script errors, for each 3-D plot whether its scene got a WebGL canvas of nonzero
size and how many coloured pixels that canvas drew (read back from the live WebGL
context), text of a figure cut off at its edge or titles overlapping other text or
a plot area, where each figure sits on the page, and how the runs are coloured.
Chromium's ``--dump-dom`` hands the final DOM back.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
from html.parser import HTMLParser

import pytest

from deepmanifold.report import write_report

pytestmark = pytest.mark.browser

TIMEOUT_S = 60
#: Headless, offline, no GPU: WebGL comes from SwiftShader (software) through ANGLE.
FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--no-first-run", "--disable-quic", "--disable-component-update", "--disable-sync",
    "--use-angle=swiftshader", "--enable-unsafe-swiftshader",
    "--enable-logging=stderr", "--v=0", "--virtual-time-budget=10000",
)
#: Window sizes the layout must hold at: a large desktop and a laptop screen.
WINDOWS = ("1600,1200", "1280,800")
#: A 3-D picture of 6 runs x 12 checkpoints covers thousands of pixels; 0 means not drawn.
MIN_COLOURED_PX = 500


class _Status(HTMLParser):
    """The attributes of the element with id ``dm-status`` and of the warning banners."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: dict[str, dict] = {}

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if attrs.get("id", "").startswith("dm-"):
            self.elements[attrs["id"]] = attrs


def _chromium() -> str:
    path = shutil.which("chromium")
    if path is None:
        pytest.skip("chromium not found: apt-get install chromium")
    return path


def _dump_dom(html_path, profile, *extra: str, window: str = "1400,1000",
              fragment: str = "") -> tuple[str, str]:
    """Load `html_path` (and `fragment`) in headless Chromium; return the final DOM and its log."""
    cmd = [_chromium(), *FLAGS, *extra, f"--window-size={window}", f"--user-data-dir={profile}",
           "--dump-dom", html_path.as_uri() + fragment]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # Chromium's own process group, started above
        proc.communicate()
        pytest.fail(f"chromium did not finish within {TIMEOUT_S} s: {' '.join(cmd)}")
    assert proc.returncode == 0, f"chromium exited with {proc.returncode}:\n{err[-3000:]}"
    return out, err


def _status(dom: str) -> dict[str, dict]:
    parser = _Status()
    parser.feed(dom)
    assert "dm-status" in parser.elements, f"no #dm-status in the dumped DOM:\n{dom[:2000]}"
    return parser.elements


@pytest.fixture(scope="module")
def report_path(tmp_path_factory, make_picture):
    pictures = {"test": make_picture(), "train": make_picture(probe="train", seed=1)}
    return write_report(tmp_path_factory.mktemp("browser") / "report.html", pictures,
                        title="browser check", summary={"runs": 6})


def test_report_draws_in_headless_chromium(report_path, tmp_path):
    dom, log = _dump_dom(report_path, tmp_path / "profile")
    elements = _status(dom)
    status = elements["dm-status"]
    assert status["data-state"] == "done", "the page did not finish drawing in time"
    assert json.loads(status["data-errors"]) == []
    uncaught = [line for line in log.splitlines() if re.search(r"CONSOLE.*Uncaught", line)]
    assert uncaught == []
    assert status["data-plots"] == status["data-expected"] == "5"
    scenes = json.loads(status["data-scenes"])
    assert [s["id"] for s in scenes] == ["dm-inpca-test", "dm-inpca-train"]
    for scene in scenes:
        assert scene["canvas"] and scene["webgl"], scene
        assert scene["width"] > 0 and scene["height"] > 0, scene
        assert scene["coloured_px"] >= MIN_COLOURED_PX, scene
    assert "shown" not in elements["dm-webgl-warning"].get("class", "")
    assert "shown" not in elements["dm-error-warning"].get("class", "")


def test_report_says_so_when_webgl_is_missing(report_path, tmp_path):
    dom, _ = _dump_dom(report_path, tmp_path / "profile", "--disable-3d-apis")
    elements = _status(dom)
    status = elements["dm-status"]
    assert status["data-state"] == "done"
    assert json.loads(status["data-errors"]) == []
    assert status["data-plots"] == "5"  # the 2-D figures still draw
    assert not any(scene["webgl"] for scene in json.loads(status["data-scenes"]))
    assert "shown" in elements["dm-webgl-warning"]["class"]


# ----------------------------------------------------------------------------- after analyze
@pytest.fixture(scope="module")
def findings_path(tmp_path_factory, make_picture, make_findings):
    """A report after `analyze`, of runs whose optimiser and width vary."""
    pictures = {"test": make_picture(), "train": make_picture(probe="train", seed=1)}
    for picture in pictures.values():
        for i, run in enumerate(picture.runs):
            run.config = {**run.config, "optimizer": ("sgd", "adam")[i % 2],
                          "arch_options": {"width": (16, 128, 32)[i % 3]}, "lr": 0.1}
    return write_report(tmp_path_factory.mktemp("browser") / "report.html", pictures,
                        title="after analyze", summary={"runs": 6}, findings=make_findings())


@pytest.mark.parametrize("window", WINDOWS)
def test_layout_holds_at_common_window_sizes(findings_path, tmp_path, window):
    """No text cut off or overlapped, and the picture on the first screen."""
    dom, _ = _dump_dom(findings_path, tmp_path / "profile", window=window)
    status = _status(dom)["dm-status"]
    assert status["data-state"] == "done"
    assert json.loads(status["data-errors"]) == []
    assert status["data-plots"] == status["data-expected"]
    assert json.loads(status["data-text-problems"]) == []
    tops = json.loads(status["data-tops"])
    _, height = json.loads(status["data-viewport"])
    assert tops["dm-inpca-test"] < height  # the picture starts on the first screen
    assert min(tops, key=tops.get) == "dm-inpca-test"


def test_runs_recolour_by_any_varying_key(findings_path, tmp_path):
    """Opened with #colour=optimizer, every run figure is coloured by optimiser."""
    dom, _ = _dump_dom(findings_path, tmp_path / "profile", fragment="#colour=optimizer")
    elements = _status(dom)
    status = elements["dm-status"]
    assert json.loads(status["data-errors"]) == []
    assert status["data-colour"] == "optimizer"
    legends = json.loads(status["data-legends"])
    assert set(legends) == {"dm-inpca-test", "dm-inpca-train", "dm-progress", "dm-accuracy",
                            "dm-analysis-tangent", "dm-analysis-trajectory-inpca",
                            "dm-analysis-joint-embedding"}  # the path analyses draw the same runs
    assert all(names == ["adam", "sgd"] for names in legends.values()), legends
    traces = json.loads(status["data-traces"])
    assert traces["dm-analysis-trajectory-inpca"][-1] == "geodesic (reference trajectory)"
    assert traces["dm-inpca-test"][-3:] == ["geodesic (ignorance → truth)", "ignorance P₀",
                                            "truth P*"]  # still drawn over the runs
    assert traces["dm-progress"] == ["adam", "sgd", "adam", "sgd"]  # both panels
    for scene in json.loads(status["data-scenes"]):
        assert scene["webgl"] and scene["coloured_px"] >= MIN_COLOURED_PX, scene
    picture = dom[dom.index('id="dm-inpca-test"'):dom.index('id="dm-findings"')]
    assert re.search(r'class="legendtitletext"[^>]*>optimizer<', picture)
    assert re.findall(r'class="legendtext"[^>]*>([^<]*)<', picture)[:2] == ["adam", "sgd"]


def test_the_data_map_draws_and_shows_a_sample_image(make_picture, tmp_path):
    import numpy as np

    from deepmanifold.analysis.samples import SampleMaps, sample_dynamics

    rng = np.random.default_rng(0)
    logits = rng.standard_normal((6, 40, 3)).cumsum(axis=0)
    logp = logits - np.log(np.exp(logits).sum(axis=2, keepdims=True))
    labels = rng.integers(0, 3, 40)
    maps = SampleMaps(probe="train", labels=labels,
                      runs=[("r0", "run 0", sample_dynamics(logp, labels)), ("r1", "run 1", sample_dynamics(logp[::-1], labels))],
                      flipped=np.arange(40) < 4, images=rng.integers(0, 256, (40, 5, 6), dtype=np.uint8))
    path = write_report(tmp_path / "report.html", {"test": make_picture()}, title="data map", samples=maps)
    dom, _ = _dump_dom(path, tmp_path / "profile")
    elements = _status(dom)
    status = elements["dm-status"]
    assert status["data-state"] == "done" and json.loads(status["data-errors"]) == []
    assert status["data-plots"] == status["data-expected"]
    assert '"dm-datamap"' in status["data-tops"]
    canvas = re.search(r'<canvas id="dm-sample-image"[^>]*data-sample="(\d+)"', dom)
    assert canvas and canvas.group(1) == "0"  # the first sample's image was drawn
