"""Response bodies of the read API, for validation and the OpenAPI document.

Rows are the query layer's dataclasses; these models only add the envelopes.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from heron.server.query import EndpointStats, ServiceStats, TimeseriesPoint, TraceSummary


class ErrorBody(BaseModel):
    error: str = Field(description="What was wrong, in words.")


class _Ranged(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    from_: str = Field(alias="from", description="Start of the range (ISO 8601, UTC).")
    to: str = Field(description="End of the range, exclusive (ISO 8601, UTC).")
    environment: str | None = Field(description="The environment filter, if any.")


class ServicesResponse(_Ranged):
    apdex_t_ms: float
    services: list[ServiceStats]


class EndpointsResponse(_Ranged):
    service: str
    release: str | None
    apdex_t_ms: float
    endpoints: list[EndpointStats]


class TimeseriesResponse(_Ranged):
    service: str
    endpoint: str | None
    step_s: int
    apdex_t_ms: float
    points: list[TimeseriesPoint]


class TracesResponse(_Ranged):
    traces: list[TraceSummary]


# ---------------------------------------------------------------- metrics


class _Window(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    from_: str = Field(alias="from", description="Start of the range (ISO 8601, UTC).")
    to: str = Field(description="End of the range, exclusive (ISO 8601, UTC).")


class MetricInfo(BaseModel):
    name: str
    kind: str = Field(description="gauge, counter, updown, histogram or summary.")
    unit: str
    description: str
    series: int = Field(description="Series with data in the range.")
    services: list[str]


class MetricsResponse(_Window):
    metrics: list[MetricInfo]


class MetricLabelsResponse(_Window):
    metric: str
    keys: list[str]


class MetricLabelValue(BaseModel):
    value: str
    series: int


class MetricLabelValuesResponse(_Window):
    metric: str
    key: str
    values: list[MetricLabelValue]


class MetricSeries(BaseModel):
    labels: dict[str, str] = Field(description="The group's label values.")
    points: list[tuple[int, float | None]] = Field(
        description="[step start (Unix s), value or null when the step has no data]"
    )


class MetricExemplar(BaseModel):
    time_ns: int
    value: float
    trace_id: str = Field(description="32 hex digits.")
    span_id: str = Field(description="16 hex digits.")
    labels: dict[str, str]


class MetricQueryResponse(_Window):
    metric: str
    kind: str
    unit: str
    agg: str
    step_s: int
    series: list[MetricSeries]
    exemplars: list[MetricExemplar]
