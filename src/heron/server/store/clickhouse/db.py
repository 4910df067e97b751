"""ClickHouse statements for: database monitoring (query statistics, slow queries, N+1
findings) and the analysis job's reads and writes.

The same questions as ``store/duckdb/db.py``, answered the same way (same rows, same
order, same figures): the endpoint rule is the same ASOF join (among the entry spans of
a span's trace and service that started no later than it, the latest), sums are exact
(``Int128``, then ``Float64`` where DuckDB casts to DOUBLE), and JSON attributes read as
DuckDB's ``json_extract_string`` does (:func:`_json_text`). Values are bound server-side
(``{name:Type}``); only constants of this module and of ``model.span`` are spliced in.

The analysis job's writes are in ``_analysis.py``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import pyarrow as pa

from heron.server.analyze.n_plus_one import MAX_TOTAL_NS, RepeatGroup
from heron.server.analyze.scrub import PLAN_ATTR, PLAN_FORMAT_ATTR
from heron.server.model.span import ENDPOINT_SQL, ENTRY_SQL, ERROR_SQL
from heron.server.store.clickhouse._analysis import AnalysisWriter, read_names
from heron.server.store.clickhouse._client import ChReads

_CHUNK = 1000
_MAX_INT64 = 2**63 - 1

_ENTRIES_SQL = (
    "SELECT project_id, trace_id, service, start_ns AS e_start, "  # noqa: S608 - constants only
    f"{ENDPOINT_SQL} AS endpoint FROM {{db}}.spans WHERE start_ns >= {{since:Int64}} AND {ENTRY_SQL}"
)
# ``c`` (a database span: project_id, trace_id, service, start_ns) with its entry span
# ``e`` (the CTE above): the latest of its trace and service that started no later.
_ASOF = (
    " AS c ASOF LEFT JOIN e ON c.project_id = e.project_id AND c.trace_id = e.trace_id "
    "AND c.service = e.service AND c.start_ns >= e.e_start"
)


def _json_text(column: str, key: str) -> str:
    """DuckDB's ``json_extract_string(column, '$."<key>"')``: a string value unquoted,
    other values as their JSON text, NULL when the key is missing or null. ``key`` is
    the name of a bound String parameter holding one literal key (dots and all)."""
    k = f"{{{key}:String}}"
    return (
        f"if(JSONType({column}, {k}) = 'Null', NULL, if(JSONType({column}, {k}) = 'String', "
        f"JSONExtractString({column}, {k}), JSONExtractRaw({column}, {k})))"
    )


# histogram.bucket_of: 8 buckets per doubling of microseconds, 0..255 (tested equal).
_BUCKET_SQL = (
    "if(duration_ns < 1000, 0, toUInt16(least(floor(log2(duration_ns / 1000.0) * 8), 255)))"
)


def _rows_sql(column: str) -> str:
    # Parsing JSON costs more than a substring test: only spans that name the key pay it.
    return (
        f"if(position(coalesce({column}, ''), 'db.response.returned_rows') > 0, "
        f"toInt64OrNull({_json_text(column, 'rows_key')}), NULL)"
    )


_KEYS = {"rows_key": "db.response.returned_rows"}
_PLAN_KEYS = {"plan_key": PLAN_ATTR, "format_key": PLAN_FORMAT_ATTR, "needle": f'"{PLAN_ATTR}"'}


def _saturated_sum(expr: str) -> str:
    return f"toInt64(least(sum(toInt128({expr})), {_MAX_INT64}))"


_ROLLUP_SQL = f"""
WITH d AS (
    SELECT project_id, trace_id, start_ns, duration_ns, service, environment,
           coalesce(db_system, '') AS d_system, assumeNotNull(db_fingerprint) AS d_fp,
           {ERROR_SQL} AS err, {_rows_sql("attributes")} AS nrows, {_BUCKET_SQL} AS d_bucket
    FROM {{db}}.spans WHERE start_ns >= {{lo_ns:Int64}} AND db_fingerprint IS NOT NULL
), e AS ({_ENTRIES_SQL})
SELECT c.project_id AS project_id, intDiv(c.start_ns, 60000000000) * 60 AS minute_s,
       c.service AS service, c.environment AS environment,
       toString(coalesce(e.endpoint, '')) AS endpoint, toString(c.d_system) AS db_system,
       c.d_fp AS fingerprint, c.d_bucket AS bucket, count() AS count,
       countIf(c.err) AS errors, {_saturated_sum("c.duration_ns")} AS sum_ns,
       max(c.duration_ns) AS max_ns, {_saturated_sum("ifNull(c.nrows, 0)")} AS rows_sum,
       count(c.nrows) AS rows_count
