"""Sentry-compatible ingest: ``POST /api/{project_id}/envelope/`` and ``/store/``.

An app using the unmodified ``sentry-sdk`` sends here when its DSN is
``http://<heron ingest key>@<heron host>/<project id>``. Events are normalized to
:class:`ErrorEvent` (shared/reference/protocols.md §4), scrubbed, grouped and stored;
``log`` items become :class:`LogRecord` rows; ``transaction`` items (sentry-sdk 2.x) and
``span`` items (3.x) become spans (see ``sentry_tracing``); other item types (sessions,
client reports, attachments...) are accepted and skipped. The service of all of them is
:func:`service_name`'s.

Status codes: 401 when no key or an unknown key is sent (as ``/v1/traces`` does: Relay
says 403, but one rule for all ingest routes is simpler to operate), 403 when the key
belongs to another project, 400 with a message for a body that is not an envelope or an
event, 413 over the size limits, 429 with ``Retry-After`` and ``X-Sentry-Rate-Limits``
when the writer's queue is full. Error bodies are ``{"error": message}``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from datetime import datetime, timezone
from typing import Any
from urllib.parse import urlsplit

import orjson
from starlette.requests import Request
from starlette.responses import Response

from heron.server.errors import (
    BadRequest,
    HeronHTTPError,
    PayloadTooLarge,
    Unauthorized,
)
from heron.server.ingest.http import committed, read_body
from heron.server.ingest.limits import MAX_TIME_NS, parse_json, trimmed
from heron.server.ingest.pipeline import Pipeline
from heron.server.ingest.sentry_tracing import SentrySpans
from heron.server.ingest.span_errors import MAX_MESSAGE_CHARS, new_event_id
from heron.server.model import LEVELS, ErrorEvent, LogRecord
from heron.server.projects import Projects
from heron.server.store.base import QueueFull

MAX_EVENT_BYTES = 1024 * 1024  # per event item, as Relay
MAX_FRAMES = 50
MAX_BREADCRUMBS = 100
DEFAULT_SERVICE = "unknown_service"
_LEVEL_ALIASES = {"warn": "warning", "critical": "fatal", "log": "info", "trace": "debug"}
_FRAME_KEYS = (
    "filename",
    "abs_path",
    "module",
    "function",
    "lineno",
    "colno",
    "context_line",
    "pre_context",
    "post_context",
    "in_app",
    "vars",
)
# Sentry log levels → OTLP severity numbers (the first of each range).
_LOG_SEVERITY = {"trace": 1, "debug": 5, "info": 9, "warn": 13, "warning": 13, "error": 17}
_LOG_SEVERITY["fatal"] = 21


log = logging.getLogger("heron.ingest")


class Forbidden(HeronHTTPError):
    status = 403


class RateLimited(HeronHTTPError):
    status = 429


# ------------------------------------------------------------------- envelopes


def parse_envelope(body: bytes) -> tuple[dict[str, Any], list[tuple[dict[str, Any], bytes]]]:
    """(envelope headers, [(item headers, payload)]) of a Sentry envelope.

    Items with a ``length`` take exactly that many bytes; items without run to the next
    newline. Raises BadRequest naming what is wrong.
    """
    nl = body.find(b"\n")
    headers = _json_object(body if nl < 0 else body[:nl], "envelope header")
    pos, end = (len(body) if nl < 0 else nl + 1), len(body)
    items: list[tuple[dict[str, Any], bytes]] = []
    while pos < end:
        nl = body.find(b"\n", pos)
        line_end = end if nl < 0 else nl
        line = body[pos:line_end]
        pos = line_end + 1
        if not line.strip():
            continue
        item_headers = _json_object(line, f"item {len(items) + 1} header")
        length = item_headers.get("length")
        if length is not None:
            if not isinstance(length, int) or isinstance(length, bool) or length < 0:
                raise BadRequest(f"item {len(items) + 1} header: length must be an integer")
            if pos + length > end:
                raise BadRequest(f"item {len(items) + 1} is shorter than its length {length}")
            payload = body[pos : pos + length]
            pos += length
            if body[pos : pos + 1] == b"\n":
                pos += 1
        else:
            nl = body.find(b"\n", pos)
            payload = body[pos : end if nl < 0 else nl]
            pos = end if nl < 0 else nl + 1
        items.append((item_headers, payload))
    return headers, items


def _json_object(raw: bytes, what: str) -> dict[str, Any]:
    """A JSON object with data nested deeper than the store keeps trimmed (as Relay
    trims data bags) and lone surrogate escapes replaced by U+FFFD."""
    try:
        doc = parse_json(raw)
    except ValueError as e:
        raise BadRequest(f"{what} is {e}") from None
    if not isinstance(doc, dict):
        raise BadRequest(f"{what} must be a JSON object")
    return trimmed(doc)


# ---------------------------------------------------------------------- events


def timestamp_ns(v: Any, default: int) -> int:
    """Unix seconds (number or numeric string) or RFC 3339 → ns; ``default`` if neither,
    or if the time is not after 1970 and before 2262 (Relay too replaces invalid times)."""
    try:
        ns = _timestamp_ns(v)
    except (ValueError, OverflowError):  # NaN, infinities, dates beyond datetime's range
        return default
    return ns if ns is not None and 0 < ns <= MAX_TIME_NS else default


def _timestamp_ns(v: Any) -> int | None:
    if isinstance(v, int | float) and not isinstance(v, bool):
        return int(v * 1_000_000_000)
    if not isinstance(v, str) or not v:
        return None
    try:
        return int(float(v) * 1_000_000_000)
    except ValueError:
        pass
    dt = datetime.fromisoformat(v.replace("Z", "+00:00"))
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return int(dt.timestamp() * 1_000_000) * 1000


def _values(v: Any) -> list[Any]:
    """``{"values": [...]}`` or a bare list (both are valid in Sentry events)."""
    if isinstance(v, dict):
        v = v.get("values")
    return [x for x in v if isinstance(x, dict)] if isinstance(v, list) else []


def _dict(v: Any) -> dict[str, Any]:
    return v if isinstance(v, dict) else {}


def _str(v: Any, limit: int = MAX_MESSAGE_CHARS) -> str:
    """Text as sent, numbers and booleans as text; "" for anything else."""
    s = v if isinstance(v, str) else str(v) if isinstance(v, int | float) else ""
    return s[:limit]


def _level(v: Any) -> str:
    level = str(v or "error").lower()
    level = _LEVEL_ALIASES.get(level, level)
    return level if level in LEVELS else "error"


def _frames(stacktrace: Any) -> list[dict[str, Any]]:
    frames = [f for f in _dict(stacktrace).get("frames") or [] if isinstance(f, dict)]
    # The innermost frames say where it broke: keep those when the stack is too deep.
    return [{k: f[k] for k in _FRAME_KEYS if k in f} for f in frames[-MAX_FRAMES:]]


def _exception(v: dict[str, Any]) -> dict[str, Any]:
    mech = _dict(v.get("mechanism"))
    out: dict[str, Any] = {
        "type": _str(v.get("type"), 512),
        "value": _str(v.get("value")),
        "module": v.get("module") if isinstance(v.get("module"), str) else None,
        "frames": _frames(v.get("stacktrace")),
    }
    if mech:
        out["mechanism"] = {"type": _str(mech.get("type"), 128), "handled": mech.get("handled")}
    return out


def _message(doc: dict[str, Any]) -> str:
    for key in ("logentry", "message"):
        v = doc.get(key)
        if isinstance(v, str) and v:
            return v
        if isinstance(v, dict):
            text = v.get("formatted") or v.get("message")
            if isinstance(text, str) and text:
                return text
    return ""


def _tags(v: Any) -> dict[str, str]:
    pairs = v.items() if isinstance(v, dict) else v if isinstance(v, list) else []
    out: dict[str, str] = {}
    for pair in pairs:
        if isinstance(pair, tuple | list) and len(pair) == 2:
            out[_str(pair[0], 200)] = _str(pair[1], 200)
    return out


def _breadcrumb(b: dict[str, Any], default_ns: int) -> dict[str, Any]:
    return {
        "timestamp": timestamp_ns(b.get("timestamp"), default_ns) / 1e9,
        "type": _str(b.get("type") or "default", 64),
        "category": _str(b.get("category"), 256) or None,
        "level": _level(b.get("level") or "info"),
        "message": _str(b.get("message")) or None,
        "data": _dict(b.get("data")),
    }


def _trace_ids(contexts: dict[str, Any]) -> tuple[bytes | None, int]:
    trace = _dict(contexts.get("trace"))
    trace_id: bytes | None = None
    span_id = 0
    try:
        tid = trace.get("trace_id")
        if isinstance(tid, str) and len(tid) == 32:
            trace_id = bytes.fromhex(tid)
        sid = trace.get("span_id")
        if isinstance(sid, str) and len(sid) == 16:
            span_id = int(sid, 16)
    except ValueError:
        pass
    return trace_id, span_id


def _sdk(v: Any) -> str:
    sdk = _dict(v)
    name, version = sdk.get("name"), sdk.get("version")
    if not isinstance(name, str):
        return ""
    return f"{name}/{version}" if isinstance(version, str) and version else name


def service_name(tags: Mapping[str, Any], release: str) -> str:
    """The service of Sentry data: the tag (3.x spans: attribute) ``service.name``, else
    ``service``, else the package of a ``package@version`` release (Sentry's documented
    release naming), else ``unknown_service``. ``server_name`` is the host (sentry-sdk
    defaults it to the hostname), so it never names the service."""
    for key in ("service.name", "service"):
        v = tags.get(key)
        if isinstance(v, str) and v.strip():
            return v.strip()[:200]
    package, at, version = release.partition("@")
    if at and package.strip() and version:
        return package.strip()[:200]
    return DEFAULT_SERVICE


def transaction_service(doc: dict[str, Any]) -> str:
    """:func:`service_name` of a transaction (or event) payload."""
    return service_name(_tags(doc.get("tags")), _str(doc.get("release"), 200))


def event_id_of(v: Any) -> str:
    """A valid 32-hex event id from ``v`` (dashes allowed), else a new one."""
    if isinstance(v, str):
        hexed = v.replace("-", "").lower()
        if len(hexed) == 32 and all(c in "0123456789abcdef" for c in hexed):
            return hexed
    return new_event_id()


def event_from_sentry(
    doc: dict[str, Any],
    *,
    received_ns: int,
    source: str = "sentry",
    service: str | None = None,
    environment: str | None = None,
    release: str | None = None,
) -> ErrorEvent:
    """Normalize a Sentry event payload. ``service``/``environment``/``release`` override
    the payload's (an OTLP resource knows them better than the event)."""
    tags = _tags(doc.get("tags"))
    exceptions = [_exception(v) for v in _values(doc.get("exception"))]
    raised = exceptions[-1] if exceptions else None
    contexts = _dict(doc.get("contexts"))
    trace_id, span_id = _trace_ids(contexts)
    time_ns = timestamp_ns(doc.get("timestamp"), received_ns)
    fingerprint = doc.get("fingerprint")
    handled = _dict(raised.get("mechanism")).get("handled") if raised else None
    release = release or _str(doc.get("release"), 200)
    server_name = _str(doc.get("server_name"), 200)
    if server_name:
        tags.setdefault("server_name", server_name)
    return ErrorEvent(
        event_id=event_id_of(doc.get("event_id")),
        time_ns=time_ns,
        received_ns=received_ns,
        service=service or service_name(tags, release),
        environment=environment or _str(doc.get("environment"), 200) or "production",
        release=release,
        level=_level(doc.get("level")),
        platform=_str(doc.get("platform"), 64) or "other",
        source=source,
        exc_type=raised["type"] or None if raised else None,
        message=(raised["value"] if raised else "") or _message(doc)[:MAX_MESSAGE_CHARS],
        culprit="",
        transaction=_str(doc.get("transaction"), 200) or None,
        trace_id=trace_id,
        span_id=span_id,
        user=_dict(doc.get("user")),
        handled=handled if isinstance(handled, bool) else None,
        logger=_str(doc.get("logger"), 200) or None,
        exceptions=exceptions,
        breadcrumbs=[
            _breadcrumb(b, time_ns) for b in _values(doc.get("breadcrumbs"))[-MAX_BREADCRUMBS:]
        ],
        request=_dict(doc.get("request")),
        tags=tags,
        contexts=contexts,
        extra=_dict(doc.get("extra")),
        sdk=_sdk(doc.get("sdk")),
        explicit_fingerprint=[_str(p, 200) for p in fingerprint]
        if isinstance(fingerprint, list) and fingerprint
        else None,
    )


