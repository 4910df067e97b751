"""The database pages (top queries, one query, slow query log, N+1) and the endpoint
page's N+1 section, in-process against the database API tests' seed plus a PostgreSQL
JSON plan and XSS payloads in SQL identifiers and plan fields. Every test runs on each
backend of ``tests/server/backends.py`` (DuckDB, ClickHouse in process)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import anyio.from_thread
import httpx
import pytest
from bs4 import BeautifulSoup, Tag

from heron.server.app import create_app
from heron.server.config import Config
from heron.server.ingest.pipeline import Pipeline
from heron.server.jobs import analyze_recent
from heron.server.model import SPAN_KIND_INTERNAL, Span
from heron.server.ui._db_pages import plan_view
from tests.server.backends import BACKENDS, open_store
from tests.server.test_api import MS, NOW_NS, NS, span
from tests.server.test_db_api import T0, db, request
from tests.server.test_db_api import seed as db_seed
from tests.ui.conftest import PASSWORD, Ui

XSS_SQL_IDENT = "<script>alert(1)</script>"
XSS_PLAN = "<img src=x onerror=alert(document.domain)>"
XSS_SQL = f'SELECT "{XSS_SQL_IDENT}" FROM users WHERE id = 7'  # noqa: S608 - span data
PG_PLAN = [
    {
        "Plan": {
            "Node Type": "Nested Loop",
            "Startup Cost": 0.29,
            "Total Cost": 16.4,
            "Plan Rows": 3,
            "Plans": [
                {
                    "Node Type": "Index Scan",
                    "Relation Name": XSS_PLAN,
                    "Index Name": "users_pkey",
                    "Startup Cost": 0.29,
                    "Total Cost": 8.3,
                    "Plan Rows": 1,
                },
                {"Node Type": "Seq Scan", "Relation Name": "orders", "Plan Rows": 2},
            ],
        }
    }
]


def _seed() -> list[Span]:
    spans = db_seed()
    for t in range(3):  # GET /users: a 300 ms query with an XSS identifier, a JSON plan
        start = T0 + 60 * NS + t * 10 * NS
        spans.append(request(500 + t, "GET /users", start, 400))
        spans.append(db(500 + t, 2, start + MS, 300, XSS_SQL))
    spans.append(
        span(
            502,
            3,
            2,
            start_ns=T0 + 80 * NS + 310 * MS,
            dur_ms=2,
            name="EXPLAIN users",
            kind=SPAN_KIND_INTERNAL,
            attributes={"heron.db.plan": json.dumps(PG_PLAN), "heron.db.plan.format": "json"},
        )
    )
    return spans


def _start(kind: str, tmp: Path, chdb_dir: Path, spans: list[Span]) -> Iterator[Ui]:
    config = Config(
        data_dir=str(tmp), ingest_key="hk_db_ui_key_0123456789", admin_password=PASSWORD
    )
    store = open_store(kind, tmp, chdb_dir)
    app = create_app(config, store=store, clock=lambda: NOW_NS, maintenance_interval_s=3600)
    with (
        anyio.from_thread.start_blocking_portal() as portal,
        portal.wrap_async_context_manager(app.router.lifespan_context(app)),
    ):
        if spans:
            Pipeline(store).submit_spans(1, spans).result(30)
            analyze_recent(store, NOW_NS, window_s=600)
        client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://heron.test"
        )
        ui = Ui(portal, client, app, None)
        try:
            ui.sign_in()
            yield ui
        finally:
            portal.call(client.aclose)


@pytest.fixture(scope="module", params=BACKENDS)
def dbui(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, chdb_dir: Path
) -> Iterator[Ui]:
    yield from _start(request.param, tmp_path_factory.mktemp("db-ui"), chdb_dir, _seed())


@pytest.fixture(params=BACKENDS)
def empty_db_ui(request: pytest.FixtureRequest, tmp_path: Path, chdb_dir: Path) -> Iterator[Ui]:
    yield from _start(request.param, tmp_path, chdb_dir, [])


def rows(soup: BeautifulSoup, table_id: str) -> list[Tag]:
    table = soup.find("table", id=table_id)
    assert isinstance(table, Tag), f"no table #{table_id}"
    return table.select("tbody tr")


def cells(row: Tag) -> list[str]:
    return [td.get_text(" ", strip=True) for td in row.find_all("td")]


def fp_of(soup: BeautifulSoup, needle: str) -> str:
    for tr in rows(soup, "queries"):
        if needle in tr.get_text():
            return str(tr["data-fp"])
    raise AssertionError(needle)


def no_payload(html: str) -> None:
    assert XSS_SQL_IDENT not in html
    assert XSS_PLAN not in html
    assert "<script>alert" not in html and "<img src=x" not in html


# ------------------------------------------------------------------------- sign-in


@pytest.mark.parametrize("path", ["/db", f"/db/query?fp={0:016x}", "/db/slow", "/n-plus-one"])
def test_db_pages_require_sign_in(dbui: Ui, path: str) -> None:
    r = dbui.anonymous_get(path)
    assert r.status_code == 303
    assert r.headers["location"].startswith("/login?next=")


def test_nav_has_databases(dbui: Ui) -> None:
    soup = dbui.soup("/db")
    link = soup.select_one("nav.tabs a.on")
    assert link is not None and link.get_text() == "Databases"
    assert soup.select_one("nav.tabs a[href='/']") is not None
    tabs = [a["href"] for a in soup.select("nav.subtabs a")]
    assert tabs == ["/db", "/db/slow", "/n-plus-one"]


# ------------------------------------------------------------------------- top queries


def test_top_queries_table(dbui: Ui) -> None:
    soup = dbui.soup("/db")
    trs = rows(soup, "queries")
    texts = [cells(tr) for tr in trs]
    assert len(trs) == 6  # items, orders, search, checkout insert, stock, users
    items = next(c for c in texts if "order_items" in c[0])
    assert items[1] == "shop" and items[2] == "60"  # 10 requests × 6 calls
    assert items[3] == "600 ms" and items[4] == "10.0 ms"
    assert items[8] == "3"  # rows per call
    first = trs[0]  # sorted by total time: the 250 ms search ×5 (1.25 s)
    assert "products" in first.get_text() and cells(first)[3] == "1.25 s"
    assert "users" in trs[1].get_text()
    href = first.select_one("a.sql")
    assert href is not None
    fp = parse_qs(urlsplit(str(href["href"])).query)["fp"][0]
    assert re.fullmatch(r"[0-9a-f]{16}", fp) and fp == first["data-fp"]
    insert = next(c for c in texts if "payments" in c[0])
    assert insert[7] == "2"  # errors
    no_payload(str(soup))


def test_top_queries_sort_and_filters(dbui: Ui) -> None:
    soup = dbui.soup("/db?sort=calls&order=asc")
    calls = [int(cells(tr)[2]) for tr in rows(soup, "queries")]
    assert calls == sorted(calls)
    th = soup.find("th", attrs={"aria-sort": "ascending"})
    assert isinstance(th, Tag) and "Calls" in th.get_text()
    soup = dbui.soup("/db?db_system=mysql")
    only = [cells(tr) for tr in rows(soup, "queries")]
    assert len(only) == 1 and "stock" in only[0][0] and only[0][1] == "inventory"
    selected = soup.select_one("select[name=db_system] option[selected]")
    assert selected is not None and selected.get_text() == "mysql"
    soup = dbui.soup("/db?" + urlencode({"service": "shop", "endpoint": "GET /orders"}))
    got = [cells(tr)[0] for tr in rows(soup, "queries")]
    assert len(got) == 2 and all("order" in g for g in got)
    assert any("Share of endpoint" in th.get_text() for th in soup.select("th"))
    soup = dbui.soup("/db?service=nope")
    assert soup.find(id="db-empty") is not None and "No queries match" in soup.get_text()
    assert dbui.get("/db?sort=bogus").status_code == 400


def test_long_display_is_truncated(dbui: Ui) -> None:
    soup = dbui.soup("/db")
    for a in soup.select("#queries a.sql"):
        assert len(a.get_text()) <= 141


def test_empty_state_names_the_instrumented_clients(empty_db_ui: Ui) -> None:
    soup = empty_db_ui.soup("/db")
    empty = soup.find(id="db-empty")
    assert isinstance(empty, Tag)
    text = empty.get_text()
    assert "No database spans yet" in text and "psycopg" in text and "sqlite3" in text
    assert "No database spans yet" in empty_db_ui.soup("/db/slow").get_text()
    assert empty_db_ui.soup("/n-plus-one").find(id="n1-empty") is not None


# ------------------------------------------------------------------------- query detail


def test_query_detail(dbui: Ui) -> None:
    fp = fp_of(dbui.soup("/db"), "order_items")
    soup = dbui.soup(f"/db/query?fp={fp}")
    pre = soup.find(id="query-text")
    assert isinstance(pre, Tag) and "order_items" in pre.get_text()
    tiles = {
        dt.get_text(): dd.get_text()
        for dt, dd in zip(
            soup.select("#query-stats dt"), soup.select("#query-stats dd"), strict=True
        )
    }
    assert tiles["Calls"] == "60" and tiles["Total time"] == "600 ms"
    eps = [cells(tr) for tr in rows(soup, "query-endpoints")]
    assert eps[0][0] == "GET /orders" and eps[0][2] == "60" and eps[0][5] == "6"
    series_tag = soup.find("script", id="query-series")
    assert isinstance(series_tag, Tag) and series_tag.get("type") == "application/json"
    series = json.loads(series_tag.string or "")
    assert sum(v or 0 for v in series["rpm"]) == 60  # one-minute steps: calls per minute
    # Calls, not requests: the legend and the caption say so.
    assert series["rate_label"] == "calls/min" and series["partial"] is True
    caption = soup.select_one(".chart[data-chart=throughput] figcaption")
    assert caption is not None and caption.get_text(" ", strip=True) == "Throughput calls/min"
    # Query latency lines are labelled for what they plot: mean, p95 and max, not p50/p99.
    assert [line["label"] for line in series["latency"]] == ["mean", "p95", "max"]
    assert all(len(line["values"]) == len(series["t"]) for line in series["latency"])
    means = [v for v in series["latency"][0]["values"] if v is not None]
    assert means and all(v == pytest.approx(10.0) for v in means)  # every call took 10 ms
    box = soup.select_one(".charts[data-series=query-series]")
    assert box is not None and len(box.select(".chart[data-chart]")) == 3
    samples = rows(soup, "query-samples")
    assert len(samples) == 10
    link = samples[0].select_one("a[data-trace]")
    assert link is not None and str(link["href"]).startswith("/traces/")
    assert "GET /orders" in cells(samples[0])[3]
    assert soup.find(id="query-plan") is not None  # no plan: says how to get one
    assert "explain_slow_queries" in soup.get_text()


def test_query_detail_text_plan(dbui: Ui) -> None:
    fp = fp_of(dbui.soup("/db"), "products")
    soup = dbui.soup(f"/db/query?fp={fp}")
    plan = soup.select_one("#query-plan .plan-text pre")
    assert plan is not None and "SEARCH x USING INDEX i" in plan.get_text()


def test_query_detail_json_plan_tree_and_escaping(dbui: Ui) -> None:
    fp = fp_of(dbui.soup("/db"), "users")
    r = dbui.get(f"/db/query?fp={fp}")
    assert r.status_code == 200
    no_payload(r.text)
    assert "&lt;script&gt;alert(?)&lt;/script&gt;" in r.text
    soup = BeautifulSoup(r.text, "html.parser")
    assert XSS_SQL_IDENT.replace("1", "?") in soup.find(id="query-text").get_text()  # type: ignore[union-attr]
    nodes = soup.select("#query-plan .plantree li")
    assert [n.b.get_text() for n in nodes if n.b] == ["Nested Loop", "Index Scan", "Seq Scan"]
    assert "cost 0.29..16.4" in nodes[0].get_text() and "rows 3" in nodes[0].get_text()
    assert XSS_PLAN in nodes[1].get_text() and "index users_pkey" in nodes[1].get_text()
    assert "→" in nodes[2].get_text() and "→" not in nodes[0].get_text()
    raw = soup.select_one("#query-plan details.raw pre")
    assert raw is not None and '"Node Type": "Nested Loop"' in raw.get_text()
    inline = [t for t in soup.find_all("script") if not t.get("src")]
    assert all(t.get("type") == "application/json" for t in inline)
    assert soup.select_one("main img") is None


def test_query_detail_errors(dbui: Ui) -> None:
    assert dbui.get("/db/query").status_code == 400
    assert dbui.get("/db/query?fp=zz").status_code == 400
    r = dbui.get(f"/db/query?fp={1:016x}")
    assert r.status_code == 404 and "no query with fingerprint" in r.text


# ------------------------------------------------------------------------- slow log


def test_slow_query_log_call_by_call(dbui: Ui) -> None:
    soup = dbui.soup("/db/slow?view=calls")
    got = [cells(tr) for tr in rows(soup, "slow")]
    assert len(got) == 8  # 5 searches at 250 ms, 3 users queries at 300 ms
    assert all(c[1] in ("250 ms", "300 ms") for c in got)
    details = soup.select("#slow details.sample")
    assert len(details) == 8
    with_plan = [d for d in details if d.select_one(".plan")]
    assert len(with_plan) == 2  # the text plan and the JSON plan
    trs = rows(soup, "slow")
    assert all(str(tr.select_one("a[data-trace]")["href"]).startswith("/traces/") for tr in trs)  # type: ignore[index]
    no_payload(str(soup))
    soup = dbui.soup("/db/slow?view=calls&threshold=260")
    assert len(rows(soup, "slow")) == 3
    soup = dbui.soup("/db/slow?threshold=5000")
    assert soup.find(id="slow-empty") is not None
    assert dbui.get("/db/slow?threshold=abc").status_code == 400


def test_slow_query_log_groups_by_query(dbui: Ui) -> None:
    soup = dbui.soup("/db/slow")
    groups = rows(soup, "slow-groups")
    assert len(groups) == 2  # 5 searches at 250 ms, 3 users queries at 300 ms
    counts = {
        str(tr["data-fingerprint"]): cells(tr)[1].split()[0]
        for tr in groups  # type: ignore[index]
    }
    assert sorted(counts.values()) == ["3", "5"]
    assert all(cells(tr)[4] in ("250 ms", "300 ms") for tr in groups)  # max
    # Both groups have a call with a recorded plan: each shows it (the first one open).
    assert len(soup.select("#slow-groups details.sample .plan")) == 2
    assert soup.select("#slow-groups details.sample")[0].has_attr("open")
    for tr in groups:
        assert str(tr.select_one("a[data-trace]")["href"]).startswith("/traces/")  # type: ignore[index]
    no_payload(str(soup))
    # A group's count lists its calls; sorting is by link.
    fp, n = next(iter(counts.items()))
    one = dbui.soup(f"/db/slow?fp={fp}")
    assert len(rows(one, "slow")) == int(n)
    assert one.select_one("#slow-views span.on") is not None
    by_count = dbui.soup("/db/slow?sort=count")
    first = cells(rows(by_count, "slow-groups")[0])[1]
    assert first.startswith("5")
    assert dbui.get("/db/slow?sort=nope").status_code == 400
    assert dbui.get("/db/slow?fp=zz").status_code == 400


# ------------------------------------------------------------------------- N+1


def test_n_plus_one_list(dbui: Ui) -> None:
    soup = dbui.soup("/n-plus-one")
    got = [cells(tr) for tr in rows(soup, "findings")]
    kinds = sorted(c[2].split(" ")[0] for c in got)
    assert kinds == ["db", "http"]
    items = next(c for c in got if c[2].startswith("db"))
    assert items[1] == "GET /orders" and "order_items" in items[3]
    assert items[4].startswith("10")  # occurrences: one per request
    link = rows(soup, "findings")[0].select_one("a[data-trace]")
    assert link is not None and str(link["href"]).startswith("/traces/")
    soup = dbui.soup("/n-plus-one?kind=http")
    assert [cells(tr)[2] for tr in rows(soup, "findings")] == ["http"]
    assert dbui.get("/n-plus-one?kind=bogus").status_code == 400


def test_endpoint_page_n_plus_one_section(dbui: Ui) -> None:
    q = urlencode({"service": "shop", "endpoint": "GET /orders"})
    soup = dbui.soup(f"/endpoint?{q}")
    got = [cells(tr) for tr in rows(soup, "n-plus-one-findings")]
    assert len(got) == 1 and "order_items" in got[0][1]
    q = urlencode({"service": "shop", "endpoint": "GET /search"})
    section = dbui.soup(f"/endpoint?{q}").find(id="n-plus-one")
    assert isinstance(section, Tag) and "No repeated queries" in section.get_text()


# ------------------------------------------------------------------------- plans


def test_plan_view_shapes() -> None:
    assert plan_view(None) is None
    text = plan_view("SCAN t")
    assert text is not None and text.format == "text" and text.text == "SCAN t"
    mysql: dict[str, Any] = {"query_block": {"select_id": 1}}
    j = plan_view(json.dumps(mysql), "json")
    assert j is not None and j.format == "json" and '"select_id": 1' in j.text
    tree = plan_view(json.dumps(PG_PLAN), "json")
    assert tree is not None and tree.format == "tree"
    assert [(n.depth, n.node_type) for n in tree.nodes] == [
        (0, "Nested Loop"),
        (1, "Index Scan"),
        (1, "Seq Scan"),
    ]
    broken = plan_view("{not json", "json")
    assert broken is not None and broken.format == "text"
