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

from heron.server.query._common import NS_PER_MS, InvalidQuery, TimeRange, ms
from heron.server.query._db import (
    _ENTRY_LOOKBACK_NS,
    _PLAN_LAG_NS,
    MAX_DB_LIMIT,
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
    if sort not in SLOW_GROUP_SORTS:
        raise InvalidQuery(f"cannot sort by {sort!r}: use one of {', '.join(SLOW_GROUP_SORTS)}")
    rows = store.db.slow_query_groups(
        project_id,
        time_range.start_ns,
        time_range.end_ns,
        min_duration_ns=round(threshold_ms * NS_PER_MS),
        entries_since_ns=time_range.start_ns - _ENTRY_LOOKBACK_NS,
        plans_until_ns=time_range.end_ns + _PLAN_LAG_NS,
        service=service,
        endpoint=endpoint,
        db_system=db_system,
        environment=environment,
        sort=sort,
        limit=limit,
    )
    names = store.db.fingerprint_names([r[0] for r in rows if r[0] is not None])
    return [_group(r, names) for r in rows]


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
