"""Sentry transactions (sentry-sdk 2.x) and span v2 items (3.x) as spans."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from heron._scrub import Scrubber
from heron.server.ingest.sentry import service_name, timestamp_ns, transaction_service
from heron.server.ingest.sentry_tracing import SentrySpans, status_of
from heron.server.model import SPAN_KIND_CLIENT, SPAN_KIND_INTERNAL, SPAN_KIND_SERVER, Span

from .ingest_client import KEY, Heron, running_heron

TRACE = "aa59506cbc5940ef9f2e4dff7dca5327"
ROOT, DB, HTTP = "bd31996d323839f7", "b4874aa4dd58f0d1", "c4874aa4dd58f0d2"

# What sentry-sdk 2.x's Flask + SQLAlchemy + stdlib integrations send (trimmed).
TRANSACTION: dict[str, Any] = {
    "type": "transaction",
    "transaction": "/orders/<int:oid>",
    "transaction_info": {"source": "route"},
    "contexts": {
        "response": {"status_code": 200},
        "trace": {
            "trace_id": TRACE,
            "span_id": ROOT,
            "parent_span_id": None,
            "op": "http.server",
            "origin": "auto.http.flask",
            "status": "ok",
            "data": {"thread.name": "MainThread", "http.response.status_code": 200},
        },
    },
    "tags": {"http.status_code": "200", "region": "eu"},
    "timestamp": "2026-12-07T12:44:47.440353Z",
    "start_timestamp": "2026-12-07T12:44:47.438663Z",
    "measurements": {"app.items": {"value": 3, "unit": "none"}},
    "spans": [
        {
            "trace_id": TRACE,
            "span_id": DB,
            "parent_span_id": ROOT,
            "op": "db",
            "description": "select total from orders where id = ?",
            "start_timestamp": 1796647487.4390,
            "timestamp": 1796647487.4395,
            "origin": "auto.db.sqlalchemy",
            "data": {"db.system": "sqlite", "db.name": "shop"},
        },
        {
            "trace_id": TRACE,
            "span_id": HTTP,
            "parent_span_id": ROOT,
            "op": "http.client",
            "description": "GET http://user:pw@pay.example/charge",
            "start_timestamp": 1796647487.4396,
            "timestamp": 1796647487.4399,
            "status": "internal_error",
            "data": {"http.method": "GET", "http.query": "token=s3cret&n=1", "status_code": 500},
        },
    ],
    "request": {
        "url": "http://localhost/orders/7",
        "method": "GET",
        "query_string": "api_key=abc&page=2",
        "headers": {"User-Agent": "curl/8", "Cookie": "session=secret"},
    },
    "release": "shop@1.2.3",
    "environment": "staging",
    "server_name": "web-1",
    "platform": "python",
    "sdk": {"name": "sentry.python.flask", "version": "2.76.0"},
}


def typed(**attrs: Any) -> dict[str, Any]:
    return {k.replace("__", "."): {"value": v, "type": "string"} for k, v in attrs.items()}


# What sentry-sdk 3.x streams (trimmed): one span v2 item with a segment and a child.
SPAN_ITEM: dict[str, Any] = {
    "version": 2,
    "items": [
        {
            "trace_id": TRACE,
            "span_id": DB,
            "parent_span_id": ROOT,
            "name": "select total from orders where id = ?",
            "status": "ok",
            "is_segment": False,
            "start_timestamp": 1796647487.4390,
            "end_timestamp": 1796647487.4395,
            "attributes": {
                **typed(sentry__op="db", db__system__name="sqlite"),
                **typed(db__query__text="select total from orders where id = ?"),
                **typed(sentry__release="shop@3.0.0", sentry__environment="prod"),
            },
        },
        {
            "trace_id": TRACE,
            "span_id": ROOT,
            "name": "/boom",
            "status": "error",
            "is_segment": True,
            "start_timestamp": 1796647487.4380,
            "end_timestamp": 1796647487.4400,
            "attributes": {
                **typed(sentry__op="http.server", http__request__method="POST"),
                **typed(sentry__segment__name__source="route", url__path="/boom"),
                **typed(sentry__release="shop@3.0.0", sentry__environment="prod"),
                **typed(process__command_args="run http://hk_secret@heron/1"),
                **typed(http__request__header__authorization="Bearer x"),
                "http.response.status_code": {"value": 500, "type": "integer"},
            },
        },
    ],
}


def converted(transactions: list[dict[str, Any]] = (), span_items: list[Any] = ()) -> SentrySpans:  # type: ignore[assignment]
    out = SentrySpans(Scrubber(), timestamp_ns)
    for doc in transactions:
        out.add_transaction(doc, transaction_service(doc))
    for item in span_items:
        out.add_span_items(item, service_name)
    return out


def by_id(spans: list[Span]) -> dict[str, Span]:
    return {f"{s.span_id:016x}": s for s in spans}


def test_a_transaction_becomes_its_root_and_child_spans() -> None:
    result = converted([TRANSACTION])
    assert result.rejected == 0
    spans = by_id(result.spans)
    root, db, http = spans[ROOT], spans[DB], spans[HTTP]
    assert {s.trace_id.hex() for s in spans.values()} == {TRACE}
    assert (root.parent_id, db.parent_id, http.parent_id) == (0, int(ROOT, 16), int(ROOT, 16))
    assert (root.name, root.kind, root.status) == ("GET /orders/<int:oid>", SPAN_KIND_SERVER, 1)
    assert (root.http_method, root.http_route, root.http_status) == (
        "GET",
        "/orders/<int:oid>",
        200,
    )
    assert root.start_ns == 1796647487438663000 and root.duration_ns == 1690000
    assert root.attributes["url.full"] == "http://localhost/orders/7?api_key=[Filtered]&page=2"
    assert root.attributes["user_agent.original"] == "curl/8"
    assert root.attributes["measurement.app.items"] == 3
    assert root.attributes["region"] == "eu" and "status" not in root.attributes
    assert "session=secret" not in orjson.dumps(root.attributes).decode()
    assert (root.service, root.release, root.environment) == ("shop", "shop@1.2.3", "staging")
    assert root.resource["host.name"] == "web-1"
    assert root.resource["telemetry.sdk.name"] == "sentry.python.flask"
    assert root.scope == "auto.http.flask"
    assert (db.name, db.kind, db.db_system) == ("SELECT shop", SPAN_KIND_CLIENT, "sqlite")
    assert db.db_statement == "select total from orders where id = ?"
    assert db.attributes["db.namespace"] == "shop" and abs(db.duration_ns - 500_000) < 1000
    assert (http.name, http.kind, http.status, http.status_message) == (
        "GET",
        SPAN_KIND_CLIENT,
        2,
        "internal_error",
    )
    assert http.http_status == 500 and http.http_method == "GET"
    assert http.attributes["url.full"] == "http://pay.example/charge"
    assert http.attributes["url.query"] == "token=[Filtered]&n=1"


def test_span_v2_items_become_spans() -> None:
    result = converted(span_items=[SPAN_ITEM])
    spans = by_id(result.spans)
    root, db = spans[ROOT], spans[DB]
    assert (root.name, root.kind, root.status, root.status_message) == (
        "POST /boom",
        SPAN_KIND_SERVER,
        2,
        "error",
    )
    assert root.http_route == "/boom" and root.http_status == 500 and root.is_error
    assert root.attributes["http.request.header.authorization"] == "[Filtered]"
    assert "process.command_args" not in root.attributes
    assert "sentry.release" not in root.attributes
    assert (root.service, root.release, root.environment) == ("shop", "shop@3.0.0", "prod")
    assert (db.name, db.kind, db.db_statement) == (
        "SELECT",
        SPAN_KIND_CLIENT,
        "select total from orders where id = ?",
    )


def test_invalid_spans_are_counted_and_the_others_kept() -> None:
    bad = {**TRANSACTION, "spans": [*TRANSACTION["spans"], {"span_id": "xyz"}, "nope"]}
    result = converted([bad], [{"items": [{"trace_id": TRACE, "span_id": DB}]}, {"x": 1}])
    assert len(result.spans) == 3 and result.rejected == 4
    assert "span_id must be a 16-character hex string" in result.errors


def test_timestamps_out_of_range_reject_the_span_only() -> None:
    far = {**TRANSACTION["spans"][0], "span_id": "1" * 16, "timestamp": 1e30}
    before = {**TRANSACTION["spans"][0], "span_id": "2" * 16, "start_timestamp": -5}
    result = converted([{**TRANSACTION, "spans": [far, before, TRANSACTION["spans"][1]]}])
    assert sorted(f"{s.span_id:016x}" for s in result.spans) == sorted([ROOT, HTTP])
    assert result.rejected == 2


JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)
TX_KEYS = st.sampled_from(
    [
        "contexts",
        "spans",
        "tags",
        "measurements",
        "request",
        "release",
        "start_timestamp",
        "timestamp",
        "transaction",
        "transaction_info",
        "sdk",
        "platform",
        "server_name",
    ]
)
SPAN_KEYS = st.sampled_from(
    [
        "trace_id",
        "span_id",
        "parent_span_id",
        "op",
        "description",
        "status",
        "data",
        "tags",
        "start_timestamp",
        "timestamp",
        "end_timestamp",
        "name",
        "is_segment",
        "attributes",
        "kind",
    ]
)


@settings(max_examples=300, deadline=None)
@given(
    tx=st.dictionaries(TX_KEYS, JSON, max_size=4),
    span=st.dictionaries(SPAN_KEYS, JSON, max_size=5),
    items=JSON,
)
def test_any_shape_is_converted_or_rejected_never_raises(
    tx: dict[str, Any], span: dict[str, Any], items: Any
) -> None:
    """Whatever JSON a client sends in these fields: spans or counted rejections."""
    child = {**TRANSACTION["spans"][0], **span}
    result = converted(
        [{**TRANSACTION, **tx}, {**TRANSACTION, "spans": [child]}],
        [{"items": [{**SPAN_ITEM["items"][0], **span}]}, {"items": items}],
    )
    for s in result.spans:
        assert 0 < s.start_ns < 2**63 and 0 <= s.duration_ns < 2**63
        assert len(s.trace_id) == 16 and 0 < s.span_id < 2**64


def test_the_sdks_own_uploads_are_not_the_apps_spans() -> None:
    upload = {
        "trace_id": TRACE,
        "span_id": HTTP,
        "parent_span_id": ROOT,
        "name": "POST http://127.0.0.1:4318/api/1/envelope/",
        "status": "ok",
        "start_timestamp": 1796647487.4390,
        "end_timestamp": 1796647487.4395,
        "attributes": typed(sentry__op="http.client"),
    }
    result = converted(span_items=[{"items": [upload, *SPAN_ITEM["items"]]}])
    assert sorted(f"{s.span_id:016x}" for s in result.spans) == sorted([ROOT, DB])
    assert result.rejected == 0


@pytest.mark.parametrize(
    ("status", "kind", "code", "expected"),
    [
        ("ok", SPAN_KIND_SERVER, 200, (1, "")),
        ("", SPAN_KIND_INTERNAL, None, (0, "")),
        ("not_found", SPAN_KIND_SERVER, 404, (0, "")),
        ("not_found", SPAN_KIND_CLIENT, 404, (2, "not_found")),
        ("internal_error", SPAN_KIND_SERVER, 500, (2, "internal_error")),
        ("deadline_exceeded", SPAN_KIND_INTERNAL, None, (2, "deadline_exceeded")),
    ],
)
def test_status_mapping(
    status: str, kind: int, code: int | None, expected: tuple[int, str]
) -> None:
    attrs = {} if code is None else {"http.response.status_code": code}
    assert status_of(status, kind, attrs) == expected


@pytest.mark.parametrize(
    ("tags", "release", "expected"),
    [
        ({"service.name": "api", "service": "web"}, "shop@1.0", "api"),
        ({"service": "web"}, "shop@1.0", "web"),
        ({}, "shop@1.0+42", "shop"),
        ({}, "da39a3ee5e6b4b0d3255bfef95601890afd80709", "unknown_service"),
        ({"service": " "}, "@1.0", "unknown_service"),
    ],
)
def test_service_precedence(tags: dict[str, str], release: str, expected: str) -> None:
    assert service_name(tags, release) == expected


@pytest.fixture
def heron(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Heron]:
    with running_heron(tmp_path_factory.mktemp("sentry-tracing")) as h:
        yield h


def envelope(*items: tuple[str, dict[str, Any]]) -> bytes:
    lines = [b"{}"]
    for kind, doc in items:
        payload = orjson.dumps(doc)
        lines += [orjson.dumps({"type": kind, "length": len(payload)}), payload]
    return b"\n".join(lines)


def test_envelopes_with_transactions_and_spans_are_stored(heron: Heron) -> None:
    headers = {"X-Sentry-Auth": f"Sentry sentry_key={KEY}"}
    r = heron.post("/api/1/envelope/", envelope(("transaction", TRANSACTION)), headers=headers)
    assert r.status_code == 200
    r = heron.post("/api/1/envelope/", envelope(("span", SPAN_ITEM)), headers=headers)
    assert r.status_code == 200
    rows = heron.rows("SELECT name, kind, service, db_fingerprint FROM spans ORDER BY start_ns")
    assert [(r["name"], r["kind"], r["service"]) for r in rows] == [
        ("POST /boom", 2, "shop"),
        ("GET /orders/<int:oid>", 2, "shop"),
        ("SELECT shop", 3, "shop"),
        ("SELECT", 3, "shop"),
        ("GET", 3, "shop"),
    ]
    assert rows[2]["db_fingerprint"] == rows[3]["db_fingerprint"] is not None
    r = heron.post("/api/1/envelope/", b'{}\n{"type":"transaction"}\n{nope', headers=headers)
    assert r.status_code == 400 and "transaction is not valid JSON" in r.json()["error"]
