"""The page ``deepmanifold watch`` serves: the reference picture, redrawn as checkpoints arrive.

One HTML file with plotly.js inlined (from the installed plotly package): it fetches
``reference.json`` once (again when its version changes) and ``live.json`` every
``interval`` milliseconds from the server that served it, and redraws in place. It
records its state in ``#dm-watch-status`` (``data-state``, ``data-polls``,
``data-checkpoints``: the live checkpoints drawn, ``data-runs``, ``data-placed``: runs
drawn in the picture, ``data-reference``: reference runs drawn), which is what the
browser test reads.
"""

from __future__ import annotations

import html

__all__ = ["watch_page"]

_CSS = """
body { font-family: system-ui, sans-serif; margin: 1.2em 2em; color: #222; }
h1 { font-size: 1.4em; margin: 0 0 .2em; }
#dm-watch-status { color: #555; margin-bottom: .8em; }
#dm-watch-status[data-state="error"] { color: #b00020; }
.row { display: flex; flex-wrap: wrap; gap: 1em; }
.plot { border: 1px solid #ddd; border-radius: 4px; }
#dm-watch-picture { width: 100%; height: 560px; }
#dm-watch-progress, #dm-watch-accuracy { flex: 1 1 480px; height: 320px; }
table { border-collapse: collapse; margin-top: 1em; font-size: .92em; }
th, td { padding: .25em .7em; border-bottom: 1px solid #eee; text-align: right; }
th:first-child, td:first-child { text-align: left; }
.note { color: #666; font-size: .9em; }
"""

