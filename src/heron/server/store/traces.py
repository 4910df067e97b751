"""Traces and spans: trace search, one trace's spans, span detail.

The protocol the query layer (and jobs) call; each backend implements it
(DuckDB: ``store/duckdb/traces.py``). No SQL above ``store/``."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from heron.server.model.span import SpanRow
from heron.server.semconv import (
    DB_STATEMENT_KEYS,
    DB_SYSTEM_KEYS,
    ENVIRONMENT_KEYS,
    HTTP_METHOD_KEYS,
    HTTP_ROUTE_KEYS,
    HTTP_STATUS_KEYS,
)

# (trace id bytes, span id, service, name, start ns, duration ns)
MatchRow = tuple[bytes, int, str, str, int, int]
# (trace id bytes, span id, start ns, duration ns, http status, release, error)
ExampleRow = tuple[bytes, int, int, int, int | None, str, bool]

# Attribute names stored in a column rather than in the attributes JSON (every backend).
COLUMN_OF_KEY: dict[str, str] = {
    **dict.fromkeys(HTTP_METHOD_KEYS, "http_method"),
    **dict.fromkeys(HTTP_ROUTE_KEYS, "http_route"),
    **dict.fromkeys(HTTP_STATUS_KEYS, "http_status"),
    **dict.fromkeys(DB_SYSTEM_KEYS, "db_system"),
    **dict.fromkeys(DB_STATEMENT_KEYS, "db_statement"),
    **dict.fromkeys(ENVIRONMENT_KEYS, "environment"),
    "service.name": "service",
    "service.version": "release",
}


@dataclass(frozen=True, slots=True)
class SpanFilter:
    """Conditions one span must all match (besides project and time); None = any.

    ``endpoint`` matches a rollup endpoint name (``METHOD route``), a bare route or a span
    name; ``attributes`` are ``(key, value)`` pairs compared as text on a span or resource
    attribute."""

    service: str | None = None
    environment: str | None = None
    endpoint: str | None = None
    min_duration_ns: int | None = None
    max_duration_ns: int | None = None
    status: Literal["any", "ok", "error"] = "any"
    attributes: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class EntryFilter:
    """The entry spans of one endpoint of a service (rollup naming), optionally narrowed."""

    service: str
    endpoint: str
    environment: str | None = None
    release: str | None = None


@dataclass(frozen=True, slots=True)
class RequestSamples:
    """The requests (entry spans, rollup naming) of one endpoint in a window, as columns
    of equal length (numpy arrays, ordered by start time): what a load-test comparison
    tests. ``error`` is the rollup's notion of a failed request."""

    service: str
    endpoint: str
    start_ns: Any  # numpy int64
    duration_ns: Any  # numpy int64
    error: Any  # numpy bool


SAMPLE_COLUMNS = ("service", "endpoint", "start_ns", "duration_ns", "error")
"""The columns a backend's ``request_samples`` query gives, ordered by start time."""


def _codes(col: pa.ChunkedArray) -> tuple[np.ndarray, list[str]]:
    """Dictionary codes of a string column (ClickHouse's LowCardinality ones included)."""
    if pa.types.is_dictionary(col.type):
        col = col.cast(pa.string())
    encoded = pc.dictionary_encode(col.combine_chunks())
    codes = np.asarray(encoded.indices.to_numpy(zero_copy_only=False), dtype=np.int64)
    return codes, [str(v) for v in encoded.dictionary.to_pylist()]


def split_samples(table: pa.Table) -> list[RequestSamples]:
    """One ``RequestSamples`` per (service, endpoint) of a table of ``SAMPLE_COLUMNS``
    ordered by start time, sorted by service then endpoint. Vectorised: the database
    sorts integers only, the grouping is a stable numpy sort of small integer codes, so
    a million requests become arrays without a Python object per request."""
    if table.num_rows == 0:
        return []
    svc, svc_names = _codes(table.column("service"))
    ep, ep_names = _codes(table.column("endpoint"))
    key = svc * len(ep_names) + ep
    if len(svc_names) * len(ep_names) < 2**15:
        key = key.astype(np.int16)  # numpy sorts 16-bit integers stably by radix
    order = np.argsort(key, kind="stable")  # keeps start order within a group
    grouped = key[order]
    bounds = [0, *(np.flatnonzero(grouped[1:] != grouped[:-1]) + 1).tolist(), len(order)]
    start = np.asarray(table.column("start_ns").to_numpy(), dtype=np.int64)[order]
    duration = np.asarray(table.column("duration_ns").to_numpy(), dtype=np.int64)[order]
    error = table.column("error").cast(pa.bool_()).fill_null(False).to_numpy()
    error = np.asarray(error, dtype=bool)[order]
    out = []
    for lo, hi in zip(bounds, bounds[1:], strict=False):
        k = int(grouped[lo])
        s_i, e_i = divmod(k, len(ep_names))
        out.append(
            RequestSamples(
                service=svc_names[s_i],
                endpoint=ep_names[e_i],
                start_ns=start[lo:hi],
                duration_ns=duration[lo:hi],
                error=error[lo:hi],
            )
        )
    out.sort(key=lambda r: (r.service, r.endpoint))
    return out


