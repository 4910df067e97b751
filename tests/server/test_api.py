"""The JSON read API over in-process ASGI (httpx.ASGITransport), with the real lifespan."""

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
from heron.server.ingest.pipeline import Pipeline
from heron.server.model import (
    SPAN_KIND_CLIENT,
    SPAN_KIND_SERVER,
    STATUS_ERROR,
    STATUS_UNSET,
    Span,
)
from tests.server.backends import BACKENDS, open_store

NS = 1_000_000_000
MS = 1_000_000
MINUTE_S = 1_700_000_040  # a minute boundary
NOW_NS = (MINUTE_S + 30) * NS
TOKEN = "ht_api_test_token_0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
ROUTE = "GET /items/{id}"


@dataclass
class Api:
    """A synchronous face on an AsyncClient whose app runs in a blocking portal."""

    portal: anyio.from_thread.BlockingPortal
    client: httpx.AsyncClient
    app: FastAPI

    def get(self, path: str, *, auth: bool = True, **kw: Any) -> httpx.Response:
        headers = {**(AUTH if auth else {}), **kw.pop("headers", {})}
        return self.portal.call(lambda: self.client.get(path, headers=headers, **kw))

    def ok(self, path: str, **params: Any) -> Any:
        r = self.get(path, params=params)
        assert r.status_code == 200, r.text
        return r.json()


def span(
    trace: int,
    span_id: int,
    parent: int = 0,
    *,
    start_ns: int,
    dur_ms: float,
    name: str,
    kind: int = SPAN_KIND_SERVER,
    status: int = STATUS_UNSET,
    service: str = "shop",
    env: str = "prod",
    release: str = "1.0",
    **kw: Any,
) -> Span:
    return Span(
        trace_id=trace.to_bytes(16, "big"),
        span_id=span_id,
        parent_id=parent,
        start_ns=start_ns,
        duration_ns=round(dur_ms * MS),
        name=name,
        kind=kind,
        status=status,
        status_message="",
        service=service,
        environment=env,
        release=release,
        resource={"service.name": service},
        **kw,
    )


def seed() -> list[Span]:
    """100 requests of GET /items/{id} (1..100 ms, minutes -1..-4), a two-service trace."""
    spans = []
    for i in range(1, 101):
        start = (MINUTE_S - 60 * (1 + i % 4)) * NS + i * 10 * MS
        spans.append(
            span(
                i,
                1,
                start_ns=start,
                dur_ms=i,
                name=ROUTE,
                http_method="GET",
                http_route="/items/{id}",
                http_status=500 if i % 20 == 0 else 200,
                release="1.0" if i <= 60 else "2.0",
                attributes={"customer.plan": "pro" if i % 2 else "free"},
            )
        )
    t0 = (MINUTE_S - 120) * NS + 555 * MS
    spans += [
        span(
            500,
            0x10,
            start_ns=t0,
            dur_ms=80,
            name="checkout",
            kind=SPAN_KIND_SERVER,
            status=STATUS_ERROR,
        ),
        span(
            500,
            0x11,
            0x10,
            start_ns=t0 + MS,
            dur_ms=60,
            name="POST",
            kind=SPAN_KIND_CLIENT,
            http_method="POST",
            http_status=201,
        ),
        span(
            500,
            0x20,
            0x11,
            start_ns=t0 + 2 * MS,
            dur_ms=50,
            name="POST /pay",
            service="payments",
            env="staging",
            http_method="POST",
            http_route="/pay",
            http_status=201,
        ),
        span(
            500,
            0x21,
            0x20,
            start_ns=t0 + 3 * MS,
            dur_ms=20,
            name="UPDATE accounts",
            kind=SPAN_KIND_CLIENT,
            service="payments",
            env="staging",
            db_system="postgresql",
            db_statement="UPDATE accounts SET balance = ?",
        ),
    ]
    return spans


@pytest.fixture(scope="module", params=BACKENDS)
def api(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, chdb_dir: Path
) -> Iterator[Api]:
    """The API over each backend (conformance): the same requests, the same answers."""
    data: Path = tmp_path_factory.mktemp("api")
    config = Config(
        data_dir=str(data), api_token=TOKEN, ingest_key="hk_api_test_key", apdex_t_ms=50.0
    )
    store = open_store(request.param, data, chdb_dir)
    app = create_app(config, store=store, clock=lambda: NOW_NS, maintenance_interval_s=3600)
    with (
        anyio.from_thread.start_blocking_portal() as portal,
        portal.wrap_async_context_manager(app.router.lifespan_context(app)),
    ):
        Pipeline(store).submit_spans(1, seed()).result(30)
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://heron")
        try:
            yield Api(portal, client, app)
        finally:
            portal.call(client.aclose)


