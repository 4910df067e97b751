"""An in-process Heron (real lifespan, store and routes) for ingest tests."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio.from_thread
import httpx
from fastapi import FastAPI

from heron.server.app import create_app
from heron.server.config import Config
from heron.server.store.duckdb_store import DuckDBStore

KEY = "hk_ingest_test_key_0123456789"
TOKEN = "ht_ingest_test_token_0123456789"
NOW_NS = 1_700_000_000 * 10**9


@dataclass
class Heron:
    portal: anyio.from_thread.BlockingPortal
    client: httpx.AsyncClient
    app: FastAPI
    store: DuckDBStore

    def post(self, path: str, content: bytes, **kw: Any) -> httpx.Response:
        return self.portal.call(lambda: self.client.post(path, content=content, **kw))

    def rows(self, sql: str, params: list[Any] | None = None) -> list[dict[str, Any]]:
        return self.store.read_dicts(sql, params or [])


@contextmanager
def running_heron(data: Path, **store_kw: Any) -> Iterator[Heron]:
    config = Config(data_dir=str(data), api_token=TOKEN, ingest_key=KEY)
    store = DuckDBStore(config.db_path, commit_interval_ms=0, **store_kw)
    app = create_app(config, store=store, clock=lambda: NOW_NS, maintenance_interval_s=3600)
    with (
        anyio.from_thread.start_blocking_portal() as portal,
        portal.wrap_async_context_manager(app.router.lifespan_context(app)),
    ):
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://heron")
        try:
            yield Heron(portal, client, app, store)
        finally:
            portal.call(client.aclose)
