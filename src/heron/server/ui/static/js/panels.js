/* Heron UI: metric and RED panels (runtime tab, hosts, metrics explorer, dashboards).
 *
 * Each page embeds its panels and the shared time range in a
 * <script type="application/json"> block; this file fetches each panel's data from the
 * JSON API and draws it with uPlot (line/area/bar), as a figure (stat) or as a table.
 * Telemetry strings (metric names, label values) only reach the DOM through textContent
 * or attribute setters, never innerHTML (the CSP requires Trusted Types anyway).
 */
(function () {
  "use strict";

  var H = (window.Heron = window.Heron || {});
  var API = "/api/v1";
  var NICE_STEPS = [60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400];
  var MAX_POINTS = 150, CHART_H = 180;
  var PALETTE = ["#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#b07aa1", "#76b7b2",
                 "#edc948", "#d37295", "#9c755f", "#17becf", "#8cd17d", "#bab0ac"];
  var plots = [];

  // ------------------------------------------------------------------ helpers
  function el(tag, text, cls) {
    var node = document.createElement(tag);
    if (text !== undefined && text !== null) node.textContent = String(text);
    if (cls) node.className = cls;
    return node;
  }

  function query(params) {
    var q = new URLSearchParams();
    Object.keys(params).forEach(function (k) {
      var v = params[k];
      if (v === null || v === undefined || v === "") return;
      (Array.isArray(v) ? v : [v]).forEach(function (x) { q.append(k, String(x)); });
    });
    return q.toString();
  }

  function getJson(path, params) {
    return fetch(path + "?" + query(params), {
      credentials: "same-origin", headers: { Accept: "application/json" },
    }).then(function (r) {
      return r.json().catch(function () { return {}; }).then(function (body) {
        if (!r.ok) {
          var err = new Error(body.error || ("HTTP " + r.status));
          err.status = r.status;
          throw err;
        }
        return body;
      });
    });
  }

  function stepFor(cfg) {
    var span = cfg.to_s - cfg.from_s;
    for (var i = 0; i < NICE_STEPS.length; i++) if (span / NICE_STEPS[i] <= MAX_POINTS) return NICE_STEPS[i];
    return Math.ceil(span / MAX_POINTS / 86400) * 86400;
  }

  // ------------------------------------------------------------------ units
  function fmtBytes(v) {
    var units = ["B", "KiB", "MiB", "GiB", "TiB"], i = 0, a = Math.abs(v);
    while (a >= 1024 && i < units.length - 1) { a /= 1024; v /= 1024; i++; }
    return (i === 0 ? v.toFixed(0) : v.toFixed(a >= 100 ? 0 : 1)) + " " + units[i];
  }

  function formatter(unit) {
    return function (v) {
      if (v === null || v === undefined || isNaN(v)) return "–";
      switch (unit) {
        case "ratio": return (v * 100).toFixed(v * 100 >= 10 ? 1 : 2) + "%";
        case "percent": return v.toFixed(v >= 10 ? 1 : 2) + "%";
        case "bytes": return fmtBytes(v);
        case "seconds": return H.fmtMs(v * 1000);
        case "ms": return v === 0 ? "0" : H.fmtMs(v);
        case "per_s": return H.fmtNum(v) + "/s";
        default: return H.fmtNum(v);
      }
    };
  }

  function metricUnit(unit, agg) {
    if (agg === "rate") return "per_s";
    if (agg === "count") return "number";
    if (unit === "1") return "ratio";
    if (unit === "%") return "percent";
    if (unit === "By") return "bytes";
    if (unit === "s") return "seconds";
    if (unit === "ms") return "ms";
    return "number";
  }

  var RED = {
    requests: { field: "requests", unit: "number", label: "requests" },
    rpm: { field: "rpm", unit: "number", label: "req/min" },
    error_rate: { field: "error_rate", unit: "ratio", label: "error rate" },
    p50: { field: "p50_ms", unit: "ms", label: "p50" },
    p95: { field: "p95_ms", unit: "ms", label: "p95" },
    p99: { field: "p99_ms", unit: "ms", label: "p99" },
    apdex: { field: "apdex", unit: "number", label: "apdex" },
  };

  // ------------------------------------------------------------------ loading
  // A panel's data, whatever its query: {unit, caption, t, series: [{label, values}],
  // exemplars, stat}.
  function labelText(labels) {
    var keys = Object.keys(labels || {});
    if (!keys.length) return "all";
    return keys.map(function (k) { return labels[k] === "" ? k + "=∅" : keys.length > 1 ? k + "=" + labels[k] : labels[k]; }).join(", ");
  }

  function loadMetric(cfg, q) {
    var filters = Object.keys(q.filter || {}).map(function (k) { return k + "=" + q.filter[k]; });
    return getJson(API + "/metrics/query", {
      metric: q.metric, agg: q.agg, by: (q.by || []).join(","), filter: filters,
      step: q.step, from: cfg.from, to: cfg.to,
    }).then(function (body) {
      var times = {};
      body.series.forEach(function (s) { s.points.forEach(function (p) { times[p[0]] = true; }); });
      var t = Object.keys(times).map(Number).sort(function (a, b) { return a - b; });
      var at = {};
      t.forEach(function (x, i) { at[x] = i; });
      var series = body.series.map(function (s) {
        var values = t.map(function () { return null; });
        s.points.forEach(function (p) { values[at[p[0]]] = p[1]; });
        return { label: labelText(s.labels), values: values };
      });
      return {
        unit: metricUnit(body.unit, body.agg), caption: body.agg + (body.unit ? " · " + body.unit : ""),
        t: t, series: series, exemplars: body.exemplars || [], step: body.step_s,
      };
    });
  }

  function loadRed(cfg, q, type) {
    var fig = RED[q.figure];
    var range = { from: cfg.from, to: cfg.to, environment: cfg.environment };
    var svc = API + "/services/" + encodeURIComponent(q.service);
    if (type === "stat") {
      var req = q.endpoint ? getJson(svc + "/endpoints", range) : getJson(API + "/services", range);
      return req.then(function (body) {
        var rows = q.endpoint ? body.endpoints : body.services;
        var row = rows.filter(function (r) { return q.endpoint ? r.endpoint === q.endpoint : r.service === q.service; })[0];
        return { unit: fig.unit, caption: q.service + (q.endpoint ? " · " + q.endpoint : ""), t: [], series: [],
                 exemplars: [], stat: row ? row[fig.field] : null };
      });
    }
    var step = stepFor(cfg);
    return getJson(svc + "/timeseries", Object.assign({ endpoint: q.endpoint, step_s: step }, range))
      .then(function (body) {
        return {
          unit: fig.unit, caption: q.service + (q.endpoint ? " · " + q.endpoint : "") + " · " + fig.label,
          t: body.points.map(function (p) { return p.t; }),
          series: [{ label: fig.label, values: body.points.map(function (p) {
            return fig.field === "error_rate" && !p.requests ? null : p[fig.field];
          }) }],
          exemplars: [], step: step,
        };
      }, function (err) {
        if (err.status === 404) return { unit: fig.unit, caption: q.service, t: [], series: [], exemplars: [] };
        throw err;
      });
  }

  function load(cfg, panel) {
    var q = panel.query;
    return q.metric !== undefined ? loadMetric(cfg, q) : loadRed(cfg, q, panel.type);
  }

  // ------------------------------------------------------------------ drawing
  function hasData(res) {
    return res.series.some(function (s) { return s.values.some(function (v) { return v !== null; }); });
  }

  function lastValue(values) {
    for (var i = values.length - 1; i >= 0; i--) if (values[i] !== null) return values[i];
    return null;
  }

  function drawStat(plotEl, res) {
    var value = res.stat;
    var note = "";
    if (value === undefined) {  // a metric: the last value (summed over the groups)
      var lasts = res.series.map(function (s) { return lastValue(s.values); }).filter(function (v) { return v !== null; });
      value = lasts.length ? lasts.reduce(function (a, b) { return a + b; }, 0) : null;
      if (lasts.length > 1) note = "total of " + lasts.length + " series, last value";
    }
    plotEl.replaceChildren(el("p", formatter(res.unit)(value), "stat"));
    if (note) plotEl.appendChild(el("p", note, "hint"));
    plotEl.setAttribute("data-value", value === null ? "" : String(value));
  }

  function drawTable(plotEl, res) {
    var fmt = formatter(res.unit);
    var table = el("table", null, "data compact");
    var head = el("tr");
    ["Series", "Last", "Min", "Max", "Mean"].forEach(function (h, i) { head.appendChild(el("th", h, i ? "num" : "")); });
    table.appendChild(el("thead")).appendChild(head);
    var body = table.appendChild(el("tbody"));
    res.series.forEach(function (s) {
      var vals = s.values.filter(function (v) { return v !== null; });
      var tr = el("tr");
      tr.appendChild(el("td", s.label, "name"));
      var mean = vals.length ? vals.reduce(function (a, b) { return a + b; }, 0) / vals.length : null;
      [lastValue(s.values), vals.length ? Math.min.apply(null, vals) : null,
       vals.length ? Math.max.apply(null, vals) : null, mean].forEach(function (v) { tr.appendChild(el("td", fmt(v), "num")); });
      body.appendChild(tr);
    });
    plotEl.replaceChildren(table);
  }

  function zoomTo(fromS, toS) {
    var url = new URL(window.location.href);
    url.searchParams.delete("range");
    url.searchParams.set("from", new Date(fromS * 1000).toISOString().replace(".000Z", "Z"));
    url.searchParams.set("to", new Date(toS * 1000).toISOString().replace(".000Z", "Z"));
    window.location.assign(url);
  }

  function traceUrl(ex) {
    return "/traces/" + encodeURIComponent(ex.trace_id);
  }

  function drawChart(plotEl, cfg, panel, res) {
    var fmt = formatter(res.unit);
    var grid = { stroke: H.css("--line", "#e3e6ec"), width: 1 };
    var ax = { stroke: H.css("--muted", "#667085"), grid: grid, ticks: grid };
    var bars = panel.type === "bar" && typeof uPlot.paths.bars === "function";
    var series = [{}].concat(res.series.map(function (s, i) {
      var color = PALETTE[i % PALETTE.length];
      return {
        label: s.label, stroke: color, width: 1.5, spanGaps: true,
        fill: panel.type === "area" || bars ? color + (bars ? "99" : "22") : undefined,
        paths: bars ? uPlot.paths.bars({ size: [0.8, 40] }) : undefined,
        points: { show: res.t.length < 3 },
        value: function (u, v) { return fmt(v); },
      };
    }));
    var exemplars = (res.exemplars || []).filter(function (ex) { return ex.trace_id; });
    var opts = {
      width: Math.max(plotEl.clientWidth, 200), height: CHART_H, series: series,
      scales: { x: { time: true, range: [cfg.from_s, cfg.to_s] },
                y: { range: function (u, lo, hi) { return [Math.min(0, lo), hi > 0 ? hi * 1.1 : 1]; } } },
      axes: [Object.assign({}, ax), Object.assign({ size: 76, values: function (u, vals) { return vals.map(fmt); } }, ax)],
      cursor: { drag: { x: true, y: false }, sync: { key: "heron" } },
      legend: { live: true },
      hooks: {
        setSelect: [function (u) {
          if (u.select.width < 4) return;
          zoomTo(Math.floor(u.posToVal(u.select.left, "x")), Math.ceil(u.posToVal(u.select.left + u.select.width, "x")));
        }],
        draw: [function (u) {  // exemplars: dots over the lines; a click opens the trace
          if (!exemplars.length) return;
          var ctx = u.ctx;
          ctx.save();
          ctx.fillStyle = H.css("--bad", "#d92d20");
          exemplars.forEach(function (ex) {
            var x = u.valToPos(ex.time_ns / 1e9, "x", true), y = u.valToPos(ex.value, "y", true);
            ctx.beginPath(); ctx.arc(x, y, 3.5 * devicePixelRatio, 0, 2 * Math.PI); ctx.fill();
          });
          ctx.restore();
        }],
      },
    };
    plotEl.replaceChildren();
    var plot = new uPlot(opts, [res.t].concat(res.series.map(function (s) { return s.values; })), plotEl);
    if (exemplars.length) {
      plot.over.addEventListener("click", function (ev) {
        var rect = plot.over.getBoundingClientRect(), best = null, bestD = 10;
        exemplars.forEach(function (ex) {
          var dx = plot.valToPos(ex.time_ns / 1e9, "x") - (ev.clientX - rect.left);
          var dy = plot.valToPos(ex.value, "y") - (ev.clientY - rect.top);
          var d = Math.sqrt(dx * dx + dy * dy);
          if (d < bestD) { best = ex; bestD = d; }
        });
        if (best) window.location.assign(traceUrl(best));
      });
    }
    plots.push(plot);
    return plot;
  }

  function listExemplars(res) {
    var list = document.getElementById("exemplars");
    if (!list) return;
    list.replaceChildren();
    var fmt = formatter(res.unit);
    (res.exemplars || []).slice(0, 50).forEach(function (ex) {
      var li = el("li");
      var a = el("a", "trace " + ex.trace_id.slice(0, 16) + "…");
      a.href = traceUrl(ex);
      a.className = "exemplar";
      li.appendChild(a);
      li.appendChild(el("span", " " + fmt(ex.value) + " at " + new Date(ex.time_ns / 1e6).toLocaleTimeString() +
                               (ex.labels ? " · " + labelText(ex.labels) : "")));
      list.appendChild(li);
    });
    if (!list.children.length) list.appendChild(el("li", list.getAttribute("data-empty"), "muted"));
  }

  function drawPanel(box, cfg, panel) {
    var plotEl = box.querySelector(".plot");
    var unitEl = box.querySelector("figcaption .unit");
    return load(cfg, panel).then(function (res) {
      if (unitEl) unitEl.textContent = res.caption || "";
      if (panel.type === "stat") drawStat(plotEl, res);
      else if (!hasData(res)) plotEl.replaceChildren(el("p", "No data in this time range.", "nodata"));
      else if (panel.type === "table") drawTable(plotEl, res);
      else if (typeof window.uPlot === "undefined") drawTable(plotEl, res);
      else drawChart(plotEl, cfg, panel, res);
      if (cfg.explorer) listExemplars(res);
      box.setAttribute("data-series", String(res.series.length));
      box.setAttribute("data-drawn", "1");
    }, function (err) {
      var text = err.status === 404 && panel.query.metric !== undefined
        ? "No metric named " + panel.query.metric + " has data in this time range."
        : "Could not load: " + err.message;
      plotEl.replaceChildren(el("p", text, "nodata" + (err.status === 404 ? "" : " bad")));
      box.setAttribute("data-series", "0");
      box.setAttribute("data-drawn", err.status === 404 ? "1" : "error");
    });
  }

  function drawAll(root) {
    plots.forEach(function (p) { p.destroy(); });
    plots = H.panelPlots = [];
    root.querySelectorAll(".panels[data-panels]").forEach(function (grid) {
      var cfg = H.readJson(grid.getAttribute("data-panels"));
      if (!cfg) return;
      var jobs = [];
      grid.querySelectorAll(".panel[data-panel]").forEach(function (box) {
        var panel = cfg.panels[parseInt(box.getAttribute("data-panel"), 10)];
        if (panel) jobs.push(drawPanel(box, cfg, panel));
      });
      Promise.all(jobs).then(function () { grid.setAttribute("data-ready", "1"); });
    });
  }

  // ------------------------------------------------------------------ pickers
  function option(value, text) {
    var o = el("option", text === undefined ? value : text);
    o.value = value;
    return o;
  }

  function range() {
    var cfg = H.readJson("panels-data");
    var q = new URLSearchParams(window.location.search);
    return cfg ? { from: cfg.from, to: cfg.to } : { from: q.get("from") || "-1h", to: q.get("to") || "now" };
  }

  function hostPicker() {
    var select = document.getElementById("host-picker");
    if (!select) return;
    var list = document.getElementById("host-list");
    getJson(API + "/metrics/label-values", Object.assign({
      metric: select.getAttribute("data-metric"), key: select.getAttribute("data-label"),
    }, range())).then(function (body) {
      var current = select.getAttribute("data-current");
      body.values.forEach(function (v) {
        if (v.value && v.value !== current) select.appendChild(option(v.value));
        if (list && v.value) {
          var url = new URL(window.location.href);
          url.searchParams.set("host", v.value);
          var a = el("a", v.value);
          a.href = url.pathname + url.search;
          list.appendChild(el("li")).appendChild(a);
        }
      });
      if (list && !list.children.length) list.appendChild(el("li", list.getAttribute("data-empty"), "muted"));
    }, function () {
      if (list && !list.children.length) list.appendChild(el("li", list.getAttribute("data-empty"), "muted"));
    });
  }

  function explorerPickers() {
    var metric = document.getElementById("ex-metric");
    if (!metric) return;
    var names = document.getElementById("ex-metrics"), keys = document.getElementById("ex-keys");
    var catalog = document.getElementById("catalog");
    getJson(API + "/metrics", range()).then(function (body) {
      body.metrics.forEach(function (m) {
        names.appendChild(option(m.name, m.name + " (" + m.kind + (m.unit ? ", " + m.unit : "") + ")"));
        if (catalog) {
          var url = new URL(window.location.href);
          url.searchParams.set("metric", m.name);
          url.searchParams.set("agg", m.kind === "counter" ? "rate" : m.kind === "histogram" ? "p95" : "avg");
          var li = el("li");
          var a = el("a", m.name);
          a.href = url.pathname + url.search;
          li.appendChild(a);
          li.appendChild(el("span", " " + m.kind + (m.unit ? " · " + m.unit : "") + " · " + m.series + " series" +
                                    (m.description ? " — " + m.description : ""), "muted"));
          catalog.appendChild(li);
        }
      });
    }, function () { /* the typed name still works */ });
    if (metric.value) {
      getJson(API + "/metrics/labels", Object.assign({ metric: metric.value }, range())).then(function (body) {
        body.keys.forEach(function (k) { keys.appendChild(option(k)); });
      }, function () {});
    }
  }

  function init(root) {
    drawAll(root);
    hostPicker();
    explorerPickers();
  }

  document.addEventListener("DOMContentLoaded", function () { init(document); });
  document.addEventListener("heron:refreshed", function () { init(document.getElementById("main")); });
  window.addEventListener("resize", function () {
    plots.forEach(function (p) {
      var box = p.root.parentElement;
      if (box && box.clientWidth) p.setSize({ width: box.clientWidth, height: p.height });
    });
  });
})();