def exact_quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(math.ceil(q * len(ordered)) - 1, 0)]


def exact_apdex(values: list[float], t: float) -> float:
    return (sum(v <= t for v in values) + sum(t < v <= 4 * t for v in values) / 2) / len(values)


# -------------------------------------------------------------------------------- auth


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/services",
        "/api/v1/services/shop/endpoints",
        "/api/v1/services/shop/timeseries",
        "/api/v1/traces",
        f"/api/v1/traces/{500:032x}",
    ],
)
def test_every_route_requires_the_api_token(api: Api, path: str) -> None:
    for headers in (
        {},
        {"Authorization": "Bearer wrong"},
        {"Authorization": f"Basic {TOKEN}"},
        {"Authorization": "Bearer "},
        {"Authorization": "hk_api_test_key"},
    ):
        r = api.get(path, auth=False, headers=headers)
        assert r.status_code == 401, (headers, r.text)
        assert set(r.json()) == {"error"} and r.json()["error"]
        assert r.headers["www-authenticate"] == "Bearer"
    # The ingest key is not an API token.
    r = api.get(path, auth=False, headers={"Authorization": "Bearer hk_api_test_key"})
    assert r.status_code == 401
    assert api.get(path).status_code == 200


def test_auth_is_checked_before_parameters(api: Api) -> None:
    r = api.get("/api/v1/traces", auth=False, params={"limit": "lots"})
    assert r.status_code == 401


# ---------------------------------------------------------------------------- services


def test_services(api: Api) -> None:
    body = api.ok("/api/v1/services")
    assert body["from"] == "2023-11-14T21:14:30Z" and body["to"] == "2023-11-14T22:14:30Z"
    assert body["apdex_t_ms"] == 50.0  # the config default
    assert [s["service"] for s in body["services"]] == ["shop", "payments"]
    shop = body["services"][0]
    assert set(shop) >= {
        "service",
        "requests",
        "rpm",
        "errors",
        "error_rate",
        "p50_ms",
        "p95_ms",
        "p99_ms",
        "apdex",
    }
    durations = [*range(1, 101), 80]
    assert shop["requests"] == 101
    assert shop["errors"] == 5 + 1  # five 500s and the failed checkout
    assert shop["error_rate"] == pytest.approx(6 / 101)
    # Over the time the shop was seen: from its first minute (4 before the current one)
    # to the range's end, half-way through the current minute.
    assert shop["rpm"] == pytest.approx(101 / 4.5, abs=1e-3)
    assert shop["p50_ms"] == pytest.approx(exact_quantile(durations, 0.5), rel=0.05)
    assert shop["p95_ms"] == pytest.approx(exact_quantile(durations, 0.95), rel=0.05)
    assert shop["p99_ms"] == pytest.approx(exact_quantile(durations, 0.99), rel=0.05)
    assert shop["apdex"] == pytest.approx(exact_apdex(durations, 50), abs=0.02)
    t10 = api.ok("/api/v1/services", apdex_t_ms=10)["services"][0]["apdex"]
    assert t10 == pytest.approx(exact_apdex(durations, 10), abs=0.02)


def test_services_filters_and_sort(api: Api) -> None:
    staging = api.ok("/api/v1/services", environment="staging")
    assert [s["service"] for s in staging["services"]] == ["payments"]
    assert staging["environment"] == "staging"
    assert len(api.ok("/api/v1/services", environment="")["services"]) == 2
    by_name = api.ok("/api/v1/services", sort="service")["services"]
    assert [s["service"] for s in by_name] == ["payments", "shop"]
    desc = api.ok("/api/v1/services", sort="service", order="desc")["services"]
    assert [s["service"] for s in desc] == ["shop", "payments"]


def test_time_range_params(api: Api) -> None:
    # Minute -1 only (requests with i % 4 == 0), as ISO and as Unix seconds.
    for frm, to in (
        ("2023-11-14T22:13:00Z", "2023-11-14T22:14:00Z"),
        ("2023-11-14T22:13:00", "2023-11-14T22:14:00+00:00"),
        (str(MINUTE_S - 60), str(MINUTE_S)),
        (f"{MINUTE_S - 60}.0", f"{MINUTE_S}.000"),
    ):
        body = api.ok("/api/v1/services", **{"from": frm, "to": to})
        assert body["from"] == "2023-11-14T22:13:00Z" and body["to"] == "2023-11-14T22:14:00Z"
        assert body["services"][0]["requests"] == 25
        assert body["services"][0]["rpm"] == 25.0
    # Only 'to': one hour before it. Long ago: nothing.
    body = api.ok("/api/v1/services", to="2023-11-14T20:00:00Z")
    assert body["from"] == "2023-11-14T19:00:00Z" and body["services"] == []


