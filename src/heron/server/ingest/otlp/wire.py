"""The fast protobuf wire decoder: an ``ExportTraceServiceRequest`` straight into a
:class:`SpanBatch` (the hot path of ``POST /v1/traces``).

upb parses (and so validates) the whole request first; then the raw bytes are walked
directly, because touching upb objects from Python costs about 1 µs per attribute. Each
attribute's KeyValue bytes are looked up in a bounded cache of decoded entries, so the
attributes a fleet repeats on every span (db.system.name=postgresql, server.address=...)
are decoded once. Rare shapes (events, links, array/kvlist/bytes values, resources,
scopes) are read from the upb objects with the same code as the reference decoder
(:mod:`.reference`), so both paths produce the same rows (``bench/check_decoder.py``).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import orjson
from google.protobuf.message import DecodeError as _PbDecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import KeyValue

from heron.server.ingest.limits import MAX_TIME_NS
from heron.server.ingest.otlp.common import DecodeError, ResourceInfo, as_int, pb_attrs, pb_value
from heron.server.ingest.otlp.protowire import U64 as _U64
from heron.server.ingest.otlp.protowire import Unsupported as _Unsupported
from heron.server.ingest.otlp.protowire import skip as _skip
from heron.server.ingest.otlp.protowire import varint as _varint
from heron.server.ingest.otlp.reference import decode_protobuf
from heron.server.ingest.otlp.traces import check_events, check_span, pb_events_links
from heron.server.model.span import BatchDecodeResult, SpanBatch, json_text
from heron.server.semconv import (
    DB_STATEMENT_KEYS,
    DB_SYSTEM_KEYS,
    HTTP_METHOD_KEYS,
    HTTP_ROUTE_KEYS,
    HTTP_STATUS_KEYS,
    LIFTED_KEYS,
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
_RESOURCE_CACHE: dict[bytes, tuple[ResourceInfo, str | None]] = {}
_RESOURCE_CACHE_MAX_ENTRIES = 1_024
_RESOURCE_CACHE_MAX_BYTES = 16_384
_TAIL_TAGS = frozenset((0x4A, 0x50, 0x7A, 0x85))  # attributes, dropped count, status, flags
_ZERO16, _ZERO8 = bytes(16), bytes(8)


def _int32(v: int) -> int:
    """A varint read as protobuf int32/enum (two's complement, low 32 bits)."""
    v &= 0xFFFFFFFF
    return v - 0x100000000 if v & 0x80000000 else v


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
    key, value = kv.key, pb_value(kv.value)
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
    events, links = pb_events_links(pb_span)
    check_events(events)
    return json_text(events), json_text(links)


def _walk_spans(
    out: BatchDecodeResult,
    buf: bytes,
    spans: Iterable[tuple[int, int]],
    res: ResourceInfo,
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
                check_span(trace_id, span_id, parent, start, stop, kind)
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
    hs = as_int(lifted[2] if lifted[2] is not None else lifted[3])
    system = lifted[4] if lifted[4] is not None else lifted[5]
    stmt = lifted[6] if lifted[6] is not None else lifted[7]
    return (
        str(m) if m is not None else None,
        str(route) if route is not None else None,
        hs if hs is not None and 0 <= hs <= 65535 else None,
        str(system) if system is not None else None,
        str(stmt) if stmt is not None else None,
    )


def _resource(buf: bytes, start: int, end: int, pb_rs: Any) -> tuple[ResourceInfo, str | None]:
    """A ResourceSpans' resource and its JSON, cached by the Resource message's bytes."""
    fields = list(_len_fields(buf, start, end, 0x0A))
    key = buf[fields[0][0] : fields[0][1]] if len(fields) == 1 else None
    hit = _RESOURCE_CACHE.get(key) if key is not None else None
    if hit is None:
        res = ResourceInfo(pb_attrs(pb_rs.resource.attributes))
        hit = (res, json_text(res.attributes))
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
