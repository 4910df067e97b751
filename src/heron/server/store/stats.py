"""What a store's writers count for ``GET /metrics``: commit latency per writer.

Writer threads call :meth:`CommitTimes.observe` once per commit (a lock and a few adds,
nothing per row); a scrape reads :meth:`CommitTimes.snapshot`. Counts only grow while the
process runs, as Prometheus expects of a histogram.
"""

from __future__ import annotations

import bisect
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

# Upper bounds (seconds) of the commit-duration buckets; +Inf is implied.
COMMIT_BOUNDS_S = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


@dataclass(frozen=True, slots=True)
class CommitHistogram:
    """Commits of one writer: per-bucket counts (not cumulative; the last one is +Inf),
    their summed duration in seconds and how many there were."""

    counts: tuple[int, ...]
    sum_s: float
    count: int


class CommitTimes:
    """Durations of a store's commits, per writer (``spans``, ``events``...)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: dict[str, list[int]] = {}
        self._sums: dict[str, float] = {}

    def observe(self, writer: str, seconds: float) -> None:
        i = bisect.bisect_left(COMMIT_BOUNDS_S, seconds)
        with self._lock:
            counts = self._counts.get(writer)
            if counts is None:
                counts = self._counts[writer] = [0] * (len(COMMIT_BOUNDS_S) + 1)
                self._sums[writer] = 0.0
            counts[i] += 1
            self._sums[writer] += seconds

    @contextmanager
    def timed(self, writer: str) -> Iterator[None]:
        """Time the block as one commit of ``writer`` (also when it raises)."""
        start = time.perf_counter()
        try:
            yield
        finally:
            self.observe(writer, time.perf_counter() - start)

    def snapshot(self) -> dict[str, CommitHistogram]:
        with self._lock:
            return {
                w: CommitHistogram(tuple(c), self._sums[w], sum(c)) for w, c in self._counts.items()
            }
