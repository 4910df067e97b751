"""Transactional state: projects, ingest keys, API tokens, users, sessions.

The protocol the query layer (and jobs) call; each backend implements it
(DuckDB: ``store/duckdb/state.py``). No SQL above ``store/``."""

from __future__ import annotations

from typing import Protocol


class StateStore(Protocol):
    """Filled in by issue 10's storage seam, one method per question."""
