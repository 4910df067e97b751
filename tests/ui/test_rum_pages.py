"""The web-vitals pages in-process (real app, real DuckDB store): RUM events put in through
``store.submit_rum`` like the beacon endpoint does, browser spans through OTLP. Checks the
figures shown, empty states, bad parameters, the trace view's page-load root, and that
every RUM payload renders as text."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
from bs4 import BeautifulSoup, Tag

from tests.ui import rum_seed
from tests.ui.conftest import INGEST_KEY, NOW_NS, Ui, _start


@pytest.fixture(scope="module")
def rui(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ui]:
    """Signed in, holding tests/ui/rum_seed.py's sessions and the joined page-load trace."""
    for ui in _start(tmp_path_factory.mktemp("rum-ui"), None):
        ctx = ui.app.state.ctx
        data = rum_seed.build(NOW_NS)
        assert ctx.store.submit_rum(data.write(ctx.project_id)).result(timeout=30) == len(
            data.events
        )
        ui.ingest(rum_seed.pageload_trace(NOW_NS))
        for event in (rum_seed.js_error_event(NOW_NS), _python_event()):
            r = ui.post(
                "/api/1/store/",
                json=event,
                params={"sentry_key": INGEST_KEY, "sentry_version": "7"},
            )
            assert r.status_code == 200, r.text
        yield ui


def _python_event() -> dict[str, object]:
    return {
        "event_id": "cd" * 16,
        "timestamp": NOW_NS / 1e9 - 60,
        "platform": "python",
        "tags": {"service": "shop"},
        "exception": {"values": [{"type": "KeyError", "value": "'sku'"}]},
    }


def _text(soup: BeautifulSoup, selector: str) -> str:
    found = soup.select_one(selector)
    assert isinstance(found, Tag), selector
    return found.get_text(" ", strip=True)


def test_overview_cards_show_p75_rating_and_shares(rui: Ui) -> None:
    soup = rui.soup("/rum")
    lcp = soup.select_one('#vital-cards [data-vital="LCP"]')
    assert isinstance(lcp, Tag)
    # 11 LCP samples: 900 … 2400 (8 good), 3000 (NI), 5200 and 6000 (poor); p75 ≈ 3 s.
    assert lcp["data-rating"] == "needs-improvement"
    assert lcp.select_one(".vital-value").get_text().endswith(" s")  # type: ignore[union-attr]
    assert float(lcp.select_one(".vital-value").get_text()[:-2]) == pytest.approx(3.0, rel=0.08)  # type: ignore[union-attr]
    assert _text(lcp, ".vital-shares") == "72.7% · 9.09% · 18.2%"
    assert _text(lcp, ".count") == "11"
    inp = soup.select_one('#vital-cards [data-vital="INP"]')
    assert isinstance(inp, Tag) and inp["data-rating"] == "poor"  # 150 and 600: p75 in 600's bucket
    assert "Page views" in _text(soup, "#rum-stats") and "4" in _text(soup, "#rum-stats")
    assert soup.select_one("#rum-setup") is None
    assert "Country is not shown" in soup.get_text()


def test_overview_device_split_and_breakdowns(rui: Ui) -> None:
    soup = rui.soup("/rum")
    desktop = soup.select_one('#vitals-by-device tr[data-device="desktop"] td[data-vital="LCP"]')
    mobile = soup.select_one('#vitals-by-device tr[data-device="mobile"] td[data-vital="LCP"]')
    assert isinstance(desktop, Tag) and isinstance(mobile, Tag)
    assert "r-ni" not in desktop["class"] and "r-poor" in mobile["class"]
    pages = [r["data-group"] for r in soup.select("#by-page tbody tr")]
    assert set(pages) == {"/products/:id", "/cart", "/checkout", rum_seed.XSS_PAGE}
    link = soup.select_one('#by-page tr[data-group="/checkout"] a')
    assert isinstance(link, Tag) and link["href"] == "/rum/page?page=%2Fcheckout"
    browsers = {r["data-group"] for r in soup.select("#by-browser tbody tr")}
    assert browsers == {"Chrome", "Mobile Safari", "Firefox"}
    assert {r["data-group"] for r in soup.select("#by-device tbody tr")} == {"desktop", "mobile"}


