// React helper: a <Profiler onRender> callback reporting renders slower than `threshold`
// (ms) as `render` events through the page's one SDK instance.
//
//   import { heronProfilerOnRender } from '@heron/rum/react';
//   <Profiler id="ProductList" onRender={heronProfilerOnRender({ threshold: 50 })}>
import { track } from './index.js';

const PHASES = { mount: 1, update: 1, 'nested-update': 1 };
const r = (n) => Math.round(n * 10) / 10;

export function heronProfilerOnRender(options) {
  const t = options && typeof options.threshold == 'number' ? options.threshold : 100;
  return (id, phase, actualDuration, baseDuration) => {
    try {
      if (!(actualDuration > t)) return;
      track({ t: 'render', component: String(id), phase: PHASES[phase] ? phase : 'update', duration: r(actualDuration), base: r(baseDuration || 0) });
    } catch {}
  };
}

export default heronProfilerOnRender;
