"""Metrics storage, the query layer and the JSON API on each backend (conformance): data
points with known values in, exact answers out (a counter incremented N times reads N,
a histogram's p95 within its bucket, grouping, filters, exemplars, 404/400)."""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio.from_thread
import httpx
import pytest
from fastapi import FastAPI

from heron.server.app import create_app
from heron.server.config import Config
from heron.server.model.metric import Exemplar, MetricPoint, MetricWrite
from heron.server.query import InvalidQuery, TimeRange
from heron.server.query import metrics as mq
from heron.server.store.base import QueueFull, Store
from tests.server.backends import BACKENDS, open_store

NS = 1_000_000_000
MINUTE_S = 1_700_000_040  # a minute boundary
NOW_NS = (MINUTE_S + 600) * NS
TOKEN = "ht_metrics_test_token_0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
P = 1
TR = TimeRange((MINUTE_S - 600) * NS, (MINUTE_S + 600) * NS)
BOUNDS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
TRACE = bytes(range(16))
# Histogram observations (seconds), sent in two points of one minute and one of the next.
OBS = [0.003] * 10 + [0.02] * 40 + [0.07] * 30 + [0.3] * 15 + [0.8] * 4 + [3.0]
COUNTS = {"eu": 25, "us": 12}


def t_ns(minute: int, second: int) -> int:
    return (MINUTE_S + 60 * minute + second) * NS


def hist_point(
    values: list[float], time_ns: int, exemplars: list[Exemplar] | None = None
) -> MetricPoint:
    buckets = [0] * (len(BOUNDS) + 1)
    for v in values:
        buckets[next((i for i, b in enumerate(BOUNDS) if v <= b), len(BOUNDS))] += 1
    return MetricPoint(
        time_ns,
        "http.server.request.duration",
        "histogram",
        "shop",
        {"http.route": "/a"},
        value=sum(values),
        count=len(values),
        min=min(values),
        max=max(values),
        bounds=BOUNDS,
        bucket_counts=tuple(buckets),
        unit="s",
        description="Duration of HTTP server requests.",
        exemplars=exemplars or [],
    )


def writes() -> list[MetricWrite]:
    """Several writes (separate commits, so rollup rows are partial until compaction)."""
    counter = []
    i = 0
    for region, n in COUNTS.items():
        for _ in range(n):
            counter.append(
                MetricPoint(
                    t_ns(i % 3, i % 50),
                    "orders.placed",
                    "counter",
                    "shop",
                    {"region": region},
                    1.0,
                    unit="1",
                )
            )
            i += 1
    gauge = [
        MetricPoint(t_ns(0, 10), "process.memory.usage", "gauge", "shop", {"service.instance.id": "a"}, 100.0, unit="By"),
        MetricPoint(t_ns(0, 20), "process.memory.usage", "gauge", "shop", {"service.instance.id": "a"}, 200.0, unit="By"),
        MetricPoint(t_ns(0, 15), "process.memory.usage", "gauge", "shop", {"service.instance.id": "b"}, 50.0, unit="By"),
        MetricPoint(t_ns(0, 15), "process.memory.usage", "gauge", "mail", {"service.instance.id": "c"}, 7.0, unit="By"),
    ]  # fmt: skip
    ex = Exemplar(t_ns(0, 12), 0.8, TRACE, 0xABCDEF)
    hist = [
        hist_point(OBS[:50], t_ns(0, 10)),
        hist_point(OBS[50:99], t_ns(0, 40), [ex]),
        hist_point(OBS[99:], t_ns(1, 5)),
    ]
    return [
        MetricWrite(P, counter[:20]),
        MetricWrite(P, counter[20:]),
        MetricWrite(P, gauge),
        MetricWrite(P, hist[:1]),
        MetricWrite(P, hist[1:2]),
        MetricWrite(P, hist[2:]),
    ]


@dataclass
class Api:
    portal: anyio.from_thread.BlockingPortal
    client: httpx.AsyncClient
    app: FastAPI
    store: Store

    def get(self, path: str, **params: Any) -> httpx.Response:
        return self.portal.call(lambda: self.client.get(path, headers=AUTH, params=params))

    def ok(self, path: str, **params: Any) -> Any:
        r = self.get(path, **params)
        assert r.status_code == 200, r.text
        return r.json()


