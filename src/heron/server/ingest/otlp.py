"""Decode OTLP trace requests (protobuf or OTLP-JSON) into :class:`Span` records.

Both decoders share one span builder, so old and current semantic-convention names are
handled identically. A whole request that cannot be decoded raises :class:`DecodeError`
(→ 400); individual invalid spans are counted as rejected (→ 200 + partialSuccess).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterable
from typing import Any

from google.protobuf.message import DecodeError as _PbDecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from heron.server.model import DecodeResult, Span

# Attribute names lifted into span columns: current name first, then older aliases.
HTTP_METHOD_KEYS = ("http.request.method", "http.method")
HTTP_STATUS_KEYS = ("http.response.status_code", "http.status_code")
DB_SYSTEM_KEYS = ("db.system.name", "db.system")
DB_STATEMENT_KEYS = ("db.query.text", "db.statement")
HTTP_ROUTE_KEYS = ("http.route",)
ENVIRONMENT_KEYS = ("deployment.environment.name", "deployment.environment")
LIFTED_KEYS = frozenset(
    HTTP_METHOD_KEYS + HTTP_STATUS_KEYS + DB_SYSTEM_KEYS + DB_STATEMENT_KEYS + HTTP_ROUTE_KEYS
)
# The canonical name each lifted column is shown under.
CANONICAL = {
    "http_method": "http.request.method",
    "http_route": "http.route",
    "http_status": "http.response.status_code",
    "db_system": "db.system.name",
    "db_statement": "db.query.text",
}
MAX_ATTR_VALUE_CHARS = 16_384


class DecodeError(ValueError):
    """The request as a whole is not a valid OTLP trace export."""


# ---------------------------------------------------------------- shared span building


def _first(attrs: dict[str, Any], keys: Iterable[str]) -> Any:
    for k in keys:
        v = attrs.get(k)
        if v is not None:
            return v
    return None


def _as_int(v: Any) -> int | None:
    if isinstance(v, bool):
        return None
    if isinstance(v, int):
        return v
    if isinstance(v, str) and v.isdigit():
        return int(v)
    if isinstance(v, float) and v.is_integer():
        return int(v)
    return None


class _ResourceInfo:
    __slots__ = ("service", "environment", "release", "attributes")

    def __init__(self, attributes: dict[str, Any]) -> None:
        self.attributes = attributes
        self.service = str(attributes.get("service.name") or "unknown_service")
        self.environment = str(_first(attributes, ENVIRONMENT_KEYS) or "")
        self.release = str(attributes.get("service.version") or "")


def _build_span(
    res: _ResourceInfo,
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
    if len(trace_id) != 16 or not any(trace_id):
        raise ValueError("traceId must be 16 bytes and not all zero")
    if len(span_id) != 8 or not any(span_id):
        raise ValueError("spanId must be 8 bytes and not all zero")
    if parent_id and len(parent_id) != 8:
        raise ValueError("parentSpanId must be empty or 8 bytes")
    if start_ns <= 0 or end_ns < start_ns:
        raise ValueError("endTimeUnixNano must not be before startTimeUnixNano (both > 0)")
    if not 0 <= kind <= 5:
        raise ValueError(f"unknown span kind {kind}")
    method = _first(attrs, HTTP_METHOD_KEYS)
    route = attrs.get("http.route")
    statement = _first(attrs, DB_STATEMENT_KEYS)
    db_system = _first(attrs, DB_SYSTEM_KEYS)
    http_status = _as_int(_first(attrs, HTTP_STATUS_KEYS))
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


def _clip(s: str) -> str:
    return s if len(s) <= MAX_ATTR_VALUE_CHARS else s[:MAX_ATTR_VALUE_CHARS] + "…"


# ---------------------------------------------------------------------- protobuf


def _pb_value(v: Any) -> Any:
    which = v.WhichOneof("value")
    if which == "string_value":
        return _clip(v.string_value)
    if which == "int_value":
        return v.int_value
    if which == "double_value":
        return v.double_value
    if which == "bool_value":
        return v.bool_value
    if which == "array_value":
        return [_pb_value(x) for x in v.array_value.values]
    if which == "kvlist_value":
        return {kv.key: _pb_value(kv.value) for kv in v.kvlist_value.values}
    if which == "bytes_value":
        return base64.b64encode(v.bytes_value).decode()
    return None


def _pb_attrs(kvs: Iterable[Any]) -> dict[str, Any]:
    return {kv.key: _pb_value(kv.value) for kv in kvs}


def decode_protobuf(body: bytes) -> DecodeResult:
    """Decode an ``ExportTraceServiceRequest`` in protobuf binary form."""
    req = ExportTraceServiceRequest()
    try:
        req.ParseFromString(body)
    except (_PbDecodeError, ValueError, RuntimeError) as e:
        raise DecodeError(f"request body is not a valid protobuf ExportTraceServiceRequest: {e}") from None
    out = DecodeResult(spans=[])
    for rs in req.resource_spans:
        res = _ResourceInfo(_pb_attrs(rs.resource.attributes))
        for ss in rs.scope_spans:
            scope = ss.scope.name
            for s in ss.spans:
                events = [
                    {"time_ns": e.time_unix_nano, "name": e.name, "attributes": _pb_attrs(e.attributes)}
                    for e in s.events
                ]
                links = [
                    {"trace_id": ln.trace_id.hex(), "span_id": ln.span_id.hex(),
                     "attributes": _pb_attrs(ln.attributes)}
                    for ln in s.links
                ]
                _append(out, lambda s=s, events=events, links=links: _build_span(
                    res, scope, s.trace_id, s.span_id, s.parent_span_id,
                    s.start_time_unix_nano, s.end_time_unix_nano, s.name, s.kind,
                    s.status.code, s.status.message, _pb_attrs(s.attributes), events, links,
                ))
    return out


def _append(out: DecodeResult, build: Callable[[], Span]) -> None:
    try:
        out.spans.append(build())
    except ValueError as e:
        out.rejected += 1
        if len(out.errors) < 5:
            out.errors.append(str(e))


# -------------------------------------------------------------------------- JSON


def _hex_id(v: Any, field: str, length: int) -> bytes:
    if v is None or v == "":
        return b""
    if not isinstance(v, str) or len(v) != 2 * length:
        raise ValueError(f"{field} must be a {2 * length}-character hex string")
    try:
        return bytes.fromhex(v)
    except ValueError:
        raise ValueError(f"{field} must be a {2 * length}-character hex string") from None


def _json_int(v: Any, field: str) -> int:
    if v is None:
        return 0
    if isinstance(v, bool):
        raise ValueError(f"{field} must be an integer")
    if isinstance(v, int):
        return v
    if isinstance(v, str):
        try:
            return int(v)
        except ValueError:
            pass
    if isinstance(v, float) and v.is_integer():
        return int(v)
    raise ValueError(f"{field} must be an integer (number or decimal string)")


def _json_value(v: Any) -> Any:
    if not isinstance(v, dict):
        return None
    if "stringValue" in v:
        s = v["stringValue"]
        return _clip(s) if isinstance(s, str) else str(s)
    if "intValue" in v:
        return _json_int(v["intValue"], "intValue")
    if "doubleValue" in v:
        d = v["doubleValue"]
        return float(d) if isinstance(d, int | float | str) and not isinstance(d, bool) else None
    if "boolValue" in v:
        return bool(v["boolValue"])
    if "arrayValue" in v:
        return [_json_value(x) for x in (v["arrayValue"] or {}).get("values") or []]
    if "kvlistValue" in v:
        return _json_attrs((v["kvlistValue"] or {}).get("values"))
    if "bytesValue" in v:
        return v["bytesValue"]
    return None


def _json_attrs(kvs: Any) -> dict[str, Any]:
    if not kvs:
        return {}
    if not isinstance(kvs, list):
        raise ValueError("attributes must be a list of {key, value}")
    out: dict[str, Any] = {}
    for kv in kvs:
        if isinstance(kv, dict) and isinstance(kv.get("key"), str):
            out[kv["key"]] = _json_value(kv.get("value"))
    return out


def _json_list(obj: Any, key: str) -> list[Any]:
    v = obj.get(key) if isinstance(obj, dict) else None
    if v is None:
        return []
    if not isinstance(v, list):
        raise DecodeError(f"field {key!r} must be an array")
    return v


def _json_span(res: _ResourceInfo, scope: str, s: Any) -> Span:
    if not isinstance(s, dict):
        raise ValueError("span must be an object")
    status = s.get("status") or {}
    events = [
        {"time_ns": _json_int(e.get("timeUnixNano"), "timeUnixNano"), "name": str(e.get("name", "")),
         "attributes": _json_attrs(e.get("attributes"))}
        for e in s.get("events") or [] if isinstance(e, dict)
    ]
    links = [
        {"trace_id": _hex_id(ln.get("traceId"), "links.traceId", 16).hex(),
         "span_id": _hex_id(ln.get("spanId"), "links.spanId", 8).hex(),
         "attributes": _json_attrs(ln.get("attributes"))}
        for ln in s.get("links") or [] if isinstance(ln, dict)
    ]
    return _build_span(
        res, scope,
        _hex_id(s.get("traceId"), "traceId", 16),
        _hex_id(s.get("spanId"), "spanId", 8),
        _hex_id(s.get("parentSpanId"), "parentSpanId", 8),
        _json_int(s.get("startTimeUnixNano"), "startTimeUnixNano"),
        _json_int(s.get("endTimeUnixNano"), "endTimeUnixNano"),
        str(s.get("name", "")),
        _json_int(s.get("kind"), "kind"),
        _json_int(status.get("code"), "status.code") if isinstance(status, dict) else 0,
        str(status.get("message", "")) if isinstance(status, dict) else "",
        _json_attrs(s.get("attributes")),
        events,
        links,
    )


def decode_json(body: bytes) -> DecodeResult:
    """Decode an ``ExportTraceServiceRequest`` in OTLP-JSON form (hex ids, int enums)."""
    try:
        doc = json.loads(body.decode("utf-8"))
    except UnicodeDecodeError:
        raise DecodeError("request body is not valid UTF-8") from None
    except json.JSONDecodeError as e:
        raise DecodeError(f"request body is not valid JSON: {e}") from None
    if not isinstance(doc, dict):
        raise DecodeError("request body must be a JSON object (ExportTraceServiceRequest)")
    out = DecodeResult(spans=[])
    for rs in _json_list(doc, "resourceSpans"):
        if not isinstance(rs, dict):
            raise DecodeError("resourceSpans entries must be objects")
        try:
            res = _ResourceInfo(_json_attrs((rs.get("resource") or {}).get("attributes")))
        except ValueError as e:
            raise DecodeError(f"invalid resource: {e}") from None
        for ss in _json_list(rs, "scopeSpans"):
            scope = str(((ss or {}).get("scope") or {}).get("name", "")) if isinstance(ss, dict) else ""
            for s in _json_list(ss, "spans"):
                _append(out, lambda s=s: _json_span(res, scope, s))
    return out
