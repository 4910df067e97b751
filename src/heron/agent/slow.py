"""Slow requests: entry spans longer than ``slow_request_ms`` are flagged and logged.

An *entry span* is a SERVER or CONSUMER span whose parent is absent or remote (the span
a request to this service starts with). When it ends after more than ``slow_request_ms``
(default 1000; 0 turns this off) it gets ``heron.slow_request=true`` and one WARNING::

    slow request: GET /orders/{id} took 1234 ms (trace_id=4bf92f3577b34da6a3ce929d0e0e4736)

on the ``heron.slow_request`` logger (so it reaches Heron's logs too), rate-limited to one
line per route per minute and :data:`MAX_LOGS_PER_MINUTE` lines a
minute in all. This processor runs before the batch processor, while the ended span is
still this process's own object, and adds the attribute to it in place.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable

from opentelemetry.attributes import BoundedAttributes
from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor
from opentelemetry.trace import SpanKind

# Not "heron.agent" (which heron's log handler never sends): these lines reach Heron's logs.
logger = logging.getLogger("heron.slow_request")

SLOW_ATTRIBUTE = "heron.slow_request"
ROUTE_INTERVAL_S = 60.0
MAX_LOGS_PER_MINUTE = 10
MAX_ROUTES_REMEMBERED = 1000
_ENTRY_KINDS = (SpanKind.SERVER, SpanKind.CONSUMER)


def describe(span: ReadableSpan) -> str:
    """``GET /orders/{id}``: method and route (or target) when known, else the span name."""
    attributes = span.attributes or {}
    method = attributes.get("http.request.method") or attributes.get("http.method")
    route = (
        attributes.get("http.route") or attributes.get("url.path") or attributes.get("http.target")
    )
    if method and route:
        return f"{method} {route}"
    return span.name


class SlowRequestProcessor(SpanProcessor):
    """Flags entry spans over the threshold and logs them, rate-limited."""

    def __init__(self, threshold_ms: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.threshold_ns = int(threshold_ms * 1_000_000)
        self._clock = clock
        self._lock = threading.Lock()
        self._next_by_route: dict[str, float] = {}
        self._window_start = float("-inf")
        self._logged_in_window = 0
        self.flagged = 0

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        pass

    def on_end(self, span: ReadableSpan) -> None:
        if span.kind not in _ENTRY_KINDS or span.start_time is None or span.end_time is None:
            return
        if span.parent is not None and not span.parent.is_remote:
            return
        duration = span.end_time - span.start_time
        if duration <= self.threshold_ns:
            return
        self.flagged += 1
        attributes = dict(span.attributes or {})
        attributes[SLOW_ATTRIBUTE] = True
        # A span type that does not allow it: only the log.
        with contextlib.suppress(AttributeError):
            span._attributes = BoundedAttributes(attributes=attributes, immutable=True)
        self._log(span, duration)

    def _log(self, span: ReadableSpan, duration_ns: int) -> None:
        route = describe(span)
        now = self._clock()
        with self._lock:
            if now < self._next_by_route.get(route, float("-inf")):
                return
            if now - self._window_start >= 60.0:
                self._window_start, self._logged_in_window = now, 0
            if self._logged_in_window >= MAX_LOGS_PER_MINUTE:
                return
            self._logged_in_window += 1
            if len(self._next_by_route) >= MAX_ROUTES_REMEMBERED:
                self._next_by_route.clear()
            self._next_by_route[route] = now + ROUTE_INTERVAL_S
        trace_id = format(span.context.trace_id, "032x") if span.context else "-"
        logger.warning(
            "slow request: %s took %d ms (trace_id=%s)", route, duration_ns // 1_000_000, trace_id
        )

    def after_fork(self) -> None:
        self._lock = threading.Lock()
        self.flagged = 0

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True
