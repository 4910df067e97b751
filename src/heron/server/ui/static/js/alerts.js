/* Heron UI: alerting charts (a rule's preview, an SLO's budget burn-down).
 *
 * Each chart's data comes from a <script type="application/json"> block named by the
 * figure's data-source; labels reach the chart legend through uPlot, which sets them as
 * text (never HTML). Nothing here touches innerHTML (the CSP requires Trusted Types).
 */
(function () {
  "use strict";

  var H = (window.Heron = window.Heron || {});
  var CHART_H = 220;
  var PALETTE = ["#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#b07aa1", "#76b7b2",
                 "#edc948", "#d37295", "#9c755f", "#17becf", "#8cd17d", "#bab0ac"];
  var plots = [];

  function axes() {
    var grid = { stroke: H.css("--line", "#e3e6ec"), width: 1 };
    var ax = { stroke: H.css("--muted", "#667085"), grid: grid, ticks: grid };
    return [Object.assign({}, ax), Object.assign({ size: 60, values: function (u, vals) { return vals.map(H.fmtNum); } }, ax)];
  }

  // Shade each "would have fired" span (fired → resolved, or to the end) in red.
  function shadeEvents(events) {
    return function (u) {
      var ctx = u.ctx, top = u.bbox.top, height = u.bbox.height;
      ctx.save();
      ctx.fillStyle = "rgba(217, 45, 32, 0.12)";
      events.forEach(function (e) {
        var x0 = u.valToPos(e.fired_s, "x", true);
        var x1 = u.valToPos(e.resolved_s === null ? u.scales.x.max : e.resolved_s, "x", true);
        ctx.fillRect(x0, top, Math.max(x1 - x0, 2), height);
      });
      ctx.restore();
    };
  }

  function previewChart(fig, data) {
    var bad = H.css("--bad", "#d92d20");
    var series = [{}], cols = [data.t];
    data.series.forEach(function (s, i) {
      series.push({ label: s.label, stroke: PALETTE[i % PALETTE.length], width: 1.5, spanGaps: false,
                    value: function (u, v) { return H.fmtNum(v); } });
      cols.push(s.values);
    });
    if (data.threshold !== null && data.threshold !== undefined) {
      series.push({ label: "threshold " + data.op + " " + H.fmtNum(data.threshold), stroke: bad, width: 1, dash: [6, 4],
                    points: { show: false }, value: function () { return H.fmtNum(data.threshold); } });
      cols.push(data.t.map(function () { return data.threshold; }));
    }
    var plotEl = fig.querySelector(".plot");
    var opts = {
      width: Math.max(plotEl.clientWidth, 240), height: CHART_H, series: series, axes: axes(),
      scales: { x: { time: true, range: [data.from, data.to] } },
      legend: { live: true }, cursor: { drag: { x: false, y: false } },
      hooks: { drawClear: [shadeEvents(data.events)] },
    };
    return new uPlot(opts, cols, plotEl);
  }

  function burndownChart(fig, data) {
    var accent = H.css("--accent", "#2f6fde");
    var plotEl = fig.querySelector(".plot");
    var pct = function (v) {
      if (v === null || v === undefined) return "–";
      return (Math.abs(v) >= 100 ? Math.round(v).toLocaleString() : v.toFixed(1)) + "%";
    };
    var opts = {
      width: Math.max(plotEl.clientWidth, 240), height: CHART_H, axes: axes(),
      series: [{}, { label: "budget remaining", stroke: accent, fill: accent + "22", width: 1.5,
                     value: function (u, v) { return pct(v); } }],
      // The x axis is the SLO's whole window (data.lo..data.hi), which starts at 100 %.
      scales: { x: { time: true, range: function (u, lo, hi) { return [data.lo || lo, data.hi || hi]; } },
                y: { range: function (u, lo, hi) { return [Math.min(lo, 0), Math.max(hi, 100)]; } } },
      legend: { live: true }, cursor: { drag: { x: false, y: false } },
    };
    opts.axes[1].values = function (u, vals) { return vals.map(pct); };
    opts.axes[1].size = 72;  // room for an overspent budget's "-2,900%"
    return new uPlot(opts, [data.t, data.values], plotEl);
  }

  function drawAll(root) {
    plots.forEach(function (p) { p.destroy(); });
    plots = [];
    if (typeof window.uPlot === "undefined") return;
    root.querySelectorAll("figure[data-alert-chart]").forEach(function (fig) {
      var data = H.readJson(fig.getAttribute("data-source"));
      if (!data || !data.t || !data.t.length) {
        fig.setAttribute("data-drawn", "0");
        return;
      }
      var kind = fig.getAttribute("data-alert-chart");
      plots.push(kind === "burndown" ? burndownChart(fig, data) : previewChart(fig, data));
      fig.setAttribute("data-drawn", String(data.t.length));
    });
  }

  document.addEventListener("DOMContentLoaded", function () { drawAll(document); });
  document.addEventListener("heron:refreshed", function () { drawAll(document.getElementById("main")); });
  window.addEventListener("resize", function () {
    plots.forEach(function (p) {
      var box = p.root.parentElement;
      if (box && box.clientWidth) p.setSize({ width: box.clientWidth, height: p.height });
    });
  });
})();
