"""Open the report in a real headless Chromium and check that it draws.

The page records its own outcome in ``#dm-status`` once every figure is drawn:
script errors, and for each 3-D plot whether its scene got a WebGL canvas of
nonzero size and how many coloured pixels that canvas drew (read back from the
live WebGL context). Chromium's ``--dump-dom`` hands the final DOM back.
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
    "--window-size=1400,1000", "--enable-logging=stderr", "--v=0",
    "--virtual-time-budget=10000",
)
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


def _dump_dom(html_path, profile, *extra: str) -> tuple[str, str]:
    """Load `html_path` in headless Chromium; return the final DOM and Chromium's log."""
    cmd = [_chromium(), *FLAGS, *extra, f"--user-data-dir={profile}", "--dump-dom",
           html_path.as_uri()]
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
