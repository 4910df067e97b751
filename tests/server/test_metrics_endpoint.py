"""``GET /metrics``: values after known ingest, on every backend; auth; promtool; the RED
counters' monotonic totals (``query.RedCounters``) across folding, retention and caps."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import anyio.from_thread
import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from heron.server.app import create_app
from heron.server.config import Config
from heron.server.context import AppContext
from heron.server.exposition import LE_BOUNDS_S, RedCollector, labels_of
from heron.server.ingest.otlp import decode_json
from heron.server.ingest.pipeline import Pipeline
from heron.server.jobs import Maintenance
from heron.server.projects import Projects
from heron.server.query import RedCounters
from heron.server.store.base import QueueFull, Store
from heron.server.store.duckdb_store import DuckDBStore
from heron.server.store.red import RollupFilter
from tests.support.prometheus import promtool_check_metrics

from .backends import BACKENDS, open_store
from .ingest_client import KEY, NOW_NS, TOKEN, app_store

JSON = {"Content-Type": "application/json", "Authorization": f"Bearer {KEY}"}
AUTH = {"Authorization": f"Bearer {TOKEN}"}
MS = 1_000_000
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def span(
    *,
    start_ns: int,
    duration_ms: float,
    route: str = "/orders",
    method: str | None = "GET",
    status: int = 200,
) -> dict[str, Any]:
    attrs = [{"key": "http.route", "value": {"stringValue": route}}]
    if method:
        attrs.append({"key": "http.request.method", "value": {"stringValue": method}})
    attrs.append({"key": "http.response.status_code", "value": {"intValue": str(status)}})
    return {
        "traceId": os.urandom(16).hex(),
        "spanId": os.urandom(8).hex(),
        "name": f"{method} {route}",
        "kind": 2,
        "startTimeUnixNano": str(start_ns),
        "endTimeUnixNano": str(start_ns + int(duration_ms * MS)),
        "attributes": attrs,
    }


def otlp(spans: list[dict[str, Any]], service: str = "shop", environment: str = "prod") -> bytes:
    resource = [
        {"key": "service.name", "value": {"stringValue": service}},
        {"key": "deployment.environment.name", "value": {"stringValue": environment}},
    ]
    doc = {
        "resourceSpans": [{"resource": {"attributes": resource}, "scopeSpans": [{"spans": spans}]}]
    }
    return json.dumps(doc).encode()


def parse(text: str) -> Samples:
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def sample(samples: Samples, name: str, **labels: str) -> float:
    return samples[(name, frozenset(labels.items()))]


@contextmanager
def heron_app(
    data: Path, kind: str = "duckdb", chdb_dir: Path | None = None, **config: Any
) -> Iterator[tuple[anyio.from_thread.BlockingPortal, httpx.AsyncClient, Any]]:
    """An in-process Heron with ``config`` overrides: (portal, client, app)."""
    cfg = Config(data_dir=str(data), api_token=TOKEN, ingest_key=KEY, **config)
    app = create_app(
        cfg,
        store=app_store(kind, data, chdb_dir),
        clock=lambda: NOW_NS,
        maintenance_interval_s=3600,
    )
    with (
        anyio.from_thread.start_blocking_portal() as portal,
        portal.wrap_async_context_manager(app.router.lifespan_context(app)),
    ):
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://heron")
        try:
            yield portal, client, app
        finally:
            portal.call(client.aclose)


def get(portal: anyio.from_thread.BlockingPortal, client: httpx.AsyncClient, path: str, **kw: Any):  # type: ignore[no-untyped-def]
    return portal.call(lambda: client.get(path, **kw))


def post(
    portal: anyio.from_thread.BlockingPortal, client: httpx.AsyncClient, body: bytes, **kw: Any
):  # type: ignore[no-untyped-def]
    return portal.call(lambda: client.post("/v1/traces", content=body, **kw))


def test_metrics_need_the_api_token(tmp_path: Path) -> None:
    with heron_app(tmp_path) as (portal, client, _):
        r = get(portal, client, "/metrics")
        assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
        wrong = get(portal, client, "/metrics", headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401
        ok = get(portal, client, "/metrics", headers=AUTH)
        assert ok.status_code == 200
        assert ok.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
        assert "heron_build_info" in ok.text and "process_resident_memory_bytes" in ok.text


def test_metrics_public_serves_without_a_token(tmp_path: Path) -> None:
    with heron_app(tmp_path, metrics_public=True) as (portal, client, _):
        r = get(portal, client, "/metrics")
        assert r.status_code == 200 and "heron_store_up 1.0" in r.text


@pytest.mark.parametrize("kind", BACKENDS)
def test_red_and_health_figures_read_what_was_posted(
    kind: str, tmp_path: Path, chdb_dir: Path
) -> None:
    orders = [span(start_ns=NOW_NS + i, duration_ms=20) for i in range(5)]
    pay = [
        span(start_ns=NOW_NS + i, duration_ms=300, route="/pay", method="POST", status=st)
        for i, st in enumerate((200, 200, 500))
    ]
    with heron_app(tmp_path, kind, chdb_dir) as (portal, client, _):
        assert post(portal, client, otlp(orders), headers=JSON).status_code == 200
        assert post(portal, client, otlp(pay), headers=JSON).status_code == 200
        text = get(portal, client, "/metrics", headers=AUTH).text
    rc, out = promtool_check_metrics(text)
    assert rc == 0 and out == "", out
    s = parse(text)
    get_orders = {"service": "shop", "environment": "prod", "method": "GET", "route": "/orders"}
    post_pay = {**get_orders, "method": "POST", "route": "/pay"}
    assert sample(s, "http_server_requests_total", **get_orders) == 5
    assert sample(s, "http_server_errors_total", **get_orders) == 0
    assert sample(s, "http_server_requests_total", **post_pay) == 3
    assert sample(s, "http_server_errors_total", **post_pay) == 1
    hist = "http_server_request_duration_seconds"
    assert sample(s, f"{hist}_count", **get_orders) == 5
    assert sample(s, f"{hist}_sum", **get_orders) == pytest.approx(0.1)
    assert sample(s, f"{hist}_sum", **post_pay) == pytest.approx(0.9)
    # 20 ms: above 0.01, at or below 0.025; 300 ms: above 0.25, at or below 0.5.
    assert sample(s, f"{hist}_bucket", **get_orders, le="0.01") == 0
    assert sample(s, f"{hist}_bucket", **get_orders, le="0.025") == 5
    assert sample(s, f"{hist}_bucket", **post_pay, le="0.25") == 0
    assert sample(s, f"{hist}_bucket", **post_pay, le="0.5") == 3
    for labels, count in ((get_orders, 5), (post_pay, 3)):
        les = [sample(s, f"{hist}_bucket", **labels, le=repr(le)) for le in LE_BOUNDS_S]
        les.append(sample(s, f"{hist}_bucket", **labels, le="+Inf"))
        assert les == sorted(les) and les[-1] == count
    # Heron's own health, from the same scrape.
    assert sample(s, "heron_store_committed_items_total", kind="spans") == 8
    assert (
        sample(s, "heron_http_requests_total", method="POST", route="/v1/traces", code="200") == 2
    )
    assert sample(s, "heron_store_queued_items", queue="spans") == 0
    assert sample(s, "heron_store_up") == 1
    assert sample(s, "heron_store_commit_duration_seconds_count", writer="spans") >= 1
    assert sum(v for (n, _), v in s.items() if n == "heron_storage_bytes") > 0


def test_rejections_and_errors_are_counted(tmp_path: Path) -> None:
    good = span(start_ns=NOW_NS, duration_ms=5)
    bad = {**good, "traceId": "ab" * 8}
    with heron_app(tmp_path) as (portal, client, app):
        r = post(portal, client, otlp([good, bad]), headers=JSON)
        assert r.json()["partialSuccess"]["rejectedSpans"] == "1"
        r = post(portal, client, b"x", headers={**JSON, "Content-Type": "text/plain"})
        assert r.status_code == 415
        assert get(portal, client, "/no/such/page", headers=AUTH).status_code == 404
        maintenance: Maintenance = app.state.maintenance
        maintenance.run_job(lambda: None, "analysis")
        maintenance.run_job(lambda: 1 / 0, "analysis")
        s = parse(get(portal, client, "/metrics", headers=AUTH).text)
    assert sample(s, "heron_ingest_rejected_items_total", signal="spans", reason="invalid") == 1
    assert (
        sample(s, "heron_http_requests_total", method="POST", route="/v1/traces", code="415") == 1
    )
    assert (
        sample(s, "heron_http_requests_total", method="GET", route="(unmatched)", code="404") == 1
    )
    assert sample(s, "heron_store_committed_items_total", kind="spans") == 1
    assert sample(s, "heron_job_runs_total", job="analysis", outcome="success") == 1
    assert sample(s, "heron_job_runs_total", job="analysis", outcome="failure") == 1
    assert sample(s, "heron_job_last_duration_seconds", job="analysis") >= 0


def test_endpoint_labels() -> None:
    assert labels_of("s", "e", "GET /a/{id}") == ("s", "e", "GET", "/a/{id}")
    assert labels_of("s", "e", "/a") == ("s", "e", "", "/a")
    assert labels_of("s", "e", "process order") == ("s", "e", "", "process order")


# ---------------------------------------------------------------- RedCounters


@pytest.fixture(params=BACKENDS)
def store(request: pytest.FixtureRequest, tmp_path: Path, chdb_dir: Path) -> Iterator[Store]:
    s = open_store(request.param, tmp_path, chdb_dir)
    yield s
    s.close()


def write(store: Store, *starts_ns: int, service: str = "shop") -> None:
    result = decode_json(otlp([span(start_ns=t, duration_ms=10) for t in starts_ns], service))
    Pipeline(store).submit_spans(1, result.spans).result(30)


def requests(totals: dict[Any, Any]) -> int:
    return sum(t.requests for t in totals.values())


def test_red_counters_only_grow(store: Store) -> None:
    t0 = NOW_NS // (60 * 10**9) * 60 * 10**9  # a minute's start
    write(store, t0 - 60 * 10**9)  # before the start minute: never counted
    counters = RedCounters(store, 1, start_ns=t0 + 5 * 10**9, settle_s=120)
    write(store, t0 + 1, t0 + 2, t0 + 3)
    assert requests(counters.totals(t0 + 30 * 10**9)) == 3
    write(store, t0 + 61 * 10**9, t0 + 62 * 10**9)
    later = t0 + 600 * 10**9  # both minutes are folded now (older than settle_s)
    folded = counters.totals(later)
    assert requests(folded) == 5
    t = folded[("shop", "prod", "GET /orders")]
    assert (t.errors, t.sum_ns, sum(t.buckets.values())) == (0, 5 * 10 * MS, 5)
    # Retention deleting every rollup row does not take anything back...
    day = 86_400 * 10**9
    store.upkeep(
        later + 3 * day,
        retention_days=1,
        rollup_retention_days=1,
        compact_from_s=0,
        compact_to_s=0,
    )
    if isinstance(store, DuckDBStore):  # ClickHouse's retention is a TTL, by its clock
        assert store.red.series_buckets(RollupFilter(1, 0, 2**40)) == []
    assert requests(counters.totals(later)) == 5
    # ...a span arriving late for a folded minute is not counted (documented)...
    write(store, t0 + 4)
    assert requests(counters.totals(later)) == 5
    # ...and new minutes are.
    write(store, later + 1)
    assert requests(counters.totals(later + 10**9)) == 6


def test_red_counters_cap_their_series(store: Store) -> None:
    counters = RedCounters(store, 1, start_ns=NOW_NS, max_series=1)
    write(store, NOW_NS, service="first")
    assert set(counters.totals(NOW_NS)) == {("first", "prod", "GET /orders")}
    write(store, NOW_NS, NOW_NS + 1, service="second")
    totals = counters.totals(NOW_NS)
    assert {k: t.requests for k, t in totals.items()} == {
        ("first", "prod", "GET /orders"): 1,
        ("(other)", "", "(other)"): 2,
    }


def test_queue_full_rejections_are_counted(tmp_path: Path) -> None:
    # A store whose writer is not started keeps what it queued: the second batch finds
    # the queue (one span) full.
    store = DuckDBStore(tmp_path / "heron.duckdb", queue_max_spans=1)
    pipeline = Pipeline(store)
    spans = decode_json(otlp([span(start_ns=NOW_NS, duration_ms=1)] * 2)).spans
    pipeline.submit_spans(1, spans[:1])
    with pytest.raises(QueueFull):
        pipeline.submit_spans(1, spans)
    assert pipeline.rejected == {("spans", "queue_full"): 2}
    assert store.stats["rejected_full"] == 1
    store.close()


def _requests_of(families: list[Any]) -> float:
    family = next(f for f in families if f.name == "http_server_requests")
    return sum(s.value for s in family.samples)


def test_red_figures_are_cached_and_survive_a_failed_refresh(tmp_path: Path) -> None:
    store = DuckDBStore(tmp_path / "heron.duckdb", commit_interval_ms=0).start()
    ctx = AppContext(Config(data_dir=str(tmp_path)), store, Projects(store), lambda: NOW_NS)
    now = [100.0]
    red = RedCollector(ctx, start_ns=NOW_NS, cache_s=5, monotonic=lambda: now[0])
    write(store, NOW_NS)
    assert _requests_of(list(red.collect())) == 1
    write(store, NOW_NS + 1)
    now[0] += 4  # within the cache: no read, the same figures
    assert _requests_of(list(red.collect())) == 1
    now[0] += 1
    assert _requests_of(list(red.collect())) == 2
    store.close()  # reads now fail: the last figures are served, the failure counted
    now[0] += 5
    families = list(red.collect())
    assert _requests_of(families) == 2
    failures = next(f for f in families if f.name == "heron_red_refresh_failures")
    assert failures.samples[0].value == 1


def gauge_points(name: str, values: list[float]) -> bytes:
    """An OTLP-JSON metrics request: one gauge, one point per value (distinct series)."""
    points = [
        {
            "timeUnixNano": str(NOW_NS),
            "asDouble": v,
            "attributes": [{"key": "i", "value": {"stringValue": str(i)}}],
        }
        for i, v in enumerate(values)
    ]
    doc = {
        "resourceMetrics": [
            {
                "resource": {
                    "attributes": [{"key": "service.name", "value": {"stringValue": "shop"}}]
                },
                "scopeMetrics": [{"metrics": [{"name": name, "gauge": {"dataPoints": points}}]}],
            }
        ]
    }
    return json.dumps(doc).encode()


def test_metric_ingest_counters(tmp_path: Path) -> None:
    """Points accepted, rejected as invalid and over the series cap are counted apart."""
    with heron_app(tmp_path, metric_max_series=3) as (portal, client, _):

        def send(body: bytes) -> httpx.Response:
            return portal.call(lambda: client.post("/v1/metrics", content=body, headers=JSON))

        # JSON cannot carry NaN: an invalid point is a gauge without a value of its kind.
        r = send(gauge_points("queue.depth", [1.0, 2.0, 3.0, 4.0, 5.0]))
        assert r.status_code == 200, r.text
        assert r.json()["partialSuccess"]["rejectedDataPoints"] == "2"
        s = parse(get(portal, client, "/metrics", headers=AUTH).text)
    assert sample(s, "heron_metric_points_total", outcome="accepted") == 3
    assert sample(s, "heron_metric_points_total", outcome="rejected_cardinality") == 2
    assert sample(s, "heron_metric_points_total", outcome="rejected_invalid") == 0
    assert sample(s, "heron_metric_series_active") == 3
    assert sample(s, "heron_metric_names") == 1
    assert sample(s, "heron_store_committed_items_total", kind="points") == 3
