"""Helpers to build OTLP requests and read a stopped server's store in e2e tests."""

from __future__ import annotations

import os
from pathlib import Path

import duckdb
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span


def make_request(
    n_spans: int = 3, service: str = "e2e", trace_id: bytes | None = None
) -> tuple[bytes, bytes]:
    """A protobuf export request with one trace of ``n_spans`` spans; returns (body, trace_id)."""
    tid = trace_id or os.urandom(16)
    spans = []
    root = os.urandom(8)
    for i in range(n_spans):
        sid = root if i == 0 else os.urandom(8)
        spans.append(
            Span(
                trace_id=tid,
                span_id=sid,
                parent_span_id=b"" if i == 0 else root,
                name="GET /e2e" if i == 0 else f"child {i}",
                kind=2 if i == 0 else 3,
                start_time_unix_nano=1_700_000_000_000_000_000 + i,
                end_time_unix_nano=1_700_000_000_010_000_000,
                attributes=[KeyValue(key="http.route", value=AnyValue(string_value="/e2e"))]
                if i == 0
                else [],
            )
        )
    req = ExportTraceServiceRequest(
        resource_spans=[
            ResourceSpans(
                resource=Resource(
                    attributes=[KeyValue(key="service.name", value=AnyValue(string_value=service))]
                ),
                scope_spans=[ScopeSpans(spans=spans)],
            )
        ]
    )
    return req.SerializeToString(), tid


def stored_trace_counts(data_dir: Path) -> dict[bytes, int]:
    """Span counts per trace id, read from a *stopped* server's DuckDB file."""
    con = duckdb.connect(str(data_dir / "heron.duckdb"), read_only=True)
    try:
        rows = con.execute("SELECT trace_id, count(*) FROM spans GROUP BY trace_id").fetchall()
    finally:
        con.close()
    return {bytes(t): n for t, n in rows}
