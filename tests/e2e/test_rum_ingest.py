"""The RUM beacon endpoint over a real socket (uvicorn on loopback, the real app, on
DuckDB and on ClickHouse (chdb) with its DuckDB state file): what a good beacon stores (RUM events, browser spans in the backend's
trace, a JavaScript issue), and every way a bad one is refused with nothing stored while
the server keeps serving.

Each test posts from its own client address (``X-Forwarded-For`` from a trusted proxy)
and its own page session, so the rate limits of one do not spill into another and
"nothing stored" is checked per session.
"""

from __future__ import annotations

import copy
import hashlib
import json
import secrets
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from heron.server import query
from heron.server.app import create_app
from heron.server.config import Config
from heron.server.store.base import Store
from tests.conftest import free_port, make_heron
from tests.server.ingest_client import EVENT_KEYS, app_store

BROWSER_KEY = "hb_rum_test_browser_key_0123456789"
ORIGIN = "https://shop.example"
PROJECT = 1
NOW_MS = time.time() * 1000
CHROME = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36"
)
DOC_SPAN = "00f067aa0ba902b7"
FETCH_SPAN = "10f067aa0ba902b8"
XSS = '<script>alert("x")</script>'


@dataclass
class Rum:
    url: str
    store: Store
    app: Any

    def post(
        self,
        body: bytes | str,
        *,
        client: str,
        key: str | None = BROWSER_KEY,
        origin: str | None = ORIGIN,
        ctype: str = "text/plain;charset=UTF-8",
        ua: str = CHROME,
    ) -> httpx.Response:
        headers = {"content-type": ctype, "user-agent": ua, "x-forwarded-for": client}
        if origin is not None:
            headers["origin"] = origin
        params = {"key": key} if key is not None else {}
        return httpx.post(
            f"{self.url}/rum/v1/events", params=params, content=body, headers=headers, timeout=30
        )

    def stored(self, session: str) -> list[tuple[Any, ...]]:
        return self.store.rum.session(PROJECT, session, 10_000)

    def rejected(self, signal: str, reason: str) -> int:
        return int(self.app.state.rum_ingest.pipeline.rejected.get((signal, reason), 0))


@pytest.fixture(scope="module", params=["duckdb", "clickhouse"])
def rum(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, chdb_dir: Path
) -> Iterator[Rum]:
    data = tmp_path_factory.mktemp("rum-ingest")
    config = Config(
        data_dir=str(data),
        api_token="ht_rum_test_token_0123456789",
        rum_allowed_origins=f"{ORIGIN}, https://www.shop.example",
        rum_browser_key=BROWSER_KEY,
        rum_max_body_bytes=16 * 1024,
        rum_max_events=50,
        rum_rate_per_ip=5.0,  # bursts of 50
        rum_rate_per_session=1.0,  # bursts of 10
        trusted_proxies="127.0.0.1",
    )
    store = app_store(request.param, data, chdb_dir if request.param != "duckdb" else None)
    app = create_app(config, store=store, maintenance_interval_s=3600)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    try:
        yield Rum(f"http://127.0.0.1:{port}", store, app)
    finally:
        server.should_exit = True
        thread.join(30)


def session() -> str:
    return "s" + secrets.token_hex(8)


def trace_of(sess: str, what: str = "page") -> str:
    """The page's (or a fetch's) trace id in a session's beacons: one per test."""
    return hashlib.md5(f"{what}:{sess}".encode()).hexdigest()


def beacon(sess: str, events: list[dict[str, Any]] | None = None, **views: Any) -> dict[str, Any]:
    view = {
        "url": f"https://shop.example/products/42?ref=mail&token=tok_{sess}",
        "referrer": "https://shop.example/",
        "nav": "navigate",
        "start": NOW_MS,
        "trace": f"00-{trace_of(sess)}-{DOC_SPAN}-01",
        **views,
    }
    return {
        "v": 1,
        "sdk": "heron-rum/0.1.0",
        "session": sess,
        "user": "u-42",
        "app": "shop-web",
        "release": "1.4.2",
        "environment": "test",
        "views": {"v1": view},
        "events": events if events is not None else full_events(sess),
    }


