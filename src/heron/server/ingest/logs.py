"""``POST /v1/logs``: OTLP/HTTP logs (protobuf or OTLP-JSON, gzip), and the error events
they carry.

Same auth, limits and responses as ``/v1/traces`` (google.rpc.Status in the request's
encoding; ``partialSuccess.rejectedLogRecords`` for invalid records). Every valid record
is stored in ``logs``. Which records also become error events (contract rule 3):

1. ``heron.event`` (a Sentry-shaped event as JSON, sent by Heron's agent) → that event;
2. else ``heron.event_ref`` → only a link: the event was already sent (e.g. by the Flask
   integration before Flask logged the same exception), so no second event;
3. else ``heron.event_dropped`` (the app's ``before_send`` or ``ignore_exceptions`` chose
   not to report it) → a log line only;
4. else ``exception.*`` attributes or severity ≥ 17 (ERROR) → an event built from the
   attributes, with frames parsed from a Python ``exception.stacktrace``.

The record's ``event_id`` column links it to its event.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson
from google.protobuf.message import DecodeError as _PbDecodeError
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)
from starlette.requests import Request
from starlette.responses import Response

from heron.server.errors import (
    BadRequest,
    HeronHTTPError,
    ServiceUnavailable,
)
from heron.server.ingest.http import (
    JSON,
    PROTOBUF,
    committed,
    media_type,
    otlp_body,
    status_response,
)
from heron.server.ingest.limits import parse_json, time_in_range, trimmed
from heron.server.ingest.otlp.common import (
    DecodeError,
    ResourceInfo,
    hex_id,
    json_attrs,
    json_body,
    json_int,
    json_list,
    json_resource,
    json_scope_name,
    json_str,
    json_value,
    pb_attrs,
    pb_value,
)
from heron.server.ingest.pipeline import Pipeline
from heron.server.ingest.sentry import event_from_sentry, event_id_of
from heron.server.ingest.span_errors import (
    MAX_MESSAGE_CHARS,
    exception_event_id,
    exceptions_from_attrs,
    has_exception_attrs,
    new_event_id,
)
from heron.server.model import ErrorEvent, LogRecord
from heron.server.projects import Projects
from heron.server.semconv import TELEMETRY_SDK_LANGUAGE, TELEMETRY_SDK_NAME, TELEMETRY_SDK_VERSION
from heron.server.store.base import QueueFull

EVENT_ATTR = "heron.event"
EVENT_REF_ATTR = "heron.event_ref"
# Set by Heron's agent when the app dropped the event (before_send, ignore_exceptions).
EVENT_DROPPED_ATTR = "heron.event_dropped"
SEVERITY_ERROR = 17
SEVERITY_FATAL = 21


@dataclass(slots=True)
class LogsDecodeResult:
    records: list[LogRecord] = field(default_factory=list)
    rejected: int = 0
    errors: list[str] = field(default_factory=list)

    def reject(self, err: ValueError) -> None:
        self.rejected += 1
        if len(self.errors) < 5:
            self.errors.append(str(err))


# ---------------------------------------------------------------------- decoding


def _body_text(value: Any) -> str:
    """A log body as stored: strings as they are, structured bodies as JSON."""
    if value is None:
        return ""
    return value if isinstance(value, str) else orjson.dumps(value, default=str).decode()


def _record(
    res: ResourceInfo,
    scope: str,
    time_ns: int,
    observed_ns: int,
    trace_id: bytes,
    span_id: bytes,
    severity_number: int,
    severity_text: str,
    body: Any,
    attrs: dict[str, Any],
    received_ns: int,
) -> LogRecord:
    """Validate ids and times and build a record; raise ValueError naming the first
    problem."""
    if res.error:
        raise ValueError(res.error)
    time_in_range(time_ns, "timeUnixNano")
    time_in_range(observed_ns, "observedTimeUnixNano")
    if trace_id and (len(trace_id) != 16 or not any(trace_id)):
        raise ValueError("traceId must be empty or 16 bytes, not all zero")
    if span_id and len(span_id) != 8:
        raise ValueError("spanId must be empty or 8 bytes")
    if not 0 <= severity_number <= 24:
        raise ValueError(f"severityNumber {severity_number} is out of range 0-24")
    return LogRecord(
        time_ns=time_ns or observed_ns or received_ns,
        observed_ns=observed_ns or received_ns,
        trace_id=trace_id or None,
        span_id=int.from_bytes(span_id, "big") if span_id else 0,
        severity_number=severity_number,
        severity_text=severity_text,
        body=_body_text(body),
        service=res.service,
        environment=res.environment,
        release=res.release,
        logger=scope,
        attributes=attrs,
        resource=res.attributes,
    )


def decode_logs_protobuf(body: bytes, received_ns: int) -> LogsDecodeResult:
    """Decode an ``ExportLogsServiceRequest`` in protobuf binary form."""
    req = ExportLogsServiceRequest()
    try:
        req.ParseFromString(body)
    except (_PbDecodeError, ValueError, RuntimeError) as e:
        raise DecodeError(
            f"request body is not a valid protobuf ExportLogsServiceRequest: {e}"
        ) from None
    out = LogsDecodeResult()
    for rl in req.resource_logs:
        res = ResourceInfo(pb_attrs(rl.resource.attributes))
        for sl in rl.scope_logs:
            for r in sl.log_records:
                try:
                    rec = _record(
                        res,
                        sl.scope.name,
                        r.time_unix_nano,
                        r.observed_time_unix_nano,
                        r.trace_id,
                        r.span_id,
                        r.severity_number,
                        r.severity_text,
                        pb_value(r.body) if r.HasField("body") else None,
                        pb_attrs(r.attributes),
                        received_ns,
                    )
                except ValueError as e:
                    out.reject(e)
                    continue
                out.records.append(rec)
    return out


def decode_logs_json(body: bytes, received_ns: int) -> LogsDecodeResult:
    """Decode an ``ExportLogsServiceRequest`` in OTLP-JSON form (hex ids, int64 strings)."""
    doc = json_body(body, "ExportLogsServiceRequest")
    out = LogsDecodeResult()
    for rl in json_list(doc, "resourceLogs"):
        if not isinstance(rl, dict):
            raise DecodeError("resourceLogs entries must be objects")
        res = json_resource(rl)
        for sl in json_list(rl, "scopeLogs"):
            scope_name = json_scope_name(sl)
            for r in json_list(sl, "logRecords"):
                try:
                    out.records.append(_json_record(res, scope_name, r, received_ns))
                except ValueError as e:
                    out.reject(e)
    return out


def _json_record(res: ResourceInfo, scope: str, r: Any, received_ns: int) -> LogRecord:
    if not isinstance(r, dict):
        raise ValueError("logRecord must be an object")
    return _record(
        res,
        scope,
        json_int(r.get("timeUnixNano"), "timeUnixNano"),
        json_int(r.get("observedTimeUnixNano"), "observedTimeUnixNano"),
        hex_id(r.get("traceId"), "traceId", 16),
        hex_id(r.get("spanId"), "spanId", 8),
        json_int(r.get("severityNumber"), "severityNumber"),
        json_str(r.get("severityText"), "severityText"),
        json_value(r.get("body")),
        json_attrs(r.get("attributes")),
        received_ns,
    )


# ---------------------------------------------------------------- error events


def _level(severity: int) -> str:
    if severity >= SEVERITY_FATAL:
        return "fatal"
    if severity >= SEVERITY_ERROR or severity == 0:
        return "error"
    if severity >= 13:
        return "warning"
    return "info" if severity >= 9 else "debug"


def _sdk(resource: dict[str, Any]) -> str:
    name = resource.get(TELEMETRY_SDK_NAME) or "opentelemetry"
    version = resource.get(TELEMETRY_SDK_VERSION)
    return f"{name}/{version}" if version else str(name)


def _trace_context(rec: LogRecord) -> dict[str, Any]:
    if rec.trace_id is None:
        return {}
    return {"trace": {"trace_id": rec.trace_id.hex(), "span_id": f"{rec.span_id:016x}"}}


def _location(attrs: dict[str, Any]) -> str:
    function = attrs.get("code.function.name") or attrs.get("code.function")
    path = attrs.get("code.file.path") or attrs.get("code.filepath")
    if function and path:
        return f"{path} in {function}"
    return str(function or "")


def event_from_attributes(rec: LogRecord, received_ns: int) -> ErrorEvent:
    """Rule 3c: an event from a record's ``exception.*`` attributes, or from its body."""
    attrs = rec.attributes
    chain: list[dict[str, Any]] = []
    extra: dict[str, Any] = {}
    if has_exception_attrs(attrs):
        chain, extra = exceptions_from_attrs(attrs)
    raised = chain[-1] if chain else None
    message = (raised["value"] if raised else "") or rec.body
    return ErrorEvent(
        event_id=exception_event_id(rec.trace_id, str(raised["type"]), str(raised["value"]))
        if raised
        else new_event_id(),
        time_ns=rec.time_ns,
        received_ns=received_ns,
        service=rec.service,
        environment=rec.environment,
        release=rec.release,
        level=_level(rec.severity_number),
        platform=str(rec.resource.get(TELEMETRY_SDK_LANGUAGE) or "other"),
        source="otlp.log",
        exc_type=str(raised["type"]) if raised else None,
        message=message[:MAX_MESSAGE_CHARS],
        culprit=_location(attrs) if not any(e.get("frames") for e in chain) else "",
        trace_id=rec.trace_id,
        span_id=rec.span_id,
        logger=rec.logger or None,
        exceptions=chain,
        contexts=_trace_context(rec),
        extra=extra,
        sdk=_sdk(rec.resource),
    )


