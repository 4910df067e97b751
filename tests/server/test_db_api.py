"""The database and N+1 read API over in-process ASGI, with the real lifespan and store.

Seed (two services, all in the last five minutes): ``GET /orders`` ×10, each one orders
query (2 ms) and six item queries in a loop (10 ms each, 3 rows reported); ``GET /search``
×5, one 250 ms query each, one with an EXPLAIN plan on a child span (as Heron's agent
records it); ``POST /checkout`` ×2 with a failing insert; ``GET /product`` with six
calls to the inventory; the inventory's ``GET /stock/{sku}`` with one MySQL query.

Every test runs on each backend of ``tests/server/backends.py`` (DuckDB, ClickHouse in
process); the analysis job runs on each store, and ``test_analysis_equals_duckdbs``
compares what it found on ClickHouse with what it found on DuckDB.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict
from decimal import Decimal
from pathlib import Path
from typing import Any

import anyio.from_thread
import httpx
import pytest

from heron.server import query
from heron.server.analyze.n_plus_one import db_groups, http_groups
from heron.server.analyze.query_stats import name_fingerprints
from heron.server.app import create_app
from heron.server.config import Config
from heron.server.ingest.pipeline import Pipeline
from heron.server.jobs import analyze_recent
from heron.server.model import SPAN_KIND_CLIENT, SPAN_KIND_INTERNAL, STATUS_ERROR, Span
from heron.server.query import TimeRange, query_detail, top_queries
from heron.server.store.base import Store
from tests.server.backends import BACKENDS, open_store

from .test_api import AUTH, MINUTE_S, MS, NOW_NS, NS, TOKEN, Api, span

ITEMS = "SELECT * FROM order_items WHERE order_id = ?"
ORDERS = "SELECT id, total FROM orders ORDER BY id DESC LIMIT ?"
SEARCH = "SELECT p.id FROM products p WHERE p.name LIKE ? ORDER BY p.id"
T0 = (MINUTE_S - 240) * NS


def request(trace: int, route: str, start: int, dur_ms: float, **kw: Any) -> Span:
    method, _, path = route.partition(" ")
    return span(
        trace,
        1,
        start_ns=start,
        dur_ms=dur_ms,
        name=route,
        http_method=method,
        http_route=path,
        http_status=kw.pop("http_status", 200),
        **kw,
    )


def db(trace: int, span_id: int, start: int, dur_ms: float, sql: str, **kw: Any) -> Span:
    return span(
        trace,
        span_id,
        kw.pop("parent", 1),
        start_ns=start,
        dur_ms=dur_ms,
        name=kw.pop("name", "SELECT"),
        kind=SPAN_KIND_CLIENT,
        db_system=kw.pop("db_system", "postgresql"),
        db_statement=sql,
        **kw,
    )


def seed() -> list[Span]:
    spans: list[Span] = []
    for t in range(10):  # GET /orders: 1 + 6 queries
        start = T0 + t * 20 * NS
        spans += [request(100 + t, "GET /orders", start, 100)]
        spans += [
            db(100 + t, 2, start + MS, 2, "SELECT id, total FROM orders ORDER BY id DESC LIMIT 20")
        ]
        spans += [
            db(
                100 + t,
                10 + i,
                start + (5 + i * 11) * MS,
                10,
                f"SELECT * FROM order_items WHERE order_id = {t * 10 + i}",  # noqa: S608 - span data, never run
                attributes={"db.response.returned_rows": 3},
            )
            for i in range(6)
        ]
    for t in range(5):  # GET /search: one slow query
        start = T0 + 30 * NS + t * 30 * NS
        spans += [request(200 + t, "GET /search", start, 300)]
        spans += [
            db(
                200 + t,
                2,
                start + MS,
                250,
                "SELECT p.id FROM products p WHERE p.name LIKE '%lamp%' ORDER BY p.id",
            )
        ]
    spans += [
        span(
            204,
            3,
            2,
            start_ns=T0 + 150 * NS + 260 * MS,
            dur_ms=3,
            name="EXPLAIN SELECT products",
            kind=SPAN_KIND_INTERNAL,
            attributes={
                "heron.db.plan": "SCAN p\nSEARCH x USING INDEX i (name='lamp')",
                "heron.db.plan.format": "text",
            },
        )
    ]
    for t in range(2):  # POST /checkout: a failing insert
        start = T0 + 40 * NS + t * NS
        spans += [request(300 + t, "POST /checkout", start, 20, http_status=500)]
        spans += [
            db(
                300 + t,
                2,
                start + MS,
                5,
                "INSERT INTO payments (amount) VALUES (42)",
                status=STATUS_ERROR,
            )
        ]
    start = T0 + 50 * NS  # GET /product: six calls to the inventory
    spans += [request(400, "GET /product", start, 200)]
    spans += [
        span(
            400,
            10 + i,
            1,
            start_ns=start + (1 + i * 20) * MS,
            dur_ms=15,
            name="GET",
            kind=SPAN_KIND_CLIENT,
            http_method="GET",
            attributes={"url.full": f"http://inventory:8001/stock/{i}"},
        )
        for i in range(6)
    ]
    spans += [
        request(400, "GET /stock/{sku}", start + (2 + i * 20) * MS, 12, service="inventory")
        for i in range(1)
    ]
    spans += [
        db(
            400,
            90,
            start + 3 * MS,
            1,
            "SELECT qty FROM stock WHERE sku = %s",
            db_system="mysql",
            service="inventory",
        )
    ]
    return spans


@pytest.fixture(scope="module", params=BACKENDS)
def api(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, chdb_dir: Path
) -> Iterator[Api]:
    data: Path = tmp_path_factory.mktemp("db-api")
    config = Config(data_dir=str(data), api_token=TOKEN, ingest_key="hk_db_api_test_key")
    store = open_store(request.param, data, chdb_dir)
    app = create_app(config, store=store, clock=lambda: NOW_NS, maintenance_interval_s=3600)
    with (
        anyio.from_thread.start_blocking_portal() as portal,
        portal.wrap_async_context_manager(app.router.lifespan_context(app)),
    ):
        Pipeline(store).submit_spans(1, seed()).result(30)
        analyze_recent(store, NOW_NS, window_s=600)  # the seed spans five minutes
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://heron")
        try:
            yield Api(portal, client, app)
        finally:
            portal.call(client.aclose)


def queries(api: Api, **params: Any) -> list[dict[str, Any]]:
    return api.ok("/api/v1/db/queries", **params)["queries"]  # type: ignore[no-any-return]


def fingerprint_of(api: Api, display: str) -> str:
    return next(q["fingerprint"] for q in queries(api) if q["display"] == display)


@pytest.mark.parametrize(
    "path",
    ["/api/v1/db/queries", f"/api/v1/db/queries/{0:016x}", "/api/v1/db/slow", "/api/v1/n-plus-one"],
)
def test_every_route_requires_the_api_token(api: Api, path: str) -> None:
    for headers in (
        {},
        {"Authorization": "Bearer wrong"},
        {"Authorization": "Bearer hk_db_api_test_key"},
    ):
        r = api.get(path, auth=False, headers=headers)
        assert r.status_code == 401, (headers, r.text)
    assert api.get(path, headers=AUTH).status_code in (200, 404)


# ------------------------------------------------------------------------- top queries


def test_top_queries(api: Api) -> None:
    body = api.ok("/api/v1/db/queries")
    assert (body["service"], body["endpoint"], body["db_system"]) == (None, None, None)
    rows = body["queries"]
    assert [q["display"] for q in rows] == [
        SEARCH,
        ITEMS,
        ORDERS,
        "INSERT INTO payments (amount) VALUES (?)",
        "SELECT qty FROM stock WHERE sku = %s",
    ]
    search, items, orders, insert, stock = rows
    assert set(items) == {
        "fingerprint",
        "service",
        "db_system",
        "display",
        "calls",
        "total_time_ms",
        "mean_ms",
        "p95_ms",
        "max_ms",
        "errors",
        "error_rate",
        "rows_per_call",
        "db_time_share",
        "endpoint_time_share",
    }
    assert len(items["fingerprint"]) == 16 and int(items["fingerprint"], 16) >= 0
    assert (items["service"], items["db_system"], items["calls"]) == ("shop", "postgresql", 60)
    assert items["total_time_ms"] == pytest.approx(600)
    assert items["mean_ms"] == pytest.approx(10)
    assert items["p95_ms"] == pytest.approx(10, rel=0.1)  # from ~9%-wide buckets
    assert items["max_ms"] == pytest.approx(10)
    assert (items["rows_per_call"], orders["rows_per_call"]) == (3.0, None)
    assert (insert["errors"], insert["error_rate"]) == (2, 1.0)
    assert (stock["service"], stock["db_system"]) == ("inventory", "mysql")
    assert search["total_time_ms"] == pytest.approx(1250)
    total = sum(q["total_time_ms"] for q in rows)
    assert sum(q["db_time_share"] for q in rows) == pytest.approx(1)
    assert items["db_time_share"] == pytest.approx(600 / total)
    assert all(q["endpoint_time_share"] is None for q in rows)


def test_top_queries_filters_sort_and_limit(api: Api) -> None:
    assert [q["display"] for q in queries(api, service="inventory")] == [
        "SELECT qty FROM stock WHERE sku = %s"
    ]
    assert [q["service"] for q in queries(api, db_system="mysql")] == ["inventory"]
    assert [q["calls"] for q in queries(api, sort="calls", order="asc")] == [1, 2, 5, 10, 60]
    assert len(queries(api, limit=2)) == 2
    # An endpoint's breakdown: where GET /orders spends its time (10 × 100 ms).
    breakdown = queries(api, endpoint="GET /orders")
    assert [(q["display"], q["endpoint_time_share"]) for q in breakdown] == [
        (ITEMS, pytest.approx(0.6)),
        (ORDERS, pytest.approx(0.02)),
    ]
    assert queries(api, endpoint="GET /nothing") == []
    r = api.get("/api/v1/db/queries", params={"sort": "name"})
    assert r.status_code == 400 and "total_time_ms" in r.json()["error"]
    assert api.get("/api/v1/db/queries", params={"limit": 0}).status_code == 400


def test_old_ranges_are_empty(api: Api) -> None:
    assert queries(api, **{"from": str(MINUTE_S - 7200), "to": str(MINUTE_S - 3600)}) == []


# ------------------------------------------------------------------------ query detail


def test_query_detail(api: Api) -> None:
    fp = fingerprint_of(api, ITEMS)
    body = api.ok(f"/api/v1/db/queries/{fp}", **{"from": str(MINUTE_S - 360)})
    assert (body["fingerprint"], body["display"], body["db_system"]) == (fp, ITEMS, "postgresql")
    (svc,) = body["services"]
    assert (svc["service"], svc["calls"], svc["rows_per_call"]) == ("shop", 60, 3.0)
    (ep,) = body["endpoints"]
    assert ep == {
        "service": "shop",
        "endpoint": "GET /orders",
        "calls": 60,
        "total_time_ms": pytest.approx(600),
        "mean_ms": pytest.approx(10),
        "requests": 10,
        "calls_per_request": 6.0,
        "endpoint_time_share": pytest.approx(0.6),
    }
    points = body["timeseries"]
    assert [p["t"] for p in points] == list(range(MINUTE_S - 360, MINUTE_S + 1, 60))
    assert sum(p["calls"] for p in points) == 60
    expected = {(T0 + t * 20 * NS) // NS // 60 * 60 for t in range(10)}
    assert {p["t"] for p in points if p["calls"]} == expected
    slowest = body["slowest"]
    assert len(slowest) == 10
    first = slowest[0]
    assert first["endpoint"] == "GET /orders" and first["service"] == "shop"
    assert first["statement"] == ITEMS and first["display"] == ITEMS
    assert first["rows"] == 3 and first["error"] is False and first["fingerprint"] == fp
    assert len(first["trace_id"]) == 32 and len(first["span_id"]) == 16
    assert first["plan"] is None and first["plan_format"] is None
    assert len(api.ok(f"/api/v1/db/queries/{fp}", samples=2)["slowest"]) == 2


def test_query_detail_shows_the_plan_of_a_slow_execution(api: Api) -> None:
    fp = fingerprint_of(api, SEARCH)
    slowest = api.ok(f"/api/v1/db/queries/{fp}")["slowest"]
    planned = [s for s in slowest if s["plan"]]
    assert len(planned) == 1
    assert planned[0]["trace_id"] == f"{204:032x}"
    assert planned[0]["plan_format"] == "text"
    assert planned[0]["plan"] == "SCAN p\nSEARCH x USING INDEX i (name='?')"  # scrubbed


def test_query_detail_errors(api: Api) -> None:
    r = api.get(f"/api/v1/db/queries/{1:016x}")
    assert r.status_code == 404 and "0000000000000001" in r.json()["error"]
    for bad in ("xyz", "1" * 17):
        r = api.get(f"/api/v1/db/queries/{bad}")
        assert r.status_code == 400, bad
    fp = fingerprint_of(api, ITEMS)
    assert api.get(f"/api/v1/db/queries/{fp}", params={"step_s": 90}).status_code == 400
    assert api.get(f"/api/v1/db/queries/{fp}", params={"samples": 0}).status_code == 400


# -------------------------------------------------------------------- slow query log


def test_slow_query_log_call_by_call(api: Api) -> None:
    body = api.ok("/api/v1/db/slow/calls")
    assert body["threshold_ms"] == 100.0
    rows = body["queries"]
    assert [int(q["trace_id"], 16) for q in rows] == [204, 203, 202, 201, 200]  # newest first
    assert all(q["endpoint"] == "GET /search" and q["duration_ms"] == 250 for q in rows)
    assert rows[0]["plan"] is not None and rows[1]["plan"] is None
    quick = api.ok("/api/v1/db/slow/calls", threshold_ms=4)["queries"]
    assert {q["display"] for q in quick} == {
        SEARCH,
        ITEMS,
        "INSERT INTO payments (amount) VALUES (?)",
    }
    orders = api.ok("/api/v1/db/slow/calls", threshold_ms=0, endpoint="GET /orders", limit=1000)
    assert len(orders["queries"]) == 70
    assert (
        api.ok("/api/v1/db/slow/calls", threshold_ms=0, db_system="mysql")["queries"][0]["service"]
        == "inventory"
    )
    assert len(api.ok("/api/v1/db/slow/calls", threshold_ms=0, limit=3)["queries"]) == 3
    assert api.get("/api/v1/db/slow/calls", params={"threshold_ms": -1}).status_code == 400
    search = api.ok("/api/v1/db/slow")["groups"][0]["fingerprint"]
    one = api.ok("/api/v1/db/slow/calls", threshold_ms=0, fingerprint=search)
    assert one["fingerprint"] == search and len(one["queries"]) == 5
    assert api.get("/api/v1/db/slow/calls", params={"fingerprint": "xyz"}).status_code == 400


def test_slow_query_log_groups_calls_by_query_shape(api: Api) -> None:
    body = api.ok("/api/v1/db/slow")
    assert (body["threshold_ms"], body["sort"]) == (100.0, "total_time_ms")
    (search,) = body["groups"]  # five identical slow searches: one row
    assert (search["display"], search["count"], search["errors"]) == (SEARCH, 5, 0)
    assert (search["max_ms"], search["p95_ms"], search["total_time_ms"]) == (250, 250, 1250)
    assert search["services"] == ["shop"] and search["endpoints"] == ["GET /search"]
    assert search["first_seen_ns"] == T0 + 30 * NS + MS
    assert search["last_seen_ns"] == T0 + 150 * NS + MS
    assert int(search["example_trace_id"], 16) in range(200, 205)
    # One call of the five has an EXPLAIN child span: the group shows its plan.
    assert search["plan"].startswith("SCAN p") and search["plan_format"] == "text"
    every = api.ok("/api/v1/db/slow", threshold_ms=0, sort="count")["groups"]
    assert [(g["display"], g["count"]) for g in every][:3] == [
        (ITEMS, 60),
        ("SELECT id, total FROM orders ORDER BY id DESC LIMIT ?", 10),
        (SEARCH, 5),
    ]
    failing = next(g for g in every if g["display"].startswith("INSERT INTO payments"))
    assert (failing["count"], failing["errors"], failing["plan"]) == (2, 2, None)
    orders = api.ok("/api/v1/db/slow", threshold_ms=0, endpoint="GET /orders")["groups"]
    assert sum(g["count"] for g in orders) == 70
    mysql = api.ok("/api/v1/db/slow", threshold_ms=0, db_system="mysql")["groups"]
    assert [g["services"] for g in mysql] == [["inventory"]]
    assert len(api.ok("/api/v1/db/slow", threshold_ms=0, limit=2)["groups"]) == 2
    assert api.get("/api/v1/db/slow", params={"sort": "rows"}).status_code == 400
    assert api.get("/api/v1/db/slow", params={"threshold_ms": -1}).status_code == 400


# ------------------------------------------------------------------------------ N+1


def test_n_plus_one_findings(api: Api) -> None:
    body = api.ok("/api/v1/n-plus-one")
    assert (body["min_count"], body["min_total_ms"]) == (5, 50.0)
    db, http = body["findings"]
    assert db == {
        "service": "shop",
        "endpoint": "GET /orders",
        "kind": "db",
        "fingerprint": fingerprint_of(api, ITEMS),
        "db_system": "postgresql",
        "display": ITEMS,
        "occurrences": 10,
        "requests": 10,
        "calls": 60,
        "avg_repeats": 6.0,
        "max_repeats": 6,
        "total_time_ms": pytest.approx(600),
        "wasted_time_ms": pytest.approx(500),
        "example_trace_id": db["example_trace_id"],
        "example_span_id": f"{10:016x}",
        "last_seen_ns": T0 + 180 * NS + 5 * MS,
    }
    assert 100 <= int(db["example_trace_id"], 16) < 110
    assert (http["kind"], http["endpoint"], http["display"]) == (
        "http",
        "GET /product",
        "GET http://inventory:8001/stock/{id}",
    )
    assert (http["calls"], http["total_time_ms"], http["db_system"]) == (6, 90.0, None)


def test_n_plus_one_filters(api: Api) -> None:
    def found(**params: Any) -> list[tuple[str, str]]:
        return [
            (f["endpoint"], f["kind"]) for f in api.ok("/api/v1/n-plus-one", **params)["findings"]
        ]

    assert found(kind="db") == [("GET /orders", "db")]
    assert found(kind="http") == [("GET /product", "http")]
    assert found(endpoint="GET /product") == [("GET /product", "http")]
    assert found(service="inventory") == []
    assert found(min_total_ms=61) == [("GET /product", "http")]
    assert found(min_count=7) == []
    assert found(sort="calls") == [("GET /orders", "db"), ("GET /product", "http")]
    assert api.get("/api/v1/n-plus-one", params={"kind": "sql"}).status_code == 400
    assert api.get("/api/v1/n-plus-one", params={"min_count": 1}).status_code == 400
    assert api.get("/api/v1/n-plus-one", params={"sort": "endpoint"}).status_code == 400


@pytest.mark.parametrize("kind", BACKENDS)
def test_query_detail_overall_p95_merges_the_services_histograms(
    kind: str, tmp_path: Path, chdb_dir: Path
) -> None:
    """One query from two services: 980 fast calls in one, 20 slow in the other. The
    overall p95 is that of all 1,000 calls (fast), not the larger of the two services'."""
    store = open_store(kind, tmp_path, chdb_dir)
    try:
        spans: list[Span] = []
        for service, calls, dur_ms in (("shop", 980, 2.0), ("admin", 20, 100.0)):
            for i in range(calls):
                trace = hash((service, i)) & (2**63 - 1)
                start = T0 + i * 100 * MS
                spans += [request(trace, "GET /report", start, dur_ms + 5, service=service)]
                spans += [db(trace, 2, start + MS, dur_ms, ITEMS, service=service)]
        Pipeline(store).submit_spans(1, spans).result(30)
        analyze_recent(store, NOW_NS, window_s=600)
        (fp,) = {int(q.fingerprint, 16) for q in top_queries(store, 1, TimeRange(T0, NOW_NS))}
        detail = query_detail(store, 1, TimeRange(T0 - 60 * NS, NOW_NS), fp)
        assert detail is not None and detail.overall is not None
        by_service = {s.service: s for s in detail.services}
        assert by_service["admin"].p95_ms == pytest.approx(100, rel=0.06)
        assert by_service["shop"].p95_ms == pytest.approx(2, rel=0.06)
        overall = detail.overall
        assert overall.service == "" and overall.calls == 1000
        assert overall.p95_ms == pytest.approx(2, rel=0.06)
        assert overall.max_ms == pytest.approx(100)
        assert overall.mean_ms == pytest.approx((980 * 2 + 20 * 100) / 1000)
        assert overall.total_time_ms == pytest.approx(980 * 2 + 20 * 100)
    finally:
        store.close()


