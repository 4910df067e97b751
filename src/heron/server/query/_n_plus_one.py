"""N+1 findings: repeat groups (see ``heron.server.analyze.n_plus_one``) per endpoint.

A repeat group is a finding when it has at least ``min_count`` spans that took at least
``min_total_ms`` together. Findings are grouped per service, endpoint and fingerprint,
with how often it happened, the time spent and wasted, and the worst trace as example.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from heron.server.analyze.n_plus_one import DEFAULT_MIN_COUNT, DEFAULT_MIN_TOTAL_MS
from heron.server.query._common import NS_PER_MS, InvalidQuery, TimeRange, ms
from heron.server.store.base import Store

N_PLUS_ONE_SORTS = ("wasted_time_ms", "total_time_ms", "occurrences", "calls", "last_seen_ns")
MAX_FINDINGS = 1000

Kind = Literal["any", "db", "http"]


@dataclass(frozen=True, slots=True)
class NPlusOneFinding:
    """One query (or outgoing call) repeated under one parent, per service and endpoint."""

    service: str
    endpoint: str
    kind: str
    """``db`` (a SQL fingerprint) or ``http`` (``METHOD url-template`` of a client call)."""
    fingerprint: str
    db_system: str | None
    display: str
    occurrences: int
    """Times it happened: one per trace and parent span."""
    requests: int | None
    """Requests to the endpoint in the range (entry spans), for scale."""
    calls: int
    avg_repeats: float
    max_repeats: int
    total_time_ms: float
    wasted_time_ms: float
    """Time beyond one call per occurrence: ``total × (n - 1) / n``, summed."""
    example_trace_id: str
    example_span_id: str
    """The first repeated span of the occurrence that took longest."""
    last_seen_ns: int


def n_plus_one_findings(
    store: Store,
    project_id: int,
    time_range: TimeRange,
    *,
    service: str | None = None,
    endpoint: str | None = None,
    kind: Kind = "any",
    environment: str | None = None,
    min_count: int = DEFAULT_MIN_COUNT,
    min_total_ms: float = DEFAULT_MIN_TOTAL_MS,
    sort: str = "wasted_time_ms",
    limit: int = 100,
) -> list[NPlusOneFinding]:
    """Findings whose occurrences started in the range, most wasted time first."""
    if kind not in ("any", "db", "http"):
        raise InvalidQuery(f"kind must be any, db or http (got {kind!r})")
    if sort not in N_PLUS_ONE_SORTS:
        raise InvalidQuery(f"cannot sort by {sort!r}: use one of {', '.join(N_PLUS_ONE_SORTS)}")
    if not 1 <= limit <= MAX_FINDINGS:
        raise InvalidQuery(f"limit must be between 1 and {MAX_FINDINGS} (got {limit})")
    if min_count < 2 or min_total_ms < 0:
        raise InvalidQuery("min_count must be at least 2 and min_total_ms not negative")
    rows = store.db.repeat_findings(
        project_id,
        time_range.start_ns,
        time_range.end_ns,
        min_count=min_count,
        min_total_ns=round(min_total_ms * NS_PER_MS),
        service=service,
        endpoint=endpoint,
        environment=environment,
        kind=None if kind == "any" else kind,
    )
    requests = _requests(store, project_id, time_range, environment)
    found = [_finding(r, requests) for r in rows]
    found.sort(key=lambda f: (f.service, f.endpoint, f.display))
    found.sort(key=lambda f: getattr(f, sort), reverse=True)
    return found[:limit]


def _requests(
    store: Store, project_id: int, time_range: TimeRange, environment: str | None
) -> dict[tuple[str, str], int]:
    lo, hi = time_range.minute_bounds()
    return store.db.request_counts(project_id, lo, hi, environment)


def _finding(r: tuple[Any, ...], requests: dict[tuple[str, str], int]) -> NPlusOneFinding:
    (svc, ep, kind, fp, system, display, occ, calls, mx, total, wasted, trace, span, last) = r
    return NPlusOneFinding(
        service=svc,
        endpoint=ep,
        kind=kind,
        fingerprint=f"{fp:016x}",
        db_system=system,
        display=display,
        occurrences=int(occ),
        requests=requests.get((svc, ep)),
        calls=int(calls),
        avg_repeats=round(calls / occ, 2),
        max_repeats=int(mx),
        total_time_ms=ms(total) or 0.0,
        wasted_time_ms=ms(wasted) or 0.0,
        example_trace_id=trace.hex(),
        example_span_id=f"{span:016x}",
        last_seen_ns=int(last),
    )