def logs_from_sentry(payload: dict[str, Any], received_ns: int) -> list[LogRecord]:
    """Sentry structured logs (an envelope's ``log`` item) as log records."""
    out: list[LogRecord] = []
    for item in _values({"values": payload.get("items")}):
        attrs = {
            str(k): v.get("value") if isinstance(v, dict) else v
            for k, v in _dict(item.get("attributes")).items()
        }
        level = str(item.get("level") or "info").lower()
        number = item.get("severity_number")
        trace_id, _ = _trace_ids({"trace": {"trace_id": item.get("trace_id")}})
        out.append(
            LogRecord(
                time_ns=timestamp_ns(item.get("timestamp"), received_ns),
                observed_ns=received_ns,
                trace_id=trace_id,
                span_id=0,
                severity_number=number
                if isinstance(number, int) and 0 <= number <= 24
                else _LOG_SEVERITY.get(level, 0),
                severity_text=level.upper(),
                body=_str(item.get("body")),
                service=service_name(attrs, str(attrs.get("sentry.release") or "")),
                environment=str(attrs.get("sentry.environment") or "production"),
                release=str(attrs.get("sentry.release") or ""),
                logger=str(attrs.get("logger.name") or ""),
                attributes=attrs,
            )
        )
    return out


# ---------------------------------------------------------------------- handler


