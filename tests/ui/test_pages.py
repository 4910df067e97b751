"""Structural tests of every page's HTML (BeautifulSoup) against a seeded store."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from bs4 import BeautifulSoup, Tag

from heron._version import __version__
from tests.ui.conftest import NOW_NS, Ui
from tests.ui.seed import BIG_TRACE_SPANS

MIN_S = 60


def rows(soup: BeautifulSoup, table_id: str) -> list[Tag]:
    table = soup.find("table", id=table_id)
    assert isinstance(table, Tag), f"no table #{table_id}"
    return table.select("tbody tr")


def cells(row: Tag) -> list[str]:
    return [td.get_text(" ", strip=True) for td in row.find_all("td")]


def json_block(soup: BeautifulSoup, block_id: str) -> Any:
    tag = soup.find("script", id=block_id)
    assert isinstance(tag, Tag) and tag.get("type") == "application/json"
    return json.loads(tag.string or "")


def query_of(href: str) -> dict[str, list[str]]:
    return parse_qs(urlsplit(href).query)


# ------------------------------------------------------------------------ sign-in


def test_pages_require_sign_in(ui: Ui) -> None:
    for path in (
        "/",
        "/service?service=frontend",
        "/traces",
        "/map",
        "/endpoint?service=a&endpoint=b",
    ):
        r = ui.anonymous_get(path)
        assert r.status_code == 303, path
        assert r.headers["location"].startswith("/login?next=")


def test_static_files_are_public_and_cacheable(ui: Ui) -> None:
    soup = ui.soup("/")
    srcs = [s["src"] for s in soup.find_all("script", src=True)]
    assert any(str(s).startswith("/static/js/heron.js?v=") for s in srcs)
    r = ui.anonymous_get(str(srcs[-1]))
    assert r.status_code == 200
    assert r.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert ui.get("/static/heron.css").headers["cache-control"] == "no-cache"
    for bad in ("/static/../_render.py", "/static/%2e%2e/_render.py", "/static/nope.js"):
        assert ui.get(bad).status_code == 404, bad


# ------------------------------------------------------------------------ overview


def test_overview_lists_services_with_red_figures(ui: Ui) -> None:
    soup = ui.soup("/")
    table = rows(soup, "services")
    names = [r.find("td").get_text(strip=True) for r in table]
    assert set(names) >= {"frontend", "checkout", "payments", "catalog", "worker"}
    # Sorted by requests (busiest first) by default: frontend takes every request.
    assert names[0] == "frontend"
    front = cells(table[0])
    # 241 requests (incl. the XSS trace's child) over the 50 min 20 s since the first.
    assert front[1] == f"{241 / (50 + 20.123 / 60):.2f}"
    assert front[3].endswith("%")
    assert all(c.endswith(("ms", "s")) for c in front[5:8])
    link = table[0].find("a")
    assert link["href"] == "/service?service=frontend"
    # Three sparklines per row, drawn as SVG polylines (no script needed).
    sparks = table[0].select("svg.spark polyline")
    assert len(sparks) == 3 and all(p["points"] for p in sparks)


def test_overview_sorting_is_links(ui: Ui) -> None:
    soup = ui.soup("/?sort=service")
    names = [r.find("td").get_text(strip=True) for r in rows(soup, "services")]
    assert names == sorted(names)
    header = soup.find("th", attrs={"aria-sort": True})
    assert header.get_text(strip=True).startswith("Service")
    assert header["aria-sort"] == "ascending"
    assert query_of(header.a["href"]) == {"sort": ["service"], "order": ["desc"]}
    desc = [
        r.find("td").get_text(strip=True)
        for r in rows(ui.soup("/?sort=service&order=desc"), "services")
    ]
    assert desc == names[::-1]
    p95 = ui.soup("/?sort=p95_ms")
    assert rows(p95, "services")[0].find("td").get_text(strip=True) == "worker"  # 2 s imports


def test_environment_filter(ui: Ui) -> None:
    soup = ui.soup("/?env=staging")
    names = {r.find("td").get_text(strip=True) for r in rows(soup, "services")}
    assert names == {"frontend", "checkout", "payments", "catalog"}
    select = soup.find("select", attrs={"name": "env"})
    options = [o["value"] for o in select.find_all("option")]
    assert options[0] == "" and {"production", "staging"} <= set(options)
    assert select.find("option", selected=True)["value"] == "staging"
    # Links carry the environment, so the filtered view can be shared.
    assert query_of(rows(soup, "services")[0].find("a")["href"])["env"] == ["staging"]


def test_time_range_controls_keep_state_in_links(ui: Ui) -> None:
    soup = ui.soup("/service?service=checkout&range=6h&env=production&refresh=30s")
    seg = soup.select(".seg > a")
    assert [a.get_text() for a in seg] == ["15m", "1h", "6h", "24h", "7d"]
    on = soup.select_one(".seg > a.on")
    assert on.get_text() == "6h"
    q = query_of(soup.select_one(".seg > a[data-range='24h']")["href"])
    assert q == {
        "service": ["checkout"],
        "range": ["24h"],
        "env": ["production"],
        "refresh": ["30s"],
    }
    # The 1h default is left out of URLs.
    assert "range" not in query_of(soup.select_one(".seg > a[data-range='1h']")["href"])
    assert soup.body["data-refresh"] == "30"
    assert (
        soup.find("select", attrs={"name": "refresh"}).find("option", selected=True)["value"]
        == "30s"
    )


def test_custom_range(ui: Ui) -> None:
    frm, to = "2023-11-14T21:43:00Z", "2023-11-14T21:53:00Z"  # minutes -30..-20
    soup = ui.soup(f"/?{urlencode({'from': frm, 'to': to})}")
    assert soup.select_one(".seg details.on summary").get_text(strip=True) == f"{frm} → {to}"
    link = rows(soup, "services")[0].find("a")["href"]
    assert query_of(link)["from"] == [frm] and query_of(link)["to"] == [to]
    # worker's import started at -20 min, outside this range.
    names = {r.find("td").get_text(strip=True) for r in rows(soup, "services")}
    assert "worker" not in names and "frontend" in names


# ------------------------------------------------------------------------ service


def test_service_page(ui: Ui) -> None:
    soup = ui.soup("/service?service=frontend")
    assert soup.h1.get_text(strip=True) == "frontend"
    tiles = {d.dt.get_text(): d.dd.get_text() for d in soup.select("dl.tiles > div")}
    assert tiles["Requests"] == "241"
    series = json_block(soup, "series-data")
    assert series["step_s"] == 60 and len(series["t"]) == 61
    assert series["to"] - series["from"] == 3600
    assert len(series["rpm"]) == len(series["error_rate"]) == 61
    assert [line["label"] for line in series["latency"]] == ["p50", "p95", "p99"]
    assert all(len(line["values"]) == 61 for line in series["latency"])
    # The current minute is 20 s old: partial, its rate over those 20 s.
    assert series["partial"] is True and series["rate_label"] == "req/min"
    share = (NOW_NS / 1e9 - series["t"][-1]) / 60
    whole = sum(series["rpm"][:-1]) + series["rpm"][-1] * share
    assert whole == pytest.approx(241, abs=0.5)
    assert {c["data-chart"] for c in soup.select(".chart[data-chart]")} == {
        "throughput",
        "errors",
        "latency",
    }
    table = rows(soup, "endpoints")
    by_name = {r["data-name"]: r for r in table}
    assert set(by_name) >= {"POST /checkout", "GET /products/{id}"}
    checkout = cells(by_name["POST /checkout"])
    assert checkout[1] == "120"
    share = by_name["POST /checkout"].select_one("td.share")
    assert share.get_text(strip=True).endswith("%")
    assert float(share.select("rect")[1]["width"]) > 50  # most of frontend's time
    href = by_name["POST /checkout"].find("a")["href"]
    assert query_of(href) == {"service": ["frontend"], "endpoint": ["POST /checkout"]}


def test_service_endpoint_filter_and_sort(ui: Ui) -> None:
    soup = ui.soup("/service?service=frontend&q=CHECK")
    assert [r["data-name"] for r in rows(soup, "endpoints")] == ["POST /checkout"]
    assert soup.find("input", attrs={"name": "q"})["value"] == "CHECK"
    none = ui.soup("/service?service=frontend&q=zzz")
    assert "No endpoint of frontend contains" in none.get_text()
    by_p99 = ui.soup("/service?service=frontend&sort=p99_ms&order=asc")
    names = [r["data-name"] for r in rows(by_p99, "endpoints")]
    assert names.index("GET /products/{id}") < names.index("POST /checkout")
    # Sort links keep the filter and the service.
    th = by_p99.find("th", attrs={"aria-sort": "ascending"})
    assert query_of(th.a["href"])["service"] == ["frontend"]


def test_release_filter(ui: Ui) -> None:
    soup = ui.soup("/service?service=frontend")
    select = soup.find("select", attrs={"name": "release"})
    assert {o["value"] for o in select.find_all("option")} == {"", "1.4.0", "1.5.0"}
    v15 = ui.soup("/service?service=frontend&release=1.5.0")
    tiles = {d.dt.get_text(): d.dd.get_text() for d in v15.select("dl.tiles > div")}
    assert int(tiles["Requests"]) == 81  # n % 3 == 0 of 240, plus the XSS child span
    assert (
        v15.find("select", attrs={"name": "release"}).find("option", selected=True)["value"]
        == "1.5.0"
    )
    # One release only: no release filter.
    assert ui.soup("/service?service=payments").find("select", attrs={"name": "release"}) is None


# ------------------------------------------------------------------------ endpoint


def test_endpoint_page(ui: Ui) -> None:
    soup = ui.soup("/endpoint?service=frontend&endpoint=POST%20/checkout")
    assert soup.h1.get_text(strip=True) == "POST /checkout"
    crumbs = [a["href"] for a in soup.select("nav.crumbs a")]
    assert crumbs == ["/", "/service?service=frontend"]
    hist = json_block(soup, "histogram-data")
    assert hist["total"] == 120 == sum(b["count"] for b in hist["bins"])
    assert all(b["lo_ms"] < b["hi_ms"] for b in hist["bins"])
    assert hist["p50_ms"] <= hist["p95_ms"] <= hist["p99_ms"]
    slowest = rows(soup, "slowest")
    assert len(slowest) == 10
    durations = [ms(cells(r)[1]) for r in slowest]
    assert durations == sorted(durations, reverse=True)
    link = slowest[0].find("a")["href"]
    assert link.startswith("/traces/") and query_of(link)["span"]
    errors = rows(soup, "errors")
    assert errors and all("error" in r["class"] for r in errors)
    assert all(cells(r)[3] == "500" for r in errors)
    recent = rows(soup, "recent")
    times = [r.find("time")["datetime"] for r in recent]
    assert times == sorted(times, reverse=True)


def ms(text: str) -> float:
    value, unit = text.split()
    return float(value) * {"µs": 0.001, "ms": 1.0, "s": 1000.0, "min": 60_000.0}[unit]


def test_endpoint_without_data(ui: Ui) -> None:
    # A known endpoint, in a range before the seed data.
    soup = ui.soup("/endpoint?service=frontend&endpoint=POST%20/checkout&from=-3h&to=-2h")
    assert soup.find("script", id="histogram-data") is None
    assert "No requests to this endpoint" in soup.get_text()
    assert "No traces of this endpoint" in soup.get_text()


@pytest.mark.parametrize(
    ("path", "needle"),
    [
        ("/service?service=nope", "no service named 'nope'"),
        ("/endpoint?service=nope&endpoint=GET%20/", "no service named 'nope'"),
        ("/endpoint?service=frontend&endpoint=GET%20/nothing", "has no endpoint 'GET /nothing'"),
    ],
)
def test_unknown_service_or_endpoint_is_a_404_page(ui: Ui, path: str, needle: str) -> None:
    soup = ui.soup(path, status=404)
    assert needle in soup.get_text()
    assert soup.find(id="series-data") is None  # not an empty service page


# ------------------------------------------------------------------------ traces


def test_trace_search(ui: Ui) -> None:
    soup = ui.soup("/traces")
    results = rows(soup, "trace-results")
    assert len(results) == 50
    starts = [r.find("time")["datetime"] for r in results]
    assert starts == sorted(starts, reverse=True)
    bars = [float(r.select("svg.bar rect")[1]["width"]) for r in results]
    assert max(bars) == pytest.approx(100.0) and min(bars) > 0
    link = results[0].find("a")["href"]
    assert link.startswith("/traces/") and len(urlsplit(link).path) == len("/traces/") + 32
    services = [
        o["value"] for o in soup.find("select", attrs={"name": "service"}).find_all("option")
    ]
    assert {"", "frontend", "worker"} <= set(services)


def test_trace_search_filters(ui: Ui) -> None:
    soup = ui.soup("/traces?service=payments&status=error&limit=200")
    results = rows(soup, "trace-results")
    assert results and all("error" in r["class"] for r in results)
    assert len(results) == 8  # every 17th of 240 traces fails; half of them reach payments
    slow = rows(ui.soup("/traces?min_ms=1000"), "trace-results")
    assert len(slow) == 1 and "nightly-import" in slow[0].get_text()
    attr = ui.soup("/traces?attr=chunk%3D7&service=worker")
    assert len(rows(attr, "trace-results")) == 1
    assert [i["value"] for i in attr.select("form.search input[name=attr]")] == ["chunk=7", ""]
    endpoint = rows(
        ui.soup("/traces?service=frontend&endpoint=POST%20/checkout&limit=200"), "trace-results"
    )
    assert len(endpoint) == 120
    none = ui.soup("/traces?min_ms=999999")
    assert none.find("table", id="trace-results") is None
    assert "No traces match" in none.get_text()


def test_trace_view(ui: Ui) -> None:
    assert ui.seed is not None
    soup = ui.soup(f"/traces/{ui.seed.error_trace}")
    assert "POST /checkout" in soup.h1.get_text()
    assert soup.h1.select_one(".badge.err")
    doc = json_block(soup, "trace-data")
    spans = doc["spans"]
    assert len(spans) == 8 and doc["trace_id"] == ui.seed.error_trace
    assert [s[0] for s in spans][:3] == [-1, 0, 1]  # root, its client span, the callee
    assert [s[1] for s in spans] == [0, 1, 2, 3, 3, 3, 3, 4]  # depth, tree order
    assert spans[0][10] == 8  # the root's subtree is everything
    names = [doc["services"][s[2]][0] for s in spans]
    assert names[0] == "frontend" and names[-1] == "payments"
    root = spans[0]
    assert root[6] == "error" and root[8] is not None  # on the critical path
    exc = root[9]["events"][0]
    assert exc["name"] == "exception"
    assert exc["attributes"]["exception.type"] == "PaymentError"
    assert "Traceback" in exc["attributes"]["exception.stacktrace"]
    assert doc["resources"][root[9]["res"]]["service.name"] == "frontend"
    # Colour slots come from the name, so the legend and the waterfall agree.
    legend = {a.get_text(strip=True): a["class"][1] for a in soup.select(".facts .svc")}
    assert legend == {name: f"c{slot}" for name, slot in doc["services"]}


def test_five_thousand_span_trace(ui: Ui) -> None:
    assert ui.seed is not None
    path = f"/traces/{ui.seed.big_trace}"
    r = ui.get(path, headers={"accept-encoding": "gzip"})
    assert r.status_code == 200 and r.headers["content-encoding"] == "gzip"
    soup = BeautifulSoup(r.text, "html.parser")
    doc = json_block(soup, "trace-data")
    assert len(doc["spans"]) == BIG_TRACE_SPANS
    assert soup.select_one(".facts").get_text(" ", strip=True).count("5,000") == 1
    # Rows are not in the HTML: the script draws only those in view.
    assert len(soup.select(".wf-row")) == 0
    ends = [s[10] for s in doc["spans"]]
    assert ends[0] == BIG_TRACE_SPANS and all(e > i for i, e in enumerate(ends))
    # Chunks and their inserts run one after another, so all of them are on the critical
    # path; each row carries a bounded number of pieces whatever the trace's size.
    assert all(s[8] is not None for s in doc["spans"])
    assert max(len(s[8][1]) for s in doc["spans"]) <= 8


def test_trace_not_found_and_bad_id(ui: Ui) -> None:
    soup = ui.soup("/traces/" + "ab" * 16, status=404)
    assert "was not found" in soup.select_one(".problem .message").get_text()
    assert "retention_days" in soup.select_one(".problem").get_text()
    bad = ui.soup("/traces/xyz", status=400)
    assert "32 hexadecimal digits" in bad.select_one(".problem .message").get_text()


# ------------------------------------------------------------------------ map


def test_service_map(ui: Ui) -> None:
    soup = ui.soup("/map")
    edges = {(cells(r)[0], cells(r)[1]): cells(r) for r in rows(soup, "edges")}
    assert set(edges) >= {
        ("frontend", "checkout"),
        ("checkout", "payments"),
        ("frontend", "catalog"),
    }
    assert edges[("frontend", "checkout")][2] == "120"
    assert edges[("checkout", "payments")][4] != "0%"  # the declined cards
    svg = soup.find("svg", id="service-map")
    nodes = svg.select("a.node")
    assert {n.title.get_text() for n in nodes} >= {"frontend", "checkout", "payments", "catalog"}
    assert all(n["href"].startswith("/service?service=") for n in nodes)
    assert len(svg.select("g.edge path")) == len(edges)
    staging = {(cells(r)[0], cells(r)[1]) for r in rows(ui.soup("/map?env=staging"), "edges")}
    assert staging == {("frontend", "checkout"), ("checkout", "payments"), ("frontend", "catalog")}


# ------------------------------------------------------------------------ empty and errors


def test_no_data_yet_shows_how_to_send(empty_ui: Ui) -> None:
    soup = empty_ui.soup("/")
    setup = soup.find("section", id="setup")
    text = setup.get_text(" ")
    assert "No data yet" in text
    assert "http://heron.test/v1/traces" in text
    assert "hk_ui_test_key_0123456789" in text  # the project's ingest key, filled in
    assert "OTEL_EXPORTER_OTLP_ENDPOINT=http://heron.test" in text
    # Installable today (a built wheel), and what it will be once published.
    assert f"pip install /path/to/heron-{__version__}-py3-none-any.whl" in text
    assert "once Heron is published on PyPI, pip install heron" in " ".join(text.split())
    empty_map = empty_ui.soup("/map")
    assert "No calls between services" in empty_map.get_text()
    assert "traceparent" in empty_map.get_text()
    assert "No traces match" in empty_ui.soup("/traces").get_text()


def test_no_data_in_range(ui: Ui) -> None:
    soup = ui.soup("/?from=2020-01-01T00:00:00Z&to=2020-01-01T01:00:00Z")
    empty = soup.select_one("section.empty")
    assert "No requests in this time range" in empty.get_text()
    assert [query_of(a["href"]).get("range") for a in empty.find_all("a")] == [
        ["6h"],
        ["24h"],
        ["7d"],
    ]
    service = ui.soup("/service?service=frontend&range=15m&env=nowhere")
    assert "No requests to frontend" in service.get_text()


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("/?range=2h", "range must be one of"),
        ("/?refresh=1s", "refresh must be one of"),
        ("/?from=yesterday", "neither an ISO 8601"),
        ("/?from=2024-01-02T00:00:00Z&to=2024-01-01T00:00:00Z", "time range is empty"),
        ("/?from=-200d", "longer than 90 days"),
        ("/?sort=evil;drop", "cannot sort by"),
        ("/service", "'service' parameter is required"),
        ("/endpoint?service=x", "'endpoint' parameter is required"),
        ("/traces?min_ms=fast", "min_ms must be a number"),
        ("/traces?status=weird", "status must be one of"),
        ("/traces?attr=novalue", "attr must look like key=value"),
        ("/traces?limit=5000", "limit must be between"),
    ],
)
def test_bad_parameters_render_an_error_page(ui: Ui, path: str, message: str) -> None:
    soup = ui.soup(path, status=400)
    assert message in soup.select_one(".problem .message").get_text()
    assert soup.select_one(".problem a")["href"] == "/"


def test_now_is_the_clock(ui: Ui) -> None:
    soup = ui.soup("/service?service=frontend&range=15m")
    series = json_block(soup, "series-data")
    assert series["to"] == NOW_NS // 10**9
    assert series["to"] - series["from"] == 15 * MIN_S
