"""Load-test runs through the JSON API (in-process ASGI, the real app and lifespan,
DuckDB, spans through the real ingest pipeline): start, finish, list, read with the
summary, compare with a baseline (statuses, verdict stored), series, delete, and the
4xx answers."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio.from_thread
import httpx
import numpy as np
import pytest

from heron.server.app import create_app
from heron.server.config import Config
from heron.server.ingest.pipeline import Pipeline
from heron.server.jobs import analyze_recent
from heron.server.model import SPAN_KIND_CLIENT, SPAN_KIND_SERVER, STATUS_ERROR, STATUS_UNSET, Span
from heron.server.model.metric import MetricPoint, MetricWrite
from heron.server.store.duckdb_store import DuckDBStore

NS = 1_000_000_000
MS = 1_000_000
NOW_NS = 1_700_000_000 * NS
T0 = NOW_NS - 3600 * NS  # the baseline window [T0, T0 + 60 s); the run 120 s later
TOKEN = "ht_loadtests_test_token_0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@dataclass
class Api:
    portal: anyio.from_thread.BlockingPortal
    client: httpx.AsyncClient
    store: DuckDBStore

    def call(self, method: str, path: str, *, auth: bool = True, **kw: Any) -> httpx.Response:
        headers = {**(AUTH if auth else {}), **kw.pop("headers", {})}
        return self.portal.call(lambda: self.client.request(method, path, headers=headers, **kw))

    def ok(self, method: str, path: str, status: int = 200, **kw: Any) -> Any:
        r = self.call(method, path, **kw)
        assert r.status_code == status, r.text
        return r.json() if r.content else None

    def error(self, method: str, path: str, status: int, **kw: Any) -> str:
        r = self.call(method, path, **kw)
        assert r.status_code == status, r.text
        message: str = r.json()["error"]
        return message


def requests(
    rng: np.random.Generator, start_ns: int, route: str, n: int, *, slower: float = 1.0,
    errors: float = 0.0, trace0: int = 0,
) -> list[Span]:  # fmt: skip
    """``n`` requests spread over 60 s from ``start_ns``, log-normal around 40 ms."""
    durations = rng.lognormal(np.log(40 * MS), 0.4, n) * slower
    failed = rng.random(n) < errors
    return [
        Span(
            trace_id=(trace0 + i + 1).to_bytes(16, "big"),
            span_id=1,
            parent_id=0,
            start_ns=start_ns + i * (60 * NS // n),
            duration_ns=int(durations[i]),
            name=f"GET {route}",
            kind=SPAN_KIND_SERVER,
            status=STATUS_ERROR if failed[i] else STATUS_UNSET,
            status_message="",
            service="shop",
            environment="prod",
            release="1.0",
            http_method="GET",
            http_route=route,
            http_status=500 if failed[i] else 200,
        )
        for i in range(n)
    ]


def queries(spans: list[Span], per_request: int, ms: int) -> list[Span]:
    """``per_request`` database calls of ``ms`` each under every request of ``spans``."""
    return [
        Span(
            trace_id=r.trace_id,
            span_id=10 + k,
            parent_id=r.span_id,
            start_ns=r.start_ns + MS,
            duration_ns=ms * MS,
            name="SELECT",
            kind=SPAN_KIND_CLIENT,
            status=STATUS_UNSET,
            status_message="",
            service=r.service,
            environment=r.environment,
            release=r.release,
            db_system="postgresql",
            db_statement="SELECT * FROM items WHERE q = %s",
        )
        for r in spans
        for k in range(per_request)
    ]


def runtime(start_ns: int, cpu: float, rss_mb: float, mem_used: float) -> list[MetricPoint]:
    """A minute of the service's runtime metrics (two CPU modes, RSS, host memory, lag)."""
    labels = {"host.name": "h1", "process.pid": "7"}
    out = []
    for i in range(6):
        t = start_ns + (5 + 10 * i) * NS
        out += [
            MetricPoint(t, "process.cpu.utilization", "gauge", "shop",
                        {**labels, "cpu.mode": "user"}, cpu * 2 / 3, unit="1"),
            MetricPoint(t, "process.cpu.utilization", "gauge", "shop",
                        {**labels, "cpu.mode": "system"}, cpu / 3, unit="1"),
            MetricPoint(t, "process.memory.usage", "gauge", "shop", labels, rss_mb * 2**20,
                        unit="By"),
            MetricPoint(t, "system.memory.utilization", "gauge", "shop",
                        {"host.name": "h1", "system.memory.state": "used"}, mem_used, unit="1"),
            MetricPoint(t, "heron.asyncio.event_loop.lag", "gauge", "shop", labels, 0.02,
                        unit="s"),
        ]  # fmt: skip
    return out


