"""The slow query log grouped by query shape: one row per fingerprint, not per call.

A slow query tends to be slow every time it runs, so the per-call log fills with the
same statement; grouping answers "which queries are slow, how often, how slow, and why"
(the EXPLAIN plan of any of its slow calls, where Heron's agent recorded one). Reads raw
database spans in the range above the threshold, like the per-call log.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from heron.server.analyze._entry import ENTRIES_SQL, TRACE_KEY_SQL, asof_endpoint_sql
from heron.server.analyze.scrub import PLAN_ATTR
from heron.server.model.span import ERROR_SQL
from heron.server.query._common import NS_PER_MS, InvalidQuery, TimeRange, ms
from heron.server.query._db import (
    _ENTRY_LOOKBACK_NS,
    _PLAN_FORMAT_PATH,
    _PLAN_LAG_NS,
    _PLAN_PATH,
    MAX_DB_LIMIT,
    _displays,
    format_fingerprint,
)
from heron.server.store.base import Store

SLOW_GROUP_SORTS = ("total_time_ms", "count", "max_ms", "p95_ms", "last_seen")


@dataclass(frozen=True, slots=True)
class SlowQueryGroup:
    """Every slow call of one query shape in the range, with its slowest as example."""

    fingerprint: str | None
    """16 hex digits; null for statements the server could not fingerprint."""
    db_system: str | None
    display: str | None
    count: int
    errors: int
    total_time_ms: float
    max_ms: float
    p95_ms: float
    first_seen_ns: int
    last_seen_ns: int
    services: list[str] = field(default_factory=list)
    endpoints: list[str] = field(default_factory=list)
    example_trace_id: str = ""
    """The slowest call's trace (hex) and span (16 hex digits)."""
    example_span_id: str = ""
    statement: str | None = None
    """The slowest call's obfuscated statement."""
    plan: str | None = None
    """The newest EXPLAIN plan recorded for any call of the group, if one was."""
    plan_format: str | None = None


_ORDER = {
    "total_time_ms": "total_ns DESC",
    "count": "n DESC",
    "max_ms": "max_ns DESC",
    "p95_ms": "p95_ns DESC",
    "last_seen": "last_ns DESC",
}


def slow_query_groups(
    store: Store,
    project_id: int,
    time_range: TimeRange,
    *,
    threshold_ms: float = 100.0,
    service: str | None = None,
    endpoint: str | None = None,
    db_system: str | None = None,
    environment: str | None = None,
    sort: str = "total_time_ms",
    limit: int = 100,
) -> list[SlowQueryGroup]:
    """Database calls of at least ``threshold_ms`` grouped by fingerprint, top ``limit``."""
    if threshold_ms < 0:
        raise InvalidQuery("threshold_ms must not be negative")
    if not 1 <= limit <= MAX_DB_LIMIT:
        raise InvalidQuery(f"limit must be between 1 and {MAX_DB_LIMIT} (got {limit})")
    if sort not in _ORDER:
        raise InvalidQuery(f"cannot sort by {sort!r}: use one of {', '.join(SLOW_GROUP_SORTS)}")
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
        time_range.start_ns,
        time_range.end_ns,
        round(threshold_ms * NS_PER_MS),
    ]
    for col, value in (
        ("service", service),
        ("db_system", db_system),
        ("environment", environment),
    ):
        if value is not None:
            clauses.append(f"{col} = ?")
            params.append(value)
    params += [time_range.start_ns - _ENTRY_LOOKBACK_NS, project_id]
    params += [_PLAN_PATH, _PLAN_FORMAT_PATH, project_id, time_range.start_ns]
    params += [time_range.end_ns + _PLAN_LAG_NS, f'"{PLAN_ATTR}"']
    having = ""
    if endpoint is not None:
        having = "WHERE endpoint = ?"
        params.append(endpoint)
    params.append(limit)
    rows = store.read(_sql(" AND ".join(clauses), having, _ORDER[sort]), params)
    names = _displays(store, [r[0] for r in rows if r[0] is not None])
    return [_group(r, names) for r in rows]


def _sql(where: str, endpoint_filter: str, order: str) -> str:
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


def _group(r: Sequence[Any], names: dict[int, tuple[str, str]]) -> SlowQueryGroup:
    fp, system, n, errors, total_ns, max_ns, p95_ns, first, last = r[:9]
    services, endpoints, trace_id, span_id, statement, plan, plan_format = r[9:]
    return SlowQueryGroup(
        fingerprint=format_fingerprint(fp) if fp is not None else None,
        db_system=system,
        display=names[fp][1] if fp in names else None,
        count=int(n),
        errors=int(errors),
        total_time_ms=round(total_ns / NS_PER_MS, 3),
        max_ms=ms(max_ns) or 0.0,
        p95_ms=ms(p95_ns) or 0.0,
        first_seen_ns=first,
        last_seen_ns=last,
        services=list(services),
        endpoints=[e for e in endpoints if e],
        example_trace_id=trace_id.hex(),
        example_span_id=f"{span_id:016x}",
        statement=statement,
        plan=plan,
        plan_format=plan_format if plan is not None else None,
    )