FROM d{_ASOF}
GROUP BY project_id, minute_s, service, environment, endpoint, db_system, fingerprint, bucket
"""  # noqa: S608 - constants only

_NEW_FINGERPRINTS_SQL = """
SELECT assumeNotNull(db_fingerprint) AS fp, any(coalesce(db_system, '')), any(db_statement),
       min(start_ns)
FROM {db}.spans
WHERE start_ns >= {since:Int64} AND db_fingerprint IS NOT NULL
  AND assumeNotNull(db_fingerprint) NOT IN (SELECT fingerprint FROM {db}.sql_fingerprints)
GROUP BY fp
"""

# Two passes, as on DuckDB: the groups of min_count or more from four columns, then only
# their spans in full.
_DB_GROUPS_SQL = f"""
SELECT project_id, min(start_ns) AS first_ns, trace_id, parent_id, any(service),
       any(environment), db_fingerprint, any(db_system), any(db_statement), count(),
       toInt64(least(sum(toInt128(duration_ns)), {MAX_TOTAL_NS})), max(duration_ns),
       argMin(span_id, start_ns)
FROM {{db}}.spans
WHERE start_ns >= {{since:Int64}} AND (project_id, trace_id, parent_id, db_fingerprint) IN (
    SELECT project_id, trace_id, parent_id, db_fingerprint FROM {{db}}.spans
    WHERE start_ns >= {{since:Int64}} AND db_fingerprint IS NOT NULL AND parent_id != 0
    GROUP BY project_id, trace_id, parent_id, db_fingerprint
    HAVING count() >= {{min_count:UInt32}}
)
GROUP BY project_id, trace_id, parent_id, db_fingerprint
HAVING first_ns >= {{lo_ns:Int64}}
"""  # noqa: S608 - constants only

# Outgoing HTTP calls: client spans with a method and no statement, under parents that
# have at least min_count of them; their URLs are templated in Python.
_HTTP_ATTRS = ("url.full", "http.url", "server.address", "server.port", "url.path", "http.target")
_HTTP_WHERE = (
    "start_ns >= {since:Int64} AND kind = 3 AND http_method IS NOT NULL "
    "AND db_statement IS NULL AND parent_id != 0"
)
_HTTP_SPANS_SQL = (
    "SELECT project_id, trace_id, parent_id, span_id, start_ns, duration_ns, service, "  # noqa: S608 - constants only
    "environment, http_method, name, "
    + ", ".join(_json_text("attributes", f"h{i}") for i in range(len(_HTTP_ATTRS)))
    + f" FROM {{db}}.spans WHERE {_HTTP_WHERE} AND (project_id, trace_id, parent_id) IN ("  # noqa: S608 - constants only
    f"SELECT project_id, trace_id, parent_id FROM {{db}}.spans WHERE {_HTTP_WHERE} "
    "GROUP BY project_id, trace_id, parent_id HAVING count() >= {min_count:UInt32})"
)
_HTTP_KEYS = {f"h{i}": key for i, key in enumerate(_HTTP_ATTRS)}

# The groupings the query layer asks for, by name: constant expressions of the columns.
_STAT_KEYS = {"query": ("service", "fingerprint", "db_system"), "endpoint": ("service", "endpoint")}
_STAT_FILTERS = {
    "service": "String",
    "environment": "String",
    "endpoint": "String",
    "db_system": "String",
    "fingerprint": "UInt64",
}
_GROUPED_SQL = (
    "SELECT {outer}, sum(c), sum(e), toFloat64(sum(s)), max(mx), toFloat64(sum(rs)), sum(rn), "
    "arrayMap(x -> x.1, arraySort(groupArray((bucket, c)))), "
    "arrayMap(x -> x.2, arraySort(groupArray((bucket, c)))) FROM ("
    "SELECT {inner}, bucket, sum(count) AS c, sum(errors) AS e, sum(toInt128(sum_ns)) AS s, "
    "max(max_ns) AS mx, sum(toInt128(rows_sum)) AS rs, sum(rows_count) AS rn "
    "FROM {db}.db_rollup_1m FINAL WHERE {where} GROUP BY {outer}, bucket) GROUP BY {outer}"
)

_SLOW_ORDER = {
    "total_time_ms": "total_ns DESC",
    "count": "n DESC",
    "max_ms": "max_ns DESC",
    "p95_ms": "p95_ns DESC",
    "last_seen": "last_ns DESC",
}


def _filters(
    pairs: Iterable[tuple[str, Any, str]], params: dict[str, Any], clauses: list[str]
) -> None:
    """Append ``column = {column:Type}`` for each value given (columns are constants)."""
    for column, value, type_ in pairs:
        if value is not None:
            clauses.append(f"{column} = {{{column}:{type_}}}")
            params[column] = value


def _stat_where(
    project_id: int, lo_s: int, hi_s: int, filters: Mapping[str, Any]
) -> tuple[str, dict[str, Any]]:
    """WHERE over a rollup table; filter columns come from the fixed set above."""
    clauses = ["project_id = {p:UInt32}", "minute_s >= {lo:Int64}", "minute_s < {hi:Int64}"]
    params: dict[str, Any] = {"p": project_id, "lo": lo_s, "hi": hi_s}
    _filters(((c, filters.get(c), t) for c, t in _STAT_FILTERS.items()), params, clauses)
    return " AND ".join(clauses), params


def _slow_groups_sql(where: str, endpoint_filter: str, order: str) -> str:
    """Slow calls (``s``) with their endpoints and their EXPLAIN children's plans, grouped.

    As on DuckDB, a call with several plan children counts once per child. Every part is
    a constant of this module; values are bound parameters."""
    plan, fmt = _json_text("attributes", "plan_key"), _json_text("attributes", "format_key")
    return f"""
        WITH s AS (
            SELECT project_id, trace_id, span_id, start_ns, duration_ns, service, db_system,
                   db_statement, db_fingerprint, {ERROR_SQL} AS error, {plan} AS plan,
                   {fmt} AS plan_format
            FROM {{db}}.spans WHERE {where}
        ), e AS ({_ENTRIES_SQL} AND project_id = {{p:UInt32}} AND trace_id IN (SELECT trace_id FROM s)),
        x AS (
            SELECT trace_id AS x_trace, parent_id AS x_parent, {plan} AS x_plan,
                   {fmt} AS x_format
            FROM {{db}}.spans WHERE project_id = {{p:UInt32}} AND start_ns >= {{lo:Int64}}
              AND start_ns < {{plans_until:Int64}} AND position(coalesce(attributes, ''), {{needle:String}}) > 0
              AND trace_id IN (SELECT trace_id FROM s)
        ), p AS (
            SELECT c.db_fingerprint AS db_fingerprint, c.db_system AS db_system,
                   c.error AS error, c.duration_ns AS duration_ns, c.start_ns AS start_ns,
                   c.service AS service, c.trace_id AS trace_id, c.span_id AS span_id,
                   c.db_statement AS db_statement, toString(coalesce(e.endpoint, '')) AS endpoint,
                   coalesce(c.plan, x.x_plan) AS any_plan,
                   if(c.plan IS NULL, x.x_format, c.plan_format) AS any_format
            FROM s{_ASOF}
            LEFT JOIN x ON x.x_trace = c.trace_id AND x.x_parent = c.span_id
            {endpoint_filter}
        )
        SELECT db_fingerprint, any(db_system), count() AS n, countIf(error),
               toFloat64(sum(toInt128(duration_ns))) AS total_ns, max(duration_ns) AS max_ns,
               arrayElement(arraySort(groupArray(duration_ns)), toUInt64(ceil(count() * 0.95)))
                   AS p95_ns,
               min(start_ns), max(start_ns) AS last_ns, arraySort(groupUniqArray(service)),
               arraySort(groupUniqArray(endpoint)), argMax(trace_id, duration_ns),
               argMax(span_id, duration_ns), argMax(db_statement, duration_ns),
               if(countIf(any_plan IS NOT NULL) > 0,
                  argMaxIf(any_plan, start_ns, any_plan IS NOT NULL), NULL),
               if(countIf(any_plan IS NOT NULL) > 0,
                  argMaxIf(any_format, start_ns, any_plan IS NOT NULL), NULL)
        FROM p GROUP BY db_fingerprint
        ORDER BY {order}, db_fingerprint LIMIT {{limit:UInt32}}
        SETTINGS join_use_nulls = 1
    """  # noqa: S608 - constants only


class ClickHouseDb:
    """Implements ``store.db.DbReader`` on ClickHouse.

    ``reads`` is the store's reader connection; ``writes`` (the analysis job's writes,
    ``_analysis.py``) runs on the writer's client under the lock the span writer also
    takes, so no client is used by two threads."""

    def __init__(self, reads: ChReads, writes: ChReads) -> None:
        self.reads = reads
        self._analysis = AnalysisWriter(writes)

    # ------------------------------------------------------------ query statistics

    def has_query_stats(self) -> bool:
        return bool(self.reads.rows("SELECT 1 FROM {db}.sql_fingerprints LIMIT 1"))

    def fingerprint_names(self, fingerprints: Sequence[int]) -> dict[int, tuple[str, str]]:
        return read_names(self.reads, fingerprints)

    def query_stat_groups(
        self, project_id: int, lo_s: int, hi_s: int, filters: Mapping[str, Any], by: str
    ) -> list[tuple[tuple[Any, ...], tuple[Any, ...]]]:
        where, params = _stat_where(project_id, lo_s, hi_s, filters)
        return self._grouped(_STAT_KEYS[by], where, params)

    def query_stat_series(
        self, project_id: int, lo_s: int, hi_s: int, filters: Mapping[str, Any], step_s: int
    ) -> list[tuple[tuple[Any, ...], tuple[Any, ...]]]:
        where, params = _stat_where(project_id, lo_s, hi_s, filters)
        step = "intDiv(minute_s, {step:Int64}) * {step:Int64}"
        return self._grouped((step,), where, {**params, "step": step_s})

    def _grouped(
        self, keys: Sequence[str], where: str, params: Mapping[str, Any]
    ) -> list[tuple[tuple[Any, ...], tuple[Any, ...]]]:
        """Rows of ``db_rollup_1m`` summed per ``keys`` (constant expressions of its columns)."""
        inner = ", ".join(f"{k} AS k{i}" for i, k in enumerate(keys))
        outer = ", ".join(f"k{i}" for i in range(len(keys)))
        sql = (
            _GROUPED_SQL.replace("{outer}", outer)
            .replace("{inner}", inner)
            .replace("{where}", where)
        )
        rows = self.reads.rows(sql, params)
        n = len(keys)
        return [(tuple(r[:n]), (*r[n:-2], list(r[-2]), list(r[-1]))) for r in rows]

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
        clauses = ["project_id = {p:UInt32}", "minute_s >= {lo:Int64}", "minute_s < {hi:Int64}"]
        params: dict[str, Any] = {"p": project_id, "lo": lo_s, "hi": hi_s}
        _filters(
            (
                ("service", service, "String"),
                ("endpoint", endpoint, "String"),
                ("environment", environment, "String"),
            ),
            params,
            clauses,
        )
        rows = self.reads.rows(
            "SELECT service, endpoint, sum(count), toFloat64(sum(toInt128(sum_ns))) "  # noqa: S608 - constants only
            f"FROM {{db}}.rollup_1m WHERE {' AND '.join(clauses)} GROUP BY service, endpoint",
            params,
        )
        return {(s, e): (int(n), float(t)) for s, e, n, t in rows}

    def request_counts(
        self, project_id: int, lo_s: int, hi_s: int, environment: str | None
    ) -> dict[tuple[str, str], int]:
        """Requests per (service, endpoint) from the request rollups."""
        return {
            key: n
            for key, (n, _) in self.request_time(
                project_id, lo_s, hi_s, service=None, endpoint=None, environment=environment
            ).items()
        }

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
        clauses = [
            "project_id = {p:UInt32}",
            "start_ns >= {lo:Int64}",
            "start_ns < {hi:Int64}",
            "db_statement IS NOT NULL",
        ]
        params: dict[str, Any] = {
            "p": project_id,
            "lo": start_ns,
            "hi": end_ns,
            "since": entries_since_ns,
            "limit": limit,
            **_KEYS,
            **_PLAN_KEYS,
        }
        _filters(
            (
                ("db_fingerprint", fingerprint, "UInt64"),
                ("service", service, "String"),
                ("db_system", db_system, "String"),
                ("environment", environment, "String"),
            ),
            params,
            clauses,
        )
        if min_duration_ns is not None:
            clauses.append("duration_ns >= {min_ns:Int64}")
            params["min_ns"] = min_duration_ns
        # Ties broken by ids, so both reads of ``s`` (it is not materialised) agree.
        by = "start_ns DESC" if newest_first else "duration_ns DESC, start_ns DESC"
        by += ", trace_id, span_id"
        # Without an endpoint filter the limit applies before endpoints are looked up.
        inner_limit = "" if endpoint is not None else f"ORDER BY {by} LIMIT {{limit:UInt32}}"
        outer = ""
        if endpoint is not None:
            outer = "WHERE coalesce(e.endpoint, '') = {endpoint:String}"
            params["endpoint"] = endpoint
        plan, fmt = _json_text("c.attributes", "plan_key"), _json_text("c.attributes", "format_key")
        sql = f"""
            WITH s AS (
                SELECT project_id, trace_id, span_id, start_ns, duration_ns, service,
                       db_system, db_statement, db_fingerprint, {ERROR_SQL} AS error, attributes
                FROM {{db}}.spans WHERE {" AND ".join(clauses)} {inner_limit}
            ), e AS ({_ENTRIES_SQL} AND project_id = {{p:UInt32}} AND trace_id IN (SELECT trace_id FROM s)),
            f AS (
                SELECT fingerprint AS f_fp, argMin(display, first_seen_ns) AS display
                FROM {{db}}.sql_fingerprints GROUP BY fingerprint
            )
            SELECT c.trace_id, c.span_id, c.start_ns, c.duration_ns, c.service,
                   toString(coalesce(e.endpoint, '')), c.db_system, c.db_fingerprint, f.display,
                   c.db_statement, {_rows_sql("c.attributes")}, c.error, {plan}, {fmt}
            FROM s{_ASOF}
            LEFT JOIN f ON f.f_fp = c.db_fingerprint
            {outer}
            ORDER BY {", ".join("c." + part for part in by.split(", "))}
            LIMIT {{limit:UInt32}}
            SETTINGS join_use_nulls = 1
        """  # noqa: S608 - constants only
        return [(bytes(r[0]), *r[1:11], bool(r[11]), *r[12:]) for r in self.reads.rows(sql, params)]

    def child_plans(
        self, project_id: int, since_ns: int, until_ns: int, trace_ids: Sequence[bytes]
    ) -> list[tuple[bytes, int, str | None, str | None]]:
        """``(trace_id, parent_id, plan, plan_format)`` of the spans recording a plan (the
        EXPLAIN children Heron's agent adds) in those traces."""
        if not trace_ids:
            return []
        plan, fmt = _json_text("attributes", "plan_key"), _json_text("attributes", "format_key")
        rows = self.reads.rows(
            f"SELECT trace_id, parent_id, {plan}, {fmt} FROM {{db}}.spans "  # noqa: S608 - constants only
            "WHERE project_id = {p:UInt32} AND start_ns >= {lo:Int64} AND start_ns < {hi:Int64} "
            "AND position(coalesce(attributes, ''), {needle:String}) > 0 "
            "AND trace_id IN {ids:Array(FixedString(16))}",
            {
                "p": project_id,
                "lo": since_ns,
                "hi": until_ns,
                "ids": list(trace_ids),
                **_PLAN_KEYS,
            },
        )
        return [(bytes(t), p, plan_, fmt_) for t, p, plan_, fmt_ in rows]

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
            "project_id = {p:UInt32}",
            "start_ns >= {lo:Int64}",
            "start_ns < {hi:Int64}",
            "db_statement IS NOT NULL",
            "duration_ns >= {min_ns:Int64}",
        ]
        params: dict[str, Any] = {
            "p": project_id,
            "lo": start_ns,
            "hi": end_ns,
            "min_ns": min_duration_ns,
            "since": entries_since_ns,
            "plans_until": plans_until_ns,
            "limit": limit,
            **_PLAN_KEYS,
        }
        _filters(
            (
                ("service", service, "String"),
                ("db_system", db_system, "String"),
                ("environment", environment, "String"),
            ),
            params,
            clauses,
        )
        having = ""
        if endpoint is not None:
            having = "WHERE endpoint = {endpoint:String}"
            params["endpoint"] = endpoint
        sql = _slow_groups_sql(" AND ".join(clauses), having, _SLOW_ORDER[sort])
        return [
            (*r[:9], list(r[9]), list(r[10]), bytes(r[11]), *r[12:])
            for r in self.reads.rows(sql, params)
        ]

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
        clauses = [
            "project_id = {p:UInt32}",
            "start_ns >= {lo:Int64}",
            "start_ns < {hi:Int64}",
            "count >= {min_count:UInt32}",
            "total_ns >= {min_total:Int64}",
        ]
        params: dict[str, Any] = {
            "p": project_id,
            "lo": start_ns,
            "hi": end_ns,
            "min_count": min_count,
            "min_total": min_total_ns,
        }
        _filters(
            (
                ("service", service, "String"),
                ("endpoint", endpoint, "String"),
                ("environment", environment, "String"),
                ("kind", kind, "String"),
            ),
            params,
            clauses,
        )
        rows = self.reads.rows(
            "SELECT service, endpoint, kind, fingerprint, any(db_system), any(display), "  # noqa: S608 - constants only
            "count(), sum(count), max(count), toFloat64(sum(toInt128(total_ns))), "
            "sum(toFloat64(total_ns) * (count - 1) / count), argMax(trace_id, total_ns), "
            "argMax(example_span_id, total_ns), max(start_ns) "
            f"FROM {{db}}.n_plus_one FINAL WHERE {' AND '.join(clauses)} "
            "GROUP BY service, endpoint, kind, fingerprint",
            params,
        )
        return [(*r[:11], bytes(r[11]), *r[12:]) for r in rows]

    # ------------------------------------------------------- the analysis job

    def query_stat_rollup(self, lo_s: int, entries_since_ns: int) -> pa.Table:
        """The rollup rows of minutes from ``lo_s`` (a minute boundary) on, from raw spans;
        handed back to :meth:`replace_analysis` unchanged."""
        return self.reads.arrow(
            _ROLLUP_SQL, {"lo_ns": lo_s * 10**9, "since": entries_since_ns, **_KEYS}
        )

    def unnamed_fingerprints(self, since_ns: int) -> list[tuple[int, str, str | None, int]]:
        """``(fingerprint, db_system, a statement, first_seen_ns)`` of fingerprints seen
        since ``since_ns`` that have no readable form yet."""
        return self.reads.rows(_NEW_FINGERPRINTS_SQL, {"since": since_ns})

    def repeated_queries(self, since_ns: int, lo_ns: int, min_count: int) -> list[tuple[Any, ...]]:
        """Database spans sharing a parent and fingerprint, ``min_count`` or more, grouped,
        the groups starting at or after ``lo_ns``: ``(project_id, start_ns, trace_id,
        parent_id, service, environment, fingerprint, db_system, statement, count,
        total_ns, max_ns, example_span_id)``."""
        rows = self.reads.rows(
            _DB_GROUPS_SQL, {"since": since_ns, "lo_ns": lo_ns, "min_count": min_count}
        )
        return [(r[0], r[1], bytes(r[2]), *r[3:]) for r in rows]

    def repeated_calls(self, since_ns: int, min_count: int) -> list[tuple[Any, ...]]:
        """Outgoing HTTP client spans under parents with ``min_count`` or more of them:
        ``(project_id, trace_id, parent_id, span_id, start_ns, duration_ns, service,
        environment, method, name, url.full, http.url, server.address, server.port,
        url.path, http.target)``."""
        rows = self.reads.rows(
            _HTTP_SPANS_SQL, {"since": since_ns, "min_count": min_count, **_HTTP_KEYS}
        )
        return [(r[0], bytes(r[1]), *r[2:]) for r in rows]

    def entry_spans(
        self, since_ns: int, trace_ids: Sequence[bytes]
    ) -> list[tuple[int, bytes, str, int, str]]:
        """``(project_id, trace_id, service, start_ns, endpoint)`` of the entry spans of
        those traces that started at or after ``since_ns``."""
        traces = sorted(set(trace_ids))
        out = []
        for i in range(0, len(traces), _CHUNK):
            rows = self.reads.rows(
                f"{_ENTRIES_SQL} AND trace_id IN {{ids:Array(FixedString(16))}}",
                {"since": since_ns, "ids": traces[i : i + _CHUNK]},
            )
            out += [(p, bytes(t), svc, start, endpoint) for p, t, svc, start, endpoint in rows]
        return out

    def replace_analysis(
        self,
        lo_s: int,
        rollup: pa.Table,
        fingerprints: Sequence[tuple[int, str, str, int]],
        lo_ns: int,
        groups: Sequence[RepeatGroup],
    ) -> None:
        """The query statistics of minutes from ``lo_s`` on become ``rollup``, new
        fingerprints are named, and the repeat groups starting at or after ``lo_ns``
        become exactly ``groups`` (see ``_analysis.py``: readers never count a window
        twice)."""
        self._analysis.replace(lo_s, rollup, fingerprints, lo_ns, groups)

    # ------------------------------------------------------------------- upkeep

    def prune_fingerprints(self, first_seen_before_ns: int) -> int:
        """Drop the names of fingerprints no query statistic uses any more that were first
        seen before ``first_seen_before_ns`` (as DuckDB's upkeep); returns how many."""
        return self._analysis.prune_fingerprints(first_seen_before_ns)
