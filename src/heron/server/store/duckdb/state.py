"""DuckDB statements for: Transactional state: projects, ingest keys, API tokens, users, sessions."""

from __future__ import annotations

from heron.server.store.duckdb._sql import SqlReads


class DuckDBState:
    """Implements ``store.state.StateStore`` on DuckDB."""

    def __init__(self, sql: SqlReads) -> None:
        self.sql = sql