# ------------------------------------------------- the analysis job, backend against backend

# Fields chosen among ties: "the slowest call" of sixty equally slow ones, "the occurrence
# that took longest" of ten equal ones — each engine may pick any of them.
_TIE_PICKS = {"example_trace_id", "example_span_id", "statement"}


def _plain(value: Any) -> Any:
    """Answers as comparable values: dataclasses as dicts without tie picks, exact
    integers as int, floats to nine significant digits (sums may add in another order)."""
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if hasattr(value, "__dataclass_fields__"):
        value = {k: v for k, v in asdict(value).items() if k not in _TIE_PICKS}
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items() if k not in _TIE_PICKS}
    if isinstance(value, Decimal):
        return int(value)
    if isinstance(value, float):
        return float(f"{value:.9g}")
    return value


def _analysis_reads(store: Store) -> dict[str, Any]:
    """What the analysis job reads from the store, as it would use it."""
    lo_s = (NOW_NS - 600 * NS) // (60 * NS) * 60
    lo_ns, since = lo_s * NS, lo_s * NS - 600 * NS
    rollup = store.db.query_stat_rollup(lo_s, since).to_pylist()
    found = db_groups(store.db.repeated_queries(since, lo_ns, 5))
    found += http_groups(store.db.repeated_calls(since, 5), lo_ns, 5)
    traces = [g["trace_id"] for g in found]
    return {
        "rollup": sorted((_plain(sorted(r.items())) for r in rollup), key=repr),
        "names": sorted(name_fingerprints(store.db.unnamed_fingerprints(lo_ns))),
        "groups": sorted((_plain(sorted(g.items())) for g in found), key=repr),
        "entries": sorted(store.db.entry_spans(since, traces)),
    }


