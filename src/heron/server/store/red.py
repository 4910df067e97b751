"""RED rollups: services, endpoints, time series, the service map.

The protocol the query layer (and jobs) call; each backend implements it
(DuckDB: ``store/duckdb/red.py``). No SQL above ``store/``."""

from __future__ import annotations

from typing import Protocol


class RedReader(Protocol):
    """Filled in by issue 10's storage seam, one method per question."""