def _heron_event(rec: LogRecord, raw: Any, received_ns: int) -> ErrorEvent | None:
    """Rule 3a: the agent's own event; the resource names service/env/release."""
    try:
        doc = parse_json(raw.encode()) if isinstance(raw, str) else None
    except ValueError:
        doc = None
    if not isinstance(doc, dict):
        return None
    ev = event_from_sentry(
        trimmed(doc),
        received_ns=received_ns,
        source="otlp.log",
        service=rec.service,
        environment=rec.environment or None,
        release=rec.release or None,
    )
    if ev.trace_id is None and rec.trace_id is not None:
        ev.trace_id, ev.span_id = rec.trace_id, rec.span_id
    ev.logger = ev.logger or rec.logger or None
    return ev


def link_events(records: Iterable[LogRecord], received_ns: int) -> list[ErrorEvent]:
    """Apply contract rule 3: the events the records carry; each record's ``event_id``
    is set to its event (or referenced event)."""
    events: list[ErrorEvent] = []
    for rec in records:
        attrs = rec.attributes
        raw = attrs.pop(EVENT_ATTR, None)
        ref = attrs.pop(EVENT_REF_ATTR, None)
        dropped = attrs.pop(EVENT_DROPPED_ATTR, None)
        ev = _heron_event(rec, raw, received_ns) if raw is not None else None
        if ev is None and ref is not None:
            rec.event_id = event_id_of(ref) if isinstance(ref, str) else None
            continue
        if ev is None and dropped is True:
            continue  # the app chose not to report it: a log line only
        if ev is None and (has_exception_attrs(attrs) or rec.severity_number >= SEVERITY_ERROR):
            ev = event_from_attributes(rec, received_ns)
        if ev is not None:
            rec.event_id = ev.event_id
            events.append(ev)
    return events


