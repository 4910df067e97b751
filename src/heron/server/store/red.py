"""RED rollups: services, endpoints, time series, the service map.

The protocol the query layer (and jobs) call; each backend implements it
(DuckDB: ``store/duckdb/red.py``). No SQL above ``store/``."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

# A rollup column a filter list may be taken from.
ChoiceColumn = Literal["service", "environment", "release", "endpoint"]
# (group, requests, errors, sum of durations ns, buckets, counts per bucket, first minute s)
GroupRow = tuple[object, int, int, float, list[int], list[int], int]
# (service, environment, endpoint, bucket, requests, errors, sum of durations ns)
SeriesBucketRow = tuple[str, str, str, int, int, int, float]
# (caller, callee, calls, errors, p95 duration ns, first callee span start ns)
EdgeRow = tuple[str, str, int, int, float | None, int]


@dataclass(frozen=True, slots=True)
class RollupFilter:
    """Rollup rows of one project in minutes ``[lo_s, hi_s)``; None filters match any."""

    project_id: int
    lo_s: int
    hi_s: int
    service: str | None = None
    environment: str | None = None
    release: str | None = None
    endpoint: str | None = None


@dataclass(frozen=True, slots=True)
class EndpointGuide:
    """Where an endpoint's requests are: per minute and per latency bucket."""

    minutes: list[tuple[int, int, int, int]]
    """(minute s, requests, errors, the minute's slowest bucket)"""
    buckets: list[tuple[int, int]]
    """(bucket, requests)"""


class RedReader(Protocol):
    def group_totals(
        self, where: RollupFilter, by: Literal["service", "endpoint"]
    ) -> list[GroupRow]:
        """Totals and latency buckets per service or per endpoint."""

    def step_totals(self, where: RollupFilter, step_s: int) -> list[GroupRow]:
        """Totals and latency buckets per step of ``step_s`` (group = the step's start)."""

    def service_step_buckets(
        self, where: RollupFilter, step_s: int
    ) -> list[tuple[str, int, int, int, int]]:
        """(service, step start s, bucket, requests, errors) rows, in no order."""

    def top_values(self, where: RollupFilter, column: ChoiceColumn) -> list[tuple[str, int]]:
        """The column's values with their request counts, busiest first (at most 200)."""

    def service_known(self, project_id: int, service: str) -> bool:
        """Whether the service has any rollup row still retained."""

    def endpoint_known(self, project_id: int, service: str, endpoint: str) -> bool:
        """Whether the service's endpoint has any rollup row still retained."""

    def series_buckets(self, where: RollupFilter) -> list[SeriesBucketRow]:
        """Totals per service, environment, endpoint and latency bucket, in no order
        (``GET /metrics``)."""

    def latency_buckets(self, where: RollupFilter) -> list[tuple[int, int]]:
        """(bucket, requests) rows of the filtered rollups."""

    def endpoint_guide(self, where: RollupFilter) -> EndpointGuide:
        """Requests and errors per minute (with its slowest bucket) and per bucket."""

    def call_edges(
        self,
        project_id: int,
        slices: Sequence[tuple[int, int]],
        parent_slack_ns: int,
        environment: str | None,
    ) -> list[EdgeRow]:
        """Calls between services whose callee entry span starts in one of the slices
        (ns) and whose parent, in another service, starts at most ``parent_slack_ns``
        before the slice: busiest first."""
