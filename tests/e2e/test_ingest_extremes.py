"""Property: an OTLP request (JSON or protobuf, traces or logs) that mixes ordinary items
with extreme values is never answered 5xx; every ordinary item is stored; each extreme
item is stored (with the documented clean-ups) or rejected in ``partialSuccess``, exactly
as docs/sending-data.md says. Runs against a real ``heron serve``, reads back through
the API."""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import (
    AnyValue,
    ArrayValue,
    KeyValue,
    KeyValueList,
)
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord, ResourceLogs, ScopeLogs
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span

from tests.conftest import HeronProcess, make_heron

pytestmark = pytest.mark.e2e

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
NOW = 1_700_000_000 * 10**9
MAX_VALUE_DEPTH = 32  # deeper containers are stored as TRIMMED
TRIMMED = "[…]"
FILTERED = "[Filtered]"
MAX_ATTR_VALUE_CHARS = 16_384
# Digits, '=', '@', ':', '?', '/', '&', '#' are left out of generated text so that no
# scrubbing rule (key=value secrets, card numbers, URLs, query strings) changes it.
ORDINARY = st.characters(exclude_characters="0123456789=@:?/&#", exclude_categories=("Cs",))
SURROGATE = st.characters(categories=("Cs",))
EDGE_TIMES = (0, 1, -1, NOW, INT64_MAX, INT64_MAX + 1, 2**64 - 1, 2**64, 10**30, INT64_MIN)
EDGE_INTS = (INT64_MIN, INT64_MIN - 1, -1, 0, INT64_MAX, INT64_MAX + 1, 2**64, 10**30)

