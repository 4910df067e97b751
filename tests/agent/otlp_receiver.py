"""A real OTLP/HTTP receiver on loopback: decodes what an agent sends to /v1/logs, /v1/traces
and /v1/metrics.

It keeps every raw request body too, so tests can search the exact bytes that left the
agent (secret canaries must never be in them).
"""

from __future__ import annotations

import gzip
import json
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

Record = dict[str, Any]


def _value(v: Any) -> Any:
    kind = v.WhichOneof("value")
    if kind == "kvlist_value":
        return {kv.key: _value(kv.value) for kv in v.kvlist_value.values}
    if kind == "array_value":
        return [_value(x) for x in v.array_value.values]
    return getattr(v, kind) if kind else None


def _attrs(kvs: Any) -> dict[str, Any]:
    return {kv.key: _value(kv.value) for kv in kvs}


class OtlpReceiver:
    """``url`` is the base URL; ``logs``/``spans`` are the decoded records, in arrival order."""

    def __init__(self) -> None:
        self.bodies: list[tuple[str, bytes]] = []
        self.keys: list[str | None] = []
        self.logs: list[Record] = []
        self.spans: list[Record] = []
        self.points: list[Record] = []  # metric data points, one record each
        self.refuse: set[str] = set()  # paths answered 404 (a server without that signal)
        self._lock = threading.RLock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if self.path in receiver.refuse:
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                receiver._receive(self.path, body, self.headers.get("x-heron-key"))
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def start(self) -> OtlpReceiver:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)

    def _receive(self, path: str, body: bytes, key: str | None) -> None:
        with self._lock:
            self.bodies.append((path, body))
            self.keys.append(key)
            if path.endswith("/v1/logs"):
                self.logs.extend(_decode_logs(body))
            elif path.endswith("/v1/traces"):
                self.spans.extend(_decode_spans(body))
            elif path.endswith("/v1/metrics"):
                self.points.extend(_decode_metrics(body))

    def metric(self, name: str) -> list[Record]:
        """The data points of metric ``name`` received so far, in arrival order."""
        with self._lock:
            return [p for p in self.points if p["name"] == name]

    def latest(self, name: str, **attributes: Any) -> Record | None:
        """The last point of ``name`` whose attributes include ``attributes``."""
        for point in reversed(self.metric(name)):
            if all(point["attributes"].get(k) == v for k, v in attributes.items()):
                return point
        return None

    def raw(self, path: str = "/v1/logs") -> bytes:
        """Every body received on ``path``, as sent (after gzip decoding), joined."""
        with self._lock:
            return b"\n".join(body for p, body in self.bodies if p.endswith(path))

    def events(self) -> list[dict[str, Any]]:
        """The ``heron.event`` documents received, decoded."""
        return [json.loads(r["attributes"]["heron.event"]) for r in self.logs_with("heron.event")]

    def logs_with(self, attribute: str) -> list[Record]:
        with self._lock:
            return [r for r in self.logs if attribute in r["attributes"]]

    def wait(self, predicate: Callable[[OtlpReceiver], bool], timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if predicate(self):
                    return
            time.sleep(0.05)
        summary = [(r["scope"], r["body"][:80]) for r in self.logs]
        raise AssertionError(
            f"timed out; logs: {summary}; spans: {[s['name'] for s in self.spans]}"
        )


def _decode_logs(body: bytes) -> list[Record]:
    request = ExportLogsServiceRequest()
    request.ParseFromString(body)
    out = []
    for rl in request.resource_logs:
        resource = _attrs(rl.resource.attributes)
        for sl in rl.scope_logs:
            for r in sl.log_records:
                out.append(
                    {
                        "scope": sl.scope.name,
                        "resource": resource,
                        "time_ns": r.time_unix_nano,
                        "observed_ns": r.observed_time_unix_nano,
                        "severity_number": r.severity_number,
                        "severity_text": r.severity_text,
                        "body": _value(r.body),
                        "trace_id": r.trace_id.hex(),
                        "span_id": r.span_id.hex(),
                        "attributes": _attrs(r.attributes),
                    }
                )
    return out


def _decode_spans(body: bytes) -> list[Record]:
    request = ExportTraceServiceRequest()
    request.ParseFromString(body)
    out = []
    for rs in request.resource_spans:
        for ss in rs.scope_spans:
            for s in ss.spans:
                out.append(
                    {
                        "resource": _attrs(rs.resource.attributes),
                        "name": s.name,
                        "kind": s.kind,
                        "trace_id": s.trace_id.hex(),
                        "span_id": s.span_id.hex(),
                        "parent_span_id": s.parent_span_id.hex(),
                        "attributes": _attrs(s.attributes),
                    }
                )
    return out


def _decode_metrics(body: bytes) -> list[Record]:
    """One record per data point: name, kind, unit, resource, attributes and its values."""
    request = ExportMetricsServiceRequest()
    request.ParseFromString(body)
    out = []
    for rm in request.resource_metrics:
        resource = _attrs(rm.resource.attributes)
        for sm in rm.scope_metrics:
            for m in sm.metrics:
                kind = m.WhichOneof("data")
                data = getattr(m, kind)
                for p in data.data_points:
                    point: Record = {
                        "name": m.name,
                        "kind": kind,
                        "unit": m.unit,
                        "scope": sm.scope.name,
                        "resource": resource,
                        "attributes": _attrs(p.attributes),
                        "start_ns": p.start_time_unix_nano,
                        "time_ns": p.time_unix_nano,
                    }
                    if kind in ("sum", "gauge"):
                        point["value"] = p.as_double if p.HasField("as_double") else p.as_int
                        if kind == "sum":
                            point["monotonic"] = data.is_monotonic
                            point["temporality"] = data.aggregation_temporality
                    elif kind == "histogram":
                        point.update(
                            count=p.count,
                            sum=p.sum,
                            min=p.min,
                            max=p.max,
                            bounds=list(p.explicit_bounds),
                            buckets=list(p.bucket_counts),
                            temporality=data.aggregation_temporality,
                        )
                    out.append(point)
    return out
