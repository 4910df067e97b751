"""DuckDB statements for: Database monitoring: query statistics, slow queries, N+1 findings, and the analysis job's reads and writes.

The endpoint rule in SQL (see ``heron.server.analyze._entry``): among the entry spans of
a span's trace and service that started no later than the span, the latest — an ASOF
join, for rollups over many spans.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import pyarrow as pa

from heron.server.analyze.n_plus_one import MAX_TOTAL_NS, RepeatGroup
from heron.server.analyze.scrub import PLAN_ATTR, PLAN_FORMAT_ATTR
from heron.server.model.span import ENDPOINT_SQL, ENTRY_SQL, ERROR_SQL
from heron.server.store.duckdb._sql import SqlReads

# The trace id hashed to 64 bits for joins: an ASOF join on it is several times faster
# than on the 16-byte BLOB, and a collision needs the same service too.
TRACE_KEY_SQL = "hash(trace_id)"


def asof_endpoint_sql(child: str, entries: str) -> str:
    """A FROM clause giving relation ``child`` (alias ``c``) an endpoint: select
    ``coalesce(e.endpoint, '')``.

    ``child`` needs ``project_id``, ``trace_key`` (:data:`TRACE_KEY_SQL`), ``service``
    and ``start_ns``; ``entries`` is :data:`ENTRIES_SQL`. Both are constants.
    """
    return (
        f"{child} c ASOF LEFT JOIN {entries} e ON c.project_id = e.project_id "
        "AND c.trace_key = e.trace_key AND c.service = e.service AND c.start_ns >= e.e_start"
    )


ENTRIES_SQL = (
    f"SELECT project_id, {TRACE_KEY_SQL} AS trace_key, trace_id, service, "  # noqa: S608 - constants only
    f"start_ns AS e_start, {ENDPOINT_SQL} AS endpoint FROM spans WHERE start_ns >= ? AND {ENTRY_SQL}"
)

_CHUNK = 1000

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

# Grouped by the trace id's 64-bit hash (with the parent's id): cheaper than the BLOB.
# Two passes: the groups of min_count or more are found from four integers per span;
# only their spans are then read in full. One pass carrying every span's strings held
# about 500 bytes per database span of the window (240 MiB for 460k spans), 6x more.
_DB_GROUPS_SQL = f"""
WITH big AS (
    SELECT project_id, {TRACE_KEY_SQL} AS trace_key, parent_id, db_fingerprint
    FROM spans
    WHERE start_ns >= ? AND db_fingerprint IS NOT NULL AND parent_id <> 0
    GROUP BY ALL
    HAVING count(*) >= ?
)
SELECT s.project_id, min(s.start_ns) AS start_ns, any_value(s.trace_id), s.parent_id,
       any_value(s.service), any_value(s.environment), s.db_fingerprint,
       any_value(s.db_system), any_value(s.db_statement), count(*)::BIGINT,
       least(sum(s.duration_ns), {MAX_TOTAL_NS})::BIGINT, max(s.duration_ns),
       arg_min(s.span_id, s.start_ns)
FROM (SELECT *, {TRACE_KEY_SQL} AS trace_key FROM spans WHERE start_ns >= ?) s
SEMI JOIN big b
  ON s.project_id = b.project_id AND s.trace_key = b.trace_key
 AND s.parent_id = b.parent_id AND s.db_fingerprint = b.db_fingerprint
GROUP BY s.project_id, s.trace_key, s.parent_id, s.db_fingerprint
HAVING min(s.start_ns) >= ?
"""  # noqa: S608 - constants only

# Outgoing HTTP calls: client spans with a method and no statement, under parents that
# have at least min_count of them; their URLs are templated in Python.
_HTTP_ATTRS = ("url.full", "http.url", "server.address", "server.port", "url.path", "http.target")
_HTTP_SPANS_SQL = (
    "SELECT project_id, trace_id, parent_id, span_id, start_ns, duration_ns, service, "  # noqa: S608 - constants only
    "environment, http_method, name, "
    + ", ".join(f"json_extract_string(attributes, '$.\"{k}\"')" for k in _HTTP_ATTRS)
    + """
