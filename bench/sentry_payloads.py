"""The same trace in three wire formats, for ``errors_ingest.py``'s tracing modes.

A trace of ``n`` spans (an HTTP server root; children cycling through a SELECT, an
UPDATE, an outgoing HTTP call and a function span) as:

* ``sentry-tx``: a Sentry envelope with one ``transaction`` item, as sentry-sdk 2.x sends
  it (RFC 3339 timestamps, ``data`` with the SDK's attribute names, request, tags);
* ``sentry-spans``: an envelope with one span v2 item, as sentry-sdk 3.x streams it
  (typed attributes, the per-process attributes repeated on every span);
* ``otlp-json``: an OTLP/HTTP JSON ``ExportTraceServiceRequest`` with the same spans and
  current semantic-convention attributes (the same-run baseline).

The trace id is ``ID_PLACEHOLDER``, which the client replaces per request.
"""

from __future__ import annotations

import time
from datetime import datetime, timezone
from typing import Any

import orjson

TRACE_ID = "f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0"  # == errors_ingest.ID_PLACEHOLDER
ROOT_ID = f"{1:016x}"
RELEASE, ENVIRONMENT = "shop@4.2.0", "production"
_CHILDREN = [
    ("db", "SELECT id, total FROM orders WHERE customer_id = %s", {"db.system": "postgresql"}),
    ("db", "UPDATE stock SET qty = qty - %s WHERE sku = %s", {"db.system": "postgresql"}),
    ("http.client", "GET https://pay.example/v1/charges/ch_1", {"http.method": "GET"}),
    ("function", "render_receipt", {}),
]


def _spans(n: int) -> list[dict[str, Any]]:
    """The abstract trace: op, description, data, start and end (Unix seconds)."""
    t0 = time.time() - 1.0
    root = {"span_id": ROOT_ID, "op": "http.server", "description": None, "data": {}}
    root |= {"start": t0, "end": t0 + 0.002 * n + 0.01}
    spans = [root]
    for i in range(1, n):
        op, description, data = _CHILDREN[(i - 1) % len(_CHILDREN)]
        start = t0 + 0.002 * i
        spans.append(
            {
                "span_id": f"{i + 1:016x}",
                "op": op,
                "description": description,
                "data": {**data, "thread.id": "140192484932480", "thread.name": "MainThread"},
                "start": start,
                "end": start + 0.0015,
            }
        )
    return spans


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, timezone.utc).isoformat().replace("+00:00", "Z")


def _envelope(kind: str, payload: dict[str, Any], **item: Any) -> bytes:
    body = orjson.dumps(payload)
    header = orjson.dumps({"sent_at": _iso(time.time()), "trace": {"trace_id": TRACE_ID}})
    return b"\n".join([header, orjson.dumps({"type": kind, "length": len(body), **item}), body])


def transaction_envelope(n: int) -> bytes:
    root, *children = _spans(n)
    doc = {
        "type": "transaction",
        "transaction": "/orders/<int:order_id>",
        "transaction_info": {"source": "route"},
        "contexts": {
            "trace": {
                "trace_id": TRACE_ID,
                "span_id": ROOT_ID,
                "op": "http.server",
                "origin": "auto.http.flask",
                "status": "ok",
                "data": {"http.response.status_code": 200},
            },
            "response": {"status_code": 200},
        },
        "tags": {"http.status_code": "200"},
        "start_timestamp": _iso(root["start"]),
        "timestamp": _iso(root["end"]),
        "spans": [
            {
                "trace_id": TRACE_ID,
                "span_id": s["span_id"],
                "parent_span_id": ROOT_ID,
                "same_process_as_parent": True,
                "op": s["op"],
                "description": s["description"],
                "start_timestamp": _iso(s["start"]),
                "timestamp": _iso(s["end"]),
                "origin": "auto",
                "data": s["data"],
            }
            for s in children
        ],
        "measurements": {},
        "request": {"url": "http://shop.example/orders/7", "method": "GET", "query_string": ""},
        "release": RELEASE,
        "environment": ENVIRONMENT,
        "server_name": "web-1",
        "platform": "python",
        "sdk": {"name": "sentry.python.flask", "version": "2.76.0"},
    }
    return _envelope("transaction", doc, content_type="application/json")


