"""Real-user monitoring: the web-vitals rollup, raw RUM events, sessions.

The protocol the query layer calls; each backend implements it (DuckDB:
``store/duckdb/rum.py``, ClickHouse: ``store/clickhouse/rum.py``). No SQL above
``store/``.

A RUM_ROW is a tuple of ``model.rum.RUM_FIELDS`` in order (``attributes`` as JSON text or
None, ``trace_id`` as bytes or None).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

Row = tuple[Any, ...]

# What rollup rows and top lists may be grouped by: columns of both the events table and
# the rollup (an allow-list; backends map them to their columns).
RUM_GROUPS = ("page", "browser", "device", "app", "environment")
RumGroup = Literal["page", "browser", "device", "app", "environment"]


@dataclass(frozen=True, slots=True)
class RumFilters:
    """Equality filters every RUM read takes; None means any."""

    app: str | None = None
    environment: str | None = None
    page: str | None = None
    browser: str | None = None
    device: str | None = None

    def items(self) -> list[tuple[str, str]]:
        """(column, value) of the filters that are set, in a fixed order."""
        return [
            (name, value)
            for name, value in (
                ("app", self.app),
                ("environment", self.environment),
                ("page", self.page),
                ("browser", self.browser),
                ("device", self.device),
            )
            if value is not None
        ]


class RumReader(Protocol):
    def rollup(
        self,
        project_id: int,
        start_s: int,
        end_s: int,
        *,
        filters: RumFilters,
        metrics: Sequence[str] | None = None,
        by: RumGroup | None = None,
        step_s: int | None = None,
    ) -> list[Row]:
        """Summed per-minute rollup counts of minutes in [start_s, end_s), as rows
        ``(step_start_s, group, metric, rating, bucket, count)``:

        - ``step_start_s``: the start of the ``step_s``-second step (a multiple of 60,
          steps aligned to multiples of ``step_s`` since the epoch) the minutes fall in;
          0 without ``step_s``;
        - ``group``: the value of the ``by`` column; ``""`` without ``by``;
        - ``metric`` among ``metrics`` (all when None), ``rating`` (``""`` for non-vitals),
          ``bucket`` (``heron.server.histogram`` bucket of ``model.rum.rollup_value_ns``).

        Unordered; summed over everything else (other groups, minutes of a step)."""
        ...

    def choices(self, project_id: int, start_s: int, end_s: int) -> dict[str, list[str]]:
        """Distinct non-empty values of each of ``RUM_GROUPS`` in the rollup's minutes in
        [start_s, end_s), sorted, at most 500 each."""
        ...

    def events(
        self,
        project_id: int,
        start_ns: int,
        end_ns: int,
        *,
        kinds: Sequence[str],
        filters: RumFilters,
        session_id: str | None = None,
        view_id: str | None = None,
        trace_id: bytes | None = None,
        order: Literal["time", "value"] = "time",
        limit: int,
    ) -> list[Row]:
        """RUM_ROWs of the given kinds in [start_ns, end_ns) matching every filter,
        newest first (``order="time"``) or largest value first (``"value"``)."""
        ...

    def top(
        self,
        project_id: int,
        start_ns: int,
        end_ns: int,
        *,
        kind: str,
        filters: RumFilters,
        limit: int,
    ) -> list[Row]:
        """Events of one kind grouped by ``(name, target)``, as rows
        ``(name, target, count, p75_value, max_value, last_time_ns, sample_trace_id)``
        (``sample_trace_id`` any non-null trace id of the group, or None), by p75 value
        descending, then count descending. For slowest resources, slowest interactions,
        long frames, slow renders, most frequent errors."""
        ...

    def sessions(
        self,
        project_id: int,
        start_ns: int,
        end_ns: int,
        *,
        filters: RumFilters,
        user_id: str | None = None,
        limit: int,
    ) -> list[Row]:
        """Sessions with an event in the range (and, with filters, an event matching
        them), as rows ``(session_id, user_id, first_ns, last_ns, views, errors, app,
        browser, os, device, entry_page)`` — ``user_id`` the last non-empty one seen,
        ``views`` count of view events, ``errors`` of error events, ``entry_page`` the page
        of the earliest view — most recent ``last_ns`` first."""
        ...

    def session(self, project_id: int, session_id: str, limit: int) -> list[Row]:
        """RUM_ROWs of one session (any time), oldest first."""
        ...