def test_filters_narrow_the_overview(rui: Ui) -> None:
    soup = rui.soup("/rum?device=mobile")
    lcp = soup.select_one('#vital-cards [data-vital="LCP"]')
    assert isinstance(lcp, Tag) and lcp["data-rating"] == "poor"
    assert _text(lcp, ".count") == "2"
    assert [r["data-group"] for r in soup.select("#by-page tbody tr")] == ["/checkout"]
    series = json.loads(soup.select_one("#rum-series").string or "")  # type: ignore[union-attr]
    assert sum(series["rpm"]) == 1
    assert [line["label"] for line in series["latency"]] == [
        "LCP p75",
        "INP p75",
        "FCP p75",
        "TTFB p75",
    ]


def test_page_detail_lists_resources_interactions_errors_sessions(rui: Ui) -> None:
    soup = rui.soup("/rum/page?page=" + quote("/products/:id", safe=""))
    assert _text(soup, "#page-name") == "/products/:id"
    assert "hero.jpg" in _text(soup, "#page-resources")
    assert "button#add-to-cart" in _text(soup, "#page-interactions")
    assert "app.js" in _text(soup, "#page-long-frames")
    assert "cart is undefined" in _text(soup, "#page-errors")
    assert [r["data-session"] for r in soup.select("#sessions tbody tr")] == [
        rum_seed.SESSION_DESKTOP
    ]
    trace_link = soup.select_one("#page-views a[href^='/traces/']")
    assert isinstance(trace_link, Tag) and trace_link["href"] == "/traces/" + rum_seed.PAGE_TRACE


def test_sessions_list_and_filter_by_user(rui: Ui) -> None:
    soup = rui.soup("/rum/sessions")
    ids = [r["data-session"] for r in soup.select("#sessions tbody tr")]
    assert ids == [rum_seed.SESSION_XSS, rum_seed.SESSION_MOBILE, rum_seed.SESSION_DESKTOP]
    soup = rui.soup("/rum/sessions?user=u-42")
    assert [r["data-session"] for r in soup.select("#sessions tbody tr")] == [
        rum_seed.SESSION_DESKTOP
    ]
    assert rui.soup("/rum/sessions?user=nobody").select_one("#sessions-empty") is not None


def test_session_timeline_in_order_with_trace_links(rui: Ui) -> None:
    soup = rui.soup("/rum/sessions/" + rum_seed.SESSION_DESKTOP)
    kinds = [r["data-kind"] for r in soup.select("#session-timeline tbody tr")]
    assert kinds[0] == "view" and kinds[-1] == "view"
    assert kinds.index("error") < kinds.index("fetch")
    hrefs = [a["href"] for a in soup.select("#session-timeline a")]
    assert "/traces/" + rum_seed.PAGE_TRACE in hrefs
    assert "/traces/" + rum_seed.FETCH_TRACE in hrefs
    assert _text(soup, "#session-user") == "u-42"


def test_trace_view_roots_the_page_load_and_links_its_session(rui: Ui) -> None:
    soup = rui.soup("/traces/" + rum_seed.PAGE_TRACE)
    doc = json.loads(soup.select_one("#trace-data").string or "")  # type: ignore[union-attr]
    names = [(row[1], row[3], row[9]["browser"]) for row in doc["spans"]]
    assert names[0] == (0, "pageload /products/:id", True)
    # The backend span that served the document hangs under the `request` phase.
    assert (2, "GET /products/{id}", False) in names
    request_at = names.index((1, "request", True))
    assert names[request_at + 1] == (2, "GET /products/{id}", False)
    assert names[request_at + 2] == (3, "SELECT products", False)
    link = soup.select_one("#trace-rum-session")
    assert isinstance(link, Tag)
    assert link["href"] == "/rum/sessions/" + rum_seed.SESSION_DESKTOP


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("/rum?device=toaster", "device must be one of"),
        ("/rum/page", "'page' parameter"),
        ("/rum/sessions/bad%20id!", "session id must be"),
        ("/rum/sessions/" + quote("<img src=x onerror=alert(1)>", safe=""), "session id must be"),
        ("/rum?range=2y", "range must be one of"),
    ],
)
def test_bad_parameters_are_400_pages(rui: Ui, path: str, message: str) -> None:
    soup = rui.soup(path, status=400)
    assert message in soup.get_text()
    assert soup.find("script", src=False, type=False) is None


