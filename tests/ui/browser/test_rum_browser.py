"""The web-vitals pages in Debian's Chromium against a real ``heron serve``, fed the way
production is: a beacon posted to ``/rum/v1/events`` with the browser key (its route, URL,
selectors, error message and user id carrying XSS payloads) and the backend's document
span over OTLP. Nothing injected may run; the payloads show as text; the page load is the
root of its trace with the backend span under it."""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from tests.conftest import HeronProcess, make_heron
from tests.ui.browser.conftest import PASSWORD, Watched, post_traces

pytestmark = pytest.mark.e2e

BROWSER_KEY = "hb_rum_browser_test_key_0123456789"
ORIGIN = "https://shop.example"
CHROME = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36"
)
XSS_ROUTE = "/x/<img src=x onerror=alert('route')>"
XSS_TARGET = "div\"><img src=x onerror=alert('target')>"
XSS_ERROR = "<img src=x onerror=alert('jserr')>"
XSS_USER = "<script>alert('user')</script>"
PAYLOADS = (XSS_ROUTE, XSS_TARGET, XSS_USER)
DOC_SPAN = "8f3ac2b7e41d5a06"


class Fed:
    def __init__(self, heron: HeronProcess, session: str, trace: str) -> None:
        self.heron, self.session, self.trace = heron, session, trace

    @property
    def url(self) -> str:
        return self.heron.url


def _beacon(session: str, trace: str) -> dict[str, Any]:
    at = time.time() * 1000 - 60_000
    view = {
        "url": "https://shop.example/x/page",
        "route": XSS_ROUTE,
        "nav": "navigate",
        "start": at,
        "trace": f"00-{trace}-{DOC_SPAN}-01",
    }
    timing = {"request_start": 20, "response_start": 120, "response_end": 140}
    timing |= {"dom_interactive": 300, "dcl_end": 320, "load_end": 900}
    events: list[dict[str, Any]] = [
        {"t": "view", "view": "v1", "ts": at, "timing": timing},
        {"t": "vital", "view": "v1", "ts": at + 800, "name": "LCP", "value": 4200,
         "attribution": {"target": XSS_TARGET}},
        {"t": "vital", "view": "v1", "ts": at + 900, "name": "CLS", "value": 0.05},
        {"t": "vital", "view": "v1", "ts": at + 900, "name": "INP", "value": 120,
         "attribution": {"target": XSS_TARGET}},
        {"t": "interaction", "view": "v1", "ts": at + 2000, "type": "pointer", "event": "click",
         "target": XSS_TARGET, "duration": 250, "input_delay": 10, "processing": 200,
         "presentation": 40},
        {"t": "error", "view": "v1", "ts": at + 3000, "type": "TypeError", "message": XSS_ERROR,
         "stack": "TypeError: x\n    at addToCart (https://shop.example/static/app.js:120:17)",
         "mechanism": "onerror", "handled": False},
    ]  # fmt: skip
    return {
        "v": 1,
        "sdk": "heron-rum/0.1.0",
        "session": session,
        "user": XSS_USER,
        "app": "shop-web",
        "environment": "production",
        "views": {"v1": view},
        "events": events,
    }


def _document_span(trace: str) -> dict[str, Any]:
    start = time.time_ns() - 60 * 10**9 + 25 * 10**6
    span = {
        "traceId": trace,
        "spanId": DOC_SPAN,
        "name": "GET /x/page",
        "kind": 2,
        "startTimeUnixNano": str(start),
        "endTimeUnixNano": str(start + 90 * 10**6),
        "attributes": [{"key": "http.request.method", "value": {"stringValue": "GET"}}],
    }
    resource = {"attributes": [{"key": "service.name", "value": {"stringValue": "shop"}}]}
    scope = {"scope": {"name": "t"}, "spans": [span]}
    return {"resourceSpans": [{"resource": resource, "scopeSpans": [scope]}]}