def seed(store: DuckDBStore) -> None:
    rng = np.random.default_rng(14)
    run0 = T0 + 120 * NS
    spans = [
        *requests(rng, T0, "/cart", 600, trace0=0),
        *(search := requests(rng, T0, "/search", 400, trace0=10_000)),
        *queries(search, 3, 2),
        *requests(rng, T0, "/old", 100, trace0=20_000),
        *requests(rng, T0, "/tiny", 10, trace0=30_000),
        *requests(rng, run0, "/cart", 600, slower=1.6, trace0=40_000),
        *requests(rng, run0, "/search", 400, trace0=50_000),
        *requests(rng, run0, "/new", 100, trace0=60_000),
        *requests(rng, run0, "/tiny", 10, trace0=70_000),
    ]
    Pipeline(store).submit_spans(1, spans).result(30)
    analyze_recent(store, NOW_NS, window_s=7200)  # the database rollups
    points = runtime(T0, 0.3, 120, 0.5) + runtime(run0, 0.9, 300, 0.95)
    store.submit_metrics(MetricWrite(1, points)).result(30)


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Api]:
    config = Config(data_dir=str(tmp_path), api_token=TOKEN, ingest_key="hk_lt_test_key")
    store = DuckDBStore(tmp_path / "heron.duckdb", commit_interval_ms=0).start()
    clock = iter(range(NOW_NS, NOW_NS + 10**6 * NS, NS))
    app = create_app(config, store=store, clock=lambda: next(clock), maintenance_interval_s=3600)
    with (
        anyio.from_thread.start_blocking_portal() as portal,
        portal.wrap_async_context_manager(app.router.lifespan_context(app)),
    ):
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://heron")
        try:
            seed(store)
            yield Api(portal, client, store)
        finally:
            portal.call(client.aclose)


def window_run(api: Api, offset_s: int, **kw: Any) -> dict[str, Any]:
    start = T0 + offset_s * NS
    run = api.ok(
        "POST", "/api/v1/loadtests", 201, json={"name": "checkout", "start_ns": start, **kw}
    )
    body = {"end_ns": start + 60 * NS, "exit_code": 0, "load": {"users": 20}}
    done: dict[str, Any] = api.ok("POST", f"/api/v1/loadtests/{run['id']}/finish", json=body)
    return done


def test_start_finish_read_list_delete(api: Api) -> None:
    run = api.ok(
        "POST", "/api/v1/loadtests", 201,
        json={"name": "checkout", "labels": {"branch": "main"}, "tool": "locust", "load": {"users": 5}},
    )  # fmt: skip
    assert run["status"] == "running" and run["start_ns"] >= NOW_NS and run["end"] is None
    assert run["links"] == {
        "ui": f"/loadtests/{run['id']}",
        "compare": f"/loadtests/{run['id']}/compare",
    }
    assert run["start"].startswith("2023-11-14T22:13:") and run["labels"] == {"branch": "main"}
    got = api.ok("GET", f"/api/v1/loadtests/{run['id']}")
    assert got["summary"] == {"requests": 0, "endpoints": []}  # nothing in its window yet
    done = api.ok(
        "POST", f"/api/v1/loadtests/{run['id']}/finish", json={"exit_code": 3, "status": "failed"}
    )
    assert (done["status"], done["exit_code"], done["load"]) == ("failed", 3, {"users": 5})
    assert done["end_ns"] > done["start_ns"] and done["duration_s"] > 0
    again = api.ok("POST", f"/api/v1/loadtests/{run['id']}/finish")
    assert again["end_ns"] == done["end_ns"] and again["status"] == "failed"
    other = api.ok("POST", "/api/v1/loadtests", 201, json={"name": "search"})
    listed = api.ok("GET", "/api/v1/loadtests")["runs"]
    assert [r["id"] for r in listed] == [other["id"], run["id"]]
    assert [
        r["id"] for r in api.ok("GET", "/api/v1/loadtests", params={"name": "checkout"})["runs"]
    ] == [run["id"]]
    assert (
        api.ok("GET", "/api/v1/loadtests", params={"before": other["id"]})["runs"][0]["id"]
        == run["id"]
    )
    api.ok("DELETE", f"/api/v1/loadtests/{run['id']}", 204)
    assert "no load-test run" in api.error("GET", f"/api/v1/loadtests/{run['id']}", 404)
    api.error("DELETE", f"/api/v1/loadtests/{run['id']}", 404)


