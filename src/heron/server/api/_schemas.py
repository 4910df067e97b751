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
