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
nav .wrap { display: flex; flex-wrap: wrap; align-items: center; justify-content: space-between;
            column-gap: 16px; }
nav label.colour { color: var(--muted); font-size: 14px; padding: 6px 0; white-space: nowrap; }
nav select { font: inherit; color: var(--ink); margin-left: 6px; padding: 3px 6px;
             border: 1px solid var(--line); border-radius: 6px; background: #fff; }
section { background: var(--card); border: 1px solid var(--line); border-radius: 10px;
          margin: 22px 0; padding: 20px 24px 24px; box-shadow: 0 1px 2px rgba(0,0,0,.03); }
section h2 { margin: 0 0 6px; font-size: 20px; font-weight: 600; }
section h3 { margin: 22px 0 6px; font-size: 16px; font-weight: 600; }
p.lead { color: var(--muted); margin: 0 0 14px; max-width: 980px; }
.plot { width: 100%; min-height: 200px; }
.dm-sample { display: inline-block; margin: .4em 0 0; text-align: center; color: #555; font-size: .9em; }
.dm-sample canvas { border: 1px solid #ccc; image-rendering: pixelated; }
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

#: Draws every figure with the runs coloured as the menu says (regrouping them client-side),
#: then checks each 3-D scene really drew with WebGL and that no text of a figure is cut
#: off or covered, and records the outcome in #dm-status (read by the browser test, shown
#: in the footer).
RENDER_JS = """
(function () {
  "use strict";
  var errors = window.__dmErrors;
  var figures = JSON.parse(document.getElementById("dm-figures").textContent);
  var colouring = JSON.parse(document.getElementById("dm-colouring").textContent);
  var menu = document.getElementById("dm-colour");
  var status = document.getElementById("dm-status");
  var config = {responsive: true, displaylogo: false,
                toImageButtonOptions: {format: "png", scale: 2, filename: "deepmanifold"}};

  // ---- colouring: run traces carry meta.runs (run ids) and meta.lengths (points per run)
  function hasRuns(trace) { return !!(trace.meta && trace.meta.runs); }

  function option(key) {
    return colouring.options.filter(function (o) { return o.key === key; })[0] || null;
  }

  // The figure's traces with the runs regrouped by `opt`: per panel, one trace per value,
  // its runs joined by gaps in their original order and styled as the panel's first run
  // trace. The other traces follow, so the references (geodesic, ignorance, truth) stay on top.
  function colouredData(data, opt) {
    var panels = [], byPanel = {};
    data.filter(hasRuns).forEach(function (t) {
      var where = [t.scene, t.xaxis, t.yaxis].join("|");
      if (!byPanel[where]) { byPanel[where] = {template: t, runs: []}; panels.push(byPanel[where]); }
      var start = 0;
      t.meta.runs.forEach(function (id, j) {
        var n = t.meta.lengths[j];
        byPanel[where].runs.push({id: id, trace: t, start: start, n: n});
        start += n + 1;
      });
    });
    var out = [];
    panels.forEach(function (panel) {
      var t0 = panel.template;
      var columns = Object.keys(t0).filter(function (k) {
        return Array.isArray(t0[k]) && t0[k].length === t0.x.length;
      });
      opt.values.forEach(function (name, v) {
        var runs = panel.runs.filter(function (r) { return opt.runs[r.id] === v; });
        if (!runs.length) { return; }
        var colour = opt.colours[v];
        var trace = Object.assign({}, t0, {
          name: name, legendgroup: name,
          line: Object.assign({}, t0.line, {color: colour}),
          marker: Object.assign({}, t0.marker, {color: colour}),
          meta: {runs: runs.map(function (r) { return r.id; }),
                 lengths: runs.map(function (r) { return r.n; })}});
        columns.forEach(function (k) {
          var joined = [];
          runs.forEach(function (r, j) {
            if (j) { joined.push(null); }
            Array.prototype.push.apply(joined, r.trace[k].slice(r.start, r.start + r.n));
          });
          trace[k] = joined;
        });
        out.push(trace);
      });
    });
    return out.concat(data.filter(function (t) { return !hasRuns(t); }));
  }

  function colouredLayout(layout, opt) {
    var legend = Object.assign({}, layout.legend, {title: {text: opt.label}});
    return Object.assign({}, layout, {legend: legend});
  }

  function coloured(f) { return f.figure.data.some(hasRuns); }

  // What each recoloured figure now draws, in drawing order, and its legend entries of
  // runs, for the status.
  function recordColouring(opt) {
    var traces = {}, legends = {};
    figures.filter(coloured).forEach(function (f) {
      var data = document.getElementById(f.id).data || [];
      traces[f.id] = data.map(function (t) { return t.name; });
      legends[f.id] = data.filter(function (t) {
        return hasRuns(t) && t.showlegend !== false;
      }).map(function (t) { return t.name; });
    });
    status.setAttribute("data-colour", opt.key);
    status.setAttribute("data-traces", JSON.stringify(traces));
    status.setAttribute("data-legends", JSON.stringify(legends));
  }

  async function recolour(key) {
    var opt = option(key);
    if (!opt) { return; }
    for (var i = 0; i < figures.length; i++) {
      var f = figures[i], gd = document.getElementById(f.id);
      if (!coloured(f) || !gd.data) { continue; }
      try {
        await Plotly.react(gd, colouredData(f.figure.data, opt), colouredLayout(gd.layout, opt));
      } catch (e) {
        errors.push("recolouring " + f.id + ": " + String(e && e.message || e));
      }
    }
    recordColouring(opt);
    status.setAttribute("data-errors", JSON.stringify(errors));
    if (errors.length) { show("dm-error-warning", "Script errors: " + errors.join(" | ")); }
    if (history.replaceState) { history.replaceState(null, "", "#colour=" + encodeURIComponent(key)); }
  }

  function startKey() {
    var m = /^#colour=(.+)$/.exec(location.hash);
    var key = m ? decodeURIComponent(m[1]) : colouring["default"];
    return option(key) ? key : colouring["default"];
  }

  // ---- checks
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

  // The plot areas of a figure's 2-D panels, in page coordinates.
  function plotAreas(gd, box) {
    var plots = (gd._fullLayout && gd._fullLayout._plots) || {};
    return Object.keys(plots).map(function (k) {
      var xa = plots[k].xaxis, ya = plots[k].yaxis;
      if (!xa || !ya || xa.visible === false) { return null; }
      return {text: "plot area " + k, r: {left: box.left + xa._offset, right: box.left + xa._offset + xa._length,
                                          top: box.top + ya._offset, bottom: box.top + ya._offset + ya._length}};
    }).filter(Boolean);
  }

  function overlap(a, b) {
    var w = Math.min(a.right, b.right) - Math.max(a.left, b.left);
    var h = Math.min(a.bottom, b.bottom) - Math.max(a.top, b.top);
    return w > 2 && h > 2;
  }

  // Text of a figure's SVG layer cut off at the figure's edge, and axis or figure titles
  // that overlap other text or a plot area (legends scroll by design and are left out).
  function textProblems(gd) {
    var box = gd.getBoundingClientRect(), problems = [];
    var texts = Array.prototype.slice.call(gd.querySelectorAll(".main-svg text"))
      .map(function (t) { return {el: t, text: t.textContent.trim(), r: t.getBoundingClientRect()}; })
      .filter(function (t) { return t.text && t.r.width > 0 && t.r.height > 0; });
    texts.forEach(function (t) {
      if (t.el.closest(".legend")) { return; }
      if (t.r.left < box.left - 1 || t.r.right > box.right + 1 ||
          t.r.top < box.top - 1 || t.r.bottom > box.bottom + 1) {
        problems.push({figure: gd.id, text: t.text, problem: "cut off"});
      }
    });
    var others = texts.filter(function (t) { return !t.el.closest(".legend"); })
      .concat(plotAreas(gd, box));
    texts.forEach(function (a) {
      if (!/title$/.test(a.el.getAttribute("class") || "")) { return; }
      others.forEach(function (b) {
        if (a !== b && overlap(a.r, b.r)) {
          problems.push({figure: gd.id, text: a.text, problem: "overlaps " + b.text});
        }
      });
    });
    return problems;
  }

  function show(id, text) {
    var el = document.getElementById(id);
    el.textContent = text;
    el.classList.add("shown");
  }

  async function render() {
    var drawn = 0, scenes = [], problems = [], tops = {};
    var opt = option(startKey());
    if (menu) { menu.value = opt.key; }
    for (var i = 0; i < figures.length; i++) {
      var f = figures[i], gd = document.getElementById(f.id);
      var data = f.figure.data, layout = f.figure.layout;
      if (coloured(f)) { data = colouredData(data, opt); layout = colouredLayout(layout, opt); }
      try {
        await Plotly.newPlot(gd, data, layout, config);
        drawn++;
        if (f.kind === "3d") { scenes.push(await checkScene(gd)); }
        problems = problems.concat(textProblems(gd));
      } catch (e) {
        errors.push("drawing " + f.id + ": " + String(e && e.message || e));
      }
      tops[f.id] = Math.round(gd.getBoundingClientRect().top + window.scrollY);
    }
    recordColouring(opt);
    if (menu) { menu.addEventListener("change", function () { recolour(menu.value); }); }
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
    status.setAttribute("data-plots", String(drawn));
    status.setAttribute("data-errors", JSON.stringify(errors));
    status.setAttribute("data-scenes", JSON.stringify(scenes));
    status.setAttribute("data-text-problems", JSON.stringify(problems));
    status.setAttribute("data-tops", JSON.stringify(tops));
    status.setAttribute("data-viewport", JSON.stringify([window.innerWidth, window.innerHeight]));
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

#: Draws the image of the data-map sample under the pointer into #dm-sample-image (the first
#: sample until the pointer moves); the canvas's ``data-sample`` names the sample drawn.
SAMPLE_IMAGE_JS = r"""
(function () {
  const source = JSON.parse(document.getElementById("dm-sample-images").textContent);
  const [n, H, W, channels] = source.shape;
  const bytes = Uint8Array.from(atob(source.pixels), c => c.charCodeAt(0));
  const canvas = document.getElementById("dm-sample-image");
  const context = canvas.getContext("2d");
  const tile = document.createElement("canvas");
  tile.width = W; tile.height = H;
  function draw(i) {
    if (!(i >= 0 && i < n)) return;
    const image = tile.getContext("2d").createImageData(W, H);
    for (let p = 0; p < H * W; p++) {
      const o = (i * H * W + p) * channels;
      image.data[4 * p] = bytes[o];
      image.data[4 * p + 1] = bytes[o + (channels === 3 ? 1 : 0)];
      image.data[4 * p + 2] = bytes[o + (channels === 3 ? 2 : 0)];
      image.data[4 * p + 3] = 255;
    }
    tile.getContext("2d").putImageData(image, 0, 0);
    context.imageSmoothingEnabled = false;
    context.clearRect(0, 0, canvas.width, canvas.height);
    context.drawImage(tile, 0, 0, canvas.width, canvas.height);
    canvas.dataset.sample = String(i);
  }
  draw(0);
  (function hook() {
    const div = document.getElementById("dm-datamap");
    if (div && typeof div.on === "function") div.on("plotly_hover", ev => draw(ev.points[0].customdata));
    else setTimeout(hook, 200);
  })();
})();
"""

HOW_TO_READ = """
<ul class="guide">
<li>Each point is one checkpoint of one training run, seen only through what it predicts
on the probe samples (its class probabilities). Distances between checkpoints are the
intensive Bhattacharyya distance <i>d</i><sub>B</sub>, and InPCA places them in a few axes.</li>
<li>A line joins the checkpoints of one run in training order. Colours are architectures,
or the setting chosen in <b>colour runs by</b> at the top (any setting that varies across
the runs: optimiser, seed, width, …), in every figure at once. Click a legend entry to hide
those runs, double-click to show them alone. Hover a point for its run, epoch, step,
progress and test accuracy.</li>
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
