"""The RUM browser SDK in real Chromium: what it beacons, and that it never breaks a page.

Pages come from a loopback site (tests/e2e/rum_site.py) serving the built ``rum.js``;
the SDK beacons to a second loopback server on another port (a cross-origin endpoint, as
in production) that records the raw bodies. Each test uses its own ``app`` name and a
fresh browser context (own sessionStorage) with a desktop Chrome user agent.
"""

from __future__ import annotations

import gzip
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from heron.server.ingest.rum_sdk import VENDOR
from tests.e2e.rum_site import Site

pytestmark = pytest.mark.e2e

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-background-networking"]
KEY = "hk_browser_key_0123456789"
TRACEPARENT = re.compile(r"^00-[0-9a-f]{32}-[0-9a-f]{16}-01$")
Events = list[tuple[dict[str, Any], dict[str, Any]]]


@pytest.fixture(scope="module")
def site() -> Iterator[Site]:
    assert (VENDOR / "rum.js").is_file(), "rum.js is not built: run scripts/build_assets.py"
    s = Site().start()
    yield s
    s.stop()


@pytest.fixture(scope="module")
def receiver() -> Iterator[Site]:
    s = Site().start()
    yield s
    s.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright import sync_api

    if not Path(CHROMIUM).exists():
        pytest.fail(f"no Chromium at {CHROMIUM}")
    with sync_api.sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    major = browser.version.split(".")[0]
    ua = (
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
        f"Chrome/{major}.0.0.0 Safari/537.36"
    )
    ctx = browser.new_context(user_agent=ua, viewport={"width": 1280, "height": 800})
    p = ctx.new_page()
    p.errors = []
    p.on("pageerror", lambda e: p.errors.append(str(e)))
    yield p
    ctx.close()


def html(receiver: Site, app: str, body: str = "", head: str = "", init: str | None = None) -> str:
    """A page loading rum.js: by its data attributes, or then ``heron.init(<init>)``."""
    if init is None:
        tag = f'<script src="/rum.js" data-key="{KEY}" data-app="{app}" data-endpoint="{receiver.origin}"></script>'
    else:
        tag = f'<script src="/rum.js"></script><script>heron.init({{key: "{KEY}", app: "{app}", endpoint: "{receiver.origin}", {init}}})</script>'
    return (
        f"<!doctype html><html><head><meta charset=utf-8>{head}<title>{app}</title>{tag}</head>"
        f"<body>{body}</body></html>"
    )


TEXT = "<h1>Shop</h1><p>" + "Lorem ipsum dolor sit amet. " * 40 + "</p>"


def leave(page: Any) -> None:
    """Navigate away: visibilitychange → hidden and pagehide, the SDK's unload flush."""
    page.goto("about:blank")


def of(events: Events, t: str, **match: Any) -> list[dict[str, Any]]:
    return [e for _, e in events if e["t"] == t and all(e.get(k) == v for k, v in match.items())]


def vitals(events: Events) -> dict[str, dict[str, Any]]:
    return {e["name"]: e for e in of(events, "vital")}


# ------------------------------------------------------------------ views and vitals


