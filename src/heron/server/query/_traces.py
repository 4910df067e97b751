"""Trace search: find traces having one span that matches every filter.

The time range bounds ``start_ns`` so DuckDB's zone maps skip row groups outside it.
Attribute filters use a lifted column when the key is one of its semantic-convention
names (old or current), else ``json_extract_string`` with the key as a bound JSON
pointer, which quotes any key (dots, quotes, slashes) correctly.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from heron.server.model.span import ERROR_SQL
from heron.server.query._common import NS_PER_MS, InvalidQuery, TimeRange, ms
from heron.server.semconv import (
    DB_STATEMENT_KEYS,
    DB_SYSTEM_KEYS,
    ENVIRONMENT_KEYS,
    HTTP_METHOD_KEYS,
    HTTP_ROUTE_KEYS,
    HTTP_STATUS_KEYS,
)
from heron.server.store.base import Store

MAX_TRACE_LIMIT = 1000
# How many matching spans the first, cheap pass reads per wanted trace; it grows
# geometrically while spans of few traces fill the window.
_SPANS_PER_TRACE_GUESS = 16
_MAX_WINDOW = 200_000
_MIN_SLICE_NS = 60 * 10**9

# Attribute names stored in a column rather than in the attributes JSON.
_COLUMN_OF_KEY: dict[str, str] = {
    **dict.fromkeys(HTTP_METHOD_KEYS, "http_method"),
    **dict.fromkeys(HTTP_ROUTE_KEYS, "http_route"),
    **dict.fromkeys(HTTP_STATUS_KEYS, "http_status"),
    **dict.fromkeys(DB_SYSTEM_KEYS, "db_system"),
    **dict.fromkeys(DB_STATEMENT_KEYS, "db_statement"),
    **dict.fromkeys(ENVIRONMENT_KEYS, "environment"),
    "service.name": "service",
    "service.version": "release",
}

Status = Literal["any", "ok", "error"]


@dataclass(frozen=True, slots=True)
class AttrFilter:
    """``key = value`` on a span attribute (or resource attribute), compared as text."""

    key: str
    value: str

    @classmethod
    def parse(cls, text: str) -> AttrFilter:
        """Parse ``key=value``; the key is everything before the first ``=``."""
        key, sep, value = text.partition("=")
        if not sep or not key:
            raise InvalidQuery(f"attr must look like key=value (got {text!r})")
        return cls(key, value)


@dataclass(frozen=True, slots=True)
class TraceQuery:
    """Filters that one span of a trace must all match."""

    service: str | None = None
    endpoint: str | None = None
    min_duration_ms: float | None = None
    max_duration_ms: float | None = None
    status: Status = "any"
    attributes: Sequence[AttrFilter] = ()
    environment: str | None = None
    limit: int = 50

    def __post_init__(self) -> None:
        if not 1 <= self.limit <= MAX_TRACE_LIMIT:
            raise InvalidQuery(f"limit must be between 1 and {MAX_TRACE_LIMIT} (got {self.limit})")
        if self.status not in ("any", "ok", "error"):
            raise InvalidQuery(f"status must be any, ok or error (got {self.status!r})")
        lo, hi = self.min_duration_ms, self.max_duration_ms
        if (lo is not None and lo < 0) or (hi is not None and hi < 0):
            raise InvalidQuery("min_duration_ms and max_duration_ms must not be negative")
        if lo is not None and hi is not None and lo > hi:
            raise InvalidQuery("min_duration_ms must not exceed max_duration_ms")


@dataclass(frozen=True, slots=True)
class SpanMatch:
    """The span that made a trace match (the earliest matching one seen)."""

    span_id: str
    service: str
    name: str
    start_ns: int
    duration_ms: float


@dataclass(frozen=True, slots=True)
class TraceSummary:
    trace_id: str
    start_ns: int
    duration_ms: float
    root_service: str
    root_name: str
    span_count: int
    error: bool
    services: list[str] = field(default_factory=list)
    match: SpanMatch | None = None


def _verbatim_in_json(text: str) -> bool:
    """Whether ``text`` appears unescaped in the stored JSON (orjson escapes only these)."""
    return not any(ch in ('"', "\\") or ch < " " for ch in text)


def _json_attr_clause(column: str, key: str, value: str) -> tuple[str, list[Any]]:
    # RFC 6901 pointer: only '~' and '/' need escaping, so any key is addressable.
    pointer = "/" + key.replace("~", "~0").replace("/", "~1")
    clause, params = f"json_extract_string({column}, ?) = ?", [pointer, value]
    if _verbatim_in_json(key) and _verbatim_in_json(value):
        # A cheap substring test first: the JSON text must contain both verbatim.
        clause = f"contains({column}, ?) AND contains({column}, ?) AND {clause}"
        params = [key, value, *params]
    return f"({clause})", params


def _attr_clause(f: AttrFilter) -> tuple[str, list[Any]]:
    column = _COLUMN_OF_KEY.get(f.key)
    if column == "http_status":
        return "http_status = TRY_CAST(? AS INTEGER)", [f.value]
    if column is not None:
        return f"{column} = ?", [f.value]
    span_clause, span_params = _json_attr_clause("attributes", f.key, f.value)
    res_clause, res_params = _json_attr_clause("resource", f.key, f.value)
    return f"({span_clause} OR {res_clause})", [*span_params, *res_params]


def _endpoint_clause(endpoint: str) -> tuple[str, list[Any]]:
    """Endpoint as the rollups name it (``METHOD route``), a bare route, or a span name."""
    clause, params = "(http_route = ? OR name = ?", [endpoint, endpoint]
    method, sep, route = endpoint.partition(" ")
    if sep and route:
        clause += " OR (http_method = ? AND http_route = ?)"
        params += [method, route]
    return clause + ")", params


def _span_filter(q: TraceQuery) -> tuple[str, list[Any]]:
    """Conditions on one span besides project and time; constant SQL, values bound."""
    clauses: list[str] = []
    params: list[Any] = []
    if q.service is not None:
        clauses.append("service = ?")
        params.append(q.service)
    if q.environment is not None:
        clauses.append("environment = ?")
        params.append(q.environment)
    if q.endpoint is not None:
        clause, p = _endpoint_clause(q.endpoint)
        clauses.append(clause)
        params += p
    if q.min_duration_ms is not None:
        clauses.append("duration_ns >= ?")
        params.append(round(q.min_duration_ms * NS_PER_MS))
    if q.max_duration_ms is not None:
        clauses.append("duration_ns <= ?")
        params.append(round(q.max_duration_ms * NS_PER_MS))
    if q.status == "error":
        clauses.append(ERROR_SQL)
    elif q.status == "ok":
        clauses.append(f"NOT {ERROR_SQL}")
    for f in q.attributes:
        clause, p = _attr_clause(f)
        clauses.append(clause)
        params += p
    return " AND ".join(clauses) or "true", params


class _Matcher:
    """Finds the newest traces having a matching span, scanning newest time slices first.

    Slices start at 1/64 of the range and double, so a query that matches recent spans
    stops early, while one that matches little costs about one scan of the range. Within
    a slice a cheap top-N reads the newest matching spans, widening its window until it
    holds enough distinct traces.
    """

    def __init__(
        self, store: Store, project_id: int, where: str, params: list[Any], limit: int
    ) -> None:
        self.store = store
        self.sql = (
            "SELECT trace_id, span_id, service, name, start_ns, duration_ns FROM spans "  # noqa: S608 - constants only
            f"WHERE project_id = ? AND start_ns >= ? AND start_ns < ? AND {where} "
            "ORDER BY start_ns DESC LIMIT ?"
        )
        self.project_id = project_id
        self.params = params
        self.limit = limit
        self.found: dict[bytes, SpanMatch] = {}

    def run(self, time_range: TimeRange) -> dict[bytes, SpanMatch]:
        width = max((time_range.end_ns - time_range.start_ns) // 64, _MIN_SLICE_NS)
        hi = time_range.end_ns
        while hi > time_range.start_ns and len(self.found) < self.limit:
            lo = max(time_range.start_ns, hi - width)
            self._slice(lo, hi)
            hi, width = lo, width * 2
        return self.found

    def _slice(self, lo: int, hi: int) -> None:
        before = dict(self.found)
        window = (self.limit - len(before)) * _SPANS_PER_TRACE_GUESS
        while True:
            rows = self.store.read(self.sql, [self.project_id, lo, hi, *self.params, window])
            self.found = dict(before)
            self._add(rows)
            if len(self.found) >= self.limit or len(rows) < window or window >= _MAX_WINDOW:
                return
            window = min(window * 8, _MAX_WINDOW)

    def _add(self, rows: list[tuple[Any, ...]]) -> None:
        found, limit = self.found, self.limit
        for trace_id, span_id, service, name, start_ns, duration_ns in rows:
            if trace_id not in found and len(found) >= limit:
                continue
            # Rows are newest first, so a later row is an earlier span of the trace.
            found[trace_id] = SpanMatch(
                f"{span_id:016x}", service, name, start_ns, ms(duration_ns) or 0.0
            )


def _summaries(store: Store, project_id: int, trace_ids: list[bytes]) -> list[dict[str, Any]]:
    marks = ", ".join("?" * len(trace_ids))
    # The root is the span without a parent, else the earliest span (partial traces).
    return store.read_dicts(
        "SELECT trace_id, min(start_ns) AS start_ns, "  # noqa: S608 - constants only
        "max(start_ns + duration_ns) AS end_ns, count(*) AS span_count, "
        f"bool_or({ERROR_SQL}) AS error, list(DISTINCT service ORDER BY service) AS services, "
        "arg_min(service, {'r': parent_id <> 0, 's': start_ns}) AS root_service, "
        "arg_min(name, {'r': parent_id <> 0, 's': start_ns}) AS root_name "
        f"FROM spans WHERE trace_id IN ({marks}) AND project_id = ? GROUP BY trace_id",
        [*trace_ids, project_id],
    )


def search_traces(
    store: Store, project_id: int, time_range: TimeRange, query: TraceQuery
) -> list[TraceSummary]:
    """Traces, newest first, having a span in the range that matches every filter."""
    where, params = _span_filter(query)
    matches = _Matcher(store, project_id, where, params, query.limit).run(time_range)
    if not matches:
        return []
    out = [
        TraceSummary(
            trace_id=r["trace_id"].hex(),
            start_ns=r["start_ns"],
            duration_ms=ms(r["end_ns"] - r["start_ns"]) or 0.0,
            root_service=r["root_service"],
            root_name=r["root_name"],
            span_count=r["span_count"],
            error=bool(r["error"]),
            services=list(r["services"]),
            match=matches[r["trace_id"]],
        )
        for r in _summaries(store, project_id, list(matches))
    ]
    out.sort(key=lambda t: (t.start_ns, t.trace_id), reverse=True)
    return out
