// Small helpers shared by the SDK's modules. Nothing here may throw into the page.

export const W = typeof window == 'object' ? window : undefined;
export const perf = W && W.performance;
// Epoch ms of a performance timestamp (every browser the SDK targets has timeOrigin).
export const epoch = (t) => perf.timeOrigin + t;
export const now = () => epoch(perf.now());
// One decimal; undefined when not a number (left out of the JSON).
export const round = (n) => (isFinite(n) ? Math.round(n * 10) / 10 : undefined);

let debug = false;
export const setDebug = (on) => (debug = !!on);
export const log = (...a) => debug && console.warn('[heron]', ...a);

// Wrap a callback so an SDK bug never reaches the page: log (debug) and swallow.
export const safe =
  (fn) =>
  (...a) => {
    try {
      return fn(...a);
    } catch (e) {
      log(e);
    }
  };

export const randomHex = (n) =>
  Array.from(crypto.getRandomValues(new Uint8Array(n)), (x) => (x + 256).toString(16).slice(1)).join('');

export const TRACEPARENT = /^00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$/;

// The CSS selector of an element, like web-vitals': "div#main>button.buy".
export const selector = (node) => {
  let sel = '';
  try {
    while (node && node.nodeType == 1) {
      const part = node.id
        ? '#' + node.id
        : [node.nodeName.toLowerCase(), ...Array.from(node.classList || []).sort()].join('.');
      if (sel.length + part.length > 99) return sel || part;
      sel = sel ? part + '>' + sel : part;
      if (node.id) break;
      node = node.parentNode;
    }
  } catch {}
  return sel;
};

export const abs = (url) => {
  try {
    return new URL(url, location.href).href;
  } catch {
    return String(url);
  }
};

// Replace the values of sensitive query (and fragment) keys with "[Filtered]".
export const scrubber = (keys) => {
  const bad = (k) => {
    try {
      k = decodeURIComponent(k.replace(/\+/g, ' ')).toLowerCase();
    } catch {
      k = k.toLowerCase();
    }
    return keys.some((s) => k.includes(s));
  };
  const part = (p) =>
    p
      .split('&')
      .map((kv) => {
        const i = kv.indexOf('=');
        return i > 0 && bad(kv.slice(0, i)) ? kv.slice(0, i) + '=[Filtered]' : kv;
      })
      .join('&');
  return (url) => {
    if (typeof url != 'string' || !url) return url;
    return url.replace(/([?#])([^#]*)/g, (m, sep, rest) => sep + part(rest));
  };
};
