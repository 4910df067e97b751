"""DuckDB statements of the upkeep job (``heron.server.jobs``): retention and rollup
compaction, run on the writer."""

from __future__ import annotations

from typing import Any

NS_PER_DAY = 86_400 * 10**9


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
