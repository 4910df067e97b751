"""The UI in a real browser (Debian's Chromium via Playwright) against ``heron serve``."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import pytest

from tests.conftest import make_heron
from tests.ui import seed as seed_data
from tests.ui.browser.conftest import PASSWORD, Served, Watched, post_traces

pytestmark = pytest.mark.e2e


def x_span_s(page: Any, index: int = 0) -> float:
    """The time span (seconds) of a drawn chart's x scale."""
    return float(
        page.evaluate(f"Heron.plots[{index}].scales.x.max - Heron.plots[{index}].scales.x.min")
    )


def test_sign_in_overview_service_endpoint_trace(served: Served, watched: Watched) -> None:
    page = watched.page
    watched.sign_in(served.url)
    assert page.url == served.url + "/"
    assert page.locator("#services tbody tr").count() >= 5
    watched.shot("overview")

    page.click("#services a:text-is('frontend')")
    page.wait_for_selector(".charts[data-drawn]")
    assert urlsplit(page.url).query == "service=frontend"
    assert page.locator(".charts canvas").count() == 3
    check_partial_step_is_dashed(page)
    watched.shot("service")

    page.click("#endpoints a:text-is('POST /checkout')")
    page.wait_for_selector(".chart[data-chart=histogram][data-drawn]")
    assert page.locator(".chart[data-chart=histogram] canvas").count() == 1
    assert page.locator("#slowest tbody tr").count() == 10
    watched.shot("endpoint")

    page.click("#slowest tbody tr >> nth=0 >> a")
    page.wait_for_selector("#waterfall[data-ready]")
    assert "/traces/" in page.url and parse_qs(urlsplit(page.url).query)["span"]
    # The span the link pointed at is selected, its detail open.
    assert page.locator(".wf-row.sel").count() == 1
    assert page.locator("#wf-detail").is_visible()
    assert page.locator(".wf-row:not([hidden])").count() == 8
    watched.assert_clean()


def check_partial_step_is_dashed(page: Any) -> None:
    """The minute still filling is drawn by a dashed twin of each line, kept out of the
    legend; the solid line stops before it, so it never dips like an outage."""
    throughput = page.evaluate(
        """() => { const u = Heron.plots[0], n = u.data[0].length;
                   return { labels: u.series.map(s => s.label), dash: u.series[2].dash,
                            solidLast: u.data[1][n - 1], dashedLast: u.data[2][n - 1],
                            dashedDrawn: u.data[2].filter(v => v !== null).length,
                            legend: [...u.root.querySelectorAll('.u-legend .u-series')]
                                      .map(r => getComputedStyle(r).display) }; }"""
    )
    assert throughput["labels"][1:] == ["req/min", "req/min (so far)"], throughput
    assert throughput["dash"] == [4, 4]
    assert throughput["solidLast"] is None and throughput["dashedLast"] is not None
    assert throughput["dashedDrawn"] == 2  # from the last whole step to the partial one
    assert throughput["legend"][-1] == "none" and throughput["legend"][1] != "none"


def test_trace_waterfall_interactions(served: Served, watched: Watched) -> None:
    page = watched.page
    watched.sign_in(served.url, f"/traces/{served.seed.error_trace}")
    page.wait_for_selector("#waterfall[data-ready]")
    rows = page.locator(".wf-row:not([hidden])")
    assert rows.count() == 8
    # Service colours: each row's bar takes its service's palette slot.
    assert page.locator(".wf-row.err").count() == 2
    page.click(".wf-row:has-text('payments') .wf-name")
    detail = page.locator("#wf-detail")
    assert detail.is_visible()
    assert "PaymentError" in detail.inner_text()
    assert "Traceback (most recent call last)" in detail.locator("pre.stack").inner_text()
    assert "service.name" in detail.inner_text()  # the resource
    assert "span=" in page.url
    # Every duration label sits after its bar, inside the row: the root's too.
    for i in range(rows.count()):
        row = rows.nth(i)
        bar, dur = row.locator(".wf-bar").bounding_box(), row.locator(".wf-dur").bounding_box()
        assert dur["x"] >= bar["x"] + bar["width"], (i, bar, dur)
        assert dur["x"] + dur["width"] <= row.bounding_box()["x"] + row.bounding_box()["width"]
    # The payments span's exception type came as "__main__.PaymentError".
    assert page.locator("#wf-detail .exc .type").inner_text() == "PaymentError"
    watched.shot("trace")
    # Collapse the callee's subtree: its five descendants disappear.
    page.click(".wf-row:has-text('POST /api/checkout') .wf-tog")
    assert rows.count() == 3
    assert page.locator(".wf-row:has-text('POST /api/checkout') .wf-count").inner_text() == "+5"
    page.click("[data-action=expand]")
    assert rows.count() == 8
    # Critical path highlighting can be switched off.
    assert page.locator(".wf-crit:not([hidden])").first.is_visible()
    page.uncheck("#wf-critical")
    assert not page.locator(".wf-crit:not([hidden])").first.is_visible()
    # Keyboard: Escape closes the detail.
    page.focus("#wf-scroll")
    page.keyboard.press("Escape")
    assert not detail.is_visible()
    watched.assert_clean()


