"""The OTLP/HTTP trace endpoint: auth, size limits, decompression, decode, then the
ingest pipeline (``pipeline.py``) to the writer.

Every error answers with a google.rpc.Status in the request's content type, as the
OTLP spec requires; the request is acknowledged (200) only after its spans committed
(and the error events its spans' exception events became, see ``span_errors``).
Helpers here (keys, bodies, commit waits) serve the other ingest routes too.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import zlib
from collections.abc import Awaitable, Callable
from concurrent.futures import Future
from typing import Any

import brotli
from google.rpc import status_pb2
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from heron.server.errors import (
    BadRequest,
    HeronHTTPError,
    PayloadTooLarge,
    ServiceUnavailable,
    Unauthorized,
    UnsupportedMediaType,
)
from heron.server.ingest.otlp import DecodeError, decode_json, decode_protobuf_batch
from heron.server.ingest.pipeline import Pipeline
from heron.server.ingest.span_errors import events_from_spans
from heron.server.projects import Projects
from heron.server.store.base import QueueFull

PROTOBUF = "application/x-protobuf"
JSON = "application/json"

log = logging.getLogger("heron.ingest")


def ingest_key(request: Request) -> str | None:
    """The key from ``Authorization: Bearer`` or ``x-heron-key``."""
    auth = request.headers.get("authorization", "")
    if auth[:7].lower() == "bearer ":
        return auth[7:].strip()
    return request.headers.get("x-heron-key") or None


def authenticate(request: Request, projects: Projects) -> int:
    key = ingest_key(request)
    if not key:
        raise Unauthorized(
            "missing ingest key: send 'Authorization: Bearer <key>' or 'x-heron-key: <key>'"
        )
    project = projects.project_for_key(key)
    if project is None:
        raise Unauthorized("unknown or revoked ingest key")
    return project


async def read_raw(request: Request, limit: int) -> bytes:
    """The request body as sent (not decompressed), never more than ``limit`` bytes."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(
            f"request body of {declared} bytes exceeds the limit of {limit} bytes"
        )
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"request body exceeds the limit of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, decompressed, never more than ``limit`` bytes either side."""
    body = await read_raw(request, limit)
    encoding = request.headers.get("content-encoding", "identity").strip().lower()
    if encoding in ("", "identity"):
        return body
    if encoding in ("gzip", "x-gzip", "deflate"):
        return _inflate(body, limit, gzip=encoding != "deflate")
    if encoding == "br":
        return _unbrotli(body, limit)
    raise UnsupportedMediaType(
        f"unsupported Content-Encoding {encoding!r}: use gzip, deflate, br or none"
    )


def _inflate(body: bytes, limit: int, *, gzip: bool) -> bytes:
    d = zlib.decompressobj(wbits=31 if gzip else 15)
    try:
        out = d.decompress(body, limit + 1)
    except zlib.error as e:
        raise BadRequest(
            f"request body is not valid {'gzip' if gzip else 'deflate'}: {e}"
        ) from None
    if len(out) > limit or d.unconsumed_tail:
        raise PayloadTooLarge(f"decompressed request body exceeds the limit of {limit} bytes")
    if not d.eof:
        raise BadRequest("compressed request body is truncated")
    return out


def _unbrotli(body: bytes, limit: int) -> bytes:
    d = brotli.Decompressor()
    try:
        out = d.process(body, output_buffer_limit=limit + 1)
    except brotli.error as e:
        raise BadRequest(f"request body is not valid brotli: {e}") from None
    if len(out) > limit or not d.can_accept_more_data():
        raise PayloadTooLarge(f"decompressed request body exceeds the limit of {limit} bytes")
    if not d.is_finished():
        raise BadRequest("compressed request body is truncated")
    return out