def test_relative_time_params(api: Api) -> None:
    now = api.ok("/api/v1/services", to="now")["to"]
    for frm, delta in (("-90s", 90), ("-15m", 900), ("now-1h", 3600), ("-2d", 172_800)):
        body = api.ok("/api/v1/services", **{"from": frm, "to": "now"})
        assert body["to"] == now
        assert parse_iso(body["to"]) - parse_iso(body["from"]) == delta
    assert api.get("/api/v1/services", params={"from": "-1y"}).status_code == 400


def parse_iso(text: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


# --------------------------------------------------------------------------- endpoints


def test_endpoints(api: Api) -> None:
    body = api.ok("/api/v1/services/shop/endpoints")
    assert body["service"] == "shop"
    names = [e["endpoint"] for e in body["endpoints"]]
    assert names == [ROUTE, "checkout"]  # "checkout" has no route: the span name
    items = body["endpoints"][0]
    assert set(items) >= {
        "endpoint",
        "requests",
        "rpm",
        "errors",
        "error_rate",
        "p50_ms",
        "p95_ms",
        "p99_ms",
        "apdex",
        "total_time_ms",
        "time_share",
    }
    assert (items["requests"], items["errors"]) == (100, 5)
    assert items["p50_ms"] == pytest.approx(50, rel=0.05)
    assert items["total_time_ms"] == pytest.approx(5050)
    assert items["time_share"] == pytest.approx(5050 / 5130)
    v2 = api.ok("/api/v1/services/shop/endpoints", release="2.0")["endpoints"]
    assert [(e["endpoint"], e["requests"]) for e in v2] == [(ROUTE, 40)]
    r = api.get("/api/v1/services/nope/endpoints")
    assert r.status_code == 404 and r.json() == {
        "error": "no service named 'nope' has reported requests"
    }
    assert api.ok("/api/v1/services/shop/endpoints", to="2023-11-14T20:00:00Z")["endpoints"] == []
    by_time = api.ok("/api/v1/services/shop/endpoints", sort="p50_ms", order="asc")["endpoints"]
    assert [e["endpoint"] for e in by_time] == [ROUTE, "checkout"]


# -------------------------------------------------------------------------- timeseries


def test_timeseries(api: Api) -> None:
    body = api.ok(
        "/api/v1/services/shop/timeseries", endpoint=ROUTE, **{"from": str(MINUTE_S - 360)}
    )
    assert (body["service"], body["endpoint"], body["step_s"]) == ("shop", ROUTE, 60)
    points = body["points"]
    assert [p["t"] for p in points] == list(range(MINUTE_S - 360, MINUTE_S + 1, 60))
    by_t = {p["t"]: p for p in points}
    for m in (1, 2, 3, 4):
        p = by_t[MINUTE_S - 60 * m]
        assert p["requests"] == 25
        ids = [i for i in range(1, 101) if 1 + i % 4 == m]
        assert p["errors"] == sum(i % 20 == 0 for i in ids)
        assert p["error_rate"] == pytest.approx(p["errors"] / 25)
        assert p["p50_ms"] == pytest.approx(exact_quantile(ids, 0.5), rel=0.05)
    for m in (0, 5, 6):
        p = by_t[MINUTE_S - 60 * m]
        assert (p["requests"], p["errors"], p["p50_ms"], p["p95_ms"]) == (0, 0, None, None)
    # The current minute is still filling: only it is partial.
    assert [p["t"] for p in points if p["partial"]] == [MINUTE_S]
    whole = api.ok("/api/v1/services/shop/timeseries", step_s=120, **{"from": str(MINUTE_S - 360)})
    assert whole["endpoint"] is None and whole["step_s"] == 120
    assert sum(p["requests"] for p in whole["points"]) == 101
    assert all(p["t"] % 120 == 0 for p in whole["points"])


# ------------------------------------------------------------------------------ traces


def trace_ints(body: Any) -> set[int]:
    return {int(t["trace_id"], 16) for t in body["traces"]}


def test_trace_search(api: Api) -> None:
    body = api.ok("/api/v1/traces")
    assert len(body["traces"]) == 50
    starts = [t["start_ns"] for t in body["traces"]]
    assert starts == sorted(starts, reverse=True)
    first = body["traces"][0]
    assert set(first) >= {
        "trace_id",
        "start_ns",
        "duration_ms",
        "root_service",
        "root_name",
        "span_count",
        "error",
        "services",
        "match",
    }
    assert set(first["match"]) >= {"span_id", "service", "name", "duration_ms"}
    payments = api.ok("/api/v1/traces", service="payments")["traces"]
    assert [t["trace_id"] for t in payments] == [f"{500:032x}"]
    t = payments[0]
    assert (t["root_service"], t["root_name"], t["span_count"], t["error"]) == (
        "shop",
        "checkout",
        4,
        True,
    )
    assert t["services"] == ["payments", "shop"]
    assert t["match"] == {
        "span_id": f"{0x20:016x}",
        "service": "payments",
        "name": "POST /pay",
        "start_ns": t["start_ns"] + 2 * MS,
        "duration_ms": 50.0,
    }
    assert t["duration_ms"] == 80.0


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"endpoint": ROUTE, "min_duration_ms": "95"}, {96, 97, 98, 99, 100, 95}),
        ({"endpoint": "checkout"}, {500}),
        ({"endpoint": "POST /pay"}, {500}),
        ({"service": "shop", "max_duration_ms": "3"}, {1, 2, 3}),
        ({"status": "error", "limit": "1000"}, {20, 40, 60, 80, 100, 500}),
        ({"status": "ok", "min_duration_ms": "98"}, {98, 99}),
        ({"attr": "http.status_code=500", "limit": "1000"}, {20, 40, 60, 80, 100}),
        ({"attr": "http.response.status_code=201"}, {500}),
        ({"attr": "http.method=POST"}, {500}),
        ({"attr": "http.request.method=POST"}, {500}),
        ({"attr": "db.statement=UPDATE accounts SET balance = ?"}, {500}),
        ({"attr": "db.query.text=UPDATE accounts SET balance = ?"}, {500}),
        ({"attr": ["customer.plan=pro", "http.status_code=500"]}, set()),
        (
            {"attr": ["customer.plan=free", "http.status_code=500"], "limit": "1000"},
            {20, 40, 60, 80, 100},
        ),
        ({"environment": "staging"}, {500}),
    ],
)
def test_trace_search_filters(api: Api, params: dict[str, Any], expected: set[int]) -> None:
    assert trace_ints(api.ok("/api/v1/traces", **params)) == expected


