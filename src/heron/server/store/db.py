"""Database monitoring: query statistics, slow queries, N+1 findings, and the analysis job's reads and writes.

The protocol the query layer (and jobs) call; each backend implements it
(DuckDB: ``store/duckdb/db.py``). No SQL above ``store/``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import pyarrow as pa

from heron.server.analyze.n_plus_one import RepeatGroup


class DbReader(Protocol):
    # ------------------------------------------------ query statistics (rollups)
    def has_query_stats(self) -> bool:
        """Whether any database query was ever analysed."""

    def fingerprint_names(self, fingerprints: Sequence[int]) -> dict[int, tuple[str, str]]:
        """``fingerprint -> (db_system, display)`` of the named ones among them."""

    def query_stat_groups(
        self, project_id: int, lo_s: int, hi_s: int, filters: Mapping[str, Any], by: str
    ) -> list[tuple[tuple[Any, ...], tuple[Any, ...]]]:
        """Query statistics of minutes [lo_s, hi_s) matching ``filters`` (service,
        environment, endpoint, db_system, fingerprint; None = any), summed per ``by``:
        ``"query"`` keys ``(service, fingerprint, db_system)``, ``"endpoint"`` keys
        ``(service, endpoint)``. Each value: ``(calls, errors, sum_ns, max_ns, rows_sum,
        rows_count, buckets, bucket_counts)``."""

    def query_stat_series(
        self, project_id: int, lo_s: int, hi_s: int, filters: Mapping[str, Any], step_s: int
    ) -> list[tuple[tuple[Any, ...], tuple[Any, ...]]]:
        """Like :meth:`query_stat_groups` keyed ``(step start in Unix seconds,)``."""

    def request_time(
        self,
        project_id: int,
        lo_s: int,
        hi_s: int,
        *,
        service: str | None,
        endpoint: str | None,
        environment: str | None,
    ) -> dict[tuple[str, str], tuple[int, float]]:
        """(requests, total ns) per (service, endpoint) from the request rollups."""

    def request_counts(
        self, project_id: int, lo_s: int, hi_s: int, environment: str | None
    ) -> dict[tuple[str, str], int]:
        """Requests per (service, endpoint) from the request rollups."""

    # ----------------------------------------------------------------- raw spans
    def query_samples(
        self,
        project_id: int,
        start_ns: int,
        end_ns: int,
        *,
        entries_since_ns: int,
        fingerprint: int | None,
        min_duration_ns: int | None,
        service: str | None,
        endpoint: str | None,
        db_system: str | None,
        environment: str | None,
        newest_first: bool,
        limit: int,
    ) -> list[tuple[Any, ...]]:
        """Database spans with their endpoints, slowest (or newest) first."""

    def child_plans(
        self, project_id: int, since_ns: int, until_ns: int, trace_ids: Sequence[bytes]
    ) -> list[tuple[bytes, int, str | None, str | None]]:
        """``(trace_id, parent_id, plan, plan_format)`` of plan-recording spans."""

    def slow_query_groups(
        self,
        project_id: int,
        start_ns: int,
        end_ns: int,
        *,
        min_duration_ns: int,
        entries_since_ns: int,
        plans_until_ns: int,
        service: str | None,
        endpoint: str | None,
        db_system: str | None,
        environment: str | None,
        sort: str,
        limit: int,
    ) -> list[tuple[Any, ...]]:
        """Slow database calls grouped by fingerprint, top ``limit`` by ``sort``."""

    def repeat_findings(
        self,
        project_id: int,
        start_ns: int,
        end_ns: int,
        *,
        min_count: int,
        min_total_ns: int,
        service: str | None,
        endpoint: str | None,
        environment: str | None,
        kind: str | None,
    ) -> list[tuple[Any, ...]]:
        """Recorded repeat groups per service, endpoint, kind and fingerprint."""

    # ------------------------------------------------------- the analysis job
    def query_stat_rollup(self, lo_s: int, entries_since_ns: int) -> pa.Table:
        """Query statistics of minutes from ``lo_s`` on, recomputed from raw spans."""

    def unnamed_fingerprints(self, since_ns: int) -> list[tuple[int, str, str | None, int]]:
        """``(fingerprint, db_system, a statement, first_seen_ns)`` not yet named."""

    def repeated_queries(self, since_ns: int, lo_ns: int, min_count: int) -> list[tuple[Any, ...]]:
        """Repeated database queries under one parent, grouped (see N+1 detection)."""

    def repeated_calls(self, since_ns: int, min_count: int) -> list[tuple[Any, ...]]:
        """Outgoing HTTP spans under parents with ``min_count`` or more of them."""

    def entry_spans(
        self, since_ns: int, trace_ids: Sequence[bytes]
    ) -> list[tuple[int, bytes, str, int, str]]:
        """``(project_id, trace_id, service, start_ns, endpoint)`` of entry spans."""

    def replace_analysis(
        self,
        lo_s: int,
        rollup: pa.Table,
        fingerprints: Sequence[tuple[int, str, str, int]],
        lo_ns: int,
        groups: Sequence[RepeatGroup],
    ) -> None:
        """Replace the analysis results of the window, in one transaction."""
