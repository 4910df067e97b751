"""Sentry performance data as spans: ``transaction`` items (sentry-sdk 2.x) and ``span``
items (span v2, what sentry-sdk 3.x streams).

Both become :class:`Span` records through the OTLP decoder's span builder, so ids, times
and lifted attributes are validated exactly as for ``/v1/traces``, and the store then
fingerprints SQL and rolls up RED figures as for any other span. The mapping:

- ``op`` (2.x) or the ``sentry.op`` attribute (3.x) decides the kind: ``http.server``
  → SERVER, ``db*``/``http.client``/``cache.*`` → CLIENT, ``queue.task*`` →
  CONSUMER, ``queue.submit*``/``queue.publish`` → PRODUCER, anything else INTERNAL;
- names follow the semantic conventions: a server span is ``METHOD route`` (the
  transaction name when its source is ``route``), a database span ``OPERATION
  namespace`` (never the statement, which goes to ``db.query.text``), an HTTP client
  span its method, others keep the description (2.x) or name (3.x);
- ``status`` ``ok`` → OK, any other (``internal_error``, ``error`` ...) → ERROR with the
  Sentry status as message, except on server spans answered below 500 (as OTel's HTTP
  conventions say);
- 2.x ``data``, tags, ``request`` and ``contexts.response`` become current semantic
  convention attributes (``http.method`` → ``http.request.method``, ``url`` →
  ``url.full``, ``db.system`` → ``db.system.name`` ...); ``measurements`` are kept as
  ``measurement.<name>`` attributes;
- release, environment and SDK become the resource (``service.version``,
  ``deployment.environment.name``, ``telemetry.sdk.*``); the service comes from
  :func:`heron.server.ingest.sentry.service_name`. URLs are scrubbed here (secret
  query values, userinfo) and sensitive header attributes filtered.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from typing import Any
from urllib.parse import urlsplit

from heron._scrub import FILTERED, Scrubber
from heron.server.ingest.otlp.common import ResourceInfo
from heron.server.ingest.otlp.traces import build_span
from heron.server.model import (
    SPAN_KIND_CLIENT,
    SPAN_KIND_CONSUMER,
    SPAN_KIND_INTERNAL,
    SPAN_KIND_PRODUCER,
    SPAN_KIND_SERVER,
    STATUS_ERROR,
    STATUS_OK,
    STATUS_UNSET,
    Span,
)

# Older Sentry span data keys → current semantic-convention names.
RENAMED = {
    "http.method": "http.request.method",
    "method": "http.request.method",
    "url": "url.full",
    "http.url": "url.full",
    "http.query": "url.query",
    "http.fragment": "url.fragment",
    "http.status_code": "http.response.status_code",
    "status_code": "http.response.status_code",
    "db.system": "db.system.name",
    "db.name": "db.namespace",
    "db.operation": "db.operation.name",
    "db.statement": "db.query.text",
}
# Per-process facts 3.x repeats on every span: kept on the resource or dropped
# (``process.command_args`` may carry the DSN, i.e. the ingest key).
_RESOURCE_ATTRS = {
    "sentry.release": "service.version",
    "sentry.environment": "deployment.environment.name",
    "sentry.sdk.name": "telemetry.sdk.name",
    "sentry.sdk.version": "telemetry.sdk.version",
    "sentry.platform": "telemetry.sdk.language",
    "sentry.dist": "service.dist",
    "process.runtime.name": "process.runtime.name",
    "process.runtime.version": "process.runtime.version",
}
_DROPPED_ATTRS = frozenset(
    {
        "process.command_args",
        "sentry.sdk.integrations",
        "sentry.trace_lifecycle",
        "sentry.segment.id",
        "sentry.segment.name",
        "sentry.is_localhost",
    }
)
_URL_ATTRS = ("url.full", "url.query")
_HEADER_PREFIXES = ("http.request.header.", "http.response.header.")
_SERVER_OPS = ("http.server", "websocket.server", "rpc.server", "grpc.server", "function.")
_CLIENT_OPS = ("http.client", "db", "cache.", "grpc.client", "rpc.client", "queue.receive")
_KIND_NAMES = {
    "server": SPAN_KIND_SERVER,
    "client": SPAN_KIND_CLIENT,
    "producer": SPAN_KIND_PRODUCER,
    "consumer": SPAN_KIND_CONSUMER,
    "internal": SPAN_KIND_INTERNAL,
}
# The SDK's own uploads (sentry-sdk 3.0 traces its transport's POSTs to the DSN).
_SDK_UPLOAD = re.compile(r"^POST \S*/api/\d+/envelope/?$")
# Transaction-name sources that are low-cardinality names, not raw URLs.
_NAMED_SOURCES = ("route", "component", "view", "task", "custom")

TimestampNs = Callable[[Any, int], int]
MAX_TIME_NS = 2**63  # the stores' time columns are signed 64-bit nanoseconds


class SentrySpans:
    """Spans of one envelope, and how many spans were rejected (with the first reasons)."""

    def __init__(self, scrubber: Scrubber, timestamp_ns: TimestampNs) -> None:
        self.scrubber = scrubber
        self.timestamp_ns = timestamp_ns
        self.spans: list[Span] = []
        self.rejected = 0
        self.errors: list[str] = []
        self._resources: dict[tuple[str, ...], ResourceInfo] = {}

    # ------------------------------------------------------------------ 2.x

    def add_transaction(self, doc: Mapping[str, Any], service: str) -> None:
        """A 2.x transaction event: its root (``contexts.trace``) and its ``spans``."""
        trace = _dict(_dict(doc.get("contexts")).get("trace"))
        res = self._resource(
            service,
            _text(doc.get("release")),
            _text(doc.get("environment")),
            _dict(doc.get("sdk")),
            _text(doc.get("platform")),
            _text(doc.get("server_name")),
        )
        root_attrs = _legacy_attrs(trace.get("data"), doc.get("tags"), doc.get("measurements"))
        root_attrs.update(self._request_attrs(doc))
        self._add(
            res,
            trace,
            doc.get("start_timestamp"),
            doc.get("timestamp"),
            root_attrs,
            segment=(_text(doc.get("transaction")), _source(doc)),
        )
        trace_id = trace.get("trace_id")
        spans = doc.get("spans")
        for raw in spans if isinstance(spans, list) else []:
            if not isinstance(raw, dict):
                self._reject(ValueError("span must be an object"))
                continue
            attrs = _legacy_attrs(raw.get("data"), raw.get("tags"), raw.get("measurements"))
            self._add(
                res,
                {"trace_id": trace_id, **raw},
                raw.get("start_timestamp"),
                raw.get("timestamp"),
                attrs,
            )

    def _request_attrs(self, doc: Mapping[str, Any]) -> dict[str, Any]:
        req = _dict(doc.get("request"))
        out: dict[str, Any] = {}
        if isinstance(req.get("method"), str):
            out["http.request.method"] = req["method"]
        url, query = _text(req.get("url")), req.get("query_string")
        if url:
            parts = urlsplit(url)
            out["url.path"] = parts.path
            if isinstance(query, str) and query and not parts.query:
                url = f"{url}?{query}"
            out["url.full"] = url
        if isinstance(query, str) and query:
            out["url.query"] = query
        agent = _dict(req.get("headers")).get("User-Agent")
        if isinstance(agent, str):
            out["user_agent.original"] = agent
        status = _dict(_dict(doc.get("contexts")).get("response")).get("status_code")
        if isinstance(status, int):
            out["http.response.status_code"] = status
        return out

    # ------------------------------------------------------------------ 3.x

    def add_span_items(self, payload: Mapping[str, Any], service_of: ServiceOf) -> None:
        """A span v2 item: ``{"items": [span, ...]}``, each span's attributes typed
        (``{"type": ..., "value": ...}``)."""
        items = payload.get("items")
        if not isinstance(items, list):
            self._reject(ValueError("span item has no 'items' array"))
            return
        for raw in items:
            if not isinstance(raw, dict):
                self._reject(ValueError("span must be an object"))
                continue
            attrs = _renamed(_typed_values(raw.get("attributes")))
            resource = {k: attrs.pop(k) for k in list(attrs) if k in _RESOURCE_ATTRS}
            for k in _DROPPED_ATTRS.intersection(attrs):
                del attrs[k]
            res = self._resource(
                service_of(attrs, _text(resource.get("sentry.release"))),
                _text(resource.get("sentry.release")),
                _text(resource.get("sentry.environment")),
                {
                    "name": resource.get("sentry.sdk.name"),
                    "version": resource.get("sentry.sdk.version"),
                },
                _text(resource.get("sentry.platform")),
                "",
            )
            segment = None
            if raw.get("is_segment") is True:
                segment = (_text(raw.get("name")), _text(attrs.get("sentry.segment.name.source")))
            fields = {**raw, "op": attrs.get("sentry.op"), "description": raw.get("name")}
            self._add(
                res, fields, raw.get("start_timestamp"), raw.get("end_timestamp"), attrs, segment
            )

    # ------------------------------------------------------------------ shared

    def _resource(
        self,
        service: str,
        release: str,
        environment: str,
        sdk: Mapping[str, Any],
        platform: str,
        host: str,
    ) -> ResourceInfo:
        sdk_name, sdk_version = _text(sdk.get("name")), _text(sdk.get("version"))
        key = (service, release, environment, sdk_name, sdk_version, platform, host)
        res = self._resources.get(key)
        if res is None:
            attrs = {
                "service.name": service,
                "service.version": release,
                "deployment.environment.name": environment,
                "telemetry.sdk.name": sdk_name,
                "telemetry.sdk.version": sdk_version,
                "telemetry.sdk.language": platform,
                "host.name": host,
            }
            res = ResourceInfo({k: v for k, v in attrs.items() if v})
            self._resources[key] = res
        return res

    def _add(
        self,
        res: ResourceInfo,
        raw: Mapping[str, Any],
        start: Any,
        end: Any,
        attrs: dict[str, Any],
        segment: tuple[str, str] | None = None,
    ) -> None:
        if _SDK_UPLOAD.match(_text(raw.get("description"))):
            return  # not the app's work: each upload would be traced by the next one
        try:
            self.spans.append(self._span(res, raw, start, end, attrs, segment))
        except ValueError as e:
            self._reject(e)

    def _span(
        self,
        res: ResourceInfo,
        raw: Mapping[str, Any],
        start: Any,
        end: Any,
        attrs: dict[str, Any],
        segment: tuple[str, str] | None,
    ) -> Span:
        trace_id = _hex(raw.get("trace_id"), "trace_id", 16)
        span_id = _hex(raw.get("span_id"), "span_id", 8)
        parent_id = _hex(raw.get("parent_span_id"), "parent_span_id", 8)
        start_ns, end_ns = self._times(start, end)
        op = _text(raw.get("op"))
        if op:
            attrs["sentry.op"] = op
        kind = _KIND_NAMES.get(_text(raw.get("kind")).lower()) or kind_of(op)
        name = span_name(op, kind, _text(raw.get("description")), attrs, segment)
        self._scrub(attrs)
        status, message = status_of(_text(raw.get("status")), kind, attrs)
        return build_span(
            res,
            _text(raw.get("origin")) or _text(attrs.get("sentry.origin")),
            trace_id,
            span_id,
            parent_id,
            start_ns,
            end_ns,
            name,
            kind,
            status,
            message,
            attrs,
            [],
            [],
        )

    def _times(self, start: Any, end: Any) -> tuple[int, int]:
        start_ns = self.timestamp_ns(start, 0)
        # No end: a zero-length span; an end that is no valid time: invalid, as the start.
        end_ns = start_ns if end is None else self.timestamp_ns(end, 0)
        if not 0 < start_ns <= end_ns < MAX_TIME_NS:
            raise ValueError("start and end timestamps must be in order, after 1970, before 2262")
        return start_ns, end_ns

    def _scrub(self, attrs: dict[str, Any]) -> None:
        s = self.scrubber
        for key in _URL_ATTRS:
            v = attrs.get(key)
            if isinstance(v, str) and v:
                attrs[key] = s.url(v) if key == "url.full" else s.query_string(v)
        for key in attrs:
            if key.startswith(_HEADER_PREFIXES) and s.sensitive_key(key.rsplit(".", 1)[-1]):
                attrs[key] = FILTERED

    def _reject(self, err: ValueError) -> None:
        self.rejected += 1
        if len(self.errors) < 5:
            self.errors.append(str(err))


ServiceOf = Callable[[Mapping[str, Any], str], str]


# ---------------------------------------------------------------- pure mapping


def kind_of(op: str) -> int:
    """The OTel span kind of a Sentry span operation."""
    if op.startswith(_SERVER_OPS):
        return SPAN_KIND_SERVER
    if op.startswith(("queue.task", "queue.process")):
        return SPAN_KIND_CONSUMER
    if op.startswith(("queue.submit", "queue.publish")):
        return SPAN_KIND_PRODUCER
    if op.startswith(_CLIENT_OPS):
        return SPAN_KIND_CLIENT
    return SPAN_KIND_INTERNAL


def span_name(
    op: str,
    kind: int,
    description: str,
    attrs: dict[str, Any],
    segment: tuple[str, str] | None,
) -> str:
    """The semantic-convention name; may add ``http.route``, ``db.query.text`` and the
    HTTP method/URL taken from a description to ``attrs``."""
    transaction, source = segment or ("", "")
    if op.startswith("db"):
        return _db_name(op, description, attrs)
    if op.startswith("http.client"):
        method, _, url = description.partition(" ")
        if url and "url.full" not in attrs:
            attrs["url.full"] = url
        method = _text(attrs.setdefault("http.request.method", method)) if method else ""
        return method or description or op
    if kind == SPAN_KIND_SERVER and "http.request.method" in attrs:
        return _server_name(_text(attrs["http.request.method"]), transaction, source, attrs)
    return transaction or description or op or "span"


def _server_name(method: str, transaction: str, source: str, attrs: dict[str, Any]) -> str:
    route = _text(attrs.get("http.route"))
    if not route and source == "route" and transaction:
        route = attrs["http.route"] = transaction
    if route:
        return f"{method} {route}"
    if transaction and source in _NAMED_SOURCES:
        return f"{method} {transaction}"
    return method  # a raw URL path is not a name (unbounded cardinality)


def _db_name(op: str, description: str, attrs: dict[str, Any]) -> str:
    if description and op in ("db", "db.sql.query", "db.query"):
        attrs.setdefault("db.query.text", description)
    elif description and op.startswith("db.") and "db.query.text" not in attrs:
        attrs["db.query.text"] = description  # db.redis, db.mongo...: the command
        attrs.setdefault("db.system.name", op[3:])
    statement = _text(attrs.get("db.query.text"))
    operation = _text(attrs.get("db.operation.name")) or (
        statement.split(None, 1)[0].upper() if statement.strip() else ""
    )
    namespace = _text(attrs.get("db.namespace"))
    if operation and namespace:
        return f"{operation} {namespace}"
    return operation or _text(attrs.get("db.system.name")) or op


def status_of(status: str, kind: int, attrs: Mapping[str, Any]) -> tuple[int, str]:
    """(OTel status code, message) of a Sentry span status."""
    if not status:
        return STATUS_UNSET, ""
    if status == "ok":
        return STATUS_OK, ""
    code = attrs.get("http.response.status_code")
    if kind == SPAN_KIND_SERVER and isinstance(code, int) and code < 500:
        return STATUS_UNSET, ""  # a 4xx is the client's error, not the server's
    return STATUS_ERROR, status


def _legacy_attrs(data: Any, tags: Any, measurements: Any) -> dict[str, Any]:
    """2.x ``data`` + tags (data wins) + measurements, under current names."""
    attrs = _renamed(_dict(data))
    for k, v in _renamed(_dict(tags)).items():
        if k != "status":  # sentry-sdk repeats the span status as a tag
            attrs.setdefault(k, v)
    for name, m in _dict(measurements).items():
        value = _dict(m).get("value")
        if isinstance(value, int | float) and not isinstance(value, bool):
            attrs[f"measurement.{name}"] = value
            unit = _dict(m).get("unit")
            if isinstance(unit, str) and unit:
                attrs[f"measurement.{name}.unit"] = unit
    return attrs


def _renamed(attrs: Mapping[str, Any]) -> dict[str, Any]:
    """``attrs`` under current names; a current name wins over its older alias."""
    out: dict[str, Any] = {}
    for k, v in attrs.items():
        key = RENAMED.get(k, k)
        if key == "http.response.status_code":
            v = _status_code(v)
        if v is None:
            continue
        if key == k:
            out[key] = v
        else:
            out.setdefault(key, v)
    return out


def _status_code(v: Any) -> int | None:
    if isinstance(v, int) and not isinstance(v, bool):
        return v
    return int(v) if isinstance(v, str) and v.isdigit() else None


def _typed_values(attrs: Any) -> dict[str, Any]:
    """Span v2 attributes ``{"key": {"type": ..., "value": ...}}`` → ``{"key": value}``."""
    return {str(k): v.get("value") if isinstance(v, dict) else v for k, v in _items(attrs)}


def _items(v: Any) -> Iterator[tuple[Any, Any]]:
    return iter(v.items()) if isinstance(v, dict) else iter(())


def _source(doc: Mapping[str, Any]) -> str:
    return _text(_dict(doc.get("transaction_info")).get("source"))


def _hex(v: Any, field: str, length: int) -> bytes:
    if v is None or v == "":
        return b""
    if isinstance(v, str) and len(v) == 2 * length:
        try:
            return bytes.fromhex(v)
        except ValueError:
            pass
    raise ValueError(f"{field} must be a {2 * length}-character hex string")


def _dict(v: Any) -> dict[str, Any]:
    return v if isinstance(v, dict) else {}


def _text(v: Any) -> str:
    return v if isinstance(v, str) else ""
