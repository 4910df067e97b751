"""Metrics read API: the catalogue, label keys and values, and series queries.

Included in the ``/api/v1`` router (``api/routes.py``), so they share its token check
and error answers. No ``from __future__ import annotations``: FastAPI reads parameter
annotations at runtime.
"""

from typing import Annotated, Any

from fastapi import APIRouter, Query

from heron.server.api._params import Project, WindowDep
from heron.server.api._route import ApiRoute
from heron.server.api._schemas import (
    MetricLabelsResponse,
    MetricLabelValuesResponse,
    MetricQueryResponse,
    MetricsResponse,
)
from heron.server.context import Ctx
from heron.server.errors import NotFound
from heron.server.query import InvalidQuery
from heron.server.query import metrics as mq

router = APIRouter(route_class=ApiRoute)

Metric = Annotated[str, Query(min_length=1, description="The metric name.")]
Filters = Annotated[
    list[str] | None,
    Query(
        alias="filter",
        description=(
            "Only series whose label equals the value, as `key=value` (repeatable; all must "
            "hold). `service` is the series' service."
        ),
    ),
]


def _window(w: Any) -> dict[str, Any]:
    echo = w.echo()
    return {"from": echo["from"], "to": echo["to"]}


def parse_filters(filters: list[str] | None) -> tuple[tuple[str, str], ...]:
    """``key=value`` texts as (key, value) pairs; InvalidQuery (400) for another form."""
    out = []
    for f in filters or ():
        key, sep, value = f.partition("=")
        if not sep or not key:
            raise InvalidQuery(f"a filter is key=value, not {f[:64]!r}")
        out.append((key, value))
    return tuple(out)


@router.get("/metrics", response_model=MetricsResponse)
def metrics(
    ctx: Ctx,
    project: Project,
    w: WindowDep,
    service: Annotated[str | None, Query(description="Only metrics of this service.")] = None,
) -> dict[str, Any]:
    """Metrics with data in the range: name, kind (gauge, counter, updown, histogram,
    summary), unit, description, series and the services sending them."""
    rows = mq.list_metrics(ctx.store, project, w.time_range, service or None)
    return {
        "metrics": [
            {
                "name": r.name,
                "kind": r.kind,
                "unit": r.unit,
                "description": r.description,
                "series": r.series,
                "services": list(r.services),
            }
            for r in rows
        ],
        **_window(w),
    }


@router.get("/metrics/labels", response_model=MetricLabelsResponse)
def metric_labels(
    ctx: Ctx, project: Project, w: WindowDep, metric: Metric, filters: Filters = None
) -> dict[str, Any]:
    """The label keys of a metric's series (`service` included), sorted."""
    keys = mq.label_keys(ctx.store, project, metric, w.time_range, parse_filters(filters))
    return {"metric": metric, "keys": keys, **_window(w)}


@router.get("/metrics/label-values", response_model=MetricLabelValuesResponse)
def metric_label_values(
    ctx: Ctx,
    project: Project,
    w: WindowDep,
    metric: Metric,
    key: Annotated[str, Query(min_length=1, description="The label key.")],
    filters: Filters = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 100,
) -> dict[str, Any]:
    """The values of one label with the number of series having each, most first."""
    values = mq.label_values(
        ctx.store, project, metric, key, w.time_range, parse_filters(filters), limit
    )
    return {
        "metric": metric,
        "key": key,
        "values": [{"value": v, "series": n} for v, n in values],
        **_window(w),
    }


@router.get("/metrics/query", response_model=MetricQueryResponse)
def metric_query(
    ctx: Ctx,
    project: Project,
    w: WindowDep,
    metric: Metric,
    agg: Annotated[
        str,
        Query(
            description=(
                "Aggregation: avg, sum, min, max, last, count (gauges); sum, increase, rate, "
                "count (counters); p50, p90, p95, p99, avg, count, rate, sum, min, max "
                "(histograms); avg, count, rate, sum (summaries)."
            ),
            json_schema_extra={"enum": list(mq.AGGS)},
        ),
    ] = "avg",
    by: Annotated[
        str | None, Query(description="Group by these label keys, comma-separated.")
    ] = None,
    filters: Filters = None,
    step: Annotated[
        int | None,
        Query(
            description=(
                "Step in seconds, a multiple of 60. Default: from the range (at most 300 points)."
            )
        ),
    ] = None,
) -> dict[str, Any]:
    """One series per group of the metric's series, a value per step (`null` where a
    step has no data), and the exemplars of the range (newest first) that link to
    traces. Unknown metric: 404; an aggregation the metric's kind has no meaning for
    (p95 of a gauge): 400."""
    if agg not in mq.AGGS:
        raise InvalidQuery(f"unknown aggregation {agg!r}; one of: {', '.join(mq.AGGS)}")
    group_by = tuple(k.strip() for k in by.split(",") if k.strip()) if by else ()
    q = mq.SeriesQuery(metric, agg, group_by, parse_filters(filters), step)  # type: ignore[arg-type]
    try:
        res = mq.query_series(ctx.store, project, q, w.time_range)
    except mq.UnknownMetric as e:
        raise NotFound(str(e)) from None
    return {
        "metric": res.metric,
        "kind": res.kind,
        "unit": res.unit,
        "agg": res.agg,
        "step_s": res.step_s,
        "series": [{"labels": s.labels, "points": s.points} for s in res.series],
        "exemplars": [
            {
                "time_ns": e.time_ns,
                "value": e.value,
                "trace_id": e.trace_id.hex(),
                "span_id": f"{e.span_id:016x}",
                "labels": e.attributes,
            }
            for e in res.exemplars
        ],
        **_window(w),
    }