def full_events(sess: str = "") -> list[dict[str, Any]]:
    at = NOW_MS
    return [
        {
            "t": "view",
            "view": "v1",
            "ts": at,
            "timing": {
                "dns_start": 2,
                "dns_end": 8,
                "request_start": 20,
                "response_start": 120,
                "response_end": 140,
                "dom_interactive": 300,
                "dcl_end": 320,
                "load_end": 900,
            },
        },
        {
            "t": "vital",
            "view": "v1",
            "ts": at + 800,
            "name": "LCP",
            "value": 4200,
            "attribution": {"target": f"img.hero{XSS}", "url": "https://cdn.example/h.png"},
        },
        {"t": "vital", "view": "v1", "ts": at + 900, "name": "CLS", "value": 0.05},
        {
            "t": "resource",
            "view": "v1",
            "ts": at + 50,
            "name": "https://cdn.example/big.js?v=3&token=abcdef",
            "initiator": "script",
            "duration": 1500,
            "transfer_size": 900000,
        },
        {
            "t": "interaction",
            "view": "v1",
            "ts": at + 2000,
            "type": "pointer",
            "event": "click",
            "target": "button#add-to-cart",
            "duration": 250,
            "input_delay": 10,
            "processing": 200,
            "presentation": 40,
        },
        {"t": "longtask", "view": "v1", "ts": at + 400, "duration": 120, "blocking": 70},
        {
            "t": "fetch",
            "view": "v1",
            "ts": at + 2100,
            "method": "POST",
            "url": "https://shop.example/api/cart?access_token=sekrit123456",
            "status": 201,
            "duration": 80,
            "trace": f"00-{trace_of(sess, 'fetch')}-{FETCH_SPAN}-01",
        },
        {
            "t": "error",
            "view": "v1",
            "ts": at + 3000,
            "type": "TypeError",
            "message": f"price is undefined {XSS} api_key=abcdef0123456789",
            "stack": "TypeError: price is undefined\n"
            "    at addToCart (https://shop.example/static/app.js:120:17)\n"
            "    at HTMLButtonElement.onclick (https://shop.example/products/42:1:1)\n"
            "    at dispatch (https://cdn.example/vendor.js:2:300)",
            "mechanism": "onerror",
            "handled": False,
        },
        {
            "t": "render",
            "view": "v1",
            "ts": at + 500,
            "component": "Cart",
            "phase": "update",
            "duration": 130,
            "base": 90,
        },
        {"t": "hologram", "view": "v1", "ts": at},
    ]


def as_dict(row: tuple[Any, ...]) -> dict[str, Any]:
    from heron.server.model.rum import RUM_FIELDS

    return dict(zip(RUM_FIELDS, row, strict=True))


# ---------------------------------------------------------------- a good beacon


def test_good_beacon_is_stored(rum: Rum) -> None:
    sess = session()
    r = rum.post(json.dumps(beacon(sess)), client="10.0.0.1")
    assert r.status_code == 200, r.text
    assert r.json() == {"accepted": 9, "unknown": 1, "invalid": 0}
    assert r.headers["access-control-allow-origin"] == ORIGIN
    assert r.headers["vary"] == "Origin"
    rows = [as_dict(x) for x in rum.stored(sess)]
    kinds = sorted(x["kind"] for x in rows)
    assert kinds == sorted(
        [
            "view",
            "vital",
            "vital",
            "resource",
            "interaction",
            "longtask",
            "fetch",
            "error",
            "render",
        ]
    )
    view = next(x for x in rows if x["kind"] == "view")
    assert view["page"] == "/products/:id" and view["value"] == 900.0
    assert view["url"] == "https://shop.example/products/42?ref=mail&token=[Filtered]"
    assert (view["browser"], view["os"], view["device"]) == ("Chrome", "Linux", "desktop")
    assert (view["app"], view["release"], view["environment"], view["user_id"]) == (
        "shop-web",
        "1.4.2",
        "test",
        "u-42",
    )
    assert view["trace_id"] == bytes.fromhex(trace_of(sess))
    lcp = next(x for x in rows if x["name"] == "LCP")
    assert (lcp["value"], lcp["rating"]) == (4200.0, "poor")
    assert lcp["target"] == f"img.hero{XSS}"  # stored verbatim: escaping is the UI's job
    cls = next(x for x in rows if x["name"] == "CLS")
    assert cls["rating"] == "good"
    resource = next(x for x in rows if x["kind"] == "resource")
    assert resource["name"] == "https://cdn.example/big.js?v=3&token=[Filtered]"
    fetch = next(x for x in rows if x["kind"] == "fetch")
    assert "sekrit" not in json.dumps(fetch["attributes"])