# ---------------------------------------------------------------------- handler


def success_response(rejected: int, errors: list[str], as_json: bool) -> Response:
    message = "; ".join(errors)
    if as_json:
        doc: dict[str, Any] = {}
        if rejected:
            doc["partialSuccess"] = {"rejectedLogRecords": str(rejected), "errorMessage": message}
        return Response(orjson.dumps(doc), 200, media_type=JSON)
    resp = ExportLogsServiceResponse()
    if rejected:
        resp.partial_success.rejected_log_records = rejected
        resp.partial_success.error_message = message
    return Response(resp.SerializeToString(), 200, media_type=PROTOBUF)


class LogIngest:
    """ASGI-facing handler for ``POST /v1/logs``."""

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

    async def __call__(self, request: Request) -> Response:
        ctype = media_type(request)
        try:
            return await self._handle(request, ctype)
        except HeronHTTPError as err:
            return status_response(err, ctype == JSON)

    async def _handle(self, request: Request, ctype: str) -> Response:
        project, body = await otlp_body(request, ctype, self.projects, self.max_body_bytes)
        now = self.clock()
        try:
            result = (
                decode_logs_json(body, now) if ctype == JSON else decode_logs_protobuf(body, now)
            )
        except DecodeError as e:
            raise BadRequest(str(e)) from None
        if result.records:
            events = link_events(result.records, now)
            try:
                fut = self.pipeline.submit_events(project, events, result.records)
            except QueueFull as e:
                raise ServiceUnavailable(f"{e}; retry later", {"Retry-After": "1"}) from None
            await committed(fut, "log records")
        self.pipeline.count_rejected("logs", "invalid", result.rejected)
        return success_response(result.rejected, result.errors, ctype == JSON)
