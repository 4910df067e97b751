// What the SDK observes in the page: the view and its timing, web-vitals, slow resources
// and interactions, long animation frames, errors and SPA route changes.
import { onCLS, onFCP, onINP, onLCP, onTTFB } from 'web-vitals/attribution';
import { W, perf, now, epoch, round, safe, selector, abs } from './util.js';
import { state, enqueue, newView, beforeFlush } from './core.js';

const r = round;

const observe = (type, cb, opts) => {
  try {
    if (!(PerformanceObserver.supportedEntryTypes || []).includes(type)) return false;
    new PerformanceObserver(safe((list) => cb(list.getEntries()))).observe({ type, buffered: true, ...opts });
    return true;
  } catch {
    return false;
  }
};

const navEntry = () => {
  try {
    return perf.getEntriesByType('navigation')[0];
  } catch {}
};

// The backend's traceparent: <meta name="traceparent"> or Server-Timing "traceparent".
const backendTrace = (nav) => {
  const m = document.querySelector('meta[name="traceparent"]');
  if (m && m.content) return m.content.trim();
  const st = nav && nav.serverTiming && nav.serverTiming.find((e) => e.name == 'traceparent');
  return st ? st.description : undefined;
};

// ---- the hard navigation's view and its timing

let pendingView = null;

const PHASES = {
  dns_start: 'domainLookupStart',
  dns_end: 'domainLookupEnd',
  connect_start: 'connectStart',
  connect_end: 'connectEnd',
  tls_start: 'secureConnectionStart',
  request_start: 'requestStart',
  response_start: 'responseStart',
  response_end: 'responseEnd',
  dom_interactive: 'domInteractive',
  dcl_end: 'domContentLoadedEventEnd',
  load_end: 'loadEventEnd',
};

function timing(n) {
  const t = {};
  for (const k in PHASES) if (n[PHASES[k]] > 0) t[k] = round(n[PHASES[k]]);
  if (n.transferSize >= 0) t.transfer_size = n.transferSize;
  return t;
}

const sendView = () => {
  if (!pendingView) return;
  const n = navEntry();
  enqueue({ t: 'view', ts: state.views_[pendingView].start, timing: n ? timing(n) : {} }, pendingView);
  pendingView = null;
};

function hardView() {
  const n = navEntry();
  const nav =
    document.prerendering || (n && n.activationStart > 0) ? 'prerender' : (n && n.type.replace('_', '-')) || 'navigate';
  const id = newView(nav, document.referrer, perf.timeOrigin, backendTrace(n));
  if (state.opts_.route_) state.views_[id].route = state.opts_.route_;
  state.vitalsView_ = pendingView = id;
  if (document.readyState == 'complete') setTimeout(safe(sendView), 0);
  else addEventListener('load', () => setTimeout(safe(sendView), 0));
  beforeFlush.push(sendView);
}

// ---- soft navigations (History API) and bfcache restores

function softView(nav) {
  const prev = state.views_[state.view_];
  const href = state.scrub_(location.href);
  if (prev && prev.url.split('#')[0] == href.split('#')[0]) return; // same page (hash or replaceState)
  const id = newView(nav, prev && prev.url, now());
  enqueue({ t: 'view', ts: state.views_[id].start }, id);
  return id;
}

function history() {
  for (const m of ['pushState', 'replaceState']) {
    const orig = History.prototype[m];
    if (typeof orig != 'function') continue;
    History.prototype[m] = function (...a) {
      const res = orig.apply(this, a);
      safe(softView)('soft-navigation');
      return res;
    };
  }
  addEventListener('popstate', safe(() => softView('soft-navigation')));
  addEventListener(
    'pageshow',
    safe((e) => e.persisted && (state.vitalsView_ = softView('back-forward-cache') || state.view_)),
  );
}

// ---- web-vitals (with attribution)

const ATTR = {
  LCP: (a) => ({ target: a.target, url: a.url && state.scrub_(a.url), ttfb: r(a.timeToFirstByte), resource_load_delay: r(a.resourceLoadDelay), resource_load_duration: r(a.resourceLoadDuration), element_render_delay: r(a.elementRenderDelay) }),
  INP: (a) => ({ target: a.interactionTarget, type: a.interactionType, input_delay: r(a.inputDelay), processing: r(a.processingDuration), presentation: r(a.presentationDelay), load_state: a.loadState }),
  CLS: (a) => ({ target: a.largestShiftTarget, largest_shift_value: a.largestShiftValue, largest_shift_time: r(a.largestShiftTime), load_state: a.loadState }),
  FCP: (a) => ({ ttfb: r(a.timeToFirstByte), first_byte_to_fcp: r(a.firstByteToFCP), load_state: a.loadState }),
  TTFB: (a) => ({ waiting: r(a.waitingDuration), cache: r(a.cacheDuration), dns: r(a.dnsDuration), connection: r(a.connectionDuration), request: r(a.requestDuration) }),
};

