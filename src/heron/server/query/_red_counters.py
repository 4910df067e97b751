"""RED totals since a fixed start, per service, environment and endpoint: what
``GET /metrics`` exposes as Prometheus counters and histograms.

Prometheus expects a counter never to go down while the process runs. A sum over the
retained rollups would (retention deletes old minutes) and would cost more every day,
so the totals are kept in two parts:

- **settled**: minutes older than ``settle_s`` are read once and folded into totals held
  in memory, and never read again;
- **live**: every refresh reads only the minutes since then.

A refresh reads at least what the previous one did (rows only arrive, and compaction
keeps their sums), so every total only grows. Counting starts at the minute of
``start_ns`` (the server's start): a restart is a counter reset, as Prometheus expects.
A span reaching Heron more than ``settle_s`` after its minute was folded is not counted
here (every other view has it). At most ``max_series`` (service, environment, endpoint)
series are kept, the first seen; the rest are summed into one :data:`OVERFLOW` series.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from heron.server.store.base import Store
from heron.server.store.red import RollupFilter, SeriesBucketRow

NS_PER_MIN = 60 * 10**9
SETTLE_S = 600
MAX_SERIES = 2000
OVERFLOW = ("(other)", "", "(other)")
_FUTURE_S = 2**62 // 10**9  # live reads include spans dated ahead of the clock

SeriesKey = tuple[str, str, str]
"""(service, environment, endpoint)"""


@dataclass(slots=True)
class RedTotals:
    """Counts of one series since the start; ``buckets``: requests per latency bucket
    (``heron.server.histogram``)."""

    requests: int = 0
    errors: int = 0
    sum_ns: float = 0.0
    buckets: dict[int, int] = field(default_factory=dict)

    def add(self, bucket: int, requests: int, errors: int, sum_ns: float) -> None:
        self.requests += requests
        self.errors += errors
        self.sum_ns += sum_ns
        self.buckets[bucket] = self.buckets.get(bucket, 0) + requests

    def plus(self, other: RedTotals) -> RedTotals:
        out = RedTotals(self.requests, self.errors, self.sum_ns, dict(self.buckets))
        for b, n in other.buckets.items():
            out.buckets[b] = out.buckets.get(b, 0) + n
        out.requests += other.requests
        out.errors += other.errors
        out.sum_ns += other.sum_ns
        return out


class RedCounters:
    """Monotonic RED totals of one project's entry spans since ``start_ns``.

    Not thread-safe: the caller serialises :meth:`totals` (one scrape at a time).
    """

    def __init__(
        self,
        store: Store,
        project_id: int,
        start_ns: int,
        *,
        settle_s: int = SETTLE_S,
        max_series: int = MAX_SERIES,
    ) -> None:
        self.store = store
        self.project_id = project_id
        self.start_s = start_ns // NS_PER_MIN * 60
        self.settle_s = settle_s
        self.max_series = max_series
        self._watermark = self.start_s  # minutes before it are folded into _settled
        self._settled: dict[SeriesKey, RedTotals] = {}
        self._admitted: set[SeriesKey] = set()

    def totals(self, now_ns: int) -> dict[SeriesKey, RedTotals]:
        """Every series' totals from the start minute up to now (and beyond)."""
        settled_to = now_ns // NS_PER_MIN * 60 - self.settle_s
        if settled_to > self._watermark:
            rows = self._read(self._watermark, settled_to)
            self._fold(self._settled, rows)
            self._watermark = settled_to
        live: dict[SeriesKey, RedTotals] = {}
        self._fold(live, self._read(self._watermark, _FUTURE_S))
        out = dict(self._settled)
        for key, t in live.items():
            out[key] = out[key].plus(t) if key in out else t
        return out

    def _read(self, lo_s: int, hi_s: int) -> list[SeriesBucketRow]:
        return self.store.red.series_buckets(RollupFilter(self.project_id, lo_s, hi_s))

    def _fold(self, into: dict[SeriesKey, RedTotals], rows: Iterable[SeriesBucketRow]) -> None:
        for service, environment, endpoint, bucket, requests, errors, sum_ns in rows:
            key = self._series((service, environment, endpoint))
            totals = into.get(key)
            if totals is None:
                totals = into[key] = RedTotals()
            totals.add(int(bucket), int(requests), int(errors), float(sum_ns))

    def _series(self, key: SeriesKey) -> SeriesKey:
        """The key itself once admitted (for good), else the overflow series."""
        if key in self._admitted:
            return key
        if len(self._admitted) < self.max_series:
            self._admitted.add(key)
            return key
        return OVERFLOW
