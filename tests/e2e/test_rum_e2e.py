"""Real-user monitoring end to end: real Chromium on the demo shop's pages, a real
``heron serve``, the real JSON API.

The demo shop (``heron.demo.shop``, with the agent) and ``demo-inventory`` run as
subprocesses; their pages load ``/rum.js`` from Heron with a browser key and carry the
request's ``traceparent`` in a ``<meta>`` tag. Chromium (Playwright, Debian's
``/usr/bin/chromium``, a realistic user agent: Heron drops ``HeadlessChrome`` as a bot)
shops through the pages; the tests then read what Heron made of the beacons through
``/api/v1/rum/*``, ``/api/v1/issues`` and ``/api/v1/traces``.
"""

from __future__ import annotations

import os
import re
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from heron.demo._procs import Child
from heron.demo.browser import DESKTOP, launch, new_context
from heron.demo.pages import RUM_APP
from tests.conftest import HeronProcess, free_port, make_heron

pytestmark = pytest.mark.e2e

BROWSER_KEY = "hb_test_browser_key_0123456789"
CHROMIUM = os.environ.get("HERON_CHROMIUM", "/usr/bin/chromium")
ARRIVE_WITHIN_S = 30.0
TRACEPARENT = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-[0-9a-f]{2}$")


@dataclass
class Shop:
    heron: HeronProcess
    url: str
    apps: list[Child]


def _start_app(tmp: Path, name: str, heron_url: str, extra: list[str]) -> tuple[Child, str]:
    ready = tmp / f"{name}.port"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HERON_", "OTEL_"))}
    env["OTEL_BSP_SCHEDULE_DELAY"] = "200"  # spans reach Heron within a second
    argv = [sys.executable, "-m", f"heron.demo.{name}", "--db", str(tmp / f"{name}.sqlite")]
    argv += [
        "--ready-file",
        str(ready),
        "--heron-url",
        heron_url,
        "--key",
        "hk_test_ingest_key_0123456789",
    ]
    app = Child.start(f"demo-{name}", [*argv, *extra], env, tmp / f"{name}.log")
    app.wait_until(ready.exists, 60, lambda: False)
    return app, f"http://127.0.0.1:{int(ready.read_text())}"


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shop]:
    """``heron serve`` with a browser key whose allowed origin is the shop's, then the
    inventory and the shop (on the port chosen for that origin)."""
    tmp = tmp_path_factory.mktemp("rum")
    port = free_port()
    h = make_heron(
        tmp,
        HERON_RUM_BROWSER_KEY=BROWSER_KEY,
        HERON_RUM_ALLOWED_ORIGINS=f"http://127.0.0.1:{port}",
    ).start()
    apps: list[Child] = []
    try:
        inventory, inventory_url = _start_app(tmp, "inventory", h.url, [])
        apps.append(inventory)
        shop_args = ["--inventory-url", inventory_url, "--port", str(port)]
        app, url = _start_app(tmp, "shop", h.url, [*shop_args, "--browser-key", BROWSER_KEY])
        apps.append(app)
        yield Shop(h, url, apps)
    finally:
        for a in reversed(apps):
            a.stop(10)
        h.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    # Never skip: a missing browser must fail the suite (make test installs Chromium).
    from playwright import sync_api

    if not Path(CHROMIUM).exists():
        pytest.fail(f"no Chromium at {CHROMIUM}: run `make browser` or set HERON_CHROMIUM")
    with sync_api.sync_playwright() as pw:
        # With the desktop UA for every request: Chromium sends the beacons of an
        # unloading page with its own (HeadlessChrome, a bot) despite a context's UA.
        b = launch(pw, CHROMIUM, DESKTOP)
        try:
            yield b
        finally:
            b.close()


def _context(browser: Any) -> Any:
    return new_context(browser, DESKTOP)


@dataclass
class Visit:
    """What the browser saw: the marker in every URL it visited, the traceparent each
    document carried, the traceparent the SDK put on the Add to cart fetch."""

    marker: str
    documents: dict[str, str] = field(default_factory=dict)  # path -> traceparent meta
    fetch_traceparent: str = ""
    page_errors: list[str] = field(default_factory=list)


def _document_trace(page: Any) -> str:
    return str(page.locator('meta[name="traceparent"]').get_attribute("content"))


