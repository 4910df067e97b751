// A heavy third-party-like script: slow to download (the shop answers it late) and
// ~150 ms of main-thread work once it runs (a long task / long animation frame).
"use strict";
(function recommendations() {
  const end = performance.now() + 150;
  let n = 0;
  while (performance.now() < end) { n += Math.sqrt(n + 1); }
  window.shopRecommendations = n;
})();