def test_time_range_change_updates_charts(served: Served, watched: Watched) -> None:
    page = watched.page
    watched.sign_in(served.url, "/service?service=checkout")
    page.wait_for_selector(".charts[data-drawn]")
    assert x_span_s(page) == pytest.approx(3600, abs=60)
    points_1h = int(page.get_attribute(".charts", "data-drawn") or 0)
    page.click(".seg a[data-range='6h']")
    page.wait_for_url("**range=6h**")
    page.wait_for_selector(".charts[data-drawn]")
    assert x_span_s(page) == pytest.approx(6 * 3600, abs=300)
    assert parse_qs(urlsplit(page.url).query) == {"service": ["checkout"], "range": ["6h"]}
    assert int(page.get_attribute(".charts", "data-drawn") or 0) != points_1h
    assert page.locator(".seg a.on").inner_text() == "6h"
    # Dragging across a chart zooms to that stretch (a custom, absolute range).
    box = page.locator(".chart[data-chart=throughput] .u-over").bounding_box()
    y = box["y"] + box["height"] / 2
    page.mouse.move(box["x"] + box["width"] * 0.70, y)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * 0.95, y, steps=5)
    page.mouse.up()
    page.wait_for_url("**from=**")
    page.wait_for_selector(".charts[data-drawn]")
    q = parse_qs(urlsplit(page.url).query)
    assert "range" not in q and q["from"][0].endswith("Z") and q["to"][0].endswith("Z")
    assert 0 < x_span_s(page) < 6 * 3600 * 0.5
    assert page.locator(".seg details.on").count() == 1
    # The environment filter is part of the URL too.
    page.select_option("select[name=env]", "staging")
    page.wait_for_url("**env=staging**")
    assert parse_qs(urlsplit(page.url).query)["service"] == ["checkout"]
    watched.assert_clean()


def test_live_filter_and_auto_refresh(served: Served, watched: Watched) -> None:
    page = watched.page
    watched.sign_in(served.url, "/service?service=frontend")
    page.fill("input[data-filter=endpoints]", "checkout")
    assert page.locator("#endpoints tbody tr:not([hidden])").count() == 1
    assert parse_qs(urlsplit(page.url).query)["q"] == ["checkout"]

    page.goto(served.url + "/?refresh=10s")
    page.wait_for_selector("body[data-ready]")
    assert page.get_attribute("body", "data-refresh") == "10"
    assert page.locator("text=late-arrival").count() == 0
    late = seed_data.Seed(time.time_ns())
    late.add(
        "late-arrival",
        "production",
        "1",
        seed_data.Sp(0xA1, 1, 0, "GET /late", 2, time.time_ns() - 10**9, 5 * 10**6),
    )
    post_traces(served.heron, late.requests())
    page.evaluate("Heron.refresh()")
    page.wait_for_selector("#services a:text-is('late-arrival')")
    assert page.locator("#refresh-status").inner_text().startswith("updated")
    watched.assert_clean()