@pytest.fixture(scope="module")
def visit(shop: Shop, browser: Any) -> Visit:
    """One shopper: product list → product → Add to cart → checkout → Apply coupon (a
    TypeError) → Place order with a declined card (an unhandled rejection) → leave."""
    v = Visit(marker=uuid.uuid4().hex[:12])
    ctx = _context(browser)
    page = ctx.new_page()
    page.on("pageerror", lambda e: v.page_errors.append(str(e)))
    try:
        page.goto(f"{shop.url}/shop?visit={v.marker}", wait_until="load")
        v.documents["/shop"] = _document_trace(page)
        page.goto(f"{shop.url}/shop/products/7?visit={v.marker}", wait_until="load")
        v.documents["/shop/products/7"] = _document_trace(page)
        with page.expect_request(lambda r: "/products/7" in r.url and "/shop/" not in r.url) as req:
            page.click("#add-to-cart")
        v.fetch_traceparent = req.value.headers.get("traceparent", "")
        page.wait_for_selector("#status:has-text('Added')")
        page.goto(f"{shop.url}/shop/checkout?visit={v.marker}", wait_until="load")
        v.documents["/shop/checkout"] = _document_trace(page)
        page.click("#apply-coupon")
        page.fill("#card", "4000000000000002")
        with page.expect_response(lambda r: r.url.endswith("/checkout")):
            page.click("#place-order")
        page.wait_for_timeout(300)
        page.goto("about:blank")  # hides the page: the SDK sends its last beacon
    finally:
        ctx.close()
    return v


def rum_events(h: HeronProcess, ok: Callable[[list[dict[str, Any]]], bool]) -> list[dict[str, Any]]:
    """Every stored RUM event of the shop's app (through the sessions API), polled until
    ``ok(events)``."""
    deadline = time.monotonic() + ARRIVE_WITHIN_S
    events: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        r = h.api("/api/v1/rum/sessions", app=RUM_APP)
        assert r.status_code == 200, r.text
        events = []
        for s in r.json()["sessions"]:
            t = h.api(f"/api/v1/rum/sessions/{s['session_id']}")
            assert t.status_code == 200, t.text
            events.extend(t.json()["events"])
        if ok(events):
            return events
        time.sleep(0.5)
    raise AssertionError(f"RUM events not as expected within {ARRIVE_WITHIN_S:.0f}s: {events}")


def of_visit(events: list[dict[str, Any]], marker: str, kind: str) -> list[dict[str, Any]]:
    return [e for e in events if e["kind"] == kind and f"visit={marker}" in e["url"]]


def test_vitals_arrive_with_plausible_values(shop: Shop, visit: Visit) -> None:
    wanted = {"FCP", "TTFB", "LCP", "CLS"}

    def arrived(events: list[dict[str, Any]]) -> bool:
        return wanted <= {e["name"] for e in of_visit(events, visit.marker, "vital")}

    vitals = of_visit(rum_events(shop.heron, arrived), visit.marker, "vital")
    for e in vitals:
        if e["name"] == "CLS":
            assert 0 <= e["value"] < 1, e
        elif e["name"] in ("FCP", "TTFB", "LCP"):
            assert 0 < e["value"] < 60_000, e
        assert e["rating"] in ("good", "needs-improvement", "poor"), e
        assert e["browser"].startswith("Chrome") and e["device"] == "desktop", e
    lcp = [e for e in vitals if e["name"] == "LCP" and e["page"] == "/shop"]
    # The list's LCP element is the hero image, answered after ~1.3 s.
    assert lcp and lcp[0]["value"] > 1000, lcp


def test_the_slow_image_and_the_slow_interaction_are_reported(shop: Shop, visit: Visit) -> None:
    def arrived(events: list[dict[str, Any]]) -> bool:
        return bool(of_visit(events, visit.marker, "resource")) and bool(
            of_visit(events, visit.marker, "interaction")
        )

    events = rum_events(shop.heron, arrived)
    hero = [
        e for e in of_visit(events, visit.marker, "resource") if e["name"].endswith("/hero.png")
    ]
    assert hero, of_visit(events, visit.marker, "resource")
    assert hero[0]["target"] == "img" and 1000 < hero[0]["value"] < 60_000, hero[0]
    clicks = of_visit(events, visit.marker, "interaction")
    add = [e for e in clicks if "add-to-cart" in e["target"]]
    assert add, clicks
    assert add[0]["value"] > 200 and add[0]["page"] == "/shop/products/:id", add[0]  # ~250 ms busy