def test_bad_requests(api: Api) -> None:
    assert "name" in api.error("POST", "/api/v1/loadtests", 400, json={})
    assert "nope" in api.error("POST", "/api/v1/loadtests", 400, json={"name": "x", "nope": 1})
    assert "JSON object" in api.error("POST", "/api/v1/loadtests", 400, json=[1])
    assert "tool" in api.error(
        "POST", "/api/v1/loadtests", 400, json={"name": "x", "tool": "jmeter"}
    )
    assert "labels" in api.error(
        "POST", "/api/v1/loadtests", 400, json={"name": "x", "labels": {"a": 1}}
    )
    api.error("POST", "/api/v1/loadtests/99/finish", 404, json={})
    api.error("GET", "/api/v1/loadtests/0", 400)
    api.error("GET", "/api/v1/loadtests", 400, params={"limit": 0})
    run = api.ok("POST", "/api/v1/loadtests", 201, json={"name": "x", "start_ns": NOW_NS})
    assert "before" in api.error(
        "POST", f"/api/v1/loadtests/{run['id']}/finish", 400, json={"end_ns": NOW_NS - 1}
    )
    assert "status" in api.error(
        "POST", f"/api/v1/loadtests/{run['id']}/finish", 400, json={"status": "running"}
    )
    assert api.call("POST", "/api/v1/loadtests", auth=False, json={"name": "x"}).status_code == 401
    assert api.call("GET", "/api/v1/loadtests", auth=False).status_code == 401


def test_summary_counts_the_window(api: Api) -> None:
    base = window_run(api, 0)
    got = api.ok("GET", f"/api/v1/loadtests/{base['id']}")
    eps = {e["endpoint"]: e for e in got["summary"]["endpoints"]}
    assert set(eps) == {"GET /cart", "GET /search", "GET /old", "GET /tiny"}
    assert got["summary"]["requests"] == 1110
    cart = eps["GET /cart"]
    assert cart["requests"] == 600 and cart["throughput_rps"] == 10.0 and cart["service"] == "shop"
    assert 20 < cart["p50_ms"] < cart["p95_ms"] < cart["p99_ms"] < 200 and cart["error_rate"] == 0.0
    assert cart["db_ms_per_request"] is None and cart["queries_per_request"] is None
    search = eps["GET /search"]
    assert search["queries_per_request"] == 3.0 and search["db_ms_per_request"] == 6.0