_JS = r"""
(function () {
  const INTERVAL = __INTERVAL__;
  const PALETTE = ["#d62728", "#1f77b4", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"];
  const GREYS = ["#9aa5b1", "#b7a99a", "#a3b79a", "#b39ab7", "#9ab3b7"];
  const status = document.getElementById("dm-watch-status");
  let ref = null, refVersion = -1, polls = 0;

  function xyz(c) { return [c[0] ?? 0, c.length > 1 ? c[1] ?? 0 : 0, c.length > 2 ? c[2] ?? 0 : 0]; }
  function column(points, i) { return points.map(p => xyz(p)[i]); }
  function epochsOf(run) { return run.epochs.map((e, i) => e === null ? run.steps[i] : e); }

  function referenceTraces() {
    if (!ref || !ref.available) return [];
    const groups = [...new Set(ref.runs.map(r => r.group))];
    const traces = ref.runs.map(r => ({
      type: "scatter3d", mode: "lines", name: "reference: " + r.group, legendgroup: "ref-" + r.group,
      showlegend: false, hoverinfo: "text", text: r.coords.map((_, k) => r.label + " · progress " +
        (r.progress[k] === null ? "–" : r.progress[k].toFixed(3))),
      x: column(r.coords, 0), y: column(r.coords, 1), z: column(r.coords, 2),
      line: {color: GREYS[groups.indexOf(r.group) % GREYS.length], width: 2}, opacity: 0.55}));
    traces.push({type: "scatter3d", mode: "lines", name: "geodesic", hoverinfo: "name",
      x: column(ref.geodesic, 0), y: column(ref.geodesic, 1), z: column(ref.geodesic, 2),
      line: {color: "#000", width: 4}});
    traces.push({type: "scatter3d", mode: "markers+text", name: "ignorance / truth", hoverinfo: "text",
      x: [xyz(ref.ignorance)[0], xyz(ref.truth)[0]], y: [xyz(ref.ignorance)[1], xyz(ref.truth)[1]],
      z: [xyz(ref.ignorance)[2], xyz(ref.truth)[2]], text: ["ignorance", "truth"],
      marker: {size: 5, color: "#000"}});
    return traces;
  }

  function liveTraces(runs) {
    return runs.filter(r => r.coords).map((r, i) => ({
      type: "scatter3d", mode: "lines+markers", name: r.label + (r.live ? " (" + r.status + ")" : ""),
      x: column(r.coords, 0), y: column(r.coords, 1), z: column(r.coords, 2),
      text: r.steps.map((s, k) => "step " + s + " · progress " +
        (r.progress[k] === null ? "–" : r.progress[k].toFixed(3))), hoverinfo: "text+name",
      line: {color: PALETTE[i % PALETTE.length], width: 6},
      marker: {size: r.coords.map((_, k) => k === r.coords.length - 1 ? 7 : 3),
               color: PALETTE[i % PALETTE.length]}}));
  }

  function curves(runs, key) {
    return runs.map((r, i) => ({type: "scatter", mode: "lines+markers", name: r.label, x: epochsOf(r),
      y: r[key], line: {color: PALETTE[i % PALETTE.length], dash: r.live ? "solid" : "dot"}}));
  }

  function table(runs) {
    const body = runs.map(r => {
      const k = r.steps.length - 1;
      const cell = v => v === null || v === undefined ? "–" : (typeof v === "number" ? v.toFixed(3) : v);
      return "<tr data-run-id='" + r.run_id + "' data-status='" + r.status + "' data-checkpoints='" +
        r.steps.length + "'><td>" + r.label.replace(/</g, "&lt;") + "</td><td>" + r.status + "</td><td>" +
        r.steps.length + "</td><td>" + (k >= 0 ? r.steps[k] : "–") + "</td><td>" +
        cell(k >= 0 ? epochsOf(r)[k] : null) + "</td><td>" + cell(k >= 0 ? r.progress[k] : null) +
        "</td><td>" + cell(k >= 0 ? r.test_acc[k] : null) + "</td><td class='dm-forecast'>" +
        (r.forecast ? r.forecast.final_test_acc.toFixed(3) + " (" + r.forecast.low.toFixed(3) + "–" +
         r.forecast.high.toFixed(3) + ")" : "–") + "</td></tr>";
    }).join("");
    document.getElementById("dm-watch-table").innerHTML = "<table><thead><tr><th>run</th><th>status</th>" +
      "<th>checkpoints</th><th>step</th><th>epoch</th><th>progress</th><th>accuracy</th>" +
      "<th>forecast final accuracy (range)</th></tr></thead>" +
      "<tbody>" + body + "</tbody></table>";
  }

  function draw(live) {
    const pictureDiv = document.getElementById("dm-watch-picture");
    const note = document.getElementById("dm-watch-picture-note");
    if (ref && ref.available) {
      note.textContent = "reference: " + ref.store + " (" + ref.runs.length + " runs, probe " + ref.probe +
        "); live runs in colour, the reference in grey, the ignorance–truth geodesic in black.";
      Plotly.react(pictureDiv, referenceTraces().concat(liveTraces(live.runs)), {
        uirevision: "keep", margin: {l: 0, r: 0, t: 10, b: 0}, legend: {x: 0, y: 1},
        scene: {xaxis: {title: "x1"}, yaxis: {title: "x2"}, zaxis: {title: "x3"}}});
    } else {
      note.textContent = "no reference picture yet: it is built when the first run is committed.";
    }
    const layout = (title, range) => ({uirevision: "keep", margin: {l: 50, r: 10, t: 30, b: 40},
      title: {text: title, font: {size: 14}, x: 0.02, xanchor: "left"}, xaxis: {title: "epoch"}, yaxis: {range: range},
      showlegend: false});
    Plotly.react("dm-watch-progress", curves(live.runs, "progress"), layout("progress λ", [0, 1]));
    Plotly.react("dm-watch-accuracy", curves(live.runs, "test_acc"), layout("accuracy (probe set)", [0, 1]));
    table(live.runs);
  }

  async function tick() {
    try {
      const live = await (await fetch("live.json", {cache: "no-store"})).json();
      if (live.version !== refVersion) {
        ref = await (await fetch("reference.json", {cache: "no-store"})).json();
        refVersion = ref.version;
      }
      draw(live);
      polls += 1;
      const running = live.runs.filter(r => r.live && r.status === "running").length;
      status.dataset.state = "live";
      status.dataset.polls = String(polls);
      status.dataset.checkpoints = String(live.checkpoints);
      status.dataset.runs = String(live.runs.length);
      status.dataset.placed = String(ref && ref.available ? live.runs.filter(r => r.coords).length : 0);
      status.dataset.reference = String(ref && ref.available ? ref.runs.length : 0);
      status.textContent = running + " running · " + live.runs.length + " runs · " + live.checkpoints +
        " live checkpoints · updated " + new Date().toLocaleTimeString();
    } catch (e) {
      status.dataset.state = "error";
      status.textContent = "cannot reach the watch server (" + e + "); retrying";
    }
    setTimeout(tick, INTERVAL);
  }
  tick();
})();
"""


def watch_page(*, title: str, interval_ms: int) -> str:
    """The watch page's HTML (module docstring)."""
    from deepmanifold.report.page import _plotly_js

    script = _JS.replace("__INTERVAL__", str(int(interval_ms)))
    return (f"<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<style>{_CSS}</style><script>{_plotly_js()}</script></head><body>"
            f"<h1>{html.escape(title)}</h1>"
            "<div id='dm-watch-status' data-state='waiting' data-polls='0' data-checkpoints='0' data-runs='0'>"
            "connecting…</div>"
            "<div id='dm-watch-picture' class='plot'></div><p id='dm-watch-picture-note' class='note'></p>"
            "<div class='row'><div id='dm-watch-progress' class='plot'></div>"
            "<div id='dm-watch-accuracy' class='plot'></div></div>"
            "<div id='dm-watch-table'></div>"
            f"<script>{script}</script></body></html>")
