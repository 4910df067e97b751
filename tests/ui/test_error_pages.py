"""The issues list, issue detail, status actions, logs explorer and the trace view's logs,
in-process against tests/server/errors_seed.py (with XSS payloads in every telemetry
string an event or log carries), on every backend of tests/server/backends.py."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

import anyio.from_thread
import httpx
import pytest
from bs4 import BeautifulSoup, Tag

from heron.server.app import create_app
from heron.server.config import Config
from heron.server.ui._error_pages import source_lines
from tests.server import errors_seed
from tests.server.backends import BACKENDS
from tests.server.ingest_client import app_store
from tests.server.test_api import NOW_NS
from tests.ui.conftest import PASSWORD, Ui

KEY = "hk_errors_ui_key_0123456789"
PAYLOADS = (
    errors_seed.XSS_TYPE,
    errors_seed.XSS_MESSAGE,
    errors_seed.XSS_FRAME,
    errors_seed.XSS_CRUMB,
    errors_seed.XSS_LOG,
    errors_seed.XSS_TAG,
)


class ErrorsUi(Ui):
    ids: dict[str, int]
    data: errors_seed.Seed


def _start(tmp: Path, seeded: bool, kind: str, chdb_dir: Path) -> Iterator[ErrorsUi]:
    config = Config(data_dir=str(tmp), ingest_key=KEY, admin_password=PASSWORD)
    store = app_store(kind, tmp, chdb_dir)
    app = create_app(config, store=store, clock=lambda: NOW_NS, maintenance_interval_s=3600)
    with (
        anyio.from_thread.start_blocking_portal() as portal,
        portal.wrap_async_context_manager(app.router.lifespan_context(app)),
    ):
        data = errors_seed.build(NOW_NS)
        ids = errors_seed.insert(store, data) if seeded else {}
        client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://heron.test"
        )
        ui = ErrorsUi(portal, client, app, None)
        ui.ids, ui.data = ids, data
        try:
            ui.sign_in()
            yield ui
        finally:
            portal.call(client.aclose)


@pytest.fixture(params=BACKENDS)
def eui(request: pytest.FixtureRequest, tmp_path: Path, chdb_dir: Path) -> Iterator[ErrorsUi]:
    """Function-scoped: status changes in one test never leak into another."""
    yield from _start(tmp_path, True, request.param, chdb_dir)


@pytest.fixture(params=BACKENDS)
def empty_eui(request: pytest.FixtureRequest, tmp_path: Path, chdb_dir: Path) -> Iterator[ErrorsUi]:
    yield from _start(tmp_path, False, request.param, chdb_dir)


def rows(soup: BeautifulSoup, table_id: str) -> list[Tag]:
    table = soup.find("table", id=table_id)
    assert isinstance(table, Tag), f"no table #{table_id}"
    return table.select("tbody tr")


def text_of(soup: BeautifulSoup, selector: str) -> str:
    el = soup.select_one(selector)
    assert el is not None, selector
    return el.get_text(" ", strip=True)


def inert(html: str) -> None:
    """No payload survives as markup; inline scripts are JSON data only."""
    for p in PAYLOADS:
        assert p not in html, p
    soup = BeautifulSoup(html, "html.parser")
    assert all(
        t.get("type") == "application/json" for t in soup.find_all("script") if not t.get("src")
    )
    assert soup.select("main img, main svg[onload], main iframe") == []
    assert not any(a for tag in soup.find_all(True) for a in tag.attrs if a.startswith("on"))


def csrf(soup: BeautifulSoup) -> str:
    field = soup.select_one("#resolve-form input[name=csrf_token], form input[name=csrf_token]")
    assert field is not None
    return str(field["value"])


# ------------------------------------------------------------------------- list


@pytest.mark.parametrize("path", ["/issues", "/issues/1", "/logs"])
def test_pages_require_sign_in(eui: ErrorsUi, path: str) -> None:
    r = eui.anonymous_get(path)
    assert r.status_code == 303 and r.headers["location"].startswith("/login?next=")


def test_nav_has_issues_and_logs(eui: ErrorsUi) -> None:
    soup = eui.soup("/issues")
    tabs = [a.get_text() for a in soup.select("nav.tabs a")]
    assert "Issues" in tabs and "Logs" in tabs
    assert text_of(soup, "nav.tabs a.on") == "Issues"
    assert text_of(eui.soup("/logs"), "nav.tabs a.on") == "Logs"


def test_issue_list(eui: ErrorsUi) -> None:
    r = eui.get("/issues")
    assert r.status_code == 200
    inert(r.text)
    soup = BeautifulSoup(r.text, "html.parser")
    trs = rows(soup, "issues")
    titles = [text_of(tr, ".issue-title") for tr in trs]
    t = eui.data.titles()
    # Default: open issues with an event in the last hour, most recently seen first.
    assert titles == [t["zero"], t["xss"], t["timeout"]]
    zero = trs[0]
    assert zero["data-issue"] == str(eui.ids["zero"])
    assert text_of(zero, "td.events") == "5" and text_of(zero, "td.users") == "3"
    assert "shop.views in list_orders" in text_of(zero, ".culprit")
    assert [b.get_text() for b in zero.select(".releases .badge")] == ["1.0", "2.0"]
    assert zero.select_one(".badge.st-open") is not None
    # The trend has the hour's 5-minute steps but not the one still filling (its 2 events
    # so far would read as a drop): 13 steps overlap the hour, the last began 270 s ago.
    spark = zero.select_one("svg.spark polyline")
    assert spark is not None and len(str(spark["points"]).split()) == 12
    timeout = trs[2]
    assert timeout.select_one(".badge.regressed") is not None
    assert zero.select_one(".badge.regressed") is None
    href = zero.select_one("a.issue-title")
    assert href is not None and str(href["href"]) == f"/issues/{eui.ids['zero']}"
    # The markup is shown as text.
    assert text_of(trs[1], ".issue-title") == t["xss"]
    # Sending errors: the DSN with this server's host and the project's ingest key.
    assert text_of(soup, "#dsn") == f"http://{KEY}@heron.test/1"
    assert text_of(soup, "#otlp-logs") == "http://heron.test/v1/logs"


def test_issue_list_filters_and_sorts(eui: ErrorsUi) -> None:
    t = eui.data.titles()

    def titles(q: dict[str, str]) -> list[str]:
        soup = eui.soup("/issues?" + urlencode(q))
        return [text_of(tr, ".issue-title") for tr in rows(soup, "issues")]

    assert titles({"status": "resolved"}) == [t["value"]]
    assert titles({"status": "all", "service": "inventory"}) == [t["value"]]
    assert titles({"status": "all", "env": "staging"}) == [t["value"]]
    assert titles({"release": "2.0"}) == [t["zero"], t["timeout"]]
    assert titles({"status": "ignored", "range": "7d"}) == [t["slow"]]
    assert titles({"sort": "events"}) == [t["zero"], t["timeout"], t["xss"]]
    assert titles({"sort": "users"})[0] == t["zero"]
    soup = eui.soup("/issues?release=2.0")
    sel = soup.select_one("select[name=release] option[selected]")
    assert sel is not None and sel.get_text() == "2.0"
    soup = eui.soup("/issues?service=nope")
    assert "No issues match" in text_of(soup, "#issues-empty")
    assert eui.get("/issues?status=bogus").status_code == 400
    assert eui.get("/issues?sort=bogus").status_code == 400


def test_empty_state_shows_the_dsn(empty_eui: ErrorsUi) -> None:
    soup = empty_eui.soup("/issues")
    empty = text_of(soup, "#issues-empty")
    assert "No errors yet" in empty
    assert text_of(soup, "#dsn") == f"http://{KEY}@heron.test/1"
    assert "sentry_sdk.init" in empty and "/v1/logs" in empty
    assert "No log records" in text_of(empty_eui.soup("/logs"), "#logs-empty")


# ------------------------------------------------------------------------- detail


def test_issue_detail(eui: ErrorsUi) -> None:
    iid = eui.ids["zero"]
    soup = eui.soup(f"/issues/{iid}")
    assert text_of(soup, "#issue-title") == "ZeroDivisionError: division by zero"
    assert "shop.views in list_orders" in text_of(soup, "#issue-culprit")
    facts = {
        dt.get_text(): dd.get_text(" ", strip=True)
        for dt, dd in zip(
            soup.select("#issue-facts dt"), soup.select("#issue-facts dd"), strict=True
        )
    }
    assert facts["Events"].startswith("5") and "5 total" in facts["Events"]
    assert facts["Users"] == "3"
    assert facts["Releases"] == "1.0 2.0" and facts["Environments"] == "prod"
    # The chain, newest first: the raised ZeroDivisionError, then the KeyError.
    heads = [h.get_text(" ", strip=True) for h in soup.select("#exceptions h4.exc-head")]
    assert heads[0].startswith("ZeroDivisionError : division by zero")
    assert "unhandled" in heads[0] and heads[1].startswith("KeyError")
    frames = soup.select("#exceptions .exception")[0].select("li.frame")
    assert [f["class"] for f in frames] == [["frame", "lib"], ["frame", "in-app"]]
    lib, app = (f.select_one("details") for f in frames)
    assert lib is not None and app is not None
    assert not lib.has_attr("open") and app.has_attr("open")  # library frames collapsed
    assert "list_orders" in text_of(app, "summary") and "in app" in text_of(app, "summary")
    src = app.select("ol.src li")
    assert [li.select_one(".ln").get_text() for li in src] == ["40", "41", "42", "43", "44"]  # type: ignore[union-attr]
    cur = app.select_one("ol.src li.cur")
    assert cur is not None and "avg = total / count" in cur.get_text()
    local_rows = {
        tr.th.get_text(): tr.td.get_text()
        for tr in app.select("table.locals tr")
        if tr.th and tr.td
    }
    assert local_rows == {"total": "10", "count": "0", "password": "[Filtered]"}
    crumbs = [
        [td.get_text(" ", strip=True) for td in tr.find_all("td")]
        for tr in rows(soup, "breadcrumbs")
    ]
    assert crumbs[0][1:5] == ["http", "httpx", "info", "GET http://inventory/stock"]
    assert '"status_code": 200' in crumbs[0][5]
    req = text_of(soup, "#request")
    assert (
        "GET http://shop.test/orders?page=2" in req and "[Filtered]" in req and "Firefox/126" in req
    )
    assert "No user." in text_of(soup, "#user")  # the newest event is anonymous
    assert "browser Firefox" in text_of(soup, "#event-tags")
    tags = {
        b.caption.get_text(): [td.get_text() for td in b.select("td")]
        for b in soup.select(".tagbox")
        if b.caption
    }
    assert tags["browser"] == ["Firefox", "3", "Chrome", "2"]
    assert [td.get_text() for td in rows(soup, "by-release")[0].find_all("td")] == ["1.0", "3"]
    # Occurrences chart data and a link to the event's trace.
    series_tag = soup.find("script", id="issue-series")
    assert isinstance(series_tag, Tag) and series_tag.get("type") == "application/json"
    series = json.loads(series_tag.string or "")
    assert sum(series["events"]) == 5 and len(series["events"]) == len(series["t"])
    assert soup.select_one(".charts[data-series=issue-series] .chart[data-chart=events]")
    link = soup.select_one("#trace-link")
    assert link is not None
    parts = urlsplit(str(link["href"]))
    assert parts.path == f"/traces/{eui.data.trace_with_logs}"
    assert parse_qs(parts.query)["span"] == ["0000000000000001"]
    assert len(rows(soup, "event-logs")) == 3
    assert len(rows(soup, "recent-events")) == 5


def test_issue_detail_other_event_and_message(eui: ErrorsUi) -> None:
    iid = eui.ids["zero"]
    first = f"{0x100:032x}"
    soup = eui.soup(f"/issues/{iid}?event={first}")
    assert first in text_of(soup, "#event h2")
    assert "id u1" in text_of(soup, "#user")
    assert eui.get(f"/issues/{iid}?event={0x200:032x}").status_code == 404  # another issue's
    soup = eui.soup(f"/issues/{eui.ids['slow']}")
    assert text_of(soup, "#event-message") == "Payment provider slow"
    assert soup.select_one("#trace-link") is None
    assert eui.get("/issues/99999").status_code == 404
    assert eui.get("/issues/abc").status_code == 400


def test_issue_detail_payloads_are_text(eui: ErrorsUi) -> None:
    r = eui.get(f"/issues/{eui.ids['xss']}")
    assert r.status_code == 200
    inert(r.text)
    soup = BeautifulSoup(r.text, "html.parser")
    assert errors_seed.XSS_TYPE in text_of(soup, "#issue-title")
    exc = text_of(soup, "#exceptions")
    assert errors_seed.XSS_MESSAGE in exc and errors_seed.XSS_FRAME in exc
    assert errors_seed.XSS_CRUMB in text_of(soup, "#breadcrumbs")
    assert errors_seed.XSS_TAG in text_of(soup, "#event-tags")
    assert errors_seed.XSS_TAG in text_of(soup, "#request")


# ------------------------------------------------------------------------- status


def _post_status(eui: ErrorsUi, iid: int, token: str, **form: str) -> httpx.Response:
    return eui.post(f"/issues/{iid}/status?range=6h", data={"csrf_token": token, **form})


def test_resolve_ignore_reopen(eui: ErrorsUi) -> None:
    iid = eui.ids["zero"]
    soup = eui.soup(f"/issues/{iid}")
    buttons = [b["data-action"] for b in soup.select("#issue-actions button")]
    assert buttons == ["resolve", "ignore"]
    form = soup.select_one("#resolve-form")
    assert form is not None and form["method"] == "post"
    assert str(form["action"]) == f"/issues/{iid}/status"
    token = csrf(soup)
    r = _post_status(eui, iid, token, status="resolved", release="2.1")
    assert r.status_code == 303 and r.headers["location"] == f"/issues/{iid}?range=6h"
    soup = eui.soup(f"/issues/{iid}")
    assert soup.select_one("#issue-actions .badge.st-resolved") is not None
    assert "Resolved in 2.1" in text_of(soup, "#issue-facts")
    assert [b["data-action"] for b in soup.select("#issue-actions button")] == ["ignore", "reopen"]
    assert _post_status(eui, iid, token, status="ignored").status_code == 303
    assert eui.soup(f"/issues/{iid}").select_one(".badge.st-ignored") is not None
    listed = eui.soup("/issues?status=ignored")
    assert [tr["data-issue"] for tr in rows(listed, "issues")] == [str(iid)]
    assert _post_status(eui, iid, token, status="open").status_code == 303
    assert eui.soup(f"/issues/{iid}").select_one(".badge.st-open") is not None


def test_status_form_needs_csrf_and_valid_values(eui: ErrorsUi) -> None:
    iid = eui.ids["zero"]
    r = eui.post(
        f"/issues/{iid}/status", data={"status": "resolved"}, headers={"accept": "text/html"}
    )
    assert r.status_code == 403
    r = eui.post(f"/issues/{iid}/status", data={"status": "resolved", "csrf_token": "forged"})
    assert r.status_code == 403
    token = csrf(eui.soup(f"/issues/{iid}"))
    assert _post_status(eui, iid, token, status="closed").status_code == 400
    assert _post_status(eui, 99999, token, status="resolved").status_code == 404
    assert eui.soup(f"/issues/{iid}").select_one(".badge.st-open") is not None


# ------------------------------------------------------------------------- logs


def test_logs_explorer(eui: ErrorsUi) -> None:
    r = eui.get("/logs")
    assert r.status_code == 200
    inert(r.text)
    soup = BeautifulSoup(r.text, "html.parser")
    trs = rows(soup, "logs")
    assert len(trs) == 20
    bodies = [text_of(tr, ".body") for tr in trs]
    assert errors_seed.XSS_LOG in bodies  # shown as text
    linked = next(
        tr for tr in trs if text_of(tr, ".body") == "division by zero while listing orders"
    )
    trace = linked.select_one("a.trace-link")
    issue = linked.select_one("a.issue-link")
    assert trace is not None and issue is not None
    assert urlsplit(str(trace["href"])).path == f"/traces/{eui.data.trace_with_logs}"
    assert urlsplit(str(issue["href"])).path == f"/issues/{eui.ids['zero']}"
    assert text_of(linked, ".badge") == "ERROR"
    plain = next(tr for tr in trs if text_of(tr, ".body") == "out of memory")
    assert plain.select_one("a.trace-link") is None and plain.select_one("a.issue-link") is None


def test_logs_filters_and_paging(eui: ErrorsUi) -> None:
    def bodies(q: dict[str, str]) -> list[str]:
        return [text_of(tr, ".body") for tr in rows(eui.soup("/logs?" + urlencode(q)), "logs")]

    assert set(bodies({"severity": "error"})) == {
        "division by zero while listing orders",
        "out of memory",
        errors_seed.XSS_LOG,
    }
    assert bodies({"service": "inventory", "severity": "fatal"}) == ["out of memory"]
    assert bodies({"text": "100% done_"}) == [errors_seed.LITERAL_LOG]
    assert len(bodies({"trace_id": eui.data.trace_with_logs})) == 3
    soup = eui.soup("/logs?text=nothing-like-this")
    assert "No log records match" in text_of(soup, "#logs-empty")
    assert eui.get("/logs?severity=loud").status_code == 400
    assert eui.get("/logs?trace_id=xyz").status_code == 400


def test_logs_older_pages(eui: ErrorsUi, monkeypatch: pytest.MonkeyPatch) -> None:
    from heron.server.ui import _error_pages

    monkeypatch.setattr(_error_pages, "LOG_LIMIT", 8)
    seen: list[str] = []
    path = "/logs?service=batch"
    while path:
        soup = eui.soup(path)
        seen += [text_of(tr, ".body") for tr in rows(soup, "logs")] if soup.find(id="logs") else []
        older = soup.select_one("#older")
        path = str(older["href"]) if older else ""
    assert seen == [f"batch line {i:02d}" for i in range(11, -1, -1)]


# ------------------------------------------------------------------------- trace view


def test_trace_view_lists_the_traces_logs(eui: ErrorsUi) -> None:
    soup = eui.soup(f"/traces/{eui.data.trace_with_logs}")
    section = soup.find(id="trace-logs")
    assert isinstance(section, Tag) and "3 records" in section.get_text()
    trs = rows(soup, "trace-log-lines")
    assert [text_of(tr, ".body") for tr in trs] == [
        "listing orders for u3",
        "empty basket",
        "division by zero while listing orders",
    ]
    assert [text_of(tr, ".badge") for tr in trs] == ["INFO", "WARNING", "ERROR"]
    span = trs[0].select_one("a.span-link")
    assert span is not None and parse_qs(urlsplit(str(span["href"])).query)["span"] == [
        "0000000000000001"
    ]
    assert trs[2].select_one("a.issue-link") is not None
    assert all(tr["data-span"] == "0000000000000001" for tr in trs)


def test_source_lines_numbering() -> None:
    frame = {"lineno": 10, "pre_context": ["a", "b"], "context_line": "c", "post_context": ["d"]}
    got = [(s.lineno, s.text, s.current) for s in source_lines(frame)]
    assert got == [(8, "a", False), (9, "b", False), (10, "c", True), (11, "d", False)]
    assert source_lines({"lineno": 3}) == []
    assert [s.lineno for s in source_lines({"context_line": "x", "pre_context": ["y"]})] == [
        None,
        None,
    ]
