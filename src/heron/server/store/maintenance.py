"""Background upkeep run on the writer thread: retention, rollup compaction, analysis.

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
from typing import Any

from heron.server.analyze.n_plus_one import DEFAULT_MIN_COUNT, detect_repeats, replace_repeats
from heron.server.analyze.query_stats import (
    add_fingerprints,
    db_rollup,
    new_fingerprints,
    replace_db_rollup,
)
from heron.server.store.base import StorageUnavailable
from heron.server.store.duckdb_store import DuckDBStore
from heron.server.store.memory import release_free_memory

log = logging.getLogger("heron.maintenance")

NS_PER_DAY = 86_400 * 10**9
NS_PER_MIN = 60 * 10**9


def enforce_retention(
    con: Any, now_ns: int, retention_days: int, rollup_retention_days: int
) -> int:
    """Delete spans, logs, error events and rollups older than their retention; return
    spans deleted. Issues stay (their counters and status outlive their events)."""
    cutoff = now_ns - retention_days * NS_PER_DAY
    deleted = con.execute("DELETE FROM spans WHERE start_ns < ?", [cutoff]).fetchone()[0]
    con.execute("DELETE FROM logs WHERE time_ns < ?", [cutoff])
    con.execute("DELETE FROM error_events WHERE time_ns < ?", [cutoff])
    rollup_cutoff_s = (now_ns - rollup_retention_days * NS_PER_DAY) // 10**9
    con.execute("DELETE FROM rollup_1m WHERE minute_s < ?", [rollup_cutoff_s])
    con.execute("DELETE FROM n_plus_one WHERE start_ns < ?", [cutoff])
    con.execute("DELETE FROM db_rollup_1m WHERE minute_s < ?", [rollup_cutoff_s])
    con.execute(
        "DELETE FROM sql_fingerprints WHERE fingerprint NOT IN "
        "(SELECT DISTINCT fingerprint FROM db_rollup_1m) AND first_seen_ns < ?",
        [cutoff],
    )
    return int(deleted)


def compact_rollups(con: Any, start_s: int, end_s: int) -> None:
    """Merge the partial rollup rows of minutes in [start_s, end_s) into one row per key."""
    con.execute(
        "CREATE OR REPLACE TEMP TABLE rollup_merge AS "
        "SELECT project_id, minute_s, service, environment, release, endpoint, bucket, "
        "sum(count)::UBIGINT AS count, sum(errors)::UBIGINT AS errors, sum(sum_ns) AS sum_ns "
        "FROM rollup_1m WHERE minute_s >= ? AND minute_s < ? GROUP BY ALL",
        [start_s, end_s],
    )
    con.execute("DELETE FROM rollup_1m WHERE minute_s >= ? AND minute_s < ?", [start_s, end_s])
    con.execute("INSERT INTO rollup_1m SELECT * FROM rollup_merge")
    con.execute("DROP TABLE rollup_merge")


def analyze_recent(
    store: DuckDBStore,
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
    rollup = db_rollup(store, lo_s, lo_ns - margin_ns)
    names = new_fingerprints(store, lo_ns)
    groups = detect_repeats(store, lo_ns, margin_ns=margin_ns, min_count=min_count)

    def write(con: Any) -> None:
        replace_db_rollup(con, lo_s, rollup)
        add_fingerprints(con, names)
        replace_repeats(con, lo_ns, groups)

    store.write(write, timeout=600)
    return len(groups)


class Maintenance:
    """A daemon thread that schedules upkeep on the store's writer every ``interval_s``
    and analysis every ``analysis_interval_s``."""

    def __init__(
        self,
        store: DuckDBStore,
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

    def run_once(self) -> int:
        now = self.clock()
        now_min = now // 60_000_000_000 * 60

        def job(con: Any) -> int:
            deleted = enforce_retention(con, now, self.retention_days, self.rollup_retention_days)
            compact_rollups(con, now_min - 3600, now_min - 60)
            return deleted

        deleted: int = self.store.write(job, timeout=600)
        if deleted:
            log.info("retention: deleted %d spans older than %d days", deleted, self.retention_days)
        return deleted

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
                self._guarded(self.analyze_once, "analysis")
            if now >= next_upkeep:
                next_upkeep = now + self.interval_s
                self._guarded(self.run_once, "maintenance")

    @staticmethod
    def _guarded(job: Callable[[], object], what: str) -> None:
        try:
            job()
        except StorageUnavailable as e:  # the writer already logged the failure itself
            log.warning("%s skipped while storage is unavailable: %s", what, e)
        except Exception:
            log.exception("%s failed; will retry", what)
        finally:
            release_free_memory()
