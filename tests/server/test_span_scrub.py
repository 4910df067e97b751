"""Span scrubbing at ingest: every place a secret can hide in a span, from any SDK."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from heron._scrub import FILTERED
from heron.server.analyze.span_scrub import SpanScrubber, strip_query
from heron.server.ingest.pipeline import Pipeline
from heron.server.model import Span
from heron.server.model.span import SpanBatch
from heron.server.store.duckdb_store import DuckDBStore

SECRET = "s3cr3t-CANARY-span"
NOW_NS = 1_800_000_000 * 1_000_000_000


def span(name: str = "GET /orders", **kw: Any) -> Span:
    fields: dict[str, Any] = {
        "trace_id": b"\x01" * 16,
        "span_id": 1,
        "parent_id": 0,
        "start_ns": NOW_NS,
        "duration_ns": 5_000_000,
        "name": name,
        "kind": 2,
        "status": 0,
        "status_message": "",
        "service": "shop",
        "environment": "prod",
        "release": "1.0",
        "http_method": "GET",
        "resource": {"service.name": "shop"},
    }
    return Span(**(fields | kw))


def scrubbed(s: Span, scrubber: SpanScrubber | None = None) -> Span:
    return (scrubber or SpanScrubber()).spans([s])[0]


# Every case of issue 9, in old and current semantic-convention names: (attribute, value).
CASES = [
    ("url.full", f"https://shop.test/cb?token={SECRET}&page=2"),
    ("url.full", f"https://bob:{SECRET}@shop.test/cb"),
    ("url.original", f"/cb?access_token={SECRET}"),
    ("url.query", f"token={SECRET}&page=2"),
    ("http.url", f"http://shop.test/cb?api_key={SECRET}"),
    ("http.target", f"/cb?password={SECRET}&page=2"),
    ("url.path", f"/cb;jsessionid={SECRET}"),
    ("http.request.header.authorization", [f"Bearer {SECRET}"]),
    ("http.request.header.proxy-authorization", [f"Basic {SECRET}"]),
    ("http.request.header.cookie", [f"sessionid={SECRET}; theme=dark"]),
    ("http.response.header.set-cookie", [f"sid={SECRET}; HttpOnly"]),
    ("http.request.header.x-api-key", [SECRET]),
    ("http.request.header.referer", [f"https://shop.test/login?token={SECRET}"]),
    ("app.password", SECRET),
    ("client_secret", SECRET),
    ("error.detail", f"login failed: password={SECRET}"),
    ("payment.card", "4111 1111 1111 1111"),
    ("rpc.request.metadata", {"authorization": SECRET, "nested": {"token": SECRET}}),
]


@pytest.mark.parametrize(("key", "value"), CASES)
def test_no_secret_survives_in_span_attributes(key: str, value: Any) -> None:
    out = scrubbed(span(attributes={key: value}))
    stored = repr(SpanBatch.from_spans([out]).rows)
    assert SECRET not in stored and "4111" not in stored, stored
    assert key in out.attributes  # the attribute (a header's name) stays


def test_what_is_not_a_secret_is_kept() -> None:
    attrs = {
        "url.full": f"https://shop.test/cb?token={SECRET}&page=2&q=a%20b#top",
        "url.query": f"token={SECRET}&page=2",
        "http.target": f"/cb?password={SECRET}&lang=en",
        "http.request.header.authorization": [f"Bearer {SECRET}"],
        "http.request.header.accept": ["text/html"],
        "user_agent.original": "Mozilla/5.0 (X11; Linux x86_64)",
        "gen_ai.usage.input_tokens": 512,
        "http.response.status_code": 200,
        "cache.hit": True,
    }
    out = scrubbed(span(attributes=attrs)).attributes
    assert out["url.full"] == f"https://shop.test/cb?token={FILTERED}&page=2&q=a%20b#top"
    assert out["url.query"] == f"token={FILTERED}&page=2"
    assert out["http.target"] == f"/cb?password={FILTERED}&lang=en"
    assert out["http.request.header.authorization"] == [FILTERED]
    for key in ("http.request.header.accept", "user_agent.original", "cache.hit"):
        assert out[key] == attrs[key]
    assert out["gen_ai.usage.input_tokens"] == 512  # a count, not a secret


def test_span_events_resource_links_and_status_are_scrubbed() -> None:
    s = span(
        status=2,
        status_message=f"upstream said token={SECRET}",
        resource={"service.name": "shop", "db.password": SECRET},
        events=[
            {
                "time_ns": NOW_NS,
                "name": "exception",
                "attributes": {
                    "exception.type": "ValueError",
                    "exception.message": f"login failed password={SECRET}",
                    "exception.stacktrace": f'Traceback:\n  File "a.py"\nValueError: api_key={SECRET}',
                },
            }
        ],
        links=[{"trace_id": "ab" * 16, "span_id": "cd" * 8, "attributes": {"token": SECRET}}],
    )
    out = scrubbed(s)
    assert SECRET not in repr(dataclasses.asdict(out))
    assert out.resource == {"service.name": "shop", "db.password": FILTERED}
    attrs = out.events[0]["attributes"]
    assert attrs["exception.type"] == "ValueError"
    assert attrs["exception.message"] == f"login failed password={FILTERED}"
    assert out.status_message == f"upstream said token={FILTERED}"


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        (f"GET /cb?token={SECRET}", "GET /cb"),
        (f"GET /cb#access_token={SECRET}", "GET /cb"),
        (f"HTTP GET https://u:{SECRET}@api.test/v1/items?key={SECRET}", "HTTP GET https://api.test/v1/items"),
        (f"/cb?token={SECRET}", "/cb"),
        ("GET /orders/{id}", "GET /orders/{id}"),
        ("SELECT * FROM t WHERE a = ? AND b = ?", "SELECT * FROM t WHERE a = ? AND b = ?"),
        ("what? why?", "what? why?"),
    ],
)  # fmt: skip
def test_names_lose_their_query_strings(name: str, expected: str) -> None:
    assert strip_query(name) == expected
    assert scrubbed(span(name)).name == expected


def test_names_are_scrubbed_as_text_and_routes_cut() -> None:
    out = scrubbed(span(f"login password={SECRET}", http_route=f"/cb?token={SECRET}"))
    assert out.name == f"login password={FILTERED}"
    assert out.http_route == "/cb" and out.endpoint == "GET /cb"


def test_database_span_names_are_left_to_sql_obfuscation() -> None:
    sql = "SELECT * FROM users WHERE password = ?"
    out = scrubbed(span(sql, kind=3, db_system="postgresql", db_statement=sql))
    assert out.name == sql and out.db_statement == sql


def test_configured_keys_extend_the_deny_list() -> None:
    s = span(attributes={"customer.ssn": SECRET, "note": f"ssn={SECRET}"})
    assert scrubbed(s).attributes["customer.ssn"] == SECRET
    out = scrubbed(s, SpanScrubber(["ssn"])).attributes
    assert out == {"customer.ssn": FILTERED, "note": f"ssn={FILTERED}"}


def test_a_batch_with_nothing_to_scrub_is_returned_as_is() -> None:
    batch = SpanBatch.from_spans(
        [span(attributes={"url.path": "/orders/42", "server.port": 8080}), span("SELECT 1")]
    )
    assert SpanScrubber().spans(batch) is batch


def test_batches_and_span_lists_give_the_same_rows() -> None:
    spans = [
        span(f"GET /cb?token={SECRET}", attributes={"url.query": f"token={SECRET}"}),
        span(attributes={"http.request.header.cookie": [f"sid={SECRET}"]}),
        span(),
    ]
    scrubber = SpanScrubber()
    from_list = scrubber.spans(spans).rows
    assert from_list == scrubber.spans(SpanBatch.from_spans(spans)).rows
    assert SECRET not in repr(from_list)


def test_deep_values_are_cut_off() -> None:
    deep: Any = {"password": SECRET}
    for _ in range(100):
        deep = {"a": [deep]}
    out = scrubbed(span(attributes={"x": deep})).attributes
    assert SECRET not in repr(out) and FILTERED in repr(out)


def test_the_store_scrubs_before_rows_and_rollups(tmp_path: Path) -> None:
    """Through the real writer: nothing of the secret reaches spans or rollup_1m."""
    store = DuckDBStore(tmp_path / "h.duckdb", commit_interval_ms=0).start()
    try:
        s = span(
            f"GET /cb?token={SECRET}",
            attributes={"url.full": f"https://shop.test/cb?token={SECRET}"},
        )
        assert Pipeline(store).submit_spans(1, [s]).result(10) == 1
        (name, attrs) = store.read("SELECT name, attributes FROM spans")[0]
        assert name == "GET /cb" and SECRET not in attrs
        assert orjson.loads(attrs)["url.full"] == f"https://shop.test/cb?token={FILTERED}"
        assert store.read("SELECT DISTINCT endpoint FROM rollup_1m") == [("GET /cb",)]
    finally:
        store.close()


@given(
    st.text(max_size=40),
    st.text(alphabet=st.characters(blacklist_categories=["Cs"]), max_size=40),
    st.sampled_from(["url.full", "url.query", "http.target", "note", "http.request.header.x"]),
)
def test_any_text_scrubs_without_error_and_planted_secrets_go(
    noise: str, value: str, key: str
) -> None:
    s = span(
        f"{noise} /cb?token={SECRET} {noise}",
        status_message=f"{noise} password={SECRET}",
        attributes={key: f"{value}&password={SECRET}&{value}", "k": value},
    )
    once = SpanScrubber().spans([s])
    assert SECRET not in repr(once.rows)
    assert SpanScrubber().spans(once).rows == once.rows  # scrubbing again changes nothing


def test_rum_ids_are_kept_whole_other_values_of_their_keys_are_scrubbed() -> None:
    """A page load's document span id (16 hex digits) and session id are ids Heron
    sets: a long digit run in them is not filtered as a card number (docs/rum.md)."""
    card_like = "4111111111111111"  # 16 digits, passes Luhn: hex, and a card number's form
    s = SpanScrubber()
    out = s.attributes(
        {
            "heron.rum.document_span": card_like,
            "heron.rum.session": "s4111111111111111",
            "other": card_like,
        }
    )
    assert out["heron.rum.document_span"] == card_like
    assert out["heron.rum.session"] == "s4111111111111111"
    assert out["other"] != card_like  # the same text elsewhere is filtered
    bad = s.attributes({"heron.rum.document_span": f"x {card_like}"})  # not an id's form
    assert bad["heron.rum.document_span"] != f"x {card_like}"
