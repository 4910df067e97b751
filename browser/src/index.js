// @heron/rum: Heron's real-user monitoring SDK. One instance per page (`heron`), shared
// by the script tag build (rum.js, global `heron`), the ESM build (rum.mjs) and the React
// helper. Every public function is guarded: the SDK never throws into the page.
import { W, safe, log, setDebug } from './util.js';
import { state, options, configure, session, enqueue, setUser as setSessionUser, flushNow, VERSION } from './core.js';
import { collect, errorEvent } from './collect.js';
import { patchNetwork } from './net.js';

let started = false;
let scriptOrigin;
export const setScriptOrigin = (o) => (scriptOrigin = o);

/** Start collecting. Options: see docs/rum.md ("Browser SDK"). Returns true when on. */
export const init = (o) => {
  try {
    if (started) return state.on_;
    if (!W || typeof document == 'undefined') return false;
    const opts = options(o, scriptOrigin);
    setDebug(opts.debug_);
    if (!opts.key_) return log('no key'), false;
    if (opts.respectDoNotTrack_ && navigator.doNotTrack == '1') return false;
    started = true;
    configure(opts);
    if (!(session().dice < opts.sampleRate_)) return false;
    state.on_ = true;
    collect();
    patchNetwork();
    const hidden = safe(() => document.visibilityState == 'hidden' && flushNow());
    // On window (bubble phase), so web-vitals' capture listeners report first.
    addEventListener('visibilitychange', hidden);
    addEventListener('pagehide', flushNow);
    setInterval(flushNow, 10000);
    return true;
  } catch (e) {
    log(e);
    return false;
  }
};

export const setUser = safe(setSessionUser);
export const setRoute = safe((route) => {
  const v = state.views_[state.view_];
  if (v) v.route = route == null ? undefined : String(route).slice(0, 500);
});
export const captureError = safe((err) => state.on_ && errorEvent(err, 'manual', true));
export const flush = flushNow;
/** An event from an integration (e.g. the React helper's `render`); the SDK adds view and ts. */
export const track = safe((event) => event && typeof event == 'object' && event.t && (enqueue(event), true));
export const version = VERSION;
export const isEnabled = () => state.on_;

export const heron = { init, setUser, setRoute, captureError, flush, track, version, isEnabled };
export default heron;
