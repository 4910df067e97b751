"""The performance analyzer (docs/analyze.md) on each backend of
``tests/server/backends.py`` (DuckDB, ClickHouse in process) served by a real ``heron``
app on loopback (uvicorn): known answers on seeded data.

The seed is the database API tests' (an N+1 loop in GET /orders, a slow query whose
SQLite EXPLAIN plan scans ``products``, failing checkouts) plus a clean fast service, a
slow erroring one, a leak-shaped and a flat memory series, an endpoint whose name is an
XSS payload, a gateway with one endpoint mostly waiting on an outgoing HTTP call and
one not, and a service whose client spans try the callee naming rules. The same report is checked through the query layer, the JSON API,
the UI page and ``heron analyze`` in each format.
"""

from __future__ import annotations

import copy
import json
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from heron.cli import main
from heron.server.analyze import grading as g
from heron.server.analyze.grouping import assign
from heron.server.app import create_app
from heron.server.config import Config, ConfigError, load_config
from heron.server.ingest.pipeline import Pipeline
from heron.server.jobs import analyze_recent
from heron.server.model import (
    SPAN_KIND_CLIENT,
    SPAN_KIND_INTERNAL,
    STATUS_ERROR,
    ErrorEvent,
    Span,
)
from heron.server.model.metric import MetricPoint, MetricWrite
from heron.server.model.write import EventWrite
from heron.server.query import TimeRange, list_issues, set_issue_status
from heron.server.query.analysis import analysis_report
from heron.server.store.base import Store
from heron.server.store.traces import CalleeTime, EndpointCalls
from tests.conftest import free_port
from tests.server.backends import BACKENDS, open_store

from .test_api import MINUTE_S, MS, NOW_NS, NS, TOKEN, span
from .test_db_api import seed as db_seed

AUTH = {"Authorization": f"Bearer {TOKEN}"}
PASSWORD = "analysis-test-password"
FROM_S, TO_S = MINUTE_S - 600, MINUTE_S + 60
RANGE = TimeRange(FROM_S * NS, TO_S * NS)
MINUTES = 11.0
XSS = "/x<script>alert(1)</script>"
MB = 2**20


def request(trace: int, service: str, route: str, start: int, dur_ms: float, **kw: Any) -> Span:
    return span(
        trace,
        1,
        start_ns=start,
        dur_ms=dur_ms,
        name=f"GET {route}",
        service=service,
        http_method="GET",
        http_route=route,
        http_status=kw.pop("http_status", 200),
        **kw,
    )


def seed() -> list[Span]:
    spans = db_seed()
    t0 = (MINUTE_S - 300) * NS
    for i in range(200):  # fast: 200 × 20 ms, no errors
        spans.append(request(10_000 + i, "fast", "/ping", t0 + i * 500 * MS, 20))
    spans.append(request(10_500, "fast", XSS, t0, 20))
    for i in range(90):  # slowpoke: 90 × 2.5 s, every third fails
        bad = i % 3 == 0
        spans.append(
            request(
                20_000 + i,
                "slowpoke",
                "/report",
                t0 + i * NS,
                2500,
                http_status=500 if bad else 200,
                status=STATUS_ERROR if bad else 0,
            )
        )
    return spans + external_calls() + callee_naming()


def event(n: int, exc_type: str, release: str, minute: int) -> ErrorEvent:
    t = (FROM_S + 60 * minute) * NS
    return assign(
        ErrorEvent(
            event_id=f"{n:032x}",
            time_ns=t,
            received_ns=t,
            service="slowpoke",
            environment="prod",
            release=release,
            level="error",
            platform="python",
            source="sentry",
            exc_type=exc_type,
            message=f"{exc_type} in the report",
            culprit="slowpoke.report in build",
            transaction="GET /report",
            trace_id=None,
            span_id=0,
            sdk="sentry.python/2.75.0",
        )
    )


def issues(store: Store) -> None:
    """A new issue (3 events in the window) and one resolved in 1.0, reopened by 2.0."""
    new = [event(1 + i, "ReportTimeout", "1.0", 2 + i) for i in range(3)]
    old = event(10, "LookupError", "1.0", 1)
    store.submit_events(EventWrite(1, [*new, old], [])).result(30)
    (issue,) = list_issues(store, 1, RANGE, service="slowpoke", sort="last_seen", limit=10)[1:]
    assert issue.exc_type == "LookupError"
    assert set_issue_status(store, 1, issue.id, "resolved", "1.0", now_ns=NOW_NS - 60 * NS)
    store.submit_events(EventWrite(1, [event(11, "LookupError", "2.0", 6)], [])).result(30)


