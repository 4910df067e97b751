"""The RUM beacon endpoint: ``POST /rum/v1/events?key=<browser key>`` and its preflight.

Public by design — the browser key is embedded in pages — so every beacon is checked,
cheapest first, and refused whole with a 4xx naming the problem: the page's origin (403),
the key (401), the client address's rate (429), the body's size (413), its content type
(415), JSON (400), the envelope (400 naming the field), the session's rate (429). Bots
(by User-Agent) are answered 200 with ``"ignored": "bot"`` and counted, not stored.
Allowed origins are echoed in ``Access-Control-Allow-Origin`` on every answer, errors
included, so a page can read why its beacon failed.

A beacon that passes becomes RumEvents (``rum_decode``), the browser spans of its page
loads and traced fetches (not rolled up into RED metrics), and error events for its
JavaScript errors, queued with the other beacons of the same few milliseconds
(``rum_batch``); it is answered 200 only after all of them committed. Nothing of a
refused beacon reaches the writer.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import orjson
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute
from starlette.types import Receive, Scope, Send

from heron.server.config import Config
from heron.server.errors import (
    BadRequest,
    HeronHTTPError,
    PayloadTooLarge,
    Unauthorized,
    UnsupportedMediaType,
)
from heron.server.ingest.http import media_type, read_body
from heron.server.ingest.limits import parse_json
from heron.server.ingest.pipeline import Pipeline
from heron.server.ingest.rate import TokenBuckets
from heron.server.ingest.rum_batch import BeaconBatcher
from heron.server.ingest.rum_context import CachedScrubber
from heron.server.ingest.rum_decode import Beacon, BeaconError, decode_beacon
from heron.server.ingest.useragent import parse_user_agent
from heron.server.projects import Projects

log = logging.getLogger("heron.ingest.rum")

MEDIA_TYPES = ("text/plain", "application/json")
BURST_S = 10.0  # rate limits allow bursts of this many seconds' worth of beacons


class Forbidden(HeronHTTPError):
    status = 403


class TooManyRequests(HeronHTTPError):
    status = 429


class RumIngest:
    """ASGI-facing handlers for ``POST`` and ``OPTIONS /rum/v1/events``; the instance is
    itself the ASGI app of that path (:meth:`__call__`)."""

    def __init__(
        self,
        pipeline: Pipeline,
        projects: Projects,
        config: Config,
        clock: Callable[[], int] = time.time_ns,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.pipeline = pipeline
        self.projects = projects
        self.clock = clock
        self.max_body = config.rum_max_body_bytes
        self.max_events = config.rum_max_events
        origins = config.rum_origin_list
        self.any_origin = "*" in origins
        self.origins = frozenset(o.lower() for o in origins if o != "*")
        self.per_ip = TokenBuckets(
            config.rum_rate_per_ip, config.rum_rate_per_ip * BURST_S, clock=monotonic
        )
        self.per_session = TokenBuckets(
            config.rum_rate_per_session, config.rum_rate_per_session * BURST_S, clock=monotonic
        )
        self.scrubber = CachedScrubber(pipeline.span_scrubber.scrubber)
        self.batcher = BeaconBatcher(pipeline)
        self.route: BaseRoute | None = None  # the route serving this app (app.py)

    # ------------------------------------------------------------------ routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The path's ASGI app, mounted as a plain Starlette route: the app's middleware
        (security headers, request counting, body guard, error handling) still wraps
        it, but not FastAPI's per-request machinery (dependency solving, its exception
        and exit-stack wrappers) — a third of the event loop's time per beacon."""
        if self.route is not None:  # its template, for the request counters (/metrics)
            scope["route"] = self.route
        request = Request(scope, receive)
        method = scope["method"]
        if method == "POST":
            response = await self.events(request)
        elif method == "OPTIONS":
            response = await self.preflight(request)
        else:
            raise HTTPException(405, headers={"Allow": "POST, OPTIONS"})
        await response(scope, receive, send)

    async def events(self, request: Request) -> Response:
        origin = request.headers.get("origin")
        allowed = self._allowed(origin)
        try:
            return self._answer(await self._handle(request, origin, allowed), origin, allowed)
        except HeronHTTPError as err:
            self.pipeline.count_rejected("rum_beacons", _reason(err), 1)
            body = orjson.dumps({"error": err.message})
            return self._answer(Response(body, err.status, err.headers), origin, allowed)

    async def preflight(self, request: Request) -> Response:
        origin = request.headers.get("origin")
        allowed = self._allowed(origin)
        if not allowed:
            body = orjson.dumps({"error": _origin_message(origin)})
            return self._answer(Response(body, 403, media_type="application/json"), origin, False)
        headers = {
            "Access-Control-Allow-Methods": "POST, OPTIONS",
            "Access-Control-Allow-Headers": "Content-Type",
            "Access-Control-Max-Age": "86400",
        }
        return self._answer(Response(status_code=204, headers=headers), origin, True)

    # ------------------------------------------------------------------ checks

    def _allowed(self, origin: str | None) -> bool:
        if self.any_origin:
            return True
        return origin is not None and origin.lower().rstrip("/") in self.origins

    def _answer(self, resp: Response, origin: str | None, allowed: bool) -> Response:
        if allowed and origin:
            resp.headers["Access-Control-Allow-Origin"] = origin
        resp.headers["Vary"] = "Origin"
        if resp.status_code != 204:
            resp.headers["Content-Type"] = "application/json"
        return resp

    async def _handle(self, request: Request, origin: str | None, allowed: bool) -> Response:
        if not allowed:
            raise Forbidden(_origin_message(origin))
        project = self._project(request)
        client = request.client.host if request.client else "unknown"
        _limited(self.per_ip.take(client), f"client {client}")
        body = await read_body(request, self.max_body)
        ctype = media_type(request)
        if ctype not in MEDIA_TYPES:
            raise UnsupportedMediaType(
                f"unsupported Content-Type {ctype or '(none)'!r}: "
                "send text/plain or application/json"
            )
        try:
            doc = parse_json(body)
        except ValueError as e:
            raise BadRequest(f"beacon is {e}") from None
        user_agent = request.headers.get("user-agent", "")
        beacon = self._decode(doc, user_agent)
        if beacon is None:
            return Response(orjson.dumps({"accepted": 0, "ignored": "bot"}), 200)
        if beacon.events:
            await self.batcher.store(project, beacon)
        return Response(orjson.dumps(_summary(beacon)), 200)

    def _project(self, request: Request) -> int:
        key = request.query_params.get("key")
        if not key:
            raise Unauthorized("missing browser key: post to /rum/v1/events?key=<browser key>")
        project = self.projects.project_for_browser_key(key)
        if project is None:
            raise Unauthorized("unknown browser key")
        return project

    def _decode(self, doc: Any, user_agent: str) -> Beacon | None:
        """The beacon decoded, or None for a bot's (counted)."""
        events = doc.get("events") if isinstance(doc, dict) else None
        if isinstance(events, list) and len(events) > self.max_events:
            raise PayloadTooLarge(
                f"beacon holds {len(events)} events; at most {self.max_events} are accepted"
            )
        ua = parse_user_agent(user_agent)
        try:
            if ua.bot:
                decode_beacon(doc, ua, user_agent, self.scrubber, 0)  # still 400 when bad
                self.pipeline.count_rejected("rum", "bot", len(doc["events"]))
                return None
            session = doc.get("session") if isinstance(doc, dict) else None
            beacon = decode_beacon(doc, ua, user_agent, self.scrubber, self.clock())
        except BeaconError as e:
            raise BadRequest(f"invalid beacon: {e}") from None
        _limited(self.per_session.take(str(session)), "session")
        self.pipeline.count_rejected("rum", "unknown", beacon.unknown)
        self.pipeline.count_rejected("rum", "invalid", beacon.invalid)
        return beacon


def _limited(wait_s: float, who: str) -> None:
    if wait_s > 0:
        retry = str(max(1, int(wait_s + 0.999)))
        raise TooManyRequests(
            f"too many beacons from this {who}; retry in {retry} s", {"Retry-After": retry}
        )


def _origin_message(origin: str | None) -> str:
    shown = repr(origin[:200]) if origin else "(none)"
    return f"origin {shown} is not allowed: add it to rum_allowed_origins"


_REASONS = {
    400: "malformed",
    401: "key",
    403: "origin",
    408: "timeout",
    413: "too_large",
    415: "media_type",
    429: "rate_limited",
    503: "queue_full",
}


def _reason(err: HeronHTTPError) -> str:
    return _REASONS.get(err.status, str(err.status))


def _summary(beacon: Beacon) -> dict[str, int]:
    return {"accepted": len(beacon.events), "unknown": beacon.unknown, "invalid": beacon.invalid}
