"""Sentry ingest over in-process ASGI: envelopes, store, auth, encodings, limits, 429.

The HTTP tests run on every backend (``tests/server/backends.py``) and read what was
stored through the store's public readers."""

from __future__ import annotations

import gzip
import threading
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import brotli
import orjson
import pytest

from heron.server.errors import BadRequest
from heron.server.ingest.sentry import event_from_sentry, parse_envelope, timestamp_ns
from heron.server.model.write import EventWrite
from heron.server.store.duckdb_store import DuckDBStore

from .backends import BACKENDS
from .ingest_client import KEY, NOW_NS, Heron, running_heron

AUTH = {"X-Sentry-Auth": f"Sentry sentry_version=7, sentry_client=test/1.0, sentry_key={KEY}"}


@pytest.fixture(scope="module", params=BACKENDS)
def heron(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, chdb_dir: Path
) -> Iterator[Heron]:
    with running_heron(tmp_path_factory.mktemp("sentry"), request.param, chdb_dir) as h:
        yield h


def sentry_event(event_id: str, **kw: Any) -> dict[str, Any]:
    return {
        "event_id": event_id,
        "timestamp": "2023-11-14T22:13:20.250000Z",
        "platform": "python",
        "level": "error",
        "release": "shop@2.0",
        "environment": "prod",
        "transaction": "GET /orders",
        "exception": {
            "values": [
                {
                    "type": "ZeroDivisionError",
                    "value": "division by zero",
                    "module": None,
                    "mechanism": {"type": "flask", "handled": False},
                    "stacktrace": {
                        "frames": [
                            {
                                "filename": "app.py",
                                "module": "shop.app",
                                "function": "orders",
                                "lineno": 12,
                                "context_line": "    return 1 / 0",
                                "in_app": True,
                                "vars": {"x": "1"},
                                "instruction_addr": "0x1",
                            }
                        ]
                    },
                }
            ]
        },
        "contexts": {"trace": {"trace_id": "ab" * 16, "span_id": "cd" * 8}},
        "tags": [["service", "shop-web"], ["region", "eu"]],
        "user": {"id": "u-7"},
        "sdk": {"name": "sentry.python", "version": "2.75.0"},
        **kw,
    }


def envelope(*items: tuple[dict[str, Any], bytes], header: dict[str, Any] | None = None) -> bytes:
    out = [orjson.dumps(header or {})]
    for h, payload in items:
        out += [orjson.dumps(h), payload]
    return b"\n".join(out) + b"\n"


def event_item(doc: dict[str, Any], with_length: bool = True) -> tuple[dict[str, Any], bytes]:
    payload = orjson.dumps(doc)
    h: dict[str, Any] = {"type": "event"}
    if with_length:
        h["length"] = len(payload)
    return h, payload


def stored(heron: Heron, event_id: str) -> dict[str, Any]:
    row = heron.event(event_id)
    assert row is not None, event_id
    return row


# ----------------------------------------------------------------------- parsing


def test_envelope_items_with_and_without_length() -> None:
    binary = b"line1\nline2\n\x00\xff"
    body = (
        b'{"event_id":"9ec79c33ec9942ab8353589fcb2e04dc"}\n'
        + b'{"type":"attachment","length":%d}\n' % len(binary)
        + binary
        + b'\n{"type":"event"}\n{"message":"hi"}\n'
        + b'{"type":"session"}\n{"sid":"x"}'
    )
    headers, items = parse_envelope(body)
    assert headers["event_id"] == "9ec79c33ec9942ab8353589fcb2e04dc"
    assert [(h["type"], p) for h, p in items] == [
        ("attachment", binary),
        ("event", b'{"message":"hi"}'),
        ("session", b'{"sid":"x"}'),
    ]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"not json\n", "envelope header is not valid JSON"),
        (b"[1,2]\n", "envelope header must be a JSON object"),
        (b'{}\n{"type":"event","length":100}\n{}', "shorter than its length"),
        (b'{}\n{"type":"event","length":"3"}\n{}', "length must be an integer"),
        (b"{}\ngarbage\n", "item 1 header is not valid JSON"),
    ],
)
def test_bad_envelopes_name_the_problem(body: bytes, message: str) -> None:
    with pytest.raises(BadRequest, match=message):
        parse_envelope(body)


