"""OTLP decoding: protobuf built from the official messages, and OTLP-JSON."""

from __future__ import annotations

import json

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, ArrayValue, KeyValue, KeyValueList
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans
from opentelemetry.proto.trace.v1.trace_pb2 import Span as PbSpan
from opentelemetry.proto.trace.v1.trace_pb2 import Status as PbStatus

from heron.server.ingest.otlp import DecodeError, decode_json, decode_protobuf

TRACE = bytes.fromhex("5b8efff798038103d269b633813fc60c")
SPAN = bytes.fromhex("eee19b7ec3c1b174")
PARENT = bytes.fromhex("eee19b7ec3c1b173")

# The OTLP spec's example (opentelemetry-proto examples/trace.json): upper-case hex ids,
# int64 times as JSON numbers, enum as integer.
SPEC_EXAMPLE = """{"resourceSpans":[{"resource":{"attributes":[{"key":"service.name",
"value":{"stringValue":"my.service"}}]},"scopeSpans":[{"scope":{"name":"my.library",
"version":"1.0.0","attributes":[{"key":"my.scope.attribute","value":{"stringValue":
"some scope attribute"}}]},"spans":[{"traceId":"5B8EFFF798038103D269B633813FC60C",
"spanId":"EEE19B7EC3C1B174","parentSpanId":"EEE19B7EC3C1B173","name":"I'm a server span",
"startTimeUnixNano":1544712660000000000,"endTimeUnixNano":1544712661000000000,"kind":2,
"attributes":[{"key":"my.span.attr","value":{"stringValue":"some value"}}]}]}]}]}"""


def kv(key: str, value: object) -> KeyValue:
    if isinstance(value, bool):
        v = AnyValue(bool_value=value)
    elif isinstance(value, int):
        v = AnyValue(int_value=value)
    elif isinstance(value, float):
        v = AnyValue(double_value=value)
    elif isinstance(value, list):
        v = AnyValue(array_value=ArrayValue(values=[kv("", x).value for x in value]))
    elif isinstance(value, dict):
        v = AnyValue(kvlist_value=KeyValueList(values=[kv(k, x) for k, x in value.items()]))
    else:
        v = AnyValue(string_value=str(value))
    return KeyValue(key=key, value=v)


def pb_request(spans: list[PbSpan], resource: dict[str, object] | None = None) -> bytes:
    res = Resource(attributes=[kv(k, v) for k, v in (resource or {"service.name": "shop"}).items()])
    req = ExportTraceServiceRequest(
        resource_spans=[ResourceSpans(resource=res, scope_spans=[ScopeSpans(spans=spans)])]
    )
    return req.SerializeToString()


def pb_span(**kw: object) -> PbSpan:
    attrs = kw.pop("attributes", {})
    s = PbSpan(
        trace_id=TRACE,
        span_id=SPAN,
        parent_span_id=PARENT,
        name="GET /items/{id}",
        kind=PbSpan.SPAN_KIND_SERVER,
        start_time_unix_nano=1_000_000_000,
        end_time_unix_nano=1_250_000_000,
    )
    for k, v in kw.items():
        setattr(s, k, v)
    s.attributes.extend(kv(k, v) for k, v in attrs.items())  # type: ignore[union-attr]
    return s


def test_protobuf_span_fields_and_resource() -> None:
    span = pb_span(
        attributes={
            "http.request.method": "GET",
            "http.route": "/items/{id}",
            "http.response.status_code": 200,
            "url.path": "/items/7",
        }
    )
    span.status.CopyFrom(PbStatus(code=PbStatus.STATUS_CODE_ERROR, message="boom"))
    ev = span.events.add(time_unix_nano=1_100_000_000, name="exception")
    ev.attributes.extend([kv("exception.type", "ValueError")])
    body = pb_request(
        [span],
        {
            "service.name": "shop",
            "service.version": "1.4.2",
            "deployment.environment.name": "prod",
            "host.name": "web-1",
        },
    )
    result = decode_protobuf(body)
    assert result.rejected == 0
    (s,) = result.spans
    assert (s.trace_id, s.span_id, s.parent_id) == (
        TRACE,
        int(SPAN.hex(), 16),
        int(PARENT.hex(), 16),
    )
    assert (s.service, s.release, s.environment) == ("shop", "1.4.2", "prod")
    assert (s.kind, s.status, s.status_message) == (2, 2, "boom")
    assert (s.start_ns, s.duration_ns) == (1_000_000_000, 250_000_000)
    assert (s.http_method, s.http_route, s.http_status) == ("GET", "/items/{id}", 200)
    assert s.attributes == {"url.path": "/items/7"}
    assert s.resource["host.name"] == "web-1"
    assert s.events == [
        {
            "time_ns": 1_100_000_000,
            "name": "exception",
            "attributes": {"exception.type": "ValueError"},
        }
    ]
    assert s.endpoint == "GET /items/{id}"
    assert s.is_error and s.is_entry


@pytest.mark.parametrize(
    ("attrs", "expected"),
    [
        ({"http.method": "POST", "http.status_code": 503}, ("POST", 503)),
        ({"http.request.method": "POST", "http.response.status_code": 503}, ("POST", 503)),
        ({"http.method": "POST", "http.status_code": "503"}, ("POST", 503)),
    ],
)
def test_old_and_new_http_names(attrs: dict[str, object], expected: tuple[str, int]) -> None:
    (s,) = decode_protobuf(pb_request([pb_span(attributes=attrs)])).spans
    assert (s.http_method, s.http_status) == expected
    assert s.is_error  # 5xx on a server span counts as an error


