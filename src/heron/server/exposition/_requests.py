"""Counts of this process's own HTTP requests, by method, route template and status.

A pure ASGI middleware (nothing buffered): it reads the status from the response start
and the route template Starlette's router leaves in the scope (``/v1/traces``,
``/api/{project_id}/envelope/``), so labels stay few whatever the paths are. Counters
live in plain dicts touched only on the event loop; a scrape copies them.
"""

from __future__ import annotations

import bisect
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

# Upper bounds (seconds) of the request-duration buckets; +Inf is implied.
REQUEST_BOUNDS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
UNMATCHED = "(unmatched)"
"""The route label of requests no route matched (404s)."""


class RequestStats:
    """Requests by (method, route, status code) and durations by route."""

    def __init__(self) -> None:
        self.counts: dict[tuple[str, str, str], int] = {}
        self.durations: dict[str, list[float]] = {}
        """route → per-bucket counts (the last one +Inf), then the summed seconds."""

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        key = (method if method in _METHODS else "other", route, str(status))
        self.counts[key] = self.counts.get(key, 0) + 1
        hist = self.durations.get(route)
        if hist is None:
            hist = self.durations[route] = [0.0] * (len(REQUEST_BOUNDS_S) + 2)
        hist[bisect.bisect_left(REQUEST_BOUNDS_S, seconds)] += 1
        hist[-1] += seconds


class CountRequests:
    """ASGI middleware feeding :class:`RequestStats`. A request that ends without a
    response (the client hung up) is counted with status 0."""

    def __init__(self, app: ASGIApp, stats: RequestStats) -> None:
        self.app = app
        self.stats = stats

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 0
        start = time.perf_counter()

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        except BaseException:
            status = status or 500
            raise
        finally:
            route = getattr(scope.get("route"), "path", None) or UNMATCHED
            self.stats.observe(scope["method"], route, status, time.perf_counter() - start)