def test_event_normalization() -> None:
    ev = event_from_sentry(sentry_event("A" * 32), received_ns=NOW_NS)
    assert ev.event_id == "a" * 32
    assert ev.time_ns == 1_700_000_000_250_000_000
    assert ev.exc_type == "ZeroDivisionError" and ev.message == "division by zero"
    assert ev.handled is False and ev.service == "shop-web"
    assert ev.trace_id == bytes.fromhex("ab" * 16) and ev.span_id == int("cd" * 8, 16)
    assert ev.tags == {"service": "shop-web", "region": "eu"}
    frame = ev.exceptions[0]["frames"][0]
    assert "instruction_addr" not in frame and frame["lineno"] == 12
    assert ev.sdk == "sentry.python/2.75.0" and ev.user_key == "id:u-7"
    msg = event_from_sentry(
        {"logentry": {"message": "hello %s", "formatted": "hello bob"}, "level": "warn"},
        received_ns=NOW_NS,
    )
    assert (msg.message, msg.level, msg.exc_type, msg.time_ns) == (
        "hello bob",
        "warning",
        None,
        NOW_NS,
    )
    assert msg.environment == "production" and msg.service == "unknown_service"
    assert timestamp_ns(1_700_000_000.5, 0) == 1_700_000_000_500_000_000
    assert timestamp_ns("2023-11-14T22:13:20", 0) == 1_700_000_000 * 10**9
    assert timestamp_ns("yesterday", 7) == 7


# ------------------------------------------------------------------------- HTTP


def test_envelope_with_header_auth_is_stored_and_answers_its_id(heron: Heron) -> None:
    eid = "1" * 32
    body = envelope(
        ({"type": "transaction"}, b'{"type":"transaction","spans":[]}'),
        event_item(sentry_event(eid)),
        ({"type": "client_report"}, b'{"discarded_events":[]}'),
        header={"event_id": eid},
    )
    r = heron.post("/api/1/envelope/", body, headers=AUTH)
    assert r.status_code == 200, r.text
    assert r.json() == {"id": eid}
    row = stored(heron, eid)
    assert row["exc_type"] == "ZeroDivisionError" and row["service"] == "shop-web"
    assert row["release"] == "shop@2.0" and row["transaction"] == "GET /orders"
    assert row["culprit"] == "shop.app in orders" and row["source"] == "sentry"
    issue = heron.issue(row["issue_id"])
    assert issue["title"] == "ZeroDivisionError: division by zero"


def test_key_in_query_string_or_envelope_dsn(heron: Heron) -> None:
    for i, (path, header) in enumerate(
        [
            (f"/api/1/envelope/?sentry_key={KEY}&sentry_version=7", {}),
            ("/api/1/envelope", {"dsn": f"http://{KEY}@heron.example/1"}),
        ]
    ):
        eid = f"{i + 2}" * 32
        r = heron.post(path, envelope(event_item(sentry_event(eid), False), header=header))
        assert r.status_code == 200, r.text
        assert r.json() == {"id": eid}
        stored(heron, eid)


def test_store_endpoint_with_and_without_slash(heron: Heron) -> None:
    for i, path in enumerate(["/api/1/store/", "/api/1/store"]):
        eid = f"{i + 4}" * 32
        r = heron.post(path, orjson.dumps(sentry_event(eid)), headers=AUTH)
        assert r.status_code == 200 and r.json() == {"id": eid}
        stored(heron, eid)


@pytest.mark.parametrize(
    ("encoding", "compress"),
    [("gzip", gzip.compress), ("deflate", zlib.compress), ("br", brotli.compress)],
)
def test_compressed_bodies(heron: Heron, encoding: str, compress: Any) -> None:
    eid = {"gzip": "6", "deflate": "7", "br": "8"}[encoding] * 32
    body = compress(envelope(event_item(sentry_event(eid))))
    r = heron.post("/api/1/envelope/", body, headers={**AUTH, "Content-Encoding": encoding})
    assert r.status_code == 200, r.text
    stored(heron, eid)


