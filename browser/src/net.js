// fetch and XMLHttpRequest: a W3C traceparent on calls to tracePropagationTargets (a fresh
// trace and span id per call, so the backend's server span is a child of the browser's
// client span) and a `fetch` event per call. The beacon itself is never traced.
import { W, now, round, randomHex, safe, abs } from './util.js';
import { state, enqueue } from './core.js';

const traced = (url) =>
  state.opts_.targets_.some((t) => (typeof t == 'string' ? url.startsWith(t) : t.test(url)));

const ours = (url) => url.startsWith(state.opts_.endpoint_);

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
        call = { url, method: (init && init.method) || (req && req.method) || 'GET', start: now() };
        if (traced(url)) {
          call.trace = '00-' + randomHex(16) + '-' + randomHex(8) + '-01';
          const headers = new Headers((init && init.headers) || (req && req.headers) || undefined);
          headers.set('traceparent', call.trace);
          init = { ...init, headers };
        }
      }
    } catch {
      call = null;
    }
    const p = orig.call(this, input, init);
    if (!call) return p;
    return p.then(
      (res) => (safe(report)(call.method, call.url, res.status, call.start, call.trace), res),
      (err) => {
        safe(report)(call.method, call.url, 0, call.start, call.trace);
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
    safe(() => (this.__heron = { method, url: abs(url) }))();
    return open.call(this, method, url, ...rest);
  };
  P.send = function (...a) {
    safe(() => {
      const c = this.__heron;
      if (!c || !state.on_ || ours(c.url)) return;
      c.start = now();
      if (traced(c.url)) {
        c.trace = '00-' + randomHex(16) + '-' + randomHex(8) + '-01';
        this.setRequestHeader('traceparent', c.trace);
      }
      this.addEventListener('loadend', safe(() => report(c.method, c.url, this.status, c.start, c.trace)));
    })();
    return send.apply(this, a);
  };
}

export function patchNetwork() {
  patchFetch();
  patchXHR();
}
