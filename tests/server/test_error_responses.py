"""Storage failures become responses in one place (heron.server.errors): a query that runs
past the store's time limit is 503 with Retry-After, JSON for the API and a page for the UI.

The store is a real DuckDBStore; the subclass below only makes its next read run a query
far longer than the time limit first, so DuckDB really interrupts it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import anyio.from_thread
import httpx
import pytest

from heron.server.app import create_app
from heron.server.config import Config
from heron.server.store.base import QueryTimeout
from heron.server.store.duckdb_store import DuckDBStore

TOKEN = "ht_error_responses_token_0123"
PASSWORD = "error-responses-password"
TIME_LIMIT_S = 0.5
SLOW_SQL = "SELECT count(*) FROM range(100000000000) t(a) WHERE hash(a) % 7 = 3"


class SlowNextRead(DuckDBStore):
    slow_reads = 0

    def _maybe_slow(self) -> None:
        if self.slow_reads:
            self.slow_reads -= 1
            super().read(SLOW_SQL)

    def read(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        self._maybe_slow()
        return super().read(sql, params)

    def read_dicts(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        self._maybe_slow()
        return super().read_dicts(sql, params)


class Client:
    def __init__(self, portal: anyio.from_thread.BlockingPortal, client: httpx.AsyncClient):
        self.portal, self.client = portal, client

    def get(self, path: str, **headers: str) -> httpx.Response:
        return self.portal.call(lambda: self.client.get(path, headers=headers))

    def sign_in(self) -> None:
        page = self.get("/login", accept="text/html").text
        token = re.search(r'name="csrf_token" value="([^"]+)"', page)
        assert token, page
        form = {"username": "admin", "password": PASSWORD, "csrf_token": token.group(1)}
        r = self.portal.call(lambda: self.client.post("/login", data=form))
        assert r.status_code == 303, r.text


@pytest.fixture(scope="module")
def heron(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Client, SlowNextRead]]:
    data: Path = tmp_path_factory.mktemp("error-responses")
    # No alert engine: its background reads (every alert_tick_s) would take the slow read
    # meant for the request under test.
    config = Config(
        data_dir=str(data), api_token=TOKEN, admin_password=PASSWORD, alerts_enabled=False
    )
    store = SlowNextRead(config.db_path, commit_interval_ms=0, query_timeout_s=TIME_LIMIT_S)
    app = create_app(config, store=store, maintenance_interval_s=3600)
    with (
        anyio.from_thread.start_blocking_portal() as portal,
        portal.wrap_async_context_manager(app.router.lifespan_context(app)),
    ):
        transport = httpx.ASGITransport(app=app)
        client = httpx.AsyncClient(transport=transport, base_url="http://heron.test")
        c = Client(portal, client)
        try:
            c.sign_in()
            yield c, store
        finally:
            portal.call(client.aclose)


def test_the_store_raises_query_timeout_past_its_time_limit(tmp_path: Path) -> None:
    store = DuckDBStore(str(tmp_path / "heron.duckdb"), query_timeout_s=0.2)
    store.start()
    try:
        with pytest.raises(QueryTimeout, match="stopped after 0.2 s"):
            store.read(SLOW_SQL)
        assert store.read("SELECT 42") == [(42,)]  # the next read is fine
    finally:
        store.close()


def test_api_query_timeout_is_503_json_with_retry_after(
    heron: tuple[Client, SlowNextRead],
) -> None:
    client, store = heron
    store.slow_reads = 1
    r = client.get("/api/v1/services", authorization=f"Bearer {TOKEN}")
    assert r.status_code == 503, r.text
    assert r.headers["content-type"] == "application/json"
    assert r.headers["retry-after"] == str(QueryTimeout.retry_after_s)
    assert r.json() == {
        "error": f"query timeout: the query was stopped after {TIME_LIMIT_S:g} s; "
        "choose a shorter time range or add filters"
    }
    assert client.get("/api/v1/services", authorization=f"Bearer {TOKEN}").status_code == 200


def test_ui_query_timeout_is_503_page_with_retry_after(heron: tuple[Client, SlowNextRead]) -> None:
    client, store = heron
    store.slow_reads = 1
    r = client.get("/", accept="text/html")
    assert r.status_code == 503, r.text
    assert r.headers["content-type"].startswith("text/html")
    assert r.headers["retry-after"] == str(QueryTimeout.retry_after_s)
    assert "The query took too long and was stopped." in r.text
    assert "Choose a shorter time range or add filters" in r.text
    assert client.get("/", accept="text/html").status_code == 200