const vital = safe((m) => {
  const last = m.entries && m.entries[m.entries.length - 1];
  const v = m.name == 'CLS' ? Math.round(m.value * 1e4) / 1e4 : round(m.value);
  enqueue({ t: 'vital', ts: last ? epoch(last.startTime) : now(), name: m.name, value: v, id: m.id, attribution: ATTR[m.name](m.attribution || {}) }, state.vitalsView_);
});

function vitals() {
  for (const on of [onLCP, onINP, onCLS, onFCP, onTTFB]) safe(on)(vital);
}

// ---- slow resources, slow interactions, long animation frames

function resources() {
  const th = state.opts_.resourceThreshold_;
  observe('resource', (list) => {
    for (const e of list) {
      if (e.duration <= th || e.name.startsWith(state.opts_.endpoint_)) continue;
      enqueue({ t: 'resource', ts: epoch(e.startTime), name: state.scrub_(e.name), initiator: e.initiatorType, duration: round(e.duration), transfer_size: e.transferSize, decoded_size: e.decodedBodySize, status: e.responseStatus || undefined });
    }
  });
}

// One event per interaction (its pointerdown, pointerup and click entries share an
// interactionId and may arrive in separate observer callbacks, so they are grouped for
// 500 ms), broken down like web-vitals' INP: input delay of the first entry, processing
// up to the last handler, presentation up to the next paint. It is named after the entry
// whose handlers ran longest.
function interactions() {
  const th = state.opts_.interactionThreshold_;
  const groups = new Map();
  let timer;
  const report = () => {
    timer = 0;
    for (const [id, g] of groups) {
      if (!g) continue;
      groups.set(id, 0); // reported: later entries of this interaction are ignored
      const f = g.first_;
      const end = Math.max(...g.list_.map((e) => e.startTime + e.duration));
      const last = Math.max(...g.list_.map((e) => e.processingEnd));
      if (end - f.startTime > th)
        enqueue({ t: 'interaction', ts: epoch(f.startTime), type: /^key/.test(g.main_.name) ? 'keyboard' : 'pointer', event: g.main_.name, target: g.sel_, duration: round(end - f.startTime), input_delay: round(f.processingStart - f.startTime), processing: round(last - f.processingStart), presentation: round(Math.max(0, end - last)) });
    }
  };
  observe(
    'event',
    (list) => {
      for (const e of list) {
        if (!e.interactionId) continue;
        let g = groups.get(e.interactionId);
        if (g === 0) continue;
        if (!g) groups.set(e.interactionId, (g = { list_: [], first_: e, main_: e }));
        g.list_.push(e);
        if (e.startTime < g.first_.startTime) g.first_ = e;
        if (e.processingEnd - e.processingStart >= g.main_.processingEnd - g.main_.processingStart) g.main_ = e;
        g.sel_ = selector(g.main_.target) || g.sel_;
      }
      timer = timer || setTimeout(safe(report), 500);
    },
    { durationThreshold: 16 },
  );
  beforeFlush.push(report);
}

function longTasks() {
  const loaf = observe('long-animation-frame', (list) => {
    for (const e of list)
      enqueue({ t: 'longtask', ts: epoch(e.startTime), duration: round(e.duration), blocking: round(e.blockingDuration || 0), scripts: (e.scripts || []).sort((a, b) => b.duration - a.duration).slice(0, 3).map((s) => ({ src: state.scrub_(s.sourceURL || s.invoker || ''), fn: s.sourceFunctionName || s.invoker || '', duration: round(s.duration) })) });
  });
  if (!loaf)
    observe('longtask', (list) => {
      for (const e of list) enqueue({ t: 'longtask', ts: epoch(e.startTime), duration: round(e.duration), blocking: round(Math.max(0, e.duration - 50)), scripts: [] });
    });
}

// ---- errors

const cut = (s, n) => (typeof s == 'string' ? s.slice(0, n) : undefined);

export function errorEvent(err, mechanism, handled, where) {
  const isErr = err && typeof err == 'object';
  let message = isErr && 'message' in err ? err.message : err;
  try {
    message = typeof message == 'string' ? message : JSON.stringify(message);
  } catch {
    message = String(message);
  }
  where = where || {};
  enqueue({ t: 'error', type: (isErr && err.name) || (mechanism == 'onunhandledrejection' ? 'UnhandledRejection' : 'Error'), message: cut(message, 2000) || '', stack: cut(isErr && err.stack, 16000), mechanism, handled, filename: where.filename ? state.scrub_(abs(where.filename)) : undefined, lineno: where.lineno || undefined, colno: where.colno || undefined });
}

function errors() {
  addEventListener(
    'error',
    safe((e) => {
      if (!(e instanceof ErrorEvent)) return; // a resource failed to load, not a script error
      errorEvent(e.error || e.message, 'onerror', false, e);
    }),
  );
  addEventListener(
    'unhandledrejection',
    safe((e) => errorEvent(e.reason, 'onunhandledrejection', false)),
  );
}

export function collect() {
  hardView();
  history();
  errors();
  vitals();
  resources();
  interactions();
  longTasks();
}

export { W };
