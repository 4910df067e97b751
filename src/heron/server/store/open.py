"""``open_store(config)``: the one place that picks and builds the telemetry store.

The app factory asks for "the store of this config" and gets a ``Store``; only this
package knows which engines exist (DuckDB embedded, ClickHouse) and how each is built.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

from heron.server.config import Config
from heron.server.store.base import Store
from heron.server.store.state import StateStore


def open_store(config: Config) -> Store:
    """The (not yet started) store ``config`` names; the app starts it in its lifespan.

    ClickHouse connects and applies its migrations here, so a wrong URL fails at start.
    """
    if config.storage_backend == "clickhouse":
        return _clickhouse(config)
    from heron.server.store.duckdb_store import DuckDBStore
    from heron.server.store.memory import duckdb_config

    return DuckDBStore(
        config.db_path,
        queue_max_spans=config.queue_max_spans,
        queue_max_points=config.queue_max_points,
        commit_interval_ms=config.commit_interval_ms,
        query_timeout_s=config.query_timeout_s,
        checkpoint_threshold_mb=config.checkpoint_threshold_mb,
        duckdb_config=duckdb_config(config.memory_limit_mb, config.db_path),
    )


def _clickhouse(config: Config) -> Store:
    from heron.server.store.clickhouse.store import ClickHouseStore

    return ClickHouseStore(
        clickhouse_dsn(config.clickhouse_url, config.clickhouse_user, config.clickhouse_password),
        database=config.clickhouse_database,
        retention_days=config.retention_days,
        rollup_retention_days=config.rollup_retention_days,
        query_timeout_s=config.query_timeout_s,
        commit_interval_ms=config.commit_interval_ms,
        queue_max_points=config.queue_max_points,
        state_path=state_file(config),
        state_url=config.state_url or None,
        cluster=config.clickhouse_cluster or None,
    )


def clickhouse_dsn(url: str, user: str = "", password: str = "") -> str:
    """``url`` with ``user``/``password`` (when given) as its user part, URL-quoted.

    ``chdb://`` URLs (ClickHouse in-process) have no users and are returned unchanged.
    """
    parts = urlsplit(url)
    if parts.scheme == "chdb" or not (user or password):
        return url
    user = user or parts.username or "default"
    password = password or parts.password or ""
    host = parts.netloc.rpartition("@")[2]
    auth = quote(user, safe="") + (":" + quote(password, safe="") if password else "")
    return urlunsplit(parts._replace(netloc=f"{auth}@{host}"))


def state_file(config: Config) -> Path | None:
    """The local file holding ``config``'s state (projects, keys, users, sessions,
    issues), or None when it lives in PostgreSQL (``state_url``)."""
    if config.storage_backend != "clickhouse":
        return config.db_path
    return None if config.state_url else Path(config.data_dir) / "state.duckdb"


@contextmanager
def open_state(config: Config) -> Iterator[StateStore]:
    """``config``'s state store for a command run without the server (``heron users``).

    PostgreSQL is shared, so the server may be running; a local DuckDB file is opened
    exclusively (``DatabaseInUse`` while a server holds it).
    """
    path = state_file(config)
    if path is None:
        from heron.server.store.postgres.state import PostgresState

        pg = PostgresState(config.state_url)
        try:
            yield pg
        finally:
            pg.close()
        return
    from heron.server.store.duckdb_store import open_exclusive

    store = open_exclusive(path)
    try:
        yield store.state
    finally:
        store.close()