FROM (
    SELECT *, count(*) OVER (PARTITION BY project_id, hash(trace_id), parent_id) AS siblings
    FROM spans
    WHERE start_ns >= ? AND kind = 3 AND http_method IS NOT NULL
      AND db_statement IS NULL AND parent_id <> 0
)
WHERE siblings >= ?
"""
)

_REPEAT_COLUMNS = [
    ("project_id", pa.int32()),
    ("start_ns", pa.int64()),
    ("trace_id", pa.binary()),
    ("parent_id", pa.uint64()),
    ("service", pa.string()),
    ("environment", pa.string()),
    ("endpoint", pa.string()),
    ("kind", pa.string()),
    ("fingerprint", pa.uint64()),
    ("db_system", pa.string()),
    ("display", pa.string()),
    ("count", pa.uint32()),
    ("total_ns", pa.int64()),
    ("max_ns", pa.int64()),
    ("example_span_id", pa.uint64()),
]
_REPEAT_SCHEMA = pa.schema(_REPEAT_COLUMNS)

_PLAN_PATH = f'$."{PLAN_ATTR}"'
_PLAN_FORMAT_PATH = f'$."{PLAN_FORMAT_ATTR}"'

_AGG_SQL = (
    "sum(c)::BIGINT, sum(e)::BIGINT, sum(s)::DOUBLE, max(mx), sum(rs)::DOUBLE, sum(rn)::BIGINT, "
    "list(bucket ORDER BY bucket), list(c ORDER BY bucket)"
)
_INNER_AGG_SQL = (
    "bucket, sum(count)::BIGINT AS c, sum(errors) AS e, sum(sum_ns) AS s, max(max_ns) AS mx, "
    "sum(rows_sum) AS rs, sum(rows_count) AS rn"
)
# The groupings the query layer asks for, by name: constant expressions of the columns.
_STAT_KEYS = {"query": ("service", "fingerprint", "db_system"), "endpoint": ("service", "endpoint")}
_STAT_FILTERS = ("service", "environment", "endpoint", "db_system", "fingerprint")

_SLOW_ORDER = {
    "total_time_ms": "total_ns DESC",
    "count": "n DESC",
    "max_ms": "max_ns DESC",
    "p95_ms": "p95_ns DESC",
    "last_seen": "last_ns DESC",
}


def _stat_where(
    project_id: int, lo_s: int, hi_s: int, filters: Mapping[str, Any]
) -> tuple[str, list[Any]]:
    """WHERE over a rollup table; filter columns come from the fixed set above."""
    clauses = ["project_id = ?", "minute_s >= ?", "minute_s < ?"]
    params: list[Any] = [project_id, lo_s, hi_s]
    for col in _STAT_FILTERS:
        value = filters.get(col)
        if value is not None:
            clauses.append(f"{col} = ?")
            params.append(value)
    return " AND ".join(clauses), params


def _slow_groups_sql(where: str, endpoint_filter: str, order: str) -> str:
    """Slow calls (``s``) with their endpoints and their EXPLAIN children's plans, grouped.

    Every part is a constant of this module; values are bound parameters."""
    return f"""
        WITH s AS MATERIALIZED (
            SELECT project_id, {TRACE_KEY_SQL} AS trace_key, trace_id, span_id, start_ns,
                   duration_ns, service, db_system, db_statement, db_fingerprint,
                   {ERROR_SQL} AS error, json_extract_string(attributes, ?) AS plan,
                   json_extract_string(attributes, ?) AS plan_format
            FROM spans WHERE {where}
        ), e AS ({ENTRIES_SQL} AND project_id = ? AND trace_id IN (SELECT trace_id FROM s)),
        x AS (
            SELECT trace_id, parent_id, json_extract_string(attributes, ?) AS plan,
                   json_extract_string(attributes, ?) AS plan_format
            FROM spans WHERE project_id = ? AND start_ns >= ? AND start_ns < ?
              AND contains(attributes, ?) AND trace_id IN (SELECT trace_id FROM s)
        ), j AS (
            SELECT c.*, coalesce(e.endpoint, '') AS endpoint FROM {asof_endpoint_sql("s", "e")}
        ), p AS (
            SELECT j.*, coalesce(j.plan, x.plan) AS any_plan,
                   CASE WHEN j.plan IS NULL THEN x.plan_format ELSE j.plan_format END AS any_format
            FROM j LEFT JOIN x ON x.trace_id = j.trace_id AND x.parent_id = j.span_id
            {endpoint_filter}
        )
        SELECT db_fingerprint, any_value(db_system), count(*) AS n, count(*) FILTER (error),
               sum(duration_ns)::DOUBLE AS total_ns, max(duration_ns) AS max_ns,
               quantile_disc(duration_ns, 0.95) AS p95_ns, min(start_ns),
               max(start_ns) AS last_ns, list(DISTINCT service ORDER BY service),
               list(DISTINCT endpoint ORDER BY endpoint),
               arg_max(trace_id, duration_ns), arg_max(span_id, duration_ns),
               arg_max(db_statement, duration_ns),
               arg_max(any_plan, start_ns) FILTER (any_plan IS NOT NULL),
               arg_max(any_format, start_ns) FILTER (any_plan IS NOT NULL)
        FROM p GROUP BY db_fingerprint
        ORDER BY {order}, db_fingerprint LIMIT ?
    """  # noqa: S608 - constants only


def _repeats_arrow(groups: Iterable[RepeatGroup]) -> pa.Table:
    rows = list(groups)
    return pa.table(
        {name: [getattr(g, name) for g in rows] for name, _ in _REPEAT_COLUMNS},
        schema=_REPEAT_SCHEMA,
    )


def _replace_db_rollup(con: Any, lo_s: int, table: pa.Table) -> None:
    """On the writer: the rollup rows of minutes from ``lo_s`` on become ``table``."""
    con.execute("DELETE FROM db_rollup_1m WHERE minute_s >= ?", [lo_s])
    if table.num_rows:
        con.register("db_rollup_new", table)
        try:
            con.execute("INSERT INTO db_rollup_1m SELECT * FROM db_rollup_new")
        finally:
            con.unregister("db_rollup_new")


def _add_fingerprints(con: Any, rows: Sequence[tuple[int, str, str, int]]) -> None:
    """On the writer: name new fingerprints (a fingerprint already named keeps its name)."""
    if rows:
        con.executemany("INSERT OR IGNORE INTO sql_fingerprints VALUES (?, ?, ?, ?)", rows)


def _replace_repeats(con: Any, lo_ns: int, groups: Sequence[RepeatGroup]) -> None:
    """On the writer: the groups starting at or after ``lo_ns`` become exactly ``groups``."""
    con.execute("DELETE FROM n_plus_one WHERE start_ns >= ?", [lo_ns])
    if groups:
        con.register("n_plus_one_new", _repeats_arrow(groups))
        try:
            con.execute("INSERT INTO n_plus_one SELECT * FROM n_plus_one_new")
        finally:
            con.unregister("n_plus_one_new")


class DuckDBDb:
    """Implements ``store.db.DbReader`` on DuckDB."""

    def __init__(self, sql: SqlReads) -> None:
        self.sql = sql

    # ------------------------------------------------------------ query statistics

    def has_query_stats(self) -> bool:
        return bool(self.sql.read("SELECT 1 FROM sql_fingerprints LIMIT 1", []))

    def fingerprint_names(self, fingerprints: Sequence[int]) -> dict[int, tuple[str, str]]:
        if not fingerprints:
            return {}
        marks = ", ".join("?" * len(fingerprints))
        rows = self.sql.read(
            f"SELECT fingerprint, db_system, display FROM sql_fingerprints WHERE fingerprint IN ({marks})",  # noqa: S608 - placeholders only
            list(fingerprints),
        )
        return {fp: (system, display) for fp, system, display in rows}

    def query_stat_groups(
        self, project_id: int, lo_s: int, hi_s: int, filters: Mapping[str, Any], by: str
    ) -> list[tuple[tuple[Any, ...], tuple[Any, ...]]]:
        where, params = _stat_where(project_id, lo_s, hi_s, filters)
        return self._grouped(_STAT_KEYS[by], where, params)

    def query_stat_series(
        self, project_id: int, lo_s: int, hi_s: int, filters: Mapping[str, Any], step_s: int
    ) -> list[tuple[tuple[Any, ...], tuple[Any, ...]]]:
        where, params = _stat_where(project_id, lo_s, hi_s, filters)
        return self._grouped(("minute_s // ? * ?",), where, [step_s, step_s, *params])

    def _grouped(
        self, keys: Sequence[str], where: str, params: Sequence[Any]
    ) -> list[tuple[tuple[Any, ...], tuple[Any, ...]]]:
        """Rows of ``db_rollup_1m`` summed per ``keys`` (constant expressions of its columns;
        ``params`` bind their placeholders first, then the WHERE clause's)."""
        inner = ", ".join(f"{k} AS k{i}" for i, k in enumerate(keys))
        outer = ", ".join(f"k{i}" for i in range(len(keys)))
        rows = self.sql.read(
            f"SELECT {outer}, {_AGG_SQL} FROM (SELECT {inner}, {_INNER_AGG_SQL} "  # noqa: S608 - constants only
            f"FROM db_rollup_1m WHERE {where} GROUP BY ALL) GROUP BY {outer}",
            params,
        )
        return [(tuple(r[: len(keys)]), tuple(r[len(keys) :])) for r in rows]

    def request_time(
        self,
        project_id: int,
        lo_s: int,
        hi_s: int,
        *,
        service: str | None,
        endpoint: str | None,
        environment: str | None,
    ) -> dict[tuple[str, str], tuple[int, float]]:
        """(requests, total ns) per (service, endpoint) from the request rollups."""
        clauses = ["project_id = ?", "minute_s >= ?", "minute_s < ?"]
        params: list[Any] = [project_id, lo_s, hi_s]
        for col, value in (
            ("service", service),
            ("endpoint", endpoint),
            ("environment", environment),
        ):
            if value is not None:
                clauses.append(f"{col} = ?")
                params.append(value)
        rows = self.sql.read(
            "SELECT service, endpoint, sum(count)::BIGINT, sum(sum_ns)::DOUBLE FROM rollup_1m "  # noqa: S608 - constants only
            f"WHERE {' AND '.join(clauses)} GROUP BY service, endpoint",
            params,
        )
        return {(s, e): (int(n), float(t)) for s, e, n, t in rows}

    # ------------------------------------------------------------------ raw spans

    def query_samples(
        self,
        project_id: int,
        start_ns: int,
        end_ns: int,
        *,
        entries_since_ns: int,
        fingerprint: int | None,
        min_duration_ns: int | None,
        service: str | None,
        endpoint: str | None,
        db_system: str | None,
        environment: str | None,
        newest_first: bool,
        limit: int,
    ) -> list[tuple[Any, ...]]:
        """Database spans matching every filter with their endpoints: ``(trace_id,
        span_id, start_ns, duration_ns, service, endpoint, db_system, fingerprint,
        display, statement, rows, error, plan, plan_format)``."""
        clauses = ["project_id = ?", "start_ns >= ?", "start_ns < ?", "db_statement IS NOT NULL"]
        params: list[Any] = [project_id, start_ns, end_ns]
        for col, value in (
            ("db_fingerprint", fingerprint),
            ("service", service),
            ("db_system", db_system),
            ("environment", environment),
        ):
            if value is not None:
                clauses.append(f"{col} = ?")
                params.append(value)
        if min_duration_ns is not None:
            clauses.append("duration_ns >= ?")
            params.append(min_duration_ns)
        by = "start_ns DESC" if newest_first else "duration_ns DESC, start_ns DESC"
        # Without an endpoint filter the limit applies before endpoints are looked up.
        inner_limit = "" if endpoint is not None else f"ORDER BY {by} LIMIT ?"
        if endpoint is None:
            params.append(limit)
        outer = "WHERE coalesce(e.endpoint, '') = ?" if endpoint is not None else ""
        sql = f"""
            WITH s AS (
                SELECT project_id, {TRACE_KEY_SQL} AS trace_key, trace_id, span_id, start_ns,
                       duration_ns, service, db_system, db_statement, db_fingerprint,
                       {ERROR_SQL} AS error, attributes
                FROM spans WHERE {" AND ".join(clauses)} {inner_limit}
            ), e AS ({ENTRIES_SQL} AND project_id = ? AND trace_id IN (SELECT trace_id FROM s))
            SELECT c.trace_id, c.span_id, c.start_ns, c.duration_ns, c.service,
                   coalesce(e.endpoint, '') AS endpoint, c.db_system,
                   c.db_fingerprint, f.display, c.db_statement, {ROWS_SQL.replace("attributes", "c.attributes")},
                   c.error, json_extract_string(c.attributes, ?), json_extract_string(c.attributes, ?)
            FROM {asof_endpoint_sql("s", "e")}
            LEFT JOIN sql_fingerprints f ON f.fingerprint = c.db_fingerprint
            {outer}
            ORDER BY {by.replace("duration_ns", "c.duration_ns").replace("start_ns", "c.start_ns")}
            LIMIT ?
        """  # noqa: S608 - constants only
        params += [entries_since_ns, project_id]
        params += [_PLAN_PATH, _PLAN_FORMAT_PATH]
        if endpoint is not None:
            params.append(endpoint)
        params.append(limit)
        return self.sql.read(sql, params)

    def child_plans(
        self, project_id: int, since_ns: int, until_ns: int, trace_ids: Sequence[bytes]
    ) -> list[tuple[bytes, int, str | None, str | None]]:
        """``(trace_id, parent_id, plan, plan_format)`` of the spans recording a plan (the
        EXPLAIN children Heron's agent adds) in those traces."""
        marks = ", ".join("?" * len(trace_ids))
        return self.sql.read(
            "SELECT trace_id, parent_id, json_extract_string(attributes, ?), "  # noqa: S608 - placeholders only
            "json_extract_string(attributes, ?) FROM spans WHERE project_id = ? "
            "AND start_ns >= ? AND start_ns < ? AND contains(attributes, ?) "
            f"AND trace_id IN ({marks})",
            [
                _PLAN_PATH,
                _PLAN_FORMAT_PATH,
                project_id,
                since_ns,
                until_ns,
                f'"{PLAN_ATTR}"',
                *trace_ids,
            ],
        )

    def slow_query_groups(
        self,
        project_id: int,
        start_ns: int,
        end_ns: int,
        *,
        min_duration_ns: int,
        entries_since_ns: int,
        plans_until_ns: int,
        service: str | None,
        endpoint: str | None,
        db_system: str | None,
        environment: str | None,
        sort: str,
        limit: int,
    ) -> list[tuple[Any, ...]]:
        """Slow calls grouped by fingerprint: ``(fingerprint, db_system, count, errors,
        total_ns, max_ns, p95_ns, first_ns, last_ns, services, endpoints, trace_id,
        span_id, statement, plan, plan_format)``; ``sort`` is a ``SLOW_GROUP_SORTS`` key."""
        clauses = [
            "project_id = ?",
            "start_ns >= ?",
            "start_ns < ?",
            "db_statement IS NOT NULL",
            "duration_ns >= ?",
        ]
        params: list[Any] = [
            _PLAN_PATH,
            _PLAN_FORMAT_PATH,
            project_id,
            start_ns,
            end_ns,
            min_duration_ns,
        ]
        for col, value in (
            ("service", service),
            ("db_system", db_system),
            ("environment", environment),
        ):
            if value is not None:
                clauses.append(f"{col} = ?")
                params.append(value)
        params += [entries_since_ns, project_id]
        params += [_PLAN_PATH, _PLAN_FORMAT_PATH, project_id, start_ns]
        params += [plans_until_ns, f'"{PLAN_ATTR}"']
        having = ""
        if endpoint is not None:
            having = "WHERE endpoint = ?"
            params.append(endpoint)
        params.append(limit)
        sql = _slow_groups_sql(" AND ".join(clauses), having, _SLOW_ORDER[sort])
        return self.sql.read(sql, params)

    # --------------------------------------------------------------------- N+1

    def repeat_findings(
        self,
        project_id: int,
        start_ns: int,
        end_ns: int,
        *,
        min_count: int,
        min_total_ns: int,
        service: str | None,
        endpoint: str | None,
        environment: str | None,
        kind: str | None,
    ) -> list[tuple[Any, ...]]:
        """Repeat groups per service, endpoint, kind and fingerprint: ``(service,
        endpoint, kind, fingerprint, db_system, display, occurrences, calls, max_count,
        total_ns, wasted_ns, trace_id, example_span_id, last_start_ns)``."""
        clauses = ["project_id = ?", "start_ns >= ?", "start_ns < ?", "count >= ?", "total_ns >= ?"]
        params: list[Any] = [project_id, start_ns, end_ns, min_count, min_total_ns]
        for col, value in (
            ("service", service),
            ("endpoint", endpoint),
            ("environment", environment),
            ("kind", kind),
        ):
            if value is not None:
                clauses.append(f"{col} = ?")
                params.append(value)
        return self.sql.read(
            "SELECT service, endpoint, kind, fingerprint, any_value(db_system), any_value(display), "  # noqa: S608 - constants only
            "count(*)::BIGINT, sum(count)::BIGINT, max(count), sum(total_ns)::DOUBLE, "
            "sum(total_ns::DOUBLE * (count - 1) / count), arg_max(trace_id, total_ns), "
            "arg_max(example_span_id, total_ns), max(start_ns) "
            f"FROM n_plus_one WHERE {' AND '.join(clauses)} "
            "GROUP BY service, endpoint, kind, fingerprint",
            params,
        )

    def request_counts(
        self, project_id: int, lo_s: int, hi_s: int, environment: str | None
    ) -> dict[tuple[str, str], int]:
        """Requests per (service, endpoint) from the request rollups."""
        env = " AND environment = ?" if environment is not None else ""
        rows = self.sql.read(
            "SELECT service, endpoint, sum(count)::BIGINT FROM rollup_1m "  # noqa: S608 - constants only
            f"WHERE project_id = ? AND minute_s >= ? AND minute_s < ?{env} GROUP BY ALL",
            [project_id, lo_s, hi_s, *([environment] if environment is not None else [])],
        )
        return {(s, e): int(n) for s, e, n in rows}

    # ------------------------------------------------------- the analysis job

    def query_stat_rollup(self, lo_s: int, entries_since_ns: int) -> pa.Table:
        """The rollup rows of minutes from ``lo_s`` (a minute boundary) on, from raw spans;
        handed back to :meth:`replace_analysis` unchanged."""
        return self.sql.read_arrow(_ROLLUP_SQL, [lo_s * 10**9, entries_since_ns])

    def unnamed_fingerprints(self, since_ns: int) -> list[tuple[int, str, str | None, int]]:
        """``(fingerprint, db_system, a statement, first_seen_ns)`` of fingerprints seen
        since ``since_ns`` that have no readable form yet."""
        return self.sql.read(NEW_FINGERPRINTS_SQL, [since_ns])

    def repeated_queries(self, since_ns: int, lo_ns: int, min_count: int) -> list[tuple[Any, ...]]:
        """Database spans sharing a parent and fingerprint, ``min_count`` or more, grouped,
        the groups starting at or after ``lo_ns``: ``(project_id, start_ns, trace_id,
        parent_id, service, environment, fingerprint, db_system, statement, count,
        total_ns, max_ns, example_span_id)``."""
        return self.sql.read(_DB_GROUPS_SQL, [since_ns, min_count, since_ns, lo_ns])

    def repeated_calls(self, since_ns: int, min_count: int) -> list[tuple[Any, ...]]:
        """Outgoing HTTP client spans under parents with ``min_count`` or more of them:
        ``(project_id, trace_id, parent_id, span_id, start_ns, duration_ns, service,
        environment, method, name, url.full, http.url, server.address, server.port,
        url.path, http.target)``."""
        return self.sql.read(_HTTP_SPANS_SQL, [since_ns, min_count])

    def entry_spans(
        self, since_ns: int, trace_ids: Sequence[bytes]
    ) -> list[tuple[int, bytes, str, int, str]]:
        """``(project_id, trace_id, service, start_ns, endpoint)`` of the entry spans of
        those traces that started at or after ``since_ns``."""
        traces = sorted(set(trace_ids))
        out = []
        for i in range(0, len(traces), _CHUNK):
            chunk = traces[i : i + _CHUNK]
            marks = ", ".join("?" * len(chunk))
            for project_id, _, trace_id, service, start, endpoint in self.sql.read(
                f"{ENTRIES_SQL} AND trace_id IN ({marks})",
                [since_ns, *chunk],
            ):
                out.append((project_id, trace_id, service, start, endpoint))
        return out

    def replace_analysis(
        self,
        lo_s: int,
        rollup: pa.Table,
        fingerprints: Sequence[tuple[int, str, str, int]],
        lo_ns: int,
        groups: Sequence[RepeatGroup],
    ) -> None:
        """In one transaction: the query statistics of minutes from ``lo_s`` on become
        ``rollup``, new fingerprints are named, and the repeat groups starting at or
        after ``lo_ns`` become exactly ``groups``."""

        def write(con: Any) -> None:
            _replace_db_rollup(con, lo_s, rollup)
            _add_fingerprints(con, fingerprints)
            _replace_repeats(con, lo_ns, groups)

        self.sql.write(write, timeout=600)
