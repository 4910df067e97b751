"""Error events and issues: lists, detail, status changes, occurrence series.

The protocol the query layer (and jobs) call; each backend implements it
(DuckDB: ``store/duckdb/issues.py``). No SQL above ``store/``."""

from __future__ import annotations

from typing import Protocol


class IssueReader(Protocol):
    """Filled in by issue 10's storage seam, one method per question."""