def test_view_timing_and_vitals_arrive_after_leaving_the_page(
    page: Any, site: Site, receiver: Site
) -> None:
    url = site.page("/vitals", html(receiver, "vitals", TEXT))
    page.goto(url, wait_until="load")
    page.wait_for_timeout(300)
    leave(page)
    events = receiver.wait(
        "vitals", lambda ev: {"FCP", "TTFB", "LCP"} <= vitals([({}, e) for e in ev]).keys()
    )
    views = of(events, "view")
    assert len(views) == 1
    env = events[0][0]
    view = env["views"][views[0]["view"]]
    assert view["url"] == url and view["nav"] == "navigate"
    timing = views[0]["timing"]
    assert 0 < timing["request_start"] <= timing["response_start"] <= timing["response_end"]
    assert (
        timing["response_end"]
        <= timing["dom_interactive"]
        <= timing["dcl_end"]
        <= timing["load_end"]
    )
    assert abs(views[0]["ts"] - view["start"]) < 1
    v = vitals(events)
    assert set(v) >= {"FCP", "TTFB", "LCP"}
    assert v["LCP"]["value"] >= v["FCP"]["value"] > 0
    assert v["LCP"]["attribution"]["target"] in ("html>body>p", "html>body>h1"), v["LCP"]
    assert {"ttfb", "resource_load_delay", "resource_load_duration", "element_render_delay"} <= set(
        v["LCP"]["attribution"]
    )
    assert set(v["FCP"]["attribution"]) == {"ttfb", "first_byte_to_fcp", "load_state"}
    assert {"waiting", "dns", "connection", "request"} <= set(v["TTFB"]["attribution"])
    assert all(e["view"] == views[0]["view"] for _, e in events)
    assert len({e["id"] for e in v.values()}) == len(v)  # web-vitals' metric ids
    # the envelope of docs/rum.md, beaconed as text/plain with the key in the query
    assert env["v"] == 1 and env["sdk"] == "heron-rum/0.1.0" and env["app"] == "vitals"
    assert re.fullmatch(r"[A-Za-z0-9_-]{8,64}", env["session"])
    beacon = next(b for b in receiver.beacons if b.body.get("app") == "vitals")
    assert beacon.path == f"/rum/v1/events?key={KEY}"
    assert beacon.headers["content-type"].lower() == "text/plain;charset=utf-8"  # no preflight
    assert page.errors == []


def test_cls_from_a_layout_shift(page: Any, site: Site, receiver: Site) -> None:
    shift = (
        "<script>setTimeout(() => { const d = document.createElement('div');"
        " d.id = 'banner'; d.style.height = '300px'; document.body.prepend(d); }, 300)</script>"
    )
    page.goto(site.page("/cls", html(receiver, "cls", TEXT + shift)), wait_until="load")
    page.wait_for_timeout(800)
    leave(page)
    events = receiver.wait("cls", lambda ev: any(e.get("name") == "CLS" for e in ev))
    cls = vitals(events)["CLS"]
    assert cls["value"] > 0.05
    assert cls["attribution"]["largest_shift_value"] > 0.05
    assert cls["attribution"]["target"].startswith("html>body"), cls


def test_inp_and_a_slow_interaction_from_a_busy_click(
    page: Any, site: Site, receiver: Site
) -> None:
    body = (
        '<button id="buy" class="cta big">Buy</button>'
        "<script>document.getElementById('buy').addEventListener('click', () => {"
        " const end = performance.now() + 300; while (performance.now() < end) {} })</script>"
    )
    page.goto(site.page("/inp", html(receiver, "inp", TEXT + body)), wait_until="load")
    page.click("#buy")
    # web-vitals processes event entries when idle (≤ 1 s): an INP whose entries are still
    # unprocessed when the page hides is not reported (the interaction event still is).
    page.wait_for_timeout(1500)
    leave(page)
    events = receiver.wait(
        "inp",
        lambda ev: (
            any(e.get("name") == "INP" for e in ev) and any(e["t"] == "interaction" for e in ev)
        ),
    )
    inp = vitals(events)["INP"]
    assert inp["value"] >= 300
    a = inp["attribution"]
    assert a["target"] == "#buy" and a["type"] == "pointer"
    parts = a["input_delay"] + a["processing"] + a["presentation"]
    assert min(a["input_delay"], a["processing"], a["presentation"]) >= 0
    assert abs(parts - inp["value"]) <= 10, a  # durations are rounded to 8 ms
    (slow,) = of(events, "interaction")  # one event for pointerdown + pointerup + click
    assert slow["type"] == "pointer" and slow["target"] == "#buy"
    assert slow["event"] == "click"  # the entry whose handlers ran longest
    assert slow["duration"] >= 300 and slow["processing"] >= 290
    parts = slow["input_delay"] + slow["processing"] + slow["presentation"]
    assert abs(parts - slow["duration"]) <= 10, slow