def memory() -> MetricWrite:
    labels = {"host.name": "h1", "process.pid": "1"}
    points = []
    for i in range(10):
        t = (FROM_S + 60 * i + 10) * NS
        for service, value in (("slowpoke", 100 + 12 * i), ("fast", 100 + (i % 2))):
            points.append(
                MetricPoint(
                    t, "process.memory.usage", "gauge", service, labels, value * MB, unit="By"
                )
            )
    for i in range(10):  # slowpoke's CPU 60 % user + 30 % system, loop lag up to 0.5 s
        t = (FROM_S + 60 * i + 20) * NS
        for mode, value in (("user", 0.6), ("system", 0.3)):
            points.append(
                MetricPoint(
                    t, "process.cpu.utilization", "gauge", "slowpoke",
                    {**labels, "cpu.mode": mode}, value, unit="1",
                )
            )  # fmt: skip
        lag = 0.5 if i == 4 else 0.01
        points.append(
            MetricPoint(
                t, "heron.asyncio.event_loop.lag", "gauge", "slowpoke", labels, lag, unit="s"
            )
        )
    return MetricWrite(1, points)


@dataclass
class Server:
    url: str
    store: Store


@pytest.fixture(scope="module", params=BACKENDS)
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, chdb_dir: Path
) -> Iterator[Server]:
    data: Path = tmp_path_factory.mktemp("analysis")
    config = Config(
        data_dir=str(data),
        api_token=TOKEN,
        ingest_key="hk_analysis_test_key",
        admin_password=PASSWORD,
    )
    store = open_store(request.param, data, chdb_dir)
    Pipeline(store).submit_spans(1, seed()).result(30)
    assert store.submit_metrics(memory()).result(30) == 50
    issues(store)
    analyze_recent(store, NOW_NS, window_s=900)
    app = create_app(config, store=store, clock=lambda: NOW_NS, maintenance_interval_s=3600)
    port = free_port()
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not srv.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    try:
        yield Server(f"http://127.0.0.1:{port}", store)
    finally:
        srv.should_exit = True
        thread.join(30)


@pytest.fixture(scope="module")
def report(server: Server) -> dict[str, Any]:
    r = httpx.get(
        f"{server.url}/api/v1/analysis",
        params={"from": str(FROM_S), "to": str(TO_S)},
        headers=AUTH,
        timeout=60,
    )
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


def service(report: dict[str, Any], name: str) -> dict[str, Any]:
    return next(s for s in report["services"] if s["service"] == name)


