"""Beacon decoding (ingest/rum_decode.py) and user agents (ingest/useragent.py): pure."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from heron._scrub import Scrubber
from heron.server.ingest.rum_decode import BeaconError, decode_beacon, page_of
from heron.server.ingest.rum_spans import span_id_of
from heron.server.ingest.useragent import parse_user_agent

CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36"
)
IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1"
)
IPAD = (
    "Mozilla/5.0 (iPad; CPU OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.0 Mobile/15E148 Safari/604.1"
)
ANDROID_TABLET = (
    "Mozilla/5.0 (Linux; Android 13; SM-X700) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0.0.0 Safari/537.36"
)
TRACE = "0af7651916cd43dd8448eb211c80319c"
DOC_SPAN = "b7ad6b7169203331"
START = 1765152000123.4

BEACON: dict[str, Any] = {
    "v": 1,
    "sdk": "heron-rum/0.1.0",
    "session": "k3J9aQ2mZx7wP1sT",
    "user": "u-42",
    "app": "shop-web",
    "release": "1.4.2",
    "environment": "production",
    "views": {
        "v8Hk2pQ": {
            "url": "https://shop.example/products/42?utm=x&token=s3cr3tvalue",
            "referrer": "https://shop.example/?api_key=abcdef123456",
            "nav": "navigate",
            "start": START,
            "trace": f"00-{TRACE}-{DOC_SPAN}-01",
        }
    },
    "events": [
        {
            "t": "view",
            "view": "v8Hk2pQ",
            "ts": START,
            "timing": {
                "dns_start": 1,
                "dns_end": 5,
                "connect_start": 5,
                "connect_end": 5,
                "request_start": 10,
                "response_start": 50,
                "response_end": 60,
                "dom_interactive": 100,
                "dcl_end": 120,
                "load_end": 300,
                "bogus": 7,
            },
        },
        {
            "t": "vital",
            "view": "v8Hk2pQ",
            "ts": START + 400,
            "name": "INP",
            "value": 350,
            "id": "v4-1",
            "attribution": {"target": "button#buy", "type": "pointer", "input_delay": 20},
        },
        {"t": "vital", "view": "v8Hk2pQ", "ts": START + 400, "name": "LCP", "value": "slow"},
        {"t": "vital", "view": "v8Hk2pQ", "ts": START + 400, "name": "XYZ", "value": 1},
        {"t": "future-kind", "view": "v8Hk2pQ", "ts": START},
    ],
}


def decode(doc: dict[str, Any], ua: str = CHROME) -> Any:
    return decode_beacon(doc, parse_user_agent(ua), ua, Scrubber(), 7)


def test_events_page_url_scrubbing_and_ratings() -> None:
    b = decode(BEACON)
    assert (b.unknown, b.invalid) == (1, 2)
    view, inp = b.events
    assert view.kind == "view" and view.name == "navigate" and view.value == 300.0
    assert view.page == "/products/:id"
    assert view.url == "https://shop.example/products/42?utm=x&token=[Filtered]"
    assert view.attributes["referrer"] == "https://shop.example/?api_key=[Filtered]"
    assert "bogus" not in view.attributes["timing"]
    assert view.time_ns == 1765152000123400000
    assert view.trace_id == bytes.fromhex(TRACE) and view.span_id == int(DOC_SPAN, 16)
    assert (inp.name, inp.value, inp.rating, inp.target) == (
        "INP",
        350.0,
        "needs-improvement",
        "button#buy",
    )
    assert (view.browser, view.browser_version, view.os, view.device) == (
        "Chrome",
        "131",
        "Windows",
        "desktop",
    )
    assert (view.app, view.release, view.environment, view.user_id) == (
        "shop-web",
        "1.4.2",
        "production",
        "u-42",
    )


def test_pageload_spans() -> None:
    spans = decode(BEACON).spans
    root = spans[0]
    assert root.name == "pageload /products/:id" and root.parent_id == 0 and root.kind == 3
    assert root.trace_id == bytes.fromhex(TRACE)
    assert root.start_ns == 1765152000123400000 and root.duration_ns == 300_000_000
    assert root.attributes["heron.rum.document_span"] == DOC_SPAN
    assert root.attributes["heron.rum.kind"] == "pageload"
    assert root.service == "shop-web"
    # One span: the phases are the root's attribute ({name: [start offset, duration]},
    # ns), made into its child spans by the trace view. connect is 0 ms long: left
    # out; tls was not reported.
    assert len(spans) == 1
    phases = root.attributes["heron.rum.phases"]
    assert list(phases) == [
        "dns",
        "request",
        "response",
        "dom processing",
        "DOMContentLoaded",
        "load",
    ]
    assert phases["request"] == [10_000_000, 40_000_000]
    assert all(type(t) is int and t >= 0 for times in phases.values() for t in times)
    # the same beacon again gives the same ids (a duplicate is not a second page load)
    assert [s.span_id for s in decode(BEACON).spans] == [s.span_id for s in spans]
    assert root.span_id == span_id_of("k3J9aQ2mZx7wP1sT", "v8Hk2pQ", "pageload")


def test_soft_navigation_and_untraced_views_make_no_spans() -> None:
    doc = copy.deepcopy(BEACON)
    doc["views"]["v8Hk2pQ"]["nav"] = "soft-navigation"
    b = decode(doc)
    assert b.spans == [] and b.events[0].value == 0.0
    doc = copy.deepcopy(BEACON)
    del doc["views"]["v8Hk2pQ"]["trace"]
    assert decode(doc).spans == []


def test_fetch_span_keeps_the_sdk_span_id() -> None:
    doc = copy.deepcopy(BEACON)
    doc["events"] = [
        {
            "t": "fetch",
            "view": "v8Hk2pQ",
            "ts": START + 1000,
            "method": "post",
            "url": "https://api.shop.example/cart/7?session_token=abcdefgh1234",
            "status": 503,
            "duration": 80.5,
            "trace": "00-11111111111111111111111111111111-2222222222222222-01",
        }
    ]
    b = decode(doc)
    (e,) = b.events
    assert e.name == "POST https://api.shop.example/cart/7"
    assert e.attributes["url"] == "https://api.shop.example/cart/7?session_token=[Filtered]"
    (s,) = b.spans
    assert s.span_id == 0x2222222222222222 and s.parent_id == 0
    assert s.trace_id == bytes.fromhex("11" * 16)
    assert (s.http_method, s.http_status, s.status) == ("POST", 503, 2)
    assert s.attributes["heron.rum.kind"] == "fetch"
    assert s.name == "POST /cart/7"  # <METHOD> <url path> (the event keeps the URL)
    assert s.duration_ns == 80_500_000


def test_error_event() -> None:
    doc = copy.deepcopy(BEACON)
    doc["events"] = [
        {
            "t": "error",
            "view": "v8Hk2pQ",
            "ts": START + 5,
            "type": "TypeError",
            "message": "failed with password=hunter2secret <img src=x onerror=alert(1)>",
            "stack": "TypeError: x\n    at buy (https://shop.example/app.js:10:5)\n"
            "    at https://cdn.example/lib.js:1:2",
            "mechanism": "onunhandledrejection",
            "handled": False,
        }
    ]
    b = decode(doc)
    (e,), (err,) = b.events, b.errors
    assert e.target == "failed with password=[Filtered] <img src=x onerror=alert(1)>"
    assert (err.platform, err.source, err.exc_type, err.level) == (
        "javascript",
        "rum",
        "TypeError",
        "error",
    )
    assert err.message == e.target and err.event_id == e.attributes["event_id"]
    frames = err.exceptions[0]["frames"]
    assert [(f["function"], f["in_app"]) for f in frames] == [("?", False), ("buy", True)]
    assert err.exceptions[0]["mechanism"] == {"type": "onunhandledrejection", "handled": False}
    assert err.request["url"].endswith("token=[Filtered]")
    assert err.user == {"id": "u-42"} and err.transaction == "/products/:id"
    assert err.trace_id == bytes.fromhex(TRACE)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda d: d.pop("session"), "session"),
        (lambda d: d.update(session="a b"), "session"),
        (lambda d: d.update(views=[]), "views"),
        (lambda d: d.update(events={}), "events"),
        (
            lambda d: d["events"].append({"t": "view", "view": "nope", "ts": START}),
            "events[5].view",
        ),
        (lambda d: d["events"].append(3), "events[5]"),
        (lambda d: d["views"]["v8Hk2pQ"].update(start="x"), "views.v8Hk2pQ.start"),
        (lambda d: d["views"]["v8Hk2pQ"].update(trace="00-zz"), "views.v8Hk2pQ.trace"),
        (lambda d: d["views"]["v8Hk2pQ"].update(nav="teleport"), "views.v8Hk2pQ.nav"),
        (lambda d: d["views"]["v8Hk2pQ"].pop("url"), "views.v8Hk2pQ.url"),
        (lambda d: d.update(user=5), "user"),
        (lambda d: d.update(v=2), "v"),
    ],
)
def test_bad_envelope_names_the_field(change: Any, field: str) -> None:
    doc = copy.deepcopy(BEACON)
    change(doc)
    with pytest.raises(BeaconError) as info:
        decode(doc)
    assert str(info.value).startswith(field)


def test_page_of() -> None:
    assert (
        page_of("https://x.example/orders/123/items/9f1b2c3d4e5f60718293a4b5")
        == "/orders/:id/items/:id"
    )
    assert page_of("https://x.example/u/123e4567-e89b-12d3-a456-426614174000/edit") == "/u/:id/edit"
    assert page_of("https://x.example/blog/hello-world?id=3") == "/blog/hello-world"
    assert page_of("https://x.example") == "/"


@pytest.mark.parametrize(
    ("ua", "expected"),
    [
        (CHROME, ("Chrome", "131", "Windows", "desktop", False)),
        (IPHONE, ("Mobile Safari", "17", "iOS", "mobile", False)),
        (IPAD, ("Mobile Safari", "17", "iOS", "tablet", False)),
        (ANDROID_TABLET, ("Chrome", "120", "Android", "tablet", False)),
        ("Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", None),
        (
            "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 HeadlessChrome/120.0.0.0 Safari/537.36",
            None,
        ),
        ("Mozilla/5.0 (Linux; Android 11; moto g power (2022)) Chrome-Lighthouse", None),
        ("Pingdom.com_bot_version_1.4_(http://www.pingdom.com/)", None),
        ("", ("Other", "", "Other", "other", False)),
    ],
)
def test_user_agents(ua: str, expected: tuple[Any, ...] | None) -> None:
    info = parse_user_agent(ua)
    if expected is None:
        assert info.bot
    else:
        assert (info.browser, info.browser_version, info.os, info.device, info.bot) == expected


def test_route_names_the_page_and_xss_is_kept_verbatim() -> None:
    doc = copy.deepcopy(BEACON)
    doc["views"]["v8Hk2pQ"]["route"] = "/products/:productId"
    doc["events"][1]["attribution"]["target"] = '<img src=x onerror="alert(1)">'
    b = decode(doc)
    assert {e.page for e in b.events} == {"/products/:productId"}
    assert b.spans[0].name == "pageload /products/:productId"
    assert b.events[1].target == '<img src=x onerror="alert(1)">'


def test_numbers_beyond_measurements_are_left_out() -> None:
    doc = copy.deepcopy(BEACON)
    doc["events"][0]["timing"]["load_end"] = 1e300  # would overflow span nanoseconds
    doc["events"][0]["timing"]["dcl_end"] = -1e300
    doc["events"].append(
        {"t": "resource", "view": "v8Hk2pQ", "ts": START, "name": "x", "duration": 1e20}
    )
    doc["events"].append(
        {
            "t": "fetch",
            "view": "v8Hk2pQ",
            "ts": START,
            "url": "/a",
            "duration": 3,
            "trace": f"00-{'0' * 32}-{'1' * 16}-01",
        }
    )
    b = decode(doc)
    view = b.events[0]
    assert (
        "load_end" not in view.attributes["timing"] and "dcl_end" not in view.attributes["timing"]
    )
    assert view.value == 0.0 and b.spans == []  # no load time: no page load span
    assert b.invalid == 2 + 1  # the two vitals of BEACON, the resource
    fetch = b.events[-1]
    assert fetch.kind == "fetch" and fetch.trace_id is None  # an all-zero trace id: no span
    doc["views"]["v8Hk2pQ"]["trace"] = f"00-{TRACE}-{'0' * 16}-01"
    with pytest.raises(BeaconError, match="all-zero"):
        decode(doc)