def test_a_slow_resource_with_its_initiator(page: Any, site: Site, receiver: Site) -> None:
    body = TEXT + '<img src="/slow.gif?delay=1.2" width=10 height=10><img src="/slow.gif?delay=0">'
    page.goto(site.page("/res", html(receiver, "res", body)), wait_until="load")
    page.wait_for_timeout(200)
    leave(page)
    events = receiver.wait("res", lambda ev: any(e["t"] == "resource" for e in ev))
    (res,) = of(events, "resource")
    assert res["name"] == site.origin + "/slow.gif?delay=1.2"
    assert res["initiator"] == "img"
    assert 1200 <= res["duration"] < 5000
    assert res["decoded_size"] == 43 and res["status"] == 200


def test_errors_and_unhandled_rejections_with_stacks(page: Any, site: Site, receiver: Site) -> None:
    body = (
        "<script>function checkout() { throw new TypeError('cart is empty') }\n"
        "setTimeout(checkout, 10);\n"
        "setTimeout(() => Promise.reject(new RangeError('bad quantity')), 20);\n"
        "setTimeout(() => heron.captureError(new Error('handled one')), 30);</script>"
    )
    page.goto(site.page("/err", html(receiver, "err", body)), wait_until="load")
    page.wait_for_timeout(300)
    page.evaluate("heron.flush()")
    events = receiver.wait("err", lambda ev: len([e for e in ev if e["t"] == "error"]) >= 3)
    errors = {e["mechanism"]: e for e in of(events, "error")}
    thrown = errors["onerror"]
    assert thrown["type"] == "TypeError" and thrown["message"] == "cart is empty"
    assert "at checkout" in thrown["stack"] and thrown["handled"] is False
    assert (
        thrown["filename"] == site.origin + "/err" and thrown["lineno"] == 1 and thrown["colno"] > 0
    )
    rejected = errors["onunhandledrejection"]
    assert rejected["type"] == "RangeError" and rejected["message"] == "bad quantity"
    assert "RangeError: bad quantity" in rejected["stack"] and rejected["handled"] is False
    manual = errors["manual"]
    assert manual["message"] == "handled one" and manual["handled"] is True
    assert page.errors == ["cart is empty", "bad quantity"]  # the page still sees its errors


# ------------------------------------------------------------------ fetch and trace context


def test_fetch_and_xhr_carry_traceparent_only_to_targets(
    page: Any, site: Site, receiver: Site
) -> None:
    cross = receiver.origin + "/api/ping?from=cross"
    body = (
        "<script>window.done = (async () => {"
        " await fetch('/api/ping?from=fetch', {method: 'POST', body: 'x', headers: {'x-app': '1'}});"
        f" await fetch('{cross}');"
        " await new Promise(ok => { const x = new XMLHttpRequest(); x.open('GET', '/api/ping?from=xhr');"
        " x.onloadend = ok; x.send(); });"
        " heron.flush(); return true })()</script>"
    )
    page.goto(site.page("/fetch", html(receiver, "fetch", body)), wait_until="load")
    assert page.evaluate("window.done") is True
    events = receiver.wait("fetch", lambda ev: len([e for e in ev if e["t"] == "fetch"]) >= 3)
    same = [h for h in site.pings if h[":path"].endswith("from=fetch")]
    assert len(same) == 1 and TRACEPARENT.match(same[0]["traceparent"])
    assert same[0]["x-app"] == "1"  # the page's own headers are kept
    xhr_headers = [h for h in site.pings if h[":path"].endswith("from=xhr")]
    assert len(xhr_headers) == 1 and TRACEPARENT.match(xhr_headers[0]["traceparent"])
    cross_seen = [h for h in receiver.pings if h[":path"].endswith("from=cross")]
    assert cross_seen and not any("traceparent" in h for h in cross_seen)  # cross-origin
    fetches = {e["url"]: e for e in of(events, "fetch")}
    sent = fetches[site.origin + "/api/ping?from=fetch"]
    assert sent["method"] == "POST" and sent["status"] == 200 and sent["duration"] >= 0
    assert sent["trace"] == same[0]["traceparent"]
    xhr = fetches[site.origin + "/api/ping?from=xhr"]
    assert xhr["method"] == "GET" and xhr["trace"] == xhr_headers[0]["traceparent"]
    assert sent["trace"].split("-")[1] != xhr["trace"].split("-")[1]  # a fresh trace per call
    assert "trace" not in fetches[cross] and fetches[cross]["status"] == 200
    assert not any("/rum/v1/events" in u for u in fetches)  # the beacon is not reported