@pytest.fixture(scope="module")
def fed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fed]:
    h = make_heron(
        tmp_path_factory.mktemp("rum-browser"),
        HERON_ADMIN_PASSWORD=PASSWORD,
        HERON_RUM_BROWSER_KEY=BROWSER_KEY,
        HERON_RUM_ALLOWED_ORIGINS=ORIGIN,
    ).start()
    try:
        session, trace = "s" + secrets.token_hex(8), secrets.token_hex(16)
        post_traces(h, [_document_span(trace)])
        r = httpx.post(
            f"{h.url}/rum/v1/events",
            params={"key": BROWSER_KEY},
            json=_beacon(session, trace),
            headers={"origin": ORIGIN, "user-agent": CHROME},
            timeout=30,
        )
        assert r.status_code in (200, 202, 204), r.text
        h.wait_for("/api/v1/rum/sessions", lambda j: j["sessions"])
        h.wait_for("/api/v1/issues", lambda j: j["issues"], platform="javascript")
        yield Fed(h, session, trace)
    finally:
        h.stop()


def _goto(page: Any, url: str) -> None:
    page.goto(url)
    page.wait_for_selector("body[data-ready]")


def test_rum_pages_show_payloads_as_text_and_run_nothing(fed: Fed, watched: Watched) -> None:
    page = watched.page
    watched.sign_in(fed.url, "/rum")
    assert page.locator("#vital-cards .vital-card").count() == 5
    assert page.locator('#vital-cards [data-vital="LCP"]').get_attribute("data-rating") == "poor"
    page.wait_for_selector(".charts[data-drawn]")
    assert page.locator(".charts .chart .uplot").count() == 3
    assert page.locator(f'#by-page td.name a:text-is("{XSS_ROUTE}")').count() == 1
    watched.shot("rum-overview")
    _goto(page, fed.url + "/rum/page?page=" + quote(XSS_ROUTE, safe=""))
    assert XSS_TARGET in page.locator("#page-interactions").inner_text()
    assert XSS_ERROR in page.locator("#page-errors").inner_text()
    _goto(page, fed.url + "/rum/sessions")
    assert XSS_USER in page.locator("#sessions").inner_text()
    page.click(f'#sessions a:text-is("{fed.session}")')
    page.wait_for_selector("#session-timeline")
    assert page.locator("#session-user").inner_text() == XSS_USER
    timeline = page.locator("#session-timeline").inner_text()
    assert XSS_TARGET in timeline and XSS_ERROR in timeline and XSS_ROUTE in timeline
    watched.shot("rum-session")
    page.click("#session-timeline tr[data-kind=error] a:text-is('issue')")
    page.wait_for_selector("body[data-ready]")
    assert "/issues/" in page.url and XSS_ERROR in page.inner_text("main")
    _goto(page, fed.url + "/issues")
    assert page.locator('.badge.platform[data-platform="javascript"]').count() == 1
    assert page.locator("img[src=x], svg[onload]").count() == 0
    page.wait_for_timeout(300)  # give any injected handler the chance to fire
    watched.assert_clean()


def test_page_load_is_the_root_of_its_trace(fed: Fed, watched: Watched) -> None:
    page = watched.page
    watched.sign_in(fed.url, f"/rum/sessions/{fed.session}")
    page.click("#session-timeline tr[data-kind=view] a:text-is('trace')")
    page.wait_for_selector("#waterfall[data-ready]")
    assert page.url.split("?")[0].endswith("/traces/" + fed.trace)
    rows = [" ".join(t.split()) for t in page.locator(".wf-row .wf-label").all_inner_texts()]
    assert rows[0] == f"▼ shop-web browser pageload {XSS_ROUTE}"
    request_at = rows.index("▼ shop-web browser request")
    assert rows[request_at + 1] == "shop GET /x/page"  # the backend span, under `request`
    assert page.locator(".wf-row .wf-browser:visible").count() >= 3  # page load + phases
    assert page.locator("#trace-rum-session").inner_text() == fed.session
    watched.shot("rum-trace")
    watched.assert_clean()