WINDOW = {"from": str(MINUTE_S - 600), "to": str(MINUTE_S + 600)}


@pytest.fixture(scope="module", params=BACKENDS)
def api(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, chdb_dir: Path
) -> Iterator[Api]:
    data: Path = tmp_path_factory.mktemp("metrics")
    config = Config(data_dir=str(data), api_token=TOKEN, ingest_key="hk_metrics_test_key")
    store = open_store(request.param, data, chdb_dir)
    app = create_app(config, store=store, clock=lambda: NOW_NS, maintenance_interval_s=3600)
    with (
        anyio.from_thread.start_blocking_portal() as portal,
        portal.wrap_async_context_manager(app.router.lifespan_context(app)),
    ):
        for w in writes():
            assert store.submit_metrics(w).result(30) == len(w)
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://heron")
        try:
            yield Api(portal, client, app, store)
        finally:
            portal.call(client.aclose)


def values(res: mq.SeriesResult) -> dict[tuple[str, ...], list[float]]:
    return {tuple(s.labels.values()): [v for _, v in s.points if v is not None] for s in res.series}


def query(api: Api, metric: str, agg: str, by: tuple[str, ...] = (), **kw: Any) -> mq.SeriesResult:
    return mq.query_series(api.store, P, mq.SeriesQuery(metric, agg, by, **kw), TR)  # type: ignore[arg-type]


def exact_quantile(q: float) -> float:
    ordered = sorted(OBS)
    return ordered[max(math.ceil(q * len(ordered)) - 1, 0)]


def bucket_of(v: float) -> tuple[float, float]:
    i = next((i for i, b in enumerate(BOUNDS) if v <= b), len(BOUNDS))
    return (BOUNDS[i - 1] if i else 0.0, BOUNDS[i] if i < len(BOUNDS) else math.inf)


# ----------------------------------------------------------------------- query layer


def test_counter_incremented_n_times_reads_n(api: Api) -> None:
    res = query(api, "orders.placed", "sum")
    assert res.kind == "counter" and res.step_s == 60 and res.unit == "1"
    assert sum(values(res)[()]) == sum(COUNTS.values())
    by_region = values(query(api, "orders.placed", "increase", ("region",)))
    assert {k: sum(v) for k, v in by_region.items()} == {("eu",): 25, ("us",): 12}
    rate = query(api, "orders.placed", "rate", step_s=600)
    assert [v for _, v in rate.series[0].points if v is not None] == [pytest.approx(37 / 600)]


def test_steps_without_data_are_null(api: Api) -> None:
    res = query(api, "orders.placed", "sum", step_s=60)
    points = res.series[0].points
    assert [t for t, _ in points] == list(range(MINUTE_S - 600, MINUTE_S + 600, 60))
    filled = {t: v for t, v in points if v is not None}
    assert sorted(filled) == [MINUTE_S, MINUTE_S + 60, MINUTE_S + 120]
    assert sum(1 for _, v in points if v is None) == 20 - 3


def test_filters(api: Api) -> None:
    res = query(api, "orders.placed", "sum", match=(("region", "eu"),))
    assert sum(values(res)[()]) == 25
    assert query(api, "orders.placed", "sum", match=(("region", "nowhere"),)).series == []
    mail = query(api, "process.memory.usage", "max", match=(("service", "mail"),))
    assert values(mail) == {(): [7.0]}


def test_gauge_aggregations(api: Api) -> None:
    match = (("service", "shop"),)
    assert values(query(api, "process.memory.usage", "avg", match=match)) == {
        (): [pytest.approx(350 / 3)]
    }
    assert values(query(api, "process.memory.usage", "last", match=match)) == {(): [250.0]}
    assert values(query(api, "process.memory.usage", "sum", match=match)) == {(): [250.0]}
    assert values(query(api, "process.memory.usage", "min", match=match)) == {(): [50.0]}
    assert values(query(api, "process.memory.usage", "count", match=match)) == {(): [3.0]}
    by = values(query(api, "process.memory.usage", "last", ("service", "service.instance.id")))
    assert by == {("shop", "a"): [200.0], ("shop", "b"): [50.0], ("mail", "c"): [7.0]}


