"""Roles: what ``heron serve --role ingest|query|jobs|all`` serves, in-process on ClickHouse.

Each role's app is built by ``create_app`` on a ClickHouse store (chdb, in-process) and
run with its real lifespan; the tests ask which routes answer (a route a role does not
serve is a 404, as if it did not exist) and whether the background jobs run.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import anyio.from_thread
import httpx
import pytest
from fastapi import FastAPI

from heron.server.app import create_app
from heron.server.config import Config
from heron.server.store.base import Store
from tests.e2e.otlp_util import make_request
from tests.server.backends import open_store

KEY = "hk_roles_test_key_0123456789"
TOKEN = "ht_roles_test_token_0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
PROTOBUF = {"Content-Type": "application/x-protobuf", "x-heron-key": KEY}
ENVELOPE = b'{"event_id":"9ec79c33ec9942ab8353589fcb2e04dc"}\n{"type":"event"}\n{}\n'


@dataclass
class Running:
    portal: anyio.from_thread.BlockingPortal
    client: httpx.AsyncClient
    app: FastAPI
    store: Store

    def get(self, path: str, **kw: object) -> httpx.Response:
        return self.portal.call(lambda: self.client.get(path, **kw))  # type: ignore[arg-type]

    def post(self, path: str, content: bytes, **kw: object) -> httpx.Response:
        return self.portal.call(lambda: self.client.post(path, content=content, **kw))  # type: ignore[arg-type]


def _jobs_threads() -> int:
    return sum(t.name == "heron-maintenance" and t.is_alive() for t in threading.enumerate())


@pytest.fixture(scope="module", params=["all", "ingest", "query", "jobs"])
def running(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, chdb_dir: Path
) -> Iterator[Running]:
    tmp = tmp_path_factory.mktemp(f"role-{request.param}")
    config = Config(
        data_dir=str(tmp),
        api_token=TOKEN,
        ingest_key=KEY,
        role=request.param,
        storage_backend="clickhouse",
    )
    store = open_store("clickhouse", tmp, chdb_dir)
    app = create_app(config, store=store, maintenance_interval_s=3600)
    with (
        anyio.from_thread.start_blocking_portal() as portal,
        portal.wrap_async_context_manager(app.router.lifespan_context(app)),
    ):
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://heron")
        try:
            yield Running(portal, client, app, store)
        finally:
            portal.call(client.aclose)


# What each role serves: (ingest routes, UI + API + sign-in, background jobs).
SERVES = {
    "all": (True, True, True),
    "ingest": (True, False, False),
    "query": (False, True, False),
    "jobs": (False, False, True),
}


def role(r: Running) -> str:
    return str(r.app.state.ctx.config.role)


def test_healthz_answers_in_every_role_and_names_it(running: Running) -> None:
    r = running.get("/healthz")
    assert r.status_code == 200
    assert r.json()["role"] == role(running)
    assert r.json()["status"] == "ok"


def test_ingest_routes_only_where_ingest_runs(running: Running) -> None:
    ingest, _, _ = SERVES[role(running)]
    body, trace_id = make_request(3, service=f"roles-{role(running)}")
    r = running.post("/v1/traces", body, headers=PROTOBUF)
    assert r.status_code == (200 if ingest else 404), r.text
    codes = {
        running.post("/v1/logs", b"", headers=PROTOBUF).status_code,
        running.post("/api/1/envelope/", ENVELOPE, headers={"x-sentry-auth": "x"}).status_code,
        running.post("/api/1/store/", b"{}").status_code,
    }
    if ingest:
        assert 404 not in codes, codes
        # the spans are in ClickHouse
        spans = running.store.traces.trace_spans(1, trace_id)
        assert sorted(s.name for s in spans) == ["GET /e2e", "child 1", "child 2"]
        assert {s.service for s in spans} == {f"roles-{role(running)}"}
    else:
        assert codes == {404}
    if role(running) == "all":  # the same process answers the API with them
        r = running.get(f"/api/v1/traces/{trace_id.hex()}", headers=AUTH)
        assert r.status_code == 200, r.text
        assert r.json()["trace_id"] == trace_id.hex() and len(r.json()["spans"]) == 3


@pytest.mark.parametrize(
    "path", ["/", "/login", "/docs", "/openapi.json", "/api/v1/services", "/api/v1/traces"]
)
def test_ui_and_api_only_where_query_runs(running: Running, path: str) -> None:
    _, ui, _ = SERVES[role(running)]
    r = running.get(path, headers=AUTH)
    if ui:  # the pages ask a browser to sign in (401 without a session); the API answers
        expected = 401 if path == "/" else 200
        assert r.status_code == expected, (path, r.status_code, r.text[:200])
    else:
        assert r.status_code == 404, (path, r.status_code)
        assert r.json() == {"detail": "Not Found"}


def test_jobs_run_only_in_jobs_and_all(running: Running) -> None:
    maintenance = running.app.state.maintenance
    if SERVES[role(running)][2]:
        assert maintenance is not None
        assert maintenance._thread is not None and maintenance._thread.is_alive()
        assert _jobs_threads() == 1
    else:
        assert maintenance is None
        assert _jobs_threads() == 0


def test_open_store_builds_the_configured_engine(tmp_path: Path, chdb_dir: Path) -> None:
    from heron.server.store.clickhouse.store import ClickHouseStore
    from heron.server.store.duckdb_store import DuckDBStore
    from heron.server.store.open import open_store as open_configured

    duck = open_configured(Config(data_dir=str(tmp_path / "d"), query_timeout_s=7))
    assert isinstance(duck, DuckDBStore)
    assert (duck.path, duck.query_timeout_s) == (tmp_path / "d" / "heron.duckdb", 7)
    config = Config(
        data_dir=str(tmp_path / "c"),
        storage_backend="clickhouse",
        clickhouse_url=f"chdb://{chdb_dir}",
        clickhouse_database="heron_test_open_store",
        retention_days=3650,
        rollup_retention_days=3650,
    )
    ch = open_configured(config)
    try:
        assert isinstance(ch, ClickHouseStore)
        assert (ch.database, ch.cluster) == ("heron_test_open_store", None)
        project_id, _, created = ch.state.ensure_project("default", "hk_x", 1)
        assert created and ch.state.ingest_keys() == [("hk_x", project_id)]
        assert (tmp_path / "c" / "state.duckdb").exists()  # state: a local file beside
    finally:
        ch.close()
