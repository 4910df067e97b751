"""Metrics: the catalog of names and labels, and per-step aggregates of series.

The protocol the query layer (and jobs, alerting) call; each backend implements it
(DuckDB: ``store/duckdb/metrics.py``, ClickHouse: ``store/clickhouse/metrics.py``).
No SQL above ``store/``. Reads come from the per-minute rollups (min, max, sum, count,
last, merged histogram buckets per series and minute), never raw points, except
``exemplars``.

Label keys are the keys of a series' ``attributes`` (see ``model/metric``); the pseudo
label ``service`` is the series' service. Values compare as strings.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from heron.server.model.metric import MetricKind


@dataclass(frozen=True, slots=True)
class MetricFilter:
    """Series of one metric in one project, rollup minutes ``[lo_s, hi_s)``; ``match``
    keeps series whose label equals the value (``service`` included), all must hold."""

    project_id: int
    name: str
    lo_s: int
    hi_s: int
    match: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class CatalogRow:
    name: str
    kind: MetricKind
    unit: str
    description: str
    series: int  # series with data in the range
    services: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class StepRow:
    """The aggregate of one group's series over one step.

    ``samples`` counts the minute rollup rows merged, ``count`` the observations
    (histogram/summary) or points; ``sum`` is the sum of values (counters: the increase;
    histograms: the sum of observations); ``last`` is the sum over the group's series of
    each series' last value in the step (gauges: the group's total "now"); ``series``
    counts distinct series. ``bounds``/``buckets`` are the merged histogram (empty for
    other kinds; series whose bounds differ from the group's most common bounds are left
    out of the buckets, not of count and sum).
    """

    group: tuple[str, ...]  # the values of the group_by labels ("" when absent)
    step_s: int  # the step's start, Unix seconds, a multiple of the step
    samples: int
    count: int
    sum: float
    min: float | None
    max: float | None
    last: float | None
    series: int
    bounds: tuple[float, ...] = ()
    buckets: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class ExemplarRow:
    time_ns: int
    value: float
    trace_id: bytes
    span_id: int
    attributes: dict[str, str]  # the series' labels


class MetricReader(Protocol):
    def catalog(
        self, project_id: int, lo_s: int, hi_s: int, service: str | None = None
    ) -> list[CatalogRow]:
        """Metrics with data in the minutes ``[lo_s, hi_s)``, by name."""
        ...

    def describe(self, project_id: int, name: str) -> CatalogRow | None:
        """The metric's catalogue row over all its series (any time), None without any."""
        ...

    def label_keys(self, where: MetricFilter) -> list[str]:
        """The label keys of the filtered series, sorted (``service`` included)."""
        ...

    def label_values(self, where: MetricFilter, key: str, limit: int) -> list[tuple[str, int]]:
        """(value, series) of one label over the filtered series, most series first."""
        ...

    def step_rows(
        self, where: MetricFilter, step_s: int, group_by: tuple[str, ...]
    ) -> list[StepRow]:
        """One row per group and step (``step_s`` a multiple of 60), ordered by group
        then step; at most ``MAX_GROUPS`` groups (those with the most data points,
        ``count``)."""
        ...

    def exemplars(self, where: MetricFilter, limit: int) -> list[ExemplarRow]:
        """Exemplars of the filtered series in the range, newest first."""
        ...

    def known_series(self, project_id: int, since_s: int) -> list[tuple[str, int]]:
        """(metric name, series key) of every series seen since ``since_s``: ingest seeds
        its per-metric cardinality counts from it at start."""
        ...


MAX_GROUPS = 500
