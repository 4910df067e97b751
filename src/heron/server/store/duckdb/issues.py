"""DuckDB statements for: Error events and issues: lists, detail, status changes, occurrence series."""

from __future__ import annotations

from heron.server.store.duckdb._sql import SqlReads


class DuckDBIssues:
    """Implements ``store.issues.IssueReader`` on DuckDB."""

    def __init__(self, sql: SqlReads) -> None:
        self.sql = sql
