"""Trace search: find traces having one span that matches every filter.

The store answers "the newest matching spans in a time slice" (``TraceReader``); this
module decides which slices to ask for and how many spans to read per trace.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from heron.server.query._common import NS_PER_MS, InvalidQuery, TimeRange, ms
from heron.server.store.base import Store
from heron.server.store.traces import MatchRow, SpanFilter

MAX_TRACE_LIMIT = 1000
# How many matching spans the first, cheap pass reads per wanted trace; it grows
# geometrically while spans of few traces fill the window.
_SPANS_PER_TRACE_GUESS = 16
_MAX_WINDOW = 200_000
_MIN_SLICE_NS = 60 * 10**9

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


def _span_filter(q: TraceQuery) -> SpanFilter:
    """The storage filter for one span of a matching trace."""
    lo, hi = q.min_duration_ms, q.max_duration_ms
    return SpanFilter(
        service=q.service,
        environment=q.environment,
        endpoint=q.endpoint,
        min_duration_ns=None if lo is None else round(lo * NS_PER_MS),
        max_duration_ns=None if hi is None else round(hi * NS_PER_MS),
        status=q.status,
        attributes=tuple((f.key, f.value) for f in q.attributes),
    )


class _Matcher:
    """Finds the newest traces having a matching span, scanning newest time slices first.

    Slices start at 1/64 of the range and double, so a query that matches recent spans
    stops early, while one that matches little costs about one scan of the range. Within
    a slice a cheap top-N reads the newest matching spans, widening its window until it
    holds enough distinct traces.
    """

    def __init__(self, store: Store, project_id: int, span_filter: SpanFilter, limit: int) -> None:
        self.traces = store.traces
        self.project_id = project_id
        self.filter = span_filter
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
            rows = self.traces.matching_spans(self.project_id, lo, hi, self.filter, window)
            self.found = dict(before)
            self._add(rows)
            if len(self.found) >= self.limit or len(rows) < window or window >= _MAX_WINDOW:
                return
            window = min(window * 8, _MAX_WINDOW)

    def _add(self, rows: list[MatchRow]) -> None:
        found, limit = self.found, self.limit
        for trace_id, span_id, service, name, start_ns, duration_ns in rows:
            if trace_id not in found and len(found) >= limit:
                continue
            # Rows are newest first, so a later row is an earlier span of the trace.
            found[trace_id] = SpanMatch(
                f"{span_id:016x}", service, name, start_ns, ms(duration_ns) or 0.0
            )


def search_traces(
    store: Store, project_id: int, time_range: TimeRange, query: TraceQuery
) -> list[TraceSummary]:
    """Traces, newest first, having a span in the range that matches every filter."""
    matches = _Matcher(store, project_id, _span_filter(query), query.limit).run(time_range)
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
        for r in store.traces.trace_summaries(project_id, list(matches))
    ]
    out.sort(key=lambda t: (t.start_ns, t.trace_id), reverse=True)
    return out