def sentry_key(request: Request) -> str | None:
    """The public key from ``X-Sentry-Auth``/``Authorization: Sentry`` or ``?sentry_key``."""
    for header in ("x-sentry-auth", "authorization"):
        value = request.headers.get(header, "")
        if value[:7].lower() == "sentry ":
            for part in value[7:].split(","):
                name, _, v = part.strip().partition("=")
                if name == "sentry_key" and v:
                    return v
    return request.query_params.get("sentry_key") or None


def dsn_key(dsn: Any) -> str | None:
    """The public key of a DSN (``http://KEY@host/1``)."""
    if not isinstance(dsn, str):
        return None
    try:
        return urlsplit(dsn).username or None
    except ValueError:
        return None


def error_response(err: HeronHTTPError) -> Response:
    body = orjson.dumps({"error": err.message})
    return Response(body, err.status, err.headers, media_type="application/json")


class SentryIngest:
    """Handlers for the envelope and store endpoints of one server."""

    def __init__(
        self,
        pipeline: Pipeline,
        projects: Projects,
        max_body_bytes: int,
        clock: Callable[[], int] = time.time_ns,
    ) -> None:
        self.pipeline = pipeline
        self.projects = projects
        self.max_body_bytes = max_body_bytes
        self.clock = clock

    async def envelope(self, request: Request) -> Response:
        try:
            return await self._envelope(request)
        except HeronHTTPError as err:
            return error_response(err)

    async def store_event(self, request: Request) -> Response:
        try:
            return await self._store(request)
        except HeronHTTPError as err:
            return error_response(err)

    def _check_key(self, key: str | None, request: Request) -> int:
        if not key:
            raise Unauthorized(
                "missing Sentry key: use a DSN with the Heron ingest key as its public key "
                "(X-Sentry-Auth: Sentry sentry_key=<key>, or ?sentry_key=<key>)"
            )
        project = self.projects.project_for_key(key)
        if project is None:
            raise Unauthorized("unknown or revoked ingest key")
        if str(project) != request.path_params.get("project_id"):
            raise Forbidden(f"this key belongs to project {project}, not to the project in the URL")
        return project

    async def _envelope(self, request: Request) -> Response:
        key = sentry_key(request)
        # A key in the URL or a header is checked before the body is read; a key given
        # only in the envelope's "dsn" header, after.
        project = self._check_key(key, request) if key else None
        body = await read_body(request, self.max_body_bytes)
        headers, items = parse_envelope(body)
        if project is None:
            project = self._check_key(dsn_key(headers.get("dsn")), request)
        now = self.clock()
        events: list[ErrorEvent] = []
        logs: list[LogRecord] = []
        spans = SentrySpans(self.pipeline.event_scrubber.scrubber, timestamp_ns)
        for item_headers, payload in items:
            kind = item_headers.get("type")
            if kind == "event":
                events.append(self._event(payload, now))
            elif kind == "log":
                logs.extend(logs_from_sentry(_json_object(payload, "log item"), now))
            elif kind == "transaction":
                doc = self._transaction(payload)
                spans.add_transaction(doc, transaction_service(doc))
            elif kind == "span":
                spans.add_span_items(_json_object(payload, "span item"), service_name)
        event_id = events[0].event_id if events else event_id_of(headers.get("event_id"))
        spans_fut = self._submit_spans(project, spans)
        await self._submit(project, events, logs)
        if spans_fut is not None:
            await committed(spans_fut, "spans")
        return Response(orjson.dumps({"id": event_id}), 200, media_type="application/json")

    async def _store(self, request: Request) -> Response:
        project = self._check_key(sentry_key(request), request)
        body = await read_body(request, self.max_body_bytes)
        event = self._event(body, self.clock())
        await self._submit(project, [event], [])
        return Response(orjson.dumps({"id": event.event_id}), 200, media_type="application/json")

    @staticmethod
    def _transaction(payload: bytes) -> dict[str, Any]:
        if len(payload) > MAX_EVENT_BYTES:
            raise PayloadTooLarge(f"transaction of {len(payload)} bytes exceeds {MAX_EVENT_BYTES}")
        return _json_object(payload, "transaction")

    def _submit_spans(self, project: int, spans: SentrySpans) -> Future[int] | None:
        if spans.rejected:
            log.info("sentry: %d invalid spans skipped: %s", spans.rejected, spans.errors)
            self.pipeline.count_rejected("spans", "invalid", spans.rejected)
        if not spans.spans:
            return None
        try:
            return self.pipeline.submit_spans(project, spans.spans)
        except QueueFull as e:
            raise _rate_limited(e) from None

    @staticmethod
    def _event(payload: bytes, now: int) -> ErrorEvent:
        if len(payload) > MAX_EVENT_BYTES:
            raise PayloadTooLarge(f"event of {len(payload)} bytes exceeds {MAX_EVENT_BYTES}")
        return event_from_sentry(_json_object(payload, "event"), received_ns=now)

    async def _submit(self, project: int, events: list[ErrorEvent], logs: list[LogRecord]) -> None:
        if not events and not logs:
            return
        try:
            fut = self.pipeline.submit_events(project, events, logs)
        except QueueFull as e:
            raise _rate_limited(e) from None
        await committed(fut, "events")


def _rate_limited(e: QueueFull) -> RateLimited:
    wait = str(QueueFull.retry_after_s)
    return RateLimited(
        f"{e}; retry later",
        {"Retry-After": wait, "X-Sentry-Rate-Limits": f"{wait}::organization:queue_full"},
    )
