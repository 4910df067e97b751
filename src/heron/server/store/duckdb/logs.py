"""DuckDB statements for: Log records: search and the logs of a trace."""

from __future__ import annotations

from heron.server.store.duckdb._sql import SqlReads


class DuckDBLogs:
    """Implements ``store.logs.LogReader`` on DuckDB."""

    def __init__(self, sql: SqlReads) -> None:
        self.sql = sql
