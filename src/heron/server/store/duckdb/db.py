"""DuckDB statements for: Database monitoring: query statistics, slow queries, N+1 findings, and the analysis job's reads and writes."""

from __future__ import annotations

from heron.server.store.duckdb._sql import SqlReads


class DuckDBDb:
    """Implements ``store.db.DbReader`` on DuckDB."""

    def __init__(self, sql: SqlReads) -> None:
        self.sql = sql
