"""Per-minute statistics of database queries, per service, endpoint and fingerprint.

``db_rollup_1m`` is to database spans what ``rollup_1m`` is to requests: one row per
minute, service, environment, endpoint, database system, fingerprint and latency bucket
(see ``heron.server.histogram``) with calls, errors, total and longest time, and rows
returned (where the span reports ``db.response.returned_rows``). A database span does
not know its endpoint when it is stored, so these rows are computed afterwards by the
analysis job: each run recomputes the minutes of a recent window from raw spans and
replaces them, which is idempotent. ``sql_fingerprints`` maps each fingerprint seen to
its readable form.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import pyarrow as pa

from heron.server.analyze._entry import ENTRIES_SQL, TRACE_KEY_SQL, asof_endpoint_sql
from heron.server.analyze.fingerprint import display_sql
from heron.server.model.span import ERROR_SQL
from heron.server.store.base import Store

__all__ = ["add_fingerprints", "db_rollup", "new_fingerprints", "replace_db_rollup"]

# histogram.bucket_of in SQL: 8 buckets per doubling of microseconds, 0..255.
BUCKET_SQL = (
    "CASE WHEN duration_ns < 1000 THEN 0 "
    "ELSE least(floor(log2(duration_ns / 1000.0) * 8), 255) END::USMALLINT"
)
# Parsing JSON costs more than a substring test: only spans that name the key pay it.
ROWS_SQL = (
    "CASE WHEN contains(attributes, 'db.response.returned_rows') THEN "
    "TRY_CAST(json_extract_string(attributes, '$.\"db.response.returned_rows\"') AS BIGINT) END"
)

_ROLLUP_SQL = f"""
WITH d AS (
    SELECT project_id, {TRACE_KEY_SQL} AS trace_key, start_ns, duration_ns, service,
           environment, coalesce(db_system, '') AS db_system, db_fingerprint,
           {ERROR_SQL} AS err, {ROWS_SQL} AS nrows, {BUCKET_SQL} AS bucket
    FROM spans WHERE start_ns >= ? AND db_fingerprint IS NOT NULL
), e AS ({ENTRIES_SQL})
SELECT c.project_id, c.start_ns // 60000000000 * 60 AS minute_s, c.service, c.environment,
       coalesce(e.endpoint, '') AS endpoint, c.db_system, c.db_fingerprint AS fingerprint,
       c.bucket, count(*)::UBIGINT AS count, count_if(c.err)::UBIGINT AS errors,
       sum(c.duration_ns)::HUGEINT AS sum_ns, max(c.duration_ns) AS max_ns,
       coalesce(sum(c.nrows), 0)::HUGEINT AS rows_sum, count(c.nrows)::UBIGINT AS rows_count
FROM {asof_endpoint_sql("d", "e")}
GROUP BY ALL
"""  # noqa: S608 - constants only

NEW_FINGERPRINTS_SQL = """
SELECT db_fingerprint, any_value(coalesce(db_system, '')), any_value(db_statement),
       min(start_ns)
FROM spans
WHERE start_ns >= ? AND db_fingerprint IS NOT NULL
  AND db_fingerprint NOT IN (SELECT fingerprint FROM sql_fingerprints)
GROUP BY db_fingerprint
"""


class ArrowReader(Protocol):
    def read_arrow(self, sql: str, params: Sequence[Any] = ()) -> pa.Table: ...


def db_rollup(store: ArrowReader, lo_s: int, entries_since_ns: int) -> pa.Table:
    """The rollup rows of minutes from ``lo_s`` (a minute boundary) on, from raw spans."""
    return store.read_arrow(_ROLLUP_SQL, [lo_s * 10**9, entries_since_ns])


def replace_db_rollup(con: Any, lo_s: int, table: pa.Table) -> None:
    """On the writer: the rollup rows of minutes from ``lo_s`` on become ``table``."""
    con.execute("DELETE FROM db_rollup_1m WHERE minute_s >= ?", [lo_s])
    if table.num_rows:
        con.register("db_rollup_new", table)
        try:
            con.execute("INSERT INTO db_rollup_1m SELECT * FROM db_rollup_new")
        finally:
            con.unregister("db_rollup_new")


def new_fingerprints(store: Store, since_ns: int) -> list[tuple[int, str, str, int]]:
    """``(fingerprint, db_system, display, first_seen_ns)`` of fingerprints not yet named."""
    return [
        (fp, system, display_sql(statement or "", system or None), first)
        for fp, system, statement, first in store.read(NEW_FINGERPRINTS_SQL, [since_ns])
    ]


def add_fingerprints(con: Any, rows: list[tuple[int, str, str, int]]) -> None:
    """On the writer: name new fingerprints (a fingerprint already named keeps its name)."""
    if rows:
        con.executemany("INSERT OR IGNORE INTO sql_fingerprints VALUES (?, ?, ?, ?)", rows)
