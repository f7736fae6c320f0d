"""Static parts of the HTML report: style sheet, scripts and the reading guide.

Kept as Python strings (not package data files) so the report works from any install
without package-data configuration.
"""

CSS = """
:root { --ink: #1d2329; --muted: #5f6b76; --line: #e3e7eb; --card: #ffffff;
        --bg: #f4f6f8; --accent: #1f77b4; --warn: #b3261e; }
* { box-sizing: border-box; }
body { margin: 0; background: var(--bg); color: var(--ink);
       font: 15px/1.55 system-ui, -apple-system, "Segoe UI", Roboto, Helvetica, Arial, sans-serif; }
header { background: #18212b; color: #f2f5f7; padding: 28px 0 22px; }
header h1 { margin: 0 0 4px; font-size: 26px; font-weight: 600; letter-spacing: .2px; }
header .sub { color: #aab6c2; margin: 0; font-size: 13px; }
header .verdicts { margin: 14px 0 0; color: #aab6c2; font-size: 14px; }
header a.verdict { display: inline-block; margin: 2px 0 2px 8px; padding: 2px 10px;
                   border-radius: 12px; background: #f2f5f7; text-decoration: none; }
header a.verdict:hover { background: #ffffff; }
tr:target td { background: #fff8c5; }
.wrap { max-width: 1320px; margin: 0 auto; padding: 0 28px; }
nav { position: sticky; top: 0; z-index: 10; background: rgba(255,255,255,.94);
      border-bottom: 1px solid var(--line); backdrop-filter: blur(4px); }
nav a { display: inline-block; padding: 10px 12px; color: var(--muted); text-decoration: none;
        font-size: 14px; }
nav a:hover { color: var(--accent); }
section { background: var(--card); border: 1px solid var(--line); border-radius: 10px;
          margin: 22px 0; padding: 20px 24px 24px; box-shadow: 0 1px 2px rgba(0,0,0,.03); }
section h2 { margin: 0 0 6px; font-size: 20px; font-weight: 600; }
section h3 { margin: 22px 0 6px; font-size: 16px; font-weight: 600; }
p.lead { color: var(--muted); margin: 0 0 14px; max-width: 980px; }
.plot { width: 100%; min-height: 200px; }
.facts { display: grid; grid-template-columns: minmax(0, 2fr) minmax(0, 3fr); gap: 28px;
         margin-top: 18px; }
.facts > div { overflow-x: auto; }
.facts > div:only-child { grid-column: 1 / -1; }
@media (max-width: 900px) { .facts { grid-template-columns: minmax(0, 1fr); } }
table { border-collapse: collapse; width: 100%; font-size: 14px; }
th, td { text-align: left; padding: 6px 10px; border-bottom: 1px solid var(--line);
         vertical-align: top; }
th { color: var(--muted); font-weight: 500; white-space: nowrap; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
header table th { color: #aab6c2; border-color: #2c3946; white-space: normal; }
header .timelike { color: #ff8a80; }
header table td { color: #f2f5f7; border-color: #2c3946; }
header table code { color: #cfe3f5; }
code { font: 13px/1.4 ui-monospace, SFMono-Regular, Menlo, Consolas, monospace;
       word-break: break-all; }
.timelike { color: var(--warn); font-weight: 600; white-space: nowrap; }
.banner { display: none; margin: 18px 0 0; padding: 12px 16px; border-radius: 8px;
          background: #fdecea; color: var(--warn); border: 1px solid #f5c2bd; }
.banner.shown { display: block; }
.guide li { margin: 4px 0; }
.empty { color: var(--muted); font-style: italic; }
footer { color: var(--muted); font-size: 13px; padding: 8px 0 40px; }
"""

#: Runs first, before plotly.js loads, so errors from anywhere on the page are kept.
ERROR_CAPTURE_JS = """
window.__dmErrors = [];
window.addEventListener("error", function (e) {
  var where = e.lineno ? " (line " + e.lineno + ")" : "";
  window.__dmErrors.push(String(e.message || e.type) + where);
});
window.addEventListener("unhandledrejection", function (e) {
  window.__dmErrors.push("unhandled rejection: " + String(e.reason));
});
(function () {
  var original = console.error;
  console.error = function () {
    window.__dmErrors.push("console.error: " + Array.prototype.join.call(arguments, " "));
    return original.apply(console, arguments);
  };
})();
"""

