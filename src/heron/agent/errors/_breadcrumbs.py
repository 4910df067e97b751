"""Breadcrumbs: what happened just before an error (log lines, HTTP and database calls).

Crumbs are scrubbed before they are stored (callers give scrubbed text), so an event
copies them as they are. Crumbs are kept per trace while a trace is in progress in this process, so one request's
crumbs never end up in another request's event; outside any trace they go to a global
ring. Every ring is bounded (``max_breadcrumbs``) and so is the number of traces followed.

HTTP and database crumbs come from the OpenTelemetry pipeline: :class:`BreadcrumbProcessor`
is a span processor that turns finished CLIENT spans into crumbs (the SQL text there is
already obfuscated by the integrations), and remembers each trace's local root span,
whose name is the event's ``transaction`` (``GET /orders/{id}``). As each span starts it
also scrubs the URL attributes the HTTP instrumentations copy from the raw request
(``url.query``, ``url.full``, ...), so a ``?token=...`` does not leave in a span either.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict, deque
from typing import Any

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor
from opentelemetry.trace import Span, SpanKind

from heron._scrub import Scrubber

MAX_TRACES = 256  # traces followed at once (those whose root never ends are evicted)
MAX_MESSAGE = 1024
_URL_ATTRIBUTES = ("url.full", "http.url", "http.target")


class _Trace:
    __slots__ = ("crumbs", "root")

    def __init__(self, size: int) -> None:
        # A crumb, or a finished CLIENT span made into one only when an event asks
        # (most requests raise nothing: formatting every query's crumb was ~50 µs each).
        self.crumbs: deque[dict[str, Any] | ReadableSpan] = deque(maxlen=size)
        self.root: Any = None  # the local root span (SDK span; read for its name)


class Breadcrumbs:
    """Bounded rings of crumbs: one per trace in progress, one for everything else."""

    def __init__(self, size: int = 100, scrubber: Scrubber | None = None) -> None:
        self.size = size
        self.scrubber = scrubber or Scrubber()
        self._global: deque[dict[str, Any] | ReadableSpan] = deque(maxlen=size)
        self._traces: OrderedDict[int, _Trace] = OrderedDict()
        self._lock = threading.Lock()

    def after_fork(self) -> None:
        self._lock = threading.Lock()
        self._traces.clear()  # the parent's requests are not this process's

    def _trace(self, trace_id: int) -> _Trace:
        entry = self._traces.get(trace_id)
        if entry is None:
            entry = self._traces[trace_id] = _Trace(self.size)
            if len(self._traces) > MAX_TRACES:
                self._traces.popitem(last=False)
        return entry

    def add(self, crumb: dict[str, Any] | ReadableSpan, trace_id: int = 0) -> None:
        if self.size <= 0:
            return
        with self._lock:
            ring = self._trace(trace_id).crumbs if trace_id else self._global
            ring.append(crumb)

    def snapshot(self, trace_id: int = 0) -> list[dict[str, Any]]:
        """The crumbs of ``trace_id`` (or the global ones), oldest first."""
        with self._lock:
            if not trace_id:
                items = list(self._global)
            else:
                entry = self._traces.get(trace_id)
                items = list(entry.crumbs) if entry is not None else []
        out = []
        for item in items:
            if isinstance(item, ReadableSpan):
                made = _span_crumb(item, self.scrubber)
                if made is not None:
                    out.append(made)
            else:
                out.append(item)
        return out

    def transaction(self, trace_id: int) -> str | None:
        """The name of the trace's local root span, when it is a server span."""
        entry = self._traces.get(trace_id)
        root = entry.root if entry is not None else None
        return getattr(root, "name", None) if root is not None else None

    def start_trace(self, trace_id: int, root: Any) -> None:
        with self._lock:
            self._trace(trace_id).root = root

    def end_trace(self, trace_id: int) -> None:
        with self._lock:
            self._traces.pop(trace_id, None)


def crumb(
    type_: str,
    category: str,
    message: str,
    level: str = "info",
    data: dict[str, Any] | None = None,
    timestamp: float | None = None,
) -> dict[str, Any]:
    return {
        "timestamp": time.time() if timestamp is None else timestamp,
        "type": type_,
        "category": category,
        "level": level,
        "message": message[:MAX_MESSAGE],
        "data": data or {},
    }


def current_trace_id() -> int:
    context = trace.get_current_span().get_span_context()
    return context.trace_id if context.is_valid else 0


def _span_crumb(span: ReadableSpan, s: Scrubber) -> dict[str, Any] | None:
    attrs = span.attributes or {}
    duration = ((span.end_time or 0) - (span.start_time or 0)) / 1e6
    ended = (span.end_time or time.time_ns()) / 1e9
    error = span.status is not None and span.status.status_code.name == "ERROR"
    level = "error" if error else "info"
    method, url = attrs.get("http.request.method"), attrs.get("url.full")
    if method and url:
        url = s.url(str(url))
        status = attrs.get("http.response.status_code")
        data = {"method": method, "url": url, "status_code": status, "duration_ms": duration}
        return crumb("http", "http.client", f"{method} {url}", level, data, ended)
    system = attrs.get("db.system.name") or attrs.get("db.system")
    if system:
        text = s.text(str(attrs.get("db.query.text") or attrs.get("db.statement") or span.name))
        data = {"db.system": system, "duration_ms": duration}
        return crumb("query", f"db.{system}", str(text), level, data, ended)
    return None


class BreadcrumbProcessor(SpanProcessor):
    """A span processor: CLIENT spans become crumbs; local roots mark a trace in progress."""

    def __init__(self, crumbs: Breadcrumbs, scrubber: Scrubber) -> None:
        self.crumbs = crumbs
        self.scrubber = scrubber

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        self._scrub_urls(span)
        parent = trace.get_current_span(parent_context).get_span_context()
        if parent.is_valid and not parent.is_remote:
            return
        if getattr(span, "kind", None) is SpanKind.SERVER:
            self.crumbs.start_trace(span.get_span_context().trace_id, span)

    def _scrub_urls(self, span: Span) -> None:
        attributes = getattr(span, "attributes", None) or {}
        query = attributes.get("url.query")
        if isinstance(query, str) and query:
            span.set_attribute("url.query", self.scrubber.query_string(query))
        for key in _URL_ATTRIBUTES:
            value = attributes.get(key)
            if isinstance(value, str) and "?" in value:
                span.set_attribute(key, self.scrubber.url(value))

    def on_end(self, span: ReadableSpan) -> None:
        context = span.get_span_context()
        if span.kind is SpanKind.CLIENT and context is not None:
            self.crumbs.add(span, context.trace_id)  # made a crumb only if an event needs it
        parent = span.parent
        if context is not None and (parent is None or parent.is_remote):
            self.crumbs.end_trace(context.trace_id)