def _answers(store: Store) -> dict[str, Any]:
    """Every database-monitoring answer of the query layer, over the seed."""
    hour = TimeRange(T0 - 60 * NS, NOW_NS)
    top = query.top_queries(store, 1, hour)
    fps = [int(q.fingerprint, 16) for q in top]
    return {
        "top": top,
        "by_endpoint": query.top_queries(store, 1, hour, endpoint="GET /orders"),
        "details": [query.query_detail(store, 1, hour, fp, now_ns=NOW_NS) for fp in fps],
        "samples": query.query_samples(store, 1, hour, order="newest", limit=100),
        "slow": query.slow_queries(store, 1, hour, threshold_ms=0, limit=100),
        "groups": [
            query.slow_query_groups(store, 1, hour, threshold_ms=0, sort=sort)
            for sort in ("total_time_ms", "count", "max_ms", "p95_ms", "last_seen")
        ],
        "findings": query.n_plus_one_findings(store, 1, hour, min_total_ms=0),
        "has_stats": store.db.has_query_stats(),
    }


@pytest.mark.parametrize("kind", [k for k in BACKENDS if k != "duckdb"])
def test_analysis_equals_duckdbs(kind: str, tmp_path: Path, chdb_dir: Path) -> None:
    """The analysis job run on another backend finds what it finds on DuckDB: the same
    inputs read, then the same statistics, slow queries and N+1 findings."""
    stores = {k: open_store(k, tmp_path / k, chdb_dir) for k in ("duckdb", kind)}
    try:
        for store in stores.values():
            Pipeline(store).submit_spans(1, seed()).result(30)
        reference, other = (_analysis_reads(s) for s in stores.values())
        assert reference["rollup"] and reference["groups"] and reference["names"]
        assert other == reference
        for store in stores.values():
            assert analyze_recent(store, NOW_NS, window_s=600) == 11
            analyze_recent(store, NOW_NS, window_s=600)  # a re-run replaces, adds nothing
        reference, other = (_plain(_answers(s)) for s in stores.values())
        assert [q["calls"] for q in reference["top"]] == [5, 60, 10, 2, 1]
        assert len(reference["findings"]) == 2 and len(reference["samples"]) == 78
        for key in ("samples", "slow"):  # newest first; calls started at the same
            # nanosecond (two in the seed) may come in either order
            assert [c["start_ns"] for c in other[key]] == [c["start_ns"] for c in reference[key]]
            assert sorted(other.pop(key), key=repr) == sorted(reference.pop(key), key=repr)
        assert other == reference
    finally:
        for store in stores.values():
            store.close()