@pytest.mark.parametrize(
    "attrs",
    [
        {"db.system": "postgresql", "db.statement": "SELECT 1"},
        {"db.system.name": "postgresql", "db.query.text": "SELECT 1"},
    ],
)
def test_old_and_new_db_names(attrs: dict[str, object]) -> None:
    (s,) = decode_protobuf(
        pb_request([pb_span(kind=PbSpan.SPAN_KIND_CLIENT, attributes=attrs)])
    ).spans
    assert (s.db_system, s.db_statement) == ("postgresql", "SELECT 1")
    assert not s.is_entry


def test_old_environment_name_and_defaults() -> None:
    body = pb_request([pb_span()], {"deployment.environment": "staging"})
    (s,) = decode_protobuf(body).spans
    assert (s.service, s.environment, s.release) == ("unknown_service", "staging", "")


def test_attribute_value_types() -> None:
    attrs = {"i": 7, "f": 1.5, "b": True, "arr": ["a", "b"], "kv": {"x": 1}}
    (s,) = decode_protobuf(pb_request([pb_span(attributes=attrs)])).spans
    assert s.attributes == attrs


def test_invalid_spans_are_rejected_not_the_request() -> None:
    good = pb_span()
    short_trace = pb_span(trace_id=b"\x01" * 8)
    zero_span = pb_span(span_id=b"\x00" * 8)
    backwards = pb_span(end_time_unix_nano=1)
    result = decode_protobuf(pb_request([good, short_trace, zero_span, backwards]))
    assert len(result.spans) == 1
    assert result.rejected == 3
    assert any("traceId" in e for e in result.errors)


def test_empty_request_is_valid() -> None:
    assert decode_protobuf(b"").spans == []


def test_malformed_protobuf_raises() -> None:
    with pytest.raises(DecodeError, match="protobuf"):
        decode_protobuf(b"\xff\xff\xff\xff not protobuf")


def test_spec_example_json() -> None:
    result = decode_json(SPEC_EXAMPLE.encode())
    (s,) = result.spans
    assert s.trace_id == TRACE and s.span_id == int("eee19b7ec3c1b174", 16)
    assert s.parent_id == int("eee19b7ec3c1b173", 16)
    assert (s.service, s.name, s.kind, s.scope) == (
        "my.service",
        "I'm a server span",
        2,
        "my.library",
    )
    assert (s.start_ns, s.duration_ns) == (1544712660000000000, 10**9)
    assert s.attributes == {"my.span.attr": "some value"}


def json_span(**kw: object) -> dict[str, object]:
    span: dict[str, object] = {
        "traceId": TRACE.hex(),
        "spanId": SPAN.hex(),
        "name": "GET /",
        "kind": 2,
        "startTimeUnixNano": "1000000000",
        "endTimeUnixNano": "1500000000",
        "unknownFieldFromTheFuture": {"x": 1},
    }
    span.update(kw)
    return span


def json_body(*spans: dict[str, object], resource: list[object] | None = None) -> bytes:
    res = resource or [{"key": "service.name", "value": {"stringValue": "api"}}]
    return json.dumps(
        {
            "resourceSpans": [
                {"resource": {"attributes": res}, "scopeSpans": [{"spans": list(spans)}]}
            ]
        }
    ).encode()


def test_json_int64_as_strings_and_numbers_and_old_names() -> None:
    attrs = [
        {"key": "http.method", "value": {"stringValue": "GET"}},
        {"key": "http.status_code", "value": {"intValue": "404"}},
        {"key": "http.route", "value": {"stringValue": "/x"}},
        {"key": "retries", "value": {"intValue": 3}},
    ]
    result = decode_json(json_body(json_span(attributes=attrs, status={"code": 1})))
    (s,) = result.spans
    assert (s.http_method, s.http_status, s.http_route) == ("GET", 404, "/x")
    assert s.attributes == {"retries": 3}
    assert s.duration_ns == 500_000_000 and s.status == 1
    assert not s.is_error  # 4xx on a server span is not an error


@pytest.mark.parametrize(
    ("span", "fragment"),
    [
        (json_span(traceId="abc"), "traceId"),
        (json_span(spanId="zz" * 8), "spanId"),
        (json_span(traceId="AAAAAAAAAAAAAAAAAAAAAA=="), "traceId"),  # base64 is not OTLP-JSON
        (json_span(startTimeUnixNano="soon"), "startTimeUnixNano"),
        (json_span(kind=9), "kind"),
    ],
)
def test_json_invalid_span_rejected_with_reason(span: dict[str, object], fragment: str) -> None:
    result = decode_json(json_body(span, json_span()))
    assert len(result.spans) == 1 and result.rejected == 1
    assert fragment in result.errors[0]


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (b"{not json", "not valid JSON"),
        (b"[1, 2]", "JSON object"),
        (b'{"resourceSpans": {"a": 1}}', "must be an array"),
        (b'{"resourceSpans": [{"scopeSpans": [{"spans": [{"name": "\xff\xfe"}]}]}]}', "UTF-8"),
    ],
)
def test_json_malformed_request_raises(body: bytes, fragment: str) -> None:
    with pytest.raises(DecodeError, match=fragment):
        decode_json(body)
