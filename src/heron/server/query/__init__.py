"""The read side: one function per question, returning plain dataclasses.

The JSON API, the UI and the alert evaluator all call these. Every value reaches SQL as
a bound parameter; the only identifiers that vary (sort keys) come from allow-lists.
"""

from __future__ import annotations

from heron.server.query._common import InvalidQuery, TimeRange, filling_share
from heron.server.query._red import (
    ENDPOINT_SORTS,
    SERVICE_SORTS,
    EndpointStats,
    ServiceStats,
    Timeseries,
    TimeseriesPoint,
    endpoint_table,
    service_table,
    service_timeseries,
)
from heron.server.query._red_counters import RedCounters, RedTotals
from heron.server.query._timerange import TIME_HELP, iso, parse_time
from heron.server.query._trace_detail import SpanDetail, TraceDetail, get_trace, parse_trace_id
from heron.server.query._traces import (
    MAX_TRACE_LIMIT,
    AttrFilter,
    SpanMatch,
    TraceQuery,
    TraceSummary,
    search_traces,
)

__all__ = [
    "ENDPOINT_SORTS",
    "MAX_TRACE_LIMIT",
    "SERVICE_SORTS",
    "TIME_HELP",
    "AttrFilter",
    "EndpointStats",
    "InvalidQuery",
    "RedCounters",
    "RedTotals",
    "ServiceStats",
    "SpanDetail",
    "SpanMatch",
    "TimeRange",
    "Timeseries",
    "TimeseriesPoint",
    "TraceDetail",
    "TraceQuery",
    "TraceSummary",
    "endpoint_table",
    "filling_share",
    "get_trace",
    "iso",
    "parse_time",
    "parse_trace_id",
    "search_traces",
    "service_table",
    "service_timeseries",
]

# Services, endpoints, the service map and the critical path (the web UI asks these).
from heron.server.query._critical_path import critical_path
from heron.server.query._endpoints import (
    EndpointTraces,
    ExampleTrace,
    HistogramBin,
    LatencyHistogram,
    endpoint_traces,
    latency_histogram,
)
from heron.server.query._service_map import MapEdge, ServiceMap, service_map
from heron.server.query._services import (
    Choice,
    Sparkline,
    chart_step_s,
    endpoint_known,
    has_data,
    list_endpoints,
    list_environments,
    list_releases,
    list_services,
    service_known,
    service_sparklines,
)

__all__ += [
    "Choice",
    "EndpointTraces",
    "ExampleTrace",
    "HistogramBin",
    "LatencyHistogram",
    "MapEdge",
    "ServiceMap",
    "Sparkline",
    "chart_step_s",
    "critical_path",
    "endpoint_known",
    "endpoint_traces",
    "has_data",
    "latency_histogram",
    "list_endpoints",
    "list_environments",
    "list_releases",
    "list_services",
    "service_known",
    "service_map",
    "service_sparklines",
]

# Database analytics and N+1 findings (issue 4).
from heron.server.query._db import (  # noqa: E402 - after the sections above
    DB_QUERY_SORTS,
    MAX_DB_LIMIT,
    MAX_SAMPLES,
    QueryDetail,
    QueryEndpoint,
    QueryPoint,
    QuerySample,
    QueryStats,
    format_fingerprint,
    parse_fingerprint,
    query_detail,
    query_samples,
    slow_queries,
    top_queries,
)
from heron.server.query._db_slow import (  # noqa: E402
    SLOW_GROUP_SORTS,
    SlowQueryGroup,
    slow_query_groups,
)
from heron.server.query._n_plus_one import (  # noqa: E402
    MAX_FINDINGS,
    N_PLUS_ONE_SORTS,
    NPlusOneFinding,
    n_plus_one_findings,
)

__all__ += [
    "DB_QUERY_SORTS",
    "MAX_DB_LIMIT",
    "MAX_FINDINGS",
    "MAX_SAMPLES",
    "N_PLUS_ONE_SORTS",
    "SLOW_GROUP_SORTS",
    "NPlusOneFinding",
    "QueryDetail",
    "QueryEndpoint",
    "QueryPoint",
    "QuerySample",
    "QueryStats",
    "SlowQueryGroup",
    "format_fingerprint",
    "n_plus_one_findings",
    "parse_fingerprint",
    "query_detail",
    "query_samples",
    "slow_queries",
    "slow_query_groups",
    "top_queries",
]

# Error tracking and logs (issue 5).
from heron.server.query._errors import (  # noqa: E402
    ISSUE_SORTS,
    MAX_EVENT_LIMIT,
    MAX_ISSUE_LIMIT,
    TAG_SAMPLE,
    Count,
    EventDetail,
    EventPage,
    EventSummary,
    IssueDetail,
    IssuePoint,
    IssueSummary,
    TagBreakdown,
    error_platforms,
    error_releases,
    error_services,
    get_event,
    get_issue,
    has_errors,
    issue_detail,
    issue_events,
    issue_exists,
    issue_platforms,
    issue_trends,
    list_issues,
    parse_event_id,
    set_issue_status,
)
from heron.server.query._logs import (  # noqa: E402
    MAX_LOG_LIMIT,
    SEVERITIES,
    LogLine,
    LogPage,
    LogQuery,
    log_services,
    parse_severity,
    search_logs,
    trace_logs,
)

__all__ += [
    "ISSUE_SORTS",
    "MAX_EVENT_LIMIT",
    "MAX_ISSUE_LIMIT",
    "MAX_LOG_LIMIT",
    "SEVERITIES",
    "TAG_SAMPLE",
    "Count",
    "EventDetail",
    "EventPage",
    "EventSummary",
    "IssueDetail",
    "IssuePoint",
    "IssueSummary",
    "LogLine",
    "LogPage",
    "LogQuery",
    "TagBreakdown",
    "error_platforms",
    "error_releases",
    "error_services",
    "get_event",
    "get_issue",
    "has_errors",
    "issue_detail",
    "issue_events",
    "issue_exists",
    "issue_platforms",
    "issue_trends",
    "list_issues",
    "log_services",
    "parse_event_id",
    "parse_severity",
    "search_logs",
    "set_issue_status",
    "trace_logs",
]

# Dashboards (issue 11); the metric queries themselves are in query.metrics.
from heron.server.query._dashboards import (  # noqa: E402
    Dashboard,
    VersionConflict,
    create_dashboard,
    delete_dashboard,
    duplicate_dashboard,
    get_dashboard,
    list_dashboards,
    parse_dashboard,
    update_dashboard,
)

__all__ += [
    "Dashboard",
    "VersionConflict",
    "create_dashboard",
    "delete_dashboard",
    "duplicate_dashboard",
    "get_dashboard",
    "list_dashboards",
    "parse_dashboard",
    "update_dashboard",
]

# Metrics (issue 11): the series queries and the runtime/host metric names are modules of
# their own (``query.metrics``, ``query.runtime``), imported by name.
from heron.server.query import metrics, runtime  # noqa: E402

__all__ += ["metrics", "runtime"]

# Real-user monitoring (issue 13): web vitals, pages, sessions, as ``query.rum``.
from heron.server.query import rum  # noqa: E402

__all__ += ["rum"]

# Performance analysis (issue 14): grades and findings, as ``query.analysis``.
from heron.server.query import analysis  # noqa: E402

__all__ += ["analysis"]

# Load-test runs (issue 14): figures, comparison and series of runs, as ``query.loadtest``.
from heron.server.query import loadtest  # noqa: E402

__all__ += ["loadtest"]