#: Draws every figure, then checks each 3-D scene really drew with WebGL and records
#: the outcome in #dm-status (read by the browser test, shown in the footer).
RENDER_JS = """
(function () {
  "use strict";
  var errors = window.__dmErrors;
  var figures = JSON.parse(document.getElementById("dm-figures").textContent);
  var config = {responsive: true, displaylogo: false,
                toImageButtonOptions: {format: "png", scale: 2, filename: "deepmanifold"}};

  // Pixels of an image that are clearly coloured (the runs; axes and references are grey).
  function colouredPixels(url) {
    return new Promise(function (resolve) {
      var img = new Image();
      img.onload = function () {
        var c = document.createElement("canvas");
        c.width = img.width; c.height = img.height;
        var ctx = c.getContext("2d", {willReadFrequently: true});
        ctx.drawImage(img, 0, 0);
        var d = ctx.getImageData(0, 0, c.width, c.height).data, n = 0;
        for (var i = 0; i < d.length; i += 4) {
          var hi = Math.max(d[i], d[i + 1], d[i + 2]), lo = Math.min(d[i], d[i + 1], d[i + 2]);
          if (d[i + 3] > 0 && hi - lo > 60) { n++; }
        }
        resolve(n);
      };
      img.onerror = function () { resolve(-1); };
      img.src = url;
    });
  }

  // Did the 3-D scene of this plot get a WebGL canvas, and did it draw the runs?
  function checkScene(gd) {
    var canvas = gd.querySelector(".gl-container canvas");
    var layout = gd._fullLayout || {};
    var scene = layout.scene && layout.scene._scene;
    var out = {id: gd.id, canvas: !!canvas, width: canvas ? canvas.clientWidth : 0,
               height: canvas ? canvas.clientHeight : 0, webgl: false, coloured_px: 0};
    if (!canvas) { return Promise.resolve(out); }
    if (!scene || typeof scene.toImage !== "function") {  // plotly.js changed: cannot tell
      out.webgl = null;
      return Promise.resolve(out);
    }
    if (!scene.glplot || !scene.glplot.gl) { return Promise.resolve(out); }
    out.webgl = !scene.glplot.gl.isContextLost();
    return colouredPixels(scene.toImage("png")).then(function (n) {
      out.coloured_px = n;
      return out;
    });
  }

  function show(id, text) {
    var el = document.getElementById(id);
    el.textContent = text;
    el.classList.add("shown");
  }

  async function render() {
    var drawn = 0, scenes = [];
    for (var i = 0; i < figures.length; i++) {
      var f = figures[i], gd = document.getElementById(f.id);
      try {
        await Plotly.newPlot(gd, f.figure.data, f.figure.layout, config);
        drawn++;
        if (f.kind === "3d") { scenes.push(await checkScene(gd)); }
      } catch (e) {
        errors.push("drawing " + f.id + ": " + String(e && e.message || e));
      }
    }
    var noGL = scenes.filter(function (s) {
      return s.webgl === false || s.width === 0 || s.height === 0;
    });
    if (noGL.length) {
      show("dm-webgl-warning", "This browser could not draw with WebGL, so the 3-D picture " +
           "is missing. Turn on hardware acceleration or open the file in another browser; " +
           "the 2-D figures below do not need WebGL.");
    }
    if (errors.length) {
      show("dm-error-warning", "Script errors while drawing: " + errors.join(" | "));
    }
    var status = document.getElementById("dm-status");
    status.setAttribute("data-plots", String(drawn));
    status.setAttribute("data-errors", JSON.stringify(errors));
    status.setAttribute("data-scenes", JSON.stringify(scenes));
    status.setAttribute("data-ms", String(Math.round(performance.now())));
    status.setAttribute("data-state", "done");
    var text = drawn + " of " + figures.length + " figures drawn";
    if (scenes.length) {
      text += ", 3-D with WebGL: " + (scenes.length - noGL.length) + " of " + scenes.length;
    }
    if (errors.length) { text += ", " + errors.length + " script errors"; }
    status.textContent = text + ".";
  }

  render();
})();
"""

HOW_TO_READ = """
<ul class="guide">
<li>Each point is one checkpoint of one training run, seen only through what it predicts
on the probe samples (its class probabilities). Distances between checkpoints are the
intensive Bhattacharyya distance <i>d</i><sub>B</sub>, and InPCA places them in a few axes.</li>
<li>A line joins the checkpoints of one run in training order. Colours are architectures;
click a legend entry to hide that architecture, double-click to show it alone. Hover a point
for its run, epoch, step, progress and test accuracy.</li>
<li>The black curve is the geodesic from <b>ignorance P₀</b> (uniform predictions) to
<b>truth P*</b> (one-hot true labels). <b>Progress</b> λ of a checkpoint is where the nearest
point of that geodesic lies: 0 at P₀, 1 at P*. On this page λ is always progress; the
eigenvalues of InPCA (docs/method.md §4) are written μ.</li>
<li>Axes are sorted by |μ|, the size of their eigenvalue μ. An axis with a negative
eigenvalue is <span class="timelike">time-like</span>: separation along it <i>subtracts</i>
from the embedded <b>squared</b> distance Σ<sub>k</sub> sign(μ<sub>k</sub>)
(Δx<sub>k</sub>)², which reproduces <i>d</i><sub>B</sub> when every axis is kept (InPCA
treats <i>d</i><sub>B</sub> as a squared distance). So two points far apart along a
time-like axis can still be close in <i>d</i><sub>B</sub>. Axis signs are arbitrary and the
3-D view scales each axis to the same length, so pictures from two probe sets may be mirror
images of one another.</li>
<li><b>Explained stress</b> of the top <i>k</i> axes is
1 − ‖W − W<sub>k</sub>‖<sub>F</sub> / ‖W‖<sub>F</sub>; the <b>plain fraction</b> is
Σ<sub>l≤k</sub> μ<sub>l</sub>² / ‖W‖<sub>F</sub>². They are different numbers: the stress
grows more slowly.</li>
</ul>
"""
