/* Heron UI: global controls, charts (uPlot), live table filter, auto-refresh.
 *
 * Rules: telemetry strings only ever reach the DOM through textContent or attribute
 * setters, never innerHTML; page data comes from <script type="application/json">
 * blocks (never executed). The CSP forbids inline scripts and requires Trusted Types.
 */
(function () {
  "use strict";

  var H = (window.Heron = window.Heron || {});

  // ------------------------------------------------------------------ formatting
  H.fmtMs = function (v) {
    if (v === null || v === undefined || isNaN(v)) return "–";
    if (v < 1) return (v * 1000).toFixed(0) + " µs";
    if (v < 10) return v.toFixed(2) + " ms";
    if (v < 100) return v.toFixed(1) + " ms";
    if (v < 1000) return v.toFixed(0) + " ms";
    if (v < 60000) return (v / 1000).toFixed(2) + " s";
    return (v / 60000).toFixed(1) + " min";
  };
  // Axis ticks: short, no spaces ("150ms", "1.2s").
  H.tickMs = function (v) {
    if (v === null) return "";
    if (v === 0) return "0";
    if (v < 1) return +(v * 1000).toFixed(1) + "µs";
    if (v < 1000) return +v.toFixed(1) + "ms";
    return +(v / 1000).toFixed(2) + "s";
  };
  H.fmtNum = function (v) {
    if (v === null || v === undefined) return "–";
    if (v >= 1e6) return (v / 1e6).toFixed(1) + "M";
    if (v >= 1e4) return (v / 1e3).toFixed(1) + "k";
    if (v === Math.round(v)) return String(v);
    return v >= 10 ? v.toFixed(1) : v.toFixed(2);
  };
  H.css = function (name, fallback) {
    var v = getComputedStyle(document.documentElement).getPropertyValue(name).trim();
    return v || fallback;
  };
  H.readJson = function (id) {
    var el = document.getElementById(id);
    return el ? JSON.parse(el.textContent) : null;
  };

  // ------------------------------------------------------------------ forms
  // Submit without empty fields, so shared URLs stay short and readable.
  function cleanSubmit(ev) {
    var form = ev.target;
    if (!form.matches || !form.matches("form[data-clean]")) return;
    ev.preventDefault();
    var params = new URLSearchParams();
    new FormData(form).forEach(function (value, key) {
      if (typeof value === "string" && value.trim() !== "") params.append(key, value);
    });
    var q = params.toString();
    window.location.assign(form.getAttribute("action") + (q ? "?" + q : ""));
  }

  function autoSubmit(ev) {
    var el = ev.target;
    if (el.matches && el.matches("select[data-autosubmit]") && el.form) el.form.requestSubmit();
  }

  // <time> elements in local time: time of day for today, else with the date too.
  function localTimes(root) {
    var clock = { hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false };
    var today = new Intl.DateTimeFormat(undefined, clock);
    var other = new Intl.DateTimeFormat(undefined, Object.assign({ month: "short", day: "numeric" }, clock));
    var now = new Date();
    root.querySelectorAll("time[datetime]").forEach(function (el) {
      var d = new Date(el.getAttribute("datetime"));
      if (isNaN(d)) return;
      el.title = el.getAttribute("datetime");
      el.textContent = (d.toDateString() === now.toDateString() ? today : other).format(d);
    });
  }

  // Filter table rows as you type; the URL keeps the filter (q) for sharing.
  function liveFilter(root) {
    root.querySelectorAll("input[data-filter]").forEach(function (input) {
      var table = document.getElementById(input.getAttribute("data-filter"));
      if (!table) return;
      input.addEventListener("input", function () {
        var needle = input.value.trim().toLowerCase();
        table.querySelectorAll("tbody tr").forEach(function (tr) {
          var name = (tr.getAttribute("data-name") || "").toLowerCase();
          tr.hidden = needle !== "" && name.indexOf(needle) < 0;
        });
        var url = new URL(window.location.href);
        if (needle) url.searchParams.set("q", input.value.trim());
        else url.searchParams.delete("q");
        window.history.replaceState(null, "", url);
      });
    });
  }

  // ------------------------------------------------------------------ charts
  var plots = [], CHART_H = 170, HIST_H = 200;

  function zoomTo(fromS, toS) {
    var url = new URL(window.location.href);
    url.searchParams.delete("range");
    url.searchParams.set("from", new Date(fromS * 1000).toISOString().replace(".000Z", "Z"));
    url.searchParams.set("to", new Date(toS * 1000).toISOString().replace(".000Z", "Z"));
    window.location.assign(url);
  }

  function axisStyle() {
    var grid = { stroke: H.css("--line", "#e3e6ec"), width: 1 };
    return { stroke: H.css("--muted", "#667085"), grid: grid, ticks: grid };
  }

  function seriesChart(el, data, kind) {
    var plotEl = el.querySelector(".plot");
    var accent = H.css("--accent", "#2f6fde");
    var bad = H.css("--bad", "#d92d20");
    var warn = H.css("--warn", "#b54708");
    var defs = {
      throughput: [{ label: data.rate_label || "req/min", stroke: accent, fill: accent + "22", values: data.rpm }],
      errors: [{ label: "error %", stroke: bad, fill: bad + "22", values: data.error_rate }],
      // Latency lines come labelled ("p50"/"p95"/"p99", or "mean"/"p95"/"max" for queries).
      latency: (data.latency || []).map(function (line, i) {
        return { label: line.label, stroke: [accent, warn, bad, H.css("--good", "#12805c")][i % 4], values: line.values };
      }),
      // A unitless score per step (web vitals' CLS p75).
      score: (data.score || []).map(function (line) {
        return { label: line.label, stroke: accent, values: line.values };
      }),
      // An issue's occurrences per step.
      events: [{ label: "events", stroke: bad, fill: bad + "22", values: data.events }],
    }[kind];
    var fmt = kind === "latency" ? H.fmtMs : kind === "errors"
      ? function (v) { return v === null ? "–" : v.toFixed(2) + "%"; }
      : kind === "score" ? function (v) { return v === null || v === undefined ? "–" : String(+v.toFixed(3)); } : H.fmtNum;
    var tick = kind === "latency" ? H.tickMs : kind === "errors"
      ? function (v) { return +v.toFixed(2) + "%"; }
      : kind === "score" ? function (v) { return String(+v.toFixed(3)); } : H.fmtNum;
    var series = [{}].concat(defs.map(function (d) {
      var line = { label: d.label, stroke: d.stroke, fill: d.fill, width: 1.5, spanGaps: kind !== "errors",
               value: function (u, v, si, i) { return fmt(i === null || i === undefined ? v : d.values[i]); } };
      // Sparse series (web vitals' p75 per step) show their isolated points.
      if (data.points) line.points = { show: true, size: 5 };
      return line;
    }));
    // A still-filling last step: solid lines stop one step earlier and a dashed segment
    // (its own series, kept out of the legend) reaches the partial point.
    var partial = data.partial && data.t.length > 1;
    var cols = [data.t].concat(defs.map(function (d) { return partial ? solidPart(d.values) : d.values; }));
    if (partial) {
      defs.forEach(function (d) {
        series.push({ label: d.label + " (so far)", stroke: d.stroke, width: 1.5, dash: [4, 4],
                      spanGaps: true, value: function (u, v) { return fmt(v); } });
        cols.push(dashedPart(d.values));
      });
    }
    var ax = axisStyle();
    var opts = {
      width: Math.max(plotEl.clientWidth, 200), height: CHART_H,
      series: series,
      scales: { x: { time: true, range: [data.from, data.to] }, y: { range: function (u, lo, hi) { return [0, hi > 0 ? hi * 1.1 : 1]; } } },
      axes: [Object.assign({}, ax), Object.assign({ size: 54, values: function (u, vals) { return vals.map(tick); } }, ax)],
      cursor: { drag: { x: true, y: false }, sync: { key: "heron" } },
      legend: { live: true },
      hooks: { setSelect: [function (u) {
        if (u.select.width < 4) return;
        var a = u.posToVal(u.select.left, "x"), b = u.posToVal(u.select.left + u.select.width, "x");
        zoomTo(Math.floor(a), Math.ceil(b));
      }] },
    };
    var plot = new uPlot(opts, cols, plotEl);
    if (partial) {
      plot.root.classList.add("has-partial");
      plot.root.querySelectorAll(".u-legend .u-series").forEach(function (row, i) {
        if (i > defs.length) row.style.display = "none";  // dashed twins: the lines' rows show their values
      });
    }
    return plot;
  }

  function solidPart(values) {
    return values.slice(0, -1).concat([null]);
  }

  function dashedPart(values) {
    var out = values.map(function () { return null; });
    var last = values.length - 1;
    out[last] = values[last];
    for (var i = last - 1; i >= 0; i--) {  // from the last drawn point before it
      if (values[i] !== null && values[i] !== undefined) { out[i] = values[i]; break; }
    }
    return out;
  }

  function histogramChart(el, hist) {
    var plotEl = el.querySelector(".plot");
    var bins = hist.bins;
    var xs = bins.map(function (b, i) { return i; });
    var counts = bins.map(function (b) { return b.count; });
    var accent = H.css("--accent", "#2f6fde");
    var ax = axisStyle();
    function binX(ms) {  // fractional bin index of a latency (log scale inside a bin)
      for (var i = 0; i < bins.length; i++) {
        var b = bins[i];
        if (ms <= b.hi_ms) return i - 0.5 + Math.log(ms / b.lo_ms) / Math.log(b.hi_ms / b.lo_ms);
      }
      return bins.length - 0.5;
    }
    var marks = [["p50", hist.p50_ms], ["p95", hist.p95_ms], ["p99", hist.p99_ms]];
    var opts = {
      width: Math.max(plotEl.clientWidth, 200), height: HIST_H, legend: { show: false },
      scales: { x: { time: false, range: [-0.5, bins.length - 0.5] }, y: { range: function (u, lo, hi) { return [0, hi * 1.15 || 1]; } } },
      series: [
        { label: "latency", value: function (u, i) { return i === null || !bins[i] ? "–" : H.fmtMs(bins[i].lo_ms) + " – " + H.fmtMs(bins[i].hi_ms); } },
        { label: "requests", stroke: accent, fill: accent + "aa", width: 0,
          paths: uPlot.paths.bars({ size: [0.9, 60] }), points: { show: false } },
      ],
      axes: [
        Object.assign({ values: function (u, vals) { return vals.map(function (i) { return bins[i] ? H.fmtMs(bins[i].lo_ms) : ""; }); },
                        splits: function () { var s = []; var step = Math.max(1, Math.ceil(bins.length / 10)); for (var i = 0; i < bins.length; i += step) s.push(i); return s; } }, ax),
        Object.assign({ size: 50, values: function (u, vals) { return vals.map(H.fmtNum); } }, ax),
      ],
      cursor: { drag: { x: false, y: false } },
      hooks: { draw: [function (u) {
        var ctx = u.ctx;
        ctx.save();
        ctx.font = (11 * devicePixelRatio) + "px system-ui, sans-serif";
        ctx.fillStyle = ctx.strokeStyle = H.css("--fg", "#1d2330");
        ctx.setLineDash([4 * devicePixelRatio, 3 * devicePixelRatio]);
        marks.forEach(function (m) {
          if (m[1] === null || m[1] === undefined) return;
          var x = Math.round(u.valToPos(binX(m[1]), "x", true));
          ctx.beginPath(); ctx.moveTo(x, u.bbox.top); ctx.lineTo(x, u.bbox.top + u.bbox.height); ctx.stroke();
          ctx.fillText(m[0], x + 3 * devicePixelRatio, u.bbox.top + 12 * devicePixelRatio);
        });
        ctx.restore();
      }] },
    };
    return new uPlot(opts, [xs, counts], plotEl);
  }

  function drawCharts(root) {
    plots.forEach(function (p) { p.destroy(); });
    plots = H.plots = [];
    if (typeof window.uPlot === "undefined") return;
    root.querySelectorAll(".charts[data-series]").forEach(function (box) {
      var data = H.readJson(box.getAttribute("data-series"));
      if (!data) return;
      box.querySelectorAll(".chart[data-chart]").forEach(function (el) {
        plots.push(seriesChart(el, data, el.getAttribute("data-chart")));
      });
      box.setAttribute("data-drawn", String(data.t.length));
    });
    root.querySelectorAll(".chart[data-chart=histogram]").forEach(function (el) {
      var hist = H.readJson(el.getAttribute("data-source"));
      if (hist && hist.bins.length) plots.push(histogramChart(el, hist));
      el.setAttribute("data-drawn", hist ? String(hist.bins.length) : "0");
    });
  }

  function resizeCharts() {
    plots.forEach(function (p) {
      var box = p.root.parentElement;
      if (box && box.clientWidth) p.setSize({ width: box.clientWidth, height: p.height });
    });
  }

  // ------------------------------------------------------------------ auto-refresh
  // Fetch this page again and swap <main>; XHR's "document" response parses HTML without
  // a Trusted Types sink, and nothing in the parsed document is executed.
  function refreshOnce() {
    var status = document.getElementById("refresh-status");
    var xhr = new XMLHttpRequest();
    xhr.open("GET", window.location.href);
    xhr.responseType = "document";
    xhr.setRequestHeader("Accept", "text/html");
    xhr.onload = function () {
      var fresh = xhr.response && xhr.response.getElementById("main");
      if (xhr.status !== 200 || !fresh) {
        if (xhr.responseURL && xhr.responseURL.indexOf("/login") >= 0) window.location.reload();
        if (status) { status.textContent = "refresh failed (" + xhr.status + ")"; status.classList.add("bad"); }
        return;
      }
      var main = document.getElementById("main");
      // Copy the (live) child list first: adopting a node removes it from ``fresh``.
      var nodes = Array.prototype.slice.call(fresh.childNodes);
      main.replaceChildren.apply(main, nodes.map(function (n) { return document.adoptNode(n); }));
      init(main);
      if (status) {
        status.classList.remove("bad");
        status.textContent = "updated " + new Date().toLocaleTimeString();
      }
      document.dispatchEvent(new CustomEvent("heron:refreshed"));
    };
    xhr.onerror = function () {
      if (status) { status.textContent = "refresh failed (offline?)"; status.classList.add("bad"); }
    };
    xhr.send();
  }

  H.refresh = refreshOnce;

  function autoRefresh() {
    var seconds = parseInt(document.body.getAttribute("data-refresh") || "0", 10);
    if (!seconds || document.body.getAttribute("data-page") === "trace") return;
    window.setInterval(function () {
      if (!document.hidden) refreshOnce();
    }, seconds * 1000);
  }

  function init(root) {
    localTimes(root);
    liveFilter(root);
    drawCharts(root);
  }

  document.documentElement.classList.add("js");
  document.addEventListener("submit", cleanSubmit);
  document.addEventListener("change", autoSubmit);
  document.addEventListener("DOMContentLoaded", function () {
    init(document);
    autoRefresh();
    var timer = null;
    window.addEventListener("resize", function () {
      window.clearTimeout(timer);
      timer = window.setTimeout(resizeCharts, 120);
    });
    document.body.setAttribute("data-ready", "1");
  });
})();
