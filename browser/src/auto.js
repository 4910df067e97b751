// The script-tag build (rum.js): sets the global `heron` and starts itself from the
// tag's data attributes: <script src="https://heron.example/rum.js" data-key="..." data-app="shop">
import heron, { init, setScriptOrigin } from './index.js';

try {
  window.heron = heron;
  const s = document.currentScript;
  if (s && s.src) {
    setScriptOrigin(new URL(s.src).origin);
    const d = s.dataset;
    if (d.key) {
      init({
        key: d.key,
        app: d.app,
        endpoint: d.endpoint,
        release: d.release,
        environment: d.environment,
        sampleRate: d.sampleRate && +d.sampleRate,
        respectDoNotTrack: d.respectDoNotTrack == 'true',
        debug: d.debug == 'true',
      });
    }
  }
} catch {}
