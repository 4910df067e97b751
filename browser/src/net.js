// fetch and XMLHttpRequest: a W3C traceparent on calls to tracePropagationTargets (a fresh
// trace and span id per call, so the backend's server span is a child of the browser's
// client span) and a `fetch` event per call. The beacon itself is never traced.
import { W, now, round, randomHex, safe, abs } from './util.js';
import { state, enqueue } from './core.js';

const traced = (url) =>
  state.opts_.targets_.some((t) => (typeof t == 'string' ? url.startsWith(t) : t.test(url)));

const ours = (url) => url.startsWith(state.opts_.endpoint_);

// A fresh trace id and span id per call: the browser's client span.
const fresh = () => '00-' + randomHex(16) + '-' + randomHex(8) + '-01';

const report = (method, url, status, start, trace) =>
  enqueue({ t: 'fetch', ts: start, method: String(method || 'GET').toUpperCase(), url: state.scrub_(url), status, duration: round(now() - start), trace });

function patchFetch() {
  const orig = W.fetch;
  if (typeof orig != 'function') return;
  W.fetch = function (input, init) {
    let call;
    try {
      const req = input instanceof Request ? input : null;
      const url = abs(req ? req.url : input);
      if (state.on_ && !ours(url)) {
        call = { url_: url, method_: (init && init.method) || (req && req.method) || 'GET', start_: now() };
        if (traced(url)) {
          call.trace_ = fresh();
          const headers = new Headers((init && init.headers) || (req && req.headers) || undefined);
          headers.set('traceparent', call.trace_);
          init = { ...init, headers };
        }
      }
    } catch {
      call = null;
    }
    const p = orig.call(this, input, init);
    if (!call) return p;
    return p.then(
      (res) => (safe(report)(call.method_, call.url_, res.status, call.start_, call.trace_), res),
      (err) => {
        safe(report)(call.method_, call.url_, 0, call.start_, call.trace_);
        throw err;
      },
    );
  };
}

function patchXHR() {
  const X = W.XMLHttpRequest;
  if (!X) return;
  const P = X.prototype;
  const open = P.open;
  const send = P.send;
  P.open = function (method, url, ...rest) {
    safe(() => (this.__heron = { method_: method, url_: abs(url) }))();
    return open.call(this, method, url, ...rest);
  };
  P.send = function (...a) {
    safe(() => {
      const c = this.__heron;
      if (!c || !state.on_ || ours(c.url_)) return;
      c.start_ = now();
      if (traced(c.url_)) {
        c.trace_ = fresh();
        this.setRequestHeader('traceparent', c.trace_);
      }
      this.addEventListener('loadend', safe(() => report(c.method_, c.url_, this.status, c.start_, c.trace_)));
    })();
    return send.apply(this, a);
  };
}

export function patchNetwork() {
  patchFetch();
  patchXHR();
}