def test_browser_spans_join_the_backend_trace(rum: Rum) -> None:
    sess = session()
    assert rum.post(json.dumps(beacon(sess)), client="10.0.0.2").status_code == 200
    trace = bytes.fromhex(trace_of(sess))
    # One stored row: the page load keeps its phases (the trace view makes them spans).
    (root,) = rum.store.traces.trace_spans(PROJECT, trace)
    assert root.name == "pageload /products/:id"
    assert root.parent_id == 0 and root.service == "shop-web"
    assert root.duration_ns == 900_000_000
    attrs = json.loads(root.attributes)
    assert attrs["heron.rum.document_span"] == DOC_SPAN
    assert (attrs["heron.rum.session"], attrs["heron.rum.kind"]) == (sess, "pageload")
    assert list(attrs["heron.rum.phases"]) == [
        "dns", "request", "response", "dom processing", "DOMContentLoaded", "load"
    ]  # fmt: skip
    detail = query.get_trace(rum.store, PROJECT, trace)
    assert detail is not None and detail.span_count == 7
    spans = {s.name: s for s in detail.spans}
    load = spans["pageload /products/:id"]
    assert detail.roots == [load.span_id] and "heron.rum.phases" not in load.attributes
    for phase in ("dns", "request", "response", "dom processing", "DOMContentLoaded", "load"):
        assert spans[phase].parent_id == load.span_id, phase
        assert spans[phase].attributes == {"heron.rum.kind": "phase"} and spans[phase].browser
    assert spans["request"].duration_ns == 100_000_000
    assert spans["request"].start_ns == round((NOW_MS + 20) * 1000) * 1000
    assert spans["dns"].start_ns == round((NOW_MS + 2) * 1000) * 1000
    (fetch,) = rum.store.traces.trace_spans(PROJECT, bytes.fromhex(trace_of(sess, "fetch")))
    assert fetch.span_id == int(FETCH_SPAN, 16)
    assert fetch.name == "POST /api/cart"  # <METHOD> <url path>; the URL is url.full
    assert json.loads(fetch.attributes)["url.full"].startswith("https://shop.example/api/cart")
    assert fetch.http_status == 201


def test_error_becomes_a_javascript_issue(rum: Rum) -> None:
    sess = session()
    assert rum.post(json.dumps(beacon(sess)), client="10.0.0.3").status_code == 200
    err = next(as_dict(x) for x in rum.stored(sess) if x[1] == "error")
    event_id = json.loads(err["attributes"])["event_id"]
    assert err["target"] == f"price is undefined {XSS} api_key=[Filtered]"
    row = rum.store.issues.event(PROJECT, event_id)
    assert row is not None
    event = dict(zip(EVENT_KEYS, row, strict=True))
    assert (event["platform"], event["source"], event["exc_type"]) == (
        "javascript",
        "rum",
        "TypeError",
    )
    assert "abcdef0123456789" not in event["message"] and XSS in event["message"]
    frames = json.loads(event["exceptions"])[0]["frames"]
    assert [(f["function"], f["in_app"]) for f in frames] == [
        ("dispatch", False),
        ("HTMLButtonElement.onclick", True),
        ("addToCart", True),
    ]
    assert event["issue_id"] > 0
    assert "addToCart" in event["culprit"]
    assert json.loads(event["request"])["url"].endswith("token=[Filtered]")


# ---------------------------------------------------------------- refused beacons