def test_compare_finds_the_regression_and_stores_the_verdict(api: Api) -> None:
    base = window_run(api, 0)
    run = window_run(api, 120, baseline="checkout")
    running = api.ok("POST", "/api/v1/loadtests", 201, json={"name": "checkout"})
    assert "still running" in api.error(
        "GET", f"/api/v1/loadtests/{running['id']}/compare", 409, params={"baseline": base["id"]}
    )
    cmp = api.ok("GET", f"/api/v1/loadtests/{run['id']}/compare")
    assert cmp["baseline"]["id"] == base["id"] and cmp["run"]["id"] == run["id"]
    assert cmp["verdict"] == "regression" and cmp["regressions"] == 1
    assert cmp["threshold_pct"] == 20.0 and cmp["alpha"] == 0.01 and cmp["min_requests"] == 30
    assert "Mann-Whitney" in cmp["method"] and "Fisher" in cmp["method"]
    status = {e["endpoint"]: e["status"] for e in cmp["endpoints"]}
    assert status == {
        "GET /cart": "regression",
        "GET /search": "unchanged",
        "GET /new": "new",
        "GET /old": "gone",
        "GET /tiny": "insufficient-data",
    }
    first = cmp["endpoints"][0]
    assert first["endpoint"] == "GET /cart" and first["p95_change_pct"] > 30
    assert first["p95_ratio_ci"][0] > 1.0 and first["p_value"] < 0.01
    assert first["run"]["requests"] == 600 and first["baseline"]["requests"] == 600
    assert first["throughput_change_pct"] == 0.0 and first["reasons"][0].startswith("slower")
    assert first["links"]["endpoint"].startswith(
        "/endpoint?service=shop&endpoint=GET+%2Fcart&from="
    )
    gone = next(e for e in cmp["endpoints"] if e["status"] == "gone")
    assert gone["run"] is None and gone["baseline"]["requests"] == 100
    assert base["start"].replace(":", "%3A") in gone["links"]["traces"]  # the baseline's window
    (shop,) = cmp["services"]
    assert shop["service"] == "shop"
    assert shop["run"] == pytest.approx(
        {"cpu_pct": 90.0, "memory_mb": 300.0, "memory_pct": 95.0, "loop_lag_ms": 20.0}
    )
    assert shop["baseline"]["cpu_pct"] == pytest.approx(30.0)
    assert shop["baseline"]["memory_mb"] == pytest.approx(120.0)
    recs = {r["title"]: r for r in cmp["recommendations"]}
    assert set(recs) == {
        "shop: CPU at 90 % during the run",
        "shop: memory at 95 % during the run",
    }
    assert "Scale out" in recs["shop: CPU at 90 % during the run"]["recommendation"]
    assert "leaks" in recs["shop: memory at 95 % during the run"]["recommendation"]
    kinds = {f["kind"] for f in cmp["findings"]}
    assert "cpu_saturation" in kinds  # the analyzer's, for the run window
    assert all(set(f) >= {"severity", "title", "evidence", "link"} for f in cmp["findings"])
    stored = api.ok("GET", f"/api/v1/loadtests/{run['id']}")
    assert stored["verdict"] == "regression" and stored["baseline_id"] == base["id"]
    # By id, with a threshold the slowdown does not reach: pass.
    lenient = api.ok(
        "GET",
        f"/api/v1/loadtests/{run['id']}/compare",
        params={"baseline": base["id"], "threshold": 2},
    )
    assert lenient["verdict"] == "pass" and lenient["regressions"] == 0
    assert api.ok("GET", f"/api/v1/loadtests/{run['id']}")["verdict"] == "pass"


def test_compare_baseline_errors(api: Api) -> None:
    base = window_run(api, 0)
    assert "no baseline" in api.error("GET", f"/api/v1/loadtests/{base['id']}/compare", 400)
    assert "own baseline" in api.error(
        "GET", f"/api/v1/loadtests/{base['id']}/compare", 400, params={"baseline": base["id"]}
    )
    # A name resolves to an older finished run only: none before the first.
    assert "no finished run" in api.error(
        "GET", f"/api/v1/loadtests/{base['id']}/compare", 404, params={"baseline": "checkout"}
    )
    api.error("GET", f"/api/v1/loadtests/{base['id']}/compare", 404, params={"baseline": "999"})
    api.error("GET", "/api/v1/loadtests/999/compare", 404, params={"baseline": base["id"]})
    api.error(
        "GET", f"/api/v1/loadtests/{base['id']}/compare", 400, params={"baseline": 1, "alpha": 2}
    )
    # Nothing comparable: insufficient-data.
    empty = window_run(api, -600)
    cmp = api.ok("GET", f"/api/v1/loadtests/{empty['id']}/compare", params={"baseline": base["id"]})
    assert cmp["verdict"] == "insufficient-data"
    assert {e["status"] for e in cmp["endpoints"]} == {"gone"}


def test_series_offsets_from_the_start(api: Api) -> None:
    run = window_run(api, 120)
    s = api.ok("GET", f"/api/v1/loadtests/{run['id']}/series", params={"step": 10})
    assert s["step_s"] == 10 and s["start_ns"] == run["start_ns"] and len(s["points"]) == 6
    assert [p["offset_s"] for p in s["points"]] == [0, 10, 20, 30, 40, 50]
    assert sum(p["requests"] for p in s["points"]) == 1110
    p = s["points"][0]
    assert set(p) == {
        "offset_s", "duration_s", "requests", "rps", "p50_ms", "p95_ms", "errors", "error_rate"
    }  # fmt: skip
    assert p["rps"] == p["requests"] / 10 and p["p95_ms"] >= p["p50_ms"]
    # 60 s in steps of 7 s: the ninth step covers the last 4 s, and its rate is over those.
    odd = api.ok("GET", f"/api/v1/loadtests/{run['id']}/series", params={"step": 7})["points"]
    assert len(odd) == 9 and [q["duration_s"] for q in odd] == [7] * 8 + [4]
    assert odd[-1]["rps"] == odd[-1]["requests"] / 4
    assert sum(q["requests"] for q in s["endpoints"]["shop"]["GET /cart"]) == 600
    default = api.ok("GET", f"/api/v1/loadtests/{run['id']}/series")
    assert default["step_s"] == 1 and len(default["points"]) == 60
    api.error("GET", f"/api/v1/loadtests/{run['id']}/series", 400, params={"step": 0})
    api.error("GET", "/api/v1/loadtests/999/series", 404)