def test_histogram_percentiles_within_bucket_error(api: Api) -> None:
    for agg, q in (("p50", 0.5), ("p90", 0.9), ("p95", 0.95), ("p99", 0.99)):
        res = query(api, "http.server.request.duration", agg, step_s=600)
        [got] = values(res)[()]
        lo, hi = bucket_of(exact_quantile(q))
        assert lo <= got <= min(hi, max(OBS)), (agg, got, exact_quantile(q))
    [avg] = values(query(api, "http.server.request.duration", "avg", step_s=600))[()]
    assert avg == pytest.approx(sum(OBS) / len(OBS))
    [count] = values(query(api, "http.server.request.duration", "count", step_s=600))[()]
    assert count == len(OBS)
    [top] = values(query(api, "http.server.request.duration", "max", step_s=600))[()]
    assert top == 3.0
    per_minute = values(query(api, "http.server.request.duration", "count", step_s=60))[()]
    assert per_minute == [99.0, 1.0]


def test_exemplars(api: Api) -> None:
    res = query(api, "http.server.request.duration", "p95")
    assert [(e.trace_id, e.span_id, e.value) for e in res.exemplars] == [(TRACE, 0xABCDEF, 0.8)]
    assert res.exemplars[0].attributes == {"service": "shop", "http.route": "/a"}


def test_catalogue_and_labels(api: Api) -> None:
    rows = {r.name: r for r in mq.list_metrics(api.store, P, TR)}
    assert sorted(rows) == ["http.server.request.duration", "orders.placed", "process.memory.usage"]
    assert (rows["orders.placed"].kind, rows["orders.placed"].series) == ("counter", 2)
    assert rows["process.memory.usage"].services == ("mail", "shop")
    assert rows["http.server.request.duration"].unit == "s"
    assert [r.name for r in mq.list_metrics(api.store, P, TR, "mail")] == ["process.memory.usage"]
    assert mq.label_keys(api.store, P, "orders.placed", TR) == ["region", "service"]
    assert mq.label_values(api.store, P, "orders.placed", "region", TR) == [("eu", 1), ("us", 1)]
    assert mq.label_values(api.store, P, "process.memory.usage", "service", TR) == [
        ("shop", 2),
        ("mail", 1),
    ]
    assert mq.label_values(
        api.store, P, "process.memory.usage", "service.instance.id", TR, (("service", "shop"),)
    ) == [("a", 1), ("b", 1)]
    later = TimeRange(TR.end_ns + 3600 * NS, TR.end_ns + 7200 * NS)
    assert mq.list_metrics(api.store, P, later) == []


def test_invalid_queries(api: Api) -> None:
    with pytest.raises(InvalidQuery, match="does not apply"):
        query(api, "process.memory.usage", "p95")
    with pytest.raises(InvalidQuery, match="does not apply"):
        query(api, "process.memory.usage", "rate")
    with pytest.raises(InvalidQuery, match="unknown aggregation"):
        query(api, "orders.placed", "median")
    with pytest.raises(InvalidQuery, match="multiple of 60"):
        query(api, "orders.placed", "sum", step_s=90)
    with pytest.raises(mq.UnknownMetric):
        query(api, "no.such.metric", "avg")


def test_step_is_chosen_from_the_range() -> None:
    def step(seconds: int) -> int:
        return mq.choose_step(TimeRange(0, seconds * NS))

    assert step(3600) == 60
    assert step(86_400) == 300
    assert step(7 * 86_400) == 3600
    assert all(step(s) % 60 == 0 and s / step(s) <= 300 for s in (60, 5000, 10**6, 10**8))


def test_percentile_interpolates_within_the_bucket() -> None:
    assert mq.percentile(0.5, (1.0, 2.0), (0, 10, 0)) == pytest.approx(1.5)
    assert mq.percentile(0.95, (1.0, 2.0), (0, 10, 0), 1.2, 1.8) == pytest.approx(1.77)
    assert mq.percentile(0.5, (1.0,), (0, 0)) is None


# ------------------------------------------------------------------------------- API


def test_api_metrics_list(api: Api) -> None:
    body = api.ok("/api/v1/metrics", **WINDOW)
    names = [m["name"] for m in body["metrics"]]
    assert names == ["http.server.request.duration", "orders.placed", "process.memory.usage"]
    orders = body["metrics"][1]
    assert orders == {
        "name": "orders.placed",
        "kind": "counter",
        "unit": "1",
        "description": "",
        "series": 2,
        "services": ["shop"],
    }
    assert set(body) == {"metrics", "from", "to"}
    mail = api.ok("/api/v1/metrics", service="mail", **WINDOW)
    assert [m["name"] for m in mail["metrics"]] == ["process.memory.usage"]