def test_refusals_name_the_problem_and_store_nothing(rum: Rum) -> None:
    sess = session()
    good = json.dumps(beacon(sess))
    cases: list[tuple[dict[str, Any], int, str]] = [
        ({"key": "hb_wrong_key_0000000000000000"}, 401, "unknown browser key"),
        ({"key": None}, 401, "missing browser key"),
        ({"origin": "https://evil.example"}, 403, "origin 'https://evil.example' is not allowed"),
        ({"origin": None}, 403, "origin (none) is not allowed"),
        ({"ctype": "application/x-www-form-urlencoded"}, 415, "text/plain or application/json"),
        ({"body": "x" * (16 * 1024 + 1)}, 413, "exceeds the limit of 16384 bytes"),
        ({"body": '{"session": '}, 400, "not valid JSON"),
        ({"body": "[1, 2]"}, 400, "must be a JSON object"),
        ({"body": json.dumps({**beacon(sess), "session": "no"})}, 400, "session must be"),
        ({"body": json.dumps({**beacon(sess), "views": []})}, 400, "views must be an object"),
        (
            {"body": json.dumps(beacon(sess, [{"t": "view", "view": "v9", "ts": NOW_MS}]))},
            400,
            "events[0].view must name a key of views",
        ),
        (
            {"body": json.dumps(beacon(sess, full_events(sess) * 6))},
            413,
            "beacon holds 60 events; at most 50",
        ),
    ]
    for change, status, text in cases:
        kw = {"client": "10.0.1.1", **change}
        body = kw.pop("body", good)
        r = rum.post(body, **kw)
        assert r.status_code == status, (change, r.text)
        assert text in r.json()["error"], (change, r.text)
        origin = kw.get("origin", ORIGIN)
        if status != 403:
            assert r.headers["access-control-allow-origin"] == origin
        else:
            assert "access-control-allow-origin" not in r.headers
        assert r.headers["vary"] == "Origin"
        assert rum.stored(sess) == [], change
    assert rum.post(good, client="10.0.1.1").status_code == 200  # the server still serves
    assert len(rum.stored(sess)) == 9


def test_invalid_events_are_dropped_and_counted(rum: Rum) -> None:
    sess = session()
    events = [
        {"t": "vital", "view": "v1", "ts": NOW_MS, "name": "LCP", "value": "slow"},
        {"t": "vital", "view": "v1", "ts": NOW_MS, "name": "FID", "value": 3},
        {"t": "resource", "view": "v1", "ts": "yesterday", "name": "https://x/y", "duration": 1},
        {"t": "vital", "view": "v1", "ts": NOW_MS, "name": "TTFB", "value": 90},
        {"t": "teleport", "view": "v1", "ts": NOW_MS},
    ]
    invalid, unknown = rum.rejected("rum", "invalid"), rum.rejected("rum", "unknown")
    r = rum.post(json.dumps(beacon(sess, events)), client="10.0.2.1")
    assert r.json() == {"accepted": 1, "unknown": 1, "invalid": 3}
    assert [as_dict(x)["name"] for x in rum.stored(sess)] == ["TTFB"]
    assert rum.rejected("rum", "invalid") - invalid == 3
    assert rum.rejected("rum", "unknown") - unknown == 1
    metrics = httpx.get(
        f"{rum.url}/metrics", headers={"authorization": "Bearer ht_rum_test_token_0123456789"}
    ).text
    assert 'heron_ingest_rejected_items_total{reason="invalid",signal="rum"}' in metrics


@pytest.mark.parametrize(
    "ua",
    [
        "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "HeadlessChrome/131.0.0.0 Safari/537.36",
        "Mozilla/5.0 (Linux; Android 11; moto g power (2022)) AppleWebKit/537.36 "
        "(KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36 Chrome-Lighthouse",
    ],
)
def test_bots_are_answered_but_not_stored(rum: Rum, ua: str) -> None:
    sess = session()
    before = rum.rejected("rum", "bot")
    r = rum.post(json.dumps(beacon(sess)), client="10.0.3.1", ua=ua)
    assert r.status_code == 200 and r.json() == {"accepted": 0, "ignored": "bot"}
    assert rum.stored(sess) == []
    assert rum.rejected("rum", "bot") - before == 10


def test_flood_from_one_address_is_limited(rum: Rum) -> None:
    statuses: list[int] = []
    retry_after = None
    sessions = [session() for _ in range(80)]
    with httpx.Client(timeout=30) as client:
        for sess in sessions:
            r = client.post(
                f"{rum.url}/rum/v1/events",
                params={"key": BROWSER_KEY},
                content=json.dumps(beacon(sess, full_events()[:1])),
                headers={
                    "origin": ORIGIN,
                    "content-type": "text/plain",
                    "x-forwarded-for": "10.9.9.9",
                },
            )
            statuses.append(r.status_code)
            if r.status_code == 429:
                retry_after = r.headers["retry-after"]
                assert "too many beacons from this client 10.9.9.9" in r.json()["error"]
    assert statuses[:40] == [200] * 40  # the burst (50) passes
    assert statuses.count(429) >= 20
    assert retry_after is not None and int(retry_after) >= 1
    refused = [s for s, st in zip(sessions, statuses, strict=True) if st == 429]
    assert all(rum.stored(s) == [] for s in refused)
    # another address is unaffected, and so is the rest of the server
    assert rum.post(json.dumps(beacon(session())), client="10.9.9.10").status_code == 200
    assert httpx.get(f"{rum.url}/healthz").status_code == 200