def test_unknown_session_is_404(rui: Ui) -> None:
    assert "sessNobody" in rui.soup("/rum/sessions/sessNobody000", status=404).get_text()


def _xss_pages() -> list[str]:
    return [
        "/rum",
        "/rum/page?page=" + quote(rum_seed.XSS_PAGE, safe=""),
        "/rum/sessions",
        "/rum/sessions/" + rum_seed.SESSION_XSS,
        "/rum?page=" + quote(rum_seed.XSS_PAGE, safe=""),
    ]


def test_rum_payloads_render_as_text(rui: Ui) -> None:
    seen: set[str] = set()
    for path in _xss_pages():
        html = rui.ok(path).text
        soup = BeautifulSoup(html, "html.parser")
        assert not soup.find("img", src="x"), path
        assert not soup.find("svg", onload=True), path
        for script in soup.find_all("script"):
            assert script.get("src") or script.get("type") == "application/json", path
            assert "<" not in (script.string or "")
        for tag in soup.find_all(True):
            assert not any(a.lower().startswith("on") for a in tag.attrs), (path, tag.name)
            assert "style" not in tag.attrs, (path, tag.name)
        for payload in rum_seed.RUM_XSS:
            assert payload not in html, (path, payload)
            if soup.find_all(string=lambda t, p=payload: p in t):
                seen.add(payload)
    assert seen == set(rum_seed.RUM_XSS)  # every payload was shown, as text


def test_empty_overview_shows_the_setup_panel(tmp_path: Path) -> None:
    for ui in _start(tmp_path, None):
        soup = ui.soup("/rum")
        snippet = _text(soup, "#rum-snippet")
        assert "http://heron.test/rum.js" in snippet
        assert _text(soup, "#rum-script-url") == "http://heron.test/rum.js"
        assert "rum_allowed_origins" in _text(soup, "#rum-setup")
        key = ui.app.state.ctx.projects.browser_key(ui.app.state.ctx.project_id)
        assert key and f'data-key="{key}"' in snippet  # the project's browser key, to embed
        assert soup.select_one("#vital-cards") is None
        assert ui.soup("/rum/sessions").select_one("#sessions-empty") is not None
        page = ui.soup("/rum/page?page=%2Fnone")
        assert page.select_one("#page-empty") is not None
        assert ui.soup("/rum?device=mobile").select_one("#rum-setup") is None  # filtered: no setup


def test_browser_errors_are_issues_with_a_platform_badge_and_filter(rui: Ui) -> None:
    soup = rui.soup("/issues")
    badges = {
        row.select_one(".issue-title").get_text(): [  # type: ignore[union-attr]
            b["data-platform"] for b in row.select(".badge.platform")
        ]
        for row in soup.select("#issues tbody tr")
    }
    assert badges == {"TypeError: cart is undefined": ["javascript"], "KeyError: 'sku'": ["python"]}
    options = [o["value"] for o in soup.select("#issue-filters select[name=platform] option")]
    assert options == ["", "javascript", "python"]
    only_js = rui.soup("/issues?platform=javascript")
    titles = [t.get_text() for t in only_js.select("#issues .issue-title")]
    assert titles == ["TypeError: cart is undefined"]
    issue = only_js.select_one("#issues .issue-title")
    assert isinstance(issue, Tag)
    detail = rui.soup(str(issue["href"]))
    frames = [s.get_text("", strip=True) for s in detail.select("details summary")]
    assert "addToCartinhttps://shop.example/static/app.js:10:5in app" in frames
