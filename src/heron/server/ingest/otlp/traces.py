"""Span-specific conversion shared by every span decoder (the reference decoders, the
wire decoder, Sentry tracing): validation and lifting well-known attributes.
"""

from __future__ import annotations

from typing import Any

from heron.server.ingest.limits import time_in_range
from heron.server.ingest.otlp.common import ResourceInfo, as_int, first_value, pb_attrs
from heron.server.model.span import Span
from heron.server.semconv import (
    DB_STATEMENT_KEYS,
    DB_SYSTEM_KEYS,
    HTTP_METHOD_KEYS,
    HTTP_ROUTE_KEYS,
    HTTP_STATUS_KEYS,
    LIFTED_KEYS,
)


def check_span(
    trace_id: bytes, span_id: bytes, parent_id: bytes, start_ns: int, end_ns: int, kind: int
) -> None:
    """Raise ValueError naming the first invalid id, time or kind."""
    if len(trace_id) != 16 or not any(trace_id):
        raise ValueError("traceId must be 16 bytes and not all zero")
    if len(span_id) != 8 or not any(span_id):
        raise ValueError("spanId must be 8 bytes and not all zero")
    if parent_id and len(parent_id) != 8:
        raise ValueError("parentSpanId must be empty or 8 bytes")
    if start_ns <= 0 or end_ns < start_ns:
        raise ValueError("endTimeUnixNano must not be before startTimeUnixNano (both > 0)")
    time_in_range(end_ns, "endTimeUnixNano")
    if not 0 <= kind <= 5:
        raise ValueError(f"unknown span kind {kind}")


def build_span(
    res: ResourceInfo,
    scope: str,
    trace_id: bytes,
    span_id: bytes,
    parent_id: bytes,
    start_ns: int,
    end_ns: int,
    name: str,
    kind: int,
    status: int,
    status_message: str,
    attrs: dict[str, Any],
    events: list[dict[str, Any]],
    links: list[dict[str, Any]],
) -> Span:
    """Validate ids/times and lift well-known attributes; raise ValueError if invalid."""
    if res.error:
        raise ValueError(res.error)
    check_span(trace_id, span_id, parent_id, start_ns, end_ns, kind)
    check_events(events)
    method = first_value(attrs, HTTP_METHOD_KEYS)
    route = first_value(attrs, HTTP_ROUTE_KEYS)
    statement = first_value(attrs, DB_STATEMENT_KEYS)
    db_system = first_value(attrs, DB_SYSTEM_KEYS)
    http_status = as_int(first_value(attrs, HTTP_STATUS_KEYS))
    if http_status is not None and not 0 <= http_status <= 65535:
        http_status = None
    rest = {k: v for k, v in attrs.items() if k not in LIFTED_KEYS}
    return Span(
        trace_id=trace_id,
        span_id=int.from_bytes(span_id, "big"),
        parent_id=int.from_bytes(parent_id, "big") if parent_id else 0,
        start_ns=start_ns,
        duration_ns=end_ns - start_ns,
        name=name,
        kind=kind,
        status=status if status in (0, 1, 2) else 0,
        status_message=status_message,
        service=res.service,
        environment=res.environment,
        release=res.release,
        http_method=str(method) if method is not None else None,
        http_route=str(route) if route is not None else None,
        http_status=http_status,
        db_system=str(db_system) if db_system is not None else None,
        db_statement=str(statement) if statement is not None else None,
        attributes=rest,
        resource=res.attributes,
        events=events,
        links=links,
        scope=scope,
    )


def check_events(events: list[dict[str, Any]]) -> None:
    for e in events:
        time_in_range(e["time_ns"], "events.timeUnixNano")


def pb_events_links(pb_span: Any) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """A protobuf span's events and links as stored (not yet validated)."""
    events = [
        {"time_ns": e.time_unix_nano, "name": e.name, "attributes": pb_attrs(e.attributes)}
        for e in pb_span.events
    ]
    links = [
        {
            "trace_id": ln.trace_id.hex(),
            "span_id": ln.span_id.hex(),
            "attributes": pb_attrs(ln.attributes),
        }
        for ln in pb_span.links
    ]
    return events, links
