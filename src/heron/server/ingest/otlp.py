"""Decode OTLP trace requests (protobuf or OTLP-JSON) into :class:`Span` records.

Both decoders share one span builder, so old and current semantic-convention names are
handled identically. A whole request that cannot be decoded raises :class:`DecodeError`
(→ 400); individual invalid spans are counted as rejected (→ 200 + partialSuccess).
"""

from __future__ import annotations

import base64
import struct
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any, overload

import orjson
from google.protobuf.message import DecodeError as _PbDecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import KeyValue

from heron.server.ingest.limits import (
    MAX_TIME_NS,
    MAX_VALUE_DEPTH,
    TRIMMED,
    int64,
    parse_json,
    time_in_range,
)
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
    __slots__ = ("service", "environment", "release", "attributes", "error")

    def __init__(self, attributes: dict[str, Any], error: str | None = None) -> None:
        self.attributes = attributes
        self.error = error  # why every item of this resource is rejected
        self.service = str(attributes.get("service.name") or "unknown_service")
        self.environment = str(_first(attributes, ENVIRONMENT_KEYS) or "")
        self.release = str(attributes.get("service.version") or "")


def _check_span(
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
    if res.error:
        raise ValueError(res.error)
    _check_span(trace_id, span_id, parent_id, start_ns, end_ns, kind)
    _check_events(events)
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


def _check_events(events: list[dict[str, Any]]) -> None:
    for e in events:
        time_in_range(e["time_ns"], "events.timeUnixNano")


def _clip(s: str) -> str:
    return s if len(s) <= MAX_ATTR_VALUE_CHARS else s[:MAX_ATTR_VALUE_CHARS] + "…"


# ---------------------------------------------------------------------- protobuf


def _pb_value(v: Any, depth: int = 0) -> Any:
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
        if depth >= MAX_VALUE_DEPTH:
            return TRIMMED
        return [_pb_value(x, depth + 1) for x in v.array_value.values]
    if which == "kvlist_value":
        if depth >= MAX_VALUE_DEPTH:
            return TRIMMED
        return {kv.key: _pb_value(kv.value, depth + 1) for kv in v.kvlist_value.values}
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
        raise DecodeError(
            f"request body is not a valid protobuf ExportTraceServiceRequest: {e}"
        ) from None
    out = DecodeResult(spans=[])
    for rs in req.resource_spans:
        res = _ResourceInfo(_pb_attrs(rs.resource.attributes))
        for ss in rs.scope_spans:
            scope = ss.scope.name
            for s in ss.spans:
                events = [
                    {
                        "time_ns": e.time_unix_nano,
                        "name": e.name,
                        "attributes": _pb_attrs(e.attributes),
                    }
                    for e in s.events
                ]
                links = [
                    {
                        "trace_id": ln.trace_id.hex(),
                        "span_id": ln.span_id.hex(),
                        "attributes": _pb_attrs(ln.attributes),
                    }
                    for ln in s.links
                ]
                _append(out, partial(_pb_span, res, scope, s, events, links))
    return out


def _pb_span(
    res: _ResourceInfo,
    scope: str,
    s: Any,
    events: list[dict[str, Any]],
    links: list[dict[str, Any]],
) -> Span:
    return _build_span(
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
        _pb_attrs(s.attributes),
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


def _json_str(v: Any, field: str) -> str:
    """A string field: as sent; numbers and booleans as text (lenient encoders send
    them); anything else is invalid."""
    if isinstance(v, str):
        return v
    if v is None:
        return ""
    if isinstance(v, int | float):
        return str(v)
    raise ValueError(f"{field} must be a string")


def _json_obj(v: Any, field: str) -> dict[str, Any]:
    if v is None:
        return {}
    if not isinstance(v, dict):
        raise ValueError(f"{field} must be an object")
    return v


def _json_double(d: Any) -> float | None:
    if isinstance(d, bool) or not isinstance(d, int | float | str):
        return None
    try:
        return float(d)
    except ValueError:
        raise ValueError(f"doubleValue {str(d)[:32]!r} is not a number") from None


def _json_value(v: Any, depth: int = 0) -> Any:
    if not isinstance(v, dict):
        return None
    if "stringValue" in v:
        return _clip(_json_str(v["stringValue"], "stringValue"))
    if "intValue" in v:
        return int64(_json_int(v["intValue"], "intValue"), "intValue")
    if "doubleValue" in v:
        return _json_double(v["doubleValue"])
    if "boolValue" in v:
        return bool(v["boolValue"])
    if "arrayValue" in v or "kvlistValue" in v:
        if depth >= MAX_VALUE_DEPTH:
            return TRIMMED
        if "arrayValue" in v:
            return [_json_value(x, depth + 1) for x in _json_list(v["arrayValue"], "values")]
        return _json_attrs(_json_list(v["kvlistValue"], "values"), depth + 1)
    if "bytesValue" in v:
        return _clip(_json_str(v["bytesValue"], "bytesValue"))
    return None


def _json_attrs(kvs: Any, depth: int = 0) -> dict[str, Any]:
    if not kvs:
        return {}
    if not isinstance(kvs, list):
        raise ValueError("attributes must be a list of {key, value}")
    out: dict[str, Any] = {}
    for kv in kvs:
        if isinstance(kv, dict) and isinstance(kv.get("key"), str):
            try:
                out[kv["key"]] = _json_value(kv.get("value"), depth)
            except ValueError as e:
                if depth:
                    raise
                raise ValueError(f"attribute {kv['key'][:64]!r}: {e}") from None
    return out


def _json_list(obj: Any, key: str) -> list[Any]:
    v = obj.get(key) if isinstance(obj, dict) else None
    if v is None:
        return []
    if not isinstance(v, list):
        raise DecodeError(f"field {key!r} must be an array")
    return v


def json_resource(parent: dict[str, Any]) -> _ResourceInfo:
    """The resource of a ResourceSpans/ResourceLogs; one whose attributes are invalid
    makes each of its items rejected (not the whole request)."""
    try:
        attrs = _json_attrs(_json_obj(parent.get("resource"), "resource").get("attributes"))
    except ValueError as e:
        return _ResourceInfo({}, error=f"resource: {e}")
    return _ResourceInfo(attrs)


def json_scope_name(parent: Any) -> str:
    scope = parent.get("scope") if isinstance(parent, dict) else None
    name = scope.get("name") if isinstance(scope, dict) else None
    return name if isinstance(name, str) else ""


def _json_span(res: _ResourceInfo, scope: str, s: Any) -> Span:
    if not isinstance(s, dict):
        raise ValueError("span must be an object")
    status = _json_obj(s.get("status"), "status")
    events = [
        {
            "time_ns": _json_int(e.get("timeUnixNano"), "timeUnixNano"),
            "name": _json_str(e.get("name"), "events.name"),
            "attributes": _json_attrs(e.get("attributes")),
        }
        for e in _json_list(s, "events")
        if isinstance(e, dict)
    ]
    links = [
        {
            "trace_id": _hex_id(ln.get("traceId"), "links.traceId", 16).hex(),
            "span_id": _hex_id(ln.get("spanId"), "links.spanId", 8).hex(),
            "attributes": _json_attrs(ln.get("attributes")),
        }
        for ln in _json_list(s, "links")
        if isinstance(ln, dict)
    ]
    return _build_span(
        res,
        scope,
        _hex_id(s.get("traceId"), "traceId", 16),
        _hex_id(s.get("spanId"), "spanId", 8),
        _hex_id(s.get("parentSpanId"), "parentSpanId", 8),
        _json_int(s.get("startTimeUnixNano"), "startTimeUnixNano"),
        _json_int(s.get("endTimeUnixNano"), "endTimeUnixNano"),
        _json_str(s.get("name"), "name"),
        _json_int(s.get("kind"), "kind"),
        _json_int(status.get("code"), "status.code"),
        _json_str(status.get("message"), "status.message"),
        _json_attrs(s.get("attributes")),
        events,
        links,
    )


def json_body(body: bytes, message_type: str) -> dict[str, Any]:
    """An OTLP-JSON request body as a dict; DecodeError saying what is wrong otherwise
    (including nesting too deep to parse: see :func:`parse_json`)."""
    try:
        doc = parse_json(body)
    except ValueError as e:
        raise DecodeError(f"request body is {e}") from None
    if not isinstance(doc, dict):
        raise DecodeError(f"request body must be a JSON object ({message_type})")
    return doc


def decode_json(body: bytes) -> DecodeResult:
    """Decode an ``ExportTraceServiceRequest`` in OTLP-JSON form (hex ids, int enums)."""
    doc = json_body(body, "ExportTraceServiceRequest")
    out = DecodeResult(spans=[])
    for rs in _json_list(doc, "resourceSpans"):
        if not isinstance(rs, dict):
            raise DecodeError("resourceSpans entries must be objects")
        res = json_resource(rs)
        for ss in _json_list(rs, "scopeSpans"):
            scope = json_scope_name(ss)
            for s in _json_list(ss, "spans"):
                _append(out, partial(_json_span, res, scope, s))
    return out


# ------------------------------------------------------ protobuf, columnar fast path
#
# The hot path of ``POST /v1/traces``. upb parses (and so validates) the whole request
# first; then the raw bytes are walked directly, because touching upb objects from
# Python costs about 1 µs per attribute. Each attribute's KeyValue bytes are looked up
# in a bounded cache of decoded entries, so the attributes a fleet repeats on every span
# (db.system.name=postgresql, server.address=...) are decoded once. Rare shapes (events,
# links, array/kvlist/bytes values, resources, scopes) are read from the upb objects with
# the same code as ``decode_protobuf``, so both paths produce the same rows.

SPAN_COLUMNS = (
    "start_ns",
    "trace_id",
    "span_id",
    "parent_id",
    "service",
    "environment",
    "release",
    "name",
    "kind",
    "duration_ns",
    "status",
    "status_message",
    "http_method",
    "http_route",
    "http_status",
    "db_system",
    "db_statement",
    "attributes",
    "resource",
    "events",
    "links",
    "scope",
)
# Slots of lifted attributes in the fast path; pairs are (current name, older alias).
_LIFT_ORDER = (
    HTTP_METHOD_KEYS + HTTP_STATUS_KEYS + DB_SYSTEM_KEYS + DB_STATEMENT_KEYS + HTTP_ROUTE_KEYS
)
assert len(_LIFT_ORDER) == 9 and set(_LIFT_ORDER) == LIFTED_KEYS
_LIFT_SLOT = {k: i for i, k in enumerate(_LIFT_ORDER)}
_KV_CACHE: dict[bytes, tuple[str, str, int, Any]] = {}
_KV_CACHE_MAX_ENTRIES = 16_384
_KV_CACHE_MAX_BYTES = 1_024
# Everything from a span's first attribute to its end (attributes, status, flags) repeats
# verbatim across spans of the same kind (a given DB query, say): cache its decoded form.
_TAIL_CACHE: dict[bytes, tuple[Any, ...]] = {}
_TAIL_CACHE_MAX_ENTRIES = 4_096
_TAIL_CACHE_MAX_BYTES = 2_048
_RESOURCE_CACHE: dict[bytes, tuple[_ResourceInfo, str | None]] = {}
_RESOURCE_CACHE_MAX_ENTRIES = 1_024
_RESOURCE_CACHE_MAX_BYTES = 16_384
_TAIL_TAGS = frozenset((0x4A, 0x50, 0x7A, 0x85))  # attributes, dropped count, status, flags
_ZERO16, _ZERO8 = bytes(16), bytes(8)
_U64 = struct.Struct("<Q")


def _json_text(v: Any) -> str | None:
    """A map or list as stored: JSON text, or None when empty."""
    return orjson.dumps(v).decode() if v else None


class SpanBatch(Sequence[Span]):
    """Decoded spans as rows of stored values (maps already JSON text), in
    :data:`SPAN_COLUMNS` order. Stores insert them as columns; indexing builds a
    :class:`Span`.
    """

    __slots__ = ("rows",)

    def __init__(self, rows: list[tuple[Any, ...]] | None = None) -> None:
        self.rows: list[tuple[Any, ...]] = rows if rows is not None else []

    @classmethod
    def from_spans(cls, spans: Iterable[Span]) -> SpanBatch:
        resource_json: dict[int, str | None] = {}
        rows = []
        for s in spans:
            rid = id(s.resource)
            if rid not in resource_json:
                resource_json[rid] = _json_text(s.resource)
            rows.append(
                (
                    s.start_ns,
                    s.trace_id,
                    s.span_id,
                    s.parent_id,
                    s.service,
                    s.environment,
                    s.release,
                    s.name,
                    s.kind,
                    s.duration_ns,
                    s.status,
                    s.status_message or None,
                    s.http_method,
                    s.http_route,
                    s.http_status,
                    s.db_system,
                    s.db_statement,
                    _json_text(s.attributes),
                    resource_json[rid],
                    _json_text(s.events),
                    _json_text(s.links),
                    s.scope or None,
                )
            )
        return cls(rows)

    def columns(self) -> dict[str, Sequence[Any]]:
        """One sequence per column, in :data:`SPAN_COLUMNS` order."""
        cols = list(zip(*self.rows, strict=True)) or [() for _ in SPAN_COLUMNS]
        return dict(zip(SPAN_COLUMNS, cols, strict=True))

    def __len__(self) -> int:
        return len(self.rows)

    @overload
    def __getitem__(self, i: int) -> Span: ...
    @overload
    def __getitem__(self, i: slice) -> list[Span]: ...
    def __getitem__(self, i: int | slice) -> Span | list[Span]:
        if isinstance(i, slice):
            return [self._span(row) for row in self.rows[i]]
        return self._span(self.rows[i])

    @staticmethod
    def _span(values: tuple[Any, ...]) -> Span:
        row = dict(zip(SPAN_COLUMNS, values, strict=True))
        for name in ("attributes", "resource"):
            row[name] = orjson.loads(row[name]) if row[name] else {}
        for name in ("events", "links"):
            row[name] = orjson.loads(row[name]) if row[name] else []
        row["status_message"] = row["status_message"] or ""
        row["scope"] = row["scope"] or ""
        return Span(**row)


@dataclass(slots=True)
class BatchDecodeResult:
    """Like :class:`DecodeResult`, with the accepted spans as a :class:`SpanBatch`."""

    spans: SpanBatch
    rejected: int = 0
    errors: list[str] = field(default_factory=list)

    def reject(self, err: ValueError) -> None:
        self.rejected += 1
        if len(self.errors) < 5:
            self.errors.append(str(err))


class _Unsupported(Exception):
    """Wire data the fast path does not walk (group fields); use the upb path instead."""


def _varint(buf: bytes, i: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        b = buf[i]
        i += 1
        result |= (b & 0x7F) << shift
        if b < 0x80:
            return result, i
        shift += 7


def _int32(v: int) -> int:
    """A varint read as protobuf int32/enum (two's complement, low 32 bits)."""
    v &= 0xFFFFFFFF
    return v - 0x100000000 if v & 0x80000000 else v


def _skip(buf: bytes, i: int, wire_type: int) -> int:
    if wire_type == 0:
        return _varint(buf, i)[1]
    if wire_type == 1:
        return i + 8
    if wire_type == 2:
        n, i = _varint(buf, i)
        return i + n
    if wire_type == 5:
        return i + 4
    raise _Unsupported(f"wire type {wire_type}")


def _len_fields(buf: bytes, i: int, end: int, want: int) -> Iterator[tuple[int, int]]:
    """(start, end) of each length-delimited field with tag ``want`` in buf[i:end]."""
    while i < end:
        tag, i = _varint(buf, i)
        if tag & 7 != 2:
            i = _skip(buf, i, tag & 7)
            continue
        n, i = _varint(buf, i)
        if tag == want:
            yield i, i + n
        i += n


def _kv_entry(raw: bytes) -> tuple[str, str, int, Any]:
    """(key, JSON fragment '"key":value', lifted slot or -1, value) of a KeyValue."""
    kv = KeyValue.FromString(raw)
    key, value = kv.key, _pb_value(kv.value)
    entry = (key, orjson.dumps({key: value})[1:-1].decode(), _LIFT_SLOT.get(key, -1), value)
    if len(raw) <= _KV_CACHE_MAX_BYTES:
        if len(_KV_CACHE) >= _KV_CACHE_MAX_ENTRIES:
            _KV_CACHE.clear()
        _KV_CACHE[raw] = entry
    return entry


def _status(buf: bytes, i: int, end: int, code: int, message: str) -> tuple[int, str]:
    """Merge one occurrence of a Status message into (code, message)."""
    while i < end:
        tag, i = _varint(buf, i)
        if tag == 0x12:
            n, i = _varint(buf, i)
            message = buf[i : i + n].decode()
            i += n
        elif tag == 0x18:
            v, i = _varint(buf, i)
            code = _int32(v)
        else:
            i = _skip(buf, i, tag & 7)
    return code, message


def _events_links(pb_span: Any) -> tuple[str | None, str | None]:
    events = [
        {"time_ns": e.time_unix_nano, "name": e.name, "attributes": _pb_attrs(e.attributes)}
        for e in pb_span.events
    ]
    _check_events(events)
    links = [
        {
            "trace_id": ln.trace_id.hex(),
            "span_id": ln.span_id.hex(),
            "attributes": _pb_attrs(ln.attributes),
        }
        for ln in pb_span.links
    ]
    return _json_text(events), _json_text(links)


def _walk_spans(
    out: BatchDecodeResult,
    buf: bytes,
    spans: Iterable[tuple[int, int]],
    res: _ResourceInfo,
    resource_json: str | None,
    scope: str | None,
    pb_spans: Any,
) -> None:
    """Append the spans at the given byte ranges of ``buf`` to ``out.spans``."""
    add_row = out.spans.rows.append
    kv_get, tail_get = _KV_CACHE.get, _TAIL_CACHE.get
    unpack_u64 = _U64.unpack_from
    service, environment, release = res.service, res.environment, res.release
    for k, (i, end) in enumerate(spans):
        trace_id = span_id = parent = b""
        name, kind, start, stop, code, message = "", 0, 0, 0, 0, ""
        tail: tuple[Any, ...] | None = None
        tail_at = -1
        rest: dict[str, str] = {}
        lifted: list[Any] | None = None
        rare = new_kv = False
        # The canonical field order (what SDKs send) without the generic loop's overhead;
        # anything else, in any order, is handled by the loop below.
        if i < end and buf[i] == 0x0A and buf[i + 1] == 16:
            trace_id = buf[i + 2 : i + 18]
            i += 18
        if i < end and buf[i] == 0x12 and buf[i + 1] == 8:
            span_id = buf[i + 2 : i + 10]
            i += 10
        if i < end and buf[i] == 0x22 and buf[i + 1] == 8:
            parent = buf[i + 2 : i + 10]
            i += 10
        if i < end and buf[i] == 0x2A and buf[i + 1] < 0x80:
            n = buf[i + 1] + 2
            name = buf[i + 2 : i + n].decode()
            i += n
        if i < end and buf[i] == 0x30 and buf[i + 1] < 0x80:
            kind = buf[i + 1]
            i += 2
        if i < end and buf[i] == 0x39:
            start = unpack_u64(buf, i + 1)[0]
            i += 9
        if i < end and buf[i] == 0x41:
            stop = unpack_u64(buf, i + 1)[0]
            i += 9
        while i < end:
            tag = buf[i]
            if tag == 0x4A:  # attributes: most fields of a span
                if tail_at == -1:
                    # A status before the attributes would merge with the tail's: no cache.
                    tail_at = i if code == 0 and not message else -2
                    tail = tail_get(buf[i:end]) if tail_at >= 0 else None
                    if tail is not None:
                        break
                n = buf[i + 1]
                if n < 0x80:
                    i += 2
                else:
                    n, i = _varint(buf, i + 1)
                raw = buf[i : i + n]
                i += n
                e = kv_get(raw)
                if e is None:
                    e = _kv_entry(raw)
                    new_kv = True
                if e[2] < 0:
                    rest[e[0]] = e[1]
                else:
                    if lifted is None:
                        lifted = [None] * 9
                    lifted[e[2]] = e[3]
                continue
            if tag < 0x80:
                i += 1
            else:
                tag, i = _varint(buf, i)
            wt = tag & 7
            if wt == 2:
                n = buf[i]
                if n < 0x80:
                    i += 1
                else:
                    n, i = _varint(buf, i)
                j = i + n
                if tag == 0x0A:
                    trace_id = buf[i:j]
                elif tag == 0x12:
                    span_id = buf[i:j]
                elif tag == 0x22:
                    parent = buf[i:j]
                elif tag == 0x2A:
                    name = buf[i:j].decode()
                elif tag == 0x7A:
                    code, message = _status(buf, i, j, code, message)
                elif tag == 0x5A or tag == 0x6A:
                    rare = True
                i = j
            elif wt == 1:
                if tag == 0x39:
                    start = unpack_u64(buf, i)[0]
                elif tag == 0x41:
                    stop = unpack_u64(buf, i)[0]
                i += 8
            elif wt == 0:
                v, i = _varint(buf, i)
                if tag == 0x30:
                    kind = _int32(v)
            else:
                i = _skip(buf, i, wt)
            if tail_at >= 0 and tag not in _TAIL_TAGS:
                tail_at = -2  # more than attributes/status after the first attribute
        if (
            len(trace_id) != 16
            or trace_id == _ZERO16
            or len(span_id) != 8
            or span_id == _ZERO8
            or (parent and len(parent) != 8)
            or start <= 0
            or stop < start
            or stop > MAX_TIME_NS
            or not 0 <= kind <= 5
        ):
            try:
                _check_span(trace_id, span_id, parent, start, stop, kind)
            except ValueError as e:
                out.reject(e)
                continue
        if tail is None:
            tail = (
                *_lifted(lifted),
                "{" + ",".join(rest.values()) + "}" if rest else None,
                code if code in (0, 1, 2) else 0,
                message or None,
            )
            # Only tails made of already-seen attributes: they are the ones that repeat.
            if tail_at >= 0 and not (rare or new_kv) and end - tail_at <= _TAIL_CACHE_MAX_BYTES:
                if len(_TAIL_CACHE) >= _TAIL_CACHE_MAX_ENTRIES:
                    _TAIL_CACHE.clear()
                _TAIL_CACHE[buf[tail_at:end]] = tail
        method, route, http_status, db_system, statement, attrs, status, status_message = tail
        events: str | None = None
        links: str | None = None
        if rare:
            try:
                events, links = _events_links(pb_spans[k])
            except ValueError as e:
                out.reject(e)
                continue
        add_row(
            (
                start,
                trace_id,
                int.from_bytes(span_id, "big"),
                int.from_bytes(parent, "big") if parent else 0,
                service,
                environment,
                release,
                name,
                kind,
                stop - start,
                status,
                status_message,
                method,
                route,
                http_status,
                db_system,
                statement,
                attrs,
                resource_json,
                events,
                links,
                scope,
            )
        )


def _lifted(lifted: list[Any] | None) -> tuple[Any, ...]:
    """(method, route, http status, db system, statement) from the lifted slots."""
    if lifted is None:
        return None, None, None, None, None
    m = lifted[0] if lifted[0] is not None else lifted[1]
    route = lifted[8]
    hs = _as_int(lifted[2] if lifted[2] is not None else lifted[3])
    system = lifted[4] if lifted[4] is not None else lifted[5]
    stmt = lifted[6] if lifted[6] is not None else lifted[7]
    return (
        str(m) if m is not None else None,
        str(route) if route is not None else None,
        hs if hs is not None and 0 <= hs <= 65535 else None,
        str(system) if system is not None else None,
        str(stmt) if stmt is not None else None,
    )


def _resource(buf: bytes, start: int, end: int, pb_rs: Any) -> tuple[_ResourceInfo, str | None]:
    """A ResourceSpans' resource and its JSON, cached by the Resource message's bytes."""
    fields = list(_len_fields(buf, start, end, 0x0A))
    key = buf[fields[0][0] : fields[0][1]] if len(fields) == 1 else None
    hit = _RESOURCE_CACHE.get(key) if key is not None else None
    if hit is None:
        res = _ResourceInfo(_pb_attrs(pb_rs.resource.attributes))
        hit = (res, _json_text(res.attributes))
        if key is not None and len(key) <= _RESOURCE_CACHE_MAX_BYTES:
            if len(_RESOURCE_CACHE) >= _RESOURCE_CACHE_MAX_ENTRIES:
                _RESOURCE_CACHE.clear()
            _RESOURCE_CACHE[key] = hit
    return hit


def decode_protobuf_batch(body: bytes) -> BatchDecodeResult:
    """Decode an ``ExportTraceServiceRequest`` straight into columns (the ingest hot path).

    Accepts and rejects exactly what :func:`decode_protobuf` does, with the same rows.
    """
    req = ExportTraceServiceRequest()
    try:
        req.ParseFromString(body)
    except (_PbDecodeError, ValueError, RuntimeError) as e:
        raise DecodeError(
            f"request body is not a valid protobuf ExportTraceServiceRequest: {e}"
        ) from None
    buf = bytes(body)
    out = BatchDecodeResult(SpanBatch())
    try:
        for ri, (rs_start, rs_end) in enumerate(_len_fields(buf, 0, len(buf), 0x0A)):
            pb_rs = req.resource_spans[ri]
            res, res_json = _resource(buf, rs_start, rs_end, pb_rs)
            for si, (ss_start, ss_end) in enumerate(_len_fields(buf, rs_start, rs_end, 0x12)):
                pb_ss = pb_rs.scope_spans[si]
                spans = _len_fields(buf, ss_start, ss_end, 0x12)
                _walk_spans(out, buf, spans, res, res_json, pb_ss.scope.name or None, pb_ss.spans)
    except _Unsupported:
        slow = decode_protobuf(body)
        return BatchDecodeResult(SpanBatch.from_spans(slow.spans), slow.rejected, slow.errors)
    return out