def test_trace_detail(api: Api) -> None:
    body = api.ok(f"/api/v1/traces/{500:032X}")  # upper case accepted
    assert body["trace_id"] == f"{500:032x}"
    assert (body["span_count"], body["services"], body["duration_ms"]) == (
        4,
        ["payments", "shop"],
        80.0,
    )
    assert body["roots"] == [f"{0x10:016x}"]
    spans = body["spans"]
    assert [(s["span_id"], s["parent_id"], s["depth"]) for s in spans] == [
        (f"{0x10:016x}", None, 0),
        (f"{0x11:016x}", f"{0x10:016x}", 1),
        (f"{0x20:016x}", f"{0x11:016x}", 2),
        (f"{0x21:016x}", f"{0x20:016x}", 3),
    ]
    pay = spans[2]
    assert set(pay) >= {
        "span_id",
        "parent_id",
        "service",
        "name",
        "kind",
        "start_ns",
        "duration_ns",
        "duration_ms",
        "status",
        "status_message",
        "attributes",
        "resource",
        "events",
        "links",
        "depth",
    }
    assert (pay["service"], pay["kind"], pay["status"], pay["duration_ns"]) == (
        "payments",
        "server",
        "unset",
        50 * MS,
    )
    assert pay["attributes"] == {
        "http.request.method": "POST",
        "http.route": "/pay",
        "http.response.status_code": 201,
    }
    assert spans[3]["attributes"] == {
        "db.system.name": "postgresql",
        "db.query.text": "UPDATE accounts SET balance = ?",
    }
    assert spans[0]["status"] == "error" and spans[1]["kind"] == "client"


def test_unknown_and_malformed_trace_ids(api: Api) -> None:
    r = api.get(f"/api/v1/traces/{12345:032x}")
    assert r.status_code == 404 and "not found" in r.json()["error"]
    for bad in ("xyz", "a" * 31, "g" * 32, "a" * 33):
        r = api.get(f"/api/v1/traces/{bad}")
        assert r.status_code == 400, bad
        assert "32 hexadecimal digits" in r.json()["error"]


# -------------------------------------------------------------------------- bad params


