"""A dashboard's JSON format: title, description and panels, each a chart or figure of one
metric query or one RED (requests, errors, duration) figure of a service.

The same JSON is what the API stores, returns (export) and accepts (import), so a
dashboard moves between servers as a file. Unknown fields are refused, so a typo fails
loudly instead of being dropped; ``id``, ``version``, ``created`` and ``updated`` are
accepted (an export carries them) and only ``version`` means anything (on update).
Panels are laid out in list order on a 12-column grid, each ``width`` columns wide.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, field_validator

Agg = Literal[
    "avg", "sum", "min", "max", "last", "count", "rate", "increase", "p50", "p90", "p95", "p99"
]
AGGS: tuple[str, ...] = Agg.__args__  # type: ignore[attr-defined]
PanelType = Literal["line", "area", "bar", "stat", "table"]
RedFigure = Literal["requests", "rpm", "error_rate", "p50", "p95", "p99", "apdex"]
FORMAT_VERSION: Literal[1] = 1
MAX_PANELS = 50
MAX_GROUP_BY = 5  # as query.metrics allows
MAX_FILTERS = 16
Name = Annotated[str, Field(min_length=1, max_length=256)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


class MetricQuery(_Strict):
    """A series query (``query.metrics.SeriesQuery``): ``by`` the labels to group by,
    ``filter`` label = value pairs that must all hold, ``step`` seconds (a multiple of
    60; absent: chosen from the time range)."""

    metric: Name
    agg: Agg = "avg"
    by: Annotated[list[Name], Field(max_length=MAX_GROUP_BY)] = []
    filter: Annotated[dict[Name, Annotated[str, Field(max_length=1024)]], Field()] = {}
    step: Annotated[int | None, Field(ge=60, le=7 * 86400, multiple_of=60)] = None

    @field_validator("filter")
    @classmethod
    def _few_filters(cls, value: dict[str, str]) -> dict[str, str]:
        if len(value) > MAX_FILTERS:
            raise ValueError(f"at most {MAX_FILTERS} filters")
        return value


class RedQuery(_Strict):
    """One RED figure of a service (or one of its endpoints), per step."""

    service: Name
    endpoint: Annotated[str | None, Field(max_length=1024)] = None
    figure: RedFigure = "rpm"


def _query_kind(value: Any) -> str | None:
    # A RED query names a service and no metric; anything else is read as a metric query
    # (so its errors say what a metric query lacks).
    if isinstance(value, dict):
        return "red" if "service" in value and "metric" not in value else "metric"
    return "red" if isinstance(value, RedQuery) else "metric"


PanelQuery = Annotated[
    Annotated[MetricQuery, Tag("metric")] | Annotated[RedQuery, Tag("red")],
    Discriminator(_query_kind),
]


class Panel(_Strict):
    title: Annotated[str, Field(max_length=200)] = ""
    type: PanelType = "line"
    query: PanelQuery
    width: Annotated[int, Field(ge=1, le=12)] = 6


class DashboardSpec(_Strict):
    """What a user writes: the importable JSON (``heron_dashboard`` names the format)."""

    heron_dashboard: Literal[1] = FORMAT_VERSION
    title: Annotated[str, Field(min_length=1, max_length=200)]
    description: Annotated[str, Field(max_length=4000)] = ""
    panels: Annotated[list[Panel], Field(max_length=MAX_PANELS)] = []
    # Carried by an export, ignored on import (``version`` is checked on update).
    id: int | None = Field(default=None, exclude=True)
    version: int | None = Field(default=None, ge=1, exclude=True)
    created: str | None = Field(default=None, exclude=True)
    updated: str | None = Field(default=None, exclude=True)

    def to_json(self) -> str:
        """The stored form: the spec without the export-only fields."""
        return self.model_dump_json(exclude_none=False)
