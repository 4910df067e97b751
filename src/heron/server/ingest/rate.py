"""Token buckets per key (client address, page session) for public ingest routes.

Each key may spend ``rate`` tokens per second with bursts of ``burst``. State is in
memory and bounded (``max_keys``): when full, buckets that have refilled completely —
which are the same as no bucket — are forgotten, then the oldest if it is still full
(an attack from many addresses). ``rate`` 0 disables the limit. Runs on the event loop
thread only (no lock needed).
"""

from __future__ import annotations

import time
from collections.abc import Callable


class TokenBuckets:
    def __init__(
        self,
        rate: float,
        burst: float,
        *,
        max_keys: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.rate = rate
        self.burst = max(burst, 1.0)
        self.max_keys = max_keys
        self.clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, at)

    def take(self, key: str) -> float:
        """Spend one token of ``key``: 0 when allowed, else seconds until one is there."""
        if self.rate <= 0:
            return 0.0
        now = self.clock()
        tokens, at = self._buckets.get(key, (self.burst, now))
        tokens = min(self.burst, tokens + (now - at) * self.rate)
        if tokens < 1.0:
            self._buckets[key] = (tokens, now)
            return (1.0 - tokens) / self.rate
        if key not in self._buckets and len(self._buckets) >= self.max_keys:
            self._prune(now)
        self._buckets[key] = (tokens - 1.0, now)
        return 0.0

    def _prune(self, now: float) -> None:
        full = self.burst / self.rate
        for key in [k for k, (t, at) in self._buckets.items() if now - at >= full]:
            del self._buckets[key]
        excess = len(self._buckets) - self.max_keys // 2
        for key in list(self._buckets)[: max(excess, 0)]:
            del self._buckets[key]