@pytest.mark.parametrize(
    ("path", "params", "needle"),
    [
        ("/api/v1/services", {"from": "yesterday"}, "'from'"),
        ("/api/v1/services", {"to": "2024-13-45T00:00:00Z"}, "'to'"),
        ("/api/v1/services", {"from": "1700000000000"}, "looks like ms"),
        ("/api/v1/services", {"from": "-5"}, "'from'"),
        ("/api/v1/services", {"from": "nan"}, "'from'"),
        ("/api/v1/services", {"from": str(MINUTE_S), "to": str(MINUTE_S - 60)}, "before"),
        ("/api/v1/services", {"apdex_t_ms": "0"}, "apdex_t_ms"),
        ("/api/v1/services", {"apdex_t_ms": "fast"}, "apdex_t_ms"),
        ("/api/v1/services", {"apdex_t_ms": "inf"}, "apdex_t_ms"),
        ("/api/v1/services", {"sort": "requests; DROP TABLE spans"}, "cannot sort"),
        ("/api/v1/services", {"order": "sideways"}, "order"),
        ("/api/v1/services/shop/endpoints", {"sort": "service"}, "cannot sort"),
        ("/api/v1/services/shop/timeseries", {"step_s": "90"}, "multiple of 60"),
        ("/api/v1/services/shop/timeseries", {"step_s": "30"}, "step_s"),
        ("/api/v1/services/shop/timeseries", {"step_s": "1m"}, "step_s"),
        ("/api/v1/services/shop/timeseries", {"from": "0"}, "too many points"),
        ("/api/v1/traces", {"limit": "0"}, "limit"),
        ("/api/v1/traces", {"limit": "100000"}, "limit"),
        ("/api/v1/traces", {"status": "broken"}, "status"),
        ("/api/v1/traces", {"min_duration_ms": "-1"}, "min_duration_ms"),
        ("/api/v1/traces", {"min_duration_ms": "9", "max_duration_ms": "2"}, "max_duration_ms"),
        ("/api/v1/traces", {"attr": "no-equals-sign"}, "key=value"),
    ],
)
def test_bad_params_are_400_with_a_message(
    api: Api, path: str, params: dict[str, str], needle: str
) -> None:
    r = api.get(path, params=params)
    assert r.status_code == 400, r.text
    assert set(r.json()) == {"error"}
    assert needle in r.json()["error"]


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("/api/v1/traces", {"service": "x' OR 1=1 --"}),
        ("/api/v1/traces", {"attr": "customer.plan') OR 1=1 --=pro"}),
        ("/api/v1/traces", {"attr": "a\"b'c=' OR '1'='1"}),
        ("/api/v1/traces", {"attr": "=x"}),
        ("/api/v1/services/x' OR 1=1 --/endpoints", {}),
        ("/api/v1/services", {"environment": "' OR ''='"}),
    ],
)
def test_injection_attempts_return_no_data(api: Api, path: str, params: dict[str, str]) -> None:
    r = api.get(path, params=params)
    assert r.status_code in (200, 400, 404), r.text
    body = r.json()
    if r.status_code == 200:
        rows = body.get("traces", body.get("endpoints", body.get("services")))
        assert rows == []


def test_service_names_with_slashes(api: Api) -> None:
    r = api.get("/api/v1/services/team%2Fshop/endpoints")
    assert r.status_code == 404 and "'team/shop'" in r.json()["error"]


def test_unknown_service_or_endpoint_timeseries_is_404(api: Api) -> None:
    r = api.get("/api/v1/services/nope/timeseries")
    assert r.status_code == 404 and "no service named 'nope'" in r.json()["error"]
    r = api.get("/api/v1/services/shop/timeseries", params={"endpoint": "GET /nope"})
    assert r.status_code == 404
    assert r.json() == {"error": "service 'shop' has no endpoint 'GET /nope'"}
    assert api.ok("/api/v1/services/shop/timeseries", endpoint=ROUTE)["points"]


def test_openapi_documents_the_routes(api: Api) -> None:
    doc = api.get("/openapi.json", auth=False).json()
    paths = doc["paths"]
    for p in (
        "/api/v1/services",
        "/api/v1/services/{service}/endpoints",
        "/api/v1/services/{service}/timeseries",
        "/api/v1/traces",
        "/api/v1/traces/{trace_id}",
    ):
        assert "get" in paths[p], p
        assert {"400", "401"} <= set(paths[p]["get"]["responses"])
        assert "422" not in paths[p]["get"]["responses"]  # bad parameters are 400s
    params = {q["name"] for q in paths["/api/v1/traces"]["get"]["parameters"]}
    assert params >= {
        "from",
        "to",
        "environment",
        "service",
        "endpoint",
        "min_duration_ms",
        "max_duration_ms",
        "status",
        "attr",
        "limit",
    }
    assert "apiToken" in doc["components"]["securitySchemes"]
