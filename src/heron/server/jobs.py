"""Background jobs: retention, rollup compaction (on the store's writer) and analysis.

Analysis (database query statistics and N+1 detection, see ``heron.server.analyze``)
runs more often than upkeep, so findings appear within seconds. Its reads run on
reader connections and only its replacing writes go to the writer, which therefore
never waits on an analysis query.

Each job's queries build hash tables over minutes of spans, the process's largest
allocations; after every job the freed memory goes back to the OS (``store.memory``),
so a server's RSS falls back after the job instead of staying at its peak.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from heron.server.analyze.n_plus_one import (
    DEFAULT_MIN_COUNT,
    RepeatGroup,
    db_groups,
    http_groups,
    with_endpoints,
)
from heron.server.analyze.query_stats import name_fingerprints
from heron.server.store.base import StorageUnavailable, Store
from heron.server.store.memory import release_free_memory

log = logging.getLogger("heron.maintenance")

NS_PER_MIN = 60 * 10**9
# Compaction merges the partial rollup rows of the last hour but its latest minute.
_COMPACT_FROM_S = 3600
_COMPACT_TO_S = 60


def detect_repeats(
    store: Store, lo_ns: int, *, margin_ns: int, min_count: int = DEFAULT_MIN_COUNT
) -> list[RepeatGroup]:
    """Every repeat group starting at or after ``lo_ns`` (reads only; no writes)."""
    since = lo_ns - margin_ns
    found = db_groups(store.db.repeated_queries(since, lo_ns, min_count)) + http_groups(
        store.db.repeated_calls(since, min_count), lo_ns, min_count
    )
    traces = [g["trace_id"] for g in found]
    return with_endpoints(found, store.db.entry_spans(since - margin_ns, traces))


def analyze_recent(
    store: Store,
    now_ns: int,
    *,
    window_s: int = 180,
    min_count: int = DEFAULT_MIN_COUNT,
) -> int:
    """Recompute query statistics and repeat groups of the last ``window_s`` seconds.

    Replaces what an earlier run wrote for the same minutes and groups, so it is safe to
    run at any time and any number of times. Spans arriving more than ``window_s`` late
    are not counted. Returns the number of repeat groups in the window.
    """
    lo_s = (now_ns - window_s * 10**9) // NS_PER_MIN * 60
    lo_ns = lo_s * 10**9
    margin_ns = window_s * 10**9  # a request longer than this may be counted short
    rollup = store.db.query_stat_rollup(lo_s, lo_ns - margin_ns)
    names = name_fingerprints(store.db.unnamed_fingerprints(lo_ns))
    groups = detect_repeats(store, lo_ns, margin_ns=margin_ns, min_count=min_count)
    store.db.replace_analysis(lo_s, rollup, names, lo_ns, groups)
    return len(groups)


@dataclass(slots=True)
class JobRuns:
    """How one background job has run in this process (``GET /metrics``)."""

    succeeded: int = 0
    failed: int = 0
    """Raised, or skipped while storage was unavailable."""
    last_duration_s: float = 0.0
    last_end_s: float = 0.0
    """Unix time the last run ended; 0 before the first."""


class Maintenance:
    """A daemon thread that schedules upkeep on the store's writer every ``interval_s``
    and analysis every ``analysis_interval_s``."""

    def __init__(
        self,
        store: Store,
        *,
        retention_days: int,
        rollup_retention_days: int,
        interval_s: float = 60.0,
        analysis_interval_s: float = 10.0,
        analysis_window_s: int = 180,
        clock: Callable[[], int] = time.time_ns,
    ) -> None:
        self.store = store
        self.retention_days = retention_days
        self.rollup_retention_days = rollup_retention_days
        self.interval_s = interval_s
        self.analysis_interval_s = analysis_interval_s
        self.analysis_window_s = analysis_window_s
        self.clock = clock
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.jobs: dict[str, JobRuns] = {}  # by job name, as the loop ran them

    def run_once(self) -> int:
        now = self.clock()
        now_min = now // 60_000_000_000 * 60

        deleted = self.store.upkeep(
            now,
            retention_days=self.retention_days,
            rollup_retention_days=self.rollup_retention_days,
            compact_from_s=now_min - _COMPACT_FROM_S,
            compact_to_s=now_min - _COMPACT_TO_S,
        )
        if deleted:
            log.info("retention: deleted %d spans older than %d days", deleted, self.retention_days)
        return deleted

    def prune_alerting_once(self) -> int:
        """Delete alert history and delivered or failed notifications older than
        ``retention_days`` (the alerts page and the notification log read them)."""
        before = self.clock() - self.retention_days * 86_400 * 1_000_000_000
        return self.store.state.prune_alerting(before)

    def analyze_once(self) -> int:
        """Run the analysis job now; returns the repeat groups in its window."""
        return analyze_recent(self.store, self.clock(), window_s=self.analysis_window_s)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="heron-maintenance", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=5)

    def _loop(self) -> None:
        tick = min(self.interval_s, self.analysis_interval_s)
        next_upkeep = next_analysis = time.monotonic()
        next_upkeep += self.interval_s
        next_analysis += self.analysis_interval_s
        while not self._stop.wait(tick):
            now = time.monotonic()
            if now >= next_analysis:
                next_analysis = now + self.analysis_interval_s
                self.run_job(self.analyze_once, "analysis")
            if now >= next_upkeep:
                next_upkeep = now + self.interval_s
                self.run_job(self.run_once, "maintenance")
                self.run_job(self.prune_alerting_once, "alert_prune")

    def run_job(self, job: Callable[[], object], what: str) -> None:
        """Run ``job`` guarded (never raises), counted in :attr:`jobs` under ``what``."""
        runs = self.jobs.setdefault(what, JobRuns())
        start = time.monotonic()
        ok = self._guarded(job, what)
        runs.last_duration_s = time.monotonic() - start
        runs.last_end_s = self.clock() / 1e9
        if ok:
            runs.succeeded += 1
        else:
            runs.failed += 1

    @staticmethod
    def _guarded(job: Callable[[], object], what: str) -> bool:
        """Run ``job``; log instead of raising. True when it succeeded."""
        try:
            job()
            return True
        except StorageUnavailable as e:  # the writer already logged the failure itself
            log.warning("%s skipped while storage is unavailable: %s", what, e)
        except Exception:
            log.exception("%s failed; will retry", what)
        finally:
            release_free_memory()
        return False