def test_backend_traceparent_from_meta_or_server_timing(
    page: Any, site: Site, receiver: Site
) -> None:
    meta_tp = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    st_tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    meta = f'<meta name="traceparent" content="{meta_tp}">'
    page.goto(site.page("/meta", html(receiver, "tp-meta", TEXT, head=meta)), wait_until="load")
    page.evaluate("new Promise(r => setTimeout(r, 50)).then(() => heron.flush())")
    timing = {"Server-Timing": f'traceparent;desc="{st_tp}"'}
    page.goto(site.page("/st", html(receiver, "tp-st", TEXT), **timing), wait_until="load")
    page.evaluate("new Promise(r => setTimeout(r, 50)).then(() => heron.flush())")
    for app, tp in (("tp-meta", meta_tp), ("tp-st", st_tp)):
        events = receiver.wait(app, lambda ev: any(e["t"] == "view" for e in ev))
        env, view = next((b, e) for b, e in events if e["t"] == "view")
        assert env["views"][view["view"]]["trace"] == tp


# ------------------------------------------------------------------ SPA, privacy, sampling


def test_pushstate_starts_a_soft_navigation_view(page: Any, site: Site, receiver: Site) -> None:
    url = site.page("/spa", html(receiver, "spa", TEXT))
    page.goto(url, wait_until="load")
    page.evaluate(
        "history.pushState({}, '', '/spa/products/42'); heron.setRoute('/spa/products/:id')"
    )
    page.evaluate("history.replaceState({}, '', '/spa/products/42#reviews')")  # same page
    page.evaluate("history.pushState({}, '', '/spa/cart')")
    page.go_back()
    page.evaluate("heron.flush()")
    events = receiver.wait("spa", lambda ev: len([e for e in ev if e["t"] == "view"]) >= 4)
    views = {}
    for env, _ in events:
        views.update(env["views"])
    seq = [views[e["view"]] for e in of(events, "view")]
    assert [v["nav"] for v in seq] == [
        "navigate",
        "soft-navigation",
        "soft-navigation",
        "soft-navigation",
    ]
    assert seq[1]["url"] == site.origin + "/spa/products/42" and seq[1]["referrer"] == url
    assert seq[1]["route"] == "/spa/products/:id"
    assert seq[2]["url"] == site.origin + "/spa/cart"
    assert seq[3]["url"] == site.origin + "/spa/products/42#reviews"
    assert seq[1]["start"] > seq[0]["start"]


def test_sensitive_query_values_are_scrubbed(page: Any, site: Site, receiver: Site) -> None:
    site.page(
        "/scrub", html(receiver, "scrub", TEXT + "<script>fetch('/api/ping?api_key=k3y')</script>")
    )
    page.goto(site.origin + "/scrub?token=s3cr3t&q=shoes&Password=hunter2", wait_until="load")
    page.wait_for_timeout(200)
    leave(page)
    events = receiver.wait("scrub", lambda ev: any(e["t"] == "fetch" for e in ev))
    env, view = next((b, e) for b, e in events if e["t"] == "view")
    assert env["views"][view["view"]]["url"] == (
        site.origin + "/scrub?token=[Filtered]&q=shoes&Password=[Filtered]"
    )
    assert of(events, "fetch")[0]["url"] == site.origin + "/api/ping?api_key=[Filtered]"
    raw = b"".join(b.raw for b in receiver.beacons if b.body.get("app") == "scrub")
    assert b"s3cr3t" not in raw and b"hunter2" not in raw and b"k3y" not in raw


