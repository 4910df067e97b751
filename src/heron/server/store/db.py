"""Database monitoring: query statistics, slow queries, N+1 findings, and the analysis job's reads and writes.

The protocol the query layer (and jobs) call; each backend implements it
(DuckDB: ``store/duckdb/db.py``). No SQL above ``store/``."""

from __future__ import annotations

from typing import Protocol


class DbReader(Protocol):
    """Filled in by issue 10's storage seam, one method per question."""