SETTINGS = settings(
    max_examples=120,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


# ----------------------------------------------------------------------- the model


def short(x: Any) -> str:
    """A repr short enough for Hypothesis to print a failing example."""
    r = repr(x)
    return r if len(r) <= 80 else f"{r[:60]}…({len(r)} chars)"


@dataclass(frozen=True, repr=False)
class Value:
    """An OTLP AnyValue: kind is string, int, double, bool, array or kvlist."""

    kind: str
    v: Any

    def __repr__(self) -> str:
        return f"Value({self.kind!r}, {short(self.v)})"


@dataclass(repr=False)
class Item:
    """A span (name, start/end, event time) or a log record (name = body, start = time,
    end = observed time). ``ids`` is ok, short, zero or none (trace id). The name is also
    the message of the error event an ``error`` item makes."""

    ids: str
    name: str
    start: int
    end: int
    attrs: list[tuple[str, Value]]
    event_time: int | None = None
    ints_as_strings: bool = False
    error: bool = False  # an ERROR log record, or an exception span event: an error event too
    trace_id: bytes = b""
    span_id: bytes = b""

    def __repr__(self) -> str:
        return (
            f"Item({self.ids!r}, name={short(self.name)}, start={self.start}, end={self.end}, "
            f"attrs={short(self.attrs)}, event_time={self.event_time}, "
            f"ints_as_strings={self.ints_as_strings}, error={self.error})"
        )


@dataclass
class Request:
    signal: str  # traces or logs
    fmt: str  # json or protobuf
    items: list[Item] = field(default_factory=list)
    ordinary: int = 0  # the first n items are ordinary ones


def time_ok(t: int) -> bool:
    return 0 <= t <= INT64_MAX


def json_int_sent(v: int) -> int | str:
    """int64 may travel as a JSON number or a decimal string: odd values go as numbers."""
    return v if v % 2 else str(v)


def int_read(v: int) -> int:
    """The integer the server reads: a JSON number beyond 64 bits parses as a double."""
    return int(float(v)) if not INT64_MIN <= v < 2**64 and v % 2 else v


def ints_ok(v: Value) -> bool:
    if v.kind == "int":
        return bool(INT64_MIN <= int_read(v.v) <= INT64_MAX)
    if v.kind == "array":
        return all(ints_ok(x) for x in v.v)
    return True


def accepted(item: Item, signal: str) -> bool:
    """What docs/sending-data.md says is stored (else rejected item by item)."""
    if item.ids in ("short", "zero") or not all(ints_ok(v) for _, v in item.attrs):
        return False
    if signal == "logs":
        return time_ok(item.start) and time_ok(item.end)
    if item.ids == "none" or not 0 < item.start <= item.end <= INT64_MAX:
        return False
    return item.event_time is None or time_ok(item.event_time)


def clean(s: str) -> str:
    """Lone surrogates → U+FFFD; a surrogate pair sent as two escapes is one character."""
    return s.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


def clip(s: str) -> str:
    return s if len(s) <= MAX_ATTR_VALUE_CHARS else s[:MAX_ATTR_VALUE_CHARS] + "…"


def stored(v: Value, depth: int = 0) -> Any:
    """How a value reads back from the API."""
    if v.kind == "string":
        return clip(clean(v.v))
    if v.kind == "double":
        return v.v if math.isfinite(v.v) else None
    if v.kind == "int":
        return int_read(v.v)
    if v.kind in ("array", "kvlist") and depth >= MAX_VALUE_DEPTH:
        return TRIMMED
    if v.kind == "array":
        return [stored(x, depth + 1) for x in v.v]
    if v.kind == "kvlist":
        return {clean(k): stored(x, depth + 1) for k, x in v.v}
    return v.v


# ------------------------------------------------------------------- strategies


def texts(fmt: str) -> st.SearchStrategy[str]:
    chars = st.one_of(ORDINARY, SURROGATE) if fmt == "json" else ORDINARY
    return st.one_of(
        st.text(chars, max_size=12),
        st.sampled_from(["", "\x00", "a\x00b"]),
        st.integers(16_000, 20_000).map(lambda n: "y" * n),  # around the clip
    )


def times(fmt: str) -> st.SearchStrategy[int]:
    lo, hi = (INT64_MIN, 2**70) if fmt == "json" else (0, 2**64 - 1)
    edges = [t for t in EDGE_TIMES if lo <= t <= hi]
    return st.one_of(st.sampled_from(edges), st.integers(lo, hi), st.just(NOW))


def nested(fmt: str) -> st.SearchStrategy[Value]:
    """A chain of arrays and kvlists around one string, up to 40 deep (protobuf: arrays
    only, as the protobuf parser refuses messages nested deeper than 100)."""
    kinds = st.sampled_from(["array", "kvlist"] if fmt == "json" else ["array"])

    def wrap(chain: list[str]) -> Value:
        v = Value("string", "leaf")
        for kind in chain:
            v = Value(kind, [v] if kind == "array" else [("k", v)])
        return v

    return st.lists(kinds, max_size=40).map(wrap)


def values(fmt: str) -> st.SearchStrategy[Value]:
    ints = (
        st.one_of(st.sampled_from(EDGE_INTS), st.integers(-(2**70), 2**70))
        if fmt == "json"
        else st.integers(INT64_MIN, INT64_MAX)
    )
    return st.one_of(
        texts(fmt).map(lambda s: Value("string", s)),
        ints.map(lambda i: Value("int", i)),
        st.floats().map(lambda d: Value("double", d)),
        st.booleans().map(lambda b: Value("bool", b)),
        nested(fmt),
        st.integers(0, 1000).map(lambda n: Value("array", [Value("int", i) for i in range(n)])),
    )


def keys(fmt: str) -> st.SearchStrategy[str]:
    return st.one_of(texts(fmt), st.integers(1000, 20_000).map(lambda n: "k" * n))


@st.composite
def extreme_items(draw: st.DrawFn, fmt: str) -> Item:
    start = draw(times(fmt))
    end = draw(st.one_of(times(fmt), st.integers(0, 10**9).map(lambda d: start + d)))
    if fmt == "protobuf":
        end = min(max(end, 0), 2**64 - 1)
    names = st.lists(st.tuples(keys(fmt), values(fmt)), max_size=4)
    attrs = [(f"x{i}.{k}", v) for i, (k, v) in enumerate(draw(names))]
    return Item(
        ids=draw(st.sampled_from(["ok", "ok", "ok", "short", "zero", "none"])),
        name=draw(texts(fmt)),
        start=start,
        end=end,
        attrs=attrs,
        event_time=draw(st.one_of(st.none(), times(fmt))),
        ints_as_strings=draw(st.booleans()),
        error=draw(st.booleans()),
    )


def ordinary_item() -> Item:
    return Item("ok", "ordinary", NOW, NOW + 1000, [("x.n", Value("int", 7))])


@st.composite
def requests(draw: st.DrawFn) -> Request:
    req = Request(
        draw(st.sampled_from(["traces", "logs"])), draw(st.sampled_from(["json", "protobuf"]))
    )
    req.ordinary = draw(st.integers(1, 2))
    req.items = [ordinary_item() for _ in range(req.ordinary)]
    req.items += draw(st.lists(extreme_items(req.fmt), max_size=4))
    return req


# --------------------------------------------------------------------- encoders

_ids = itertools.count(1)


def assign_ids(req: Request) -> None:
    """Unique ids per item and call, so a replayed example never finds earlier rows."""
    for item in req.items:
        n = next(_ids)
        item.trace_id, item.span_id = n.to_bytes(16, "big"), n.to_bytes(8, "big")
        if item.ids == "short":
            item.trace_id = item.trace_id[1:]
        elif item.ids == "zero":
            item.trace_id = bytes(16)
        elif item.ids == "none":
            item.trace_id = b""


def json_value(v: Value) -> dict[str, Any]:
    if v.kind == "string":
        return {"stringValue": v.v}
    if v.kind == "int":
        return {"intValue": json_int_sent(v.v)}
    if v.kind == "double":
        d = v.v
        return {
            "doubleValue": d
            if math.isfinite(d)
            else str(d).replace("inf", "Infinity").replace("nan", "NaN")
        }
    if v.kind == "bool":
        return {"boolValue": v.v}
    if v.kind == "array":
        return {"arrayValue": {"values": [json_value(x) for x in v.v]}}
    return {"kvlistValue": {"values": [{"key": k, "value": json_value(x)} for k, x in v.v]}}


def span_event(item: Item) -> dict[str, Any]:
    if not item.error:
        return {"name": "e", "attributes": []}
    attrs = [
        ("exception.type", Value("string", "Boom")),
        ("exception.message", Value("string", item.name)),
    ]
    return {"name": "exception", "attributes": attrs}


def pb_event(item: Item) -> Span.Event:
    event = span_event(item)
    attrs = [KeyValue(key=k, value=pb_value(v)) for k, v in event["attributes"]]
    return Span.Event(name=event["name"], time_unix_nano=item.event_time, attributes=attrs)


def json_int(item: Item, t: int) -> int | str:
    return str(t) if item.ints_as_strings else t


def json_item(item: Item, signal: str) -> dict[str, Any]:
    attrs = [{"key": k, "value": json_value(v)} for k, v in item.attrs]
    doc: dict[str, Any] = {
        "traceId": item.trace_id.hex(),
        "spanId": item.span_id.hex(),
        "attributes": attrs,
    }
    if signal == "logs":
        doc |= {
            "timeUnixNano": json_int(item, item.start),
            "observedTimeUnixNano": json_int(item, item.end),
            "severityNumber": 17 if item.error else 9,
            "body": {"stringValue": item.name},
        }
        return doc
    doc |= {
        "name": item.name,
        "kind": 2,
        "startTimeUnixNano": json_int(item, item.start),
        "endTimeUnixNano": json_int(item, item.end),
    }
    if item.event_time is not None:
        event = span_event(item)
        event["timeUnixNano"] = json_int(item, item.event_time)
        event["attributes"] = [{"key": k, "value": json_value(v)} for k, v in event["attributes"]]
        doc["events"] = [event]
    return doc


def json_body(req: Request) -> bytes:
    items = [json_item(i, req.signal) for i in req.items]
    resource = {"attributes": [{"key": "service.name", "value": {"stringValue": "extremes"}}]}
    if req.signal == "logs":
        doc = {"resourceLogs": [{"resource": resource, "scopeLogs": [{"logRecords": items}]}]}
    else:
        doc = {"resourceSpans": [{"resource": resource, "scopeSpans": [{"spans": items}]}]}
    return json.dumps(doc).encode()  # ensure_ascii: lone surrogates travel as \udXXX


def pb_value(v: Value) -> AnyValue:
    if v.kind == "string":
        return AnyValue(string_value=v.v)
    if v.kind == "int":
        return AnyValue(int_value=v.v)
    if v.kind == "double":
        return AnyValue(double_value=v.v)
    if v.kind == "bool":
        return AnyValue(bool_value=v.v)
    if v.kind == "array":
        return AnyValue(array_value=ArrayValue(values=[pb_value(x) for x in v.v]))
    kvs = [KeyValue(key=k, value=pb_value(x)) for k, x in v.v]
    return AnyValue(kvlist_value=KeyValueList(values=kvs))


def pb_body(req: Request) -> bytes:
    resource = Resource(
        attributes=[KeyValue(key="service.name", value=AnyValue(string_value="extremes"))]
    )
    if req.signal == "logs":
        records = [
            LogRecord(
                time_unix_nano=i.start,
                observed_time_unix_nano=i.end,
                severity_number=17 if i.error else 9,  # type: ignore[arg-type]
                body=AnyValue(string_value=i.name),
                attributes=[KeyValue(key=k, value=pb_value(v)) for k, v in i.attrs],
                trace_id=i.trace_id,
                span_id=i.span_id,
            )
            for i in req.items
        ]
        logs = ResourceLogs(resource=resource, scope_logs=[ScopeLogs(log_records=records)])
        return ExportLogsServiceRequest(resource_logs=[logs]).SerializeToString()
    spans = [
        Span(
            trace_id=i.trace_id,
            span_id=i.span_id,
            name=i.name,
            kind=2,  # type: ignore[arg-type]
            start_time_unix_nano=i.start,
            end_time_unix_nano=i.end,
            attributes=[KeyValue(key=k, value=pb_value(v)) for k, v in i.attrs],
            events=[pb_event(i)] if i.event_time is not None else [],
        )
        for i in req.items
    ]
    rs = ResourceSpans(resource=resource, scope_spans=[ScopeSpans(spans=spans)])
    return ExportTraceServiceRequest(resource_spans=[rs]).SerializeToString()


# -------------------------------------------------------------------- the test


class Quiet(HeronProcess):
    """Hypothesis prints a failing test's arguments: not the whole environment."""

    def __repr__(self) -> str:
        return f"<heron serve at {self.url}>"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HeronProcess]:
    # Times from 1970 on are valid: a retention of ~270 years keeps them to be read back.
    made = make_heron(tmp_path_factory.mktemp("extremes"), HERON_RETENTION_DAYS="100000")
    h = Quiet(made.data_dir, made.port, made.env, made.log_path).start()
    yield h
    h.stop()


