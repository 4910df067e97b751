/* Heron UI: load-test charts (uPlot), on /loadtests/{id} and /loadtests/{id}/compare.
 *
 * The page puts its series in <script type="application/json" id="lt-series">:
 *   {"run": Series, "baseline": Series|null, "run_label": "...", "baseline_label": "..."}
 * where Series = GET /api/v1/loadtests/{id}/series: {"step_s", "start_ns", "points":
 * [{"offset_s", "rps", "p50_ms", "p95_ms", "error_rate", ...}], "endpoints": {service:
 * {endpoint: points}}}, plus "choices" ([{service, endpoint}]) for the page's
 * <select id="lt-endpoint"> (value: an index into choices, "" for all endpoints).
 * The x axis is seconds since each run's start, so a run and its baseline overlay:
 * one line each per chart.
 * Telemetry strings (run names) only reach the DOM as legend labels, which uPlot sets
 * with textContent. No inline scripts (CSP); charts redraw after an auto-refresh.
 */
(function () {
  "use strict";

  var H = (window.Heron = window.Heron || {});
  var plots = [];
  var CHART_H = 190;

  // One point per offset of either run: a union of the offsets, nulls where a run has none.
  function align(runPts, basePts) {
    var xs = {};
    runPts.forEach(function (p) { xs[p.offset_s] = true; });
    basePts.forEach(function (p) { xs[p.offset_s] = true; });
    var t = Object.keys(xs).map(Number).sort(function (a, b) { return a - b; });
    function column(pts, key) {
      var by = {};
      pts.forEach(function (p) { by[p.offset_s] = p[key]; });
      return t.map(function (x) { var v = by[x]; return v === undefined ? null : v; });
    }
    return { t: t, column: column };
  }

  var KINDS = {
    rps: { key: "rps", empty: 1, fmt: function (v) { return H.fmtNum(v) + " req/s"; }, tick: function (v) { return H.fmtNum(v); } },
    p95: { key: "p95_ms", empty: 1, fmt: function (v) { return H.fmtMs(v); }, tick: function (v) { return H.tickMs(v); } },
    p50: { key: "p50_ms", empty: 1, fmt: function (v) { return H.fmtMs(v); }, tick: function (v) { return H.tickMs(v); } },
    errors: { key: "error_rate", empty: 0.01, fmt: function (v) { return (v * 100).toFixed(2) + "%"; }, tick: function (v) { return +(v * 100).toFixed(2) + "%"; } },
  };

  function fmtOffset(s) {
    if (s === null || s === undefined) return "–";
    s = Math.round(s);
    return s < 60 ? s + "s" : Math.floor(s / 60) + "m" + (s % 60 ? (s % 60) + "s" : "");
  }

  // The points of one side: overall, or of the chosen endpoint (none: it had no requests).
  function pointsOf(side, choice) {
    if (!side) return [];
    if (!choice) return side.points || [];
    var eps = (side.endpoints || {})[choice.service] || {};
    return eps[choice.endpoint] || [];
  }

  function chart(el, data, choice) {
    var kind = KINDS[el.getAttribute("data-lt-chart")];
    if (!kind) return null;
    var plotEl = el.querySelector(".plot");
    var runPts = pointsOf(data.run, choice);
    var basePts = pointsOf(data.baseline, choice);
    var a = align(runPts, basePts);
    var accent = H.css("--accent", "#2f6fde");
    var muted = H.css("--muted", "#667085");
    function value(u, v) { return v === null || v === undefined ? "–" : kind.fmt(v); }
    var series = [{ label: "since start", value: function (u, v) { return fmtOffset(v); } }];
    var cols = [a.t];
    if (data.baseline) {
      series.push({ label: data.baseline_label || "baseline", stroke: muted, width: 1.5, dash: [5, 4], spanGaps: true, value: value });
      cols.push(a.column(basePts, kind.key));
    }
    series.push({ label: data.run_label || "run", stroke: accent, width: 2, spanGaps: true, value: value });
    cols.push(a.column(runPts, kind.key));
    var grid = { stroke: H.css("--line", "#e3e6ec"), width: 1 };
    var ax = { stroke: muted, grid: grid, ticks: grid };
    var opts = {
      width: Math.max(plotEl.clientWidth, 200), height: CHART_H,
      series: series,
      // An empty axis still reads sensibly: 0-1 % for errors (fractions), 0-1 otherwise.
      scales: { x: { time: false }, y: { range: function (u, lo, hi) { return [0, hi > 0 ? hi * 1.1 : kind.empty]; } } },
      axes: [
        Object.assign({ values: function (u, vals) { return vals.map(fmtOffset); } }, ax),
        Object.assign({ size: 58, values: function (u, vals) { return vals.map(kind.tick); } }, ax),
      ],
      cursor: { drag: { x: false, y: false }, sync: { key: "heron-lt" } },
      legend: { live: true },
    };
    var plot = new uPlot(opts, cols, plotEl);
    el.setAttribute("data-series-count", String(series.length - 1));
    el.setAttribute("data-points", String(a.t.length));
    return plot;
  }

  function draw(root) {
    plots.forEach(function (p) { p.destroy(); });
    plots = [];
    if (typeof window.uPlot === "undefined") return;
    var box = root.querySelector(".lt-charts[data-lt-series]");
    if (!box) return;
    var data = H.readJson(box.getAttribute("data-lt-series"));
    if (!data || !data.run) return;
    var pick = root.querySelector("#lt-endpoint");
    var choice = pick && pick.value !== "" ? (data.choices || [])[Number(pick.value)] : null;
    box.querySelectorAll(".chart[data-lt-chart]").forEach(function (el) {
      el.querySelector(".plot").replaceChildren();
      var p = chart(el, data, choice);
      if (p) plots.push(p);
    });
    box.setAttribute("data-drawn", String(plots.length));
    box.setAttribute("data-endpoint", choice ? choice.service + " " + choice.endpoint : "");
  }

  function resize() {
    plots.forEach(function (p) {
      var box = p.root.parentElement;
      if (box && box.clientWidth) p.setSize({ width: box.clientWidth, height: p.height });
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    draw(document);
    var timer = null;
    window.addEventListener("resize", function () {
      window.clearTimeout(timer);
      timer = window.setTimeout(resize, 120);
    });
  });
  document.addEventListener("heron:refreshed", function () { draw(document); });
  document.addEventListener("change", function (ev) {
    if (ev.target && ev.target.id === "lt-endpoint") draw(document);
  });
})();