def findings(report: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [f for f in report["findings"] if f["kind"] == kind]


# ------------------------------------------------------------------ grades


def test_a_clean_fast_service_is_graded_a(report: dict[str, Any]) -> None:
    fast = service(report, "fast")
    assert (fast["graded"]["grade"], fast["graded"]["score"]) == ("A", 10.0)
    assert {a["area"] for a in fast["graded"]["areas"]} == {
        "p95_ms",
        "mean_ms",
        "error_rate_pct",
        "apdex",
    }
    assert all(a["level"] == "good" for a in fast["graded"]["areas"])
    assert fast["requests"] == 201


def test_a_slow_erroring_service_is_graded_f_with_the_reasons(report: dict[str, Any]) -> None:
    slow = service(report, "slowpoke")["graded"]
    areas = {a["area"]: a for a in slow["areas"]}
    assert areas["error_rate_pct"]["value"] == pytest.approx(100 / 3)
    assert (areas["error_rate_pct"]["score"], areas["error_rate_pct"]["level"]) == (0.0, "critical")
    assert areas["apdex"]["value"] == 0.0 and areas["apdex"]["score"] == 0.0
    assert areas["mean_ms"]["value"] == pytest.approx(2500)
    assert areas["mean_ms"]["score"] == 4.75 and areas["mean_ms"]["level"] == "warning"
    assert areas["mean_ms"]["band"] == [200.0, 1000.0, 3000.0]
    assert (
        "Error rate 33.3 %: critical (good at most 1.0 %, warning 5.0 %"
        in (areas["error_rate_pct"]["reason"])
    )
    assert areas["cpu_pct"]["value"] == pytest.approx(90) and areas["cpu_pct"]["score"] == 3.76
    assert areas["loop_lag_ms"]["value"] == pytest.approx(500)
    assert (areas["loop_lag_ms"]["score"], areas["loop_lag_ms"]["level"]) == (5.88, "warning")
    # the mean of the six areas (3.14) is capped at the worst area (0) + 3
    mean = sum(a["score"] for a in slow["areas"]) / 6
    assert mean == pytest.approx(3.14, abs=0.01)
    assert (slow["grade"], slow["score"]) == ("F", 3.0)
    assert "capped at worst area (Error rate 0) + 3" in slow["reason"]
    assert service(report, "slowpoke")["endpoints"][0]["grade"] == "F"
    # the erroring endpoint is a finding, with its figures
    (err,) = [f for f in findings(report, "error_rate") if f["service"] == "slowpoke"]
    assert err["severity"] == "critical" and err["evidence"]["errors"] == 30
    # the overall score is the services' weighted by requests
    total = sum(s["requests"] for s in report["services"])
    weighted = sum(s["graded"]["score"] * s["requests"] for s in report["services"]) / total
    assert report["score"] == pytest.approx(weighted, abs=0.01)
    assert report["grade"] == g.grade_of(report["score"])


# ---------------------------------------------------------------- findings


def test_cpu_saturation_and_event_loop_lag(report: dict[str, Any]) -> None:
    (cpu,) = findings(report, "cpu_saturation")
    assert (cpu["service"], cpu["severity"]) == ("slowpoke", "critical")
    assert cpu["evidence"]["cpu_pct"] == pytest.approx(90)
    (lag,) = findings(report, "event_loop_lag")
    assert (lag["severity"], lag["evidence"]["loop_lag_ms"]) == ("warning", 500.0)
    assert "asyncio.to_thread" in lag["recommendation"]
    assert lag["link"] == "/service/runtime?service=slowpoke"


def test_new_and_regressed_issues(report: dict[str, Any]) -> None:
    (new,) = findings(report, "new_issue")
    assert new["title"] == "New issue: ReportTimeout: ReportTimeout in the report"
    assert (new["evidence"]["events"], new["severity"]) == (3, "warning")
    assert new["link"] == f"/issues/{new['evidence']['issue_id']}"
    assert new["impact_ms_per_min"] == pytest.approx(3 / MINUTES * 2500, abs=0.01)
    (back,) = findings(report, "regressed_issue")
    assert back["severity"] == "critical" and back["evidence"]["events"] == 2


def test_the_n_plus_one_loop_is_found_with_its_wasted_time(report: dict[str, Any]) -> None:
    (n1,) = [f for f in findings(report, "n_plus_one") if f["endpoint"] == "GET /orders"]
    ev = n1["evidence"]
    assert ev["query"] == "SELECT * FROM order_items WHERE order_id = ?"
    assert (ev["calls"], ev["occurrences"], ev["avg_repeats"]) == (60, 10, 6.0)
    assert ev["wasted_ms"] == pytest.approx(500)  # 10 × 60 ms × 5/6
    assert n1["impact_ms_per_min"] == pytest.approx(500 / MINUTES, abs=0.01)
    assert len(ev["trace_id"]) == 32 and int(ev["trace_id"], 16) in range(100, 110)
    assert n1["link"] == f"/traces/{ev['trace_id']}"
    assert "JOIN" in n1["recommendation"] and len(ev["fingerprint"]) == 16


def test_a_seq_scan_plan_gives_an_index_on_its_table(report: dict[str, Any]) -> None:
    (scan,) = findings(report, "seq_scan")
    ev = scan["evidence"]
    assert (ev["table"], ev["filter"]) == ("products", "p.name LIKE ?")
    assert ev["slow_calls"] == 5 and ev["total_ms"] == pytest.approx(1250)
    assert "CREATE INDEX ON products (name)" in scan["recommendation"]
    assert scan["link"] == f"/db/query?fp={ev['fingerprint']}"
    assert (scan["service"], scan["endpoint"]) == ("shop", "GET /search")


def test_an_endpoint_mostly_in_the_database(report: dict[str, Any]) -> None:
    heavy = {f["endpoint"]: f for f in findings(report, "db_time")}
    assert heavy["GET /search"]["evidence"]["db_share"] == pytest.approx(250 / 300, abs=0.01)
    assert "GET /product" not in heavy  # its time is HTTP calls


def test_a_leak_shaped_memory_series_is_flagged_and_a_flat_one_not(
    report: dict[str, Any],
) -> None:
    (leak,) = findings(report, "memory_growth")
    assert leak["service"] == "slowpoke" and leak["severity"] == "critical"
    assert leak["evidence"]["growth_pct"] == pytest.approx(108.0)
    assert leak["evidence"]["r2"] == 1.0 and leak["evidence"]["mb_per_hour"] == 720.0
    assert leak["impact_ms_per_min"] is None
    # No user-time measure: ranked after the rest, critical first.
    assert [f["kind"] for f in report["findings"][-3:]] == [
        "cpu_saturation",
        "memory_growth",
        "event_loop_lag",
    ]


def test_findings_are_ranked_by_user_time_wasted(report: dict[str, Any]) -> None:
    impacts = [f["impact_ms_per_min"] for f in report["findings"]]
    measured = [i for i in impacts if i is not None]
    assert measured == sorted(measured, reverse=True) and len(measured) >= 4
    assert impacts[: len(measured)] == measured
    for f in report["findings"]:
        assert f["severity"] in g.SEVERITIES and f["link"].startswith("/") and f["recommendation"]


def test_service_filter_and_thresholds_from_config(server: Server) -> None:
    th = g.parse_thresholds("slowpoke:error_rate_pct=40/50/60; apdex=0.5/0.3/0.1")
    rep = analysis_report(server.store, 1, RANGE, service="slowpoke", thresholds=th)
    assert [s.service for s in rep.services] == ["slowpoke"]
    areas = {a.area: a for a in rep.services[0].graded.areas}
    assert (areas["error_rate_pct"].score, areas["error_rate_pct"].band) == (10.0, (40, 50, 60))
    assert areas["apdex"].band == (0.5, 0.3, 0.1)
    assert {f.service for f in rep.findings} == {"slowpoke"}
    assert not [f for f in rep.findings if f.kind == "error_rate"]


# --------------------------------------------------------------------- API


def test_the_api_requires_the_token(server: Server) -> None:
    for headers in ({}, {"Authorization": "Bearer wrong"}):
        r = httpx.get(f"{server.url}/api/v1/analysis", headers=headers)
        assert r.status_code == 401, r.text


@pytest.mark.parametrize(
    ("params", "needle"),
    [
        ({"from": "yesterday-ish"}, "from"),
        ({"from": str(TO_S), "to": str(FROM_S)}, "before"),
        ({"apdex_t_ms": "-5"}, "apdex_t_ms"),
    ],
)
def test_the_api_answers_bad_parameters_400(
    server: Server, params: dict[str, str], needle: str
) -> None:
    r = httpx.get(f"{server.url}/api/v1/analysis", params=params, headers=AUTH)
    assert r.status_code == 400, r.text
    assert needle in r.text
    assert httpx.get(f"{server.url}/api/v1/analysis", headers=AUTH).status_code == 200


# ---------------------------------------------------------- CLI and the page


def analyze(server: Server, *args: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main(
        ["analyze", "--url", server.url, "--token", TOKEN, "--from", str(FROM_S), "--to", str(TO_S)]
        + list(args)
    )
    return code, capsys.readouterr().out


def test_cli_json_parses_and_equals_the_api(
    server: Server, report: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = analyze(server, "--format", "json", capsys=capsys)
    got = json.loads(out)
    assert code == 0
    # The five slow search calls tie at 250 ms: the store may pick any as the example.
    report = copy.deepcopy(report)
    for body in (got, report):
        for f in findings(body, "seq_scan"):
            assert int(f["evidence"].pop("trace_id"), 16) in range(200, 205)
    assert got == report


def test_cli_markdown_has_the_grades(
    server: Server, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out_file = tmp_path / "report.md"
    code, out = analyze(server, "--format", "md", "--out", str(out_file), capsys=capsys)
    assert code == 0 and out == ""
    md = out_file.read_text()
    assert md.startswith("# Heron performance analysis: grade ")
    assert re.search(r"^\| A \| fast \| 10\.0 \| 201 \|", md, re.M)
    assert re.search(r"^\| F \| slowpoke \| ", md, re.M)
    assert "N+1 query in GET /orders" in md and "CREATE INDEX ON products (name)" in md
    assert "<script>" not in md


def test_cli_html_escapes_telemetry(server: Server, capsys: pytest.CaptureFixture[str]) -> None:
    code, html = analyze(server, "--format", "html", capsys=capsys)
    assert code == 0 and html.startswith("<!doctype html>")
    assert "<script>" not in html
    assert "/x&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert 'class="grade grade-A"' in html and 'class="grade grade-F"' in html
    assert f'href="{server.url}/traces/' in html


def test_cli_reports_a_refused_token(server: Server, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["analyze", "--url", server.url, "--token", "wrong"])
    assert code == 2 and "401" in capsys.readouterr().err


def test_the_page_needs_sign_in_and_shows_grades_and_findings(server: Server) -> None:
    with httpx.Client(base_url=server.url, headers={"accept": "text/html"}) as c:
        r = c.get("/analysis", params={"from": str(FROM_S), "to": str(TO_S)})
        assert r.status_code == 303 and "/login" in r.headers["location"]
        page = c.get("/login").text
        token = re.search(r'name="csrf_token" value="([^"]+)"', page)
        assert token
        r = c.post(
            "/login",
            data={"username": "admin", "password": PASSWORD, "csrf_token": token.group(1)},
        )
        assert r.status_code == 303, r.text
        r = c.get("/analysis", params={"from": str(FROM_S), "to": str(TO_S)})
        assert r.status_code == 200, r.text[:2000]
        html = r.text
    assert "<script>alert(1)" not in html and "&lt;script&gt;alert(1)" in html
    assert 'class="grade grade-A"' in html and 'class="grade grade-F"' in html
    assert 'href="/analysis' in html and 'aria-current="page">Analysis<' in html
    assert "CREATE INDEX ON products (name)" in html
    assert "Compared with" not in html
    with httpx.Client(base_url=server.url, headers={"accept": "text/html"}) as c2:
        c2.cookies = c.cookies
        params = {"from": str(FROM_S), "to": str(TO_S), "baseline_to": str(FROM_S)}
        assert c2.get("/analysis", params=params).status_code == 400
        params["baseline_from"] = str(FROM_S - 3600)
        r = c2.get("/analysis", params=params)
    assert r.status_code == 200 and "Compared with 2023-11-14T21:04:00Z" in r.text
    assert "<td>new endpoint</td><td>slowpoke</td><td>GET /report</td>" in r.text


# -------------------------------------------------------------- pure rules


@pytest.mark.parametrize(
    ("value", "score"),
    [(150, 10.0), (200, 10.0), (600, 8.5), (1000, 7.0), (2000, 5.5), (3000, 4.0), (4500, 2.0),
     (6000, 0.0), (9000, 0.0)],
)  # fmt: skip
def test_latency_scores(value: float, score: float) -> None:
    assert g.score_value(value, (200, 1000, 3000), False) == score


def test_apdex_scores_and_grades() -> None:
    assert g.score_value(0.97, (0.94, 0.85, 0.7), True) == 10.0
    assert g.score_value(0.85, (0.94, 0.85, 0.7), True) == 7.0
    assert g.score_value(0.35, (0.94, 0.85, 0.7), True) == 2.0
    assert [g.grade_of(s) for s in (10, 9, 8.99, 8, 7, 6, 5.99, 0)] == list("AABBCDFF")


def test_overall_is_capped_at_the_worst_area_plus_three() -> None:
    graded = g.grade_entity(
        "x", {"p95_ms": 100, "mean_ms": 100, "error_rate_pct": 50}, g.Thresholds(), "x"
    )
    assert graded.score == 3.0 and graded.grade == "F" and "capped" in graded.reason  # fmt: skip


def test_threshold_specs() -> None:
    th = g.parse_thresholds("p95_ms=100/500/900; shop:cpu_pct=60/75/90")
    assert th.band("p95_ms") == (100, 500, 900) and th.band("cpu_pct") == (50, 70, 85)
    assert th.band("cpu_pct", "shop") == (60, 75, 90)
    for bad in ("p95=1/2/3", "p95_ms=3/2/1", "apdex=0.5/0.8/0.9", "p95_ms=1/2", ":p95_ms=1/2/3"):
        with pytest.raises(g.ThresholdError):
            g.parse_thresholds(bad)
    assert load_config(None, {"HERON_ANALYZE_THRESHOLDS": "mean_ms=1/2/3"}).analyze_thresholds
    with pytest.raises(ConfigError, match="analyze_thresholds"):
        load_config(None, {"HERON_ANALYZE_THRESHOLDS": "mean_ms=3/2/1"})


def test_plans_with_a_sequential_scan() -> None:
    pg = "Seq Scan on orders o  (cost=0.00..35.50 rows=10 width=8)\n  Filter: (customer_id = 42)"
    assert g.seq_scan(pg, "SELECT * FROM orders o WHERE o.customer_id = ?") == (
        "orders",
        "(customer_id = 42)",
    )
    sqlite = "SCAN p\nSEARCH x USING INDEX i (name=?)"
    assert g.seq_scan(sqlite, "SELECT p.id FROM products AS p WHERE p.sku = ?") == (
        "products",
        "p.sku = ?",
    )
    mysql = '{"query_block": {"table": {"table_name": "users", "access_type": "ALL"}}}'
    assert g.seq_scan(mysql, "SELECT * FROM users WHERE email = ?") == ("users", "email = ?")
    assert g.seq_scan("SEARCH p USING INDEX i (sku=?)", "SELECT 1 FROM p") is None
    assert g.seq_scan("Index Scan using pk on orders", "SELECT 1 FROM orders") is None


def test_memory_fits() -> None:
    steady = [(60.0 * i, 100.0 + 5 * i) for i in range(10)]
    per_hour, r2, growth = g.leak_fit(steady) or (0, 0, 0)
    assert (per_hour, r2) == (300.0, 1.0) and growth == pytest.approx(45 / 100)
    sawtooth = [(60.0 * i, 100.0 + (20 if i % 2 else 0)) for i in range(10)]
    assert g.leak_finding(service="s", instance="i", points=sawtooth) is None
    assert g.leak_finding(service="s", instance="i", points=steady[:4]) is None


# ----------------------------------------------------------------- compare mode


def test_compare_rules() -> None:
    F = g.EndpointFigures
    base = {
        ("s", "slow"): F(100, 100.0, 0.0),
        ("s", "fast"): F(100, 100.0, 0.0),
        ("s", "same"): F(100, 100.0, 2.0),
        ("s", "errs"): F(100, 100.0, 0.0),
        ("s", "few"): F(5, 100.0, 0.0),
        ("s", "gone"): F(50, 10.0, 0.0),
    }
    cur = {
        ("s", "slow"): F(100, 125.0, 0.0),  # +25 %
        ("s", "fast"): F(100, 70.0, 0.0),
        ("s", "same"): F(100, 119.0, 2.5),  # +19 %, errors +0.5 point: noise
        ("s", "errs"): F(100, 100.0, 3.0),
        ("s", "few"): F(5, 500.0, 0.0),
        ("s", "new"): F(10, 10.0, 0.0),
    }
    verdicts = {c.endpoint: (c.verdict, c.p95_change_pct) for c in g.compare(cur, base)}
    assert verdicts == {
        "slow": ("slower", 25.0),
        "fast": ("faster", -30.0),
        "same": ("unchanged", 19.0),
        "errs": ("new errors", 0.0),
        "few": ("too few requests", 400.0),
        "gone": ("gone", None),
        "new": ("new endpoint", None),
    }
    assert [c.endpoint for c in g.compare(cur, base)][:2] == ["slow", "errs"]


def test_compare_with_a_baseline_window(server: Server, capsys: pytest.CaptureFixture[str]) -> None:
    def get(**params: str) -> httpx.Response:
        return httpx.get(
            f"{server.url}/api/v1/analysis",
            params={"from": str(FROM_S), "to": str(TO_S), **params},
            headers=AUTH,
            timeout=60,
        )

    plain = get().json()
    assert (plain["comparison"], plain["baseline_from"]) == (None, None)
    same = get(baseline_from=str(FROM_S), baseline_to=str(TO_S)).json()
    assert {c["verdict"] for c in same["comparison"]} == {"unchanged", "too few requests"}
    assert same["baseline_to"] == plain["to"]
    empty = get(baseline_from=str(FROM_S - 7200), baseline_to=str(FROM_S - 3600)).json()
    assert {c["verdict"] for c in empty["comparison"]} == {"new endpoint"}
    assert len(empty["comparison"]) == sum(len(s["endpoints"]) for s in plain["services"])
    for bad in ({"baseline_from": str(FROM_S)}, {"baseline_from": "x", "baseline_to": "now"}):
        r = get(**bad)
        assert r.status_code == 400 and "baseline" in r.text, r.text
    code = main(
        ["analyze", "--url", server.url, "--token", TOKEN, "--from", str(FROM_S), "--to",
         str(TO_S), "--baseline-from", str(FROM_S - 7200), "--baseline-to", str(FROM_S - 3600)]
    )  # fmt: skip
    md = capsys.readouterr().out
    assert code == 0 and "## Compared with 2023-11-14T20:04:00Z" in md
    assert "| new endpoint | slowpoke | GET /report | – → 2,708 ms |" in md


# ------------------------------------------------------ outgoing HTTP calls


def client(trace: int, span_id: int, start: int, dur_ms: float, service: str, **kw: Any) -> Span:
    return span(
        trace,
        span_id,
        1,
        start_ns=start,
        dur_ms=dur_ms,
        name=kw.pop("name", "GET"),
        kind=kw.pop("kind", SPAN_KIND_CLIENT),
        service=service,
        **kw,
    )


def external_calls() -> list[Span]:
    """gateway: GET /quote waits on rates.example for 80 % of its time (one call of
    4k ms in a 5k ms request), GET /profile on users.internal for 20 % (k ms of 5k)."""
    spans = []
    t0 = (MINUTE_S - 240) * NS
    for i in range(20):
        k = 20 + i  # distinct durations: the longest call (trace 60_019) is the example
        for n, (route, call_ms, attrs) in enumerate(
            (
                ("/quote", 4 * k, {"url.full": f"https://rates.example/v1/rates?n={i}"}),
                ("/profile", k, {"server.address": "users.internal", "server.port": 8080}),
            )
        ):
            trace, start = 60_000 + 100 * n + i, t0 + (2 * i + n) * NS
            spans.append(request(trace, "gateway", route, start, 5 * k))
            spans.append(
                client(
                    trace,
                    2,
                    start + 2 * MS,
                    call_ms,
                    "gateway",
                    http_method="GET",
                    attributes=attrs,
                )
            )
    return spans


def callee_naming() -> list[Span]:
    """caller: GET /a (prod, trace 70_001) calls out every way the naming rules know,
    plus spans that are not outgoing calls; the same endpoint in staging (70_003) calls
    the API again; a root client span (70_002) is a request, not a call."""
    t = (MINUTE_S - 200) * NS
    c = "caller"
    return [
        request(70_001, c, "/a", t, 100),
        client(70_001, 2, t + 1 * MS, 10, c, http_method="GET",
               attributes={"server.address": "svc-b", "server.port": 8080,
                           "url.template": "/items/{id}"}),
        client(70_001, 3, t + 12 * MS, 20, c, name="POST", http_method="POST",
               attributes={"url.full": "https://u:p@api.example.com:8443/v1/pay?token=x"}),
        client(70_001, 4, t + 33 * MS, 7, c, name="HTTP GET",
               attributes={"http.url": "http://legacy.local/x"}),
        client(70_001, 5, t + 41 * MS, 15, c, name="fetch", http_method="GET",
               attributes={"net.peer.name": "old-peer", "net.peer.port": 81}),
        client(70_001, 6, t + 57 * MS, 5, c, name="GET /relative", http_method="GET"),
        # a JSON null or an empty string is no value
        client(70_001, 10, t + 80 * MS, 4, c, name="PUT", http_method="PUT",
               attributes={"server.address": None, "url.full": "http://nullhost:1/x"}),
        client(70_001, 11, t + 85 * MS, 3, c, http_method="GET",
               attributes={"server.address": "emptyport", "server.port": ""}),
        # not calls: a search client span with a statement, an internal span, and a
        # call starting after the request ended
        client(70_001, 7, t + 63 * MS, 9, c, db_system="elasticsearch", db_statement="{}",
               attributes={"url.full": "http://es:9200/_search"}),
        client(70_001, 8, t + 73 * MS, 9, c, kind=SPAN_KIND_INTERNAL, http_method="GET"),
        client(70_001, 9, t + 120 * MS, 9, c, http_method="GET",
               attributes={"server.address": "late"}),
        span(70_002, 1, start_ns=t, dur_ms=30, name="GET", kind=SPAN_KIND_CLIENT, service=c,
             http_method="GET", attributes={"server.address": "root-call"}),
        request(70_003, c, "/a", t + NS, 50, env="staging"),
        client(70_003, 2, t + NS + MS, 30, c, name="POST", http_method="POST", env="staging",
               attributes={"url.full": "https://api.example.com:8443/v1/pay"}),
    ]  # fmt: skip


def tid(n: int) -> bytes:
    return n.to_bytes(16, "big")


def test_outgoing_calls_per_endpoint_and_callee(server: Server) -> None:
    """The store's figures, the same on every backend: callee names, the entry rule."""
    got = server.store.traces.outgoing_calls(1, RANGE.start_ns, RANGE.end_ns, service="caller")
    api = "POST api.example.com:8443"
    assert got == [
        EndpointCalls(
            "caller",
            "GET /a",
            2,
            150 * MS,
            [
                CalleeTime(api, 2, 50 * MS, tid(70_003)),
                CalleeTime("GET old-peer:81", 1, 15 * MS, tid(70_001)),
                CalleeTime("GET svc-b:8080/items/{id}", 1, 10 * MS, tid(70_001)),
                CalleeTime("legacy.local", 1, 7 * MS, tid(70_001)),
                CalleeTime("GET /relative", 1, 5 * MS, tid(70_001)),
                CalleeTime("PUT nullhost:1", 1, 4 * MS, tid(70_001)),
                CalleeTime("GET emptyport", 1, 3 * MS, tid(70_001)),
            ],
        )
    ]
    prod = server.store.traces.outgoing_calls(
        1, RANGE.start_ns, RANGE.end_ns, service="caller", environment="prod"
    )
    assert [(e.requests, e.total_ns) for e in prod] == [(1, 100 * MS)]
    assert prod[0].callees[0] == CalleeTime(api, 1, 20 * MS, tid(70_001))
    everyone = server.store.traces.outgoing_calls(1, RANGE.start_ns, RANGE.end_ns)
    assert [(e.service, e.endpoint) for e in everyone] == [
        ("caller", "GET /a"),
        ("gateway", "GET /profile"),
        ("gateway", "GET /quote"),
        ("shop", "GET /product"),
    ]
    quote = everyone[2]
    assert (quote.requests, quote.total_ns) == (20, 5 * 590 * MS)
    assert quote.callees == [CalleeTime("GET rates.example", 20, 4 * 590 * MS, tid(60_019))]
    assert server.store.traces.outgoing_calls(1, RANGE.end_ns, RANGE.end_ns + NS) == []


def test_an_endpoint_mostly_waiting_on_one_http_call(report: dict[str, Any]) -> None:
    (ext,) = findings(report, "external_call")  # not GET /profile (20 %), not GET /a (2 requests)
    assert (ext["service"], ext["endpoint"]) == ("gateway", "GET /quote")
    ev = ext["evidence"]
    assert ev["callee"] == "GET rates.example" and ev["share"] == pytest.approx(0.8)
    assert (ev["calls"], ev["calls_per_request"], ev["requests"]) == (20, 1.0, 20)
    assert ev["mean_ms_per_call"] == pytest.approx(4 * 29.5)
    assert ev["endpoint_total_ms"] == pytest.approx(5 * 590)
    assert ev["trace_id"] == tid(60_019).hex()
    assert ext["impact_ms_per_min"] == pytest.approx(4 * 590 / MINUTES, abs=0.01)
    assert ext["severity"] == "warning"
    assert ext["title"] == "GET /quote spends 80% of its time calling GET rates.example"
    assert ext["link"] == "/endpoint?service=gateway&endpoint=GET%20%2Fquote"
    assert "cache" in ext["recommendation"] and "circuit breaker" in ext["recommendation"]
    assert not any("external HTTP" in n for n in report["not_covered"])


def test_external_call_rule() -> None:
    def f(**kw: Any) -> g.Finding | None:
        args: dict[str, Any] = {
            "service": "s", "endpoint": "GET /e", "callee": "GET api", "calls": 30,
            "calls_ms": 600.0, "requests": 10, "endpoint_total_ms": 1000.0, "trace_id": None,
            "minutes": 1.0,
        }  # fmt: skip
        return g.external_call_finding(**{**args, **kw})

    one = f()
    assert one is not None and one.evidence["share"] == 0.6 and one.severity == "warning"
    assert one.evidence["calls_per_request"] == 3.0 and "batch the 3.0 calls" in one.recommendation
    assert f(calls_ms=499.0) is None  # 49.9 %
    assert f(requests=9) is None and f(endpoint_total_ms=0.0) is None
    # parallel calls add up past the request time: share and impact capped
    par = f(calls_ms=2500.0, minutes=2.0)
    assert par is not None and par.evidence["share"] == 1.0 and par.impact_ms_per_min == 500.0
    assert par.severity == "warning"
    assert (f(calls_ms=60.0, endpoint_total_ms=100.0, minutes=1.0) or one).severity == "info"
    big = f(calls_ms=90_000.0, endpoint_total_ms=100_000.0, minutes=10.0)
    assert big is not None and big.severity == "critical" and big.impact_ms_per_min == 9000.0
    assert f(calls=10) is not None and "concurrently" in (f(calls=10) or one).recommendation