def rejected_count(req: Request, r: httpx.Response) -> tuple[int, str]:
    field_name = "rejectedLogRecords" if req.signal == "logs" else "rejectedSpans"
    if req.fmt == "json":
        ps = r.json().get("partialSuccess", {})
        return int(ps.get(field_name, 0)), ps.get("errorMessage", "")
    resp = ExportLogsServiceResponse() if req.signal == "logs" else ExportTraceServiceResponse()
    resp.ParseFromString(r.content)
    ps_pb = resp.partial_success
    n = ps_pb.rejected_log_records if req.signal == "logs" else ps_pb.rejected_spans  # type: ignore[union-attr]
    return n, ps_pb.error_message


def read_back(h: HeronProcess, req: Request, item: Item) -> dict[str, Any] | None:
    """The stored span or log record of ``item``, or None."""
    tid = item.trace_id.hex()
    if req.signal == "logs":
        r = h.api(f"/api/v1/traces/{tid}/logs")
        assert r.status_code == 200, r.text
        rows = r.json()["logs"]
    else:
        r = h.api(f"/api/v1/traces/{tid}")
        assert r.status_code in (200, 404), r.text
        rows = r.json()["spans"] if r.status_code == 200 else []
    assert len(rows) <= 1
    return rows[0] if rows else None