def test_auth_failures(heron: Heron) -> None:
    body = envelope(event_item(sentry_event("9" * 32)))
    r = heron.post("/api/1/envelope/", body)
    assert r.status_code == 401 and "missing Sentry key" in r.json()["error"]
    bad = {"X-Sentry-Auth": "Sentry sentry_key=hk_wrong, sentry_version=7"}
    r = heron.post("/api/1/envelope/", body, headers=bad)
    assert r.status_code == 401 and "unknown" in r.json()["error"]
    r = heron.post("/api/2/envelope/", body, headers=AUTH)
    assert r.status_code == 403
    assert "belongs to project 1" in r.json()["error"]
    r = heron.post("/api/1/envelope/", envelope(header={"dsn": "http://hk_wrong@h/1"}))
    assert r.status_code == 401
    assert heron.event("9" * 32) is None


def test_bad_bodies_get_400_with_a_message(heron: Heron) -> None:
    r = heron.post("/api/1/envelope/", b"\x00\x01garbage", headers=AUTH)
    assert r.status_code == 400 and "not valid JSON" in r.json()["error"]
    r = heron.post("/api/1/envelope/", envelope(({"type": "event"}, b"{nope")), headers=AUTH)
    assert r.status_code == 400 and "event is not valid JSON" in r.json()["error"]
    r = heron.post("/api/1/store/", b"[]", headers=AUTH)
    assert r.status_code == 400 and "must be a JSON object" in r.json()["error"]
    r = heron.post("/api/1/envelope/", b"not brotli", headers={**AUTH, "Content-Encoding": "br"})
    assert r.status_code == 400 and "brotli" in r.json()["error"]
    big = envelope(event_item(sentry_event("e" * 32, extra={"blob": "x" * 1_100_000})))
    r = heron.post("/api/1/envelope/", big, headers=AUTH)
    assert r.status_code == 413
    eid = "f" * 32
    r = heron.post("/api/1/envelope/", envelope(event_item(sentry_event(eid))), headers=AUTH)
    assert r.status_code == 200  # still serving


def test_sentry_log_items_become_log_rows(heron: Heron) -> None:
    payload = {
        "items": [
            {
                "timestamp": 1_700_000_001.5,
                "trace_id": "ef" * 16,
                "level": "warn",
                "body": "stock low for sku 12",
                "attributes": {
                    "sentry.release": {"value": "shop@2.0", "type": "string"},
                    "sentry.environment": {"value": "prod", "type": "string"},
                    "api_token": {"value": "tok-secret", "type": "string"},
                },
            }
        ]
    }
    body = envelope(({"type": "log", "item_count": 1}, orjson.dumps(payload)))
    r = heron.post("/api/1/envelope/", body, headers=AUTH)
    assert r.status_code == 200, r.text
    rows = heron.logs("stock low for sku 12")
    assert len(rows) == 1
    log = rows[0]
    assert log["severity_number"] == 13 and log["severity_text"] == "WARN"
    assert bytes(log["trace_id"]) == bytes.fromhex("ef" * 16)
    assert log["release"] == "shop@2.0" and log["time_ns"] == 1_700_000_001_500_000_000
    assert "tok-secret" not in log["attributes"]


def test_queue_full_answers_429_with_rate_limit_headers(tmp_path: Path) -> None:
    # DuckDB only: it holds the writer busy with a DuckDB writer task.
    with running_heron(tmp_path, queue_max_events=1) as h:
        assert isinstance(h.store, DuckDBStore)
        release = threading.Event()
        busy = h.store.submit_write(lambda con: release.wait(30))
        try:
            h.store.submit_events(EventWrite(1, [event_from_sentry({}, received_ns=NOW_NS)], []))
            r = h.post(
                "/api/1/envelope/", envelope(event_item(sentry_event("c" * 32))), headers=AUTH
            )
        finally:
            release.set()
        busy.result(30)
        assert r.status_code == 429, r.text
        assert r.headers["retry-after"] == "1"
        assert r.headers["x-sentry-rate-limits"].startswith("1::")
        assert "queue full" in r.json()["error"]