def test_before_send_drops_and_sample_rate_zero_sends_nothing(
    page: Any, site: Site, receiver: Site
) -> None:
    drop = "beforeSend: e => (e.t === 'error' ? null : e)"
    body = "<script>setTimeout(() => heron.captureError(new Error('dropped')), 10)</script>"
    page.goto(site.page("/drop", html(receiver, "drop", TEXT + body, init=drop)), wait_until="load")
    page.goto(
        site.page("/none", html(receiver, "none", TEXT + body, init="sampleRate: 0")),
        wait_until="load",
    )
    assert page.evaluate("heron.isEnabled()") is False
    page.wait_for_timeout(100)
    leave(page)
    events = receiver.wait("drop", lambda ev: any(e["t"] == "vital" for e in ev))
    assert of(events, "view") and not of(events, "error")
    page.wait_for_timeout(1000)
    assert receiver.events("none") == []


def test_react_profiler_helper_shares_the_esm_instance(
    page: Any, site: Site, receiver: Site
) -> None:
    body = (
        '<script type="module">'
        "import heron from '/rum.mjs';"
        "import { heronProfilerOnRender } from '/rum-react.mjs';"
        f"heron.init({{key: '{KEY}', app: 'react', endpoint: '{receiver.origin}'}});"
        "const onRender = heronProfilerOnRender({ threshold: 20 });"
        "onRender('Cart', 'mount', 35.25, 40); onRender('Header', 'update', 2, 3);"
        "heron.setUser('u-42'); heron.flush(); window.sent = true;</script>"
    )
    page.goto(site.page("/react", f"<!doctype html><html><body>{body}</body></html>"))
    page.wait_for_function("window.sent === true")
    events = receiver.wait("react", lambda ev: any(e["t"] == "render" for e in ev))
    assert of(events, "render") == [
        {
            "t": "render",
            "component": "Cart",
            "phase": "mount",
            "duration": 35.3,
            "base": 40,
            "view": of(events, "render")[0]["view"],
            "ts": of(events, "render")[0]["ts"],
        }
    ]
    assert events[0][0]["user"] == "u-42"


def test_bad_config_and_calls_never_throw(page: Any, site: Site, receiver: Site) -> None:
    body = (
        "<script>window.results = ["
        " heron.init(null), heron.init(42), heron.init({key: 5, sampleRate: 'x'}),"
        " heron.init({key: 'k', app: {}, endpoint: 7, tracePropagationTargets: 'nope',"
        "   beforeSend: 3, scrubKeys: 'x', resourceThreshold: -1, sampleRate: 5}),"
        " heron.setUser({toString: null}), heron.setRoute(Symbol('x')), heron.captureError(undefined),"
        " heron.flush(), heron.init({key: 'again'})];"
        "fetch('/api/ping?after=bad-config').then(r => { window.fetched = r.status })</script>"
    )
    page.goto(
        site.page(
            "/bad",
            f"<!doctype html><html><head><script src='/rum.js'></script></head><body>{body}</body></html>",
        )
    )
    page.wait_for_function("window.fetched === 200")
    assert page.errors == []
    results = page.evaluate("window.results")
    assert results[:3] == [False, False, False]
    assert results[3] is True  # the valid key wins; every bad option took its default
    assert page.evaluate("typeof heron.init") == "function"


