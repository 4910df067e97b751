// The SDK's state: options, session, views, the event queue and the transport.
import { W, now, safe, log, randomHex, scrubber, abs, TRACEPARENT } from './util.js';

export const VERSION = '0.1.0';
const SESSION_KEY = 'heron.rum';
const MAX_QUEUE = 1000; // events kept while the endpoint is unreachable; then dropped
const BATCH = 30;
const MAX_BYTES = 60000; // under the endpoint's and sendBeacon's 64 KiB

export const state = {
  on_: false, // initialised, sampled and allowed: collecting
  opts_: null,
  url_: '', // the beacon URL
  scrub_: (u) => u,
  views_: {},
  view_: null, // the current view (id)
  vitalsView_: null, // the view web-vitals' metrics belong to (hard navigation, bfcache)
  queue_: [],
};

const DEFAULT_SCRUB = ['password', 'passwd', 'secret', 'token', 'api_key', 'apikey', 'auth', 'session', 'signature', 'credential'];

const num = (v, d) => (typeof v == 'number' && v >= 0 && isFinite(v) ? v : d);
const str = (v) => (typeof v == 'string' && v ? v : undefined);

// Normalise user options; anything of the wrong type takes its default.
export function options(o, scriptOrigin) {
  o = o && typeof o == 'object' ? o : {};
  let endpoint = str(o.endpoint) || scriptOrigin || (W && location.origin) || '';
  endpoint = endpoint.replace(/\/+$/, '');
  const targets = Array.isArray(o.tracePropagationTargets)
    ? o.tracePropagationTargets.filter((t) => typeof t == 'string' || t instanceof RegExp)
    : [W ? location.origin : ''];
  return {
    endpoint_: /\/rum\/v1\/events$/.test(endpoint) ? endpoint : endpoint + '/rum/v1/events',
    key_: str(o.key),
    app_: str(o.app) || (W && location.hostname) || 'browser',
    release_: str(o.release),
    environment_: str(o.environment),
    route_: str(o.route),
    sampleRate_: Math.min(1, num(o.sampleRate, 1)),
    resourceThreshold_: num(o.resourceThreshold, 1000),
    interactionThreshold_: num(o.interactionThreshold, 100),
    idleTimeout_: num(o.sessionIdleTimeout, 30 * 60 * 1000),
    targets_: targets,
    beforeSend_: typeof o.beforeSend == 'function' ? o.beforeSend : null,
    scrubKeys_: (Array.isArray(o.scrubKeys) ? o.scrubKeys.filter((k) => typeof k == 'string') : DEFAULT_SCRUB).map((k) => k.toLowerCase()),
    respectDoNotTrack_: !!o.respectDoNotTrack,
    debug_: !!o.debug,
  };
}

export function configure(opts) {
  state.opts_ = opts;
  state.url_ = opts.endpoint_ + '?key=' + encodeURIComponent(opts.key_);
  state.scrub_ = scrubber(opts.scrubKeys_);
}

// ---- session: one per tab (sessionStorage), renewed after idleTimeout without events

// Read from sessionStorage once per page (its first access is a synchronous round trip to
// the browser process), then kept in memory and written through.
let mem;
const load = () => {
  if (mem === undefined) {
    try {
      mem = JSON.parse(sessionStorage.getItem(SESSION_KEY));
    } catch {
      mem = null;
    }
  }
  return mem;
};
const save = (s) => {
  mem = s;
  try {
    sessionStorage.setItem(SESSION_KEY, JSON.stringify(s));
  } catch {}
};

export function session(touch) {
  const t = Date.now();
  let s = load();
  if (!s || typeof s.id != 'string' || !(t - s.last < state.opts_.idleTimeout_)) {
    // `dice` is drawn once per session, so a session is sampled on all its pages or none
    s = { id: randomHex(8), last: t, user: s && s.user, dice: Math.random() };
    save(s);
  } else if (touch && t - s.last > 1000) {
    s.last = t;
    save(s);
  }
  return s;
}

export function setUser(id) {
  const s = session();
  s.user = id == null ? '' : String(id).slice(0, 200);
  save(s);
}

// ---- views

export function newView(nav, referrer, start, trace) {
  const id = randomHex(5);
  const v = { url: state.scrub_(location.href), referrer: state.scrub_(referrer || '') || undefined, nav, start };
  if (trace && TRACEPARENT.test(trace)) v.trace = trace;
  state.views_[id] = v;
  state.view_ = id;
  return id;
}

// ---- queue and transport

export function enqueue(ev, view) {
  if (!state.on_) return;
  ev.view = view || state.view_;
  if (!ev.ts) ev.ts = now();
  const bs = state.opts_.beforeSend_;
  if (bs) {
    try {
      ev = bs(ev);
    } catch (e) {
      log(e);
      ev = null;
    }
    if (!ev || typeof ev != 'object') return;
  }
  if (state.queue_.length >= MAX_QUEUE) return;
  state.queue_.push(ev);
  session(true);
  if (state.queue_.length >= BATCH) setTimeout(flushNow, 0);
}

const envelope = (events) => {
  const s = session();
  const o = state.opts_;
  const views = {};
  for (const e of events) if (state.views_[e.view]) views[e.view] = state.views_[e.view];
  return JSON.stringify({ v: 1, sdk: 'heron-rum/' + VERSION, session: s.id, user: s.user || undefined, app: o.app_, release: o.release_, environment: o.environment_, views, events });
};

let origFetch = W && W.fetch;
export const originalFetch = (...a) => origFetch.apply(W, a);

function post(body) {
  try {
    if (navigator.sendBeacon && navigator.sendBeacon(state.url_, new Blob([body], { type: 'text/plain;charset=UTF-8' }))) return;
  } catch {}
  try {
    originalFetch(state.url_, { method: 'POST', body, keepalive: true, credentials: 'omit', headers: { 'content-type': 'text/plain;charset=UTF-8' } }).catch(() => {});
  } catch {}
}

export const beforeFlush = [];

export const flushNow = safe(() => {
  if (!state.on_) return;
  for (const f of beforeFlush) safe(f)();
  const q = state.queue_.splice(0);
  while (q.length) {
    let n = Math.min(q.length, 100);
    let body = envelope(q.slice(0, n));
    while (body.length > MAX_BYTES && n > 1) body = envelope(q.slice(0, (n = n >> 1)));
    q.splice(0, n);
    if (body.length <= MAX_BYTES) post(body); // else: one event over 60 KB, dropped
  }
});

export { abs };