_V3_COMMON = {
    "sentry.release": RELEASE,
    "sentry.environment": ENVIRONMENT,
    "sentry.sdk.name": "sentry.python.flask",
    "sentry.sdk.version": "3.0.0",
    "server.address": "web-1",
    "process.runtime.name": "CPython",
    "process.runtime.version": "3.11.7",
    "sentry.segment.id": ROOT_ID,
    "sentry.segment.name": "/orders/<int:order_id>",
}
_V3_NAMES = {"http.method": "http.request.method", "db.system": "db.system.name"}


def _typed(attrs: dict[str, Any]) -> dict[str, Any]:
    kinds = {bool: "boolean", int: "integer", float: "double", str: "string"}
    return {k: {"value": v, "type": kinds[type(v)]} for k, v in attrs.items()}


def span_items_envelope(n: int) -> bytes:
    items = []
    for s in _spans(n):
        is_root = s["span_id"] == ROOT_ID
        attrs = {_V3_NAMES.get(k, k): v for k, v in s["data"].items()}
        attrs |= {"sentry.op": s["op"], "sentry.origin": "auto", **_V3_COMMON}
        if is_root:
            attrs |= {"http.request.method": "GET", "http.route": "/orders/<int:order_id>"}
            attrs |= {"http.response.status_code": 200, "url.path": "/orders/7"}
        elif s["op"] == "db":
            attrs["db.query.text"] = s["description"]
        item = {
            "trace_id": TRACE_ID,
            "span_id": s["span_id"],
            "name": "/orders/<int:order_id>" if is_root else s["description"],
            "status": "ok",
            "is_segment": is_root,
            "start_timestamp": s["start"],
            "end_timestamp": s["end"],
            "attributes": _typed(attrs),
        }
        if not is_root:
            item["parent_span_id"] = ROOT_ID
        items.append(item)
    return _envelope(
        "span",
        {"version": 2, "items": items},
        item_count=len(items),
        content_type="application/vnd.sentry.items.span.v2+json",
    )


def _otlp_value(v: Any) -> dict[str, Any]:
    if isinstance(v, bool):
        return {"boolValue": v}
    if isinstance(v, int):
        return {"intValue": str(v)}
    return {"stringValue": str(v)}


def _otlp_attrs(attrs: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"key": k, "value": _otlp_value(v)} for k, v in attrs.items()]


def otlp_json(n: int) -> bytes:
    spans = []
    for s in _spans(n):
        is_root = s["span_id"] == ROOT_ID
        attrs = {_V3_NAMES.get(k, k): v for k, v in s["data"].items()}
        if is_root:
            attrs = {"http.request.method": "GET", "http.route": "/orders/<int:order_id>"}
            attrs |= {"http.response.status_code": 200, "url.path": "/orders/7"}
        elif s["op"] == "db":
            attrs["db.query.text"] = s["description"]
        span = {
            "traceId": TRACE_ID,
            "spanId": s["span_id"],
            "name": "GET /orders/<int:order_id>" if is_root else str(s["description"]),
            "kind": 2 if is_root else 3 if s["op"] in ("db", "http.client") else 1,
            "startTimeUnixNano": str(int(s["start"] * 1e9)),
            "endTimeUnixNano": str(int(s["end"] * 1e9)),
            "attributes": _otlp_attrs(attrs),
            "status": {"code": 1},
        }
        if not is_root:
            span["parentSpanId"] = ROOT_ID
        spans.append(span)
    resource = {
        "service.name": "shop",
        "service.version": RELEASE,
        "deployment.environment.name": ENVIRONMENT,
        "telemetry.sdk.name": "opentelemetry",
        "telemetry.sdk.language": "python",
        "host.name": "web-1",
    }
    doc = {
        "resourceSpans": [
            {
                "resource": {"attributes": _otlp_attrs(resource)},
                "scopeSpans": [{"scope": {"name": "bench"}, "spans": spans}],
            }
        ]
    }
    return orjson.dumps(doc)
