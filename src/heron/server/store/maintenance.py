"""Background upkeep run on the writer thread: retention and rollup compaction."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from heron.server.store.duckdb_store import DuckDBStore

log = logging.getLogger("heron.maintenance")

NS_PER_DAY = 86_400 * 10**9


def enforce_retention(
    con: Any, now_ns: int, retention_days: int, rollup_retention_days: int
) -> int:
    """Delete spans and rollups older than their retention; return spans deleted."""
    cutoff = now_ns - retention_days * NS_PER_DAY
    deleted = con.execute("DELETE FROM spans WHERE start_ns < ?", [cutoff]).fetchone()[0]
    rollup_cutoff_s = (now_ns - rollup_retention_days * NS_PER_DAY) // 10**9
    con.execute("DELETE FROM rollup_1m WHERE minute_s < ?", [rollup_cutoff_s])
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


class Maintenance:
    """A daemon thread that schedules upkeep on the store's writer every ``interval_s``."""

    def __init__(
        self,
        store: DuckDBStore,
        *,
        retention_days: int,
        rollup_retention_days: int,
        interval_s: float = 60.0,
        clock: Callable[[], int] = time.time_ns,
    ) -> None:
        self.store = store
        self.retention_days = retention_days
        self.rollup_retention_days = rollup_retention_days
        self.interval_s = interval_s
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

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="heron-maintenance", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=5)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self.run_once()
            except Exception:
                log.exception("maintenance failed; will retry")