def test_a_thrown_error_becomes_a_javascript_issue_with_its_stack(shop: Shop, visit: Visit) -> None:
    assert any("WELCOME10" in e for e in visit.page_errors), visit.page_errors

    def arrived(events: list[dict[str, Any]]) -> bool:
        return {"TypeError", "Error"} <= {
            e["name"] for e in of_visit(events, visit.marker, "error")
        }

    errors = of_visit(rum_events(shop.heron, arrived), visit.marker, "error")
    rejection = next(e for e in errors if e["name"] == "Error")
    assert "checkout failed with HTTP 500" in rejection["target"], rejection
    issues = shop.heron.wait_for(
        "/api/v1/issues",
        lambda j: any(i["exc_type"] == "TypeError" for i in j["issues"]),
        timeout=ARRIVE_WITHIN_S,
    )["issues"]
    issue = next(i for i in issues if i["exc_type"] == "TypeError")
    assert "WELCOME10" in issue["title"], issue
    detail = shop.heron.api(f"/api/v1/issues/{issue['id']}").json()["latest"]
    assert (detail["platform"], detail["source"]) == ("javascript", "rum"), detail
    frames = detail["exceptions"][-1]["frames"]
    apply = [f for f in frames if f["function"] == "applyCoupon"]
    assert apply, frames
    assert apply[0]["filename"].endswith("/shop/assets/shop.js") and apply[0]["lineno"] > 0, apply
    assert "/shop/checkout" in str(detail["request"]), detail["request"]


def test_page_load_and_fetch_share_the_backend_trace(shop: Shop, visit: Visit) -> None:
    meta = TRACEPARENT.match(visit.documents["/shop/products/7"])
    assert meta, visit.documents
    trace_id, document_span = meta.groups()

    def arrived(events: list[dict[str, Any]]) -> bool:
        views = of_visit(events, visit.marker, "view")
        return any(e["trace_id"] == trace_id for e in views) and bool(
            of_visit(events, visit.marker, "fetch")
        )

    events = rum_events(shop.heron, arrived)
    trace = shop.heron.wait_for(
        f"/api/v1/traces/{trace_id}",
        lambda j: {"demo-shop", RUM_APP} <= set(j["services"]),
        timeout=ARRIVE_WITHIN_S,
    )
    by_id = {s["span_id"]: s for s in trace["spans"]}
    assert by_id[document_span]["name"] == "GET /shop/products/<int:product_id>"
    assert by_id[document_span]["service"] == "demo-shop"
    pageload = [
        s for s in trace["spans"] if s["service"] == RUM_APP and s["name"].startswith("pageload")
    ]
    assert pageload and pageload[0]["attributes"]["heron.rum.document_span"] == document_span
    assert "demo-inventory" in trace["services"]  # the page's stock lookup, same trace

    fetch = TRACEPARENT.match(visit.fetch_traceparent)
    assert fetch, visit.fetch_traceparent
    fetch_trace, client_span = fetch.groups()
    assert fetch_trace != trace_id  # a new trace per call, started by the browser
    stored = [e for e in of_visit(events, visit.marker, "fetch") if e["trace_id"] == fetch_trace]
    assert stored, of_visit(events, visit.marker, "fetch")
    called = shop.heron.wait_for(
        f"/api/v1/traces/{fetch_trace}",
        lambda j: "demo-shop" in j["services"] and RUM_APP in j["services"],
        timeout=ARRIVE_WITHIN_S,
    )
    server = next(s for s in called["spans"] if s["name"] == "GET /products/<int:product_id>")
    assert server["parent_id"] == client_span, server
    assert by_span(called, client_span)["service"] == RUM_APP


def by_span(trace: dict[str, Any], span_id: str) -> dict[str, Any]:
    return next(s for s in trace["spans"] if s["span_id"] == span_id)


def test_events_sent_as_the_page_closes_arrive(shop: Shop, browser: Any) -> None:
    """The slow click's interaction is only queued when the tab closes right after it:
    the SDK's pagehide/visibilitychange beacon must carry it out."""
    marker = uuid.uuid4().hex[:12]
    ctx = _context(browser)
    try:
        page = ctx.new_page()
        page.goto(f"{shop.url}/shop/products/9?visit={marker}", wait_until="load")
        with page.expect_response(lambda r: r.url.endswith("/products/9")):
            page.click("#add-to-cart")
        page.close(run_before_unload=True)
        time.sleep(0.5)
    finally:
        ctx.close()

    def arrived(events: list[dict[str, Any]]) -> bool:
        return bool(of_visit(events, marker, "interaction")) and any(
            e["name"] == "LCP" for e in of_visit(events, marker, "vital")
        )

    events = rum_events(shop.heron, arrived)
    assert of_visit(events, marker, "interaction")[0]["value"] > 200


def test_the_shopper_set_by_the_page_names_the_session(shop: Shop, visit: Visit) -> None:
    """The shop's script calls ``heron.setUser``: the visit's session carries that id."""

    def arrived(events: list[dict[str, Any]]) -> bool:
        return bool(of_visit(events, visit.marker, "view"))

    session_id = of_visit(rum_events(shop.heron, arrived), visit.marker, "view")[0]["session_id"]
    r = shop.heron.api("/api/v1/rum/sessions", app=RUM_APP)
    users = {s["session_id"]: s["user_id"] for s in r.json()["sessions"]}
    assert users[session_id].startswith("shopper-"), users