def test_flood_from_one_session_is_limited(rum: Rum) -> None:
    sess = session()
    body = json.dumps(beacon(sess, full_events()[1:2]))
    start = time.monotonic()
    statuses = [rum.post(body, client="10.0.4.1").status_code for _ in range(30)]
    took = time.monotonic() - start
    assert statuses[:10] == [200] * 10, statuses  # the burst
    # then about one a second (the rate)
    assert 10 <= statuses.count(200) <= 10 + took + 1, (statuses, took)
    assert statuses.count(429) >= 30 - 10 - took - 1
    assert len(rum.stored(sess)) == statuses.count(200)


def test_preflight(rum: Rum) -> None:
    ok = httpx.options(
        f"{rum.url}/rum/v1/events",
        headers={"origin": "https://www.shop.example", "access-control-request-method": "POST"},
    )
    assert ok.status_code == 204
    assert ok.headers["access-control-allow-origin"] == "https://www.shop.example"
    assert "POST" in ok.headers["access-control-allow-methods"]
    bad = httpx.options(f"{rum.url}/rum/v1/events", headers={"origin": "https://evil.example"})
    assert bad.status_code == 403 and "access-control-allow-origin" not in bad.headers


def test_application_json_is_accepted(rum: Rum) -> None:
    sess = session()
    body = copy.deepcopy(beacon(sess, full_events()[:3]))
    r = rum.post(json.dumps(body), client="10.0.5.1", ctype="application/json")
    assert r.status_code == 200 and len(rum.stored(sess)) == 3


def test_heron_serve_prints_the_browser_key_and_takes_rum_settings(tmp_path: Path) -> None:
    """The CLI: settings from HERON_RUM_* variables, the browser key printed at start."""
    h = make_heron(
        tmp_path,
        HERON_RUM_ALLOWED_ORIGINS=ORIGIN,
        HERON_RUM_BROWSER_KEY=BROWSER_KEY,
        HERON_RUM_MAX_EVENTS="5",
    ).start()
    try:
        assert f"browser key:    {BROWSER_KEY}" in h.log()
        sess = session()
        url = f"{h.url}/rum/v1/events"
        headers = {"origin": ORIGIN, "content-type": "text/plain", "user-agent": CHROME}
        ok = httpx.post(
            url,
            params={"key": BROWSER_KEY},
            content=json.dumps(beacon(sess, full_events(sess)[:5])),
            headers=headers,
        )
        assert ok.status_code == 200 and ok.json()["accepted"] == 5, ok.text
        too_many = httpx.post(
            url,
            params={"key": BROWSER_KEY},
            content=json.dumps(beacon(sess, full_events(sess)[:6])),
            headers=headers,
        )
        assert too_many.status_code == 413, too_many.text
        ingest_key = httpx.post(url, params={"key": h.key}, content=b"{}", headers=headers)
        assert ingest_key.status_code == 401  # an ingest key is not a browser key
    finally:
        h.stop()


def test_the_lean_route_keeps_the_app_wide_guarantees(rum: Rum) -> None:
    """POST/OPTIONS /rum/v1/events are a plain Starlette route (not FastAPI's): answers
    still carry the security headers, are counted per route for /metrics, and other
    methods are 405 naming the allowed ones."""
    r = rum.post(json.dumps(beacon(session())), client="10.0.0.9")
    assert r.status_code == 200
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["cache-control"] == "no-store"
    bad = rum.post("{", client="10.0.0.9")
    assert bad.status_code == 400 and bad.headers["x-frame-options"] == "DENY"
    r = httpx.get(f"{rum.url}/rum/v1/events", timeout=30)
    assert r.status_code == 405 and r.headers["allow"] == "POST, OPTIONS"
    metrics = httpx.get(
        f"{rum.url}/metrics",
        headers={"Authorization": "Bearer ht_rum_test_token_0123456789"},
        timeout=30,
    ).text
    counted = [
        line
        for line in metrics.splitlines()
        if line.startswith("heron_http_requests_total{")
        and 'route="/rum/v1/events"' in line
        and 'code="200"' in line
        and 'method="POST"' in line
    ]
    assert counted and float(counted[0].rsplit(" ", 1)[1]) >= 1, counted
