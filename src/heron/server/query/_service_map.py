"""The service map: which services call which, derived from parent/child spans.

An edge A → B exists when a span of service B has its parent in service A (the usual
shape: A's client span, B's server span). Its figures describe B's spans of those calls:
rate, error share and p95 duration.

Cost control: children are entry spans (server/consumer) with a parent; both sides are
bounded by start time (the parent's with some slack, since a parent starts before its
children), so the store skips spans outside the range. The join on (trace id, span
id) still costs about 40 ms per hour of spans at 10M spans a day, so ranges over an hour
are sampled rather than read whole. Parents that started more than ``PARENT_SLACK_NS``
before their child are not found.
"""

from __future__ import annotations

from dataclasses import dataclass

from heron.server.query._common import NS_PER_MIN, TimeRange, ms
from heron.server.store.base import Store
from heron.server.store.red import EdgeRow

# A parent may start this long before its child and still be found.
PARENT_SLACK_NS = 5 * NS_PER_MIN
# Ranges longer than this are sampled: SAMPLES slices of SAMPLE_NS spread evenly, newest
# first, so the cost stays that of about one hour whatever the range.
EXACT_UP_TO_NS = 60 * NS_PER_MIN
SAMPLES = 12
SAMPLE_NS = 5 * NS_PER_MIN


@dataclass(frozen=True, slots=True)
class MapEdge:
    caller: str
    callee: str
    calls: int
    """Calls in the range (estimated from the samples when the map is sampled)."""
    rpm: float
    """Calls per minute over the minutes the edge was seen: from the minute of its first
    call in the range (of the samples read, when sampled) to the range's end."""
    errors: int
    error_rate: float
    p95_ms: float | None


@dataclass(frozen=True, slots=True)
class ServiceMap:
    services: list[str]
    """Every service that appears on an edge, sorted by name."""
    edges: list[MapEdge]
    """Sorted by calls, busiest first."""
    sampled_minutes: float | None = None
    """Minutes of the range actually read when the map is sampled; None when exact."""


def _slices(time_range: TimeRange) -> list[tuple[int, int]]:
    start, end = time_range.start_ns, time_range.end_ns
    if end - start <= EXACT_UP_TO_NS:
        return [(start, end)]
    step = (end - start) // SAMPLES
    # step ≥ SAMPLE_NS + PARENT_SLACK_NS here, so parent windows never overlap.
    return [(end - i * step - SAMPLE_NS, end - i * step) for i in range(SAMPLES)]


def service_map(
    store: Store,
    project_id: int,
    time_range: TimeRange,
    *,
    environment: str | None = None,
) -> ServiceMap:
    """Calls between services in the range (by the callee's span start).

    Ranges up to an hour are read whole; longer ones from evenly spread samples (see
    ``SAMPLES``), with counts scaled to the range and rates, error shares and p95 taken
    from the samples.
    """
    slices = _slices(time_range)
    edges = [
        _edge(row, time_range, slices)
        for row in store.red.call_edges(project_id, slices, PARENT_SLACK_NS, environment)
    ]
    services = sorted({e.caller for e in edges} | {e.callee for e in edges})
    read_minutes = sum(hi - lo for lo, hi in slices) / NS_PER_MIN
    return ServiceMap(services, edges, None if len(slices) == 1 else read_minutes)


def _edge(row: EdgeRow, time_range: TimeRange, slices: list[tuple[int, int]]) -> MapEdge:
    """An edge's figures over the minutes it was seen: from the minute of its first call
    in the range to the range's end, like the services table, so an edge that started
    three minutes ago is not averaged over the whole range."""
    caller, callee, calls, errors, p95_ns, first_ns = row
    since = max(first_ns // NS_PER_MIN * NS_PER_MIN, time_range.start_ns)
    read_ns = sum(max(hi - max(lo, since), 0) for lo, hi in slices)
    rpm = calls / max(read_ns / NS_PER_MIN, 1.0)
    scale = max((time_range.end_ns - since) / NS_PER_MIN, 1.0) * rpm / calls if calls else 0.0
    return MapEdge(
        caller=caller,
        callee=callee,
        calls=round(calls * scale),
        rpm=round(rpm, 3),
        errors=round(errors * scale),
        error_rate=errors / calls if calls else 0.0,
        p95_ms=ms(p95_ns),
    )