async def otlp_body(
    request: Request, ctype: str, projects: Projects, limit: int
) -> tuple[int, bytes]:
    """The project and the (decompressed) body of an OTLP request, checked in the order
    the spec's errors imply: media type (415), key (401), size and encoding (413/400)."""
    if ctype not in (PROTOBUF, JSON):
        raise UnsupportedMediaType(
            f"unsupported Content-Type {ctype or '(none)'!r}: use {PROTOBUF} or {JSON}"
        )
    project = authenticate(request, projects)
    return project, await read_body(request, limit)


def media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


def status_response(err: HeronHTTPError, as_json: bool) -> Response:
    """An OTLP error: google.rpc.Status in the request's encoding."""
    headers = dict(err.headers)
    if as_json:
        body = json.dumps({"code": err.status, "message": err.message}).encode()
        return Response(body, err.status, headers, media_type=JSON)
    msg = status_pb2.Status(code=err.status, message=err.message)
    return Response(msg.SerializeToString(), err.status, headers, media_type=PROTOBUF)


def success_response(rejected: int, errors: list[str], as_json: bool) -> Response:
    message = "; ".join(errors)
    if as_json:
        doc: dict[str, Any] = {}
        if rejected:
            doc["partialSuccess"] = {"rejectedSpans": str(rejected), "errorMessage": message}
        return Response(json.dumps(doc).encode(), 200, media_type=JSON)
    resp = ExportTraceServiceResponse()
    if rejected:
        resp.partial_success.rejected_spans = rejected
        resp.partial_success.error_message = message
    return Response(resp.SerializeToString(), 200, media_type=PROTOBUF)


async def committed(fut: Future[Any], what: str) -> None:
    """Wait for a writer future; a failed commit is a 503 the client may retry."""
    try:
        await asyncio.wrap_future(fut)
    except Exception as e:
        raise ServiceUnavailable(
            f"storage error, {what} not stored: {e}", {"Retry-After": "5"}
        ) from None


def lean_route(path: str, handler: Callable[[Request], Awaitable[Response]]) -> Route:
    """A plain ``POST`` route calling ``handler`` with the Request: the router dispatches
    straight to it, without FastAPI's per-request machinery (dependency solving, its
    exit stack), a quarter of the CPU of an empty request."""
    return _NamedRoute(path, handler, methods=["POST"], include_in_schema=False)


class _NamedRoute(Route):
    """A Route that names itself in the request's scope, as FastAPI's routes do (FastAPI's
    router does not for plain routes), so the request counters (``/metrics``) label its
    requests, 405s included, with its path rather than as unmatched."""

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        scope["route"] = self
        await super().handle(scope, receive, send)


class TraceIngest:
    """ASGI-facing handler for ``POST /v1/traces``."""

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
        as_json = ctype == JSON
        try:
            return await self._handle(request, ctype)
        except HeronHTTPError as err:
            return status_response(err, as_json)

    async def _handle(self, request: Request, ctype: str) -> Response:
        project, body = await otlp_body(request, ctype, self.projects, self.max_body_bytes)
        try:
            result = decode_json(body) if ctype == JSON else decode_protobuf_batch(body)
        except DecodeError as e:
            raise BadRequest(str(e)) from None
        if result.spans:
            try:
                fut = self.pipeline.submit_spans(project, result.spans)
            except QueueFull as e:
                raise ServiceUnavailable(f"{e}; retry later", {"Retry-After": "1"}) from None
            events_fut = self._span_errors(project, result.spans)
            await committed(fut, "spans")
            if events_fut is not None:
                await committed(events_fut, "error events")
        self.pipeline.count_rejected("spans", "invalid", result.rejected)
        return success_response(result.rejected, result.errors, ctype == JSON)

    def _span_errors(self, project: int, spans: Any) -> Future[int] | None:
        """Queue the error events of the spans' exception events, if any. The spans are
        already queued: when the writer is too busy for the events they are dropped (and
        logged) rather than failing a request whose retry would duplicate the spans."""
        events = events_from_spans(spans, self.clock())
        if not events:
            return None
        try:
            return self.pipeline.submit_events(project, events, [])
        except QueueFull:
            log.warning("write queue full: dropped %d error events of span exceptions", len(events))
            return None
