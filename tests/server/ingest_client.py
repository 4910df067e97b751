"""An in-process Heron (real lifespan, store and routes) for ingest tests.

``running_heron(data)`` runs on DuckDB; ``running_heron(data, kind, chdb_dir)`` on any
backend of ``tests/server/backends.py``. What was stored is read back through the
store's public readers (``Heron.logs``, ``Heron.events``, ``Heron.issue``), the same on
every backend; ``Heron.rows`` (SQL) is DuckDB-only.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import anyio.from_thread
import httpx
from fastapi import FastAPI

from heron.server.app import create_app
from heron.server.config import Config
from heron.server.store.base import Store
from heron.server.store.duckdb_store import DuckDBStore

from .backends import open_store

KEY = "hk_ingest_test_key_0123456789"
TOKEN = "ht_ingest_test_token_0123456789"
NOW_NS = 1_700_000_000 * 10**9
PROJECT = 1  # the project the ingest key belongs to
EVERYTHING = (0, 2**62)  # a time range holding every record
LOG_KEYS = (
    "position",
    "time_ns",
    "observed_ns",
    "trace_id",
    "span_id",
    "service",
    "environment",
    "release",
    "severity_number",
    "severity_text",
    "logger",
    "body",
    "attributes",
    "event_id",
)
EVENT_KEYS = (
    "event_id",
    "issue_id",
    "time_ns",
    "received_ns",
    "service",
    "environment",
    "release",
    "level",
    "platform",
    "source",
    "exc_type",
    "message",
    "culprit",
    "transaction",
    "trace_id",
    "span_id",
    "user_key",
    "handled",
    "logger",
    "sdk",
    "exceptions",
    "breadcrumbs",
    "request",
    "user_data",
    "tags",
    "contexts",
    "extra",
)


@dataclass
class Heron:
    portal: anyio.from_thread.BlockingPortal
    client: httpx.AsyncClient
    app: FastAPI
    store: Store

    def post(self, path: str, content: bytes, **kw: Any) -> httpx.Response:
        return self.portal.call(lambda: self.client.post(path, content=content, **kw))

    def rows(self, sql: str, params: list[Any] | None = None) -> list[dict[str, Any]]:
        """SQL on the DuckDB store (for tests of DuckDB itself)."""
        assert isinstance(self.store, DuckDBStore), "SQL reads are DuckDB-only"
        return self.store.read_dicts(sql, params or [])

    def logs(self, body: str | None = None) -> list[dict[str, Any]]:
        """Every log record (with ``body``, if given), newest first."""
        rows = self.store.logs.search(PROJECT, *EVERYTHING, text=body, limit=10_000)
        out = [dict(zip(LOG_KEYS, r, strict=True)) for r in rows]
        return [r for r in out if body is None or r["body"] == body]

    def event(self, event_id: str) -> dict[str, Any] | None:
        row = self.store.issues.event(PROJECT, event_id)
        return dict(zip(EVENT_KEYS, row, strict=True)) if row else None

    def events(self) -> list[dict[str, Any]]:
        """Every stored event, in the order received."""
        ids = [
            s[0]
            for issue in self.issue_rows()
            for s in self.store.issues.issue_events(
                PROJECT,
                issue["id"],
                start_ns=None,
                end_ns=None,
                environment=None,
                before=None,
                limit=10_000,
            )
        ]
        found = [self.event(eid) for eid in ids]
        return sorted((e for e in found if e), key=lambda e: (e["received_ns"], e["event_id"]))

    def issue(self, issue_id: int) -> dict[str, Any]:
        """The stored state of one issue (counters, status)."""
        return asdict(self.store.state.issue_states(PROJECT, [issue_id])[issue_id])

    def issue_rows(self) -> list[dict[str, Any]]:
        """Every issue with an event stored, by id."""
        ids = sorted(
            r[0]
            for r in self.store.issues.list_issues(
                PROJECT, *EVERYTHING, {}, status=None, sort="last_seen", limit=10_000
            )
        )
        return [self.issue(i) for i in ids]


def app_store(kind: str, data: Path, chdb_dir: Path | None, **duckdb_kw: Any) -> Store:
    """A store of ``kind`` for ``create_app``, whose lifespan starts it: DuckDB's is not
    started here (``DuckDBStore.start`` twice would run two writers)."""
    if kind == "duckdb":
        return DuckDBStore(data / "heron.duckdb", commit_interval_ms=0, **duckdb_kw)
    assert chdb_dir is not None and not duckdb_kw, "ClickHouse: chdb_dir, no DuckDB options"
    return open_store(kind, data, chdb_dir)


@contextmanager
def running_heron(
    data: Path, kind: str = "duckdb", chdb_dir: Path | None = None, **store_kw: Any
) -> Iterator[Heron]:
    config = Config(data_dir=str(data), api_token=TOKEN, ingest_key=KEY)
    store = app_store(kind, data, chdb_dir, **store_kw)
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