def test_api_labels_and_values(api: Api) -> None:
    body = api.ok("/api/v1/metrics/labels", metric="orders.placed", **WINDOW)
    assert body["metric"] == "orders.placed" and body["keys"] == ["region", "service"]
    body = api.ok(
        "/api/v1/metrics/label-values",
        metric="process.memory.usage",
        key="service.instance.id",
        filter="service=shop",
        **WINDOW,
    )
    assert body["values"] == [{"value": "a", "series": 1}, {"value": "b", "series": 1}]


def test_api_query(api: Api) -> None:
    body = api.ok(
        "/api/v1/metrics/query", metric="orders.placed", agg="sum", by="region", step="60", **WINDOW
    )
    assert (body["kind"], body["agg"], body["step_s"]) == ("counter", "sum", 60)
    totals = {
        s["labels"]["region"]: sum(v for _, v in s["points"] if v is not None)
        for s in body["series"]
    }
    assert totals == {"eu": 25, "us": 12}
    assert all(len(s["points"]) == 20 for s in body["series"])
    assert body["series"][0]["points"][0] == [MINUTE_S - 600, None]
    r = api.get(
        "/api/v1/metrics/query",
        **{
            "metric": "orders.placed",
            "agg": "sum",
            "filter": ["region=us", "service=shop"],
            **WINDOW,
        },
    )
    assert r.status_code == 200, r.text
    assert sum(v for _, v in r.json()["series"][0]["points"] if v is not None) == 12


def test_api_query_histogram_and_exemplars(api: Api) -> None:
    body = api.ok(
        "/api/v1/metrics/query",
        metric="http.server.request.duration",
        agg="p95",
        step="600",
        **WINDOW,
    )
    [series] = body["series"]
    [(t, v)] = [p for p in series["points"] if p[1] is not None]
    lo, hi = bucket_of(exact_quantile(0.95))
    assert lo <= v <= hi and t == MINUTE_S // 600 * 600
    assert body["exemplars"] == [
        {
            "time_ns": t_ns(0, 12),
            "value": 0.8,
            "trace_id": TRACE.hex(),
            "span_id": "0000000000abcdef",
            "labels": {"service": "shop", "http.route": "/a"},
        }
    ]


@pytest.mark.parametrize(
    ("params", "status", "text"),
    [
        ({"metric": "no.such.metric"}, 404, "no metric named"),
        ({"metric": "process.memory.usage", "agg": "p95"}, 400, "does not apply"),
        ({"metric": "orders.placed", "agg": "bogus"}, 400, "unknown aggregation"),
        ({"metric": "orders.placed", "agg": "sum", "step": "90"}, 400, "multiple of 60"),
        ({"metric": "orders.placed", "agg": "sum", "filter": "region"}, 400, "key=value"),
        ({"metric": "orders.placed", "agg": "sum", "step": "soon"}, 400, "step"),
        ({"agg": "sum"}, 400, "metric"),
    ],
)
def test_api_query_errors(api: Api, params: dict[str, str], status: int, text: str) -> None:
    r = api.get("/api/v1/metrics/query", **params, **WINDOW)
    assert r.status_code == status, r.text
    assert text in r.json()["error"]


def test_api_requires_the_token(api: Api) -> None:
    r = api.portal.call(lambda: api.client.get("/api/v1/metrics"))
    assert r.status_code == 401


def test_openapi_documents_the_metric_routes(api: Api) -> None:
    paths = api.ok("/openapi.json")["paths"]
    for p in (
        "/api/v1/metrics",
        "/api/v1/metrics/labels",
        "/api/v1/metrics/label-values",
        "/api/v1/metrics/query",
    ):
        assert "200" in paths[p]["get"]["responses"]


