"""Dashboards through the JSON API (in-process ASGI, the real app and lifespan, DuckDB):
create, list, read (export), update with versions, duplicate, delete, import of an
export, the generated default, and the 4xx answers to bad dashboards."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio.from_thread
import httpx
import pytest

from heron.server.app import create_app
from heron.server.config import Config
from heron.server.store.duckdb_store import DuckDBStore

NS = 1_000_000_000
NOW_NS = 1_700_000_000 * NS
TOKEN = "ht_dashboards_test_token_0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}

BOARD: dict[str, Any] = {
    "title": "Checkout",
    "description": "Orders <b>and</b> payments",
    "panels": [
        {
            "title": "Orders per second",
            "type": "line",
            "query": {"metric": "orders.placed", "agg": "rate", "by": ["region"]},
            "width": 8,
        },
        {
            "title": "p95",
            "type": "stat",
            "query": {"service": "shop", "endpoint": "GET /cart", "figure": "p95"},
        },
        {
            "title": "Payments",
            "type": "table",
            "query": {
                "metric": "payment.amount",
                "agg": "p95",
                "filter": {"currency": "EUR"},
                "step": 300,
            },
            "width": 12,
        },
    ],
}


@dataclass
class Api:
    portal: anyio.from_thread.BlockingPortal
    client: httpx.AsyncClient

    def call(self, method: str, path: str, *, auth: bool = True, **kw: Any) -> httpx.Response:
        headers = {**(AUTH if auth else {}), **kw.pop("headers", {})}
        return self.portal.call(lambda: self.client.request(method, path, headers=headers, **kw))

    def ok(self, method: str, path: str, status: int = 200, **kw: Any) -> Any:
        r = self.call(method, path, **kw)
        assert r.status_code == status, r.text
        return r.json() if r.content else None


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Api]:
    config = Config(data_dir=str(tmp_path), api_token=TOKEN, ingest_key="hk_dash_test_key")
    store = DuckDBStore(tmp_path / "heron.duckdb", commit_interval_ms=0).start()
    clock = iter(range(NOW_NS, NOW_NS + 10**6 * NS, NS))
    app = create_app(config, store=store, clock=lambda: next(clock), maintenance_interval_s=3600)
    with (
        anyio.from_thread.start_blocking_portal() as portal,
        portal.wrap_async_context_manager(app.router.lifespan_context(app)),
    ):
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://heron")
        try:
            yield Api(portal, client)
        finally:
            portal.call(client.aclose)


def spec_of(exported: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in exported.items() if k not in ("id", "version", "created", "updated")}


def test_create_read_update_duplicate_delete(api: Api) -> None:
    made = api.ok("POST", "/api/v1/dashboards", 201, json=BOARD)
    assert made["version"] == 1 and made["id"] >= 1
    assert made["title"] == "Checkout"
    assert made["panels"][0]["query"] == {
        "metric": "orders.placed",
        "agg": "rate",
        "by": ["region"],
        "filter": {},
        "step": None,
    }
    assert made["panels"][1]["width"] == 6  # the default
    assert made["panels"][1]["query"] == {
        "service": "shop",
        "endpoint": "GET /cart",
        "figure": "p95",
    }
    did = made["id"]
    assert api.ok("GET", f"/api/v1/dashboards/{did}") == made

    listed = api.ok("GET", "/api/v1/dashboards")["dashboards"]
    assert [(d["id"], d["title"], d["panels"], d["version"]) for d in listed] == [
        (did, "Checkout", 3, 1)
    ]

    edited = {**made, "title": "Checkout v2", "panels": made["panels"][:1]}
    v2 = api.ok("PUT", f"/api/v1/dashboards/{did}", json=edited)
    assert (v2["version"], v2["title"], len(v2["panels"])) == (2, "Checkout v2", 1)
    assert v2["created"] == made["created"] and v2["updated"] > made["updated"]
    stale = api.call("PUT", f"/api/v1/dashboards/{did}", json=edited)  # still says version 1
    assert stale.status_code == 409
    assert "now version 2" in stale.json()["error"]
    unversioned = {k: v for k, v in edited.items() if k != "version"}
    assert api.ok("PUT", f"/api/v1/dashboards/{did}", json=unversioned)["version"] == 3

    copy = api.ok("POST", f"/api/v1/dashboards/{did}/duplicate", 201)
    assert copy["id"] != did and copy["version"] == 1
    assert copy["title"] == "Copy of Checkout v2"
    assert copy["panels"] == v2["panels"]

    assert api.ok("DELETE", f"/api/v1/dashboards/{did}", 204) is None
    assert api.call("GET", f"/api/v1/dashboards/{did}").status_code == 404
    assert api.call("DELETE", f"/api/v1/dashboards/{did}").status_code == 404
    assert api.call("POST", f"/api/v1/dashboards/{did}/duplicate").status_code == 404
    assert api.call("PUT", f"/api/v1/dashboards/{did}", json=BOARD).status_code == 404
    assert [d["id"] for d in api.ok("GET", "/api/v1/dashboards")["dashboards"]] == [copy["id"]]


def test_export_then_import_gives_the_same_dashboard(api: Api) -> None:
    made = api.ok("POST", "/api/v1/dashboards", 201, json=BOARD)
    r = api.call("GET", f"/api/v1/dashboards/{made['id']}", params={"download": "1"})
    assert r.headers["content-disposition"] == f'attachment; filename="dashboard-{made["id"]}.json"'
    exported = r.json()
    api.ok("DELETE", f"/api/v1/dashboards/{made['id']}", 204)
    back = api.ok(
        "POST",
        "/api/v1/dashboards",
        201,
        content=r.content,
        headers={"content-type": "application/json"},
    )
    assert back["id"] != exported["id"]
    assert spec_of(back) == spec_of(exported)


def test_default_dashboard_of_a_service(api: Api) -> None:
    d = api.ok("GET", "/api/v1/dashboards/default", params={"service": "shop"})
    assert d["title"] == "shop overview"
    metrics = [p["query"]["metric"] for p in d["panels"] if "metric" in p["query"]]
    assert "process.cpu.utilization" in metrics and "process.memory.usage" in metrics
    assert all(
        p["query"]["filter"] == {"service": "shop"} for p in d["panels"] if "metric" in p["query"]
    )
    figures = {p["query"]["figure"] for p in d["panels"] if "figure" in p["query"]}
    assert {"requests", "error_rate", "p95", "rpm"} <= figures
    assert api.ok("GET", "/api/v1/dashboards") == {"dashboards": []}  # not stored
    saved = api.ok("POST", "/api/v1/dashboards", 201, json=d)
    assert spec_of(saved) == d


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ({"panels": []}, "title: Field required"),
        ({**BOARD, "title": ""}, "title: String should have at least 1 character"),
        ({**BOARD, "extra": 1}, "extra: Extra inputs are not permitted"),
        ({**BOARD, "panels": [{"query": {"metric": "m", "agg": "p77"}}]}, "panels.0.query.agg"),
        (
            {**BOARD, "panels": [{"query": {"service": "s", "figure": "p42"}}]},
            "panels.0.query.figure",
        ),
        ({**BOARD, "panels": [{"query": {}}]}, "panels.0.query.metric: Field required"),
        ({**BOARD, "panels": [{"type": "pie", "query": {"metric": "m"}}]}, "panels.0.type"),
        ({**BOARD, "panels": [{"width": 13, "query": {"metric": "m"}}]}, "panels.0.width"),
        ({**BOARD, "panels": [{"query": {"metric": "m", "step": 90}}]}, "panels.0.query.step"),
        (
            {**BOARD, "panels": [{"query": {"metric": "m"}}] * 51},
            "panels: List should have at most 50",
        ),
        ([1, 2], "dashboard"),
    ],
)
def test_bad_dashboards_are_400_saying_what(api: Api, body: Any, says: str) -> None:
    r = api.call("POST", "/api/v1/dashboards", json=body)
    assert r.status_code == 400, r.text
    assert says in r.json()["error"]
    made = api.ok("POST", "/api/v1/dashboards", 201, json=BOARD)
    r = api.call("PUT", f"/api/v1/dashboards/{made['id']}", json=body)
    assert r.status_code == 400 and says in r.json()["error"]
    assert api.ok("GET", f"/api/v1/dashboards/{made['id']}")["version"] == 1


def test_not_json_and_bad_ids(api: Api) -> None:
    r = api.call(
        "POST", "/api/v1/dashboards", content=b"{nope", headers={"content-type": "application/json"}
    )
    assert r.status_code == 400, r.text
    assert api.call("GET", "/api/v1/dashboards/0").status_code == 400
    assert api.call("GET", "/api/v1/dashboards/abc").status_code == 400
    assert api.call("GET", "/api/v1/dashboards/default").status_code == 400  # no service


def test_needs_a_token_or_session(api: Api) -> None:
    assert api.call("GET", "/api/v1/dashboards", auth=False).status_code == 401
    assert api.call("POST", "/api/v1/dashboards", auth=False, json=BOARD).status_code == 401
    assert api.ok("GET", "/api/v1/dashboards") == {"dashboards": []}
