/* Heron trace waterfall: virtualised rows, collapsible subtrees, critical path, detail.
 *
 * The page embeds the trace as JSON (see ui/_trace_pages.py): rows in tree order, each
 *   [parent, depth, service, name, start_us, dur_us, status, kind, crit, detail, end]
 * where rows (i, end) are i's subtree and crit is null or [self µs on the critical path,
 * its longest [start_us, end_us] pieces]. Only the rows in view exist in the DOM (a small
 * reused pool), so 5,000 or 50,000 spans scroll the same. Every telemetry string is
 * set with textContent; nothing here parses HTML.
 */
(function () {
  "use strict";

  var ROW_H = 22, OVERSCAN = 12, INDENT = 12, MAX_INDENT_LEVELS = 32;
  var P = 0, DEPTH = 1, SVC = 2, NAME = 3, START = 4, DUR = 5, STATUS = 6, KIND = 7, CRIT = 8, DETAIL = 9, END = 10;

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }
  function fmtUs(us) { return window.Heron.fmtMs(us / 1000); }
  function str(v) { return typeof v === "string" ? v : JSON.stringify(v); }
  // "__main__.PaymentDeclined" reads as "PaymentDeclined" (as grouping.display_type does).
  function bareType(name) { return name.replace(/^(?:builtins|__main__)\./, ""); }

  function Waterfall(root, doc) {
    this.root = root;
    this.doc = doc;
    this.spans = doc.spans;
    this.n = doc.spans.length;
    this.total = Math.max(doc.duration_us, 1e-3);
    this.collapsed = new Uint8Array(this.n);
    this.hits = new Uint8Array(this.n);
    this.hitList = [];
    this.hitPos = -1;
    this.selected = -1;
    this.scroll = document.getElementById("wf-scroll");
    this.canvas = document.getElementById("wf-canvas");
    this.ruler = document.getElementById("wf-ruler");
    this.detail = document.getElementById("wf-detail");
    this.pool = [];
    this.pending = false;
    this.rebuild();
    this.bind();
  }

  Waterfall.prototype.rebuild = function () {
    var vis = new Int32Array(this.n), k = 0, i = 0;
    while (i < this.n) {
      vis[k++] = i;
      i = this.collapsed[i] ? this.spans[i][END] : i + 1;
    }
    this.visible = vis.subarray(0, k);
    this.rowOf = new Int32Array(this.n).fill(-1);
    for (var r = 0; r < k; r++) this.rowOf[this.visible[r]] = r;
    this.canvas.style.height = k * ROW_H + "px";
    this.render(true);
  };

  Waterfall.prototype.schedule = function () {
    var self = this;
    if (this.pending) return;
    this.pending = true;
    window.requestAnimationFrame(function () { self.pending = false; self.render(false); });
  };

  Waterfall.prototype.render = function (force) {
    var top = this.scroll.scrollTop, height = this.scroll.clientHeight || 600;
    var first = Math.max(0, Math.floor(top / ROW_H) - OVERSCAN);
    var last = Math.min(this.visible.length, Math.ceil((top + height) / ROW_H) + OVERSCAN);
    if (!force && first === this.first && last === this.last) return;
    this.first = first; this.last = last;
    for (var r = first, p = 0; r < last; r++, p++) {
      var row = this.pool[p] || this.makeRow(p);
      this.fillRow(row, this.visible[r], r);
    }
    for (; p < this.pool.length; p++) this.pool[p].el.hidden = true;
  };

  Waterfall.prototype.makeRow = function (p) {
    var row = { el: el("div", "wf-row"), segs: [] };
    row.el.setAttribute("role", "treeitem");
    var label = el("div", "wf-label");
    row.tog = el("button", "wf-tog");
    row.tog.type = "button";
    row.tog.tabIndex = -1;
    row.svc = el("span", "wf-svc");
    row.sname = el("span", "wf-sname");
    row.name = el("span", "wf-name");
    row.count = el("span", "wf-count");
    row.browser = el("span", "badge browser wf-browser", "browser");
    label.append(row.tog, row.svc, row.sname, row.browser, row.name, row.count);
    row.label = label;
    var track = el("div", "wf-track");
    row.bar = el("div", "wf-bar");
    row.dur = el("span", "wf-dur");
    track.append(row.bar, row.dur);
    row.track = track;
    row.el.append(label, track);
    this.canvas.append(row.el);
    this.pool[p] = row;
    return row;
  };

  Waterfall.prototype.fillRow = function (row, i, r) {
    var s = this.spans[i], svc = this.doc.services[s[SVC]];
    var e = row.el;
    e.hidden = false;
    e.style.top = r * ROW_H + "px";
    e.dataset.i = String(i);
    e.className = "wf-row c" + svc[1] + (s[STATUS] === "error" ? " err" : "") +
      (i === this.selected ? " sel" : "") + (this.hits[i] ? " hit" : "");
    e.setAttribute("aria-level", String(s[DEPTH] + 1));
    e.setAttribute("aria-selected", i === this.selected ? "true" : "false");
    var hasKids = s[END] > i + 1;
    if (hasKids) e.setAttribute("aria-expanded", this.collapsed[i] ? "false" : "true");
    else e.removeAttribute("aria-expanded");
    row.label.style.paddingLeft = Math.min(s[DEPTH], MAX_INDENT_LEVELS) * INDENT + 2 + "px";
    row.tog.disabled = !hasKids;
    row.tog.textContent = hasKids ? (this.collapsed[i] ? "▶" : "▼") : "";
    row.tog.setAttribute("aria-label", this.collapsed[i] ? "Expand" : "Collapse");
    row.sname.textContent = svc[0];
    row.name.textContent = s[NAME];
    row.browser.hidden = !s[DETAIL].browser;
    row.count.textContent = this.collapsed[i] ? "+" + (s[END] - i - 1) : "";
    var left = (s[START] / this.total) * 100, width = (s[DUR] / this.total) * 100;
    row.bar.style.left = left + "%";
    row.bar.style.width = width + "%";
    row.dur.textContent = fmtUs(s[DUR]);
    // The duration always goes right after the bar: the track keeps a gutter on its
    // right (see .wf-track in heron.css), so even the root's label never covers a bar.
    row.dur.style.left = "calc(" + (left + width) + "% + 4px)";
    this.fillCrit(row, s[CRIT]);
  };

  Waterfall.prototype.fillCrit = function (row, crit) {
    var segs = crit ? crit[1] : [], n = segs.length;
    for (var k = 0; k < n; k++) {
      var seg = row.segs[k];
      if (!seg) { seg = row.segs[k] = el("div", "wf-crit"); row.track.append(seg); }
      var a = segs[k][0], b = segs[k][1];
      seg.hidden = false;
      seg.style.left = (a / this.total) * 100 + "%";
      seg.style.width = Math.max(((b - a) / this.total) * 100, 0.05) + "%";
    }
    for (; k < row.segs.length; k++) row.segs[k].hidden = true;
  };

  Waterfall.prototype.toggle = function (i, collapse) {
    if (this.spans[i][END] <= i + 1) return;
    this.collapsed[i] = collapse === undefined ? 1 - this.collapsed[i] : collapse ? 1 : 0;
    this.rebuild();
  };

  Waterfall.prototype.setAll = function (collapse) {
    for (var i = 0; i < this.n; i++) this.collapsed[i] = collapse && this.spans[i][END] > i + 1 ? 1 : 0;
    if (collapse && this.n) this.collapsed[0] = 0;  // keep the root's children in view
    this.rebuild();
  };

  Waterfall.prototype.reveal = function (i) {
    var changed = false;
    for (var p = this.spans[i][P]; p >= 0; p = this.spans[p][P]) {
      if (this.collapsed[p]) { this.collapsed[p] = 0; changed = true; }
    }
    if (changed) this.rebuild();
    var y = this.rowOf[i] * ROW_H;
    if (y < this.scroll.scrollTop || y + ROW_H > this.scroll.scrollTop + this.scroll.clientHeight) {
      this.scroll.scrollTop = Math.max(0, y - this.scroll.clientHeight / 3);
    }
    this.render(true);
  };

  Waterfall.prototype.select = function (i, updateUrl) {
    this.selected = i;
    this.render(true);
    this.showDetail(i);
    if (updateUrl !== false) {
      var url = new URL(window.location.href);
      url.searchParams.set("span", this.spans[i][DETAIL].id);
      window.history.replaceState(null, "", url);
    }
  };

  Waterfall.prototype.kv = function (obj) {
    var dl = el("dl", "kv");
    Object.keys(obj).sort().forEach(function (k) {
      dl.append(el("dt", null, k), el("dd", null, str(obj[k])));
    });
    return dl;
  };

  Waterfall.prototype.showDetail = function (i) {
    var s = this.spans[i], d = s[DETAIL], svc = this.doc.services[s[SVC]], box = this.detail, self = this;
    box.hidden = false;
    box.replaceChildren();
    var h = el("h2");
    var badge = el("span", "svc c" + svc[1]);
    badge.append(el("i"), document.createTextNode(svc[0]));
    var close = el("button", "close", "✕");
    close.type = "button";
    close.setAttribute("aria-label", "Close span detail");
    close.addEventListener("click", function () { self.closeDetail(); });
    h.append(badge, el("span", null, s[NAME]), close);
    box.append(h);
    var facts = {
      duration: fmtUs(s[DUR]), start: "+" + fmtUs(s[START]), kind: s[KIND], status: s[STATUS],
      "span id": d.id, "parent id": d.parent || "(root)",
    };
    if (d.message) facts["status message"] = d.message;
    if (d.release) facts.release = d.release;
    if (d.env) facts.environment = d.env;
    if (d.scope) facts.scope = d.scope;
    if (s[CRIT]) facts["critical path"] = fmtUs(s[CRIT][0]) + " of this span's own time is on it";
    box.append(this.kv(facts));
    var links = el("p", "muted");
    links.append(this.pageLink("/service", { service: svc[0] }, "Service page"));
    if (s[KIND] === "server" || s[KIND] === "consumer" || s[P] < 0) {
      links.append(document.createTextNode(" · "));
      links.append(this.pageLink("/traces", { service: svc[0], endpoint: s[NAME] }, "Similar traces"));
    }
    box.append(links);
    var exceptions = d.events.filter(function (e) { return e.name === "exception"; });
    var others = d.events.filter(function (e) { return e.name !== "exception"; });
    if (exceptions.length) {
      box.append(el("h3", null, "Exceptions"));
      exceptions.forEach(function (e) {
        var a = e.attributes || {}, wrap = el("div", "exc");
        wrap.append(el("div", "type", bareType(str(a["exception.type"] || "exception"))));
        if (a["exception.message"] !== undefined) wrap.append(el("div", "msg", str(a["exception.message"])));
        if (a["exception.stacktrace"]) wrap.append(el("pre", "stack", str(a["exception.stacktrace"])));
        box.append(wrap);
      });
    }
    if (Object.keys(d.attributes).length) {
      box.append(el("h3", null, "Attributes"), this.kv(d.attributes));
    }
    if (others.length) {
      box.append(el("h3", null, "Events"));
      others.forEach(function (e) {
        box.append(el("div", "muted", (e.t === null ? "" : "+" + fmtUs(e.t) + " ") + e.name));
        if (e.attributes && Object.keys(e.attributes).length) box.append(self.kv(e.attributes));
      });
    }
    if (d.links && d.links.length) {
      box.append(el("h3", null, "Links"));
      d.links.forEach(function (ln) {
        var id = String(ln.trace_id || "");
        if (!/^[0-9a-f]{32}$/.test(id)) return;
        var a = el("a", "mono", id + " / " + (ln.span_id || ""));
        a.href = "/traces/" + id + "?span=" + encodeURIComponent(String(ln.span_id || ""));
        var row = el("div");
        row.append(a);
        box.append(row);
      });
    }
    var res = this.doc.resources[d.res];
    if (res && Object.keys(res).length) box.append(el("h3", null, "Resource"), this.kv(res));
  };

  // A link to another page for this span, keeping the time range and environment.
  Waterfall.prototype.pageLink = function (path, params, label) {
    var here = new URL(window.location.href), url = new URL(path, window.location.origin);
    ["range", "from", "to", "env"].forEach(function (k) {
      if (here.searchParams.has(k)) url.searchParams.set(k, here.searchParams.get(k));
    });
    Object.keys(params).forEach(function (k) { url.searchParams.set(k, params[k]); });
    var a = el("a", null, label);
    a.href = url.pathname + url.search;
    return a;
  };

  Waterfall.prototype.closeDetail = function () {
    this.detail.hidden = true;
    this.selected = -1;
    this.render(true);
    var url = new URL(window.location.href);
    url.searchParams.delete("span");
    window.history.replaceState(null, "", url);
  };

  Waterfall.prototype.find = function (needle) {
    needle = needle.trim().toLowerCase();
    this.hits.fill(0);
    this.hitList = [];
    this.hitPos = -1;
    if (needle) {
      for (var i = 0; i < this.n; i++) {
        var s = this.spans[i], d = s[DETAIL];
        var hay = (s[NAME] + "\u0000" + this.doc.services[s[SVC]][0] + "\u0000" + d.id).toLowerCase();
        var hit = hay.indexOf(needle) >= 0;
        if (!hit) {
          for (var k in d.attributes) {
            if ((k + "=" + str(d.attributes[k])).toLowerCase().indexOf(needle) >= 0) { hit = true; break; }
          }
        }
        if (hit) { this.hits[i] = 1; this.hitList.push(i); }
      }
    }
    var found = document.getElementById("wf-found");
    if (found) found.textContent = needle ? this.hitList.length + " match" + (this.hitList.length === 1 ? "" : "es") : "";
    this.render(true);
  };

  Waterfall.prototype.nextHit = function () {
    if (!this.hitList.length) return;
    this.hitPos = (this.hitPos + 1) % this.hitList.length;
    var i = this.hitList[this.hitPos];
    this.reveal(i);
    this.select(i);
  };

  Waterfall.prototype.drawRuler = function () {
    var first = this.pool[0];
    this.ruler.replaceChildren();
    if (!first) return;
    var main = this.ruler.parentElement.getBoundingClientRect();
    var track = first.track.getBoundingClientRect();
    this.ruler.style.marginLeft = track.left - main.left + "px";
    this.ruler.style.width = track.width + "px";
    for (var k = 0; k < 5; k++) {
      var tick = el("span", null, fmtUs((this.total * k) / 5));
      tick.style.left = k * 20 + "%";
      this.ruler.append(tick);
    }
  };

  Waterfall.prototype.bind = function () {
    var self = this;
    this.scroll.addEventListener("scroll", function () { self.schedule(); }, { passive: true });
    if (window.ResizeObserver) {
      new ResizeObserver(function () { self.render(true); self.drawRuler(); }).observe(this.scroll);
    } else {
      window.addEventListener("resize", function () { self.render(true); self.drawRuler(); });
    }
    this.canvas.addEventListener("click", function (ev) {
      var rowEl = ev.target.closest(".wf-row");
      if (!rowEl) return;
      var i = parseInt(rowEl.dataset.i, 10);
      if (ev.target.closest(".wf-tog")) self.toggle(i);
      else self.select(i);
    });
    this.scroll.addEventListener("keydown", function (ev) {
      var r = self.selected >= 0 ? self.rowOf[self.selected] : -1, handled = true;
      if (ev.key === "ArrowDown") r = Math.min(r + 1, self.visible.length - 1);
      else if (ev.key === "ArrowUp") r = Math.max(r - 1, 0);
      else if (ev.key === "ArrowLeft" && self.selected >= 0) self.toggle(self.selected, true);
      else if (ev.key === "ArrowRight" && self.selected >= 0) self.toggle(self.selected, false);
      else if (ev.key === "Escape") self.closeDetail();
      else handled = false;
      if (!handled) return;
      ev.preventDefault();
      if ((ev.key === "ArrowDown" || ev.key === "ArrowUp") && r >= 0) {
        self.select(self.visible[r]);
        self.reveal(self.visible[r]);
      }
    });
    document.getElementById("wf-tools").addEventListener("click", function (ev) {
      var action = ev.target.getAttribute && ev.target.getAttribute("data-action");
      if (action === "expand") self.setAll(false);
      if (action === "collapse") self.setAll(true);
    });
    var crit = document.getElementById("wf-critical");
    crit.addEventListener("change", function () { self.root.classList.toggle("no-crit", !crit.checked); });
    var findInput = document.getElementById("wf-find"), timer = null;
    findInput.addEventListener("input", function () {
      window.clearTimeout(timer);
      timer = window.setTimeout(function () { self.find(findInput.value); }, 120);
    });
    findInput.addEventListener("keydown", function (ev) {
      if (ev.key === "Enter") { ev.preventDefault(); self.find(findInput.value); self.nextHit(); }
    });
  };

  document.addEventListener("DOMContentLoaded", function () {
    var root = document.getElementById("waterfall");
    if (!root) return;
    var t0 = performance.now();
    var doc = JSON.parse(document.getElementById(root.getAttribute("data-source")).textContent);
    var wf = new Waterfall(root, doc);
    wf.drawRuler();
    var want = new URL(window.location.href).searchParams.get("span");
    if (want) {
      for (var i = 0; i < wf.n; i++) {
        if (wf.spans[i][DETAIL].id === want) { wf.reveal(i); wf.select(i, false); break; }
      }
    }
    root.setAttribute("data-rendered-ms", String(Math.round(performance.now() - t0)));
    root.setAttribute("data-ready", "1");
    window.Heron.waterfall = wf;
  });
})();