class TraceReader(Protocol):
    def matching_spans(
        self, project_id: int, lo_ns: int, hi_ns: int, span_filter: SpanFilter, limit: int
    ) -> list[MatchRow]:
        """The newest ``limit`` spans starting in ``[lo_ns, hi_ns)`` that match the filter,
        newest first."""

    def trace_summaries(self, project_id: int, trace_ids: Sequence[bytes]) -> list[dict[str, Any]]:
        """Per trace: trace_id, start_ns, end_ns, span_count, error, services (sorted),
        root_service and root_name (the span without a parent, else the earliest)."""

    def trace_spans(self, project_id: int, trace_id: bytes) -> list[SpanRow]:
        """Every stored span of a trace, by start time then span id."""

    def has_spans(self, project_id: int) -> bool:
        """Whether the project has any span still retained."""

    def endpoint_examples(
        self,
        project_id: int,
        where: EntryFilter,
        runs: Sequence[tuple[int, int]],
        *,
        min_duration_ns: int,
        errors_only: bool,
        order: Literal["slowest", "recent"],
        limit: int,
    ) -> list[ExampleRow]:
        """Top ``limit`` entry spans of an endpoint starting in any of the ``[lo, hi)``
        runs (ns), slowest first (then newest) or newest first."""

    def request_samples(
        self,
        project_id: int,
        lo_ns: int,
        hi_ns: int,
        *,
        service: str | None = None,
        environment: str | None = None,
    ) -> list[RequestSamples]:
        """Every entry span starting in ``[lo_ns, hi_ns)``, one ``RequestSamples`` per
        (service, endpoint), sorted by service then endpoint."""

    def outgoing_calls(
        self,
        project_id: int,
        lo_ns: int,
        hi_ns: int,
        *,
        service: str | None = None,
        environment: str | None = None,
    ) -> list[EndpointCalls]:
        """Per (service, endpoint) of the entry spans starting in ``[lo_ns, hi_ns)`` that
        made outgoing HTTP calls: its requests and total time, and the time spent in its
        client calls per callee (the rules above ``CalleeTime``). Sorted by service, then
        endpoint; callees by total time, most first."""


# Outgoing HTTP calls, the same on every backend: a CLIENT span (kind 3) with an HTTP
# method (lifted ``http.request.method``/``http.method``) or a ``url.full``/``http.url``
# attribute, and no database statement. It belongs to the entry span of its trace and
# service that started last at or before it (the rollups' endpoint rule), if it starts
# before that span ends. Its callee is ``METHOD host[:port][url.template]``: the host
# from ``server.address`` (with ``server.port``), else from the URL, else
# ``net.peer.name``; with no host at all, the span name. Parallel or nested client spans
# each count their own time, so the time in calls can exceed the request time.


@dataclass(frozen=True, slots=True)
class CalleeTime:
    """The outgoing calls of one endpoint to one callee."""

    callee: str
    calls: int
    total_ns: int
    example_trace_id: bytes
    """The trace of the endpoint's longest call to it."""


@dataclass(frozen=True, slots=True)
class EndpointCalls:
    """One endpoint's requests and its outgoing HTTP calls, per callee."""

    service: str
    endpoint: str
    requests: int
    total_ns: int
    """The endpoint's total request time (sum of its entry spans' durations)."""
    callees: list[CalleeTime]


# A backend's grouped rows: (service, endpoint, requests, total_ns, callee, calls,
# calls_ns, example trace id bytes), by service and endpoint, callees most time first.
CalleeRow = tuple[str, str, int, int, str, int, int, bytes]

CALLEE_KEYS = (
    "server.address",
    "server.port",
    "url.full",
    "http.url",
    "net.peer.name",
    "net.peer.port",
    "url.template",
)
"""The span attributes a callee is named from (the rules above ``CalleeTime``)."""
URL_HOST_RE = r"^[A-Za-z][A-Za-z0-9+.-]*://(?:[^@/?#]*@)?([^/?#]+)"
"""``scheme://[user@]host[:port]`` of a URL (RE2, as both backends run it): the host."""
CALL_SLACK_NS = 600 * 10**9
"""Client spans are read up to 10 minutes past the window: a request starting in it
may call out after it ends."""


def endpoint_calls(rows: Sequence[CalleeRow]) -> list[EndpointCalls]:
    """Fold the backends' rows, one per (service, endpoint, callee), per endpoint."""
    out: list[EndpointCalls] = []
    for service, endpoint, requests, total_ns, callee, calls, calls_ns, trace in rows:
        if not out or (out[-1].service, out[-1].endpoint) != (service, endpoint):
            out.append(EndpointCalls(service, endpoint, int(requests), int(total_ns), []))
        out[-1].callees.append(CalleeTime(callee, int(calls), int(calls_ns), bytes(trace)))
    return out