def test_rum_js_gzipped_fits_in_10_kib() -> None:
    for name, limit in (("rum.js", 10240), ("rum.mjs", 10240), ("rum-react.mjs", 1024)):
        size = len(gzip.compress((VENDOR / name).read_bytes(), 9))
        assert size <= limit, (name, size)


def test_script_origin_is_the_default_endpoint_and_30_events_make_a_batch(
    page: Any, site: Site, receiver: Site
) -> None:
    """rum.js from the Heron server's origin (here the receiver) beacons back to it, and a
    full batch (30 events) leaves at once, without waiting for the page to hide."""
    tag = f'<script src="{receiver.origin}/rum.js" data-key="{KEY}" data-app="batch"></script>'
    burst = "<script>for (let i = 0; i < 30; i++) heron.captureError(new Error('e' + i))</script>"
    page.goto(
        site.page("/batch", f"<!doctype html><html><head>{tag}</head><body>{burst}</body></html>")
    )
    events = receiver.wait(
        "batch", lambda ev: len([e for e in ev if e["t"] == "error"]) >= 30, timeout=5
    )
    assert len(of(events, "error")) == 30
    assert page.evaluate("document.visibilityState") == "visible"  # not the unload flush


def test_one_session_per_tab_renewed_after_idle_timeout(
    page: Any, site: Site, receiver: Site
) -> None:
    init = "sessionIdleTimeout: 1500"
    first = site.page("/s1", html(receiver, "sess", TEXT, init=init))
    page.goto(first, wait_until="load")
    page.goto(site.page("/s2", html(receiver, "sess", TEXT, init=init)), wait_until="load")
    page.evaluate("new Promise(r => setTimeout(r, 50)).then(() => heron.flush())")
    events = receiver.wait("sess", lambda ev: len([e for e in ev if e["t"] == "view"]) >= 2)
    sessions = {env["session"] for env, e in events if e["t"] == "view"}
    assert len(sessions) == 1  # the second page of the tab continues its session
    page.wait_for_timeout(1700)  # idle longer than the timeout
    page.evaluate("heron.captureError(new Error('later')); heron.flush()")
    events = receiver.wait("sess", lambda ev: any(e.get("message") == "later" for e in ev))
    later = next(env["session"] for env, e in events if e.get("message") == "later")
    assert later not in sessions


def test_regexp_targets_trace_cross_origin_calls_and_do_not_track_is_respected(
    page: Any, site: Site, receiver: Site
) -> None:
    port = receiver.origin.rsplit(":", 1)[1]
    targets = f"tracePropagationTargets: [/^http:\\/\\/127\\.0\\.0\\.1:{port}\\/api\\//]"
    call = f"<script>fetch('{receiver.origin}/api/ping?from=regexp').then(() => heron.flush())</script>"
    page.goto(site.page("/re", html(receiver, "regexp", TEXT + call, init=targets)))
    events = receiver.wait("regexp", lambda ev: any(e["t"] == "fetch" for e in ev))
    from_page = [h for h in receiver.pings if h[":path"].endswith("from=regexp")]
    (traced,) = [h for h in from_page if "traceparent" in h]  # after a CORS preflight
    assert of(events, "fetch")[0]["trace"] == traced["traceparent"]

    page.add_init_script(
        "Object.defineProperty(Navigator.prototype, 'doNotTrack', {get: () => '1'})"
    )
    dnt = html(receiver, "dnt", TEXT, init="respectDoNotTrack: true")
    page.goto(site.page("/dnt", dnt), wait_until="load")
    assert page.evaluate("heron.isEnabled()") is False
    page.goto(site.page("/dnt-off", html(receiver, "dnt-off", TEXT, init="")), wait_until="load")
    assert page.evaluate("heron.isEnabled()") is True  # respectDoNotTrack defaults to false
    leave(page)
    receiver.wait("dnt-off", lambda ev: any(e["t"] == "view" for e in ev))
    assert receiver.events("dnt") == []