def check_stored(req: Request, item: Item, row: dict[str, Any]) -> None:
    want = {k if req.fmt == "protobuf" else clean(k): stored(v) for k, v in item.attrs}
    if req.signal == "logs":
        assert row["body"] == clip(clean(item.name))
        expected_time = item.start or item.end or None
        if expected_time:
            assert row["time_ns"] == expected_time
    else:
        assert row["name"] == clean(item.name)
        assert row["start_ns"] == item.start and row["duration_ns"] == item.end - item.start
    got = {k: v for k, v in row["attributes"].items() if k.startswith("x")}
    assert matches(got, want)


def matches(got: Any, want: Any) -> bool:
    """``got == want``, except that span scrubbing may replace a deep container by
    ``[Filtered]`` (docs/sending-data.md, what is scrubbed from spans)."""
    if isinstance(want, dict):
        return got == FILTERED or (
            isinstance(got, dict)
            and got.keys() == want.keys()
            and all(matches(got[k], v) for k, v in want.items())
        )
    if isinstance(want, list):
        return got == FILTERED or (
            isinstance(got, list)
            and len(got) == len(want)
            and all(matches(g, w) for g, w in zip(got, want, strict=True))
        )
    return bool(got == want)


@SETTINGS
@given(req=requests())
def test_extreme_values_never_5xx_and_valid_items_stored(
    server: HeronProcess, req: Request
) -> None:
    assign_ids(req)
    body = json_body(req) if req.fmt == "json" else pb_body(req)
    ctype = "application/json" if req.fmt == "json" else "application/x-protobuf"
    r = httpx.post(
        f"{server.url}/v1/{req.signal}",
        content=body,
        headers={"content-type": ctype, "x-heron-key": server.key},
        timeout=60,
    )
    assert r.status_code == 200, r.content[:500]
    expected = [accepted(i, req.signal) for i in req.items]
    assert all(expected[: req.ordinary])
    rejected, message = rejected_count(req, r)
    assert rejected == expected.count(False), message
    assert bool(message) == bool(rejected)
    for item, ok in zip(req.items, expected, strict=True):
        if len(item.trace_id) != 16:
            continue  # cannot be looked up; counted in `rejected` or, for logs, stored
        row = read_back(server, req, item)
        assert (row is not None) == ok, (item, message)
        if row is not None:
            check_stored(req, item, row)