# ------------------------------------------------ a real `heron serve` on loopback


def otlp(start_ns: int, n: int, slower: float, trace0: int) -> dict[str, Any]:
    """``n`` OTLP/JSON server spans of ``GET /pay`` over 30 s from ``start_ns``."""
    rng = np.random.default_rng(trace0)
    durations = rng.lognormal(np.log(30 * MS), 0.3, n) * slower
    spans = []
    for i in range(n):
        t = start_ns + i * (30 * NS // n)
        spans.append(
            {
                "traceId": (trace0 + i + 1).to_bytes(16, "big").hex(),
                "spanId": "00000000000000aa",
                "name": "GET /pay",
                "kind": 2,
                "startTimeUnixNano": str(t),
                "endTimeUnixNano": str(t + int(durations[i])),
                "attributes": [
                    {"key": "http.request.method", "value": {"stringValue": "GET"}},
                    {"key": "http.route", "value": {"stringValue": "/pay"}},
                    {"key": "http.response.status_code", "value": {"intValue": "200"}},
                ],
            }
        )
    service = {"key": "service.name", "value": {"stringValue": "billing"}}
    return {
        "resourceSpans": [{"resource": {"attributes": [service]}, "scopeSpans": [{"spans": spans}]}]
    }


def test_a_gate_through_a_real_server(heron_server: Any) -> None:
    h = heron_server
    auth = {"Authorization": f"Bearer {h.token}"}
    base_url = f"{h.url}/api/v1/loadtests"
    now = time.time_ns()
    ids = []
    for k, (offset_s, slower) in enumerate(((-600, 1.0), (-300, 2.0))):
        start = now + offset_s * NS
        r = httpx.post(
            base_url, json={"name": "pay", "baseline": "pay", "start_ns": start}, headers=auth
        )
        assert r.status_code == 201, r.text
        run_id = r.json()["id"]
        sent = httpx.post(
            f"{h.url}/v1/traces",
            json=otlp(start, 200, slower, k * 1000),
            headers={"x-heron-key": h.key},
        )
        assert sent.status_code == 200, sent.text
        r = httpx.post(
            f"{base_url}/{run_id}/finish", json={"end_ns": start + 60 * NS}, headers=auth
        )
        assert r.status_code == 200 and r.json()["status"] == "finished"
        h.wait_for(
            f"/api/v1/loadtests/{run_id}", lambda j: j["summary"]["requests"] == 200, timeout=30
        )
        ids.append(run_id)
    cmp = httpx.get(f"{base_url}/{ids[1]}/compare", headers=auth, timeout=30)
    assert cmp.status_code == 200, cmp.text
    body = cmp.json()
    assert body["baseline"]["id"] == ids[0] and body["verdict"] == "regression"
    assert [(e["endpoint"], e["status"]) for e in body["endpoints"]] == [("GET /pay", "regression")]
    # No token, no change.
    assert httpx.post(base_url, json={"name": "x"}).status_code == 401
    assert httpx.delete(f"{base_url}/{ids[0]}", headers=auth).status_code == 204


def test_a_settled_runs_summary_is_read_once(api: Api) -> None:
    """A run that ended 5 minutes ago keeps the summary first read (the runs list reads
    every row's); a run still settling is read again, so late spans count."""
    from heron.server.query import loadtest as lq

    run = api.store.state.get_loadtest(1, window_run(api, 0)["id"])
    assert run is not None and run.end_ns is not None
    settling, settled = run.end_ns + 60 * NS, run.end_ns + lq.SETTLED_NS
    first = lq.run_summary(api.store, 1, run, settled)
    assert first["requests"] == 1110
    late = requests(np.random.default_rng(1), T0 + 30 * NS, "/late", 40, trace0=90_000)
    Pipeline(api.store).submit_spans(1, late).result(30)
    assert lq.run_summary(api.store, 1, run, settled) == first  # kept
    inside = sum(1 for s in late if s.start_ns < run.end_ns)  # the rest start after it
    assert 0 < inside < 40
    assert lq.run_summary(api.store, 1, run, settling)["requests"] == 1110 + inside  # read again