def test_five_thousand_span_trace_renders(served: Served, watched: Watched) -> None:
    page = watched.page
    watched.sign_in(served.url)
    t0 = time.perf_counter()
    page.goto(f"{served.url}/traces/{served.seed.big_trace}")
    page.wait_for_selector("#waterfall[data-ready]")
    load_s = time.perf_counter() - t0
    render_ms = int(page.get_attribute("#waterfall", "data-rendered-ms") or 0)
    print(
        f"\n5,000-span trace: page ready in {load_s * 1000:.0f} ms, waterfall built in {render_ms} ms"
    )
    assert load_s < 10 and render_ms < 2000
    # Only the rows in view exist.
    in_dom = page.locator(".wf-row:not([hidden])").count()
    assert 10 < in_dom < 150
    # Scrolling to the end draws the last spans; measure a scroll-and-paint round.
    took = page.evaluate(
        """() => new Promise(done => {
             const el = document.getElementById('wf-scroll'), t = performance.now();
             el.scrollTop = el.scrollHeight;
             requestAnimationFrame(() => requestAnimationFrame(() => done(performance.now() - t)));
           })"""
    )
    print(f"scroll to the end and repaint: {took:.0f} ms")
    assert took < 500
    last = page.locator(".wf-row:not([hidden])").last
    assert "INSERT catalog.items" in last.inner_text()
    # Collapse all: the root and its 50 chunks remain.
    page.click("[data-action=collapse]")
    assert page.evaluate("Heron.waterfall.visible.length") == 51
    page.click("[data-action=expand]")
    assert page.evaluate("Heron.waterfall.visible.length") == seed_data.BIG_TRACE_SPANS
    # Find a span deep in the trace: it is revealed and selected.
    page.fill("#wf-find", "import chunk 49")
    page.press("#wf-find", "Enter")
    page.wait_for_selector(".wf-row.sel")
    assert "import chunk 49" in page.locator(".wf-row.sel").inner_text()
    assert page.locator("#wf-found").inner_text() == "1 match"
    watched.shot("trace-5000")
    watched.assert_clean()


def test_injected_markup_executes_nothing(served: Served, watched: Watched) -> None:
    page = watched.page
    svc = quote(seed_data.XSS_SERVICE, safe="")
    endpoint = quote(f"GET {seed_data.XSS_ROUTE}", safe="")
    watched.sign_in(served.url)
    assert page.locator(f'#services a:text-is("{seed_data.XSS_SERVICE}")').count() == 1
    for path in (
        f"/service?service={svc}",
        f"/endpoint?service={svc}&endpoint={endpoint}",
        f"/traces?service={svc}",
        "/map",
        f"/traces/{served.seed.xss_trace}",
    ):
        page.goto(served.url + path)
        page.wait_for_selector("body[data-ready]")
    page.wait_for_selector("#waterfall[data-ready]")
    page.click(".wf-row >> nth=0")
    detail = page.locator("#wf-detail")
    # The payloads are on screen, as text.
    for text in (seed_data.XSS_MESSAGE, seed_data.XSS_VALUE, seed_data.XSS_SPAN):
        assert text in detail.inner_text()
    assert seed_data.XSS_KEY in detail.locator("dt").all_inner_texts()
    assert page.locator("img[src=x], svg[onload]").count() == 0
    page.fill("#wf-find", "onerror")
    page.press("#wf-find", "Enter")
    watched.shot("xss-inert")
    page.wait_for_timeout(300)  # give any injected handler the chance to fire
    watched.assert_clean()


def test_service_map_and_search_pages(served: Served, watched: Watched) -> None:
    page = watched.page
    watched.sign_in(served.url, "/map")
    assert page.locator("#service-map a.node").count() >= 5
    assert page.locator("#edges tbody tr").count() >= 4
    watched.shot("map")
    page.goto(served.url + "/traces?service=payments&status=error")
    page.wait_for_selector("body[data-ready]")
    assert page.locator("#trace-results tbody tr").count() >= 1
    watched.shot("traces")
    page.click("#service-map a.node" if False else "#trace-results tbody tr >> nth=0 >> a")
    page.wait_for_selector("#waterfall[data-ready]")
    watched.assert_clean()


def test_dark_theme(served: Served, watched_dark: Watched) -> None:
    watched_dark.sign_in(served.url, "/endpoint?service=checkout&endpoint=POST%20%2Fapi%2Fcheckout")
    watched_dark.page.wait_for_selector(".chart[data-chart=histogram][data-drawn]")
    bg = watched_dark.page.evaluate("getComputedStyle(document.body).backgroundColor")
    assert bg == "rgb(15, 18, 23)"
    watched_dark.shot("endpoint-dark")
    watched_dark.assert_clean()


def test_empty_state_tells_how_to_send(tmp_path: Path, watched: Watched) -> None:
    h = make_heron(tmp_path, HERON_ADMIN_PASSWORD=PASSWORD).start()
    try:
        watched.sign_in(h.url)
        setup = watched.page.locator("#setup")
        assert "No data yet" in setup.inner_text()
        assert f"{h.url}/v1/traces" in setup.inner_text()
        assert h.key in setup.inner_text()
        watched.shot("empty")
        watched.assert_clean()
    finally:
        h.stop()