def test_answers_survive_upkeep(api: Api) -> None:
    """Compaction merges the partial rows; coarser tiers (DuckDB) serve whole-hour steps."""
    now = (MINUTE_S + 7200) * NS
    api.store.upkeep(
        now,
        retention_days=3650,
        rollup_retention_days=3650,
        compact_from_s=MINUTE_S - 3600,
        compact_to_s=MINUTE_S + 3600,
    )
    for step in (60, 600, 3600):
        assert sum(values(query(api, "orders.placed", "sum", step_s=step))[()]) == 37
        [count] = [
            sum(v)
            for v in values(
                query(api, "http.server.request.duration", "count", step_s=step)
            ).values()
        ]
        assert count == len(OBS)
    # A point after the tiers' watermark: tier rows and minute rows in one answer.
    late = MetricPoint(t_ns(90, 0), "orders.placed", "counter", "shop", {"region": "eu"}, 1.0)
    assert api.store.submit_metrics(MetricWrite(P, [late])).result(30) == 1
    wide = TimeRange(TR.start_ns, TR.end_ns + 7200 * NS)
    for step in (600, 3600):
        res = mq.query_series(
            api.store, P, mq.SeriesQuery("orders.placed", "sum", step_s=step), wide
        )
        assert sum(values(res)[()]) == 38
    [p95] = values(query(api, "http.server.request.duration", "p95", step_s=3600))[()]
    lo, hi = bucket_of(exact_quantile(0.95))
    assert lo <= p95 <= hi
    assert values(
        query(api, "process.memory.usage", "last", step_s=3600, match=(("service", "shop"),))
    ) == {(): [250.0]}


# ------------------------------------------------------------------ writer (DuckDB)


def test_queue_budget_and_retention(tmp_path: Path, chdb_dir: Path) -> None:
    store = open_store("duckdb", tmp_path, chdb_dir, queue_max_points=5)
    try:
        w = writes()[0]
        assert store.submit_metrics(w).result(30) == 20  # one write always fits
        assert store.queued_points == 0
        store.submit_metrics(MetricWrite(P, w.points[:3])).result(30)
        assert store.stats["committed_points"] == 23
        assert store.metrics.known_series(P, 0) == [("orders.placed", w.points[0].key())]
        # Retention: raw points and rollups older than theirs go, then the series.
        store.upkeep(
            (MINUTE_S + 40 * 86_400) * NS,
            retention_days=7,
            rollup_retention_days=30,
            compact_from_s=MINUTE_S,
            compact_to_s=MINUTE_S + 3600,
        )
        assert mq.list_metrics(store, P, TR) == []
        assert store.metrics.known_series(P, 0) == []
    finally:
        store.close()


def test_queue_full_is_raised(tmp_path: Path, chdb_dir: Path) -> None:
    from heron.server.store.duckdb_store import DuckDBStore

    store = DuckDBStore(tmp_path / "h.duckdb", queue_max_points=5)  # not started: nothing drains
    w = writes()[0]
    store.submit_metrics(w)
    with pytest.raises(QueueFull):
        store.submit_metrics(w)
    assert store.queued_points == 20


def test_describe(api: Api) -> None:
    row = api.store.metrics.describe(P, "process.memory.usage")
    assert row is not None
    assert (row.kind, row.unit, row.series, row.services) == ("gauge", "By", 3, ("mail", "shop"))
    assert api.store.metrics.describe(P, "no.such.metric") is None


@pytest.mark.parametrize("kind", BACKENDS)
def test_at_most_max_groups_the_busiest(kind: str, tmp_path: Path, chdb_dir: Path) -> None:
    from heron.server.store.metrics import MAX_GROUPS

    store = open_store(kind, tmp_path, chdb_dir)
    try:
        n = MAX_GROUPS + 10
        # The busiest: most data points. The first ten queues report once, the rest twice.
        points = [
            MetricPoint(t_ns(0, s), "jobs.done", "counter", "w", {"queue": f"q{i:03d}"}, 1.0)
            for i in range(n)
            for s in ((1,) if i < 10 else (1, 2))
        ]
        assert store.submit_metrics(MetricWrite(P, points)).result(30) == len(points)
        res = mq.query_series(store, P, mq.SeriesQuery("jobs.done", "sum", ("queue",)), TR)
        got = {s.labels["queue"]: sum(v for _, v in s.points if v is not None) for s in res.series}
        assert len(got) == MAX_GROUPS
        assert got == {f"q{i:03d}": 2.0 for i in range(10, n)}
    finally:
        store.close()
