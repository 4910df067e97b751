"""The reference decoders of OTLP trace requests: protobuf through upb objects, and
OTLP-JSON. Both share one span builder (:func:`.traces.build_span`), so old and current
semantic-convention names are handled identically. A whole request that cannot be
decoded raises :class:`DecodeError` (→ 400); individual invalid spans are counted as
rejected (→ 200 + partialSuccess).

``POST /v1/traces`` decodes JSON here; protobuf goes through :mod:`.wire`, which must
accept and reject exactly what :func:`decode_protobuf` does, with the same rows.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

from google.protobuf.message import DecodeError as _PbDecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from heron.server.ingest.otlp.common import (
    DecodeError,
    ResourceInfo,
    hex_id,
    json_attrs,
    json_body,
    json_int,
    json_list,
    json_obj,
    json_resource,
    json_scope_name,
    json_str,
    pb_attrs,
)
from heron.server.ingest.otlp.traces import build_span, pb_events_links
from heron.server.model.span import DecodeResult, Span


def decode_protobuf(body: bytes) -> DecodeResult:
    """Decode an ``ExportTraceServiceRequest`` in protobuf binary form."""
    req = ExportTraceServiceRequest()
    try:
        req.ParseFromString(body)
    except (_PbDecodeError, ValueError, RuntimeError) as e:
        raise DecodeError(
            f"request body is not a valid protobuf ExportTraceServiceRequest: {e}"
        ) from None
    out = DecodeResult(spans=[])
    for rs in req.resource_spans:
        res = ResourceInfo(pb_attrs(rs.resource.attributes))
        for ss in rs.scope_spans:
            scope = ss.scope.name
            for s in ss.spans:
                events, links = pb_events_links(s)
                _append(out, partial(_pb_span, res, scope, s, events, links))
    return out


def _pb_span(
    res: ResourceInfo,
    scope: str,
    s: Any,
    events: list[dict[str, Any]],
    links: list[dict[str, Any]],
) -> Span:
    return build_span(
        res,
        scope,
        s.trace_id,
        s.span_id,
        s.parent_span_id,
        s.start_time_unix_nano,
        s.end_time_unix_nano,
        s.name,
        s.kind,
        s.status.code,
        s.status.message,
        pb_attrs(s.attributes),
        events,
        links,
    )


def _append(out: DecodeResult, build: Callable[[], Span]) -> None:
    try:
        out.spans.append(build())
    except ValueError as e:
        out.rejected += 1
        if len(out.errors) < 5:
            out.errors.append(str(e))


def _json_span(res: ResourceInfo, scope: str, s: Any) -> Span:
    if not isinstance(s, dict):
        raise ValueError("span must be an object")
    status = json_obj(s.get("status"), "status")
    events = [
        {
            "time_ns": json_int(e.get("timeUnixNano"), "timeUnixNano"),
            "name": json_str(e.get("name"), "events.name"),
            "attributes": json_attrs(e.get("attributes")),
        }
        for e in json_list(s, "events")
        if isinstance(e, dict)
    ]
    links = [
        {
            "trace_id": hex_id(ln.get("traceId"), "links.traceId", 16).hex(),
            "span_id": hex_id(ln.get("spanId"), "links.spanId", 8).hex(),
            "attributes": json_attrs(ln.get("attributes")),
        }
        for ln in json_list(s, "links")
        if isinstance(ln, dict)
    ]
    return build_span(
        res,
        scope,
        hex_id(s.get("traceId"), "traceId", 16),
        hex_id(s.get("spanId"), "spanId", 8),
        hex_id(s.get("parentSpanId"), "parentSpanId", 8),
        json_int(s.get("startTimeUnixNano"), "startTimeUnixNano"),
        json_int(s.get("endTimeUnixNano"), "endTimeUnixNano"),
        json_str(s.get("name"), "name"),
        json_int(s.get("kind"), "kind"),
        json_int(status.get("code"), "status.code"),
        json_str(status.get("message"), "status.message"),
        json_attrs(s.get("attributes")),
        events,
        links,
    )


def decode_json(body: bytes) -> DecodeResult:
    """Decode an ``ExportTraceServiceRequest`` in OTLP-JSON form (hex ids, int enums)."""
    doc = json_body(body, "ExportTraceServiceRequest")
    out = DecodeResult(spans=[])
    for rs in json_list(doc, "resourceSpans"):
        if not isinstance(rs, dict):
            raise DecodeError("resourceSpans entries must be objects")
        res = json_resource(rs)
        for ss in json_list(rs, "scopeSpans"):
            scope = json_scope_name(ss)
            for s in json_list(ss, "spans"):
                _append(out, partial(_json_span, res, scope, s))
    return out
